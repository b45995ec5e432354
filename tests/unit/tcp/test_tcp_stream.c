/* Two TCP stacks against each other in memory: handshakes, bulk transfer
 * (clean and with loss, reordering and duplication), window scaling, zero
 * window and persist, half-close, close and TIME_WAIT. */
#include <stdio.h>

#include "harness.h"

static bool both_eof(struct net *n) { return n->app[0].eof && n->app[1].eof; }
static bool b_eof(struct net *n) { return n->app[1].eof; }
static bool a_connected(struct net *n) { return n->app[0].connected && n->app[1].accepted; }

static void start(struct net *n)
{
    CHECK(tcp_listen(n->st[1], ADDR_B, 80, NULL) >= 0);
    int64_t h = tcp_connect(n->st[0], ADDR_A, ADDR_B, 80, NULL, n->now);
    CHECK(h >= 0);
    n->app[0].h = (tcp_handle_t)h;
}

static void test_handshake_and_options(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    CHECK_EQ_INT(n.app[0].connected, 1);
    CHECK_EQ_INT(n.app[1].accepted, 1);
    struct tcp_conn_info ia, ib;
    CHECK_EQ_INT(tcp_conn_info(n.st[0], n.app[0].h, &ia), 0);
    CHECK_EQ_INT(tcp_conn_info(n.st[1], n.app[1].h, &ib), 0);
    CHECK_EQ_INT(ia.state, TCP_STATE_ESTABLISHED);
    CHECK_EQ_INT(ib.state, TCP_STATE_ESTABLISHED);
    CHECK(ia.ts_ok && ib.ts_ok && ia.sack_ok && ib.sack_ok);
    CHECK_EQ_INT(ia.mss, 1460);
    CHECK_EQ_INT(ia.lport, ib.rport);
    CHECK(ia.lport >= 32768 && ia.lport <= 60999);
    CHECK_EQ_INT(ia.rcv_nxt, ib.snd_nxt);
    CHECK_EQ_INT(ib.rcv_nxt, ia.snd_nxt);
    /* RTT measured on the handshake: two one-way latencies */
    CHECK(ia.srtt_us >= 900 && ia.srtt_us <= 1100);
    CHECK_EQ_INT(n.bad_csum, 0);
    net_free(&n);
}

/* Transfer `len` bytes each way (b_len from B), then both close. */
static void transfer(struct net *n, size_t a_len, size_t b_len, uint64_t budget_us)
{
    uint8_t *da = rand_bytes(a_len, 1234), *db = rand_bytes(b_len, 5678);
    n->app[0].tx = da;
    n->app[0].tx_len = a_len;
    n->app[0].shut_after_tx = true;
    n->app[1].tx = db;
    n->app[1].tx_len = b_len;
    n->app[1].shut_after_tx = true;
    n->oracle[0] = da;
    n->oracle_len[0] = a_len;
    n->oracle[1] = db;
    n->oracle_len[1] = b_len;
    start(n);
    CHECK(net_run(n, n->now + budget_us, both_eof));
    CHECK_EQ_INT(n->app[1].rx_len, a_len);
    CHECK_EQ_INT(n->app[0].rx_len, b_len);
    CHECK_EQ_INT(n->oracle_bad, 0);
    CHECK(n->app[1].rx_len == a_len && memcmp(n->app[1].rx, da, a_len) == 0);
    for (size_t i = 0; i < a_len && i < n->app[1].rx_len; i++)
        if (n->app[1].rx[i] != da[i]) {
            fprintf(stderr, "A->B first difference at byte %zu of %zu\n", i, a_len);
            for (size_t k = i; k < i + 8; k++) {
                fprintf(stderr, " got %02x want %02x;", n->app[1].rx[k], da[k]);
                for (size_t m = 0; m < a_len; m += 1)
                    if (memcmp(n->app[1].rx + i, da + m, 16) == 0) { fprintf(stderr, " found at %zu", m); break; }
                fprintf(stderr, "\n");
                break;
            }
            break;
        }
    CHECK(n->app[0].rx_len == b_len && memcmp(n->app[0].rx, db, b_len) == 0);
    free(da);
    free(db);
}

