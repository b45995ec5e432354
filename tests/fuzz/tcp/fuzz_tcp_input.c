/* libFuzzer target for the TCP core's input path.
 *
 * Each input builds a fresh stack with a listener on :80, one passively
 * opened connection (peer 198.18.0.2:40000) and one actively opened
 * connection (to 198.18.0.3:443), both with data queued, then plays up to
 * 64 records:
 *     ctl, len, len bytes of TCP header + payload
 * ctl bits 0-1 say how the bytes are aimed: 0 as they are (any ports), 1 at
 * the passive connection, 2 at the active one, 3 at the passive one with
 * seq and ack taken relative to its rcv_nxt and snd_una (so the fuzzer
 * reaches the in-window paths); bits 2-4 advance the clock by 8^k µs and run
 * the timers first; bits 5-7 pick an upper-layer call afterwards (recv,
 * send, shutdown, close, abort, peek/consume, idle timeout). Every segment
 * the stack emits is serialized and its checksum verified; stack invariants
 * are checked after each record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tcp.h"

#define A_PEER 0xC6120002u
#define A_PEER2 0xC6120003u
#define A_LOCAL 0xC6120001u

struct fz {
    struct tcp_stack *st;
    uint64_t now;
    tcp_handle_t passive, active;
    /* the last SYN(-ACK) sent, to complete handshakes during setup */
    uint32_t last_seq, last_ack;
    uint8_t last_flags;
};

static int fz_output(void *ctx, const struct tcp_seg_out *o)
{
    struct fz *f = ctx;
    static uint8_t buf[TCP_HDR_LEN_MAX + 65536];
    int n = tcp_seg_out_write(o, buf, sizeof(buf));
    if (n < (int)TCP_HDR_LEN_MIN || tcp_checksum(o->laddr, o->raddr, buf, (size_t)n) != 0)
        __builtin_trap();
    struct tcp_hdr h;
    if (tcp_parse(buf, (size_t)n, &h) != 0)
        __builtin_trap(); /* we must parse what we write */
    f->last_seq = o->seq;
    f->last_ack = o->ack;
    f->last_flags = o->flags;
    return 0;
}

static int fz_accepted(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *user)
{
    struct fz *f = ctx;
    (void)lh;
    (void)user;
    if (f->passive == TCP_HANDLE_INVALID)
        f->passive = h;
    return 0;
}

static void fz_readable(void *ctx, tcp_handle_t h, void *user)
{
    struct fz *f = ctx;
    uint8_t b[512];
    (void)user;
    /* read some, not all: leaves data buffered for later records */
    tcp_recv(f->st, h, b, sizeof(b), f->now);
}

static void fz_closed(void *ctx, tcp_handle_t h, void *user, enum tcp_close_reason why)
{
    struct fz *f = ctx;
    (void)user;
    (void)why;
    if (h == f->passive)
        f->passive = TCP_HANDLE_INVALID;
    if (h == f->active)
        f->active = TCP_HANDLE_INVALID;
}

