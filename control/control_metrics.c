/* Prometheus metrics over libmicrohttpd (control_metrics.h).
 *
 * Why a thread and a mutex rather than one more descriptor in the daemon's
 * poll loop: libmicrohttpd's external-select mode wants its whole fd set
 * rebuilt and MHD_run called on every wake-up, which would tie scrape
 * latency to the stapler's loop and the stapler's loop to slow scrapers.
 * Its internal thread keeps the two apart; the only shared state is one
 * plain struct copied under a mutex, held for a memcpy. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "control_metrics.h"
#include "stapler.h"

struct control_metrics {
    struct MHD_Daemon *mhd;
    pthread_mutex_t lock;
    struct control_metrics_snapshot snap; /* under lock */
};

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
            (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

char *control_metrics_format(const struct control_metrics_snapshot *snap)
{
    static const unsigned bounds[STAPLER_LATENCY_BUCKETS - 1] = STAPLER_LATENCY_BOUNDS_MS;
    const struct stapler_metrics *m = &snap->stapler;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;

    gauge(f, "tern_certificates", "Certificates configured.", m->certs);
    fprintf(f, "# HELP tern_staples Certificates by stapling state.\n"
               "# TYPE tern_staples gauge\n");
    for (int s = 0; s < STAPLER_STATE__COUNT; s++)
        fprintf(f, "tern_staples{state=\"%s\"} %u\n", stapler_state_name((enum stapler_state)s),
                m->by_state[s]);
    gauge(f, "tern_staples_revoked",
          "Certificates whose published response says revoked.",
          m->by_state[STAPLER_STATE_REVOKED]);
    gauge(f, "tern_must_staple_at_risk",
          "Must-staple certificates with no valid staple or one close to its nextUpdate.",
          m->must_staple_warnings);

    fprintf(f, "# HELP tern_ocsp_fetches_total OCSP fetches by result and reason.\n"
               "# TYPE tern_ocsp_fetches_total counter\n");
    for (int r = 0; r < STAPLER_REASON__COUNT; r++)
        fprintf(f, "tern_ocsp_fetches_total{result=\"%s\",reason=\"%s\"} %llu\n",
                r == STAPLER_REASON_OK ? "ok" : "error",
                stapler_reason_name((enum stapler_reason)r), (unsigned long long)m->fetches[r]);

    gauge(f, "tern_ocsp_seconds_to_next_update",
          "Seconds until the nearest nextUpdate of a published response (-1: none).",
          (double)m->seconds_to_next_update);

    fprintf(f, "# HELP tern_ocsp_responder_latency_seconds Time to an HTTP answer from a "
               "responder.\n# TYPE tern_ocsp_responder_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < STAPLER_LATENCY_BUCKETS; b++) {
        cum += m->latency_buckets[b];
        if (b < STAPLER_LATENCY_BUCKETS - 1)
            fprintf(f, "tern_ocsp_responder_latency_seconds_bucket{le=\"%g\"} %llu\n",
                    bounds[b] / 1000.0, (unsigned long long)cum);
        else
            fprintf(f, "tern_ocsp_responder_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                    (unsigned long long)cum);
    }
    fprintf(f, "tern_ocsp_responder_latency_seconds_sum %.6f\n",
            (double)m->latency_sum_us / 1e6);
    fprintf(f, "tern_ocsp_responder_latency_seconds_count %llu\n",
            (unsigned long long)m->latency_count);

    gauge(f, "tern_ocsp_fetches_in_flight", "OCSP requests being transferred.", m->inflight);
    gauge(f, "tern_ocsp_fetches_queued", "OCSP requests waiting for a responder slot.",
          m->queued);
    gauge(f, "tern_ocsp_responder_inflight_max",
          "Most requests seen in flight to one responder at once since start.",
          m->max_inflight_per_responder_seen);
    counter(f, "tern_staple_publishes_total", "Responses published into the table.",
            m->publishes);
    counter(f, "tern_staple_withdrawals_total", "Expired responses withdrawn from the table.",
            m->withdrawals);
    counter(f, "tern_staple_cache_loaded_total", "Responses published from the disk cache.",
            m->cache_loaded);
    counter(f, "tern_staple_cache_rejected_total",
            "Disk cache files ignored: corrupt, foreign or no longer valid.", m->cache_rejected);
    counter(f, "tern_staple_cache_write_errors_total", "Failed disk cache writes.",
            m->cache_write_errors);

    gauge(f, "tern_staple_table_entries", "Responses in the shared-memory table.",
          snap->table.entries);
    gauge(f, "tern_staple_table_capacity", "Certificates the table can hold.",
          snap->table.capacity);
    gauge(f, "tern_staple_table_response_bytes", "Bytes of responses in the table.",
          (double)snap->table.response_bytes);

    fprintf(f, "# HELP tern_config_reloads_total Configuration reloads by result.\n"
               "# TYPE tern_config_reloads_total counter\n"
               "tern_config_reloads_total{result=\"ok\"} %llu\n"
               "tern_config_reloads_total{result=\"refused\"} %llu\n",
            (unsigned long long)snap->reloads_ok, (unsigned long long)snap->reloads_refused);
    gauge(f, "tern_config_last_load_timestamp_seconds",
          "When the configuration in use was loaded.", (double)snap->last_reload_ok);
    counter(f, "tern_api_requests_total", "Control socket requests.", snap->api_requests);
    counter(f, "tern_api_errors_total", "Control socket requests answered with an error.",
            snap->api_errors);
    gauge(f, "tern_control_start_timestamp_seconds", "When tern-control started.",
          (double)snap->started);

    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *body, enum MHD_ResponseMemoryMode mode)
{
    /* PERSISTENT bodies are never written to; MUST_FREE ones are ours. */
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, mode);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", status == MHD_HTTP_OK
                                                   ? "text/plain; version=0.0.4; charset=utf-8"
                                                   : "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct control_metrics *m = cls;
    (void)version;
    (void)upload;
    (void)con_cls;

    if (*upload_size != 0) {
        *upload_size = 0; /* a body to a GET-only endpoint: drop it */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n", MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") != 0)
        return send_text(conn, MHD_HTTP_NOT_FOUND, "metrics are at /metrics\n",
                         MHD_RESPMEM_PERSISTENT);

    struct control_metrics_snapshot snap;
    pthread_mutex_lock(&m->lock);
    snap = m->snap;
    pthread_mutex_unlock(&m->lock);
    char *body = control_metrics_format(&snap);
    if (body == NULL)
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
                         MHD_RESPMEM_PERSISTENT);
    return send_text(conn, MHD_HTTP_OK, body, MHD_RESPMEM_MUST_FREE);
}

