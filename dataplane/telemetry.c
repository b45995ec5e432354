/* Telemetry commands. They run on DPDK's telemetry thread and only read the
 * workers' published stats (relaxed atomic loads pairing with
 * worker_publish_stats' relaxed stores: tear-free values, no ordering). The
 * worker table is set once before workers start: it is the only
 * process-wide state and is never written afterwards. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "dataplane/net/net.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/tcp/tcp.h"
#include "control/config-t.h"
#include "dataplane/proxy/pool-t.h"
#include "dataplane/tls/tls_worker.h"
#include "dp_config.h"
#include "telemetry.h"

static struct worker **tel_workers;
static unsigned tel_n;
static const struct dp_config *tel_dc;

static const char *const wk_names[] = {
#define WK_CTR(name, help) #name,
#include "worker_counters.def"
#undef WK_CTR
};

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static const char *wk_name(unsigned i)
{
    return wk_names[i];
}

/* The sum over workers FIRST..LAST of the counter at byte offset OFF in
 * struct worker_stats. */
static uint64_t tel_sum(unsigned first, unsigned last, size_t off)
{
    uint64_t v = 0;
    for (unsigned w = first; w <= last; w++)
        v += LD(*(const uint64_t *)((const char *)&tel_workers[w]->stats + off));
    return v;
}

/* The counter arrays of struct worker_stats, each with its names. */
static const struct tel_group {
    size_t off;
    unsigned n;
    const char *(*name)(unsigned i);
    const char *prefix;
} tel_groups[] = {
    {offsetof(struct worker_stats, net), NET_CTR_MAX, net_ctr_name, ""},
    {offsetof(struct worker_stats, wk), WK_CTR_MAX, wk_name, ""},
    {offsetof(struct worker_stats, tcp), TCP_CNT_MAX, tcp_counter_name, "tcp_"},
    {offsetof(struct worker_stats, proxy), PROXY_CTR_MAX, proxy_counter_name, "proxy_"},
    {offsetof(struct worker_stats, tls), TLS_CTR_MAX, tls_counter_name, "tls_"},
    {offsetof(struct worker_stats, tls_stream), TLS_STREAM_CTR_MAX, tls_stream_counter_name,
     "tls_stream_"},
};

/* The single counters, under the names tools already read. */
static const struct tel_scalar {
    size_t off;
    const char *name;
} tel_scalars[] = {
    {offsetof(struct worker_stats, busy_cycles), "busy_cycles"},
    {offsetof(struct worker_stats, idle_cycles), "idle_cycles"},
    {offsetof(struct worker_stats, loops), "loops"},
    {offsetof(struct worker_stats, conns), "tcp_conns"},
    {offsetof(struct worker_stats, pairs), "proxy_pairs"},
    {offsetof(struct worker_stats, tls_conns), "tls_conns"},
};

/* Adds (sum over the chosen workers) every counter to d. */
static void tel_fill(struct rte_tel_data *d, unsigned first, unsigned last)
{
    char name[96];
    for (size_t g = 0; g < sizeof(tel_groups) / sizeof(tel_groups[0]); g++) {
        const struct tel_group *tg = &tel_groups[g];
        for (unsigned i = 0; i < tg->n; i++) {
            snprintf(name, sizeof(name), "%s%s", tg->prefix, tg->name(i));
            rte_tel_data_add_dict_u64(d, name,
                                      tel_sum(first, last, tg->off + i * sizeof(uint64_t)));
        }
    }
    for (size_t k = 0; k < sizeof(tel_scalars) / sizeof(tel_scalars[0]); k++)
        rte_tel_data_add_dict_u64(d, tel_scalars[k].name,
                                  tel_sum(first, last, tel_scalars[k].off));
}

static int tel_stats(const char *cmd, const char *params,
                     struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "workers", tel_n);
    rte_tel_data_add_dict_u64(d, "tsc_hz", tel_workers[0]->tsc_hz);
    tel_fill(d, 0, tel_n - 1);
    return 0;
}

