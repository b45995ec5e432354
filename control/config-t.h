/* Types of tern's configuration: what one YAML file says, after defaults.
 *
 * tern-control and tern-dataplane read the same file (config.h). Every
 * duration is in milliseconds, every size in bytes. Strings are owned by the
 * struct config they hang from and freed by config_free. */
#ifndef TERN_CONFIG_T_H
#define TERN_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-certificate stapling policy (DESIGN.md, "Stapler policy"). */
enum config_policy {
    CONFIG_POLICY_LENIENT,     /* staple when there is a valid response */
    CONFIG_POLICY_STRICT,      /* stop serving the certificate once its staple expires */
    CONFIG_POLICY_MUST_STAPLE, /* never serve it without a valid staple */
};

enum config_balance {
    CONFIG_BALANCE_ROUND_ROBIN,
    CONFIG_BALANCE_LEAST_CONN,
};

/* An address and port as written ("127.0.0.1:8080", "[::1]:443"); host is a
 * numeric IPv4 or IPv6 literal without brackets, family AF_INET or AF_INET6. */
struct config_hostport {
    char *host;
    uint16_t port;
    int family;
};

struct config_cert {
    char *name;     /* unique; the CLI and listeners name a certificate by it */
    char *chain;    /* PEM file, leaf first, then intermediates */
    char *key;      /* PEM private key */
    char *issuer;   /* PEM issuer certificate, or NULL: take it from the chain */
    char *ocsp_url; /* overrides the AIA's OCSP URLs, or NULL */
    char **names;   /* SNI names served with it (may be empty) */
    size_t n_names;
    enum config_policy policy;
    unsigned line, col; /* where it was declared, for later messages */
};

struct config_tls {
    int min_version;       /* TLS1_2_VERSION or TLS1_3_VERSION numerically: 0x0303, 0x0304 */
    char *ciphersuites;    /* OpenSSL TLS 1.3 ciphersuites string, or NULL: OpenSSL's */
    char *ciphers;         /* OpenSSL TLS 1.2 cipher list, or NULL: OpenSSL's */
    uint32_t tickets;      /* TLS 1.3 tickets per full handshake; 0 disables tickets */
    char *ticket_key_file; /* shared ticket keys, or NULL: random per process */
    uint64_t ticket_rotation_ms;
};

struct config_listener {
    char *name;
    struct config_hostport addr; /* address and port together */
    char *backend;               /* name of a pool in backends */
    char **alpn;                 /* protocols offered, in preference order */
    size_t n_alpn;
    char *default_cert;          /* certificate when SNI matches none */
    bool proxy_protocol;         /* send a PROXY v2 header to the backend */
    struct config_tls tls;
    unsigned line, col;
};

struct config_pool {
    char *name;
    enum config_balance balance;
    struct config_hostport *servers;
    size_t n_servers;
    uint64_t health_interval_ms;
    uint64_t health_timeout_ms;
    uint32_t max_conns; /* per server; 0 means no limit */
    unsigned line, col;
};

struct config_stapler {
    char *cache_dir;
    double refresh_fraction;   /* refresh at this fraction of thisUpdate..nextUpdate */
    double jitter;             /* +- fraction of the refresh delay, randomised */
    uint64_t backoff_min_ms;
    uint64_t backoff_max_ms;
    uint64_t connect_timeout_ms;
    uint64_t total_timeout_ms;
    uint64_t max_response_bytes;
    uint32_t per_responder_concurrency;
    uint64_t clock_skew_ms;
    uint64_t must_staple_warning_ms; /* warn when a must-staple cert's staple
                                      * is this close to nextUpdate */
};

struct config_table {
    char *shm_name; /* POSIX shm name, starts with '/' */
    uint32_t capacity;
};

struct config_control {
    char *socket;
    uint32_t socket_mode; /* permission bits, e.g. 0660 */
    char *socket_group;   /* group owning the socket, or NULL: the daemon's */
};

struct config_metrics {
    bool enabled;
    struct config_hostport listen;
};

struct config_dataplane {
    uint32_t workers;
    uint32_t mbufs;            /* mbufs per worker's mempool */
    uint32_t flows_per_worker; /* TCP flows a worker can hold */
    uint64_t handshake_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t backend_idle_timeout_ms;
};

struct config {
    char *path; /* file it was read from ("<buffer>" for config_load_buffer) */
    struct config_cert *certs;
    size_t n_certs;
    struct config_listener *listeners;
    size_t n_listeners;
    struct config_pool *pools;
    size_t n_pools;
    struct config_stapler stapler;
    struct config_table table;
    struct config_control control;
    struct config_metrics metrics;
    struct config_dataplane dataplane;
};

/* One problem found in a file, already formatted as
 * "FILE:LINE:COLUMN: what was found; what was expected". */
struct config_diag_entry {
    unsigned line, col; /* 1-based; 0 when the problem has no position */
    char *msg;
};

/* Every problem found by one load, in file order of discovery. */
struct config_diag {
    struct config_diag_entry *v;
    size_t n, cap;
    size_t dropped; /* problems not kept past CONFIG_DIAG_MAX */
};

#define CONFIG_DIAG_MAX 200

/* config_load_* flags */
#define CONFIG_EXPAND_DIRS 0x1u /* expand `directory:` certificate entries by
                                 * reading the folder (else they are checked
                                 * for syntax and skipped: fuzzing) */

#endif
