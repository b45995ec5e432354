/* Crafted segments against one TCP stack whose output is captured: RST to a
 * closed port, option negotiation, challenge ACKs, RTO timing with backoff
 * and Karn's rule, fast retransmit and NewReno recovery, SYN cookies,
 * TIME_WAIT expiry and reuse, delayed ACKs, PAWS, idle timeout, and bounded
 * queues under SYN and out-of-order floods. */
#include <stdio.h>

#include "harness.h"

#define PEER_PORT 40000
#define PEER_ISN 1000u

/* A crafted peer talking to stack `side`. */
struct peer {
    struct net *n;
    int side;
    uint32_t addr, laddr;
    uint16_t port, lport;
    uint32_t snd_nxt; /* next seq the peer sends */
    uint32_t rcv_nxt; /* next seq the peer expects (the stack's) */
    bool ts;
    uint32_t tsval, ts_recent;
};

static struct cap *last(struct net *n, int side)
{
    return n->ncap[side] ? &n->cap[side][n->ncap[side] - 1] : NULL;
}

static int peer_send(struct peer *p, uint8_t flags, const void *data, uint32_t len)
{
    struct craft c = {
        .sport = p->port, .dport = p->lport, .seq = p->snd_nxt, .ack = p->rcv_nxt,
        .flags = flags, .window = 65535, .ts = p->ts, .tsval = p->tsval, .tsecr = p->ts_recent,
        .payload = data, .plen = len,
    };
    int r = craft_send(p->n, p->side, &c, p->addr, p->laddr);
    p->snd_nxt += len + !!(flags & (TCP_FLAG_SYN | TCP_FLAG_FIN));
    return r;
}

/* Passive open on stack 1 (listening on :80), completed by a crafted peer.
 * Returns the accepted handle. */
static tcp_handle_t passive_open(struct net *n, struct peer *p, bool ts)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->side = 1;
    p->addr = ADDR_A;
    p->laddr = ADDR_B;
    p->port = PEER_PORT;
    p->lport = 80;
    p->snd_nxt = PEER_ISN;
    p->ts = ts;
    p->tsval = 500;
    struct craft syn = {.sport = p->port, .dport = 80, .seq = PEER_ISN, .flags = TCP_FLAG_SYN,
                        .window = 65535, .mss = true, .mss_v = 1460, .ws = true, .ws_v = 0,
                        .sackp = true, .ts = ts, .tsval = p->tsval};
    unsigned before = n->ncap[1];
    CHECK_EQ_INT(craft_send(n, 1, &syn, p->addr, p->laddr), 0);
    p->snd_nxt++;
    CHECK_EQ_INT(n->ncap[1], before + 1);
    struct cap *sa = last(n, 1);
    CHECK_EQ_INT(sa->h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    CHECK_EQ_INT(sa->h.ack, PEER_ISN + 1);
    p->rcv_nxt = sa->h.seq + 1;
    p->ts_recent = sa->h.ts_val;
    int acc = n->app[1].accepted;
    CHECK_EQ_INT(peer_send(p, TCP_FLAG_ACK, NULL, 0), 0);
    CHECK_EQ_INT(n->app[1].accepted, acc + 1);
    return n->app[1].h;
}

static void cap_net(struct net *n)
{
    net_init(n, NULL, NULL);
    n->capture[0] = n->capture[1] = true;
}

static void test_rst_closed_port(void)
{
    struct net n;
    cap_net(&n);
    struct craft syn = {.sport = 5555, .dport = 81, .seq = 1000, .flags = TCP_FLAG_SYN, .window = 1000};
    CHECK_EQ_INT(craft_send(&n, 1, &syn, ADDR_A, ADDR_B), -ENOENT);
    CHECK_EQ_INT(n.ncap[1], 1);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_RST | TCP_FLAG_ACK);
    CHECK_EQ_INT(last(&n, 1)->h.seq, 0);
    CHECK_EQ_INT(last(&n, 1)->h.ack, 1001);
    CHECK_EQ_INT(last(&n, 1)->h.dport, 5555);
    struct craft ack = {.sport = 5555, .dport = 81, .seq = 1000, .ack = 777777, .flags = TCP_FLAG_ACK,
                        .window = 1000, .payload = (const uint8_t *)"hello", .plen = 5};
    CHECK_EQ_INT(craft_send(&n, 1, &ack, ADDR_A, ADDR_B), -ENOENT);
    CHECK_EQ_INT(n.ncap[1], 2);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_RST);
    CHECK_EQ_INT(last(&n, 1)->h.seq, 777777);
    struct craft rst = {.sport = 5555, .dport = 81, .seq = 1000, .flags = TCP_FLAG_RST};
    craft_send(&n, 1, &rst, ADDR_A, ADDR_B);
    CHECK_EQ_INT(n.ncap[1], 2); /* never a RST for a RST */
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_DROP_NO_CONN), 3);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_RST_OUT), 2);
    /* malformed: short header, bad data offset, bad option length */
    uint8_t bad[40] = {0};
    struct tcp_seg_in in = {.saddr = ADDR_A, .daddr = ADDR_B, .data = bad, .len = 10};
    CHECK_EQ_INT(tcp_input(n.st[1], &in, n.now), -EINVAL);
    bad[12] = 0xf0; /* 60-byte header in 40 bytes */
    in.len = 40;
    CHECK_EQ_INT(tcp_input(n.st[1], &in, n.now), -EINVAL);
    bad[12] = 0x60; /* 24 bytes: one option */
    bad[20] = 2;
    bad[21] = 9; /* MSS with length 9 */
    CHECK_EQ_INT(tcp_input(n.st[1], &in, n.now), -EINVAL);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_DROP_MALFORMED), 3);
    CHECK_EQ_INT(n.ncap[1], 2);
    net_free(&n);
}

