/* One TLS connection as a byte-stream transform over bounded buffers. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>

#include "tls_conn.h"
#include "tls_pvt.h"

/* Worst-case bytes a record adds to its plaintext: header, explicit IV, MAC
 * or tag, CBC padding, TLS 1.3 inner type. Writes are sized so that every
 * record fits the output buffer whole. */
#define TLS_RECORD_OVERHEAD 320
#define TLS_RECORD_PLAIN_MAX 16384

struct tls_conn *tls_conn_accept(struct tls_worker *w, unsigned listener,
                                 uint64_t now_ns)
{
    if (listener >= w->cfg->n_listeners) {
        errno = EINVAL;
        return NULL;
    }
    struct tls_conn *c = w->free_list;
    if (c == NULL) {
        tls_count(w, TLS_CTR_CONN_POOL_EMPTY);
        errno = ENOBUFS;
        return NULL;
    }
    /* The listener's profile decides versions, ciphers and tickets (SSL_new
     * copies them); SNI may then switch to another certificate set of the
     * same profile. */
    const struct tls_cfg_listener *l = &w->cfg->listeners[listener];
    unsigned set = l->default_certset;
    SSL *ssl = SSL_new(w->ctx[_tls_ctx_index(w->cfg, l->profile, set)]);
    BIO *bio = ssl ? _tls_bio_new(w->bio_method, c) : NULL;
    if (bio == NULL) {
        SSL_free(ssl);
        ERR_clear_error();
        tls_count(w, TLS_CTR_FAILED_BASE + TLS_REASON_RESOURCE);
        errno = ENOMEM;
        return NULL;
    }
    w->free_list = c->next_free;
    w->conns_in_use++;
    SSL_set_bio(ssl, bio, bio); /* one reference, owned by ssl */
    SSL_set_app_data(ssl, c);
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->in.head = c->in.tail = 0;
    c->out.head = c->out.tail = 0;
    c->deadline_ns = now_ns + w->cfg->handshake_timeout_ns;
    c->listener = (uint16_t)listener;
    c->certset = (uint16_t)set;
    c->state = TLS_CONN_HANDSHAKE;
    c->reason = TLS_REASON_NONE;
    c->stapled = false;
    c->renegotiation = false;
    c->peer_closed = false;
    c->in_use = true;
    return c;
}

void tls_conn_release(struct tls_conn *c)
{
    if (c == NULL || !c->in_use)
        return;
    struct tls_worker *w = c->w;
    SSL_free(c->ssl);
    c->ssl = NULL;
    c->in_use = false;
    c->next_free = w->free_list;
    w->free_list = c;
    w->conns_in_use--;
}

void _tls_conn_fail(struct tls_conn *c, enum tls_reason r)
{
    if (c->state == TLS_CONN_FAILED)
        return;
    if (c->state == TLS_CONN_HANDSHAKE)
        tls_count(c->w, TLS_CTR_HS_FAILED);
    c->state = TLS_CONN_FAILED;
    if (c->reason == TLS_REASON_NONE)
        c->reason = (uint8_t)r;
    tls_count(c->w, TLS_CTR_FAILED_BASE + c->reason);
}

/* Maps OpenSSL's reason for a failure to tern's, from the error queue, and
 * empties the queue: it is per thread and would otherwise leak into the
 * next connection's diagnosis. */
static enum tls_reason classify_error(void)
{
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL)
        return TLS_REASON_PROTOCOL;
    int r = ERR_GET_REASON(e);
    if (r >= SSL_AD_REASON_OFFSET)
        return TLS_REASON_ALERT;
    switch (r) {
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DATA_LENGTH_TOO_LONG:
    case SSL_R_EXCESSIVE_MESSAGE_SIZE:
    case SSL_R_RECORD_LENGTH_MISMATCH:
        return TLS_REASON_OVERSIZED;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_BAD_RECORD_TYPE:
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_RECORD_TOO_SMALL:
        return TLS_REASON_GARBAGE;
    case SSL_R_NO_RENEGOTIATION:
        return TLS_REASON_RENEGOTIATION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_NO_SHARED_GROUPS:
        return TLS_REASON_NEGOTIATION;
    case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
        return TLS_REASON_RENEGOTIATION;
    default:
        return TLS_REASON_PROTOCOL;
    }
}

