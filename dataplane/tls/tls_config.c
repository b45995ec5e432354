/* Shared TLS configuration: reads and checks certificates once, computes the
 * staple table keys, sorts SNI names, encodes ALPN lists. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls_config.h"
#include "tls_pvt.h"

#define TLS_DEFAULT_TLS12_CIPHERS \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
/* AES-128-GCM-SHA256 first: this CPU has SHA-NI for SHA-256 only, and the
 * SHA-384 suite costs about 15 µs more per handshake (DESIGN.md). */
#define TLS_DEFAULT_TLS13_SUITES \
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
#define TLS_DEFAULT_GROUPS "X25519:P-256:P-384"

static void cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int name_cmp(const void *a, const void *b)
{
    const struct tls_cfg_name *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Lower-cases NAME into a fresh string after checking it is a DNS name or a
 * one-label wildcard ("*.example.com"). */
static char *normalize_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TLS_NAME_MAX)
        return NULL;
    if (name[n - 1] == '.')
        n--;
    if (name[0] == '*' && (n < 3 || name[1] != '.'))
        return NULL;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '*' && i != 0) {
            free(s);
            return NULL;
        }
        s[i] = (char)tolower(ch);
    }
    s[n] = '\0';
    return s;
}

/* Encodes "h2,http/1.1" into ALPN wire format. */
static int encode_alpn(const char *list, struct tls_cfg_listener *l)
{
    l->alpn = NULL;
    l->alpn_len = 0;
    if (list == NULL || list[0] == '\0')
        return 0;
    size_t n = strlen(list);
    uint8_t *out = malloc(n + 1);
    if (out == NULL)
        return -ENOMEM;
    size_t o = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len > 255) {
            free(out);
            return -EINVAL;
        }
        out[o++] = (uint8_t)len;
        memcpy(out + o, p, len);
        o += len;
        p += len;
        if (*p == ',')
            p++;
    }
    l->alpn = out;
    l->alpn_len = (unsigned)o;
    return 0;
}

/* Reads the chain and key, checks they match, returns the leaf's key type
 * (EVP_PKEY_EC, EVP_PKEY_RSA...) and fills the leaf's SHA-256. */
static int load_cert(struct tls_cfg_cert *c, const struct tls_cert_params *p,
                     char *err, size_t errlen)
{
    int type = -1;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    BIO *b = BIO_new_file(p->chain_path, "r");
    if (b == NULL) {
        cfg_err(err, errlen, "%s: cannot open certificate chain", p->chain_path);
        goto out;
    }
    leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (leaf == NULL) {
        cfg_err(err, errlen, "%s: no PEM certificate", p->chain_path);
        goto out;
    }
    b = BIO_new_file(p->key_path, "r");
    if (b == NULL) {
        cfg_err(err, errlen, "%s: cannot open key", p->key_path);
        goto out;
    }
    key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (key == NULL) {
        cfg_err(err, errlen, "%s: no PEM private key", p->key_path);
        goto out;
    }
    if (X509_check_private_key(leaf, key) != 1) {
        cfg_err(err, errlen, "%s: key does not match the certificate in %s",
                p->key_path, p->chain_path);
        goto out;
    }
    unsigned char *der = NULL;
    int der_len = i2d_X509(leaf, &der);
    unsigned int md_len = 0;
    if (der_len <= 0 ||
        EVP_Digest(der, (size_t)der_len, c->leaf_key, &md_len, EVP_sha256(),
                   NULL) != 1 ||
        md_len != TLS_LEAF_KEY_LEN) {
        OPENSSL_free(der);
        cfg_err(err, errlen, "%s: cannot hash the leaf", p->chain_path);
        goto out;
    }
    OPENSSL_free(der);
    c->chain_path = strdup(p->chain_path);
    c->key_path = strdup(p->key_path);
    if (c->chain_path == NULL || c->key_path == NULL) {
        cfg_err(err, errlen, "out of memory");
        goto out;
    }
    type = EVP_PKEY_get_base_id(key);
out:
    ERR_clear_error();
    X509_free(leaf);
    EVP_PKEY_free(key);
    return type;
}

static int load_certset(struct tls_config *cfg, unsigned i,
                        const struct tls_certset_params *p, char *err,
                        size_t errlen)
{
    struct tls_cfg_certset *cs = &cfg->certsets[i];
    int types[TLS_CERTSET_MAX_CERTS];
    if (p->n_certs == 0 || p->n_certs > TLS_CERTSET_MAX_CERTS) {
        cfg_err(err, errlen, "certificate set %u: %u certificates (1 to %d)",
                i, p->n_certs, TLS_CERTSET_MAX_CERTS);
        return -EINVAL;
    }
    cs->staple_policy = p->staple_policy;
    for (unsigned j = 0; j < p->n_certs; j++) {
        types[j] = load_cert(&cs->certs[j], &p->certs[j], err, errlen);
        cs->n_certs = j + 1; /* so tls_config_free frees the paths */
        if (types[j] < 0)
            return -EINVAL;
        for (unsigned k = 0; k < j; k++) {
            if (types[k] == types[j]) {
                cfg_err(err, errlen,
                        "certificate set %u: two certificates of one key type",
                        i);
                return -EINVAL;
            }
        }
    }
    return 0;
}

