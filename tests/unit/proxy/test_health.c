/* Active health checks over two real TCP stacks in memory (the TCP unit
 * tests' network): the checker's stack A probes servers on stack B that
 * accept, refuse (no listener: RST), never answer (a blackholed address),
 * answer the expected banner or a wrong one. Verdicts reach the shared
 * pool_health and a pool stops picking a server that went down. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tcp/harness.h"
#include "dataplane/proxy/health.h"
#include "dataplane/proxy/pool.h"

#define ADDR_NOBODY 0xC6120063u /* 198.18.0.99: packets to it vanish */

struct side {
    struct net *n;
    int id;
    struct health *hc; /* A only */
    unsigned accepted, bytes_in;
};

static struct side sides[2];

static int s_output(void *ctx, const struct tcp_seg_out *o)
{
    struct side *s = ctx;
    return cb_output(&s->n->app[s->id], o);
}

/* B: a listener's user pointer is the banner it sends on accept. */
static int s_accepted(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *user)
{
    struct side *s = ctx;
    (void)lh;
    s->accepted++;
    const char *banner = user;
    if (banner != NULL && banner[0] != '\0')
        CHECK_EQ_INT(tcp_send(s->n->st[1], h, banner, strlen(banner), s->n->now),
                     (long long)strlen(banner));
    tcp_set_user(s->n->st[1], h, NULL);
    return 0;
}

static void s_connected(void *ctx, tcp_handle_t h, void *user)
{
    struct side *s = ctx;
    CHECK(health_owns(s->hc, user));
    health_on_connected(s->hc, h, user, s->n->now);
}

static void s_readable(void *ctx, tcp_handle_t h, void *user)
{
    struct side *s = ctx;
    if (s->id == 0) {
        CHECK(health_owns(s->hc, user));
        health_on_readable(s->hc, h, user, s->n->now);
        return;
    }
    uint8_t buf[256];
    for (int k = 0; k < 16; k++) {
        ssize_t r = tcp_recv(s->n->st[1], h, buf, sizeof(buf), s->n->now);
        if (r > 0) {
            s->bytes_in += (unsigned)r;
            continue;
        }
        if (r == -ESHUTDOWN)
            tcp_close(s->n->st[1], h, s->n->now);
        break;
    }
}

static void s_closed(void *ctx, tcp_handle_t h, void *user,
                     enum tcp_close_reason why)
{
    struct side *s = ctx;
    if (s->id == 0) {
        CHECK(health_owns(s->hc, user));
        health_on_closed(s->hc, h, user, why);
    }
}

static const struct tcp_stack_ops side_ops = {
    .output = s_output,
    .accepted = s_accepted,
    .connected = s_connected,
    .readable = s_readable,
    .peer_closed = s_readable,
    .closed = s_closed,
};

/* The TCP tests' network with both stacks re-created on side_ops. */
static void setup(struct net *n)
{
    net_init(n, NULL, NULL);
    struct tcp_stack_params p;
    net_default_params(&p);
    char err[128];
    for (int i = 0; i < 2; i++) {
        tcp_stack_destroy(n->st[i]);
        memset(&sides[i], 0, sizeof(sides[i]));
        sides[i].n = n;
        sides[i].id = i;
        n->st[i] = tcp_stack_create(&p, &side_ops, &sides[i], err, sizeof(err));
        CHECK(n->st[i] != NULL);
    }
}

/* The network of setup() with a checker on stack A, known to side A's
 * callbacks; fails the case if the checker cannot be made. */
static struct health *checker_up(struct net *n)
{
    setup(n);
    char err[128];
    struct health *hc = health_create(n->st[0], ADDR_A, err, sizeof(err));
    CHECK(hc != NULL);
    sides[0].hc = hc;
    return hc;
}

/* Runs the network for US microseconds, ticking the checker each ms. */
static void run(struct net *n, struct health *hc, uint64_t us)
{
    uint64_t end = n->now + us;
    while (n->now < end) {
        health_tick(hc, n->now);
        net_run(n, n->now + 1000, NULL);
    }
}