/* Handles a non-success return RET of an SSL call: 0 to retry later, or
 * -EPROTO / -EPIPE. */
static int ssl_failure(struct tls_conn *c, int ret)
{
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        /* The client's close_notify ends its direction only: TLS 1.3
         * (RFC 8446 6.1) lets us go on sending, and a client that
         * half-closes after its request waits for the answer. */
        ERR_clear_error();
        if (!c->peer_closed)
            tls_count(c->w, TLS_CTR_CONN_CLOSED_BY_PEER);
        c->peer_closed = true;
        return -EPIPE;
    default: {
        enum tls_reason r = classify_error();
        _tls_conn_fail(c, r); /* keeps a reason a callback set first */
        return -EPROTO;
    }
    }
}

static void handshake_done(struct tls_conn *c)
{
    struct tls_worker *w = c->w;
    c->state = TLS_CONN_ESTABLISHED;
    c->deadline_ns = 0;
    bool tls13 = SSL_version(c->ssl) == TLS1_3_VERSION;
    if (SSL_session_reused(c->ssl))
        tls_count(w, tls13 ? TLS_CTR_HS_RESUMED_TLS13 : TLS_CTR_HS_RESUMED_TLS12);
    else
        tls_count(w, tls13 ? TLS_CTR_HS_FULL_TLS13 : TLS_CTR_HS_FULL_TLS12);
    if (SSL_get_tlsext_status_type(c->ssl) != TLSEXT_STATUSTYPE_ocsp)
        tls_count(w, TLS_CTR_STAPLE_NOT_REQUESTED);
}

/* Advances the handshake. Returns 0 (done or waiting) or -errno. */
static int handshake_step(struct tls_conn *c)
{
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        handshake_done(c);
        return 0;
    }
    return ssl_failure(c, ret);
}

static int check_usable(const struct tls_conn *c)
{
    if (c->state == TLS_CONN_FAILED)
        return -EPROTO;
    if (c->state == TLS_CONN_CLOSED)
        return -EPIPE;
    return 0;
}

/* Called after each SSL call that may have read a ClientHello. */
static int check_renegotiation(struct tls_conn *c)
{
    if (!c->renegotiation)
        return 0;
    tls_count(c->w, TLS_CTR_RENEGOTIATION_REFUSED);
    _tls_conn_fail(c, TLS_REASON_RENEGOTIATION);
    ERR_clear_error();
    return -EPROTO;
}

ssize_t tls_conn_feed(struct tls_conn *c, const void *ct, size_t len)
{
    int rc = check_usable(c);
    if (rc < 0)
        return rc;
    if (c->peer_closed)
        return -EPIPE; /* nothing may follow close_notify */
    struct tls_buf *in = &c->in;
    if (in->head > 0 && in->cap - in->tail < len) {
        memmove(in->data, in->data + in->head, in->tail - in->head);
        in->tail -= in->head;
        in->head = 0;
    }
    size_t n = in->cap - in->tail;
    if (n > len)
        n = len;
    if (n > 0)
        memcpy(in->data + in->tail, ct, n);
    in->tail += (uint32_t)n;
    if (c->state == TLS_CONN_HANDSHAKE) {
        rc = handshake_step(c);
        if (rc < 0)
            return rc;
    }
    return (ssize_t)n;
}

ssize_t tls_conn_read(struct tls_conn *c, void *pt, size_t cap)
{
    int rc = check_usable(c);
    if (rc < 0)
        return rc;
    if (c->peer_closed)
        return -EPIPE;
    if (c->state == TLS_CONN_HANDSHAKE) {
        rc = handshake_step(c);
        if (rc < 0 || c->state == TLS_CONN_HANDSHAKE)
            return rc;
    }
    size_t n = 0;
    int ret = SSL_read_ex(c->ssl, pt, cap, &n);
    rc = check_renegotiation(c);
    if (rc < 0)
        return rc;
    if (ret == 1)
        return (ssize_t)n;
    return ssl_failure(c, ret);
}

