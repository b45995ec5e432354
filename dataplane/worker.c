/* The per-core worker: one loop, one context, no system call and no malloc
 * once running. Loop shape (DPDK l3fwd, VPP):
 *   rx burst from the device -> steer each frame to its owner core ->
 *   process own frames -> frames from peers' rings -> flush tx when the
 *   batch is full or its deadline passed -> timers -> busy/idle accounting. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane/net/net.h"
#include "dataplane/net/tcp_glue.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/tcp/tcp.h"
#include "dp_tls.h"
#include "steer.h"
#include "worker.h"

#define WK_COUNT(w, name, n) ((w)->ctr[WK_CTR_##name] += (n))
#define WORKER_TCP_TIMER_US 100
#define WORKER_NET_TIMER_US 10000
#define WORKER_STATS_US 1000
#define WORKER_TX_DRAIN_US 20
#define WORKER_IDLE_LOOPS 1024

/* --- tx: the net layer's buffers are mbufs from this core's pool -------- */

static void worker_tx_flush(struct worker *w)
{
    if (w->n_tx == 0)
        return;
    uint64_t t0 = rte_rdtsc();
    uint16_t sent = rte_eth_tx_burst(w->port, w->queue, w->txq, w->n_tx);
    /* One retry: AF_XDP completes tx descriptors lazily, a second call
     * often finds room. Beyond that, drop: TCP retransmits. */
    if (sent < w->n_tx)
        sent += rte_eth_tx_burst(w->port, w->queue, w->txq + sent,
                                 (uint16_t)(w->n_tx - sent));
    if (sent < w->n_tx) {
        WK_COUNT(w, drop_tx_full, w->n_tx - sent);
        rte_pktmbuf_free_bulk(w->txq + sent, w->n_tx - sent);
    }
    WK_COUNT(w, tx_bursts, 1);
    WK_COUNT(w, tx_cycles, rte_rdtsc() - t0);
    w->n_tx = 0;
}

static int worker_tx_alloc(void *user, struct net_buf *b)
{
    struct worker *w = user;
    struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
    if (m == NULL)
        return -ENOBUFS;
    b->data = rte_pktmbuf_mtod(m, uint8_t *);
    b->cap = (uint16_t)RTE_MIN(rte_pktmbuf_tailroom(m), UINT16_MAX);
    b->len = 0;
    b->flags = 0;
    b->handle = m;
    return 0;
}

static void worker_tx_send(void *user, struct net_buf *b)
{
    struct worker *w = user;
    struct rte_mbuf *m = b->handle;
    m->data_len = b->len;
    m->pkt_len = b->len;
    if (b->flags & NET_BUF_F_IP_CSUM) {
        m->l2_len = NET_ETH_HLEN;
        m->l3_len = NET_IPV4_HLEN;
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
    }
    if (w->n_tx == 0)
        w->tx_deadline = rte_rdtsc() + w->tx_drain_tsc;
    w->txq[w->n_tx++] = m;
    if (w->n_tx == WORKER_BURST)
        worker_tx_flush(w);
}

static void worker_tx_free(void *user, struct net_buf *b)
{
    (void)user;
    rte_pktmbuf_free(b->handle);
}

/* --- TCP events -> net layer and proxy ---------------------------------- */

static int worker_tcp_output(void *ctx, const struct tcp_seg_out *seg)
{
    struct worker *w = ctx;
    return net_tcp_output(&w->net, seg);
}

static int worker_accepted(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *u)
{
    return proxy_on_accepted(((struct worker *)ctx)->proxy, lh, h, u);
}

static void worker_connected(void *ctx, tcp_handle_t h, void *u)
{
    proxy_on_connected(((struct worker *)ctx)->proxy, h, u);
}

static void worker_readable(void *ctx, tcp_handle_t h, void *u)
{
    proxy_on_readable(((struct worker *)ctx)->proxy, h, u);
}

static void worker_writable(void *ctx, tcp_handle_t h, void *u)
{
    proxy_on_writable(((struct worker *)ctx)->proxy, h, u);
}