static void test_bulk_clean(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    transfer(&n, 4u << 20, 1u << 20, 60000000);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RETRANSMIT), 0);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_RETRANSMIT), 0);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_BYTES_IN), 1u << 20);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_BYTES_IN), 4u << 20);
    /* both sides shut down: both see closed(NORMAL); one waits in TIME_WAIT */
    net_run(&n, n.now + 100000, NULL);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[1].closed, 1);
    CHECK_EQ_INT(n.app[0].reason, TCP_CLOSE_NORMAL);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_NORMAL);
    uint64_t tw = tcp_stack_counters(n.st[0])->conns_by_state[TCP_STATE_TIME_WAIT] +
                  tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_TIME_WAIT];
    CHECK(tw >= 1);
    /* TIME_WAIT is bounded: 2 s by default */
    net_run(&n, n.now + 2100000, NULL);
    CHECK_EQ_INT(tcp_stack_conns(n.st[0]), 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    CHECK_EQ_INT(n.bad_csum, 0);
    net_free(&n);
}

static void test_bulk_lossy(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    n.loss_pct = 2;
    n.dup_pct = 2;
    n.reorder_pct = 5;
    transfer(&n, 2u << 20, 512u << 10, 600000000);
    CHECK(n.dropped > 0);
    CHECK(cnt(&n, 0, TCP_CNT_RETRANSMIT) > 0);
    CHECK(cnt(&n, 0, TCP_CNT_FAST_RETRANSMIT) > 0);
    CHECK(cnt(&n, 1, TCP_CNT_OOO_QUEUED) > 0);
    fprintf(stderr, "lossy: dropped %u, A retransmits %llu (fast %llu, rto %llu), B ooo %llu\n",
            n.dropped, (unsigned long long)cnt(&n, 0, TCP_CNT_RETRANSMIT),
            (unsigned long long)cnt(&n, 0, TCP_CNT_FAST_RETRANSMIT),
            (unsigned long long)cnt(&n, 0, TCP_CNT_RTO_EXPIRED),
            (unsigned long long)cnt(&n, 1, TCP_CNT_OOO_QUEUED));
    net_free(&n);
}

static void test_bulk_heavy_reorder_no_sack_no_ts(void)
{
    struct tcp_stack_params p;
    net_default_params(&p);
    p.no_sack = true;
    p.no_timestamps = true;
    struct net n;
    net_init(&n, &p, NULL);
    n.loss_pct = 3;
    n.reorder_pct = 20;
    n.dup_pct = 5;
    transfer(&n, 1u << 20, 1u << 20, 600000000);
    struct tcp_conn_info i;
    (void)i;
    net_free(&n);
}

static void test_window_scaling(void)
{
    struct tcp_stack_params p;
    net_default_params(&p);
    p.rcvbuf = 1u << 20;
    p.sndbuf = 1u << 20;
    struct net n;
    net_init(&n, &p, &p);
    n.latency_us = 5000; /* 10 ms RTT: a 64 KiB window would cap at 6.5 MB/s */
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    struct tcp_conn_info ia;
    tcp_conn_info(n.st[0], n.app[0].h, &ia);
    CHECK_EQ_INT(ia.rcv_wscale, 5); /* 1 MiB >> 5 = 32768 fits 16 bits */
    CHECK_EQ_INT(ia.snd_wscale, 5);
    size_t len = 8u << 20;
    uint8_t *d = rand_bytes(len, 99);
    n.app[0].tx = d;
    n.app[0].tx_len = len;
    n.app[0].shut_after_tx = true;
    uint64_t t0 = n.now;
    app_pump(&n.app[0]);
    CHECK(net_run(&n, n.now + 30000000, b_eof));
    CHECK(n.app[1].rx_len == len && memcmp(n.app[1].rx, d, len) == 0);
    CHECK_EQ_INT(tcp_conn_info(n.st[0], n.app[0].h, &ia), 0);
    CHECK(ia.snd_wnd > 65535); /* B's scaled window, learned from its ACKs */
    /* 8 MiB over a 10 ms RTT in well under the 1.3 s a 64 KiB window needs */
    uint64_t took = n.now - t0;
    fprintf(stderr, "window scaling: 8 MiB in %llu ms simulated\n", (unsigned long long)took / 1000);
    CHECK(took < 1000000);
    free(d);
    net_free(&n);
}

