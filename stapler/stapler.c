/* The OCSP stapler: inventory, schedule, fetch, validate, publish, cache.
 *
 * One struct cert per configured certificate, one struct responder per
 * origin (scheme://host:port) with its own in-flight count and FIFO queue,
 * one struct fetch per certificate at most (the one-fetch-per-certificate
 * rule is `cert->fetch != NULL`). Timed work (refresh, retry, expiry of
 * the held response, the must-staple warning) sits in a binary min-heap of
 * certificates keyed by their next deadline, so a poll costs O(log n) per
 * due certificate and nothing for the others.
 *
 * Invariant that matters most: c->der is the response in the table, and it
 * is only ever replaced by a response that passed ocsp_validate() against
 * this certificate with held_this_update = the held one's thisUpdate. Every
 * failure path leaves c->der and the table alone. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "ocsp_request.h"
#include "ocsp_validate.h"
#include "staple_table.h"
#include "stapler.h"
#include "stapler_cache.h"
#include "stapler_inventory.h"
#include "stapler_schedule.h"

#define HEAP_NONE SIZE_MAX

struct responder {
    char *origin;            /* scheme://host:port */
    uint32_t inflight;
    uint32_t max_seen;
    struct fetch *q_head, *q_tail;
    struct responder *next;
};

struct fetch {
    struct cert *cert;
    struct responder *resp;  /* where it is queued or running */
    unsigned url_idx;        /* index in cert->inv.urls */
    unsigned tried;          /* URLs tried in this attempt, this one included */
    CURL *easy;              /* non-NULL while running */
    struct curl_slist *hdrs;
    uint8_t *req;            /* DER request (OPENSSL_malloc'd) */
    size_t req_len;
    uint8_t *body;
    size_t len, cap;
    size_t max;              /* body cap */
    bool too_large;
    struct fetch *prev, *next; /* queue links while queued */
};

struct cert {
    char *name;
    enum stapler_policy policy;
    struct stapler_inventory inv;
    struct responder *resp[STAPLER_MAX_URLS];
    unsigned url_idx;        /* URL that answered last; tried first */
    enum stapler_state state;
    /* the held response, also the one in the table */
    uint8_t *der;
    size_t der_len;
    int64_t this_update, next_update, revocation_time;
    enum stapler_ocsp_status ocsp;
    bool published;
    bool warning;
    int64_t next_refresh_ms; /* 0: none planned */
    int64_t last_fetch;
    uint32_t failures;
    enum stapler_reason last_reason;
    char last_error[STAPLER_ERR_LEN];
    struct fetch *fetch;
    size_t heap_idx;
    int64_t due_ms;
    unsigned mark;           /* set_certs generation that claimed it */
    bool cache_dirty;        /* in stapler.cache_pending */
};

struct stapler {
    struct stapler_params p;
    char *cache_dir;
    struct staple_table *table;
    CURLM *multi;
    struct cert **certs;
    size_t n_certs;
    struct cert **heap;
    size_t heap_n, heap_cap;
    struct responder *responders;
    uint64_t rng;
    unsigned generation;
    bool destroying;
    uint32_t inflight, queued;
    struct stapler_metrics m; /* counters; gauges are computed on demand */
    struct ocsp_delegate_memo memo; /* vetted delegated responders */
    struct cert **cache_pending;    /* responses to write to disk at the end
                                     * of this poll, in one batch */
    size_t n_pending, cap_pending;
};

static const int latency_bounds_ms[] = STAPLER_LATENCY_BOUNDS_MS;

/* ---- small helpers ------------------------------------------------------ */

