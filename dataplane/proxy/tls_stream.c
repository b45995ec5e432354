/* The TLS filter: struct proxy_stream_ops over tls_conn.
 *
 * Every operation the proxy makes on the client side first "pumps": it reads
 * plaintext out of the tls_conn into the stream's plaintext buffer, feeds
 * it the ciphertext TCP holds, and sends what the tls_conn produced
 * (handshake flights, alerts, tickets). peek then shows the plaintext
 * buffer, so the proxy moves decrypted bytes exactly as it moves plain ones.
 *
 * Backpressure, client -> backend: when the backend does not take the
 * plaintext, the buffer stays full, the tls_conn's input fills, TCP bytes
 * stay unread and the client's window closes. Backend -> client: send
 * accepts only as much plaintext as will fit, encrypted, in TCP's free send
 * space, so ciphertext never piles up behind a full TCP buffer on the data
 * path; what the handshake or a close leaves behind is flushed by
 * tls_stream_poll.
 *
 * Failure: the alert the tls_conn queued is sent, then a FIN; the proxy sees
 * end of stream (and closes the backend's write side); a client that does
 * not close within a grace period is reset by TCP's idle timer, whose closed
 * event ends the pair. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <openssl/tls1.h>

#include "dataplane/tcp/tcp.h"
#include "dataplane/tls/tls_conn.h"
#include "tls_stream.h"

#define TS_PT_CAP 16384u           /* one TLS record of plaintext */
#define TS_RECORD_OVERHEAD 64u     /* header, tag, padding: above any suite */
#define TS_RECORD_MAX 16384u
#define TS_FAIL_GRACE_US 1000000u  /* after an alert, reset a lingering client */
#define TS_PUMP_ROUNDS 8
#define TS_ROOM (TS_RECORD_MAX + TS_RECORD_OVERHEAD) /* worth a kick */

struct tls_stream {
    LIST_ENTRY(tls_stream) attn; /* on core->attn (or poll's local list) */
    LIST_ENTRY(tls_stream) hs;   /* on core->hs while handshaking */
    struct tls_stream_core *core;
    struct tls_stream *next_free;
    struct tls_conn *c;
    struct tcp_stack *st;
    tcp_handle_t h;
    uint8_t *pt; /* TS_PT_CAP bytes */
    uint32_t pt_off, pt_len;
    bool in_attn, in_hs;
    bool tcp_eof;     /* the client's FIN: every TCP byte was fed */
    bool tls_eof;     /* close_notify received */
    bool failed;      /* alert queued, FIN follows */
    bool shut_wanted; /* FIN to send once the ciphertext is out */
    bool shut_done;
    bool kick;        /* tell the proxy to move bytes again */
    bool want_space;  /* send refused bytes: kick when TCP has room */
    bool in_flush;    /* ts_flush running (re-entrancy guard) */
    bool draining;    /* backend done: client input is read and dropped */
};

struct ts_listener {
    struct tls_stream_core *core;
    unsigned index;
};

LIST_HEAD(ts_list, tls_stream);

struct tls_stream_core {
    struct ts_list attn;
    struct ts_list hs;
    struct tls_worker *tw;
    tls_stream_kick_fn kick;
    void *kick_arg;
    uint64_t now_us;
    struct tls_stream *streams;
    uint8_t *pt_mem;
    unsigned n;
    struct tls_stream *free_head;
    struct ts_listener listeners[TLS_STREAM_MAX_LISTENERS];
    uint64_t ctr[TLS_STREAM_CTR_MAX];
};

#define TS_COUNT(core, name, n) ((core)->ctr[TLS_STREAM_CTR_##name] += (n))

static const char *const ts_ctr_names[] = {
#define TS_CTR_NAME(name, help) #name,
    TLS_STREAM_COUNTERS(TS_CTR_NAME)
#undef TS_CTR_NAME
};

/* --- core ------------------------------------------------------------------ */

