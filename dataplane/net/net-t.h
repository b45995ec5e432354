/* Types of tern's L2/L3 layer: wire headers, the interface configuration, the
 * buffer and callback contract with the device glue, the ARP cache and the
 * per-core network context.
 *
 * The layer is plain C with no DPDK dependency: frames come in as byte
 * ranges, frames go out through struct net_ops, so unit tests and the fuzz
 * target run it without a device. Addresses are in network byte order
 * everywhere (uint32_t as read from the wire) unless a name says _h. */
#ifndef TERN_NET_T_H
#define TERN_NET_T_H

#include <stdbool.h>
#include <stdint.h>

#define NET_ETH_ALEN 6
#define NET_ETH_HLEN 14
#define NET_ETH_TYPE_IPV4 0x0800
#define NET_ETH_TYPE_ARP 0x0806
#define NET_IPV4_HLEN 20
#define NET_L4_OFF (NET_ETH_HLEN + NET_IPV4_HLEN)
#define NET_IP_PROTO_ICMP 1
#define NET_IP_PROTO_TCP 6
#define NET_IP_DEFAULT_TTL 64

struct net_eth_hdr {
    uint8_t dst[NET_ETH_ALEN];
    uint8_t src[NET_ETH_ALEN];
    uint16_t type; /* network order */
} __attribute__((packed));

struct net_arp_hdr {
    uint16_t htype, ptype;
    uint8_t hlen, plen;
    uint16_t op;
    uint8_t sha[NET_ETH_ALEN];
    uint32_t spa;
    uint8_t tha[NET_ETH_ALEN];
    uint32_t tpa;
} __attribute__((packed));
#define NET_ARP_OP_REQUEST 1
#define NET_ARP_OP_REPLY 2

struct net_ipv4_hdr {
    uint8_t ver_ihl;
    uint8_t tos;
    uint16_t total_len;
    uint16_t id;
    uint16_t frag; /* flags (3 bits) and fragment offset */
    uint8_t ttl;
    uint8_t proto;
    uint16_t csum;
    uint32_t src, dst;
} __attribute__((packed));
#define NET_IPV4_MF 0x2000
#define NET_IPV4_OFFMASK 0x1fff

struct net_icmp_hdr {
    uint8_t type, code;
    uint16_t csum;
    uint16_t id, seq;
} __attribute__((packed));
#define NET_ICMP_ECHO_REPLY 0
#define NET_ICMP_ECHO_REQUEST 8

/* Read-only after start-up; shared by every core. */
struct net_iface {
    uint8_t mac[NET_ETH_ALEN];
    uint32_t addr;    /* our IPv4 address */
    uint32_t mask;    /* prefix as a mask */
    uint32_t gateway; /* 0: none, only on-link destinations */
    uint16_t mtu;     /* IP MTU (frame payload) */
    bool tx_ip_csum_offload;  /* device computes IPv4 header checksums */
    bool tx_l4_csum_offload;  /* device computes TCP checksums */
};

/* One output frame under construction. The glue's tx_alloc fills data, cap
 * and handle (an mbuf in tern-dataplane); the layer fills the frame from
 * data[0] and sets flags to ask the glue for offloads. */
struct net_buf {
    uint8_t *data;
    uint16_t cap;
    uint16_t len;
    uint32_t flags;
    void *handle;
};
#define NET_BUF_F_IP_CSUM 0x1  /* device must fill the IPv4 header checksum */
#define NET_BUF_F_TCP_CSUM 0x2 /* device must fill the TCP checksum */

/* A TCP segment that passed the IPv4 and TCP checksum checks. */
struct net_tcp_in {
    uint32_t src, dst;   /* IPv4 addresses, network order */
    const uint8_t *tcp;  /* TCP header and payload as received */
    uint16_t len;        /* bytes at tcp */
};

/* Callbacks into the device glue and the layer above. All run on the
 * calling core; none may block. */
struct net_ops {
    /* Gives an empty output buffer. Returns 0, or -ENOBUFS. */
    int (*tx_alloc)(void *user, struct net_buf *b);
    /* Queues b->len bytes at b->data for transmission; owns b afterwards. */
    void (*tx_send)(void *user, struct net_buf *b);
    /* Releases a buffer that will not be sent. */
    void (*tx_free)(void *user, struct net_buf *b);
    /* Delivers a checked TCP segment; NULL drops TCP. */
    void (*tcp_input)(void *user, const struct net_tcp_in *seg);
};

#define NET_ARP_CACHE_SIZE 64   /* power of two */
#define NET_ARP_PENDING_MAX 128 /* frames waiting for resolution, per core */

enum net_arp_state {
    NET_ARP_FREE = 0,
    NET_ARP_INCOMPLETE, /* request sent, no answer yet */
    NET_ARP_REACHABLE,
};

struct net_arp_entry {
    uint32_t ip;
    uint8_t state;
    uint8_t tries;
    uint8_t mac[NET_ETH_ALEN];
    uint64_t expires_us;  /* REACHABLE: forget after; INCOMPLETE: next retry */
};

struct net_arp_pending {
    struct net_buf buf; /* complete frame but the destination MAC */
    uint32_t next_hop;
    uint64_t deadline_us;
};

struct net_arp_params {
    uint64_t reachable_us; /* lifetime of a learned entry */
    uint64_t retry_us;     /* interval between requests while unresolved */
    uint8_t max_tries;     /* requests before giving up */
};

enum net_ctr {
#define NET_CTR(name, help) NET_CTR_##name,
#include "net_counters.def"
#undef NET_CTR
    NET_CTR_MAX,
};

/* Per-core state of the layer; owned by one lcore. */
struct net_ctx {
    const struct net_iface *ifc;
    struct net_ops ops;
    void *user;
    struct net_arp_params arp_params;
    uint16_t ip_id;
    uint16_t n_pending;
    uint64_t now_us; /* time of the current burst, set by net_set_time */
    struct net_arp_entry arp[NET_ARP_CACHE_SIZE];
    struct net_arp_pending pending[NET_ARP_PENDING_MAX];
    uint64_t ctr[NET_CTR_MAX];
};

/* Flags for net_input. */
#define NET_IN_LEARN_ONLY 0x1 /* a copy from a peer core: update ARP, reply to nothing */

#endif