static void slog(struct stapler *s, enum stapler_log_level lvl, const struct cert *c,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void slog(struct stapler *s, enum stapler_log_level lvl, const struct cert *c,
                 const char *fmt, ...)
{
    if (s->p.log == NULL)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->p.log(s->p.log_arg, lvl, c ? c->name : NULL, msg);
}

static int64_t now_ms(struct stapler *s)
{
    if (s->p.clock != NULL)
        return s->p.clock(s->p.clock_arg) * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter only, not security. */
static double rnd(struct stapler *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}

static const char *fmt_time(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
        snprintf(buf, cap, "-");
    else
        strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static bool fetchable(const struct cert *c)
{
    return c->inv.have_key && c->inv.issuer != NULL && c->inv.n_urls > 0;
}

/* ---- the deadline heap --------------------------------------------------- */

static void heap_swap(struct stapler *s, size_t a, size_t b)
{
    struct cert *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_idx = a;
    s->heap[b]->heap_idx = b;
}

static void heap_up(struct stapler *s, size_t i)
{
    while (i > 0 && s->heap[(i - 1) / 2]->due_ms > s->heap[i]->due_ms) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct stapler *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_n && s->heap[l]->due_ms < s->heap[m]->due_ms)
            m = l;
        if (r < s->heap_n && s->heap[r]->due_ms < s->heap[m]->due_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

static void heap_remove(struct stapler *s, struct cert *c)
{
    size_t i = c->heap_idx;
    if (i == HEAP_NONE)
        return;
    c->heap_idx = HEAP_NONE;
    s->heap_n--;
    if (i == s->heap_n)
        return;
    s->heap[i] = s->heap[s->heap_n];
    s->heap[i]->heap_idx = i;
    heap_up(s, i);
    heap_down(s, s->heap[i]->heap_idx);
}

/* heap_cap is kept >= n_certs by set_certs, so insertion cannot fail. */
static void heap_set(struct stapler *s, struct cert *c, int64_t due)
{
    if (c->heap_idx == HEAP_NONE) {
        c->due_ms = due;
        c->heap_idx = s->heap_n;
        s->heap[s->heap_n++] = c;
        heap_up(s, c->heap_idx);
        return;
    }
    int64_t old = c->due_ms;
    c->due_ms = due;
    if (due < old)
        heap_up(s, c->heap_idx);
    else
        heap_down(s, c->heap_idx);
}

/* The next moment C needs attention: its refresh (unless a fetch is under
 * way), the expiry of its held response, its must-staple warning. */
static void reschedule(struct stapler *s, struct cert *c)
{
    int64_t due = INT64_MAX;
    if (c->next_refresh_ms > 0 && c->fetch == NULL && fetchable(c))
        due = c->next_refresh_ms;
    if (c->published) {
        int64_t exp = c->next_update * 1000;
        if (exp < due)
            due = exp;
        int64_t warn = (c->next_update - (int64_t)s->p.must_staple_warn_s) * 1000;
        if (c->inv.must_staple || c->policy == STAPLER_POLICY_MUST_STAPLE)
            if (!c->warning && warn < due)
                due = warn;
    }
    if (due == INT64_MAX)
        heap_remove(s, c);
    else
        heap_set(s, c, due);
}

/* ---- state and warnings ------------------------------------------------- */

static void set_state(struct stapler *s, struct cert *c, enum stapler_state st,
                      const char *why)
{
    if (c->state == st)
        return;
    enum stapler_log_level lvl = STAPLER_LOG_NOTICE;
    if (st == STAPLER_STATE_REVOKED || st == STAPLER_STATE_INVALID)
        lvl = STAPLER_LOG_ERR;
    else if (st == STAPLER_STATE_FAILING || st == STAPLER_STATE_EXPIRED ||
             st == STAPLER_STATE_UNKNOWN)
        lvl = STAPLER_LOG_WARNING;
    slog(s, lvl, c, "state %s -> %s: %s", stapler_state_name(c->state),
         stapler_state_name(st), why);
    c->state = st;
}

static bool is_must_staple(const struct cert *c)
{
    return c->inv.must_staple || c->policy == STAPLER_POLICY_MUST_STAPLE;
}

static void update_warning(struct stapler *s, struct cert *c, int64_t now)
{
    bool w = false;
    if (is_must_staple(c))
        w = !c->published ||
            now >= (c->next_update - (int64_t)s->p.must_staple_warn_s) * 1000;
    if (w == c->warning)
        return;
    c->warning = w;
    if (!w)
        slog(s, STAPLER_LOG_NOTICE, c, "must-staple: valid staple again, warning cleared");
    else if (!c->published)
        slog(s, STAPLER_LOG_WARNING, c,
             "must-staple certificate has NO valid staple: clients will hard-fail (state %s)",
             stapler_state_name(c->state));
    else
        slog(s, STAPLER_LOG_WARNING, c,
             "must-staple certificate's staple expires in %lld s and no newer one yet",
             (long long)(c->next_update - now / 1000));
}

/* ---- responders and transfers ------------------------------------------- */

static struct responder *responder_get(struct stapler *s, const char *url)
{
    char origin[512];
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
        snprintf(origin, sizeof(origin), "%s://%s:%s", scheme, host, port);
    else
        snprintf(origin, sizeof(origin), "%s", url);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);

    for (struct responder *r = s->responders; r != NULL; r = r->next)
        if (strcmp(r->origin, origin) == 0)
            return r;
    struct responder *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->origin = strdup(origin)) == NULL) {
        free(r);
        return NULL;
    }
    r->next = s->responders;
    s->responders = r;
    return r;
}

static void queue_push(struct responder *r, struct fetch *f)
{
    f->next = NULL;
    f->prev = r->q_tail;
    if (r->q_tail)
        r->q_tail->next = f;
    else
        r->q_head = f;
    r->q_tail = f;
}

static void queue_unlink(struct responder *r, struct fetch *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        r->q_head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        r->q_tail = f->prev;
    f->prev = f->next = NULL;
}


static void fetch_finish(struct stapler *s, struct fetch *f, enum stapler_reason r,
                         const char *msg, int64_t now);
static void dispatch(struct stapler *s, struct responder *r);

/* libcurl's write callback: grows the body buffer and aborts the transfer
 * once the cap would be exceeded (returning less than given makes libcurl
 * fail the transfer with CURLE_WRITE_ERROR). */
static size_t on_body(char *data, size_t sz, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    size_t n = sz * nmemb;
    if (n > f->max - f->len) {
        f->too_large = true;
        return 0;
    }
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n)
            cap *= 2;
        if (cap > f->max)
            cap = f->max;
        uint8_t *b = realloc(f->body, cap);
        if (b == NULL)
            return 0;
        f->body = b;
        f->cap = cap;
    }
    memcpy(f->body + f->len, data, n);
    f->len += n;
    return n;
}

static void fetch_free(struct fetch *f)
{
    if (f == NULL)
        return;
    if (f->easy)
        curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->hdrs);
    OPENSSL_free(f->req);
    free(f->body);
    free(f);
}

/* Ends a running transfer's hold on its responder and lets the next queued
 * request of that responder start. */
static void release_slot(struct stapler *s, struct fetch *f)
{
    curl_multi_remove_handle(s->multi, f->easy);
    curl_easy_cleanup(f->easy);
    f->easy = NULL;
    curl_slist_free_all(f->hdrs);
    f->hdrs = NULL;
    f->resp->inflight--;
    s->inflight--;
    if (!s->destroying)
        dispatch(s, f->resp);
}

static int launch(struct stapler *s, struct fetch *f)
{
    struct cert *c = f->cert;
    const char *base = c->inv.urls[f->url_idx];
    char url[OCSP_REQUEST_GET_MAX + 1];
    bool get = ocsp_request_get_url(base, f->req, f->req_len, url, sizeof(url)) > 0;

    f->len = 0;
    f->too_large = false;
    f->easy = curl_easy_init();
    if (f->easy == NULL)
        return -ENOMEM;
    CURL *e = f->easy;
    curl_easy_setopt(e, CURLOPT_URL, get ? url : base);
    curl_easy_setopt(e, CURLOPT_PRIVATE, f);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->p.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->p.total_timeout_ms);
    /* Refuse early when the responder announces a bigger body. */
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->p.max_response_bytes);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "tern-stapler/0.1");
    if (!get) {
        f->hdrs = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
        struct curl_slist *h2 = f->hdrs ? curl_slist_append(f->hdrs, "Expect:") : NULL;
        if (h2 == NULL)
            return -ENOMEM;
        f->hdrs = h2;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, f->hdrs);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)f->req);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)f->req_len);
    }
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
        return -ENOMEM;
    f->resp->inflight++;
    s->inflight++;
    if (f->resp->inflight > f->resp->max_seen)
        f->resp->max_seen = f->resp->inflight;
    if (f->resp->inflight > s->m.max_inflight_per_responder_seen)
        s->m.max_inflight_per_responder_seen = f->resp->inflight;
    slog(s, STAPLER_LOG_DEBUG, c, "fetch %s %s", get ? "GET" : "POST", base);
    return 0;
}

static void launch_or_fail(struct stapler *s, struct fetch *f)
{
    int rc = launch(s, f);
    if (rc == 0)
        return;
    if (f->easy) {
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "cannot start a transfer: %s", strerror(-rc));
    fetch_finish(s, f, STAPLER_REASON_INTERNAL, msg, now_ms(s));
}

