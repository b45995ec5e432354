/* The staple: attaches the chosen certificate's OCSP response from the
 * shared staple table to the handshake (TLS 1.2 CertificateStatus, TLS 1.3
 * status_request in the leaf's CertificateEntry; OpenSSL places it).
 *
 * No lock and no system call: the table lookup is lock-free and bounded, the
 * key (SHA-256 of the leaf) was computed at load, the clock comes from the
 * worker's loop. The table already skips responses past their nextUpdate, so
 * an expired staple is never sent. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "stapler/staple_table.h"
#include "tls_pvt.h"

static const struct tls_wcert *find_wcert(const struct tls_conn *c, X509 *leaf)
{
    const struct tls_wcert *wc = c->w->certs[_tls_conn_ctx_index(c, c->certset)];
    for (unsigned i = 0; i < TLS_CERTSET_MAX_CERTS; i++)
        if (wc[i].leaf != NULL && wc[i].leaf == leaf)
            return &wc[i];
    return NULL;
}

static enum tls_counter unstapled_reason(int rc)
{
    switch (rc) {
    case -ENOENT:
        return TLS_CTR_UNSTAPLED_ABSENT;
    case -ESTALE:
        return TLS_CTR_UNSTAPLED_EXPIRED;
    case -ENOBUFS:
        return TLS_CTR_UNSTAPLED_TOO_BIG;
    case -ENOMEM:
        return TLS_CTR_UNSTAPLED_NO_MEMORY;
    case -ENODEV:
        return TLS_CTR_UNSTAPLED_NO_TABLE;
    default:
        return TLS_CTR_UNSTAPLED_BUSY;
    }
}

/* Looks the staple up into a fresh OPENSSL_malloc'd copy (OpenSSL takes
 * ownership). Returns its length, or -errno. */
static int fetch_staple(struct tls_worker *w, const uint8_t *key,
                        unsigned char **out)
{
    const struct staple_table *t = _tls_config_table(w->cfg);
    if (t == NULL)
        return -ENODEV;
    /* The loop's clock may be up to a second old: treat a staple as expired
     * one second early rather than risk sending it a moment too late. */
    int64_t now = w->now ? w->now + 1 : (int64_t)time(NULL);
    int len = staple_table_lookup(t, key, now,
                                  w->staple_buf, w->staple_cap, NULL);
    if (len <= 0)
        return len < 0 ? len : -ENOENT;
    unsigned char *copy = OPENSSL_malloc((size_t)len);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, w->staple_buf, (size_t)len);
    *out = copy;
    return len;
}

/* For a strict certificate set and a client that did not ask for a staple
 * (so the status callback will not run): is there a valid staple for at
 * least one of the set's certificates? Called from the servername callback,
 * once all ClientHello extensions are parsed. */
int _tls_staple_strict_check(struct tls_conn *c)
{
    struct tls_worker *w = c->w;
    const struct tls_wcert *wc = w->certs[_tls_conn_ctx_index(c, c->certset)];
    if (wc[0].policy != TLS_STAPLE_STRICT ||
        SSL_get_tlsext_status_type(c->ssl) == TLSEXT_STATUSTYPE_ocsp)
        return 0;
    const struct staple_table *t = _tls_config_table(w->cfg);
    if (t != NULL) {
        int64_t now = w->now ? w->now + 1 : (int64_t)time(NULL);
        for (unsigned i = 0; i < TLS_CERTSET_MAX_CERTS && wc[i].leaf != NULL; i++)
            if (staple_table_lookup(t, wc[i].leaf_key, now,
                                    w->staple_buf, w->staple_cap, NULL) > 0)
                return 0;
    }
    tls_count(w, TLS_CTR_UNSTAPLED_REFUSED);
    _tls_conn_fail(c, TLS_REASON_NO_STAPLE);
    return -1;
}

/* OpenSSL calls this only when the client sent status_request, after it
 * chose the certificate (so SSL_get_certificate is the leaf to staple). */
int _tls_status_cb(SSL *ssl, void *arg)
{
    (void)arg;
    struct tls_conn *c = SSL_get_app_data(ssl);
    struct tls_worker *w = c->w;
    const struct tls_wcert *wc = find_wcert(c, SSL_get_certificate(ssl));
    if (wc == NULL) {
        tls_count(w, TLS_CTR_UNSTAPLED_ABSENT);
        return SSL_TLSEXT_ERR_NOACK;
    }
    unsigned char *der = NULL;
    int len = fetch_staple(w, wc->leaf_key, &der);
    if (len > 0) {
        if (SSL_set_tlsext_status_ocsp_resp(ssl, der, len) == 1) {
            c->stapled = true;
            tls_count(w, TLS_CTR_STAPLE_SENT);
            return SSL_TLSEXT_ERR_OK;
        }
        OPENSSL_free(der);
        len = -ENOMEM;
    }
    tls_count(w, unstapled_reason(len));
    if (wc->policy == TLS_STAPLE_STRICT) {
        tls_count(w, TLS_CTR_UNSTAPLED_REFUSED);
        _tls_conn_fail(c, TLS_REASON_NO_STAPLE);
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
