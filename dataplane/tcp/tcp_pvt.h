/* Internals of the TCP core shared by its .c files. Not for other modules:
 * the public API is tcp.h. Unit tests may include it to inspect state. */
#ifndef TERN_TCP_PVT_H
#define TERN_TCP_PVT_H

#include <stdint.h>

#include "tcp.h"

#define TCP_NO_IDX UINT32_MAX
#define TCP_OOO_MAX 16u /* hard cap of ooo_max_segs */
#define TCP_SACK_SB_MAX 8u /* ranges the sender remembers from SACK blocks */
#define TCP_LISTENER_BIT 0x80000000u
#define TCP_GEN_MASK 0x7ffu /* 11 bits of generation between idx and the listener bit */

/* Sequence-number comparisons modulo 2^32 (RFC 9293 3.4). */
static inline int seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline int seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline int seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline int seq_ge(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }

/* Per-connection timers. Each has a deadline (0 = off); the connection sits
 * in the wheel once, at its earliest deadline. */
enum tcp_timer {
    TCP_T_REXMT,    /* retransmission (data, SYN, FIN) */
    TCP_T_PERSIST,  /* zero-window probe */
    TCP_T_DELACK,   /* delayed ACK */
    TCP_T_KEEP,     /* keepalive probe */
    TCP_T_IDLE,     /* idle timeout */
    TCP_T_2MSL,     /* TIME_WAIT end, SYN_RCVD give-up is REXMT */
    TCP_T_MAX
};

/* Pending upper-layer events (bitmask), delivered by tcp_dispatch(). */
enum {
    TCP_EV_ACCEPTED = 1u << 0,
    TCP_EV_CONNECTED = 1u << 1,
    TCP_EV_READABLE = 1u << 2,
    TCP_EV_WRITABLE = 1u << 3,
    TCP_EV_PEER_CLOSED = 1u << 4,
    TCP_EV_CLOSED = 1u << 5,
};

/* A contiguous range [l, r) of out-of-order bytes already stored in the
 * receive ring beyond rcv_nxt. */
struct tcp_range {
    uint32_t l, r;
};

struct tcp_conn {
    /* identity and table links */
    uint32_t laddr, raddr;
    uint16_t lport, rport;
    uint32_t hnext;           /* hash chain */
    uint16_t gen;             /* handle generation */
    uint8_t  state;           /* enum tcp_state */
    uint8_t  in_use : 1,
             zombie : 1,      /* closed, waiting for the closed event */
             user_closed : 1, /* upper layer called tcp_close/abort: no events */
             app_shut : 1,    /* upper layer asked for FIN (shutdown/close) */
             fin_rcvd : 1,
             ts_ok : 1, sack_ok : 1, ws_ok : 1;
    uint8_t  want_writable : 1, /* tcp_send was short, or tcp_want_writable */
             in_evq : 1,
             ack_now : 1,
             rtt_active : 1,
             in_recovery : 1,
             rcv_fin_ooo : 1,   /* a FIN arrived beyond a hole */
             reset_rcvd : 1,
             close_reset : 1;   /* tcp_close with unread data */
    uint8_t  announced : 1,   /* the upper layer knows the handle */
             in_tw : 1,       /* on the TIME_WAIT FIFO */
             close_deferred : 1, /* closed(NORMAL) waits for unread bytes */
             sack_rec : 1,    /* this recovery is driven by the scoreboard */
             tlp_pending : 1, /* the REXMT deadline is a tail loss probe */
             tlp_done : 1,    /* a probe went out for this flight */
             ack_batch : 1,   /* on st->ackq: ACK at the batch's end */
             out_batch : 1;   /* on st->ackq: output at the batch's end */
    uint8_t  snd_wscale, rcv_wscale;
    uint8_t  backoff;         /* RTO exponent */
    uint8_t  retries;         /* consecutive RTO / persist / keepalive expiries */
    uint8_t  delack_segs;     /* full segments received since the last ACK */
    uint8_t  dupacks;
    uint8_t  kprobes;         /* keepalive probes unanswered */
    uint8_t  n_ooo;
    uint8_t  close_reason;
    uint16_t events;          /* TCP_EV_* pending */
    uint16_t mss;             /* send MSS (payload bytes incl. options room) */
    uint16_t listener;        /* listener index for SYN_RCVD */

