/* Types of the PROXY protocol version 2 header (HAProxy's
 * doc/proxy-protocol.txt): what tern tells a backend about the client
 * connection it forwards. Only what tern sends is modelled: the PROXY
 * command (or LOCAL, for the parser), TCP over IPv4, and the TLVs ALPN,
 * AUTHORITY (the SNI) and SSL with its VERSION and CIPHER sub-TLVs. */
#ifndef TERN_PROXY_V2_T_H
#define TERN_PROXY_V2_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 12-byte signature, version/command, family/protocol, 16-bit length. */
#define PROXY_V2_SIG_LEN 12
#define PROXY_V2_FIXED_LEN 16
#define PROXY_V2_IPV4_ADDR_LEN 12

#define PROXY_V2_VER_CMD_LOCAL 0x20
#define PROXY_V2_VER_CMD_PROXY 0x21
#define PROXY_V2_FAM_UNSPEC 0x00
#define PROXY_V2_FAM_TCP4 0x11

#define PROXY_V2_TLV_ALPN 0x01
#define PROXY_V2_TLV_AUTHORITY 0x02
#define PROXY_V2_TLV_SSL 0x20
#define PROXY_V2_SUBTLV_SSL_VERSION 0x21
#define PROXY_V2_SUBTLV_SSL_CIPHER 0x23
#define PROXY_V2_CLIENT_SSL 0x01

/* Longest string accepted in one TLV by the builder. SNI is at most 255
 * bytes (RFC 6066 host_name), ALPN at most 255 (RFC 7301); version and
 * cipher names are short. Keeps the whole header well under one MSS. */
#define PROXY_V2_STR_MAX 255
/* The largest header proxy_v2_build writes: fixed part, IPv4 block, ALPN,
 * AUTHORITY, and SSL (client, verify, two sub-TLVs), each 3 bytes of TLV
 * head plus its value. */
#define PROXY_V2_MAX_LEN                                                   \
    (PROXY_V2_FIXED_LEN + PROXY_V2_IPV4_ADDR_LEN + 3 + PROXY_V2_STR_MAX +  \
     3 + PROXY_V2_STR_MAX + 3 + 5 + 3 + PROXY_V2_STR_MAX + 3 +             \
     PROXY_V2_STR_MAX)

/* One connection's description. Strings are byte ranges (not necessarily
 * NUL-terminated) borrowed from the caller; a NULL pointer or zero length
 * leaves the TLV out. Addresses and ports in host order. */
struct proxy_v2_info {
    bool local;          /* LOCAL command (parser only: health checks) */
    bool tcp4;           /* addresses below are valid */
    uint32_t src_addr, dst_addr;
    uint16_t src_port, dst_port;
    const uint8_t *alpn;
    size_t alpn_len;
    const char *authority; /* the SNI */
    size_t authority_len;
    bool ssl;            /* the client connected over TLS: SSL TLV sent */
    uint32_t ssl_verify; /* 0 only if a client certificate was verified */
    const char *ssl_version; /* "TLSv1.3" */
    size_t ssl_version_len;
    const char *ssl_cipher;  /* "TLS_AES_128_GCM_SHA256" */
    size_t ssl_cipher_len;
};

#endif
