/* Three in-memory TCP stacks for proxy tests: a client (10.0.0.2), the
 * proxy's stack (10.0.0.1) and backends (10.0.0.3), joined by one FIFO of
 * segments, so a test is deterministic and needs no device. A test includes
 * this once, fills q with calloc(MAXQ, sizeof(*q)), makes the stacks with
 * harness_stack() and moves time with harness_deliver() + harness_tick().
 * The p_* callbacks hand the proxy's stack events to the proxy px. */
#ifndef TERN_TEST_PROXY_HARNESS_H
#define TERN_TEST_PROXY_HARNESS_H

#include <errno.h>
#include <string.h>

#include "check.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/tcp/tcp.h"

#define A_CLI 0x0a000002u
#define A_PRX 0x0a000001u
#define A_BE 0x0a000003u
#define MAXQ 4096

struct pkt {
    uint32_t src, dst;
    uint16_t len;
    uint8_t data[1600];
};

static struct pkt *q;
static unsigned q_head, q_len;
static uint64_t now = 1000000;
static struct tcp_stack *st_cli, *st_prx, *st_be;
static struct proxy *px;

/* ops->output of every stack: queue the segment in wire format. */
static int out(void *ctx, const struct tcp_seg_out *seg)
{
    (void)ctx;
    if (q_len == MAXQ)
        return -ENOBUFS;
    struct pkt *p = &q[(q_head + q_len) % MAXQ];
    int n = tcp_seg_out_write(seg, p->data, sizeof(p->data));
    if (n < 0)
        return n;
    p->src = seg->laddr;
    p->dst = seg->raddr;
    p->len = (uint16_t)n;
    q_len++;
    return 0;
}

static int p_acc(void *c, tcp_handle_t lh, tcp_handle_t h, void *u) { (void)c; return proxy_on_accepted(px, lh, h, u); }
static void p_con(void *c, tcp_handle_t h, void *u) { (void)c; proxy_on_connected(px, h, u); }
static void p_rd(void *c, tcp_handle_t h, void *u) { (void)c; proxy_on_readable(px, h, u); }
static void p_wr(void *c, tcp_handle_t h, void *u) { (void)c; proxy_on_writable(px, h, u); }
static void p_pc(void *c, tcp_handle_t h, void *u) { (void)c; proxy_on_peer_closed(px, h, u); }
static void p_cl(void *c, tcp_handle_t h, void *u, enum tcp_close_reason r) { (void)c; proxy_on_closed(px, h, u, r); }

/* A stack with SNDBUF and RCVBUF bytes of buffer per connection (powers of
 * 2), MAX_CONNS connections and PORTS ephemeral ports from 40000 + OFF (OFF
 * also seeds its secret). */
static struct tcp_stack *harness_stack_bufs(const struct tcp_stack_ops *ops, uint16_t off,
                                            uint32_t max_conns, uint16_t ports,
                                            uint32_t sndbuf, uint32_t rcvbuf)
{
    struct tcp_stack_params p = {.max_conns = max_conns, .sndbuf = sndbuf, .rcvbuf = rcvbuf,
                                 .eport_stride = 1, .eport_offset = 0,
                                 .eport_min = (uint16_t)(40000 + off),
                                 .eport_max = (uint16_t)(40000 + ports + off)};
    memset(p.secret, (int)off + 1, sizeof(p.secret));
    char err[128];
    struct tcp_stack *s = tcp_stack_create(&p, ops, NULL, err, sizeof(err));
    CHECK(s != NULL);
    return s;
}

/* The same with 16 KiB buffers. */
static inline struct tcp_stack *harness_stack(const struct tcp_stack_ops *ops, uint16_t off,
                                              uint32_t max_conns, uint16_t ports)
{
    return harness_stack_bufs(ops, off, max_conns, ports, 16384, 16384);
}

/* Delivers up to MAX queued segments, oldest first, to their stack
 * (segments they cause are queued behind and count towards MAX). */
static void harness_deliver(unsigned max)
{
    for (unsigned i = 0; i < max && q_len > 0; i++) {
        struct pkt copy = q[q_head];
        q_head = (q_head + 1) % MAXQ;
        q_len--;
        struct tcp_stack *dst = copy.dst == A_CLI ? st_cli : copy.dst == A_BE ? st_be : st_prx;
        struct tcp_seg_in in = {.saddr = copy.src, .daddr = copy.dst,
                                .data = copy.data, .len = copy.len};
        tcp_input(dst, &in, now);
    }
}

/* One millisecond passes: the proxy's clock and every stack's timers. */
static void harness_tick(void)
{
    now += 1000;
    proxy_set_time(px, now);
    tcp_timers_run(st_cli, now);
    tcp_timers_run(st_prx, now);
    tcp_timers_run(st_be, now);
}

#endif