/* Starts queued requests of R while it has free slots. */
static void dispatch(struct stapler *s, struct responder *r)
{
    while (r->inflight < s->p.max_inflight_per_responder && r->q_head != NULL) {
        struct fetch *f = r->q_head;
        queue_unlink(r, f);
        s->queued--;
        launch_or_fail(s, f);
    }
}

/* Sends F to the responder of its current URL: at once if a slot is free,
 * else at the end of that responder's queue. */
static void submit(struct stapler *s, struct fetch *f)
{
    struct cert *c = f->cert;
    f->resp = c->resp[f->url_idx];
    if (f->resp->inflight < s->p.max_inflight_per_responder && f->resp->q_head == NULL) {
        launch_or_fail(s, f);
        return;
    }
    queue_push(f->resp, f);
    s->queued++;
}

static void start_fetch(struct stapler *s, struct cert *c)
{
    if (c->fetch != NULL || !fetchable(c))
        return;
    struct fetch *f = calloc(1, sizeof(*f));
    if (f == NULL || ocsp_request_build(c->inv.leaf, c->inv.issuer, &f->req, &f->req_len) < 0) {
        free(f);
        c->failures++;
        c->last_reason = STAPLER_REASON_INTERNAL;
        snprintf(c->last_error, sizeof(c->last_error), "cannot build the OCSP request");
        c->next_refresh_ms = now_ms(s) + stapler_backoff_ms(c->failures, s->p.backoff_min_ms,
                                                            s->p.backoff_max_ms, rnd(s));
        return;
    }
    f->cert = c;
    f->max = s->p.max_response_bytes;
    f->url_idx = c->url_idx < c->inv.n_urls ? c->url_idx : 0;
    f->tried = 1;
    c->fetch = f;
    c->next_refresh_ms = 0;
    submit(s, f);
}

/* Aborts F wherever it is, without an outcome. */
static void cancel_fetch(struct stapler *s, struct fetch *f)
{
    if (f->easy != NULL)
        release_slot(s, f);
    else if (f->resp != NULL && (f->prev != NULL || f->resp->q_head == f)) {
        queue_unlink(f->resp, f);
        s->queued--;
    }
    f->cert->fetch = NULL;
    fetch_free(f);
}

/* ---- outcomes ------------------------------------------------------------ */

static void record_latency(struct stapler *s, CURL *e)
{
    curl_off_t us = 0;
    if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK || us < 0)
        return;
    unsigned b = 0;
    while (b < STAPLER_LATENCY_BUCKETS - 1 && us > (curl_off_t)latency_bounds_ms[b] * 1000)
        b++;
    s->m.latency_buckets[b]++;
    s->m.latency_count++;
    s->m.latency_sum_us += (uint64_t)us;
    if ((uint64_t)us > s->m.latency_max_us)
        s->m.latency_max_us = (uint64_t)us;
}

/* Makes DER (validated as V) the held and published response of C.
 * Takes ownership of DER. Returns 0, or -errno from the table (then
 * nothing changed and DER is freed). */
static int accept_response(struct stapler *s, struct cert *c, uint8_t *der, size_t len,
                           const struct ocsp_verdict *v, int64_t now, const char *source)
{
    int rc = staple_table_publish(s->table, c->inv.key, der, (uint32_t)len,
                                  v->this_update, v->next_update);
    if (rc < 0) {
        free(der);
        return rc;
    }
    s->m.publishes++;
    free(c->der);
    c->der = der;
    c->der_len = len;
    c->this_update = v->this_update;
    c->next_update = v->next_update;
    c->revocation_time = v->revocation_time;
    c->ocsp = v->status;
    c->published = true;
    c->next_refresh_ms = stapler_refresh_at_ms(v->this_update * 1000, v->next_update * 1000,
                                               s->p.refresh_fraction, s->p.refresh_jitter,
                                               rnd(s));
    int64_t latest = now + (int64_t)s->p.max_refresh_s * 1000;
    if (c->next_refresh_ms > latest)
        c->next_refresh_ms = latest - (int64_t)(rnd(s) * s->p.refresh_jitter *
                                                s->p.max_refresh_s * 1000.0);
    /* A window already mostly spent (a late cache load, a responder with
     * old pre-signed responses) must not turn into a tight loop. */
    if (c->next_refresh_ms < now + (int64_t)s->p.backoff_min_ms)
        c->next_refresh_ms = now + (int64_t)s->p.backoff_min_ms;

    char t1[32], t2[32], why[160];
    snprintf(why, sizeof(why), "%s response, thisUpdate %s, nextUpdate %s", source,
             fmt_time(c->this_update, t1, sizeof(t1)), fmt_time(c->next_update, t2, sizeof(t2)));
    enum stapler_state st = v->status == STAPLER_OCSP_GOOD      ? STAPLER_STATE_GOOD
                            : v->status == STAPLER_OCSP_REVOKED ? STAPLER_STATE_REVOKED
                                                                : STAPLER_STATE_UNKNOWN;
    set_state(s, c, st, why);
    if (st == STAPLER_STATE_REVOKED)
        /* Every time, not only on the transition: a revoked certificate
         * still configured is an incident until someone replaces it. */
        slog(s, STAPLER_LOG_ERR, c,
             "certificate is REVOKED (since %s, CRL reason %d): stapling the revocation",
             fmt_time(c->revocation_time, t1, sizeof(t1)), v->revocation_reason);
    else
        slog(s, STAPLER_LOG_INFO, c, "published %s", why);
    update_warning(s, c, now);
    return 0;
}

static void outcome_failure(struct stapler *s, struct cert *c, enum stapler_reason r,
                            const char *msg, int64_t now)
{
    c->failures++;
    c->last_reason = r;
    snprintf(c->last_error, sizeof(c->last_error), "%s", msg);
    int64_t delay = stapler_backoff_ms(c->failures, s->p.backoff_min_ms, s->p.backoff_max_ms,
                                       rnd(s));
    c->next_refresh_ms = now + delay;
    if (c->published) {
        char t[32];
        slog(s, STAPLER_LOG_WARNING, c,
             "refresh failed (%s: %s); keeping the held response until %s; retry %u in %lld ms",
             stapler_reason_name(r), msg, fmt_time(c->next_update, t, sizeof(t)), c->failures,
             (long long)delay);
    } else {
        char why[STAPLER_ERR_LEN + 64];
        snprintf(why, sizeof(why), "%s: %s", stapler_reason_name(r), msg);
        if (c->state != STAPLER_STATE_EXPIRED)
            set_state(s, c, STAPLER_STATE_FAILING, why);
        slog(s, STAPLER_LOG_WARNING, c, "fetch failed (%s); retry %u in %lld ms", why,
             c->failures, (long long)delay);
    }
    update_warning(s, c, now);
}