static void test_passive_options(void)
{
    struct tcp_stack_params pb;
    net_default_params(&pb);
    pb.rcvbuf = 256 * 1024;
    struct net n;
    net_init(&n, NULL, &pb);
    n.capture[1] = true;
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct craft syn = {.sport = 4444, .dport = 80, .seq = 1000, .flags = TCP_FLAG_SYN, .window = 30000,
                        .mss = true, .mss_v = 1200, .ws = true, .ws_v = 7, .sackp = true,
                        .ts = true, .tsval = 4242};
    CHECK_EQ_INT(craft_send(&n, 1, &syn, ADDR_A, ADDR_B), 0);
    struct cap *sa = last(&n, 1);
    CHECK_EQ_INT(sa->h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    CHECK(sa->h.has_mss && sa->h.mss == 1460);
    CHECK(sa->h.has_wscale && sa->h.wscale == 3); /* 256 KiB >> 3 fits 16 bits */
    CHECK(sa->h.has_sack_perm);
    CHECK(sa->h.has_ts && sa->h.ts_ecr == 4242);
    CHECK_EQ_INT(sa->h.window, 65535); /* unscaled in a SYN */
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_SYN_RCVD], 1);
    /* a retransmitted SYN gets the same SYN-ACK again */
    uint32_t iss = sa->h.seq;
    craft_send(&n, 1, &syn, ADDR_A, ADDR_B);
    CHECK_EQ_INT(last(&n, 1)->h.seq, iss);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    /* final ACK with a bad ack number: RST, still SYN_RCVD */
    struct craft bad = {.sport = 4444, .dport = 80, .seq = 1001, .ack = iss + 7, .flags = TCP_FLAG_ACK,
                        .window = 100, .ts = true, .tsval = 4243, .tsecr = sa->h.ts_val};
    craft_send(&n, 1, &bad, ADDR_A, ADDR_B);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_RST);
    CHECK_EQ_INT(n.app[1].accepted, 0);
    struct craft ack = bad;
    ack.ack = iss + 1;
    craft_send(&n, 1, &ack, ADDR_A, ADDR_B);
    CHECK_EQ_INT(n.app[1].accepted, 1);
    struct tcp_conn_info i;
    CHECK_EQ_INT(tcp_conn_info(n.st[1], n.app[1].h, &i), 0);
    CHECK_EQ_INT(i.state, TCP_STATE_ESTABLISHED);
    CHECK_EQ_INT(i.mss, 1200);
    CHECK_EQ_INT(i.snd_wscale, 7);
    CHECK_EQ_INT(i.rcv_wscale, 3);
    CHECK_EQ_INT(i.snd_wnd, 100u << 7);
    CHECK(i.ts_ok && i.sack_ok);
    /* a peer without window scaling: we must not scale either */
    struct craft syn2 = {.sport = 4445, .dport = 80, .seq = 5000, .flags = TCP_FLAG_SYN, .window = 30000};
    craft_send(&n, 1, &syn2, ADDR_A, ADDR_B);
    CHECK(!last(&n, 1)->h.has_wscale && !last(&n, 1)->h.has_ts && !last(&n, 1)->h.has_sack_perm);
    net_free(&n);
}

static void test_challenge_ack(void)
{
    struct net n;
    cap_net(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, true);
    unsigned c0 = n.ncap[1];
    /* RST in the window but not at rcv_nxt: challenge ACK, connection lives */
    uint32_t save = p.snd_nxt;
    p.snd_nxt = save + 100;
    peer_send(&p, TCP_FLAG_RST, NULL, 0);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_ACK);
    CHECK_EQ_INT(last(&n, 1)->h.ack, save);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_CHALLENGE_ACK), 1);
    CHECK_EQ_INT(n.app[1].closed, 0);
    /* RST outside the window: dropped silently */
    p.snd_nxt = save + 10000000;
    peer_send(&p, TCP_FLAG_RST, NULL, 0);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    /* SYN on an established connection: challenge ACK (RFC 5961 4) */
    p.snd_nxt = save + 5;
    peer_send(&p, TCP_FLAG_SYN, NULL, 0);
    CHECK_EQ_INT(n.ncap[1], c0 + 2);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_ACK);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_CHALLENGE_ACK), 2);
    CHECK_EQ_INT(n.app[1].closed, 0);
    /* ACK for data never sent: ACK back, dropped */
    p.snd_nxt = save;
    p.rcv_nxt += 5000;
    peer_send(&p, TCP_FLAG_ACK, "zz", 2);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_DROP_BAD_ACK), 1);
    p.rcv_nxt -= 5000;
    p.snd_nxt = save;
    /* a flood of forged in-window RSTs: at most 1000 challenge ACKs a
     * second (the two above count) */
    for (int k = 0; k < 3000; k++) {
        p.snd_nxt = save + 1 + (uint32_t)k % 1000;
        peer_send(&p, TCP_FLAG_RST, NULL, 0);
    }
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_CHALLENGE_ACK), 1000);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_CHALLENGE_ACK_LIMITED), 2002);
    CHECK_EQ_INT(n.app[1].closed, 0);
    p.snd_nxt = save;
    /* the exact RST ends it */
    peer_send(&p, TCP_FLAG_RST, NULL, 0);
    CHECK_EQ_INT(n.app[1].closed, 1);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(tcp_send(n.st[1], h, "x", 1, n.now), -EBADF);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    net_free(&n);
}

