#!/usr/bin/env python3
"""TLS client for tern's echo listener: sends SIZE random bytes while
reading the echo back, half-closes, and checks the SHA-256 of what came
back equals what was sent. Exercises both directions of the TLS filter
with backpressure (the sender outruns the receiver).

usage: tls_echo_client.py ADDR PORT SNI CAFILE SIZE [CONNS]"""
import hashlib
import os
import selectors
import socket
import ssl
import sys
import time


def one(addr, port, sni, ctx, size, deadline):
    data = os.urandom(size)
    raw = socket.create_connection((addr, port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=sni)
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, got, shut = 0, hashlib.sha256(), False
    n_got = 0
    while time.monotonic() < deadline:
        for _key, ev in sel.select(timeout=1):
            if ev & selectors.EVENT_WRITE and sent < size:
                try:
                    sent += s.send(data[sent:sent + 65536])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            if ev & selectors.EVENT_READ:
                try:
                    while True:
                        b = s.recv(65536)
                        if not b:
                            return got.hexdigest() == hashlib.sha256(data).hexdigest() and n_got == size, n_got
                        got.update(b)
                        n_got += len(b)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
        if sent == size and not shut:
            sel.modify(s, selectors.EVENT_READ)
            if n_got == size:
                return True, n_got
    return False, n_got


def main():
    if len(sys.argv) < 6:
        print(__doc__, file=sys.stderr)
        return 2
    addr, port, sni, ca, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    conns = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    ctx = ssl.create_default_context(cafile=ca)
    deadline = time.monotonic() + 120
    for i in range(conns):
        ok, n = one(addr, port, sni, ctx, size, deadline)
        if not ok:
            print("connection %d: echo mismatch or timeout (%d of %d bytes back)" % (i, n, size))
            return 1
    print("%d connections x %d bytes echoed, SHA-256 equal" % (conns, size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
