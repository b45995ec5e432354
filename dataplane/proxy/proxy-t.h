/* Types of the per-core plaintext proxy: listener VIP:port -> backend pool
 * (round robin), each client connection paired with one backend connection
 * opened on the same core's TCP stack. */
#ifndef TERN_PROXY_T_H
#define TERN_PROXY_T_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dataplane/tcp/tcp-t.h"
#include "health-t.h"
#include "pool-t.h"
#include "proxy_v2-t.h"

#define PROXY_MAX_BACKENDS 64
#define PROXY_MAX_LISTENERS 8

/* How the proxy reads and writes one side of a pair. The plain ops map
 * straight onto the TCP stream API; a filter (TLS: ciphertext on the wire,
 * plaintext to the proxy) implements the same five calls over the same
 * handle and keeps its own state, so inserting it changes no proxy code.
 * Backpressure is the contract of send (accept fewer bytes, then the proxy
 * waits for the writable event) and of peek (show fewer bytes). Every call
 * runs on the owning core and must not block. */
struct proxy_stream_ops {
    /* Called once when the connection is paired; may set *state.
     * Returns 0 or -errno (the pair is refused). NULL: nothing to do. */
    int (*open)(void *ops_ctx, struct tcp_stack *st, tcp_handle_t h,
                void **state);
    /* Readable bytes (plaintext) as up to two views; same returns as
     * tcp_recv_peek (-ESHUTDOWN: end of stream after all bytes). */
    ssize_t (*peek)(void *state, struct tcp_stack *st, tcp_handle_t h,
                    struct tcp_iov iov[2]);
    /* Consumes n bytes shown by peek. Returns 0 or -errno. */
    int (*consume)(void *state, struct tcp_stack *st, tcp_handle_t h,
                   size_t n, uint64_t now);
    /* Queues up to len bytes; returns bytes accepted (0 when full) or
     * -errno. */
    ssize_t (*send)(void *state, struct tcp_stack *st, tcp_handle_t h,
                    const void *data, size_t len, uint64_t now);
    /* Half-close the write side after queued bytes. Returns 0 or -errno. */
    int (*shutdown)(void *state, struct tcp_stack *st, tcp_handle_t h,
                    uint64_t now);
    /* Releases *state (the TCP handle is the proxy's business). NULL ok. */
    void (*release)(void *state);
    /* The stack has news on this end (bytes or a FIN arrived) after the
     * proxy stopped reading it: a stream that must still read and drop
     * what comes (TLS: the client's close_notify and FIN after ours) does
     * it here, on the event, rather than by polling. NULL: nothing to do. */
    void (*drain)(void *state);
    /* The stack reported send space on this end: a stream that keeps
     * bytes of its own (TLS records) or waits for room (tcp_want_writable)
     * moves on here. NULL: nothing to do. */
    void (*writable)(void *state);
    /* For a PROXY v2 header: fills the TLS fields of *info (ssl, version,
     * cipher, SNI as authority, ALPN; pointers valid until release).
     * Returns 1 when filled, 0 while the handshake is still running, or
     * -errno. NULL: a plain stream (no TLS fields). */
    int (*pp2_info)(void *state, struct proxy_v2_info *info);
};

struct proxy_backend {
    uint32_t addr;  /* host order */
    uint16_t port;
};

struct proxy_listener_cfg {
    uint32_t addr;  /* VIP, host order */
    uint16_t port;
    uint16_t n_backends;
    struct proxy_backend backends[PROXY_MAX_BACKENDS];
    /* Client-side stream filter; NULL for plain TCP. */
    const struct proxy_stream_ops *client_ops;
    void *client_ops_ctx;
    /* The backend pool (pool.h): enum pool_balance, 0 = round robin. */
    uint8_t balance;
    bool proxy_protocol;  /* send a PROXY v2 header to the backend first */
    uint32_t max_conns;   /* per server and per core; 0 = no limit */
    /* Health verdicts shared by every core, NULL: servers always up. The
     * core whose proxy_params ask for health checks probes the servers
     * per health_check (one struct pool_health is checked once even when
     * several listeners share it). */
    struct pool_health *health;
    struct health_check_cfg health_check;
};

struct proxy_params {
    uint32_t max_pairs;       /* connection limit per core */
    uint32_t idle_timeout_us; /* per connection, both sides; 0 = off */
    uint32_t local_addr;      /* our address for active opens, host order */
    bool health_checks;       /* this core runs the listeners' health checks */
};

#define PROXY_COUNTERS(X)                                                  \
    X(accepted, "client connections accepted and paired")                 \
    X(refused_limit, "client connections refused: connection limit")      \
    X(refused_connect, "client connections refused: backend open failed") \
    X(backend_connected, "backend connections established")               \
    X(backend_failed, "backend connections that never established")       \
    X(aborted, "pairs torn down by a reset, timeout or abort on one side")\
    X(completed, "pairs that finished with both sides closed normally")   \
    X(bytes_to_backend, "bytes moved client -> backend")                  \
    X(bytes_to_client, "bytes moved backend -> client")                  \
    X(half_closes, "FINs propagated from one side to the other")          \
    X(backpressure, "times a side stopped being read because the other was full") \
    X(refused_down, "client connections refused: every server down")     \
    X(refused_full, "client connections refused: servers at max_conns")  \
    X(proxy_headers, "PROXY v2 headers sent to backends")

enum proxy_ctr {
#define PROXY_CTR_ENUM(name, help) PROXY_CTR_##name,
    PROXY_COUNTERS(PROXY_CTR_ENUM)
#undef PROXY_CTR_ENUM
    PROXY_CTR_MAX,
};

struct proxy; /* opaque, one per core */

#endif