    /* send side; the send ring holds bytes [sb_seq, sb_seq + sb_len),
     * byte with sequence s at snd_buf[s & snd_mask] */
    uint32_t iss, snd_una, snd_nxt, snd_max;
    uint32_t snd_wnd, max_sndwnd, snd_wl1, snd_wl2;
    uint32_t sb_seq, sb_len;
    uint32_t wr_lowat;        /* want_writable: free bytes that raise it */
    uint32_t cwnd, ssthresh, recover;
    uint32_t rtt_seq;
    uint64_t rtt_start;
    uint32_t srtt, rttvar, rto; /* µs; srtt 0 = no sample yet */
    uint32_t n_retrans;

    /* receive side; readable bytes are [rcv_rd, rcv_rd + rb_len), byte
     * with sequence s at rcv_buf[s & rcv_mask]; rcv_nxt is one more than
     * their end once the FIN is in */
    uint32_t irs, rcv_nxt, rcv_rd, rb_len, rcv_adv; /* rcv_adv: right edge advertised */
    uint32_t rcv_fin_seq;
    uint32_t ts_recent, last_ack_sent;
    struct tcp_range ooo[TCP_OOO_MAX];
    uint8_t  ooo_last;        /* index of the most recently changed range */
    uint8_t  n_sb;            /* sender scoreboard: ranges the peer SACKed */
    struct tcp_range sb[TCP_SACK_SB_MAX];
    uint32_t rtx_next;        /* SACK recovery: next byte to consider resending */

    uint8_t *snd_buf, *rcv_buf;

    /* timers */
    uint64_t tmr[TCP_T_MAX];
    uint64_t wheel_at;        /* deadline the wheel entry is for, 0 = none */
    uint32_t wprev, wnext;    /* wheel slot list */
    uint32_t wslot;
    uint32_t twnext, twprev;  /* TIME_WAIT FIFO */
    uint64_t last_activity;
    uint32_t idle_us;

    void *user;
};

struct tcp_listener {
    uint32_t addr;
    uint16_t port;
    uint16_t gen;
    bool in_use;
    void *user;
};

struct tcp_stack {
    struct tcp_stack_params p;
    struct tcp_stack_ops ops;
    void *ctx;
    struct tcp_counters cnt;

    struct tcp_conn *conns;
    uint32_t *free_stack;
    uint32_t n_free;
    uint32_t n_syn_rcvd;
    uint32_t snd_mask, rcv_mask;
    uint8_t *bufmem;

    uint32_t *buckets;
    uint32_t bucket_mask;

    struct tcp_listener *listeners;

    /* TIME_WAIT FIFO, oldest first, for recycling when the pool is empty */
    uint32_t tw_head, tw_tail;

    /* hashed timer wheel */
    uint32_t *wheel;
    uint32_t wheel_mask;
    uint64_t wheel_tick;      /* last tick processed */
    bool wheel_started;

    /* event queue */
    uint32_t *evq;
    uint32_t evq_head, evq_len;
    bool dispatching;
    bool batch;               /* tcp_batch_begin: events wait for _end */
    bool cork;                /* until the batch's end: sends only queue */
    uint32_t *ackq;           /* connections owing output or an ACK at the batch's end */
    uint32_t ackq_len;

    uint32_t eport_next;
    uint64_t chack_epoch;     /* challenge-ACK budget window start */
    uint32_t chack_left;
    uint32_t ooo_max;
};

/* tcp_stack.c */
struct tcp_conn *tcp_conn_alloc(struct tcp_stack *st, uint64_t now);
void tcp_conn_free(struct tcp_stack *st, struct tcp_conn *c);
struct tcp_conn *tcp_conn_lookup(struct tcp_stack *st, uint32_t laddr,
                                 uint16_t lport, uint32_t raddr, uint16_t rport);
void tcp_conn_hash_insert(struct tcp_stack *st, struct tcp_conn *c);
void tcp_conn_hash_remove(struct tcp_stack *st, struct tcp_conn *c);
void tcp_set_state(struct tcp_stack *st, struct tcp_conn *c, enum tcp_state s);
void tcp_event(struct tcp_stack *st, struct tcp_conn *c, unsigned ev);
void tcp_dispatch(struct tcp_stack *st);
/* tcp_dispatch even inside a batch (a freed entry needed right away). */
void tcp_dispatch_now(struct tcp_stack *st);
/* Puts C on the batch's end-of-batch list unless it is there already.
 * Returns false when the list is full (the caller acts at once instead);
 * the caller sets ack_batch or out_batch to say what is owed. */
bool tcp_batch_enlist(struct tcp_stack *st, struct tcp_conn *c);
/* tcp_output, or inside a batch (cork) a mark to output at its end, so
 * that what the upper layer writes over a burst leaves in full segments. */
