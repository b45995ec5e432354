/* Helpers shared by the files of dataplane/net; not for other modules. */
#ifndef TERN_NET_PVT_H
#define TERN_NET_PVT_H

#include "net-t.h"

#define NET_COUNT(ctx, name) ((ctx)->ctr[NET_CTR_##name]++)
#define NET_ADD(ctx, name, n) ((ctx)->ctr[NET_CTR_##name] += (n))

/* Any-state ARP entry for ip, or NULL. */
struct net_arp_entry *net_arp_find(struct net_ctx *ctx, uint32_t ip);

/* Builds and sends one ARP packet from us. Returns 0 or -ENOBUFS. */
int net_arp_send(struct net_ctx *ctx, uint16_t op,
                 const uint8_t eth_dst[NET_ETH_ALEN],
                 const uint8_t tha[NET_ETH_ALEN], uint32_t tpa);

/* Fills the destination MAC of a complete frame and sends it, or parks it
 * until next_hop resolves. Takes ownership of b. Returns 0 or -ENOBUFS. */
int net_arp_resolve_and_send(struct net_ctx *ctx, struct net_buf *b,
                             uint32_t next_hop);

/* Hands a complete frame to the glue and counts it. */
void net_tx(struct net_ctx *ctx, struct net_buf *b);

#endif