static void test_zero_window_persist(void)
{
    struct tcp_stack_params pb;
    net_default_params(&pb);
    pb.rcvbuf = 16384;
    struct net n;
    net_init(&n, NULL, &pb);
    n.app[1].auto_read = false; /* B does not read: its window closes */
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    size_t len = 100000;
    uint8_t *d = rand_bytes(len, 7);
    n.app[0].tx = d;
    n.app[0].tx_len = len;
    n.app[0].shut_after_tx = true;
    app_pump(&n.app[0]);
    net_run(&n, n.now + 300000000, NULL); /* 5 minutes of a closed window */
    struct tcp_conn_info ia, ib;
    tcp_conn_info(n.st[0], n.app[0].h, &ia);
    tcp_conn_info(n.st[1], n.app[1].h, &ib);
    CHECK_EQ_INT(ia.snd_wnd, 0);
    CHECK_EQ_INT(ib.recv_queued, 16384);
    /* more probes than max_retries (8): a peer that answers them is never
     * given up on; and they back off to one a minute (rto_max) */
    CHECK(cnt(&n, 0, TCP_CNT_PERSIST_PROBE) > 8);
    CHECK(cnt(&n, 0, TCP_CNT_PERSIST_PROBE) < 20);
    CHECK_EQ_INT(ia.state, TCP_STATE_ESTABLISHED);
    /* B starts reading: the window opens and everything arrives */
    n.app[1].auto_read = true;
    app_drain(&n.app[1]);
    CHECK(net_run(&n, n.now + 60000000, b_eof));
    CHECK(n.app[1].rx_len == len && memcmp(n.app[1].rx, d, len) == 0);
    free(d);
    net_free(&n);
}

static void test_half_close(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    /* A sends a request and shuts down its side */
    CHECK_EQ_INT(tcp_send(n.st[0], n.app[0].h, "request", 7, n.now), 7);
    CHECK_EQ_INT(tcp_shutdown(n.st[0], n.app[0].h, n.now), 0);
    CHECK_EQ_INT(tcp_send(n.st[0], n.app[0].h, "x", 1, n.now), -EPIPE);
    CHECK(net_run(&n, n.now + 100000, b_eof));
    CHECK_EQ_INT(n.app[1].peer_closed, 1);
    CHECK(n.app[1].rx_len == 7 && memcmp(n.app[1].rx, "request", 7) == 0);
    net_run(&n, n.now + 2000, NULL); /* B's ACK of the FIN reaches A */
    struct tcp_conn_info i;
    tcp_conn_info(n.st[1], n.app[1].h, &i);
    CHECK_EQ_INT(i.state, TCP_STATE_CLOSE_WAIT);
    tcp_conn_info(n.st[0], n.app[0].h, &i);
    CHECK_EQ_INT(i.state, TCP_STATE_FIN_WAIT_2);
    /* B still answers, a lot, after A's FIN */
    size_t len = 300000;
    uint8_t *d = rand_bytes(len, 3);
    n.app[1].tx = d;
    n.app[1].tx_len = len;
    n.app[1].shut_after_tx = true;
    app_pump(&n.app[1]);
    CHECK(net_run(&n, n.now + 10000000, both_eof));
    CHECK(n.app[0].rx_len == len && memcmp(n.app[0].rx, d, len) == 0);
    net_run(&n, n.now + 100000, NULL);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[1].closed, 1);
    free(d);
    net_free(&n);
}

static void test_close_with_unread_data_resets(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    n.app[1].auto_read = false;
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    tcp_send(n.st[0], n.app[0].h, "unread", 6, n.now);
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(tcp_close(n.st[1], n.app[1].h, n.now), 0);
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[0].reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(n.app[1].closed, 0); /* no event after tcp_close */
    CHECK_EQ_INT(tcp_stack_conns(n.st[0]), 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    CHECK_EQ_INT(tcp_send(n.st[1], n.app[1].h, "x", 1, n.now), -EBADF);
    net_free(&n);
}

static void test_abort(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    CHECK_EQ_INT(tcp_abort(n.st[0], n.app[0].h), 0);
    CHECK_EQ_INT(tcp_abort(n.st[0], n.app[0].h), -EBADF);
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(n.app[1].closed, 1);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_RST_IN), 1);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    net_free(&n);
}

static void test_refused_and_many_conns(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    /* connect to a port nobody listens on: RST, closed(RESET) */
    int64_t h = tcp_connect(n.st[0], ADDR_A, ADDR_B, 81, NULL, n.now);
    CHECK(h >= 0);
    n.app[0].h = (tcp_handle_t)h;
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[0].reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_CONNECT_FAILED), 1);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_DROP_NO_CONN), 1);
    /* 50 connections at once, each echoing nothing, then all closed */
    CHECK(tcp_listen(n.st[1], 0, 80, NULL) >= 0);
    for (int i = 0; i < 50; i++)
        CHECK(tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now) >= 0);
    net_run(&n, n.now + 100000, NULL);
    CHECK_EQ_INT(n.app[0].connected, 50);
    CHECK_EQ_INT(n.app[1].accepted, 50);
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_ESTABLISHED], 50);
    net_free(&n);
}