static int tel_core(const char *cmd, const char *params, struct rte_tel_data *d)
{
    (void)cmd;
    if (params == NULL || *params == '\0')
        return -EINVAL;
    char *end;
    unsigned long id = strtoul(params, &end, 10);
    if (*end != '\0' || id >= tel_n)
        return -EINVAL;
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "core", id);
    rte_tel_data_add_dict_u64(d, "tsc_hz", tel_workers[id]->tsc_hz);
    /* Reads the pool's ring and per-lcore caches without locks: an
     * estimate, good enough to spot a leak or an undersized pool. */
    rte_tel_data_add_dict_u64(d, "mbufs_in_use",
                              rte_mempool_in_use_count(tel_workers[id]->pool));
    tel_fill(d, (unsigned)id, (unsigned)id);
    return 0;
}

void dp_telemetry_set_pools(const struct dp_config *dc)
{
    tel_dc = dc;
}

/* Telemetry names allow only [A-Za-z0-9_/]: anything else becomes '_'. */
static void tel_name(char *out, size_t cap, const char *in)
{
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < cap; i++) {
        char ch = in[i];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '/';
        out[i] = ok ? ch : '_';
    }
    out[i] = '\0';
}

/* One flat dict (telemetry names cannot hold '.', ':' or '-'):
 *   "<pool>/<host>_<port>"          "up", "down" or "not checked"
 *   "<pool>/<host>_<port>/changes"  state changes so far
 * with every character outside [A-Za-z0-9_/] turned into '_'. The verdicts
 * are the health checker's release stores (pool-t.h); a relaxed load is
 * enough for a report. */
static int tel_backends(const char *cmd, const char *params,
                        struct rte_tel_data *d)
{
    (void)cmd;
    (void)params;
    rte_tel_data_start_dict(d);
    if (tel_dc == NULL || tel_dc->cfg == NULL || tel_dc->pool_health == NULL)
        return 0;
    const struct config *cfg = tel_dc->cfg;
    for (size_t p = 0; p < cfg->n_pools; p++) {
        const struct config_pool *pool = &cfg->pools[p];
        const struct pool_health *ph = &tel_dc->pool_health[p];
        for (size_t s = 0; s < pool->n_servers && s < POOL_MAX_SERVERS; s++) {
            char raw[RTE_TEL_MAX_STRING_LEN], key[RTE_TEL_MAX_STRING_LEN];
            snprintf(raw, sizeof(raw), "%s/%s_%u", pool->name,
                     pool->servers[s].host, (unsigned)pool->servers[s].port);
            tel_name(key, sizeof(key) - 8, raw); /* room for "/changes" */
            const char *v = "not checked";
            if (pool->health_interval_ms != 0 && s < ph->n_servers)
                v = atomic_load_explicit(&ph->up[s], memory_order_relaxed) ? "up"
                                                                           : "down";
            rte_tel_data_add_dict_string(d, key, v);
            strcat(key, "/changes");
            uint32_t changes = s < ph->n_servers
                ? atomic_load_explicit(&ph->transitions[s], memory_order_relaxed)
                : 0;
            rte_tel_data_add_dict_u64(d, key, changes);
        }
    }
    return 0;
}

int dp_telemetry_init(struct worker **workers, unsigned n)
{
    if (n == 0)
        return -EINVAL;
    tel_workers = workers;
    tel_n = n;
    int rc = rte_telemetry_register_cmd("/tern/stats", tel_stats,
            "tern totals over all workers: counters, busy/idle TSC cycles");
    if (rc == 0)
        rc = rte_telemetry_register_cmd("/tern/core", tel_core,
            "one worker's counters and cycles. Parameter: worker index");
    if (rc == 0)
        rc = rte_telemetry_register_cmd("/tern/backends", tel_backends,
            "backend servers by pool: up, down or not checked, and state changes");
    return rc;
}
