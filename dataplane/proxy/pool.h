/* Backend pools: choosing a server for a new connection and counting the
 * connections each server holds. A struct pool belongs to one core (every
 * pool_* call on it: owning core only); the struct pool_health it uses is
 * shared by all cores: health written by the health checker alone,
 * connection counts by every core with atomic adds. */
#ifndef TERN_POOL_H
#define TERN_POOL_H

#include <stdbool.h>

#include "pool-t.h"

/* Initialises P from CFG (copied) with the shared state H: health, and the
 * connection counts of every core (may be NULL: all servers always up,
 * least-conn and max_conns per core; else H must outlive P and have CFG's
 * n_servers). Start-up. Returns 0 or -EINVAL (no server, too many, port 0). */
int pool_init(struct pool *p, const struct pool_cfg *cfg,
              struct pool_health *h);

/* Picks a server for a new connection and counts the connection on it.
 * Round robin: the next up server with room after the last one picked.
 * Least connections: the up server with room holding the fewest
 * connections (of every core sharing the pool's struct pool_health); ties
 * go to the first one after the last pick, so equal servers still take
 * turns. max_conns holds over every core too. Returns the server's index
 * (call pool_put with it when the connection ends), -EHOSTUNREACH when
 * every server is down, -EBUSY when every up server is at max_conns (both
 * counted). */
int pool_get(struct pool *p);

/* The connection counted on server I by pool_get has ended. */
void pool_put(struct pool *p, unsigned i);

/* Server I's address (valid index from pool_get). */
static inline const struct pool_server_cfg *pool_server(const struct pool *p,
                                                        unsigned i)
{
    return &p->cfg.servers[i];
}

/* Whether server I is up as this core sees it now. */
bool pool_server_up(const struct pool *p, unsigned i);

/* Counter C (< POOL_CTR_MAX) and its name. */
uint64_t pool_counter(const struct pool *p, unsigned c);
const char *pool_counter_name(unsigned c);

/* --- health state (written by the checker thread only) ------------------ */

/* Initialises H for N servers, all up, with the thresholds RISE and FALL
 * (0 taken as 1). Start-up, before any core reads it. Returns 0 or -EINVAL
 * (N is 0 or above POOL_MAX_SERVERS). */
int pool_health_init(struct pool_health *h, unsigned n, unsigned rise,
                     unsigned fall);

/* Records one check of server I: OK or not. Returns 1 if the server just
 * went up, -1 if it just went down, 0 if its state did not change. The
 * health checker's thread only. */
int pool_health_report(struct pool_health *h, unsigned i, bool ok);

/* Whether server I is up. Any thread. */
bool pool_health_up(const struct pool_health *h, unsigned i);

#endif
