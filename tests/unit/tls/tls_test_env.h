/* Shared fixture of the TLS tests: a throwaway PKI made by mkpki.sh with the
 * openssl CLI, a real staple table holding real OCSP responses, and helpers
 * that join an OpenSSL client SSL (memory BIOs) to a server tls_conn with no
 * network at all. Header-only: each test program includes it once. */
#ifndef TERN_TLS_TEST_ENV_H
#define TERN_TLS_TEST_ENV_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "stapler/staple_table.h"
#include "tls_config.h"
#include "tls_conn.h"
#include "tls_ticket_keys.h"
#include "tls_worker.h"

enum { LEAF_WWW_EC, LEAF_WWW_RSA, LEAF_WILD, LEAF_DEFAULT, LEAF_STRICT, LEAF_N };
static const char *const leaf_names[LEAF_N] = {"www-ec", "www-rsa", "wild",
                                               "default", "strict"};
enum { SET_WWW, SET_WILD, SET_DEFAULT, SET_STRICT, SET_N };

struct env {
    char dir[128];
    char table_name[64];
    struct staple_table *writer, *reader;
    uint8_t *resp[LEAF_N];
    size_t resp_len[LEAF_N];
    uint8_t leaf_key[LEAF_N][32];
    SSL_CTX *client_ctx;
};

static char *env_path(const struct env *e, const char *name, const char *suffix)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s%s", e->dir, name, suffix);
    return buf[k];
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *b = malloc(1 << 16);
    *len = b ? fread(b, 1, 1 << 16, f) : 0;
    fclose(f);
    return b;
}

/* Makes the PKI with SCRIPT (mkpki.sh) and a staple table named after the
 * PID; returns 0 or -1. */
static int env_setup(struct env *e, const char *script)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/tern-tls-test-%d-XXXXXX", (int)getpid());
    if (mkdtemp(e->dir) == NULL)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", script, e->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "mkpki failed\n");
        return -1;
    }
    for (int i = 0; i < LEAF_N; i++) {
        e->resp[i] = read_file(env_path(e, leaf_names[i], ".ocsp.der"), &e->resp_len[i]);
        if (e->resp[i] == NULL || e->resp_len[i] == 0)
            return -1;
    }
    snprintf(e->table_name, sizeof(e->table_name), "/tern-tls-test-%d", (int)getpid());
    staple_table_unlink(e->table_name);
    struct staple_table_params tp = {.capacity = 64,
                                     .max_response = STAPLE_TABLE_DEFAULT_MAX_RESPONSE};
    char err[256];
    e->writer = staple_table_open_writer(e->table_name, &tp, err, sizeof(err));
    if (e->writer == NULL) {
        fprintf(stderr, "table: %s\n", err);
        return -1;
    }
    e->reader = staple_table_attach_reader(e->table_name, err, sizeof(err));
    if (e->reader == NULL) {
        fprintf(stderr, "table reader: %s\n", err);
        return -1;
    }
    e->client_ctx = SSL_CTX_new(TLS_client_method());
    if (e->client_ctx == NULL ||
        SSL_CTX_load_verify_locations(e->client_ctx, env_path(e, "ca", ".pem"), NULL) != 1)
        return -1;
    SSL_CTX_set_verify(e->client_ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

static void env_teardown(struct env *e)
{
    SSL_CTX_free(e->client_ctx);
    staple_table_close(e->reader);
    staple_table_close(e->writer);
    if (e->table_name[0])
        staple_table_unlink(e->table_name);
    for (int i = 0; i < LEAF_N; i++)
        free(e->resp[i]);
    if (e->dir[0] && strncmp(e->dir, "/tmp/tern-tls-test-", 19) == 0) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", e->dir);
    }
}

static int env_publish(struct env *e, int leaf, int64_t next_update_from_now)
{
    int64_t now = (int64_t)time(NULL);
    return staple_table_publish(e->writer, e->leaf_key[leaf], e->resp[leaf],
                                (uint32_t)e->resp_len[leaf], now - 60,
                                now + next_update_from_now);
}

/* The test configuration: four certificate sets (www with ECDSA and RSA,
 * *.wild.test, default.test as the default, strict.test must-staple) and
 * three listeners: ALPN "h2,http/1.1"; no ALPN; and LISTENER_OWN with
 * settings of its own (TLS 1.3 only, ChaCha20 first, no tickets, www as its
 * default certificate). */
