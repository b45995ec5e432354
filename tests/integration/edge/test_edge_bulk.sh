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
dp_stats | jq -c 'with_entries(select(.key | startswith("tls_stream") or startswith("proxy")) | select(.value != 0))'
check_done
