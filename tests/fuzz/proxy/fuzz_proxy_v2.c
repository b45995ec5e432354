/* libFuzzer target for the PROXY v2 parser (a backend's view of what tern
 * sends). Any input: the parser must not read past it, a header it accepts
 * must lie within it with every TLV pointer inside the header, and a
 * TCP4 PROXY header it accepts must survive a build/parse round trip with
 * the same fields. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/proxy/proxy_v2.h"

static void inside(const void *p, size_t len, const uint8_t *base, size_t n)
{
    if (p == NULL)
        return;
    const uint8_t *q = p;
    if (q < base || q + len > base + n)
        abort();
}

static int same_str(const void *a, size_t al, const void *b, size_t bl)
{
    if (al == 0 || a == NULL)
        return bl == 0 || b == NULL;
    return al == bl && b != NULL && memcmp(a, b, al) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly SIZE bytes so ASan catches any over-read. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct proxy_v2_info in;
    ssize_t n = proxy_v2_parse(buf, size, &in);
    if (n > 0) {
        if ((size_t)n > size || n < PROXY_V2_FIXED_LEN)
            abort();
        inside(in.alpn, in.alpn_len, buf, (size_t)n);
        inside(in.authority, in.authority_len, buf, (size_t)n);
        inside(in.ssl_version, in.ssl_version_len, buf, (size_t)n);
        inside(in.ssl_cipher, in.ssl_cipher_len, buf, (size_t)n);
        if (in.tcp4 && !in.local) {
            uint8_t out[PROXY_V2_MAX_LEN];
            ssize_t m = proxy_v2_build(&in, out, sizeof(out));
            /* only strings over the builder's limit may be refused */
            if (m == -EINVAL) {
                if (in.alpn_len <= PROXY_V2_STR_MAX &&
                    in.authority_len <= PROXY_V2_STR_MAX &&
                    in.ssl_version_len <= PROXY_V2_STR_MAX &&
                    in.ssl_cipher_len <= PROXY_V2_STR_MAX)
                    abort();
            } else {
                struct proxy_v2_info back;
                if (m <= 0 || proxy_v2_parse(out, (size_t)m, &back) != m)
                    abort();
                if (back.src_addr != in.src_addr ||
                    back.dst_addr != in.dst_addr ||
                    back.src_port != in.src_port ||
                    back.dst_port != in.dst_port || back.ssl != in.ssl ||
                    !same_str(in.alpn, in.alpn_len, back.alpn, back.alpn_len) ||
                    !same_str(in.authority, in.authority_len, back.authority,
                              back.authority_len))
                    abort();
                if (in.ssl &&
                    (back.ssl_verify != in.ssl_verify ||
                     !same_str(in.ssl_version, in.ssl_version_len,
                               back.ssl_version, back.ssl_version_len) ||
                     !same_str(in.ssl_cipher, in.ssl_cipher_len,
                               back.ssl_cipher, back.ssl_cipher_len)))
                    abort();
            }
        }
    } else if (n != 0 && n != -EPROTO && n != -EINVAL) {
        abort();
    }
    free(buf);
    return 0;
}
