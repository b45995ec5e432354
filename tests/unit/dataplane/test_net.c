/* Unit tests of dataplane/net: frames in, frames out, no device. The glue
 * is a fake that hands out static buffers and records what is sent. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dataplane/net/csum.h"
#include "dataplane/net/net.h"

#define MAX_SENT 256
#define BUF_CAP 2048

struct fake {
    uint8_t bufs[MAX_SENT][BUF_CAP];
    unsigned n_alloc, n_sent, n_freed;
    struct net_buf sent[MAX_SENT];
    unsigned n_tcp;
    struct net_tcp_in last_tcp;
    bool fail_alloc;
};

static int fake_alloc(void *u, struct net_buf *b)
{
    struct fake *f = u;
    if (f->fail_alloc || f->n_alloc == MAX_SENT)
        return -1;
    b->data = f->bufs[f->n_alloc];
    b->cap = BUF_CAP;
    b->len = 0;
    b->flags = 0;
    b->handle = (void *)(uintptr_t)f->n_alloc;
    f->n_alloc++;
    return 0;
}

static void fake_send(void *u, struct net_buf *b)
{
    struct fake *f = u;
    f->sent[f->n_sent++] = *b;
}

static void fake_free(void *u, struct net_buf *b)
{
    (void)b;
    ((struct fake *)u)->n_freed++;
}

static void fake_tcp(void *u, const struct net_tcp_in *seg)
{
    struct fake *f = u;
    f->n_tcp++;
    f->last_tcp = *seg;
}

static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 2};
static const uint8_t gw_mac[6] = {0x02, 0, 0, 0, 0, 3};

static struct net_iface ifc;
static struct fake *fk;
static struct net_ctx ctx;

static uint32_t ip4(const char *s)
{
    struct in_addr a;
    inet_pton(AF_INET, s, &a);
    return a.s_addr;
}

static void setup(void)
{
    memset(&ifc, 0, sizeof(ifc));
    memcpy(ifc.mac, our_mac, 6);
    ifc.addr = ip4("198.18.0.1");
    ifc.mask = htonl(0xffffff00u);
    ifc.gateway = ip4("198.18.0.254");
    ifc.mtu = 1500;
    if (fk == NULL)
        fk = malloc(sizeof(*fk));
    memset(fk, 0, sizeof(*fk));
    static const struct net_ops ops = {fake_alloc, fake_send, fake_free, fake_tcp};
    CHECK_EQ_INT(net_init(&ctx, &ifc, &ops, fk), 0);
    net_set_time(&ctx, 1000000);
}

/* Builds an Ethernet + ARP frame. */
static uint32_t mk_arp(uint8_t *f, uint16_t op, const uint8_t *dst_mac,
                       const uint8_t *sha, uint32_t spa, uint32_t tpa)
{
    struct net_eth_hdr e;
    memcpy(e.dst, dst_mac, 6);
    memcpy(e.src, sha, 6);
    e.type = htons(NET_ETH_TYPE_ARP);
    struct net_arp_hdr a = {htons(1), htons(0x0800), 6, 4, htons(op), {0}, spa,
                            {0}, tpa};
    memcpy(a.sha, sha, 6);
    memcpy(f, &e, sizeof(e));
    memcpy(f + 14, &a, sizeof(a));
    return 14 + sizeof(a);
}

/* Builds Ethernet + IPv4 around an L4 payload; returns the frame length. */
static uint32_t mk_ip(uint8_t *f, uint32_t src, uint32_t dst, uint8_t proto,
                      const uint8_t *l4, uint16_t l4_len)
{
    struct net_eth_hdr e;
    memcpy(e.dst, our_mac, 6);
    memcpy(e.src, peer_mac, 6);
    e.type = htons(NET_ETH_TYPE_IPV4);
    struct net_ipv4_hdr ip = {0x45, 0, htons((uint16_t)(20 + l4_len)), htons(7),
                              0, 64, proto, 0, src, dst};
    ip.csum = net_csum(&ip, sizeof(ip));
    memcpy(f, &e, sizeof(e));
    memcpy(f + 14, &ip, sizeof(ip));
    memcpy(f + 34, l4, l4_len);
    return 34u + l4_len;
}

static uint32_t mk_echo(uint8_t *f, uint32_t src, uint16_t plen)
{
    uint8_t icmp[1500];
    struct net_icmp_hdr h = {NET_ICMP_ECHO_REQUEST, 0, 0, htons(0x1234), htons(9)};
    memcpy(icmp, &h, sizeof(h));
    for (unsigned i = 0; i < plen; i++)
        icmp[8 + i] = (uint8_t)i;
    uint16_t c = net_csum(icmp, 8u + plen);
    memcpy(icmp + 2, &c, 2);
    return mk_ip(f, src, ifc.addr, NET_IP_PROTO_ICMP, icmp, (uint16_t)(8 + plen));
}

