/* Active health checks.
 *
 * One checker for the whole process, on one worker core's TCP stack (the
 * first worker's), not one per core: each server then sees one probe per
 * interval whatever the number of cores, and every core acts on the same
 * verdict instead of cores disagreeing about a flapping server. The
 * verdicts reach the other cores through struct pool_health (one atomic
 * byte per server, written only here, read by each core's pool_get), which
 * costs a shared cache line read per pick and nothing per packet. The probe
 * connections are ordinary connections of that core's stack, so its worker
 * forwards their events here (health_owns tells them apart) and calls
 * health_tick from its loop.
 *
 * Every call: the checker's core only. */
#ifndef TERN_HEALTH_H
#define TERN_HEALTH_H

#include "health-t.h"

/* Creates a checker on stack ST (which must outlive it) opening probes from
 * LOCAL_ADDR (host order). Returns it or NULL with a reason in ERR.
 * Start-up. */
struct health *health_create(struct tcp_stack *st, uint32_t local_addr,
                             char *err, size_t errlen);

/* Frees the checker; probes in flight are aborted. NULL ok. */
void health_destroy(struct health *hc);

/* Checks every server of pool configuration PC per CFG (borrowed, must
 * outlive HC) and reports to H, which must have PC's servers. The first
 * probes are spread over one interval from NOW. Start-up. Returns 0,
 * -ENOSPC (HEALTH_MAX_TARGETS reached), -EINVAL (bad timeout or expect). A
 * CFG with interval 0 adds nothing. */
int health_add_pool(struct health *hc, const struct pool_cfg *pc,
                    const struct health_check_cfg *cfg,
                    struct pool_health *h, uint64_t now);

/* Starts due probes and fails those past their timeout. Call every
 * millisecond or so from the worker loop. Returns probes started or
 * finished. */
unsigned health_tick(struct health *hc, uint64_t now);

/* True if USER (a stack event's user pointer) belongs to one of HC's
 * probes; then the event goes to the health_on_* below. HC may be NULL. */
bool health_owns(const struct health *hc, const void *user);

void health_on_connected(struct health *hc, tcp_handle_t h, void *user,
                         uint64_t now);
void health_on_readable(struct health *hc, tcp_handle_t h, void *user,
                        uint64_t now);
void health_on_closed(struct health *hc, tcp_handle_t h, void *user,
                      enum tcp_close_reason reason);

/* Counter C (< HEALTH_CTR_MAX) and its name. */
uint64_t health_counter(const struct health *hc, unsigned c);
const char *health_counter_name(unsigned c);

#endif