static int add_names(struct tls_config *cfg, unsigned set,
                     const struct tls_certset_params *p, char *err,
                     size_t errlen)
{
    for (unsigned j = 0; j < p->n_names; j++) {
        char *n = normalize_name(p->names[j]);
        if (n == NULL) {
            cfg_err(err, errlen, "certificate set %u: bad name \"%s\"", set,
                    p->names[j]);
            return -EINVAL;
        }
        cfg->names[cfg->n_names].name = n;
        cfg->names[cfg->n_names].certset = set;
        cfg->n_names++;
    }
    return 0;
}

static bool same_profile(const struct tls_cfg_profile *a, const struct tls_cfg_profile *b)
{
    return a->min_version == b->min_version && a->max_version == b->max_version &&
           a->num_tickets == b->num_tickets &&
           strcmp(a->tls12_ciphers, b->tls12_ciphers) == 0 &&
           strcmp(a->tls13_ciphersuites, b->tls13_ciphersuites) == 0;
}

/* Listener I's protocol settings, its own or else the configuration's,
 * as a profile: an existing one if another listener has the same, else a
 * new one. Returns 0, -EINVAL (reason in ERR) or -ENOMEM. */
static int listener_profile(struct tls_config *cfg, unsigned i,
                            const struct tls_config_params *p,
                            const struct tls_listener_params *l, char *err,
                            size_t errlen)
{
    int tickets = l->num_tickets ? l->num_tickets : p->num_tickets;
    struct tls_cfg_profile t = {
        .min_version = l->min_version ? l->min_version
                       : p->min_version ? p->min_version : TLS1_2_VERSION,
        .max_version = l->max_version ? l->max_version
                       : p->max_version ? p->max_version : TLS1_3_VERSION,
        /* One ticket by default: each TLS 1.3 ticket costs about 13 µs of
         * server CPU and a browser resumes with one (DESIGN.md, "Measuring"). */
        .num_tickets = tickets < 0 ? 0 : tickets ? tickets : 1,
    };
    if (t.min_version < TLS1_2_VERSION || t.max_version > TLS1_3_VERSION ||
        t.min_version > t.max_version) {
        cfg_err(err, errlen, "listener %u: TLS versions: only 1.2 and 1.3 are supported", i);
        return -EINVAL;
    }
    const char *c12 = l->tls12_ciphers ? l->tls12_ciphers
                      : p->tls12_ciphers ? p->tls12_ciphers : TLS_DEFAULT_TLS12_CIPHERS;
    const char *c13 = l->tls13_ciphersuites ? l->tls13_ciphersuites
                      : p->tls13_ciphersuites ? p->tls13_ciphersuites
                                              : TLS_DEFAULT_TLS13_SUITES;
    t.tls12_ciphers = (char *)c12;
    t.tls13_ciphersuites = (char *)c13;
    for (unsigned k = 0; k < cfg->n_profiles; k++) {
        if (same_profile(&cfg->profiles[k], &t)) {
            cfg->listeners[i].profile = k;
            return 0;
        }
    }
    struct tls_cfg_profile *n = &cfg->profiles[cfg->n_profiles];
    *n = t;
    n->tls12_ciphers = strdup(c12);
    n->tls13_ciphersuites = strdup(c13);
    cfg->n_profiles++; /* freed with the config even if a copy failed */
    if (n->tls12_ciphers == NULL || n->tls13_ciphersuites == NULL)
        return -ENOMEM;
    cfg->listeners[i].profile = cfg->n_profiles - 1;
    return 0;
}

