/* Types of tern-control's metrics (control_metrics.h). */
#ifndef TERN_CONTROL_METRICS_T_H
#define TERN_CONTROL_METRICS_T_H

#include <stdint.h>

#include "staple_table-t.h"
#include "stapler-t.h"

/* Everything a scrape shows, gathered by the main thread. */
struct control_metrics_snapshot {
    struct stapler_metrics stapler;
    struct staple_table_stats table;
    uint64_t reloads_ok, reloads_refused;
    int64_t last_reload_ok; /* epoch seconds of the last applied config */
    uint64_t api_requests, api_errors;
    int64_t started;        /* epoch seconds */
};

/* The HTTP server and its snapshot; opaque. */
struct control_metrics;

#endif