static struct pool_cfg pool_of(unsigned count, const uint32_t *addr,
                               const uint16_t *port)
{
    struct pool_cfg c;
    memset(&c, 0, sizeof(c));
    c.balance = POOL_ROUND_ROBIN;
    c.n_servers = (uint16_t)count;
    for (unsigned i = 0; i < count; i++) {
        c.servers[i].addr = addr[i];
        c.servers[i].port = port[i];
    }
    return c;
}

static void test_connect_checks(void)
{
    struct net n;
    struct health *hc = checker_up(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 80, "") >= 0);
    /* 0: listening; 1: nothing listens (RST); 2: nobody home (timeout) */
    const uint32_t addr[3] = {ADDR_B, ADDR_B, ADDR_NOBODY};
    const uint16_t port[3] = {80, 81, 80};
    struct pool_cfg pc = pool_of(3, addr, port);
    struct pool_health ph;
    CHECK_EQ_INT(pool_health_init(&ph, 3, 2, 2), 0);
    struct health_check_cfg cfg = {.interval_us = 100000, .timeout_us = 50000};
    struct health_check_cfg bad = cfg;
    bad.timeout_us = 200000;
    CHECK_EQ_INT(health_add_pool(hc, &pc, &bad, &ph, n.now), -EINVAL);
    CHECK_EQ_INT(health_add_pool(hc, &pc, &cfg, &ph, n.now), 0);
    struct pool p;
    CHECK_EQ_INT(pool_init(&p, &pc, &ph), 0);

    /* before any verdict every server is up */
    CHECK(pool_health_up(&ph, 1) && pool_health_up(&ph, 2));
    run(&n, hc, 1000000);
    CHECK(pool_health_up(&ph, 0));
    CHECK(!pool_health_up(&ph, 1));
    CHECK(!pool_health_up(&ph, 2));
    /* ~10 probes per server in a second, one at a time */
    uint64_t probes = health_counter(hc, HEALTH_CTR_probes);
    CHECK(probes >= 27 && probes <= 33);
    CHECK(health_counter(hc, HEALTH_CTR_ok) >= 9);
    CHECK(health_counter(hc, HEALTH_CTR_failed_connect) >= 9);
    CHECK(health_counter(hc, HEALTH_CTR_failed_timeout) >= 8);
    CHECK_EQ_INT(health_counter(hc, HEALTH_CTR_went_down), 2);
    CHECK_EQ_INT(health_counter(hc, HEALTH_CTR_failed_expect), 0);
    CHECK(sides[1].accepted >= 9);
    /* traffic goes only to the live server */
    for (int k = 0; k < 10; k++)
        CHECK_EQ_INT(pool_get(&p), 0);

    /* server 1 starts listening: two good checks (rise 2) bring it back */
    CHECK(tcp_listen(n.st[1], ADDR_B, 81, "") >= 0);
    run(&n, hc, 150000);
    CHECK(!pool_health_up(&ph, 1) || health_counter(hc, HEALTH_CTR_went_up) == 1);
    run(&n, hc, 200000);
    CHECK(pool_health_up(&ph, 1));
    CHECK_EQ_INT(health_counter(hc, HEALTH_CTR_went_up), 1);
    int seen1 = 0;
    for (int k = 0; k < 10; k++)
        seen1 += pool_get(&p) == 1;
    CHECK_EQ_INT(seen1, 5);

    /* probes do not pile up connections on the checker's stack: at most
     * the one in flight per server */
    CHECK(tcp_stack_conns(n.st[0]) <= 3);
    CHECK_EQ_INT(health_counter(hc, HEALTH_CTR_not_started), 0);
    CHECK(health_counter_name(HEALTH_CTR_went_up) != NULL);
    CHECK(health_counter_name(HEALTH_CTR_MAX) == NULL);
    CHECK(!health_owns(hc, &p));
    CHECK(!health_owns(NULL, &p));
    health_destroy(hc);
    net_free(&n);
}

