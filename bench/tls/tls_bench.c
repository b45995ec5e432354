/* In-memory TLS handshake benchmark: server CPU per handshake with no
 * network, next to the crypto floor.
 *
 *   tls_bench PKI_DIR [ITERATIONS]
 *
 * A second table measures scaling: handshakes per second (client and server
 * in each thread, TLS 1.3 ECDSA full with staple) with 1 and 2 threads, each
 * with its own tern worker, against raw OpenSSL sharing one SSL_CTX. The
 * wall-clock rate depends on whatever else the 2 cores run; the server's
 * own CPU per handshake (thread CPU time around the server's calls) does
 * not, and grows only with what the threads do to each other (locks,
 * shared cache lines). "capacity" = 2 x (server us/hs, 1 thread) / (server
 * us/hs, 2 threads): the handshakes 2 workers can do, as a multiple of one,
 * when each has a core of its own. Each thread's client has its own
 * OSSL_LIB_CTX so that the load generator's locks are not counted.
 *
 * PKI_DIR is made by tests/unit/tls/mkpki.sh (bench/tls/run-bench does it):
 * www-ec and www-rsa certificates and their real OCSP responses.
 *
 * Columns, each the median server CPU time (CLOCK_THREAD_CPUTIME_ID around
 * the server's calls only, SSL_new/SSL_free included) per handshake, and its
 * multiple of the crypto floor:
 *   openssl   OpenSSL 3.0 defaults: client and server SSL joined by a BIO
 *             pair; the server attaches the staple from a buffer.
 *   tuned     the same raw OpenSSL with tern's settings (server preference
 *             for AES-128-GCM-SHA256, one TLS 1.3 ticket, no session cache).
 *   tern      tern's tls_conn (per-worker SSL_CTX, custom BIO, staple looked
 *             up in a real staple table, tern's ticket key callback): the
 *             difference from "tuned" is tern's own overhead.
 *   tern+lc   tern with one OSSL_LIB_CTX for the worker.
 * Every handshake requests a staple (status_request); every full one gets
 * it (a resumed handshake sends no certificate, so no staple).
 *
 * The floor is what the server cannot avoid: one signature (ECDSA P-256 or
 * RSA-2048) and one X25519 key generation and derivation, measured here in
 * process with the calls `openssl speed` times. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include "stapler/staple_table.h"
#include "tls_config.h"
#include "tls_conn.h"
#include "tls_ticket_keys.h"
#include "tls_worker.h"

#define MAX_ITER 100000

static const char *pki;
static unsigned iters = 300;
static uint8_t *staple[2];
static size_t staple_len[2];
static double clock_cost_us; /* one clock_gettime pair */

enum { KT_EC, KT_RSA };
static const char *const kt_leaf[2] = {"www-ec", "www-rsa"};

static double thread_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n ? v[n / 2] : 0;
}

static char *path(const char *leaf, const char *suffix)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s%s", pki, leaf, suffix);
    return buf[k];
}

static uint8_t *read_file(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *b = malloc(1 << 16);
    *len = b ? fread(b, 1, 1 << 16, f) : 0;
    fclose(f);
    return b;
}

/* ---- crypto floor ---------------------------------------------------- */

static double time_sign(EVP_PKEY *key, unsigned n)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    unsigned char md[32] = {1, 2, 3}, sig[512];
    EVP_PKEY_sign_init(ctx);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    double t0 = thread_us();
    for (unsigned i = 0; i < n; i++) {
        size_t siglen = sizeof(sig);
        if (EVP_PKEY_sign(ctx, sig, &siglen, md, sizeof(md)) != 1)
            return -1;
    }
    double t = (thread_us() - t0) / n;
    EVP_PKEY_CTX_free(ctx);
    return t;
}

/* X25519 as a TLS server does it: a fresh key pair, then the derivation
 * with the client's share (openssl speed's ecdhx25519 times the derivation
 * only). The key generation context is made once, as in a server. */