static const struct tcp_stack_ops fz_ops = {
    .output = fz_output,
    .accepted = fz_accepted,
    .readable = fz_readable,
    .closed = fz_closed,
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void seg(struct fz *f, uint32_t saddr, uint16_t sport, uint16_t dport, uint32_t seq,
                uint32_t ack, uint8_t flags, const uint8_t *opt, uint8_t optlen)
{
    uint8_t b[60];
    memset(b, 0, sizeof(b));
    put16(b, sport);
    put16(b + 2, dport);
    put32(b + 4, seq);
    put32(b + 8, ack);
    b[12] = (uint8_t)(((20 + optlen) / 4) << 4);
    b[13] = flags;
    put16(b + 14, 8192);
    memcpy(b + 20, opt, optlen);
    struct tcp_seg_in in = {.saddr = saddr, .daddr = A_LOCAL, .data = b, .len = 20u + optlen};
    tcp_input(f->st, &in, f->now);
}

static void setup(struct fz *f)
{
    struct tcp_stack_params p;
    memset(&p, 0, sizeof(p));
    p.max_conns = 8;
    p.syn_backlog = 2;
    p.sndbuf = 4096;
    p.rcvbuf = 4096;
    p.ooo_max_segs = 4;
    p.keepalive_idle_us = 2000000;
    for (int i = 0; i < 16; i++)
        p.secret[i] = (uint8_t)i;
    f->now = 1000000;
    f->passive = f->active = TCP_HANDLE_INVALID;
    f->st = tcp_stack_create(&p, &fz_ops, f, NULL, 0);
    if (!f->st)
        __builtin_trap();
    if (tcp_listen(f->st, 0, 80, NULL) < 0)
        __builtin_trap();
    /* passive: SYN with MSS, SACK-permitted, timestamps, wscale */
    static const uint8_t synopt[20] = {2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 2};
    seg(f, A_PEER, 40000, 80, 1000, 0, 0x02, synopt, 20);
    uint8_t ackopt[12] = {1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 0};
    seg(f, A_PEER, 40000, 80, 1001, f->last_seq + 1, 0x10, ackopt, 12);
    /* active: SYN out, SYN-ACK in */
    int64_t h = tcp_connect(f->st, A_LOCAL, A_PEER2, 443, NULL, f->now);
    if (h < 0)
        __builtin_trap();
    f->active = (tcp_handle_t)h;
    struct tcp_conn_info ci;
    tcp_conn_info(f->st, f->active, &ci);
    static const uint8_t saopt[4] = {2, 4, 2, 0};
    seg(f, A_PEER2, 443, ci.lport, 5000, ci.snd_nxt, 0x12, saopt, 4);
    static uint8_t junk[6000];
    if (f->passive != TCP_HANDLE_INVALID)
        tcp_send(f->st, f->passive, junk, 3000, f->now);
    tcp_send(f->st, f->active, junk, 6000, f->now);
}

static void check_invariants(struct fz *f)
{
    if (tcp_stack_conns(f->st) > 8)
        __builtin_trap();
    tcp_handle_t hs[2] = {f->passive, f->active};
    for (int i = 0; i < 2; i++) {
        struct tcp_conn_info ci;
        if (hs[i] == TCP_HANDLE_INVALID || tcp_conn_info(f->st, hs[i], &ci) != 0)
            continue;
        if (ci.recv_queued > 4096 || ci.send_queued > 4096 || ci.ooo_segs > 4 ||
            ci.rcv_wnd > 4096 || (int32_t)(ci.snd_nxt - ci.snd_una) < 0)
            __builtin_trap();
    }
}

static void upper_call(struct fz *f, unsigned op, uint8_t arg)
{
    tcp_handle_t h = (arg & 1) ? f->active : f->passive;
    uint8_t b[1024];
    static const uint8_t junk[2048];
    switch (op) {
    case 1:
        tcp_recv(f->st, h, b, sizeof(b), f->now);
        break;
    case 2:
        tcp_send(f->st, h, junk, (size_t)arg * 8, f->now);
        break;
    case 3:
        tcp_shutdown(f->st, h, f->now);
        break;
    case 4:
        if (tcp_close(f->st, h, f->now) == 0) {
            if (h == f->passive)
                f->passive = TCP_HANDLE_INVALID;
            else
                f->active = TCP_HANDLE_INVALID;
        }
        break;
    case 5:
        if (arg & 2 && tcp_abort(f->st, h) == 0) {
            if (h == f->passive)
                f->passive = TCP_HANDLE_INVALID;
            else
                f->active = TCP_HANDLE_INVALID;
        }
        break;
    case 6: {
        struct tcp_iov iov[2];
        ssize_t n = tcp_recv_peek(f->st, h, iov);
        if (n > 0)
            tcp_recv_consume(f->st, h, (size_t)n / 2, f->now);
        break;
    }
    case 7:
        tcp_set_idle_timeout(f->st, h, (uint32_t)arg * 10000u, f->now);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz f;
    memset(&f, 0, sizeof(f));
    setup(&f);
    size_t off = 0;
    for (int rec = 0; rec < 64 && off + 2 <= size; rec++) {
        uint8_t ctl = data[off], len = data[off + 1];
        off += 2;
        if (len > size - off)
            len = (uint8_t)(size - off);
        uint8_t b[256 + 4];
        memcpy(b, data + off, len);
        off += len;
        unsigned adv = (ctl >> 2) & 7;
        if (adv) {
            f.now += 1ull << (3 * adv);
            tcp_timers_run(f.st, f.now);
        }
        unsigned aim = ctl & 3;
        uint32_t saddr = A_PEER;
        tcp_handle_t h = aim == 2 ? f.active : f.passive;
        struct tcp_conn_info ci;
        if (aim && len >= 20 && h != TCP_HANDLE_INVALID && tcp_conn_info(f.st, h, &ci) == 0) {
            put16(b, ci.rport);
            put16(b + 2, ci.lport);
            saddr = ci.raddr;
            if (aim == 3) {
                put32(b + 4, get32(b + 4) + ci.rcv_nxt);
                put32(b + 8, get32(b + 8) + ci.snd_una);
            }
        }
        struct tcp_seg_in in = {.saddr = saddr, .daddr = A_LOCAL, .data = b, .len = len};
        tcp_input(f.st, &in, f.now);
        check_invariants(&f);
        upper_call(&f, ctl >> 5, len ? b[len - 1] : 0);
        check_invariants(&f);
    }
    /* let every timer run out: retransmissions, TIME_WAIT, keepalive */
    for (int k = 0; k < 200; k++) {
        f.now += 1000000;
        tcp_timers_run(f.st, f.now);
    }
    tcp_stack_destroy(f.st);
    return 0;
}