static void test_arp_reply(void)
{
    uint8_t f[64];
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    setup();
    uint32_t n = mk_arp(f, NET_ARP_OP_REQUEST, bcast, peer_mac, ip4("198.18.0.2"),
                        ifc.addr);
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(fk->n_sent, 1);
    struct net_arp_hdr a;
    memcpy(&a, fk->sent[0].data + 14, sizeof(a));
    CHECK_EQ_INT(ntohs(a.op), NET_ARP_OP_REPLY);
    CHECK_MEM(a.sha, our_mac, 6);
    CHECK(a.spa == ifc.addr);
    CHECK(a.tpa == ip4("198.18.0.2"));
    CHECK_MEM(fk->sent[0].data, peer_mac, 6);
    CHECK_EQ_INT(fk->sent[0].len, 60);
    CHECK(net_arp_lookup(&ctx, ip4("198.18.0.2")) != NULL);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_arp_replies_sent], 1);

    /* A request for someone else: no reply, no entry. */
    n = mk_arp(f, NET_ARP_OP_REQUEST, bcast, peer_mac, ip4("198.18.0.3"),
               ip4("198.18.0.9"));
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(fk->n_sent, 1);
    CHECK(net_arp_lookup(&ctx, ip4("198.18.0.3")) == NULL);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_arp_not_us], 1);

    /* A copy from a peer core learns but does not answer. */
    n = mk_arp(f, NET_ARP_OP_REQUEST, bcast, gw_mac, ip4("198.18.0.4"), ifc.addr);
    net_input(&ctx, f, n, NET_IN_LEARN_ONLY);
    CHECK_EQ_INT(fk->n_sent, 1);
    CHECK(net_arp_lookup(&ctx, ip4("198.18.0.4")) != NULL);

    /* Truncated and non-Ethernet ARP are counted. */
    net_input(&ctx, f, 14 + 10, 0);
    f[14] = 9;
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_arp_bad], 2);
}

static void test_resolve_park_flush_timeout(void)
{
    uint8_t f[64];
    setup();
    /* Output to an on-link host with an empty cache: parked + request. */
    struct net_buf b;
    CHECK_EQ_INT(fake_alloc(fk, &b), 0);
    memset(b.data + NET_L4_OFF, 0xab, 8);
    CHECK_EQ_INT(net_ipv4_output(&ctx, &b, ip4("198.18.0.2"), 253, 8), 0);
    CHECK_EQ_INT(fk->n_sent, 1); /* the ARP request */
    CHECK_EQ_INT(ctx.n_pending, 1);
    struct net_arp_hdr a;
    memcpy(&a, fk->sent[0].data + 14, sizeof(a));
    CHECK_EQ_INT(ntohs(a.op), NET_ARP_OP_REQUEST);
    CHECK(a.tpa == ip4("198.18.0.2"));

    /* The reply releases the parked frame with the right MAC. */
    uint32_t n = mk_arp(f, NET_ARP_OP_REPLY, our_mac, peer_mac, ip4("198.18.0.2"),
                        ifc.addr);
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(fk->n_sent, 2);
    CHECK_EQ_INT(ctx.n_pending, 0);
    CHECK_MEM(fk->sent[1].data, peer_mac, 6);
    CHECK_EQ_INT(fk->sent[1].len, 14 + 20 + 8);
    CHECK_EQ_INT(net_csum(fk->sent[1].data + 14, 20), 0);
    CHECK_EQ_INT(fk->sent[1].data[14 + 9], 253);

    /* Off-link goes to the gateway, which never answers: retries, then
     * the frame is dropped and counted. */
    CHECK_EQ_INT(fake_alloc(fk, &b), 0);
    CHECK_EQ_INT(net_ipv4_output(&ctx, &b, ip4("203.0.113.5"), 253, 8), 0);
    memcpy(&a, fk->sent[fk->n_sent - 1].data + 14, sizeof(a));
    CHECK(a.tpa == ifc.gateway);
    unsigned before = fk->n_sent;
    for (int t = 1; t <= 5; t++) {
        net_set_time(&ctx, 1000000 + (uint64_t)t * 1000000);
        net_timers(&ctx);
    }
    CHECK_EQ_INT(fk->n_sent - before, 2); /* 2 retries: max_tries 3 */
    CHECK_EQ_INT(ctx.n_pending, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_arp_timeout], 1);
    CHECK_EQ_INT(fk->n_freed, 1);

    /* No gateway: off-link is unroutable. */
    ifc.gateway = 0;
    CHECK_EQ_INT(fake_alloc(fk, &b), 0);
    CHECK_EQ_INT(net_ipv4_output(&ctx, &b, ip4("203.0.113.5"), 253, 8),
                 -EHOSTUNREACH);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_no_route], 1);
    /* Too big for the MTU. */
    CHECK_EQ_INT(fake_alloc(fk, &b), 0);
    CHECK_EQ_INT(net_ipv4_output(&ctx, &b, ip4("198.18.0.2"), 253, 1481), -EMSGSIZE);
}

