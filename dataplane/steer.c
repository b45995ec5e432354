/* Software flow steering. Placement must agree between every core without
 * talking: it is a pure function of the frame and the shared steer_cfg. */
#include <string.h>

#include <arpa/inet.h>

#include "steer.h"

/* A 32-bit finaliser (murmur3's fmix32): every input bit moves every output
 * bit, so a client's consecutive source ports spread over the cores. */
static uint32_t steer_mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

unsigned steer_hash_owner(const struct steer_cfg *cfg, uint32_t saddr,
                          uint32_t daddr, uint16_t sport, uint16_t dport)
{
    uint32_t h = steer_mix(saddr ^ cfg->seed);
    h = steer_mix(h ^ daddr);
    h = steer_mix(h ^ ((uint32_t)sport << 16 | dport));
    return h % cfg->n_workers;
}

int steer_owner(const struct steer_cfg *cfg, const uint8_t *frame,
                uint32_t len)
{
    /* One worker: everything is local, ARP included (no peer to tell). */
    if (len < 14 || cfg->n_workers <= 1)
        return STEER_HERE;
    uint16_t type = (uint16_t)(frame[12] << 8 | frame[13]);
    if (type == 0x0806)
        return STEER_ALL;
    if (type != 0x0800 || len < 14 + 20)
        return STEER_HERE;
    const uint8_t *ip = frame + 14;
    uint32_t hlen = (ip[0] & 0xfu) * 4u;
    /* Fragments and bad headers are counted by the receiving core. */
    if ((ip[0] >> 4) != 4 || hlen < 20 || ip[9] != 6 ||
        ((ip[6] & 0x3f) | ip[7]) != 0 || len < 14 + hlen + 4)
        return STEER_HERE;
    uint32_t saddr, daddr;
    uint16_t sport, dport;
    memcpy(&saddr, ip + 12, 4);
    memcpy(&daddr, ip + 16, 4);
    memcpy(&sport, ip + hlen, 2);
    memcpy(&dport, ip + hlen + 2, 2);
    uint16_t dport_h = ntohs(dport);
    if (dport_h >= cfg->eport_min && dport_h <= cfg->eport_max)
        return dport_h % cfg->n_workers;
    return (int)steer_hash_owner(cfg, saddr, daddr, sport, dport);
}
