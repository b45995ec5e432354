/* Sending: segment construction (options, window), the send loop with
 * congestion and flow control, ACKs and RSTs, and the per-connection timers
 * (RFC 6298 retransmission, persist, delayed ACK, keepalive, idle,
 * TIME_WAIT). */
#include <string.h>

#include "tcp_pvt.h"

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static bool can_send_data(const struct tcp_conn *c);

int tcp_emit(struct tcp_stack *st, struct tcp_seg_out *o)
{
    st->cnt.c[TCP_CNT_SEG_OUT]++;
    if (o->flags & TCP_FLAG_RST)
        st->cnt.c[TCP_CNT_RST_OUT]++;
    st->cnt.c[TCP_CNT_BYTES_OUT] += o->payload_len[0] + o->payload_len[1];
    int r = st->ops.output(st->ctx, o);
    if (r < 0)
        st->cnt.c[TCP_CNT_SEG_OUT_FAIL]++;
    return r;
}

/* Free receive space: the ring holds the readable bytes and, beyond
 * rcv_nxt, the out-of-order ones in place, so the right edge is always
 * (first unread byte) + rcvbuf and never moves left. */
uint32_t tcp_rcv_window(const struct tcp_stack *st, const struct tcp_conn *c)
{
    uint32_t right = c->rcv_rd + st->p.rcvbuf;
    return seq_gt(right, c->rcv_nxt) ? right - c->rcv_nxt : 0;
}

/* Payload bytes per segment: the MSS counts no options (RFC 6691). */
static uint32_t eff_mss(const struct tcp_conn *c)
{
    return c->mss - (c->ts_ok ? 12u : 0u);
}

uint8_t tcp_opts_syn(const struct tcp_stack *st, const struct tcp_conn *c, uint8_t *o,
                     uint32_t tsval)
{
    uint8_t n = 0;
    o[n++] = 2; o[n++] = 4;
    o[n++] = (uint8_t)(st->p.mss >> 8); o[n++] = (uint8_t)st->p.mss;
    if (c->ts_ok) {
        if (c->sack_ok) { o[n++] = 4; o[n++] = 2; }
        else { o[n++] = 1; o[n++] = 1; }
        o[n++] = 8; o[n++] = 10;
        put32(o + n, tsval); n += 4;
        put32(o + n, c->ts_recent); n += 4;
    } else if (c->sack_ok) {
        o[n++] = 1; o[n++] = 1; o[n++] = 4; o[n++] = 2;
    }
    if (c->ws_ok) {
        o[n++] = 1; o[n++] = 3; o[n++] = 3; o[n++] = c->rcv_wscale;
    }
    return n;
}

/* Options of a non-SYN segment: timestamps, then SACK blocks for the
 * out-of-order ranges, the most recently changed first (RFC 2018 4).
 * SACK_ROOM is how many option bytes the segment has left for SACK: the
 * MSS counts payload and timestamps only, so on a data segment the blocks
 * must fit in what the payload leaves unused, or the packet exceeds the
 * MTU and is dropped (and so is every retransmission while holes last). */
static uint8_t opts_data(const struct tcp_stack *st, const struct tcp_conn *c, uint8_t *o,
                         uint64_t now, uint32_t sack_room)
{
    uint8_t n = 0;
    if (c->ts_ok) {
        o[n++] = 1; o[n++] = 1; o[n++] = 8; o[n++] = 10;
        put32(o + n, tcp_ts_now(st, now)); n += 4;
        put32(o + n, c->ts_recent); n += 4;
    }
    unsigned fit = sack_room >= 12 ? (sack_room - 4) / 8 : 0;
    if (c->sack_ok && c->n_ooo && fit > 0) {
        unsigned max = c->ts_ok ? 3 : 4;
        if (max > fit)
            max = fit;
        unsigned nb = c->n_ooo < max ? c->n_ooo : max;
        o[n++] = 1; o[n++] = 1; o[n++] = 5; o[n++] = (uint8_t)(2 + 8 * nb);
        unsigned first = c->ooo_last < c->n_ooo ? c->ooo_last : 0;
        put32(o + n, c->ooo[first].l); put32(o + n + 4, c->ooo[first].r); n += 8;
        for (unsigned i = 0, k = 1; i < c->n_ooo && k < nb; i++) {
            if (i == first)
                continue;
            put32(o + n, c->ooo[i].l); put32(o + n + 4, c->ooo[i].r); n += 8;
            k++;
        }
    }
    return n;
}

