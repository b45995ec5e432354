/* Receiving: the RFC 9293 3.10.7 segment-arrival steps for listeners,
 * SYN-SENT and the synchronized states, with RFC 7323 (PAWS), RFC 5961
 * (challenge ACKs), RFC 5681/6582 (NewReno) on the ACK path, RFC 2018
 * receiver-side SACK via the out-of-order ranges, and RFC 4987 SYN cookies
 * when the SYN backlog is full. */
#include <errno.h>
#include <string.h>

#include "tcp_pvt.h"

struct seg {
    const struct tcp_seg_in *in;
    struct tcp_hdr h;
    const uint8_t *data;
    uint32_t len; /* payload bytes */
};

static uint32_t eff_mss(const struct tcp_conn *c) { return c->mss - (c->ts_ok ? 12u : 0u); }

static void init_cc(struct tcp_conn *c)
{
    /* RFC 6928 initial window of 10 segments */
    c->cwnd = 10 * eff_mss(c);
    c->ssthresh = 0x3fffffff;
    c->recover = c->snd_una;
}

static void arm_conn_timers(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (c->idle_us)
        tcp_timer_set(st, c, TCP_T_IDLE, now + c->idle_us);
    if (st->p.keepalive_idle_us)
        tcp_timer_set(st, c, TCP_T_KEEP, now + st->p.keepalive_idle_us);
}

static uint16_t clamp_mss(const struct tcp_stack *st, const struct tcp_hdr *h)
{
    uint16_t m = h->has_mss ? h->mss : 536; /* RFC 9293 3.7.1 default */
    if (m > st->p.mss)
        m = st->p.mss;
    if (m < 88)
        m = 88; /* room for options and some payload: refuse silly MSS */
    return m;
}

/* SYN options negotiation for a passive open. */
static void negotiate_passive(const struct tcp_stack *st, struct tcp_conn *c,
                              const struct tcp_hdr *h)
{
    c->mss = clamp_mss(st, h);
    c->ws_ok = h->has_wscale;
    c->snd_wscale = c->ws_ok ? (h->wscale > 14 ? 14 : h->wscale) : 0;
    c->rcv_wscale = c->ws_ok ? st->p.wscale : 0;
    c->ts_ok = h->has_ts && !st->p.no_timestamps;
    c->ts_recent = h->has_ts ? h->ts_val : 0;
    c->sack_ok = h->has_sack_perm && !st->p.no_sack;
}

static void enter_established(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    tcp_set_state(st, c, TCP_STATE_ESTABLISHED);
    c->sb_seq = c->iss + 1;
    c->backoff = 0;
    c->retries = 0;
    tcp_timer_stop(st, c, TCP_T_REXMT);
    init_cc(c);
    arm_conn_timers(st, c, now);
}

static void enter_time_wait(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    tcp_set_state(st, c, TCP_STATE_TIME_WAIT);
    for (int t = 0; t < TCP_T_MAX; t++)
        c->tmr[t] = 0;
    tcp_timer_set(st, c, TCP_T_2MSL, now + st->p.time_wait_us);
    tcp_tw_push(st, c);
    tcp_event(st, c, TCP_EV_CLOSED); /* the upper layer is done with it */
}

/* --- listener --------------------------------------------------------- */

/* TSval low bits carried through a cookie SYN-ACK so that the final ACK's
 * TSecr brings back what the SYN offered (RFC 4987 3.6 notes cookies lose
 * options otherwise). */
#define CK_TS_MARK 0x20u
#define CK_TS_SACK 0x10u
#define CK_TS_WS_NONE 0x0fu

static void send_cookie_synack(struct tcp_stack *st, const struct seg *s, uint64_t now)
{
    const struct tcp_hdr *h = &s->h;
    struct tcp_conn tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.ts_ok = h->has_ts && !st->p.no_timestamps;
    tmp.sack_ok = tmp.ts_ok && h->has_sack_perm && !st->p.no_sack;
    tmp.ws_ok = tmp.ts_ok && h->has_wscale;
    tmp.rcv_wscale = tmp.ws_ok ? st->p.wscale : 0;
    tmp.ts_recent = h->ts_val;
    uint32_t bits = CK_TS_MARK | (tmp.sack_ok ? CK_TS_SACK : 0) |
                    (tmp.ws_ok ? (h->wscale > 14 ? 14u : h->wscale) : CK_TS_WS_NONE);
    uint32_t tsval = (tcp_ts_now(st, now) & ~0x3fu) | bits;

    struct tcp_seg_out o;
    memset(&o, 0, sizeof(o));
    o.laddr = s->in->daddr;
    o.raddr = s->in->saddr;
    o.lport = h->dport;
    o.rport = h->sport;
    o.seq = tcp_cookie_make(st, o.laddr, o.lport, o.raddr, o.rport, h->seq,
                            h->has_mss ? h->mss : 536, now);
    o.ack = h->seq + 1;
    o.flags = TCP_FLAG_SYN | TCP_FLAG_ACK;
    o.window = (uint16_t)(st->p.rcvbuf > 65535u ? 65535u : st->p.rcvbuf);
    o.opt_len = tcp_opts_syn(st, &tmp, o.opt, tsval);
    st->cnt.c[TCP_CNT_SYNCOOKIE_SENT]++;
    tcp_emit(st, &o);
}

