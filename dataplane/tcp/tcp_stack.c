/* Stack lifetime, the connection pool and 4-tuple table, listeners, the
 * hashed timer wheel and the deferred delivery of upper-layer events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp_pvt.h"

#define WHEEL_SLOTS 4096u

static const char *const counter_names[] = {
#define TCP_COUNTER(name, desc) #name,
#include "tcp_counters.def"
#undef TCP_COUNTER
};
static const char *const counter_descs[] = {
#define TCP_COUNTER(name, desc) desc,
#include "tcp_counters.def"
#undef TCP_COUNTER
};
static const char *const state_names[] = {
#define TCP_STATE(name, str) str,
#include "tcp_states.def"
#undef TCP_STATE
};

const char *tcp_counter_name(unsigned i) { return i < TCP_CNT_MAX ? counter_names[i] : NULL; }
const char *tcp_counter_desc(unsigned i) { return i < TCP_CNT_MAX ? counter_descs[i] : NULL; }
const char *tcp_state_name(enum tcp_state s)
{
    return (unsigned)s < TCP_STATE_MAX ? state_names[s] : "?";
}

static bool is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

static uint32_t pow2_ge(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

static void fill_defaults(struct tcp_stack_params *p)
{
    if (!p->max_listeners) p->max_listeners = 16;
    if (!p->sndbuf) p->sndbuf = 64 * 1024;
    if (!p->rcvbuf) p->rcvbuf = 64 * 1024;
    if (!p->syn_backlog) p->syn_backlog = p->max_conns / 4 ? p->max_conns / 4 : 1;
    if (!p->ooo_max_segs) p->ooo_max_segs = 16;
    if (p->ooo_max_segs > TCP_OOO_MAX) p->ooo_max_segs = TCP_OOO_MAX;
    if (!p->mss) p->mss = 1460;
    if (!p->wscale) {
        /* smallest shift such that rcvbuf >> shift fits the 16-bit field */
        while (p->wscale < 14 && (p->rcvbuf >> p->wscale) > 65535u)
            p->wscale++;
    }
    if (!p->rto_initial_us) p->rto_initial_us = 1000000;
    if (!p->rto_min_us) p->rto_min_us = 200000;
    if (!p->rto_max_us) p->rto_max_us = 60000000;
    if (!p->delack_us) p->delack_us = 40000;
    if (!p->time_wait_us) p->time_wait_us = 2000000;
    if (!p->max_retries) p->max_retries = 8;
    if (!p->syn_retries) p->syn_retries = 5;
    if (!p->keepalive_intvl_us) p->keepalive_intvl_us = 10000000;
    if (!p->keepalive_probes) p->keepalive_probes = 5;
    if (!p->timer_tick_us) p->timer_tick_us = 1000;
    if (!p->challenge_ack_limit) p->challenge_ack_limit = 1000;
    if (!p->eport_min && !p->eport_max) {
        p->eport_min = 32768;
        p->eport_max = 60999;
    }
    if (!p->eport_stride) p->eport_stride = 1;
}

static int check_params(const struct tcp_stack_params *p, char *err, size_t errlen)
{
    const char *why = NULL;
    if (p->max_conns == 0 || p->max_conns > TCP_MAX_CONNS)
        why = "max_conns must be 1..1048575";
    else if (p->max_listeners > 4096)
        why = "max_listeners must be <= 4096";
    else if (!is_pow2(p->sndbuf) || !is_pow2(p->rcvbuf) || p->sndbuf < 4096 ||
             p->rcvbuf < 4096 || p->sndbuf > (1u << 30) || p->rcvbuf > (1u << 30))
        why = "sndbuf and rcvbuf must be powers of 2 in 4 KiB..1 GiB";
    else if (p->mss < 88 || p->mss > 9000)
        why = "mss must be 88..9000";
    else if (p->wscale > 14 || (p->rcvbuf >> p->wscale) > 65535u)
        why = "wscale must be <= 14 and cover rcvbuf";
    else if (p->rto_min_us > p->rto_max_us)
        why = "rto_min_us > rto_max_us";
    else if (p->eport_min == 0 || p->eport_min > p->eport_max ||
             p->eport_offset >= p->eport_stride)
        why = "bad ephemeral port range or stride/offset";
    if (!why)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "tcp: %s", why);
    return -EINVAL;
}