/* The attempt F is over with R (OK: BODY validated as V, ownership of the
 * body moves to the held response). Tries the next URL on failure while
 * some are untried; else applies the outcome to the certificate. */
static void fetch_finish(struct stapler *s, struct fetch *f, enum stapler_reason r,
                         const char *msg, int64_t now)
{
    struct cert *c = f->cert;
    if (r != STAPLER_REASON_OK && f->tried < c->inv.n_urls && fetchable(c)) {
        slog(s, STAPLER_LOG_INFO, c, "%s failed (%s: %s); trying the next URL",
             c->inv.urls[f->url_idx % c->inv.n_urls], stapler_reason_name(r), msg);
        f->url_idx = (f->url_idx + 1) % c->inv.n_urls;
        f->tried++;
        submit(s, f);
        return;
    }
    s->m.fetches[r]++;
    c->last_fetch = now / 1000;
    c->fetch = NULL;
    if (r == STAPLER_REASON_OK) {
        s->m.fetches_ok++;
        c->failures = 0;
        c->last_reason = r;
        c->last_error[0] = '\0';
        c->url_idx = f->url_idx;
    } else {
        s->m.fetches_failed++;
        outcome_failure(s, c, r, msg, now);
    }
    fetch_free(f);
    reschedule(s, c);
}

static enum stapler_reason transfer_reason(CURLcode cc, struct fetch *f, long http,
                                           char *msg, size_t cap)
{
    if (cc == CURLE_OK) {
        if (http == 200)
            return STAPLER_REASON_OK;
        snprintf(msg, cap, "HTTP status %ld", http);
        return STAPLER_REASON_HTTP_STATUS;
    }
    snprintf(msg, cap, "%s", curl_easy_strerror(cc));
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return STAPLER_REASON_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return STAPLER_REASON_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        snprintf(msg, cap, "body above %zu bytes", f->max);
        return STAPLER_REASON_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        if (f->too_large) {
            snprintf(msg, cap, "body above %zu bytes", f->max);
            return STAPLER_REASON_TOO_LARGE;
        }
        return STAPLER_REASON_INTERNAL;
    default:
        return STAPLER_REASON_TRANSPORT;
    }
}

/* Queues C's held response for the disk cache; written by cache_flush()
 * at the end of the poll, with the other responses of that poll. */
static void cache_mark(struct stapler *s, struct cert *c)
{
    if (s->cache_dir == NULL || c->cache_dirty)
        return;
    if (s->n_pending == s->cap_pending) {
        size_t cap = s->cap_pending ? 2 * s->cap_pending : 64;
        struct cert **p = realloc(s->cache_pending, cap * sizeof(*p));
        if (p == NULL) {
            s->m.cache_write_errors++;
            slog(s, STAPLER_LOG_WARNING, c, "cache write skipped: out of memory");
            return;
        }
        s->cache_pending = p;
        s->cap_pending = cap;
    }
    s->cache_pending[s->n_pending++] = c;
    c->cache_dirty = true;
}

static void cache_unmark(struct stapler *s, struct cert *c)
{
    for (size_t i = 0; c->cache_dirty && i < s->n_pending; i++)
        if (s->cache_pending[i] == c)
            s->cache_pending[i] = s->cache_pending[--s->n_pending];
    c->cache_dirty = false;
}

static void cache_flush(struct stapler *s)
{
    size_t n = 0;
    struct stapler_cache_item *items =
        s->n_pending ? calloc(s->n_pending, sizeof(*items)) : NULL;
    for (size_t i = 0; items != NULL && i < s->n_pending; i++) {
        struct cert *c = s->cache_pending[i];
        if (c->der == NULL) /* withdrawn meanwhile: nothing to keep */
            continue;
        items[n++] = (struct stapler_cache_item){.key = c->inv.key, .der = c->der,
                                                 .len = c->der_len};
    }
    if (items == NULL && s->n_pending > 0) {
        s->m.cache_write_errors += s->n_pending;
        slog(s, STAPLER_LOG_WARNING, NULL, "cache writes skipped: out of memory");
    }
    if (n > 0 && stapler_cache_write_batch(s->cache_dir, items, n) > 0) {
        for (size_t i = 0, j = 0; i < s->n_pending; i++) {
            struct cert *c = s->cache_pending[i];
            if (c->der == NULL)
                continue;
            if (items[j].rc < 0) {
                s->m.cache_write_errors++;
                slog(s, STAPLER_LOG_WARNING, c, "cache write failed: %s",
                     strerror(-items[j].rc));
            }
            j++;
        }
    }
    free(items);
    for (size_t i = 0; i < s->n_pending; i++)
        s->cache_pending[i]->cache_dirty = false;
    s->n_pending = 0;
}

/* What a response for C must satisfy at NOW (ms): one definition for
 * fetched bodies and for responses from the cache or the table. */
static struct ocsp_expect expect_for(struct stapler *s, const struct cert *c, int64_t now)
{
    return (struct ocsp_expect){
        .leaf = c->inv.leaf,
        .issuer = c->inv.issuer,
        .now = now / 1000,
        .skew_s = s->p.clock_skew_s,
        .held_this_update = c->published ? c->this_update : 0,
        .memo = &s->memo,
    };
}

/* A transfer ended: map its result, validate the body, and finish. */
static void transfer_done(struct stapler *s, struct fetch *f, CURLcode cc)
{
    struct cert *c = f->cert;
    long http = 0;
    char msg[STAPLER_ERR_LEN];
    int64_t now = now_ms(s);
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &http);
    if (cc == CURLE_OK)
        record_latency(s, f->easy);
    enum stapler_reason r = transfer_reason(cc, f, http, msg, sizeof(msg));
    release_slot(s, f);
    if (r != STAPLER_REASON_OK) {
        fetch_finish(s, f, r, msg, now);
        return;
    }
    struct ocsp_verdict v;
    struct ocsp_expect exp = expect_for(s, c, now);
    if (!fetchable(c)) {
        fetch_finish(s, f, STAPLER_REASON_INTERNAL, "certificate reconfigured", now);
        return;
    }
    r = ocsp_validate(f->body, f->len, &exp, &v);
    if (r != STAPLER_REASON_OK) {
        fetch_finish(s, f, r, v.msg, now);
        return;
    }
    uint8_t *der = f->body;
    size_t len = f->len;
    f->body = NULL;
    int rc = accept_response(s, c, der, len, &v, now, "fetched");
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "staple table refused the response: %s", strerror(-rc));
        slog(s, STAPLER_LOG_ERR, c, "%s", msg);
        fetch_finish(s, f, STAPLER_REASON_INTERNAL, msg, now);
        return;
    }
    cache_mark(s, c);
    fetch_finish(s, f, STAPLER_REASON_OK, "", now);
}

