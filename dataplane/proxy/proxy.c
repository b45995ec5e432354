/* Plaintext proxy: pairs a client connection with a backend connection on
 * the same core and moves bytes both ways.
 *
 * Backpressure: bytes move only as far as the destination's send buffer
 * takes them; what it refuses stays in the source's receive buffer, whose
 * advertised window then closes, so a fast sender is slowed by TCP itself.
 * The destination's writable event resumes the move.
 * Half-close: end of stream on one side (FIN, all bytes moved) becomes a
 * shutdown of the other side's write direction; the pair ends when the
 * stack reports both connections closed. A reset or timeout on either side
 * aborts the other. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/tcp/tcp.h"
#include "health.h"
#include "pool.h"
#include "proxy.h"
#include "proxy_v2.h"

enum { PROXY_CLIENT = 0, PROXY_BACKEND = 1 };

struct proxy_pair;

struct proxy_end {
    struct proxy_pair *pair;
    tcp_handle_t h;
    const struct proxy_stream_ops *ops;
    void *state;
    uint8_t side;
    bool up;       /* established; the other side may write to it */
    bool eof;      /* its input is finished and was propagated */
    bool shut;     /* we shut its write side */
    bool closed;   /* the stack closed it; h is no longer valid */
};

struct proxy_pair {
    struct proxy_end end[2];
    struct proxy *px;
    uint32_t next_free;
    bool in_use;
    bool pp2_pending; /* the PROXY v2 header still has to go first */
    struct proxy_listener *l; /* its pool holds one connection of ours */
    int server;
    /* Re-entrancy: the stack may deliver events for this pair from inside
     * a call the proxy makes (tcp_send, tcp_recv_consume, ...). An event
     * that arrives while the pair is being moved only sets `again`; a
     * teardown only sets `doomed`; the outermost proxy_kick acts on both. */
    bool busy, again, doomed;
};

struct proxy_listener {
    struct proxy_listener_cfg cfg;
    struct pool pool; /* this core's view of the backends */
    tcp_handle_t lh;
};

struct proxy {
    struct tcp_stack *st;
    struct proxy_params p;
    uint64_t now;
    struct proxy_pair *pairs;
    uint32_t free_head;
    uint32_t active;
    unsigned n_listeners;
    struct proxy_listener listeners[PROXY_MAX_LISTENERS];
    struct health *hc;     /* on the core that runs the checks, else NULL */
    uint64_t next_health;  /* next health_tick */
    uint64_t ctr[PROXY_CTR_MAX];
};

#define PROXY_NONE UINT32_MAX
#define PROXY_COUNT(px, name, n) ((px)->ctr[PROXY_CTR_##name] += (n))

static const char *const proxy_ctr_names[] = {
#define PROXY_CTR_NAME(name, help) #name,
    PROXY_COUNTERS(PROXY_CTR_NAME)
#undef PROXY_CTR_NAME
};

/* --- the plain stream: straight onto the TCP API ------------------------ */

static ssize_t plain_peek(void *state, struct tcp_stack *st, tcp_handle_t h,
                          struct tcp_iov iov[2])
{
    (void)state;
    return tcp_recv_peek(st, h, iov);
}

static int plain_consume(void *state, struct tcp_stack *st, tcp_handle_t h,
                         size_t n, uint64_t now)
{
    (void)state;
    return tcp_recv_consume(st, h, n, now);
}

static ssize_t plain_send(void *state, struct tcp_stack *st, tcp_handle_t h,
                          const void *data, size_t len, uint64_t now)
{
    (void)state;
    return tcp_send(st, h, data, len, now);
}

static int plain_shutdown(void *state, struct tcp_stack *st, tcp_handle_t h,
                          uint64_t now)
{
    (void)state;
    return tcp_shutdown(st, h, now);
}

static const struct proxy_stream_ops proxy_plain_ops = {
    .peek = plain_peek,
    .consume = plain_consume,
    .send = plain_send,
    .shutdown = plain_shutdown,
};

/* --- pool ---------------------------------------------------------------- */

