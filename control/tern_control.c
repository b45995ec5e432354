/* tern-control: the control-plane daemon. Reads the configuration, owns the
 * staple table's writer handle, runs the OCSP stapler, answers the control
 * socket, serves metrics, reloads on SIGHUP or on request.
 *
 * One thread runs everything but the metrics HTTP server: the stapler is
 * single-threaded by contract, and a single poll loop (stapler_poll, which
 * waits on libcurl's sockets and on ours together) needs no locks. Signals
 * arrive through a signalfd in the same loop, so a handler never runs in
 * the middle of a stapler call. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "control_log.h"
#include "control_metrics.h"
#include "control_notify.h"
#include "control_server.h"
#include "staple_table.h"
#include "stapler.h"

#define DEFAULT_CONFIG "/etc/tern/tern.yaml"

struct daemon {
    const char *config_path;
    const char *socket_override;
    struct config *cfg;
    struct staple_table *table;
    char *table_name; /* the table opened at start (a reload cannot move it) */
    struct stapler *stapler;
    struct control_server *srv;
    struct control_metrics *metrics;
    int sigfd;
    bool stop;
    struct control_metrics_snapshot snap;
    json_t *last_reload_errors; /* strings of the last refused reload, or NULL */
    int64_t last_snapshot_ms;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- configuration to stapler ---- */

static void stapler_params_from(const struct config *cfg, struct stapler_params *p)
{
    const struct config_stapler *s = &cfg->stapler;
    stapler_params_default(p);
    p->cache_dir = s->cache_dir;
    p->refresh_fraction = s->refresh_fraction;
    p->refresh_jitter = s->jitter;
    /* config.c bounds every duration to a week or less: these fit 32 bits */
    p->backoff_min_ms = (uint32_t)s->backoff_min_ms;
    p->backoff_max_ms = (uint32_t)s->backoff_max_ms;
    p->connect_timeout_ms = (uint32_t)s->connect_timeout_ms;
    p->total_timeout_ms = (uint32_t)s->total_timeout_ms;
    p->max_response_bytes = (uint32_t)s->max_response_bytes;
    p->max_inflight_per_responder = s->per_responder_concurrency;
    p->clock_skew_s = (uint32_t)(s->clock_skew_ms / 1000);
    p->must_staple_warn_s = (uint32_t)(s->must_staple_warning_ms / 1000);
    p->log = control_log_stapler;
}

static enum stapler_policy policy_of(enum config_policy p)
{
    switch (p) {
    case CONFIG_POLICY_STRICT:
        return STAPLER_POLICY_STRICT;
    case CONFIG_POLICY_MUST_STAPLE:
        return STAPLER_POLICY_MUST_STAPLE;
    default:
        return STAPLER_POLICY_LENIENT;
    }
}

/* Hands CFG's certificates to the stapler. Per-certificate problems are
 * logged by the stapler and, if WARNINGS is given, appended to it.
 * Returns stapler_set_certs' result. */
