/* Keyed hashing for initial sequence numbers (RFC 6528) and SYN cookies
 * (RFC 4987). The key is params.secret; SipHash-2-4 is the PRF. */
#include <string.h>

#include "tcp_pvt.h"

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#define SIPROUND                                                            \
    do {                                                                    \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);           \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                              \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                              \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);           \
    } while (0)

uint64_t tcp_siphash(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t n = len;
    while (n >= 8) {
        uint64_t m = le64(p);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
        p += 8;
        n -= 8;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < n; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

struct tuple_msg {
    uint32_t laddr, raddr;
    uint16_t lport, rport;
    uint32_t a, b;
};

static uint64_t tuple_hash(const struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                           uint32_t raddr, uint16_t rport, uint32_t a, uint32_t b)
{
    struct tuple_msg m;
    memset(&m, 0, sizeof(m));
    m.laddr = laddr;
    m.raddr = raddr;
    m.lport = lport;
    m.rport = rport;
    m.a = a;
    m.b = b;
    return tcp_siphash(st->p.secret, &m, sizeof(m));
}

/* RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
 * M a 4 µs clock. */
uint32_t tcp_isn(const struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                 uint32_t raddr, uint16_t rport, uint64_t now)
{
    return (uint32_t)(now / 4u) + (uint32_t)tuple_hash(st, laddr, lport, raddr, rport, 0, 0);
}

/* SYN cookie layout (RFC 4987 3.6, as the classic scheme does):
 *   bits 31..27  t, a 64-second counter modulo 32
 *   bits 26..24  index of the MSS in cookie_mss[]
 *   bits 23..0   keyed hash of the 4-tuple, the peer's ISN and t
 * A cookie is valid for the current and the previous period (64..128 s). */
static const uint16_t cookie_mss[8] = {536, 1024, 1200, 1300, 1360, 1400, 1440, 1460};
#define COOKIE_PERIOD_US 64000000ull

uint32_t tcp_cookie_make(const struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                         uint32_t raddr, uint16_t rport, uint32_t peer_isn, uint16_t mss,
                         uint64_t now)
{
    uint32_t t = (uint32_t)(now / COOKIE_PERIOD_US);
    unsigned idx = 0;
    for (unsigned i = 0; i < 8; i++)
        if (cookie_mss[i] <= mss)
            idx = i;
    uint32_t h = (uint32_t)tuple_hash(st, laddr, lport, raddr, rport, peer_isn, t);
    return (t & 31u) << 27 | idx << 24 | (h & 0xffffffu);
}

uint16_t tcp_cookie_check(const struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                          uint32_t raddr, uint16_t rport, uint32_t peer_isn, uint32_t cookie,
                          uint64_t now)
{
    uint32_t t_now = (uint32_t)(now / COOKIE_PERIOD_US);
    uint32_t age = (t_now - (cookie >> 27)) & 31u;
    if (age > 1)
        return 0;
    uint32_t t = t_now - age;
    uint32_t h = (uint32_t)tuple_hash(st, laddr, lport, raddr, rport, peer_isn, t);
    if ((h & 0xffffffu) != (cookie & 0xffffffu))
        return 0;
    return cookie_mss[(cookie >> 24) & 7u];
}