static void fill_window(const struct tcp_stack *st, struct tcp_conn *c, struct tcp_seg_out *o)
{
    uint32_t wnd = tcp_rcv_window(st, c);
    uint32_t shift = (o->flags & TCP_FLAG_SYN) ? 0 : c->rcv_wscale;
    uint32_t f = wnd >> shift;
    o->window = (uint16_t)(f > 65535u ? 65535u : f);
    uint32_t edge = c->rcv_nxt + ((uint32_t)o->window << shift);
    if (seq_gt(edge, c->rcv_adv) || c->rcv_adv == 0)
        c->rcv_adv = edge;
}

static void seg_init(struct tcp_conn *c, struct tcp_seg_out *o)
{
    memset(o, 0, offsetof(struct tcp_seg_out, opt));
    o->payload[0] = o->payload[1] = NULL;
    o->payload_len[0] = o->payload_len[1] = 0;
    o->laddr = c->laddr;
    o->raddr = c->raddr;
    o->lport = c->lport;
    o->rport = c->rport;
}

/* Send [seq, seq+len) from the send ring with `flags` (ACK added unless
 * SYN_SENT's first SYN). Every segment carries the current ACK, so the
 * delayed-ACK state is reset here. */
void tcp_send_segment(struct tcp_stack *st, struct tcp_conn *c, uint32_t seq, uint32_t len,
                      uint8_t flags, uint64_t now)
{
    struct tcp_seg_out o;
    seg_init(c, &o);
    o.seq = seq;
    o.flags = flags;
    if (c->state != TCP_STATE_SYN_SENT || !(flags & TCP_FLAG_SYN)) {
        o.flags |= TCP_FLAG_ACK;
        o.ack = c->rcv_nxt;
    }
    if (flags & TCP_FLAG_SYN)
        o.opt_len = tcp_opts_syn(st, c, o.opt, tcp_ts_now(st, now));
    else if (!(flags & TCP_FLAG_RST))
        o.opt_len = opts_data(st, c, o.opt, now, len < eff_mss(c) ? eff_mss(c) - len : 0);
    if (len) {
        uint32_t off = seq & st->snd_mask;
        uint32_t first = st->p.sndbuf - off;
        o.payload[0] = c->snd_buf + off;
        o.payload_len[0] = len < first ? len : first;
        if (len > first) {
            o.payload[1] = c->snd_buf;
            o.payload_len[1] = len - first;
        }
    }
    fill_window(st, c, &o);
    if (o.flags & TCP_FLAG_ACK) {
        c->last_ack_sent = c->rcv_nxt;
        c->delack_segs = 0;
        c->ack_now = 0;
        if (c->tmr[TCP_T_DELACK])
            tcp_timer_stop(st, c, TCP_T_DELACK);
    }
    c->last_activity = now;
    tcp_emit(st, &o);
}

/* Sequence number for a segment without data. Not snd_nxt: after an RTO
 * rewinds snd_nxt the peer may already hold bytes beyond it, and a pure ACK
 * below its rcv_nxt is refused as an old duplicate (two stacks can then
 * ping-pong ACKs while neither learns anything). snd_max, unless that lies
 * beyond the peer's window (it shrank, or our last bytes were dropped into
 * a zero window): then the window's right edge, which the peer accepts even
 * with a zero window. Linux's tcp_acceptable_seq() makes the same choice. */
static uint32_t acceptable_seq(const struct tcp_conn *c)
{
    uint32_t edge = c->snd_una + c->snd_wnd;
    return seq_gt(c->snd_max, edge) ? edge : c->snd_max;
}

void tcp_send_ack(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    tcp_send_segment(st, c, acceptable_seq(c), 0, TCP_FLAG_ACK, now);
}