void tcp_output_or_cork(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
/* Receiver SWS avoidance (RFC 9293 3.8.6.2.2): a larger window is worth an
 * ACK of its own once it has grown by min(rcvbuf / 2, MSS) and is at least
 * twice what the peer was last told (as Linux does), so that a reader that
 * takes each segment as it comes does not double the ACKs. */
bool tcp_window_update_due(const struct tcp_stack *st, const struct tcp_conn *c);
/* tcp_send_ack, or inside a batch (cork) a mark to send it at its end. */
void tcp_ack_or_queue(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
void tcp_conn_closed(struct tcp_stack *st, struct tcp_conn *c,
                     enum tcp_close_reason why);
void tcp_timer_set(struct tcp_stack *st, struct tcp_conn *c, enum tcp_timer t,
                   uint64_t at);
void tcp_timer_stop(struct tcp_stack *st, struct tcp_conn *c, enum tcp_timer t);
void tcp_wheel_remove(struct tcp_stack *st, struct tcp_conn *c);
void tcp_tw_push(struct tcp_stack *st, struct tcp_conn *c);
struct tcp_conn *tcp_handle_conn(const struct tcp_stack *st, tcp_handle_t h);
tcp_handle_t tcp_conn_handle(const struct tcp_stack *st, const struct tcp_conn *c);
int tcp_listener_find(const struct tcp_stack *st, uint32_t addr, uint16_t port);
uint32_t tcp_conn_idx(const struct tcp_stack *st, const struct tcp_conn *c);

/* tcp_secret.c */
uint64_t tcp_siphash(const uint8_t key[16], const void *data, size_t len);
uint32_t tcp_isn(const struct tcp_stack *st, uint32_t laddr, uint16_t lport,
                 uint32_t raddr, uint16_t rport, uint64_t now);
uint32_t tcp_cookie_make(const struct tcp_stack *st, uint32_t laddr,
                         uint16_t lport, uint32_t raddr, uint16_t rport,
                         uint32_t peer_isn, uint16_t mss, uint64_t now);
/* Returns the MSS encoded in a valid cookie, 0 if invalid. */
uint16_t tcp_cookie_check(const struct tcp_stack *st, uint32_t laddr,
                          uint16_t lport, uint32_t raddr, uint16_t rport,
                          uint32_t peer_isn, uint32_t cookie, uint64_t now);

/* tcp_sack.c */
void tcp_sack_clear(struct tcp_conn *c);
uint32_t tcp_sack_update(struct tcp_conn *c, const struct tcp_hdr *h);
uint32_t tcp_sack_sacked(const struct tcp_conn *c);
uint32_t tcp_sack_pipe(const struct tcp_conn *c);
void tcp_sack_recover(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);

/* tcp_output.c */
void tcp_output(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
void tcp_send_ack(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
void tcp_send_syn(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
void tcp_send_rst_conn(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
void tcp_send_segment(struct tcp_stack *st, struct tcp_conn *c, uint32_t seq,
                      uint32_t len, uint8_t flags, uint64_t now);
void tcp_send_rst_reply(struct tcp_stack *st, const struct tcp_seg_in *in,
                        const struct tcp_hdr *h, uint32_t payload_len);
int tcp_emit(struct tcp_stack *st, struct tcp_seg_out *o);
uint32_t tcp_rto_cur(const struct tcp_stack *st, const struct tcp_conn *c);
void tcp_rexmt_arm(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
void tcp_timers_fire(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
uint32_t tcp_rcv_window(const struct tcp_stack *st, const struct tcp_conn *c);
void tcp_activity(struct tcp_stack *st, struct tcp_conn *c, uint64_t now);
uint8_t tcp_opts_syn(const struct tcp_stack *st, const struct tcp_conn *c,
                     uint8_t *opt, uint32_t tsval);

/* Asks for the writable event once LOWAT bytes of the send buffer are free;
 * of two requests the lower threshold wins (the event comes early rather
 * than late: the upper layer looks again). */
static inline void tcp_arm_writable(struct tcp_conn *c, uint32_t lowat)
{
    if (!c->want_writable || lowat < c->wr_lowat)
        c->wr_lowat = lowat;
    c->want_writable = 1;
}

/* Our RFC 7323 TSval: milliseconds of the stack's clock plus ts_base_ms
 * (tcp-t.h: what keeps TSvals rising across restarts of the process). */
static inline uint32_t tcp_ts_now(const struct tcp_stack *st, uint64_t now)
{
    return st->p.ts_base_ms + (uint32_t)(now / 1000u);
}

#endif