static void process_done(struct stapler *s)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct fetch *f = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        CURLcode cc = msg->data.result;
        if (f != NULL)
            transfer_done(s, f, cc);
    }
}

/* ---- timed work ---------------------------------------------------------- */

static void expire(struct stapler *s, struct cert *c, int64_t now)
{
    char t[32];
    int rc = staple_table_remove(s->table, c->inv.key);
    if (rc < 0 && rc != -ENOENT)
        slog(s, STAPLER_LOG_ERR, c, "cannot withdraw the expired response: %s", strerror(-rc));
    s->m.withdrawals++;
    c->published = false;
    free(c->der);
    c->der = NULL;
    c->der_len = 0;
    c->ocsp = STAPLER_OCSP_NONE;
    char why[128];
    snprintf(why, sizeof(why), "response reached its nextUpdate %s and was withdrawn",
             fmt_time(c->next_update, t, sizeof(t)));
    set_state(s, c, STAPLER_STATE_EXPIRED, why);
    c->this_update = c->next_update = c->revocation_time = 0;
    /* If a refresh is planned later than now, fetch at once instead. */
    if (c->fetch == NULL && fetchable(c) && (c->next_refresh_ms == 0 || c->next_refresh_ms > now))
        c->next_refresh_ms = now;
    update_warning(s, c, now);
}

static void run_due(struct stapler *s, int64_t now)
{
    /* Bounded: each certificate is handled at most once per call, its new
     * deadline being later than now or absent. */
    size_t budget = s->heap_n;
    while (s->heap_n > 0 && s->heap[0]->due_ms <= now && budget-- > 0) {
        struct cert *c = s->heap[0];
        if (c->published && now >= c->next_update * 1000)
            expire(s, c, now);
        update_warning(s, c, now);
        if (c->next_refresh_ms > 0 && c->next_refresh_ms <= now && c->fetch == NULL)
            start_fetch(s, c);
        reschedule(s, c);
        if (c->heap_idx == 0 && c->due_ms <= now)
            heap_set(s, c, now + 1); /* cannot happen; never spin on it */
    }
}

/* ---- public API ---------------------------------------------------------- */

void stapler_params_default(struct stapler_params *p)
{
    memset(p, 0, sizeof(*p));
    p->refresh_fraction = 0.5;
    p->refresh_jitter = 0.05;
    p->max_refresh_s = 43200;
    p->backoff_min_ms = 5000;
    p->backoff_max_ms = 600000;
    p->connect_timeout_ms = 5000;
    p->total_timeout_ms = 15000;
    p->max_response_bytes = 65536;
    p->max_inflight_per_responder = 4;
    p->clock_skew_s = 300;
    p->must_staple_warn_s = 86400;
}

static const char *check_params(const struct stapler_params *p)
{
    if (!(p->refresh_fraction > 0.0 && p->refresh_fraction < 1.0))
        return "refresh_fraction must be inside (0, 1)";
    if (!(p->refresh_jitter >= 0.0 && p->refresh_jitter < 0.5))
        return "refresh_jitter must be inside [0, 0.5)";
    if (p->max_refresh_s < 60)
        return "max_refresh_s must be >= 60";
    if (p->backoff_min_ms == 0 || p->backoff_max_ms < p->backoff_min_ms)
        return "backoff_min_ms must be > 0 and <= backoff_max_ms";
    if (p->connect_timeout_ms == 0 || p->total_timeout_ms == 0)
        return "timeouts must be > 0";
    if (p->max_response_bytes == 0 || p->max_response_bytes > STAPLE_TABLE_DEFAULT_MAX_RESPONSE * 16)
        return "max_response_bytes must be inside [1, 1 MiB]";
    if (p->max_inflight_per_responder == 0)
        return "max_inflight_per_responder must be > 0";
    return NULL;
}

struct stapler *stapler_create(const struct stapler_params *params,
                               struct staple_table *table, char *err, size_t errlen)
{
    const char *bad = table == NULL ? "no staple table" : check_params(params);
    if (bad != NULL) {
        snprintf(err, errlen, "stapler: %s", bad);
        errno = EINVAL;
        return NULL;
    }
    if (params->cache_dir != NULL) {
        struct stat st;
        if (stat(params->cache_dir, &st) != 0) {
            int e = errno;
            snprintf(err, errlen, "stapler: cache directory %s: %s", params->cache_dir,
                     strerror(e));
            errno = e;
            return NULL;
        }
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "stapler: cache directory %s: not a directory",
                     params->cache_dir);
            errno = ENOTDIR;
            return NULL;
        }
    }
    struct stapler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto nomem;
    s->p = *params;
    s->table = table;
    if (params->cache_dir != NULL && (s->cache_dir = strdup(params->cache_dir)) == NULL)
        goto nomem;
    s->p.cache_dir = s->cache_dir;
    s->rng = params->seed;
    if (s->rng == 0 && getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng))
        s->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)s;
    if (s->rng == 0)
        s->rng = 0x9e3779b97f4a7c15ull;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto nomem_curl;
    s->multi = curl_multi_init();
    if (s->multi == NULL) {
        curl_global_cleanup();
        goto nomem_curl;
    }
    return s;
nomem_curl:
    free(s->cache_dir);
    free(s);
    s = NULL;
nomem:
    if (s != NULL) {
        free(s->cache_dir);
        free(s);
    }
    snprintf(err, errlen, "stapler: out of memory");
    errno = ENOMEM;
    return NULL;
}

static void cert_free(struct stapler *s, struct cert *c)
{
    cache_unmark(s, c);
    if (c->fetch != NULL)
        cancel_fetch(s, c->fetch);
    heap_remove(s, c);
    stapler_inventory_clear(&c->inv);
    free(c->der);
    free(c->name);
    free(c);
}

void stapler_destroy(struct stapler *s)
{
    if (s == NULL)
        return;
    s->destroying = true;
    cache_flush(s);
    for (size_t i = 0; i < s->n_certs; i++)
        cert_free(s, s->certs[i]);
    free(s->certs);
    free(s->heap);
    free(s->cache_pending);
    while (s->responders != NULL) {
        struct responder *r = s->responders;
        s->responders = r->next;
        free(r->origin);
        free(r);
    }
    ocsp_delegate_memo_clear(&s->memo);
    curl_multi_cleanup(s->multi);
    curl_global_cleanup();
    free(s->cache_dir);
    free(s);
}

