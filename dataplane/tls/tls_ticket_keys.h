/* Session ticket keys shared by every core.
 *
 * A small ring of key slots, each under its own sequence counter, and a
 * generation number naming the current slot: workers encrypt new tickets with
 * the current key and accept the previous ones, with no lock. Only the main
 * thread rotates, on its own schedule, one slot ahead of the readers, so that
 * a reader meets a slot being rewritten only if it stalls through two
 * rotations; the sequence counter catches even that. */
#ifndef TERN_TLS_TICKET_KEYS_H
#define TERN_TLS_TICKET_KEYS_H

#include "tls-t.h"

/* Keys accepted for decryption: the current one and this many before it. */
#define TLS_TICKET_KEYS_ACCEPTED_OLD 2

/* Creates a key ring with one random current key.
 * Main thread, start-up. Returns the ring (release with
 * tls_ticket_keys_free after every worker is gone) or NULL (ENOMEM, or no
 * randomness: errno set). */
struct tls_ticket_keys *tls_ticket_keys_new(void);

/* Releases the ring; NULL is a no-op. Main thread only. */
void tls_ticket_keys_free(struct tls_ticket_keys *k);

/* Makes a new random key current; the previous ones stay accepted for
 * decryption (TLS_TICKET_KEYS_ACCEPTED_OLD of them).
 * Main thread only (single writer). Returns 0 or -EIO (no randomness). */
int tls_ticket_keys_rotate(struct tls_ticket_keys *k);

/* Installs the keys of a key file shared by several machines: N records of
 * TLS_TICKET_KEY_FILE_RECORD bytes (16 name, 32 HMAC key, 32 AES key), the
 * first is current, the next ones (at most TLS_TICKET_KEYS_ACCEPTED_OLD) are
 * accepted for decryption. Call again when the file changes.
 * Main thread only. Returns 0, -errno from opening or reading the file, or
 * -EINVAL (size not a positive multiple of a record, or too many records). */
int tls_ticket_keys_load_file(struct tls_ticket_keys *k, const char *path);

/* The main thread's schedule: rotates when PERIOD seconds have passed since
 * the last rotation or load (as seen at NOW, seconds since the epoch), so
 * that a ticket stays resumable for between PERIOD and
 * (TLS_TICKET_KEYS_ACCEPTED_OLD + 1) * PERIOD seconds. For keys shared
 * through a key file, reload the file instead (the machines' tooling rotates
 * it) and do not call this. Main thread only.
 * Returns 1 if it rotated, 0 if not yet, -EIO (no randomness). */
int tls_ticket_keys_tick(struct tls_ticket_keys *k, int64_t now, int64_t period);

/* Generation of the current key (grows by one per rotation or load). Any
 * thread; for tests and the CLI. */
uint64_t tls_ticket_keys_generation(const struct tls_ticket_keys *k);

#endif
