#!/usr/bin/env bash
# bench/edge/run.sh BUILD_DIR [--quick] [--servers "tern nginx haproxy"]
#                   [--only SUBSTRING]   (cases whose name holds it)
#                   [--conc N]           (connections at once, handshake cases)
#                   [--rounds N]         (every server N times, interleaved;
#                                         the table shows medians)
#
# tern-dataplane, nginx and HAProxy terminating TLS in front of the same
# backend, in the same run, on namespaces this script makes (198.18.0.0/15)
# and removes (trap). Each server runs on core 0 (tern: one worker lcore;
# nginx: one worker; HAProxy: nbthread 1); the load generator (hsload) and
# the backend (a plain-HTTP nginx) run on core 1. For each server and case it
# prints the server's CPU per handshake (or per MiB for bulk), and that figure
# as a multiple of
#   floor    the crypto floor: signature + X25519 keygen and derive
#            (bench/tls/tls_bench measures the operations `openssl speed`
#            times, in one process on core 0, in this run),
#   inmem    OpenSSL 3.0's own server cost for the same handshake in memory
#            (tls_bench's "openssl" column: client and server SSL joined by
#            BIOs, no sockets, OpenSSL's defaults),
#   best     the best peer: the lower of nginx and HAProxy for that case.
#
# Server CPU: nginx and HAProxy from their threads' run time (schedstat, the
# source of utime+stime in /proc/PID/stat; every thread, user and kernel: TCP,
# socket calls and the veth transmit they trigger). tern busy-polls: from its
# worker's busy and idle TSC cycles in DPDK telemetry (loop iterations that
# did work or not, converted with the TSC frequency the dataplane reports),
# as its CPU time times its busy share; the raw busy time is printed too.
# bench/README.md says why these differ and what that means for the
# comparison.
#
# EDGE_SECS=N measures each case for N seconds instead of 1 (--quick) or 4:
# long enough to attach `perf record -p <tern-dataplane pid>` to a case.
#
# Use a release build (debugoptimized, no sanitizers):
#   meson setup build/release --buildtype=debugoptimized && ninja -C build/release
#   sudo bench/edge/run.sh build/release [--quick]
# Needs root, nginx, haproxy, ethtool, python3 (with python3-cryptography for
# the PKI). tern's rows say "n/a" when its tern-dataplane takes no TLS
# listener (--config) or staple_put is not built.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [--quick] [--servers LIST] [--only S] [--conc N] [--rounds N]" >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
quick=0
rounds=1
only=""
conc_opt=""
servers="tern nginx haproxy"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --servers) servers=$2; shift ;;
    --only) only=$2; shift ;;
    --conc) conc_opt=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

HSLOAD=$build/bench/edge/hsload
TLS_BENCH=$build/bench/tls/tls_bench
export TERN_DATAPLANE=${TERN_DATAPLANE:-$build/dataplane/tern-dataplane}
for f in "$HSLOAD" "$TLS_BENCH"; do
    [ -x "$f" ] || { echo "missing $f: build first" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "needs root (namespaces, AF_XDP)" >&2; exit 2; }
# nginx is the backend whatever --servers says; HAProxy only when measured.
needs="nginx ethtool ip taskset python3 openssl"
[[ " $servers " != *" haproxy "* ]] || needs+=" haproxy"
for c in $needs; do
    command -v "$c" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
    command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 2; }
done

if [ "$quick" = 1 ]; then
    SECS=${EDGE_SECS:-1}; WARM=0.3; CONC=8; BIG_MB=8; BIG_N=4; INMEM_ITERS=40
else
    SECS=${EDGE_SECS:-4}; WARM=1; CONC=16; BIG_MB=32; BIG_N=16; INMEM_ITERS=300
fi
[ -z "$conc_opt" ] || CONC=$conc_opt
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || { echo "--rounds: 1 to 99" >&2; exit 2; }

