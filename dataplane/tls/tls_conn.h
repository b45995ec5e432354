/* One TLS connection: a byte-stream transform with bounded buffers.
 *
 *   client TCP --ciphertext--> tls_conn_feed   tls_conn_read --> backend
 *   client TCP <--ciphertext-- tls_conn_pull   tls_conn_write <-- backend
 *
 * Backpressure: feed accepts only what fits in the connection's input
 * buffer and write accepts only what fits, encrypted, in the output buffer;
 * the caller keeps the rest and retries after read or pull made room. A
 * handshake whose flight does not fit the output buffer waits for the
 * caller to pull and then call tls_conn_read (or feed) again.
 * All calls: owning core only. */
#ifndef TERN_TLS_CONN_H
#define TERN_TLS_CONN_H

#include <sys/types.h>

#include "tls-t.h"

/* Takes a connection from W's pool for a client that connected to LISTENER,
 * at NOW_NS (the caller's monotonic clock, nanoseconds): the handshake must
 * finish by NOW_NS + the configured timeout (see tls_conn_check_deadline).
 * Returns the connection (give back with tls_conn_release) or NULL: pool
 * empty (counted) or OpenSSL out of memory; errno is set (ENOBUFS, ENOMEM,
 * EINVAL for an unknown listener). */
struct tls_conn *tls_conn_accept(struct tls_worker *w, unsigned listener,
                                 uint64_t now_ns);

/* Returns C to its pool and frees its SSL. Any state. NULL is a no-op. */
void tls_conn_release(struct tls_conn *c);

/* Gives ciphertext received from the client: copies up to LEN bytes of CT
 * into the input buffer and, while handshaking, advances the handshake
 * (whose answer then waits in the output buffer: tls_conn_pull).
 * Returns the bytes taken (0..LEN; fewer than LEN when the buffer is full:
 * read plaintext first), or -EPROTO (the connection failed: see
 * tls_conn_reason; pull the alert, if any, then close), -EPIPE (closed). */
ssize_t tls_conn_feed(struct tls_conn *c, const void *ct, size_t len);

/* Reads up to CAP bytes of plaintext for the backend into PT.
 * Returns > 0 bytes read, 0 when no whole record is buffered (feed more) or
 * the handshake is not done, -EPIPE when the client sent close_notify,
 * -EPROTO when the connection failed (tls_conn_reason). */
ssize_t tls_conn_read(struct tls_conn *c, void *pt, size_t cap);

/* Encrypts plaintext from the backend: takes as many of LEN bytes as fit,
 * encrypted, in the output buffer (all at once, never partly buffered
 * inside OpenSSL, so a retry may pass any bytes). The client's close_notify
 * ends only its direction: writing goes on until tls_conn_shutdown.
 * Returns bytes taken (0: handshake not done or output full: pull first),
 * -EPROTO (failed), -EPIPE (closed). */
ssize_t tls_conn_write(struct tls_conn *c, const void *pt, size_t len);

/* Ciphertext waiting to be sent to the client: *P points at LEN contiguous
 * bytes inside the connection, valid until the next call on C. Returns the
 * length (0: nothing to send). */
size_t tls_conn_out_peek(const struct tls_conn *c, const uint8_t **p);

/* Marks N bytes of the peeked ciphertext as sent. N must not exceed what
 * tls_conn_out_peek returned. */
void tls_conn_out_consume(struct tls_conn *c, size_t n);

/* Copies up to CAP bytes of ciphertext to send into BUF and consumes them.
 * Returns the bytes copied (0: nothing to send). */
size_t tls_conn_pull(struct tls_conn *c, void *buf, size_t cap);

/* Queues close_notify (to be pulled). Returns 0, or -EPROTO if the
 * connection had failed (nothing queued). */
int tls_conn_shutdown(struct tls_conn *c);

/* The caller's timer: fails C with TLS_REASON_TIMEOUT if its handshake is
 * still running at NOW_NS past its deadline. Returns 0 (no change) or
 * -ETIMEDOUT (failed now). */
int tls_conn_check_deadline(struct tls_conn *c, uint64_t now_ns);

/* Handshake deadline (monotonic ns), or 0 once the handshake is done. */
uint64_t tls_conn_deadline(const struct tls_conn *c);

enum tls_conn_state tls_conn_state(const struct tls_conn *c);

/* First reason C failed for, TLS_REASON_NONE if it has not. */
enum tls_reason tls_conn_reason(const struct tls_conn *c);

/* Negotiated ALPN protocol (not NUL-terminated), or NULL with *LEN 0. */
const uint8_t *tls_conn_alpn(const struct tls_conn *c, unsigned *len);

/* Server name the client sent, or NULL. Valid until release. */
const char *tls_conn_server_name(const struct tls_conn *c);

/* 1 if the handshake resumed a session (also once closed), else 0. */
int tls_conn_resumed(const struct tls_conn *c);

/* Negotiated protocol version (TLS1_2_VERSION, TLS1_3_VERSION) or 0. */
int tls_conn_version(const struct tls_conn *c);

/* Negotiated cipher suite's OpenSSL name ("TLS_AES_128_GCM_SHA256",
 * "ECDHE-ECDSA-AES128-GCM-SHA256"), a static string, or NULL while the
 * handshake runs. */
const char *tls_conn_cipher(const struct tls_conn *c);

/* 1 if a staple was attached to this connection's handshake, else 0. */
int tls_conn_stapled(const struct tls_conn *c);

/* Index of the certificate set chosen by SNI. */
unsigned tls_conn_certset(const struct tls_conn *c);

#endif