static void worker_peer_closed(void *ctx, tcp_handle_t h, void *u)
{
    proxy_on_peer_closed(((struct worker *)ctx)->proxy, h, u);
}

static void worker_closed(void *ctx, tcp_handle_t h, void *u,
                          enum tcp_close_reason r)
{
    proxy_on_closed(((struct worker *)ctx)->proxy, h, u, r);
}

static void worker_tcp_input(void *user, const struct net_tcp_in *seg)
{
    struct worker *w = user;
    net_tcp_deliver(w->tcp, seg, w->now_us);
}

/* --- set-up --------------------------------------------------------------- */

int worker_init(struct worker *w, const struct net_iface *ifc,
                const struct tcp_stack_params *tp,
                const struct proxy_params *pp,
                const struct proxy_listener_cfg *listeners, unsigned n_listeners,
                char *err, size_t errlen)
{
    static const struct net_ops ops = {
        .tx_alloc = worker_tx_alloc,
        .tx_send = worker_tx_send,
        .tx_free = worker_tx_free,
        .tcp_input = worker_tcp_input,
    };
    static const struct tcp_stack_ops tcp_ops = {
        .output = worker_tcp_output,
        .accepted = worker_accepted,
        .connected = worker_connected,
        .readable = worker_readable,
        .writable = worker_writable,
        .peer_closed = worker_peer_closed,
        .closed = worker_closed,
    };
    int rc = net_init(&w->net, ifc, &ops, w);
    if (rc < 0) {
        snprintf(err, errlen, "worker %u: bad interface configuration", w->id);
        return rc;
    }
    w->tcp = tcp_stack_create(tp, &tcp_ops, w, err, errlen);
    if (w->tcp == NULL)
        return -ENOMEM;
    w->proxy = proxy_create(pp, w->tcp, err, errlen);
    if (w->proxy == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < n_listeners; i++) {
        rc = proxy_add_listener(w->proxy, &listeners[i]);
        if (rc < 0) {
            snprintf(err, errlen, "worker %u: listener %u: %s", w->id, i,
                     strerror(-rc));
            return rc;
        }
    }
    w->tsc_hz = rte_get_tsc_hz();
    w->tsc_per_us = w->tsc_hz / 1000000 ? w->tsc_hz / 1000000 : 1;
    w->tsc0 = rte_rdtsc();
    w->tx_drain_tsc = w->tsc_per_us * WORKER_TX_DRAIN_US;
    w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)w->id << 32 | 0x5bd1e995u);
    return 0;
}

void worker_fini(struct worker *w)
{
    if (w->held != NULL)
        rte_pktmbuf_free(w->held);
    w->held = NULL;
    proxy_destroy(w->proxy);
    tcp_stack_destroy(w->tcp);
    w->proxy = NULL;
    w->tcp = NULL;
}

/* --- input ---------------------------------------------------------------- */

