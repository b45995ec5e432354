#!/usr/bin/env bash
# Plaintext proxy: tern-dataplane vs the kernel (HAProxy, mode tcp), same
# namespaces, same client, same echo backend, same run.
#
#   sudo TERN_DATAPLANE=build/release/dataplane/tern-dataplane \
#        bench/dataplane/bench_proxy.sh [CONNS] [MIB] [ROUNDS]
#
# The proxy (tern's one worker, or HAProxy) is pinned to CPU 0, the client
# and the backend to CPU 1. Each round runs tern, then HAProxy (ROUNDS,
# default 5, interleaved so that a drift of the machine falls on both); the
# table shows each figure's median over the rounds and the tern/kernel ratio
# of the medians, and every round's ratios are printed above it: the kernel
# path's CPU per MiB alone moved between 5 and 11 ms from one run to the next
# on this VM. Figures: connections/s and MiB/s, and the proxy's CPU per
# connection and per MiB: for tern the worker's busy TSC cycles (an idle
# busy-polling iteration does not count), for HAProxy its utime+stime from
# /proc/<pid>/stat. Caveat: the kernel path's softirq work done on the
# client's CPU is not charged to HAProxy, which flatters the kernel.
# Two more rows split out the part of tern's figure spent inside the AF_XDP
# transmit call (kernel work, from the worker's tx_cycles counter), next to
# the kernel path's whole figure: on veth that part alone can exceed it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CONNS=${1:-2000}
MIB=${2:-256}
ROUNDS=${3:-5}
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
tck=$(getconf CLK_TCK)

# load ROUND KIND SAMPLER: the two loads, each between two samples of the
# proxy's CPU; writes ROUND's KIND_c.json, KIND_m.json and KIND.cpu.
load() {
    local r=$1 kind=$2 sampler=$3 s0 s1 s2
    s0=$($sampler)
    "${CLIENT[@]}" --conns "$CONNS" --concurrency 8 --size 64 --timeout 30 >"$WORKDIR/$r.${kind}_c.json"
    s1=$($sampler)
    "${CLIENT[@]}" --conns "$NBIG" --concurrency 2 --size "$BIG" --timeout 120 >"$WORKDIR/$r.${kind}_m.json"
    s2=$($sampler)
    echo "$s0 $s1 $s2" >"$WORKDIR/$r.$kind.cpu"
}

# tern: busy and tx-call TSC cycles, in seconds.
tern_sample() {
    awk -v b="$(dp_stat busy_cycles)" -v x="$(dp_stat tx_cycles)" -v hz="$HZ" \
        'BEGIN { printf "%.6f,%.6f", b / hz, x / hz }'
}
# HAProxy: utime + stime, in seconds (tick resolution).
HA=""
ha_sample() { awk -v t="$tck" '{ printf "%.6f,0", ($14 + $15) / t }' "/proc/$HA/stat"; }

for ((r = 1; r <= ROUNDS; r++)); do
    dp_start --idle-timeout-ms 0
    HZ=$(dp_stat tsc_hz)
    load "$r" t tern_sample
    kill -TERM "$DP_PID"; wait "$DP_PID" 2>/dev/null || true; DP_PID=""

    ip -n "$NS_DP" addr add "$DP_ADDR/24" dev "$IF_DP"
    ip netns exec "$NS_DP" ethtool -K "$IF_DP" tx off >/dev/null
    ip netns exec "$NS_DP" taskset -c 0 haproxy -db -f "$WORKDIR/haproxy.cfg" \
        >"$WORKDIR/haproxy.log" 2>&1 &
    HA=$!
    BG_PIDS+=($HA)
    sleep 1
    load "$r" k ha_sample
    kill "$HA"; wait "$HA" 2>/dev/null || true
    # tern takes the veth back through AF_XDP: the kernel must not answer.
    ip -n "$NS_DP" addr del "$DP_ADDR/24" dev "$IF_DP"
done

python3 - "$WORKDIR" "$ROUNDS" "$tck" <<'PY'
import json, statistics, sys
d, rounds, tck = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def figures(r, kind):
    c = json.load(open("%s/%d.%s_c.json" % (d, r, kind)))
    m = json.load(open("%s/%d.%s_m.json" % (d, r, kind)))
    for x in (c, m):
        if x["failed"]:
            sys.exit("round %d %s: a load run failed: %s" % (r, kind, x))
    s = [tuple(map(float, p.split(","))) for p in open("%s/%d.%s.cpu" % (d, r, kind)).read().split()]
    mib = m["bytes_each_way"] / 1048576.0
    return {
        "conn_s": c["conns"] / c["seconds"],
        "mib_s": mib / m["seconds"],
        "us_conn": (s[1][0] - s[0][0]) * 1e6 / c["conns"],
        "ms_mib": (s[2][0] - s[1][0]) * 1e3 / mib,
        "tx_us_conn": (s[1][1] - s[0][1]) * 1e6 / c["conns"],
        "tx_ms_mib": (s[2][1] - s[1][1]) * 1e3 / mib,
        "conns": c["conns"], "mib": mib,
    }

T = [figures(r, "t") for r in range(1, rounds + 1)]
K = [figures(r, "k") for r in range(1, rounds + 1)]
for r in range(rounds):
    t, k = T[r], K[r]
    print("round %d: tern/kernel CPU per connection %.2f, per MiB %.2f (tern %.2f, kernel %.2f ms/MiB)"
          % (r + 1, t["us_conn"] / k["us_conn"], t["ms_mib"] / k["ms_mib"], t["ms_mib"], k["ms_mib"]))
med = lambda rows, key: statistics.median(x[key] for x in rows)
rows = [
    ("connections/s (64 B echo)", "conn_s", "conn_s"),
    ("MiB/s (8 MiB echo, each way)", "mib_s", "mib_s"),
    ("proxy CPU us per connection", "us_conn", "us_conn"),
    ("proxy CPU ms per MiB", "ms_mib", "ms_mib"),
    ("  tern's in the tx call, per conn", "tx_us_conn", "us_conn"),
    ("  tern's in the tx call, per MiB", "tx_ms_mib", "ms_mib"),
]
print("%-34s %12s %14s %10s" % ("plaintext proxy, median of %d" % rounds, "tern", "kernel+haproxy",
                                "tern/kern"))
for name, tk, kk in rows:
    t, k = med(T, tk), med(K, kk)
    print("%-34s %12.2f %14.2f %10.2f" % (name, t, k, t / k if k else float("nan")))
print("(client: python3, %d connections and %.0f MiB per round; HAProxy CPU excludes softirq on the"
      " client's CPU; HAProxy CPU resolution %.0f ms)" % (T[0]["conns"], T[0]["mib"], 1000 / tck))
print("(\"in the tx call\": the part of tern's CPU spent inside the AF_XDP transmit system call,"
      " kernel work: an skb and a copy per frame, veth, and the receiving\n kernel's TCP input,"
      " which veth runs in the sender's context; compared with the kernel path's whole CPU)")
PY
