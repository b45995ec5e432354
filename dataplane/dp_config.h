/* tern-dataplane reading the shared YAML configuration (control/config.h):
 * certificates become TLS certificate sets, listeners become TLS listeners
 * of the proxy, and the dataplane section sizes the workers.
 *
 * Certificate sets: each `certificates` entry serves its `names`; an entry
 * without names serves the DNS names of its leaf's subjectAltName. Entries
 * that end up with the same names (an ECDSA and an RSA certificate for one
 * site, both listed without `names`) form one set, and OpenSSL picks by
 * what the client supports. `policy: strict` and `must-staple`, and any leaf
 * carrying the TLS Feature status_request extension (RFC 7633), refuse
 * handshakes without a valid staple.
 *
 * Each listener has its own TLS settings (versions, ciphers, tickets) and
 * default certificate; the ticket key file and rotation, one store for
 * all, must be the same on every listener.
 *
 * Limits of this version: IPv4 listeners and backends only. */
#ifndef TERN_DP_CONFIG_H
#define TERN_DP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "args-t.h"
#include "dataplane/tls/tls-t.h"

struct config;

struct dp_config {
    struct config *cfg;                 /* the file as loaded */
    struct tls_certset_params *certsets;
    unsigned n_certsets;
    char ***set_names;                  /* owned copies, per set */
    struct tls_listener_params tls_listeners[PROXY_MAX_LISTENERS];
    char *alpn[PROXY_MAX_LISTENERS];    /* "h2,http/1.1", owned */
    struct tls_config_params tls;       /* staple_table, ticket_keys unset */
    unsigned first_tls_listener;        /* index in dp_args.listeners */
    unsigned n_tls_listeners;
    const char *table_name;             /* points into cfg */
    const char *ticket_key_file;        /* NULL: random keys */
    uint64_t ticket_rotation_ms;
    uint32_t workers;                   /* dataplane.workers, to compare */
    /* One per `backends` pool (cfg->pools order), shared by every core's
     * listeners of that pool, written by the health checker. Owned; free
     * only after the workers stopped. */
    struct pool_health *pool_health;
};

/* Loads PATH (problems are printed to stderr, file:line:column), builds the
 * TLS parameters in *DC and appends the file's listeners to A's (after the
 * plaintext --listen ones), and applies the dataplane section to A (mbufs,
 * flows, idle timeout). Start-up, main thread. Returns 0, or -errno with a
 * reason in ERR; on failure *DC holds nothing to free. */
int dp_config_load(const char *path, struct dp_args *a, struct dp_config *dc,
                   char *err, size_t errlen);

/* Frees what dp_config_load allocated. */
void dp_config_free(struct dp_config *dc);

#endif
