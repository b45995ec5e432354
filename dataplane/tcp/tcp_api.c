/* The upper layer's calls on connections: active open, send, receive
 * (copying and zero-copy), shutdown, close, abort, settings, snapshots. */
#include <errno.h>
#include <string.h>

#include "tcp_pvt.h"

static uint16_t pick_port(struct tcp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport)
{
    const struct tcp_stack_params *p = &st->p;
    uint32_t span = (uint32_t)p->eport_max - p->eport_min + 1;
    uint32_t port = st->eport_next;
    for (uint32_t i = 0; i < span; i++, port++) {
        if (port > p->eport_max || port < p->eport_min)
            port = p->eport_min;
        if (port % p->eport_stride != p->eport_offset)
            continue;
        if (!tcp_conn_lookup(st, laddr, (uint16_t)port, raddr, rport) &&
            tcp_listener_find(st, laddr, (uint16_t)port) < 0) {
            st->eport_next = port + 1;
            return (uint16_t)port;
        }
    }
    return 0;
}

int64_t tcp_connect(struct tcp_stack *st, uint32_t laddr, uint32_t raddr, uint16_t rport,
                    void *user, uint64_t now)
{
    if (!raddr || !rport)
        return -EINVAL;
    uint16_t lport = pick_port(st, laddr, raddr, rport);
    if (!lport)
        return -EADDRNOTAVAIL;
    struct tcp_conn *c = tcp_conn_alloc(st, now);
    if (!c) {
        st->cnt.c[TCP_CNT_DROP_NO_MEM]++;
        return -ENOMEM;
    }
    c->laddr = laddr;
    c->raddr = raddr;
    c->lport = lport;
    c->rport = rport;
    c->user = user;
    c->announced = 1;
    c->mss = st->p.mss;
    c->ws_ok = 1;
    c->rcv_wscale = st->p.wscale;
    c->ts_ok = !st->p.no_timestamps;
    c->sack_ok = !st->p.no_sack;
    c->iss = tcp_isn(st, laddr, lport, raddr, rport, now);
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->rtt_active = 1;
    c->rtt_start = now;
    tcp_conn_hash_insert(st, c);
    tcp_set_state(st, c, TCP_STATE_SYN_SENT);
    tcp_send_syn(st, c, now);
    tcp_handle_t h = tcp_conn_handle(st, c);
    tcp_dispatch(st);
    return (int64_t)h;
}

ssize_t tcp_send(struct tcp_stack *st, tcp_handle_t h, const void *data, size_t len,
                 uint64_t now)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    if (c->zombie)
        return c->reset_rcvd ? -ECONNRESET : -EPIPE;
    if (c->state == TCP_STATE_SYN_SENT || c->state == TCP_STATE_SYN_RCVD)
        return -ENOTCONN;
    if (c->app_shut || (c->state != TCP_STATE_ESTABLISHED && c->state != TCP_STATE_CLOSE_WAIT))
        return -EPIPE;
    uint32_t space = st->p.sndbuf - c->sb_len;
    uint32_t n = len < space ? (uint32_t)len : space;
    if (n) {
        uint32_t off = (c->sb_seq + c->sb_len) & st->snd_mask;
        uint32_t first = st->p.sndbuf - off;
        if (n <= first) {
            memcpy(c->snd_buf + off, data, n);
        } else {
            memcpy(c->snd_buf + off, data, first);
            memcpy(c->snd_buf, (const uint8_t *)data + first, n - first);
        }
        c->sb_len += n;
    }
    if (n < len)
        tcp_arm_writable(c, 1);
    tcp_output_or_cork(st, c, now);
    tcp_dispatch(st);
    return n;
}

ssize_t tcp_want_writable(struct tcp_stack *st, tcp_handle_t h, uint32_t min_space)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    uint32_t space = st->p.sndbuf - c->sb_len;
    if (min_space > st->p.sndbuf)
        min_space = st->p.sndbuf;
    if (space < min_space)
        tcp_arm_writable(c, min_space);
    return space;
}

ssize_t tcp_send_space(const struct tcp_stack *st, tcp_handle_t h)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    return st->p.sndbuf - c->sb_len;
}

uint32_t tcp_stack_sndbuf(const struct tcp_stack *st)
{
    return st->p.sndbuf;
}

static ssize_t readable(const struct tcp_conn *c)
{
    if (c->rb_len)
        return c->rb_len;
    if (c->reset_rcvd)
        return -ECONNRESET;
    if (c->fin_rcvd)
        return -ESHUTDOWN;
    return 0;
}

ssize_t tcp_recv_peek(const struct tcp_stack *st, tcp_handle_t h, struct tcp_iov iov[2])
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    iov[0].base = iov[1].base = NULL;
    iov[0].len = iov[1].len = 0;
    if (!c)
        return -EBADF;
    ssize_t r = readable(c);
    if (r <= 0)
        return r;
    uint32_t start = c->rcv_rd & st->rcv_mask;
    uint32_t first = st->p.rcvbuf - start;
    iov[0].base = c->rcv_buf + start;
    iov[0].len = c->rb_len < first ? c->rb_len : first;
    if (c->rb_len > first) {
        iov[1].base = c->rcv_buf;
        iov[1].len = c->rb_len - first;
    }
    return c->rb_len;
}

bool tcp_window_update_due(const struct tcp_stack *st, const struct tcp_conn *c)
{
    if (c->zombie || c->fin_rcvd || c->state == TCP_STATE_SYN_SENT)
        return false;
    uint32_t adv = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    uint32_t wnd = tcp_rcv_window(st, c);
    uint32_t thresh = st->p.rcvbuf / 2 < c->mss ? st->p.rcvbuf / 2 : c->mss;
    return wnd > adv && wnd - adv >= thresh && wnd >= 2 * (uint64_t)adv;
}

