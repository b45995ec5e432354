/* The TLS filter of the proxy: a struct proxy_stream_ops over tls_conn.
 *
 * The client side of a TLS listener reads ciphertext from TCP, feeds it to
 * its tls_conn and shows the proxy the plaintext; plaintext the proxy sends
 * is encrypted and queued on TCP. One struct tls_stream_core per worker
 * core owns the connection states, the handshake deadlines and the list of
 * streams that need attention outside the stack's events (ciphertext TCP
 * could not take yet, a FIN waiting behind it, plaintext left over after
 * the proxy's bounded rounds). Every call: owning core only, never blocks. */
#ifndef TERN_TLS_STREAM_H
#define TERN_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dataplane/tcp/tcp-t.h"
#include "dataplane/tls/tls-t.h"
#include "proxy-t.h"

struct tls_stream_core;

/* Called by tls_stream_poll for a client connection that may have bytes to
 * move although no stack event will say so (the worker forwards it to the
 * proxy as readable and writable). H is the client's TCP handle. */
typedef void (*tls_stream_kick_fn)(void *arg, tcp_handle_t h);

/* Per-core filter counters, after the TLS layer's own (tls_worker). */
#define TLS_STREAM_COUNTERS(X)                                               \
    X(opened, "client connections given a TLS state")                       \
    X(refused_pool, "client connections refused: no TLS state free")       \
    X(failed_closed, "connections closed after a TLS failure (alert sent)")\
    X(timeouts, "handshakes over their deadline")                          \
    X(dropped_to_failed, "plaintext bytes from the backend dropped: TLS failed") \
    X(deferred_flush, "times ciphertext waited for TCP send space")        \
    X(kicks, "proxy moves triggered outside stack events")                 \
    X(drained_after_close, "client bytes dropped after the backend closed")

enum tls_stream_ctr {
#define TLS_STREAM_CTR_ENUM(name, help) TLS_STREAM_CTR_##name,
    TLS_STREAM_COUNTERS(TLS_STREAM_CTR_ENUM)
#undef TLS_STREAM_CTR_ENUM
    TLS_STREAM_CTR_MAX,
};

/* The stream operations; pass them as a listener's client_ops with the
 * context from tls_stream_listener_ctx. */
extern const struct proxy_stream_ops tls_stream_ops;

/* Creates the filter for one core: MAX_CONNS stream states (each with a
 * plaintext buffer) over the TLS worker TW, which must outlive it. KICK and
 * ARG: see tls_stream_kick_fn. Start-up, any thread. Returns the core or
 * NULL with a message in ERR. */
struct tls_stream_core *tls_stream_core_new(struct tls_worker *tw,
                                            unsigned max_conns,
                                            tls_stream_kick_fn kick, void *arg,
                                            char *err, size_t errlen);

/* Frees the core; its streams must have been released (the proxy's pairs
 * released first). NULL is a no-op. */
void tls_stream_core_free(struct tls_stream_core *core);

/* Sets the kick callback (start-up, before the first connection). */
void tls_stream_core_set_kick(struct tls_stream_core *core,
                              tls_stream_kick_fn kick, void *arg);

/* The ops context for TLS listener number LISTENER of the tls_config (its
 * ALPN list). Returns a pointer owned by CORE, or NULL if LISTENER is out
 * of range (TLS_STREAM_MAX_LISTENERS). */
#define TLS_STREAM_MAX_LISTENERS PROXY_MAX_LISTENERS
void *tls_stream_listener_ctx(struct tls_stream_core *core, unsigned listener);

/* Sets the core's monotonic clock (µs, the worker loop's). */
void tls_stream_set_time(struct tls_stream_core *core, uint64_t now_us);

/* True when some stream waits for tls_stream_poll (cheap; call every loop
 * iteration and poll only then). */
bool tls_stream_pending(const struct tls_stream_core *core);

/* Flushes ciphertext that TCP could not take, sends FINs queued behind it,
 * kicks streams with plaintext left over. Returns the number of streams
 * handled. */
unsigned tls_stream_poll(struct tls_stream_core *core);

/* Fails handshakes past their deadline (alert, FIN, reset after a grace).
 * Call every few milliseconds. Returns the number failed. */
unsigned tls_stream_check_deadlines(struct tls_stream_core *core);

/* Counter C (< TLS_STREAM_CTR_MAX), its name. */
uint64_t tls_stream_counter(const struct tls_stream_core *core, unsigned c);
const char *tls_stream_counter_name(unsigned c);

#endif
