/* Active health checks: one probe at a time per server, started on the
 * server's schedule, ended by success, failure or timeout. A probe's
 * connection is always aborted (RST) once the verdict is in: the checker's
 * core then keeps no TIME_WAIT entries in the connection table it shares
 * with the proxy, and the server frees the connection at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/tcp/tcp.h"
#include "health.h"
#include "pool.h"

enum probe_state {
    PROBE_IDLE = 0,
    PROBE_CONNECTING,
    PROBE_READING, /* connected, waiting for the expected bytes */
};

struct health_target {
    const struct health_check_cfg *cfg;
    struct pool_health *ph;
    unsigned idx; /* server index in ph */
    uint32_t addr;
    uint16_t port;
    uint8_t state;
    tcp_handle_t h;
    uint64_t next_at;  /* next probe's start */
    uint64_t deadline; /* running probe's end */
    size_t got;
    uint8_t rx[HEALTH_EXPECT_MAX];
};

struct health {
    struct tcp_stack *st;
    uint32_t local_addr;
    unsigned n;
    struct health_target t[HEALTH_MAX_TARGETS];
    uint64_t ctr[HEALTH_CTR_MAX];
};

static const char *const health_ctr_names[] = {
#define HEALTH_CTR_NAME(name, help) #name,
    HEALTH_COUNTERS(HEALTH_CTR_NAME)
#undef HEALTH_CTR_NAME
};

struct health *health_create(struct tcp_stack *st, uint32_t local_addr,
                             char *err, size_t errlen)
{
    if (st == NULL) {
        snprintf(err, errlen, "health: no TCP stack");
        return NULL;
    }
    struct health *hc = calloc(1, sizeof(*hc));
    if (hc == NULL) {
        snprintf(err, errlen, "health: out of memory");
        return NULL;
    }
    hc->st = st;
    hc->local_addr = local_addr;
    return hc;
}

void health_destroy(struct health *hc)
{
    if (hc == NULL)
        return;
    for (unsigned i = 0; i < hc->n; i++)
        if (hc->t[i].state != PROBE_IDLE)
            tcp_abort(hc->st, hc->t[i].h);
    free(hc);
}

int health_add_pool(struct health *hc, const struct pool_cfg *pc,
                    const struct health_check_cfg *cfg,
                    struct pool_health *h, uint64_t now)
{
    if (cfg->interval_us == 0)
        return 0;
    if (cfg->timeout_us == 0 || cfg->timeout_us > cfg->interval_us ||
        cfg->expect_len > HEALTH_EXPECT_MAX ||
        (cfg->expect_len > 0 && cfg->expect == NULL) ||
        (cfg->send_len > 0 && cfg->send == NULL) ||
        h->n_servers != pc->n_servers)
        return -EINVAL;
    if (hc->n + pc->n_servers > HEALTH_MAX_TARGETS)
        return -ENOSPC;
    for (unsigned i = 0; i < pc->n_servers; i++) {
        struct health_target *t = &hc->t[hc->n++];
        memset(t, 0, sizeof(*t));
        t->cfg = cfg;
        t->ph = h;
        t->idx = i;
        t->addr = pc->servers[i].addr;
        t->port = pc->servers[i].port;
        t->h = TCP_HANDLE_INVALID;
        /* Spread the pool's probes over one interval: no burst of SYNs. */
        t->next_at = now + (uint64_t)cfg->interval_us * i / pc->n_servers;
    }
    return 0;
}

bool health_owns(const struct health *hc, const void *user)
{
    if (hc == NULL || user == NULL)
        return false;
    const char *u = user, *lo = (const char *)hc->t,
               *hi = (const char *)(hc->t + HEALTH_MAX_TARGETS);
    return u >= lo && u < hi;
}

/* Ends T's probe with verdict OK (counter C when it failed), aborting its
 * connection if the stack still has it. */
static void probe_end(struct health *hc, struct health_target *t, bool ok,
                      enum health_ctr c, bool conn_alive)
{
    if (conn_alive && t->h != TCP_HANDLE_INVALID)
        tcp_abort(hc->st, t->h);
    t->h = TCP_HANDLE_INVALID;
    t->state = PROBE_IDLE;
    t->got = 0;
    hc->ctr[ok ? HEALTH_CTR_ok : c]++;
    int r = pool_health_report(t->ph, t->idx, ok);
    if (r > 0)
        hc->ctr[HEALTH_CTR_went_up]++;
    else if (r < 0)
        hc->ctr[HEALTH_CTR_went_down]++;
}

