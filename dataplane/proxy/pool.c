/* Backend pools. Per-core state plus the shared struct pool_health: picking
 * a server reads one shared health byte per server looked at (written by
 * the checker once per state change) and, with least-conn or max_conns,
 * the shared connection counts; a pick and a release each make one atomic
 * add on the chosen server's count (a connection, never a packet). */
#include <errno.h>
#include <string.h>

#include "pool.h"

static const char *const pool_ctr_names[] = {
#define POOL_CTR_NAME(name, help) #name,
    POOL_COUNTERS(POOL_CTR_NAME)
#undef POOL_CTR_NAME
};

int pool_init(struct pool *p, const struct pool_cfg *cfg,
              struct pool_health *h)
{
    if (cfg->n_servers == 0 || cfg->n_servers > POOL_MAX_SERVERS)
        return -EINVAL;
    if (h != NULL && h->n_servers != cfg->n_servers)
        return -EINVAL;
    for (unsigned i = 0; i < cfg->n_servers; i++)
        if (cfg->servers[i].port == 0)
            return -EINVAL;
    memset(p, 0, sizeof(*p));
    p->cfg = *cfg;
    p->health = h;
    return 0;
}

bool pool_server_up(const struct pool *p, unsigned i)
{
    return p->health == NULL || pool_health_up(p->health, i);
}

/* Server I's connections: over every core when the pool shares a struct
 * pool_health, else this core's. */
static uint32_t pool_conns(const struct pool *p, unsigned i)
{
    if (p->health == NULL)
        return p->conns[i];
    return atomic_load_explicit(&p->health->conns[i].n, memory_order_relaxed);
}

/* Takes a slot on server I for this connection; false when max_conns is
 * reached. Shared counts: the add itself decides, so two cores cannot both
 * take the last slot. */
static bool pool_take(struct pool *p, unsigned i)
{
    if (p->health == NULL)
        return p->cfg.max_conns == 0 || p->conns[i] < p->cfg.max_conns;
    uint32_t before = atomic_fetch_add_explicit(&p->health->conns[i].n, 1,
                                                memory_order_relaxed);
    if (p->cfg.max_conns != 0 && before >= p->cfg.max_conns) {
        atomic_fetch_sub_explicit(&p->health->conns[i].n, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

/* One scan from the cursor: the server to try (n if none has room), and
 * whether any is up. */
static unsigned pool_scan(const struct pool *p, bool *any_up)
{
    unsigned n = p->cfg.n_servers, best = n, i = p->cursor;
    uint32_t best_conns = 0;
    /* Wrap by compare, not %: a division per server was most of a
     * 64-server least-conn pick. */
    for (unsigned k = 0; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        if (!pool_server_up(p, i))
            continue;
        *any_up = true;
        uint32_t c = pool_conns(p, i);
        if (p->cfg.max_conns != 0 && c >= p->cfg.max_conns)
            continue;
        if (p->cfg.balance == POOL_ROUND_ROBIN)
            return i;
        /* Strictly fewer: among equals the first after the cursor wins. */
        if (best == n || c < best_conns) {
            best = i;
            best_conns = c;
        }
    }
    return best;
}

int pool_get(struct pool *p)
{
    unsigned n = p->cfg.n_servers, best = n;
    bool any_up = false;
    /* Another core may take the last slot of the server chosen between
     * the scan and the add: scan again (bounded; then refuse as full). */
    for (unsigned tries = 0; tries < 4 && best == n; tries++) {
        best = pool_scan(p, &any_up);
        if (best == n)
            break;
        if (!pool_take(p, best))
            best = n;
    }
    if (best == n) {
        if (any_up)
            p->ctr[POOL_CTR_refused_full]++;
        else
            p->ctr[POOL_CTR_refused_down]++;
        return any_up ? -EBUSY : -EHOSTUNREACH;
    }
    p->cursor = (best + 1) % n;
    p->conns[best]++;
    p->picks[best]++;
    p->ctr[POOL_CTR_picked]++;
    return (int)best;
}

void pool_put(struct pool *p, unsigned i)
{
    if (i >= p->cfg.n_servers || p->conns[i] == 0)
        return; /* not this core's connection: the shared count stays */
    p->conns[i]--;
    if (p->health != NULL)
        atomic_fetch_sub_explicit(&p->health->conns[i].n, 1, memory_order_relaxed);
}

uint64_t pool_counter(const struct pool *p, unsigned c)
{
    return c < POOL_CTR_MAX ? p->ctr[c] : 0;
}

const char *pool_counter_name(unsigned c)
{
    return c < POOL_CTR_MAX ? pool_ctr_names[c] : NULL;
}

int pool_health_init(struct pool_health *h, unsigned n, unsigned rise,
                     unsigned fall)
{
    if (n == 0 || n > POOL_MAX_SERVERS)
        return -EINVAL;
    memset(h, 0, sizeof(*h));
    h->n_servers = (uint16_t)n;
    h->rise = (uint8_t)(rise == 0 ? 1 : rise > 255 ? 255 : rise);
    h->fall = (uint8_t)(fall == 0 ? 1 : fall > 255 ? 255 : fall);
    for (unsigned i = 0; i < n; i++)
        atomic_store_explicit(&h->up[i], 1, memory_order_relaxed);
    return 0;
}

int pool_health_report(struct pool_health *h, unsigned i, bool ok)
{
    if (i >= h->n_servers)
        return 0;
    /* Only this thread writes up[i]: a relaxed load of our own store. */
    bool up = atomic_load_explicit(&h->up[i], memory_order_relaxed) != 0;
    if (ok) {
        h->streak_fail[i] = 0;
        if (h->streak_ok[i] < 255)
            h->streak_ok[i]++;
        if (up || h->streak_ok[i] < h->rise)
            return 0;
    } else {
        h->streak_ok[i] = 0;
        if (h->streak_fail[i] < 255)
            h->streak_fail[i]++;
        if (!up || h->streak_fail[i] < h->fall)
            return 0;
    }
    /* Pairs with the acquire load in pool_health_up. */
    atomic_store_explicit(&h->up[i], ok ? 1 : 0, memory_order_release);
    atomic_fetch_add_explicit(&h->transitions[i], 1, memory_order_release);
    return ok ? 1 : -1;
}

bool pool_health_up(const struct pool_health *h, unsigned i)
{
    /* Pairs with the release store in pool_health_report. */
    return i < h->n_servers &&
           atomic_load_explicit(&h->up[i], memory_order_acquire) != 0;
}