struct tcp_stack *tcp_stack_create(const struct tcp_stack_params *params,
                                   const struct tcp_stack_ops *ops, void *ctx, char *err,
                                   size_t errlen)
{
    if (!params || !ops || !ops->output) {
        if (err && errlen)
            snprintf(err, errlen, "tcp: params and ops->output are required");
        return NULL;
    }
    struct tcp_stack_params p = *params;
    fill_defaults(&p);
    if (check_params(&p, err, errlen) < 0)
        return NULL;

    struct tcp_stack *st = calloc(1, sizeof(*st));
    if (!st)
        goto nomem;
    st->p = p;
    st->ops = *ops;
    st->ctx = ctx;
    st->snd_mask = p.sndbuf - 1;
    st->rcv_mask = p.rcvbuf - 1;
    st->ooo_max = p.ooo_max_segs;
    uint32_t n = p.max_conns;
    st->conns = calloc(n, sizeof(*st->conns));
    st->free_stack = calloc(n, sizeof(uint32_t));
    st->bufmem = malloc((size_t)n * ((size_t)p.sndbuf + p.rcvbuf));
    uint32_t nb = pow2_ge(n * 2u);
    st->buckets = malloc((size_t)nb * sizeof(uint32_t));
    st->bucket_mask = nb - 1;
    st->listeners = calloc(p.max_listeners ? p.max_listeners : 1, sizeof(*st->listeners));
    st->wheel = malloc(WHEEL_SLOTS * sizeof(uint32_t));
    st->wheel_mask = WHEEL_SLOTS - 1;
    st->evq = calloc(n, sizeof(uint32_t));
    st->ackq = calloc(n, sizeof(uint32_t));
    if (!st->conns || !st->free_stack || !st->bufmem || !st->buckets || !st->listeners ||
        !st->wheel || !st->evq || !st->ackq)
        goto nomem;
    for (uint32_t i = 0; i < nb; i++)
        st->buckets[i] = TCP_NO_IDX;
    for (uint32_t i = 0; i < WHEEL_SLOTS; i++)
        st->wheel[i] = TCP_NO_IDX;
    for (uint32_t i = 0; i < n; i++) {
        struct tcp_conn *c = &st->conns[i];
        c->snd_buf = st->bufmem + (size_t)i * ((size_t)p.sndbuf + p.rcvbuf);
        c->rcv_buf = c->snd_buf + p.sndbuf;
        /* pop order: index 0 first */
        st->free_stack[i] = n - 1 - i;
    }
    st->n_free = n;
    st->tw_head = st->tw_tail = TCP_NO_IDX;
    st->eport_next = p.eport_first >= p.eport_min && p.eport_first <= p.eport_max
                         ? p.eport_first : p.eport_min;
    st->chack_left = p.challenge_ack_limit;
    st->cnt.conns_by_state[TCP_STATE_CLOSED] = n;
    return st;

nomem:
    if (err && errlen)
        snprintf(err, errlen, "tcp: out of memory creating the stack");
    tcp_stack_destroy(st);
    return NULL;
}

void tcp_stack_destroy(struct tcp_stack *st)
{
    if (!st)
        return;
    free(st->conns);
    free(st->free_stack);
    free(st->bufmem);
    free(st->buckets);
    free(st->listeners);
    free(st->wheel);
    free(st->evq);
    free(st->ackq);
    free(st);
}

const struct tcp_counters *tcp_stack_counters(const struct tcp_stack *st) { return &st->cnt; }

uint32_t tcp_stack_conns(const struct tcp_stack *st) { return st->p.max_conns - st->n_free; }

/* --- handles ------------------------------------------------------------ */

uint32_t tcp_conn_idx(const struct tcp_stack *st, const struct tcp_conn *c)
{
    return (uint32_t)(c - st->conns);
}

