/* PROXY protocol v2: build and parse. Big-endian fields are written and
 * read byte by byte so that the code does not care about alignment or the
 * host's byte order. */
#include <errno.h>
#include <string.h>

#include "proxy_v2.h"

static const uint8_t proxy_v2_sig[PROXY_V2_SIG_LEN] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Bytes one TLV of value length LEN takes; 0 if it is left out. */
static size_t tlv_size(const void *v, size_t len)
{
    return v != NULL && len > 0 ? 3 + len : 0;
}

static uint8_t *put_tlv(uint8_t *p, uint8_t type, const void *v, size_t len)
{
    if (v == NULL || len == 0)
        return p;
    *p++ = type;
    p = put16(p, (uint16_t)len);
    memcpy(p, v, len);
    return p + len;
}

ssize_t proxy_v2_build(const struct proxy_v2_info *in, uint8_t *buf,
                       size_t cap)
{
    if (!in->tcp4 || in->alpn_len > PROXY_V2_STR_MAX ||
        in->authority_len > PROXY_V2_STR_MAX ||
        in->ssl_version_len > PROXY_V2_STR_MAX ||
        in->ssl_cipher_len > PROXY_V2_STR_MAX)
        return -EINVAL;
    size_t ssl_len = 0;
    if (in->ssl)
        ssl_len = 5 + tlv_size(in->ssl_version, in->ssl_version_len) +
                  tlv_size(in->ssl_cipher, in->ssl_cipher_len);
    size_t body = PROXY_V2_IPV4_ADDR_LEN + tlv_size(in->alpn, in->alpn_len) +
                  tlv_size(in->authority, in->authority_len) +
                  (in->ssl ? 3 + ssl_len : 0);
    size_t total = PROXY_V2_FIXED_LEN + body;
    if (total > cap)
        return -ENOSPC;

    uint8_t *p = buf;
    memcpy(p, proxy_v2_sig, sizeof(proxy_v2_sig));
    p += sizeof(proxy_v2_sig);
    *p++ = PROXY_V2_VER_CMD_PROXY;
    *p++ = PROXY_V2_FAM_TCP4;
    p = put16(p, (uint16_t)body);
    p = put32(p, in->src_addr);
    p = put32(p, in->dst_addr);
    p = put16(p, in->src_port);
    p = put16(p, in->dst_port);
    p = put_tlv(p, PROXY_V2_TLV_ALPN, in->alpn, in->alpn_len);
    p = put_tlv(p, PROXY_V2_TLV_AUTHORITY, in->authority, in->authority_len);
    if (in->ssl) {
        *p++ = PROXY_V2_TLV_SSL;
        p = put16(p, (uint16_t)ssl_len);
        *p++ = PROXY_V2_CLIENT_SSL;
        p = put32(p, in->ssl_verify);
        p = put_tlv(p, PROXY_V2_SUBTLV_SSL_VERSION, in->ssl_version,
                    in->ssl_version_len);
        p = put_tlv(p, PROXY_V2_SUBTLV_SSL_CIPHER, in->ssl_cipher,
                    in->ssl_cipher_len);
    }
    return (ssize_t)(p - buf);
}

/* A bounded walk over a run of TLVs (type, 16-bit length, value), the
 * layout of both the header's TLVs and an SSL TLV's sub-TLVs. */
struct tlv_cursor {
    const uint8_t *base;
    size_t off, end;
};

struct tlv {
    uint8_t type;
    const uint8_t *v;
    size_t len;
};

static struct tlv_cursor tlv_cursor(const uint8_t *base, size_t off, size_t end)
{
    return (struct tlv_cursor){.base = base, .off = off, .end = end};
}

/* The TLV at C into *T, and C past it. Returns 1 with *T set, 0 at the
 * clean end of the run, -EINVAL when fewer bytes are left than a TLV's
 * head or its value runs past the end (the run is refused whole). */
static int tlv_next(struct tlv_cursor *c, struct tlv *t)
{
    if (c->off >= c->end)
        return 0;
    size_t left = c->end - c->off;
    if (left < 3)
        return -EINVAL;
    const uint8_t *p = c->base + c->off;
    size_t l = get16(p + 1);
    if (l > left - 3)
        return -EINVAL;
    t->type = p[0];
    t->v = p + 3;
    t->len = l;
    c->off += 3 + l;
    return 1;
}

