#!/usr/bin/env bash
# Real TLS clients through tern-dataplane (net_af_xdp, 2 workers, 2 queues)
# to real backends, staples from the table tern-control keeps:
#   - the dataplane starts before tern-control: no table yet, handshakes go
#     unstapled (counted), the must-staple certificate is refused; the table
#     is attached within seconds of tern-control creating it;
#   - openssl s_client -status in TLS 1.2 and 1.3, curl --cert-status,
#     gnutls-cli --ocsp (its staple compared byte for byte with the table's);
#   - ECDSA and RSA certificates chosen by SNI, the default for an unknown
#     name; ALPN; ticket resumption (TLS 1.2 and 1.3) on both cores.
# Bulk transfer both ways is test_edge_bulk.sh.
source "$(dirname "$0")/lib.sh"
edge_init clients
edge_config
dp_net_up
http_start

log "configuration refused: clear error, exit 1"
# dp_bad's runs leave DPDK's runtime folder for their own file prefix; the
# lib's cleanup removes only the folder of $FILE_PREFIX.
clients_cleanup() {
    edge_cleanup
    rm -rf "/var/run/dpdk/${FILE_PREFIX}bad"
}
trap clients_cleanup EXIT
dp_bad() { # YAML-file -> tern-dataplane's exit status and message
    ip netns exec "$NS_DP" "$TERN_DATAPLANE" -l 0 --no-pci --no-huge -m 128 \
        --file-prefix="${FILE_PREFIX}bad" --log-level=lib.eal:error -- \
        --addr "$DP_ADDR/24" --config "$1" >"$W/bad.out" 2>&1
}
sed 's/^  flows_per_worker: 4096$/  flows_per_worker: 4096\n  bogus_key: 1/' "$CFG" >"$W/bad1.yaml"
dp_bad "$W/bad1.yaml"; rc=$?
check_eq "unknown key: exit 1" "$rc" 1
check "unknown key: file:line:column in the message" grep -q "bad1.yaml:[0-9]*:[0-9]*:.*bogus_key" "$W/bad.out"
sed "s/^    servers: \[$BE_ADDR:$BE_PORT\]$/    servers: [\"[2001:db8::1]:80\"]/" "$CFG" >"$W/bad2.yaml"
dp_bad "$W/bad2.yaml"; rc=$?
check_eq "IPv6 backend: exit 1" "$rc" 1
check "IPv6 backend: says IPv4 only" grep -q "only IPv4" "$W/bad.out"
sed '/name: echo$/,/^backends:/ s/ticket_rotation: 1h/ticket_rotation: 2h/' "$CFG" >"$W/bad3.yaml"
dp_bad "$W/bad3.yaml"; rc=$?
check_eq "listeners with different ticket rotations: exit 1" "$rc" 1
check "different ticket rotations: names the listener and why" \
    grep -q "listener 'echo': tls.ticket_key_file and tls.ticket_rotation must be those of listener 'https'" "$W/bad.out"

log "dataplane first, no staple table yet"
edge_dp_start
out=$(s_client ecdsa.tern.test -tls1_3)
check "no table: TLS 1.3 handshake and the backend's answer" \
    grep -q "hello from the backend $TAG" <<<"$out"
check "no table: no staple sent" grep -q "OCSP response: no response sent" <<<"$out"
out=$(s_client muststaple.tern.test -tls1_3)
check "no table: must-staple certificate refused" \
    refuses grep -q "hello from the backend" <<<"$out"
check "counted: unstapled_no_table" test "$(stat_of tls_unstapled_no_table)" -ge 1
check "counted: unstapled_handshake_refused" \
    test "$(stat_of tls_unstapled_handshake_refused)" -ge 1

log "tern-control creates the table and fetches the staples"
ctl_start || fail "tern-control did not start"
for c in ecdsa rsa muststaple dualrsa; do
    check "ternctl: $c good" ctl_wait "$c" state good 30
done
check "dataplane attached the table and staples" wait_for 10 stapled ecdsa.tern.test
check "dataplane said it attached the table" grep -q "staple table .* attached" "$WORKDIR/dp.log"

for v in 1_2 1_3; do
    out=$(s_client ecdsa.tern.test -tls$v)
    check "s_client TLS ${v/_/.} ECDSA: OCSP response successful" \
        grep -q "OCSP Response Status: successful" <<<"$out"
    check "s_client TLS ${v/_/.} ECDSA: cert status good" grep -q "Cert Status: good" <<<"$out"
    check "s_client TLS ${v/_/.} ECDSA: protocol" grep -q "Protocol *: TLSv${v/_/.}" <<<"$out"
    check "s_client TLS ${v/_/.} ECDSA: P-256 key" grep -q "Server public key is 256 bit" <<<"$out"
    check "s_client TLS ${v/_/.} ECDSA: backend's answer" \
        grep -q "hello from the backend $TAG" <<<"$out"
    out=$(s_client rsa.tern.test -tls$v)
    check "s_client TLS ${v/_/.} RSA by SNI: 2048-bit key, stapled" \
        bash -c 'grep -q "Server public key is 2048 bit" <<<"$1" && grep -q "Cert Status: good" <<<"$1"' _ "$out"
