/* The YAML configuration, as tern-dataplane uses it (see dp_config.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "control/config.h"
#include "dataplane/proxy/pool.h"
#include "dp_config.h"

/* Most names one certificate set serves (from the file or the SAN). */
#define DPC_MAX_NAMES 256

/* The leaf of CHAIN: its DNS subjectAltNames (copied into NAMES, up to
 * DPC_MAX_NAMES) and whether it asks for Must-Staple (RFC 7633). Returns
 * the number of names, or -errno with a reason in ERR. */
static int dpc_leaf_info(const char *chain, char **names, int *must_staple,
                         char *err, size_t errlen)
{
    FILE *f = fopen(chain, "r");
    if (f == NULL) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", chain, strerror(e));
        return -e;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        snprintf(err, errlen, "%s: no PEM certificate", chain);
        return -EINVAL;
    }
    *must_staple = X509_get_ext_by_NID(x, NID_tlsfeature, -1) >= 0;
    int n = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) &&
                    n < DPC_MAX_NAMES; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        int len = ASN1_STRING_length(g->d.dNSName);
        if (len <= 0 || len > TLS_NAME_MAX || memchr(d, 0, (size_t)len) != NULL)
            continue;
        names[n] = strndup((const char *)d, (size_t)len);
        if (names[n] == NULL)
            break;
        n++;
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return n;
}

static int dpc_cmp_str(const void *a, const void *b)
{
    return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static bool dpc_same_names(char **a, unsigned na, const char *const *b,
                           unsigned nb)
{
    if (na != nb || na == 0)
        return false;
    for (unsigned i = 0; i < na; i++)
        if (strcasecmp(a[i], b[i]) != 0)
            return false;
    return true;
}

static int dpc_ipv4(const struct config_hostport *hp, uint32_t *addr_h)
{
    struct in_addr ia;
    if (hp->family != AF_INET || inet_pton(AF_INET, hp->host, &ia) != 1)
        return -EAFNOSUPPORT;
    *addr_h = ntohl(ia.s_addr);
    return 0;
}

void dp_config_free(struct dp_config *dc)
{
    if (dc->set_names != NULL)
        for (unsigned i = 0; i < dc->n_certsets; i++) {
            for (unsigned j = 0; j < dc->certsets[i].n_names; j++)
                free(dc->set_names[i][j]);
            free(dc->set_names[i]);
        }
    free(dc->set_names);
    free(dc->pool_health);
    free(dc->certsets);
    for (unsigned i = 0; i < PROXY_MAX_LISTENERS; i++)
        free(dc->alpn[i]);
    config_free(dc->cfg);
    memset(dc, 0, sizeof(*dc));
}

/* Certificates -> certificate sets. CERT_SET[i] receives the set of
 * certificate i. */
static int dpc_certsets(struct dp_config *dc, unsigned *cert_set, char *err,
                        size_t errlen)
{
    const struct config *cfg = dc->cfg;
    dc->certsets = calloc(cfg->n_certs, sizeof(*dc->certsets));
    dc->set_names = calloc(cfg->n_certs, sizeof(*dc->set_names));
    if (dc->certsets == NULL || dc->set_names == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_certs; i++) {
        const struct config_cert *cc = &cfg->certs[i];
        char **names = calloc(DPC_MAX_NAMES, sizeof(*names));
        if (names == NULL) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        int must_staple = 0;
        char why[256];
        int n = dpc_leaf_info(cc->chain, names, &must_staple, why, sizeof(why));
        if (n < 0) {
            free(names);
            snprintf(err, errlen, "certificate '%s': %s", cc->name, why);
            return n;
        }
        if (cc->n_names > 0) { /* the file's names, not the SAN's */
            for (int j = 0; j < n; j++)
                free(names[j]);
            n = 0;
            for (size_t j = 0; j < cc->n_names && n < DPC_MAX_NAMES; j++)
                if ((names[n] = strdup(cc->names[j])) != NULL)
                    n++;
        }
        qsort(names, (size_t)n, sizeof(*names), dpc_cmp_str);
        enum tls_staple_policy pol =
            (cc->policy != CONFIG_POLICY_LENIENT || must_staple)
                ? TLS_STAPLE_STRICT : TLS_STAPLE_LENIENT;
        /* Join a set with the same names and room for one more key type. */
        unsigned s;
        for (s = 0; s < dc->n_certsets; s++)
            if (dc->certsets[s].n_certs < TLS_CERTSET_MAX_CERTS &&
                dpc_same_names(names, (unsigned)n,
                               (const char *const *)dc->set_names[s],
                               dc->certsets[s].n_names))
                break;
        struct tls_certset_params *set = &dc->certsets[s];
        if (s == dc->n_certsets) {
            dc->n_certsets++;
            dc->set_names[s] = names;
            set->names = (const char *const *)names;
            set->n_names = (unsigned)n;
            set->staple_policy = pol;
        } else {
            for (int j = 0; j < n; j++)
                free(names[j]);
            free(names);
            if (pol == TLS_STAPLE_STRICT)
                set->staple_policy = TLS_STAPLE_STRICT;
        }
        set->certs[set->n_certs].chain_path = cc->chain;
        set->certs[set->n_certs].key_path = cc->key;
        set->n_certs++;
        cert_set[i] = s;
    }
    return 0;
}

static char *dpc_join_alpn(const struct config_listener *l)
{
    size_t len = 1;
    for (size_t i = 0; i < l->n_alpn; i++)
        len += strlen(l->alpn[i]) + 1;
    char *s = calloc(1, len);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < l->n_alpn; i++) {
        if (i > 0)
            strcat(s, ",");
        strcat(s, l->alpn[i]);
    }
    return s;
}

