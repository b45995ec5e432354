#!/usr/bin/env python3
"""Writes the seed corpus of the dataplane_input fuzz target: real frames a
worker sees (ARP, ping, a TCP handshake with data and FIN towards the
proxy listener, the backend's answers), each as [2-byte length][frame][clock
step]. Run from this folder: python3 make_corpus.py"""
import os
import struct

US = bytes.fromhex("020000000001")
PEER = bytes.fromhex("020000000002")
BE = bytes.fromhex("020000000003")
VIP, CLI, BEIP = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2]), bytes([198, 18, 0, 3])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip(src, dst, proto, l4):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + l4


def tcp(src, dst, sp, dp, seq, ack, flags, data=b"", opts=b""):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, off << 4, flags, 65535, 0, 0) + opts
    seg = h + data
    c = csum(struct.pack("!4s4sBBH", src, dst, 0, 6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def eth(src_mac, payload, etype=0x0800):
    return US + src_mac + struct.pack("!H", etype) + payload


def rec(frame, step=1):
    return struct.pack("!H", len(frame)) + frame + bytes([step])


def arp_req():
    a = struct.pack("!HHBBH6s4s6s4s", 1, 0x800, 6, 4, 1, PEER, CLI, b"\0" * 6, VIP)
    return b"\xff" * 6 + PEER + b"\x08\x06" + a


def ping():
    m = b"\x08\x00\x00\x00\x00\x01\x00\x01" + b"abcdefgh" * 4
    m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
    return eth(PEER, ip(CLI, VIP, 1, m))


def handshake(data=b"GET / HTTP/1.0\r\n\r\n"):
    mss = b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00"
    out = rec(arp_req())
    out += rec(eth(PEER, ip(CLI, VIP, 6, tcp(CLI, VIP, 40000, 80, 1000, 0, 0x02, opts=mss))))
    # The stack's ISN is unknown here; the fuzzer finds the right ACK.
    out += rec(eth(PEER, ip(CLI, VIP, 6, tcp(CLI, VIP, 40000, 80, 1001, 1, 0x10))))
    out += rec(eth(PEER, ip(CLI, VIP, 6, tcp(CLI, VIP, 40000, 80, 1001, 1, 0x18, data))))
    out += rec(eth(PEER, ip(CLI, VIP, 6, tcp(CLI, VIP, 40000, 80, 1001 + len(data), 1, 0x11))))
    # The backend's SYN-ACK to an active-open port, and a RST.
    out += rec(eth(BE, ip(BEIP, VIP, 6, tcp(BEIP, VIP, 8080, 32769, 5000, 1, 0x12, opts=mss[:4]))))
    out += rec(eth(BE, ip(BEIP, VIP, 6, tcp(BEIP, VIP, 8080, 32769, 5001, 1, 0x04))))
    return out


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "input")
    os.makedirs(d, exist_ok=True)
    seeds = {
        "arp_request": rec(arp_req()),
        "ping": rec(arp_req()) + rec(ping()),
        "tcp_session": handshake(),
        "tcp_rst_closed_port": rec(eth(PEER, ip(CLI, VIP, 6, tcp(CLI, VIP, 40001, 81, 7, 0, 0x02)))),
        "frag_and_bad_csum": rec(eth(PEER, ip(CLI, VIP, 1, b"\x08\0\0\0")[:6] + b"\x20\x00" +
                                    ip(CLI, VIP, 1, b"\x08\0\0\0")[8:])),
    }
    for name, blob in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
