/* Sender side of SACK (RFC 2018): a small scoreboard of the ranges the peer
 * reports above snd_una, and loss recovery driven by it, after RFC 6675:
 * during recovery every hole below the highest SACKed byte is presumed
 * lost and retransmitted as the pipe (bytes estimated in the network)
 * falls below cwnd, so several losses in one window are repaired in one
 * round trip instead of one per round trip (NewReno) or by an RTO. */
#include "tcp_pvt.h"

static uint32_t eff_mss(const struct tcp_conn *c) { return c->mss - (c->ts_ok ? 12u : 0u); }

void tcp_sack_clear(struct tcp_conn *c)
{
    c->n_sb = 0;
}

static void sb_trim(struct tcp_conn *c)
{
    for (unsigned i = 0; i < c->n_sb;) {
        struct tcp_range *g = &c->sb[i];
        if (seq_le(g->r, c->snd_una)) {
            *g = c->sb[--c->n_sb];
            continue;
        }
        if (seq_lt(g->l, c->snd_una))
            g->l = c->snd_una;
        i++;
    }
}

static uint32_t sb_bytes(const struct tcp_conn *c)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < c->n_sb; i++)
        n += c->sb[i].r - c->sb[i].l;
    return n;
}

static void sb_add(struct tcp_conn *c, uint32_t l, uint32_t r)
{
    for (unsigned i = 0; i < c->n_sb; i++) {
        struct tcp_range *g = &c->sb[i];
        if (seq_le(l, g->r) && seq_ge(r, g->l)) {
            g->l = seq_min(g->l, l);
            g->r = seq_max(g->r, r);
            for (unsigned j = 0; j < c->n_sb;) {
                struct tcp_range *o = &c->sb[j];
                if (j != i && seq_le(o->l, g->r) && seq_ge(o->r, g->l)) {
                    g->l = seq_min(g->l, o->l);
                    g->r = seq_max(g->r, o->r);
                    c->sb[j] = c->sb[--c->n_sb];
                    if (i == c->n_sb)
                        i = j, g = &c->sb[i];
                    continue;
                }
                j++;
            }
            return;
        }
    }
    if (c->n_sb < TCP_SACK_SB_MAX) {
        c->sb[c->n_sb].l = l;
        c->sb[c->n_sb].r = r;
        c->n_sb++;
    }
    /* full: the block is forgotten; recovery then treats it as a hole and
     * may resend bytes the peer has, which costs bandwidth, not data */
}

uint32_t tcp_sack_update(struct tcp_conn *c, const struct tcp_hdr *h)
{
    sb_trim(c);
    uint32_t before = sb_bytes(c);
    for (unsigned b = 0; b < h->n_sack; b++) {
        uint32_t l = h->sack[b][0], r = h->sack[b][1];
        /* ignore empty, old (D-SACK) or impossible blocks */
        if (!seq_lt(l, r) || seq_le(r, c->snd_una) || seq_gt(r, c->snd_max))
            continue;
        if (seq_lt(l, c->snd_una))
            l = c->snd_una;
        sb_add(c, l, r);
    }
    uint32_t after = sb_bytes(c);
    return after > before ? after - before : 0;
}

uint32_t tcp_sack_sacked(const struct tcp_conn *c)
{
    return sb_bytes(c);
}

static uint32_t sb_high(const struct tcp_conn *c)
{
    uint32_t hi = c->snd_una;
    for (unsigned i = 0; i < c->n_sb; i++)
        hi = seq_max(hi, c->sb[i].r);
    return hi;
}

/* SACKed bytes in [snd_una, x) */
static uint32_t sacked_below(const struct tcp_conn *c, uint32_t x)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < c->n_sb; i++) {
        uint32_t l = c->sb[i].l, r = seq_min(c->sb[i].r, x);
        if (seq_lt(l, r))
            n += r - l;
    }
    return n;
}

/* RFC 6675 3 (pipe), simplified: bytes above the highest SACK are in
 * flight; holes below it are presumed lost unless retransmitted in this
 * recovery (below rtx_next), then they are in flight again. */
uint32_t tcp_sack_pipe(const struct tcp_conn *c)
{
    if (!c->n_sb)
        return c->snd_max - c->snd_una;
    uint32_t hi = sb_high(c);
    uint32_t rtx = seq_lt(c->rtx_next, hi) ? c->rtx_next : hi;
    uint32_t holes_rtx = 0;
    if (seq_gt(rtx, c->snd_una))
        holes_rtx = (rtx - c->snd_una) - sacked_below(c, rtx);
    return (c->snd_max - hi) + holes_rtx;
}

/* The first byte at or after `from` that the peer has not SACKed, and the
 * end of that hole (the next SACKed byte above it). */
static uint32_t next_hole(const struct tcp_conn *c, uint32_t from, uint32_t *end)
{
    uint32_t s = from;
    for (bool moved = true; moved;) {
        moved = false;
        for (unsigned i = 0; i < c->n_sb; i++)
            if (seq_le(c->sb[i].l, s) && seq_lt(s, c->sb[i].r)) {
                s = c->sb[i].r;
                moved = true;
            }
    }
    uint32_t e = sb_high(c);
    for (unsigned i = 0; i < c->n_sb; i++)
        if (seq_gt(c->sb[i].l, s) && seq_lt(c->sb[i].l, e))
            e = c->sb[i].l;
    *end = e;
    return s;
}

/* Retransmit presumed-lost holes while the pipe has room; new data is
 * tcp_output's job afterwards (it also measures the pipe in recovery). */
void tcp_sack_recover(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    uint32_t hi = sb_high(c);
    uint32_t sb_end = c->sb_seq + c->sb_len;
    uint32_t mss = eff_mss(c);
    if (seq_lt(c->rtx_next, c->snd_una))
        c->rtx_next = c->snd_una;
    for (unsigned guard = 0; guard < 64; guard++) {
        if (tcp_sack_pipe(c) >= c->cwnd)
            break;
        uint32_t end;
        uint32_t s = next_hole(c, c->rtx_next, &end);
        if (!seq_lt(s, hi) || !seq_lt(s, sb_end))
            break;
        uint32_t len = end - s;
        if (len > mss)
            len = mss;
        if (len > sb_end - s)
            len = sb_end - s;
        st->cnt.c[TCP_CNT_RETRANSMIT]++;
        c->n_retrans++;
        c->rtt_active = 0;
        tcp_send_segment(st, c, s, len, TCP_FLAG_ACK, now);
        c->rtx_next = s + len;
    }
}