struct proxy *proxy_create(const struct proxy_params *p, struct tcp_stack *st,
                           char *err, size_t errlen)
{
    if (p->max_pairs == 0 || st == NULL) {
        snprintf(err, errlen, "proxy: max_pairs must be > 0 and a stack given");
        return NULL;
    }
    struct proxy *px = calloc(1, sizeof(*px));
    if (px != NULL)
        px->pairs = calloc(p->max_pairs, sizeof(*px->pairs));
    if (px == NULL || px->pairs == NULL) {
        free(px);
        snprintf(err, errlen, "proxy: out of memory for %u pairs", p->max_pairs);
        return NULL;
    }
    px->st = st;
    px->p = *p;
    if (p->health_checks &&
        (px->hc = health_create(st, p->local_addr, err, errlen)) == NULL) {
        free(px->pairs);
        free(px);
        return NULL;
    }
    for (uint32_t i = 0; i < p->max_pairs; i++)
        px->pairs[i].next_free = i + 1 < p->max_pairs ? i + 1 : PROXY_NONE;
    px->free_head = 0;
    return px;
}

void proxy_destroy(struct proxy *px)
{
    if (px == NULL)
        return;
    health_destroy(px->hc);
    free(px->pairs);
    free(px);
}

void proxy_set_time(struct proxy *px, uint64_t now_us)
{
    px->now = now_us;
    /* The checks' timers need millisecond resolution, no more. */
    if (px->hc != NULL && now_us >= px->next_health) {
        px->next_health = now_us + 1000;
        health_tick(px->hc, now_us);
    }
}

uint32_t proxy_active(const struct proxy *px)
{
    return px->active;
}

uint64_t proxy_counter(const struct proxy *px, unsigned c)
{
    return c < PROXY_CTR_MAX ? px->ctr[c] : 0;
}

const char *proxy_counter_name(unsigned c)
{
    return c < PROXY_CTR_MAX ? proxy_ctr_names[c] : NULL;
}

static struct proxy_pair *proxy_pair_alloc(struct proxy *px)
{
    if (px->free_head == PROXY_NONE)
        return NULL;
    struct proxy_pair *pp = &px->pairs[px->free_head];
    px->free_head = pp->next_free;
    memset(pp, 0, sizeof(*pp));
    pp->px = px;
    pp->in_use = true;
    px->active++;
    for (int s = 0; s < 2; s++) {
        pp->end[s].pair = pp;
        pp->end[s].side = (uint8_t)s;
        pp->end[s].h = TCP_HANDLE_INVALID;
        pp->end[s].ops = &proxy_plain_ops;
    }
    return pp;
}

static void proxy_pair_free(struct proxy *px, struct proxy_pair *pp)
{
    if (pp->l != NULL)
        pool_put(&pp->l->pool, (unsigned)pp->server);
    for (int s = 0; s < 2; s++)
        if (pp->end[s].ops->release != NULL)
            pp->end[s].ops->release(pp->end[s].state);
    pp->in_use = false;
    pp->next_free = px->free_head;
    px->free_head = (uint32_t)(pp - px->pairs);
    px->active--;
}

int proxy_add_listener(struct proxy *px, const struct proxy_listener_cfg *cfg)
{
    if (cfg->n_backends == 0 || cfg->n_backends > PROXY_MAX_BACKENDS)
        return -EINVAL;
    if (px->n_listeners == PROXY_MAX_LISTENERS)
        return -ENOSPC;
    struct proxy_listener *l = &px->listeners[px->n_listeners];
    l->cfg = *cfg;
    struct pool_cfg pc = {.balance = (enum pool_balance)cfg->balance,
                          .max_conns = cfg->max_conns,
                          .n_servers = cfg->n_backends};
    for (unsigned i = 0; i < cfg->n_backends; i++) {
        pc.servers[i].addr = cfg->backends[i].addr;
        pc.servers[i].port = cfg->backends[i].port;
    }
    int rc = pool_init(&l->pool, &pc, cfg->health);
    if (rc < 0)
        return rc;
    if (px->hc != NULL && cfg->health != NULL) {
        /* One probe per server even if several listeners share a pool. */
        bool seen = false;
        for (unsigned i = 0; i < px->n_listeners; i++)
            seen |= px->listeners[i].cfg.health == cfg->health;
        if (!seen && (rc = health_add_pool(px->hc, &pc, &l->cfg.health_check,
                                           cfg->health, px->now)) < 0)
            return rc;
    }
    int64_t lh = tcp_listen(px->st, cfg->addr, cfg->port, l);
    if (lh < 0)
        return (int)lh;
    l->lh = (tcp_handle_t)lh;
    px->n_listeners++;
    return 0;
}

