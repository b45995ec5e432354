#!/usr/bin/env python3
"""Sends malformed Ethernet/IPv4/ICMP/TCP frames to the dataplane from an
AF_PACKET socket and prints, as JSON, how many of each it sent keyed by the
dataplane counter that must count them.

usage: malformed.py IFACE DST_MAC SRC_IP DST_IP"""
import json
import random
import socket
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip_hdr(src, dst, proto, payload_len, ttl=64, frag=0, ihl=5, ver=4,
           total=None, fix=True, opts=b""):
    tot = 4 * ihl + payload_len if total is None else total
    h = struct.pack("!BBHHHBBH4s4s", (ver << 4) | ihl, 0, tot, 1, frag, ttl,
                    proto, 0, src, dst) + opts
    if fix:
        h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h


def tcp_seg(src, dst, sport, dport, flags, payload=b"", off=5, good=True):
    h = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, off << 4, flags, 1024, 0, 0)
    h += b"\0" * (4 * off - 20 if off > 5 else 0)
    seg = h + payload
    ph = struct.pack("!4s4sBBH", src, dst, 0, 6, len(seg))
    c = csum(ph + seg)
    if not good:
        c ^= 0x5A5A
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def main():
    iface, dmac, sip, dip = sys.argv[1:5]
    dmac = bytes.fromhex(dmac.replace(":", ""))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    smac = s.getsockname()[4]
    src, dst = socket.inet_aton(sip), socket.inet_aton(dip)
    eth = dmac + smac + b"\x08\x00"
    icmp = b"\x08\x00\x00\x00\x12\x34\x00\x01" + b"x" * 32
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    sent = {}
    rnd = random.Random(7)

    def send(reason, frame, n=5):
        for _ in range(n):
            s.send(frame)
        sent[reason] = sent.get(reason, 0) + n

    # Ethernet
    send("drop_eth_type", dmac + smac + b"\x86\xdd" + b"\0" * 46)
    send("drop_eth_type", dmac + smac + b"\x88\xcc" + b"\0" * 46)
    # ARP: truncated; wrong hardware type
    send("drop_arp_bad", dmac + smac + b"\x08\x06" + b"\x00\x01\x08\x00\x06")
    send("drop_arp_bad", dmac + smac + b"\x08\x06" + struct.pack(
        "!HHBBH6s4s6s4s", 6, 0x800, 6, 4, 1, smac, src, b"\0" * 6, dst) + b"\0" * 18)
    # IPv4 header: truncated, version, header length, total length, checksum
    send("drop_ip_short", eth + ip_hdr(src, dst, 1, 0)[:12])
    send("drop_ip_version", eth + ip_hdr(src, dst, 1, len(icmp), ver=6) + icmp)
    send("drop_ip_hlen", eth + ip_hdr(src, dst, 1, len(icmp), ihl=3) + icmp)
    send("drop_ip_len", eth + ip_hdr(src, dst, 1, 0, total=1400) + icmp)
    send("drop_ip_len", eth + ip_hdr(src, dst, 1, 0, total=10) + icmp)
    h = bytearray(ip_hdr(src, dst, 1, len(icmp)))
    h[10] ^= 0xFF
    send("drop_ip_csum", eth + bytes(h) + icmp)
    # fragments (more-fragments; offset), TTL 0, not for us, martian source
    send("drop_ip_frag", eth + ip_hdr(src, dst, 1, len(icmp), frag=0x2000) + icmp)
    send("drop_ip_frag", eth + ip_hdr(src, dst, 1, len(icmp), frag=0x0010) + icmp)
    send("drop_ip_ttl", eth + ip_hdr(src, dst, 1, len(icmp), ttl=0) + icmp)
    other = socket.inet_aton("198.18.0.77")
    send("drop_ip_not_us", eth + ip_hdr(src, other, 1, len(icmp)) + icmp)
    bc = socket.inet_aton("255.255.255.255")
    send("drop_ip_src", eth + ip_hdr(bc, dst, 1, len(icmp)) + icmp)
    send("drop_ip_proto", eth + ip_hdr(src, dst, 17, 8) + b"\0" * 8)
    # ICMP: truncated, bad checksum, unsupported type
    send("drop_icmp_short", eth + ip_hdr(src, dst, 1, 4) + icmp[:4])
    bad = bytearray(icmp)
    bad[10] ^= 1
    send("drop_icmp_csum", eth + ip_hdr(src, dst, 1, len(bad)) + bytes(bad))
    ts = b"\x0d\x00\x00\x00" + b"\0" * 16
    ts = ts[:2] + struct.pack("!H", csum(ts)) + ts[4:]
    send("drop_icmp_type", eth + ip_hdr(src, dst, 1, len(ts)) + ts)
    # TCP: shorter than a header, data offset past the end, bad checksum
    # with odd flag combinations
    seg = tcp_seg(src, dst, 5555, 80, 0x02)[:12]
    send("drop_tcp_short", eth + ip_hdr(src, dst, 6, len(seg)) + seg)
    seg = tcp_seg(src, dst, 5555, 80, 0x02, off=15)[:24]
    send("drop_tcp_short", eth + ip_hdr(src, dst, 6, len(seg)) + seg)
    for flags in (0x00, 0x3F, 0x03, 0x06, 0xFF, 0x29):
        seg = tcp_seg(src, dst, rnd.randrange(1024, 65535), 80, flags, b"abc", good=False)
        send("drop_tcp_csum", eth + ip_hdr(src, dst, 6, len(seg)) + seg, n=2)
    # A frame shorter than an Ethernet header cannot be sent on veth (the
    # kernel pads), so drop_eth_short is covered by the unit tests.
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