struct tls_stream_core *tls_stream_core_new(struct tls_worker *tw,
                                            unsigned max_conns,
                                            tls_stream_kick_fn kick, void *arg,
                                            char *err, size_t errlen)
{
    if (tw == NULL || max_conns == 0) {
        snprintf(err, errlen, "tls_stream: a TLS worker and max_conns > 0 needed");
        return NULL;
    }
    struct tls_stream_core *core = calloc(1, sizeof(*core));
    if (core != NULL) {
        core->streams = calloc(max_conns, sizeof(*core->streams));
        core->pt_mem = malloc((size_t)max_conns * TS_PT_CAP);
    }
    if (core == NULL || core->streams == NULL || core->pt_mem == NULL) {
        if (core != NULL) {
            free(core->streams);
            free(core->pt_mem);
        }
        free(core);
        snprintf(err, errlen, "tls_stream: out of memory for %u streams",
                 max_conns);
        return NULL;
    }
    LIST_INIT(&core->attn);
    LIST_INIT(&core->hs);
    core->tw = tw;
    core->kick = kick;
    core->kick_arg = arg;
    core->n = max_conns;
    for (unsigned i = 0; i < max_conns; i++) {
        struct tls_stream *s = &core->streams[i];
        s->core = core;
        s->pt = core->pt_mem + (size_t)i * TS_PT_CAP;
        s->next_free = i + 1 < max_conns ? &core->streams[i + 1] : NULL;
    }
    core->free_head = &core->streams[0];
    for (unsigned i = 0; i < TLS_STREAM_MAX_LISTENERS; i++)
        core->listeners[i] = (struct ts_listener){.core = core, .index = i};
    return core;
}

void tls_stream_core_free(struct tls_stream_core *core)
{
    if (core == NULL)
        return;
    for (unsigned i = 0; i < core->n; i++)
        if (core->streams[i].c != NULL)
            tls_conn_release(core->streams[i].c);
    free(core->pt_mem);
    free(core->streams);
    free(core);
}

void tls_stream_core_set_kick(struct tls_stream_core *core,
                              tls_stream_kick_fn kick, void *arg)
{
    core->kick = kick;
    core->kick_arg = arg;
}

void *tls_stream_listener_ctx(struct tls_stream_core *core, unsigned listener)
{
    return listener < TLS_STREAM_MAX_LISTENERS ? &core->listeners[listener]
                                               : NULL;
}

void tls_stream_set_time(struct tls_stream_core *core, uint64_t now_us)
{
    core->now_us = now_us;
}

bool tls_stream_pending(const struct tls_stream_core *core)
{
    return !LIST_EMPTY(&core->attn);
}

uint64_t tls_stream_counter(const struct tls_stream_core *core, unsigned c)
{
    return c < TLS_STREAM_CTR_MAX ? core->ctr[c] : 0;
}

const char *tls_stream_counter_name(unsigned c)
{
    return c < TLS_STREAM_CTR_MAX ? ts_ctr_names[c] : NULL;
}

/* --- one stream ------------------------------------------------------------ */

static void ts_attention(struct tls_stream *s)
{
    if (!s->in_attn) {
        LIST_INSERT_HEAD(&s->core->attn, s, attn);
        s->in_attn = true;
    }
}

static void ts_handshake_over(struct tls_stream *s)
{
    if (s->in_hs) {
        LIST_REMOVE(s, hs);
        s->in_hs = false;
    }
}

/* Sends queued ciphertext as far as TCP takes it, then the FIN if one waits
 * behind it. Returns 1 if ciphertext is left (the stream is on the
 * attention list), 0 if all is out, -errno from TCP. */
static int ts_flush(struct tls_stream *s)
{
    const uint8_t *p;
    size_t n;
    /* tcp_send delivers the stack's pending events before it returns, and
     * one may come back here through the proxy: the outer call owns the
     * bytes it peeked, the inner one must not send them again. */
    if (s->in_flush)
        return tls_conn_out_peek(s->c, &p) > 0;
    s->in_flush = true;
    while ((n = tls_conn_out_peek(s->c, &p)) > 0) {
        ssize_t k = tcp_send(s->st, s->h, p, n, s->core->now_us);
        if (s->c == NULL)
            return -EBADF; /* released by an event tcp_send delivered */
        if (k <= 0) {
            s->in_flush = false;
            if (k < 0)
                return (int)k;
            break;
        }
        tls_conn_out_consume(s->c, (size_t)k);
    }
    s->in_flush = false;
    if (n > 0) {
        /* TCP took less than it was given, so it raises its writable
         * event when the peer's ACKs free space (ts_writable_op). */
        TS_COUNT(s->core, deferred_flush, 1);
        return 1;
    }
    if (s->shut_wanted && !s->shut_done) {
        s->shut_done = true;
        int rc = tcp_shutdown(s->st, s->h, s->core->now_us);
        if (rc < 0 && rc != -ENOTCONN)
            return rc;
    }
    return 0;
}

