/* PROXY v2: built headers checked byte by byte against the layout in
 * HAProxy's doc/proxy-protocol.txt, parsed back, and every malformed or
 * truncated form refused. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dataplane/proxy/proxy_v2.h"

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static struct proxy_v2_info tls_info(void)
{
    struct proxy_v2_info in = {
        .tcp4 = true,
        .src_addr = 0xC6120002u, /* 198.18.0.2 */
        .dst_addr = 0xC6120001u,
        .src_port = 40000,
        .dst_port = 443,
        .alpn = (const uint8_t *)"h2",
        .alpn_len = 2,
        .authority = "www.example.test",
        .authority_len = 16,
        .ssl = true,
        .ssl_verify = 1,
        .ssl_version = "TLSv1.3",
        .ssl_version_len = 7,
        .ssl_cipher = "TLS_AES_128_GCM_SHA256",
        .ssl_cipher_len = 22,
    };
    return in;
}

static void test_plain_layout(void)
{
    struct proxy_v2_info in = {.tcp4 = true,
                               .src_addr = 0x01020304u,
                               .dst_addr = 0x0A0B0C0Du,
                               .src_port = 0x1234,
                               .dst_port = 80};
    uint8_t buf[64];
    ssize_t n = proxy_v2_build(&in, buf, sizeof(buf));
    CHECK_EQ_INT(n, 28);
    CHECK_MEM(buf, sig, 12);
    CHECK_EQ_INT(buf[12], 0x21);
    CHECK_EQ_INT(buf[13], 0x11);
    CHECK_EQ_INT(buf[14], 0);
    CHECK_EQ_INT(buf[15], 12);
    const uint8_t addrs[12] = {1, 2, 3, 4, 10, 11, 12, 13, 0x12, 0x34, 0, 80};
    CHECK_MEM(buf + 16, addrs, 12);
    struct proxy_v2_info out;
    CHECK_EQ_INT(proxy_v2_parse(buf, (size_t)n, &out), 28);
    CHECK(out.tcp4 && !out.local && !out.ssl);
    CHECK_EQ_INT(out.src_addr, in.src_addr);
    CHECK_EQ_INT(out.dst_addr, in.dst_addr);
    CHECK_EQ_INT(out.src_port, in.src_port);
    CHECK_EQ_INT(out.dst_port, in.dst_port);
    CHECK(out.alpn == NULL && out.authority == NULL);
    /* exactly the length needed fits, one less does not */
    CHECK_EQ_INT(proxy_v2_build(&in, buf, 28), 28);
    CHECK_EQ_INT(proxy_v2_build(&in, buf, 27), -ENOSPC);
}