ssize_t tls_conn_write(struct tls_conn *c, const void *pt, size_t len)
{
    int rc = check_usable(c);
    if (rc < 0)
        return rc;
    if (c->state != TLS_CONN_ESTABLISHED || len == 0)
        return 0;
    size_t room = c->out.cap - (c->out.tail - c->out.head);
    size_t take = 0;
    while (take < len && room > TLS_RECORD_OVERHEAD) {
        size_t chunk = len - take;
        if (chunk > TLS_RECORD_PLAIN_MAX)
            chunk = TLS_RECORD_PLAIN_MAX;
        if (chunk > room - TLS_RECORD_OVERHEAD)
            chunk = room - TLS_RECORD_OVERHEAD;
        take += chunk;
        room -= chunk + TLS_RECORD_OVERHEAD;
    }
    if (take == 0)
        return 0;
    size_t n = 0;
    int ret = SSL_write_ex(c->ssl, pt, take, &n);
    if (ret == 1)
        return (ssize_t)n;
    rc = ssl_failure(c, ret);
    /* The room check makes a short BIO write impossible; if OpenSSL still
     * wants to write, its retry state would pin these bytes: fail rather
     * than hand the caller a contract it cannot see. */
    if (rc == 0) {
        _tls_conn_fail(c, TLS_REASON_RESOURCE);
        return -EPROTO;
    }
    return rc;
}

size_t tls_conn_out_peek(const struct tls_conn *c, const uint8_t **p)
{
    *p = c->out.data + c->out.head;
    return c->out.tail - c->out.head;
}

void tls_conn_out_consume(struct tls_conn *c, size_t n)
{
    size_t have = c->out.tail - c->out.head;
    if (n > have)
        n = have;
    c->out.head += (uint32_t)n;
    if (c->out.head == c->out.tail)
        c->out.head = c->out.tail = 0;
}

size_t tls_conn_pull(struct tls_conn *c, void *buf, size_t cap)
{
    const uint8_t *p;
    size_t n = tls_conn_out_peek(c, &p);
    if (n > cap)
        n = cap;
    memcpy(buf, p, n);
    tls_conn_out_consume(c, n);
    return n;
}

int tls_conn_shutdown(struct tls_conn *c)
{
    if (c->state == TLS_CONN_FAILED)
        return -EPROTO;
    /* 0 or 1 both mean close_notify is queued; no need to wait for the
     * client's own close_notify (the proxy closes TCP after flushing). */
    if (SSL_shutdown(c->ssl) < 0) {
        ERR_clear_error();
        c->state = TLS_CONN_CLOSED;
        return 0;
    }
    c->state = TLS_CONN_CLOSED;
    return 0;
}

int tls_conn_check_deadline(struct tls_conn *c, uint64_t now_ns)
{
    if (c->state != TLS_CONN_HANDSHAKE || now_ns < c->deadline_ns)
        return 0;
    _tls_conn_fail(c, TLS_REASON_TIMEOUT);
    return -ETIMEDOUT;
}

uint64_t tls_conn_deadline(const struct tls_conn *c)
{
    return c->state == TLS_CONN_HANDSHAKE ? c->deadline_ns : 0;
}

enum tls_conn_state tls_conn_state(const struct tls_conn *c)
{
    return (enum tls_conn_state)c->state;
}

enum tls_reason tls_conn_reason(const struct tls_conn *c)
{
    return (enum tls_reason)c->reason;
}

const uint8_t *tls_conn_alpn(const struct tls_conn *c, unsigned *len)
{
    const unsigned char *p = NULL;
    SSL_get0_alpn_selected(c->ssl, &p, len);
    if (p == NULL)
        *len = 0;
    return p;
}

const char *tls_conn_server_name(const struct tls_conn *c)
{
    return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

int tls_conn_resumed(const struct tls_conn *c)
{
    return c->state != TLS_CONN_HANDSHAKE && SSL_session_reused(c->ssl);
}

int tls_conn_version(const struct tls_conn *c)
{
    return c->state == TLS_CONN_HANDSHAKE ? 0 : SSL_version(c->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
    if (c->state == TLS_CONN_HANDSHAKE)
        return NULL;
    const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);
    return ci != NULL ? SSL_CIPHER_get_name(ci) : NULL;
}

int tls_conn_stapled(const struct tls_conn *c)
{
    return c->stapled;
}

unsigned tls_conn_certset(const struct tls_conn *c)
{
    return c->certset;
}
