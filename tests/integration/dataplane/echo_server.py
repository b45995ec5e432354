#!/usr/bin/env python3
"""Kernel TCP echo server for the dataplane tests: echoes every byte back,
half-closes when the client does. One thread per connection (bounded).

usage: echo_server.py ADDR PORT"""
import socket
import sys
import threading

MAX_THREADS = 600


def serve(c):
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        c.close()


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1024)
    print("listening", flush=True)
    while True:
        c, _ = s.accept()
        if threading.active_count() > MAX_THREADS:
            c.close()
            continue
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
