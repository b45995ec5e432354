/* An in-memory network for TCP core tests: two stacks whose output
 * segments are serialized (tcp_seg_out_write, checksum checked on the way),
 * optionally lost, duplicated or delayed out of order, and delivered to the
 * other stack's tcp_input at a simulated time. A side may instead "capture"
 * its output so a test can inspect segments and answer with crafted ones.
 *
 * Test-only code: it allocates freely. */
#ifndef TERN_TCP_TEST_HARNESS_H
#define TERN_TCP_TEST_HARNESS_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tcp.h"

#define NET_QCAP 8192
#define NET_CAPCAP 4096
#define ADDR_A 0xC6120002u /* 198.18.0.2, client side */
#define ADDR_B 0xC6120001u /* 198.18.0.1, server side */

struct pkt {
    uint64_t at;
    uint64_t order; /* FIFO among equal times */
    int to;
    uint32_t saddr, daddr;
    uint32_t len;
    uint8_t data[TCP_HDR_LEN_MAX + 9000];
};

struct cap {
    uint64_t at;
    struct tcp_hdr h;
    uint32_t saddr, daddr;
    uint32_t plen;
    uint8_t raw[TCP_HDR_LEN_MAX + 64]; /* header + first payload bytes */
};

struct app {
    struct net *net;
    int id;
    tcp_handle_t h, lh;
    int accepted, connected, readable, writable, peer_closed, closed;
    enum tcp_close_reason reason;
    bool auto_read, eof, refuse;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    const uint8_t *tx;
    size_t tx_len, tx_off;
    bool shut_after_tx, close_on_eof, close_pending;
    size_t read_chunk; /* a slow reader: at most this much per event or tick */
};

struct net {
    struct tcp_stack *st[2];
    struct app app[2];
    uint64_t now;
    struct pkt *q;
    unsigned qn;
    unsigned loss_pct, dup_pct, reorder_pct;
    uint32_t latency_us;
    uint64_t rng;
    bool capture[2];
    struct cap *cap[2];
    unsigned ncap[2];
    unsigned delivered, dropped, bad_csum;
    uint64_t order;
    const uint8_t *oracle[2];
    size_t oracle_len[2];
    uint32_t oracle_isn[2];
    unsigned oracle_bad;
    unsigned blackholed;
    uint16_t mss[2]; /* each stack's own MSS: no segment it sends may carry
                      * more payload + options than this (else it would
                      * exceed the path MTU on a real link) */
};

static inline uint32_t net_rand(struct net *n)
{
    n->rng ^= n->rng << 13;
    n->rng ^= n->rng >> 7;
    n->rng ^= n->rng << 17;
    return (uint32_t)(n->rng >> 11);
}

static inline void app_pump(struct app *a)
{
    struct net *n = a->net;
    while (a->tx && a->tx_off < a->tx_len) {
        ssize_t r = tcp_send(n->st[a->id], a->h, a->tx + a->tx_off, a->tx_len - a->tx_off, n->now);
        if (r <= 0)
            break;
        a->tx_off += (size_t)r;
    }
    bool tx_done = !a->tx || a->tx_off == a->tx_len;
    if (tx_done && a->close_pending) {
        /* close only once everything is queued and the peer is done */
        a->close_pending = false;
        a->shut_after_tx = false;
        tcp_close(n->st[a->id], a->h, n->now);
        a->h = TCP_HANDLE_INVALID;
    } else if (a->tx && tx_done && a->shut_after_tx) {
        a->shut_after_tx = false;
        tcp_shutdown(n->st[a->id], a->h, n->now);
    }
}

static inline void app_drain(struct app *a)
{
    struct net *n = a->net;
    size_t budget = a->read_chunk ? a->read_chunk : SIZE_MAX;
    for (int i = 0; i < 100000 && budget; i++) {
        if (a->rx_cap - a->rx_len < 65536) {
            a->rx_cap = a->rx_cap ? a->rx_cap * 2 : 1 << 20;
            a->rx = realloc(a->rx, a->rx_cap);
        }
        size_t want = a->rx_cap - a->rx_len;
        if (want > budget)
            want = budget;
        ssize_t r = tcp_recv(n->st[a->id], a->h, a->rx + a->rx_len, want, n->now);
        if (r > 0)
            budget -= (size_t)r;
        if (r > 0) {
            a->rx_len += (size_t)r;
            continue;
        }
        if (r == -ESHUTDOWN && !a->eof) {
            a->eof = true;
            if (a->close_on_eof) {
                a->close_pending = true;
                app_pump(a);
            }
        }
        break;
    }
}

