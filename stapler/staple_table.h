/* The staple table: OCSP responses in POSIX shared memory, written by one
 * control-plane process and read lock-free by every dataplane core.
 *
 * Contract (DESIGN.md, "The staple table"):
 *  - keyed by SHA-256 of the leaf DER;
 *  - readers take no lock, retry a bounded number of times, never return a
 *    torn response, and skip a response whose next_update has passed even
 *    if the writer is dead;
 *  - one writer at a time, enforced with an advisory lock the kernel drops
 *    when the holder dies; a writer killed anywhere leaves the previous
 *    response published, and the next writer reclaims what it leaked;
 *  - a versioned header: an unknown layout is refused with a clear error.
 *
 * Return conventions (CONVENTIONS.md): constructors return a handle or NULL
 * and write a message into err; other calls return 0 or a positive count on
 * success and -errno on failure.
 */
#ifndef TERN_STAPLE_TABLE_H
#define TERN_STAPLE_TABLE_H

#include "staple_table-t.h"

/* Opens the table NAME (a POSIX shm name such as "/tern-staples") for
 * writing, creating it with PARAMS if it does not exist. An existing table
 * is attached as it is (PARAMS must then be NULL or match its geometry);
 * records a previous writer left unreferenced are reclaimed.
 *
 * Control plane only; one writer per table on the machine.
 * Returns a handle the caller owns (release with staple_table_close), or
 * NULL with a message in err: another writer holds the table (EBUSY), the
 * layout is unknown (EPROTO), geometry mismatch (EINVAL), or a system error.
 * errno is set to the matching code. */
struct staple_table *staple_table_open_writer(const char *name,
                                              const struct staple_table_params *params,
                                              char *err, size_t errlen);

/* Attaches to an existing table read-only (PROT_READ mapping). Never blocks
 * on, or takes anything from, the writer.
 * Any process; the handle may be shared by threads of one process.
 * Returns a handle the caller owns, or NULL with a message in err: no table
 * (ENOENT), unknown layout version or magic (EPROTO), truncated (EINVAL). */
struct staple_table *staple_table_attach_reader(const char *name, char *err,
                                                size_t errlen);

/* Unmaps and closes; a writer also releases the writer lock. The table
 * itself stays in shared memory. NULL is a no-op. */
void staple_table_close(struct staple_table *t);

/* Removes the shm name (existing mappings stay valid). For tests and
 * `ternctl` maintenance. Returns 0 or -errno. */
int staple_table_unlink(const char *name);

/* Publishes DER (LEN bytes) as the response for KEY, replacing any previous
 * one. The new response is written completely before it becomes visible;
 * a reader sees either the old or the new response, never a mix.
 * Writer handle only. The table copies DER; the caller keeps ownership.
 * Returns 0, or -EMSGSIZE (len 0 or above max_response), -ENOSPC (no free
 * slot), -ENOMEM (arena full), -EPERM (reader handle). */
int staple_table_publish(struct staple_table *t,
                         const uint8_t key[STAPLE_TABLE_KEY_LEN],
                         const uint8_t *der, uint32_t len,
                         int64_t this_update, int64_t next_update);

/* Withdraws KEY's response. Writer handle only.
 * Returns 0, -ENOENT if absent, -EPERM (reader handle). */
int staple_table_remove(struct staple_table *t,
                        const uint8_t key[STAPLE_TABLE_KEY_LEN]);

/* Copies KEY's response into BUF (CAP bytes) if one is published and its
 * next_update is after NOW (seconds since the epoch). Lock-free, no system
 * call, a bounded number of retries; safe from any thread of any process
 * holding a handle. ENTRY, if not NULL, receives the response's metadata.
 * Returns the response length (> 0), or -ENOENT (no response), -ESTALE
 * (published but expired: skipped), -ENOBUFS (CAP too small; entry->len
 * tells the size), -EAGAIN (the writer kept changing it during every
 * retry; try on a later handshake). */
int staple_table_lookup(const struct staple_table *t,
                        const uint8_t key[STAPLE_TABLE_KEY_LEN], int64_t now,
                        uint8_t *buf, uint32_t cap,
                        struct staple_table_entry *entry);

/* Calls FN once for each published key, with a consistent copy of its
 * metadata (expired entries included: the CLI shows them). Stops early if
 * FN returns non-zero and returns that value; else returns the number of
 * entries visited. Any handle; a concurrent writer may make the walk miss
 * or repeat an entry that moves meanwhile. */
int staple_table_foreach(const struct staple_table *t,
                         int (*fn)(const struct staple_table_entry *e, void *arg),
                         void *arg);

/* Fills STATS. Any handle. Returns 0 or -errno. */
int staple_table_stats(const struct staple_table *t,
                       struct staple_table_stats *stats);

#endif