/* --- moving bytes -------------------------------------------------------- */

/* Tears the pair down after a failure on one side: the other side (if the
 * stack still has it) gets a RST, and the pair is freed. */
static void proxy_abort_pair(struct proxy *px, struct proxy_pair *pp)
{
    for (int s = 0; s < 2; s++) {
        struct proxy_end *e = &pp->end[s];
        if (!e->closed && e->h != TCP_HANDLE_INVALID) {
            tcp_abort(px->st, e->h);
            e->closed = true;
        }
    }
    PROXY_COUNT(px, aborted, 1);
    if (pp->busy)
        pp->doomed = true;
    else
        proxy_pair_free(px, pp);
}

/* Sends the PROXY v2 header for pair PP to its backend: the client's and
 * the listener's addresses from the client connection, and the TLS fields
 * from the client's stream filter. Called when the client has something for
 * the backend (plaintext or its end), so a TLS handshake is done by then.
 * Returns 1 (sent), 0 (the filter is not ready: try again later) or -errno.
 * The header is sent whole or not at all: a fresh connection's send buffer
 * (several KiB) always holds PROXY_V2_MAX_LEN bytes. */
static int proxy_send_header(struct proxy *px, struct proxy_pair *pp)
{
    struct proxy_end *c = &pp->end[PROXY_CLIENT], *b = &pp->end[PROXY_BACKEND];
    struct proxy_v2_info in;
    memset(&in, 0, sizeof(in));
    if (c->ops->pp2_info != NULL) {
        int r = c->ops->pp2_info(c->state, &in);
        if (r <= 0)
            return r;
    }
    struct tcp_conn_info ci;
    int rc = tcp_conn_info(px->st, c->h, &ci);
    if (rc < 0)
        return rc;
    in.tcp4 = true;
    in.src_addr = ci.raddr;
    in.src_port = ci.rport;
    in.dst_addr = ci.laddr;
    in.dst_port = ci.lport;
    uint8_t hdr[PROXY_V2_MAX_LEN];
    ssize_t n = proxy_v2_build(&in, hdr, sizeof(hdr));
    if (n < 0)
        return (int)n;
    ssize_t sent = b->ops->send(b->state, px->st, b->h, hdr, (size_t)n, px->now);
    if (sent != n)
        return sent < 0 ? (int)sent : -ENOBUFS;
    pp->pp2_pending = false;
    PROXY_COUNT(px, proxy_headers, 1);
    return 1;
}

/* Moves what src has buffered into dst, as far as dst takes it; propagates
 * end of stream. Runs only inside proxy_kick (pair marked busy), so events
 * the stack delivers from inside these calls are deferred, never nested.
 * Bounded: a few rounds, each moving up to a whole receive buffer. Returns
 * <0 once the pair is doomed. */