static int conn_input(struct tcp_stack *st, struct tcp_conn *c, struct seg *s, uint64_t now);
static void challenge_ack(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);

/* The final ACK of a cookie handshake: rebuild the connection from the
 * cookie and the echoed timestamp. */
static int cookie_ack(struct tcp_stack *st, int li, struct seg *s, uint64_t now)
{
    const struct tcp_hdr *h = &s->h;
    uint32_t laddr = s->in->daddr, raddr = s->in->saddr;
    uint16_t mss = tcp_cookie_check(st, laddr, h->dport, raddr, h->sport, h->seq - 1,
                                    h->ack - 1, now);
    if (!mss) {
        st->cnt.c[TCP_CNT_SYNCOOKIE_BAD]++;
        tcp_send_rst_reply(st, s->in, h, s->len);
        return -ENOENT;
    }
    struct tcp_conn *c = tcp_conn_alloc(st, now);
    if (!c) {
        st->cnt.c[TCP_CNT_DROP_NO_MEM]++;
        return -ENOMEM; /* the peer retransmits; maybe room then */
    }
    st->cnt.c[TCP_CNT_SYNCOOKIE_OK]++;
    c->laddr = laddr;
    c->raddr = raddr;
    c->lport = h->dport;
    c->rport = h->sport;
    c->listener = (uint16_t)li;
    c->user = st->listeners[li].user;
    c->mss = mss < st->p.mss ? mss : st->p.mss;
    if (h->has_ts && (h->ts_ecr & CK_TS_MARK) && !st->p.no_timestamps) {
        c->ts_ok = 1;
        c->ts_recent = h->ts_val;
        c->sack_ok = !!(h->ts_ecr & CK_TS_SACK);
        if ((h->ts_ecr & 0x0fu) != CK_TS_WS_NONE) {
            c->ws_ok = 1;
            c->snd_wscale = (uint8_t)(h->ts_ecr & 0x0fu);
            c->rcv_wscale = st->p.wscale;
        }
    }
    c->iss = h->ack - 1;
    c->irs = h->seq - 1;
    c->snd_una = c->snd_nxt = c->snd_max = h->ack;
    c->rcv_nxt = c->rcv_rd = c->last_ack_sent = h->seq; /* our SYN-ACK acked it */
    c->rcv_adv = c->rcv_nxt + (st->p.rcvbuf > 65535u ? 65535u : st->p.rcvbuf);
    c->snd_wnd = (uint32_t)h->window << c->snd_wscale;
    c->max_sndwnd = c->snd_wnd;
    c->snd_wl1 = h->seq;
    c->snd_wl2 = h->ack;
    c->rto = st->p.rto_initial_us;
    tcp_conn_hash_insert(st, c);
    enter_established(st, c, now);
    st->cnt.c[TCP_CNT_ACCEPTED]++;
    tcp_event(st, c, TCP_EV_ACCEPTED);
    /* the ACK may carry data or FIN: process it as an ESTABLISHED segment */
    return conn_input(st, c, s, now);
}

static int listen_input(struct tcp_stack *st, struct seg *s, uint64_t now)
{
    const struct tcp_hdr *h = &s->h;
    int li = tcp_listener_find(st, s->in->daddr, h->dport);
    if (li < 0 || (h->flags & TCP_FLAG_RST)) {
        st->cnt.c[TCP_CNT_DROP_NO_CONN]++;
        if (!(h->flags & TCP_FLAG_RST))
            tcp_send_rst_reply(st, s->in, h, s->len);
        return -ENOENT;
    }
    if (h->flags & TCP_FLAG_ACK) {
        if (h->flags & TCP_FLAG_SYN) {
            st->cnt.c[TCP_CNT_DROP_BAD_FLAGS]++;
            tcp_send_rst_reply(st, s->in, h, s->len);
            return -EPROTO;
        }
        return cookie_ack(st, li, s, now);
    }
    if (!(h->flags & TCP_FLAG_SYN)) {
        st->cnt.c[TCP_CNT_DROP_BAD_FLAGS]++;
        return -EPROTO; /* RFC 9293: text without ACK to LISTEN is dropped */
    }
    st->cnt.c[TCP_CNT_SYN_IN]++;
    struct tcp_conn *c = NULL;
    if (st->n_syn_rcvd >= st->p.syn_backlog)
        st->cnt.c[TCP_CNT_SYN_BACKLOG_FULL]++;
    else
        c = tcp_conn_alloc(st, now);
    if (!c) {
        /* backlog or pool full: answer statelessly (RFC 4987 3.6) */
        send_cookie_synack(st, s, now);
        return 0;
    }
    c->laddr = s->in->daddr;
    c->raddr = s->in->saddr;
    c->lport = h->dport;
    c->rport = h->sport;
    c->listener = (uint16_t)li;
    c->user = st->listeners[li].user;
    negotiate_passive(st, c, h);
    c->irs = h->seq;
    c->rcv_nxt = c->rcv_rd = h->seq + 1;
    c->iss = tcp_isn(st, c->laddr, c->lport, c->raddr, c->rport, now);
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->snd_wnd = h->window; /* never scaled in a SYN (RFC 7323 2.2) */
    c->max_sndwnd = c->snd_wnd;
    c->snd_wl1 = h->seq;
    c->snd_wl2 = c->iss;
    tcp_conn_hash_insert(st, c);
    tcp_set_state(st, c, TCP_STATE_SYN_RCVD);
    tcp_send_syn(st, c, now);
    return 0;
}