tcp_handle_t tcp_conn_handle(const struct tcp_stack *st, const struct tcp_conn *c)
{
    return (uint32_t)c->gen << TCP_HANDLE_IDX_BITS | tcp_conn_idx(st, c);
}

struct tcp_conn *tcp_handle_conn(const struct tcp_stack *st, tcp_handle_t h)
{
    if (h & TCP_LISTENER_BIT)
        return NULL;
    uint32_t idx = h & ((1u << TCP_HANDLE_IDX_BITS) - 1);
    uint32_t gen = (h >> TCP_HANDLE_IDX_BITS) & TCP_GEN_MASK;
    if (idx >= st->p.max_conns)
        return NULL;
    struct tcp_conn *c = &st->conns[idx];
    if (!c->in_use || c->gen != gen || c->user_closed || !c->announced)
        return NULL;
    return c;
}

/* --- pool and table ----------------------------------------------------- */

static uint32_t tuple_bucket(const struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                             uint32_t raddr, uint16_t rport)
{
    /* multiply-shift over the tuple mixed with a per-stack key, so that a
     * remote host cannot aim its flows at one chain without knowing it */
    uint64_t k;
    memcpy(&k, st->p.secret, sizeof(k));
    uint64_t x = ((uint64_t)raddr << 32 | (uint32_t)rport << 16 | lport) ^ k;
    x ^= (uint64_t)laddr * 0x9e3779b97f4a7c15ull;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 29;
    return (uint32_t)x & st->bucket_mask;
}

struct tcp_conn *tcp_conn_lookup(struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                                 uint32_t raddr, uint16_t rport)
{
    uint32_t i = st->buckets[tuple_bucket(st, laddr, lport, raddr, rport)];
    while (i != TCP_NO_IDX) {
        struct tcp_conn *c = &st->conns[i];
        if (c->lport == lport && c->rport == rport && c->raddr == raddr && c->laddr == laddr)
            return c;
        i = c->hnext;
    }
    return NULL;
}

void tcp_conn_hash_insert(struct tcp_stack *st, struct tcp_conn *c)
{
    uint32_t b = tuple_bucket(st, c->laddr, c->lport, c->raddr, c->rport);
    c->hnext = st->buckets[b];
    st->buckets[b] = tcp_conn_idx(st, c);
}

void tcp_conn_hash_remove(struct tcp_stack *st, struct tcp_conn *c)
{
    uint32_t *pp = &st->buckets[tuple_bucket(st, c->laddr, c->lport, c->raddr, c->rport)];
    uint32_t me = tcp_conn_idx(st, c);
    while (*pp != TCP_NO_IDX) {
        if (*pp == me) {
            *pp = c->hnext;
            c->hnext = TCP_NO_IDX;
            return;
        }
        pp = &st->conns[*pp].hnext;
    }
}

static void tw_remove(struct tcp_stack *st, struct tcp_conn *c)
{
    if (!c->in_tw)
        return;
    if (c->twprev != TCP_NO_IDX)
        st->conns[c->twprev].twnext = c->twnext;
    else
        st->tw_head = c->twnext;
    if (c->twnext != TCP_NO_IDX)
        st->conns[c->twnext].twprev = c->twprev;
    else
        st->tw_tail = c->twprev;
    c->in_tw = 0;
}

void tcp_tw_push(struct tcp_stack *st, struct tcp_conn *c)
{
    uint32_t me = tcp_conn_idx(st, c);
    tw_remove(st, c);
    c->twnext = TCP_NO_IDX;
    c->twprev = st->tw_tail;
    if (st->tw_tail != TCP_NO_IDX)
        st->conns[st->tw_tail].twnext = me;
    else
        st->tw_head = me;
    st->tw_tail = me;
    c->in_tw = 1;
}

void tcp_set_state(struct tcp_stack *st, struct tcp_conn *c, enum tcp_state s)
{
    st->cnt.conns_by_state[c->state]--;
    st->cnt.conns_by_state[s]++;
    if (c->state == TCP_STATE_SYN_RCVD && s != TCP_STATE_SYN_RCVD)
        st->n_syn_rcvd--;
    if (s == TCP_STATE_SYN_RCVD && c->state != TCP_STATE_SYN_RCVD)
        st->n_syn_rcvd++;
    c->state = (uint8_t)s;
}

