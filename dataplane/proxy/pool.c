/* Backend pools. Per-core state, read-only shared health: picking a server
 * touches only this core's cache lines plus one shared byte per server
 * looked at, which the checker writes once per state change. */
#include <errno.h>
#include <string.h>

#include "pool.h"

static const char *const pool_ctr_names[] = {
#define POOL_CTR_NAME(name, help) #name,
    POOL_COUNTERS(POOL_CTR_NAME)
#undef POOL_CTR_NAME
};

int pool_init(struct pool *p, const struct pool_cfg *cfg,
              const struct pool_health *h)
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

int pool_get(struct pool *p)
{
    unsigned n = p->cfg.n_servers, best = n, i = p->cursor;
    bool any_up = false;
    /* Wrap by compare, not %: a division per server was most of a
     * 64-server least-conn pick. */
    for (unsigned k = 0; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
        if (!pool_server_up(p, i))
            continue;
        any_up = true;
        if (p->cfg.max_conns != 0 && p->conns[i] >= p->cfg.max_conns)
            continue;
        if (p->cfg.balance == POOL_ROUND_ROBIN) {
            best = i;
            break;
        }
        /* Strictly fewer: among equals the first after the cursor wins. */
        if (best == n || p->conns[i] < p->conns[best])
            best = i;
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
    if (i < p->cfg.n_servers && p->conns[i] > 0)
        p->conns[i]--;
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
