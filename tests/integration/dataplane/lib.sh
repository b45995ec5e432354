# Shared set-up for the dataplane integration tests (sourced, bash).
#
# Topology, all names unique per run (PID):
#   namespace $NS_CLI: veth $IF_CLI, 198.18.0.2/24 (clients) and
#                      198.18.0.3/24 (the kernel backend server)
#   namespace $NS_DP:  veth $IF_DP, owned by tern-dataplane through AF_XDP
#                      (two queues, one vdev each), which is 198.18.0.1
# The dataplane reaches the backend over the same veth: it is on-link.
#
# Needs: root, $TERN_DATAPLANE (path of the binary), python3, ethtool, ip.

set -euo pipefail

DP_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TAG="t$$"
NS_CLI="tern-cli-$TAG"
NS_DP="tern-dp-$TAG"
IF_CLI="tc$TAG"
IF_DP="td$TAG"
DP_ADDR=198.18.0.1
CLI_ADDR=198.18.0.2
BE_ADDR=198.18.0.3
BE_PORT=8080
VIP_PORT=80
FILE_PREFIX="tern$TAG"
WORKDIR=$(mktemp -d "/tmp/tern-dp-test-$TAG.XXXXXX")
DP_PID=""
BG_PIDS=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
log() { echo "# $*"; }

dp_cleanup() {
    set +e
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
    if [ -n "$DP_PID" ]; then
        kill -TERM "$DP_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DP_PID" 2>/dev/null
    fi
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$NS_CLI" 2>/dev/null
    ip netns del "$NS_DP" 2>/dev/null
    rm -rf "/var/run/dpdk/$FILE_PREFIX"
    if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "# logs kept in $WORKDIR"; else rm -rf "$WORKDIR"; fi
}
trap dp_cleanup EXIT

dp_require() {
    [ "$(id -u)" -eq 0 ] || skip "needs root"
    [ -x "${TERN_DATAPLANE:-}" ] || skip "TERN_DATAPLANE not set or not executable"
    command -v ethtool >/dev/null || skip "ethtool missing"
}

# Two namespaces joined by a veth with two queues each way.
dp_net_up() {
    ip netns add "$NS_CLI"
    ip netns add "$NS_DP"
    ip link add "$IF_DP" netns "$NS_DP" type veth peer name "$IF_CLI" netns "$NS_CLI" \
        numrxqueues 2 numtxqueues 2
    ip -n "$NS_DP" link set "$IF_DP" up
    ip -n "$NS_CLI" link set "$IF_CLI" up
    ip -n "$NS_CLI" link set lo up
    ip -n "$NS_CLI" addr add "$CLI_ADDR/24" dev "$IF_CLI"
    ip -n "$NS_CLI" addr add "$BE_ADDR/24" dev "$IF_CLI"
    local q=${DP_QUEUES:-2}
    ip netns exec "$NS_DP" ethtool -L "$IF_DP" rx "$q" tx "$q" >/dev/null 2>&1 || true
    ip netns exec "$NS_CLI" ethtool -L "$IF_CLI" rx "$q" tx "$q" >/dev/null 2>&1 || true
    # The kernel would leave TCP checksums partial (veth offload); the
    # dataplane checks every checksum, so make the kernel compute them.
    ip netns exec "$NS_CLI" ethtool -K "$IF_CLI" tx off >/dev/null
    # Debugging: TERN_TEST_PCAP=1 KEEP_LOGS=1 keeps the client side's packets.
    if [ "${TERN_TEST_PCAP:-0}" = 1 ] && command -v tcpdump >/dev/null; then
        ip netns exec "$NS_CLI" tcpdump -i "$IF_CLI" -s 128 -U -w "$WORKDIR/cli.pcap" \
            >/dev/null 2>&1 &
        BG_PIDS+=($!)
    fi
}

# dp_start [extra tern args...]: starts tern-dataplane with one lcore and one
# AF_XDP vdev per queue (DP_QUEUES, default 2), and waits until it says ready.
dp_start() {
    local q=${DP_QUEUES:-2} i vdevs=()
    local lcores=${DP_LCORES:-0-$((q - 1))}
    for ((i = 0; i < q; i++)); do
        vdevs+=("--vdev=net_af_xdp${i}_$TAG,iface=$IF_DP,start_queue=$i,busy_budget=${DP_BUSY_BUDGET:-0}")
    done
    ip netns exec "$NS_DP" sh -c 'mount -t bpf bpf /sys/fs/bpf 2>/dev/null; exec "$@"' sh \
        "$TERN_DATAPLANE" ${DP_LCORE_ARG:--l $lcores} --no-pci --no-huge -m ${DP_MEM_MB:-512} --file-prefix="$FILE_PREFIX" \
        --log-level=lib.eal:warning \
        "${vdevs[@]}" \
        -- --addr "$DP_ADDR/24" --listen "$DP_ADDR:$VIP_PORT" \
        --backend "$BE_ADDR:$BE_PORT" --mbufs 8191 "$@" \
        >"$WORKDIR/dp.log" 2>&1 &
    DP_PID=$!
    # EAL start-up takes seconds on a loaded 2-core machine: allow 60 s.
    for _ in $(seq 600); do
        grep -q ": ready$" "$WORKDIR/dp.log" 2>/dev/null && return 0
        kill -0 "$DP_PID" 2>/dev/null || { cat "$WORKDIR/dp.log"; fail "dataplane exited at start"; }
        sleep 0.1
    done
    cat "$WORKDIR/dp.log"
    fail "dataplane not ready after 60 s"
}

dp_alive() { kill -0 "$DP_PID" 2>/dev/null; }

# dp_xsk_check: the kernel's own counters of the dataplane's AF_XDP sockets
# must show no invalid descriptor (a frame the kernel refused and dropped
# without a trace: how mbufs outside the UMEM showed). Logs the sums.
dp_xsk_check() {
    local out
    out=$(python3 "$DP_LIB_DIR/xsk_stats.py" "$DP_PID") || fail "xsk_stats: $out"
    log "AF_XDP sockets: $(tail -n 1 <<<"$out")"
    python3 -c 'import json,sys; t=json.loads(sys.argv[1].splitlines()[-1]);
sys.exit(0 if t["tx_invalid_descs"] == 0 and t["rx_invalid_descs"] == 0 else 1)' "$out" ||
        fail "the kernel refused AF_XDP descriptors (invalid): $out"
}

# dp_stat NAME: one counter from /tern/stats.
dp_stat() {
    python3 "$DP_LIB_DIR/telemetry.py" "$FILE_PREFIX" /tern/stats "$1"
}

# dp_stats: the whole /tern/stats dictionary as JSON.
dp_stats() {
    python3 "$DP_LIB_DIR/telemetry.py" "$FILE_PREFIX" /tern/stats
}

# Kernel echo backend in the client namespace (python3 stdlib).
be_start() {
    ip netns exec "$NS_CLI" python3 "$DP_LIB_DIR/echo_server.py" "$BE_ADDR" "$BE_PORT" \
        >"$WORKDIR/backend.log" 2>&1 &
    BG_PIDS+=($!)
    for _ in $(seq 50); do
        grep -q listening "$WORKDIR/backend.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "backend did not start"
}

in_cli() { ip netns exec "$NS_CLI" "$@"; }
