/* tern-dataplane: EAL, ports, one worker per lcore, telemetry.
 *
 *   tern-dataplane [EAL args] -- --addr 198.18.0.1/24 --listen 198.18.0.1:80 \
 *       --backend 198.18.1.2:8080 [options]
 *
 * Every lcore (main included) runs a worker. Queues: with one port, worker
 * i polls queue i of it; with as many ports as workers (one AF_XDP vdev per
 * queue of the same interface), worker i polls port i, queue 0. Everything
 * is allocated here, before the workers start. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_random.h>
#include <rte_ring.h>

#include "args.h"
#include "dataplane/tcp/tcp.h"
#include "dp_config.h"
#include "dp_tls.h"
#include "port.h"
#include "steer.h"
#include "telemetry.h"
#include "worker.h"

/* Set by the signal handler, read by every worker: the one mutable
 * process-wide variable, and it is written only to stop. */
static volatile int dp_stop;

static void dp_on_signal(int sig)
{
    (void)sig;
    __atomic_store_n(&dp_stop, 1, __ATOMIC_RELAXED);
}

struct dp {
    struct dp_args args;
    struct net_iface ifc;
    struct steer_cfg steer;
    unsigned n_workers;
    uint16_t n_ports;
    struct worker *workers[STEER_MAX_WORKERS];
    struct rte_ring *rings[STEER_MAX_WORKERS][STEER_MAX_WORKERS];
    struct dp_config dc; /* --config: TLS listeners (dp_config.h) */
    struct dp_tls tls;
};

static int dp_lcore_main(void *arg)
{
    struct dp *dp = arg;
    int idx = rte_lcore_index((int)rte_lcore_id());
    if (idx < 0 || (unsigned)idx >= dp->n_workers)
        return 0;
    return worker_run(dp->workers[idx]);
}

/* The TCP stacks' TSval base (tcp-t.h, ts_base_ms): the system's monotonic
 * clock in ms, which a restart of this process does not set back, plus a
 * constant of this boot (a hash of its boot_id) so that peers do not read
 * the machine's uptime off our timestamps. */
static uint32_t dp_ts_base_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint32_t ms = (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
    uint32_t h = 2166136261u; /* FNV-1a of boot_id; 0 if unreadable */
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f != NULL) {
        for (int ch; (ch = fgetc(f)) != EOF && ch != '\n';)
            h = (h ^ (uint8_t)ch) * 16777619u;
        fclose(f);
    } else {
        h = 0;
    }
    return ms + h;
}