/* In the peer's window but maybe not at its rcv_nxt: the peer then sends a
 * challenge ACK (RFC 5961 3.2), which finds no connection here and gets a
 * RST with seq = its ACK, exactly at rcv_nxt. */
void tcp_send_rst_conn(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (c->state == TCP_STATE_SYN_SENT)
        return; /* nothing to reset: the peer has not answered */
    tcp_send_segment(st, c, acceptable_seq(c), 0, TCP_FLAG_RST, now);
}

void tcp_send_syn(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    uint8_t f = c->state == TCP_STATE_SYN_SENT ? TCP_FLAG_SYN : TCP_FLAG_SYN | TCP_FLAG_ACK;
    if (c->backoff == 0 && !c->rtt_active) {
        /* time the handshake (both ways), so that even a short connection
         * has an RTO from a measurement rather than the 1 s initial one */
        c->rtt_active = 1;
        c->rtt_start = now;
    }
    tcp_send_segment(st, c, c->iss, 0, f, now);
    c->snd_nxt = c->iss + 1;
    if (seq_lt(c->snd_max, c->snd_nxt))
        c->snd_max = c->snd_nxt;
    if (!c->tmr[TCP_T_REXMT])
        tcp_rexmt_arm(st, c, now);
}

/* RFC 9293 3.10.7.1: reply to a segment that has no connection. */
void tcp_send_rst_reply(struct tcp_stack *st, const struct tcp_seg_in *in,
                        const struct tcp_hdr *h, uint32_t plen)
{
    if (h->flags & TCP_FLAG_RST)
        return;
    struct tcp_seg_out o;
    memset(&o, 0, sizeof(o));
    o.laddr = in->daddr;
    o.raddr = in->saddr;
    o.lport = h->dport;
    o.rport = h->sport;
    if (h->flags & TCP_FLAG_ACK) {
        o.seq = h->ack;
        o.flags = TCP_FLAG_RST;
    } else {
        o.seq = 0;
        o.ack = h->seq + plen + !!(h->flags & TCP_FLAG_SYN) + !!(h->flags & TCP_FLAG_FIN);
        o.flags = TCP_FLAG_RST | TCP_FLAG_ACK;
    }
    tcp_emit(st, &o);
}

uint32_t tcp_rto_cur(const struct tcp_stack *st, const struct tcp_conn *c)
{
    uint64_t r = (uint64_t)c->rto << (c->backoff > 20 ? 20 : c->backoff);
    return r > st->p.rto_max_us ? st->p.rto_max_us : (uint32_t)r;
}

/* The retransmission timer, or first a tail loss probe (RFC 8985 7): when
 * the last segments of a flight are lost no duplicate ACK ever comes, and
 * only the RTO (200 ms at least) would notice. A probe after two RTTs
 * (plus a delayed-ACK allowance when one segment is out) draws the SACK or
 * duplicate ACK that fast recovery needs. Once per flight: an ACK that
 * advances snd_una allows the next one. Not used when it would not come
 * before the RTO anyway. */
void tcp_rexmt_arm(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    uint32_t rto = tcp_rto_cur(st, c);
    c->tlp_pending = 0;
    if (c->srtt && !c->tlp_done && !c->in_recovery && c->backoff == 0 && can_send_data(c) &&
        seq_lt(c->snd_una, c->snd_max)) {
        uint64_t pto = 2ull * c->srtt;
        if (c->snd_max - c->snd_una <= eff_mss(c))
            pto += st->p.delack_us;
        if (pto < rto) {
            c->tlp_pending = 1;
            tcp_timer_set(st, c, TCP_T_REXMT, now + pto);
            return;
        }
    }
    tcp_timer_set(st, c, TCP_T_REXMT, now + rto);
}

/* The probe: one new segment if the windows allow one, else the last
 * segment sent again. Then the real RTO. */
