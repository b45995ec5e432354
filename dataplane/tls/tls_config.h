/* Shared, read-only TLS configuration, built once at start-up. */
#ifndef TERN_TLS_CONFIG_H
#define TERN_TLS_CONFIG_H

#include "tls-t.h"

/* Builds a configuration from PARAMS: reads and checks every chain and key
 * (the key must match its leaf; two certificates of one set must differ in
 * key type), computes SHA-256 of each leaf's DER once (the staple table key),
 * sorts the SNI names, encodes the ALPN lists, resolves each listener's
 * protocol settings (its own or the configuration's) into profiles.
 * Main thread, start-up only. PARAMS and its strings are copied; the staple
 * table and ticket keys are referenced, not owned, and must outlive every
 * worker. Returns the configuration (release with tls_config_free) or NULL
 * with a message in ERR. */
struct tls_config *tls_config_new(const struct tls_config_params *params,
                                  char *err, size_t errlen);

/* Number of distinct listener settings (protocol versions, ciphers,
 * tickets): each worker holds one SSL_CTX per profile and certificate set,
 * so this is what the configuration costs in SSL_CTXs. Any thread. */
unsigned tls_config_profiles(const struct tls_config *cfg);

/* Releases a configuration; every worker built from it must be freed first.
 * NULL is a no-op. Main thread only. */
void tls_config_free(struct tls_config *cfg);

/* Copies the staple table key (SHA-256 of the leaf DER) of certificate CERT
 * of set CERTSET into KEY (32 bytes). Any thread.
 * Returns 0, or -EINVAL if either index is out of range. */
int tls_config_leaf_key(const struct tls_config *cfg, unsigned certset,
                        unsigned cert, uint8_t key[32]);

/* Attaches the staple table to a configuration built without one (the
 * table did not exist yet at start-up): every worker's next handshake looks
 * staples up in TABLE, which must outlive the workers. Main thread (or the
 * one thread that manages the table), any time after tls_config_new.
 * Returns 0, or -EINVAL if TABLE is NULL or a table is already set. */
int tls_config_set_staple_table(struct tls_config *cfg,
                                const struct staple_table *table);

#endif
