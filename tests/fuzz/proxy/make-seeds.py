#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_proxy_v2: headers as tern sends them
(plain TCP4; TLS with ALPN, SNI, version and cipher), a LOCAL header, one
with a custom TLV, and a truncated one. Run from this folder."""
import os
import struct

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def tlv(t, v):
    return struct.pack("!BH", t, len(v)) + v


def header(cmd, fam, body):
    return SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def addrs(src, dst, sport, dport):
    return bytes(src) + bytes(dst) + struct.pack("!HH", sport, dport)


a = addrs([198, 18, 0, 2], [198, 18, 0, 1], 40000, 443)
ssl = tlv(0x20, b"\x01" + struct.pack("!I", 1) + tlv(0x21, b"TLSv1.3")
          + tlv(0x23, b"TLS_AES_128_GCM_SHA256"))
seeds = {
    "plain": header(0x21, 0x11, a) + b"GET / HTTP/1.1\r\n",
    "tls13": header(0x21, 0x11, a + tlv(0x01, b"h2") + tlv(0x02, b"www.example.test") + ssl),
    "tls12_nosni": header(0x21, 0x11, a + tlv(0x20, b"\x01" + struct.pack("!I", 1)
                                            + tlv(0x21, b"TLSv1.2")
                                            + tlv(0x23, b"ECDHE-ECDSA-AES128-GCM-SHA256"))),
    "local": header(0x20, 0x00, b""),
    "custom_tlv": header(0x21, 0x11, a + tlv(0xE0, b"x" * 8) + tlv(0x04, b"")),
    "truncated": header(0x21, 0x11, a + tlv(0x02, b"www.example.test"))[:40],
}
os.makedirs("corpus/proxy_v2", exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join("corpus/proxy_v2", name), "wb") as f:
        f.write(data)
