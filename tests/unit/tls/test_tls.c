/* Unit tests of dataplane/tls: a real OpenSSL client joined to tern's
 * tls_conn through memory, a real PKI from the openssl CLI, real OCSP
 * responses from `openssl ocsp` in a real staple table.
 *
 * usage: test_tls MKPKI_SCRIPT */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "tls_test_env.h"

static struct env E;
static struct tls_worker *W[2];
static const uint64_t T0 = 1000000000ull;

static struct tls_conn *accept_on(struct tls_worker *w, unsigned listener)
{
    struct tls_conn *c = tls_conn_accept(w, listener, T0);
    CHECK(c != NULL);
    return c;
}

/* Full handshake on worker 0 with options O; checks the chain verifies for
 * the name, data flows, and returns the client for more checks. */
static int full(struct client *cl, struct tls_conn **cp, const struct client_opts *o,
                unsigned listener)
{
    struct tls_conn *c = accept_on(W[0], listener);
    if (c == NULL || client_new(&E, cl, o) != 0)
        return -1;
    *cp = c;
    int rc = handshake(cl, c);
    if (rc == 0)
        rc = exchange(cl, c);
    return rc;
}

static void test_full_handshakes(void)
{
    static const struct {
        int version, keytype, leaf;
        const char *sigalgs, *ciphers12;
    } cases[] = {
        {TLS1_3_VERSION, EVP_PKEY_EC, LEAF_WWW_EC, NULL, NULL},
        {TLS1_3_VERSION, EVP_PKEY_RSA, LEAF_WWW_RSA, "rsa_pss_rsae_sha256", NULL},
        {TLS1_2_VERSION, EVP_PKEY_EC, LEAF_WWW_EC, NULL, NULL},
        {TLS1_2_VERSION, EVP_PKEY_RSA, LEAF_WWW_RSA, NULL, "ECDHE-RSA-AES128-GCM-SHA256"},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client cl;
        struct tls_conn *c = NULL;
        uint64_t sent = ctr(W[0], TLS_CTR_STAPLE_SENT);
        struct client_opts o = {.sni = "www.example.test", .max_version = cases[i].version,
                                .sigalgs = cases[i].sigalgs, .ciphers12 = cases[i].ciphers12};
        CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
        CHECK_EQ_INT(SSL_version(cl.ssl), cases[i].version);
        CHECK_EQ_INT(tls_conn_version(c), cases[i].version);
        CHECK_EQ_INT(peer_key_type(&cl), cases[i].keytype);
        CHECK_EQ_INT(SSL_get_verify_result(cl.ssl), X509_V_OK);
        long len;
        const unsigned char *st = client_staple(&cl, &len);
        /* Exactly the bytes `openssl ocsp` produced for that leaf. */
        CHECK(st != NULL);
        CHECK_EQ_INT(len, (long)E.resp_len[cases[i].leaf]);
        if (st && len == (long)E.resp_len[cases[i].leaf])
            CHECK_MEM(st, E.resp[cases[i].leaf], (size_t)len);
        CHECK(tls_conn_stapled(c));
        CHECK_EQ_INT(ctr(W[0], TLS_CTR_STAPLE_SENT), sent + 1);
        CHECK_EQ_INT(tls_conn_certset(c), SET_WWW);
        CHECK(!tls_conn_resumed(c));
        client_free(&cl);
        tls_conn_release(c);
    }
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_HS_FULL_TLS13), 2);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_HS_FULL_TLS12), 2);
}

static void test_staple_absent_expired_not_requested(void)
{
    struct client cl;
    struct tls_conn *c;
    long len;
    /* default.test: nothing published. */
    uint64_t absent = ctr(W[0], TLS_CTR_UNSTAPLED_ABSENT);
    struct client_opts o = {.sni = "default.test"};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    CHECK(client_staple(&cl, &len) == NULL);
    CHECK(!tls_conn_stapled(c));
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_UNSTAPLED_ABSENT), absent + 1);
    client_free(&cl);
    tls_conn_release(c);

    /* *.wild.test: its response is published with nextUpdate in the past. */
    uint64_t expired = ctr(W[0], TLS_CTR_UNSTAPLED_EXPIRED);
    o = (struct client_opts){.sni = "a.wild.test", .max_version = TLS1_2_VERSION};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    CHECK(client_staple(&cl, &len) == NULL);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_UNSTAPLED_EXPIRED), expired + 1);
    client_free(&cl);
    tls_conn_release(c);
    o.max_version = TLS1_3_VERSION;
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    CHECK(client_staple(&cl, &len) == NULL);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_UNSTAPLED_EXPIRED), expired + 2);
    client_free(&cl);
    tls_conn_release(c);

    /* With the loop's clock, a staple one second from its nextUpdate is
     * already withheld (the clock may be a second old). */
    int64_t now = (int64_t)time(NULL);
    CHECK_EQ_INT(staple_table_publish(E.writer, E.leaf_key[LEAF_DEFAULT], E.resp[LEAF_DEFAULT],
                                      (uint32_t)E.resp_len[LEAF_DEFAULT], now - 60, now + 1),
                 0);
    tls_worker_set_time(W[0], now);
    expired = ctr(W[0], TLS_CTR_UNSTAPLED_EXPIRED);
    o = (struct client_opts){.sni = "default.test"};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    CHECK(client_staple(&cl, &len) == NULL);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_UNSTAPLED_EXPIRED), expired + 1);
    client_free(&cl);
    tls_conn_release(c);
    /* ... and sent while it has more than that second left. */
    CHECK_EQ_INT(env_publish(&E, LEAF_DEFAULT, 30), 0);
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    const unsigned char *st = client_staple(&cl, &len);
    CHECK(st != NULL && len == (long)E.resp_len[LEAF_DEFAULT]);
    client_free(&cl);
    tls_conn_release(c);
    tls_worker_set_time(W[0], 0);
    CHECK_EQ_INT(staple_table_remove(E.writer, E.leaf_key[LEAF_DEFAULT]), 0);

    /* A client that does not ask gets nothing and is counted so. */
    uint64_t nr = ctr(W[0], TLS_CTR_STAPLE_NOT_REQUESTED);
    o = (struct client_opts){.sni = "www.example.test", .no_status = true};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    CHECK(client_staple(&cl, &len) == NULL);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_STAPLE_NOT_REQUESTED), nr + 1);
    client_free(&cl);
    tls_conn_release(c);
}

