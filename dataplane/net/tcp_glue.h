/* Glue between the L2/L3 layer and the TCP core: received segments become
 * struct tcp_seg_in, segments the core emits become IPv4 frames. Owning
 * lcore only. */
#ifndef TERN_NET_TCP_GLUE_H
#define TERN_NET_TCP_GLUE_H

#include "dataplane/tcp/tcp-t.h"
#include "net-t.h"

/* Builds one frame for seg (TCP header, options, payload and checksum
 * written by the TCP core's writer) and sends it through net_ipv4_output.
 * Meant to be called from the stack's output callback. Returns 0 (sent or
 * parked for ARP) or -ENOBUFS, -EMSGSIZE, -EHOSTUNREACH (dropped and
 * counted; the core's retransmission timer recovers). */
int net_tcp_output(struct net_ctx *ctx, const struct tcp_seg_out *seg);

/* Hands a checked segment to the stack at time now_us. Returns what
 * tcp_input returns (drops are already counted by the core). */
int net_tcp_deliver(struct tcp_stack *st, const struct net_tcp_in *seg,
                    uint64_t now_us);

#endif