static void test_stale_handles_and_params(void)
{
    struct tcp_stack_params p;
    net_default_params(&p);
    char err[128] = "";
    p.sndbuf = 5000;
    CHECK(tcp_stack_create(&p, &net_ops, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "power") != NULL);
    net_default_params(&p);
    p.max_conns = 0;
    CHECK(tcp_stack_create(&p, &net_ops, NULL, err, sizeof(err)) == NULL);
    struct net n;
    net_init(&n, NULL, NULL);
    uint8_t b[4];
    CHECK_EQ_INT(tcp_recv(n.st[0], 12345, b, 4, n.now), -EBADF);
    CHECK_EQ_INT(tcp_send(n.st[0], 0, b, 4, n.now), -EBADF);
    CHECK_EQ_INT(tcp_listen(n.st[1], ADDR_B, 0, NULL), -EINVAL);
    int64_t lh = tcp_listen(n.st[1], ADDR_B, 80, NULL);
    CHECK(lh >= 0);
    CHECK_EQ_INT(tcp_listen(n.st[1], ADDR_B, 80, NULL), -EADDRINUSE);
    CHECK_EQ_INT(tcp_unlisten(n.st[1], (tcp_handle_t)lh), 0);
    CHECK_EQ_INT(tcp_unlisten(n.st[1], (tcp_handle_t)lh), -EBADF);
    CHECK(strcmp(tcp_counter_name(TCP_CNT_SEG_IN), "SEG_IN") == 0);
    CHECK(tcp_counter_name(TCP_CNT_MAX) == NULL);
    CHECK(strcmp(tcp_state_name(TCP_STATE_TIME_WAIT), "TIME-WAIT") == 0);
    net_free(&n);
}

static void test_ephemeral_stride(void)
{
    struct tcp_stack_params p;
    net_default_params(&p);
    p.eport_min = 40000;
    p.eport_max = 40031;
    p.eport_stride = 4;
    p.eport_offset = 3;
    struct net n;
    net_init(&n, &p, NULL);
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        int64_t h = tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now);
        if (h < 0) {
            CHECK_EQ_INT(h, -EADDRNOTAVAIL);
            break;
        }
        struct tcp_conn_info i2;
        n.app[0].h = (tcp_handle_t)h;
        tcp_conn_info(n.st[0], (tcp_handle_t)h, &i2);
        CHECK_EQ_INT(i2.lport % 4, 3);
        ok++;
    }
    CHECK_EQ_INT(ok, 8); /* 32 ports, one in four */
    net_free(&n);
}

static void test_simultaneous_open_and_close(void)
{
    struct tcp_stack_params pa, pb;
    net_default_params(&pa);
    net_default_params(&pb);
    pa.eport_min = pa.eport_max = 5000;
    pb.eport_min = pb.eport_max = 6000;
    struct net n;
    net_init(&n, &pa, &pb);
    int64_t ha = tcp_connect(n.st[0], ADDR_A, ADDR_B, 6000, NULL, n.now);
    int64_t hb = tcp_connect(n.st[1], ADDR_B, ADDR_A, 5000, NULL, n.now);
    CHECK(ha >= 0 && hb >= 0);
    n.app[0].h = (tcp_handle_t)ha;
    n.app[1].h = (tcp_handle_t)hb;
    net_run(&n, n.now + 100000, NULL);
    CHECK_EQ_INT(n.app[0].connected, 1);
    CHECK_EQ_INT(n.app[1].connected, 1);
    CHECK_EQ_INT(n.app[0].accepted + n.app[1].accepted, 0);
    CHECK_EQ_INT(tcp_send(n.st[0], n.app[0].h, "ping", 4, n.now), 4);
    CHECK_EQ_INT(tcp_send(n.st[1], n.app[1].h, "pong", 4, n.now), 4);
    /* simultaneous close: both FINs cross; both go through CLOSING */
    tcp_shutdown(n.st[0], n.app[0].h, n.now);
    tcp_shutdown(n.st[1], n.app[1].h, n.now);
    net_run(&n, n.now + 100000, NULL);
    CHECK(n.app[0].rx_len == 4 && memcmp(n.app[0].rx, "pong", 4) == 0);
    CHECK(n.app[1].rx_len == 4 && memcmp(n.app[1].rx, "ping", 4) == 0);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[1].closed, 1);
    CHECK_EQ_INT(tcp_stack_counters(n.st[0])->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    net_free(&n);
}

