/* Batch mode (tcp_batch_begin / tcp_batch_end) against one stack whose
 * output is captured and a crafted peer: events held to the batch's end and
 * delivered once per connection, the ACK owed every second segment sent
 * once at the end (with the window left after the upper layer read), the
 * ACKs that must not wait (out of order) sent at once, the ACK of a FIN at
 * the end (on the upper layer's own FIN if it closes back), sends and FINs
 * from inside the batch leaving at its end in full segments carrying that
 * ACK, connections closed or reset meanwhile skipped, TIME_WAIT reuse inside
 * a batch, and a plain exchange outside any batch unchanged. */
#include <stdio.h>

#include "harness.h"

#define PEER_PORT 41000
#define PEER_ISN 5000u
#define MSS 1460u

struct peer {
    struct net *n;
    uint16_t port;
    uint32_t snd_nxt, rcv_nxt;
};

/* What the server's readable callback does besides reading (set per test). */
static void (*on_readable)(struct net *n, struct app *a);

static void batch_cb_readable(void *ctx, tcp_handle_t h, void *user)
{
    struct app *a = ctx;
    a->h = h; /* the harness keeps one handle per side: this event's */
    cb_readable(ctx, h, user);
    if (on_readable && a->h != TCP_HANDLE_INVALID)
        on_readable(a->net, a);
}

static struct tcp_stack_ops batch_ops;

/* Both stacks captured; the server (side 1) uses batch_ops so a test can
 * act from its readable callback. */
static void batch_net_conns(struct net *n, uint32_t max_conns)
{
    net_init(n, NULL, NULL);
    n->capture[0] = n->capture[1] = true;
    batch_ops = net_ops;
    batch_ops.readable = batch_cb_readable;
    tcp_stack_destroy(n->st[1]);
    struct tcp_stack_params d;
    net_default_params(&d);
    if (max_conns)
        d.max_conns = max_conns;
    char err[128] = "";
    n->st[1] = tcp_stack_create(&d, &batch_ops, &n->app[1], err, sizeof(err));
    CHECK(n->st[1] != NULL);
    CHECK(tcp_listen(n->st[1], ADDR_B, 80, NULL) >= 0);
    on_readable = NULL;
}

static void batch_net(struct net *n)
{
    batch_net_conns(n, 0);
}

static struct cap *cap_at(struct net *n, unsigned i)
{
    CHECK(i < n->ncap[1]);
    return &n->cap[1][i];
}

static int peer_send(struct peer *p, uint8_t flags, const void *data, uint32_t len)
{
    struct craft c = {.sport = p->port, .dport = 80, .seq = p->snd_nxt, .ack = p->rcv_nxt,
                      .flags = flags, .window = 65535, .payload = data, .plen = len};
    int r = craft_send(p->n, 1, &c, ADDR_A, ADDR_B);
    p->snd_nxt += len + !!(flags & (TCP_FLAG_SYN | TCP_FLAG_FIN));
    return r;
}

/* Passive open on side 1 by a crafted peer from `port` (no timestamps, so
 * a full segment carries MSS bytes; SACK permitted). Returns the handle. */
static tcp_handle_t passive_open(struct net *n, struct peer *p, uint16_t port)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->port = port;
    p->snd_nxt = PEER_ISN;
    struct craft syn = {.sport = port, .dport = 80, .seq = PEER_ISN, .flags = TCP_FLAG_SYN,
                        .window = 65535, .mss = true, .mss_v = MSS, .ws = true, .ws_v = 0,
                        .sackp = true};
    unsigned c0 = n->ncap[1];
    CHECK_EQ_INT(craft_send(n, 1, &syn, ADDR_A, ADDR_B), 0);
    p->snd_nxt++;
    CHECK_EQ_INT(n->ncap[1], c0 + 1);
    struct cap *sa = cap_at(n, c0);
    CHECK_EQ_INT(sa->h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    p->rcv_nxt = sa->h.seq + 1;
    int acc = n->app[1].accepted;
    CHECK_EQ_INT(peer_send(p, TCP_FLAG_ACK, NULL, 0), 0);
    CHECK_EQ_INT(n->app[1].accepted, acc + 1);
    return n->app[1].h;
}

