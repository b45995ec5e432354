#!/usr/bin/env python3
"""A misbehaving OCSP responder for tern's tests (python3 standard library only).

usage: fake_responder.py --port PORT --lifetime SECONDS [--log FILE]
                         [--delay SECONDS] MODE [DER...]

Listens on 127.0.0.1:PORT only. When it is listening it prints one line
    READY pid=<pid> port=<port>
on stdout and flushes it. It exits by itself after --lifetime seconds
(1..3600, required) and at once on SIGTERM or SIGINT.

Modes (the answer to every request, GET or POST, whatever the path):
  garbage        200, Content-Type application/ocsp-response, 1..2048 random bytes
  http500        500 Internal Server Error with a short text body
  hang           accepts the connection, reads the request and never answers
                 (the connection stays open until the lifetime ends)
  file DER       200 with DER as the body, Content-Type application/ocsp-response
  seq DER...     like file, but the i-th request gets the i-th file (the last
                 one again once they run out): e.g. a newer then an older response
  slow DER       like file, but the body trickles out over --delay seconds
                 (default 30), a byte at a time

--log FILE appends one line per request: "<unix time> <method> <path> <n>"
where n counts requests from 1; tests use it to tell whether, and how often,
the responder was asked.
"""
import argparse
import http.server
import os
import signal
import sys
import threading
import time

CONTENT_TYPE = "application/ocsp-response"


def parse_args():
    p = argparse.ArgumentParser(description="misbehaving OCSP responder for tests")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lifetime", type=float, required=True)
    p.add_argument("--log")
    p.add_argument("--delay", type=float, default=30.0)
    p.add_argument("mode", choices=["garbage", "http500", "hang", "file", "seq", "slow"])
    p.add_argument("der", nargs="*")
    a = p.parse_args()
    if not 0 < a.lifetime <= 3600:
        p.error("--lifetime must be in (0, 3600]")
    if not 0 < a.port < 65536:
        p.error("--port out of range")
    if a.mode in ("file", "slow") and len(a.der) != 1:
        p.error(f"mode {a.mode} takes exactly one DER file")
    if a.mode == "seq" and not a.der:
        p.error("mode seq takes one or more DER files")
    if a.mode in ("garbage", "http500", "hang") and a.der:
        p.error(f"mode {a.mode} takes no file")
    return a


def main():
    a = parse_args()
    bodies = []
    for path in a.der:
        with open(path, "rb") as f:
            bodies.append(f.read())
    stop = threading.Event()
    lock = threading.Lock()
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, fmt, *args):  # quiet: the --log file is the record
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            if 0 < length <= 1 << 20:
                self.rfile.read(length)
            with lock:
                count[0] += 1
                n = count[0]
                if a.log:
                    with open(a.log, "a") as f:
                        f.write(f"{time.time():.3f} {self.command} {self.path} {n}\n")
            if a.mode == "hang":
                stop.wait(a.lifetime)
                return
            if a.mode == "http500":
                body = b"responder broken on purpose\n"
                self.send_response(500)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if a.mode == "garbage":
                body = os.urandom(1 + int.from_bytes(os.urandom(2), "big") % 2048)
            elif a.mode == "seq":
                body = bodies[min(n, len(bodies)) - 1]
            else:
                body = bodies[0]
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if a.mode != "slow":
                self.wfile.write(body)
                return
            gap = a.delay / max(len(body), 1)
            for i in range(len(body)):
                if stop.wait(gap):
                    return
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()

        do_GET = handle_any
        do_POST = handle_any

    class Server(http.server.ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True

    srv = Server(("127.0.0.1", a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                     daemon=True).start()
    print(f"READY pid={os.getpid()} port={a.port}", flush=True)
    stop.wait(a.lifetime)
    stop.set()
    # Handler threads may be blocked in hang/slow; they are daemons and the
    # process ends here without waiting for them.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