# Namespaces, veths, work dir, telemetry and cleanup of tern's side come
# from the dataplane tests' lib.sh (names carry this PID); the kernel
# servers get one more namespace and veth here.
. "$src/tests/integration/dataplane/lib.sh"
. "$src/tests/lib/pki.sh"
NS_K="tern-k-$TAG"
IF_KS="ks$TAG"
IF_KC="kc$TAG"
K_ADDR=198.18.1.1
K_CLI=198.18.1.2
K_BE=198.18.1.3
NGINX_PORT=443
HAPROXY_PORT=8443
TERN_PORT=443
STAPLE_PUT=${STAPLE_PUT:-$build/tests/lib/staple_put}
TABLE=/tern-edge-$TAG
edge_cleanup() {
    set +e
    [ -x "$STAPLE_PUT" ] && "$STAPLE_PUT" -d "$TABLE" >/dev/null 2>&1
    dp_cleanup
    ip netns del "$NS_K" 2>/dev/null
}
trap edge_cleanup EXIT
W=$WORKDIR
log "work dir $W"

# ---- PKI and staples --------------------------------------------------
port=$(pki_free_port)
mkdir -p "$W/pki"
pki_make "$W/pki" "$port" >/dev/null
ocsp_start "$W/pki" "$port" --ndays 1 >/dev/null # HAProxy ignores a staple without nextUpdate
ocsp_pid=$OCSP_PID
BG_PIDS+=("$ocsp_pid") # ended by the trap too if anything below fails
for leaf in ecdsa rsa; do
    ocsp_fetch "$W/pki" "$leaf" "$W/pki/$leaf.ocsp.der"
    [ "$(ocsp_status "$W/pki" "$leaf" "$W/pki/$leaf.ocsp.der")" = good ] ||
        fail "staple for $leaf does not verify"
done
ocsp_stop "$ocsp_pid" || fail "could not stop the OCSP responder"
SNI_EC=ecdsa.tern.test
SNI_RSA=rsa.tern.test

# ---- network ---------------------------------------------------------
dp_net_up
ip netns add "$NS_K"
ip link add "$IF_KS" netns "$NS_K" type veth peer name "$IF_KC" netns "$NS_CLI"
ip -n "$NS_K" link set lo up
ip -n "$NS_K" link set "$IF_KS" up
ip -n "$NS_CLI" link set "$IF_KC" up
ip -n "$NS_K" addr add "$K_ADDR/24" dev "$IF_KS"
ip -n "$NS_CLI" addr add "$K_CLI/24" dev "$IF_KC"
ip -n "$NS_CLI" addr add "$K_BE/24" dev "$IF_KC"
# Many short connections from one client address.
for ns in "$NS_CLI" "$NS_K"; do
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
    ip netns exec "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1
done

# ---- backend: plain HTTP nginx on core 1 (both client-side addresses) ----
mkdir -p "$W/be/www" "$W/be/tmp"
printf '%0100d' 0 >"$W/be/www/small"
truncate -s "${BIG_MB}M" "$W/be/www/big"
cat >"$W/be/nginx.conf" <<EOF
worker_processes 1;
daemon off;
user root;
pid $W/be/nginx.pid;
error_log $W/be/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $W/be/tmp;
    proxy_temp_path $W/be/tmp;
    fastcgi_temp_path $W/be/tmp;
    uwsgi_temp_path $W/be/tmp;
    scgi_temp_path $W/be/tmp;
    keepalive_requests 1000000;
    server {
        listen $BE_ADDR:$BE_PORT backlog=4096;
        listen $K_BE:$BE_PORT backlog=4096;
        root $W/be/www;
    }
}
EOF
ip netns exec "$NS_CLI" taskset -c 1 nginx -e "$W/be/error.log" -c "$W/be/nginx.conf" \
    >"$W/be/out.log" 2>&1 &
BG_PIDS+=($!)

# ---- nginx: one worker on core 0, staple from a file ------------------
mkdir -p "$W/nginx/tmp"
nginx_server() { # sni leaf [listen options: only once per address]
    cat <<EOF
    server {
        listen $K_ADDR:$NGINX_PORT ssl ${3:-};
        server_name $1;
        ssl_certificate $W/pki/$2.chain.pem;
        ssl_certificate_key $W/pki/$2.key;
        ssl_stapling on;
        ssl_stapling_file $W/pki/$2.ocsp.der;
        location / { proxy_pass http://be; }
    }
EOF
}
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
user root;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $W/nginx/tmp;
    proxy_temp_path $W/nginx/tmp;
    fastcgi_temp_path $W/nginx/tmp;
    uwsgi_temp_path $W/nginx/tmp;
    scgi_temp_path $W/nginx/tmp;
    ssl_protocols TLSv1.2 TLSv1.3;
    # Stream large answers as a TCP proxy would (no disk buffering).
    proxy_buffering off;
    proxy_buffer_size 64k;
    proxy_buffers 4 64k;
    proxy_busy_buffers_size 128k;
    upstream be { server $K_BE:$BE_PORT; }
$(nginx_server $SNI_EC ecdsa backlog=4096)
$(nginx_server $SNI_RSA rsa)
}
EOF

