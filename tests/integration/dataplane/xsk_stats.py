#!/usr/bin/env python3
"""Prints the kernel's statistics of every AF_XDP socket of a process
(getsockopt SOL_XDP / XDP_STATISTICS on a copy of each socket taken with
pidfd_getfd), one JSON object per socket, and the sums as the last line.
The DPDK PMD reports only rx_dropped; invalid descriptors (frames the
kernel refused and dropped without a trace) show only here.

usage: xsk_stats.py PID        (root; Linux >= 5.6)"""
import ctypes
import json
import os
import struct
import sys

SOL_XDP = 283
XDP_STATISTICS = 7
SYS_PIDFD_GETFD = 438  # x86-64 and most others (asm-generic)
FIELDS = ["rx_dropped", "rx_invalid_descs", "tx_invalid_descs", "rx_ring_full",
          "rx_fill_ring_empty_descs", "tx_ring_empty_descs"]


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pid = int(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    pfd = os.pidfd_open(pid)
    total = dict.fromkeys(FIELDS, 0)
    n = 0
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                continue
        except OSError:
            continue
        fd = libc.syscall(SYS_PIDFD_GETFD, pfd, int(name), 0)
        if fd < 0:
            continue
        try:
            buf = ctypes.create_string_buffer(8 * len(FIELDS))
            blen = ctypes.c_uint32(len(buf))
            if libc.getsockopt(fd, SOL_XDP, XDP_STATISTICS, buf, ctypes.byref(blen)) != 0:
                continue  # not an AF_XDP socket
            vals = dict(zip(FIELDS, struct.unpack("%dQ" % len(FIELDS), buf.raw)))
            print(json.dumps(dict(fd=int(name), **vals)))
            for k in FIELDS:
                total[k] += vals[k]
            n += 1
        finally:
            os.close(fd)
    os.close(pfd)
    print(json.dumps(dict(sockets=n, **total)))
    return 0 if n > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