static void test_paws_and_delack(void)
{
    struct net n;
    cap_net(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct peer p;
    passive_open(&n, &p, true);
    unsigned c0 = n.ncap[1];
    /* one segment: no immediate ACK; the delayed-ACK timer sends it */
    p.tsval = 600;
    peer_send(&p, TCP_FLAG_ACK | TCP_FLAG_PSH, "abc", 3);
    CHECK_EQ_INT(n.ncap[1], c0);
    CHECK_EQ_INT(n.app[1].rx_len, 3);
    net_run(&n, n.now + 39000, NULL);
    CHECK_EQ_INT(n.ncap[1], c0);
    net_run(&n, n.now + 2000, NULL);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    CHECK_EQ_INT(last(&n, 1)->h.ack, p.snd_nxt);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_DELACK_TIMER), 1);
    /* two segments: ACK at once */
    peer_send(&p, TCP_FLAG_ACK, "d", 1);
    peer_send(&p, TCP_FLAG_ACK, "e", 1);
    CHECK_EQ_INT(n.ncap[1], c0 + 2);
    /* out of order: immediate duplicate ACK with a SACK block */
    p.snd_nxt += 10;
    peer_send(&p, TCP_FLAG_ACK, "later", 5);
    CHECK_EQ_INT(n.ncap[1], c0 + 3);
    CHECK_EQ_INT(last(&n, 1)->h.ack, p.snd_nxt - 15);
    CHECK_EQ_INT(last(&n, 1)->h.n_sack, 1);
    CHECK_EQ_INT(last(&n, 1)->h.sack[0][0], p.snd_nxt - 5);
    CHECK_EQ_INT(last(&n, 1)->h.sack[0][1], p.snd_nxt);
    /* fill the hole: everything delivered, ACK at once, no SACK left */
    uint32_t end = p.snd_nxt;
    p.snd_nxt -= 15;
    peer_send(&p, TCP_FLAG_ACK, "0123456789", 10);
    CHECK_EQ_INT(last(&n, 1)->h.ack, end);
    CHECK_EQ_INT(last(&n, 1)->h.n_sack, 0);
    CHECK_EQ_INT(n.app[1].rx_len, 20);
    CHECK_MEM(n.app[1].rx, "abcde0123456789later", 20);
    p.snd_nxt = end;
    /* PAWS: an old timestamp is refused, with an ACK */
    unsigned c1 = n.ncap[1];
    p.tsval = 100;
    peer_send(&p, TCP_FLAG_ACK, "old", 3);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_PAWS_REJECTED), 1);
    CHECK_EQ_INT(n.ncap[1], c1 + 1);
    CHECK_EQ_INT(n.app[1].rx_len, 20);
    net_free(&n);
}

static bool synack_sack; /* the crafted server offers SACK-permitted */

/* Active open from stack 0 to a crafted server; returns the handle. */
static tcp_handle_t active_open(struct net *n, struct peer *p, uint16_t mss, uint64_t rtt)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->side = 0;
    p->addr = ADDR_B;
    p->laddr = ADDR_A;
    p->lport = 0;
    p->port = 80;
    int64_t h = tcp_connect(n->st[0], ADDR_A, ADDR_B, 80, NULL, n->now);
    CHECK(h >= 0);
    struct cap *syn = last(n, 0);
    CHECK_EQ_INT(syn->h.flags, TCP_FLAG_SYN);
    p->lport = syn->h.sport;
    p->rcv_nxt = syn->h.seq + 1;
    p->snd_nxt = 70000;
    n->now += rtt;
    struct craft sa = {.sport = 80, .dport = p->lport, .seq = p->snd_nxt, .ack = p->rcv_nxt,
                       .flags = TCP_FLAG_SYN | TCP_FLAG_ACK, .window = 65535, .mss = true, .mss_v = mss,
                       .sackp = synack_sack};
    CHECK_EQ_INT(craft_send(n, 0, &sa, p->addr, p->laddr), 0);
    p->snd_nxt++;
    CHECK_EQ_INT(n->app[0].connected, 1);
    CHECK_EQ_INT(last(n, 0)->h.flags, TCP_FLAG_ACK);
    return (tcp_handle_t)h;
}

static void test_syn_retransmit_backoff(void)
{
    struct net n;
    cap_net(&n);
    uint64_t t0 = n.now;
    int64_t h = tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now);
    CHECK(h >= 0);
    net_run(&n, t0 + 100000000, NULL); /* 100 s, nobody answers */
    /* SYN at 0, then after 1, 2, 4, 8, 16 s (RFC 6298 2.1 and 5.5); give
     * up after syn_retries (5) with closed(TIMEOUT) */
    CHECK_EQ_INT(n.ncap[0], 6);
    static const uint64_t at[] = {0, 1, 3, 7, 15, 31};
    for (unsigned i = 0; i < 6 && i < n.ncap[0]; i++) {
        uint64_t dt = n.cap[0][i].at - t0;
        CHECK(dt >= at[i] * 1000000 && dt <= at[i] * 1000000 + 2000);
        CHECK_EQ_INT(n.cap[0][i].h.flags, TCP_FLAG_SYN);
    }
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[0].reason, TCP_CLOSE_TIMEOUT);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_CONNECT_FAILED), 1);
    CHECK_EQ_INT(tcp_stack_conns(n.st[0]), 0);
    net_free(&n);
}

/* A restarted process must not look older than its previous life to a
 * peer that holds one of its 4-tuples in TIME_WAIT: TSvals start from
 * ts_base_ms (a clock that does not go back), and the local port search
 * from eport_first (random per process), not from eport_min each time. */
static void test_ts_base_and_first_port(void)
{
    struct tcp_stack_params p;
    net_default_params(&p);
    p.ts_base_ms = 0xfffff000u; /* near the wrap: TSvals are modular */
    p.eport_first = 40001;
    struct net n;
    net_init(&n, &p, NULL);
    n.capture[0] = n.capture[1] = true;
    CHECK(tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now) >= 0);
    struct cap *syn = last(&n, 0);
    CHECK_EQ_INT(syn->h.flags, TCP_FLAG_SYN);
    CHECK_EQ_INT(syn->h.sport, 40001);
    CHECK(syn->h.has_ts);
    CHECK_EQ_INT(syn->h.ts_val, 0xfffff000u + (uint32_t)(n.now / 1000));
    /* later, the next port and the same clock (past the TSval wrap) */
    n.now += 5000000;
    CHECK(tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now) >= 0);
    CHECK_EQ_INT(last(&n, 0)->h.sport, 40002);
    CHECK_EQ_INT(last(&n, 0)->h.ts_val, 0xfffff000u + (uint32_t)(n.now / 1000));
    /* eport_first outside the range: the search starts at eport_min */
    net_free(&n);
    p.eport_first = 7;
    net_init(&n, &p, NULL);
    n.capture[0] = true;
    CHECK(tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now) >= 0);
    CHECK_EQ_INT(last(&n, 0)->h.sport, 32768);
    net_free(&n);
}

