/* Types of a backend pool: the servers of one `backends` entry, how a new
 * connection picks one (round robin or least connections), per-server
 * connection limits, and the health state every core reads. */
#ifndef TERN_POOL_T_H
#define TERN_POOL_T_H

#include <stdatomic.h>
#include <stdint.h>

#define POOL_MAX_SERVERS 64

enum pool_balance {
    POOL_ROUND_ROBIN = 0,
    POOL_LEAST_CONN = 1,
};

struct pool_server_cfg {
    uint32_t addr; /* host order */
    uint16_t port;
};

struct pool_cfg {
    enum pool_balance balance;
    uint32_t max_conns; /* per server, over every core sharing the pool's
                         * struct pool_health (per core without one);
                         * 0 = no limit */
    uint16_t n_servers;
    struct pool_server_cfg servers[POOL_MAX_SERVERS];
};

/* One server's connections over every core: its own cache line, since
 * every core changes it once per connection it opens or ends there. */
struct pool_count {
    _Atomic uint32_t n;
    uint8_t pad[60];
} __attribute__((aligned(64)));

/* What every core shares about a pool's servers. Health: written by one
 * thread only (the health checker, see health.h), read by every core's pool
 * when it picks a server. Servers start up, so traffic flows before the
 * first check has finished; `fall` failures in a row take a server down and
 * `rise` successes in a row bring it back. Connection counts: changed by
 * every core with one atomic add per connection opened or ended (relaxed:
 * a count, nothing is published with it), read for least-connections and
 * max_conns, so that both hold for the whole machine, not per core. */
struct pool_health {
    struct pool_count conns[POOL_MAX_SERVERS];
    uint16_t n_servers;
    uint8_t rise, fall;
    /* 1 = up. Release store by the checker, acquire load by the pickers:
     * a flag, nothing else is published with it, but the pair keeps the
     * order of a down-then-up sequence visible as written. */
    _Atomic uint8_t up[POOL_MAX_SERVERS];
    /* Changes of state, for telemetry (same pairing as up). */
    _Atomic uint32_t transitions[POOL_MAX_SERVERS];
    /* Checker-only: consecutive results of the current streak. */
    uint8_t streak_ok[POOL_MAX_SERVERS];
    uint8_t streak_fail[POOL_MAX_SERVERS];
};

#define POOL_COUNTERS(X)                                                   \
    X(picked, "connections given a server")                                \
    X(refused_down, "connections refused: every server down")             \
    X(refused_full, "connections refused: every up server at max_conns")

enum pool_ctr {
#define POOL_CTR_ENUM(name, help) POOL_CTR_##name,
    POOL_COUNTERS(POOL_CTR_ENUM)
#undef POOL_CTR_ENUM
    POOL_CTR_MAX,
};

/* One core's view of a pool: its cursor, its own connection counts (for
 * its telemetry, and for least-conn and max_conns when the pool has no
 * shared struct pool_health) and counters. */
struct pool {
    struct pool_cfg cfg;
    struct pool_health *health;       /* NULL: every server always up, and
                                       * counts per core */
    uint32_t cursor;                  /* next server to try first */
    uint32_t conns[POOL_MAX_SERVERS];
    uint64_t picks[POOL_MAX_SERVERS];
    uint64_t ctr[POOL_CTR_MAX];
};

#endif
