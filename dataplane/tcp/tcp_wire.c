/* Wire format of TCP segments: header and option parsing, the Internet
 * checksum with the IPv4 pseudo-header, and writing an outgoing segment. */
#include <errno.h>
#include <string.h>

#include "tcp.h"

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Options (RFC 9293 3.1, RFC 7323, RFC 2018). A known option with a wrong
 * length makes the whole segment malformed: a peer that sends one is
 * broken or hostile, and guessing its meaning only widens the attack
 * surface. */
static int parse_options(const uint8_t *p, size_t n, struct tcp_hdr *h)
{
    size_t i = 0;
    while (i < n) {
        uint8_t kind = p[i];
        if (kind == 0) /* end of option list */
            break;
        if (kind == 1) { /* NOP */
            i++;
            continue;
        }
        if (i + 1 >= n)
            return -EINVAL;
        uint8_t len = p[i + 1];
        if (len < 2 || i + len > n)
            return -EINVAL;
        const uint8_t *v = p + i + 2;
        switch (kind) {
        case 2:
            if (len != 4)
                return -EINVAL;
            h->has_mss = true;
            h->mss = rd16(v);
            break;
        case 3:
            if (len != 3)
                return -EINVAL;
            h->has_wscale = true;
            h->wscale = v[0];
            break;
        case 4:
            if (len != 2)
                return -EINVAL;
            h->has_sack_perm = true;
            break;
        case 5:
            if (len < 10 || (len - 2) % 8 != 0)
                return -EINVAL;
            h->n_sack = 0;
            for (unsigned b = 0; b < (unsigned)(len - 2) / 8 && b < TCP_SACK_BLOCKS_MAX; b++) {
                h->sack[b][0] = rd32(v + 8 * b);
                h->sack[b][1] = rd32(v + 8 * b + 4);
                h->n_sack++;
            }
            break;
        case 8:
            if (len != 10)
                return -EINVAL;
            h->has_ts = true;
            h->ts_val = rd32(v);
            h->ts_ecr = rd32(v + 4);
            break;
        default:
            break; /* unknown: skipped by its length */
        }
        i += len;
    }
    return 0;
}

int tcp_parse(const uint8_t *buf, size_t len, struct tcp_hdr *h)
{
    memset(h, 0, sizeof(*h));
    if (buf == NULL || len < TCP_HDR_LEN_MIN)
        return -EINVAL;
    h->sport = rd16(buf);
    h->dport = rd16(buf + 2);
    h->seq = rd32(buf + 4);
    h->ack = rd32(buf + 8);
    h->hdr_len = (uint8_t)((buf[12] >> 4) * 4);
    h->flags = buf[13];
    h->window = rd16(buf + 14);
    h->urg_ptr = rd16(buf + 18);
    if (h->hdr_len < TCP_HDR_LEN_MIN || h->hdr_len > len)
        return -EINVAL;
    return parse_options(buf + TCP_HDR_LEN_MIN, h->hdr_len - TCP_HDR_LEN_MIN, h);
}

/* One's-complement sum of n bytes read in native byte order, 8 at a time
 * (RFC 1071 1.2: the sum is byte-order independent, so swap once at the
 * end rather than per word). Returns the sum folded to 16 bits, in network
 * numeric order. */
static uint16_t sum_bytes(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    while (n >= 32) {
        uint64_t a, b, c, d;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        memcpy(&c, p + 16, 8);
        memcpy(&d, p + 24, 8);
        s += (a & 0xffffffffu) + (a >> 32) + (b & 0xffffffffu) + (b >> 32) +
             (c & 0xffffffffu) + (c >> 32) + (d & 0xffffffffu) + (d >> 32);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t a;
        memcpy(&a, p, 8);
        s += (a & 0xffffffffu) + (a >> 32);
        p += 8;
        n -= 8;
    }
    if (n >= 4) {
        uint32_t a;
        memcpy(&a, p, 4);
        s += a;
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        uint16_t a;
        memcpy(&a, p, 2);
        s += a;
        p += 2;
        n -= 2;
    }
    if (n) {
        uint16_t a = 0;
        memcpy(&a, p, 1); /* the odd byte is the high half of a zero-padded word */
        s += a;
    }
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return __builtin_bswap16((uint16_t)s);
#else
    return (uint16_t)s;
#endif
}

static uint32_t pseudo_sum(uint32_t saddr, uint32_t daddr, size_t len)
{
    return (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) +
           6u + (uint32_t)len;
}

uint16_t tcp_checksum(uint32_t saddr, uint32_t daddr, const void *seg, size_t len)
{
    uint32_t s = pseudo_sum(saddr, daddr, len) + sum_bytes(seg, len);
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

uint32_t tcp_seg_out_len(const struct tcp_seg_out *s)
{
    return TCP_HDR_LEN_MIN + s->opt_len + s->payload_len[0] + s->payload_len[1];
}

int tcp_seg_out_write(const struct tcp_seg_out *s, uint8_t *buf, size_t cap)
{
    uint32_t total = tcp_seg_out_len(s);
    uint32_t hl = TCP_HDR_LEN_MIN + s->opt_len;
    if (cap < total || s->opt_len > TCP_OPT_LEN_MAX || (s->opt_len & 3))
        return -ENOSPC;
    wr16(buf, s->lport);
    wr16(buf + 2, s->rport);
    wr32(buf + 4, s->seq);
    wr32(buf + 8, s->ack);
    buf[12] = (uint8_t)((hl / 4) << 4);
    buf[13] = s->flags;
    wr16(buf + 14, s->window);
    wr16(buf + 16, 0);
    wr16(buf + 18, 0);
    memcpy(buf + TCP_HDR_LEN_MIN, s->opt, s->opt_len);
    uint8_t *p = buf + hl;
    for (int i = 0; i < 2; i++) {
        if (s->payload_len[i]) {
            memcpy(p, s->payload[i], s->payload_len[i]);
            p += s->payload_len[i];
        }
    }
    wr16(buf + 16, tcp_checksum(s->laddr, s->raddr, buf, total));
    return (int)total;
}
