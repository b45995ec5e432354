/* The PROXY protocol v2 header: a builder for the proxy (sent to a backend
 * before the client's first byte) and a parser for tests and fuzzing.
 * Both are pure functions of their arguments: any thread, no allocation. */
#ifndef TERN_PROXY_V2_H
#define TERN_PROXY_V2_H

#include <sys/types.h>

#include "proxy_v2-t.h"

/* Writes the header describing IN (PROXY command, TCP over IPv4, then the
 * ALPN, AUTHORITY and SSL TLVs that IN carries) into BUF[CAP].
 * Returns the header's length (> 0), -ENOSPC if CAP is too small
 * (PROXY_V2_MAX_LEN always suffices), or -EINVAL (IN not tcp4, or a string
 * longer than PROXY_V2_STR_MAX). Nothing is written on error. */
ssize_t proxy_v2_build(const struct proxy_v2_info *in, uint8_t *buf,
                       size_t cap);

/* Parses a header at the start of BUF[LEN]. On success fills *OUT (its
 * string pointers point into BUF) and returns the header's length; the
 * client's bytes follow it. Returns 0 when BUF is a valid but incomplete
 * prefix (read more), -EPROTO when BUF cannot start a v2 header (wrong
 * signature or version), -EINVAL for a malformed header (unknown command,
 * family other than TCP4/UNSPEC, address block or TLV running past the
 * length, a TLV type repeated). Unknown TLV types are skipped. */
ssize_t proxy_v2_parse(const uint8_t *buf, size_t len,
                       struct proxy_v2_info *out);

#endif