struct control_metrics *control_metrics_start(const struct config_hostport *listen,
                                              char *err, size_t errlen)
{
    struct sockaddr_storage ss = {0};
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

    if (listen->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(listen->port);
        if (inet_pton(AF_INET6, listen->host, &s6->sin6_addr) != 1)
            goto bad_addr;
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(listen->port);
        if (inet_pton(AF_INET, listen->host, &s4->sin_addr) != 1)
            goto bad_addr;
    }

    struct control_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->snap.stapler.seconds_to_next_update = -1;
    /* A few scrapers at most; a short connection timeout so a stuck
     * client cannot hold a slot. */
    m->mhd = MHD_start_daemon(flags, listen->port, NULL, NULL, answer, m,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                              MHD_OPTION_END);
    if (m->mhd == NULL) {
        snprintf(err, errlen, "metrics: cannot listen on %s:%u (address in use or not local?)",
                 listen->host, listen->port);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
    }
    return m;

bad_addr:
    snprintf(err, errlen, "metrics: bad address %s", listen->host);
    return NULL;
}

void control_metrics_update(struct control_metrics *m, const struct control_metrics_snapshot *snap)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    m->snap = *snap;
    pthread_mutex_unlock(&m->lock);
}

void control_metrics_stop(struct control_metrics *m)
{
    if (m == NULL)
        return;
    MHD_stop_daemon(m->mhd);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
