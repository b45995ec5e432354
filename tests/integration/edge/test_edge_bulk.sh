#!/usr/bin/env bash
# Bulk data both ways through the TLS filter: 2 MiB per connection sent by a
# Python TLS client while it reads the echo back (the sender outruns the
# receiver, so both directions hit backpressure), checked by SHA-256; then
# 20 concurrent connections of 256 KiB. Two workers on two queues unless
# EDGE_BULK_QUEUES says otherwise.
source "$(dirname "$0")/lib.sh"
export DP_QUEUES=${EDGE_BULK_QUEUES:-2}
edge_init bulk
edge_config
dp_net_up
echo_start
http_start
ctl_start || fail "tern-control did not start"
check "ternctl: ecdsa good" ctl_wait ecdsa state good 30
edge_dp_start
check "staple served" wait_for 10 stapled ecdsa.tern.test
for i in 1 2 3; do
    sum=$(curl_get ecdsa.tern.test /big.bin | sha256sum | cut -d' ' -f1)
    check_eq "curl --cert-status: 300 kB file intact through TLS ($i)" "$sum" \
        "$(sha256sum <"$W/www/big.bin" | cut -d' ' -f1)"
done

out=$(tls_echo ecdsa.tern.test 2097152 3)
check "3 x 2 MiB echoed through TLS, SHA-256 equal" grep -q "SHA-256 equal" <<<"$out"
log "$out"
pids=()
for i in $(seq 20); do
    tls_echo rsa.tern.test 262144 1 >"$W/conc-$i.out" 2>&1 &
    pids+=($!)
done
okc=0
for i in $(seq 20); do
    if wait "${pids[$((i - 1))]}" && grep -q "SHA-256 equal" "$W/conc-$i.out"; then
        okc=$((okc + 1))
    else
        log "concurrent echo $i failed: $(tail -n 3 "$W/conc-$i.out")"
    fi
done
check_eq "20 concurrent 256 KiB echoes intact" "$okc" 20
check "bytes counted both ways" test "$(stat_of proxy_bytes_to_client)" -ge $((3 * 2097152 + 20 * 262144))
check "no TLS failure" test "$(stat_of tls_handshakes_failed)" -eq 0
check "dataplane alive" dp_alive
check "every TLS state and proxy pair released once clients are gone" wait_for 10 all_released

# Per-listener TLS settings (lib.sh: the echo listener is TLS 1.3 only,
# ChaCha20 first, without tickets, rsa by default; https keeps its own).
# echo_s_client ARGS...: a line to the echo listener, then a second's wait
# so that the echo and any ticket (sent right after the handshake) are in.
echo_s_client() {
    (printf 'ping-%s\n' "$TAG"; sleep 1) |
        in_cli timeout 10 openssl s_client -connect "$DP_ADDR:$ECHO_TLS_PORT" \
            -CAfile "$PKI/root.pem" "$@" 2>&1
}
out=$(echo_s_client -tls1_2 -servername ecdsa.tern.test || true)
check "echo listener refuses TLS 1.2" grep -q "alert protocol version" <<<"$out"
out=$(s_client ecdsa.tern.test -tls1_2)
check "https listener still takes TLS 1.2" grep -q "Protocol *: TLSv1.2" <<<"$out"
out=$(echo_s_client -noservername)
check "echo listener: the echo came back" grep -q "^ping-$TAG" <<<"$out"
check "echo listener: its own default certificate (rsa) without SNI" \
    grep -q "subject=.*CN *= *rsa.tern.test" <<<"$out"
check "echo listener: ChaCha20 first" grep -q "TLS_CHACHA20_POLY1305_SHA256" <<<"$out"
check "echo listener: no session ticket" bash -c '! grep -q "TLS session ticket:" <<<"$1"' _ "$out"
out=$(s_client ecdsa.tern.test)
check "https listener: AES-128-GCM first and a session ticket" \
    bash -c 'grep -q "TLS_AES_128_GCM_SHA256" <<<"$1" && grep -q "TLS session ticket:" <<<"$1"' _ "$out"
out=$(in_cli timeout 10 openssl s_client -connect "$DP_ADDR:$TLS_PORT" -noservername </dev/null 2>&1 || true)
check "https listener: ecdsa without SNI" grep -q "subject=.*CN *= *ecdsa.tern.test" <<<"$out"
check "dataplane alive after the refused handshake" dp_alive
dp_stats | jq -c 'with_entries(select(.key | startswith("tls_stream") or startswith("proxy")) | select(.value != 0))'
check_done
