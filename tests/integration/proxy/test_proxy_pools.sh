#!/usr/bin/env bash
# Backend pools, health checks and the PROXY v2 header, end to end: a real
# TLS client (python3 ssl) in a namespace -> tern-dataplane (net_af_xdp
# over a veth, DP_QUEUES workers, default 1) -> python3 backends that name
# themselves and parse the PROXY v2 header on their own:
#   - round robin over two servers spreads sequential connections evenly;
#   - least-conn: with connections held open, the server whose connections
#     ended gets the next ones;
#   - a killed server is marked down by the active checks and gets no more
#     connections, every connection still succeeds on the other; with both
#     down clients are refused and counted; a restarted server comes back;
#   - the PROXY v2 header carries the client's address and port, the VIP,
#     and over TLS 1.3 and 1.2 the SNI, ALPN, version and cipher the client
#     negotiated.
# Round robin: with one worker the spread is exact; with more (each core
# has its own cursor) the check allows one connection per core. Least-conn
# counts every core's connections (shared counts): exact with any number.
source "$(dirname "$0")/../edge/lib.sh"
PX_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DP_QUEUES=${DP_QUEUES:-1}
NW=$DP_QUEUES
edge_init pools
RR_PORT=7001 LC_PORT=7002 PP_PORT=7003
BE_A=9001 BE_B=9002 BE_PP=9003
SNI=ecdsa.tern.test

CTL_CERTS=""
ctl_cert ecdsa ecdsa
ctl_write_config
cat >>"$CFG" <<YAML
listeners:
  - name: rr
    address: $DP_ADDR
    port: $RR_PORT
    backend: two-rr
  - name: lc
    address: $DP_ADDR
    port: $LC_PORT
    backend: two-lc
  - name: pp
    address: $DP_ADDR
    port: $PP_PORT
    backend: pp
    alpn: [h2, http/1.1]
    proxy_protocol: true
backends:
  - name: two-rr
    balance: round-robin
    servers: [$BE_ADDR:$BE_A, $BE_ADDR:$BE_B]
    health_check: {interval: 200ms, timeout: 100ms}
  - name: two-lc
    balance: least-conn
    servers: [$BE_ADDR:$BE_A, $BE_ADDR:$BE_B]
    health_check: {interval: 200ms, timeout: 100ms}
  - name: pp
    servers: [$BE_ADDR:$BE_PP]
dataplane:
  workers: $NW
  mbufs: 8191
  flows_per_worker: 4096
  handshake_timeout: 3s
  idle_timeout: 30s
YAML