static void test_tls_tlvs(void)
{
    struct proxy_v2_info in = tls_info();
    uint8_t buf[PROXY_V2_MAX_LEN];
    ssize_t n = proxy_v2_build(&in, buf, sizeof(buf));
    /* 16 + 12 + (3+2) + (3+16) + 3 + 5 + (3+7) + (3+22) */
    CHECK_EQ_INT(n, 16 + 12 + 5 + 19 + 3 + 5 + 10 + 25);
    CHECK_EQ_INT((buf[14] << 8 | buf[15]), n - 16);
    const uint8_t *t = buf + 28;
    CHECK_EQ_INT(t[0], 0x01); /* ALPN */
    CHECK_EQ_INT(t[1] << 8 | t[2], 2);
    CHECK_MEM(t + 3, "h2", 2);
    t += 5;
    CHECK_EQ_INT(t[0], 0x02); /* AUTHORITY */
    CHECK_EQ_INT(t[1] << 8 | t[2], 16);
    CHECK_MEM(t + 3, "www.example.test", 16);
    t += 19;
    CHECK_EQ_INT(t[0], 0x20); /* SSL */
    CHECK_EQ_INT(t[1] << 8 | t[2], 5 + 10 + 25);
    CHECK_EQ_INT(t[3], 0x01); /* PP2_CLIENT_SSL */
    const uint8_t verify[4] = {0, 0, 0, 1};
    CHECK_MEM(t + 4, verify, 4);
    CHECK_EQ_INT(t[8], 0x21); /* VERSION */
    CHECK_EQ_INT(t[9] << 8 | t[10], 7);
    CHECK_MEM(t + 11, "TLSv1.3", 7);
    CHECK_EQ_INT(t[18], 0x23); /* CIPHER */
    CHECK_EQ_INT(t[19] << 8 | t[20], 22);
    CHECK_MEM(t + 21, "TLS_AES_128_GCM_SHA256", 22);

    struct proxy_v2_info out;
    CHECK_EQ_INT(proxy_v2_parse(buf, (size_t)n, &out), n);
    CHECK(out.ssl);
    CHECK_EQ_INT(out.ssl_verify, 1);
    CHECK(out.alpn_len == 2 && memcmp(out.alpn, "h2", 2) == 0);
    CHECK(out.authority_len == 16 &&
          memcmp(out.authority, "www.example.test", 16) == 0);
    CHECK(out.ssl_version_len == 7 && memcmp(out.ssl_version, "TLSv1.3", 7) == 0);
    CHECK(out.ssl_cipher_len == 22 &&
          memcmp(out.ssl_cipher, "TLS_AES_128_GCM_SHA256", 22) == 0);

    /* Every strict prefix is "read more", never a header or an error. */
    for (ssize_t k = 0; k < n; k++)
        CHECK_EQ_INT(proxy_v2_parse(buf, (size_t)k, &out), 0);
    /* Bytes after the header are the client's: not part of it. */
    uint8_t more[PROXY_V2_MAX_LEN + 8];
    memcpy(more, buf, (size_t)n);
    memcpy(more + n, "GET / HT", 8);
    CHECK_EQ_INT(proxy_v2_parse(more, (size_t)n + 8, &out), n);
}

static void test_limits(void)
{
    struct proxy_v2_info in = tls_info();
    char big[PROXY_V2_STR_MAX + 1];
    memset(big, 'a', sizeof(big));
    uint8_t buf[PROXY_V2_MAX_LEN];
    /* the largest header fits PROXY_V2_MAX_LEN exactly */
    in.alpn = (const uint8_t *)big;
    in.alpn_len = PROXY_V2_STR_MAX;
    in.authority = big;
    in.authority_len = PROXY_V2_STR_MAX;
    in.ssl_version = big;
    in.ssl_version_len = PROXY_V2_STR_MAX;
    in.ssl_cipher = big;
    in.ssl_cipher_len = PROXY_V2_STR_MAX;
    CHECK_EQ_INT(proxy_v2_build(&in, buf, sizeof(buf)), PROXY_V2_MAX_LEN);
    in.authority_len = PROXY_V2_STR_MAX + 1;
    CHECK_EQ_INT(proxy_v2_build(&in, buf, sizeof(buf)), -EINVAL);
    in = tls_info();
    in.tcp4 = false;
    CHECK_EQ_INT(proxy_v2_build(&in, buf, sizeof(buf)), -EINVAL);
    /* empty strings leave their TLV out */
    in = tls_info();
    in.alpn_len = 0;
    in.authority = NULL;
    in.ssl_cipher_len = 0;
    ssize_t n = proxy_v2_build(&in, buf, sizeof(buf));
    CHECK_EQ_INT(n, 16 + 12 + 3 + 5 + 10);
    struct proxy_v2_info out;
    CHECK_EQ_INT(proxy_v2_parse(buf, (size_t)n, &out), n);
    CHECK(out.alpn == NULL && out.authority == NULL && out.ssl_cipher == NULL);
    CHECK(out.ssl_version_len == 7);
}

