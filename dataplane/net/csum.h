/* Internet checksum (RFC 1071) in software, for devices without offload
 * (AF_XDP on veth has none). Any thread may call these; they touch only
 * their arguments. */
#ifndef TERN_NET_CSUM_H
#define TERN_NET_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Adds len bytes at p to a 32-bit running sum of 16-bit big-endian words
 * read in memory order; an odd last byte is padded with zero. Returns the
 * new running sum (not folded). Sums are order-independent, so partial sums
 * of pieces starting at even offsets may be added. */
static inline uint64_t net_csum_add(uint64_t sum, const void *p, size_t len)
{
    const uint8_t *b = p;
    /* 4 bytes at a time into a 64-bit accumulator: no carry handling in
     * the loop, folded once at the end. Bytes stay in memory order, the
     * fold below accounts for that (the sum is endian-neutral). */
    while (len >= 4) {
        uint32_t w;
        memcpy(&w, b, 4);
        sum += w;
        b += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t w;
        memcpy(&w, b, 2);
        sum += w;
        b += 2;
        len -= 2;
    }
    if (len) {
        uint16_t w = 0;
        memcpy(&w, b, 1);
        sum += w;
    }
    return sum;
}

/* Folds a running sum to 16 bits and complements it: the value to store in
 * a checksum field (memory order, as the sum was taken). */
static inline uint16_t net_csum_fold(uint64_t sum)
{
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffffffffu) + (sum >> 32);
    sum = (sum & 0xffffu) + (sum >> 16);
    sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Checksum of len bytes (header with its checksum field zeroed, or a
 * received header: then 0 means valid). */
static inline uint16_t net_csum(const void *p, size_t len)
{
    return net_csum_fold(net_csum_add(0, p, len));
}

/* Running sum of the IPv4 pseudo-header for TCP/UDP: addresses in network
 * order, protocol, L4 length (host order). */
static inline uint64_t net_csum_pseudo(uint32_t src, uint32_t dst,
                                       uint8_t proto, uint16_t l4_len)
{
    uint8_t ph[12];
    memcpy(ph, &src, 4);
    memcpy(ph + 4, &dst, 4);
    ph[8] = 0;
    ph[9] = proto;
    ph[10] = (uint8_t)(l4_len >> 8);
    ph[11] = (uint8_t)l4_len;
    return net_csum_add(0, ph, sizeof(ph));
}

#endif
