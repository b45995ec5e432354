/* The proxy with its pools, health checks and PROXY v2 header, on three
 * in-memory TCP stacks (client, proxy, backends) joined by a FIFO:
 *   - round robin over two backend ports, each backend connection opening
 *     with a PROXY v2 header naming the client and the VIP, then the
 *     client's bytes;
 *   - least-conn with max_conns 1: a third held client is reset and counted;
 *   - health checks on the proxy's stack: a port nobody listens on is
 *     marked down and gets nothing; a pool whose only server is down
 *     refuses clients (counted);
 *   - a client filter whose pp2_info is not ready holds the header and the
 *     bytes back, then sends its TLS fields first. */
#include <stdlib.h>

#include "dataplane/proxy/pool.h"
#include "dataplane/proxy/proxy_v2.h"
#include "proxy_harness.h"

#define MAXC 128

/* --- clients: connect, send a greeting, hold the connection --------------- */
struct cli {
    tcp_handle_t h;
    const char *greeting;
    bool connected, closed;
    enum tcp_close_reason reason;
    uint16_t lport;
};
static struct cli clis[MAXC];
static unsigned n_clis;

static struct cli *cli_open(uint16_t vip_port, const char *greeting)
{
    struct cli *c = &clis[n_clis++];
    memset(c, 0, sizeof(*c));
    c->greeting = greeting;
    int64_t h = tcp_connect(st_cli, A_CLI, A_PRX, vip_port, c, now);
    CHECK(h >= 0);
    c->h = (tcp_handle_t)h;
    return c;
}

static void c_connected(void *ctx, tcp_handle_t h, void *u)
{
    (void)ctx;
    struct cli *c = u;
    c->connected = true;
    struct tcp_conn_info ci;
    CHECK_EQ_INT(tcp_conn_info(st_cli, h, &ci), 0);
    c->lport = ci.lport;
    size_t len = strlen(c->greeting);
    CHECK_EQ_INT(tcp_send(st_cli, h, c->greeting, len, now), (long long)len);
}

static void c_closed(void *ctx, tcp_handle_t h, void *u, enum tcp_close_reason r)
{
    (void)ctx;
    (void)h;
    struct cli *c = u;
    c->closed = true;
    c->reason = r;
}

/* --- backends: accept on any listened port, keep what arrives ------------- */
struct bconn {
    uint16_t port;
    tcp_handle_t h;
    uint8_t rx[4096];
    size_t len;
};
static struct bconn bes[MAXC];
static unsigned n_bes;
static uint16_t be_ports[4] = {8080, 8081, 8082, 8083};

static int b_accepted(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *u)
{
    (void)ctx;
    (void)lh;
    if (n_bes == MAXC)
        return -ENOSPC;
    struct bconn *b = &bes[n_bes++];
    memset(b, 0, sizeof(*b));
    b->port = *(const uint16_t *)u;
    b->h = h;
    tcp_set_user(st_be, h, b);
    return 0;
}

static void b_readable(void *ctx, tcp_handle_t h, void *u)
{
    (void)ctx;
    struct bconn *b = u;
    if (b == NULL)
        return;
    for (int k = 0; k < 8; k++) {
        ssize_t n = tcp_recv(st_be, h, b->rx + b->len, sizeof(b->rx) - b->len, now);
        if (n <= 0)
            break;
        b->len += (size_t)n;
    }
}

/* Backend connections on PORT that came from a proxied client (health
 * probes never send anything). */
static unsigned be_count(uint16_t port)
{
    unsigned n = 0;
    for (unsigned i = 0; i < n_bes; i++)
        n += bes[i].port == port && bes[i].len > 0;
    return n;
}

/* --- the proxy's stack -------------------------------------------------- */
/* Advances US microseconds in 1 ms steps, delivering every segment. */
static void run_for(uint64_t us)
{
    uint64_t end = now + us;
    while (now < end) {
        harness_deliver(100000);
        harness_tick();
    }
}

/* Checks that B opens with a PROXY v2 header for client C on VIP_PORT and
 * then carries exactly PAYLOAD. Returns the parsed header. */
static struct proxy_v2_info expect_header(const struct bconn *b,
                                          const struct cli *c,
                                          uint16_t vip_port, const char *payload)
{
    struct proxy_v2_info in;
    ssize_t n = proxy_v2_parse(b->rx, b->len, &in);
    CHECK(n > 0);
    if (n <= 0)
        return in;
    CHECK(in.tcp4 && !in.local);
    CHECK_EQ_INT(in.src_addr, A_CLI);
    CHECK_EQ_INT(in.src_port, c->lport);
    CHECK_EQ_INT(in.dst_addr, A_PRX);
    CHECK_EQ_INT(in.dst_port, vip_port);
    size_t pl = strlen(payload);
    CHECK_EQ_INT(b->len - (size_t)n, pl);
    CHECK(b->len - (size_t)n == pl && memcmp(b->rx + n, payload, pl) == 0);
    return in;
}