static void tlp_fire(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    c->tlp_pending = 0;
    c->tlp_done = 1;
    st->cnt.c[TCP_CNT_TLP_PROBE]++;
    uint32_t sb_end = c->sb_seq + c->sb_len;
    uint32_t sent_end = seq_min(sb_end, c->snd_max);
    uint32_t mss = eff_mss(c);
    uint32_t flight = c->snd_nxt - c->snd_una;
    if (seq_lt(c->snd_nxt, sb_end) && c->snd_wnd > flight + mss) {
        uint32_t len = sb_end - c->snd_nxt < mss ? sb_end - c->snd_nxt : mss;
        tcp_send_segment(st, c, c->snd_nxt, len, TCP_FLAG_ACK, now);
        c->snd_nxt += len;
        if (seq_gt(c->snd_nxt, c->snd_max))
            c->snd_max = c->snd_nxt;
    } else if (seq_lt(c->snd_una, sent_end)) {
        uint32_t len = sent_end - c->snd_una < mss ? sent_end - c->snd_una : mss;
        bool fin = c->app_shut && seq_gt(c->snd_max, sb_end);
        st->cnt.c[TCP_CNT_RETRANSMIT]++;
        c->n_retrans++;
        c->rtt_active = 0;
        tcp_send_segment(st, c, sent_end - len, len, TCP_FLAG_ACK | (fin ? TCP_FLAG_FIN : 0), now);
    }
    tcp_timer_set(st, c, TCP_T_REXMT, now + tcp_rto_cur(st, c));
}

void tcp_activity(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    (void)st;
    c->last_activity = now;
    c->kprobes = 0;
}

static bool can_send_data(const struct tcp_conn *c)
{
    switch (c->state) {
    case TCP_STATE_ESTABLISHED:
    case TCP_STATE_CLOSE_WAIT:
    case TCP_STATE_FIN_WAIT_1:
    case TCP_STATE_CLOSING:
    case TCP_STATE_LAST_ACK:
        return true;
    default:
        return false;
    }
}

/* The send loop: as many segments as the peer's window, the congestion
 * window, sender SWS avoidance (RFC 9293 3.8.6.2.1) and Nagle (off unless
 * asked) allow; FIN rides on the last segment once the upper layer shut
 * down. Ends with a pure ACK if one is owed and nothing carried it. */
void tcp_output(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (!can_send_data(c)) {
        if (c->ack_now && c->state != TCP_STATE_SYN_SENT && c->state != TCP_STATE_CLOSED)
            tcp_send_ack(st, c, now);
        return;
    }
    uint32_t sb_end = c->sb_seq + c->sb_len;
    uint32_t mss = eff_mss(c);
    for (unsigned guard = 0; guard < 4096; guard++) {
        bool fin_sent = c->app_shut && seq_gt(c->snd_nxt, sb_end);
        uint32_t avail = seq_lt(c->snd_nxt, sb_end) ? sb_end - c->snd_nxt : 0;
        uint32_t flight = c->snd_nxt - c->snd_una;
        /* in SACK recovery the congestion window limits the pipe (bytes
         * estimated in the network), not everything unacknowledged */
        uint32_t in_net = c->in_recovery && c->sack_rec ? tcp_sack_pipe(c) : flight;
        uint32_t usable = c->snd_wnd > flight ? c->snd_wnd - flight : 0;
        /* limited transmit (RFC 3042): each of the first two duplicate
         * ACKs lets one new segment out beyond cwnd, so that a small
         * window still produces the three duplicates fast retransmit needs */
        uint32_t cwnd = c->cwnd;
        if (!c->in_recovery && c->dupacks && c->dupacks <= 2)
            cwnd += c->dupacks * mss;
        uint32_t cusable = cwnd > in_net ? cwnd - in_net : 0;
        if (cusable < usable)
            usable = cusable;
        uint32_t len = avail < usable ? avail : usable;
        if (len > mss)
            len = mss;
        bool fin = c->app_shut && !fin_sent && len == avail;
        if (len == 0 && !fin)
            break;
        if (len < mss && len < avail) {
            /* window-limited runt: wait unless it is half the largest
             * window the peer ever offered */
            if (len < c->max_sndwnd / 2)
                break;
        } else if (len < mss && st->p.nagle && flight > 0 && !fin) {
            break;
        }
        uint8_t flags = TCP_FLAG_ACK;
        if (len && len == avail)
            flags |= TCP_FLAG_PSH;
        if (fin)
            flags |= TCP_FLAG_FIN;
        if (seq_lt(c->snd_nxt, c->snd_max)) {
            st->cnt.c[TCP_CNT_RETRANSMIT]++;
            c->n_retrans++;
            c->rtt_active = 0; /* Karn: never time a retransmitted segment */
        } else if (!c->rtt_active && len) {
            c->rtt_active = 1;
            c->rtt_seq = c->snd_nxt + len;
            c->rtt_start = now;
        }
        tcp_send_segment(st, c, c->snd_nxt, len, flags, now);
        c->snd_nxt += len + (fin ? 1 : 0);
        if (seq_gt(c->snd_nxt, c->snd_max))
            c->snd_max = c->snd_nxt;
        if (!c->tmr[TCP_T_REXMT])
            tcp_rexmt_arm(st, c, now);
        if (c->tmr[TCP_T_PERSIST])
            tcp_timer_stop(st, c, TCP_T_PERSIST);
        if (fin)
            break;
    }
    /* data waiting, nothing in flight to bring a window update back, and
     * a window that is zero or too small to use without SWS: the persist
     * timer probes (RFC 9293 3.8.6.1) or, for a small window, sends what
     * fits (the SWS override timeout of RFC 1122 4.2.3.4) */
    if (c->snd_nxt == c->snd_una && seq_lt(c->snd_nxt, sb_end) && !c->tmr[TCP_T_PERSIST]) {
        if (c->tmr[TCP_T_REXMT])
            tcp_timer_stop(st, c, TCP_T_REXMT);
        tcp_timer_set(st, c, TCP_T_PERSIST, now + tcp_rto_cur(st, c));
    }
    if (c->ack_now)
        tcp_send_ack(st, c, now);
}