void tcp_conn_free(struct tcp_stack *st, struct tcp_conn *c)
{
    c->in_use = 0;
    c->gen = (uint16_t)((c->gen + 1) & TCP_GEN_MASK);
    st->free_stack[st->n_free++] = tcp_conn_idx(st, c);
}

static void conn_release_now(struct tcp_stack *st, struct tcp_conn *c)
{
    tcp_conn_hash_remove(st, c);
    tcp_wheel_remove(st, c);
    tw_remove(st, c);
    tcp_set_state(st, c, TCP_STATE_CLOSED);
    tcp_conn_free(st, c);
}

struct tcp_conn *tcp_conn_alloc(struct tcp_stack *st, uint64_t now)
{
    if (st->n_free == 0) {
        /* Recycle the oldest TIME_WAIT entry (bounded TIME_WAIT): a new
         * connection is worth more than protection against a stray old
         * duplicate. Skip entries with events still queued. */
        uint32_t i = st->tw_head;
        for (unsigned tries = 0; i != TCP_NO_IDX && tries < 8; tries++) {
            struct tcp_conn *tw = &st->conns[i];
            if (!tw->in_evq) {
                conn_release_now(st, tw);
                st->cnt.c[TCP_CNT_TIME_WAIT_EVICTED]++;
                break;
            }
            i = tw->twnext;
        }
        if (st->n_free == 0)
            return NULL;
    }
    struct tcp_conn *c = &st->conns[st->free_stack[--st->n_free]];
    uint16_t gen = c->gen;
    uint8_t *sb = c->snd_buf, *rb = c->rcv_buf;
    memset(c, 0, sizeof(*c));
    c->gen = gen;
    c->snd_buf = sb;
    c->rcv_buf = rb;
    c->in_use = 1;
    c->state = TCP_STATE_CLOSED;
    c->hnext = c->wprev = c->wnext = c->twnext = c->twprev = TCP_NO_IDX;
    c->last_activity = now;
    c->idle_us = st->p.idle_timeout_us;
    c->rto = st->p.rto_initial_us;
    return c;
}

/* Connection is over: unlink it from the table, timers and TIME_WAIT FIFO
 * now (no segment may find it any more) and let tcp_dispatch() deliver the
 * closed event, if the upper layer knows it, and free it. */
void tcp_conn_closed(struct tcp_stack *st, struct tcp_conn *c, enum tcp_close_reason why)
{
    if (c->zombie)
        return;
    tcp_conn_hash_remove(st, c);
    tcp_wheel_remove(st, c);
    tw_remove(st, c);
    static const enum tcp_counter cnt[] = {
        [TCP_CLOSE_NORMAL] = TCP_CNT_CLOSED_NORMAL,
        [TCP_CLOSE_RESET] = TCP_CNT_CLOSED_RESET,
        [TCP_CLOSE_TIMEOUT] = TCP_CNT_CLOSED_TIMEOUT,
        [TCP_CLOSE_ABORTED] = TCP_CNT_CLOSED_ABORTED,
    };
    st->cnt.c[cnt[why]]++;
    if (c->state == TCP_STATE_SYN_SENT && why != TCP_CLOSE_ABORTED)
        st->cnt.c[TCP_CNT_CONNECT_FAILED]++;
    tcp_set_state(st, c, TCP_STATE_CLOSED);
    c->zombie = 1;
    c->close_reason = (uint8_t)why;
    tcp_event(st, c, TCP_EV_CLOSED);
}

/* --- listeners ------------------------------------------------------------ */

int tcp_listener_find(const struct tcp_stack *st, uint32_t addr, uint16_t port)
{
    int wild = -1;
    for (uint32_t i = 0; i < st->p.max_listeners; i++) {
        const struct tcp_listener *l = &st->listeners[i];
        if (!l->in_use || l->port != port)
            continue;
        if (l->addr == addr)
            return (int)i;
        if (l->addr == 0)
            wild = (int)i;
    }
    return wild;
}