/* The tls_conn failed (bad record, alert, refused staple, timeout): send
 * its alert and a FIN, drop the plaintext, and let TCP reset the client if
 * it lingers past the grace period. */
static void ts_fail(struct tls_stream *s)
{
    if (s->failed)
        return;
    s->failed = true;
    s->shut_wanted = true;
    s->pt_len = 0;
    s->pt_off = 0;
    ts_handshake_over(s);
    TS_COUNT(s->core, failed_closed, 1);
    (void)ts_flush(s); /* a TCP error here: the idle timer ends it anyway */
    tcp_set_idle_timeout(s->st, s->h, TS_FAIL_GRACE_US, s->core->now_us);
    ts_attention(s); /* poll reads and drops the client's last bytes and FIN */
}

/* Plaintext out of the tls_conn, ciphertext into it, its output onto TCP,
 * until nothing moves. Returns 0, or -errno when the TCP connection is gone
 * (reset, stale). */
static int ts_pump(struct tls_stream *s)
{
    for (int round = 0; round < TS_PUMP_ROUNDS && !s->failed; round++) {
        bool progress = false;
        if (!s->tls_eof) {
            if (s->pt_len == 0)
                s->pt_off = 0;
            uint32_t end = s->pt_off + s->pt_len;
            if (end == TS_PT_CAP && s->pt_off > 0) {
                memmove(s->pt, s->pt + s->pt_off, s->pt_len);
                s->pt_off = 0;
                end = s->pt_len;
            }
            if (end < TS_PT_CAP) {
                ssize_t r = tls_conn_read(s->c, s->pt + end, TS_PT_CAP - end);
                if (r > 0) {
                    s->pt_len += (uint32_t)r;
                    progress = true;
                } else if (r == -EPIPE) {
                    s->tls_eof = true;
                } else if (r < 0) {
                    ts_fail(s);
                    return 0;
                }
            }
        }
        if (!s->tcp_eof) {
            struct tcp_iov iov[2];
            ssize_t n = tcp_recv_peek(s->st, s->h, iov);
            if (n == -ESHUTDOWN) {
                s->tcp_eof = true;
            } else if (n < 0) {
                return (int)n;
            } else if (n > 0) {
                size_t fed = 0;
                for (int i = 0; i < 2; i++) {
                    if (iov[i].len == 0)
                        continue;
                    ssize_t k = s->tls_eof ? (ssize_t)iov[i].len /* discard */
                                           : tls_conn_feed(s->c, iov[i].base,
                                                           iov[i].len);
                    if (k == -EPIPE) {
                        s->tls_eof = true;
                        k = (ssize_t)iov[i].len;
                    } else if (k < 0) {
                        (void)tcp_recv_consume(s->st, s->h, fed, s->core->now_us);
                        ts_fail(s);
                        return 0;
                    }
                    fed += (size_t)k;
                    if ((size_t)k < iov[i].len)
                        break;
                }
                if (fed > 0) {
                    int rc = tcp_recv_consume(s->st, s->h, fed, s->core->now_us);
                    if (rc < 0)
                        return rc;
                    progress = true;
                }
            }
        }
        const uint8_t *p;
        bool had_out = tls_conn_out_peek(s->c, &p) > 0;
        int rc = ts_flush(s);
        if (rc < 0)
            return rc;
        if (had_out && rc == 0)
            progress = true;
        if (!progress)
            break;
    }
    if (s->in_hs && tls_conn_state(s->c) != TLS_CONN_HANDSHAKE) {
        ts_handshake_over(s);
        /* Backend bytes may have been refused while the handshake ran and
         * no stack event will bring them back: move again. */
        s->kick = true;
        ts_attention(s);
    }
    return 0;
}