static EVP_PKEY *x_peer;
static EVP_PKEY_CTX *x_kctx;

static double time_x25519(unsigned n)
{
    if (x_kctx == NULL) {
        x_peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        x_kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
        if (x_peer == NULL || x_kctx == NULL || EVP_PKEY_keygen_init(x_kctx) != 1)
            return -1;
    }
    unsigned char secret[32];
    double t0 = thread_us();
    for (unsigned i = 0; i < n; i++) {
        EVP_PKEY *k = NULL;
        if (EVP_PKEY_keygen(x_kctx, &k) != 1)
            return -1;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
        size_t len = sizeof(secret);
        if (!ctx || EVP_PKEY_derive_init(ctx) != 1 ||
            EVP_PKEY_derive_set_peer(ctx, x_peer) != 1 ||
            EVP_PKEY_derive(ctx, secret, &len) != 1)
            return -1;
        EVP_PKEY_CTX_free(ctx);
        EVP_PKEY_free(k);
    }
    return (thread_us() - t0) / n;
}

static EVP_PKEY *load_key(const char *p)
{
    FILE *f = fopen(p, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return k;
}

/* ---- server-side calls ------------------------------------------------ */
/* Every server-side call goes through one of these, never inlined, so that
 * `valgrind --tool=callgrind` can count the server's instructions apart from
 * the client's: the inclusive cost of server_* divided by the handshakes. */
#define SERVER_CALL __attribute__((noinline))

SERVER_CALL static SSL *server_raw_new(SSL_CTX *ctx)
{
    SSL *s = SSL_new(ctx);
    if (s)
        SSL_set_accept_state(s);
    return s;
}

SERVER_CALL static int server_raw_step(SSL *s)
{
    return SSL_do_handshake(s);
}

SERVER_CALL static void server_raw_free(SSL *s)
{
    SSL_free(s);
}

SERVER_CALL static struct tls_conn *server_tern_accept(struct tls_worker *w)
{
    return tls_conn_accept(w, 0, 0);
}

SERVER_CALL static ssize_t server_tern_step(struct tls_conn *c, const void *p, size_t n)
{
    return n > 0 ? tls_conn_feed(c, p, n) : 0;
}

SERVER_CALL static void server_tern_release(struct tls_conn *c)
{
    tls_conn_release(c);
}

/* ---- raw OpenSSL over a BIO pair ---------------------------------------- */

static int raw_status_cb(SSL *s, void *arg)
{
    int kt = (int)(intptr_t)arg;
    unsigned char *copy = OPENSSL_malloc(staple_len[kt]);
    if (copy == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, staple[kt], staple_len[kt]);
    SSL_set_tlsext_status_ocsp_resp(s, copy, (long)staple_len[kt]);
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *raw_server_ctx(int kt, int tuned)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL ||
        SSL_CTX_use_certificate_chain_file(ctx, path(kt_leaf[kt], ".pem")) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, path(kt_leaf[kt], ".key"), SSL_FILETYPE_PEM) != 1)
        return NULL;
    SSL_CTX_set_tlsext_status_cb(ctx, raw_status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, (void *)(intptr_t)kt);
    if (tuned) {
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                      "TLS_AES_256_GCM_SHA384");
        SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
        SSL_CTX_set_num_tickets(ctx, 1);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384");
    }
    return ctx;
}