enum { LISTENER_OWN = 2 };
#define OWN_SUITES "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
static struct tls_config *env_config_bufs(struct env *e, struct tls_ticket_keys *keys,
                                          int per_core_libctx, unsigned in_buf,
                                          unsigned out_buf)
{
    static const char *const www_names[] = {"www.example.test", "Example.TEST."};
    static const char *const wild_names[] = {"*.wild.test"};
    static const char *const default_names[] = {"default.test"};
    static const char *const strict_names[] = {"strict.test"};
    struct tls_certset_params sets[SET_N] = {
        [SET_WWW] = {.names = www_names, .n_names = 2, .n_certs = 2},
        [SET_WILD] = {.names = wild_names, .n_names = 1, .n_certs = 1},
        [SET_DEFAULT] = {.names = default_names, .n_names = 1, .n_certs = 1},
        [SET_STRICT] = {.names = strict_names, .n_names = 1, .n_certs = 1,
                        .staple_policy = TLS_STAPLE_STRICT},
    };
    static const int set_leaf[LEAF_N] = {SET_WWW, SET_WWW, SET_WILD, SET_DEFAULT,
                                         SET_STRICT};
    char paths[LEAF_N][2][256];
    for (int i = 0; i < LEAF_N; i++) {
        snprintf(paths[i][0], 256, "%s", env_path(e, leaf_names[i], ".pem"));
        snprintf(paths[i][1], 256, "%s", env_path(e, leaf_names[i], ".key"));
        struct tls_certset_params *s = &sets[set_leaf[i]];
        unsigned j = i == LEAF_WWW_RSA ? 1 : 0;
        s->certs[j].chain_path = paths[i][0];
        s->certs[j].key_path = paths[i][1];
    }
    struct tls_listener_params listeners[3] = {
        {.alpn = "h2,http/1.1"},
        {.alpn = NULL},
        [LISTENER_OWN] = {.min_version = TLS1_3_VERSION, .tls13_ciphersuites = OWN_SUITES,
                          .num_tickets = -1, .own_default_certset = 1,
                          .default_certset = SET_WWW},
    };
    struct tls_config_params p = {
        .certsets = sets,
        .n_certsets = SET_N,
        .default_certset = SET_DEFAULT,
        .listeners = listeners,
        .n_listeners = 3,
        .max_conns = 8,
        .in_buf_size = in_buf,
        .out_buf_size = out_buf,
        .per_core_libctx = per_core_libctx,
        .staple_table = e->reader,
        .ticket_keys = keys,
    };
    char err[256];
    struct tls_config *cfg = tls_config_new(&p, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "config: %s\n", err);
        return NULL;
    }
    for (int i = 0; i < LEAF_N; i++)
        tls_config_leaf_key(cfg, set_leaf[i], i == LEAF_WWW_RSA ? 1 : 0, e->leaf_key[i]);
    return cfg;
}

static struct tls_config *env_config(struct env *e, struct tls_ticket_keys *keys,
                                     int per_core_libctx)
{
    return env_config_bufs(e, keys, per_core_libctx, 0, 0);
}

/* A client SSL over two memory BIOs. */
struct client {
    SSL *ssl;
    BIO *rbio, *wbio; /* owned by ssl */
};

struct client_opts {
    const char *sni;        /* also the name verified */
    int max_version;        /* 0: TLS 1.3 */
    const char *sigalgs;    /* NULL: OpenSSL's default (ECDSA first) */
    const char *ciphers12;  /* NULL: default */
    const unsigned char *alpn;
    unsigned alpn_len;
    bool no_status;         /* do not send status_request */
    SSL_SESSION *session;
};

static int client_new(struct env *e, struct client *cl, const struct client_opts *o)
{
    memset(cl, 0, sizeof(*cl));
    cl->ssl = SSL_new(e->client_ctx);
    cl->rbio = BIO_new(BIO_s_mem());
    cl->wbio = BIO_new(BIO_s_mem());
    if (!cl->ssl || !cl->rbio || !cl->wbio)
        return -1;
    BIO_set_mem_eof_return(cl->rbio, -1);
    SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
    SSL_set_connect_state(cl->ssl);
    if (o->max_version)
        SSL_set_max_proto_version(cl->ssl, o->max_version);
    if (o->sni) {
        SSL_set_tlsext_host_name(cl->ssl, o->sni);
        SSL_set1_host(cl->ssl, o->sni);
    }
    if (o->sigalgs && SSL_set1_sigalgs_list(cl->ssl, o->sigalgs) != 1)
        return -1;
    if (o->ciphers12 && SSL_set_cipher_list(cl->ssl, o->ciphers12) != 1)
        return -1;
    if (o->alpn && SSL_set_alpn_protos(cl->ssl, o->alpn, o->alpn_len) != 0)
        return -1;
    if (!o->no_status)
        SSL_set_tlsext_status_type(cl->ssl, TLSEXT_STATUSTYPE_ocsp);
    if (o->session)
        SSL_set_session(cl->ssl, o->session);
    return 0;
}