static int apply_certs(struct daemon *d, const struct config *cfg, json_t *warnings)
{
    size_t n = cfg->n_certs;
    struct stapler_cert_spec *specs = calloc(n ? n : 1, sizeof(*specs));
    int *errs = calloc(n ? n : 1, sizeof(*errs));
    if (specs == NULL || errs == NULL) {
        free(specs);
        free(errs);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct config_cert *c = &cfg->certs[i];
        specs[i] = (struct stapler_cert_spec){
            .name = c->name,
            .chain_path = c->chain,
            .issuer_path = c->issuer,
            .policy = policy_of(c->policy),
            .ocsp_url = c->ocsp_url,
        };
    }
    int rc = stapler_set_certs(d->stapler, specs, n, errs);
    for (size_t i = 0; rc > 0 && i < n; i++) {
        if (errs[i] == 0)
            continue;
        char msg[300];
        snprintf(msg, sizeof(msg), "certificate %s: %s", cfg->certs[i].name, strerror(-errs[i]));
        if (warnings != NULL)
            json_array_append_new(warnings, json_string(msg));
    }
    free(specs);
    free(errs);
    return rc;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* ---- reload ---- */

static bool str_differ(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Settings read once at start: say so rather than pretend to apply them. */
static void warn_restart_only(const struct config *o, const struct config *n, json_t *warnings)
{
    const char *what[8];
    int k = 0;
    if (str_differ(o->table.shm_name, n->table.shm_name) || o->table.capacity != n->table.capacity)
        what[k++] = "table";
    if (str_differ(o->control.socket, n->control.socket) ||
        o->control.socket_mode != n->control.socket_mode ||
        str_differ(o->control.socket_group, n->control.socket_group))
        what[k++] = "control";
    if (o->metrics.enabled != n->metrics.enabled || o->metrics.listen.port != n->metrics.listen.port ||
        str_differ(o->metrics.listen.host, n->metrics.listen.host))
        what[k++] = "metrics";
    const struct config_stapler *a = &o->stapler, *b = &n->stapler;
    if (str_differ(a->cache_dir, b->cache_dir) || a->refresh_fraction != b->refresh_fraction ||
        a->jitter != b->jitter || a->backoff_min_ms != b->backoff_min_ms ||
        a->backoff_max_ms != b->backoff_max_ms || a->connect_timeout_ms != b->connect_timeout_ms ||
        a->total_timeout_ms != b->total_timeout_ms ||
        a->max_response_bytes != b->max_response_bytes ||
        a->per_responder_concurrency != b->per_responder_concurrency ||
        a->clock_skew_ms != b->clock_skew_ms || a->must_staple_warning_ms != b->must_staple_warning_ms)
        what[k++] = "stapler";
    for (int i = 0; i < k; i++) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "section '%s' changed: it takes effect when tern-control restarts", what[i]);
        control_log(STAPLER_LOG_WARNING, NULL, "reload: %s", msg);
        json_array_append_new(warnings, json_string(msg));
    }
}

/* Reads the configuration file again and applies it. A file with any
 * problem is refused as a whole: the running configuration keeps serving.
 * Returns 0 (applied; *RESULT describes it) or -1 (refused; *ERRORS lists
 * the problems). */
static int reload(struct daemon *d, json_t **result, json_t **errors)
{
    struct config_diag diag;

    control_notify("RELOADING=1");
    control_log(STAPLER_LOG_NOTICE, NULL, "reload: reading %s", d->config_path);
    config_diag_init(&diag);
    struct config *cfg = config_load_file(d->config_path, CONFIG_EXPAND_DIRS, &diag);
    if (cfg == NULL) {
        json_t *list = json_array();
        for (size_t i = 0; i < diag.n; i++) {
            control_log(STAPLER_LOG_ERR, NULL, "reload refused: %s", diag.v[i].msg);
            json_array_append_new(list, json_string(diag.v[i].msg));
        }
        if (diag.dropped)
            json_array_append_new(list, json_sprintf("... and %zu more problems", diag.dropped));
        control_log(STAPLER_LOG_ERR, NULL,
                    "reload refused: %zu problem(s); the running configuration keeps serving",
                    diag.n + diag.dropped);
        config_diag_free(&diag);
        json_decref(d->last_reload_errors);
        d->last_reload_errors = json_deep_copy(list);
        *errors = list;
        d->snap.reloads_refused++;
        control_notify("READY=1");
        return -1;
    }
    config_diag_free(&diag);

    json_t *warnings = json_array();
    warn_restart_only(d->cfg, cfg, warnings);
    int rc = apply_certs(d, cfg, warnings);
    if (rc < 0) {
        control_log(STAPLER_LOG_ERR, NULL, "reload refused: %s", strerror(-rc));
        *errors = json_pack("[s]", strerror(-rc));
        json_decref(warnings);
        config_free(cfg);
        d->snap.reloads_refused++;
        control_notify("READY=1");
        return -1;
    }
    config_free(d->cfg);
    d->cfg = cfg;
    json_decref(d->last_reload_errors);
    d->last_reload_errors = NULL;
    d->snap.reloads_ok++;
    d->snap.last_reload_ok = time(NULL);
    control_log(STAPLER_LOG_NOTICE, NULL, "reload: applied, %zu certificate(s), %d not loadable",
                cfg->n_certs, rc);
    *result = json_pack("{s:I,s:o}", "certificates", (json_int_t)cfg->n_certs, "warnings",
                        warnings);
    control_notify("READY=1");
    return 0;
}

/* ---- the API ---- */

static int add_cert(const struct stapler_cert_status *st, void *arg)
{
    api_list_add(arg, api_cert_json(st));
    return 0;
}