static void test_must_staple(void)
{
    struct client cl;
    struct tls_conn *c;
    long len;
    for (int v = 0; v < 2; v++) {
        int version = v ? TLS1_3_VERSION : TLS1_2_VERSION;
        uint64_t refused = ctr(W[0], TLS_CTR_UNSTAPLED_REFUSED);
        struct client_opts o = {.sni = "strict.test", .max_version = version};
        CHECK(full(&cl, &c, &o, 0) != 0);
        CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_FAILED);
        CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_NO_STAPLE);
        CHECK_EQ_INT(ctr(W[0], TLS_CTR_UNSTAPLED_REFUSED), refused + 1);
        /* The client saw the handshake fail, not a certificate. */
        CHECK(!SSL_is_init_finished(cl.ssl));
        client_free(&cl);
        tls_conn_release(c);
    }
    /* A client that does not ask for a staple is refused as well: the
     * policy is about the certificate, not the client. */
    struct client_opts o = {.sni = "strict.test", .no_status = true};
    uint64_t refused = ctr(W[0], TLS_CTR_UNSTAPLED_REFUSED);
    CHECK(full(&cl, &c, &o, 0) != 0);
    CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_NO_STAPLE);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_UNSTAPLED_REFUSED), refused + 1);
    client_free(&cl);
    tls_conn_release(c);
    /* Once the control plane publishes a staple, the same handshakes work. */
    CHECK_EQ_INT(env_publish(&E, LEAF_STRICT, 3600), 0);
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    client_free(&cl);
    tls_conn_release(c);
    o.no_status = false;
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    const unsigned char *st = client_staple(&cl, &len);
    CHECK(st != NULL && len == (long)E.resp_len[LEAF_STRICT]);
    client_free(&cl);
    tls_conn_release(c);
    /* Expired again: refused again. */
    CHECK_EQ_INT(env_publish(&E, LEAF_STRICT, -1), 0);
    CHECK(full(&cl, &c, &o, 0) != 0);
    CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_NO_STAPLE);
    client_free(&cl);
    tls_conn_release(c);
}

static void test_sni(void)
{
    static const struct {
        const char *sni;
        unsigned set;
        enum tls_counter counter;
        int verifies;
    } cases[] = {
        {"www.example.test", SET_WWW, TLS_CTR_SNI_EXACT, 1},
        {"EXAMPLE.test", SET_WWW, TLS_CTR_SNI_EXACT, 1},
        {"a.wild.test", SET_WILD, TLS_CTR_SNI_WILDCARD, 1},
        {"b.a.wild.test", SET_DEFAULT, TLS_CTR_SNI_UNKNOWN, 0},
        {"wild.test", SET_DEFAULT, TLS_CTR_SNI_UNKNOWN, 0},
        {"unknown.test", SET_DEFAULT, TLS_CTR_SNI_UNKNOWN, 0},
        {NULL, SET_DEFAULT, TLS_CTR_SNI_ABSENT, 1},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client cl;
        struct tls_conn *c;
        uint64_t before = ctr(W[0], cases[i].counter);
        struct client_opts o = {.sni = cases[i].sni};
        /* Names the default certificate does not carry fail the client's
         * hostname check, as they should; the server side still completes
         * as far as the client lets it. */
        int rc = full(&cl, &c, &o, 0);
        CHECK_EQ_INT(rc == 0, cases[i].verifies);
        CHECK_EQ_INT(tls_conn_certset(c), cases[i].set);
        CHECK_EQ_INT(ctr(W[0], cases[i].counter), before + 1);
        if (cases[i].sni && cases[i].verifies)
            CHECK(strcasecmp(tls_conn_server_name(c), cases[i].sni) == 0);
        client_free(&cl);
        tls_conn_release(c);
    }
}