struct tls_config *tls_config_new(const struct tls_config_params *p,
                                  char *err, size_t errlen)
{
    if (p == NULL || p->n_certsets == 0 || p->default_certset >= p->n_certsets) {
        cfg_err(err, errlen, "no certificate set, or default out of range");
        errno = EINVAL;
        return NULL;
    }
    struct tls_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        goto nomem;
    cfg->certsets = calloc(p->n_certsets, sizeof(*cfg->certsets));
    unsigned total_names = 0;
    for (unsigned i = 0; i < p->n_certsets; i++)
        total_names += p->certsets[i].n_names;
    cfg->names = calloc(total_names ? total_names : 1, sizeof(*cfg->names));
    unsigned n_listeners = p->n_listeners ? p->n_listeners : 1;
    cfg->listeners = calloc(n_listeners, sizeof(*cfg->listeners));
    if (cfg->certsets == NULL || cfg->names == NULL || cfg->listeners == NULL)
        goto nomem;
    cfg->n_certsets = p->n_certsets;
    for (unsigned i = 0; i < p->n_certsets; i++) {
        if (load_certset(cfg, i, &p->certsets[i], err, errlen) != 0 ||
            add_names(cfg, i, &p->certsets[i], err, errlen) != 0)
            goto fail;
    }
    qsort(cfg->names, cfg->n_names, sizeof(*cfg->names), name_cmp);
    for (unsigned i = 1; i < cfg->n_names; i++) {
        if (strcmp(cfg->names[i - 1].name, cfg->names[i].name) == 0) {
            cfg_err(err, errlen, "name \"%s\" in two certificate sets",
                    cfg->names[i].name);
            goto fail;
        }
    }
    cfg->n_listeners = n_listeners;
    cfg->profiles = calloc(n_listeners, sizeof(*cfg->profiles));
    if (cfg->profiles == NULL)
        goto nomem;
    for (unsigned i = 0; i < n_listeners; i++) {
        static const struct tls_listener_params none;
        const struct tls_listener_params *l = i < p->n_listeners ? &p->listeners[i] : &none;
        if (encode_alpn(l->alpn, &cfg->listeners[i]) != 0) {
            cfg_err(err, errlen, "listener %u: bad ALPN list", i);
            goto fail;
        }
        if (l->own_default_certset && l->default_certset >= p->n_certsets) {
            cfg_err(err, errlen, "listener %u: default certificate set out of range", i);
            goto fail;
        }
        cfg->listeners[i].default_certset =
            l->own_default_certset ? l->default_certset : p->default_certset;
        int rc = listener_profile(cfg, i, p, l, err, errlen);
        if (rc == -ENOMEM)
            goto nomem;
        if (rc < 0)
            goto fail;
    }
    cfg->groups = strdup(p->groups ? p->groups : TLS_DEFAULT_GROUPS);
    if (!cfg->groups)
        goto nomem;
    cfg->server_preference = !p->client_cipher_preference;
    cfg->handshake_timeout_ns =
        (uint64_t)(p->handshake_timeout_ms ? p->handshake_timeout_ms : 10000) *
        1000000ull;
    cfg->max_conns = p->max_conns ? p->max_conns : 1024;
    cfg->in_buf_size = p->in_buf_size ? p->in_buf_size : 18432;
    cfg->out_buf_size = p->out_buf_size ? p->out_buf_size : 20480;
    if (cfg->in_buf_size < 1024 || cfg->out_buf_size < 1024 ||
        cfg->max_conns > 0xffffffu / 4) {
        cfg_err(err, errlen, "buffers below 1024 bytes or too many connections");
        goto fail;
    }
    cfg->per_core_libctx = p->per_core_libctx != 0;
    cfg->staple_table = p->staple_table;
    cfg->ticket_keys = p->ticket_keys;
    return cfg;
nomem:
    cfg_err(err, errlen, "out of memory");
fail:
    tls_config_free(cfg);
    errno = EINVAL;
    return NULL;
}

void tls_config_free(struct tls_config *cfg)
{
    if (cfg == NULL)
        return;
    for (unsigned i = 0; cfg->certsets && i < cfg->n_certsets; i++) {
        for (unsigned j = 0; j < cfg->certsets[i].n_certs; j++) {
            free(cfg->certsets[i].certs[j].chain_path);
            free(cfg->certsets[i].certs[j].key_path);
        }
    }
    for (unsigned i = 0; i < cfg->n_names; i++)
        free(cfg->names[i].name);
    for (unsigned i = 0; cfg->listeners && i < cfg->n_listeners; i++)
        free(cfg->listeners[i].alpn);
    for (unsigned i = 0; i < cfg->n_profiles; i++) {
        free(cfg->profiles[i].tls12_ciphers);
        free(cfg->profiles[i].tls13_ciphersuites);
    }
    free(cfg->certsets);
    free(cfg->names);
    free(cfg->listeners);
    free(cfg->profiles);
    free(cfg->groups);
    free(cfg);
}

unsigned tls_config_profiles(const struct tls_config *cfg)
{
    return cfg->n_profiles;
}

int tls_config_leaf_key(const struct tls_config *cfg, unsigned certset,
                        unsigned cert, uint8_t key[32])
{
    if (certset >= cfg->n_certsets || cert >= cfg->certsets[certset].n_certs)
        return -EINVAL;
    memcpy(key, cfg->certsets[certset].certs[cert].leaf_key, TLS_LEAF_KEY_LEN);
    return 0;
}

int tls_config_set_staple_table(struct tls_config *cfg,
                                const struct staple_table *table)
{
    if (table == NULL || _tls_config_table(cfg) != NULL)
        return -EINVAL;
    __atomic_store_n(&cfg->staple_table, table, __ATOMIC_RELEASE);
    return 0;
}