/* --- SYN-SENT (RFC 9293 3.10.7.3) ------------------------------------- */

static int syn_sent_input(struct tcp_stack *st, struct tcp_conn *c, struct seg *s,
                          uint64_t now)
{
    const struct tcp_hdr *h = &s->h;
    bool ack_ok = false;
    if (h->flags & TCP_FLAG_ACK) {
        if (seq_le(h->ack, c->iss) || seq_gt(h->ack, c->snd_max)) {
            st->cnt.c[TCP_CNT_DROP_BAD_ACK]++;
            tcp_send_rst_reply(st, s->in, h, s->len);
            return -EPROTO;
        }
        ack_ok = true;
    }
    if (h->flags & TCP_FLAG_RST) {
        if (!ack_ok) {
            st->cnt.c[TCP_CNT_DROP_BAD_FLAGS]++;
            return -EPROTO;
        }
        st->cnt.c[TCP_CNT_RST_IN]++;
        c->reset_rcvd = 1;
        tcp_conn_closed(st, c, TCP_CLOSE_RESET); /* connection refused */
        return 0;
    }
    if (!(h->flags & TCP_FLAG_SYN)) {
        st->cnt.c[TCP_CNT_DROP_BAD_FLAGS]++;
        return -EPROTO;
    }
    c->irs = h->seq;
    c->rcv_nxt = c->rcv_rd = h->seq + 1;
    /* Our SYN advertised a window before the peer's sequence space was
     * known: its right edge means nothing here. Without this, for about
     * half of the peer's ISNs, a window reopening after a full buffer
     * looked already advertised and no window update went out. */
    c->rcv_adv = c->rcv_nxt;
    c->mss = clamp_mss(st, h);
    c->ws_ok = c->ws_ok && h->has_wscale;
    c->snd_wscale = c->ws_ok ? (h->wscale > 14 ? 14 : h->wscale) : 0;
    c->rcv_wscale = c->ws_ok ? st->p.wscale : 0;
    c->ts_ok = c->ts_ok && h->has_ts;
    c->ts_recent = h->has_ts ? h->ts_val : 0;
    c->sack_ok = c->sack_ok && h->has_sack_perm;
    c->snd_wnd = h->window;
    c->max_sndwnd = c->snd_wnd;
    c->snd_wl1 = h->seq;
    c->snd_wl2 = h->ack;
    if (!ack_ok) {
        /* simultaneous open */
        tcp_set_state(st, c, TCP_STATE_SYN_RCVD);
        tcp_send_syn(st, c, now);
        return 0;
    }
    c->snd_una = h->ack;
    if (c->rtt_active && c->backoff == 0) {
        /* Karn: only a SYN sent once gives an RTT sample */
        uint32_t r = (uint32_t)(now - c->rtt_start);
        c->srtt = r;
        c->rttvar = r / 2;
        uint32_t rto = r + (4 * c->rttvar > st->p.timer_tick_us ? 4 * c->rttvar : st->p.timer_tick_us);
        c->rto = rto < st->p.rto_min_us ? st->p.rto_min_us : rto > st->p.rto_max_us ? st->p.rto_max_us : rto;
    }
    c->rtt_active = 0;
    enter_established(st, c, now);
    st->cnt.c[TCP_CNT_CONNECTED]++;
    tcp_event(st, c, TCP_EV_CONNECTED);
    /* Inside a batch the handshake's last ACK goes at its end, on the
     * first data if the upper layer writes when told it is connected. */
    tcp_ack_or_queue(st, c, now);
    return 0;
}

/* --- synchronized states -------------------------------------------- */

static void rexmit_first(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    uint32_t sb_end = c->sb_seq + c->sb_len;
    /* only bytes already sent: the buffer may hold more that the window
     * kept back, and sending them here would put data beyond snd_max on
     * the wire (the peer's ACK of it would then look bogus) */
    uint32_t sent_end = seq_min(sb_end, c->snd_max);
    uint32_t len = seq_lt(c->snd_una, sent_end) ? sent_end - c->snd_una : 0;
    if (len > eff_mss(c))
        len = eff_mss(c);
    bool fin = c->app_shut && c->snd_una + len == sb_end && seq_gt(c->snd_max, sb_end);
    if (!len && !fin)
        return;
    st->cnt.c[TCP_CNT_RETRANSMIT]++;
    c->n_retrans++;
    c->rtt_active = 0;
    tcp_send_segment(st, c, c->snd_una, len, TCP_FLAG_ACK | (fin ? TCP_FLAG_FIN : 0), now);
}

static void rtt_sample(struct tcp_stack *st, struct tcp_conn *c, uint32_t r)
{
    /* RFC 6298 2.2 / 2.3, in µs, G = the timer tick */
    if (!c->srtt) {
        c->srtt = r ? r : 1;
        c->rttvar = r / 2;
    } else {
        uint32_t d = c->srtt > r ? c->srtt - r : r - c->srtt;
        c->rttvar = (3 * c->rttvar + d) / 4;
        c->srtt = (7 * c->srtt + r) / 8;
        if (!c->srtt)
            c->srtt = 1;
    }
    uint32_t k = 4 * c->rttvar;
    uint64_t rto = (uint64_t)c->srtt + (k > st->p.timer_tick_us ? k : st->p.timer_tick_us);
    if (rto < st->p.rto_min_us)
        rto = st->p.rto_min_us;
    if (rto > st->p.rto_max_us)
        rto = st->p.rto_max_us;
    c->rto = (uint32_t)rto;
}

