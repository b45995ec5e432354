#!/usr/bin/env python3
"""Load client for the proxy tests: opens connections to ADDR:PORT through
the dataplane to an echo backend, sends a random payload on each, half-closes,
reads the echo until EOF and compares SHA-256 digests.

usage: load_client.py ADDR PORT --conns N [--concurrency C] [--seed S]
                      [--max-size BYTES] [--size BYTES] [--timeout SEC]
Payload sizes run from 1 B up to --max-size (8 MiB by default): every
connection i gets a size from a fixed schedule mixing tiny, MSS-edge,
window-edge and multi-MiB sizes. Prints a JSON summary; exits 1 if any
connection failed or any echo differed."""
import argparse
import hashlib
import json
import random
import selectors
import socket
import sys
import threading
import time

EDGE = [1, 2, 3, 7, 100, 536, 1447, 1448, 1460, 1461, 2920, 4095, 4096,
        16384, 65535, 65536, 65537, 131072, 262144]


def size_for(i, rnd, max_size):
    if i % 250 == 249:
        s = 8 << 20
    elif i % 50 == 49:
        s = 1 << 20
    elif i % 3 == 0:
        s = EDGE[(i // 3) % len(EDGE)]
    else:
        s = int(2 ** rnd.uniform(0, 17))
    return max(1, min(s, max_size))


def one(addr, port, payload, timeout):
    """Returns (ok, reason)."""
    want = hashlib.sha256(payload).digest()
    got = hashlib.sha256()
    n_got = 0
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(max(1.0, timeout))
    try:
        s.connect((addr, port))
    except OSError as e:
        s.close()
        return False, "connect: %s" % e
    s.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    view = memoryview(payload)
    sent = 0
    shut = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, "timeout after %d/%d sent, %d received" % (
                    sent, len(payload), n_got)
            for key, ev in sel.select(min(left, 1.0)):
                if ev & selectors.EVENT_WRITE and not shut:
                    if sent < len(payload):
                        try:
                            sent += s.send(view[sent:sent + 262144])
                        except BlockingIOError:
                            pass
                    if sent == len(payload):
                        s.shutdown(socket.SHUT_WR)
                        shut = True
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    try:
                        b = s.recv(262144)
                    except BlockingIOError:
                        continue
                    if not b:
                        if n_got != len(payload) or got.digest() != want:
                            return False, "echo differs: %d of %d bytes" % (
                                n_got, len(payload))
                        return True, ""
                    got.update(b)
                    n_got += len(b)
                    if n_got > len(payload):
                        return False, "echo too long"
    except OSError as e:
        return False, "%s after %d/%d sent, %d received" % (
            e, sent, len(payload), n_got)
    finally:
        sel.close()
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("addr")
    ap.add_argument("port", type=int)
    ap.add_argument("--conns", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-size", type=int, default=8 << 20)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--max-failures", type=int, default=5,
                    help="stop opening connections after this many failures")
    ap.add_argument("--size", type=int, default=0,
                    help="every connection sends exactly this many bytes")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    if a.size > 0:
        sizes = [a.size] * a.conns
    else:
        sizes = [size_for(i, rnd, a.max_size) for i in range(a.conns)]
    blob = random.Random(a.seed + 1).randbytes(max(sizes) + 4096)
    lock = threading.Lock()
    nxt = [0]
    fails = []
    done_bytes = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                if i >= a.conns or len(fails) >= a.max_failures:
                    return
                nxt[0] += 1
            off = (i * 7919) % 4096
            payload = blob[off:off + sizes[i]]
            ok, why = one(a.addr, a.port, payload, a.timeout)
            with lock:
                if ok:
                    done_bytes[0] += len(payload)
                else:
                    fails.append((i, len(payload), why))

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    ok = a.conns - len(fails) - max(0, a.conns - nxt[0])
    out = {"conns": a.conns, "ok": ok, "failed": a.conns - ok,
           "bytes_each_way": done_bytes[0], "seconds": round(dt, 3),
           "min_size": min(sizes), "max_size": max(sizes),
           "first_failures": fails[:5]}
    print(json.dumps(out))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
