/* A BIO over a connection's own buffers: OpenSSL reads ciphertext the caller
 * fed and writes ciphertext the caller pulls. It never blocks and never does
 * I/O: an empty input or a full output is "retry", which surfaces as
 * SSL_ERROR_WANT_READ / WANT_WRITE and as "no progress" to the caller. */
#include <string.h>

#include "tls_pvt.h"

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_read(BIO *b, char *out, int outl)
{
    struct tls_conn *c = BIO_get_data(b);
    struct tls_buf *in = &c->in;
    BIO_clear_retry_flags(b);
    uint32_t avail = in->tail - in->head;
    if (avail == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    uint32_t n = outl < 0 ? 0 : (uint32_t)outl;
    if (n > avail)
        n = avail;
    memcpy(out, in->data + in->head, n);
    in->head += n;
    if (in->head == in->tail)
        in->head = in->tail = 0;
    return (int)n;
}

static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_conn *c = BIO_get_data(b);
    struct tls_buf *out = &c->out;
    BIO_clear_retry_flags(b);
    if (out->head > 0 && (long)(out->cap - out->tail) < (long)len) {
        memmove(out->data, out->data + out->head, out->tail - out->head);
        out->tail -= out->head;
        out->head = 0;
    }
    uint32_t room = out->cap - out->tail;
    if (room == 0) {
        BIO_set_retry_write(b);
        return -1;
    }
    uint32_t n = len < 0 ? 0 : (uint32_t)len;
    if (n > room)
        n = room; /* OpenSSL resends the rest of a short write itself */
    memcpy(out->data + out->tail, data, n);
    out->tail += n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct tls_conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the caller flushes by pulling */
    case BIO_CTRL_PENDING:
        return c ? (long)(c->in.tail - c->in.head) : 0;
    case BIO_CTRL_WPENDING:
        return c ? (long)(c->out.tail - c->out.head) : 0;
    default:
        return 0;
    }
}

BIO_METHOD *_tls_bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "tern_tls_conn");
    if (m == NULL)
        return NULL;
    if (BIO_meth_set_create(m, bio_create) != 1 ||
        BIO_meth_set_read(m, bio_read) != 1 ||
        BIO_meth_set_write(m, bio_write) != 1 ||
        BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

BIO *_tls_bio_new(BIO_METHOD *m, struct tls_conn *c)
{
    BIO *b = BIO_new(m);
    if (b != NULL)
        BIO_set_data(b, c);
    return b;
}
