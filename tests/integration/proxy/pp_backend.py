#!/usr/bin/env python3
"""A test backend for the proxy tests: answers each connection with one
JSON line naming itself and, with --pp2, what the PROXY protocol v2 header
that must open the connection said (parsed here independently of tern's
C parser, from HAProxy's doc/proxy-protocol.txt).

    pp_backend.py ADDR PORT NAME [--pp2]

Per connection: [header], one line from the client, the JSON answer, then
the connection stays open until the client closes it (so a test can hold
connections). A connection that closes before its line (a health check) is
just counted."""
import json
import socket
import socketserver
import struct
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
lock = threading.Lock()
stats = {"conns": 0, "answered": 0, "bad_header": 0}


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def parse_tlvs(data):
    out = []
    off = 0
    while off < len(data):
        if len(data) - off < 3:
            raise ValueError("TLV head cut")
        t, ln = struct.unpack("!BH", data[off:off + 3])
        if off + 3 + ln > len(data):
            raise ValueError("TLV value cut")
        out.append((t, data[off + 3:off + 3 + ln]))
        off += 3 + ln
    return out


def read_pp2(sock):
    head = recv_exact(sock, 16)
    if head[:12] != SIG:
        raise ValueError("bad signature %r" % head[:12])
    if head[12] != 0x21:
        raise ValueError("version/command 0x%02x" % head[12])
    if head[13] != 0x11:
        raise ValueError("family 0x%02x" % head[13])
    (length,) = struct.unpack("!H", head[14:16])
    body = recv_exact(sock, length)
    if length < 12:
        raise ValueError("short address block")
    src, dst = socket.inet_ntoa(body[0:4]), socket.inet_ntoa(body[4:8])
    sport, dport = struct.unpack("!HH", body[8:12])
    info = {"src": src, "sport": sport, "dst": dst, "dport": dport}
    for t, v in parse_tlvs(body[12:]):
        if t == 0x01:
            info["alpn"] = v.decode()
        elif t == 0x02:
            info["authority"] = v.decode()
        elif t == 0x20:
            if len(v) < 5:
                raise ValueError("short SSL TLV")
            info["ssl_client"] = v[0]
            (info["ssl_verify"],) = struct.unpack("!I", v[1:5])
            for st, sv in parse_tlvs(v[5:]):
                if st == 0x21:
                    info["ssl_version"] = sv.decode()
                elif st == 0x23:
                    info["ssl_cipher"] = sv.decode()
    return info


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        with lock:
            stats["conns"] += 1
        pp = None
        try:
            if self.server.pp2:
                try:
                    pp = read_pp2(s)
                except ValueError as e:
                    with lock:
                        stats["bad_header"] += 1
                    s.sendall(("BADPP %s\n" % e).encode())
                    return
            line = b""
            while not line.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    return  # a health check, or a client that left
                line += chunk
            answer = {"name": self.server.name, "pp2": pp,
                      "peer": "%s:%d" % self.client_address}
            s.sendall((json.dumps(answer) + "\n").encode())
            with lock:
                stats["answered"] += 1
            while s.recv(4096):
                pass
        except (EOFError, ConnectionError, OSError):
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    addr, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    srv = Server((addr, port), Handler)
    srv.name = name
    srv.pp2 = "--pp2" in sys.argv[4:]
    print("listening %s:%d %s" % (addr, port, name), flush=True)
    try:
        srv.serve_forever()
    finally:
        print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
