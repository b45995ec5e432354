#!/usr/bin/env python3
"""TLS client for the proxy tests (talks to pp_backend.py through tern).

    pp_client.py VIP PORT SNI CAFILE MODE [options]

MODE one: one connection, prints the backend's JSON answer plus the local
  address and negotiated TLS details as {"answer":..., "local":..., ...}.
MODE seq: --conns N sequential connections; prints {"counts": {name: n},
  "errors": e}.
MODE lc: holds --conns N connections, closes those that went to --drop,
  then opens --more M while the rest stay open; prints {"first": counts,
  "after": counts, "errors": e}.
Options: --alpn PROTO, --tls 1.2|1.3, --timeout S."""
import argparse
import json
import socket
import ssl
import sys


def ctx_for(args):
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif args.tls == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if args.alpn:
        ctx.set_alpn_protocols([args.alpn])
    return ctx


def open_one(args, ctx):
    raw = socket.create_connection((args.vip, args.port), timeout=args.timeout)
    s = ctx.wrap_socket(raw, server_hostname=args.sni)
    s.sendall(b"hi\n")
    line = b""
    while not line.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError("closed before the answer")
        line += chunk
    if line.startswith(b"BADPP"):
        raise ValueError(line.decode().strip())
    return s, json.loads(line)


def count(names):
    out = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("sni")
    p.add_argument("cafile")
    p.add_argument("mode", choices=["one", "seq", "lc"])
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--more", type=int, default=0)
    p.add_argument("--drop", default="")
    p.add_argument("--alpn", default="")
    p.add_argument("--tls", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    ctx = ctx_for(args)
    errors = []
    if args.mode == "one":
        s, ans = open_one(args, ctx)
        local = s.getsockname()
        out = {"answer": ans, "local": "%s:%d" % local, "version": s.version(),
               "cipher": s.cipher()[0], "alpn": s.selected_alpn_protocol()}
        s.close()
        print(json.dumps(out))
        return 0
    if args.mode == "seq":
        names = []
        for _ in range(args.conns):
            try:
                s, ans = open_one(args, ctx)
                names.append(ans["name"])
                s.close()
            except Exception as e:  # counted, the test decides
                errors.append(str(e))
        print(json.dumps({"counts": count(names), "errors": len(errors),
                          "first_error": errors[0] if errors else None}))
        return 0
    held = []
    for _ in range(args.conns):
        try:
            held.append(open_one(args, ctx))
        except Exception as e:
            errors.append(str(e))
    first = count(a["name"] for _, a in held)
    keep = []
    for s, a in held:
        if a["name"] == args.drop:
            s.close()
        else:
            keep.append(s)
    # let tern see the closes before the next connections are placed
    import time
    time.sleep(0.5)
    after = []
    for _ in range(args.more):
        try:
            s, a = open_one(args, ctx)
            keep.append(s)
            after.append(a["name"])
        except Exception as e:
            errors.append(str(e))
    for s in keep:
        s.close()
    print(json.dumps({"first": first, "after": count(after), "errors": len(errors),
                      "first_error": errors[0] if errors else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