static void test_alpn(void)
{
    static const unsigned char h1_h2[] = "\x08http/1.1\x02h2";
    static const unsigned char foo[] = "\x03" "foo";
    struct client cl;
    struct tls_conn *c;
    unsigned len;
    /* Server preference wins: h2 although the client lists http/1.1 first. */
    struct client_opts o = {.sni = "www.example.test", .alpn = h1_h2, .alpn_len = 12};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    const uint8_t *p = tls_conn_alpn(c, &len);
    CHECK(p != NULL && len == 2 && memcmp(p, "h2", 2) == 0);
    const unsigned char *cp;
    unsigned clen;
    SSL_get0_alpn_selected(cl.ssl, &cp, &clen);
    CHECK(clen == 2 && memcmp(cp, "h2", 2) == 0);
    client_free(&cl);
    tls_conn_release(c);
    /* Listener 1 has no ALPN. */
    CHECK_EQ_INT(full(&cl, &c, &o, 1), 0);
    CHECK(tls_conn_alpn(c, &len) == NULL && len == 0);
    client_free(&cl);
    tls_conn_release(c);
    /* No overlap: no ALPN, handshake goes on, counted. */
    uint64_t no = ctr(W[0], TLS_CTR_ALPN_NO_OVERLAP);
    o.alpn = foo;
    o.alpn_len = 4;
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    CHECK(tls_conn_alpn(c, &len) == NULL);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_ALPN_NO_OVERLAP), no + 1);
    client_free(&cl);
    tls_conn_release(c);
}

/* Full handshake on worker FROM, returns the client's session (tickets
 * arrive with the exchange). */
static SSL_SESSION *session_from(struct tls_worker *w, int version)
{
    struct client cl;
    struct client_opts o = {.sni = "www.example.test", .max_version = version};
    struct tls_conn *c = tls_conn_accept(w, 0, T0);
    SSL_SESSION *s = NULL;
    if (c && client_new(&E, &cl, &o) == 0 && handshake(&cl, c) == 0 &&
        exchange(&cl, c) == 0)
        s = SSL_get1_session(cl.ssl);
    CHECK(s != NULL && SSL_SESSION_is_resumable(s));
    client_free(&cl);
    tls_conn_release(c);
    return s;
}

/* Resumes S on worker W; returns 1 resumed, 0 full, -1 failed. The staple
 * must still arrive on a resumed TLS 1.3 handshake? No: TLS 1.3 resumption
 * sends no certificate, hence no staple; only checked as such. */
static int resume_on(struct tls_worker *w, SSL_SESSION *s, int version)
{
    struct client cl;
    struct client_opts o = {.sni = "www.example.test", .max_version = version,
                            .session = s};
    struct tls_conn *c = tls_conn_accept(w, 0, T0);
    int rc = -1;
    if (c && client_new(&E, &cl, &o) == 0 && handshake(&cl, c) == 0 &&
        exchange(&cl, c) == 0) {
        rc = SSL_session_reused(cl.ssl) ? 1 : 0;
        CHECK_EQ_INT(tls_conn_resumed(c), rc);
    }
    client_free(&cl);
    tls_conn_release(c);
    return rc;
}

/* TLS 1.3 tickets are for one use (RFC 8446 C.4): a resumed handshake
 * must leave the client a fresh ticket, or every other connection of a
 * client that resumes with its latest ticket falls back to a full one. */
static void test_tls13_fresh_ticket_on_resumption(void)
{
    SSL_SESSION *s = session_from(W[0], TLS1_3_VERSION);
    for (int round = 0; round < 3 && s != NULL; round++) {
        struct client cl;
        struct client_opts o = {.sni = "www.example.test",
                                .max_version = TLS1_3_VERSION, .session = s};
        struct tls_conn *c = tls_conn_accept(W[round % 2], 0, T0);
        SSL_SESSION *next = NULL;
        if (c && client_new(&E, &cl, &o) == 0 && handshake(&cl, c) == 0 &&
            exchange(&cl, c) == 0) {
            CHECK_EQ_INT(SSL_session_reused(cl.ssl), 1);
            next = SSL_get1_session(cl.ssl);
        }
        CHECK(next != NULL && SSL_SESSION_is_resumable(next));
        const unsigned char *t0 = NULL, *t1 = NULL;
        size_t l0 = 0, l1 = 0;
        SSL_SESSION_get0_ticket(s, &t0, &l0);
        if (next != NULL)
            SSL_SESSION_get0_ticket(next, &t1, &l1);
        CHECK(l1 > 0 && (l0 != l1 || memcmp(t0, t1, l0) != 0));
        client_free(&cl);
        tls_conn_release(c);
        SSL_SESSION_free(s);
        s = next;
    }
    SSL_SESSION_free(s);
}

static void test_tickets_across_cores(struct tls_ticket_keys *keys)
{
    for (int v = 0; v < 2; v++) {
        int version = v ? TLS1_3_VERSION : TLS1_2_VERSION;
        enum tls_counter resumed = v ? TLS_CTR_HS_RESUMED_TLS13 : TLS_CTR_HS_RESUMED_TLS12;
        uint64_t r1 = ctr(W[1], resumed);
        SSL_SESSION *s = session_from(W[0], version);
        /* Issued on "core" 0, resumed on "core" 1. */
        CHECK_EQ_INT(resume_on(W[1], s, version), 1);
        CHECK_EQ_INT(ctr(W[1], resumed), r1 + 1);
        /* One rotation: the old key is still accepted (and a new ticket
         * issued under the current key). */
        uint64_t renewed = ctr(W[1], TLS_CTR_TICKET_RENEWED);
        CHECK_EQ_INT(tls_ticket_keys_rotate(keys), 0);
        CHECK_EQ_INT(resume_on(W[1], s, version), 1);
        CHECK_EQ_INT(ctr(W[1], TLS_CTR_TICKET_RENEWED), renewed + 1);
        /* Past the accepted window: a full handshake, counted. */
        for (int i = 0; i < TLS_TICKET_KEYS_ACCEPTED_OLD; i++)
            CHECK_EQ_INT(tls_ticket_keys_rotate(keys), 0);
        uint64_t unknown = ctr(W[0], TLS_CTR_TICKET_UNKNOWN_KEY);
        CHECK_EQ_INT(resume_on(W[0], s, version), 0);
        CHECK_EQ_INT(ctr(W[0], TLS_CTR_TICKET_UNKNOWN_KEY), unknown + 1);
        SSL_SESSION_free(s);
    }
}