static int proxy_move(struct proxy *px, struct proxy_end *src,
                      struct proxy_end *dst)
{
    struct proxy_pair *pp = src->pair;
    for (int round = 0; round < 4; round++) {
        if (pp->doomed)
            return -1;
        if (src->closed || src->eof || !src->up || !dst->up || dst->closed)
            return 0;
        struct tcp_iov iov[2];
        ssize_t n = src->ops->peek(src->state, px->st, src->h, iov);
        if (n == -ESHUTDOWN && pp->pp2_pending && src->side == PROXY_CLIENT) {
            /* Even a client that sent nothing is announced before its FIN. */
            int r = proxy_send_header(px, pp);
            if (r < 0) {
                proxy_abort_pair(px, pp);
                return -1;
            }
            if (r == 0 || pp->doomed)
                return pp->doomed ? -1 : 0;
        }
        if (n == -ESHUTDOWN) {
            src->eof = true;
            if (!dst->shut) {
                dst->shut = true;
                PROXY_COUNT(px, half_closes, 1);
                if (dst->ops->shutdown(dst->state, px->st, dst->h, px->now) < 0) {
                    proxy_abort_pair(px, pp);
                    return -1;
                }
            }
            return 0;
        }
        if (n < 0) {
            proxy_abort_pair(px, pp);
            return -1;
        }
        if (n == 0)
            return 0;
        if (pp->pp2_pending && src->side == PROXY_CLIENT) {
            int r = proxy_send_header(px, pp);
            if (r < 0) {
                proxy_abort_pair(px, pp);
                return -1;
            }
            if (r == 0 || pp->doomed)
                return pp->doomed ? -1 : 0;
        }
        size_t moved = 0;
        bool full = false;
        for (int i = 0; i < 2 && !full; i++) {
            if (iov[i].len == 0)
                continue;
            ssize_t sent = dst->ops->send(dst->state, px->st, dst->h, iov[i].base,
                                          iov[i].len, px->now);
            if (pp->doomed)
                return -1;
            if (sent < 0) {
                proxy_abort_pair(px, pp);
                return -1;
            }
            moved += (size_t)sent;
            full = (size_t)sent < iov[i].len;
        }
        if (moved > 0) {
            if (src->side == PROXY_CLIENT)
                PROXY_COUNT(px, bytes_to_backend, moved);
            else
                PROXY_COUNT(px, bytes_to_client, moved);
            if (src->ops->consume(src->state, px->st, src->h, moved, px->now) < 0 ||
                pp->doomed) {
                proxy_abort_pair(px, pp);
                return -1;
            }
        }
        if (full) {
            /* dst's writable event resumes; until then src's window shrinks. */
            PROXY_COUNT(px, backpressure, 1);
            return 0;
        }
    }
    /* Still more after the rounds: come back (bounded work per event). */
    pp->again = true;
    return 0;
}

/* Moves bytes both ways until nothing changes, then frees the pair if it
 * was torn down meanwhile. The single entry point of every event. */
static void proxy_kick(struct proxy *px, struct proxy_pair *pp)
{
    if (pp->busy) {
        pp->again = true;
        return;
    }
    pp->busy = true;
    for (int i = 0; i < 16; i++) {
        pp->again = false;
        if (proxy_move(px, &pp->end[PROXY_CLIENT], &pp->end[PROXY_BACKEND]) < 0 ||
            proxy_move(px, &pp->end[PROXY_BACKEND], &pp->end[PROXY_CLIENT]) < 0)
            break;
        if (!pp->again)
            break;
    }
    pp->busy = false;
    if (pp->doomed)
        proxy_pair_free(px, pp);
    else if (pp->end[0].closed && pp->end[1].closed) {
        PROXY_COUNT(px, completed, 1);
        proxy_pair_free(px, pp);
    }
}

/* --- events -------------------------------------------------------------- */

