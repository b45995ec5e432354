/* SNI: picks the certificate set for the name the client asked for: an
 * exact name first, then a one-label wildcard, else the default set. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tls_pvt.h"

static int name_key_cmp(const void *key, const void *elem)
{
    const struct tls_cfg_name *n = elem;
    return strcmp(key, n->name);
}

static int find_exact(const struct tls_config *cfg, const char *name)
{
    const struct tls_cfg_name *n = bsearch(name, cfg->names, cfg->n_names,
                                           sizeof(*cfg->names), name_key_cmp);
    return n ? (int)n->certset : -1;
}

int _tls_sni_find(const struct tls_config *cfg, const char *name,
                  bool *wildcard)
{
    char buf[TLS_NAME_MAX + 2];
    size_t n = strlen(name);
    if (n == 0 || n > TLS_NAME_MAX)
        return -1;
    if (name[n - 1] == '.')
        n--;
    /* buf[0] is room for the '*' of the wildcard lookup. */
    for (size_t i = 0; i < n; i++)
        buf[i + 1] = (char)tolower((unsigned char)name[i]);
    buf[n + 1] = '\0';
    *wildcard = false;
    int set = find_exact(cfg, buf + 1);
    if (set >= 0)
        return set;
    /* "a.example.com" matches "*.example.com"; "example.com" does not, nor
     * does "b.a.example.com" (RFC 6125 6.4.3: one label only). */
    char *dot = memchr(buf + 1, '.', n);
    if (dot == NULL || dot == buf + 1)
        return -1;
    dot[-1] = '*';
    set = find_exact(cfg, dot - 1);
    *wildcard = set >= 0;
    return set;
}

static int select_set(struct tls_conn *c, SSL *ssl)
{
    struct tls_worker *w = c->w;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) {
        tls_count(w, TLS_CTR_SNI_ABSENT);
        return 0;
    }
    bool wildcard;
    int set = _tls_sni_find(w->cfg, name, &wildcard);
    if (set < 0) {
        /* Unknown names get the default certificate, as nginx and HAProxy
         * do; the client decides whether the name matches. */
        tls_count(w, TLS_CTR_SNI_UNKNOWN);
        return 0;
    }
    tls_count(w, wildcard ? TLS_CTR_SNI_WILDCARD : TLS_CTR_SNI_EXACT);
    if ((unsigned)set != c->certset) {
        if (SSL_set_SSL_CTX(ssl, w->ctx[_tls_conn_ctx_index(c, (unsigned)set)]) == NULL)
            return -1;
        c->certset = (uint16_t)set;
    }
    return 0;
}

/* Runs once the ClientHello's extensions are parsed (with or without SNI),
 * before the certificate is chosen and before the status callback:
 * switching the SSL_CTX switches the certificates (both key types) and the
 * staple policy that follow. */
int _tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (select_set(c, ssl) != 0)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    if (_tls_staple_strict_check(c) != 0) {
        *alert = SSL_AD_HANDSHAKE_FAILURE;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}