static int dp_setup(struct dp *dp, char *err, size_t errlen)
{
    struct dp_args *a = &dp->args;
    dp->n_workers = rte_lcore_count();
    dp->n_ports = rte_eth_dev_count_avail();
    if (dp->n_workers > STEER_MAX_WORKERS) {
        snprintf(err, errlen, "at most %d lcores", STEER_MAX_WORKERS);
        return -EINVAL;
    }
    if (dp->n_ports == 0) {
        snprintf(err, errlen, "no Ethernet port: give a --vdev or bind a NIC");
        return -ENODEV;
    }
    if (dp->n_ports != 1 && dp->n_ports != dp->n_workers) {
        snprintf(err, errlen, "%u ports for %u lcores: give one port (with a "
                 "queue per lcore) or one port per lcore", dp->n_ports,
                 dp->n_workers);
        return -EINVAL;
    }
    struct rte_mempool *pools[STEER_MAX_WORKERS];
    bool dense = port_any_af_xdp();
    for (unsigned i = 0; i < dp->n_workers; i++) {
        char name[64]; /* i < 64: always fits RTE_MEMPOOL_NAMESIZE */
        snprintf(name, sizeof(name), "tern_mbuf_%u", i);
        pools[i] = port_mbuf_pool(name, a->mbufs_per_worker,
                                  (int)rte_socket_id(), dense);
        if (pools[i] == NULL) {
            snprintf(err, errlen, "mbuf pool %u (%u mbufs): %s", i,
                     a->mbufs_per_worker, rte_strerror(rte_errno));
            return -ENOMEM;
        }
        if (dense && !port_pool_fits_umem(pools[i])) {
            snprintf(err, errlen, "mbuf pool %u: objects outside the AF_XDP "
                     "UMEM; frames in them would be dropped by the kernel", i);
            return -EINVAL;
        }
    }
    struct port_caps caps = {.tx_ip_csum = true, .tx_tcp_csum = true};
    uint16_t port_ids[RTE_MAX_ETHPORTS];
    uint16_t np = 0, pid;
    RTE_ETH_FOREACH_DEV(pid) port_ids[np++] = pid;
    for (uint16_t p = 0; p < np; p++) {
        struct port_caps c;
        uint16_t nq = dp->n_ports == 1 ? (uint16_t)dp->n_workers : 1;
        int rc = port_setup(port_ids[p], nq, dp->n_ports == 1 ? pools : &pools[p],
                            a->rx_desc, a->tx_desc, a->mtu, &c, err, errlen);
        if (rc < 0)
            return rc;
        caps.tx_ip_csum &= c.tx_ip_csum;
        caps.tx_tcp_csum &= c.tx_tcp_csum;
    }
    struct rte_ether_addr mac;
    rte_eth_macaddr_get(port_ids[0], &mac);
    memcpy(dp->ifc.mac, mac.addr_bytes, NET_ETH_ALEN);
    dp->ifc.addr = a->addr;
    dp->ifc.mask = a->mask;
    dp->ifc.gateway = a->gateway;
    dp->ifc.mtu = a->mtu;
    dp->ifc.tx_ip_csum_offload = caps.tx_ip_csum;
    dp->ifc.tx_l4_csum_offload = false;

    /* Active opens use ports this core owns: port % n == core. */
    dp->steer.n_workers = (uint16_t)dp->n_workers;
    dp->steer.eport_min = 32768;
    dp->steer.eport_max = 60999;
    dp->steer.seed = (uint32_t)rte_rand();
    for (unsigned i = 0; i < a->n_listeners; i++)
        if (a->listeners[i].port >= dp->steer.eport_min &&
            a->listeners[i].port <= dp->steer.eport_max) {
            snprintf(err, errlen, "listener port %u is inside the active-open "
                     "port range %u-%u", a->listeners[i].port,
                     dp->steer.eport_min, dp->steer.eport_max);
            return -EINVAL;
        }

    for (unsigned i = 0; i < dp->n_workers; i++)
        for (unsigned j = 0; j < dp->n_workers; j++) {
            if (i == j)
                continue;
            char name[64]; /* i, j < 64: always fits RTE_RING_NAMESIZE */
            snprintf(name, sizeof(name), "tern_steer_%u_%u", i, j);
            dp->rings[i][j] = rte_ring_create(name, a->ring_size,
                                              (int)rte_socket_id(),
                                              RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (dp->rings[i][j] == NULL) {
                snprintf(err, errlen, "ring %s: %s", name,
                         rte_strerror(rte_errno));
                return -ENOMEM;
            }
        }

    struct tcp_stack_params tp;
    memset(&tp, 0, sizeof(tp));
    tp.max_conns = a->max_conns;
    tp.sndbuf = a->sndbuf;
    tp.rcvbuf = a->rcvbuf;
    tp.syn_backlog = a->syn_backlog;
    tp.mss = (uint16_t)(a->mtu - 40);
    tp.eport_min = dp->steer.eport_min;
    tp.eport_max = dp->steer.eport_max;
    tp.eport_stride = (uint16_t)dp->n_workers;
    for (unsigned k = 0; k < sizeof(tp.secret); k += 8) {
        uint64_t r = rte_rand();
        memcpy(tp.secret + k, &r, 8);
    }
    tp.eport_first = (uint16_t)(tp.eport_min + rte_rand_max((uint64_t)tp.eport_max - tp.eport_min + 1));
    tp.ts_base_ms = dp_ts_base_ms();
    struct proxy_params pp = {
        .max_pairs = a->max_pairs,
        .idle_timeout_us = a->idle_timeout_ms * 1000u,
        .local_addr = ntohl(a->addr),
    };
    if (a->config_path != NULL) {
        int rc = dp_tls_init(&dp->tls, &dp->dc, dp->n_workers, a->max_pairs,
                             err, errlen);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; i < dp->n_workers; i++) {
        struct worker *w = rte_zmalloc("tern_worker", sizeof(*w), 64);
        if (w == NULL) {
            snprintf(err, errlen, "worker %u: out of memory", i);
            return -ENOMEM;
        }
        dp->workers[i] = w;
        w->id = i;
        w->n_workers = dp->n_workers;
        w->port = dp->n_ports == 1 ? port_ids[0] : port_ids[i];
        w->queue = dp->n_ports == 1 ? (uint16_t)i : 0;
        w->pool = pools[i];
        w->steer = &dp->steer;
        w->stop = &dp_stop;
        w->fault.reorder_pct = a->fault_reorder_pct;
        w->fault.dup_pct = a->fault_dup_pct;
        w->idle_sleep_us = a->idle_sleep_us;
        for (unsigned j = 0; j < dp->n_workers; j++) {
            w->to[j] = dp->rings[i][j];
            w->from[j] = dp->rings[j][i];
        }
        tp.eport_offset = (uint16_t)i;
        /* Per worker: TLS listeners point at this core's filter. */
        struct proxy_listener_cfg ls[PROXY_MAX_LISTENERS];
        memcpy(ls, a->listeners, sizeof(ls));
        if (a->config_path != NULL)
            dp_tls_bind_worker(&dp->tls, w, ls);
        /* One core checks the backends for all (see health.h). */
        pp.health_checks = i == 0;
        int rc = worker_init(w, &dp->ifc, &tp, &pp, ls, a->n_listeners, err,
                             errlen);
        if (rc < 0)
            return rc;
        dp_tls_worker_ready(w);
    }
    if (a->config_path != NULL && dp_tls_start(&dp->tls) < 0) {
        snprintf(err, errlen, "cannot start the TLS housekeeping alarm");
        return -EIO;
    }
    dp_telemetry_set_pools(a->config_path != NULL ? &dp->dc : NULL);
    return dp_telemetry_init(dp->workers, dp->n_workers);
}

static void dp_teardown(struct dp *dp)
{
    for (unsigned i = 0; i < dp->n_workers; i++)
        if (dp->workers[i] != NULL) {
            worker_fini(dp->workers[i]);
            /* Workers stay allocated: the telemetry thread may still read
             * them until the EAL cleans up. */
        }
    dp_tls_fini(&dp->tls); /* after the proxies: no pair holds a TLS state */
    uint16_t pid;
    RTE_ETH_FOREACH_DEV(pid) port_teardown(pid);
}

int main(int argc, char **argv)
{
    static struct dp dp;
    char err[256] = "";

    int n = rte_eal_init(argc, argv);
    if (n < 0) {
        fprintf(stderr, "tern: EAL init failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    argc -= n;
    argv += n;
    if (dp_args_parse(argc, argv, &dp.args, err, sizeof(err)) < 0) {
        fprintf(stderr, "tern: %s\n", err);
        dp_args_usage("tern-dataplane");
        rte_eal_cleanup();
        return 2;
    }
    if (dp.args.config_path != NULL &&
        dp_config_load(dp.args.config_path, &dp.args, &dp.dc, err,
                       sizeof(err)) < 0) {
        fprintf(stderr, "tern: %s\n", err);
        rte_eal_cleanup();
        return 1;
    }
    signal(SIGINT, dp_on_signal);
    signal(SIGTERM, dp_on_signal);
    if (dp_setup(&dp, err, sizeof(err)) < 0) {
        fprintf(stderr, "tern: %s\n", err);
        dp_teardown(&dp);
        rte_eal_cleanup();
        return 1;
    }
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &dp.ifc.addr, ip, sizeof(ip));
    printf("tern-dataplane: %u workers, %u ports, %s, mac "
           "%02x:%02x:%02x:%02x:%02x:%02x, %u listeners: ready\n",
           dp.n_workers, dp.n_ports, ip, dp.ifc.mac[0], dp.ifc.mac[1],
           dp.ifc.mac[2], dp.ifc.mac[3], dp.ifc.mac[4], dp.ifc.mac[5],
           dp.args.n_listeners);
    fflush(stdout);
    rte_eal_mp_remote_launch(dp_lcore_main, &dp, CALL_MAIN);
    rte_eal_mp_wait_lcore();
    dp_teardown(&dp);
    dp_config_free(&dp.dc);
    rte_eal_cleanup();
    printf("tern-dataplane: stopped\n");
    return 0;
}