static int dpc_listeners(struct dp_config *dc, struct dp_args *a,
                         const unsigned *cert_set, char *err, size_t errlen)
{
    const struct config *cfg = dc->cfg;
    dc->first_tls_listener = a->n_listeners;
    if (a->n_listeners + cfg->n_listeners > PROXY_MAX_LISTENERS) {
        snprintf(err, errlen, "at most %d listeners in all", PROXY_MAX_LISTENERS);
        return -EINVAL;
    }
    if (cfg->n_pools > 0) {
        /* Cache-line aligned: each server's shared connection count has a
         * line of its own (struct pool_count). */
        size_t sz = cfg->n_pools * sizeof(*dc->pool_health);
        dc->pool_health = aligned_alloc(_Alignof(struct pool_health), sz);
        if (dc->pool_health == NULL) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        memset(dc->pool_health, 0, sz);
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct config_listener *cl = &cfg->listeners[i];
        struct proxy_listener_cfg *l = &a->listeners[a->n_listeners];
        memset(l, 0, sizeof(*l));
        if (dpc_ipv4(&cl->addr, &l->addr) < 0) {
            snprintf(err, errlen, "listener '%s': only IPv4 addresses are "
                     "served by this version", cl->name);
            return -EAFNOSUPPORT;
        }
        l->port = cl->addr.port;
        const struct config_pool *pool = NULL;
        size_t pool_index = 0;
        for (size_t p = 0; p < cfg->n_pools; p++)
            if (strcmp(cfg->pools[p].name, cl->backend) == 0) {
                pool = &cfg->pools[p];
                pool_index = p;
            }
        if (pool == NULL || pool->n_servers == 0 ||
            pool->n_servers > PROXY_MAX_BACKENDS) {
            snprintf(err, errlen, "listener '%s': backend pool '%s' missing, "
                     "empty or above %d servers", cl->name, cl->backend,
                     PROXY_MAX_BACKENDS);
            return -EINVAL;
        }
        for (size_t s = 0; s < pool->n_servers; s++) {
            if (dpc_ipv4(&pool->servers[s], &l->backends[s].addr) < 0) {
                snprintf(err, errlen, "pool '%s': only IPv4 servers are "
                         "reached by this version", pool->name);
                return -EAFNOSUPPORT;
            }
            l->backends[s].port = pool->servers[s].port;
        }
        l->n_backends = (uint16_t)pool->n_servers;
        /* The pool: balance, limit, health shared by every core. */
        l->balance = pool->balance == CONFIG_BALANCE_LEAST_CONN ? POOL_LEAST_CONN
                                                                 : POOL_ROUND_ROBIN;
        l->max_conns = pool->max_conns;
        l->proxy_protocol = cl->proxy_protocol;
        struct pool_health *ph = &dc->pool_health[pool_index];
        if (ph->n_servers == 0)
            (void)pool_health_init(ph, (unsigned)pool->n_servers,
                                   HEALTH_RISE_DEFAULT, HEALTH_FALL_DEFAULT);
        l->health = ph;
        l->health_check.interval_us = pool->health_interval_ms * 1000;
        l->health_check.timeout_us = pool->health_timeout_ms * 1000;
        /* client_ops and its context are per worker (dp_tls). */
        if ((dc->alpn[i] = dpc_join_alpn(cl)) == NULL) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        /* The listener's own TLS settings (tls_config groups listeners with
         * the same ones). tickets: 0 in the file means none. */
        struct tls_listener_params *tl = &dc->tls_listeners[i];
        tl->alpn = dc->alpn[i];
        tl->min_version = cl->tls.min_version;
        tl->tls13_ciphersuites = cl->tls.ciphersuites;
        tl->tls12_ciphers = cl->tls.ciphers;
        tl->num_tickets = cl->tls.tickets == 0 ? -1 : (int)cl->tls.tickets;
        const struct config_cert *dcert =
            cl->default_cert != NULL ? config_find_cert(cfg, cl->default_cert) : NULL;
        tl->own_default_certset = dcert != NULL;
        tl->default_certset = dcert != NULL ? cert_set[dcert - cfg->certs] : 0;
        a->n_listeners++;
    }
    dc->n_tls_listeners = (unsigned)cfg->n_listeners;

    struct tls_config_params *tp = &dc->tls;
    tp->certsets = dc->certsets;
    tp->n_certsets = dc->n_certsets;
    tp->listeners = dc->tls_listeners;
    tp->n_listeners = dc->n_tls_listeners;
    /* Without a default_certificate, a listener serves the first
     * certificate when SNI matches none. */
    tp->default_certset = cfg->n_certs > 0 ? cert_set[0] : 0;
    if (cfg->n_listeners > 0) {
        /* One ticket key store serves every listener: its file and rotation
         * must be the same everywhere, or the file would not say which
         * listener's keys a ticket was made with. */
        const struct config_listener *l0 = &cfg->listeners[0];
        for (size_t i = 1; i < cfg->n_listeners; i++) {
            const struct config_tls *t = &cfg->listeners[i].tls;
            bool same_file = (t->ticket_key_file == NULL) == (l0->tls.ticket_key_file == NULL) &&
                             (t->ticket_key_file == NULL ||
                              strcmp(t->ticket_key_file, l0->tls.ticket_key_file) == 0);
            if (!same_file || t->ticket_rotation_ms != l0->tls.ticket_rotation_ms) {
                snprintf(err, errlen, "listener '%s': tls.ticket_key_file and "
                         "tls.ticket_rotation must be those of listener '%s' (one "
                         "ticket key store serves every listener)",
                         cfg->listeners[i].name, l0->name);
                return -EINVAL;
            }
        }
        dc->ticket_key_file = l0->tls.ticket_key_file;
        dc->ticket_rotation_ms = l0->tls.ticket_rotation_ms;
        /* Ticket keys are made when some listener issues tickets. */
        tp->num_tickets = -1;
        for (size_t i = 0; i < cfg->n_listeners; i++)
            if (cfg->listeners[i].tls.tickets > 0)
                tp->num_tickets = 0;
    }
    tp->handshake_timeout_ms = (unsigned)cfg->dataplane.handshake_timeout_ms;
    return 0;
}