int64_t tcp_listen(struct tcp_stack *st, uint32_t addr, uint16_t port, void *user)
{
    if (port == 0)
        return -EINVAL;
    int free_i = -1;
    for (uint32_t i = 0; i < st->p.max_listeners; i++) {
        struct tcp_listener *l = &st->listeners[i];
        if (l->in_use && l->port == port && l->addr == addr)
            return -EADDRINUSE;
        if (!l->in_use && free_i < 0)
            free_i = (int)i;
    }
    if (free_i < 0)
        return -ENOSPC;
    struct tcp_listener *l = &st->listeners[free_i];
    l->in_use = true;
    l->addr = addr;
    l->port = port;
    l->user = user;
    return (int64_t)(TCP_LISTENER_BIT | (uint32_t)l->gen << TCP_HANDLE_IDX_BITS | (uint32_t)free_i);
}

static struct tcp_listener *listener_of(const struct tcp_stack *st, tcp_handle_t lh)
{
    if (!(lh & TCP_LISTENER_BIT))
        return NULL;
    uint32_t idx = lh & ((1u << TCP_HANDLE_IDX_BITS) - 1);
    uint32_t gen = (lh >> TCP_HANDLE_IDX_BITS) & TCP_GEN_MASK;
    if (idx >= st->p.max_listeners)
        return NULL;
    struct tcp_listener *l = &st->listeners[idx];
    return l->in_use && l->gen == gen ? l : NULL;
}

int tcp_unlisten(struct tcp_stack *st, tcp_handle_t lh)
{
    struct tcp_listener *l = listener_of(st, lh);
    if (!l)
        return -EBADF;
    uint16_t idx = (uint16_t)(l - st->listeners);
    for (uint32_t i = 0; i < st->p.max_conns; i++) {
        struct tcp_conn *c = &st->conns[i];
        if (c->in_use && !c->zombie && c->state == TCP_STATE_SYN_RCVD && c->listener == idx)
            tcp_conn_closed(st, c, TCP_CLOSE_ABORTED);
    }
    l->in_use = false;
    l->gen = (uint16_t)((l->gen + 1) & TCP_GEN_MASK);
    tcp_dispatch(st);
    return 0;
}

int tcp_set_user(struct tcp_stack *st, tcp_handle_t h, void *user)
{
    struct tcp_listener *l = listener_of(st, h);
    if (l) {
        l->user = user;
        return 0;
    }
    struct tcp_conn *c = tcp_handle_conn(st, h);
    if (!c)
        return -EBADF;
    c->user = user;
    return 0;
}

void *tcp_get_user(const struct tcp_stack *st, tcp_handle_t h)
{
    struct tcp_listener *l = listener_of(st, h);
    if (l)
        return l->user;
    struct tcp_conn *c = tcp_handle_conn(st, h);
    return c ? c->user : NULL;
}

/* --- timer wheel -------------------------------------------------------- */

void tcp_wheel_remove(struct tcp_stack *st, struct tcp_conn *c)
{
    if (!c->wheel_at)
        return;
    if (c->wprev != TCP_NO_IDX)
        st->conns[c->wprev].wnext = c->wnext;
    else
        st->wheel[c->wslot] = c->wnext;
    if (c->wnext != TCP_NO_IDX)
        st->conns[c->wnext].wprev = c->wprev;
    c->wprev = c->wnext = TCP_NO_IDX;
    c->wheel_at = 0;
}

static void wheel_insert(struct tcp_stack *st, struct tcp_conn *c, uint64_t at)
{
    uint64_t tick = at / st->p.timer_tick_us;
    /* a deadline in a tick already processed goes to the current tick,
     * which tcp_timers_run() visits again */
    if (st->wheel_started && tick < st->wheel_tick)
        tick = st->wheel_tick;
    uint32_t slot = (uint32_t)tick & st->wheel_mask;
    uint32_t me = tcp_conn_idx(st, c);
    c->wprev = TCP_NO_IDX;
    c->wnext = st->wheel[slot];
    if (c->wnext != TCP_NO_IDX)
        st->conns[c->wnext].wprev = me;
    st->wheel[slot] = me;
    c->wslot = slot;
    c->wheel_at = at;
}

