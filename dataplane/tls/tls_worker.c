/* A core's TLS context: everything a handshake needs, built at start-up so
 * that the core takes no lock of its own and shares no SSL_CTX: OpenSSL
 * 3.0's shared stores are locked, and a per-core SSL_CTX (optionally in a
 * per-core OSSL_LIB_CTX) keeps cores from meeting there (DESIGN.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "stapler/staple_table-t.h"
#include "tls_pvt.h"
#include "tls_worker.h"

static const char *const counter_names[TLS_CTR_MAX] = {
#define TLS_COUNTER(sym, name) [TLS_CTR_##sym] = name,
#include "tls_counters.def"
#undef TLS_COUNTER
#define TLS_REASON(sym, name) [TLS_CTR_FAILED_BASE + TLS_REASON_##sym] = "failed_" name,
#include "tls_reason.def"
#undef TLS_REASON
};

static const char *const reason_names[TLS_REASON_MAX] = {
#define TLS_REASON(sym, name) [TLS_REASON_##sym] = name,
#include "tls_reason.def"
#undef TLS_REASON
};

const char *tls_counter_name(unsigned i)
{
    return i < TLS_CTR_MAX ? counter_names[i] : NULL;
}

const char *tls_reason_name(unsigned r)
{
    return r < TLS_REASON_MAX ? reason_names[r] : NULL;
}

static void werr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && n >= 0 && (size_t)n < errlen) {
        snprintf(err + n, errlen - (size_t)n, ": ");
        ERR_error_string_n(e, err + n + 2, errlen - (size_t)n - 2);
    }
    ERR_clear_error();
}

/* Counts alerts, and notices the no_renegotiation alert OpenSSL sends when a
 * TLS 1.2 client asks to renegotiate (SSL_OP_NO_RENEGOTIATION): tern then
 * fails the connection instead of carrying on as OpenSSL would, so a client
 * cannot make the core loop on refused renegotiations. */
static void info_cb(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_ALERT))
        return;
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (c == NULL)
        return;
    if (where & SSL_CB_READ) {
        tls_count(c->w, TLS_CTR_ALERT_RECEIVED);
        return;
    }
    tls_count(c->w, TLS_CTR_ALERT_SENT);
    if ((ret & 0xff) == SSL_AD_NO_RENEGOTIATION)
        c->renegotiation = true;
}

static int load_certs(struct tls_worker *w, SSL_CTX *ctx, unsigned profile,
                      unsigned set, char *err, size_t errlen)
{
    const struct tls_cfg_certset *cs = &w->cfg->certsets[set];
    struct tls_wcert *wc = w->certs[_tls_ctx_index(w->cfg, profile, set)];
    for (unsigned j = 0; j < cs->n_certs; j++) {
        const struct tls_cfg_cert *c = &cs->certs[j];
        if (SSL_CTX_use_certificate_chain_file(ctx, c->chain_path) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, c->key_path, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            werr(err, errlen, "core %u: loading %s", w->core, c->chain_path);
            return -EINVAL;
        }
        /* The certificate just loaded is the SSL_CTX's current one. */
        wc[j].leaf = SSL_CTX_get0_certificate(ctx);
        wc[j].leaf_key = c->leaf_key;
        wc[j].policy = cs->staple_policy;
    }
    return 0;
}