# ---- HAProxy: nbthread 1 on core 0, staple from <crt>.ocsp ---------------
mkdir -p "$W/haproxy/crt"
for leaf in ecdsa rsa; do
    cat "$W/pki/$leaf.chain.pem" "$W/pki/$leaf.key" >"$W/haproxy/crt/$leaf.pem"
    cp "$W/pki/$leaf.ocsp.der" "$W/haproxy/crt/$leaf.pem.ocsp"
done
cat >"$W/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    cpu-map 1/1 0
    maxconn 8000
    log stderr format short local0 err
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind $K_ADDR:$HAPROXY_PORT ssl crt $W/haproxy/crt/ ssl-min-ver TLSv1.2
    default_backend be
backend be
    server b1 $K_BE:$BE_PORT
EOF

# ---- helpers -----------------------------------------------------------
# proc_cpu_us PID...: CPU time of these processes, every thread, user and
# kernel, in us. The scheduler's per-thread run time (schedstat, ns) is what
# utime+stime in /proc/PID/stat are sampled from; at 100 ticks per second
# those would be too coarse for runs of a few hundred handshakes.
proc_cpu_us() {
    local p f t=0 ns
    for p in "$@"; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r ns _ <"$f" || continue
            t=$((t + ns))
        done
    done
    echo $((t / 1000))
}
# tern_counts: "busy_us idle_us rx tx retransmits rto_expiries tlp_probes":
# the workers' busy and idle TSC cycles from DPDK telemetry, in us with the
# TSC frequency the dataplane reports, then frame and TCP recovery counters.
tern_counts() {
    python3 - "$FILE_PREFIX" "$DP_LIB_DIR" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import telemetry
d = telemetry.query(sys.argv[1], "/tern/stats")
print(int(d["busy_cycles"] * 1e6 / d["tsc_hz"]), int(d["idle_cycles"] * 1e6 / d["tsc_hz"]),
      *(d.get(k, 0) for k in ("rx_frames", "tx_frames", "tcp_RETRANSMIT", "tcp_RTO_EXPIRED",
                              "tcp_TLP_PROBE")))
EOF
}
wait_port() { # ns addr port
    for _ in $(seq 100); do
        ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

SRV_PIDS=""    # the running server's processes, for proc_cpu_us
SRV_KIND=""    # proc | tern
SRV_ADDR=""
start_nginx() {
    ip netns exec "$NS_K" taskset -c 0 nginx -e "$W/nginx/error.log" -c "$W/nginx/nginx.conf" \
        >"$W/nginx/out.log" 2>&1 &
    local master=$!
    BG_PIDS+=("$master")
    wait_port "$NS_CLI" "$K_ADDR" "$NGINX_PORT" || { cat "$W/nginx/error.log"; fail "nginx did not start"; }
    SRV_PIDS="$master $(cat "/proc/$master/task/$master/children")"
    SRV_KIND=proc SRV_ADDR=$K_ADDR:$NGINX_PORT
}
start_haproxy() {
    ip netns exec "$NS_K" taskset -c 0 haproxy -db -f "$W/haproxy/haproxy.cfg" \
        >"$W/haproxy/out.log" 2>&1 &
    local pid=$!
    BG_PIDS+=("$pid")
    wait_port "$NS_CLI" "$K_ADDR" "$HAPROXY_PORT" || { cat "$W/haproxy/out.log"; fail "haproxy did not start"; }
    SRV_PIDS=$pid SRV_KIND=proc SRV_ADDR=$K_ADDR:$HAPROXY_PORT
}
stop_server() {
    local p
    for p in $SRV_PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $SRV_PIDS; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "$SRV_KIND" = tern ]; then DP_PID=""; rm -rf "/var/run/dpdk/$FILE_PREFIX"; fi
}

