/* Port set-up for any ethdev: net_af_xdp (one vdev per queue on veth),
 * net_af_packet, net_tap, net_memif, and PCI NICs under vfio-pci. Only
 * generic ethdev calls, so a driver is picked by EAL arguments alone. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "port.h"

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

void port_teardown(uint16_t port_id)
{
    rte_eth_dev_stop(port_id);
    rte_eth_dev_close(port_id);
}