/* After the backend finished and our close_notify went out, the proxy no
 * longer reads the client; but the client answers with its own
 * close_notify and a FIN, and TCP ends the connection only once those are
 * read. Read and drop them (bounded per call): once from tls_stream_poll
 * when the stream starts draining, then on each of the stack's events for
 * the connection (ts_drain_op), never by polling: a client that keeps its
 * side open must cost nothing per loop iteration. */
static void ts_drain(struct tls_stream *s)
{
    for (int round = 0; round < TS_PUMP_ROUNDS; round++) {
        struct tcp_iov iov[2];
        ssize_t n = tcp_recv_peek(s->st, s->h, iov);
        if (n == -ESHUTDOWN || n < 0) {
            s->tcp_eof = true;
            return;
        }
        if (n == 0 || tcp_recv_consume(s->st, s->h, (size_t)n, s->core->now_us) < 0)
            return;
        TS_COUNT(s->core, drained_after_close, (uint64_t)n);
    }
}

/* ts_drain for a stream that drains (the backend finished, or TLS failed)
 * and has not seen the client's FIN yet; else nothing. */
static void ts_drain_op(void *state)
{
    struct tls_stream *s = state;
    if ((s->draining || s->failed) && !s->tcp_eof)
        ts_drain(s);
}

static int ts_open(void *ops_ctx, struct tcp_stack *st, tcp_handle_t h,
                   void **state)
{
    struct ts_listener *l = ops_ctx;
    struct tls_stream_core *core = l->core;
    struct tls_stream *s = core->free_head;
    if (s == NULL) {
        TS_COUNT(core, refused_pool, 1);
        return -ENOBUFS;
    }
    struct tls_conn *c = tls_conn_accept(core->tw, l->index,
                                         core->now_us * 1000u);
    if (c == NULL)
        return errno != 0 ? -errno : -ENOMEM;
    core->free_head = s->next_free;
    uint8_t *pt = s->pt;
    memset(s, 0, sizeof(*s));
    s->core = core;
    s->pt = pt;
    s->c = c;
    s->st = st;
    s->h = h;
    LIST_INSERT_HEAD(&core->hs, s, hs);
    s->in_hs = true;
    TS_COUNT(core, opened, 1);
    *state = s;
    return 0;
}

static ssize_t ts_peek(void *state, struct tcp_stack *st, tcp_handle_t h,
                       struct tcp_iov iov[2])
{
    struct tls_stream *s = state;
    (void)st;
    (void)h;
    int rc = ts_pump(s);
    if (rc < 0)
        return rc;
    if (s->pt_len > 0) {
        iov[0] = (struct tcp_iov){.base = s->pt + s->pt_off, .len = s->pt_len};
        iov[1] = (struct tcp_iov){.base = NULL, .len = 0};
        return s->pt_len;
    }
    if (s->failed || s->tls_eof || s->tcp_eof || s->draining)
        return -ESHUTDOWN;
    return 0;
}

static int ts_consume(void *state, struct tcp_stack *st, tcp_handle_t h,
                      size_t n, uint64_t now)
{
    struct tls_stream *s = state;
    (void)st;
    (void)h;
    (void)now;
    if (n > s->pt_len)
        return -EINVAL;
    s->pt_off += (uint32_t)n;
    s->pt_len -= (uint32_t)n;
    /* The proxy moves a bounded number of rounds per event; more plaintext
     * may wait inside the tls_conn with no TCP event to come. */
    s->kick = true;
    ts_attention(s);
    return 0;
}

/* The free send space worth a kick: a record's worth, or half the buffer
 * when the whole buffer is not much more than a record (never a threshold
 * the free space cannot reach). */
static ssize_t ts_room(const struct tls_stream *s)
{
    ssize_t room = TS_ROOM;
    ssize_t half = (ssize_t)(tcp_stack_sndbuf(s->st) / 2);
    return half < room ? half : room;
}