static void test_rto_doubling_and_karn(void)
{
    struct net n;
    cap_net(&n);
    struct peer p;
    tcp_handle_t h = active_open(&n, &p, 1000, 100000); /* 100 ms handshake RTT */
    struct tcp_conn_info i;
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.srtt_us, 100000);
    CHECK_EQ_INT(i.rto_us, 300000); /* 100 ms + 4 * 50 ms */
    /* send 500 bytes; nobody ACKs: a tail loss probe after 2 * srtt + the
     * delayed-ACK allowance (240 ms, RFC 8985), then RTOs 300, 600 and
     * 1200 ms apart */
    uint64_t t0 = n.now;
    unsigned c0 = n.ncap[0];
    uint8_t d[500];
    memset(d, 'x', sizeof(d));
    CHECK_EQ_INT(tcp_send(n.st[0], h, d, sizeof(d), n.now), 500);
    CHECK_EQ_INT(n.ncap[0], c0 + 1);
    net_run(&n, t0 + 2400000, NULL);
    CHECK_EQ_INT(n.ncap[0], c0 + 5);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_TLP_PROBE), 1);
    static const uint64_t at[] = {0, 240, 540, 1140, 2340};
    for (unsigned k = 0; k < 5 && c0 + k < n.ncap[0]; k++) {
        struct cap *c = &n.cap[0][c0 + k];
        uint64_t dt = c->at - t0;
        CHECK(dt >= at[k] * 1000 && dt <= at[k] * 1000 + 2000);
        CHECK_EQ_INT(c->plen, 500);
        CHECK_EQ_INT(c->h.seq, p.rcv_nxt);
    }
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RTO_EXPIRED), 3);
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.rto_us, 2400000); /* backed off: 300 ms << 3 */
    CHECK_EQ_INT(i.cwnd, 1000);
    /* the ACK arrives 10 ms after the last retransmission. Karn: no RTT
     * sample from a retransmitted segment, srtt stays 100 ms; the backoff
     * ends and the RTO returns to the estimate */
    n.now += 10000;
    p.rcv_nxt += 500;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.srtt_us, 100000);
    CHECK_EQ_INT(i.rto_us, 300000);
    CHECK_EQ_INT(i.snd_una, i.snd_nxt);
    /* a fresh segment ACKed after 20 ms gives a sample: srtt moves down */
    CHECK_EQ_INT(tcp_send(n.st[0], h, d, 100, n.now), 100);
    n.now += 20000;
    p.rcv_nxt += 100;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.srtt_us, (7 * 100000 + 20000) / 8);
    net_free(&n);
}

static void test_rto_gives_up(void)
{
    struct net n;
    cap_net(&n);
    struct peer p;
    tcp_handle_t h = active_open(&n, &p, 1000, 100000);
    CHECK_EQ_INT(tcp_send(n.st[0], h, "lost", 4, n.now), 4);
    /* a tail loss probe, then RTO 300 ms doubling: 8 retransmissions by
     * about 0.3 * (2^8 - 1) = 76.5 s, the ninth expiry 60 s later (the cap)
     * gives up: RST, closed(TIMEOUT) */
    net_run(&n, n.now + 130000000, NULL);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RETRANSMIT), 9);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_TLP_PROBE), 1);
    CHECK_EQ_INT(n.app[0].closed, 0);
    net_run(&n, n.now + 10000000, NULL);
    CHECK_EQ_INT(n.app[0].closed, 1);
    CHECK_EQ_INT(n.app[0].reason, TCP_CLOSE_TIMEOUT);
    CHECK_EQ_INT(last(&n, 0)->h.flags & TCP_FLAG_RST, TCP_FLAG_RST);
    CHECK_EQ_INT(tcp_stack_conns(n.st[0]), 0);
    net_free(&n);
}

static void test_orphan_fin_wait_2_times_out(void)
{
    struct net n;
    cap_net(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, false);
    tcp_close(n.st[1], h, n.now);
    p.rcv_nxt++;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0); /* FIN acked, but no FIN back */
    const struct tcp_counters *cb = tcp_stack_counters(n.st[1]);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_FIN_WAIT_2], 1);
    net_run(&n, n.now + 59000000, NULL);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_FIN_WAIT_2], 1);
    net_run(&n, n.now + 2000000, NULL); /* rto_max_us (60 s) later: gone */
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_FIN_WAIT_2], 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    net_free(&n);
}

