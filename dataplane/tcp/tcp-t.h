/* Types of the per-core TCP core: parameters, callbacks, segments in and out,
 * handles, states and counters.
 *
 * Conventions for every type in this file:
 * - IPv4 addresses and ports are in HOST byte order (198.18.0.1 is
 *   0xC6120001). Sequence numbers, windows and option values too. Only the
 *   raw bytes of a received segment (tcp_seg_in.data) and the bytes written
 *   by tcp_seg_out_write() are in network order.
 * - Time is a monotonic uint64_t in MICROSECONDS (any epoch), passed in by
 *   the caller; the core never reads a clock.
 * - A tcp_seg_out is always seen from the local side: laddr/lport are the
 *   source of the segment, raddr/rport its destination. */
#ifndef TERN_TCP_T_H
#define TERN_TCP_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tcp_stack; /* opaque, one per core */

/* A connection or listener handle: an index into the owning stack's pool in
 * the low 20 bits and a generation in the high bits, so a stale handle
 * (connection freed and reused) is detected and refused with -EBADF. Never
 * valid on another core's stack. */
typedef uint32_t tcp_handle_t;
#define TCP_HANDLE_INVALID  UINT32_MAX
#define TCP_HANDLE_IDX_BITS 20u
#define TCP_MAX_CONNS       ((1u << TCP_HANDLE_IDX_BITS) - 1u)

/* TCP header flags (byte 13 of the header). */
enum {
    TCP_FLAG_FIN = 0x01,
    TCP_FLAG_SYN = 0x02,
    TCP_FLAG_RST = 0x04,
    TCP_FLAG_PSH = 0x08,
    TCP_FLAG_ACK = 0x10,
    TCP_FLAG_URG = 0x20,
    TCP_FLAG_ECE = 0x40,
    TCP_FLAG_CWR = 0x80,
};

#define TCP_HDR_LEN_MIN  20u
#define TCP_OPT_LEN_MAX  40u
#define TCP_HDR_LEN_MAX  (TCP_HDR_LEN_MIN + TCP_OPT_LEN_MAX)
#define TCP_SACK_BLOCKS_MAX 4u

enum tcp_state {
#define TCP_STATE(name, str) TCP_STATE_##name,
#include "tcp_states.def"
#undef TCP_STATE
    TCP_STATE_MAX
};

enum tcp_counter {
#define TCP_COUNTER(name, desc) TCP_CNT_##name,
#include "tcp_counters.def"
#undef TCP_COUNTER
    TCP_CNT_MAX
};

/* Per-stack counters, written by the owning core only. Another thread (the
 * telemetry callback) may read them racily: each is a naturally aligned
 * uint64_t, so a read sees an old or a new value, never a torn one on the
 * 64-bit targets tern supports. conns_by_state is a gauge. */
struct tcp_counters {
    uint64_t c[TCP_CNT_MAX];
    uint64_t conns_by_state[TCP_STATE_MAX];
};

/* Why a connection ended; delivered with the closed event. */
enum tcp_close_reason {
    TCP_CLOSE_NORMAL = 0,  /* both FINs exchanged and acknowledged */
    TCP_CLOSE_RESET,       /* the peer sent an acceptable RST (or refused our SYN) */
    TCP_CLOSE_TIMEOUT,     /* retransmissions, keepalive or idle timeout gave up */
    TCP_CLOSE_ABORTED,     /* aborted locally (tcp_abort, or the stack had to) */
};

/* Parsed TCP header and options (tcp_parse()). */
struct tcp_hdr {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t  flags;         /* TCP_FLAG_* */
    uint8_t  hdr_len;       /* data offset in bytes, 20..60 */
    uint16_t window;        /* raw field, not scaled */
    uint16_t urg_ptr;
    /* options; the has_* flags say which were present and well formed */
    bool     has_mss, has_wscale, has_sack_perm, has_ts;
    uint16_t mss;
    uint8_t  wscale;        /* as received; callers clamp to 14 */
    uint32_t ts_val, ts_ecr;
    uint8_t  n_sack;        /* SACK blocks received, <= TCP_SACK_BLOCKS_MAX */
    uint32_t sack[TCP_SACK_BLOCKS_MAX][2]; /* [left, right) */
};

