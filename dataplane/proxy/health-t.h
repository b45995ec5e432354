/* Types of the active health checker: TCP connects (optionally a request
 * and an expected reply prefix) to every backend server on an interval. */
#ifndef TERN_HEALTH_T_H
#define TERN_HEALTH_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/tcp/tcp-t.h"
#include "pool-t.h"

/* Every server of every listener's pool: 8 listeners (PROXY_MAX_LISTENERS)
 * x POOL_MAX_SERVERS, so no valid configuration runs out. */
#define HEALTH_MAX_TARGETS 512
#define HEALTH_EXPECT_MAX 64
/* Thresholds when the configuration names none (HAProxy's defaults): a
 * server needs 2 good checks in a row to come back, 3 bad ones to go. */
#define HEALTH_RISE_DEFAULT 2
#define HEALTH_FALL_DEFAULT 3

/* How one pool's servers are checked. send/expect are borrowed (they must
 * outlive the checker); expect is compared with the first bytes the server
 * answers. Without expect, an established connection is a success. */
struct health_check_cfg {
    uint64_t interval_us; /* 0: this pool is not checked */
    uint64_t timeout_us;  /* connect + answer; at most interval_us */
    const void *send;
    size_t send_len;
    const void *expect;
    size_t expect_len;    /* <= HEALTH_EXPECT_MAX */
};

#define HEALTH_COUNTERS(X)                                                 \
    X(probes, "health checks started")                                     \
    X(ok, "checks passed")                                                 \
    X(failed_connect, "checks failed: refused, reset or closed early")    \
    X(failed_timeout, "checks failed: no answer within the timeout")      \
    X(failed_expect, "checks failed: the answer did not match")           \
    X(not_started, "checks not started: no local port or connection")   \
    X(went_down, "servers marked down")                                    \
    X(went_up, "servers marked up again")

enum health_ctr {
#define HEALTH_CTR_ENUM(name, help) HEALTH_CTR_##name,
    HEALTH_COUNTERS(HEALTH_CTR_ENUM)
#undef HEALTH_CTR_ENUM
    HEALTH_CTR_MAX,
};

struct health; /* opaque, one per process, on one worker core */

#endif