/* Index of certificates by key, open addressing, for set_certs only. */
struct key_index {
    struct cert **slot;
    size_t mask;
};

static uint64_t key_hash(const uint8_t *k)
{
    uint64_t h;
    memcpy(&h, k, sizeof(h)); /* the key is already a SHA-256 */
    return h;
}

static struct cert **key_index_find(struct key_index *ix, const uint8_t *key)
{
    for (size_t i = key_hash(key) & ix->mask;; i = (i + 1) & ix->mask)
        if (ix->slot[i] == NULL || memcmp(ix->slot[i]->inv.key, key, STAPLE_TABLE_KEY_LEN) == 0)
            return &ix->slot[i];
}

static uint64_t name_hash(const char *n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *n; n++)
        h = (h ^ (uint8_t)*n) * 1099511628211ull;
    return h;
}

/* Returns true if NAME was already in the set (then nothing is added). */
static bool name_seen(const char **slot, size_t mask, const char *name)
{
    for (size_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        if (slot[i] == NULL) {
            slot[i] = name;
            return false;
        }
        if (strcmp(slot[i], name) == 0)
            return true;
    }
}

static int resolve_responders(struct stapler *s, struct cert *c)
{
    for (unsigned i = 0; i < c->inv.n_urls; i++) {
        c->resp[i] = responder_get(s, c->inv.urls[i]);
        if (c->resp[i] == NULL)
            return -ENOMEM;
    }
    return 0;
}

/* Applies a freshly loaded inventory to C (new or kept) and sets its
 * state. RC and ERR are the load's result. */
static void apply_inventory(struct stapler *s, struct cert *c, struct stapler_inventory *inv,
                            int rc, const char *err, int64_t now)
{
    /* A fetch under way may go on if it would ask the same responders
     * about the same certificate under the same issuer: a reload during
     * a cold start of many certificates must not restart them all. */
    bool same = c->fetch != NULL && rc == 0 && c->inv.issuer != NULL &&
                inv->issuer != NULL && X509_cmp(c->inv.issuer, inv->issuer) == 0 &&
                c->inv.n_urls == inv->n_urls;
    for (unsigned i = 0; same && i < inv->n_urls; i++)
        same = strcmp(c->inv.urls[i], inv->urls[i]) == 0;
    stapler_inventory_clear(&c->inv);
    c->inv = *inv;
    memset(inv, 0, sizeof(*inv));
    memset(c->resp, 0, sizeof(c->resp));
    if (c->url_idx >= c->inv.n_urls)
        c->url_idx = 0;
    if (c->inv.n_urls == 0 && c->inv.have_key) {
        if (c->fetch != NULL)
            cancel_fetch(s, c->fetch);
        c->next_refresh_ms = 0;
        set_state(s, c, STAPLER_STATE_NO_OCSP_URL, "the certificate names no OCSP responder");
        return;
    }
    if (rc == 0)
        rc = resolve_responders(s, c);
    if (rc < 0) {
        if (c->fetch != NULL)
            cancel_fetch(s, c->fetch);
        c->next_refresh_ms = 0;
        c->last_reason = STAPLER_REASON_INTERNAL;
        snprintf(c->last_error, sizeof(c->last_error), "%s", err[0] ? err : strerror(-rc));
        set_state(s, c, STAPLER_STATE_INVALID, c->last_error);
        return;
    }
    if (c->state == STAPLER_STATE_INVALID || c->state == STAPLER_STATE_NO_OCSP_URL) {
        c->state = c->published ? c->state : STAPLER_STATE_PENDING;
        if (c->published)
            set_state(s, c, c->ocsp == STAPLER_OCSP_REVOKED ? STAPLER_STATE_REVOKED
                            : c->ocsp == STAPLER_OCSP_GOOD  ? STAPLER_STATE_GOOD
                                                            : STAPLER_STATE_UNKNOWN,
                      "certificate usable again");
        c->last_error[0] = '\0';
    }
    if (c->fetch != NULL && !same) {
        /* Its URLs or issuer changed under it: start over with the new ones. */
        cancel_fetch(s, c->fetch);
        c->next_refresh_ms = now;
    }
    if (!c->published && c->next_refresh_ms == 0)
        c->next_refresh_ms = now;
}

