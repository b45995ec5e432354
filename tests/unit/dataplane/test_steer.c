/* Unit tests of software flow steering. */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "dataplane/steer.h"

static uint32_t mk_tcp(uint8_t *f, uint32_t saddr, uint32_t daddr,
                       uint16_t sport, uint16_t dport)
{
    memset(f, 0, 64);
    f[12] = 0x08;
    f[13] = 0x00;
    f[14] = 0x45;
    f[23] = 6;
    memcpy(f + 26, &saddr, 4);
    memcpy(f + 30, &daddr, 4);
    uint16_t s = htons(sport), d = htons(dport);
    memcpy(f + 34, &s, 2);
    memcpy(f + 36, &d, 2);
    return 54;
}

int main(void)
{
    struct steer_cfg cfg = {.n_workers = 2, .eport_min = 32768,
                            .eport_max = 60999, .seed = 12345};
    uint8_t f[64];
    uint32_t cli = htonl(0xc6120002), vip = htonl(0xc6120001);

    /* Return traffic of active opens: the local port names the core. */
    for (uint16_t p = 32768; p < 32800; p++) {
        uint32_t n = mk_tcp(f, cli, vip, 8080, p);
        CHECK_EQ_INT(steer_owner(&cfg, f, n), p % 2);
    }
    /* Passive flows: deterministic, in range, spread over both cores, and
     * the same answer from the frame as from the hash helper. */
    unsigned count[2] = {0, 0};
    for (uint16_t sp = 40000; sp < 41000; sp++) {
        uint32_t n = mk_tcp(f, cli, vip, sp, 80);
        int o = steer_owner(&cfg, f, n);
        CHECK(o == 0 || o == 1);
        if (o < 0 || o > 1)
            continue;
        CHECK_EQ_INT(o, steer_owner(&cfg, f, n));
        CHECK_EQ_INT((unsigned)o, steer_hash_owner(&cfg, cli, vip, htons(sp), htons(80)));
        count[o]++;
    }
    CHECK(count[0] > 400 && count[1] > 400);
    /* Four workers: every core gets some. */
    struct steer_cfg c4 = cfg;
    c4.n_workers = 4;
    unsigned c4n[4] = {0};
    for (uint16_t sp = 1000; sp < 2000; sp++) {
        uint32_t n = mk_tcp(f, cli, vip, sp, 443);
        int o = steer_owner(&c4, f, n);
        if (o >= 0 && o < 4)
            c4n[o]++;
    }
    for (int i = 0; i < 4; i++)
        CHECK(c4n[i] > 150);

    /* ARP goes to everyone; ICMP, fragments, short and odd frames stay. */
    uint32_t n = mk_tcp(f, cli, vip, 1, 80);
    f[12] = 0x08, f[13] = 0x06;
    CHECK_EQ_INT(steer_owner(&cfg, f, n), STEER_ALL);
    n = mk_tcp(f, cli, vip, 1, 80);
    f[23] = 1;
    CHECK_EQ_INT(steer_owner(&cfg, f, n), STEER_HERE);
    n = mk_tcp(f, cli, vip, 1, 80);
    f[20] = 0x20; /* MF */
    CHECK_EQ_INT(steer_owner(&cfg, f, n), STEER_HERE);
    n = mk_tcp(f, cli, vip, 1, 80);
    f[14] = 0x4f; /* hlen 60 > frame */
    CHECK_EQ_INT(steer_owner(&cfg, f, n), STEER_HERE);
    CHECK_EQ_INT(steer_owner(&cfg, f, 13), STEER_HERE);
    CHECK_EQ_INT(steer_owner(&cfg, f, 14 + 19), STEER_HERE);
    n = mk_tcp(f, cli, vip, 1, 80);
    f[14] = 0x65;
    CHECK_EQ_INT(steer_owner(&cfg, f, n), STEER_HERE);
    /* One worker: everything local, ARP included. */
    struct steer_cfg c1 = cfg;
    c1.n_workers = 1;
    n = mk_tcp(f, cli, vip, 1, 33333);
    CHECK_EQ_INT(steer_owner(&c1, f, n), STEER_HERE);
    return check_exit();
}