static uint8_t *payload; /* 64 KiB of known bytes */

/* Segment k of the peer's stream: MSS bytes from payload. */
static void peer_seg(struct peer *p, unsigned k)
{
    CHECK_EQ_INT(peer_send(p, TCP_FLAG_ACK, payload + (size_t)k * MSS, MSS), 0);
}

static uint32_t plen(const struct cap *c)
{
    return c->plen;
}

/* The window field the stack should advertise for h now. */
static uint32_t adv_window(struct net *n, tcp_handle_t h)
{
    struct tcp_conn_info i;
    CHECK_EQ_INT(tcp_conn_info(n->st[1], h, &i), 0);
    uint32_t w = i.rcv_wnd >> i.rcv_wscale;
    return w > 65535u ? 65535u : w;
}

/* --- events and the stretch ACK --------------------------------------- */

static void test_readable_once_and_stretch_ack(bool reader)
{
    struct net n;
    batch_net(&n);
    struct peer p;
    tcp_handle_t h = passive_open(&n, &p, PEER_PORT);
    n.app[1].auto_read = reader;
    int r0 = n.app[1].readable;
    unsigned c0 = n.ncap[1];

    tcp_batch_begin(n.st[1]);
    for (unsigned k = 0; k < 8; k++)
        peer_seg(&p, k);
    /* nothing told, nothing sent yet (the ACKs owed after segments 2, 4, 6
     * and 8 wait for the batch's end) */
    CHECK_EQ_INT(n.app[1].readable, r0);
    CHECK_EQ_INT(n.app[1].rx_len, 0);
    CHECK_EQ_INT(n.ncap[1], c0);
    tcp_batch_end(n.st[1], n.now);

    CHECK_EQ_INT(n.app[1].readable, r0 + 1);
    if (reader) {
        CHECK_EQ_INT(n.app[1].rx_len, 8 * MSS);
        CHECK_MEM(n.app[1].rx, payload, 8 * MSS);
    } else {
        struct tcp_conn_info i;
        CHECK_EQ_INT(tcp_conn_info(n.st[1], h, &i), 0);
        CHECK_EQ_INT(i.recv_queued, 8 * MSS);
    }
    /* exactly one ACK, for all eight, with the window left after the
     * callback read (all of it, or none of it) */
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    struct cap *a = cap_at(&n, c0);
    CHECK_EQ_INT(a->h.flags, TCP_FLAG_ACK);
    CHECK_EQ_INT(plen(a), 0);
    CHECK_EQ_INT(a->h.ack, p.snd_nxt);
    CHECK_EQ_INT(a->h.window, adv_window(&n, h));
    struct tcp_conn_info i;
    CHECK_EQ_INT(tcp_conn_info(n.st[1], h, &i), 0);
    CHECK_EQ_INT(i.rcv_wnd, reader ? 65536u : 65536u - 8 * MSS);

    /* the next batch is independent: two more segments, one more ACK */
    tcp_batch_begin(n.st[1]);
    peer_seg(&p, 8);
    peer_seg(&p, 9);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    tcp_batch_end(n.st[1], n.now);
    CHECK_EQ_INT(n.app[1].readable, r0 + 2);
    CHECK_EQ_INT(n.ncap[1], c0 + 2);
    CHECK_EQ_INT(cap_at(&n, c0 + 1)->h.ack, p.snd_nxt);
    net_free(&n);
}

/* Without a batch: one pure ACK per two full segments (RFC 5681 4.2), and
 * one readable event per segment, whether or not the upper layer reads
 * each segment as it comes. */