static uint32_t worker_rand100(struct worker *w)
{
    /* xorshift64: per-core, deterministic, no shared state. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (uint32_t)(w->rng % 100);
}

void worker_input_frame(struct worker *w, const uint8_t *frame, uint32_t len,
                        unsigned flags)
{
    net_input(&w->net, frame, len, flags);
}

static void worker_deliver_now(struct worker *w, struct rte_mbuf *m,
                               unsigned flags)
{
    worker_input_frame(w, rte_pktmbuf_mtod(m, const uint8_t *),
                       rte_pktmbuf_data_len(m), flags);
}

/* Processes and frees m on its owner core, through the test fault knob
 * when it is on. */
static void worker_deliver(struct worker *w, struct rte_mbuf *m, unsigned flags)
{
    if (unlikely(m->nb_segs != 1)) {
        WK_COUNT(w, drop_multiseg, 1);
        rte_pktmbuf_free(m);
        return;
    }
    if (unlikely(w->fault.reorder_pct | w->fault.dup_pct)) {
        if (w->held == NULL && flags == 0 &&
            worker_rand100(w) < w->fault.reorder_pct) {
            w->held = m; /* processed right after the next frame */
            WK_COUNT(w, fault_reorder, 1);
            return;
        }
        worker_deliver_now(w, m, flags);
        if (worker_rand100(w) < w->fault.dup_pct) {
            WK_COUNT(w, fault_dup, 1);
            worker_deliver_now(w, m, flags);
        }
        rte_pktmbuf_free(m);
        if (w->held != NULL) {
            struct rte_mbuf *h = w->held;
            w->held = NULL;
            worker_deliver_now(w, h, flags);
            rte_pktmbuf_free(h);
        }
        return;
    }
    worker_deliver_now(w, m, flags);
    rte_pktmbuf_free(m);
}

/* Frames from the device: own ones processed here, foreign ones batched
 * per owner and enqueued, ARP processed here and copied to every peer. */
static void worker_rx(struct worker *w, struct rte_mbuf **pkts, uint16_t n)
{
    struct rte_mbuf *out[STEER_MAX_WORKERS][WORKER_BURST];
    uint16_t n_out[STEER_MAX_WORKERS];
    unsigned nw = w->n_workers;

    memset(n_out, 0, sizeof(n_out[0]) * nw);
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        int owner = steer_owner(w->steer, rte_pktmbuf_mtod(m, const uint8_t *),
                                rte_pktmbuf_data_len(m));
        if (owner >= 0 && (unsigned)owner != w->id) {
            out[owner][n_out[owner]++] = m;
            continue;
        }
        if (owner == STEER_ALL) {
            for (unsigned p = 0; p < nw; p++) {
                if (p == w->id)
                    continue;
                struct rte_mbuf *c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);
                if (c != NULL) {
                    out[p][n_out[p]++] = c;
                    WK_COUNT(w, arp_copies, 1);
                }
            }
        }
        worker_deliver(w, m, 0);
    }
    for (unsigned p = 0; p < nw; p++) {
        if (n_out[p] == 0)
            continue;
        unsigned q = rte_ring_sp_enqueue_burst(w->to[p], (void **)out[p],
                                               n_out[p], NULL);
        WK_COUNT(w, steered_out, q);
        if (q < n_out[p]) {
            WK_COUNT(w, drop_ring_full, n_out[p] - q);
            rte_pktmbuf_free_bulk(out[p] + q, n_out[p] - q);
        }
    }
}

/* Frames that peers steered to us. ARP arrives here only as a copy. */
static unsigned worker_rx_rings(struct worker *w)
{
    struct rte_mbuf *pkts[WORKER_BURST];
    unsigned total = 0;
    for (unsigned p = 0; p < w->n_workers; p++) {
        if (p == w->id)
            continue;
        unsigned n = rte_ring_sc_dequeue_burst(w->from[p], (void **)pkts,
                                               WORKER_BURST, NULL);
        for (unsigned i = 0; i < n; i++) {
            const uint8_t *f = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
            bool arp = rte_pktmbuf_data_len(pkts[i]) >= 14 && f[12] == 0x08 &&
                       f[13] == 0x06;
            worker_deliver(w, pkts[i], arp ? NET_IN_LEARN_ONLY : 0);
        }
        WK_COUNT(w, steered_in, n);
        total += n;
    }
    return total;
}

/* --- statistics ----------------------------------------------------------- */

void worker_publish_stats(struct worker *w)
{
    struct worker_stats *s = &w->stats;
    /* Relaxed: counters carry no ordering; the telemetry reader pairs
     * with these stores only for tear-freedom. */
    for (unsigned i = 0; i < NET_CTR_MAX; i++)
        __atomic_store_n(&s->net[i], w->net.ctr[i], __ATOMIC_RELAXED);
    for (unsigned i = 0; i < WK_CTR_MAX; i++)
        __atomic_store_n(&s->wk[i], w->ctr[i], __ATOMIC_RELAXED);
    if (w->tcp != NULL) {
        const struct tcp_counters *tc = tcp_stack_counters(w->tcp);
        for (unsigned i = 0; i < TCP_CNT_MAX; i++)
            __atomic_store_n(&s->tcp[i], tc->c[i], __ATOMIC_RELAXED);
        __atomic_store_n(&s->conns, tcp_stack_conns(w->tcp), __ATOMIC_RELAXED);
    }
    if (w->proxy != NULL) {
        for (unsigned i = 0; i < PROXY_CTR_MAX; i++)
            __atomic_store_n(&s->proxy[i], proxy_counter(w->proxy, i),
                             __ATOMIC_RELAXED);
        __atomic_store_n(&s->pairs, proxy_active(w->proxy), __ATOMIC_RELAXED);
    }
    dp_tls_publish(w);
    __atomic_store_n(&s->busy_cycles, w->busy_cycles, __ATOMIC_RELAXED);
    __atomic_store_n(&s->idle_cycles, w->idle_cycles, __ATOMIC_RELAXED);
    __atomic_store_n(&s->loops, w->loops, __ATOMIC_RELAXED);
}