/* RFC 9293 3.10.7.4 fifth step for ESTABLISHED and later, plus congestion
 * control. Returns false if the segment must be dropped. */
static bool ack_process(struct tcp_stack *st, struct tcp_conn *c, struct seg *s, uint64_t now)
{
    const struct tcp_hdr *h = &s->h;
    uint32_t ack = h->ack;
    if (seq_gt(ack, c->snd_max)) {
        st->cnt.c[TCP_CNT_DROP_BAD_ACK]++;
        tcp_send_ack(st, c, now);
        return false;
    }
    uint32_t lo = c->snd_una - (c->max_sndwnd > 65535u ? c->max_sndwnd : 65535u);
    if (seq_lt(ack, lo)) {
        /* RFC 5961 5.2: too old to be an honest duplicate */
        st->cnt.c[TCP_CNT_DROP_BAD_ACK]++;
        challenge_ack(st, c, now);
        return false;
    }
    uint32_t new_wnd = (uint32_t)h->window << c->snd_wscale;
    bool wnd_same = new_wnd == c->snd_wnd;
    /* a peer that answers our zero-window probes is alive, however long
     * its window stays shut (RFC 9293 3.8.6.1): only unanswered probes
     * count towards giving up */
    if (c->tmr[TCP_T_PERSIST])
        c->retries = 0;
    if (seq_lt(c->snd_wl1, h->seq) || (c->snd_wl1 == h->seq && seq_le(c->snd_wl2, ack))) {
        c->snd_wnd = new_wnd;
        c->snd_wl1 = h->seq;
        c->snd_wl2 = ack;
        if (new_wnd > c->max_sndwnd)
            c->max_sndwnd = new_wnd;
    }
    uint32_t mss = eff_mss(c);
    uint32_t sb_end = c->sb_seq + c->sb_len;
    if (seq_gt(ack, c->snd_una)) {
        uint32_t acked = ack - c->snd_una;
        if (c->rtt_active && seq_ge(ack, c->rtt_seq)) {
            rtt_sample(st, c, (uint32_t)(now - c->rtt_start));
            c->rtt_active = 0;
        }
        c->backoff = 0;
        c->retries = 0;
        c->tlp_done = 0;
        uint32_t data_end = seq_lt(ack, sb_end) ? ack : sb_end;
        if (seq_gt(data_end, c->sb_seq)) {
            uint32_t n = data_end - c->sb_seq;
            c->sb_seq += n;
            c->sb_len -= n;
            if (c->want_writable && !c->app_shut &&
                st->p.sndbuf - c->sb_len >= c->wr_lowat) {
                c->want_writable = 0;
                tcp_event(st, c, TCP_EV_WRITABLE);
            }
        }
        c->snd_una = ack;
        if (seq_lt(c->snd_nxt, c->snd_una))
            c->snd_nxt = c->snd_una;
        if (c->sack_ok)
            tcp_sack_update(c, h);
        if (c->in_recovery) {
            if (seq_ge(ack, c->recover)) {
                /* RFC 6582 3.2 (3) full acknowledgment */
                uint32_t flight = c->snd_max - c->snd_una;
                c->cwnd = c->ssthresh < flight + mss ? c->ssthresh : flight + mss;
                c->in_recovery = 0;
                c->sack_rec = 0;
                c->dupacks = 0;
            } else if (c->sack_rec) {
                /* RFC 6675: the pipe shrank by what was acked; repair
                 * more holes (cwnd stays at ssthresh) */
                tcp_sack_recover(st, c, now);
                tcp_rexmt_arm(st, c, now);
            } else {
                /* (5) partial acknowledgment: retransmit the next hole,
                 * deflate by the amount acked, add back one SMSS */
                rexmit_first(st, c, now);
                c->cwnd = c->cwnd > acked ? c->cwnd - acked + mss : mss;
                tcp_rexmt_arm(st, c, now);
            }
        } else {
            c->dupacks = 0;
            if (c->cwnd < c->ssthresh)
                c->cwnd += acked < mss ? acked : mss; /* slow start, RFC 5681 3.1 */
            else
                c->cwnd += mss * mss / c->cwnd ? mss * mss / c->cwnd : 1;
            if (c->cwnd > (1u << 30))
                c->cwnd = 1u << 30;
        }
        if (c->snd_una == c->snd_max)
            tcp_timer_stop(st, c, TCP_T_REXMT);
        else if (!c->in_recovery || seq_ge(ack, c->recover))
            tcp_rexmt_arm(st, c, now);
        return true;
    }
    /* a duplicate ACK (RFC 5681 2); one that SACKs new bytes counts even
     * if the window moved, since it proves a segment left the network */
    uint32_t newly = (c->sack_ok && h->n_sack && ack == c->snd_una) ? tcp_sack_update(c, h) : 0;
    if (ack == c->snd_una && s->len == 0 && !(h->flags & (TCP_FLAG_SYN | TCP_FLAG_FIN)) &&
        (wnd_same || newly) && seq_lt(c->snd_una, c->snd_max) && c->snd_wnd) {
        st->cnt.c[TCP_CNT_DUP_ACK_IN]++;
        if (c->dupacks < 255)
            c->dupacks++;
        /* three duplicates (RFC 5681), or three segments' worth SACKed
         * above snd_una (RFC 6675 IsLost), or with fewer than four
         * segments outstanding and nothing new to send, one less than
         * outstanding (early retransmit, RFC 5827): a small window never
         * produces three duplicates and would otherwise wait for the RTO */
        uint32_t oseg = (c->snd_max - c->snd_una + mss - 1) / mss;
        unsigned thresh = 3;
        if (oseg >= 2 && oseg < 4 && !seq_lt(c->snd_nxt, c->sb_seq + c->sb_len))
            thresh = oseg - 1;
        bool lost = c->dupacks >= thresh || tcp_sack_sacked(c) >= 3 * mss;
        if (lost && !c->in_recovery && seq_ge(c->snd_una, c->recover)) {
            /* RFC 6582 3.2 (2) / RFC 6675 5: enter fast recovery */
            uint32_t flight = c->snd_max - c->snd_una;
            c->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
            c->recover = c->snd_max;
            c->in_recovery = 1;
            st->cnt.c[TCP_CNT_FAST_RETRANSMIT]++;
            if (c->n_sb) {
                c->sack_rec = 1;
                c->cwnd = c->ssthresh;
                c->rtx_next = c->snd_una;
                tcp_sack_recover(st, c, now);
            } else {
                c->sack_rec = 0;
                rexmit_first(st, c, now);
                c->cwnd = c->ssthresh + 3 * mss;
            }
            tcp_rexmt_arm(st, c, now);
        } else if (c->in_recovery && c->sack_rec) {
            tcp_sack_recover(st, c, now);
        } else if (c->dupacks > 3 && c->in_recovery) {
            c->cwnd += mss; /* (4) inflate for each segment that left */
        }
    }
    return true;
}