static void test_no_batch_acks(bool reader)
{
    struct net n;
    batch_net(&n);
    struct peer p;
    passive_open(&n, &p, PEER_PORT);
    n.app[1].auto_read = reader;
    int r0 = n.app[1].readable;
    unsigned c0 = n.ncap[1];
    for (unsigned k = 0; k < 8; k++) {
        peer_seg(&p, k);
        CHECK_EQ_INT(n.app[1].readable, r0 + (int)k + 1);
        CHECK_EQ_INT(n.ncap[1], c0 + (k + 1) / 2);
        if (k % 2 == 1) {
            struct cap *a = cap_at(&n, n.ncap[1] - 1);
            CHECK_EQ_INT(a->h.flags, TCP_FLAG_ACK);
            CHECK_EQ_INT(plen(a), 0);
            CHECK_EQ_INT(a->h.ack, p.snd_nxt);
        }
    }
    CHECK_EQ_INT(n.ncap[1], c0 + 4);
    if (reader) {
        CHECK_EQ_INT(n.app[1].rx_len, 8 * MSS);
        CHECK_MEM(n.app[1].rx, payload, 8 * MSS);
    }
    net_free(&n);
}

/* An out-of-order segment inside a batch is ACKed at once (duplicate ACK
 * with a SACK block); the batch's end adds no redundant ACK. */
static void test_ooo_in_batch(void)
{
    struct net n;
    batch_net(&n);
    struct peer p;
    passive_open(&n, &p, PEER_PORT);
    /* not read: a window update would be a legitimate extra ACK */
    n.app[1].auto_read = false;
    unsigned c0 = n.ncap[1];
    int r0 = n.app[1].readable;
    tcp_batch_begin(n.st[1]);
    peer_seg(&p, 0);
    peer_seg(&p, 1);
    CHECK_EQ_INT(n.ncap[1], c0); /* the ACK owed waits */
    uint32_t hole = p.snd_nxt;
    p.snd_nxt += MSS; /* segment 2 lost */
    peer_seg(&p, 3);
    CHECK_EQ_INT(n.ncap[1], c0 + 1); /* before the batch's end */
    struct cap *d = cap_at(&n, c0);
    CHECK_EQ_INT(d->h.ack, hole);
    CHECK_EQ_INT(d->h.n_sack, 1);
    CHECK_EQ_INT(d->h.sack[0][0], hole + MSS);
    CHECK_EQ_INT(d->h.sack[0][1], hole + 2 * MSS);
    CHECK_EQ_INT(n.app[1].readable, r0); /* held to the end */
    tcp_batch_end(n.st[1], n.now);
    CHECK_EQ_INT(n.app[1].readable, r0 + 1);
    struct tcp_conn_info ci;
    CHECK_EQ_INT(tcp_conn_info(n.st[1], n.app[1].h, &ci), 0);
    CHECK_EQ_INT(ci.recv_queued, 2 * MSS);
    /* the dup ACK already acknowledged rcv_nxt: a second ACK for the same
     * point would count as another duplicate at the sender */
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    net_free(&n);
}

/* A FIN inside a batch (the peer closes its half) is ACKed at the batch's
 * end, with peer_closed; the ACK covers the data and the FIN. Outside a
 * batch the same FIN is ACKed at once. */
static void test_fin_in_batch(bool batch)
{
    struct net n;
    batch_net(&n);
    struct peer p;
    passive_open(&n, &p, PEER_PORT);
    unsigned c0 = n.ncap[1];
    if (batch)
        tcp_batch_begin(n.st[1]);
    peer_seg(&p, 0);
    CHECK_EQ_INT(peer_send(&p, TCP_FLAG_ACK | TCP_FLAG_FIN, payload + MSS, 100), 0);
    if (batch) {
        CHECK_EQ_INT(n.ncap[1], c0); /* held for the batch's end */
        CHECK_EQ_INT(n.app[1].peer_closed, 0);
        tcp_batch_end(n.st[1], n.now);
    }
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    struct cap *a = cap_at(&n, c0);
    CHECK_EQ_INT(a->h.flags, TCP_FLAG_ACK);
    CHECK_EQ_INT(a->h.ack, p.snd_nxt); /* covers the FIN */
    CHECK_EQ_INT(n.app[1].peer_closed, 1);
    CHECK_EQ_INT(n.app[1].rx_len, MSS + 100);
    CHECK(n.app[1].eof);
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_CLOSE_WAIT], 1);
    /* nothing more owed: the delayed-ACK timer finds the ACK sent */
    n.now += 200000;
    tcp_timers_run(n.st[1], n.now);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    net_free(&n);
}