static void wheel_resched(struct tcp_stack *st, struct tcp_conn *c)
{
    uint64_t min = 0;
    for (int t = 0; t < TCP_T_MAX; t++)
        if (c->tmr[t] && (!min || c->tmr[t] < min))
            min = c->tmr[t];
    if (min == c->wheel_at && min)
        return;
    tcp_wheel_remove(st, c);
    if (min)
        wheel_insert(st, c, min);
}

void tcp_timer_set(struct tcp_stack *st, struct tcp_conn *c, enum tcp_timer t, uint64_t at)
{
    c->tmr[t] = at ? at : 1;
    wheel_resched(st, c);
}

void tcp_timer_stop(struct tcp_stack *st, struct tcp_conn *c, enum tcp_timer t)
{
    if (!c->tmr[t])
        return;
    c->tmr[t] = 0;
    wheel_resched(st, c);
}

unsigned tcp_timers_run(struct tcp_stack *st, uint64_t now)
{
    uint64_t now_tick = now / st->p.timer_tick_us;
    if (!st->wheel_started) {
        st->wheel_started = true;
        st->wheel_tick = now_tick;
        /* entries inserted before the first run sit at their own ticks */
        uint64_t lo = UINT64_MAX;
        for (uint32_t i = 0; i < st->p.max_conns; i++)
            if (st->conns[i].in_use && st->conns[i].wheel_at &&
                st->conns[i].wheel_at / st->p.timer_tick_us < lo)
                lo = st->conns[i].wheel_at / st->p.timer_tick_us;
        if (lo < st->wheel_tick)
            st->wheel_tick = lo;
    }
    unsigned fired = 0;
    uint64_t from = st->wheel_tick;
    if (now_tick < from)
        return 0;
    if (now_tick - from > st->wheel_mask)
        from = now_tick - st->wheel_mask; /* every slot visited once */
    for (uint64_t t = from; t <= now_tick; t++) {
        uint32_t i = st->wheel[(uint32_t)t & st->wheel_mask];
        while (i != TCP_NO_IDX) {
            struct tcp_conn *c = &st->conns[i];
            i = c->wnext;
            if (c->wheel_at > now)
                continue; /* a later round */
            tcp_wheel_remove(st, c);
            tcp_timers_fire(st, c, now);
            fired++;
        }
    }
    st->wheel_tick = now_tick;
    tcp_dispatch(st);
    return fired;
}

/* --- events ------------------------------------------------------------- */

void tcp_event(struct tcp_stack *st, struct tcp_conn *c, unsigned ev)
{
    c->events |= (uint16_t)ev;
    if (c->in_evq)
        return;
    c->in_evq = 1;
    uint32_t n = st->p.max_conns;
    st->evq[(st->evq_head + st->evq_len) % n] = tcp_conn_idx(st, c);
    st->evq_len++;
}

/* Deliver queued events in a fixed order (accepted/connected, readable,
 * writable, peer_closed, closed). Runs at the end of every entry point, so
 * callbacks see a consistent stack and may call back into it; calls made
 * from a callback queue their events here rather than nesting. */