static void test_malformed(void)
{
    struct proxy_v2_info in = tls_info(), out;
    uint8_t good[PROXY_V2_MAX_LEN], b[PROXY_V2_MAX_LEN];
    ssize_t n = proxy_v2_build(&in, good, sizeof(good));
    CHECK(n > 0);

    /* not v2 at all: HTTP, TLS, v1 text */
    CHECK_EQ_INT(proxy_v2_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &out), -EPROTO);
    CHECK_EQ_INT(proxy_v2_parse((const uint8_t *)"PROXY TCP4 1.2.3.4", 18, &out), -EPROTO);
    const uint8_t hello[5] = {0x16, 0x03, 0x01, 0x02, 0x00};
    CHECK_EQ_INT(proxy_v2_parse(hello, 5, &out), -EPROTO);
    /* version 1 in the binary form, and version 3 */
    memcpy(b, good, (size_t)n);
    b[12] = 0x11;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EPROTO);
    CHECK_EQ_INT(proxy_v2_parse(b, 13, &out), -EPROTO);
    b[12] = 0x31;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EPROTO);
    /* unknown command */
    b[12] = 0x22;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EINVAL);
    /* UDP over IPv4, TCP over IPv6 (not produced; refused) */
    memcpy(b, good, (size_t)n);
    b[13] = 0x12;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EINVAL);
    b[13] = 0x21;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EINVAL);
    /* address block longer than the header says */
    memcpy(b, good, (size_t)n);
    b[14] = 0;
    b[15] = 8;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EINVAL);
    /* a TLV running past the end: AUTHORITY claims 200 bytes */
    memcpy(b, good, (size_t)n);
    b[28 + 5 + 1] = 0;
    b[28 + 5 + 2] = 200;
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EINVAL);
    /* the header's length cuts into the SSL TLV's value */
    memcpy(b, good, (size_t)n);
    unsigned body = (unsigned)(n - 16);
    b[14] = (uint8_t)((body - 24) >> 8);
    b[15] = (uint8_t)(body - 24);
    CHECK_EQ_INT(proxy_v2_parse(b, (size_t)n, &out), -EINVAL);
    /* SSL TLV shorter than its fixed 5 bytes */
    uint8_t s[16 + 12 + 3 + 4];
    memcpy(s, good, 16);
    s[14] = 0;
    s[15] = 12 + 3 + 4;
    memset(s + 16, 0, 12);
    s[28] = 0x20;
    s[29] = 0;
    s[30] = 4;
    memset(s + 31, 0, 4);
    CHECK_EQ_INT(proxy_v2_parse(s, sizeof(s), &out), -EINVAL);
    /* a repeated AUTHORITY */
    uint8_t d[16 + 12 + 12];
    memcpy(d, good, 16);
    d[14] = 0;
    d[15] = 24;
    memset(d + 16, 0, 12);
    const uint8_t two[12] = {2, 0, 3, 'a', 'b', 'c', 2, 0, 3, 'x', 'y', 'z'};
    memcpy(d + 28, two, 12);
    CHECK_EQ_INT(proxy_v2_parse(d, sizeof(d), &out), -EINVAL);
    /* an unknown TLV (custom range) is skipped */
    d[34] = 0xE0;
    CHECK_EQ_INT(proxy_v2_parse(d, sizeof(d), &out), (ssize_t)sizeof(d));
    CHECK(out.authority_len == 3 && memcmp(out.authority, "abc", 3) == 0);
    /* LOCAL with UNSPEC: the block is skipped whole */
    uint8_t l[16 + 4] = {0};
    memcpy(l, sig, 12);
    l[12] = 0x20;
    l[13] = 0x00;
    l[15] = 4;
    CHECK_EQ_INT(proxy_v2_parse(l, sizeof(l), &out), 20);
    CHECK(out.local && !out.tcp4);
}

int main(void)
{
    test_plain_layout();
    test_tls_tlvs();
    test_limits();
    test_malformed();
    return check_exit();
}