static void test_send_expect(void)
{
    struct net n;
    struct health *hc = checker_up(&n);
    CHECK(tcp_listen(n.st[1], ADDR_B, 6379, "+PONG\r\n") >= 0);
    CHECK(tcp_listen(n.st[1], ADDR_B, 6380, "-ERR down\r\n") >= 0);
    CHECK(tcp_listen(n.st[1], ADDR_B, 6381, "+PO") >= 0); /* short answer */
    const uint32_t addr[3] = {ADDR_B, ADDR_B, ADDR_B};
    const uint16_t port[3] = {6379, 6380, 6381};
    struct pool_cfg pc = pool_of(3, addr, port);
    struct pool_health ph;
    CHECK_EQ_INT(pool_health_init(&ph, 3, 1, 1), 0);
    static const char req[] = "PING\r\n", want[] = "+PONG\r\n";
    struct health_check_cfg cfg = {.interval_us = 50000,
                                   .timeout_us = 20000,
                                   .send = req,
                                   .send_len = 6,
                                   .expect = want,
                                   .expect_len = 7};
    CHECK_EQ_INT(health_add_pool(hc, &pc, &cfg, &ph, n.now), 0);
    run(&n, hc, 500000);
    CHECK(pool_health_up(&ph, 0));
    CHECK(!pool_health_up(&ph, 1));
    CHECK(!pool_health_up(&ph, 2));
    CHECK(health_counter(hc, HEALTH_CTR_ok) >= 9);
    CHECK(health_counter(hc, HEALTH_CTR_failed_expect) >= 9);
    CHECK(health_counter(hc, HEALTH_CTR_failed_timeout) >= 9);
    /* the request reached the servers: 6 bytes per probe */
    CHECK(sides[1].bytes_in >= 6 * 27);
    CHECK_EQ_INT(sides[1].bytes_in % 6, 0);

    struct health_check_cfg big = cfg;
    big.expect_len = HEALTH_EXPECT_MAX + 1;
    CHECK_EQ_INT(health_add_pool(hc, &pc, &big, &ph, n.now), -EINVAL);
    health_destroy(hc);
    net_free(&n);
}

static void test_capacity(void)
{
    struct net n;
    struct health *hc = checker_up(&n);
    char err[128];
    CHECK(health_create(NULL, ADDR_A, err, sizeof(err)) == NULL);
    uint32_t addr[POOL_MAX_SERVERS];
    uint16_t port[POOL_MAX_SERVERS];
    for (unsigned i = 0; i < POOL_MAX_SERVERS; i++) {
        addr[i] = ADDR_B;
        port[i] = (uint16_t)(1000 + i);
    }
    struct pool_cfg pc = pool_of(POOL_MAX_SERVERS, addr, port);
    static struct pool_health ph[HEALTH_MAX_TARGETS / POOL_MAX_SERVERS + 2];
    const unsigned nph = sizeof(ph) / sizeof(ph[0]);
    struct health_check_cfg cfg = {.interval_us = 1000000, .timeout_us = 1000};
    int rc = 0;
    unsigned added = 0;
    for (unsigned k = 0; k + 1 < nph && rc == 0; k++) {
        CHECK_EQ_INT(pool_health_init(&ph[k], POOL_MAX_SERVERS, 1, 1), 0);
        rc = health_add_pool(hc, &pc, &cfg, &ph[k], n.now);
        added += rc == 0;
    }
    CHECK_EQ_INT(rc, -ENOSPC);
    CHECK_EQ_INT(added, HEALTH_MAX_TARGETS / POOL_MAX_SERVERS);
    /* interval 0: not checked, not an error */
    struct health_check_cfg off = {0};
    CHECK_EQ_INT(pool_health_init(&ph[nph - 1], POOL_MAX_SERVERS, 1, 1), 0);
    CHECK_EQ_INT(health_add_pool(hc, &pc, &off, &ph[nph - 1], n.now), 0);
    health_destroy(hc);
    net_free(&n);
}

int main(void)
{
    (void)rand_bytes; /* the shared harness's, unused here */
    test_connect_checks();
    test_send_expect();
    test_capacity();
    return check_exit();
}