static inline int cb_output(void *ctx, const struct tcp_seg_out *o)
{
    struct app *a = ctx;
    struct net *n = a->net;
    uint8_t buf[sizeof(((struct pkt *)0)->data)];
    int len = tcp_seg_out_write(o, buf, sizeof(buf));
    CHECK(len > 0);
    if (len <= 0)
        return -EINVAL;
    if (tcp_checksum(o->laddr, o->raddr, buf, (size_t)len) != 0)
        n->bad_csum++;
    uint32_t payload = o->payload_len[0] + o->payload_len[1];
    if (payload > 0 && !(o->flags & TCP_FLAG_SYN))
        CHECK(payload + o->opt_len <= n->mss[a->id]);
    if (n->oracle[a->id]) {
        /* debugging aid: every payload byte must match the source */
        if (o->flags & TCP_FLAG_SYN)
            n->oracle_isn[a->id] = o->seq + 1;
        uint32_t off = o->seq - n->oracle_isn[a->id];
        uint32_t pl = o->payload_len[0] + o->payload_len[1];
        const uint8_t *pay = buf + TCP_HDR_LEN_MIN + o->opt_len;
        if (pl && (off + pl > n->oracle_len[a->id] ||
                   memcmp(pay, n->oracle[a->id] + off, pl) != 0)) {
            fprintf(stderr, "oracle: side %d sent wrong bytes at seq %u (offset %u len %u) t %llu\n",
                    a->id, o->seq, off, pl, (unsigned long long)n->now);
            n->oracle_bad++;
        }
    }
    if (o->raddr != ADDR_A && o->raddr != ADDR_B) {
        n->blackholed++; /* to a crafted address nobody answers from */
        return 0;
    }
    if (n->capture[a->id]) {
        if (n->ncap[a->id] < NET_CAPCAP) {
            struct cap *c = &n->cap[a->id][n->ncap[a->id]++];
            c->at = n->now;
            CHECK(tcp_parse(buf, (size_t)len, &c->h) == 0);
            c->saddr = o->laddr;
            c->daddr = o->raddr;
            c->plen = (uint32_t)len - c->h.hdr_len;
            memcpy(c->raw, buf, (size_t)len < sizeof(c->raw) ? (size_t)len : sizeof(c->raw));
        }
        return 0;
    }
    int copies = 1;
    if (n->loss_pct && net_rand(n) % 100 < n->loss_pct) {
        n->dropped++;
        return 0; /* lost on the wire: the stack does not know */
    }
    if (n->dup_pct && net_rand(n) % 100 < n->dup_pct)
        copies = 2;
    for (int k = 0; k < copies; k++) {
        if (n->qn >= NET_QCAP)
            return -ENOBUFS;
        struct pkt *p = &n->q[n->qn++];
        p->at = n->now + n->latency_us;
        if (n->reorder_pct && net_rand(n) % 100 < n->reorder_pct)
            p->at += n->latency_us + net_rand(n) % (2 * n->latency_us + 1);
        p->order = n->order++;
        p->to = 1 - a->id;
        p->saddr = o->laddr;
        p->daddr = o->raddr;
        p->len = (uint32_t)len;
        memcpy(p->data, buf, (size_t)len);
    }
    return 0;
}

static inline int cb_accepted(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *user)
{
    struct app *a = ctx;
    (void)user;
    a->accepted++;
    a->lh = lh;
    a->h = h;
    if (a->refuse)
        return -1;
    app_pump(a);
    return 0;
}

static inline void cb_connected(void *ctx, tcp_handle_t h, void *user)
{
    struct app *a = ctx;
    (void)user;
    a->connected++;
    a->h = h;
    app_pump(a);
}

static inline void cb_readable(void *ctx, tcp_handle_t h, void *user)
{
    struct app *a = ctx;
    (void)user;
    (void)h;
    a->readable++;
    if (a->auto_read)
        app_drain(a);
}