static SSL_CTX *make_ctx(struct tls_worker *w, unsigned profile, unsigned set,
                         char *err, size_t errlen)
{
    const struct tls_config *cfg = w->cfg;
    const struct tls_cfg_profile *pf = &cfg->profiles[profile];
    bool tickets = cfg->ticket_keys != NULL && pf->num_tickets > 0;
    SSL_CTX *ctx = SSL_CTX_new_ex(w->libctx, NULL, TLS_server_method());
    if (ctx == NULL) {
        werr(err, errlen, "core %u: SSL_CTX_new", w->core);
        return NULL;
    }
    uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (cfg->server_preference)
        opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!tickets)
        opts |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, opts);
    /* Tickets only: a server-side session cache would be one more shared,
     * locked structure per core, and tickets resume across cores. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char sid_ctx[] = "tern";
    if (SSL_CTX_set_min_proto_version(ctx, pf->min_version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, pf->max_version) != 1 ||
        SSL_CTX_set_cipher_list(ctx, pf->tls12_ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, pf->tls13_ciphersuites) != 1 ||
        SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1 ||
        SSL_CTX_set_num_tickets(ctx, tickets ? (size_t)pf->num_tickets : 0) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        werr(err, errlen, "core %u: OpenSSL refused the TLS settings (TLS 1.2 ciphers "
             "\"%s\", TLS 1.3 suites \"%s\", groups \"%s\")", w->core,
             pf->tls12_ciphers, pf->tls13_ciphersuites, cfg->groups);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (load_certs(w, ctx, profile, set, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* The same callbacks on every SSL_CTX: after SNI switches the SSL_CTX,
     * OpenSSL takes ALPN and status callbacks from the new one, tickets from
     * the first (the session context). */
    SSL_CTX_set_tlsext_servername_callback(ctx, _tls_servername_cb);
    SSL_CTX_set_alpn_select_cb(ctx, _tls_alpn_select_cb, NULL);
    SSL_CTX_set_tlsext_status_cb(ctx, _tls_status_cb);
    SSL_CTX_set_info_callback(ctx, info_cb);
    if (tickets &&
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, _tls_ticket_key_cb) != 1) {
        werr(err, errlen, "core %u: ticket callback", w->core);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int make_pool(struct tls_worker *w)
{
    const struct tls_config *cfg = w->cfg;
    size_t per = (size_t)cfg->in_buf_size + cfg->out_buf_size;
    w->conns = calloc(cfg->max_conns, sizeof(*w->conns));
    w->bufs = malloc(per * cfg->max_conns);
    if (w->conns == NULL || w->bufs == NULL)
        return -ENOMEM;
    for (unsigned i = cfg->max_conns; i-- > 0;) {
        struct tls_conn *c = &w->conns[i];
        c->w = w;
        c->in.data = w->bufs + per * i;
        c->in.cap = cfg->in_buf_size;
        c->out.data = c->in.data + cfg->in_buf_size;
        c->out.cap = cfg->out_buf_size;
        c->next_free = w->free_list;
        w->free_list = c;
    }
    return 0;
}

struct tls_worker *tls_worker_new(const struct tls_config *cfg, unsigned core,
                                  char *err, size_t errlen)
{
    struct tls_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        werr(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->core = core;
    if (cfg->per_core_libctx) {
        w->libctx = OSSL_LIB_CTX_new();
        if (w->libctx == NULL) {
            werr(err, errlen, "core %u: OSSL_LIB_CTX_new", core);
            goto fail;
        }
    }
    unsigned n_ctx = cfg->n_profiles * cfg->n_certsets;
    w->ctx = calloc(n_ctx, sizeof(*w->ctx));
    w->certs = calloc(n_ctx, sizeof(*w->certs));
    w->staple_cap = STAPLE_TABLE_DEFAULT_MAX_RESPONSE;
    w->staple_buf = malloc(w->staple_cap);
    if (w->ctx == NULL || w->certs == NULL || w->staple_buf == NULL ||
        make_pool(w) != 0) {
        werr(err, errlen, "core %u: out of memory", core);
        goto fail;
    }
    /* Fetched once here rather than by name on every ticket. */
    w->ticket_cipher = EVP_CIPHER_fetch(w->libctx, "AES-256-CBC", NULL);
    w->bio_method = _tls_bio_method_new();
    if (w->ticket_cipher == NULL || w->bio_method == NULL) {
        werr(err, errlen, "core %u: fetching algorithms", core);
        goto fail;
    }
    for (unsigned pf = 0; pf < cfg->n_profiles; pf++) {
        for (unsigned i = 0; i < cfg->n_certsets; i++) {
            unsigned k = _tls_ctx_index(cfg, pf, i);
            w->ctx[k] = make_ctx(w, pf, i, err, errlen);
            if (w->ctx[k] == NULL)
                goto fail;
        }
    }
    return w;
fail:
    tls_worker_free(w);
    return NULL;
}

void tls_worker_free(struct tls_worker *w)
{
    if (w == NULL)
        return;
    for (unsigned i = 0; w->ctx && i < w->cfg->n_profiles * w->cfg->n_certsets; i++)
        SSL_CTX_free(w->ctx[i]);
    free(w->ctx);
    free(w->certs);
    EVP_CIPHER_free(w->ticket_cipher);
    BIO_meth_free(w->bio_method);
    free(w->staple_buf);
    free(w->conns);
    free(w->bufs);
    OSSL_LIB_CTX_free(w->libctx);
    free(w);
}

void tls_worker_set_time(struct tls_worker *w, int64_t now)
{
    w->now = now;
}

const uint64_t *tls_worker_counters(const struct tls_worker *w)
{
    return w->ctr;
}

unsigned tls_worker_conns_in_use(const struct tls_worker *w)
{
    return w->conns_in_use;
}