static SSL_CTX *client_ctx_ex(OSSL_LIB_CTX *lc, int version)
{
    SSL_CTX *ctx = SSL_CTX_new_ex(lc, NULL, TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_max_proto_version(ctx, version);
    /* The client keeps sessions itself (SSL_get1_session). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

static SSL_CTX *client_ctx(int version)
{
    return client_ctx_ex(NULL, version);
}

static SSL *client_new(SSL_CTX *cctx, SSL_SESSION *sess)
{
    SSL *c = SSL_new(cctx);
    SSL_set_connect_state(c);
    SSL_set_tlsext_host_name(c, "www.example.test");
    SSL_set_tlsext_status_type(c, TLSEXT_STATUSTYPE_ocsp);
    if (sess)
        SSL_set_session(c, sess);
    return c;
}

/* Reads what the server sent after its handshake (TLS 1.3 tickets) and
 * closes, so that the session is resumable; returns it if WANT_SESSION. */
static SSL_SESSION *client_finish(SSL *c, int want_session)
{
    char buf[64];
    SSL_read(c, buf, sizeof(buf)); /* takes the tickets; WANT_READ after */
    SSL_SESSION *s = want_session ? SSL_get1_session(c) : NULL;
    SSL_shutdown(c);
    SSL_free(c);
    ERR_clear_error();
    return s;
}

/* One handshake through raw OpenSSL; returns server µs, or -1. */
static double raw_handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION *sess,
                            SSL_SESSION **out_sess, int *resumed)
{
    double us = 0, t0 = thread_us();
    SSL *s = server_raw_new(sctx);
    us += thread_us() - t0 - clock_cost_us;
    SSL *c = client_new(cctx, sess);
    BIO *sb, *cb;
    BIO_new_bio_pair(&sb, 0, &cb, 0);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    int sdone = 0, cdone = 0;
    for (int round = 0; round < 20 && !(sdone && cdone); round++) {
        if (!cdone && SSL_do_handshake(c) == 1)
            cdone = 1;
        if (!sdone) {
            t0 = thread_us();
            int r = server_raw_step(s);
            us += thread_us() - t0 - clock_cost_us;

            if (r == 1)
                sdone = 1;
        }
    }
    int ok = sdone && cdone;
    *resumed = SSL_session_reused(s);
    const unsigned char *p;
    /* Every full handshake must carry the staple; a resumed one has no
     * certificate, hence no staple, in both versions. */
    if (!*resumed && SSL_get_tlsext_status_ocsp_resp(c, &p) <= 0)
        ok = 0;
    SSL_SESSION *got = client_finish(c, out_sess != NULL);
    if (out_sess)
        *out_sess = got;
    t0 = thread_us();
    server_raw_free(s);
    us += thread_us() - t0 - clock_cost_us;
    ERR_clear_error();
    return ok ? us : -1;
}

/* ---- tern's tls_conn -------------------------------------------------- */

struct tern_side {
    struct tls_config *cfg;
    struct tls_worker *w;
};

static struct staple_table *table_w, *table_r;
static struct tls_ticket_keys *ticket_keys;
static char table_name[64];

static int tern_setup(struct tern_side *t, int kt, int libctx)
{
    static const char *const names[] = {"www.example.test"};
    struct tls_certset_params set = {
        .names = names, .n_names = 1, .n_certs = 1,
        .certs = {{.chain_path = path(kt_leaf[kt], ".pem"), .key_path = path(kt_leaf[kt], ".key")}},
    };
    struct tls_config_params p = {.certsets = &set, .n_certsets = 1, .max_conns = 4,
                                  .per_core_libctx = libctx, .staple_table = table_r,
                                  .ticket_keys = ticket_keys};
    char err[256];
    t->cfg = tls_config_new(&p, err, sizeof(err));
    t->w = t->cfg ? tls_worker_new(t->cfg, 0, err, sizeof(err)) : NULL;
    if (t->w == NULL) {
        fprintf(stderr, "tern setup: %s\n", err);
        return -1;
    }
    uint8_t key[32];
    tls_config_leaf_key(t->cfg, 0, 0, key);
    int64_t now = (int64_t)time(NULL);
    return staple_table_publish(table_w, key, staple[kt], (uint32_t)staple_len[kt], now - 60,
                                now + 86400);
}

static void tern_teardown(struct tern_side *t)
{
    tls_worker_free(t->w);
    tls_config_free(t->cfg);
}

static double tern_handshake(struct tern_side *t, SSL_CTX *cctx, SSL_SESSION *sess,
                             SSL_SESSION **out_sess, int *resumed)
{
    double us = 0, t0 = thread_us();
    struct tls_conn *conn = server_tern_accept(t->w);
    us += thread_us() - t0 - clock_cost_us;
    if (conn == NULL)
        return -1;
    SSL *c = client_new(cctx, sess);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(c, rb, wb);
    int cdone = 0;
    for (int round = 0; round < 20; round++) {
        if (!cdone && SSL_do_handshake(c) == 1)
            cdone = 1;
        char *p;
        long n = BIO_get_mem_data(wb, &p);
        /* Server side: feed what the client sent, take what it answers. */
        t0 = thread_us();
        ssize_t k = server_tern_step(conn, p, n > 0 ? (size_t)n : 0);
        const uint8_t *o;
        size_t on = tls_conn_out_peek(conn, &o);
        us += thread_us() - t0 - clock_cost_us;
        if (k < 0)
            break;
        if (k > 0) {
            char scratch[4096];
            for (long left = k; left > 0;) {
                int r = BIO_read(wb, scratch, left > 4096 ? 4096 : (int)left);
                if (r <= 0)
                    break;
                left -= r;
            }
        }
        if (on > 0) {
            BIO_write(rb, o, (int)on);
            tls_conn_out_consume(conn, on);
        }
        if (cdone && tls_conn_state(conn) == TLS_CONN_ESTABLISHED)
            break;
    }
    int ok = cdone && tls_conn_state(conn) == TLS_CONN_ESTABLISHED;
    *resumed = tls_conn_resumed(conn);
    const unsigned char *sp;
    if (!*resumed && SSL_get_tlsext_status_ocsp_resp(c, &sp) <= 0)
        ok = 0;
    SSL_SESSION *got = client_finish(c, out_sess != NULL);
    if (out_sess)
        *out_sess = got;
    t0 = thread_us();
    server_tern_release(conn);
    us += thread_us() - t0 - clock_cost_us;
    return ok ? us : -1;
}

/* ---- driver ----------------------------------------------------------- */

enum mode { M_OPENSSL, M_TUNED, M_TERN, M_TERN_LIBCTX, M_N };
static const char *const mode_names[M_N] = {"openssl", "tuned", "tern", "tern+lc"};

static EVP_PKEY *sign_key[2];
/* Columns to run: TLS_BENCH_MODES, a bit mask of enum mode (default all). */
static unsigned mode_mask = (1u << M_N) - 1;

/* One floor sample: what the server cannot avoid in that handshake: a
 * signature with KT's key and an X25519 exchange (full), the X25519 exchange
 * only (TLS 1.3 resumption, psk_dhe_ke), nothing (TLS 1.2 resumption). */
SERVER_CALL static double floor_sample(int kt, int version, int resume)
{
    if (resume)
        return version == TLS1_3_VERSION ? time_x25519(1) : 0;
    return time_sign(sign_key[kt], 1) + time_x25519(1);
}

/* Runs ITERS rounds; each round does one handshake in every mode and one
 * floor sample, so that load from other processes on a shared machine
 * falls on all of them alike. Fills OUT with medians; returns 0 or -1. */
static int run_case(int kt, int version, int resume, double out[M_N], double *floor_out)
{
    SSL_CTX *cctx = client_ctx(version);
    SSL_CTX *sctx[M_N] = {0};
    struct tern_side t[M_N] = {{0}};
    SSL_SESSION *sess[M_N] = {0};
    static double v[M_N][MAX_ITER], fl[MAX_ITER];
    int bad[M_N] = {0}, rc = 0;
    for (int m = 0; m < M_N; m++) {
        if (!(mode_mask & (1u << m)))
            continue;
        if (m == M_OPENSSL || m == M_TUNED)
            sctx[m] = raw_server_ctx(kt, m == M_TUNED);
        else if (tern_setup(&t[m], kt, m == M_TERN_LIBCTX) != 0)
            return -1;
    }
    unsigned warm = iters / 10 + 2;
    for (unsigned i = 0; i < warm + iters; i++) {
        /* The column order rotates each round so that none always runs
         * right after another (caches, allocator state). */
        for (int k = 0; k < M_N; k++) {
            int m = (int)((i + (unsigned)k) % M_N);
            if (!(mode_mask & (1u << m)))
                continue;
            SSL_SESSION **want = resume && sess[m] == NULL ? &sess[m] : NULL;
            SSL_SESSION *use = resume ? sess[m] : NULL;
            int resumed = 0;
            double us = sctx[m] ? raw_handshake(sctx[m], cctx, use, want, &resumed)
                                : tern_handshake(&t[m], cctx, use, want, &resumed);
            if (us < 0 || (use != NULL && !resumed))
                bad[m]++;
            if (i >= warm)
                v[m][i - warm] = us;
        }
        if (i >= warm)
            fl[i - warm] = floor_sample(kt, version, resume);
    }
    for (int m = 0; m < M_N; m++) {
        if (!(mode_mask & (1u << m)))
            continue;
        SSL_SESSION_free(sess[m]);
        SSL_CTX_free(sctx[m]);
        if (sctx[m] == NULL)
            tern_teardown(&t[m]);
        if (bad[m]) {
            fprintf(stderr, "%s: %d handshakes failed, lacked the staple or did not resume\n",
                    mode_names[m], bad[m]);
            rc = -1;
        }
        out[m] = median(v[m], iters);
    }
    *floor_out = median(fl, iters);
    SSL_CTX_free(cctx);
    return rc;
}

/* ---- scaling over threads --------------------------------------------- */

enum scale_mode { S_TERN, S_TERN_LIBCTX, S_SHARED_CTX, S_N };
static const char *const scale_names[S_N] = {"tern (SSL_CTX per worker)",
                                             "tern + OSSL_LIB_CTX per worker",
                                             "raw OpenSSL, one shared SSL_CTX"};

struct scale_arg {
    pthread_barrier_t *start;
    struct tern_side *t;  /* NULL: raw with sctx */
    SSL_CTX *sctx, *cctx;
    OSSL_LIB_CTX *clibctx; /* the client's own, so clients do not meet */
    unsigned n;
    int bad;
    double cpu_us;     /* thread CPU over the run */
    double *server_us; /* server CPU of each handshake [n] */
};

static void *scale_thread(void *p)
{
    struct scale_arg *a = p;
    pthread_barrier_wait(a->start);
    double t0 = thread_us();
    for (unsigned i = 0; i < a->n; i++) {
        int resumed;
        double us = a->t ? tern_handshake(a->t, a->cctx, NULL, NULL, &resumed)
                         : raw_handshake(a->sctx, a->cctx, NULL, NULL, &resumed);
        if (us < 0)
            a->bad++;
        a->server_us[i] = us;
    }
    a->cpu_us = thread_us() - t0;
    return NULL;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Handshakes per second with NTHREADS threads in mode M; *CPU_US gets the
 * CPU time per handshake (client and server, mean) and *SRV_US the server's
 * alone (median over all threads' handshakes), which grow with contention
 * that spins and, unlike the rate, do not depend on other load. */
static double scale_run(enum scale_mode m, unsigned nthreads, unsigned per_thread,
                        double *cpu_us, double *srv_us)
{
    struct tern_side t[2] = {{0}};
    struct scale_arg a[2];
    pthread_t th[2];
    pthread_barrier_t start;
    SSL_CTX *shared = m == S_SHARED_CTX ? raw_server_ctx(KT_EC, 1) : NULL;
    static double srv[2 * MAX_ITER];
    pthread_barrier_init(&start, NULL, nthreads + 1);
    for (unsigned i = 0; i < nthreads; i++) {
        /* Workers are built here, on the main thread, as at start-up. */
        if (m != S_SHARED_CTX && tern_setup(&t[i], KT_EC, m == S_TERN_LIBCTX) != 0)
            return -1;
        OSSL_LIB_CTX *lc = OSSL_LIB_CTX_new();
        a[i] = (struct scale_arg){.start = &start, .t = m == S_SHARED_CTX ? NULL : &t[i],
                                  .sctx = shared, .clibctx = lc,
                                  .cctx = client_ctx_ex(lc, TLS1_3_VERSION), .n = per_thread,
                                  .server_us = srv + (size_t)i * per_thread};
        if (lc == NULL || a[i].cctx == NULL)
            return -1;
        pthread_create(&th[i], NULL, scale_thread, &a[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = wall_s();
    int bad = 0;
    double cpu = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        bad += a[i].bad;
        cpu += a[i].cpu_us;
    }
    double dt = wall_s() - t0;
    *cpu_us = cpu / (nthreads * per_thread);
    *srv_us = median(srv, nthreads * per_thread);
    for (unsigned i = 0; i < nthreads; i++) {
        SSL_CTX_free(a[i].cctx);
        OSSL_LIB_CTX_free(a[i].clibctx);
        if (m != S_SHARED_CTX)
            tern_teardown(&t[i]);
    }
    SSL_CTX_free(shared);
    pthread_barrier_destroy(&start);
    if (bad) {
        fprintf(stderr, "scaling %s: %d handshakes failed\n", scale_names[m], bad);
        return -1;
    }
    return nthreads * per_thread / dt;
}

static void scaling_table(void)
{
    unsigned n = iters;
    printf("\nscaling: TLS1.3 ECDSA full handshakes per second, client and server in\n"
           "each thread (%u per thread); 2 cores here, shared with other work.\n"
           "us/hs: CPU of client and server; srv: the server's alone; capacity =\n"
           "2 x srv(1 thr) / srv(2 thr), what 2 workers on cores of their own do\n\n", n);
    printf("%-32s%8s%8s%6s%9s%9s%8s%8s%9s\n", "mode", "1 thr/s", "2 thr/s", "ratio",
           "1 us/hs", "2 us/hs", "1 srv", "2 srv", "capacity");
    /* TLS_BENCH_SCALE_MODE=0|1|2 runs one mode (to count futex calls of one
     * mode with strace -f -c, say). */
    const char *only = getenv("TLS_BENCH_SCALE_MODE");
    for (int m = 0; m < S_N; m++) {
        if (only && atoi(only) != m)
            continue;
        double c1 = 0, c2 = 0, s1 = 0, s2 = 0;
        double one = scale_run((enum scale_mode)m, 1, n, &c1, &s1);
        double two = scale_run((enum scale_mode)m, 2, n, &c2, &s2);
        printf("%-32s%8.0f%8.0f%6.2f%9.1f%9.1f%8.1f%8.1f%9.2f\n", scale_names[m], one, two,
               two / one, c1, c2, s1, s2, s2 > 0 ? 2 * s1 / s2 : 0);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PKI_DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    pki = argv[1];
    if (getenv("TLS_BENCH_MODES"))
        mode_mask = (unsigned)strtoul(getenv("TLS_BENCH_MODES"), NULL, 0);
    if (argc > 2)
        iters = (unsigned)atoi(argv[2]);
    if (iters < 10 || iters > MAX_ITER)
        iters = 300;
    for (int kt = 0; kt < 2; kt++) {
        staple[kt] = read_file(path(kt_leaf[kt], ".ocsp.der"), &staple_len[kt]);
        if (staple[kt] == NULL) {
            fprintf(stderr, "no %s\n", path(kt_leaf[kt], ".ocsp.der"));
            return 1;
        }
    }
    double t0 = thread_us();
    for (int i = 0; i < 1000; i++)
        thread_us();
    clock_cost_us = (thread_us() - t0) / 1000;

    char err[256];
    snprintf(table_name, sizeof(table_name), "/tern-tls-bench-%d", (int)getpid());
    struct staple_table_params tp = {.capacity = 16, .max_response = 65536};
    table_w = staple_table_open_writer(table_name, &tp, err, sizeof(err));
    table_r = table_w ? staple_table_attach_reader(table_name, err, sizeof(err)) : NULL;
    ticket_keys = tls_ticket_keys_new();
    if (table_r == NULL || ticket_keys == NULL) {
        fprintf(stderr, "staple table: %s\n", err);
        return 1;
    }

    sign_key[KT_EC] = load_key(path("www-ec", ".key"));
    sign_key[KT_RSA] = load_key(path("www-rsa", ".key"));
    if (!sign_key[KT_EC] || !sign_key[KT_RSA])
        return 1;
    double ec_sign = time_sign(sign_key[KT_EC], 500), rsa_sign = time_sign(sign_key[KT_RSA], 50);
    double x25519 = time_x25519(500);
    printf("crypto floor (server CPU in this process, the operations openssl speed times):\n");
    printf("  ECDSA P-256 sign %.1f us, RSA-2048 sign %.1f us, X25519 keygen+derive %.1f us\n",
           ec_sign, rsa_sign, x25519);
    printf("  floor ECDSA = %.1f us, floor RSA = %.1f us (clock read %.2f us, subtracted)\n\n",
           ec_sign + x25519, rsa_sign + x25519, clock_cost_us);

    static const struct {
        const char *name;
        int kt, version, resume;
    } cases[] = {
        {"TLS1.3 ECDSA full", KT_EC, TLS1_3_VERSION, 0},
        {"TLS1.3 RSA full", KT_RSA, TLS1_3_VERSION, 0},
        {"TLS1.2 ECDSA full", KT_EC, TLS1_2_VERSION, 0},
        {"TLS1.2 RSA full", KT_RSA, TLS1_2_VERSION, 0},
        {"TLS1.3 ECDSA resumed", KT_EC, TLS1_3_VERSION, 1},
        {"TLS1.2 ECDSA resumed", KT_EC, TLS1_2_VERSION, 1},
    };
    printf("server CPU us per handshake, median of %u rounds; each round runs every\n"
           "column once, in rotating order, plus one floor sample (full: signature\n"
           "+ X25519 keygen and derive; TLS 1.3 resumed: X25519 only; TLS 1.2\n"
           "resumed: none);\n"
           "(x) = multiple of that interleaved floor; staple requested in all, sent in\n"
           "every full handshake\n\n", iters);
    printf("%-21s%8s", "case", "floor");
    for (int m = 0; m < M_N; m++)
        printf("%17s", mode_names[m]);
    printf("%12s\n", "tern-tuned");
    int failed = 0;
    const char *only = getenv("TLS_BENCH_CASE"); /* e.g. "TLS1.3 ECDSA full" */
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (only && strcmp(only, cases[i].name) != 0)
            continue;
        double r[M_N] = {0}, fl = 0;
        int rc = run_case(cases[i].kt, cases[i].version, cases[i].resume, r, &fl);
        failed |= rc != 0;
        printf("%-21s%8.1f", cases[i].name, fl);
        for (int m = 0; m < M_N; m++) {
            if (!(mode_mask & (1u << m)))
                printf("%17s", "-");
            else if (fl > 0)
                printf("%9.1f (%4.2fx)", r[m], r[m] / fl);
            else
                printf("%9.1f        ", r[m]);
        }
        printf("%+9.1f us%s\n", r[M_TERN] - r[M_TUNED], rc ? "  FAILED" : "");
        fflush(stdout);
    }
    if (getenv("TLS_BENCH_NO_SCALING") == NULL)
        scaling_table();
    EVP_PKEY_CTX_free(x_kctx);
    EVP_PKEY_free(x_peer);
    EVP_PKEY_free(sign_key[KT_EC]);
    EVP_PKEY_free(sign_key[KT_RSA]);
    tls_ticket_keys_free(ticket_keys);
    staple_table_close(table_r);
    staple_table_close(table_w);
    staple_table_unlink(table_name);
    for (int kt = 0; kt < 2; kt++)
        free(staple[kt]);
    return failed;
}