int stapler_set_certs(struct stapler *s, const struct stapler_cert_spec *specs,
                      size_t n, int *errs)
{
    size_t ksize = 16, nsize = 16;
    while (ksize < 2 * (n + s->n_certs))
        ksize *= 2;
    while (nsize < 2 * n)
        nsize *= 2;
    struct key_index ix = {calloc(ksize, sizeof(struct cert *)), ksize - 1};
    const char **names = calloc(nsize, sizeof(*names));
    struct cert **out = calloc(n ? n : 1, sizeof(*out));
    size_t hcap = n + s->n_certs + 1;
    struct cert **heap = hcap > s->heap_cap ? realloc(s->heap, hcap * sizeof(*heap)) : s->heap;
    if (ix.slot == NULL || names == NULL || out == NULL || heap == NULL) {
        free(ix.slot);
        free(names);
        free(out);
        return -ENOMEM;
    }
    s->heap = heap;
    if (hcap > s->heap_cap)
        s->heap_cap = hcap;

    unsigned gen = ++s->generation;
    struct stapler_issuer_memo memo = {0};
    for (size_t i = 0; i < s->n_certs; i++)
        if (s->certs[i]->inv.have_key)
            *key_index_find(&ix, s->certs[i]->inv.key) = s->certs[i];

    int64_t now = now_ms(s);
    size_t n_out = 0;
    int n_err = 0;
    for (size_t i = 0; i < n; i++) {
        const struct stapler_cert_spec *sp = &specs[i];
        int e = 0;
        if (sp->name == NULL || sp->name[0] == '\0' || sp->chain_path == NULL ||
            (unsigned)sp->policy >= STAPLER_POLICY__COUNT) {
            slog(s, STAPLER_LOG_ERR, NULL, "certificate #%zu: name, chain path or policy "
                 "missing; ignored", i);
            e = -EINVAL;
            goto next;
        }
        if (name_seen(names, nsize - 1, sp->name)) {
            slog(s, STAPLER_LOG_ERR, NULL, "certificate name %s listed twice; the second is "
                 "ignored", sp->name);
            e = -EEXIST;
            goto next;
        }
        struct stapler_inventory inv;
        char err[STAPLER_ERR_LEN];
        int rc = stapler_inventory_load_memo(sp, &inv, &memo, err, sizeof(err));
        struct cert *c = NULL;
        struct cert **slot = inv.have_key ? key_index_find(&ix, inv.key) : NULL;
        if (slot != NULL && *slot != NULL) {
            if ((*slot)->mark == gen) {
                slog(s, STAPLER_LOG_ERR, NULL, "certificate %s is the same certificate as %s; "
                     "ignored", sp->name, (*slot)->name);
                stapler_inventory_clear(&inv);
                e = -EEXIST;
                goto next;
            }
            c = *slot; /* kept: state, response and schedule stay */
        }
        char *name = strdup(sp->name);
        if (c == NULL) {
            c = calloc(1, sizeof(*c));
            if (c == NULL || name == NULL) {
                free(c);
                free(name);
                stapler_inventory_clear(&inv);
                e = -ENOMEM;
                goto next;
            }
            c->heap_idx = HEAP_NONE;
            c->state = STAPLER_STATE_PENDING;
            if (slot != NULL)
                *slot = c;
        } else if (name == NULL) {
            name = c->name;
            c->name = NULL;
        }
        free(c->name);
        c->name = name;
        c->policy = sp->policy;
        c->mark = gen;
        if (rc < 0)
            slog(s, STAPLER_LOG_ERR, c, "cannot load: %s", err);
        apply_inventory(s, c, &inv, rc, err, now);
        if (c->state == STAPLER_STATE_NO_OCSP_URL)
            rc = 0; /* not an error: nothing to staple */
        e = rc;
        out[n_out++] = c;
    next:
        if (errs != NULL)
            errs[i] = e;
        if (e < 0)
            n_err++;
    }

    /* What was not claimed is no longer configured. */
    for (size_t i = 0; i < s->n_certs; i++) {
        struct cert *c = s->certs[i];
        if (c->mark == gen)
            continue;
        if (c->published) {
            int rc = staple_table_remove(s->table, c->inv.key);
            if (rc < 0 && rc != -ENOENT)
                slog(s, STAPLER_LOG_ERR, c, "cannot remove its staple: %s", strerror(-rc));
        }
        slog(s, STAPLER_LOG_NOTICE, c, "removed from the configuration");
        cert_free(s, c);
    }
    free(s->certs);
    s->certs = out;
    s->n_certs = n_out;
    for (size_t i = 0; i < n_out; i++) {
        update_warning(s, out[i], now);
        reschedule(s, out[i]);
    }
    stapler_issuer_memo_clear(&memo);
    free(ix.slot);
    free(names);
    return n_err;
}

/* Validates DER for C and, if good, makes it C's held response. PUBLISH
 * false when the table already holds exactly these bytes (adoption after a
 * restart). Returns true if taken. */
static bool take_stored(struct stapler *s, struct cert *c, uint8_t *der, size_t len,
                        int64_t now, const char *source)
{
    struct ocsp_verdict v;
    struct ocsp_expect exp = expect_for(s, c, now);
    if (ocsp_validate(der, len, &exp, &v) != STAPLER_REASON_OK) {
        free(der);
        s->m.cache_rejected++;
        slog(s, STAPLER_LOG_WARNING, c, "%s response rejected (%s: %s), ignored", source,
             stapler_reason_name(v.reason), v.msg);
        return false;
    }
    int rc = accept_response(s, c, der, len, &v, now, source);
    if (rc < 0) {
        slog(s, STAPLER_LOG_ERR, c, "staple table refused the %s response: %s", source,
             strerror(-rc));
        return false;
    }
    reschedule(s, c);
    return true;
}

struct sweep {
    struct stapler *s;
    struct key_index ix;
    uint8_t (*stale)[STAPLE_TABLE_KEY_LEN];
    size_t n_stale, cap;
};

static int sweep_one(const struct staple_table_entry *e, void *arg)
{
    struct sweep *sw = arg;
    if (*key_index_find(&sw->ix, e->key) != NULL)
        return 0;
    if (sw->n_stale == sw->cap) {
        size_t cap = sw->cap ? 2 * sw->cap : 64;
        void *p = realloc(sw->stale, cap * sizeof(*sw->stale));
        if (p == NULL)
            return -ENOMEM;
        sw->stale = p;
        sw->cap = cap;
    }
    memcpy(sw->stale[sw->n_stale++], e->key, STAPLE_TABLE_KEY_LEN);
    return 0;
}

/* Withdraws table entries of certificates not configured: after a restart
 * with a smaller configuration they would otherwise stay until their
 * nextUpdate. Returns the number removed or -errno. */
static int sweep_table(struct stapler *s)
{
    size_t size = 16;
    while (size < 2 * s->n_certs + 2)
        size *= 2;
    struct sweep sw = {.s = s, .ix = {calloc(size, sizeof(struct cert *)), size - 1}};
    if (sw.ix.slot == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->n_certs; i++)
        if (s->certs[i]->inv.have_key)
            *key_index_find(&sw.ix, s->certs[i]->inv.key) = s->certs[i];
    int rc = staple_table_foreach(s->table, sweep_one, &sw);
    int removed = 0;
    for (size_t i = 0; rc >= 0 && i < sw.n_stale; i++) {
        char hex[2 * STAPLE_TABLE_KEY_LEN + 1];
        stapler_key_hex(sw.stale[i], hex);
        if (staple_table_remove(s->table, sw.stale[i]) == 0) {
            removed++;
            slog(s, STAPLER_LOG_NOTICE, NULL,
                 "withdrew the staple of %.16s..., no longer configured", hex);
        }
    }
    free(sw.ix.slot);
    free(sw.stale);
    return rc < 0 ? rc : removed;
}