/* The upper layer closes when told of the peer's FIN inside the batch: its
 * FIN carries the ACK of the peer's, one segment instead of two. */
static void test_fin_in_batch_closed_back(void)
{
    struct net n;
    batch_net(&n);
    struct peer p;
    passive_open(&n, &p, PEER_PORT);
    n.app[1].auto_read = true;
    n.app[1].close_on_eof = true;
    unsigned c0 = n.ncap[1];
    tcp_batch_begin(n.st[1]);
    CHECK_EQ_INT(peer_send(&p, TCP_FLAG_ACK | TCP_FLAG_FIN, payload, 100), 0);
    CHECK_EQ_INT(n.ncap[1], c0);
    tcp_batch_end(n.st[1], n.now);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    struct cap *a = cap_at(&n, c0);
    CHECK_EQ_INT(a->h.flags, TCP_FLAG_ACK | TCP_FLAG_FIN);
    CHECK_EQ_INT(a->h.ack, p.snd_nxt);
    CHECK_EQ_INT(plen(a), 0);
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_LAST_ACK], 1);
    net_free(&n);
}

/* Active open inside a batch: the handshake's last ACK waits for the end
 * and rides the first data when the upper layer writes on "connected";
 * with nothing to write it goes alone at the end. */
static void test_active_open_in_batch(bool write_on_connect)
{
    struct net n;
    batch_net(&n);
    static const uint8_t hello[100] = {1, 2, 3};
    if (write_on_connect) {
        n.app[1].tx = hello;
        n.app[1].tx_len = sizeof(hello);
    }
    unsigned c0 = n.ncap[1];
    CHECK(tcp_connect(n.st[1], ADDR_B, ADDR_A, PEER_PORT, NULL, n.now) >= 0);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    struct cap *syn = cap_at(&n, c0);
    CHECK_EQ_INT(syn->h.flags, TCP_FLAG_SYN);
    uint32_t peer_isn = 90000;
    struct craft sa = {.sport = PEER_PORT, .dport = syn->h.sport, .seq = peer_isn,
                       .ack = syn->h.seq + 1, .flags = TCP_FLAG_SYN | TCP_FLAG_ACK,
                       .window = 65535, .mss = true, .mss_v = MSS, .sackp = true};
    tcp_batch_begin(n.st[1]);
    CHECK_EQ_INT(craft_send(&n, 1, &sa, ADDR_A, ADDR_B), 0);
    CHECK_EQ_INT(n.ncap[1], c0 + 1); /* no ACK yet */
    tcp_batch_end(n.st[1], n.now);
    CHECK_EQ_INT(n.app[1].connected, 1);
    CHECK_EQ_INT(n.ncap[1], c0 + 2); /* one segment: the ACK, on the data if any */
    struct cap *a = cap_at(&n, c0 + 1);
    CHECK(a->h.flags & TCP_FLAG_ACK);
    CHECK_EQ_INT(a->h.ack, peer_isn + 1);
    CHECK_EQ_INT(plen(a), write_on_connect ? sizeof(hello) : 0);
    net_free(&n);
}

/* --- sends from inside the batch ------------------------------------- */

static unsigned n_sends;
static size_t send_size;
static bool shut_after;

static void send_some(struct net *n, struct app *a)
{
    for (unsigned i = 0; i < n_sends; i++) {
        unsigned c = n->ncap[1];
        CHECK_EQ_INT(tcp_send(n->st[1], a->h, payload + 32768 + i * send_size, send_size, n->now),
                     (long)send_size);
        CHECK_EQ_INT(n->ncap[1], c); /* corked: nothing leaves yet */
    }
    if (shut_after)
        CHECK_EQ_INT(tcp_shutdown(n->st[1], a->h, n->now), 0);
}