/* Two "machines" loading one key file resume each other's tickets; a
 * malformed key file is refused. */
static void test_ticket_key_file(void)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/ticket.keys", E.dir);
    uint8_t rec[2 * TLS_TICKET_KEY_FILE_RECORD];
    for (size_t i = 0; i < sizeof(rec); i++)
        rec[i] = (uint8_t)(i * 7 + 3);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(rec, 1, sizeof(rec), f) == sizeof(rec));
    if (f)
        fclose(f);
    struct tls_ticket_keys *k1 = tls_ticket_keys_new(), *k2 = tls_ticket_keys_new();
    CHECK(k1 && k2);
    CHECK_EQ_INT(tls_ticket_keys_load_file(k1, path), 0);
    CHECK_EQ_INT(tls_ticket_keys_load_file(k2, path), 0);
    struct tls_config *c1 = env_config(&E, k1, 0), *c2 = env_config(&E, k2, 1);
    char err[256];
    struct tls_worker *w1 = c1 ? tls_worker_new(c1, 7, err, sizeof(err)) : NULL;
    struct tls_worker *w2 = c2 ? tls_worker_new(c2, 8, err, sizeof(err)) : NULL;
    CHECK(w1 && w2);
    if (w1 && w2) {
        SSL_SESSION *s = session_from(w1, TLS1_3_VERSION);
        CHECK_EQ_INT(resume_on(w2, s, TLS1_3_VERSION), 1);
        SSL_SESSION_free(s);
    }
    tls_worker_free(w1);
    tls_worker_free(w2);
    tls_config_free(c1);
    tls_config_free(c2);
    f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(rec, 1, 79, f) == 79);
    if (f)
        fclose(f);
    CHECK_EQ_INT(tls_ticket_keys_load_file(k1, path), -EINVAL);
    /* The schedule: nothing before the period, one rotation after it. */
    uint64_t g = tls_ticket_keys_generation(k2);
    CHECK_EQ_INT(tls_ticket_keys_tick(k2, 1000, 3600), 0);
    CHECK_EQ_INT(tls_ticket_keys_tick(k2, 4599, 3600), 0);
    CHECK_EQ_INT(tls_ticket_keys_generation(k2), g);
    CHECK_EQ_INT(tls_ticket_keys_tick(k2, 4600, 3600), 1);
    CHECK_EQ_INT(tls_ticket_keys_tick(k2, 4601, 3600), 0);
    CHECK_EQ_INT(tls_ticket_keys_generation(k2), g + 1);
    CHECK_EQ_INT(tls_ticket_keys_load_file(k1, "/nonexistent/tern"), -ENOENT);
    tls_ticket_keys_free(k1);
    tls_ticket_keys_free(k2);
}

/* Feeds BYTES to a fresh connection; checks it fails with REASON and that
 * the worker then still completes a good handshake. */
static void hostile(const void *bytes, size_t len, enum tls_reason reason)
{
    struct tls_conn *c = accept_on(W[0], 0);
    if (c == NULL)
        return;
    uint64_t failed = ctr(W[0], TLS_CTR_FAILED_BASE + reason);
    ssize_t rc = tls_conn_feed(c, bytes, len);
    if (rc >= 0) /* some inputs only fail when read */
        rc = tls_conn_read(c, (char[64]){0}, 64);
    CHECK_EQ_INT(rc, -EPROTO);
    CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_FAILED);
    CHECK_EQ_INT(tls_conn_reason(c), reason);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_FAILED_BASE + reason), failed + 1);
    /* Further input is refused, not processed. */
    CHECK_EQ_INT(tls_conn_feed(c, "x", 1), -EPROTO);
    tls_conn_release(c);
    struct client cl;
    struct client_opts o = {.sni = "www.example.test"};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    client_free(&cl);
    tls_conn_release(c);
}