# tern: TLS listeners come from --config; the staples from a table that
# staple_put (tests/lib) fills as its writer, as tern-control would.
tern_tls_supported() {
    [ -x "$TERN_DATAPLANE" ] && [ -x "$STAPLE_PUT" ] && grep -qa -- "--config FILE" "$TERN_DATAPLANE"
}
tern_config() { # workers
    cat <<EOF
certificates:
  - name: ecdsa
    chain: $W/pki/ecdsa.chain.pem
    key: $W/pki/ecdsa.key
    names: [$SNI_EC]
  - name: rsa
    chain: $W/pki/rsa.chain.pem
    key: $W/pki/rsa.key
    names: [$SNI_RSA]
listeners:
  - name: https
    address: $DP_ADDR
    port: $TERN_PORT
    backend: web
    default_certificate: ecdsa
    tls:
      min_version: "1.2"
backends:
  - name: web
    servers: [$BE_ADDR:$BE_PORT]
table:
  shm_name: $TABLE
  capacity: 64
dataplane:
  workers: $1
  mbufs: 8191
  flows_per_worker: 4096
EOF
}
# start_tern WORKERS: one worker per core from core 0, one veth queue and
# one AF_XDP vdev per worker (the kernel's tx queue choice spreads flows).
start_tern() {
    tern_tls_supported || return 1
    local n=$1 leaf
    if [ ! -f "$W/table.done" ]; then
        for leaf in ecdsa rsa; do
            # shellcheck disable=SC2046
            "$STAPLE_PUT" "$TABLE" "$(pki_key "$W/pki/$leaf.pem")" "$W/pki/$leaf.ocsp.der" \
                $(ocsp_times "$W/pki/$leaf.ocsp.der") || fail "staple_put $leaf"
        done
        touch "$W/table.done"
    fi
    tern_config "$n" >"$W/tern-$n.yaml"
    ip netns exec "$NS_DP" ethtool -L "$IF_DP" rx "$n" tx "$n" >/dev/null 2>&1 || true
    ip netns exec "$NS_CLI" ethtool -L "$IF_CLI" rx "$n" tx "$n" >/dev/null 2>&1 || true
    # The dataplane tests' start: N queues, one AF_XDP vdev each, lcores
    # 0..N-1, waits for "ready" (it also adds a plaintext listener on :80).
    DP_QUEUES=$n dp_start --config "$W/tern-$n.yaml"
    wait_port "$NS_CLI" "$DP_ADDR" "$TERN_PORT" || { cat "$WORKDIR/dp.log"; fail "tern does not accept"; }
    SRV_PIDS=$DP_PID SRV_KIND=tern SRV_ADDR=$DP_ADDR:$TERN_PORT
}

# server_sample: "cpu_us busy_us idle_us" (busy and idle: tern only).
server_sample() {
    if [ "$SRV_KIND" = tern ]; then
        echo "$(proc_cpu_us $SRV_PIDS) $(tern_counts)"
    else
        echo "$(proc_cpu_us $SRV_PIDS) 0 0"
    fi
}
# server_used_us SAMPLE0 SAMPLE1: the server's CPU between two samples.
# nginx, HAProxy: CPU time. tern busy-polls, so its CPU time is the whole
# interval; what it used is its busy loop iterations. Those are timed with
# the TSC, wall-clock time, which on a core shared with other processes also
# counts the time the worker was preempted in a busy iteration; so the
# figure is the CPU time tern received times its busy share,
# cpu * busy / (busy + idle). The raw busy time is kept in RAW[].
server_used_us() {
    awk -v a="$1" -v b="$2" -v kind="$SRV_KIND" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        cpu = y[1] - x[1]; busy = y[2] - x[2]; idle = y[3] - x[3]
        if (kind == "tern")
            printf "%d %d\n", (busy + idle > 0 ? cpu * busy / (busy + idle) : 0), busy
        else
            printf "%d %d\n", cpu, cpu
    }'
}