static json_t *status_json(struct daemon *d)
{
    struct stapler_metrics m;
    struct staple_table_stats ts = {0};
    stapler_metrics(d->stapler, &m);
    staple_table_stats(d->table, &ts);

    json_t *states = json_object();
    for (int s = 0; s < STAPLER_STATE__COUNT; s++)
        json_object_set_new(states, stapler_state_name((enum stapler_state)s),
                            json_integer(m.by_state[s]));
    char started[32], loaded[32];
    return json_pack(
        "{s:s,s:I,s:s,s:s,s:s,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
        "s:{s:s,s:I,s:I,s:I},s:{s:I,s:I},s:s,s:o*}",
        "version", "0.1.0", "pid", (json_int_t)getpid(), "config", d->config_path,
        "started", api_time_str(d->snap.started, started, sizeof(started)),
        "config_loaded", api_time_str(d->snap.last_reload_ok, loaded, sizeof(loaded)),
        "certificates", (json_int_t)m.certs, "states", states,
        "revoked", (json_int_t)m.by_state[STAPLER_STATE_REVOKED],
        "must_staple_at_risk", (json_int_t)m.must_staple_warnings,
        "fetches_ok", (json_int_t)m.fetches_ok, "fetches_failed", (json_int_t)m.fetches_failed,
        "inflight", (json_int_t)m.inflight, "queued", (json_int_t)m.queued,
        "seconds_to_next_update", (json_int_t)m.seconds_to_next_update,
        "table", "name", d->table_name, "capacity", (json_int_t)ts.capacity,
        "entries", (json_int_t)ts.entries, "response_bytes", (json_int_t)ts.response_bytes,
        "reloads", "ok", (json_int_t)d->snap.reloads_ok, "refused",
        (json_int_t)d->snap.reloads_refused,
        "socket", control_server_path(d->srv),
        "last_reload_errors", d->last_reload_errors ? json_deep_copy(d->last_reload_errors) : NULL);
}

static char *no_such_cert(const char *name)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "no certificate named '%s'", name);
    return api_reply_error(msg, NULL);
}

static char *answer(struct daemon *d, const struct api_request *req)
{
    struct stapler_cert_status st;
    struct api_list_writer list;
    json_t *result = NULL, *errors = NULL;
    int rc;

    switch (req->verb) {
    case API_STATUS:
        return api_reply_ok(status_json(d));
    case API_CERTS:
        if (api_list_begin(&list) < 0)
            return NULL;
        stapler_foreach_cert(d->stapler, add_cert, &list);
        return api_list_end(&list);
    case API_CERT:
        if (stapler_cert_status(d->stapler, req->name, &st) < 0)
            return no_such_cert(req->name);
        return api_reply_ok(api_cert_json(&st));
    case API_REFRESH:
        rc = stapler_refresh(d->stapler, req->all ? NULL : req->name);
        if (rc < 0)
            return no_such_cert(req->name);
        control_log(STAPLER_LOG_NOTICE, req->all ? NULL : req->name,
                    "refresh requested over the control socket: %d scheduled", rc);
        return api_reply_ok(json_pack("{s:i}", "scheduled", rc));
    case API_RELOAD:
        if (reload(d, &result, &errors) < 0)
            return api_reply_error("configuration refused; the running configuration keeps "
                                   "serving", errors);
        return api_reply_ok(result);
    }
    return api_reply_error("internal: unhandled verb", NULL);
}

static char *handle_line(void *arg, const char *line, size_t len)
{
    struct daemon *d = arg;
    struct api_request req;
    char err[256];

    d->snap.api_requests++;
    if (api_parse_request(line, len, &req, err, sizeof(err)) < 0) {
        d->snap.api_errors++;
        return api_reply_error(err, NULL);
    }
    char *reply = answer(d, &req);
    if (reply != NULL && strncmp(reply, "{\"ok\":false", 11) == 0)
        d->snap.api_errors++;
    /* NULL (out of memory) closes the connection: the client sees EOF
     * rather than a silent hang. */
    return reply;
}

/* ---- the loop ---- */

/* Scrapes see numbers at most 250 ms old; stapler_metrics walks every
 * certificate, so it is not called on each of a cold start's many loop
 * turns. */
static void refresh_snapshot(struct daemon *d, bool force)
{
    int64_t t = now_ms();
    if (!force && t - d->last_snapshot_ms < 250)
        return;
    d->last_snapshot_ms = t;
    stapler_metrics(d->stapler, &d->snap.stapler);
    staple_table_stats(d->table, &d->snap.table);
    control_metrics_update(d->metrics, &d->snap);
}

