/* Internals shared by the files of dataplane/tls; not for other modules. */
#ifndef TERN_TLS_PVT_H
#define TERN_TLS_PVT_H

#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "tls-t.h"

#define TLS_LEAF_KEY_LEN 32

struct tls_cfg_cert {
    char *chain_path;
    char *key_path;
    uint8_t leaf_key[TLS_LEAF_KEY_LEN]; /* SHA-256 of the leaf DER */
};

struct tls_cfg_certset {
    struct tls_cfg_cert certs[TLS_CERTSET_MAX_CERTS];
    unsigned n_certs;
    enum tls_staple_policy staple_policy;
};

/* One SNI name; the table is sorted by name for bsearch. Wildcards are
 * stored as written, "*.example.com". */
struct tls_cfg_name {
    char *name;
    unsigned certset;
};

/* What SSL_new copies from the SSL_CTX it is made from, and SNI's switch
 * of SSL_CTX leaves as it was: protocol versions, ciphers, tickets. One
 * per distinct listener setting; each worker makes one SSL_CTX per profile
 * and certificate set (w->ctx[_tls_ctx_index()]). */
struct tls_cfg_profile {
    int min_version, max_version;
    char *tls12_ciphers, *tls13_ciphersuites;
    int num_tickets; /* 0: no tickets (TLS 1.2 nor 1.3) */
};

struct tls_cfg_listener {
    uint8_t *alpn; /* wire format: length-prefixed protocols */
    unsigned alpn_len;
    unsigned profile;
    unsigned default_certset;
};

struct tls_config {
    struct tls_cfg_certset *certsets;
    unsigned n_certsets;
    struct tls_cfg_name *names;
    unsigned n_names;
    struct tls_cfg_listener *listeners;
    unsigned n_listeners;
    struct tls_cfg_profile *profiles; /* [n_listeners] at most */
    unsigned n_profiles;
    char *groups;
    bool server_preference;
    uint64_t handshake_timeout_ns;
    unsigned max_conns, in_buf_size, out_buf_size;
    bool per_core_libctx;
    /* Set at start-up, or once later by tls_config_set_staple_table (the
     * table did not exist yet): read with _tls_config_table. */
    const struct staple_table *staple_table;
    struct tls_ticket_keys *ticket_keys;
};

/* The staple table, NULL until one is attached. Acquire pairs with the
 * release store of tls_config_set_staple_table: the handle's fields are
 * visible before the pointer. */
static inline const struct staple_table *
_tls_config_table(const struct tls_config *cfg)
{
    return __atomic_load_n(&cfg->staple_table, __ATOMIC_ACQUIRE);
}

/* A certificate as loaded into one worker's SSL_CTX: OpenSSL hands the
 * status callback the chosen leaf's X509 pointer, which maps back here. */
struct tls_wcert {
    X509 *leaf; /* owned by the SSL_CTX */
    const uint8_t *leaf_key;
    enum tls_staple_policy policy;
};

/* A linear byte buffer; data is [head, tail). */
struct tls_buf {
    uint8_t *data;
    uint32_t head, tail, cap;
};

struct tls_conn {
    struct tls_worker *w;
    SSL *ssl;
    struct tls_buf in, out;
    uint64_t deadline_ns;
    uint16_t listener;
    uint16_t certset;
    uint8_t state;   /* enum tls_conn_state */
    uint8_t reason;  /* enum tls_reason */
    bool stapled;
    bool renegotiation; /* set by the info callback */
    bool peer_closed;   /* close_notify received: reads end, writes go on */
    bool in_use;
    struct tls_conn *next_free;
};

struct tls_worker {
    const struct tls_config *cfg;
    unsigned core;
    OSSL_LIB_CTX *libctx;         /* NULL: the default context */
    SSL_CTX **ctx;                /* per profile and certificate set */
    struct tls_wcert (*certs)[TLS_CERTSET_MAX_CERTS]; /* same index */
    BIO_METHOD *bio_method;
    EVP_CIPHER *ticket_cipher;    /* fetched once: AES-256-CBC */
    struct tls_conn *conns;
    struct tls_conn *free_list;
    uint8_t *bufs;
    unsigned conns_in_use;
    uint8_t *staple_buf;
    uint32_t staple_cap;
    int64_t now;                  /* seconds; 0: read the clock */
    uint64_t ctr[TLS_CTR_MAX];
};

/* Index of the SSL_CTX (and its certificates) of PROFILE and SET in a
 * worker's ctx[] and certs[]. */
static inline unsigned _tls_ctx_index(const struct tls_config *cfg, unsigned profile,
                                      unsigned set)
{
    return profile * cfg->n_certsets + set;
}

/* The same for certificate set SET in the profile of C's listener. */
static inline unsigned _tls_conn_ctx_index(const struct tls_conn *c, unsigned set)
{
    const struct tls_config *cfg = c->w->cfg;
    return _tls_ctx_index(cfg, cfg->listeners[c->listener].profile, set);
}

static inline void tls_count(struct tls_worker *w, enum tls_counter c)
{
    w->ctr[c]++;
}

/* tls_conn.c: records the first failure reason and counts it. */
void _tls_conn_fail(struct tls_conn *c, enum tls_reason r);

/* tls_bio.c: the BIO method over a connection's buffers. */
BIO_METHOD *_tls_bio_method_new(void);
BIO *_tls_bio_new(BIO_METHOD *m, struct tls_conn *c);

/* tls_sni.c: certificate set for NAME (exact, then one-label wildcard), or
 * -1; *WILDCARD tells which matched. */
int _tls_sni_find(const struct tls_config *cfg, const char *name,
                  bool *wildcard);
int _tls_servername_cb(SSL *ssl, int *alert, void *arg);

/* tls_alpn.c */
int _tls_alpn_select_cb(SSL *ssl, const unsigned char **out,
                        unsigned char *outlen, const unsigned char *in,
                        unsigned int inlen, void *arg);

/* tls_staple.c */
int _tls_status_cb(SSL *ssl, void *arg);
/* Strict policy for clients that do not ask for a staple: 0 to go on, -1
 * when the handshake must be refused (counted, connection failed). */
int _tls_staple_strict_check(struct tls_conn *c);

/* tls_ticket_keys.c */
int _tls_ticket_key_cb(SSL *ssl, unsigned char key_name[16],
                       unsigned char iv[EVP_MAX_IV_LENGTH],
                       EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc);

#endif
