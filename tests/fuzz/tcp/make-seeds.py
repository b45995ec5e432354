#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_tcp_input (records: ctl, len, TCP bytes).
Run from this folder: ./make-seeds.py. The seeds are committed; this script
says what each one is."""
import os
import struct

def tcp(sport, dport, seq, ack, flags, win=8192, opts=b"", payload=b""):
    pad = (-len(opts)) % 4
    opts += b"\x01" * pad
    off = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff,
                       off << 4, flags, win, 0, 0) + opts + payload

def rec(ctl, data):
    assert len(data) < 256
    return bytes([ctl, len(data)]) + data

ACK, PSH, FIN, SYN, RST = 0x10, 0x08, 0x01, 0x02, 0x04
ts = lambda v, e: b"\x01\x01\x08\x0a" + struct.pack("!II", v, e)
seeds = {
    # in-order data then FIN to the passive connection (relative seq/ack)
    "data_fin": rec(3, tcp(0, 0, 0, 0, ACK | PSH, opts=ts(10, 0), payload=b"hello world"))
                + rec(3 | (1 << 5), tcp(0, 0, 0, 0, FIN | ACK, opts=ts(11, 0))),
    # out-of-order islands, then the hole filled, with time passing
    "ooo": rec(3, tcp(0, 0, 100, 0, ACK, opts=ts(10, 0), payload=b"x" * 50))
           + rec(3 | (2 << 2), tcp(0, 0, 300, 0, ACK, opts=ts(10, 0), payload=b"y" * 50))
           + rec(3, tcp(0, 0, 0, 0, ACK, opts=ts(12, 0), payload=b"z" * 100)),
    # RST in window (challenge ACK), SYN on an established connection
    "rst_syn": rec(3, tcp(0, 0, 5, 0, RST)) + rec(3, tcp(0, 0, 0, 0, SYN))
               + rec(3, tcp(0, 0, 0, 0, RST)),
    # SYN flood to the listener, then a cookie-looking ACK
    "syn_flood": b"".join(rec(0, tcp(50000 + i, 80, 1000 * i, 0, SYN,
                                     opts=b"\x02\x04\x05\xb4")) for i in range(6))
                 + rec(0, tcp(50001, 80, 1001, 12345, ACK)),
    # dupACKs on the active connection, then an RTO, then a zero window
    "dupacks": b"".join(rec(2, tcp(0, 0, 0, 0, ACK)) for _ in range(4))
               + rec(2 | (7 << 2), tcp(0, 0, 0, 0, ACK, win=0))
               + rec(2 | (6 << 2), tcp(0, 0, 0, 0, ACK, win=4000)),
    # malformed: short, bad offset, bad option lengths
    "malformed": rec(0, b"\x00" * 10) + rec(1, tcp(0, 0, 0, 0, ACK)[:12] + b"\xf0" + b"\x10" * 7)
                 + rec(1, tcp(0, 0, 0, 0, ACK, opts=b"\x02\x09\x00\x00"))
                 + rec(1, tcp(0, 0, 0, 0, ACK, opts=b"\x05\x03\x00\x00")),
    # closes from both sides through the upper-layer calls
    "close": rec(3 | (3 << 5), tcp(0, 0, 0, 0, ACK)) + rec(3 | (4 << 5), tcp(0, 0, 0, 0, FIN | ACK))
             + rec(2 | (5 << 5), tcp(0, 0, 0, 0, ACK, payload=b"\x03")),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "tcp_input")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