static void test_hostile_input(void)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    hostile(http, sizeof(http) - 1, TLS_REASON_GARBAGE);
    /* A handshake record claiming 65535 bytes (limit 16384 + 2048). */
    static const uint8_t huge[] = {0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00};
    hostile(huge, sizeof(huge), TLS_REASON_OVERSIZED);
    /* An unknown record type. */
    static const uint8_t badtype[] = {0x42, 0x03, 0x03, 0x00, 0x02, 0x00, 0x00};
    hostile(badtype, sizeof(badtype), TLS_REASON_GARBAGE);
    /* An alert where the ClientHello should be: garbage to OpenSSL. */
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x33};
    hostile(alert, sizeof(alert), TLS_REASON_GARBAGE);
    /* A fatal alert from the client in the middle of a TLS 1.2 handshake. */
    struct client cl;
    struct client_opts o = {.sni = "www.example.test", .max_version = TLS1_2_VERSION};
    struct tls_conn *ca = accept_on(W[0], 0);
    if (ca != NULL && client_new(&E, &cl, &o) == 0) {
        uint64_t alerts = ctr(W[0], TLS_CTR_ALERT_RECEIVED);
        SSL_do_handshake(cl.ssl);
        CHECK(to_server(&cl, ca) > 0);
        CHECK_EQ_INT(tls_conn_state(ca), TLS_CONN_HANDSHAKE);
        static const uint8_t hs_failure[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
        CHECK_EQ_INT(tls_conn_feed(ca, hs_failure, sizeof(hs_failure)), -EPROTO);
        CHECK_EQ_INT(tls_conn_reason(ca), TLS_REASON_ALERT);
        CHECK_EQ_INT(ctr(W[0], TLS_CTR_ALERT_RECEIVED), alerts + 1);
        client_free(&cl);
    }
    tls_conn_release(ca);
    /* A ClientHello whose handshake length overruns its record. */
    static const uint8_t trunc[] = {0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0xff, 0xff, 0xff, 0x03};
    struct tls_conn *c = accept_on(W[0], 0);
    if (c) {
        ssize_t rc = tls_conn_feed(c, trunc, sizeof(trunc));
        CHECK(rc == -EPROTO);
        CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_FAILED);
        tls_conn_release(c);
    }
    CHECK_EQ_INT(tls_worker_conns_in_use(W[0]), 0);
}

/* After the handshake: a record whose tag does not verify, a record longer
 * than TLS allows, and an orderly close_notify from the client. */
static void test_established_input(void)
{
    for (int v = 0; v < 2; v++) {
        struct client cl;
        struct tls_conn *c;
        struct client_opts o = {.sni = "www.example.test",
                                .max_version = v ? TLS1_3_VERSION : TLS1_2_VERSION};
        CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
        CHECK_EQ_INT(SSL_write(cl.ssl, "tampered", 8), 8);
        char *p;
        long n = BIO_get_mem_data(cl.wbio, &p);
        CHECK(n > 10);
        if (n > 10)
            p[n - 1] ^= 0x01; /* last byte of the tag */
        CHECK(to_server(&cl, c) > 0);
        char buf[64];
        CHECK_EQ_INT(tls_conn_read(c, buf, sizeof(buf)), -EPROTO);
        CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_GARBAGE);
        client_free(&cl);
        tls_conn_release(c);

        CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
        static const uint8_t huge[] = {0x17, 0x03, 0x03, 0x48, 0x01, 0x00};
        CHECK_EQ_INT(tls_conn_feed(c, huge, sizeof(huge)), (long)sizeof(huge));
        CHECK_EQ_INT(tls_conn_read(c, buf, sizeof(buf)), -EPROTO);
        CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_OVERSIZED);
        client_free(&cl);
        tls_conn_release(c);

        CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
        uint64_t closed = ctr(W[0], TLS_CTR_CONN_CLOSED_BY_PEER);
        SSL_shutdown(cl.ssl);
        CHECK(to_server(&cl, c) > 0);
        CHECK_EQ_INT(tls_conn_read(c, buf, sizeof(buf)), -EPIPE);
        CHECK_EQ_INT(tls_conn_read(c, buf, sizeof(buf)), -EPIPE);
        CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_NONE);
        CHECK_EQ_INT(ctr(W[0], TLS_CTR_CONN_CLOSED_BY_PEER), closed + 1);
        /* The client's close_notify ends its direction only: the answer
         * still goes out and the client reads it, then our close_notify. */
        CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_ESTABLISHED);
        CHECK_EQ_INT(tls_conn_write(c, "late", 4), 4);
        CHECK_EQ_INT(tls_conn_shutdown(c), 0);
        CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_CLOSED);
        CHECK_EQ_INT(tls_conn_write(c, "later", 5), -EPIPE);
        CHECK(to_client(c, &cl) > 0);
        char got[8] = {0};
        CHECK_EQ_INT(SSL_read(cl.ssl, got, sizeof(got)), 4);
        CHECK(memcmp(got, "late", 4) == 0);
        CHECK_EQ_INT(SSL_read(cl.ssl, got, sizeof(got)), 0);
        CHECK_EQ_INT(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN);
        client_free(&cl);
        tls_conn_release(c);
    }
}

static void test_renegotiation_refused(void)
{
    struct client cl;
    struct tls_conn *c;
    struct client_opts o = {.sni = "www.example.test", .max_version = TLS1_2_VERSION};
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    uint64_t refused = ctr(W[0], TLS_CTR_RENEGOTIATION_REFUSED);
    CHECK_EQ_INT(SSL_renegotiate(cl.ssl), 1);
    SSL_do_handshake(cl.ssl); /* sends the new ClientHello */
    CHECK(to_server(&cl, c) > 0);
    char buf[64];
    CHECK_EQ_INT(tls_conn_read(c, buf, sizeof(buf)), -EPROTO);
    CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_RENEGOTIATION);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_RENEGOTIATION_REFUSED), refused + 1);
    ERR_clear_error();
    client_free(&cl);
    tls_conn_release(c);
}