/* --- a client filter that is "handshaking" until told otherwise --------- */
static bool filter_ready;
static ssize_t f_peek(void *s, struct tcp_stack *st, tcp_handle_t h, struct tcp_iov iov[2])
{
    (void)s;
    /* Like TLS: no plaintext before the handshake is over. */
    if (!filter_ready)
        return 0;
    return tcp_recv_peek(st, h, iov);
}
static int f_consume(void *s, struct tcp_stack *st, tcp_handle_t h, size_t n, uint64_t t)
{
    (void)s;
    return tcp_recv_consume(st, h, n, t);
}
static ssize_t f_send(void *s, struct tcp_stack *st, tcp_handle_t h, const void *d,
                      size_t len, uint64_t t)
{
    (void)s;
    return tcp_send(st, h, d, len, t);
}
static int f_shutdown(void *s, struct tcp_stack *st, tcp_handle_t h, uint64_t t)
{
    (void)s;
    return tcp_shutdown(st, h, t);
}
static int f_pp2_info(void *s, struct proxy_v2_info *info)
{
    (void)s;
    if (!filter_ready)
        return 0;
    info->ssl = true;
    info->ssl_verify = 1;
    info->ssl_version = "TLSv1.3";
    info->ssl_version_len = 7;
    info->ssl_cipher = "TLS_AES_256_GCM_SHA384";
    info->ssl_cipher_len = 22;
    info->authority = "sni.example.test";
    info->authority_len = 16;
    info->alpn = (const uint8_t *)"h2";
    info->alpn_len = 2;
    return 1;
}
static const struct proxy_stream_ops filter_ops = {
    .peek = f_peek,
    .consume = f_consume,
    .send = f_send,
    .shutdown = f_shutdown,
    .pp2_info = f_pp2_info,
};

static struct proxy_listener_cfg listener(uint16_t port, unsigned n, const uint16_t *ports)
{
    struct proxy_listener_cfg l;
    memset(&l, 0, sizeof(l));
    l.addr = A_PRX;
    l.port = port;
    l.n_backends = (uint16_t)n;
    for (unsigned i = 0; i < n; i++) {
        l.backends[i].addr = A_BE;
        l.backends[i].port = ports[i];
    }
    return l;
}

