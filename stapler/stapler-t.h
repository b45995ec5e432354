/* Types of the OCSP stapler: the control-plane library that keeps each
 * certificate's OCSP response fresh in the staple table and on disk.
 * Prototypes and the calling model are in stapler.h. */
#ifndef TERN_STAPLER_T_H
#define TERN_STAPLER_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "staple_table-t.h"

/* Opaque; one per process (the table has one writer). */
struct stapler;

/* Per-certificate policy, as Envoy names it. The stapler fetches and
 * reports the same way for all three; the policy tells the dataplane and
 * the daemon what to do without a valid staple:
 *  lenient      handshake without a staple;
 *  strict       stop serving the certificate once its staple expires;
 *  must_staple  refuse to start or serve it without a valid staple.
 * A certificate carrying the TLS Feature status_request extension
 * (RFC 7633) is flagged must_staple whatever its policy says. */
#define STAPLER_POLICIES(X) \
    X(LENIENT, "lenient")   \
    X(STRICT, "strict")     \
    X(MUST_STAPLE, "must_staple")

enum stapler_policy {
#define X(e, s) STAPLER_POLICY_##e,
    STAPLER_POLICIES(X)
#undef X
    STAPLER_POLICY__COUNT
};

/* State of one certificate: see stapler_state.def. */
enum stapler_state {
#define X(e, s, d) STAPLER_STATE_##e,
#include "stapler_state.def"
#undef X
    STAPLER_STATE__COUNT
};

/* Outcome of a fetch or validation: see stapler_reason.def. */
enum stapler_reason {
#define X(e, s, d) STAPLER_REASON_##e,
#include "stapler_reason.def"
#undef X
    STAPLER_REASON__COUNT
};

/* Certificate status carried by the held response (RFC 6960 CertStatus). */
enum stapler_ocsp_status {
    STAPLER_OCSP_NONE = 0, /* no response held */
    STAPLER_OCSP_GOOD,
    STAPLER_OCSP_REVOKED,
    STAPLER_OCSP_UNKNOWN,
};

enum stapler_log_level {
    STAPLER_LOG_ERR = 3, /* syslog numbering, so a daemon can pass it on */
    STAPLER_LOG_WARNING = 4,
    STAPLER_LOG_NOTICE = 5,
    STAPLER_LOG_INFO = 6,
    STAPLER_LOG_DEBUG = 7,
};

/* Log sink. CERT is the certificate's configured name, or NULL for a
 * message about the stapler as a whole. MSG is one line without a newline.
 * Both strings live only for the call. Called from inside stapler calls on
 * the caller's thread; must not call back into the stapler. */
typedef void stapler_log_fn(void *arg, enum stapler_log_level level,
                            const char *cert, const char *msg);

/* Clock, seconds since the epoch. Tests replace it; NULL means time(). */
typedef int64_t stapler_clock_fn(void *arg);

/* Settings. stapler_params_default() fills every field with a sane value;
 * 0 in a numeric field is NOT "default", it is taken literally where
 * meaningful and refused (EINVAL) where not. */
struct stapler_params {
    const char *cache_dir;       /* directory for cached responses (must
                                  * exist); NULL: no disk cache. Copied. */
    double refresh_fraction;     /* refresh at this point of
                                  * thisUpdate..nextUpdate (0 < f < 1); 0.5 */
    double refresh_jitter;       /* +/- this fraction of the window, uniform;
                                  * 0.05. The refresh never falls before
                                  * thisUpdate nor in the window's last
                                  * tenth. */
    uint32_t max_refresh_s;      /* refresh at least this often, whatever
                                  * the window (a revocation must not wait
                                  * for the midpoint of a month-long
                                  * response); 43200 */
    uint32_t backoff_min_ms;     /* first retry after a failure; 5000 */
    uint32_t backoff_max_ms;     /* cap of the exponential backoff; 600000 */
    uint32_t connect_timeout_ms; /* per request; 5000 */
    uint32_t total_timeout_ms;   /* per request, whole transfer; 15000 */
    uint32_t max_response_bytes; /* bigger bodies abort the transfer; 65536 */
    uint32_t max_inflight_per_responder; /* requests at once to one
                                  * responder (scheme://host:port); the rest
                                  * wait in a queue; 4 */
    uint32_t clock_skew_s;       /* thisUpdate may be this far in the
                                  * future; 300 */
    uint32_t must_staple_warn_s; /* warn when a must-staple certificate's
                                  * staple is closer than this to its
                                  * nextUpdate; 86400 */
    stapler_log_fn *log;         /* NULL: no logging */
    void *log_arg;
    stapler_clock_fn *clock;     /* NULL: time() */
    void *clock_arg;
    uint64_t seed;               /* jitter PRNG seed; 0: from getrandom() */
};