static void test_deadline_and_backpressure(void)
{
    struct client cl;
    struct client_opts o = {.sni = "www.example.test"};
    struct tls_conn *c = accept_on(W[0], 0);
    if (c == NULL || client_new(&E, &cl, &o) != 0)
        return;
    SSL_do_handshake(cl.ssl);
    /* Half a ClientHello, then silence. */
    char *p;
    long n = BIO_get_mem_data(cl.wbio, &p);
    CHECK(n > 10);
    CHECK_EQ_INT(tls_conn_feed(c, p, 10), 10);
    CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_HANDSHAKE);
    CHECK(tls_conn_deadline(c) > T0);
    CHECK_EQ_INT(tls_conn_check_deadline(c, T0 + 1000), 0);
    uint64_t to = ctr(W[0], TLS_CTR_FAILED_BASE + TLS_REASON_TIMEOUT);
    CHECK_EQ_INT(tls_conn_check_deadline(c, tls_conn_deadline(c)), -ETIMEDOUT);
    CHECK_EQ_INT(tls_conn_reason(c), TLS_REASON_TIMEOUT);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_FAILED_BASE + TLS_REASON_TIMEOUT), to + 1);
    client_free(&cl);
    tls_conn_release(c);

    /* Backpressure: the input buffer takes at most its size; the rest waits
     * for the caller to read. */
    CHECK_EQ_INT(full(&cl, &c, &o, 0), 0);
    static char big[40000];
    memset(big, 'a', sizeof(big));
    size_t sent = 0;
    for (int i = 0; i < 8 && sent < sizeof(big); i++) {
        int w = SSL_write(cl.ssl, big + sent, (int)(sizeof(big) - sent));
        if (w > 0)
            sent += (size_t)w;
    }
    CHECK_EQ_INT(sent, sizeof(big));
    size_t got = 0;
    bool partial_feed = false;
    for (int i = 0; i < 100 && got < sizeof(big); i++) {
        long pending = BIO_pending(cl.wbio);
        long k = to_server(&cl, c);
        if (k >= 0 && k < pending)
            partial_feed = true;
        static char rbuf[8192];
        ssize_t r;
        while ((r = tls_conn_read(c, rbuf, sizeof(rbuf))) > 0) {
            for (ssize_t j = 0; j < r; j++)
                CHECK(rbuf[j] == 'a');
            got += (size_t)r;
        }
        CHECK(r == 0);
    }
    CHECK_EQ_INT(got, sizeof(big));
    CHECK(partial_feed);
    /* And the other way: write accepts what fits, then 0 until pulled. */
    size_t took = 0;
    ssize_t w;
    while ((w = tls_conn_write(c, big, sizeof(big))) > 0)
        took += (size_t)w;
    CHECK_EQ_INT(w, 0);
    CHECK(took > 0 && took < sizeof(big));
    CHECK(to_client(c, &cl) > took);
    CHECK(tls_conn_write(c, big, sizeof(big)) > 0);
    /* Orderly close both ways. */
    CHECK_EQ_INT(tls_conn_shutdown(c), 0);
    to_client(c, &cl);
    static char sink[65536];
    int r;
    do {
        r = SSL_read(cl.ssl, sink, sizeof(sink));
    } while (r > 0);
    CHECK_EQ_INT(SSL_get_error(cl.ssl, r), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    client_free(&cl);
    tls_conn_release(c);
}

/* A worker whose output buffer (1024 bytes) is smaller than the server's
 * flight (certificates, staple): the handshake proceeds as the caller pulls
 * and reads, never losing a byte. */
static void test_small_output_buffer(struct tls_ticket_keys *keys)
{
    struct tls_config *cfg = env_config_bufs(&E, keys, 0, 1024, 1024);
    char err[256];
    struct tls_worker *w = cfg ? tls_worker_new(cfg, 3, err, sizeof(err)) : NULL;
    CHECK(w != NULL);
    if (w == NULL) {
        tls_config_free(cfg);
        return;
    }
    for (int v = 0; v < 2; v++) {
        struct client cl;
        struct client_opts o = {.sni = "www.example.test",
                                .max_version = v ? TLS1_3_VERSION : TLS1_2_VERSION};
        struct tls_conn *c = tls_conn_accept(w, 0, T0);
        CHECK(c != NULL);
        if (c == NULL || client_new(&E, &cl, &o) != 0)
            break;
        bool done = false;
        size_t moved = 0;
        for (int rounds = 0; rounds < 200 && !done; rounds++) {
            SSL_do_handshake(cl.ssl);
            if (to_server(&cl, c) < 0)
                break;
            moved += to_client(c, &cl);
            char buf[16];
            if (tls_conn_read(c, buf, sizeof(buf)) < 0)
                break;
            moved += to_client(c, &cl);
            done = SSL_is_init_finished(cl.ssl) &&
                   tls_conn_state(c) == TLS_CONN_ESTABLISHED;
        }
        CHECK(done);
        CHECK(moved > 1024); /* the flight really exceeded the buffer */
        long len;
        const unsigned char *st = client_staple(&cl, &len);
        CHECK(st != NULL && len == (long)E.resp_len[LEAF_WWW_EC]);
        CHECK_EQ_INT(exchange(&cl, c), 0);
        client_free(&cl);
        tls_conn_release(c);
    }
    tls_worker_free(w);
    tls_config_free(cfg);
}

/* Per-listener settings: LISTENER_OWN refuses TLS 1.2, prefers its own
 * suite, issues no ticket and defaults to its own certificate, also after
 * SNI switched the certificate set, while listener 0 keeps the
 * configuration's settings; the staple is found in every profile. */