/* A received segment, as the IP layer hands it over. The IP layer has
 * checked the IPv4 header and the TCP checksum (it owns the pseudo-header;
 * see tcp_checksum()). data points at the first byte of the TCP header and
 * stays valid only for the duration of the tcp_input() call: the core copies
 * what it keeps. */
struct tcp_seg_in {
    uint32_t saddr;         /* remote address, host order */
    uint32_t daddr;         /* local address, host order */
    const uint8_t *data;    /* TCP header + options + payload, network order */
    uint32_t len;           /* bytes at data (IP total length minus IP header) */
};

/* A segment to send. Payload is a view into the connection's send buffer,
 * in at most two pieces (the buffer is a ring), valid only during the output
 * callback: the glue copies it into an mbuf (tcp_seg_out_write() does the
 * whole segment, checksum included). */
struct tcp_seg_out {
    uint32_t laddr, raddr;  /* source, destination; host order */
    uint16_t lport, rport;
    uint32_t seq, ack;
    uint8_t  flags;         /* TCP_FLAG_* */
    uint8_t  opt_len;       /* bytes of options, multiple of 4, <= 40 */
    uint16_t window;        /* raw 16-bit field, already scaled down */
    uint8_t  opt[TCP_OPT_LEN_MAX]; /* encoded options, network order */
    const uint8_t *payload[2];
    uint32_t payload_len[2];
};

/* Upper-layer and output callbacks. Every callback receives the ctx given
 * to tcp_stack_create(). Events are delivered AFTER the stack has finished
 * processing the segment, timer or call that caused them, so a callback may
 * call tcp_send / tcp_recv* / tcp_shutdown / tcp_close / tcp_abort /
 * tcp_connect on the same stack. `user` is the connection's user pointer
 * (tcp_set_user(); a listener's user pointer is inherited by the connections
 * it accepts). Any callback may be NULL except output. */
struct tcp_stack_ops {
    /* One segment out. Return 0 if queued for transmission, <0 if it could
     * not be (counted as SEG_OUT_FAIL; retransmission timers recover). Must
     * not call back into the stack. */
    int (*output)(void *ctx, const struct tcp_seg_out *seg);

    /* A passive open completed on listener `lh`; `h` is the new connection,
     * ESTABLISHED. Return 0 to keep it, <0 to refuse (the stack sends RST
     * and frees it; no closed event). */
    int (*accepted)(void *ctx, tcp_handle_t lh, tcp_handle_t h, void *user);
    /* An active open (tcp_connect) reached ESTABLISHED. A failed one gets
     * closed() instead. */
    void (*connected)(void *ctx, tcp_handle_t h, void *user);
    /* New in-order bytes (or the peer's FIN) are readable. Edge-triggered:
     * once per batch of new data; read until tcp_recv returns 0. */
    void (*readable)(void *ctx, tcp_handle_t h, void *user);
    /* Send-buffer space became available after tcp_send() had accepted
     * fewer bytes than asked (edge-triggered). */
    void (*writable)(void *ctx, tcp_handle_t h, void *user);
    /* The peer sent FIN: no more bytes will arrive after those buffered.
     * The connection can still send until tcp_shutdown/tcp_close. */
    void (*peer_closed)(void *ctx, tcp_handle_t h, void *user);
    /* The connection is gone; `h` becomes invalid when this returns. Not
     * delivered after tcp_close() or tcp_abort() by the upper layer. A
     * NORMAL end (both FINs done; the entry may live on in TIME_WAIT) is
     * held back while received bytes are unread, and follows the
     * tcp_recv/tcp_recv_consume that reads the last of them at the next
     * tcp_input/tcp_timers_run (so NORMAL also means end of stream: a
     * reader may get it before its tcp_recv sees -ESHUTDOWN); RESET,
     * TIMEOUT and ABORTED come at once and discard unread bytes. */
    void (*closed)(void *ctx, tcp_handle_t h, void *user,
                   enum tcp_close_reason reason);
};

/* Creation parameters of one per-core stack. Zero means "default" for
 * every field that names a default. All memory is allocated at create. */