/* Insert [l, r) into the out-of-order ranges, merging neighbours. Returns
 * false when a new range would exceed the bound. */
static bool ooo_add(struct tcp_stack *st, struct tcp_conn *c, uint32_t l, uint32_t r)
{
    for (unsigned i = 0; i < c->n_ooo; i++) {
        struct tcp_range *g = &c->ooo[i];
        if (seq_le(l, g->r) && seq_ge(r, g->l)) {
            g->l = seq_min(g->l, l);
            g->r = seq_max(g->r, r);
            /* absorb any other range now overlapping */
            for (unsigned j = 0; j < c->n_ooo;) {
                struct tcp_range *o = &c->ooo[j];
                if (j != i && seq_le(o->l, g->r) && seq_ge(o->r, g->l)) {
                    g->l = seq_min(g->l, o->l);
                    g->r = seq_max(g->r, o->r);
                    c->ooo[j] = c->ooo[--c->n_ooo];
                    if (i == c->n_ooo)
                        i = j, g = &c->ooo[i];
                    continue;
                }
                j++;
            }
            c->ooo_last = (uint8_t)i;
            return true;
        }
    }
    if (c->n_ooo >= st->ooo_max)
        return false;
    c->ooo[c->n_ooo].l = l;
    c->ooo[c->n_ooo].r = r;
    c->ooo_last = c->n_ooo++;
    return true;
}

static void fin_in(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);

/* An ACK this segment owes that may wait: at the batch's end inside a batch
 * (on what the upper layer sends meanwhile), else at the end of this
 * segment's processing (ack_now). */
static void ack_owed(struct tcp_stack *st, struct tcp_conn *c)
{
    if (st->batch && tcp_batch_enlist(st, c))
        c->ack_batch = 1;
    else
        c->ack_now = 1;
}

/* Pull ranges that now touch rcv_nxt into the in-order stream. */
static void ooo_drain(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    bool moved = true;
    while (moved) {
        moved = false;
        for (unsigned i = 0; i < c->n_ooo; i++) {
            if (seq_le(c->ooo[i].l, c->rcv_nxt)) {
                if (seq_gt(c->ooo[i].r, c->rcv_nxt)) {
                    uint32_t n = c->ooo[i].r - c->rcv_nxt;
                    c->rcv_nxt += n;
                    c->rb_len += n;
                    st->cnt.c[TCP_CNT_BYTES_IN] += n;
                }
                c->ooo[i] = c->ooo[--c->n_ooo];
                moved = true;
                break;
            }
        }
    }
    c->ooo_last = 0;
    if (c->rcv_fin_ooo && c->rcv_fin_seq == c->rcv_nxt) {
        c->rcv_fin_ooo = 0;
        fin_in(st, c, now);
    }
}

static void ring_write(struct tcp_stack *st, struct tcp_conn *c, uint32_t seq,
                       const uint8_t *p, uint32_t n)
{
    uint32_t off = seq & st->rcv_mask;
    uint32_t first = st->p.rcvbuf - off;
    if (n <= first) {
        memcpy(c->rcv_buf + off, p, n);
    } else {
        memcpy(c->rcv_buf + off, p, first);
        memcpy(c->rcv_buf, p + first, n - first);
    }
}

/* Seventh step: segment text, already trimmed to start at or after
 * rcv_nxt. Returns the sequence number just past the bytes kept. */