int main(void)
{
    static const struct tcp_stack_ops cops = {.output = out, .connected = c_connected,
                                              .closed = c_closed};
    static const struct tcp_stack_ops bops = {.output = out, .accepted = b_accepted,
                                              .readable = b_readable,
                                              .peer_closed = b_readable};
    static const struct tcp_stack_ops pops = {out, p_acc, p_con, p_rd, p_wr, p_pc, p_cl};
    q = calloc(MAXQ, sizeof(*q));
    st_cli = harness_stack(&cops, 0, 128, 150);
    st_prx = harness_stack(&pops, 200, 128, 150);
    st_be = harness_stack(&bops, 400, 128, 150);
    char err[128];
    struct proxy_params pp = {.max_pairs = 16, .local_addr = A_PRX, .health_checks = true};
    px = proxy_create(&pp, st_prx, err, sizeof(err));
    CHECK(px != NULL);
    proxy_set_time(px, now);
    CHECK(tcp_listen(st_be, A_BE, 8080, &be_ports[0]) >= 0);
    CHECK(tcp_listen(st_be, A_BE, 8081, &be_ports[1]) >= 0);
    /* 8082: nobody listens */

    /* 1. round robin, PROXY v2 on a plain listener */
    const uint16_t two[2] = {8080, 8081};
    struct proxy_listener_cfg l = listener(80, 2, two);
    l.proxy_protocol = true;
    CHECK_EQ_INT(proxy_add_listener(px, &l), 0);
    struct cli *c1[4];
    for (int i = 0; i < 4; i++) {
        c1[i] = cli_open(80, "hello");
        run_for(20000);
    }
    CHECK_EQ_INT(be_count(8080), 2);
    CHECK_EQ_INT(be_count(8081), 2);
    CHECK_EQ_INT(n_bes, 4);
    for (unsigned i = 0; i < n_bes && i < 4; i++) {
        /* accepted in client order: client i's pair is backend conn i */
        struct proxy_v2_info in = expect_header(&bes[i], c1[i], 80, "hello");
        CHECK(!in.ssl && in.authority == NULL && in.alpn == NULL);
        CHECK_EQ_INT(bes[i].port, i % 2 ? 8081 : 8080);
    }
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_proxy_headers), 4);

    /* 2. least-conn, max_conns 1: two held clients fill both servers */
    struct proxy_listener_cfg l2 = listener(81, 2, two);
    l2.balance = POOL_LEAST_CONN;
    l2.max_conns = 1;
    CHECK_EQ_INT(proxy_add_listener(px, &l2), 0);
    unsigned before = n_bes;
    struct cli *a = cli_open(81, "x"), *b = cli_open(81, "y");
    run_for(20000);
    CHECK(a->connected && b->connected);
    CHECK_EQ_INT(n_bes - before, 2);
    CHECK(n_bes - before == 2 && bes[before].port != bes[before + 1].port);
    struct cli *c = cli_open(81, "z");
    run_for(20000);
    CHECK(c->closed);
    CHECK_EQ_INT(c->reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(n_bes - before, 2);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_refused_full), 1);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_proxy_headers), 4); /* none here */

    /* 3. health checks: 8082 refuses (no listener), taken out after fall */
    static struct pool_health ph, ph_dead;
    CHECK_EQ_INT(pool_health_init(&ph, 2, 1, 2), 0);
    CHECK_EQ_INT(pool_health_init(&ph_dead, 1, 1, 2), 0);
    const uint16_t mixed[2] = {8080, 8082}, dead[1] = {8082};
    struct proxy_listener_cfg l3 = listener(82, 2, mixed);
    l3.health = &ph;
    l3.health_check.interval_us = 100000;
    l3.health_check.timeout_us = 50000;
    CHECK_EQ_INT(proxy_add_listener(px, &l3), 0);
    struct proxy_listener_cfg l4 = listener(83, 1, dead);
    l4.health = &ph_dead;
    l4.health_check = l3.health_check;
    CHECK_EQ_INT(proxy_add_listener(px, &l4), 0);
    run_for(600000);
    CHECK(pool_health_up(&ph, 0));
    CHECK(!pool_health_up(&ph, 1));
    CHECK(!pool_health_up(&ph_dead, 0));
    unsigned at8080 = be_count(8080);
    for (int i = 0; i < 4; i++) {
        struct cli *h = cli_open(82, "healthy");
        run_for(10000);
        CHECK(h->connected && !h->closed);
    }
    CHECK_EQ_INT(be_count(8080), at8080 + 4);
    struct cli *d = cli_open(83, "nobody");
    run_for(10000);
    CHECK(d->closed);
    CHECK_EQ_INT(d->reason, TCP_CLOSE_RESET);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_refused_down), 1);

    /* 4. a filter: the header waits for its handshake, then carries TLS */
    const uint16_t one[1] = {8081};
    struct proxy_listener_cfg l5 = listener(84, 1, one);
    l5.proxy_protocol = true;
    l5.client_ops = &filter_ops;
    CHECK_EQ_INT(proxy_add_listener(px, &l5), 0);
    before = n_bes;
    struct cli *t = cli_open(84, "early ");
    run_for(20000);
    CHECK(t->connected);
    CHECK_EQ_INT(n_bes - before, 1); /* backend connected ... */
    CHECK_EQ_INT(n_bes > before ? bes[before].len : 99, 0); /* ... told nothing */
    filter_ready = true;
    CHECK_EQ_INT(tcp_send(st_cli, t->h, "late", 4, now), 4); /* an event */
    run_for(20000);
    if (n_bes > before) {
        struct proxy_v2_info in = expect_header(&bes[before], t, 84, "early late");
        CHECK(in.ssl);
        CHECK_EQ_INT(in.ssl_verify, 1);
        CHECK(in.ssl_version_len == 7 && memcmp(in.ssl_version, "TLSv1.3", 7) == 0);
        CHECK(in.ssl_cipher_len == 22 &&
              memcmp(in.ssl_cipher, "TLS_AES_256_GCM_SHA384", 22) == 0);
        CHECK(in.authority_len == 16 && memcmp(in.authority, "sni.example.test", 16) == 0);
        CHECK(in.alpn_len == 2 && memcmp(in.alpn, "h2", 2) == 0);
    }
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_proxy_headers), 5);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_aborted), 0);

    proxy_destroy(px);
    tcp_stack_destroy(st_cli);
    tcp_stack_destroy(st_prx);
    tcp_stack_destroy(st_be);
    free(q);
    return check_exit();
}