# ---- cases ----------------------------------------------------------------
# name | hsload options (the address is added) | per: hs or mib | floor key
CASES=(
    "TLS1.3 ECDSA full|-v 1.3 -k ec -s $SNI_EC -g /small|hs|ec13"
    "TLS1.3 RSA full|-v 1.3 -k rsa -s $SNI_RSA -g /small|hs|rsa13"
    "TLS1.2 ECDSA full|-v 1.2 -k ec -s $SNI_EC -g /small|hs|ec12"
    "TLS1.2 RSA full|-v 1.2 -k rsa -s $SNI_RSA -g /small|hs|rsa12"
    "TLS1.3 ECDSA resumed|-v 1.3 -k ec -s $SNI_EC -g /small -r|hs|ec13r"
    "TLS1.2 ECDSA resumed|-v 1.2 -k ec -s $SNI_EC -g /small -r|hs|ec12r"
    "bulk TLS1.3 ECDSA|-v 1.3 -k ec -s $SNI_EC -g /big|mib|-"
)
declare -A RES RATE RAW IDLE_BUSY ALL_RES ALL_RAW

# run_case SERVER INDEX: warm up, then measure; stores RES[server,index].
run_case() {
    local srv=$1 i=$2 name opts per fk
    IFS='|' read -r name opts per fk <<<"${CASES[$i]}"
    local conc=$CONC n=1000000
    if [ "$per" = mib ]; then conc=2; n=$BIG_N; fi
    in_cli taskset -c 1 "$HSLOAD" -a "$SRV_ADDR" -c "$conc" -t "$WARM" -n "$n" $opts \
        >"$W/warm.log" 2>&1 || { cat "$W/warm.log"; log "$srv $name: warm-up failed"; }
    local s0 s1 out used raw
    s0=$(server_sample)
    if ! out=$(in_cli taskset -c 1 "$HSLOAD" -a "$SRV_ADDR" -c "$conc" -t "$SECS" -n "$n" $opts 2>&1); then
        log "$srv $name: FAILED: $out"
        if [ "$SRV_KIND" = tern ]; then
            dp_stats >"$W/tern-stats-failed-$i.json" 2>&1 || true
            log "tern counters after the failure: $W/tern-stats-failed-$i.json"
        fi
        RES[$srv,$i]=fail
        return 0
    fi
    s1=$(server_sample)
    read -r used raw < <(server_used_us "$s0" "$s1")
    local ok bytes rate div
    ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$out")
    bytes=$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' <<<"$out")
    rate=$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$out")
    if [ "$per" = mib ]; then
        div=$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')
        RATE[$srv,$i]=$(sed -n 's/.* mib_s=\([0-9.]*\).*/\1 MiB\/s/p' <<<"$out")
    else
        div=$ok
        local res
        res=$(sed -n 's/.* resumed=\([0-9]*\).*/\1/p' <<<"$out")
        RATE[$srv,$i]="$rate hs/s"
        if [[ "$name" == *resumed* ]]; then
            RATE[$srv,$i]+=", $((res * 100 / ok))% resumed"
        fi
    fi
    RES[$srv,$i]=$(awk -v c="$used" -v n="$div" 'BEGIN { printf "%.1f", c / n }')
    RAW[$srv,$i]=$(awk -v c="$raw" -v n="$div" 'BEGIN { printf "%.1f", c / n }')
    ALL_RES[$srv,$i]+="${RES[$srv,$i]} "
    ALL_RAW[$srv,$i]+="${RAW[$srv,$i]} "
    log "$srv $name: ${RES[$srv,$i]} us/$per (raw ${RAW[$srv,$i]})  ($out)"
    if [ "$SRV_KIND" = tern ]; then
        # Frames and TCP recovery per connection: a core shared with other
        # work delays tern's ACKs and timers, which shows up here.
        log "$srv $name: per connection: $(awk -v a="$s0" -v b="$s1" -v n="$ok" 'BEGIN {
            split(a, x, " "); split(b, y, " "); if (n < 1) n = 1
            printf "rx %.1f tx %.1f frames, retransmits %.2f, RTO expiries %.2f, TLPs %.2f",
                (y[4] - x[4]) / n, (y[5] - x[5]) / n, (y[6] - x[6]) / n, (y[7] - x[7]) / n,
                (y[8] - x[8]) / n }')"
        # Sanity check of the busy accounting: with no load, a busy-polling
        # worker should count (nearly) nothing as busy.
        local q0 q1
        q0=$(server_sample)
        sleep 1
        q1=$(server_sample)
        IDLE_BUSY[$srv,$i]=$(awk -v a="$q0" -v b="$q1" 'BEGIN { split(a, x, " "); split(b, y, " ")
            bu = y[2] - x[2]; id = y[3] - x[3]; printf "%.1f%%", (bu + id > 0 ? 100 * bu / (bu + id) : 0) }')
        log "$srv: busy share during 1 s with no load after it: ${IDLE_BUSY[$srv,$i]}"
    fi
}