static void data_in(struct tcp_stack *st, struct tcp_conn *c, uint32_t seq,
                    const uint8_t *p, uint32_t n, uint64_t now)
{
    uint32_t right = c->rcv_rd + st->p.rcvbuf;
    if (seq_ge(seq, right)) {
        st->cnt.c[TCP_CNT_DROP_RCVBUF_FULL] += n;
        c->ack_now = 1;
        return;
    }
    if (seq_gt(seq + n, right)) {
        st->cnt.c[TCP_CNT_DROP_RCVBUF_FULL] += seq + n - right;
        n = right - seq;
    }
    if (seq == c->rcv_nxt) {
        ring_write(st, c, seq, p, n);
        c->rcv_nxt += n;
        c->rb_len += n;
        st->cnt.c[TCP_CNT_BYTES_IN] += n;
        if (c->n_ooo) {
            ooo_drain(st, c, now);
            c->ack_now = 1; /* a hole was filled: tell the sender at once */
        } else if (++c->delack_segs >= 2) {
            /* Every second segment (RFC 5681 4.2); inside a batch, once
             * at its end for all of them (a stretch ACK over at most a
             * burst, as receive offload gives the kernel's stack). */
            ack_owed(st, c);
        }
        tcp_event(st, c, TCP_EV_READABLE);
        return;
    }
    if (!ooo_add(st, c, seq, seq + n)) {
        st->cnt.c[TCP_CNT_OOO_DROPPED]++;
        c->ack_now = 1;
        return;
    }
    ring_write(st, c, seq, p, n);
    st->cnt.c[TCP_CNT_OOO_QUEUED]++;
    c->ack_now = 1; /* duplicate ACK with SACK blocks (RFC 5681 4.2) */
}

static void fin_in(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    c->rcv_nxt++;
    c->fin_rcvd = 1;
    /* A FIN that closes only the peer's half: inside a batch its ACK waits
     * for the batch's end (microseconds, as Linux delays it too), because
     * the upper layer, told of the close in the same batch, usually closes
     * as well and its FIN then carries the ACK: one segment, not two. */
    if (c->state == TCP_STATE_ESTABLISHED || c->state == TCP_STATE_SYN_RCVD)
        ack_owed(st, c);
    else
        c->ack_now = 1;
    tcp_event(st, c, TCP_EV_PEER_CLOSED | TCP_EV_READABLE);
    uint32_t sb_end = c->sb_seq + c->sb_len;
    bool our_fin_acked = c->app_shut && seq_gt(c->snd_una, sb_end);
    switch (c->state) {
    case TCP_STATE_SYN_RCVD:
    case TCP_STATE_ESTABLISHED:
        tcp_set_state(st, c, TCP_STATE_CLOSE_WAIT);
        break;
    case TCP_STATE_FIN_WAIT_1:
        if (our_fin_acked) {
            tcp_send_ack(st, c, now);
            enter_time_wait(st, c, now);
        } else {
            tcp_set_state(st, c, TCP_STATE_CLOSING);
        }
        break;
    case TCP_STATE_FIN_WAIT_2:
        tcp_send_ack(st, c, now);
        enter_time_wait(st, c, now);
        break;
    default:
        break;
    }
}

static bool seq_acceptable(const struct tcp_stack *st, const struct tcp_conn *c,
                           uint32_t seq, uint32_t seglen)
{
    uint32_t wnd = tcp_rcv_window(st, c);
    /* never less than what we advertised: the edge does not move left */
    if (seq_gt(c->rcv_adv, c->rcv_nxt + wnd))
        wnd = c->rcv_adv - c->rcv_nxt;
    if (seglen == 0) {
        /* RFC 9293's test, widened below rcv_nxt down to the rcv_nxt of
         * our last ACK (as Linux's tcp_sequence() does with rcv_wup): a
         * peer's ACK sent before our latest data reached it is still news
         * about its window, even when our window is zero */
        uint32_t lo = seq_lt(c->last_ack_sent, c->rcv_nxt) ? c->last_ack_sent : c->rcv_nxt;
        if (wnd == 0)
            return seq_le(lo, seq) && seq_le(seq, c->rcv_nxt);
        return seq_le(lo, seq) && seq_lt(seq, c->rcv_nxt + wnd);
    }
    if (wnd == 0)
        return false;
    return (seq_le(c->rcv_nxt, seq) && seq_lt(seq, c->rcv_nxt + wnd)) ||
           (seq_le(c->rcv_nxt, seq + seglen - 1) && seq_lt(seq + seglen - 1, c->rcv_nxt + wnd));
}

/* RFC 5961 7: challenge ACKs are rate limited per stack, so that a flood of
 * forged RSTs/SYNs cannot turn the stack into an ACK amplifier. */
static void challenge_ack(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (now - st->chack_epoch >= 1000000u) {
        st->chack_epoch = now;
        st->chack_left = st->p.challenge_ack_limit;
    }
    if (st->chack_left == 0) {
        st->cnt.c[TCP_CNT_CHALLENGE_ACK_LIMITED]++;
        return;
    }
    st->chack_left--;
    st->cnt.c[TCP_CNT_CHALLENGE_ACK]++;
    tcp_send_ack(st, c, now);
}