/* Waits for room: TCP's writable event brings the stream back
 * (ts_writable_op) once half the send buffer is free (at least ts_room(),
 * and a proxy move of many records rather than one per event, as the
 * kernel wakes writers), or the next poll if that much is free now. */
static void ts_wait_room(struct tls_stream *s)
{
    ssize_t half = (ssize_t)(tcp_stack_sndbuf(s->st) / 2);
    if (tcp_want_writable(s->st, s->h, (uint32_t)half) >= half)
        ts_attention(s);
}

static ssize_t ts_send(void *state, struct tcp_stack *st, tcp_handle_t h,
                       const void *data, size_t len, uint64_t now)
{
    struct tls_stream *s = state;
    (void)now;
    if (s->failed) {
        /* The client gets no more data; its pair ends with the close. */
        TS_COUNT(s->core, dropped_to_failed, len);
        return (ssize_t)len;
    }
    if (s->shut_wanted)
        return -EPIPE;
    int rc = ts_flush(s);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        s->want_space = true; /* kicked when TCP has room again */
        return 0;
    }
    if (tls_conn_state(s->c) == TLS_CONN_HANDSHAKE)
        return 0; /* kicked when the handshake is over */
    /* Encrypt record by record into the tls_conn's output (one record and
     * a bit), flushing each onto TCP, while TCP's free send space holds
     * the ciphertext. */
    size_t done = 0;
    while (done < len) {
        ssize_t space = tcp_send_space(st, h);
        if (space < 0)
            return done > 0 ? (ssize_t)done : space;
        ssize_t budget = space - (ssize_t)((space / TS_RECORD_MAX + 1) *
                                           TS_RECORD_OVERHEAD);
        if (budget <= 0)
            break;
        size_t take = len - done < (size_t)budget ? len - done : (size_t)budget;
        ssize_t k = tls_conn_write(s->c, (const uint8_t *)data + done, take);
        if (k == -EPROTO) {
            ts_fail(s);
            return (ssize_t)len;
        }
        if (k < 0)
            return done > 0 ? (ssize_t)done : k;
        done += (size_t)k;
        rc = ts_flush(s);
        if (rc < 0)
            return done > 0 ? (ssize_t)done : rc;
        if (k == 0 || rc > 0)
            break; /* the output is full or TCP took less than it had */
    }
    if (done < len) {
        /* A short send, which TCP does not see (this one stopped short of
         * TCP's limit, or the tls_conn's output was full): ask TCP for its
         * writable event once a record fits, and kick the proxy then. */
        s->want_space = true;
        ts_wait_room(s);
    }
    return (ssize_t)done;
}

static int ts_shutdown(void *state, struct tcp_stack *st, tcp_handle_t h,
                       uint64_t now)
{
    struct tls_stream *s = state;
    (void)st;
    (void)h;
    (void)now;
    if (s->failed || s->shut_wanted)
        return 0;
    (void)tls_conn_shutdown(s->c); /* -EPROTO: failed, nothing to send */
    s->shut_wanted = true;
    /* Like HAProxy and nginx: once the backend is done, so is the client's
     * direction (a TLS half-close has no use for an HTTP backend). */
    s->draining = true;
    s->pt_len = 0;
    ts_attention(s);
    int rc = ts_flush(s);
    return rc < 0 ? rc : 0;
}


/* TCP has freed send space: flush, and kick the proxy if it waits for room,
 * from the next poll (once: a stream still short of room waits for the
 * next event, it is not polled). */
static void ts_writable_op(void *state)
{
    struct tls_stream *s = state;
    ts_attention(s);
}

static void ts_release(void *state)
{
    struct tls_stream *s = state;
    if (s == NULL)
        return;
    struct tls_stream_core *core = s->core;
    if (s->in_attn)
        LIST_REMOVE(s, attn);
    ts_handshake_over(s);
    tls_conn_release(s->c);
    s->c = NULL;
    s->in_attn = false;
    s->next_free = core->free_head;
    core->free_head = s;
}