void tcp_dispatch(struct tcp_stack *st)
{
    if (st->dispatching || st->batch)
        return;
    st->dispatching = true;
    const struct tcp_stack_ops *o = &st->ops;
    while (st->evq_len) {
        struct tcp_conn *c = &st->conns[st->evq[st->evq_head]];
        st->evq_head = (st->evq_head + 1) % st->p.max_conns;
        st->evq_len--;
        c->in_evq = 0;
        unsigned ev = c->events;
        c->events = 0;
        tcp_handle_t h = tcp_conn_handle(st, c);

        if ((ev & TCP_EV_ACCEPTED) && !c->user_closed) {
            c->announced = 1;
            int r = o->accepted ? o->accepted(st->ctx, c->listener | TCP_LISTENER_BIT |
                                              (uint32_t)st->listeners[c->listener].gen
                                                  << TCP_HANDLE_IDX_BITS,
                                              h, c->user)
                                : 0;
            if (r < 0 && !c->user_closed && !c->zombie) {
                c->user_closed = 1;
                tcp_send_rst_conn(st, c, c->last_activity);
                tcp_conn_closed(st, c, TCP_CLOSE_ABORTED);
            }
        }
        if ((ev & TCP_EV_CONNECTED) && !c->user_closed && o->connected)
            o->connected(st->ctx, h, c->user);
        if ((ev & TCP_EV_READABLE) && c->announced && !c->user_closed && o->readable)
            o->readable(st->ctx, h, c->user);
        if ((ev & TCP_EV_WRITABLE) && c->announced && !c->user_closed && o->writable)
            o->writable(st->ctx, h, c->user);
        if ((ev & TCP_EV_PEER_CLOSED) && c->announced && !c->user_closed && o->peer_closed)
            o->peer_closed(st->ctx, h, c->user);
        /* A normal end waits until the upper layer has consumed every
         * received byte (tcp_recv_consume re-queues the event), so that
         * closed() never takes readable data away with the handle. */
        bool tell = c->announced && !c->user_closed;
        bool normal = !c->zombie || c->close_reason == TCP_CLOSE_NORMAL;
        if ((ev & TCP_EV_CLOSED) && tell && normal && c->rb_len) {
            c->close_deferred = 1;
            continue;
        }
        if ((ev & TCP_EV_CLOSED) && !c->zombie) {
            /* entered TIME_WAIT: the upper layer is done with it; the
             * stack keeps the entry until the timer ends */
            c->user_closed = 1;
            if (tell && o->closed)
                o->closed(st->ctx, h, c->user, TCP_CLOSE_NORMAL);
        }
        if (c->zombie && !c->in_evq) {
            c->user_closed = 1; /* handle invalid from here on */
            if (tell && o->closed)
                o->closed(st->ctx, h, c->user, (enum tcp_close_reason)c->close_reason);
            if (!c->in_evq)
                tcp_conn_free(st, c);
        }
    }
    st->dispatching = false;
}

/* --- batches (tcp.h) ----------------------------------------------------- */

void tcp_batch_begin(struct tcp_stack *st)
{
    st->batch = true;
    st->cork = true;
}

bool tcp_batch_enlist(struct tcp_stack *st, struct tcp_conn *c)
{
    if (c->ack_batch || c->out_batch)
        return true;
    if (st->ackq_len == st->p.max_conns)
        return false;
    st->ackq[st->ackq_len++] = tcp_conn_idx(st, c);
    return true;
}

void tcp_output_or_cork(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (st->cork && tcp_batch_enlist(st, c)) {
        c->out_batch = 1;
        return;
    }
    tcp_output(st, c, now);
}

void tcp_ack_or_queue(struct tcp_stack *st, struct tcp_conn *c, uint64_t now)
{
    if (st->cork && tcp_batch_enlist(st, c)) {
        c->ack_batch = 1;
        return;
    }
    tcp_send_ack(st, c, now);
}

void tcp_batch_end(struct tcp_stack *st, uint64_t now)
{
    st->batch = false;
    tcp_dispatch(st); /* still corked: what the events write queues */
    st->cork = false;
    /* After the upper layer consumed and wrote what it could: one output
     * per connection, full segments, the ACK (with the window left) on the
     * data or alone. */
    for (uint32_t i = 0; i < st->ackq_len; i++) {
        struct tcp_conn *c = &st->conns[st->ackq[i]];
        if (!c->ack_batch && !c->out_batch)
            continue;
        bool ack = c->ack_batch;
        c->ack_batch = 0;
        c->out_batch = 0;
        if (!c->in_use || c->zombie || c->state == TCP_STATE_SYN_SENT ||
            c->state == TCP_STATE_CLOSED)
            continue;
        tcp_output(st, c, now);
        if (ack && (c->last_ack_sent != c->rcv_nxt || tcp_window_update_due(st, c)))
            tcp_send_ack(st, c, now);
    }
    st->ackq_len = 0;
    tcp_dispatch(st);
}

void tcp_dispatch_now(struct tcp_stack *st)
{
    bool batch = st->batch;
    st->batch = false;
    tcp_dispatch(st);
    st->batch = batch;
}
