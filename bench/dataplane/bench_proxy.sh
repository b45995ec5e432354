#!/usr/bin/env bash
# Plaintext proxy: tern-dataplane vs the kernel (HAProxy, mode tcp), same
# namespaces, same client, same echo backend, same run.
#
#   sudo TERN_DATAPLANE=build/release/dataplane/tern-dataplane \
#        bench/dataplane/bench_proxy.sh [CONNS] [MIB]
#
# The proxy (tern's one worker, or HAProxy) is pinned to CPU 0, the client
# and the backend to CPU 1. Prints connections/s and MiB/s for each, and the
# proxy's CPU per connection and per MiB: for tern the worker's busy TSC
# cycles (an idle busy-polling iteration does not count), for HAProxy its
# utime+stime from /proc/<pid>/stat. Caveat: the kernel path's softirq work
# done on the client's CPU is not charged to HAProxy, which flatters the
# kernel. Absolute figures drift on a shared machine; read the ratios.
# Two more rows split out the part of tern's figure spent inside the AF_XDP
# transmit call (kernel work, from the worker's tx_cycles counter), next to
# the kernel path's whole figure: on veth that part alone can exceed it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CONNS=${1:-2000}
MIB=${2:-64}
export DP_QUEUES=1 DP_LCORE_ARG="--lcores=0@0"
# shellcheck source=../../tests/integration/dataplane/lib.sh
source "$HERE/../../tests/integration/dataplane/lib.sh"
dp_require
command -v haproxy >/dev/null || skip "haproxy missing"
dp_net_up
ip netns exec "$NS_CLI" taskset -c 1 python3 "$DP_LIB_DIR/echo_server.py" "$BE_ADDR" "$BE_PORT" \
    >"$WORKDIR/backend.log" 2>&1 &
BG_PIDS+=($!)
sleep 0.5
CLIENT=(ip netns exec "$NS_CLI" taskset -c 1 python3 "$DP_LIB_DIR/load_client.py" "$DP_ADDR" "$VIP_PORT")
BIG=$((8 << 20))
NBIG=$(( (MIB + 7) / 8 ))

measure() { # label; runs the two loads, prints "conns_s mib_s"
    local c m
    c=$("${CLIENT[@]}" --conns "$CONNS" --concurrency 8 --size 64 --timeout 30)
    m=$("${CLIENT[@]}" --conns "$NBIG" --concurrency 2 --size "$BIG" --timeout 120)
    python3 - "$c" "$m" <<'PY'
import json, sys
c, m = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert c["failed"] == 0 and m["failed"] == 0, (c, m)
print(c["conns"] / c["seconds"], c["seconds"], m["bytes_each_way"] / 1048576 / m["seconds"], m["seconds"])
PY
}

# --- tern ---------------------------------------------------------------
dp_start --idle-timeout-ms 0
busy0=$(dp_stat busy_cycles)
txc0=$(dp_stat tx_cycles)
"${CLIENT[@]}" --conns "$CONNS" --concurrency 8 --size 64 --timeout 30 >"$WORKDIR/t_c.json"
busy1=$(dp_stat busy_cycles)
txc1=$(dp_stat tx_cycles)
"${CLIENT[@]}" --conns "$NBIG" --concurrency 2 --size "$BIG" --timeout 120 >"$WORKDIR/t_m.json"
busy2=$(dp_stat busy_cycles)
txc2=$(dp_stat tx_cycles)
hz=$(dp_stat tsc_hz)
kill -TERM "$DP_PID"; wait "$DP_PID" 2>/dev/null || true; DP_PID=""

# --- kernel + HAProxy -----------------------------------------------------
ip -n "$NS_DP" addr add "$DP_ADDR/24" dev "$IF_DP"
ip netns exec "$NS_DP" ethtool -K "$IF_DP" tx off >/dev/null
cat >"$WORKDIR/haproxy.cfg" <<CFG
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend f
    bind $DP_ADDR:$VIP_PORT
    default_backend b
backend b
    server s1 $BE_ADDR:$BE_PORT
CFG
ip netns exec "$NS_DP" taskset -c 0 haproxy -db -f "$WORKDIR/haproxy.cfg" >"$WORKDIR/haproxy.log" 2>&1 &
HA=$!
BG_PIDS+=($HA)
sleep 1
cpu() { awk '{print $14 + $15}' "/proc/$HA/stat"; }
tck=$(getconf CLK_TCK)
k0=$(cpu)
"${CLIENT[@]}" --conns "$CONNS" --concurrency 8 --size 64 --timeout 30 >"$WORKDIR/k_c.json"
k1=$(cpu)
"${CLIENT[@]}" --conns "$NBIG" --concurrency 2 --size "$BIG" --timeout 120 >"$WORKDIR/k_m.json"
k2=$(cpu)

python3 - "$WORKDIR" "$busy0" "$busy1" "$busy2" "$hz" "$k0" "$k1" "$k2" "$tck" \
    "$txc0" "$txc1" "$txc2" <<'PY'
import json, sys
d = sys.argv[1]
b0, b1, b2, hz, k0, k1, k2, tck, x0, x1, x2 = map(float, sys.argv[2:])
L = lambda n: json.load(open("%s/%s.json" % (d, n)))
tc, tm, kc, km = L("t_c"), L("t_m"), L("k_c"), L("k_m")
for r in (tc, tm, kc, km):
    if r["failed"]:
        sys.exit("a load run failed: %s" % r)
mib_t = tm["bytes_each_way"] / 1048576.0
mib_k = km["bytes_each_way"] / 1048576.0
rows = [
    ("connections/s (64 B echo)", tc["conns"] / tc["seconds"], kc["conns"] / kc["seconds"]),
    ("MiB/s (8 MiB echo, each way)", mib_t / tm["seconds"], mib_k / km["seconds"]),
    ("proxy CPU us per connection", (b1 - b0) / hz * 1e6 / tc["conns"], (k1 - k0) / tck * 1e6 / kc["conns"]),
    ("proxy CPU ms per MiB", (b2 - b1) / hz * 1e3 / mib_t, (k2 - k1) / tck * 1e3 / mib_k),
    ("  tern's in the tx call, per conn", (x1 - x0) / hz * 1e6 / tc["conns"], (k1 - k0) / tck * 1e6 / kc["conns"]),
    ("  tern's in the tx call, per MiB", (x2 - x1) / hz * 1e3 / mib_t, (k2 - k1) / tck * 1e3 / mib_k),
]
print("%-32s %14s %14s %10s" % ("plaintext proxy", "tern", "kernel+haproxy", "tern/kern"))
for name, t, k in rows:
    print("%-32s %14.2f %14.2f %10.2f" % (name, t, k, t / k if k else float("nan")))
print("(client: python3, %d connections, %.0f MiB; HAProxy CPU excludes softirq on the client's CPU;"
      " HAProxy CPU resolution %.0f ms)" % (tc["conns"], mib_t, 1000 / tck))
print("(\"in the tx call\": the part of tern's CPU spent inside the AF_XDP transmit system call,"
      " kernel work: an skb and a copy per frame, veth, and the receiving\n kernel's TCP input,"
      " which veth runs in the sender's context; compared with the kernel path's whole CPU)")
PY
