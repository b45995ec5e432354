/* Types of the per-core worker: its context, published statistics and the
 * process-wide read-only configuration it was started with. */
#ifndef TERN_WORKER_T_H
#define TERN_WORKER_T_H

#include <stdbool.h>
#include <stdint.h>

#include "dataplane/net/net-t.h"
#include "dataplane/proxy/proxy-t.h"
#include "dataplane/proxy/tls_stream.h"
#include "dataplane/tcp/tcp-t.h"
#include "dataplane/tls/tls-t.h"
#include "steer-t.h"

#define WORKER_BURST 32

enum wk_ctr {
#define WK_CTR(name, help) WK_CTR_##name,
#include "worker_counters.def"
#undef WK_CTR
    WK_CTR_MAX,
};

/* A copy of one worker's counters, refreshed by the worker about once a
 * millisecond with relaxed atomic stores and read by the telemetry thread
 * with relaxed atomic loads: each value is exact, the set is not a single
 * instant (fine for counters). */
struct worker_stats {
    uint64_t net[NET_CTR_MAX];
    uint64_t wk[WK_CTR_MAX];
    uint64_t tcp[TCP_CNT_MAX];
    uint64_t proxy[PROXY_CTR_MAX];
    uint64_t busy_cycles, idle_cycles, loops;
    uint64_t conns, pairs;
    uint64_t tls[TLS_CTR_MAX];               /* zero without TLS listeners */
    uint64_t tls_stream[TLS_STREAM_CTR_MAX];
    uint64_t tls_conns;
};

/* Test-only fault injection on the owner core's input (off by default). */
struct worker_fault {
    uint32_t reorder_pct; /* % of frames held back behind the next frame */
    uint32_t dup_pct;     /* % of frames processed twice */
};

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;
struct tcp_stack;
struct proxy;

/* Everything one core needs, cache-aligned, owned and written by that core
 * only (except `stats`, see above). Allocated at start-up. */
struct worker {
    unsigned id;          /* 0..n_workers-1 */
    unsigned n_workers;
    uint16_t port, queue; /* the rx/tx queue pair this core polls */
    struct rte_mempool *pool;
    struct rte_ring *to[STEER_MAX_WORKERS];   /* this core -> peer (SP/SC) */
    struct rte_ring *from[STEER_MAX_WORKERS]; /* peer -> this core (SP/SC) */
    const struct steer_cfg *steer;
    const volatile int *stop;

    struct net_ctx net;
    struct tcp_stack *tcp;
    struct proxy *proxy;
    struct tls_worker *tlsw;      /* NULL: no TLS listener (dp_tls.c) */
    struct tls_stream_core *tls;
    uint64_t tls_next_sec_us, tls_next_deadline_us;

    uint64_t tsc_hz, tsc_per_us, tsc0;
    uint64_t now_us;
    uint64_t tx_drain_tsc;  /* max time a frame waits in txq */
    uint64_t tx_deadline;   /* tsc by which txq must be flushed */
    uint16_t n_tx;
    struct rte_mbuf *txq[WORKER_BURST];

    struct worker_fault fault;
    uint64_t rng;
    struct rte_mbuf *held;  /* fault knob: frame held back */

    uint64_t busy_cycles, idle_cycles, loops;
    uint64_t ctr[WK_CTR_MAX];
    struct worker_stats stats;
} __attribute__((aligned(64)));

#endif
