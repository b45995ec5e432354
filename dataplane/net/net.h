/* tern's L2/L3 layer: Ethernet, ARP, IPv4, ICMP echo, and IPv4 output with
 * next-hop resolution. One struct net_ctx per worker core; every function
 * here is "owning lcore only" and neither blocks nor allocates: output
 * buffers come from ops->tx_alloc. IPv6 is not implemented (frames counted
 * as drop_eth_type). */
#ifndef TERN_NET_H
#define TERN_NET_H

#include "net-t.h"

/* Prepares ctx for use by one core.
 * ctx: caller-owned storage; ifc: interface configuration that must outlive
 * ctx; ops/user: the device glue's callbacks and their first argument.
 * Returns 0, or -EINVAL if ifc or an op is missing or the MTU is below 68. */
int net_init(struct net_ctx *ctx, const struct net_iface *ifc,
             const struct net_ops *ops, void *user);

/* Sets the time used by the next calls (microseconds, monotonic). Cheap;
 * call once per burst. */
static inline void net_set_time(struct net_ctx *ctx, uint64_t now_us)
{
    ctx->now_us = now_us;
}

/* Processes one received frame: counts it, checks Ethernet/ARP/IPv4/ICMP/TCP
 * headers and checksums, answers ARP and echo requests, delivers TCP through
 * ops->tcp_input, and counts every drop by reason. frame stays the caller's
 * (nothing keeps a pointer into it after return; ops->tcp_input must copy).
 * flags: NET_IN_LEARN_ONLY for an ARP copy from a peer core. */
void net_input(struct net_ctx *ctx, const uint8_t *frame, uint32_t len,
               unsigned flags);

/* Sends an IPv4 packet whose L4 part the caller wrote at
 * b->data + NET_L4_OFF (l4_len bytes). Fills the IPv4 and Ethernet headers,
 * resolves the next hop (on-link or gateway) and either sends or parks the
 * frame until ARP answers. Takes ownership of b in every case.
 * Returns 0 (sent or queued) or -EHOSTUNREACH, -ENOBUFS, -EMSGSIZE (dropped,
 * counted). */
int net_ipv4_output(struct net_ctx *ctx, struct net_buf *b, uint32_t dst,
                    uint8_t proto, uint16_t l4_len);

/* Broadcasts a gratuitous ARP announcing our address (at start-up, so that
 * neighbours replace stale entries). Returns 0 or -ENOBUFS. */
int net_arp_announce(struct net_ctx *ctx);

/* Retries unresolved next hops, drops frames whose next hop never answered
 * and ages out learned entries. Call every few milliseconds. */
void net_timers(struct net_ctx *ctx);

/* Finds a reachable ARP entry for ip. Returns the entry or NULL. Exposed for
 * tests and telemetry. */
const struct net_arp_entry *net_arp_lookup(const struct net_ctx *ctx,
                                           uint32_t ip);

/* Learns ip -> mac (as an ARP packet would), then sends any frames parked
 * for ip. Called by ARP input; exposed for tests. */
void net_arp_learn(struct net_ctx *ctx, uint32_t ip,
                   const uint8_t mac[NET_ETH_ALEN]);

/* Name of counter c (for telemetry), or NULL if c is out of range. */
const char *net_ctr_name(unsigned c);

#endif