/* Frees the client; a session taken from it stays resumable only if the
 * client closed properly (OpenSSL marks it not resumable otherwise). */
static void client_free(struct client *cl)
{
    if (cl->ssl && SSL_is_init_finished(cl->ssl))
        SSL_shutdown(cl->ssl);
    ERR_clear_error();
    SSL_free(cl->ssl);
    cl->ssl = NULL;
}

/* Client ciphertext into the server, as much as the server takes. Returns
 * bytes moved or a negative tls_conn error. */
static long to_server(struct client *cl, struct tls_conn *c)
{
    char *p;
    long n = BIO_get_mem_data(cl->wbio, &p);
    if (n <= 0)
        return 0;
    ssize_t k = tls_conn_feed(c, p, (size_t)n);
    if (k > 0) {
        char scratch[4096];
        for (long left = k; left > 0;) {
            int r = BIO_read(cl->wbio, scratch,
                             left > (long)sizeof(scratch) ? (int)sizeof(scratch) : (int)left);
            if (r <= 0)
                break;
            left -= r;
        }
    }
    return (long)k;
}

static size_t to_client(struct tls_conn *c, struct client *cl)
{
    const uint8_t *p;
    size_t n = tls_conn_out_peek(c, &p);
    if (n > 0) {
        BIO_write(cl->rbio, p, (int)n);
        tls_conn_out_consume(c, n);
    }
    return n;
}

/* Runs both sides until both finished the handshake or one failed, in at
 * most 50 rounds. Returns 0 if both completed, -1 otherwise. */
static int handshake(struct client *cl, struct tls_conn *c)
{
    bool client_done = false, client_failed = false;
    for (int round = 0; round < 50; round++) {
        if (!client_done) {
            int r = SSL_do_handshake(cl->ssl);
            if (r == 1) {
                client_done = true;
            } else {
                int err = SSL_get_error(cl->ssl, r);
                if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
                    client_failed = true;
            }
        }
        long fed = to_server(cl, c);
        to_client(c, cl);
        if (client_failed || fed < 0 || tls_conn_state(c) == TLS_CONN_FAILED)
            break;
        if (client_done && tls_conn_state(c) == TLS_CONN_ESTABLISHED) {
            ERR_clear_error();
            return 0;
        }
    }
    /* Let the client see the server's alert, if any. */
    to_client(c, cl);
    ERR_clear_error();
    return -1;
}

/* One request and one answer through the established connection; the
 * client's read also takes in TLS 1.3 tickets. Returns 0 if both arrived
 * intact. */
static int exchange(struct client *cl, struct tls_conn *c)
{
    char buf[64];
    if (SSL_write(cl->ssl, "ping", 4) != 4)
        return -1;
    if (to_server(cl, c) < 0)
        return -1;
    ssize_t n = tls_conn_read(c, buf, sizeof(buf));
    if (n != 4 || memcmp(buf, "ping", 4) != 0)
        return -1;
    if (tls_conn_write(c, "pong", 4) != 4)
        return -1;
    to_client(c, cl);
    int r = SSL_read(cl->ssl, buf, sizeof(buf));
    ERR_clear_error();
    return r == 4 && memcmp(buf, "pong", 4) == 0 ? 0 : -1;
}

/* The staple the client received, or NULL (length in *LEN). */
static const unsigned char *client_staple(struct client *cl, long *len)
{
    const unsigned char *p = NULL;
    *len = SSL_get_tlsext_status_ocsp_resp(cl->ssl, &p);
    return *len > 0 ? p : NULL;
}

static int peer_key_type(struct client *cl)
{
    X509 *x = SSL_get0_peer_certificate(cl->ssl);
    EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
    return k ? EVP_PKEY_get_base_id(k) : -1;
}

static uint64_t ctr(const struct tls_worker *w, enum tls_counter i)
{
    return tls_worker_counters(w)[i];
}

#endif
