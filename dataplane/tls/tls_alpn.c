/* ALPN: the listener's list, in the server's order of preference. */
#include "tls_pvt.h"

int _tls_alpn_select_cb(SSL *ssl, const unsigned char **out,
                        unsigned char *outlen, const unsigned char *in,
                        unsigned int inlen, void *arg)
{
    (void)arg;
    struct tls_conn *c = SSL_get_app_data(ssl);
    const struct tls_cfg_listener *l = &c->w->cfg->listeners[c->listener];
    if (l->alpn_len == 0)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, l->alpn, l->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        /* No common protocol: go on without ALPN rather than fail; the
         * backend protocol then is the listener's default (RFC 7301 allows
         * either; browsers fall back to HTTP/1.1). */
        tls_count(c->w, TLS_CTR_ALPN_NO_OVERLAP);
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    tls_count(c->w, TLS_CTR_ALPN_SELECTED);
    return SSL_TLSEXT_ERR_OK;
}
