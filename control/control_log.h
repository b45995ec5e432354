/* tern-control's log: one line per event on stderr, "TIME LEVEL [cert] msg".
 * stderr rather than syslog: systemd's journal and the tests both read it.
 * Main thread only (the metrics thread does not log). */
#ifndef TERN_CONTROL_LOG_H
#define TERN_CONTROL_LOG_H

#include "stapler-t.h"

/* Messages above LEVEL (syslog numbering, STAPLER_LOG_*) are dropped. */
void control_log_set_level(enum stapler_log_level level);

/* Logs MSG at LEVEL about certificate CERT (NULL: the daemon as a whole). */
void control_log(enum stapler_log_level level, const char *cert, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The stapler's log sink (stapler_log_fn): forwards to control_log. */
void control_log_stapler(void *arg, enum stapler_log_level level, const char *cert,
                         const char *msg);

#endif
