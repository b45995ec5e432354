/* tern-dataplane's own command line (after EAL's `--`), until the YAML
 * configuration of the control plane replaces it. */
#ifndef TERN_ARGS_T_H
#define TERN_ARGS_T_H

#include <stdint.h>

#include "dataplane/proxy/proxy-t.h"

struct dp_args {
    uint32_t addr, mask, gateway;    /* network order; gateway 0 = none */
    uint16_t mtu;
    unsigned n_listeners;
    struct proxy_listener_cfg listeners[PROXY_MAX_LISTENERS];
    uint32_t mbufs_per_worker;
    uint16_t rx_desc, tx_desc;
    uint32_t ring_size;              /* steering ring between two cores */
    uint32_t max_conns;              /* TCP connections per core */
    uint32_t max_pairs;              /* proxied pairs per core */
    uint32_t sndbuf, rcvbuf;
    uint32_t idle_timeout_ms;
    uint32_t syn_backlog;
    uint32_t fault_reorder_pct, fault_dup_pct; /* test only */
    const char *config_path;         /* --config: the shared YAML file */
};

#endif