static int conn_input(struct tcp_stack *st, struct tcp_conn *c, struct seg *s, uint64_t now)
{
    struct tcp_hdr *h = &s->h;
    if (c->state == TCP_STATE_SYN_SENT)
        return syn_sent_input(st, c, s, now);

    /* a retransmitted SYN while our SYN-ACK is outstanding: answer again */
    if (c->state == TCP_STATE_SYN_RCVD && (h->flags & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) ==
                                              TCP_FLAG_SYN && h->seq == c->irs) {
        tcp_send_syn(st, c, now);
        return 0;
    }

    /* RFC 7323 5.3 PAWS */
    if (c->ts_ok && h->has_ts && !(h->flags & TCP_FLAG_RST) && seq_lt(h->ts_val, c->ts_recent)) {
        st->cnt.c[TCP_CNT_PAWS_REJECTED]++;
        tcp_send_ack(st, c, now);
        return -EPROTO;
    }

    uint32_t seglen = s->len + !!(h->flags & TCP_FLAG_SYN) + !!(h->flags & TCP_FLAG_FIN);
    /* first step: sequence number acceptable? */
    if (!seq_acceptable(st, c, h->seq, seglen)) {
        /* RFC 9293: a zero window still takes ACKs and RSTs at rcv_nxt */
        bool zero_wnd_ok = h->seq == c->rcv_nxt && !(h->flags & TCP_FLAG_SYN);
        if (!zero_wnd_ok) {
            st->cnt.c[TCP_CNT_DROP_OUT_OF_WINDOW]++;
            if (!(h->flags & TCP_FLAG_RST))
                tcp_send_ack(st, c, now);
            return -EPROTO;
        }
        if (s->len)
            st->cnt.c[TCP_CNT_DROP_RCVBUF_FULL] += s->len;
        s->len = 0;
        h->flags &= (uint8_t)~TCP_FLAG_FIN;
        c->ack_now = 1;
    }

    /* second step: RST (RFC 5961 3.2) */
    if (h->flags & TCP_FLAG_RST) {
        if (h->seq != c->rcv_nxt) {
            challenge_ack(st, c, now);
            return -EPROTO;
        }
        if (c->state == TCP_STATE_TIME_WAIT) {
            /* RFC 1337: a RST must not cut TIME_WAIT short (a late
             * duplicate ACK of ours draws one from the peer, and the entry
             * may still hold bytes the upper layer has not read) */
            st->cnt.c[TCP_CNT_TIME_WAIT_RST_IGNORED]++;
            return 0;
        }
        st->cnt.c[TCP_CNT_RST_IN]++;
        if ((c->state == TCP_STATE_LAST_ACK || c->state == TCP_STATE_CLOSING) &&
            seq_ge(c->snd_una, c->sb_seq + c->sb_len)) {
            /* both FINs were exchanged and every byte of ours is acked:
             * only the ACK of our FIN is missing, and a peer that already
             * dropped its TIME_WAIT entry answers the retransmitted FIN
             * with a RST. The conversation ended normally. */
            tcp_conn_closed(st, c, TCP_CLOSE_NORMAL);
            return 0;
        }
        c->reset_rcvd = 1;
        tcp_conn_closed(st, c, TCP_CLOSE_RESET);
        return 0;
    }

    /* fourth step: SYN in a synchronized state (RFC 5961 4.2) */
    if (h->flags & TCP_FLAG_SYN) {
        challenge_ack(st, c, now);
        return -EPROTO;
    }

    /* fifth step: ACK */
    if (!(h->flags & TCP_FLAG_ACK)) {
        st->cnt.c[TCP_CNT_DROP_BAD_FLAGS]++;
        return -EPROTO;
    }
    tcp_activity(st, c, now);
    if (c->state == TCP_STATE_SYN_RCVD) {
        if (seq_le(h->ack, c->snd_una) || seq_gt(h->ack, c->snd_max)) {
            st->cnt.c[TCP_CNT_DROP_BAD_ACK]++;
            tcp_send_rst_reply(st, s->in, h, s->len);
            return -EPROTO;
        }
        c->snd_una = h->ack;
        c->snd_wnd = (uint32_t)h->window << c->snd_wscale;
        c->max_sndwnd = c->snd_wnd;
        c->snd_wl1 = h->seq;
        c->snd_wl2 = h->ack;
        if (c->rtt_active && c->backoff == 0)
            rtt_sample(st, c, (uint32_t)(now - c->rtt_start));
        c->rtt_active = 0;
        enter_established(st, c, now);
        if (c->announced) {
            /* simultaneous open of our own tcp_connect */
            st->cnt.c[TCP_CNT_CONNECTED]++;
            tcp_event(st, c, TCP_EV_CONNECTED);
        } else {
            st->cnt.c[TCP_CNT_ACCEPTED]++;
            tcp_event(st, c, TCP_EV_ACCEPTED);
        }
    }

    /* timestamps: remember the newest TSval of an in-order segment
     * (RFC 7323 4.3) */
    if (c->ts_ok && h->has_ts && seq_le(h->seq, c->last_ack_sent) && seq_ge(h->ts_val, c->ts_recent))
        c->ts_recent = h->ts_val;

    if (!ack_process(st, c, s, now))
        return -EPROTO;

    uint32_t sb_end = c->sb_seq + c->sb_len;
    bool our_fin_acked = c->app_shut && seq_gt(c->snd_una, sb_end);
    switch (c->state) {
    case TCP_STATE_FIN_WAIT_1:
        if (our_fin_acked) {
            tcp_set_state(st, c, TCP_STATE_FIN_WAIT_2);
            if (c->user_closed) /* orphan: do not wait forever for the peer */
                tcp_timer_set(st, c, TCP_T_2MSL, now + st->p.rto_max_us);
        }
        break;
    case TCP_STATE_CLOSING:
        if (our_fin_acked)
            enter_time_wait(st, c, now);
        break;
    case TCP_STATE_LAST_ACK:
        if (our_fin_acked) {
            tcp_conn_closed(st, c, TCP_CLOSE_NORMAL);
            return 0;
        }
        break;
    case TCP_STATE_TIME_WAIT:
        if (h->flags & TCP_FLAG_FIN) {
            /* the peer did not get our last ACK: again, and restart */
            tcp_send_ack(st, c, now);
            tcp_timer_set(st, c, TCP_T_2MSL, now + st->p.time_wait_us);
        }
        return 0;
    default:
        break;
    }

    /* seventh step: text */
    uint32_t seq = h->seq;
    const uint8_t *p = s->data;
    uint32_t n = s->len;
    if (seq_lt(seq, c->rcv_nxt)) {
        uint32_t skip = c->rcv_nxt - seq;
        if (skip >= n) {
            /* nothing new (a duplicate); a FIN at rcv_nxt can remain */
            bool fin_here = (h->flags & TCP_FLAG_FIN) && seq + n == c->rcv_nxt;
            if (n)
                c->ack_now = 1;
            n = 0;
            if (!fin_here)
                h->flags &= (uint8_t)~TCP_FLAG_FIN;
            seq = c->rcv_nxt;
        } else {
            p += skip;
            n -= skip;
            seq = c->rcv_nxt;
        }
    }
    bool can_recv = c->state == TCP_STATE_ESTABLISHED || c->state == TCP_STATE_FIN_WAIT_1 ||
                    c->state == TCP_STATE_FIN_WAIT_2;
    if (n && can_recv) {
        if (c->user_closed) {
            /* nobody will read it: RFC 9293 3.6 lets us reset */
            tcp_send_rst_conn(st, c, now);
            tcp_conn_closed(st, c, TCP_CLOSE_ABORTED);
            return 0;
        }
        data_in(st, c, seq, p, n, now);
    }
    /* eighth step: FIN */
    if ((h->flags & TCP_FLAG_FIN) && !c->fin_rcvd && can_recv) {
        uint32_t fin_seq = seq + n;
        if (fin_seq == c->rcv_nxt)
            fin_in(st, c, now);
        else if (seq_gt(fin_seq, c->rcv_nxt)) {
            c->rcv_fin_ooo = 1;
            c->rcv_fin_seq = fin_seq;
        }
    } else if ((h->flags & TCP_FLAG_FIN) && c->fin_rcvd) {
        c->ack_now = 1; /* a retransmitted FIN: our ACK got lost */
    }
    if (c->zombie || c->state == TCP_STATE_TIME_WAIT)
        return 0;

    tcp_output(st, c, now);
    if (!c->ack_now && c->last_ack_sent != c->rcv_nxt && !c->tmr[TCP_T_DELACK])
        tcp_timer_set(st, c, TCP_T_DELACK, now + st->p.delack_us);
    return 0;
}

