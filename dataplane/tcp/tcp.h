/* The per-core TCP core: segments in, segments out, no device.
 *
 * One struct tcp_stack per worker core; every function below is for the
 * owning core only unless it says otherwise. The stack never allocates after
 * tcp_stack_create(), never reads a clock (the caller passes `now`, a
 * monotonic time in microseconds) and never does I/O: segments leave through
 * ops->output, events reach the upper layer through the other callbacks
 * (see struct tcp_stack_ops for when they fire and what they may call).
 *
 * Typical loop on a worker:
 *     for each received TCP segment: tcp_input(st, &seg, now);
 *     tcp_timers_run(st, now);
 * and the upper layer calls tcp_send/tcp_recv/... from its events. */
#ifndef TERN_TCP_H
#define TERN_TCP_H

#include <sys/types.h>

#include "tcp-t.h"

/* --- stack lifetime ----------------------------------------------------- */

/* Create a stack. `params` is copied (zero fields take their defaults);
 * `ops` is copied; `ctx` is passed to every callback. On failure returns
 * NULL and writes the reason into err[errlen] (if err is not NULL).
 * Called once per core at start-up, before the worker loop. */
struct tcp_stack *tcp_stack_create(const struct tcp_stack_params *params,
                                   const struct tcp_stack_ops *ops, void *ctx,
                                   char *err, size_t errlen);

/* Free a stack and all its memory. No callbacks are delivered; no segment
 * is sent (connections just vanish). Accepts NULL. */
void tcp_stack_destroy(struct tcp_stack *st);

/* The stack's counters (live; see struct tcp_counters for reading them from
 * another thread). Never NULL for a valid stack. */
const struct tcp_counters *tcp_stack_counters(const struct tcp_stack *st);

/* Name and description of counter i (< TCP_CNT_MAX), static strings, any
 * thread. NULL when i is out of range. */
const char *tcp_counter_name(unsigned i);
const char *tcp_counter_desc(unsigned i);
/* Printable name of a state, static string, any thread. */
const char *tcp_state_name(enum tcp_state s);

/* --- packets ------------------------------------------------------------ */

/* Parse the TCP header and options of `len` bytes at `buf`. Unknown options
 * are skipped; a malformed known option (bad length) makes the segment
 * malformed. Returns 0 and fills *out, or -EINVAL (too short, bad data
 * offset, bad option list). Pure; any thread. */
int tcp_parse(const uint8_t *buf, size_t len, struct tcp_hdr *out);

/* Internet checksum of a TCP segment with the IPv4 pseudo-header (saddr,
 * daddr in host order, protocol 6, length `len`). On receive, the result
 * over the whole segment as received is 0 when the checksum is right. On
 * send, with the checksum field zeroed, the result is the value to store
 * (big-endian) at bytes 16..17. Pure; any thread. */
uint16_t tcp_checksum(uint32_t saddr, uint32_t daddr, const void *seg,
                      size_t len);

/* Bytes tcp_seg_out_write() will write for `seg`: header + options +
 * payload. */
uint32_t tcp_seg_out_len(const struct tcp_seg_out *seg);

/* Write `seg` (header, options, both payload pieces) in wire format at buf
 * and fill in the TCP checksum. Returns the bytes written, or -ENOSPC if
 * cap < tcp_seg_out_len(seg). For the output callback's glue; any thread. */
int tcp_seg_out_write(const struct tcp_seg_out *seg, uint8_t *buf, size_t cap);

/* Process one received segment at time `now` (µs). May call ops->output
 * (ACKs, RSTs, data) and deliver events before returning. Returns 0 if the
 * segment was used, or -errno naming why it was dropped (already counted):
 * -EINVAL malformed, -ENOENT no connection or listener (a RST was sent
 * unless the segment was a RST), -ENOMEM pool full, -EPROTO unacceptable
 * for the connection's state or window. The caller only logs or ignores. */
int tcp_input(struct tcp_stack *st, const struct tcp_seg_in *seg,
              uint64_t now);

/* Fire every timer due at `now` (retransmission, delayed ACK, persist,
 * keepalive, idle, TIME_WAIT, SYN_RCVD expiry). Call at least once per
 * timer tick (params.timer_tick_us). Returns the number of connections
 * whose timers fired. */
unsigned tcp_timers_run(struct tcp_stack *st, uint64_t now);

/* --- listeners and opens ---------------------------------------------- */

/* Listen on addr:port (addr 0 = any local address). `user` becomes the user
 * pointer of each accepted connection. Returns a listener handle (>= 0 as a
 * tcp_handle_t) or -EADDRINUSE (already listening there), -ENOSPC (no
 * listener slot), -EINVAL (port 0). */
int64_t tcp_listen(struct tcp_stack *st, uint32_t addr, uint16_t port,
                   void *user);

/* Stop listening. Connections already accepted are not affected;
 * half-open ones (SYN_RCVD) of this listener are dropped silently.
 * Returns 0 or -EBADF. */
int tcp_unlisten(struct tcp_stack *st, tcp_handle_t lh);

/* Active open from laddr (host order) to raddr:rport, with a local port from
 * the ephemeral range this core owns (params.eport_*). Sends the SYN now.
 * Returns the connection handle (>= 0) or -ENOMEM (no free connection),
 * -EADDRNOTAVAIL (no free local port), -EINVAL. The connected or closed
 * event follows later. */