static const char *suite_of(struct client *cl)
{
    return SSL_CIPHER_standard_name(SSL_get_current_cipher(cl->ssl));
}

static void test_listener_profiles(void)
{
    struct client cl;
    struct tls_conn *c;
    /* TLS 1.2 only: refused by LISTENER_OWN, served by listener 0. */
    struct client_opts o12 = {.sni = "www.example.test", .max_version = TLS1_2_VERSION};
    CHECK(full(&cl, &c, &o12, LISTENER_OWN) != 0);
    CHECK_EQ_INT(tls_conn_state(c), TLS_CONN_FAILED);
    client_free(&cl);
    tls_conn_release(c);
    CHECK_EQ_INT(full(&cl, &c, &o12, 0), 0);
    client_free(&cl);
    tls_conn_release(c);
    /* No SNI: the listener's own default certificate, its suite, the
     * staple, and no ticket (the session cannot be resumed). */
    struct client_opts none = {.sni = NULL};
    uint64_t sent = ctr(W[0], TLS_CTR_STAPLE_SENT);
    CHECK_EQ_INT(full(&cl, &c, &none, LISTENER_OWN), 0);
    CHECK_EQ_INT(tls_conn_certset(c), SET_WWW);
    CHECK(strcmp(suite_of(&cl), "TLS_CHACHA20_POLY1305_SHA256") == 0);
    long len;
    CHECK(client_staple(&cl, &len) != NULL);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_STAPLE_SENT), sent + 1);
    SSL_SESSION *s = SSL_get1_session(cl.ssl);
    CHECK(s != NULL && !SSL_SESSION_is_resumable(s));
    SSL_SESSION_free(s);
    client_free(&cl);
    tls_conn_release(c);
    /* The same on listener 0: the configuration's default certificate,
     * AES-128-GCM first, a ticket. */
    CHECK_EQ_INT(full(&cl, &c, &none, 0), 0);
    CHECK_EQ_INT(tls_conn_certset(c), SET_DEFAULT);
    CHECK(strcmp(suite_of(&cl), "TLS_AES_128_GCM_SHA256") == 0);
    s = SSL_get1_session(cl.ssl);
    CHECK(s != NULL && SSL_SESSION_is_resumable(s));
    SSL_SESSION_free(s);
    client_free(&cl);
    tls_conn_release(c);
    /* SNI switches the certificate set, not the profile. */
    struct client_opts wild = {.sni = "a.wild.test"};
    CHECK_EQ_INT(full(&cl, &c, &wild, LISTENER_OWN), 0);
    CHECK_EQ_INT(tls_conn_certset(c), SET_WILD);
    CHECK(strcmp(suite_of(&cl), "TLS_CHACHA20_POLY1305_SHA256") == 0);
    s = SSL_get1_session(cl.ssl);
    CHECK(s != NULL && !SSL_SESSION_is_resumable(s));
    SSL_SESSION_free(s);
    client_free(&cl);
    tls_conn_release(c);
    /* Settings a listener cannot have are refused with its index. */
    char err[256] = "";
    const char *names[] = {"x.test"};
    struct tls_certset_params set = {.names = names, .n_names = 1, .n_certs = 1,
                                     .certs = {{.chain_path = env_path(&E, "www-ec", ".pem"),
                                                .key_path = env_path(&E, "www-ec", ".key")}}};
    struct tls_listener_params ls[2] = {{.alpn = NULL}, {.min_version = 0x0301}};
    struct tls_config_params p = {.certsets = &set, .n_certsets = 1, .listeners = ls,
                                  .n_listeners = 2};
    CHECK(tls_config_new(&p, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "listener 1: TLS versions") != NULL);
    ls[1] = (struct tls_listener_params){.own_default_certset = 1, .default_certset = 1};
    CHECK(tls_config_new(&p, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "listener 1: default certificate set out of range") != NULL);
    /* Two listeners with the same settings share one profile. */
    ls[1] = (struct tls_listener_params){.alpn = "h2"};
    struct tls_config *cfg = tls_config_new(&p, err, sizeof(err));
    CHECK(cfg != NULL);
    CHECK_EQ_INT(tls_config_profiles(cfg), 1);
    tls_config_free(cfg);
}

static void test_pool_and_config_errors(void)
{
    struct tls_conn *held[9];
    unsigned n = 0;
    uint64_t empty = ctr(W[0], TLS_CTR_CONN_POOL_EMPTY);
    while (n < 9 && (held[n] = tls_conn_accept(W[0], 0, T0)) != NULL)
        n++;
    CHECK_EQ_INT(n, 8);
    CHECK_EQ_INT(errno, ENOBUFS);
    CHECK_EQ_INT(ctr(W[0], TLS_CTR_CONN_POOL_EMPTY), empty + 1);
    while (n > 0)
        tls_conn_release(held[--n]);
    CHECK(tls_conn_accept(W[0], 5, T0) == NULL);

    char err[256] = "";
    const char *names[] = {"x.test"};
    struct tls_certset_params bad = {.names = names, .n_names = 1, .n_certs = 1,
                                     .certs = {{.chain_path = env_path(&E, "www-ec", ".pem"),
                                                .key_path = env_path(&E, "www-rsa", ".key")}}};
    struct tls_config_params p = {.certsets = &bad, .n_certsets = 1};
    CHECK(tls_config_new(&p, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "does not match") != NULL);
    bad.certs[0].key_path = env_path(&E, "nope", ".key");
    CHECK(tls_config_new(&p, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "cannot open") != NULL);
    const char *badnames[] = {"a.*.test"};
    bad.certs[0].key_path = env_path(&E, "www-ec", ".key");
    bad.names = badnames;
    CHECK(tls_config_new(&p, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "bad name") != NULL);
}

