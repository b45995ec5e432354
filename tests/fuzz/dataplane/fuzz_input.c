/* libFuzzer target: the input path of one worker without a device.
 *
 * The input is a sequence of frames, each prefixed by a 2-byte big-endian
 * length (a last partial frame is used as is), and a 1-byte clock step
 * after each frame. Every frame goes through steering, then net_input ->
 * ARP / IPv4 / ICMP / TCP checksum -> tcp_input -> the proxy, exactly as
 * on a worker; output frames land in a scratch buffer and are dropped.
 * The stack listens on 198.18.0.1:80 and proxies to 198.18.0.3:8080 (whose
 * MAC is known, so the proxy's active opens really send). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/net/net.h"
#include "dataplane/net/tcp_glue.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/steer.h"
#include "dataplane/tcp/tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    struct net_ctx net;
    struct tcp_stack *tcp;
    struct proxy *proxy;
    uint64_t now;
    uint8_t buf[4][2048];
    unsigned next;
    unsigned outstanding;
};

static int fz_alloc(void *u, struct net_buf *b)
{
    struct fz *f = u;
    b->data = f->buf[f->next++ % 4];
    b->cap = sizeof(f->buf[0]);
    b->len = 0;
    b->flags = 0;
    b->handle = NULL;
    f->outstanding++;
    return 0;
}

static void fz_done(void *u, struct net_buf *b)
{
    struct fz *f = u;
    (void)b;
    f->outstanding--;
}

static void fz_tcp_in(void *u, const struct net_tcp_in *seg)
{
    struct fz *f = u;
    net_tcp_deliver(f->tcp, seg, f->now);
}

static int fz_out(void *ctx, const struct tcp_seg_out *seg)
{
    return net_tcp_output(&((struct fz *)ctx)->net, seg);
}
static int fz_accepted(void *c, tcp_handle_t lh, tcp_handle_t h, void *u)
{
    return proxy_on_accepted(((struct fz *)c)->proxy, lh, h, u);
}
static void fz_connected(void *c, tcp_handle_t h, void *u)
{
    proxy_on_connected(((struct fz *)c)->proxy, h, u);
}
static void fz_readable(void *c, tcp_handle_t h, void *u)
{
    proxy_on_readable(((struct fz *)c)->proxy, h, u);
}
static void fz_writable(void *c, tcp_handle_t h, void *u)
{
    proxy_on_writable(((struct fz *)c)->proxy, h, u);
}
static void fz_peer_closed(void *c, tcp_handle_t h, void *u)
{
    proxy_on_peer_closed(((struct fz *)c)->proxy, h, u);
}
static void fz_closed(void *c, tcp_handle_t h, void *u, enum tcp_close_reason r)
{
    proxy_on_closed(((struct fz *)c)->proxy, h, u, r);
}

static struct net_iface fz_ifc;
static const uint8_t fz_backend_mac[6] = {0x02, 0, 0, 0, 0, 3};

static struct fz *fz_new(void)
{
    static const struct net_ops ops = {fz_alloc, fz_done, fz_done, fz_tcp_in};
    static const struct tcp_stack_ops tops = {
        fz_out, fz_accepted, fz_connected, fz_readable, fz_writable,
        fz_peer_closed, fz_closed,
    };
    struct fz *f = calloc(1, sizeof(*f));
    if (f == NULL)
        abort();
    const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 1};
    memcpy(fz_ifc.mac, mac, 6);
    fz_ifc.addr = htonl(0xc6120001);
    fz_ifc.mask = htonl(0xffffff00);
    fz_ifc.gateway = htonl(0xc61200fe);
    fz_ifc.mtu = 1500;
    if (net_init(&f->net, &fz_ifc, &ops, f) != 0)
        abort();
    f->now = 1000000;
    net_set_time(&f->net, f->now);
    net_arp_learn(&f->net, htonl(0xc6120003), fz_backend_mac);
    struct tcp_stack_params tp = {.max_conns = 64, .sndbuf = 8192, .rcvbuf = 8192,
                                  .syn_backlog = 8, .eport_stride = 2,
                                  .eport_offset = 1};
    char err[128];
    f->tcp = tcp_stack_create(&tp, &tops, f, err, sizeof(err));
    if (f->tcp == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    struct proxy_params pp = {.max_pairs = 16, .idle_timeout_us = 5000000,
                              .local_addr = 0xc6120001};
    f->proxy = proxy_create(&pp, f->tcp, err, sizeof(err));
    if (f->proxy == NULL)
        abort();
    struct proxy_listener_cfg l = {.addr = 0xc6120001, .port = 80, .n_backends = 1};
    l.backends[0].addr = 0xc6120003;
    l.backends[0].port = 8080;
    if (proxy_add_listener(f->proxy, &l) != 0)
        abort();
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A fresh worker per input: findings replay alone. */
    struct fz *f = fz_new();
    struct steer_cfg sc = {.n_workers = 2, .eport_min = 32768,
                           .eport_max = 60999, .seed = 1};
    size_t off = 0;
    for (int frames = 0; off < size && frames < 256; frames++) {
        size_t len = size - off;
        if (len >= 2) {
            size_t want = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
            len = size - off < want ? size - off : want;
        } else {
            off += len; /* one stray byte: nothing to do */
            break;
        }
        (void)steer_owner(&sc, data + off, (uint32_t)len);
        net_input(&f->net, data + off, (uint32_t)len,
                  (frames & 7) == 7 ? NET_IN_LEARN_ONLY : 0);
        off += len;
        if (off < size) {
            f->now += (uint64_t)data[off++] * 10000; /* up to 2.55 s */
            net_set_time(&f->net, f->now);
            proxy_set_time(f->proxy, f->now);
            tcp_timers_run(f->tcp, f->now);
            net_timers(&f->net);
        }
    }
    /* Let every timer run out (retransmissions, TIME_WAIT, idle). */
    for (int i = 0; i < 40; i++) {
        f->now += 2000000;
        net_set_time(&f->net, f->now);
        proxy_set_time(f->proxy, f->now);
        tcp_timers_run(f->tcp, f->now);
        net_timers(&f->net);
    }
    if (f->outstanding != 0)
        abort(); /* a buffer was neither sent nor freed */
    proxy_destroy(f->proxy);
    tcp_stack_destroy(f->tcp);
    free(f);
    return 0;
}
