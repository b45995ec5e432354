/* TLS in tern-dataplane, process side: the ticket keys shared by every core,
 * the read-only staple table (attached at start, or retried every second
 * until tern-control has created it), one tls_worker and one TLS stream
 * filter per worker core, and the once-a-second housekeeping (table attach,
 * ticket key rotation) on the EAL's alarm thread, never on a worker. */
#ifndef TERN_DP_TLS_H
#define TERN_DP_TLS_H

#include "dp_config.h"
#include "steer-t.h"

struct staple_table;
struct tls_config;
struct tls_ticket_keys;
struct tls_worker;
struct tls_stream_core;
struct worker;

struct dp_tls {
    struct dp_config *dc;
    struct tls_ticket_keys *keys;     /* NULL: tickets off */
    struct tls_config *cfg;
    struct staple_table *table;       /* NULL until attached (alarm thread) */
    unsigned n_workers;
    struct tls_worker *tw[STEER_MAX_WORKERS];
    struct tls_stream_core *ts[STEER_MAX_WORKERS];
    uint64_t since_rotation_ms;
    unsigned attach_tries;
    bool alarm_set;
};

/* Builds the shared TLS state and one tls_worker and stream filter per
 * worker from DC (which must outlive T). Tries the staple table once; if it
 * does not exist yet, the alarm retries every second. Main thread, after
 * rte_eal_init. Returns 0 or -errno with a reason in ERR (then call
 * dp_tls_fini). */
int dp_tls_init(struct dp_tls *t, struct dp_config *dc, unsigned n_workers,
                uint32_t max_pairs, char *err, size_t errlen);

/* Points worker W's TLS listeners (LISTENERS[dc->first_tls_listener..]) at
 * its stream filter, and gives W its TLS state. Call before worker_init. */
void dp_tls_bind_worker(struct dp_tls *t, struct worker *w,
                        struct proxy_listener_cfg *listeners);

/* After worker_init: lets the filter kick W's proxy. */
void dp_tls_worker_ready(struct worker *w);

/* Starts the one-second housekeeping alarm. Main thread. Returns 0 or
 * -errno. */
int dp_tls_start(struct dp_tls *t);

/* Stops the alarm and frees everything (workers stopped, their proxies
 * destroyed first). Accepts a partly built T. */
void dp_tls_fini(struct dp_tls *t);

/* The worker loop's part (owning core): clock, stuck ciphertext, kicks,
 * handshake deadlines. Called every iteration; returns true if it did
 * work. */
bool dp_tls_worker_tick(struct worker *w);

/* Copies W's TLS counters into W->stats (owning core). */
void dp_tls_publish(struct worker *w);

#endif
