/* Telemetry commands. They run on DPDK's telemetry thread and only read the
 * workers' published stats (relaxed atomic loads pairing with
 * worker_publish_stats' relaxed stores: tear-free values, no ordering). The
 * worker table is set once before workers start: it is the only
 * process-wide state and is never written afterwards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_mempool.h>
#include <rte_telemetry.h>

#include "dataplane/net/net.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tls/tls_worker.h"
#include "telemetry.h"

static struct worker **tel_workers;
static unsigned tel_n;

static const char *const wk_names[] = {
#define WK_CTR(name, help) #name,
#include "worker_counters.def"
#undef WK_CTR
};

#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Adds (sum over the chosen workers) every counter to d. */
static void tel_fill(struct rte_tel_data *d, unsigned first, unsigned last)
{
    char name[96];
    for (unsigned i = 0; i < NET_CTR_MAX; i++) {
        uint64_t v = 0;
        for (unsigned w = first; w <= last; w++)
            v += LD(tel_workers[w]->stats.net[i]);
        rte_tel_data_add_dict_u64(d, net_ctr_name(i), v);
    }
    for (unsigned i = 0; i < WK_CTR_MAX; i++) {
        uint64_t v = 0;
        for (unsigned w = first; w <= last; w++)
            v += LD(tel_workers[w]->stats.wk[i]);
        rte_tel_data_add_dict_u64(d, wk_names[i], v);
    }
    for (unsigned i = 0; i < TCP_CNT_MAX; i++) {
        uint64_t v = 0;
        for (unsigned w = first; w <= last; w++)
            v += LD(tel_workers[w]->stats.tcp[i]);
        snprintf(name, sizeof(name), "tcp_%s", tcp_counter_name(i));
        rte_tel_data_add_dict_u64(d, name, v);
    }
    for (unsigned i = 0; i < PROXY_CTR_MAX; i++) {
        uint64_t v = 0;
        for (unsigned w = first; w <= last; w++)
            v += LD(tel_workers[w]->stats.proxy[i]);
        snprintf(name, sizeof(name), "proxy_%s", proxy_counter_name(i));
        rte_tel_data_add_dict_u64(d, name, v);
    }
    for (unsigned i = 0; i < TLS_CTR_MAX; i++) {
        uint64_t v = 0;
        for (unsigned w = first; w <= last; w++)
            v += LD(tel_workers[w]->stats.tls[i]);
        snprintf(name, sizeof(name), "tls_%s", tls_counter_name(i));
        rte_tel_data_add_dict_u64(d, name, v);
    }
    for (unsigned i = 0; i < TLS_STREAM_CTR_MAX; i++) {
        uint64_t v = 0;
        for (unsigned w = first; w <= last; w++)
            v += LD(tel_workers[w]->stats.tls_stream[i]);
        snprintf(name, sizeof(name), "tls_stream_%s", tls_stream_counter_name(i));
        rte_tel_data_add_dict_u64(d, name, v);
    }
    uint64_t busy = 0, idle = 0, loops = 0, conns = 0, pairs = 0, tls_conns = 0;
    for (unsigned w = first; w <= last; w++) {
        busy += LD(tel_workers[w]->stats.busy_cycles);
        idle += LD(tel_workers[w]->stats.idle_cycles);
        loops += LD(tel_workers[w]->stats.loops);
        conns += LD(tel_workers[w]->stats.conns);
        pairs += LD(tel_workers[w]->stats.pairs);
        tls_conns += LD(tel_workers[w]->stats.tls_conns);
    }
    rte_tel_data_add_dict_u64(d, "busy_cycles", busy);
    rte_tel_data_add_dict_u64(d, "idle_cycles", idle);
    rte_tel_data_add_dict_u64(d, "loops", loops);
    rte_tel_data_add_dict_u64(d, "tcp_conns", conns);
    rte_tel_data_add_dict_u64(d, "proxy_pairs", pairs);
    rte_tel_data_add_dict_u64(d, "tls_conns", tls_conns);
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
    return rc;
}
