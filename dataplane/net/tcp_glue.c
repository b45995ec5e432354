/* Packets <-> TCP core. The core speaks host byte order for addresses and
 * writes wire-format segments itself; this file only converts and frames. */
#include <errno.h>

#include <arpa/inet.h>

#include "dataplane/tcp/tcp.h"
#include "net.h"
#include "net_pvt.h"
#include "tcp_glue.h"

int net_tcp_output(struct net_ctx *ctx, const struct tcp_seg_out *seg)
{
    struct net_buf b;
    if (ctx->ops.tx_alloc(ctx->user, &b) != 0) {
        NET_COUNT(ctx, drop_tx_nobuf);
        return -ENOBUFS;
    }
    b.flags = 0;
    if (b.cap <= NET_L4_OFF) {
        ctx->ops.tx_free(ctx->user, &b);
        NET_COUNT(ctx, drop_tx_too_big);
        return -EMSGSIZE;
    }
    /* tcp_seg_out_write computes the checksum in software; with a device
     * that offloads TCP checksums this is where NET_BUF_F_TCP_CSUM would
     * skip it (not done yet: the writer always fills it). */
    int n = tcp_seg_out_write(seg, b.data + NET_L4_OFF,
                              (size_t)(b.cap - NET_L4_OFF));
    if (n < 0) {
        ctx->ops.tx_free(ctx->user, &b);
        NET_COUNT(ctx, drop_tx_too_big);
        return -EMSGSIZE;
    }
    NET_COUNT(ctx, tcp_tx);
    return net_ipv4_output(ctx, &b, htonl(seg->raddr), NET_IP_PROTO_TCP,
                           (uint16_t)n);
}

int net_tcp_deliver(struct tcp_stack *st, const struct net_tcp_in *seg,
                    uint64_t now_us)
{
    struct tcp_seg_in in = {
        .saddr = ntohl(seg->src),
        .daddr = ntohl(seg->dst),
        .data = seg->tcp,
        .len = seg->len,
    };
    return tcp_input(st, &in, now_us);
}
