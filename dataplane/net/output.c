/* IPv4 output: header, checksum (software unless the device offloads it),
 * next hop, Ethernet header, then ARP resolution. */
#include <errno.h>
#include <string.h>

#include <arpa/inet.h>

#include "csum.h"
#include "net.h"
#include "net_pvt.h"

void net_tx(struct net_ctx *ctx, struct net_buf *b)
{
    NET_COUNT(ctx, tx_frames);
    NET_ADD(ctx, tx_bytes, b->len);
    ctx->ops.tx_send(ctx->user, b);
}

int net_ipv4_output(struct net_ctx *ctx, struct net_buf *b, uint32_t dst,
                    uint8_t proto, uint16_t l4_len)
{
    const struct net_iface *ifc = ctx->ifc;
    uint32_t total = NET_IPV4_HLEN + (uint32_t)l4_len;

    if (total > ifc->mtu || NET_ETH_HLEN + total > b->cap) {
        ctx->ops.tx_free(ctx->user, b);
        NET_COUNT(ctx, drop_tx_too_big);
        return -EMSGSIZE;
    }
    uint32_t next_hop = dst;
    if (((dst ^ ifc->addr) & ifc->mask) != 0) {
        if (ifc->gateway == 0) {
            ctx->ops.tx_free(ctx->user, b);
            NET_COUNT(ctx, drop_no_route);
            return -EHOSTUNREACH;
        }
        next_hop = ifc->gateway;
    }
    struct net_ipv4_hdr ip = {
        .ver_ihl = 0x45,
        .total_len = htons((uint16_t)total),
        .id = htons(ctx->ip_id++),
        /* DF: TCP does its own MSS sizing and we never fragment. */
        .frag = htons(0x4000),
        .ttl = NET_IP_DEFAULT_TTL,
        .proto = proto,
        .src = ifc->addr,
        .dst = dst,
    };
    if (ifc->tx_ip_csum_offload)
        b->flags |= NET_BUF_F_IP_CSUM;
    else
        ip.csum = net_csum(&ip, sizeof(ip));
    memcpy(b->data + NET_ETH_HLEN, &ip, sizeof(ip));
    struct net_eth_hdr eth;
    memset(eth.dst, 0, NET_ETH_ALEN); /* filled once resolved */
    memcpy(eth.src, ifc->mac, NET_ETH_ALEN);
    eth.type = htons(NET_ETH_TYPE_IPV4);
    memcpy(b->data, &eth, sizeof(eth));
    b->len = (uint16_t)(NET_ETH_HLEN + total);
    return net_arp_resolve_and_send(ctx, b, next_hop);
}