static inline void cb_writable(void *ctx, tcp_handle_t h, void *user)
{
    struct app *a = ctx;
    (void)user;
    (void)h;
    a->writable++;
    app_pump(a);
}

static inline void cb_peer_closed(void *ctx, tcp_handle_t h, void *user)
{
    struct app *a = ctx;
    (void)user;
    (void)h;
    a->peer_closed++;
    if (a->auto_read)
        app_drain(a);
}

static inline void cb_closed(void *ctx, tcp_handle_t h, void *user, enum tcp_close_reason why)
{
    struct app *a = ctx;
    (void)user;
    (void)h;
    a->closed++;
    a->reason = why;
    /* NORMAL comes only after every byte was read: it is end of stream
     * too (a slow reader may see it before its next tcp_recv) */
    if (why == TCP_CLOSE_NORMAL)
        a->eof = true;
    a->h = TCP_HANDLE_INVALID;
}

static const struct tcp_stack_ops net_ops = {
    .output = cb_output,
    .accepted = cb_accepted,
    .connected = cb_connected,
    .readable = cb_readable,
    .writable = cb_writable,
    .peer_closed = cb_peer_closed,
    .closed = cb_closed,
};

static inline void net_default_params(struct tcp_stack_params *p)
{
    memset(p, 0, sizeof(*p));
    p->max_conns = 64;
    for (int i = 0; i < 16; i++)
        p->secret[i] = (uint8_t)(i * 37 + 11);
}

/* pa/pb may be NULL for defaults; a stack may be left out with skip_b. */
static inline void net_init(struct net *n, const struct tcp_stack_params *pa,
                     const struct tcp_stack_params *pb)
{
    memset(n, 0, sizeof(*n));
    n->q = calloc(NET_QCAP, sizeof(struct pkt));
    n->cap[0] = calloc(NET_CAPCAP, sizeof(struct cap));
    n->cap[1] = calloc(NET_CAPCAP, sizeof(struct cap));
    n->rng = 0x9e3779b97f4a7c15ull;
    n->latency_us = 500;
    /* the clock starts at 1 s unless TCP_T0 says otherwise (the dataplane
     * starts its clock at 0; TCP_T0=0 checks that nothing takes 0 as "off") */
    n->now = getenv("TCP_T0") ? strtoull(getenv("TCP_T0"), NULL, 0) : 1000000;
    struct tcp_stack_params d;
    net_default_params(&d);
    char err[128] = "";
    for (int i = 0; i < 2; i++) {
        n->app[i].net = n;
        n->app[i].id = i;
        n->app[i].h = TCP_HANDLE_INVALID;
        n->app[i].auto_read = true;
        const struct tcp_stack_params *p = i == 0 ? pa : pb;
        n->mss[i] = p && p->mss ? p->mss : 1460; /* tcp_stack_create's default */
        n->st[i] = tcp_stack_create(p ? p : &d, &net_ops, &n->app[i], err, sizeof(err));
        if (!n->st[i])
            fprintf(stderr, "tcp_stack_create: %s\n", err);
        CHECK(n->st[i] != NULL);
    }
}

static inline void net_free(struct net *n)
{
    for (int i = 0; i < 2; i++) {
        tcp_stack_destroy(n->st[i]);
        free(n->app[i].rx);
        free(n->cap[i]);
    }
    free(n->q);
}

/* Deliver a crafted or queued segment to stack `to`. */
static inline int net_deliver(struct net *n, int to, uint32_t saddr, uint32_t daddr,
                       const uint8_t *data, uint32_t len)
{
    struct tcp_seg_in in = {.saddr = saddr, .daddr = daddr, .data = data, .len = len};
    n->delivered++;
    if (getenv("TCP_TRACE")) {
        struct tcp_hdr h;
        if (tcp_parse(data, len, &h) == 0)
            fprintf(stderr, "%8llu %c->%c %u>%u seq %u ack %u f %02x win %u len %u ts %u/%u sack %u [%u,%u)\n",
                    (unsigned long long)n->now, to ? 'A' : 'B', to ? 'B' : 'A', h.sport, h.dport, h.seq, h.ack,
                    h.flags, h.window, len - h.hdr_len, h.ts_val, h.ts_ecr, h.n_sack,
                    h.sack[0][0], h.sack[0][1]);
    }
    return tcp_input(n->st[to], &in, n->now);
}

