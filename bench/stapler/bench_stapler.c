/* Stapler figures: cold start of N certificates against a local `openssl
 * ocsp` responder (time to the last staple published, the per-responder
 * cap and the in-flight high-water mark), restart from the disk cache, and
 * CPU time per validated response.
 *
 *   bench_stapler DIR N CAP [RESP.der ...]
 *
 * DIR is a pki.sh directory with DIR/leaves/0..N-1.pem (pki_make_leaves);
 * their AIA names the responder. Each RESP.der (a real response for
 * DIR/leaves/0.pem) is validated repeatedly for the CPU figure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "ocsp_validate.h"
#include "staple_table.h"
#include "stapler.h"
#include "stapler_inventory.h"

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_log(void *arg, enum stapler_log_level lvl, const char *cert, const char *msg)
{
    (void)arg;
    if (lvl <= STAPLER_LOG_WARNING)
        fprintf(stderr, "  log <%d> %s: %s\n", (int)lvl, cert ? cert : "-", msg);
}

/* Polls until nothing is pending or in flight; returns false on timeout.
 * stapler_metrics() walks every certificate, so it is asked every 100 ms
 * of wall time, not after every poll, to keep the bench's own cost out of
 * the stapler's CPU figure. */
static bool settle(struct stapler *s, double max_s)
{
    double end = now_s(CLOCK_MONOTONIC) + max_s, next_check = 0;
    struct stapler_metrics m;
    for (;;) {
        double t = now_s(CLOCK_MONOTONIC);
        if (t >= next_check) {
            stapler_metrics(s, &m);
            if (m.by_state[STAPLER_STATE_PENDING] == 0 && m.inflight == 0 && m.queued == 0)
                return true;
            next_check = t + 0.1;
        }
        if (t > end)
            return false;
        stapler_poll(s, 100, NULL, 0);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_stapler DIR N CAP [RESP.der ...]\n");
        return 2;
    }
    const char *dir = argv[1];
    /* N = 0: only the validation figure (for callgrind). */
    unsigned n = (unsigned)atoi(argv[2]), cap = (unsigned)atoi(argv[3]);
    bool only_validate = n == 0;
    if (only_validate)
        n = 1;
    char issuer[1024], cache[1024], shm[64];
    snprintf(issuer, sizeof(issuer), "%s/inter.pem", dir);
    snprintf(cache, sizeof(cache), "%s/bench-cache", dir);
    mkdir(cache, 0755);
    /* run.sh names the table so that it can remove it if we stop early */
    if (getenv("TERN_BENCH_SHM") != NULL)
        snprintf(shm, sizeof(shm), "%s", getenv("TERN_BENCH_SHM"));
    else
        snprintf(shm, sizeof(shm), "/tern-bench-stapler-%d", (int)getpid());

    struct stapler_cert_spec *specs = calloc(n, sizeof(*specs));
    char (*names)[16] = calloc(n, 16), (*paths)[512] = calloc(n, 512);
    for (unsigned i = 0; i < n; i++) {
        snprintf(names[i], 16, "b%u", i);
        snprintf(paths[i], 512, "%s/leaves/%u.pem", dir, i);
        specs[i] = (struct stapler_cert_spec){.name = names[i], .chain_path = paths[i],
                                              .issuer_path = issuer};
    }
    bool done = true;
    if (only_validate)
        goto validate;
    struct staple_table_params tp = {.capacity = n + 16, .max_response = 65536};
    char err[256];
    staple_table_unlink(shm);
    struct staple_table *t = staple_table_open_writer(shm, &tp, err, sizeof(err));
    if (t == NULL) {
        fprintf(stderr, "table: %s\n", err);
        return 1;
    }
    struct stapler_params p;
    stapler_params_default(&p);
    p.cache_dir = cache;
    p.max_inflight_per_responder = cap;
    p.log = on_log;
    struct stapler *s = stapler_create(&p, t, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "stapler: %s\n", err);
        return 1;
    }

    printf("stapler cold start: %u certificates, one responder, cap %u in flight\n", n, cap);
    double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    int bad = stapler_set_certs(s, specs, n, NULL);
    double w1 = now_s(CLOCK_MONOTONIC), c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    done = settle(s, 1800);
    double w2 = now_s(CLOCK_MONOTONIC), c2 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    struct stapler_metrics m;
    stapler_metrics(s, &m);
    printf("  inventory (set_certs):      %.3f s wall, %.1f us CPU per certificate, %d errors\n",
           w1 - w0, (c1 - c0) * 1e6 / n, bad);
    printf("  fetch to last staple:       %.3f s wall%s (%.0f staples/s)\n", w2 - w1,
           done ? "" : " (TIMED OUT)", (double)m.fetches_ok / (w2 - w1));
    printf("  staples published:          %u good of %u (fetches ok %llu, failed %llu)\n",
           m.by_state[STAPLER_STATE_GOOD], n, (unsigned long long)m.fetches_ok,
           (unsigned long long)m.fetches_failed);
    printf("  max in flight, 1 responder: %u (cap %u: %s)\n", m.max_inflight_per_responder_seen,
           cap, m.max_inflight_per_responder_seen <= cap ? "held" : "EXCEEDED");
    printf("  stapler CPU while fetching: %.1f us per certificate (request, HTTP, validate, "
           "publish, cache write)\n", (c2 - c1) * 1e6 / n);
    if (m.latency_count)
        printf("  responder latency:          mean %.2f ms, max %.2f ms (queueing at the "
               "responder included)\n",
               (double)m.latency_sum_us / (double)m.latency_count / 1000.0,
               (double)m.latency_max_us / 1000.0);
    stapler_destroy(s);

    /* Restart: a fresh stapler publishes everything from the disk cache. */
    s = stapler_create(&p, t, err, sizeof(err));
    stapler_set_certs(s, specs, n, NULL);
    w0 = now_s(CLOCK_MONOTONIC);
    int loaded = stapler_load_cache(s);
    w1 = now_s(CLOCK_MONOTONIC);
    printf("  restart from disk cache:    %d of %u published in %.3f s, no network\n", loaded, n,
           w1 - w0);
    stapler_destroy(s);
    staple_table_close(t);
    staple_table_unlink(shm);