static void test_pending_bound(void)
{
    setup();
    unsigned ok = 0, full = 0;
    for (unsigned i = 0; i < NET_ARP_PENDING_MAX + 10; i++) {
        struct net_buf b;
        if (fake_alloc(fk, &b) != 0)
            break;
        int rc = net_ipv4_output(&ctx, &b, ip4("198.18.0.77"), 253, 0);
        ok += rc == 0;
        full += rc == -ENOBUFS;
    }
    CHECK_EQ_INT(ok, NET_ARP_PENDING_MAX);
    CHECK_EQ_INT(full, 10);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_arp_queue_full], 10);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_arp_requests_sent], 1);
}

static void test_icmp_echo(void)
{
    uint8_t f[1600];
    setup();
    net_arp_learn(&ctx, ip4("198.18.0.2"), peer_mac);
    uint32_t n = mk_echo(f, ip4("198.18.0.2"), 56);
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(fk->n_sent, 1);
    const uint8_t *r = fk->sent[0].data;
    CHECK_EQ_INT(fk->sent[0].len, n);
    CHECK_MEM(r, peer_mac, 6);
    CHECK_EQ_INT(r[34], NET_ICMP_ECHO_REPLY);
    CHECK_EQ_INT(net_csum(r + 14, 20), 0);
    CHECK_EQ_INT(net_csum(r + 34, 64), 0);
    CHECK_MEM(r + 38, f + 38, 60); /* id, seq, payload echoed */
    CHECK_EQ_INT(ctx.ctr[NET_CTR_icmp_echo_replies], 1);

    /* Bad ICMP checksum and an odd-length payload. */
    f[40] ^= 1;
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_icmp_csum], 1);
    n = mk_echo(f, ip4("198.18.0.2"), 7);
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_icmp_echo_replies], 2);
    CHECK_EQ_INT(net_csum(fk->sent[1].data + 34, 15), 0);
}

static void fix_ip_csum(uint8_t *f)
{
    f[24] = f[25] = 0;
    uint16_t c = net_csum(f + 14, 20);
    memcpy(f + 24, &c, 2);
}

static void fix_icmp_csum(uint8_t *f, unsigned len)
{
    f[36] = f[37] = 0;
    uint16_t c = net_csum(f + 34, len);
    memcpy(f + 36, &c, 2);
}

