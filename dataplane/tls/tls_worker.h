/* A core's TLS context: its SSL_CTXs (one per certificate set, all callbacks
 * bound to this core), its connection pool, its counters. */
#ifndef TERN_TLS_WORKER_H
#define TERN_TLS_WORKER_H

#include "tls-t.h"

/* Builds the worker for one core from CFG: one SSL_CTX per certificate set
 * (in the worker's own OSSL_LIB_CTX if the configuration asks), algorithms
 * fetched, connection pool and staple buffer allocated. Every allocation
 * the worker needs later except OpenSSL's own happens here.
 * Main thread or the owning core, at start-up. CFG must outlive the worker.
 * Returns the worker (release with tls_worker_free) or NULL with a message
 * in ERR. */
struct tls_worker *tls_worker_new(const struct tls_config *cfg, unsigned core,
                                  char *err, size_t errlen);

/* Releases the worker; every connection must have been released. NULL is a
 * no-op. Owning core or main thread after the core stopped. */
void tls_worker_free(struct tls_worker *w);

/* Sets the wall clock (seconds since the epoch) staples are checked against;
 * the core's loop calls it at least once a second so that handshakes need
 * no clock call (staples are then taken as expiring one second early, to
 * cover that staleness). Until the first call, or after a call with 0, the
 * worker reads the clock itself. Owning core only. */
void tls_worker_set_time(struct tls_worker *w, int64_t now);

/* The worker's counters, indexed by enum tls_counter. Owning core writes;
 * other threads may read them (values may be a little stale). */
const uint64_t *tls_worker_counters(const struct tls_worker *w);

/* Name of counter I ("handshakes_full_tls1_3", "failed_garbage_record"), or
 * NULL if I >= TLS_CTR_MAX. Any thread. */
const char *tls_counter_name(unsigned i);

/* Name of reason R, or NULL if out of range. Any thread. */
const char *tls_reason_name(unsigned r);

/* Connections currently taken from the pool. Owning core. */
unsigned tls_worker_conns_in_use(const struct tls_worker *w);

#endif