static void test_fast_retransmit_newreno(void)
{
    struct net n;
    cap_net(&n);
    struct peer p;
    tcp_handle_t h = active_open(&n, &p, 1000, 1000);
    uint32_t base = p.rcv_nxt;
    static uint8_t d[20000];
    for (unsigned k = 0; k < sizeof(d); k++)
        d[k] = (uint8_t)k;
    unsigned c0 = n.ncap[0];
    CHECK_EQ_INT(tcp_send(n.st[0], h, d, 10000, n.now), 10000);
    CHECK_EQ_INT(n.ncap[0], c0 + 10); /* initial window: 10 segments */
    struct tcp_conn_info i;
    /* segment 2 (bytes 1000..1999) is lost: ACK 1000, then three dupACKs */
    p.rcv_nxt = base + 1000;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    tcp_conn_info(n.st[0], h, &i);
    uint32_t cwnd1 = i.cwnd;
    CHECK_EQ_INT(cwnd1, 11000); /* slow start: +1 MSS */
    unsigned c1 = n.ncap[0];
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_FAST_RETRANSMIT), 0);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_DUP_ACK_IN), 2);
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_FAST_RETRANSMIT), 1);
    CHECK(n.ncap[0] > c1);
    struct cap *rx = &n.cap[0][c1];
    CHECK_EQ_INT(rx->h.seq, base + 1000);
    CHECK_EQ_INT(rx->plen, 1000);
    CHECK_MEM(rx->raw + rx->h.hdr_len, d + 1000, 16);
    tcp_conn_info(n.st[0], h, &i);
    /* ssthresh = flight / 2 = 9000 / 2; cwnd = ssthresh + 3 MSS */
    CHECK_EQ_INT(i.ssthresh, 4500);
    CHECK_EQ_INT(i.cwnd, 4500 + 3000);
    /* more dupACKs inflate cwnd by one MSS each */
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.cwnd, 4500 + 4000);
    /* partial ACK (segment 5 was lost too): retransmit it at once */
    unsigned c2 = n.ncap[0];
    p.rcv_nxt = base + 4000;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    CHECK(n.ncap[0] > c2);
    CHECK_EQ_INT(n.cap[0][c2].h.seq, base + 4000);
    CHECK_EQ_INT(n.cap[0][c2].plen, 1000);
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.cwnd, 8500 - 3000 + 1000); /* deflate by the 3000 ACKed, add 1 MSS */
    /* full ACK of everything sent before recovery: leave it, cwnd = ssthresh */
    tcp_conn_info(n.st[0], h, &i);
    p.rcv_nxt = i.snd_nxt;
    uint32_t flight_after = 0;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    tcp_conn_info(n.st[0], h, &i);
    flight_after = i.snd_nxt - i.snd_una;
    CHECK(i.cwnd <= 4500 && i.cwnd >= 1000);
    CHECK_EQ_INT(i.cwnd, flight_after + 1000 < 4500 ? flight_after + 1000 : 4500);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RTO_EXPIRED), 0);
    net_free(&n);
}

/* SACK blocks from the peer: both holes of one window are repaired at once
 * (NewReno would need one round trip per hole) */
static void test_sack_recovery(void)
{
    struct net n;
    cap_net(&n);
    struct peer p;
    synack_sack = true;
    tcp_handle_t h = active_open(&n, &p, 1000, 1000);
    synack_sack = false;
    struct tcp_conn_info i;
    tcp_conn_info(n.st[0], h, &i);
    CHECK(i.sack_ok);
    uint32_t base = p.rcv_nxt;
    static uint8_t d[10000];
    CHECK_EQ_INT(tcp_send(n.st[0], h, d, sizeof(d), n.now), 10000);
    /* segments 2 (1000..1999) and 5 (4000..4999) lost */
    p.rcv_nxt = base + 1000;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    unsigned c0 = n.ncap[0];
    struct craft dup = {.sport = 80, .dport = p.lport, .seq = p.snd_nxt, .ack = base + 1000,
                        .flags = TCP_FLAG_ACK, .window = 65535};
    /* the SACK option is built by hand: NOP NOP kind 5 len 18, two blocks */
    uint8_t buf[200];
    uint32_t blocks[3][2] = {{base + 2000, base + 4000}, {base + 2000, base + 4000},
                             {base + 5000, base + 10000}};
    for (int k = 0; k < 3; k++) {
        uint32_t len = craft_build(&dup, ADDR_B, ADDR_A, buf);
        /* append options: rewrite data offset and recompute the checksum */
        uint8_t opt[20] = {1, 1, 5, 18};
        unsigned nb = k < 2 ? 1 : 2;
        opt[3] = (uint8_t)(2 + 8 * nb);
        for (unsigned b = 0; b < nb; b++) {
            uint32_t l = b == 0 ? blocks[k][0] : blocks[2][0], r = b == 0 ? blocks[k][1] : blocks[2][1];
            for (int j = 0; j < 4; j++) {
                opt[4 + 8 * b + j] = (uint8_t)(l >> (24 - 8 * j));
                opt[8 + 8 * b + j] = (uint8_t)(r >> (24 - 8 * j));
            }
        }
        unsigned ol = (4 + 8 * nb + 3) & ~3u;
        memmove(buf + 20 + ol, buf + 20, len - 20);
        memcpy(buf + 20, opt, ol);
        len += ol;
        buf[12] = (uint8_t)(((20 + ol) / 4) << 4);
        buf[16] = buf[17] = 0;
        uint16_t cs = tcp_checksum(ADDR_B, ADDR_A, buf, len);
        buf[16] = (uint8_t)(cs >> 8);
        buf[17] = (uint8_t)cs;
        net_deliver(&n, 0, ADDR_B, ADDR_A, buf, len);
    }
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_FAST_RETRANSMIT), 1);
    /* both holes went out after the third duplicate ACK, nothing SACKed */
    bool hole1 = false, hole2 = false, resent_sacked = false;
    for (unsigned k = c0; k < n.ncap[0]; k++) {
        struct cap *c = &n.cap[0][k];
        if (!c->plen)
            continue;
        if (c->h.seq == base + 1000)
            hole1 = true;
        else if (c->h.seq == base + 4000)
            hole2 = true;
        else if (c->h.seq < base + 10000)
            resent_sacked = true;
    }
    CHECK(hole1 && hole2);
    CHECK(!resent_sacked);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RETRANSMIT), 2);
    /* the full ACK ends recovery; no RTO was needed */
    p.rcv_nxt = base + 10000;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    tcp_conn_info(n.st[0], h, &i);
    CHECK_EQ_INT(i.snd_una, base + 10000);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RTO_EXPIRED), 0);
    net_free(&n);
}

