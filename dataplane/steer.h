/* Software flow steering for devices without RSS (veth, tap, af_packet, a
 * single-queue NIC): every worker computes the owner core of each frame it
 * receives and hands foreign frames to the owner over a ring. */
#ifndef TERN_STEER_H
#define TERN_STEER_H

#include <stdint.h>

#include "steer-t.h"

/* Owner of a passive flow (a client connecting to a listener). Addresses
 * and ports as on the wire (network order); pure, any thread. Returns a
 * worker index < cfg->n_workers. */
unsigned steer_hash_owner(const struct steer_cfg *cfg, uint32_t saddr,
                          uint32_t daddr, uint16_t sport, uint16_t dport);

/* Owner core of a received Ethernet frame of len bytes: for TCP over IPv4,
 * dport % n_workers when dport is in the active-open port range, else the
 * hash of the 4-tuple; STEER_ALL for ARP; STEER_HERE for everything else
 * (including malformed frames, which the receiving core counts and drops).
 * Reads only the headers it needs, never past len. Pure; any thread. */
int steer_owner(const struct steer_cfg *cfg, const uint8_t *frame,
                uint32_t len);

#endif