static void give_up(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    tcp_send_rst_conn(st, c, now);
    tcp_conn_closed(st, c, TCP_CLOSE_TIMEOUT);
}

static void rexmt_fire(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (c->tlp_pending && c->snd_una != c->snd_max) {
        tlp_fire(st, c, now);
        return;
    }
    c->tlp_pending = 0;
    st->cnt.c[TCP_CNT_RTO_EXPIRED]++;
    if (c->state == TCP_STATE_SYN_SENT || c->state == TCP_STATE_SYN_RCVD) {
        if (++c->retries > st->p.syn_retries) {
            tcp_conn_closed(st, c, TCP_CLOSE_TIMEOUT);
            return;
        }
        c->backoff++;
        st->cnt.c[TCP_CNT_RETRANSMIT]++;
        c->n_retrans++;
        c->rtt_active = 0;
        tcp_send_syn(st, c, now);
        return;
    }
    if (c->snd_una == c->snd_max)
        return; /* everything acknowledged meanwhile */
    if (++c->retries > st->p.max_retries) {
        give_up(st, c, now);
        return;
    }
    /* RFC 5681 (4): after an RTO, ssthresh = max(FlightSize / 2, 2 SMSS),
     * cwnd = 1 SMSS; RFC 6298 5.5: back off; 5.4: retransmit the earliest
     * unacknowledged segment (go-back-N from snd_una). */
    uint32_t mss = eff_mss(c);
    uint32_t flight = c->snd_max - c->snd_una;
    c->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
    c->cwnd = mss;
    c->backoff++;
    c->dupacks = 0;
    c->in_recovery = 0;
    c->sack_rec = 0;
    tcp_sack_clear(c); /* the peer may renege: start over from snd_una */
    c->recover = c->snd_max;
    c->rtt_active = 0;
    c->snd_nxt = c->snd_una;
    tcp_output(st, c, now);
    if (!c->tmr[TCP_T_REXMT] && !c->tmr[TCP_T_PERSIST])
        tcp_rexmt_arm(st, c, now);
}