int stapler_load_cache(struct stapler *s)
{
    int64_t now = now_ms(s);
    int loaded = 0;
    for (size_t i = 0; i < s->n_certs; i++) {
        struct cert *c = s->certs[i];
        if (!c->inv.have_key || c->inv.issuer == NULL)
            continue;
        uint8_t *der;
        size_t len;
        int rc = s->cache_dir == NULL ? -ENOENT
                 : stapler_cache_read(s->cache_dir, c->inv.key, s->p.max_response_bytes,
                                      &der, &len);
        if (rc < 0 && rc != -ENOENT) {
            s->m.cache_rejected++;
            slog(s, STAPLER_LOG_WARNING, c, "cache file unreadable, ignored: %s",
                 strerror(-rc));
        }
        if (rc == 0 && take_stored(s, c, der, len, now, "cached")) {
            s->m.cache_loaded++;
            loaded++;
            continue;
        }
        /* No usable file: the table may still hold what a previous run
         * published (the table outlives tern-control). Validated like any
         * other response before it is counted as held. */
        uint8_t *buf = malloc(s->p.max_response_bytes);
        if (buf == NULL)
            continue;
        rc = staple_table_lookup(s->table, c->inv.key, now / 1000, buf,
                                 s->p.max_response_bytes, NULL);
        if (rc <= 0) {
            free(buf);
            continue;
        }
        if (take_stored(s, c, buf, (size_t)rc, now, "table")) {
            s->m.cache_loaded++;
            loaded++;
        }
    }
    int rc = sweep_table(s);
    if (rc < 0)
        slog(s, STAPLER_LOG_WARNING, NULL, "table sweep failed: %s", strerror(-rc));
    return loaded;
}

int stapler_poll(struct stapler *s, int timeout_ms, struct stapler_waitfd *extra, unsigned n)
{
    run_due(s, now_ms(s));
    long t = stapler_next_timeout_ms(s);
    if (timeout_ms < 0)
        timeout_ms = INT_MAX;
    if (t >= 0 && t < timeout_ms)
        timeout_ms = (int)t;

    struct curl_waitfd stackfds[16], *wfds = stackfds;
    if (n > 16 && (wfds = calloc(n, sizeof(*wfds))) == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        wfds[i].fd = extra[i].fd;
        wfds[i].events = extra[i].events;
        wfds[i].revents = 0;
    }
    int numfds = 0, ready = 0;
    CURLMcode mc = curl_multi_poll(s->multi, wfds, n, timeout_ms, &numfds);
    for (unsigned i = 0; i < n; i++) {
        extra[i].revents = wfds[i].revents;
        ready += extra[i].revents != 0;
    }
    if (wfds != stackfds)
        free(wfds);
    int running = 0;
    if (mc == CURLM_OK)
        mc = curl_multi_perform(s->multi, &running);
    process_done(s);
    run_due(s, now_ms(s));
    cache_flush(s);
    if (mc != CURLM_OK) {
        slog(s, STAPLER_LOG_ERR, NULL, "libcurl: %s", curl_multi_strerror(mc));
        return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
    }
    return ready;
}

long stapler_next_timeout_ms(struct stapler *s)
{
    long best = -1;
    if (s->heap_n > 0) {
        int64_t d = s->heap[0]->due_ms - now_ms(s);
        best = d < 0 ? 0 : d > LONG_MAX ? LONG_MAX : (long)d;
    }
    long ct = -1;
    if (s->inflight > 0 && curl_multi_timeout(s->multi, &ct) == CURLM_OK && ct >= 0)
        if (best < 0 || ct < best)
            best = ct;
    return best;
}

int stapler_wakeup(struct stapler *s)
{
    return curl_multi_wakeup(s->multi) == CURLM_OK ? 0 : -EIO;
}

int stapler_refresh(struct stapler *s, const char *name)
{
    int64_t now = now_ms(s);
    int count = 0, found = 0;
    for (size_t i = 0; i < s->n_certs; i++) {
        struct cert *c = s->certs[i];
        if (name != NULL && strcmp(c->name, name) != 0)
            continue;
        found++;
        if (c->fetch != NULL || !fetchable(c))
            continue;
        c->failures = 0;
        c->next_refresh_ms = now;
        reschedule(s, c);
        count++;
    }
    return name != NULL && found == 0 ? -ENOENT : count;
}

static void fill_status(struct stapler *s, const struct cert *c, struct stapler_cert_status *st)
{
    (void)s;
    memset(st, 0, sizeof(*st));
    st->name = c->name;
    if (c->inv.have_key)
        memcpy(st->key, c->inv.key, STAPLE_TABLE_KEY_LEN);
    unsigned u = c->fetch ? c->fetch->url_idx : c->url_idx;
    st->responder = u < c->inv.n_urls ? c->inv.urls[u] : "";
    st->state = c->state;
    st->cert_status = c->published ? c->ocsp : STAPLER_OCSP_NONE;
    st->policy = c->policy;
    st->must_staple = is_must_staple(c);
    st->must_staple_warning = c->warning;
    st->fetch_in_flight = c->fetch != NULL;
    st->this_update = c->published ? c->this_update : 0;
    st->next_update = c->published ? c->next_update : 0;
    st->revocation_time = c->published ? c->revocation_time : 0;
    st->next_refresh = c->next_refresh_ms > 0 && fetchable(c) ? c->next_refresh_ms / 1000 : 0;
    st->not_after = c->inv.not_after;
    st->last_fetch = c->last_fetch;
    st->last_reason = c->last_reason;
    st->last_error = c->last_error;
    st->consecutive_failures = c->failures;
    st->n_urls = c->inv.n_urls;
}

int stapler_foreach_cert(struct stapler *s,
                         int (*fn)(const struct stapler_cert_status *st, void *arg), void *arg)
{
    struct stapler_cert_status st;
    for (size_t i = 0; i < s->n_certs; i++) {
        fill_status(s, s->certs[i], &st);
        int rc = fn(&st, arg);
        if (rc != 0)
            return rc;
    }
    return (int)s->n_certs;
}

int stapler_cert_status(struct stapler *s, const char *name, struct stapler_cert_status *st)
{
    for (size_t i = 0; i < s->n_certs; i++) {
        if (strcmp(s->certs[i]->name, name) == 0) {
            fill_status(s, s->certs[i], st);
            return 0;
        }
    }
    return -ENOENT;
}

void stapler_metrics(struct stapler *s, struct stapler_metrics *m)
{
    *m = s->m;
    memset(m->by_state, 0, sizeof(m->by_state));
    m->certs = (uint32_t)s->n_certs;
    m->must_staple_warnings = 0;
    m->seconds_to_next_update = -1;
    int64_t now = now_ms(s) / 1000, nearest = INT64_MAX;
    for (size_t i = 0; i < s->n_certs; i++) {
        const struct cert *c = s->certs[i];
        m->by_state[c->state]++;
        m->must_staple_warnings += c->warning;
        if (c->published && c->next_update < nearest)
            nearest = c->next_update;
    }
    if (nearest != INT64_MAX)
        m->seconds_to_next_update = nearest > now ? nearest - now : 0;
    m->inflight = s->inflight;
    m->queued = s->queued;
}
