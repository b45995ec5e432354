/* Port set-up for any ethdev: net_af_xdp (one vdev per queue on veth),
 * net_af_packet, net_tap, net_memif, and PCI NICs under vfio-pci. Only
 * generic ethdev calls, so a driver is picked by EAL arguments alone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>

#include "port.h"

#define PORT_POOL_CACHE 256 /* mbufs cached per lcore */

int port_setup(uint16_t port_id, uint16_t n_queues, struct rte_mempool **pools,
               uint16_t rx_desc, uint16_t tx_desc, uint16_t mtu,
               struct port_caps *caps, char *err, size_t errlen)
{
    struct rte_eth_dev_info info;
    struct rte_eth_conf conf;
    int rc = rte_eth_dev_info_get(port_id, &info);
    if (rc != 0) {
        snprintf(err, errlen, "port %u: dev_info: %s", port_id, strerror(-rc));
        return rc;
    }
    if (n_queues > info.max_rx_queues || n_queues > info.max_tx_queues) {
        snprintf(err, errlen,
                 "port %u (%s): %u queue pairs wanted, device has %u rx / %u tx "
                 "(give one vdev per queue, or fewer lcores)",
                 port_id, info.driver_name, n_queues, info.max_rx_queues,
                 info.max_tx_queues);
        return -EINVAL;
    }
    memset(&conf, 0, sizeof(conf));
    memset(caps, 0, sizeof(*caps));
    /* Offload only what the device has: AF_XDP on veth has none and we
     * compute checksums in software there. */
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) {
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
        caps->tx_ip_csum = true;
    }
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM)
        caps->tx_tcp_csum = true; /* reported; not used yet (see tcp_glue.c) */
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    rc = rte_eth_dev_configure(port_id, n_queues, n_queues, &conf);
    if (rc != 0) {
        snprintf(err, errlen, "port %u: configure: %s", port_id, strerror(-rc));
        return rc;
    }
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
    if (rc != 0) {
        snprintf(err, errlen, "port %u: descriptors: %s", port_id, strerror(-rc));
        return rc;
    }
    int socket = rte_eth_dev_socket_id(port_id);
    if (socket < 0)
        socket = 0;
    for (uint16_t q = 0; q < n_queues; q++) {
        struct rte_eth_txconf txc = info.default_txconf;
        txc.offloads = conf.txmode.offloads;
        rc = rte_eth_rx_queue_setup(port_id, q, rx_desc, (unsigned)socket, NULL,
                                    pools[q]);
        if (rc == 0)
            rc = rte_eth_tx_queue_setup(port_id, q, tx_desc, (unsigned)socket,
                                        &txc);
        if (rc != 0) {
            snprintf(err, errlen, "port %u queue %u: setup: %s", port_id, q,
                     strerror(-rc));
            return rc;
        }
    }
    rc = rte_eth_dev_set_mtu(port_id, mtu);
    if (rc != 0 && rc != -ENOTSUP)
        fprintf(stderr, "tern: port %u: cannot set MTU %u (%s), keeping the "
                "device's\n", port_id, mtu, strerror(-rc));
    rc = rte_eth_dev_start(port_id);
    if (rc != 0) {
        snprintf(err, errlen, "port %u: start: %s", port_id, strerror(-rc));
        return rc;
    }
    return 0;
}

bool port_any_af_xdp(void)
{
    uint16_t pid;
    RTE_ETH_FOREACH_DEV(pid) {
        struct rte_eth_dev_info info;
        if (rte_eth_dev_info_get(pid, &info) == 0 && info.driver_name != NULL &&
            strcmp(info.driver_name, "net_af_xdp") == 0)
            return true;
    }
    return false;
}

struct rte_mempool *port_mbuf_pool(const char *name, unsigned n, int socket,
                                   bool dense)
{
    if (!dense)
        return rte_pktmbuf_pool_create(name, n, PORT_POOL_CACHE, 0,
                                       RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    /* rte_pktmbuf_pool_create's steps, with the flag it does not take. */
    struct rte_pktmbuf_pool_private priv = {
        .mbuf_data_room_size = RTE_MBUF_DEFAULT_BUF_SIZE,
        .mbuf_priv_size = 0,
    };
    struct rte_mempool *mp = rte_mempool_create_empty(
        name, n, sizeof(struct rte_mbuf) + RTE_MBUF_DEFAULT_BUF_SIZE,
        PORT_POOL_CACHE, sizeof(priv), socket, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
    if (mp == NULL)
        return NULL;
    int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
    if (rc != 0) {
        rte_mempool_free(mp);
        rte_errno = -rc;
        return NULL;
    }
    rte_pktmbuf_pool_init(mp, &priv);
    rc = rte_mempool_populate_default(mp);
    if (rc < 0 || mp->populated_size != n) {
        rte_mempool_free(mp);
        rte_errno = rc < 0 ? -rc : ENOMEM;
        return NULL;
    }
    rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
    return mp;
}

struct umem_span {
    uintptr_t lo, hi;
    size_t header, tail;
    bool fits;
};

static void umem_check_obj(struct rte_mempool *mp, void *arg, void *obj,
                           unsigned idx)
{
    struct umem_span *u = arg;
    (void)mp;
    (void)idx;
    uintptr_t start = (uintptr_t)obj - u->header;
    uintptr_t end = (uintptr_t)obj + u->tail;
    if (start < u->lo || end > u->hi)
        u->fits = false;
}

bool port_pool_fits_umem(struct rte_mempool *mp)
{
    struct rte_mempool_memhdr *first = STAILQ_FIRST(&mp->mem_list);
    if (first == NULL)
        return false;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t addr = (uintptr_t)first->addr;
    struct umem_span u = {
        .lo = addr & ~(page - 1),
        .header = mp->header_size,
        .tail = (size_t)mp->elt_size + mp->trailer_size,
        .fits = true,
    };
    /* What the PMD (22.11, xdp_umem_configure) registers. */
    u.hi = addr + (uintptr_t)mp->populated_size *
                      rte_mempool_calc_obj_size(mp->elt_size, mp->flags, NULL);
    rte_mempool_obj_iter(mp, umem_check_obj, &u);
    return u.fits;
}

void port_teardown(uint16_t port_id)
{
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
}