static void on_signal(struct daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            json_t *result = NULL, *errors = NULL;
            control_log(STAPLER_LOG_NOTICE, NULL, "SIGHUP: reloading");
            reload(d, &result, &errors);
            json_decref(result);
            json_decref(errors);
        } else {
            control_log(STAPLER_LOG_NOTICE, NULL, "%s: stopping", strsignal((int)si.ssi_signo));
            d->stop = true;
        }
    }
}

static int run(struct daemon *d)
{
    struct stapler_waitfd fds[2 + CONTROL_SERVER_MAX_CLIENTS];

    while (!d->stop) {
        unsigned n = 0;
        fds[n++] = (struct stapler_waitfd){.fd = d->sigfd, .events = POLLIN};
        n += control_server_fds(d->srv, fds + n, (unsigned)(sizeof(fds) / sizeof(fds[0])) - n);
        int rc = stapler_poll(d->stapler, 250, fds, n);
        if (rc < 0 && rc != -EINTR) {
            control_log(STAPLER_LOG_ERR, NULL, "stapler_poll: %s", strerror(-rc));
            poll(NULL, 0, 100); /* a failing libcurl must not spin the loop */
        }
        if (rc > 0) {
            if (fds[0].revents & POLLIN)
                on_signal(d);
            control_server_handle(d->srv, fds + 1, n - 1, handle_line, d);
        }
        control_server_expire(d->srv, CONTROL_SERVER_IDLE_MS);
        refresh_snapshot(d, false);
    }
    return 0;
}

/* ---- start and stop ---- */

static struct staple_table *open_table(const struct config *cfg)
{
    char err[256];
    uint32_t max_resp = (uint32_t)cfg->stapler.max_response_bytes;
    struct staple_table_params p = {
        .capacity = cfg->table.capacity,
        .max_response = max_resp > STAPLE_TABLE_DEFAULT_MAX_RESPONSE
                            ? max_resp : STAPLE_TABLE_DEFAULT_MAX_RESPONSE,
    };
    struct staple_table *t = staple_table_open_writer(cfg->table.shm_name, &p, err, sizeof(err));
    if (t == NULL && errno == EINVAL) {
        /* A table from an earlier run with other geometry: keep it (the
         * dataplane may be reading it) and say what differs. */
        control_log(STAPLER_LOG_WARNING, NULL,
                    "table %s exists with other geometry (%s); using it as it is; remove it "
                    "while the dataplane is stopped to resize", cfg->table.shm_name, err);
        t = staple_table_open_writer(cfg->table.shm_name, NULL, err, sizeof(err));
    }
    if (t == NULL)
        control_log(STAPLER_LOG_ERR, NULL, "staple table %s: %s", cfg->table.shm_name, err);
    return t;
}

static int start(struct daemon *d)
{
    char err[512];
    struct stapler_params sp;

    d->table = open_table(d->cfg);
    if (d->table == NULL)
        return -1;
    d->table_name = strdup(d->cfg->table.shm_name);
    if (d->table_name == NULL)
        return -1;

    if (d->cfg->stapler.cache_dir != NULL) {
        int rc = mkdir_p(d->cfg->stapler.cache_dir, 0700);
        if (rc < 0) {
            control_log(STAPLER_LOG_ERR, NULL, "cache directory %s: %s",
                        d->cfg->stapler.cache_dir, strerror(-rc));
            return -1;
        }
    }
    stapler_params_from(d->cfg, &sp);
    d->stapler = stapler_create(&sp, d->table, err, sizeof(err));
    if (d->stapler == NULL) {
        control_log(STAPLER_LOG_ERR, NULL, "%s", err);
        return -1;
    }
    int rc = apply_certs(d, d->cfg, NULL);
    if (rc < 0) {
        control_log(STAPLER_LOG_ERR, NULL, "loading certificates: %s", strerror(-rc));
        return -1;
    }
    /* The disk cache first: a restart staples at once, before any network. */
    rc = stapler_load_cache(d->stapler);
    if (rc < 0)
        control_log(STAPLER_LOG_WARNING, NULL, "disk cache %s unreadable: %s",
                    d->cfg->stapler.cache_dir, strerror(-rc));
    else
        control_log(STAPLER_LOG_NOTICE, NULL, "published %d response(s) from the disk cache", rc);

    const char *path = d->socket_override ? d->socket_override : d->cfg->control.socket;
    d->srv = control_server_open(path, d->cfg->control.socket_mode, d->cfg->control.socket_group,
                                 err, sizeof(err));
    if (d->srv == NULL) {
        control_log(STAPLER_LOG_ERR, NULL, "control socket: %s", err);
        return -1;
    }
    if (d->cfg->metrics.enabled) {
        d->metrics = control_metrics_start(&d->cfg->metrics.listen, err, sizeof(err));
        if (d->metrics == NULL) {
            control_log(STAPLER_LOG_ERR, NULL, "%s", err);
            return -1;
        }
    }
    d->snap.started = d->snap.last_reload_ok = time(NULL);
    refresh_snapshot(d, true);
    char metrics[96] = "off";
    if (d->metrics)
        snprintf(metrics, sizeof(metrics), "%s%s%s:%u/metrics",
                 d->cfg->metrics.listen.family == AF_INET6 ? "http://[" : "http://",
                 d->cfg->metrics.listen.host,
                 d->cfg->metrics.listen.family == AF_INET6 ? "]" : "",
                 d->cfg->metrics.listen.port);
    control_log(STAPLER_LOG_NOTICE, NULL, "ready: %zu certificate(s), table %s, socket %s, "
                "metrics %s", d->cfg->n_certs, d->cfg->table.shm_name, path, metrics);
    control_notify("READY=1");
    return 0;
}