static void test_syn_cookies(void)
{
    struct tcp_stack_params pb;
    net_default_params(&pb);
    pb.syn_backlog = 2;
    struct net n;
    net_init(&n, NULL, &pb);
    n.capture[1] = true;
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    for (int k = 0; k < 2; k++) {
        struct craft syn = {.sport = (uint16_t)(1000 + k), .dport = 80, .seq = 5, .flags = TCP_FLAG_SYN,
                            .window = 1000};
        craft_send(&n, 1, &syn, ADDR_A, ADDR_B);
    }
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_SYN_RCVD], 2);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 2);
    /* backlog full: a SYN-ACK with a cookie, no state */
    struct craft syn = {.sport = 2000, .dport = 80, .seq = 9000, .flags = TCP_FLAG_SYN, .window = 65535,
                        .mss = true, .mss_v = 1400, .ws = true, .ws_v = 6, .sackp = true,
                        .ts = true, .tsval = 777};
    CHECK_EQ_INT(craft_send(&n, 1, &syn, ADDR_A, ADDR_B), 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 2);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_SYNCOOKIE_SENT), 1);
    struct cap sa = *last(&n, 1);
    CHECK_EQ_INT(sa.h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    CHECK(sa.h.has_ts && sa.h.has_wscale && sa.h.has_sack_perm);
    /* a forged final ACK (wrong cookie): RST, no connection */
    struct craft bad = {.sport = 2000, .dport = 80, .seq = 9001, .ack = sa.h.seq + 2, .flags = TCP_FLAG_ACK,
                        .window = 100, .ts = true, .tsval = 778, .tsecr = sa.h.ts_val};
    craft_send(&n, 1, &bad, ADDR_A, ADDR_B);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_SYNCOOKIE_BAD), 1);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_RST);
    CHECK_EQ_INT(n.app[1].accepted, 0);
    /* the right final ACK, carrying data: accepted, options restored */
    struct craft ack = bad;
    ack.ack = sa.h.seq + 1;
    ack.payload = (const uint8_t *)"GET /";
    ack.plen = 5;
    CHECK_EQ_INT(craft_send(&n, 1, &ack, ADDR_A, ADDR_B), 0);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_SYNCOOKIE_OK), 1);
    CHECK_EQ_INT(n.app[1].accepted, 1);
    CHECK_EQ_INT(n.app[1].rx_len, 5);
    struct tcp_conn_info i;
    CHECK_EQ_INT(tcp_conn_info(n.st[1], n.app[1].h, &i), 0);
    CHECK_EQ_INT(i.mss, 1400);
    CHECK_EQ_INT(i.snd_wscale, 6);
    CHECK_EQ_INT(i.snd_wnd, 100u << 6);
    CHECK(i.ts_ok && i.sack_ok);
    /* the same cookie 3 minutes later is stale */
    n.now += 200000000ull;
    ack.sport = 2000;
    struct craft syn3 = syn;
    syn3.sport = 2001;
    n.ncap[1] = 0;
    craft_send(&n, 1, &syn3, ADDR_A, ADDR_B);
    struct cap sa3 = *last(&n, 1);
    n.now += 200000000ull;
    struct craft late = {.sport = 2001, .dport = 80, .seq = 9001, .ack = sa3.h.seq + 1,
                         .flags = TCP_FLAG_ACK, .window = 100};
    craft_send(&n, 1, &late, ADDR_A, ADDR_B);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_SYNCOOKIE_BAD), 2);
    net_free(&n);
}

static bool a_conn(struct net *n) { return n->app[0].connected > 0; }

/* The real thing: a SYN flood from crafted addresses fills the backlog;
 * a genuine client (stack 0) still connects through a cookie and moves
 * data both ways. */
static void test_syn_flood_legit_client(void)
{
    struct tcp_stack_params pb;
    net_default_params(&pb);
    pb.max_conns = 32;
    pb.syn_backlog = 8;
    struct net n;
    net_init(&n, NULL, &pb);
    CHECK(tcp_listen(n.st[1], 0, 80, NULL) >= 0);
    uint64_t x = 1;
    for (int k = 0; k < 5000; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        struct craft syn = {.sport = (uint16_t)(x >> 40 | 1), .dport = 80, .seq = (uint32_t)x,
                            .flags = TCP_FLAG_SYN, .window = 1000, .mss = true, .mss_v = 1460};
        craft_send(&n, 1, &syn, 0x0A000000u | (uint32_t)(x >> 20 & 0xffffff), ADDR_B);
    }
    const struct tcp_counters *cb = tcp_stack_counters(n.st[1]);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_SYN_RCVD], 8);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 8);
    CHECK(cb->c[TCP_CNT_SYNCOOKIE_SENT] >= 4990);
    CHECK(n.blackholed >= 5000);
    /* the genuine client */
    int64_t h = tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now);
    CHECK(h >= 0);
    n.app[0].h = (tcp_handle_t)h;
    CHECK(net_run(&n, n.now + 100000, a_conn));
    net_run(&n, n.now + 10000, NULL);
    CHECK_EQ_INT(n.app[1].accepted, 1);
    CHECK(cb->c[TCP_CNT_SYNCOOKIE_OK] == 1);
    size_t len = 200000;
    uint8_t *d = rand_bytes(len, 11);
    n.app[0].tx = d;
    n.app[0].tx_len = len;
    app_pump(&n.app[0]);
    net_run(&n, n.now + 5000000, NULL);
    CHECK(n.app[1].rx_len == len && memcmp(n.app[1].rx, d, len) == 0);
    /* the half-open entries give up after their SYN-ACK retries */
    net_run(&n, n.now + 70000000, NULL);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_SYN_RCVD], 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 1);
    free(d);
    net_free(&n);
}

