/* Cost of the proxy's per-connection additions: choosing a server
 * (pool_get + pool_put, round robin and least-conn, 2 to 64 servers, all up
 * or every other one down) and building a PROXY v2 header (plain, and with
 * the TLS TLVs). Prints ns per operation; the clock is shared with other
 * work on this machine, so compare the rows of one run, or count
 * instructions:
 *
 *   bench_pool                      the table
 *   bench_pool --only CASE N        N operations of one case and nothing
 *                                   else, for valgrind --tool=callgrind
 *                                   (see run.sh); CASE as printed
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataplane/proxy/pool.h"
#include "dataplane/proxy/proxy_v2.h"

struct bcase {
    const char *name;
    int kind; /* 0 pool, 1 header */
    enum pool_balance balance;
    unsigned servers;
    bool half_down;
    bool tls;
};

static const struct bcase cases[] = {
    {"rr-2", 0, POOL_ROUND_ROBIN, 2, false, false},
    {"rr-64", 0, POOL_ROUND_ROBIN, 64, false, false},
    {"rr-64-half-down", 0, POOL_ROUND_ROBIN, 64, true, false},
    {"lc-2", 0, POOL_LEAST_CONN, 2, false, false},
    {"lc-8", 0, POOL_LEAST_CONN, 8, false, false},
    {"lc-64", 0, POOL_LEAST_CONN, 64, false, false},
    {"lc-64-half-down", 0, POOL_LEAST_CONN, 64, true, false},
    {"pp2-plain", 1, 0, 0, false, false},
    {"pp2-tls", 1, 0, 0, false, true},
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile uint64_t sink;

/* Runs N operations of case C. Pools hold 100 connections per server in
 * steady state (a put for every get, in FIFO order) so least-conn compares
 * real counts. */
static void run(const struct bcase *c, uint64_t n)
{
    if (c->kind == 1) {
        struct proxy_v2_info in = {.tcp4 = true,
                                   .src_addr = 0xC6120002u,
                                   .dst_addr = 0xC6120001u,
                                   .src_port = 40000,
                                   .dst_port = 443};
        if (c->tls) {
            in.alpn = (const uint8_t *)"h2";
            in.alpn_len = 2;
            in.authority = "www.example.test";
            in.authority_len = 16;
            in.ssl = true;
            in.ssl_verify = 1;
            in.ssl_version = "TLSv1.3";
            in.ssl_version_len = 7;
            in.ssl_cipher = "TLS_AES_128_GCM_SHA256";
            in.ssl_cipher_len = 22;
        }
        uint8_t buf[PROXY_V2_MAX_LEN];
        for (uint64_t i = 0; i < n; i++) {
            in.src_port = (uint16_t)i;
            sink += (uint64_t)proxy_v2_build(&in, buf, sizeof(buf)) + buf[20];
        }
        return;
    }
    static struct pool_health h;
    static struct pool p;
    struct pool_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.balance = c->balance;
    cfg.n_servers = (uint16_t)c->servers;
    for (unsigned i = 0; i < c->servers; i++) {
        cfg.servers[i].addr = 0xC6120100u + i;
        cfg.servers[i].port = 8080;
    }
    pool_health_init(&h, c->servers, 1, 1);
    if (c->half_down)
        for (unsigned i = 0; i < c->servers; i += 2)
            pool_health_report(&h, i, false);
    pool_init(&p, &cfg, &h);
    enum { RING = 4096 };
    static int ring[RING];
    unsigned held = 100 * c->servers < RING ? 100 * c->servers : RING;
    for (unsigned i = 0; i < held; i++)
        ring[i] = pool_get(&p);
    unsigned head = 0;
    for (uint64_t i = 0; i < n; i++) {
        pool_put(&p, (unsigned)ring[head]);
        ring[head] = pool_get(&p);
        sink += (uint64_t)ring[head];
        head = head + 1 == held ? 0 : head + 1;
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--only") == 0) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            if (strcmp(cases[i].name, argv[2]) == 0) {
                run(&cases[i], strtoull(argv[3], NULL, 10));
                return 0;
            }
        fprintf(stderr, "unknown case %s\n", argv[2]);
        return 2;
    }
    const uint64_t n = 2000000;
    printf("%-18s %10s\n", "case", "ns/op");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(&cases[i], n / 10); /* warm */
        uint64_t t0 = now_ns();
        run(&cases[i], n);
        double ns = (double)(now_ns() - t0) / (double)n;
        printf("%-18s %10.1f\n", cases[i].name, ns);
    }
    return 0;
}