static void stop(struct daemon *d)
{
    control_notify("STOPPING=1");
    control_server_close(d->srv);
    control_metrics_stop(d->metrics);
    /* Destroying the stapler leaves the table's contents: the dataplane
     * keeps stapling until the responses' nextUpdate. */
    stapler_destroy(d->stapler);
    staple_table_close(d->table);
    free(d->table_name);
    config_free(d->cfg);
    json_decref(d->last_reload_errors);
    if (d->sigfd >= 0)
        close(d->sigfd);
}

static int check_only(const char *path)
{
    struct config_diag diag;
    config_diag_init(&diag);
    struct config *cfg = config_load_file(path, CONFIG_EXPAND_DIRS, &diag);
    config_diag_print(&diag, stderr);
    if (cfg == NULL) {
        fprintf(stderr, "%s: %zu problem(s)\n", path, diag.n + diag.dropped);
        config_diag_free(&diag);
        return 1;
    }
    printf("%s: ok: %zu certificate(s), %zu listener(s), %zu backend pool(s)\n", path,
           cfg->n_certs, cfg->n_listeners, cfg->n_pools);
    config_free(cfg);
    config_diag_free(&diag);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tern-control [--config FILE] [--socket PATH] [--foreground] [--verbose]\n"
            "       tern-control --check FILE\n"
            "\n"
            "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
            "  -s, --socket PATH   control socket, overriding the configuration's\n"
            "  -f, --foreground    accepted for clarity: tern-control never forks\n"
            "  -v, --verbose       log debug messages too\n"
            "  -C, --check FILE    check FILE, print every problem, exit 0 if valid\n"
            "  -h, --help          this text\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"socket", required_argument, NULL, 's'},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"check", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct daemon d = {.config_path = DEFAULT_CONFIG, .sigfd = -1};
    const char *check = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "c:s:fvC:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            d.config_path = optarg;
            break;
        case 's':
            d.socket_override = optarg;
            break;
        case 'f':
            break;
        case 'v':
            control_log_set_level(STAPLER_LOG_DEBUG);
            break;
        case 'C':
            check = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (check != NULL)
        return check_only(check);

    struct config_diag diag;
    config_diag_init(&diag);
    d.cfg = config_load_file(d.config_path, CONFIG_EXPAND_DIRS, &diag);
    for (size_t i = 0; i < diag.n; i++)
        control_log(STAPLER_LOG_ERR, NULL, "%s", diag.v[i].msg);
    config_diag_free(&diag);
    if (d.cfg == NULL) {
        control_log(STAPLER_LOG_ERR, NULL, "not starting: the configuration has problems");
        return 1;
    }

    /* Block the signals we handle before any thread exists (libcurl's
     * resolver, microhttpd): they inherit the mask, and the signals reach
     * the signalfd only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d.sigfd < 0) {
        control_log(STAPLER_LOG_ERR, NULL, "signalfd: %s", strerror(errno));
        config_free(d.cfg);
        return 1;
    }

    int rc = start(&d) == 0 ? run(&d) : 1;
    stop(&d);
    control_log(STAPLER_LOG_NOTICE, NULL, "stopped");
    return rc;
}