static void check_sends(bool reader, unsigned sends, size_t size, bool shut, const uint32_t *want,
                        unsigned nwant)
{
    struct net n;
    batch_net(&n);
    struct peer p;
    passive_open(&n, &p, PEER_PORT);
    n.app[1].auto_read = reader;
    n_sends = sends;
    send_size = size;
    shut_after = shut;
    on_readable = send_some;
    unsigned c0 = n.ncap[1];
    tcp_batch_begin(n.st[1]);
    peer_seg(&p, 0);
    peer_seg(&p, 1); /* an ACK is owed */
    CHECK_EQ_INT(n.ncap[1], c0);
    tcp_batch_end(n.st[1], n.now);
    on_readable = NULL;
    CHECK_EQ_INT(n.app[1].rx_len, reader ? 2 * MSS : 0);
    /* full segments carrying the ACK owed, no pure ACK beside them */
    unsigned pure = 0, data = 0;
    uint32_t seq = p.rcv_nxt;
    for (unsigned k = c0; k < n.ncap[1]; k++) {
        struct cap *s = cap_at(&n, k);
        if (plen(s) == 0 && !(s->h.flags & TCP_FLAG_FIN)) {
            pure++;
            continue;
        }
        CHECK(data < nwant);
        if (data >= nwant)
            break;
        unsigned i = data++;
        CHECK_EQ_INT(plen(s), want[i]);
        CHECK_EQ_INT(s->h.seq, seq);
        CHECK(s->h.flags & TCP_FLAG_ACK);
        CHECK_EQ_INT(s->h.ack, p.snd_nxt);
        CHECK_EQ_INT(!!(s->h.flags & TCP_FLAG_FIN), shut && i == nwant - 1);
        CHECK_MEM(s->raw + s->h.hdr_len, payload + 32768 + (seq - p.rcv_nxt),
                  want[i] < 64 ? want[i] : 64);
        seq += want[i];
    }
    CHECK_EQ_INT(pure, 0);
    CHECK_EQ_INT(data, nwant);
    CHECK_EQ_INT(seq - p.rcv_nxt, sends * size);
    if (shut)
        CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_FIN_WAIT_1], 1);
    net_free(&n);
}

/* reader: the callback reads what came before it writes (as TLS does) */
static void test_sends_in_batch(bool reader)
{
    static const uint32_t one[] = {1200};
    check_sends(reader, 3, 400, false, one, 1); /* three sends, one segment */
    static const uint32_t three[] = {MSS, MSS, 4000 - 2 * MSS};
    check_sends(reader, 4, 1000, false, three, 3); /* four sends, three segments */
    check_sends(reader, 3, 400, true, one, 1); /* the FIN on the last data segment */
    check_sends(reader, 4, 1000, true, three, 3);
}

/* --- connections that end during the batch --------------------------- */

/* Abort every connection but the first peer's (that one was reset). */
static void close_it(struct net *n, struct app *a)
{
    struct tcp_conn_info i;
    CHECK_EQ_INT(tcp_conn_info(n->st[1], a->h, &i), 0);
    if (i.rport == PEER_PORT)
        return;
    CHECK_EQ_INT(tcp_abort(n->st[1], a->h), 0);
    a->h = TCP_HANDLE_INVALID;
}

static bool seg_to_port(struct net *n, unsigned from, uint16_t port)
{
    for (unsigned i = from; i < n->ncap[1]; i++)
        if (n->cap[1][i].h.dport == port)
            return true;
    return false;
}

/* Segments captured from index FROM on to PORT: RSTs into *RST, the rest
 * into *OTHER. */
static void segs_to_port(struct net *n, unsigned from, uint16_t port, unsigned *rst,
                         unsigned *other)
{
    *rst = *other = 0;
    for (unsigned i = from; i < n->ncap[1]; i++) {
        if (n->cap[1][i].h.dport != port)
            continue;
        if (n->cap[1][i].h.flags & TCP_FLAG_RST)
            (*rst)++;
        else
            (*other)++;
    }
}

