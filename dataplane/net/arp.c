/* ARP (RFC 826): a small per-core cache with expiry, a bounded queue of
 * frames waiting for resolution, retries and gratuitous announcements.
 * Each core keeps its own cache (shared nothing); the worker copies ARP
 * frames to its peers so that all caches learn from one reply. */
#include <errno.h>
#include <string.h>

#include <arpa/inet.h>

#include "net.h"
#include "net_pvt.h"

static const uint8_t net_bcast[NET_ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

#define NET_ARP_PROBE 8 /* open addressing: slots looked at per lookup */

static unsigned net_arp_slot(uint32_t ip)
{
    uint32_t h = ip * 0x9e3779b1u;
    return h >> (32 - 6); /* 64 slots */
}
_Static_assert(NET_ARP_CACHE_SIZE == 64, "net_arp_slot assumes 64 slots");

struct net_arp_entry *net_arp_find(struct net_ctx *ctx, uint32_t ip)
{
    unsigned s = net_arp_slot(ip);
    for (unsigned i = 0; i < NET_ARP_PROBE; i++) {
        struct net_arp_entry *e = &ctx->arp[(s + i) % NET_ARP_CACHE_SIZE];
        if (e->state != NET_ARP_FREE && e->ip == ip)
            return e;
    }
    return NULL;
}

const struct net_arp_entry *net_arp_lookup(const struct net_ctx *ctx,
                                           uint32_t ip)
{
    const struct net_arp_entry *e = net_arp_find((struct net_ctx *)ctx, ip);
    return e != NULL && e->state == NET_ARP_REACHABLE ? e : NULL;
}

/* A slot for a new entry: a free one, else the reachable one that expires
 * first (unresolved entries keep their slot until they give up). */
static struct net_arp_entry *net_arp_alloc(struct net_ctx *ctx, uint32_t ip)
{
    unsigned s = net_arp_slot(ip);
    struct net_arp_entry *victim = NULL;
    for (unsigned i = 0; i < NET_ARP_PROBE; i++) {
        struct net_arp_entry *e = &ctx->arp[(s + i) % NET_ARP_CACHE_SIZE];
        if (e->state == NET_ARP_FREE)
            return e;
        if (e->state == NET_ARP_REACHABLE &&
            (victim == NULL || e->expires_us < victim->expires_us))
            victim = e;
    }
    return victim;
}

int net_arp_send(struct net_ctx *ctx, uint16_t op,
                 const uint8_t eth_dst[NET_ETH_ALEN],
                 const uint8_t tha[NET_ETH_ALEN], uint32_t tpa)
{
    struct net_buf b;
    if (ctx->ops.tx_alloc(ctx->user, &b) != 0) {
        NET_COUNT(ctx, drop_tx_nobuf);
        return -ENOBUFS;
    }
    struct net_eth_hdr eth;
    memcpy(eth.dst, eth_dst, NET_ETH_ALEN);
    memcpy(eth.src, ctx->ifc->mac, NET_ETH_ALEN);
    eth.type = htons(NET_ETH_TYPE_ARP);
    struct net_arp_hdr a = {
        .htype = htons(1),
        .ptype = htons(NET_ETH_TYPE_IPV4),
        .hlen = NET_ETH_ALEN,
        .plen = 4,
        .op = htons(op),
        .spa = ctx->ifc->addr,
        .tpa = tpa,
    };
    memcpy(a.sha, ctx->ifc->mac, NET_ETH_ALEN);
    memcpy(a.tha, tha, NET_ETH_ALEN);
    memcpy(b.data, &eth, sizeof(eth));
    memcpy(b.data + NET_ETH_HLEN, &a, sizeof(a));
    /* Pad to the 60-byte Ethernet minimum; some devices do not. */
    b.len = 60;
    memset(b.data + NET_ETH_HLEN + sizeof(a), 0, 60 - NET_ETH_HLEN - sizeof(a));
    b.flags = 0;
    net_tx(ctx, &b);
    return 0;
}

int net_arp_announce(struct net_ctx *ctx)
{
    static const uint8_t zero[NET_ETH_ALEN];
    /* Gratuitous ARP as a request with spa == tpa (RFC 5227 §3). */
    int rc = net_arp_send(ctx, NET_ARP_OP_REQUEST, net_bcast, zero, ctx->ifc->addr);
    if (rc == 0)
        NET_COUNT(ctx, arp_requests_sent);
    return rc;
}

static int net_arp_request(struct net_ctx *ctx, uint32_t ip)
{
    static const uint8_t zero[NET_ETH_ALEN];
    int rc = net_arp_send(ctx, NET_ARP_OP_REQUEST, net_bcast, zero, ip);
    if (rc == 0)
        NET_COUNT(ctx, arp_requests_sent);
    return rc;
}

/* Sends every parked frame for ip, keeping the queue in arrival order. */
static void net_arp_flush(struct net_ctx *ctx, uint32_t ip,
                          const uint8_t mac[NET_ETH_ALEN])
{
    unsigned w = 0;
    for (unsigned r = 0; r < ctx->n_pending; r++) {
        struct net_arp_pending *p = &ctx->pending[r];
        if (p->next_hop == ip) {
            memcpy(p->buf.data, mac, NET_ETH_ALEN);
            net_tx(ctx, &p->buf);
            continue;
        }
        if (w != r)
            ctx->pending[w] = *p;
        w++;
    }
    ctx->n_pending = (uint16_t)w;
}

void net_arp_learn(struct net_ctx *ctx, uint32_t ip,
                   const uint8_t mac[NET_ETH_ALEN])
{
    struct net_arp_entry *e = net_arp_find(ctx, ip);
    if (e == NULL)
        e = net_arp_alloc(ctx, ip);
    if (e == NULL)
        return; /* every probed slot is mid-resolution: learn next time */
    e->ip = ip;
    e->state = NET_ARP_REACHABLE;
    e->tries = 0;
    memcpy(e->mac, mac, NET_ETH_ALEN);
    e->expires_us = ctx->now_us + ctx->arp_params.reachable_us;
    NET_COUNT(ctx, arp_learned);
    net_arp_flush(ctx, ip, mac);
}

/* Parks b until next_hop resolves, sending a request if none is out.
 * Takes ownership of b. */
static int net_arp_park(struct net_ctx *ctx, struct net_buf *b, uint32_t next_hop)
{
    if (ctx->n_pending == NET_ARP_PENDING_MAX) {
        ctx->ops.tx_free(ctx->user, b);
        NET_COUNT(ctx, drop_arp_queue_full);
        return -ENOBUFS;
    }
    struct net_arp_entry *e = net_arp_find(ctx, next_hop);
    if (e == NULL) {
        e = net_arp_alloc(ctx, next_hop);
        if (e == NULL) {
            ctx->ops.tx_free(ctx->user, b);
            NET_COUNT(ctx, drop_arp_queue_full);
            return -ENOBUFS;
        }
        e->ip = next_hop;
        e->state = NET_ARP_INCOMPLETE;
        e->tries = 1;
        e->expires_us = ctx->now_us + ctx->arp_params.retry_us;
        net_arp_request(ctx, next_hop);
    } else if (e->state == NET_ARP_REACHABLE) {
        /* Expired but still cached: send now and refresh in the
         * background by asking again. */
        e->state = NET_ARP_INCOMPLETE;
        e->tries = 1;
        e->expires_us = ctx->now_us + ctx->arp_params.retry_us;
        net_arp_request(ctx, next_hop);
    }
    struct net_arp_pending *p = &ctx->pending[ctx->n_pending++];
    p->buf = *b;
    p->next_hop = next_hop;
    p->deadline_us = ctx->now_us +
                     ctx->arp_params.retry_us * ctx->arp_params.max_tries;
    return 0;
}

int net_arp_resolve_and_send(struct net_ctx *ctx, struct net_buf *b,
                             uint32_t next_hop)
{
    struct net_arp_entry *e = net_arp_find(ctx, next_hop);
    if (e != NULL && e->state == NET_ARP_REACHABLE &&
        e->expires_us > ctx->now_us) {
        memcpy(b->data, e->mac, NET_ETH_ALEN);
        net_tx(ctx, b);
        return 0;
    }
    return net_arp_park(ctx, b, next_hop);
}

void net_timers(struct net_ctx *ctx)
{
    uint64_t now = ctx->now_us;
    for (unsigned i = 0; i < NET_ARP_CACHE_SIZE; i++) {
        struct net_arp_entry *e = &ctx->arp[i];
        if (e->state == NET_ARP_FREE || e->expires_us > now)
            continue;
        if (e->state == NET_ARP_REACHABLE) {
            /* Left in place: a stale entry is replaced on next use; the
             * slot is reclaimed by net_arp_alloc. Mark it so output asks
             * again rather than trusting it. */
            continue;
        }
        if (e->tries >= ctx->arp_params.max_tries) {
            e->state = NET_ARP_FREE;
            continue;
        }
        e->tries++;
        e->expires_us = now + ctx->arp_params.retry_us;
        net_arp_request(ctx, e->ip);
    }
    unsigned w = 0;
    for (unsigned r = 0; r < ctx->n_pending; r++) {
        struct net_arp_pending *p = &ctx->pending[r];
        if (p->deadline_us <= now) {
            ctx->ops.tx_free(ctx->user, &p->buf);
            NET_COUNT(ctx, drop_arp_timeout);
            continue;
        }
        if (w != r)
            ctx->pending[w] = *p;
        w++;
    }
    ctx->n_pending = (uint16_t)w;
}