static void test_time_wait_expiry_and_reuse(void)
{
    struct net n;
    cap_net(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, true);
    /* the server closes first: FIN; the peer ACKs it and sends its FIN */
    CHECK_EQ_INT(tcp_close(n.st[1], h, n.now), 0);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_FIN | TCP_FLAG_ACK);
    p.rcv_nxt++;
    p.tsval++;
    peer_send(&p, TCP_FLAG_ACK, NULL, 0);
    const struct tcp_counters *cb = tcp_stack_counters(n.st[1]);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_FIN_WAIT_2], 1);
    peer_send(&p, TCP_FLAG_FIN | TCP_FLAG_ACK, NULL, 0);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_ACK);
    CHECK_EQ_INT(last(&n, 1)->h.ack, p.snd_nxt);
    /* RFC 1337: a RST, even exactly at rcv_nxt, does not end TIME_WAIT */
    peer_send(&p, TCP_FLAG_RST, NULL, 0);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_TIME_WAIT_RST_IGNORED), 1);
    /* a retransmitted FIN is ACKed again */
    unsigned c0 = n.ncap[1];
    p.snd_nxt--;
    peer_send(&p, TCP_FLAG_FIN | TCP_FLAG_ACK, NULL, 0);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    /* TIME_WAIT ends after time_wait_us (2 s) */
    net_run(&n, n.now + 1900000, NULL);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    net_run(&n, n.now + 200000, NULL);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    CHECK_EQ_INT(n.app[1].closed, 0); /* tcp_close: no event */

    /* again, and this time a new SYN with a higher sequence number takes
     * the 4-tuple over while it is in TIME_WAIT */
    h = passive_open(&n, &p, true);
    tcp_close(n.st[1], h, n.now);
    p.rcv_nxt++;
    p.tsval++;
    peer_send(&p, TCP_FLAG_FIN | TCP_FLAG_ACK, NULL, 0);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    struct craft syn = {.sport = PEER_PORT, .dport = 80, .seq = p.snd_nxt + 100000, .flags = TCP_FLAG_SYN,
                        .window = 65535, .ts = true, .tsval = p.tsval + 1};
    CHECK_EQ_INT(craft_send(&n, 1, &syn, ADDR_A, ADDR_B), 0);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_TIME_WAIT_REUSED), 1);
    CHECK_EQ_INT(last(&n, 1)->h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    CHECK_EQ_INT(last(&n, 1)->h.ack, p.snd_nxt + 100001);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 0);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_SYN_RCVD], 1);
    net_free(&n);
}

static void test_time_wait_bounded_by_pool(void)
{
    struct tcp_stack_params pb;
    net_default_params(&pb);
    pb.max_conns = 4;
    pb.syn_backlog = 4;
    struct net n;
    net_init(&n, NULL, &pb);
    n.capture[1] = true;
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    /* one connection into TIME_WAIT (server closes first) */
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, false);
    tcp_close(n.st[1], h, n.now);
    p.rcv_nxt++;
    peer_send(&p, TCP_FLAG_FIN | TCP_FLAG_ACK, NULL, 0);
    const struct tcp_counters *cb = tcp_stack_counters(n.st[1]);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    /* four new SYNs: the pool has three free entries, the TIME_WAIT one
     * is recycled for the fourth */
    for (uint16_t port = 1; port <= 4; port++) {
        struct craft syn = {.sport = (uint16_t)(PEER_PORT + port), .dport = 80, .seq = 100,
                            .flags = TCP_FLAG_SYN, .window = 65535};
        craft_send(&n, 1, &syn, ADDR_A, ADDR_B);
    }
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 4);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_TIME_WAIT_EVICTED), 1);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 0);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_SYN_RCVD], 4);
    /* a fifth: no entry left, answered with a cookie instead */
    struct craft syn = {.sport = PEER_PORT + 9, .dport = 80, .seq = 100, .flags = TCP_FLAG_SYN,
                        .window = 65535};
    craft_send(&n, 1, &syn, ADDR_A, ADDR_B);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 4);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_SYNCOOKIE_SENT), 1);
    net_free(&n);
}

static void test_ooo_flood_bounded(void)
{
    struct net n;
    cap_net(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, false);
    uint32_t base = p.snd_nxt;
    for (int k = 0; k < 100; k++) {
        p.snd_nxt = base + 2 + 2 * (uint32_t)k; /* 1-byte islands */
        peer_send(&p, TCP_FLAG_ACK, "q", 1);
    }
    struct tcp_conn_info i;
    tcp_conn_info(n.st[1], h, &i);
    CHECK_EQ_INT(i.ooo_segs, 16);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_OOO_DROPPED), 84);
    CHECK_EQ_INT(i.recv_queued, 0);
    /* SACK blocks in the duplicate ACKs: at most 4 (no timestamps) */
    CHECK_EQ_INT(last(&n, 1)->h.n_sack, 4);
    /* garbage thrown at the connection does not kill it */
    uint64_t x = 7;
    for (int k = 0; k < 2000; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        struct craft g = {.sport = PEER_PORT, .dport = 80, .seq = (uint32_t)(x >> 32),
                          .ack = (uint32_t)x, .flags = (uint8_t)(x >> 24) & ~TCP_FLAG_RST,
                          .window = (uint16_t)(x >> 8), .payload = (const uint8_t *)"garbage",
                          .plen = (uint32_t)(x >> 60) % 8};
        craft_send(&n, 1, &g, ADDR_A, ADDR_B);
    }
    CHECK_EQ_INT(tcp_conn_info(n.st[1], h, &i), 0);
    CHECK(i.state == TCP_STATE_ESTABLISHED || i.state == TCP_STATE_CLOSE_WAIT);
    /* fill the first hole: the first island joins the stream */
    p.snd_nxt = base;
    peer_send(&p, TCP_FLAG_ACK, "ab", 2);
    tcp_conn_info(n.st[1], h, &i);
    CHECK_EQ_INT(i.rcv_nxt, base + 3);
    CHECK_EQ_INT(i.ooo_segs, 15);
    CHECK_EQ_INT(n.app[1].rx_len, 3);
    CHECK_MEM(n.app[1].rx, "abq", 3);
    net_free(&n);
}