static void test_closed_during_batch(void)
{
    struct net n;
    batch_net(&n);
    struct peer p1, p2, p3;
    passive_open(&n, &p1, PEER_PORT);
    passive_open(&n, &p2, PEER_PORT + 1);
    passive_open(&n, &p3, PEER_PORT + 2);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 3);
    n.app[1].auto_read = false; /* unread data: the ACK owed is all there is */
    unsigned c0 = n.ncap[1];
    int closed0 = n.app[1].closed;

    tcp_batch_begin(n.st[1]);
    /* p1 owes an ACK, then the peer resets it: freed, on the ackq */
    peer_seg(&p1, 0);
    peer_seg(&p1, 1);
    CHECK_EQ_INT(peer_send(&p1, TCP_FLAG_RST | TCP_FLAG_ACK, NULL, 0), 0);
    /* p2 owes an ACK; the upper layer aborts it from its readable event */
    peer_seg(&p2, 0);
    peer_seg(&p2, 1);
    /* p3 owes an ACK and lives */
    peer_seg(&p3, 0);
    peer_seg(&p3, 1);
    CHECK_EQ_INT(n.ncap[1], c0);
    on_readable = close_it;
    tcp_batch_end(n.st[1], n.now);
    on_readable = NULL;
    /* p1: closed(RESET) told, nothing sent to it */
    CHECK(!seg_to_port(&n, c0, p1.port));
    CHECK_EQ_INT(n.app[1].closed, closed0 + 1);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_RESET);
    /* p2: the abort's RST and nothing after it (no ACK for a freed entry) */
    unsigned rst2, other2;
    segs_to_port(&n, c0, p2.port, &rst2, &other2);
    CHECK_EQ_INT(rst2, 1);
    CHECK_EQ_INT(other2, 0);
    /* p3 was aborted by the same callback: its RST only, no ACK after */
    unsigned rst3, other3;
    segs_to_port(&n, c0, p3.port, &rst3, &other3);
    CHECK_EQ_INT(rst3, 1);
    CHECK_EQ_INT(other3, 0);
    CHECK_EQ_INT(tcp_stack_conns(n.st[1]), 0);
    net_free(&n);
}

/* A reset inside a batch for a connection that owes an ACK, the one alive
 * next to it still gets its ACK at the end. */