/* closed(NORMAL) never takes unread bytes away with the handle */
static void test_close_waits_for_reader(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    n.app[1].auto_read = false;
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    CHECK_EQ_INT(tcp_send(n.st[0], n.app[0].h, "last words", 10, n.now), 10);
    tcp_shutdown(n.st[0], n.app[0].h, n.now);
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(n.app[1].peer_closed, 1);
    tcp_shutdown(n.st[1], n.app[1].h, n.now); /* B ends too, without reading */
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[1].closed, 0); /* held back: 10 bytes unread */
    uint8_t b[32];
    CHECK_EQ_INT(tcp_recv(n.st[1], n.app[1].h, b, 4, n.now), 4);
    CHECK_EQ_INT(tcp_recv(n.st[1], n.app[1].h, b + 4, sizeof(b) - 4, n.now), 6);
    CHECK_MEM(b, "last words", 10);
    CHECK_EQ_INT(tcp_recv(n.st[1], n.app[1].h, b, sizeof(b), n.now), -ESHUTDOWN);
    CHECK_EQ_INT(n.app[1].closed, 0);
    net_run(&n, n.now + 2000, NULL);
    CHECK_EQ_INT(n.app[1].closed, 1);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_NORMAL);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    net_free(&n);
}

static void test_accept_refused(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    n.app[1].refuse = true;
    start(&n);
    net_run(&n, n.now + 100000, NULL);
    CHECK_EQ_INT(n.app[1].accepted, 1);
    CHECK_EQ_INT(n.app[1].closed, 0);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[0].reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    net_free(&n);
}

/* tcp_want_writable: one writable event once that much of the send buffer
 * is free, not at the first ACK that frees a little (the receiver ACKs
 * every second segment); nothing asked when the room is there already. */
static bool a_writable(struct net *n) { return n->app[0].writable > 0; }

static void test_want_writable_lowat(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    start(&n);
    CHECK(net_run(&n, n.now + 100000, a_connected));
    n.app[1].auto_read = true;
    uint32_t sb = tcp_stack_sndbuf(n.st[0]);
    uint8_t *d = rand_bytes(sb, 99);
    CHECK_EQ_INT(tcp_send(n.st[0], n.app[0].h, d, sb, n.now), (ssize_t)sb);
    CHECK_EQ_INT(tcp_send_space(n.st[0], n.app[0].h), 0);
    CHECK_EQ_INT(tcp_want_writable(n.st[0], n.app[0].h, 1u << 30), 0); /* capped at sb */
    CHECK(net_run(&n, n.now + 2000000, a_writable));
    CHECK_EQ_INT(n.app[0].writable, 1);
    CHECK_EQ_INT(tcp_send_space(n.st[0], n.app[0].h), (ssize_t)sb); /* all of it free */
    CHECK_EQ_INT(n.app[1].rx_len, sb);
    /* room already there: returns it and asks nothing */
    CHECK_EQ_INT(tcp_want_writable(n.st[0], n.app[0].h, 100), (ssize_t)sb);
    CHECK_EQ_INT(tcp_send(n.st[0], n.app[0].h, d, 4000, n.now), 4000);
    net_run(&n, n.now + 1000000, NULL);
    CHECK_EQ_INT(n.app[0].writable, 1);
    CHECK_EQ_INT(tcp_want_writable(n.st[0], (tcp_handle_t)~0ull, 1), -EBADF);
    free(d);
    net_free(&n);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        /* run one test by name, for debugging */
        static const struct { const char *name; void (*fn)(void); } all[] = {
            {"handshake", test_handshake_and_options}, {"bulk", test_bulk_clean},
            {"lossy", test_bulk_lossy}, {"reorder", test_bulk_heavy_reorder_no_sack_no_ts},
            {"wscale", test_window_scaling}, {"zerownd", test_zero_window_persist},
            {"halfclose", test_half_close}, {"unread", test_close_with_unread_data_resets},
        };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            if (strcmp(argv[1], all[i].name) == 0)
                all[i].fn();
        return check_exit();
    }
    test_handshake_and_options();
    test_bulk_clean();
    test_bulk_lossy();
    test_bulk_heavy_reorder_no_sack_no_ts();
    test_window_scaling();
    test_zero_window_persist();
    test_half_close();
    test_close_with_unread_data_resets();
    test_abort();
    test_refused_and_many_conns();
    test_stale_handles_and_params();
    test_ephemeral_stride();
    test_simultaneous_open_and_close();
    test_accept_refused();
    test_close_waits_for_reader();
    test_want_writable_lowat();
    return check_exit();
}