/* Advance simulated time to `until`, delivering packets in time order and
 * running both stacks' timers every millisecond. Stops early when `done`
 * (if given) returns true. Returns true if done was reached. */
static inline bool net_run(struct net *n, uint64_t until, bool (*done)(struct net *))
{
    uint64_t next_tick = n->now;
    for (uint64_t iter = 0; iter < 100000000ull; iter++) {
        if (done && done(n))
            return true;
        /* earliest packet */
        unsigned best = n->qn;
        for (unsigned i = 0; i < n->qn; i++)
            if (best == n->qn || n->q[i].at < n->q[best].at ||
                (n->q[i].at == n->q[best].at && n->q[i].order < n->q[best].order))
                best = i;
        uint64_t t_pkt = best < n->qn ? n->q[best].at : UINT64_MAX;
        if (t_pkt <= next_tick && t_pkt <= until) {
            if (t_pkt > n->now)
                n->now = t_pkt;
            struct pkt *p = malloc(sizeof(*p));
            memcpy(p, &n->q[best], sizeof(*p));
            n->q[best] = n->q[--n->qn];
            net_deliver(n, p->to, p->saddr, p->daddr, p->data, p->len);
            free(p);
            continue;
        }
        if (next_tick > until)
            break;
        n->now = next_tick;
        for (int i = 0; i < 2; i++) {
            if (n->st[i])
                tcp_timers_run(n->st[i], n->now);
            if (n->app[i].read_chunk && n->app[i].auto_read && n->app[i].h != TCP_HANDLE_INVALID &&
                !n->app[i].eof)
                app_drain(&n->app[i]);
        }
        next_tick += 1000;
    }
    if (n->now < until)
        n->now = until;
    return done ? done(n) : false;
}

/* --- crafting segments -------------------------------------------------- */

struct craft {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags;
    uint16_t window;
    bool mss, ws, sackp, ts;
    uint16_t mss_v;
    uint8_t ws_v;
    uint32_t tsval, tsecr;
    const uint8_t *payload;
    uint32_t plen;
};

/* Build a segment from B's or A's point of view; returns its length. */
static inline uint32_t craft_build(const struct craft *c, uint32_t saddr, uint32_t daddr, uint8_t *buf)
{
    struct tcp_seg_out o;
    memset(&o, 0, sizeof(o));
    o.laddr = saddr;
    o.raddr = daddr;
    o.lport = c->sport;
    o.rport = c->dport;
    o.seq = c->seq;
    o.ack = c->ack;
    o.flags = c->flags;
    o.window = c->window;
    uint8_t *p = o.opt;
    if (c->mss) {
        *p++ = 2; *p++ = 4; *p++ = (uint8_t)(c->mss_v >> 8); *p++ = (uint8_t)c->mss_v;
    }
    if (c->ws) {
        *p++ = 1; *p++ = 3; *p++ = 3; *p++ = c->ws_v;
    }
    if (c->sackp) {
        *p++ = 1; *p++ = 1; *p++ = 4; *p++ = 2;
    }
    if (c->ts) {
        *p++ = 1; *p++ = 1; *p++ = 8; *p++ = 10;
        for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(c->tsval >> (8 * i));
        for (int i = 3; i >= 0; i--) *p++ = (uint8_t)(c->tsecr >> (8 * i));
    }
    o.opt_len = (uint8_t)(p - o.opt);
    o.payload[0] = c->payload;
    o.payload_len[0] = c->plen;
    int len = tcp_seg_out_write(&o, buf, TCP_HDR_LEN_MAX + 9000);
    return len > 0 ? (uint32_t)len : 0;
}

static inline int craft_send(struct net *n, int to, const struct craft *c, uint32_t saddr, uint32_t daddr)
{
    static uint8_t buf[TCP_HDR_LEN_MAX + 9000];
    uint32_t len = craft_build(c, saddr, daddr, buf);
    return net_deliver(n, to, saddr, daddr, buf, len);
}

static inline uint64_t cnt(struct net *n, int side, enum tcp_counter c)
{
    return tcp_stack_counters(n->st[side])->c[c];
}

static uint8_t *rand_bytes(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len);
    uint64_t x = seed | 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 24);
    }
    return b;
}

#endif