/* Walks the sub-TLVs of an SSL TLV's value V[LEN]. */
static int parse_ssl(const uint8_t *v, size_t len, struct proxy_v2_info *out)
{
    if (len < 5)
        return -EINVAL;
    out->ssl = (v[0] & PROXY_V2_CLIENT_SSL) != 0;
    out->ssl_verify = get32(v + 1);
    struct tlv_cursor c = tlv_cursor(v, 5, len);
    struct tlv t;
    int r;
    while ((r = tlv_next(&c, &t)) > 0) {
        const char *s = (const char *)t.v;
        if (t.type == PROXY_V2_SUBTLV_SSL_VERSION) {
            if (out->ssl_version != NULL)
                return -EINVAL;
            out->ssl_version = s;
            out->ssl_version_len = t.len;
        } else if (t.type == PROXY_V2_SUBTLV_SSL_CIPHER) {
            if (out->ssl_cipher != NULL)
                return -EINVAL;
            out->ssl_cipher = s;
            out->ssl_cipher_len = t.len;
        }
    }
    return r;
}

ssize_t proxy_v2_parse(const uint8_t *buf, size_t len,
                       struct proxy_v2_info *out)
{
    memset(out, 0, sizeof(*out));
    /* A prefix of the signature is "read more"; any wrong byte is not v2. */
    size_t sl = len < PROXY_V2_SIG_LEN ? len : PROXY_V2_SIG_LEN;
    if (memcmp(buf, proxy_v2_sig, sl) != 0)
        return -EPROTO;
    if (len < PROXY_V2_FIXED_LEN)
        return len > PROXY_V2_SIG_LEN && (buf[12] & 0xF0) != 0x20 ? -EPROTO
                                                                   : 0;
    uint8_t ver_cmd = buf[12], fam = buf[13];
    if ((ver_cmd & 0xF0) != 0x20)
        return -EPROTO;
    if (ver_cmd != PROXY_V2_VER_CMD_LOCAL && ver_cmd != PROXY_V2_VER_CMD_PROXY)
        return -EINVAL;
    size_t body = get16(buf + 14);
    if (len < PROXY_V2_FIXED_LEN + body)
        return 0;
    const uint8_t *b = buf + PROXY_V2_FIXED_LEN;
    size_t off = 0;
    out->local = ver_cmd == PROXY_V2_VER_CMD_LOCAL;
    if (fam == PROXY_V2_FAM_TCP4) {
        if (body < PROXY_V2_IPV4_ADDR_LEN)
            return -EINVAL;
        out->tcp4 = true;
        out->src_addr = get32(b);
        out->dst_addr = get32(b + 4);
        out->src_port = get16(b + 8);
        out->dst_port = get16(b + 10);
        off = PROXY_V2_IPV4_ADDR_LEN;
    } else if (fam != PROXY_V2_FAM_UNSPEC) {
        return -EINVAL;
    } else {
        /* UNSPEC: the receiver ignores the whole block (no TLVs). */
        return (ssize_t)(PROXY_V2_FIXED_LEN + body);
    }
    bool seen_ssl = false;
    struct tlv_cursor c = tlv_cursor(b, off, body);
    struct tlv t;
    int r;
    while ((r = tlv_next(&c, &t)) > 0) {
        switch (t.type) {
        case PROXY_V2_TLV_ALPN:
            if (out->alpn != NULL)
                return -EINVAL;
            out->alpn = t.v;
            out->alpn_len = t.len;
            break;
        case PROXY_V2_TLV_AUTHORITY:
            if (out->authority != NULL)
                return -EINVAL;
            out->authority = (const char *)t.v;
            out->authority_len = t.len;
            break;
        case PROXY_V2_TLV_SSL:
            if (seen_ssl)
                return -EINVAL;
            seen_ssl = true;
            if (parse_ssl(t.v, t.len, out) < 0)
                return -EINVAL;
            break;
        default:
            break; /* NOOP, CRC32C, UNIQUE_ID, custom: not ours */
        }
    }
    if (r < 0)
        return r;
    return (ssize_t)(PROXY_V2_FIXED_LEN + body);
}
