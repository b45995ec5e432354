/* Prometheus text metrics for tern-control, served by libmicrohttpd.
 *
 * Threads: libmicrohttpd answers scrapes on its own thread; the daemon's
 * main thread publishes a snapshot (control_metrics_update) that the HTTP
 * thread copies under a mutex and formats outside it. The stapler itself is
 * never touched from the HTTP thread: it is single-threaded by contract. */
#ifndef TERN_CONTROL_METRICS_H
#define TERN_CONTROL_METRICS_H

#include <stddef.h>

#include "config-t.h"
#include "control_metrics-t.h"

/* Formats SNAP as Prometheus text exposition (version 0.0.4). Pure; any
 * thread. Returns a string the caller frees, or NULL (ENOMEM). */
char *control_metrics_format(const struct control_metrics_snapshot *snap);

/* Starts serving GET /metrics on LISTEN. Main thread, before the event loop
 * and with the signals the daemon handles already blocked (the HTTP thread
 * inherits the mask). Returns the server or NULL with a message in ERR. */
struct control_metrics *control_metrics_start(const struct config_hostport *listen,
                                              char *err, size_t errlen);

/* Replaces the snapshot scrapes see. Main thread. */
void control_metrics_update(struct control_metrics *m, const struct control_metrics_snapshot *snap);

/* Stops the HTTP thread and frees M. NULL is a no-op. */
void control_metrics_stop(struct control_metrics *m);

#endif