struct tcp_stack_params {
    uint32_t max_conns;      /* connection pool size incl. SYN_RCVD and
                                TIME_WAIT entries; <= TCP_MAX_CONNS */
    uint32_t max_listeners;  /* default 16 */
    uint32_t sndbuf;         /* per-connection send buffer, bytes, power of 2;
                                default 64 KiB */
    uint32_t rcvbuf;         /* per-connection receive buffer, bytes, power of
                                2; default 64 KiB; the advertised window */
    uint32_t syn_backlog;    /* max SYN_RCVD entries per stack before SYN
                                cookies are used; default max_conns / 4 */
    uint32_t ooo_max_segs;   /* reassembly queue bound per connection
                                (segments); default 16 */
    uint16_t mss;            /* MSS we advertise and the largest we send;
                                default 1460 */
    uint8_t  wscale;         /* our window-scale shift (0..14); default: the
                                smallest that covers rcvbuf */
    bool     no_timestamps;  /* do not offer/accept RFC 7323 timestamps */
    bool     no_sack;        /* do not offer/accept SACK-permitted */
    bool     nagle;          /* Nagle's algorithm; off by default */

    /* timers, microseconds */
    uint32_t rto_initial_us; /* default 1 s (RFC 6298 2.1) */
    uint32_t rto_min_us;     /* default 200 ms */
    uint32_t rto_max_us;     /* default 60 s */
    uint32_t delack_us;      /* delayed-ACK timer; default 40 ms */
    uint32_t time_wait_us;   /* TIME_WAIT length; default 2 s (bounded, not 2MSL) */
    uint32_t max_retries;    /* RTO expiries before giving up; default 8 */
    uint32_t syn_retries;    /* for SYN / SYN-ACK; default 5 */
    uint32_t keepalive_idle_us;  /* idle time before probes; 0 = off (default) */
    uint32_t keepalive_intvl_us; /* default 10 s */
    uint32_t keepalive_probes;   /* default 5 */
    uint32_t idle_timeout_us;    /* close (RST, TIMEOUT) a connection with no
                                    traffic either way for this long; 0 = off;
                                    per connection: tcp_set_idle_timeout() */
    uint32_t timer_tick_us;      /* timer wheel granularity; default 1 ms */
    uint32_t challenge_ack_limit; /* RFC 5961 challenge ACKs per second per
                                     stack; default 1000 */

    /* RFC 6528 ISN and RFC 4987 SYN-cookie key. Give each process fresh
     * random bytes; the same key on every core of a process is fine. */
    uint8_t  secret[16];

    /* Local ports for tcp_connect(): from [eport_min, eport_max], only those
     * with port % eport_stride == eport_offset, so that software steering
     * (dst port % n_cores) brings return traffic to this core. Defaults:
     * 32768..60999, stride 1, offset 0. */
    uint16_t eport_min, eport_max;
    uint16_t eport_stride, eport_offset;
    /* Where the search for a free local port starts (0: eport_min). Give
     * each process a random one (RFC 6056): a restarted process would
     * otherwise reuse, in the same order, the 4-tuples of its previous life
     * that backends may still hold in TIME_WAIT. */
    uint16_t eport_first;

    /* Added to every RFC 7323 TSval (milliseconds). The stack's clock starts
     * near 0 with the process: give it a clock that does not go back when
     * the process restarts (the system's monotonic clock in ms, plus a
     * constant per boot so as not to show uptime). Otherwise a peer that
     * holds one of our old 4-tuples in TIME_WAIT takes the new SYN's lower
     * TSval for an old duplicate (PAWS) and the connection waits a SYN
     * retransmission (1 s). 0 is fine for tests. */
    uint32_t ts_base_ms;
};

/* A zero-copy view of received bytes (tcp_recv_peek()). */
struct tcp_iov {
    const uint8_t *base;
    uint32_t len;
};

/* Connection snapshot for tests, telemetry and logs (tcp_conn_info()). */
struct tcp_conn_info {
    enum tcp_state state;
    uint32_t laddr, raddr;
    uint16_t lport, rport;
    uint32_t snd_una, snd_nxt, snd_wnd;
    uint32_t rcv_nxt, rcv_wnd;
    uint32_t cwnd, ssthresh;
    uint32_t srtt_us, rttvar_us, rto_us;
    uint16_t mss;            /* effective send MSS */
    uint8_t  snd_wscale, rcv_wscale;
    bool     ts_ok, sack_ok;
    uint32_t send_queued;    /* bytes in the send buffer (unacked + unsent) */
    uint32_t recv_queued;    /* bytes readable */
    uint32_t ooo_segs;       /* segments in the reassembly queue */
    uint32_t retransmits;
};

#endif