static void test_ipv4_drops(void)
{
    uint8_t f[200], g[200];
    setup();
    uint32_t n = mk_echo(f, ip4("198.18.0.2"), 16);
    memcpy(g, f, n);
#define DROP_CASE(mutate, len, which)                                \
    do {                                                             \
        memcpy(f, g, n);                                             \
        mutate;                                                      \
        uint64_t before_ = ctx.ctr[NET_CTR_##which];                 \
        net_input(&ctx, f, (len), 0);                                \
        CHECK_EQ_INT(ctx.ctr[NET_CTR_##which], before_ + 1);         \
    } while (0)
    /* Recompute the IP checksum after a header change. */
#define FIXCSUM() fix_ip_csum(f)
    DROP_CASE((void)0, 10, drop_eth_short);
    DROP_CASE(f[0] = 0x04, n, drop_eth_dst);
    DROP_CASE((f[12] = 0x86, f[13] = 0xdd), n, drop_eth_type);
    DROP_CASE((void)0, 14 + 19, drop_ip_short);
    DROP_CASE((f[14] = 0x65, FIXCSUM()), n, drop_ip_version);
    DROP_CASE((f[14] = 0x44, FIXCSUM()), n, drop_ip_hlen);
    DROP_CASE((f[14] = 0x4f, FIXCSUM()), n, drop_ip_len);
    DROP_CASE((f[16] = 0x05, FIXCSUM()), n, drop_ip_len); /* total > frame */
    DROP_CASE((f[17] = 10, FIXCSUM()), n, drop_ip_len);   /* total < hlen */
    DROP_CASE(f[24] ^= 0xff, n, drop_ip_csum);
    DROP_CASE((f[20] = 0x20, FIXCSUM()), n, drop_ip_frag); /* MF */
    DROP_CASE((f[21] = 0x08, FIXCSUM()), n, drop_ip_frag); /* offset */
    DROP_CASE((f[22] = 0, FIXCSUM()), n, drop_ip_ttl);
    DROP_CASE((f[33] = 9, FIXCSUM()), n, drop_ip_not_us);
    DROP_CASE((f[26] = 224, FIXCSUM()), n, drop_ip_src);
    DROP_CASE((f[23] = 17, FIXCSUM()), n, drop_ip_proto);
    DROP_CASE((f[16] = 0, f[17] = 24, FIXCSUM()), n, drop_icmp_short);
    DROP_CASE((f[34] = 13, fix_icmp_csum(f, 24)), n, drop_icmp_type);
    CHECK_EQ_INT(fk->n_sent, 0);
    /* Ethernet padding after the datagram is accepted. */
    memcpy(f, g, n);
    memset(f + n, 0, 20);
    net_arp_learn(&ctx, ip4("198.18.0.2"), peer_mac);
    net_input(&ctx, f, n + 20, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_icmp_echo_replies], 1);
}

static void test_tcp_checksum_gate(void)
{
    uint8_t f[200], tcp[40];
    setup();
    memset(tcp, 0, sizeof(tcp));
    tcp[0] = 0x30; tcp[1] = 0x39;  /* sport 12345 */
    tcp[2] = 0x00; tcp[3] = 0x50;  /* dport 80 */
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;                /* SYN */
    memcpy(tcp + 20, "hello", 5);
    uint32_t src = ip4("198.18.0.2");
    uint64_t s = net_csum_pseudo(src, ifc.addr, 6, 25);
    uint16_t c = net_csum_fold(net_csum_add(s, tcp, 25));
    memcpy(tcp + 16, &c, 2);
    uint32_t n = mk_ip(f, src, ifc.addr, 6, tcp, 25);
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(fk->n_tcp, 1);
    CHECK_EQ_INT(fk->last_tcp.len, 25);
    CHECK(fk->last_tcp.src == src);
    f[n - 1] ^= 0x40;
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(fk->n_tcp, 1);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_tcp_csum], 1);
    /* Data offset past the segment. */
    f[n - 1] ^= 0x40;
    f[34 + 12] = 0xf0;
    net_input(&ctx, f, 34 + 20, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_ip_len], 1); /* total > frame first */
    n = mk_ip(f, src, ifc.addr, 6, tcp, 19);
    net_input(&ctx, f, n, 0);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_tcp_short], 1);
}

static void test_csum_known(void)
{
    /* RFC 1071's example words 0001 f203 f4f5 f6f7: sum ddf2, csum 220d. */
    const uint8_t w[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint16_t c = net_csum(w, sizeof(w));
    CHECK_EQ_INT(ntohs(c), 0x220d);
    /* An odd length is padded with a zero byte. */
    const uint8_t odd[] = {0x01, 0x02, 0x03};
    CHECK_EQ_INT(ntohs(net_csum(odd, 3)), (uint16_t)~(0x0102 + 0x0300));
    CHECK(net_ctr_name(0) != NULL && net_ctr_name(NET_CTR_MAX) == NULL);
}

static void test_gratuitous(void)
{
    setup();
    CHECK_EQ_INT(net_arp_announce(&ctx), 0);
    CHECK_EQ_INT(fk->n_sent, 1);
    struct net_arp_hdr a;
    memcpy(&a, fk->sent[0].data + 14, sizeof(a));
    CHECK(a.spa == ifc.addr && a.tpa == ifc.addr);
    CHECK_EQ_INT(fk->sent[0].data[0], 0xff);
    fk->fail_alloc = true;
    CHECK_EQ_INT(net_arp_announce(&ctx), -ENOBUFS);
    CHECK_EQ_INT(ctx.ctr[NET_CTR_drop_tx_nobuf], 1);
}

int main(void)
{
    test_csum_known();
    test_arp_reply();
    test_resolve_park_flush_timeout();
    test_pending_bound();
    test_icmp_echo();
    test_ipv4_drops();
    test_tcp_checksum_gate();
    test_gratuitous();
    free(fk);
    return check_exit();
}
