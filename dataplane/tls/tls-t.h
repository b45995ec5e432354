/* Types of tern's TLS termination layer (dataplane/tls).
 *
 * The layer is a byte-stream transform: the proxy feeds it ciphertext from
 * the client's TCP connection and takes plaintext for the backend, and the
 * other way round. It does no I/O of its own. Configuration (struct
 * tls_config) is built once at start-up and then read-only; each core owns a
 * struct tls_worker (its SSL_CTXs, its connection pool, its counters). */
#ifndef TERN_TLS_T_H
#define TERN_TLS_T_H

#include <stddef.h>
#include <stdint.h>

struct staple_table;

/* Opaque: shared read-only configuration, per-core worker, one connection,
 * and the session ticket keys shared by every core. */
struct tls_config;
struct tls_worker;
struct tls_conn;
struct tls_ticket_keys;

/* Most certificates (key types) per certificate set: one ECDSA, one RSA. */
#define TLS_CERTSET_MAX_CERTS 2
/* Longest DNS name accepted for SNI (RFC 1035 limit). */
#define TLS_NAME_MAX 253
/* Bytes of one ticket key record in a key file: name, HMAC key, AES key. */
#define TLS_TICKET_KEY_NAME_LEN 16
#define TLS_TICKET_KEY_SECRET_LEN 32
#define TLS_TICKET_KEY_FILE_RECORD \
    (TLS_TICKET_KEY_NAME_LEN + 2 * TLS_TICKET_KEY_SECRET_LEN)

/* What to do when a handshake asks for a staple and the table has no valid
 * one for the chosen certificate. */
enum tls_staple_policy {
    TLS_STAPLE_LENIENT = 0, /* send the staple when there is one (default) */
    TLS_STAPLE_STRICT,      /* refuse the handshake without a valid staple
                             * (for OCSP Must-Staple certificates, RFC 7633) */
};

/* One certificate: its chain file (leaf first, PEM) and its key file. */
struct tls_cert_params {
    const char *chain_path;
    const char *key_path;
};

/* A certificate set: the names it serves (exact, or "*.example.com" for one
 * label) and up to one certificate per key type; OpenSSL picks ECDSA or RSA
 * by what the client supports. */
struct tls_certset_params {
    const char *const *names;
    unsigned n_names;
    struct tls_cert_params certs[TLS_CERTSET_MAX_CERTS];
    unsigned n_certs;
    enum tls_staple_policy staple_policy;
};

/* A listener's TLS settings. */
/* One listener's TLS settings. The protocol settings left 0 or NULL are
 * the configuration's (struct tls_config_params); listeners whose settings
 * come out the same share one SSL_CTX per certificate set in each worker. */
struct tls_listener_params {
    /* ALPN protocols in server preference order, comma-separated
     * ("h2,http/1.1"); NULL or "" for no ALPN. */
    const char *alpn;
    int min_version;            /* 0: the configuration's */
    int max_version;            /* 0: the configuration's */
    const char *tls12_ciphers;  /* NULL: the configuration's */
    const char *tls13_ciphersuites; /* NULL: the configuration's */
    int num_tickets;            /* 0: the configuration's; -1: none */
    int own_default_certset;    /* 1: default_certset below, 0: the config's */
    unsigned default_certset;   /* certificate set when SNI matches nothing */
};

/* Everything tls_config_new needs. Strings are copied; files are read and
 * checked at once. Zero values pick the defaults noted. */
struct tls_config_params {
    const struct tls_certset_params *certsets;
    unsigned n_certsets;
    unsigned default_certset;   /* index used when SNI matches nothing */
    const struct tls_listener_params *listeners;
    unsigned n_listeners;       /* 0 means one listener without ALPN */
    int min_version;            /* TLS1_2_VERSION (default) or TLS1_3_VERSION */
    int max_version;            /* TLS1_3_VERSION (default) */
    const char *tls12_ciphers;  /* OpenSSL cipher list; NULL: tern's default */
    const char *tls13_ciphersuites; /* NULL: tern's default (AES-128 first) */
    const char *groups;         /* NULL: "X25519:P-256:P-384" */
    int client_cipher_preference; /* 0: server preference (default) */
    int num_tickets;            /* TLS 1.3 tickets per full handshake;
                                 * -1 means 0, 0 means the default of 1 */
    unsigned handshake_timeout_ms; /* 0: 10000 */
    unsigned max_conns;         /* per worker; 0: 1024 */
    unsigned in_buf_size;       /* ciphertext in, per conn; 0: 18432 */
    unsigned out_buf_size;      /* ciphertext out, per conn; 0: 20480 */
    int per_core_libctx;        /* 1: one OSSL_LIB_CTX per worker */
    const struct staple_table *staple_table; /* may be NULL: no stapling */
    struct tls_ticket_keys *ticket_keys; /* NULL: no session tickets */
};

/* Connection states, in order. */
enum tls_conn_state {
    TLS_CONN_HANDSHAKE = 0,
    TLS_CONN_ESTABLISHED,
    TLS_CONN_CLOSED,  /* close_notify received or sent and done */
    TLS_CONN_FAILED,  /* see tls_conn_reason() */
};

enum tls_reason {
#define TLS_REASON(sym, name) TLS_REASON_##sym,
#include "tls_reason.def"
#undef TLS_REASON
    TLS_REASON_MAX
};

/* Worker counters: the list in tls_counters.def, then one "failed_<reason>"
 * counter per enum tls_reason (TLS_CTR_FAILED_BASE + reason). */
enum tls_counter {
#define TLS_COUNTER(sym, name) TLS_CTR_##sym,
#include "tls_counters.def"
#undef TLS_COUNTER
    TLS_CTR_FAILED_BASE,
    TLS_CTR_MAX = TLS_CTR_FAILED_BASE + TLS_REASON_MAX
};

#endif