int tcp_input(struct tcp_stack *st, const struct tcp_seg_in *in, uint64_t now)
{
    struct seg s;
    st->cnt.c[TCP_CNT_SEG_IN]++;
    if (!in || tcp_parse(in->data, in->len, &s.h) < 0) {
        st->cnt.c[TCP_CNT_DROP_MALFORMED]++;
        return -EINVAL;
    }
    s.in = in;
    s.data = in->data + s.h.hdr_len;
    s.len = in->len - s.h.hdr_len;
    uint8_t f = s.h.flags;
    if (((f & TCP_FLAG_SYN) && (f & (TCP_FLAG_FIN | TCP_FLAG_RST))) || s.h.sport == 0 ||
        s.h.dport == 0) {
        st->cnt.c[TCP_CNT_DROP_BAD_FLAGS]++;
        return -EINVAL;
    }
    int r;
    struct tcp_conn *c = tcp_conn_lookup(st, in->daddr, s.h.dport, in->saddr, s.h.sport);
    if (c && c->state == TCP_STATE_TIME_WAIT && (f & (TCP_FLAG_SYN | TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_SYN &&
        (seq_gt(s.h.seq, c->rcv_nxt) ||
         (c->ts_ok && s.h.has_ts && seq_gt(s.h.ts_val, c->ts_recent))) && !c->in_evq) {
        /* RFC 9293 3.6.1 / RFC 6191: a new incarnation may reuse a
         * TIME_WAIT 4-tuple when its SYN is clearly newer */
        st->cnt.c[TCP_CNT_TIME_WAIT_REUSED]++;
        c->user_closed = 1;
        tcp_conn_closed(st, c, TCP_CLOSE_NORMAL);
        tcp_dispatch_now(st); /* frees the entry before the new one is built */
        c = NULL;
    }
    if (!c)
        r = listen_input(st, &s, now);
    else
        r = conn_input(st, c, &s, now);
    tcp_dispatch(st);
    return r;
}
