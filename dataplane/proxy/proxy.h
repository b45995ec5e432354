/* The plaintext proxy. One struct proxy per worker core, on that core's TCP
 * stack; every function is "owning lcore only". The worker forwards the
 * stack's upper-layer events to the proxy_on_* functions. */
#ifndef TERN_PROXY_H
#define TERN_PROXY_H

#include "proxy-t.h"

/* Creates a proxy on stack st (which must outlive it); all memory is
 * allocated here. Returns the proxy, or NULL with a reason in err. Start-up
 * only. */
struct proxy *proxy_create(const struct proxy_params *p, struct tcp_stack *st,
                           char *err, size_t errlen);

/* Frees the proxy (not the stack). Accepts NULL. */
void proxy_destroy(struct proxy *px);

/* Listens on cfg->addr:cfg->port and forwards accepted connections to a
 * server of cfg's pool (pool.h: round robin or least connections, servers
 * down or at max_conns skipped; none left: the client is reset and
 * counted). On the core with proxy_params.health_checks, starts the pool's
 * health checks. With cfg->proxy_protocol, each backend first receives a
 * PROXY v2 header (with the TLS fields of cfg->client_ops' pp2_info).
 * cfg is copied. Returns 0 or -ENOSPC (too many listeners or health
 * targets), -EINVAL (no backend, bad pool or check), or tcp_listen's
 * error. Start-up only. */
int proxy_add_listener(struct proxy *px, const struct proxy_listener_cfg *cfg);

/* Sets the time used by calls made from the next events (µs); on the core
 * that runs the health checks, also runs their timers (every ms). */
void proxy_set_time(struct proxy *px, uint64_t now_us);

/* Pairs currently open. */
uint32_t proxy_active(const struct proxy *px);

/* Counter c (< PROXY_CTR_MAX) and its name. */
uint64_t proxy_counter(const struct proxy *px, unsigned c);
const char *proxy_counter_name(unsigned c);

/* TCP stack events, forwarded by the worker (see struct tcp_stack_ops).
 * Events of health-check connections are recognised by their user pointer
 * and handled by the checker. */
int proxy_on_accepted(struct proxy *px, tcp_handle_t lh, tcp_handle_t h,
                      void *user);
void proxy_on_connected(struct proxy *px, tcp_handle_t h, void *user);
void proxy_on_readable(struct proxy *px, tcp_handle_t h, void *user);
void proxy_on_writable(struct proxy *px, tcp_handle_t h, void *user);
void proxy_on_peer_closed(struct proxy *px, tcp_handle_t h, void *user);
void proxy_on_closed(struct proxy *px, tcp_handle_t h, void *user,
                     enum tcp_close_reason reason);

#endif