done
# One name, two certificates: the RSA one for a client that accepts only
# RSA signatures, each with its own staple.
out=$(s_client ecdsa.tern.test -tls1_3 -sigalgs "rsa_pss_rsae_sha256:rsa_pkcs1_sha256")
check "same name, RSA-only client (TLS 1.3): RSA certificate, stapled" \
    bash -c 'grep -q "Server public key is 2048 bit" <<<"$1" && grep -q "Cert Status: good" <<<"$1"' _ "$out"
out=$(s_client ecdsa.tern.test -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256)
check "same name, RSA-only client (TLS 1.2): RSA certificate, stapled" \
    bash -c 'grep -q "Server public key is 2048 bit" <<<"$1" && grep -q "Cert Status: good" <<<"$1"' _ "$out"
out=$(s_client muststaple.tern.test)
check "must-staple certificate served with its staple" \
    bash -c 'grep -q "Cert Status: good" <<<"$1" && grep -q "hello from the backend" <<<"$1"' _ "$out"
out=$(s_client unknown-name.example -noservername 2>&1; s_client unknown-name.example)
check "unknown SNI: default certificate (ECDSA), stapled" \
    bash -c 'grep -q "Server public key is 256 bit" <<<"$1" && grep -q "Cert Status: good" <<<"$1"' _ "$out"

body=$(in_cli timeout 10 curl -sS "http://$DP_ADDR:$VIP_PORT/hello.txt")
check_eq "plaintext listener (--listen) beside the TLS ones" "$body" "hello from the backend $TAG"
body=$(curl_get ecdsa.tern.test /hello.txt)
check_eq "curl --cert-status ECDSA: body" "$body" "hello from the backend $TAG"
body=$(curl_get rsa.tern.test /hello.txt)
check_eq "curl --cert-status RSA: body" "$body" "hello from the backend $TAG"

for leaf in ecdsa rsa; do
    check "gnutls-cli --ocsp $leaf: staple received" gnutls_staple "$leaf.tern.test" "$W/gnutls-$leaf.der"
    check "gnutls-cli --ocsp $leaf: verified" grep -q "OCSP.*valid\|Handshake was completed" "$W/gnutls.out"
    table_der "$leaf" "$W/table-$leaf.der"
    check "gnutls-cli $leaf: staple bytes equal the table's" cmp -s "$W/gnutls-$leaf.der" "$W/table-$leaf.der"
done

out=$(s_client ecdsa.tern.test -alpn h2)
check "ALPN: h2 chosen" grep -q "ALPN protocol: h2" <<<"$out"
out=$(s_client ecdsa.tern.test -alpn foo,http/1.1)
check "ALPN: http/1.1 chosen" grep -q "ALPN protocol: http/1.1" <<<"$out"

# Resumption: one full handshake writes the session, then every later
# connection (new source port: either core) resumes it.
for v in 1_2 1_3; do
    rm -f "$W/sess"
    s_client ecdsa.tern.test -tls$v -sess_out "$W/sess" >/dev/null
    reused=0
    for i in $(seq 12); do
        s_client ecdsa.tern.test -tls$v -sess_in "$W/sess" | grep -q "^Reused, TLSv${v/_/.}" &&
            reused=$((reused + 1))
    done
    check_eq "TLS ${v/_/.}: 12 of 12 connections resumed" "$reused" 12
done
sleep 0.1
r0=$(core_stat 0 tls_handshakes_resumed_tls1_3); r1=$(core_stat 1 tls_handshakes_resumed_tls1_3)
s0=$(core_stat 0 tls_handshakes_resumed_tls1_2); s1=$(core_stat 1 tls_handshakes_resumed_tls1_2)
log "resumed TLS 1.3 per core: $r0 $r1; TLS 1.2: $s0 $s1"
check "resumption on both cores (tickets shared)" test $((r0 + s0)) -gt 0 -a $((r1 + s1)) -gt 0
check "counted: tickets_accepted" test "$(stat_of tls_tickets_accepted)" -ge 24

check "counted: staple_sent" test "$(stat_of tls_staple_sent)" -ge 10
check "counted: full handshakes TLS 1.2" test "$(stat_of tls_handshakes_full_tls1_2)" -ge 2
check "counted: full handshakes TLS 1.3" test "$(stat_of tls_handshakes_full_tls1_3)" -ge 4
check "dataplane alive" dp_alive
check "every TLS state and proxy pair released once clients are gone" wait_for 10 all_released
dp_stats | jq -c 'with_entries(select(.key | startswith("tls")) | select(.value != 0))'
check_done
