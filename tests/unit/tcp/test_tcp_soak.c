/* Many short transfers between two stacks over a hostile in-memory network
 * (loss, duplication, reordering), each with different buffer sizes, MSS
 * and options, both directions at once, ending in a close. Every byte must
 * arrive intact and every connection must end. The seed count comes from
 * TCP_SOAK_SEEDS (default 24) so a longer soak can be run by hand. */
#include <stdio.h>

#include "harness.h"

static bool done_both(struct net *n)
{
    return n->app[0].eof && n->app[1].eof;
}

static void soak_one(unsigned seed)
{
    uint64_t r = seed * 0x9e3779b97f4a7c15ull + 1;
#define RND() (r ^= r << 13, r ^= r >> 7, r ^= r << 17, (uint32_t)(r >> 16))
    struct tcp_stack_params pa, pb;
    net_default_params(&pa);
    net_default_params(&pb);
    pa.sndbuf = 4096u << (RND() % 7);
    pa.rcvbuf = 4096u << (RND() % 7);
    pb.sndbuf = 4096u << (RND() % 7);
    pb.rcvbuf = 4096u << (RND() % 7);
    pa.mss = (uint16_t)(536 + RND() % 925);
    pb.mss = (uint16_t)(536 + RND() % 925);
    pa.no_timestamps = RND() % 3 == 0;
    pb.no_sack = RND() % 3 == 0;
    pa.nagle = RND() % 4 == 0;
    pa.ooo_max_segs = 1 + RND() % 16;
    struct net n;
    net_init(&n, &pa, &pb);
    n.rng = r | 1;
    n.loss_pct = RND() % 8;
    n.dup_pct = RND() % 5;
    n.reorder_pct = RND() % 15;
    n.latency_us = 100 + RND() % 5000;
    size_t la = RND() % (3u << 20), lb = RND() % (1u << 20);
    uint8_t *da = rand_bytes(la + 1, seed * 2 + 1), *db = rand_bytes(lb + 1, seed * 2 + 2);
    n.oracle[0] = da;
    n.oracle_len[0] = la;
    n.oracle[1] = db;
    n.oracle_len[1] = lb;
    n.app[0].tx = da;
    n.app[0].tx_len = la;
    n.app[0].shut_after_tx = true;
    n.app[0].close_on_eof = true;
    n.app[1].tx = db;
    n.app[1].tx_len = lb;
    n.app[1].shut_after_tx = true;
    n.app[1].close_on_eof = true;
    if (RND() % 3 == 0)
        n.app[1].read_chunk = 1 + RND() % 20000; /* B reads slowly: zero windows */
    if (RND() % 4 == 0)
        n.app[0].read_chunk = 1 + RND() % 5000;
    CHECK(tcp_listen(n.st[1], ADDR_B, 443, NULL) >= 0);
    int64_t h = tcp_connect(n.st[0], ADDR_A, ADDR_B, 443, NULL, n.now);
    CHECK(h >= 0);
    n.app[0].h = (tcp_handle_t)h;
    bool ok = net_run(&n, n.now + 3600000000ull, done_both);
    if (!ok || n.app[1].rx_len != la || n.app[0].rx_len != lb || n.oracle_bad)
        fprintf(stderr,
                "soak seed %u FAILED: loss %u dup %u reorder %u lat %u snd %u/%u rcv %u/%u mss %u/%u "
                "ts %d sack %d nagle %d slow %zu/%zu: got %zu/%zu of %zu/%zu eof %d/%d closed %d/%d (%d/%d)\n",
                seed, n.loss_pct, n.dup_pct, n.reorder_pct, n.latency_us, pa.sndbuf, pb.sndbuf,
                pa.rcvbuf, pb.rcvbuf, pa.mss, pb.mss, !pa.no_timestamps, !pb.no_sack, pa.nagle, n.app[0].read_chunk, n.app[1].read_chunk,
                n.app[1].rx_len, n.app[0].rx_len, la, lb, n.app[0].eof, n.app[1].eof,
                n.app[0].closed, n.app[1].closed, n.app[0].reason, n.app[1].reason);
    if (!ok && getenv("TCP_TRACE"))
        for (int side = 0; side < 2; side++)
            for (unsigned i = 0; i < TCP_CNT_MAX; i++)
                if (cnt(&n, side, (enum tcp_counter)i))
                    fprintf(stderr, "  %c %s %llu\n", 'A' + side, tcp_counter_name(i),
                            (unsigned long long)cnt(&n, side, (enum tcp_counter)i));
    CHECK(ok);
    CHECK_EQ_INT(n.oracle_bad, 0);
    CHECK(n.app[1].rx_len == la && memcmp(n.app[1].rx, da, la) == 0);
    CHECK(n.app[0].rx_len == lb && memcmp(n.app[0].rx, db, lb) == 0);
    /* everything ends: TIME_WAIT and retransmissions run out */
    net_run(&n, n.now + 130000000ull, NULL);
    CHECK_EQ_INT(tcp_stack_conns(n.st[0]), 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    free(da);
    free(db);
    net_free(&n);
#undef RND
}

int main(void)
{
    const char *e = getenv("TCP_SOAK_SEEDS");
    unsigned seeds = e ? (unsigned)atoi(e) : 24;
    const char *f = getenv("TCP_SOAK_FIRST");
    unsigned first = f ? (unsigned)atoi(f) : 1;
    for (unsigned s = first; s < first + seeds; s++)
        soak_one(s);
    return check_exit();
}