validate:;
    /* CPU per validation of each given response. */
    struct stapler_inventory inv;
    struct stapler_cert_spec sp0 = {.name = "b0", .chain_path = paths[0], .issuer_path = issuer};
    stapler_inventory_load(&sp0, &inv, err, sizeof(err));
    for (int a = 4; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (f == NULL) {
            perror(argv[a]);
            continue;
        }
        static uint8_t der[65536];
        size_t len = fread(der, 1, sizeof(der), f);
        fclose(f);
        struct ocsp_expect e = {.leaf = inv.leaf, .issuer = inv.issuer, .now = time(NULL),
                                .skew_s = 300};
        struct ocsp_verdict v;
        if (ocsp_validate(der, len, &e, &v) != STAPLER_REASON_OK) {
            printf("  %s: does not validate (%s)\n", argv[a], v.msg);
            continue;
        }
        /* N = 0 (under callgrind): only the memo loop, as the stapler runs. */
        int iters = only_validate ? 500 : 2000;
        double t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < iters && !only_validate; i++)
            ocsp_validate(der, len, &e, &v);
        double us = (now_s(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e6 / iters;
        /* As the stapler runs it: vetted delegates remembered. */
        struct ocsp_delegate_memo memo = {0};
        e.memo = &memo;
        t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < iters; i++)
            ocsp_validate(der, len, &e, &v);
        double us_memo = (now_s(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e6 / iters;
        ocsp_delegate_memo_clear(&memo);
        printf("  validate %-20s %6.1f us CPU per response, %6.1f us with the delegate memo "
               "(%s, %zu bytes)\n",
               strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a], us, us_memo,
               v.delegated ? "delegated signer" : "CA-signed", len);
    }
    stapler_inventory_clear(&inv);
    free(specs);
    free(names);
    free(paths);
    return done ? 0 : 1;
}
