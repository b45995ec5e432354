/* Disk cache of OCSP responses: one file per certificate, named by the hex
 * of its table key plus ".der", holding the raw DER response. The content
 * is validated again on every load, so a file that lies about its name is
 * caught like any other bad response. Control plane only. */
#ifndef TERN_STAPLER_CACHE_H
#define TERN_STAPLER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "staple_table-t.h"

/* Writes DER for KEY into DIR atomically: a temporary file in DIR, fsync,
 * rename over the final name, fsync of DIR. A crash leaves the old file or
 * the new one, never a mix (a stray temporary file at worst).
 * Returns 0 or -errno. */
int stapler_cache_write(const char *dir, const uint8_t key[STAPLE_TABLE_KEY_LEN],
                        const uint8_t *der, size_t len);

/* One response to write in a batch; RC receives 0 or -errno. */
struct stapler_cache_item {
    const uint8_t *key; /* STAPLE_TABLE_KEY_LEN bytes */
    const uint8_t *der;
    size_t len;
    int rc;
};

/* Writes N responses into DIR with the same guarantee as
 * stapler_cache_write() but two flushes in all instead of two per file:
 * every temporary file is written, one syncfs() makes them durable, each is
 * renamed over its final name, and one fsync of DIR makes the renames
 * durable. An fsync costs milliseconds on a real disk: per-file flushes
 * would cap a cold start at a few hundred staples per second.
 * Returns the number of items that failed (their RC says why). */
int stapler_cache_write_batch(const char *dir, struct stapler_cache_item *items, size_t n);

/* Reads KEY's file from DIR into a malloc'd *DER (*LEN bytes; the caller
 * frees). Returns 0, -ENOENT (no file), -EFBIG (larger than MAX; not read),
 * or another -errno. */
int stapler_cache_read(const char *dir, const uint8_t key[STAPLE_TABLE_KEY_LEN],
                       size_t max, uint8_t **der, size_t *len);

/* Path of KEY's file in DIR, into BUF. Returns 0 or -ENAMETOOLONG. */
int stapler_cache_path(const char *dir, const uint8_t key[STAPLE_TABLE_KEY_LEN],
                       char *buf, size_t cap);

#endif
