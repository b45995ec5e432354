/* tern's configuration loader: one YAML file, read by tern-control and
 * tern-dataplane alike (README.md in this folder documents every key).
 *
 * The loader checks everything it can without opening certificates: types,
 * ranges, unknown keys, missing required keys, duplicate names, references
 * between sections. It never stops at the first problem: every problem is
 * recorded in a struct config_diag with its file:line:column. Relative paths
 * in the file are taken relative to the file's own folder.
 *
 * Depends on libyaml only (no DPDK, no OpenSSL), so both processes link it.
 * Not thread-safe per object; separate loads may run on separate threads. */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdio.h>

#include "config-t.h"

/* Reads and checks the file PATH. FLAGS: CONFIG_EXPAND_DIRS.
 * Any thread. DIAG (initialised with config_diag_init) receives every
 * problem; the caller frees it with config_diag_free.
 * Returns a configuration the caller owns (config_free), or NULL when the
 * file cannot be read or has any problem (DIAG then holds at least one). */
struct config *config_load_file(const char *path, unsigned flags,
                                struct config_diag *diag);

/* As config_load_file, from LEN bytes at BUF; NAME is used in messages and
 * relative paths are kept as written. BUF need not be NUL-terminated. */
struct config *config_load_buffer(const char *name, const void *buf, size_t len,
                                  unsigned flags, struct config_diag *diag);

/* Frees CFG and everything it owns. NULL is a no-op. */
void config_free(struct config *cfg);

/* Returns the certificate named NAME in CFG, or NULL. */
const struct config_cert *config_find_cert(const struct config *cfg, const char *name);

void config_diag_init(struct config_diag *diag);
void config_diag_free(struct config_diag *diag);

/* Writes each problem on its own line to OUT. Returns the number written. */
size_t config_diag_print(const struct config_diag *diag, FILE *out);

/* Parses a duration: one or more <integer><unit> groups, units ms, s, m, h, d
 * ("30s", "5m", "1h30m"). A bare number is refused: a unit must be said.
 * Returns 0 and *MS, or -EINVAL (syntax) or -ERANGE (overflow). */
int config_parse_duration(const char *s, uint64_t *ms);

/* Parses a size: an integer followed by nothing or B (bytes), KiB, MiB, GiB,
 * or kB, MB, GB (powers of 1000). Returns 0 and *BYTES, -EINVAL or -ERANGE. */
int config_parse_size(const char *s, uint64_t *bytes);

/* Parses "ADDR:PORT" or "[IPV6]:PORT" with a numeric address. The host is
 * copied into OUT->host (caller frees). Returns 0, -EINVAL or -ENOMEM. */
int config_parse_hostport(const char *s, struct config_hostport *out);

/* Human name of a policy ("lenient", "strict", "must-staple"). */
const char *config_policy_name(enum config_policy p);

#endif
