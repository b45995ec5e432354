#!/usr/bin/env python3
"""Reads tern-dataplane's counters through DPDK's telemetry socket.

usage: telemetry.py FILE_PREFIX COMMAND [KEY]
Prints the JSON answer to COMMAND, or only the value of KEY in it."""
import json
import socket
import sys


def query(prefix, cmd):
    path = "/var/run/dpdk/%s/dpdk_telemetry.v2" % prefix
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    json.loads(s.recv(65536).decode())  # greeting: version, pid, max length
    s.send(cmd.encode())
    ans = json.loads(s.recv(1 << 20).decode())
    s.close()
    return ans[cmd.split(",")[0]]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    d = query(sys.argv[1], sys.argv[2])
    if len(sys.argv) > 3:
        print(d[sys.argv[3]])
    else:
        print(json.dumps(d, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