/* Two threads, each the owner of one worker, issue and resume sessions
 * while the main thread rotates the shared keys every 2 ms: the versioned
 * slots must never hand a worker a torn key (a handshake failure or a
 * ticket that does not decrypt under the key it names). A resumption comes
 * back full only when the key aged out. */
struct rot_thread {
    struct tls_worker *w;
    atomic_int *stop;
    int attempts, resumed, full, failed;
};

static void *rot_worker(void *arg)
{
    struct rot_thread *t = arg;
    for (int i = 0; i < 200 && !atomic_load(t->stop); i++) {
        struct client cl;
        struct client_opts o = {.sni = "www.example.test", .max_version = TLS1_2_VERSION};
        struct tls_conn *c = tls_conn_accept(t->w, 0, T0);
        SSL_SESSION *s = NULL;
        if (c && client_new(&E, &cl, &o) == 0 && handshake(&cl, c) == 0 &&
            exchange(&cl, c) == 0)
            s = SSL_get1_session(cl.ssl);
        client_free(&cl);
        tls_conn_release(c);
        t->attempts++;
        if (s == NULL) {
            t->failed++;
            continue;
        }
        o.session = s;
        c = tls_conn_accept(t->w, 0, T0);
        if (c && client_new(&E, &cl, &o) == 0 && handshake(&cl, c) == 0 &&
            exchange(&cl, c) == 0) {
            if (SSL_session_reused(cl.ssl))
                t->resumed++;
            else
                t->full++;
        } else {
            t->failed++;
        }
        client_free(&cl);
        tls_conn_release(c);
        SSL_SESSION_free(s);
    }
    return NULL;
}

static void test_rotation_under_load(struct tls_ticket_keys *keys)
{
    atomic_int stop = 0;
    struct rot_thread t[2] = {{.w = W[0], .stop = &stop}, {.w = W[1], .stop = &stop}};
    pthread_t th[2];
    uint64_t gen0 = tls_ticket_keys_generation(keys);
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, rot_worker, &t[i]), 0);
    struct timespec pause = {.tv_nsec = 2000000}, t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rotations = 0;
    do { /* at most 750 rotations or 1.5 s */
        CHECK_EQ_INT(tls_ticket_keys_rotate(keys), 0);
        rotations++;
        nanosleep(&pause, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (rotations < 750 &&
             (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < 1500);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        fprintf(stderr, "  rotation thread %d: %d attempts, %d resumed, %d full, %d failed\n",
                i, t[i].attempts, t[i].resumed, t[i].full, t[i].failed);
        CHECK(t[i].attempts > 0);
        CHECK_EQ_INT(t[i].failed, 0);
        CHECK(t[i].resumed > 0);
        CHECK_EQ_INT(t[i].resumed + t[i].full, t[i].attempts);
    }
    CHECK_EQ_INT(tls_ticket_keys_generation(keys), gen0 + (uint64_t)rotations);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MKPKI_SCRIPT\n", argv[0]);
        return 2;
    }
    if (env_setup(&E, argv[1]) != 0) {
        fprintf(stderr, "setup failed\n");
        env_teardown(&E);
        return 1;
    }
    struct tls_ticket_keys *keys = tls_ticket_keys_new();
    struct tls_config *cfg = env_config(&E, keys, 0);
    char err[256];
    W[0] = cfg ? tls_worker_new(cfg, 0, err, sizeof(err)) : NULL;
    W[1] = cfg ? tls_worker_new(cfg, 1, err, sizeof(err)) : NULL;
    CHECK(W[0] && W[1]);
    if (W[0] && W[1]) {
        CHECK_EQ_INT(env_publish(&E, LEAF_WWW_EC, 3600), 0);
        CHECK_EQ_INT(env_publish(&E, LEAF_WWW_RSA, 3600), 0);
        CHECK_EQ_INT(env_publish(&E, LEAF_WILD, -10), 0);
        test_full_handshakes();
        test_staple_absent_expired_not_requested();
        test_must_staple();
        test_sni();
        test_alpn();
        test_tickets_across_cores(keys);
        test_tls13_fresh_ticket_on_resumption();
        test_ticket_key_file();
        test_hostile_input();
        test_established_input();
        test_renegotiation_refused();
        test_deadline_and_backpressure();
        test_small_output_buffer(keys);
        test_listener_profiles();
        test_pool_and_config_errors();
        test_rotation_under_load(keys);
        for (int i = 0; i < TLS_CTR_MAX; i++)
            if (ctr(W[0], i))
                fprintf(stderr, "  w0 %-32s %llu\n", tls_counter_name(i),
                        (unsigned long long)ctr(W[0], i));
        CHECK_EQ_INT(tls_worker_conns_in_use(W[0]), 0);
        CHECK_EQ_INT(tls_worker_conns_in_use(W[1]), 0);
    }
    tls_worker_free(W[0]);
    tls_worker_free(W[1]);
    tls_config_free(cfg);
    tls_ticket_keys_free(keys);
    env_teardown(&E);
    return check_exit();
}