static void persist_fire(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    uint32_t sb_end = c->sb_seq + c->sb_len;
    if (c->snd_nxt != c->snd_una || !seq_lt(c->snd_nxt, sb_end))
        return; /* something is in flight again, or nothing to send */
    if (c->snd_wnd) {
        /* a small window the SWS rule would not use: use it now */
        uint32_t len = sb_end - c->snd_nxt;
        if (len > c->snd_wnd)
            len = c->snd_wnd;
        if (len > eff_mss(c))
            len = eff_mss(c);
        if (seq_lt(c->snd_nxt, c->snd_max)) {
            st->cnt.c[TCP_CNT_RETRANSMIT]++;
            c->n_retrans++;
        }
        tcp_send_segment(st, c, c->snd_nxt, len, TCP_FLAG_ACK | TCP_FLAG_PSH, now);
        c->snd_nxt += len;
        if (seq_gt(c->snd_nxt, c->snd_max))
            c->snd_max = c->snd_nxt;
        tcp_rexmt_arm(st, c, now);
        return;
    }
    if (++c->retries > st->p.max_retries) {
        give_up(st, c, now);
        return;
    }
    /* an old sequence number (snd_una - 1) with no data: the peer must
     * answer with an ACK carrying its current window, and no byte beyond
     * the window is ever in flight (the probe Linux sends when nothing
     * fits) */
    st->cnt.c[TCP_CNT_PERSIST_PROBE]++;
    tcp_send_segment(st, c, c->snd_una - 1, 0, TCP_FLAG_ACK, now);
    if (c->backoff < 16)
        c->backoff++;
    tcp_timer_set(st, c, TCP_T_PERSIST, now + tcp_rto_cur(st, c));
}

static void keep_fire(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    uint64_t idle_at = c->last_activity + st->p.keepalive_idle_us;
    if (now < idle_at) {
        tcp_timer_set(st, c, TCP_T_KEEP, idle_at);
        return;
    }
    if (c->kprobes >= st->p.keepalive_probes) {
        give_up(st, c, now);
        return;
    }
    c->kprobes++;
    st->cnt.c[TCP_CNT_KEEPALIVE_PROBE]++;
    /* seq one below snd_una: an old byte the peer must ACK */
    uint64_t last = c->last_activity;
    tcp_send_segment(st, c, c->snd_una - 1, 0, TCP_FLAG_ACK, now);
    c->last_activity = last; /* our own probe is no sign of life */
    tcp_timer_set(st, c, TCP_T_KEEP, now + st->p.keepalive_intvl_us);
}

void tcp_timers_fire(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    for (int t = 0; t < TCP_T_MAX && !c->zombie; t++) {
        if (!c->tmr[t] || c->tmr[t] > now)
            continue;
        c->tmr[t] = 0;
        switch ((enum tcp_timer)t) {
        case TCP_T_REXMT:
            rexmt_fire(st, c, now);
            break;
        case TCP_T_PERSIST:
            persist_fire(st, c, now);
            break;
        case TCP_T_DELACK:
            st->cnt.c[TCP_CNT_DELACK_TIMER]++;
            tcp_send_ack(st, c, now);
            break;
        case TCP_T_KEEP:
            if (st->p.keepalive_idle_us && c->state == TCP_STATE_ESTABLISHED)
                keep_fire(st, c, now);
            break;
        case TCP_T_IDLE:
            if (c->idle_us && now - c->last_activity >= c->idle_us)
                give_up(st, c, now);
            else if (c->idle_us)
                tcp_timer_set(st, c, TCP_T_IDLE, c->last_activity + c->idle_us);
            break;
        case TCP_T_2MSL:
            tcp_conn_closed(st, c, TCP_CLOSE_NORMAL);
            break;
        default:
            break;
        }
    }
    if (!c->zombie) {
        /* re-file under the earliest remaining deadline */
        uint64_t keep = c->tmr[TCP_T_REXMT];
        if (keep)
            tcp_timer_set(st, c, TCP_T_REXMT, keep);
        else
            for (int t = 0; t < TCP_T_MAX; t++)
                if (c->tmr[t]) {
                    tcp_timer_set(st, c, (enum tcp_timer)t, c->tmr[t]);
                    break;
                }
    }
}