run_server() { # name
    local srv=$1 i
    case $srv in
    nginx) start_nginx ;;
    haproxy) start_haproxy ;;
    tern) start_tern 1 || { log "tern: tern-dataplane has no TLS listener yet (--config): skipped"; return 0; } ;;
    esac
    for i in "${!CASES[@]}"; do
        [[ "${CASES[$i]%%|*}" == *"$only"* ]] || continue
        run_case "$srv" "$i"
    done
    stop_server
}

# ---- floors (core 0, where the servers run) ---------------------------
log "floors: tls_bench in memory ($INMEM_ITERS rounds) and openssl speed, on core 0"
# tls_bench wants its own PKI layout (tests/unit/tls/mkpki.sh).
mkdir -p "$W/tlspki"
sh "$src/tests/unit/tls/mkpki.sh" "$W/tlspki" >/dev/null
TLS_BENCH_NO_SCALING=1 TLS_BENCH_MODES=3 taskset -c 0 "$TLS_BENCH" "$W/tlspki" "$INMEM_ITERS" \
    >"$W/inmem.txt" 2>&1 || { cat "$W/inmem.txt"; fail "tls_bench failed"; }
declare -A FLOOR INMEM TUNED
# Rows: 3 words of case name, floor, then each column's value with "(N.NNx)"
# after it unless the floor is 0.
while read -r k fl om tu; do
    FLOOR[$k]=$fl INMEM[$k]=$om TUNED[$k]=$tu