declare -A BE_PID
be_up() { # name port [--pp2]
    ip netns exec "$NS_CLI" python3 "$PX_DIR/pp_backend.py" "$BE_ADDR" "$2" "$1" "${@:3}" \
        >"$W/be-$1.log" 2>&1 &
    BE_PID[$1]=$!
    HTTP_PIDS+=($!)
    wait_for 5 grep -q listening "$W/be-$1.log" || fail "backend $1 did not start"
}
be_down() { # name
    kill "${BE_PID[$1]}" 2>/dev/null
    wait "${BE_PID[$1]}" 2>/dev/null
}
client() { # port mode [args...]
    in_cli timeout 60 python3 "$PX_DIR/pp_client.py" "$DP_ADDR" "$1" "$SNI" "$PKI/root.pem" "${@:2}"
}
jget() { jq -r "$1" <<<"$2"; }
# all_to PORT NAME N: N sequential connections, every one answered by NAME
all_to() {
    local out
    out=$(client "$1" seq --conns "$3")
    [ "$(jget ".counts[\"$2\"] // 0" "$out")" = "$3" ] && [ "$(jget .errors "$out")" = 0 ]
}

dp_net_up
be_up a $BE_A
be_up b $BE_B
be_up pp $BE_PP --pp2
edge_dp_start

# backend_state POOL PORT [changes]: what /tern/backends says of a server
# (telemetry names: '-', '.' and ':' become '_').
backend_state() {
    local key
    key=$(printf '%s/%s_%s' "$1" "$BE_ADDR" "$2" | tr -- '-.:' '___')
    [ "${3:-}" = changes ] && key="$key/changes"
    python3 "$DP_LIB_DIR/telemetry.py" "$FILE_PREFIX" /tern/backends |
        jq -r --arg k "$key" '.[$k]'
}
check_eq "telemetry: a checked server is up" "$(backend_state two-rr $BE_B)" up
check_eq "telemetry: the pp pool, checked by default (5 s), is up" "$(backend_state pp $BE_PP)" up

log "round robin: 20 sequential connections over two servers"
out=$(client $RR_PORT seq --conns 20)
log "$out"
na=$(jget '.counts.a // 0' "$out") nb=$(jget '.counts.b // 0' "$out")
check_eq "rr: no connection failed" "$(jget .errors "$out")" 0
check "rr: spread evenly (a $na, b $nb, within $NW)" \
    test $((na > nb ? na - nb : nb - na)) -le "$NW" -a $((na + nb)) -eq 20

log "least-conn: hold 4, end b's, then 2 more"
out=$(client $LC_PORT lc --conns 4 --drop b --more 2)
log "$out"
check_eq "lc: no connection failed" "$(jget .errors "$out")" 0
fa=$(jget '.first.a // 0' "$out") fb=$(jget '.first.b // 0' "$out")
check "lc: held connections spread (a $fa, b $fb)" test "$fa" -eq 2 -a "$fb" -eq 2
ab=$(jget '.after.b // 0' "$out")
# b holds 0 against a's 2, over every core, so both new ones go to b
# (round robin would have given one each)
check_eq "lc: the emptied server takes the new connections" "$ab" 2

log "health: b killed"
be_down b
check "checks mark b down: every connection goes to a" wait_for 10 all_to $RR_PORT a 10
check "least-conn pool too" all_to $LC_PORT a 6
check_eq "telemetry: b down" "$(backend_state two-rr $BE_B)" down
check_eq "telemetry: a still up" "$(backend_state two-rr $BE_A)" up
check_eq "telemetry: b changed state once" "$(backend_state two-rr $BE_B changes)" 1
out=$(client $RR_PORT seq --conns 10)
check_eq "no client sees b's absence" "$(jget .errors "$out")" 0

log "health: a killed as well"
be_down a
one_fails() {
    local o
    o=$(client $RR_PORT seq --conns 1 --timeout 3)
    [ "$(jget .errors "$o")" = 1 ]
}
check "a's connections fail once it is gone" wait_for 10 one_fails
sleep 1 # a's checks fail too: from now on refused at accept
refused0=$(stat_of proxy_refused_down)
out=$(client $RR_PORT seq --conns 5 --timeout 3)
check_eq "all down: every client refused" "$(jget .errors "$out")" 5
check "all down: refusals counted (proxy_refused_down)" \
    test "$(stat_of proxy_refused_down)" -ge $((refused0 + 5))
check "dataplane alive" dp_alive

log "health: b back"
be_up b $BE_B
check "b comes back after its rise checks" wait_for 10 all_to $RR_PORT b 4
check_eq "telemetry: b up again" "$(backend_state two-rr $BE_B)" up

log "PROXY v2 over TLS 1.3 with ALPN h2"
out=$(client $PP_PORT one --alpn h2 --tls 1.3)
log "$out"
local_addr=$(jget .local "$out")
check_eq "pp2: client address" "$(jget .answer.pp2.src "$out")" "${local_addr%:*}"
check_eq "pp2: client port" "$(jget .answer.pp2.sport "$out")" "${local_addr#*:}"
check_eq "pp2: VIP" "$(jget .answer.pp2.dst "$out")" "$DP_ADDR"
check_eq "pp2: VIP port" "$(jget .answer.pp2.dport "$out")" "$PP_PORT"
check_eq "pp2: the backend's peer is tern, not the client" \
    "$(jget .answer.peer "$out" | cut -d: -f1)" "$DP_ADDR"
check_eq "pp2: SNI as AUTHORITY" "$(jget .answer.pp2.authority "$out")" "$SNI"
check_eq "pp2: ALPN" "$(jget .answer.pp2.alpn "$out")" h2
check_eq "pp2: client negotiated h2" "$(jget .alpn "$out")" h2
check_eq "pp2: SSL client flag" "$(jget .answer.pp2.ssl_client "$out")" 1
check_eq "pp2: SSL version" "$(jget .answer.pp2.ssl_version "$out")" TLSv1.3
check_eq "pp2: SSL cipher is the one negotiated" \
    "$(jget .answer.pp2.ssl_cipher "$out")" "$(jget .cipher "$out")"

log "PROXY v2 over TLS 1.2 with ALPN http/1.1"
out=$(client $PP_PORT one --alpn http/1.1 --tls 1.2)
log "$out"
check_eq "pp2 1.2: SSL version" "$(jget .answer.pp2.ssl_version "$out")" TLSv1.2
check_eq "pp2 1.2: ALPN" "$(jget .answer.pp2.alpn "$out")" http/1.1
check_eq "pp2 1.2: SSL cipher" "$(jget .answer.pp2.ssl_cipher "$out")" "$(jget .cipher "$out")"
check_eq "pp2 1.2: SNI" "$(jget .answer.pp2.authority "$out")" "$SNI"
out=$(client $PP_PORT seq --conns 20)
check_eq "pp2: 20 more connections, all with a good header" "$(jget .errors "$out")" 0
check "pp2: headers counted (proxy_proxy_headers)" test "$(stat_of proxy_proxy_headers)" -ge 22
check_eq "pp2: the backend never saw a bad header" \
    "$(grep -c BADPP "$W/be-pp.log" || true)" 0
check "dataplane alive" dp_alive
dp_stats | jq -c 'with_entries(select(.key | startswith("proxy")) | select(.value != 0))'
check_done