int dp_config_load(const char *path, struct dp_args *a, struct dp_config *dc,
                   char *err, size_t errlen)
{
    memset(dc, 0, sizeof(*dc));
    struct config_diag diag;
    config_diag_init(&diag);
    dc->cfg = config_load_file(path, CONFIG_EXPAND_DIRS, &diag);
    if (dc->cfg == NULL) {
        config_diag_print(&diag, stderr);
        config_diag_free(&diag);
        snprintf(err, errlen, "%s: configuration refused (problems above)", path);
        return -EINVAL;
    }
    config_diag_free(&diag);
    const struct config *cfg = dc->cfg;
    if (cfg->n_listeners > 0 && cfg->n_certs == 0) {
        snprintf(err, errlen, "%s: TLS listeners need at least one certificate",
                 path);
        dp_config_free(dc);
        return -EINVAL;
    }
    unsigned *cert_set = calloc(cfg->n_certs + 1, sizeof(*cert_set));
    int rc = cert_set == NULL ? -ENOMEM : dpc_certsets(dc, cert_set, err, errlen);
    if (rc == 0)
        rc = dpc_listeners(dc, a, cert_set, err, errlen);
    free(cert_set);
    if (rc < 0) {
        dp_config_free(dc);
        return rc;
    }
    dc->table_name = cfg->table.shm_name;
    dc->workers = cfg->dataplane.workers;
    a->mbufs_per_worker = cfg->dataplane.mbufs;
    a->max_conns = cfg->dataplane.flows_per_worker;
    a->idle_timeout_ms = (uint32_t)(cfg->dataplane.idle_timeout_ms < 3600000
                                        ? cfg->dataplane.idle_timeout_ms
                                        : 3600000);
    return 0;
}
