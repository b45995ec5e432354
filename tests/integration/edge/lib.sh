# Shared by the end-to-end TLS tests (sourced, bash): real clients in a
# namespace -> tern-dataplane (DPDK net_af_xdp over a veth, 2 workers, 2
# queues) terminating TLS with staples from the shared table -> a real HTTP
# backend; tern-control keeps the table fresh from a real `openssl ocsp`.
#
# Builds on tests/integration/dataplane/lib.sh (namespaces, dp_start,
# telemetry) and tests/integration/control/lib.sh (PKI, tern-control,
# ternctl, table helpers). Everything is named with this run's PID; one
# trap ends every process we started, by PID, and removes the namespaces.
#
# Needs: root, TERN_DATAPLANE TERN_CONTROL TERNCTL STAPLE_DUMP STAPLE_PUT,
# openssl, curl, gnutls-cli, python3 (+cryptography), jq, ethtool.

EDGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$EDGE_DIR/../dataplane/lib.sh"
set +e # check.sh counts failures itself
. "$EDGE_DIR/../control/lib.sh"
set -u -o pipefail

TLS_PORT=443
BE_PORT=8080
ECHO_TLS_PORT=8443
ECHO_PORT=8081
HTTP_PIDS=()

edge_cleanup() {
    local p
    for p in "${HTTP_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    ctl_cleanup
    dp_cleanup
}

# edge_init NAME: private dirs, the PKI and a responder on a free loopback
# port; sets OCSP_PORT, PKI, W, TABLE, SOCK, CFG.
edge_init() {
    [ "$(id -u)" -eq 0 ] || skip "needs root"
    local t
    for t in TERN_DATAPLANE TERN_CONTROL TERNCTL STAPLE_DUMP STAPLE_PUT; do
        [ -x "${!t:-}" ] || skip "$t not set or not executable"
    done
    for t in openssl curl gnutls-cli jq ethtool python3; do
        command -v "$t" >/dev/null || skip "$t missing"
    done
    ctl_init "$1"
    trap edge_cleanup EXIT
    OCSP_PORT=$(pki_free_port)
    pki_make "$PKI" "$OCSP_PORT" >/dev/null || fail "pki_make"
    # An RSA leaf for the ECDSA leaf's name: the two form one certificate
    # set, chosen by what the client supports (pki.sh's own helpers).
    export PKI_SAN=DNS:ecdsa.tern.test
    _pki_key "$PKI/dualrsa.key" rsa &&
        _pki_issue "$PKI" dualrsa ecdsa.tern.test v3_leaf inter "$PKI/dualrsa.key" 825 &&
        _pki_index_line "$PKI/dualrsa.pem" V >>"$PKI/index.txt" || fail "dual RSA leaf"
    unset PKI_SAN
    cat "$PKI/dualrsa.pem" "$PKI/inter.pem" >"$PKI/dualrsa.chain.pem"
    ctl_ocsp "$PKI" "$OCSP_PORT" --ndays 1 || fail "responder did not start"
    RESPONDER_PID=$OCSP_PID
}

# edge_config: certificates ecdsa, rsa, muststaple (policy must-staple) and
# dualrsa (names from their SANs: <leaf>.tern.test; dualrsa is an RSA leaf
# for ecdsa.tern.test), a TLS listener on $DP_ADDR:443 to the HTTP backend
# and one on :8443 to an echo backend with TLS settings of its own (TLS 1.3
# only, ChaCha20 first, no tickets, rsa by default), the table, small
# dataplane sizes.
edge_config() {
    CTL_CERTS=""
    ctl_cert ecdsa ecdsa
    ctl_cert rsa rsa
    ctl_cert muststaple muststaple "policy: must-staple"
    ctl_cert dualrsa dualrsa
    ctl_write_config
    cat >>"$CFG" <<EOF
listeners:
  - name: https
    address: $DP_ADDR
    port: $TLS_PORT
    backend: web
    alpn: [h2, http/1.1]
    default_certificate: ecdsa
    tls:
      min_version: "1.2"
      tickets: 2
      ticket_rotation: 1h
  - name: echo
    address: $DP_ADDR
    port: $ECHO_TLS_PORT
    backend: echo
    default_certificate: rsa
    tls:
      min_version: "1.3"
      ciphersuites: "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
      tickets: 0
      ticket_rotation: 1h
backends:
  - name: web
    servers: [$BE_ADDR:$BE_PORT]
  - name: echo
    servers: [$BE_ADDR:$ECHO_PORT]
dataplane:
  workers: 2
  mbufs: 8191
  flows_per_worker: 4096
  handshake_timeout: 3s
  idle_timeout: 30s
EOF
}

