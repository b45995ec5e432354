/* Receive path: Ethernet, ARP, IPv4, ICMP echo, and TCP up to the checksum.
 * One linear function per layer on purpose: a frame is read top to bottom,
 * every exit counts a reason. */
#include <errno.h>
#include <string.h>

#include <arpa/inet.h>

#include "csum.h"
#include "net.h"
#include "net_pvt.h"

static const uint8_t net_bcast[NET_ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static const char *const net_ctr_names[] = {
#define NET_CTR(name, help) #name,
#include "net_counters.def"
#undef NET_CTR
};

const char *net_ctr_name(unsigned c)
{
    return c < NET_CTR_MAX ? net_ctr_names[c] : NULL;
}

int net_init(struct net_ctx *ctx, const struct net_iface *ifc,
             const struct net_ops *ops, void *user)
{
    if (ifc == NULL || ops == NULL || ops->tx_alloc == NULL ||
        ops->tx_send == NULL || ops->tx_free == NULL || ifc->mtu < 68)
        return -EINVAL;
    memset(ctx, 0, sizeof(*ctx));
    ctx->ifc = ifc;
    ctx->ops = *ops;
    ctx->user = user;
    ctx->arp_params.reachable_us = 60u * 1000 * 1000;
    ctx->arp_params.retry_us = 1000u * 1000;
    ctx->arp_params.max_tries = 3;
    return 0;
}

static void net_arp_input(struct net_ctx *ctx, const uint8_t *p, uint32_t len,
                          unsigned flags)
{
    struct net_arp_hdr a;

    NET_COUNT(ctx, arp_rx);
    if (len < sizeof(a)) {
        NET_COUNT(ctx, drop_arp_bad);
        return;
    }
    memcpy(&a, p, sizeof(a));
    if (a.htype != htons(1) || a.ptype != htons(NET_ETH_TYPE_IPV4) ||
        a.hlen != NET_ETH_ALEN || a.plen != 4 ||
        (a.op != htons(NET_ARP_OP_REQUEST) && a.op != htons(NET_ARP_OP_REPLY)) ||
        (a.sha[0] & 1) != 0) {
        NET_COUNT(ctx, drop_arp_bad);
        return;
    }
    bool for_us = a.tpa == ctx->ifc->addr;
    /* RFC 826 "merge": refresh an entry we have; create one only when the
     * packet is addressed to us (a sender that talks to us will be talked
     * to). A gratuitous ARP (spa == tpa) refreshes only. */
    if (a.spa != 0 && a.spa != ctx->ifc->addr &&
        (for_us || net_arp_find(ctx, a.spa) != NULL))
        net_arp_learn(ctx, a.spa, a.sha);
    if (!for_us) {
        if (a.op == htons(NET_ARP_OP_REQUEST) && a.spa != a.tpa)
            NET_COUNT(ctx, drop_arp_not_us);
        return;
    }
    if (a.op != htons(NET_ARP_OP_REQUEST) || (flags & NET_IN_LEARN_ONLY))
        return;
    if (net_arp_send(ctx, NET_ARP_OP_REPLY, a.sha, a.sha, a.spa) == 0)
        NET_COUNT(ctx, arp_replies_sent);
}

static void net_icmp_input(struct net_ctx *ctx, const struct net_ipv4_hdr *ip,
                           const uint8_t *p, uint16_t len)
{
    struct net_icmp_hdr h;

    if (len < sizeof(h)) {
        NET_COUNT(ctx, drop_icmp_short);
        return;
    }
    if (net_csum(p, len) != 0) {
        NET_COUNT(ctx, drop_icmp_csum);
        return;
    }
    memcpy(&h, p, sizeof(h));
    if (h.type != NET_ICMP_ECHO_REQUEST || h.code != 0) {
        NET_COUNT(ctx, drop_icmp_type);
        return;
    }
    struct net_buf b;
    if (ctx->ops.tx_alloc(ctx->user, &b) != 0) {
        NET_COUNT(ctx, drop_tx_nobuf);
        return;
    }
    if ((uint32_t)NET_L4_OFF + len > b.cap) {
        ctx->ops.tx_free(ctx->user, &b);
        NET_COUNT(ctx, drop_tx_too_big);
        return;
    }
    uint8_t *out = b.data + NET_L4_OFF;
    memcpy(out, p, len);
    out[0] = NET_ICMP_ECHO_REPLY;
    out[2] = out[3] = 0;
    uint16_t c = net_csum(out, len);
    memcpy(out + 2, &c, 2);
    if (net_ipv4_output(ctx, &b, ip->src, NET_IP_PROTO_ICMP, len) == 0)
        NET_COUNT(ctx, icmp_echo_replies);
}

static void net_tcp_input(struct net_ctx *ctx, const struct net_ipv4_hdr *ip,
                          const uint8_t *p, uint16_t len)
{
    if (len < 20 || (p[12] >> 4) < 5 || (uint16_t)((p[12] >> 4) * 4) > len) {
        NET_COUNT(ctx, drop_tcp_short);
        return;
    }
    uint64_t sum = net_csum_pseudo(ip->src, ip->dst, NET_IP_PROTO_TCP, len);
    if (net_csum_fold(net_csum_add(sum, p, len)) != 0) {
        NET_COUNT(ctx, drop_tcp_csum);
        return;
    }
    if (ctx->ops.tcp_input == NULL) {
        NET_COUNT(ctx, drop_tcp_no_stack);
        return;
    }
    NET_COUNT(ctx, tcp_rx);
    struct net_tcp_in seg = {.src = ip->src, .dst = ip->dst, .tcp = p, .len = len};
    ctx->ops.tcp_input(ctx->user, &seg);
}

static bool net_martian_src(const struct net_ctx *ctx, uint32_t src)
{
    uint8_t first = (uint8_t)(ntohl(src) >> 24);
    return src == 0 || src == 0xffffffffu || first >= 224 || first == 127 ||
           src == ctx->ifc->addr;
}

static void net_ipv4_input(struct net_ctx *ctx, const uint8_t *p, uint32_t len)
{
    struct net_ipv4_hdr ip;

    if (len < sizeof(ip)) {
        NET_COUNT(ctx, drop_ip_short);
        return;
    }
    memcpy(&ip, p, sizeof(ip));
    if ((ip.ver_ihl >> 4) != 4) {
        NET_COUNT(ctx, drop_ip_version);
        return;
    }
    uint32_t hlen = (ip.ver_ihl & 0xfu) * 4u;
    if (hlen < sizeof(ip)) {
        NET_COUNT(ctx, drop_ip_hlen);
        return;
    }
    uint32_t total = ntohs(ip.total_len);
    /* The frame may carry Ethernet padding after the datagram, never less. */
    if (hlen > len || total < hlen || total > len) {
        NET_COUNT(ctx, drop_ip_len);
        return;
    }
    if (net_csum(p, hlen) != 0) {
        NET_COUNT(ctx, drop_ip_csum);
        return;
    }
    if (ntohs(ip.frag) & (NET_IPV4_MF | NET_IPV4_OFFMASK)) {
        NET_COUNT(ctx, drop_ip_frag);
        return;
    }
    if (ip.ttl == 0) {
        NET_COUNT(ctx, drop_ip_ttl);
        return;
    }
    if (ip.dst != ctx->ifc->addr) {
        NET_COUNT(ctx, drop_ip_not_us);
        return;
    }
    if (net_martian_src(ctx, ip.src)) {
        NET_COUNT(ctx, drop_ip_src);
        return;
    }
    const uint8_t *l4 = p + hlen;
    uint16_t l4_len = (uint16_t)(total - hlen);
    switch (ip.proto) {
    case NET_IP_PROTO_TCP:
        net_tcp_input(ctx, &ip, l4, l4_len);
        break;
    case NET_IP_PROTO_ICMP:
        net_icmp_input(ctx, &ip, l4, l4_len);
        break;
    default:
        NET_COUNT(ctx, drop_ip_proto);
        break;
    }
}

void net_input(struct net_ctx *ctx, const uint8_t *frame, uint32_t len,
               unsigned flags)
{
    struct net_eth_hdr eth;

    NET_COUNT(ctx, rx_frames);
    NET_ADD(ctx, rx_bytes, len);
    if (len < NET_ETH_HLEN) {
        NET_COUNT(ctx, drop_eth_short);
        return;
    }
    memcpy(&eth, frame, sizeof(eth));
    if (memcmp(eth.dst, ctx->ifc->mac, NET_ETH_ALEN) != 0 &&
        memcmp(eth.dst, net_bcast, NET_ETH_ALEN) != 0) {
        NET_COUNT(ctx, drop_eth_dst);
        return;
    }
    const uint8_t *p = frame + NET_ETH_HLEN;
    len -= NET_ETH_HLEN;
    switch (ntohs(eth.type)) {
    case NET_ETH_TYPE_IPV4:
        net_ipv4_input(ctx, p, len);
        break;
    case NET_ETH_TYPE_ARP:
        net_arp_input(ctx, p, len, flags);
        break;
    default:
        NET_COUNT(ctx, drop_eth_type);
        break;
    }
}
