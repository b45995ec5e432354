/* Unit test of the plaintext proxy on three in-memory TCP stacks: a client,
 * the proxy's stack (listener 10.0.0.1:80 -> backend 10.0.0.3:8080) and an
 * echo backend. Segments travel through a FIFO between the stacks, so the
 * test is deterministic and needs no device. Small buffers force the proxy's
 * backpressure both ways; the client half-closes and the backend echoes and
 * closes, so half-close propagates both ways. */
#include <stdlib.h>

#include "../proxy/proxy_harness.h"

#define PAYLOAD (256u * 1024u)

/* --- client: send PAYLOAD, half-close, read the echo ---------------------- */
static uint8_t *sent_data, *echo_data;
static size_t n_sent, n_echo;
static bool cli_eof, cli_closed, cli_shut;
static tcp_handle_t cli_h;

static void cli_push(void)
{
    while (n_sent < PAYLOAD) {
        ssize_t r = tcp_send(st_cli, cli_h, sent_data + n_sent, PAYLOAD - n_sent, now);
        if (r <= 0)
            return;
        n_sent += (size_t)r;
    }
    if (!cli_shut) {
        cli_shut = true;
        CHECK_EQ_INT(tcp_shutdown(st_cli, cli_h, now), 0);
    }
}

static void cli_read(void)
{
    for (;;) {
        ssize_t r = tcp_recv(st_cli, cli_h, echo_data + n_echo, PAYLOAD + 1 - n_echo, now);
        if (r == -ESHUTDOWN) {
            cli_eof = true;
            return;
        }
        if (r <= 0)
            return;
        n_echo += (size_t)r;
    }
}

static void c_connected(void *c, tcp_handle_t h, void *u) { (void)c; (void)u; cli_h = h; cli_push(); }
static void c_writable(void *c, tcp_handle_t h, void *u) { (void)c; (void)h; (void)u; cli_push(); }
static void c_readable(void *c, tcp_handle_t h, void *u) { (void)c; (void)h; (void)u; cli_read(); }
static void c_closed(void *c, tcp_handle_t h, void *u, enum tcp_close_reason r)
{
    (void)c; (void)h; (void)u;
    CHECK_EQ_INT(r, TCP_CLOSE_NORMAL);
    cli_closed = true;
}

/* --- backend: echo, with its own backpressure ----------------------------- */
static tcp_handle_t be_h = TCP_HANDLE_INVALID;
static bool be_shut;

static void be_pump(void)
{
    if (be_h == TCP_HANDLE_INVALID)
        return;
    for (;;) {
        ssize_t space = tcp_send_space(st_be, be_h);
        struct tcp_iov iov[2];
        ssize_t n = tcp_recv_peek(st_be, be_h, iov);
        if (n == -ESHUTDOWN) {
            if (!be_shut) {
                be_shut = true;
                tcp_shutdown(st_be, be_h, now);
            }
            return;
        }
        if (n <= 0 || space <= 0)
            return;
        size_t take = iov[0].len < (size_t)space ? iov[0].len : (size_t)space;
        ssize_t s = tcp_send(st_be, be_h, iov[0].base, take, now);
        if (s <= 0)
            return;
        tcp_recv_consume(st_be, be_h, (size_t)s, now);
    }
}

static int b_accepted(void *c, tcp_handle_t lh, tcp_handle_t h, void *u)
{
    (void)c; (void)lh; (void)u;
    be_h = h;
    return 0;
}
static void b_event(void *c, tcp_handle_t h, void *u) { (void)c; (void)h; (void)u; be_pump(); }
static void b_closed(void *c, tcp_handle_t h, void *u, enum tcp_close_reason r)
{
    (void)c; (void)h; (void)u;
    CHECK_EQ_INT(r, TCP_CLOSE_NORMAL);
    be_h = TCP_HANDLE_INVALID;
}

/* --- proxy stack: events to the proxy ------------------------------------- */
static void run(unsigned rounds)
{
    for (unsigned r = 0; r < rounds && !(cli_closed && proxy_active(px) == 0); r++) {
        harness_deliver(q_len); /* what was queued when the round began */
        harness_tick();
    }
}

int main(void)
{
    static const struct tcp_stack_ops cops = {out, NULL, c_connected, c_readable,
                                              c_writable, NULL, c_closed};
    static const struct tcp_stack_ops bops = {out, b_accepted, NULL, b_event,
                                              b_event, b_event, b_closed};
    static const struct tcp_stack_ops pops = {out, p_acc, p_con, p_rd, p_wr, p_pc, p_cl};
    q = calloc(MAXQ, sizeof(*q));
    sent_data = malloc(PAYLOAD);
    echo_data = calloc(1, PAYLOAD + 1);
    for (size_t i = 0; i < PAYLOAD; i++)
        sent_data[i] = (uint8_t)(i * 7 + (i >> 9));
    st_cli = harness_stack(&cops, 0, 16, 100);
    st_prx = harness_stack(&pops, 200, 16, 100);
    st_be = harness_stack(&bops, 400, 16, 100);

    char err[128];
    struct proxy_params pp = {.max_pairs = 4, .idle_timeout_us = 0, .local_addr = A_PRX};
    px = proxy_create(&pp, st_prx, err, sizeof(err));
    CHECK(px != NULL);
    struct proxy_listener_cfg l = {.addr = A_PRX, .port = 80, .n_backends = 1};
    l.backends[0].addr = A_BE;
    l.backends[0].port = 8080;
    CHECK_EQ_INT(proxy_add_listener(px, &l), 0);
    CHECK(tcp_listen(st_be, A_BE, 8080, NULL) >= 0);
    CHECK(tcp_connect(st_cli, A_CLI, A_PRX, 80, NULL, now) >= 0);

    run(200000);

    CHECK(cli_eof);
    CHECK(cli_closed);
    CHECK_EQ_INT(n_sent, PAYLOAD);
    CHECK_EQ_INT(n_echo, PAYLOAD);
    CHECK(memcmp(sent_data, echo_data, PAYLOAD) == 0);
    CHECK_EQ_INT(proxy_active(px), 0);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_completed), 1);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_aborted), 0);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_half_closes), 2);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_bytes_to_backend), PAYLOAD);
    CHECK_EQ_INT(proxy_counter(px, PROXY_CTR_bytes_to_client), PAYLOAD);
    CHECK(proxy_counter(px, PROXY_CTR_backpressure) > 0);

    proxy_destroy(px);
    tcp_stack_destroy(st_cli);
    tcp_stack_destroy(st_prx);
    tcp_stack_destroy(st_be);
    free(q);
    free(sent_data);
    free(echo_data);
    return check_exit();
}