static void test_reset_skipped_other_acked(void)
{
    struct net n;
    batch_net(&n);
    struct peer p1, p2;
    passive_open(&n, &p1, PEER_PORT);
    passive_open(&n, &p2, PEER_PORT + 1);
    unsigned c0 = n.ncap[1];
    tcp_batch_begin(n.st[1]);
    peer_seg(&p1, 0);
    peer_seg(&p1, 1);
    peer_seg(&p2, 0);
    peer_seg(&p2, 1);
    CHECK_EQ_INT(peer_send(&p1, TCP_FLAG_RST | TCP_FLAG_ACK, NULL, 0), 0);
    /* a new connection inside the batch may take the freed entry */
    struct craft syn = {.sport = PEER_PORT + 7, .dport = 80, .seq = 77, .flags = TCP_FLAG_SYN,
                        .window = 65535, .mss = true, .mss_v = MSS};
    CHECK_EQ_INT(craft_send(&n, 1, &syn, ADDR_A, ADDR_B), 0);
    tcp_batch_end(n.st[1], n.now);
    CHECK(!seg_to_port(&n, c0, p1.port));
    unsigned acks2 = 0;
    for (unsigned i = c0; i < n.ncap[1]; i++)
        if (n.cap[1][i].h.dport == p2.port) {
            acks2++;
            CHECK_EQ_INT(n.cap[1][i].h.ack, p2.snd_nxt);
        }
    CHECK_EQ_INT(acks2, 1);
    CHECK_EQ_INT(n.app[1].reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(tcp_stack_counters(n.st[1])->conns_by_state[TCP_STATE_SYN_RCVD], 1);
    net_free(&n);
}

/* TIME_WAIT reuse by a new SYN inside a batch (tcp_dispatch_now frees the
 * old entry at once). full: the pool (2 entries) has no other free entry,
 * so the new connection must get the TIME_WAIT one. */
static void test_time_wait_reuse_in_batch(bool full)
{
    struct net n;
    batch_net_conns(&n, full ? 2 : 0);
    struct peer p, other;
    if (full)
        passive_open(&n, &other, PEER_PORT + 5);
    tcp_handle_t h = passive_open(&n, &p, PEER_PORT);
    CHECK_EQ_INT(tcp_close(n.st[1], h, n.now), 0);
    p.rcv_nxt++;
    CHECK_EQ_INT(peer_send(&p, TCP_FLAG_FIN | TCP_FLAG_ACK, NULL, 0), 0);
    const struct tcp_counters *cb = tcp_stack_counters(n.st[1]);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 1);
    int acc = n.app[1].accepted;
    unsigned c0 = n.ncap[1];
    tcp_batch_begin(n.st[1]);
    struct craft syn = {.sport = PEER_PORT, .dport = 80, .seq = p.snd_nxt + 100000,
                        .flags = TCP_FLAG_SYN, .window = 65535, .mss = true, .mss_v = MSS};
    CHECK_EQ_INT(craft_send(&n, 1, &syn, ADDR_A, ADDR_B), 0);
    CHECK_EQ_INT(cnt(&n, 1, TCP_CNT_TIME_WAIT_REUSED), 1);
    CHECK_EQ_INT(n.ncap[1], c0 + 1);
    struct cap *sa = cap_at(&n, c0);
    CHECK_EQ_INT(sa->h.flags, TCP_FLAG_SYN | TCP_FLAG_ACK);
    CHECK_EQ_INT(sa->h.ack, p.snd_nxt + 100001);
    struct craft ack = {.sport = PEER_PORT, .dport = 80, .seq = p.snd_nxt + 100001,
                        .ack = sa->h.seq + 1, .flags = TCP_FLAG_ACK, .window = 65535};
    CHECK_EQ_INT(craft_send(&n, 1, &ack, ADDR_A, ADDR_B), 0);
    CHECK_EQ_INT(n.app[1].accepted, acc); /* told at the end */
    tcp_batch_end(n.st[1], n.now);
    CHECK_EQ_INT(n.app[1].accepted, acc + 1);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_TIME_WAIT], 0);
    CHECK_EQ_INT(cb->conns_by_state[TCP_STATE_ESTABLISHED], full ? 2 : 1);
    net_free(&n);
}

/* --- outside any batch ------------------------------------------------ */

static bool b_got_all(struct net *n)
{
    return n->app[1].rx_len == 65536 && n->app[0].rx_len == 65536;
}

static void test_plain_exchange(void)
{
    struct net n;
    net_init(&n, NULL, NULL);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, NULL) >= 0);
    n.app[0].tx = payload;
    n.app[0].tx_len = 65536;
    n.app[1].tx = payload;
    n.app[1].tx_len = 65536;
    CHECK(tcp_connect(n.st[0], ADDR_A, ADDR_B, 80, NULL, n.now) >= 0);
    CHECK(net_run(&n, n.now + 5000000, b_got_all));
    CHECK_MEM(n.app[1].rx, payload, 65536);
    CHECK_MEM(n.app[0].rx, payload, 65536);
    CHECK_EQ_INT(n.bad_csum, 0);
    CHECK_EQ_INT(cnt(&n, 0, TCP_CNT_RETRANSMIT), 0);
    net_free(&n);
}

int main(void)
{
    payload = rand_bytes(65536, 42);
    test_no_batch_acks(false);
    test_no_batch_acks(true);
    test_readable_once_and_stretch_ack(true);
    test_readable_once_and_stretch_ack(false);
    test_ooo_in_batch();
    test_fin_in_batch(true);
    test_fin_in_batch(false);
    test_fin_in_batch_closed_back();
    test_active_open_in_batch(true);
    test_active_open_in_batch(false);
    test_sends_in_batch(false);
    test_sends_in_batch(true);
    test_closed_during_batch();
    test_reset_skipped_other_acked();
    test_time_wait_reuse_in_batch(false);
    test_time_wait_reuse_in_batch(true);
    test_plain_exchange();
    free(payload);
    return check_exit();
}
