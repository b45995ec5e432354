/* Many concurrent echo connections between two stacks over a lossy,
 * reordering, duplicating network, with a small connection pool so that
 * TIME_WAIT entries get recycled: every echoed byte must match, every
 * connection must end normally, and both pools must drain. Exercises the
 * 4-tuple table, the timer wheel and the event queue with many entries,
 * user pointers, backpressure and half-close. */
#include <stdio.h>

#include "harness.h"

#define N_CONNS 300
#define MAX_ACTIVE 40
#define MAX_LEN (256 * 1024)

struct mc {
    int side;
    tcp_handle_t h;
    uint8_t *data; /* client: what it sends; server: what it echoes */
    uint8_t *rx;   /* client: what came back */
    size_t len, sent, rcvd;
    bool eof, shut, done;
};

static struct net N;
static struct mc clients[N_CONNS], servers[N_CONNS];
static int n_opened, n_servers, n_done, n_active, n_closed_bad, n_mismatch;

static void mc_pump(struct mc *m)
{
    struct tcp_stack *st = N.st[m->side];
    size_t limit = m->side == 0 ? m->len : m->rcvd;
    while (m->sent < limit) {
        ssize_t r = tcp_send(st, m->h, m->data + m->sent, limit - m->sent, N.now);
        if (r <= 0)
            break;
        m->sent += (size_t)r;
    }
    bool all = m->side == 0 ? m->sent == m->len : (m->eof && m->sent == m->rcvd);
    if (all && !m->shut) {
        m->shut = true;
        CHECK_EQ_INT(tcp_shutdown(st, m->h, N.now), 0);
    }
}

static void mc_read(struct mc *m)
{
    struct tcp_stack *st = N.st[m->side];
    uint8_t *dst = m->side == 0 ? m->rx : m->data;
    for (int i = 0; i < 10000; i++) {
        size_t room = MAX_LEN - m->rcvd;
        ssize_t r = tcp_recv(st, m->h, dst + m->rcvd, room ? room : 1, N.now);
        if (r > 0) {
            m->rcvd += (size_t)r;
            continue;
        }
        if (r == -ESHUTDOWN && !m->eof) {
            m->eof = true;
            if (m->side == 0) {
                if (m->rcvd != m->len || memcmp(m->rx, m->data, m->len) != 0)
                    n_mismatch++;
                m->done = true;
                n_done++;
                n_active--;
                tcp_close(st, m->h, N.now);
            }
        }
        break;
    }
    if (m->side == 1)
        mc_pump(m);
}

static int m_accepted(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *user)
{
    (void)ctx;
    (void)lh;
    (void)user;
    if (n_servers >= N_CONNS)
        return -1;
    struct mc *m = &servers[n_servers++];
    m->side = 1;
    m->h = h;
    CHECK_EQ_INT(tcp_set_user(N.st[1], h, m), 0);
    CHECK(tcp_get_user(N.st[1], h) == m);
    return 0;
}

static void m_connected(void *ctx, tcp_handle_t h, void *user)
{
    (void)ctx;
    struct mc *m = user;
    CHECK(m->h == h);
    mc_pump(m);
}

static void m_readable(void *ctx, tcp_handle_t h, void *user)
{
    (void)ctx;
    (void)h;
    mc_read(user);
}

static void m_writable(void *ctx, tcp_handle_t h, void *user)
{
    (void)ctx;
    (void)h;
    mc_pump(user);
}

static void m_closed(void *ctx, tcp_handle_t h, void *user, enum tcp_close_reason why)
{
    (void)ctx;
    (void)h;
    struct mc *m = user;
    if (why != TCP_CLOSE_NORMAL) {
        n_closed_bad++;
        if (getenv("TCP_TRACE"))
            fprintf(stderr, "multi: side %d closed with reason %d after %zu/%zu bytes\n",
                    m->side, why, m->rcvd, m->len);
    }
}

static bool all_done(struct net *n)
{
    (void)n;
    while (n_opened < N_CONNS && n_active < MAX_ACTIVE) {
        struct mc *m = &clients[n_opened];
        m->side = 0;
        int64_t h = tcp_connect(N.st[0], ADDR_A, ADDR_B, 8080, m, N.now);
        if (h < 0)
            break; /* pool full: try again next tick */
        m->h = (tcp_handle_t)h;
        n_opened++;
        n_active++;
    }
    return n_done == N_CONNS;
}