done < <(awk '
    /^TLS1\.[23] (ECDSA|RSA) (full|resumed)/ {
        k = ($2 == "RSA" ? "rsa" : "ec") ($1 == "TLS1.3" ? "13" : "12") ($3 == "resumed" ? "r" : "")
        n = 0
        for (i = 4; i <= NF; i++) if ($i !~ /^\(/) v[n++] = $i
        print k, v[0], v[1], v[2]
    }' "$W/inmem.txt")
speed=$(taskset -c 0 openssl speed -seconds 1 -mr ecdsap256 rsa2048 ecdhx25519 2>/dev/null | grep '^+F')
sp_ec=$(awk -F: '$1=="+F4" && $3==256 { printf "%.1f", 1e6 / $4 }' <<<"$speed")
sp_rsa=$(awk -F: '$1=="+F2" && $3==2048 { printf "%.1f", 1e6 / $4 }' <<<"$speed")
sp_x=$(awk -F: '$1=="+F5" { printf "%.1f", 1e6 / $4 }' <<<"$speed")

# ---- servers --------------------------------------------------------------
in_cli bash -c "exec 3<>/dev/tcp/$K_BE/$BE_PORT" 2>/dev/null || sleep 1
wait_port "$NS_CLI" "$K_BE" "$BE_PORT" || { cat "$W/be/error.log"; fail "backend did not start"; }
# median WORDS...: the median of numbers (the lower middle one when even).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}
ran=()
for ((r = 1; r <= rounds; r++)); do
    [ "$rounds" = 1 ] || log "round $r of $rounds"
    for s in $servers; do
        run_server "$s"
        [ "$r" -gt 1 ] || ran+=("$s")
    done
done
if [ "$rounds" -gt 1 ]; then
    # A case that failed in any round shows the median of the others; the
    # rounds' figures are in the log lines above.
    for k in "${!ALL_RES[@]}"; do
        # shellcheck disable=SC2086
        RES[$k]=$(median ${ALL_RES[$k]})
        # shellcheck disable=SC2086
        RAW[$k]=$(median ${ALL_RAW[$k]})
    done
fi

# Scaling: tern with 2 workers (cores 0 and 1) against 1, TLS1.3 ECDSA full.
# On 2 cores the second worker shares core 1 with hsload and the backend,
# so the ratio says little here; it is printed so that it is not left out.
SCALE=""
if [[ " $servers " == *" tern "* ]] && [[ "${CASES[0]%%|*}" == *"$only"* ]] &&
    tern_tls_supported && [ "$(nproc)" -ge 2 ]; then
    if start_tern 2; then
        run_case tern2 0
        stop_server
        SCALE="tern 2 workers: ${RATE[tern2,0]:-n/a} (${RES[tern2,0]:-n/a} us/hs) vs 1 worker: ${RATE[tern,0]:-n/a}"
    fi
fi

# ---- table -------------------------------------------------------------
echo
echo "bench/edge $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; servers on core 0, hsload + backend on core 1"
echo "openssl speed (core 0): ECDSA P-256 sign $sp_ec us, RSA-2048 sign $sp_rsa us, X25519 derive $sp_x us"
echo "floor = tls_bench in-process: signature + X25519 keygen+derive (TLS1.3 resumed: X25519; TLS1.2 resumed: none)"
echo "inmem = OpenSSL 3.0 defaults in memory (tls_bench 'openssl'); tuned = tls_bench 'tuned'"
echo "server CPU us per handshake (bulk: per MiB)$([ "$rounds" = 1 ] || echo ", median of $rounds rounds"); (x floor, x inmem, x best peer = lower of nginx, HAProxy)"
echo
printf '%-22s%8s%8s%8s' case floor inmem tuned
for s in "${ran[@]}"; do printf '%30s' "$s"; done
echo
for i in "${!CASES[@]}"; do
    [[ "${CASES[$i]%%|*}" == *"$only"* ]] || continue
    IFS='|' read -r name opts per fk <<<"${CASES[$i]}"
    fl=${FLOOR[$fk]:--} im=${INMEM[$fk]:--} tu=${TUNED[$fk]:--}
    printf '%-22s%8s%8s%8s' "$name" "$fl" "$im" "$tu"
    best=""
    for s in "${ran[@]}"; do
        [ "$s" = tern ] && continue # best *peer*: nginx or HAProxy
        v=${RES[$s,$i]:-}
        [[ "$v" =~ ^[0-9.]+$ ]] || continue
        if [ -z "$best" ] || awk -v a="$v" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$v; fi
    done
    for s in "${ran[@]}"; do
        v=${RES[$s,$i]:-n/a}
        if [[ "$v" =~ ^[0-9.]+$ ]]; then
            printf '%30s' "$(awk -v v="$v" -v f="$fl" -v m="$im" -v b="$best" 'BEGIN {
                r = sprintf("%.1f (", v)
                r = r (f ~ /^[0-9.]+$/ && f > 0 ? sprintf("%.2f", v / f) : "-") ", "
                r = r (m ~ /^[0-9.]+$/ && m > 0 ? sprintf("%.2f", v / m) : "-") ", "
                r = r (b != "" ? sprintf("%.2f", v / b) : "-") ")"
                print r }')"
        else
            printf '%30s' "$v"
        fi
    done
    echo
done
echo
if [[ " ${ran[*]} " == *" tern "* ]]; then
    echo "tern, raw busy TSC time per handshake (wall clock of busy iterations, preemption included):"
    for i in "${!CASES[@]}"; do
        [[ "${CASES[$i]%%|*}" == *"$only"* ]] || continue
        IFS='|' read -r name _ <<<"${CASES[$i]}"
        printf '  %-22s %10s   busy share with no load after it: %s\n' "$name" "${RAW[tern,$i]:-n/a}" \
            "${IDLE_BUSY[tern,$i]:-n/a}"
    done
    echo
fi
[ -z "$SCALE" ] || { echo "$SCALE"; echo "  (2 cores: the second worker shares core 1 with hsload and the backend; not a scaling figure)"; echo; }
echo "throughput seen by hsload$([ "$rounds" = 1 ] || echo " in the last round") (client-bound on this machine; not a server capacity);"
echo "resumed cases: the share that resumed (the rest were full handshakes, in the figure too):"
for i in "${!CASES[@]}"; do
    [[ "${CASES[$i]%%|*}" == *"$only"* ]] || continue
    IFS='|' read -r name _ <<<"${CASES[$i]}"
    printf '  %-22s' "$name"
    for s in "${ran[@]}"; do printf '%10s %-28s' "$s" "${RATE[$s,$i]:-n/a}"; done
    echo
done