# HTTP backend in the client namespace: python3's http.server over a folder
# holding hello.txt ("hello from the backend $TAG").
http_start() {
    mkdir -p "$W/www"
    echo "hello from the backend $TAG" >"$W/www/hello.txt"
    head -c 300000 /dev/urandom >"$W/www/big.bin"
    ip netns exec "$NS_CLI" python3 -m http.server --bind "$BE_ADDR" \
        --directory "$W/www" "$BE_PORT" >"$W/http.log" 2>&1 &
    HTTP_PIDS+=($!)
    local i
    for ((i = 0; i < 50; i++)); do
        in_cli python3 -c "import socket; socket.create_connection(('$BE_ADDR', $BE_PORT), 1)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    fail "HTTP backend did not start"
}

# Echo backend (tests/integration/dataplane/echo_server.py) for the
# listener on $ECHO_TLS_PORT.
echo_start() {
    ip netns exec "$NS_CLI" python3 "$DP_LIB_DIR/echo_server.py" "$BE_ADDR" "$ECHO_PORT" \
        >"$W/echo.log" 2>&1 &
    HTTP_PIDS+=($!)
    wait_for 5 grep -q listening "$W/echo.log" || fail "echo backend did not start"
}

# tls_echo SNI SIZE [CONNS]: bytes through TLS to the echo backend and back.
tls_echo() {
    in_cli timeout 150 python3 "$EDGE_DIR/tls_echo_client.py" "$DP_ADDR" "$ECHO_TLS_PORT" \
        "$1" "$PKI/root.pem" "$2" "${3:-1}"
}

# edge_dp_start: tern-dataplane with --config (plus the plaintext :80
# listener dp_start always adds).
edge_dp_start() { dp_start --config "$CFG"; }

edge_dp_stop() {
    [ -n "$DP_PID" ] || return 0
    kill -TERM "$DP_PID" 2>/dev/null
    local i
    for ((i = 0; i < 50; i++)); do kill -0 "$DP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DP_PID" 2>/dev/null
    wait "$DP_PID" 2>/dev/null
    DP_PID=""
    rm -rf "/var/run/dpdk/$FILE_PREFIX"
}

# s_client NAME [openssl s_client args...]: one handshake from the client
# namespace to the VIP with SNI NAME, staple requested, an HTTP request
# sent; prints everything s_client said (and the answer).
s_client() {
    local name=$1
    shift
    printf 'GET /hello.txt HTTP/1.0\r\nHost: %s\r\n\r\n' "$name" |
        in_cli timeout 10 openssl s_client -connect "$DP_ADDR:$TLS_PORT" \
            -servername "$name" -status -CAfile "$PKI/root.pem" -verify_return_error \
            -ign_eof "$@" 2>&1
}

# curl_get NAME PATH [curl args...]: HTTPS through tern, staple required.
curl_get() {
    local name=$1 path=$2
    shift 2
    in_cli timeout 10 curl -sS --cert-status --cacert "$PKI/root.pem" \
        --http1.1 --resolve "$name:$TLS_PORT:$DP_ADDR" "$@" "https://$name$path"
}

# table_der LEAF OUT.der: what the table holds for LEAF (exit 0 found).
table_der() {
    "$STAPLE_DUMP" "$TABLE" "$(pki_key "$PKI/$1.pem")" "$2" >/dev/null 2>&1
}

# gnutls_staple NAME OUT.der: the staple a gnutls-cli handshake received.
gnutls_staple() {
    rm -f "$2"
    in_cli timeout 10 gnutls-cli --ocsp --x509cafile="$PKI/root.pem" \
        --save-ocsp="$2" --port "$TLS_PORT" --sni-hostname "$1" --verify-hostname "$1" "$DP_ADDR" \
        </dev/null >"$W/gnutls.out" 2>&1
    [ -s "$2" ]
}

stat_of() { dp_stat "$1" 2>/dev/null || echo -1; }
core_stat() { # core counter
    python3 "$DP_LIB_DIR/telemetry.py" "$FILE_PREFIX" "/tern/core,$1" "$2" 2>/dev/null || echo -1
}

# wait until the dataplane staples NAME (the table was attached and holds
# a good response): s_client shows "Cert Status: good".
stapled() { s_client "$1" | grep -q "Cert Status: good"; }

# True when no TLS state and no proxy pair is in use (nothing leaked).
all_released() {
    [ "$(stat_of tls_conns)" = 0 ] && [ "$(stat_of proxy_pairs)" = 0 ]
}