/* The TLS fields of a PROXY v2 header, once the handshake is over. */
static int ts_pp2_info(void *state, struct proxy_v2_info *info)
{
    struct tls_stream *s = state;
    if (s->failed)
        return -EPROTO;
    if (tls_conn_state(s->c) == TLS_CONN_HANDSHAKE)
        return 0;
    info->ssl = true;
    info->ssl_verify = 1; /* no client certificate was asked for */
    int v = tls_conn_version(s->c);
    info->ssl_version = v == TLS1_3_VERSION ? "TLSv1.3"
                        : v == TLS1_2_VERSION ? "TLSv1.2" : NULL;
    info->ssl_version_len = info->ssl_version ? strlen(info->ssl_version) : 0;
    info->ssl_cipher = tls_conn_cipher(s->c);
    info->ssl_cipher_len = info->ssl_cipher ? strlen(info->ssl_cipher) : 0;
    info->authority = tls_conn_server_name(s->c);
    info->authority_len = info->authority ? strlen(info->authority) : 0;
    unsigned alen = 0;
    info->alpn = tls_conn_alpn(s->c, &alen);
    info->alpn_len = alen;
    return 1;
}

const struct proxy_stream_ops tls_stream_ops = {
    .open = ts_open,
    .peek = ts_peek,
    .consume = ts_consume,
    .send = ts_send,
    .shutdown = ts_shutdown,
    .release = ts_release,
    .drain = ts_drain_op,
    .writable = ts_writable_op,
    .pp2_info = ts_pp2_info,
};

/* --- outside the stack's events --------------------------------------------- */

unsigned tls_stream_poll(struct tls_stream_core *core)
{
    struct ts_list local;
    unsigned n = 0;
    LIST_INIT(&local);
    /* Take the whole list: streams that need more go back on core->attn
     * and wait for the next call, so one call is bounded. */
    while (!LIST_EMPTY(&core->attn)) {
        struct tls_stream *s = LIST_FIRST(&core->attn);
        LIST_REMOVE(s, attn);
        LIST_INSERT_HEAD(&local, s, attn);
    }
    while (!LIST_EMPTY(&local)) {
        struct tls_stream *s = LIST_FIRST(&local);
        LIST_REMOVE(s, attn);
        s->in_attn = false;
        ssize_t space = tcp_send_space(s->st, s->h);
        if (space < 0) {
            /* Gone (reset underway): its closed event ends the pair. */
            continue;
        }
        const uint8_t *p;
        if (tls_conn_out_peek(s->c, &p) > 0) {
            if (space == 0) {
                /* Nothing can move yet: TCP's writable event brings the
                 * stream back (a stream here is never polled while full). */
                if (tcp_want_writable(s->st, s->h, 1) > 0)
                    ts_attention(s);
                continue;
            }
            if (ts_flush(s) < 0)
                continue;
            n++;
            if (tls_conn_out_peek(s->c, &p) > 0)
                continue; /* still queued: TCP's writable event comes back */
            space = tcp_send_space(s->st, s->h);
        }
        if (s->want_space) {
            if (space < ts_room(s) && !s->shut_done) {
                ts_wait_room(s);
                if (!s->kick)
                    continue;
            } else {
                s->want_space = false;
                s->kick = true;
            }
        }
        /* What the client sends later comes with the stack's events
         * (ts_drain_op again): no need to stay on the list until its FIN. */
        ts_drain_op(s);
        if (s->kick && core->kick != NULL) {
            s->kick = false;
            n++;
            TS_COUNT(core, kicks, 1);
            core->kick(core->kick_arg, s->h); /* may release s */
        }
    }
    return n;
}

unsigned tls_stream_check_deadlines(struct tls_stream_core *core)
{
    unsigned n = 0;
    uint64_t now_ns = core->now_us * 1000u;
    struct tls_stream *s = LIST_FIRST(&core->hs);
    while (s != NULL) {
        struct tls_stream *next = LIST_NEXT(s, hs);
        if (tls_conn_check_deadline(s->c, now_ns) == -ETIMEDOUT) {
            TS_COUNT(core, timeouts, 1);
            ts_fail(s);
            n++;
        }
        s = next;
    }
    return n;
}