static void probe_start(struct health *hc, struct health_target *t,
                        uint64_t now)
{
    /* Scheduled from the planned start, not from now: a slow loop does not
     * drift the period. Catch up without a burst after a long stall. */
    t->next_at += t->cfg->interval_us;
    if (t->next_at <= now)
        t->next_at = now + t->cfg->interval_us;
    int64_t h = tcp_connect(hc->st, hc->local_addr, t->addr, t->port, t, now);
    if (h < 0) {
        /* Our own shortage, not the server's fault: no verdict. */
        hc->ctr[HEALTH_CTR_not_started]++;
        return;
    }
    hc->ctr[HEALTH_CTR_probes]++;
    t->h = (tcp_handle_t)h;
    t->state = PROBE_CONNECTING;
    t->deadline = now + t->cfg->timeout_us;
    t->got = 0;
}

unsigned health_tick(struct health *hc, uint64_t now)
{
    unsigned done = 0;
    for (unsigned i = 0; i < hc->n; i++) {
        struct health_target *t = &hc->t[i];
        if (t->state != PROBE_IDLE) {
            if (now >= t->deadline) {
                probe_end(hc, t, false, HEALTH_CTR_failed_timeout, true);
                done++;
            }
            continue;
        }
        if (now >= t->next_at) {
            probe_start(hc, t, now);
            done++;
        }
    }
    return done;
}

void health_on_connected(struct health *hc, tcp_handle_t h, void *user,
                         uint64_t now)
{
    struct health_target *t = user;
    if (t->state != PROBE_CONNECTING || t->h != h)
        return;
    const struct health_check_cfg *c = t->cfg;
    if (c->send_len > 0) {
        /* A fresh connection's send buffer takes a short request whole;
         * anything less is a failure rather than a second code path. */
        ssize_t s = tcp_send(hc->st, h, c->send, c->send_len, now);
        if (s != (ssize_t)c->send_len) {
            probe_end(hc, t, false, HEALTH_CTR_failed_connect, true);
            return;
        }
    }
    if (c->expect_len == 0) {
        probe_end(hc, t, true, HEALTH_CTR_ok, true);
        return;
    }
    t->state = PROBE_READING;
    /* An answer that came with the handshake's last ACK is readable now. */
    health_on_readable(hc, h, user, now);
}

void health_on_readable(struct health *hc, tcp_handle_t h, void *user,
                        uint64_t now)
{
    struct health_target *t = user;
    if (t->state != PROBE_READING || t->h != h)
        return;
    const struct health_check_cfg *c = t->cfg;
    ssize_t n = tcp_recv(hc->st, h, t->rx + t->got, c->expect_len - t->got,
                         now);
    if (n == 0)
        return;
    if (n < 0) {
        /* End of stream before the whole answer, or a reset. */
        probe_end(hc, t, false, HEALTH_CTR_failed_connect, true);
        return;
    }
    t->got += (size_t)n;
    if (memcmp(t->rx, c->expect, t->got) != 0) {
        probe_end(hc, t, false, HEALTH_CTR_failed_expect, true);
        return;
    }
    if (t->got == c->expect_len)
        probe_end(hc, t, true, HEALTH_CTR_ok, true);
}

void health_on_closed(struct health *hc, tcp_handle_t h, void *user,
                      enum tcp_close_reason reason)
{
    struct health_target *t = user;
    (void)reason;
    if (t->state == PROBE_IDLE || t->h != h)
        return;
    /* Refused (RST to our SYN), reset, or closed before a verdict. */
    probe_end(hc, t, false, HEALTH_CTR_failed_connect, false);
}

uint64_t health_counter(const struct health *hc, unsigned c)
{
    return c < HEALTH_CTR_MAX ? hc->ctr[c] : 0;
}

const char *health_counter_name(unsigned c)
{
    return c < HEALTH_CTR_MAX ? health_ctr_names[c] : NULL;
}