/* A read opened the window: announce it if due, inside a batch at its end
 * (on the data the batch sends, or alone). */
static void window_update(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (tcp_window_update_due(st, c))
        tcp_ack_or_queue(st, c, now);
}

int tcp_recv_consume(struct tcp_stack *st, tcp_handle_t h, size_t n, uint64_t now)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    if (n > c->rb_len)
        return -EINVAL;
    c->rb_len -= (uint32_t)n;
    c->rcv_rd += (uint32_t)n;
    if (n)
        window_update(st, c, now);
    if (c->rb_len == 0 && c->close_deferred) {
        /* everything read: the held-back closed(NORMAL) goes out at the
         * next tcp_input/tcp_timers_run (not here, so that a caller
         * reading in a loop still sees -ESHUTDOWN on its handle first) */
        c->close_deferred = 0;
        tcp_event(st, c, TCP_EV_CLOSED);
    }
    return 0;
}

ssize_t tcp_recv(struct tcp_stack *st, tcp_handle_t h, void *buf, size_t len, uint64_t now)
{
    struct tcp_iov iov[2];
    ssize_t r = tcp_recv_peek(st, h, iov);
    if (r <= 0)
        return r;
    size_t n = len < (size_t)r ? len : (size_t)r;
    size_t a = n < iov[0].len ? n : iov[0].len;
    memcpy(buf, iov[0].base, a);
    if (n > a)
        memcpy((uint8_t *)buf + a, iov[1].base, n - a);
    tcp_recv_consume(st, h, n, now);
    return (ssize_t)n;
}

static void do_shutdown(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (c->app_shut)
        return;
    c->app_shut = 1;
    if (c->state == TCP_STATE_ESTABLISHED)
        tcp_set_state(st, c, TCP_STATE_FIN_WAIT_1);
    else if (c->state == TCP_STATE_CLOSE_WAIT)
        tcp_set_state(st, c, TCP_STATE_LAST_ACK);
    tcp_output_or_cork(st, c, now);
}

int tcp_shutdown(struct tcp_stack *st, tcp_handle_t h, uint64_t now)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    if (c->zombie)
        return 0;
    if (c->state == TCP_STATE_SYN_SENT || c->state == TCP_STATE_SYN_RCVD)
        return -ENOTCONN;
    do_shutdown(st, c, now);
    tcp_dispatch(st);
    return 0;
}

int tcp_abort(struct tcp_stack *st, tcp_handle_t h)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    c->user_closed = 1;
    c->close_deferred = 0;
    if (c->zombie)
        tcp_event(st, c, TCP_EV_CLOSED); /* let tcp_dispatch free it */
    else if (c->state == TCP_STATE_TIME_WAIT)
        ; /* both sides are done: the entry just runs out its timer */
    else {
        tcp_send_rst_conn(st, c, c->last_activity);
        tcp_conn_closed(st, c, TCP_CLOSE_ABORTED);
    }
    tcp_dispatch(st);
    return 0;
}

int tcp_close(struct tcp_stack *st, tcp_handle_t h, uint64_t now)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    if (c->zombie || c->state == TCP_STATE_SYN_SENT || c->state == TCP_STATE_TIME_WAIT ||
        c->rb_len) {
        /* nothing to finish, or unread data the peer believes delivered:
         * reset so the peer learns it was not (RFC 9293 3.6) */
        return tcp_abort(st, h);
    }
    c->user_closed = 1;
    do_shutdown(st, c, now);
    if (c->state == TCP_STATE_FIN_WAIT_2 && !c->tmr[TCP_T_2MSL])
        tcp_timer_set(st, c, TCP_T_2MSL, now + st->p.rto_max_us);
    tcp_dispatch(st);
    return 0;
}

int tcp_set_idle_timeout(struct tcp_stack *st, tcp_handle_t h, uint32_t idle_us, uint64_t now)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    if (c->zombie)
        return 0;
    c->idle_us = idle_us;
    if (idle_us)
        tcp_timer_set(st, c, TCP_T_IDLE, now + idle_us);
    else
        tcp_timer_stop(st, c, TCP_T_IDLE);
    return 0;
}

int tcp_conn_info(const struct tcp_stack *st, tcp_handle_t h, struct tcp_conn_info *i)
{
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    memset(i, 0, sizeof(*i));
    i->state = (enum tcp_state)c->state;
    i->laddr = c->laddr;
    i->raddr = c->raddr;
    i->lport = c->lport;
    i->rport = c->rport;
    i->snd_una = c->snd_una;
    i->snd_nxt = c->snd_nxt;
    i->snd_wnd = c->snd_wnd;
    i->rcv_nxt = c->rcv_nxt;
    i->rcv_wnd = tcp_rcv_window(st, c);
    i->cwnd = c->cwnd;
    i->ssthresh = c->ssthresh;
    i->srtt_us = c->srtt;
    i->rttvar_us = c->rttvar;
    i->rto_us = tcp_rto_cur(st, c);
    i->mss = c->mss;
    i->snd_wscale = c->snd_wscale;
    i->rcv_wscale = c->rcv_wscale;
    i->ts_ok = c->ts_ok;
    i->sack_ok = c->sack_ok;
    i->send_queued = c->sb_len;
    i->recv_queued = c->rb_len;
    i->ooo_segs = c->n_ooo;
    i->retransmits = c->n_retrans;
    return 0;
}
