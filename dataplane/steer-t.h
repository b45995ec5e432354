/* Types of software flow steering: which worker core owns a received frame. */
#ifndef TERN_STEER_T_H
#define TERN_STEER_T_H

#include <stdint.h>

#define STEER_MAX_WORKERS 64

/* Read-only after start-up; one copy shared by every core. */
struct steer_cfg {
    uint16_t n_workers;
    /* Local ports of active opens (connections to backends): a worker only
     * picks ports with port % n_workers == its index, so a segment to a port
     * in [eport_min, eport_max] belongs to dport % n_workers. */
    uint16_t eport_min, eport_max;
    uint32_t seed; /* mixes the passive-flow hash; same on every core */
};

/* steer_owner() results besides a worker index. */
#define STEER_HERE -1 /* not a flow (ICMP, malformed, ...): the receiving core */
#define STEER_ALL -2  /* ARP: the receiving core handles it, peers learn from copies */

#endif