int64_t tcp_connect(struct tcp_stack *st, uint32_t laddr, uint32_t raddr,
                    uint16_t rport, void *user, uint64_t now);

/* --- data -------------------------------------------------------------- */

/* Queue up to len bytes for sending (copied into the send buffer) and send
 * what the windows allow. Returns bytes accepted (0 when the send buffer is
 * full: wait for the writable event), or -EBADF (stale handle), -ENOTCONN
 * (not yet established), -EPIPE (after tcp_shutdown/close, or the
 * connection is closing). */
ssize_t tcp_send(struct tcp_stack *st, tcp_handle_t h, const void *data,
                 size_t len, uint64_t now);

/* Free bytes in the send buffer, or -EBADF. */
ssize_t tcp_send_space(const struct tcp_stack *st, tcp_handle_t h);

/* Asks for one writable event once at least MIN_SPACE bytes of h's send
 * buffer are free (capped at the buffer's size), like SO_SNDLOWAT: a
 * layer that only writes whole records waits on an event instead of
 * polling the space. Nothing is asked when that much is free already.
 * Returns the free bytes now (compare with MIN_SPACE), or -EBADF. A short
 * tcp_send asks for the event at any freed byte. */
ssize_t tcp_want_writable(struct tcp_stack *st, tcp_handle_t h, uint32_t min_space);

/* The per-connection send buffer size, bytes (the stack's parameter). */
uint32_t tcp_stack_sndbuf(const struct tcp_stack *st);

/* Copy up to len received in-order bytes into buf and consume them. Returns
 * the count (>0), 0 when nothing is buffered yet, -ESHUTDOWN when the peer
 * sent FIN and every byte has been read (end of stream), -ECONNRESET after
 * a reset, -EBADF for a stale handle. Opening the window may send an ACK. */
ssize_t tcp_recv(struct tcp_stack *st, tcp_handle_t h, void *buf, size_t len,
                 uint64_t now);

/* Zero-copy read: point iov[0..1] at the readable bytes (two pieces when
 * they wrap in the ring). Returns the total readable (0 if none) with the
 * same end-of-stream/error returns as tcp_recv. The views stay valid until
 * the next tcp_recv_consume/tcp_recv/tcp_close on h. */
ssize_t tcp_recv_peek(const struct tcp_stack *st, tcp_handle_t h,
                      struct tcp_iov iov[2]);

/* Consume n bytes after tcp_recv_peek (n <= what peek returned). Returns 0,
 * -EINVAL if n is larger than what is readable, -EBADF. */
int tcp_recv_consume(struct tcp_stack *st, tcp_handle_t h, size_t n,
                     uint64_t now);

/* --- closing ------------------------------------------------------------ */

/* Half-close: send FIN after every queued byte. Receiving continues; the
 * closed event comes when both directions are done. Returns 0, -EBADF,
 * -ENOTCONN (still SYN_SENT: use tcp_abort). Idempotent. */
int tcp_shutdown(struct tcp_stack *st, tcp_handle_t h, uint64_t now);

/* Close: the upper layer is done with h (it is invalid for the caller on
 * return and no further event is delivered for it). Queued data is still
 * sent, then FIN; the stack finishes the close by itself. If unread received
 * data remains, the connection is reset instead (RFC 9293 3.6, as Linux
 * does). Returns 0 or -EBADF. */
int tcp_close(struct tcp_stack *st, tcp_handle_t h, uint64_t now);

/* Abort: send RST, free the connection now, no event. Returns 0 or -EBADF. */
int tcp_abort(struct tcp_stack *st, tcp_handle_t h);

/* --- per-connection settings and introspection ------------------------- */

/* Set / get the connection's (or listener's) user pointer. get returns NULL
 * for a stale handle. */
int tcp_set_user(struct tcp_stack *st, tcp_handle_t h, void *user);
void *tcp_get_user(const struct tcp_stack *st, tcp_handle_t h);

/* Per-connection idle timeout (µs, 0 = off), overriding
 * params.idle_timeout_us: after that long with no segment in or out the
 * connection is reset and closed(TIMEOUT) is delivered. Returns 0 or -EBADF. */
int tcp_set_idle_timeout(struct tcp_stack *st, tcp_handle_t h,
                         uint32_t idle_us, uint64_t now);

/* Fill *info with a snapshot of h. Returns 0 or -EBADF. */
int tcp_conn_info(const struct tcp_stack *st, tcp_handle_t h,
                  struct tcp_conn_info *info);

/* Holds the upper layer's events (readable, writable, ...) from every entry
 * point until tcp_batch_end, which delivers them, each connection's once.
 * For a burst of received segments: the layer above then moves a burst's
 * worth of bytes in one call instead of a segment's worth per segment
 * (TLS makes one record of it instead of one per segment). What the upper
 * layer sends or shuts meanwhile (in the events too) leaves at the end in
 * full segments, and the ACK owed for every second in-order segment goes
 * once, on that data or alone (a stretch ACK over the burst); so do the
 * ACK of a FIN that half-closes (on the upper layer's own FIN if it closes
 * back) and the last ACK of an active open (on the first data). Other ACKs
 * (out of order, duplicates) and timers are not delayed. Not from inside a
 * callback. */
void tcp_batch_begin(struct tcp_stack *st);
void tcp_batch_end(struct tcp_stack *st, uint64_t now);

/* Number of connections in use (any state but CLOSED). */
uint32_t tcp_stack_conns(const struct tcp_stack *st);

#endif
