/* Ethernet ports: configuration and start of the queues the workers poll.
 * Start-up only (main thread, before workers run). */
#ifndef TERN_PORT_H
#define TERN_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rte_mempool;

/* What a port can do that the layers above care about. */
struct port_caps {
    bool tx_ip_csum;  /* IPv4 header checksum offload enabled */
    bool tx_tcp_csum; /* TCP checksum offload available */
};

/* Configures port_id with n_queues rx/tx queue pairs, queue q receiving
 * into pools[q], and starts it. mtu is the IP MTU to set (ignored with a
 * warning where the driver cannot change it). Returns 0 or -errno with a
 * reason in err; *caps tells which offloads were enabled. */
int port_setup(uint16_t port_id, uint16_t n_queues, struct rte_mempool **pools,
               uint16_t rx_desc, uint16_t tx_desc, uint16_t mtu,
               struct port_caps *caps, char *err, size_t errlen);

/* True when some probed port is a net_af_xdp device: its UMEM must cover
 * the mbuf pool's memory, see port_mbuf_pool. */
bool port_any_af_xdp(void);

/* Creates a pool of N packet mbufs (default data room, per-lcore cache) on
 * SOCKET. DENSE packs the objects back to back even across page
 * boundaries: net_af_xdp registers the pool as one UMEM of exactly
 * N * object size bytes, and with 4 KiB pages (--no-huge) the default
 * layout, one object per page, would put four mbufs in ten outside it (the
 * kernel drops what they carry as invalid descriptors). Not for devices
 * that DMA by physical address. Returns the pool or NULL (rte_errno). */
struct rte_mempool *port_mbuf_pool(const char *name, unsigned n, int socket,
                                   bool dense);

/* True when every object of MP lies inside the UMEM net_af_xdp would
 * register for it (from the page of its first memory chunk, populated size
 * x object size bytes). Start-up check: a pool that fails it loses frames
 * silently on AF_XDP. */
bool port_pool_fits_umem(struct rte_mempool *mp);

/* Stops and closes port_id. */
void port_teardown(uint16_t port_id);

#endif