/* pool: connection entries of the client stack. With 64, TIME_WAIT entries (2 s)
 * must be recycled early to admit new connections, and a recycled entry
 * cannot re-ACK a peer's retransmitted FIN: that peer then sees a RST in
 * LAST_ACK with its last bytes unacknowledged and reports closed(RESET),
 * the price of bounded TIME_WAIT. With 512 nothing is recycled and every
 * close must be NORMAL. */
static void run(uint32_t pool)
{
    memset(clients, 0, sizeof(clients));
    memset(servers, 0, sizeof(servers));
    n_opened = n_servers = n_done = n_active = n_closed_bad = n_mismatch = 0;
    struct tcp_stack_params p, ps;
    net_default_params(&p);
    p.max_conns = pool; /* the client's pool */
    p.sndbuf = 16384;
    p.rcvbuf = 32768;
    ps = p;
    ps.max_conns = 512; /* the server never runs out (that is the SYN flood tests' job) */
    net_init(&N, &p, &ps);
    /* replace the app callbacks, keep the harness's output */
    for (int i = 0; i < 2; i++) {
        tcp_stack_destroy(N.st[i]);
        struct tcp_stack_ops o = {.output = cb_output, .accepted = m_accepted,
                                  .connected = m_connected, .readable = m_readable,
                                  .writable = m_writable, .peer_closed = m_readable,
                                  .closed = m_closed};
        N.st[i] = tcp_stack_create(i ? &ps : &p, &o, &N.app[i], NULL, 0);
        CHECK(N.st[i] != NULL);
    }
    const char *seed = getenv("TCP_MULTI_SEED"); /* for soaking by hand */
    if (seed)
        N.rng = strtoull(seed, NULL, 0) * 0x9e3779b97f4a7c15ull | 1;
    N.loss_pct = 2;
    N.dup_pct = 1;
    N.reorder_pct = 3;
    N.latency_us = 300;
    for (int i = 0; i < N_CONNS; i++) {
        size_t len = (size_t)(i * 7919u % MAX_LEN);
        if (i % 10 == 0)
            len = i % 3; /* a few tiny ones: 0, 1 and 2 bytes */
        clients[i].len = len;
        clients[i].data = rand_bytes(MAX_LEN, (uint64_t)i + 100);
        clients[i].rx = malloc(MAX_LEN);
        servers[i].data = malloc(MAX_LEN);
    }
    CHECK(tcp_listen(N.st[1], ADDR_B, 8080, NULL) >= 0);
    bool ok = net_run(&N, N.now + 600000000ull, all_done);
    CHECK(ok);
    CHECK_EQ_INT(n_done, N_CONNS);
    CHECK_EQ_INT(n_mismatch, 0);
    uint64_t recycled = cnt(&N, 0, TCP_CNT_TIME_WAIT_EVICTED);
    if (pool >= 512) {
        CHECK_EQ_INT(recycled, 0);
        CHECK_EQ_INT(n_closed_bad, 0);
    } else {
        CHECK(recycled > 0);
        CHECK((uint64_t)n_closed_bad <= recycled);
    }
    CHECK_EQ_INT(n_servers, N_CONNS);
    CHECK(N.dropped > 0);
    fprintf(stderr, "multi (pool %u): %d connections, %u segments lost, client TIME_WAIT "
                    "recycled %llu, resets %d, retransmits %llu/%llu\n",
            pool, n_done, N.dropped, (unsigned long long)recycled, n_closed_bad,
            (unsigned long long)cnt(&N, 0, TCP_CNT_RETRANSMIT),
            (unsigned long long)cnt(&N, 1, TCP_CNT_RETRANSMIT));
    /* everything drains: TIME_WAIT, retransmitted FINs */
    net_run(&N, N.now + 200000000ull, NULL);
    CHECK_EQ_INT(tcp_stack_conns(N.st[0]), 0);
    CHECK_EQ_INT(tcp_stack_conns(N.st[1]), 0);
    for (int i = 0; i < N_CONNS; i++) {
        free(clients[i].data);
        free(clients[i].rx);
        free(servers[i].data);
    }
    net_free(&N);
}

int main(void)
{
    run(64);
    run(512);
    return check_exit();
}
