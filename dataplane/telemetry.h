/* Counters through DPDK's telemetry socket (dpdk-telemetry.py or any
 * client of /var/run/dpdk/<prefix>/dpdk_telemetry.v2):
 *   /tern/stats        totals over all workers, plus cores and cycles
 *   /tern/core,<id>    one worker's counters and busy/idle cycles
 *   /tern/backends     each backend pool's servers: "<pool>/<host>_<port>"
 *                      is "up", "down" or "not checked" by the active
 *                      health checks, ".../changes" counts state changes
 *                      (characters outside [A-Za-z0-9_/] become '_') */
#ifndef TERN_TELEMETRY_H
#define TERN_TELEMETRY_H

#include "worker-t.h"

/* Registers the commands. workers[0..n-1] must outlive the process's
 * telemetry thread (they are read, never written, from it). Start-up only.
 * Returns 0 or -errno. */
int dp_telemetry_init(struct worker **workers, unsigned n);

struct dp_config;

/* The backend pools /tern/backends shows (the configuration file's). DC
 * must outlive the telemetry thread; NULL (no file): an empty answer.
 * Start-up only, before dp_telemetry_init. */
void dp_telemetry_set_pools(const struct dp_config *dc);

#endif