static void test_idle_timeout_and_keepalive(void)
{
    struct tcp_stack_params pb;
    net_default_params(&pb);
    pb.keepalive_idle_us = 5000000;
    pb.keepalive_intvl_us = 1000000;
    pb.keepalive_probes = 3;
    struct net n;
    net_init(&n, NULL, &pb);
    n.capture[1] = true;
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, false);
    unsigned c0 = n.ncap[1];
    /* silent peer: 3 probes at 5, 6, 7 s, then give up at 8 s with RST */
    net_run(&n, n.now + 7500000, NULL);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_KEEPALIVE_PROBE), 3);
    CHECK_EQ_INT(n.ncap[1], c0 + 3);
    CHECK_EQ_INT(n.cap[1][c0].h.seq, p.rcv_nxt - 1);
    CHECK_EQ_INT(n.app[1].closed, 0);
    net_run(&n, n.now + 1000000, NULL);
    CHECK_EQ_INT(n.app[1].closed, 1);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_TIMEOUT);
    CHECK_EQ_INT(last(&n, 1)->h.flags & TCP_FLAG_RST, TCP_FLAG_RST);
    (void)h;

    /* idle timeout on a connection, and a peer answering keepalives */
    h = passive_open(&n, &p, false);
    CHECK_EQ_INT(tcp_set_idle_timeout(n.st[1], h, 3000000, n.now), 0);
    net_run(&n, n.now + 2000000, NULL);
    peer_send(&p, TCP_FLAG_ACK, "x", 1); /* traffic resets the clock */
    net_run(&n, n.now + 2500000, NULL);
    CHECK_EQ_INT(n.app[1].closed, 1);
    net_run(&n, n.now + 1000000, NULL);
    CHECK_EQ_INT(n.app[1].closed, 2);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_TIMEOUT);
    net_free(&n);
}

/* RFC 1071 the slow, obvious way: big-endian 16-bit words, odd byte padded */
static uint16_t ref_checksum(uint32_t sa, uint32_t da, const uint8_t *p, size_t n)
{
    uint64_t s = (sa >> 16) + (sa & 0xffff) + (da >> 16) + (da & 0xffff) + 6 + n;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void test_checksum_and_parse(void)
{
    uint8_t *r = rand_bytes(3000, 77);
    for (size_t len = 0; len < 3000; len += 1 + len / 7)
        for (size_t off = 0; off < 4; off++)
            CHECK_EQ_INT(tcp_checksum(ADDR_A, ADDR_B, r + off, len - (len > off ? off : len)),
                         ref_checksum(ADDR_A, ADDR_B, r + off, len - (len > off ? off : len)));
    free(r);
    /* RFC 1071 example words, through the pseudo-header path: a segment
     * written by tcp_seg_out_write checks to zero, one flipped bit not */
    struct tcp_seg_out o;
    memset(&o, 0, sizeof(o));
    o.laddr = ADDR_A;
    o.raddr = ADDR_B;
    o.lport = 1234;
    o.rport = 80;
    o.seq = 0x01020304;
    o.ack = 0x05060708;
    o.flags = TCP_FLAG_ACK | TCP_FLAG_PSH;
    o.window = 512;
    o.payload[0] = (const uint8_t *)"hello ";
    o.payload_len[0] = 6;
    o.payload[1] = (const uint8_t *)"world";
    o.payload_len[1] = 5;
    uint8_t buf[100];
    CHECK_EQ_INT(tcp_seg_out_write(&o, buf, 10), -ENOSPC);
    int len = tcp_seg_out_write(&o, buf, sizeof(buf));
    CHECK_EQ_INT(len, 31);
    CHECK_EQ_INT(tcp_checksum(ADDR_A, ADDR_B, buf, 31), 0);
    CHECK_MEM(buf + 20, "hello world", 11);
    buf[25] ^= 1;
    CHECK(tcp_checksum(ADDR_A, ADDR_B, buf, 31) != 0);
    CHECK(tcp_checksum(ADDR_A, ADDR_B + 1, buf, 31) != 0);
    buf[25] ^= 1;
    struct tcp_hdr h;
    CHECK_EQ_INT(tcp_parse(buf, 31, &h), 0);
    CHECK_EQ_INT(h.sport, 1234);
    CHECK_EQ_INT(h.seq, 0x01020304);
    CHECK_EQ_INT(h.hdr_len, 20);
    /* known value: header bytes of a SYN checked against a sum by hand */
    uint8_t syn[20] = {0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x10, 0x00, 0, 0, 0, 0};
    /* sum: 0xc612+0x0002+0xc612+0x0001+6+20 + 0x04d2+0x0050+0x0001+0x5002+0x1000 */
    uint32_t s = 0xc612 + 0x0002 + 0xc612 + 0x0001 + 6 + 20 + 0x04d2 + 0x0050 + 0x0001 + 0x5002 + 0x1000;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    CHECK_EQ_INT(tcp_checksum(ADDR_A, ADDR_B, syn, 20), (uint16_t)~s);
}

int main(void)
{
    test_checksum_and_parse();
    test_rst_closed_port();
    test_passive_options();
    test_challenge_ack();
    test_paws_and_delack();
    test_syn_retransmit_backoff();
    test_rto_doubling_and_karn();
    test_ts_base_and_first_port();
    test_fast_retransmit_newreno();
    test_rto_gives_up();
    test_orphan_fin_wait_2_times_out();
    test_sack_recovery();
    test_syn_cookies();
    test_syn_flood_legit_client();
    test_time_wait_expiry_and_reuse();
    test_time_wait_bounded_by_pool();
    test_ooo_flood_bounded();
    test_idle_timeout_and_keepalive();
    return check_exit();
}