/* --- the loop ------------------------------------------------------------- */

int worker_run(struct worker *w)
{
    struct rte_mbuf *pkts[WORKER_BURST];
    uint64_t next_tcp = 0, next_net = 0, next_stats = 0;

    w->now_us = (rte_rdtsc() - w->tsc0) / w->tsc_per_us;
    net_set_time(&w->net, w->now_us);
    net_arp_announce(&w->net);
    while (!__atomic_load_n(w->stop, __ATOMIC_RELAXED)) {
        uint64_t t0 = rte_rdtsc();
        bool work = false;
        w->now_us = (t0 - w->tsc0) / w->tsc_per_us;
        net_set_time(&w->net, w->now_us);
        proxy_set_time(w->proxy, w->now_us);

        uint16_t n = rte_eth_rx_burst(w->port, w->queue, pkts, WORKER_BURST);
        /* The proxy hears of a burst's segments once, after all of them. */
        tcp_batch_begin(w->tcp);
        if (n > 0) {
            WK_COUNT(w, rx_bursts, 1);
            worker_rx(w, pkts, n);
            work = true;
        }
        if (w->n_workers > 1 && worker_rx_rings(w) > 0)
            work = true;
        tcp_batch_end(w->tcp, w->now_us);
        if (w->held != NULL && !work) {
            /* Fault knob: nothing came after the held frame; let it go. */
            struct rte_mbuf *h = w->held;
            w->held = NULL;
            worker_deliver_now(w, h, 0);
            rte_pktmbuf_free(h);
            work = true;
        }
        if (w->now_us >= next_tcp) {
            if (tcp_timers_run(w->tcp, w->now_us) > 0)
                work = true;
            next_tcp = w->now_us + WORKER_TCP_TIMER_US;
        }
        if (dp_tls_worker_tick(w))
            work = true;
        if (w->now_us >= next_net) {
            net_timers(&w->net);
            next_net = w->now_us + WORKER_NET_TIMER_US;
        }
        if (w->n_tx > 0 && (w->n_tx >= WORKER_BURST || rte_rdtsc() >= w->tx_deadline ||
                            !work)) {
            worker_tx_flush(w);
            work = true;
        }
        if (w->now_us >= next_stats) {
            /* An empty burst lets a PMD finish earlier work: AF_XDP in
             * copy mode sends at most a batch per kick, and completes tx
             * descriptors only when called. */
            rte_eth_tx_burst(w->port, w->queue, w->txq, 0);
            worker_publish_stats(w);
            next_stats = w->now_us + WORKER_STATS_US;
        }
        if (work) {
            w->idle_streak = 0;
        } else if (w->idle_sleep_us > 0 && ++w->idle_streak >= WORKER_IDLE_LOOPS) {
            /* A system call, but only when there has been nothing to do
             * for a while: never per packet. The first frame after a nap
             * waits at most idle_sleep_us longer. */
            rte_delay_us_sleep((unsigned)w->idle_sleep_us);
        }
        uint64_t dt = rte_rdtsc() - t0;
        if (work)
            w->busy_cycles += dt;
        else
            w->idle_cycles += dt;
        w->loops++;
    }
    worker_tx_flush(w);
    worker_publish_stats(w);
    return 0;
}