int proxy_on_accepted(struct proxy *px, tcp_handle_t lh, tcp_handle_t h,
                      void *user)
{
    struct proxy_listener *l = user;
    (void)lh;
    if (l == NULL)
        return -EINVAL;
    struct proxy_pair *pp = proxy_pair_alloc(px);
    if (pp == NULL) {
        PROXY_COUNT(px, refused_limit, 1);
        return -ENOSPC;
    }
    struct proxy_end *c = &pp->end[PROXY_CLIENT], *b = &pp->end[PROXY_BACKEND];
    c->h = h;
    c->up = true;
    if (l->cfg.client_ops != NULL) {
        c->ops = l->cfg.client_ops;
        if (c->ops->open != NULL &&
            c->ops->open(l->cfg.client_ops_ctx, px->st, h, &c->state) < 0) {
            c->ops = &proxy_plain_ops; /* nothing to release */
            proxy_pair_free(px, pp);
            PROXY_COUNT(px, refused_connect, 1);
            return -EPROTO;
        }
    }
    int si = pool_get(&l->pool);
    if (si < 0) {
        proxy_pair_free(px, pp); /* releases the client filter's state */
        if (si == -EHOSTUNREACH)
            PROXY_COUNT(px, refused_down, 1);
        else
            PROXY_COUNT(px, refused_full, 1);
        return si;
    }
    pp->l = l;
    pp->server = si;
    pp->pp2_pending = l->cfg.proxy_protocol;
    const struct pool_server_cfg *be = pool_server(&l->pool, (unsigned)si);
    int64_t bh = tcp_connect(px->st, px->p.local_addr, be->addr, be->port, b,
                             px->now);
    if (bh < 0) {
        proxy_pair_free(px, pp);
        PROXY_COUNT(px, refused_connect, 1);
        return (int)bh;
    }
    b->h = (tcp_handle_t)bh;
    tcp_set_user(px->st, h, c);
    if (px->p.idle_timeout_us != 0) {
        tcp_set_idle_timeout(px->st, h, px->p.idle_timeout_us, px->now);
        tcp_set_idle_timeout(px->st, b->h, px->p.idle_timeout_us, px->now);
    }
    PROXY_COUNT(px, accepted, 1);
    return 0;
}

void proxy_on_connected(struct proxy *px, tcp_handle_t h, void *user)
{
    struct proxy_end *e = user;
    if (health_owns(px->hc, user)) {
        health_on_connected(px->hc, h, user, px->now);
        return;
    }
    if (e == NULL || !e->pair->in_use)
        return;
    e->up = true;
    PROXY_COUNT(px, backend_connected, 1);
    proxy_kick(px, e->pair);
}

void proxy_on_readable(struct proxy *px, tcp_handle_t h, void *user)
{
    struct proxy_end *e = user;
    if (health_owns(px->hc, user)) {
        health_on_readable(px->hc, h, user, px->now);
        return;
    }
    if (e == NULL || !e->pair->in_use)
        return;
    proxy_kick(px, e->pair);
    /* The kick may have ended the pair (its slot stays, in_use says). */
    if (e->pair->in_use && e->eof && !e->closed && e->ops->drain != NULL)
        e->ops->drain(e->state);
}

void proxy_on_writable(struct proxy *px, tcp_handle_t h, void *user)
{
    struct proxy_end *e = user;
    proxy_on_readable(px, h, user);
    if (e != NULL && !health_owns(px->hc, user) && e->pair->in_use && !e->closed &&
        e->ops->writable != NULL)
        e->ops->writable(e->state);
}

void proxy_on_peer_closed(struct proxy *px, tcp_handle_t h, void *user)
{
    /* The FIN shows as end of stream to peek once every byte is moved. */
    proxy_on_readable(px, h, user);
}

void proxy_on_closed(struct proxy *px, tcp_handle_t h, void *user,
                     enum tcp_close_reason reason)
{
    struct proxy_end *e = user;
    if (health_owns(px->hc, user)) {
        health_on_closed(px->hc, h, user, reason);
        return;
    }
    if (e == NULL || !e->pair->in_use || e->closed)
        return;
    struct proxy_pair *pp = e->pair;
    e->closed = true; /* h is gone: never touch it again */
    if (e->side == PROXY_BACKEND && !e->up)
        PROXY_COUNT(px, backend_failed, 1);
    if (reason != TCP_CLOSE_NORMAL || !e->eof || !e->shut) {
        /* A reset, a timeout, or a close before both directions finished:
         * the other side cannot complete either. */
        proxy_abort_pair(px, pp);
        return;
    }
    if (pp->busy)
        return; /* the outer proxy_kick sees both ends closed */
    if (pp->end[!e->side].closed) {
        PROXY_COUNT(px, completed, 1);
        proxy_pair_free(px, pp);
    }
}