/* One certificate to staple, as configured. Strings are copied by
 * stapler_set_certs(); the caller keeps ownership of its own. */
struct stapler_cert_spec {
    const char *name;        /* unique, for logs and the CLI */
    const char *chain_path;  /* PEM: the leaf first, then its issuer and
                              * possibly more */
    const char *issuer_path; /* PEM of the issuer, or NULL: the second
                              * certificate of the chain */
    enum stapler_policy policy;
    const char *ocsp_url;    /* NULL: the AIA's OCSP URLs, in order; else
                              * only this URL */
};

#define STAPLER_MAX_URLS 4
#define STAPLER_ERR_LEN 160

/* Snapshot of one certificate for the CLI. Strings point into the stapler
 * and are valid only during the stapler_foreach_cert() callback or until
 * the next stapler call after stapler_cert_status(). */
struct stapler_cert_status {
    const char *name;
    uint8_t key[STAPLE_TABLE_KEY_LEN]; /* SHA-256 of the leaf DER; zero if
                                        * the leaf could not be read */
    const char *responder;      /* URL in use (last tried), or "" */
    enum stapler_state state;
    enum stapler_ocsp_status cert_status; /* of the held response */
    enum stapler_policy policy;
    bool must_staple;           /* TLS Feature status_request in the leaf,
                                 * or policy must_staple */
    bool must_staple_warning;   /* must-staple and no valid staple, or the
                                 * staple is within must_staple_warn_s of
                                 * its nextUpdate */
    bool fetch_in_flight;       /* queued or transferring */
    int64_t this_update;        /* of the held response; 0 if none */
    int64_t next_update;        /* of the held response; 0 if none */
    int64_t revocation_time;    /* if revoked; 0 otherwise */
    int64_t next_refresh;       /* when the next fetch starts (epoch s);
                                 * 0 if none is planned */
    int64_t not_after;          /* leaf's notAfter; 0 if unknown */
    int64_t last_fetch;         /* when the last fetch ended; 0 if never */
    enum stapler_reason last_reason; /* of the last fetch */
    const char *last_error;     /* message of the last failure, or "" */
    uint32_t consecutive_failures;
    uint32_t n_urls;            /* responders known for this certificate */
};

/* Responder latency histogram: upper bounds in milliseconds of each bucket
 * (the last bucket is +Inf). Counts are per bucket, not cumulative. */
#define STAPLER_LATENCY_BOUNDS_MS {10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
#define STAPLER_LATENCY_BUCKETS 11

struct stapler_metrics {
    uint32_t certs;                               /* configured */
    uint32_t by_state[STAPLER_STATE__COUNT];      /* certificates per state */
    uint32_t must_staple_warnings;                /* certificates warned */
    uint64_t fetches[STAPLER_REASON__COUNT];      /* completed fetches by
                                                   * outcome (OK = success) */
    uint64_t fetches_ok;
    uint64_t fetches_failed;
    uint64_t publishes;                           /* responses put in the table */
    uint64_t withdrawals;                         /* expired responses removed */
    uint64_t cache_loaded;                        /* published from disk */
    uint64_t cache_rejected;                      /* corrupt/foreign/invalid files */
    uint64_t cache_write_errors;
    int64_t seconds_to_next_update;               /* nearest nextUpdate of a
                                                   * published response minus
                                                   * now; -1 if none */
    uint32_t inflight;                            /* transfers running now */
    uint32_t queued;                              /* waiting for a slot */
    uint32_t max_inflight_per_responder_seen;     /* high-water mark of one
                                                   * responder's in-flight
                                                   * count since create */
    uint64_t latency_buckets[STAPLER_LATENCY_BUCKETS];
    uint64_t latency_count;                       /* transfers with an HTTP
                                                   * answer */
    uint64_t latency_sum_us;
    uint64_t latency_max_us;
};

/* An extra descriptor for stapler_poll() to wait on with the stapler's
 * own sockets (the daemon's listening socket, signalfd, ...). */
struct stapler_waitfd {
    int fd;
    short events;  /* POLLIN, POLLOUT, POLLPRI */
    short revents; /* set by stapler_poll() */
};

#endif
