/* tern-control's log lines (control_log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "control_log.h"

static enum stapler_log_level max_level = STAPLER_LOG_INFO;

void control_log_set_level(enum stapler_log_level level)
{
    max_level = level;
}

static const char *level_name(enum stapler_log_level l)
{
    switch (l) {
    case STAPLER_LOG_ERR:
        return "error";
    case STAPLER_LOG_WARNING:
        return "warning";
    case STAPLER_LOG_NOTICE:
        return "notice";
    case STAPLER_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

static void emit(enum stapler_log_level level, const char *cert, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stderr is unbuffered, so a line is one write and
     * lines from the stapler and the daemon never interleave mid-line. */
    if (cert != NULL)
        fprintf(stderr, "%s.%03ldZ %s cert=%s: %s\n", when, ts.tv_nsec / 1000000,
                level_name(level), cert, msg);
    else
        fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000, level_name(level), msg);
}

void control_log(enum stapler_log_level level, const char *cert, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (level > max_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, cert, msg);
}

void control_log_stapler(void *arg, enum stapler_log_level level, const char *cert,
                         const char *msg)
{
    (void)arg;
    if (level <= max_level)
        emit(level, cert, msg);
}
