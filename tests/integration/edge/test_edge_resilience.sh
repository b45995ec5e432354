#!/usr/bin/env bash
# Stapling through failures, real clients through tern-dataplane:
#   - tern-dataplane restarted while tern-control runs: it attaches to the
#     table and staples its very first handshake;
#   - tern-control killed (SIGKILL) during a stream of handshakes: every
#     handshake keeps its staple;
#   - the responder down, tern-control restarted and asked to refresh: the
#     last good response keeps being stapled (bytes equal the table's);
#   - a short-lived response (nextUpdate in a few seconds, published with
#     tests/lib staple_put) is stapled until then and never after; the
#     lenient certificate is then served without a staple, the must-staple
#     one refused;
#   - hostile clients: silent (closed at the handshake deadline), plaintext
#     HTTP and garbage on the TLS port (alert, closed at once).
source "$(dirname "$0")/lib.sh"
edge_init resil
edge_config
dp_net_up
http_start
ctl_start || fail "tern-control did not start"
for c in ecdsa rsa muststaple; do
    check "ternctl: $c good" ctl_wait "$c" state good 30
done

log "dataplane started after the table exists"
edge_dp_start
out=$(s_client ecdsa.tern.test)
check "first handshake after start stapled" grep -q "Cert Status: good" <<<"$out"
# Backend connections that the backend closes first (HTTP/1.0) leave their
# 4-tuples in TIME_WAIT on the backend for 60 s. A restarted dataplane that
# reused them with timestamps starting again from 0 was taken for an old
# duplicate (PAWS) and each connection waited a 1 s SYN retransmission.
requests() { # N: N requests through tern, each a new backend connection
    local i ok=0
    for ((i = 0; i < $1; i++)); do
        curl_get ecdsa.tern.test /hello.txt 2>/dev/null | grep -q "hello from the backend" &&
            ok=$((ok + 1))
    done
    echo "$ok"
}
check_eq "30 requests before the restart" "$(requests 30)" 30
log "dataplane restarted"
edge_dp_stop
edge_dp_start
out=$(s_client rsa.tern.test -tls1_2)
check "first handshake after restart stapled (TLS 1.2, RSA)" grep -q "Cert Status: good" <<<"$out"
check "first handshake after restart: backend answered" grep -q "hello from the backend" <<<"$out"
check_eq "restart: no handshake without staple" "$(stat_of tls_unstapled_no_table)" 0
check_eq "30 requests after the restart" "$(requests 30)" 30
check_eq "after the restart, no SYN to a backend had to wait for a retransmission" \
    "$(stat_of tcp_RTO_EXPIRED)" 0

log "tern-control killed during handshakes"
: >"$W/stream.log"
(
    end=$((SECONDS + 8))
    while [ $SECONDS -lt $end ]; do
        if s_client ecdsa.tern.test | grep -q "Cert Status: good"; then
            echo stapled >>"$W/stream.log"
        else
            echo unstapled >>"$W/stream.log"
        fi
    done
) &
stream=$!
sleep 2
ctl_kill9
wait "$stream"
total=$(wc -l <"$W/stream.log")
good=$(grep -c '^stapled' "$W/stream.log")
log "handshakes during the kill: $good of $total stapled"
check "several handshakes ran across the kill" test "$total" -ge 4
check_eq "every handshake across the kill stapled" "$good" "$total"
out=$(s_client muststaple.tern.test)
check "control dead: must-staple still served with its staple" grep -q "Cert Status: good" <<<"$out"

log "responder down, tern-control back, refresh fails"
ocsp_stop "$RESPONDER_PID"
table_der ecdsa "$W/before.der"
ctl_start || fail "tern-control did not restart"
ctl refresh --all >/dev/null 2>&1
sleep 3
check "responder down: staple still sent" gnutls_staple ecdsa.tern.test "$W/down.der"
check "responder down: the last good response (bytes equal)" cmp -s "$W/down.der" "$W/before.der"
out=$(s_client muststaple.tern.test)
check "responder down: must-staple served" grep -q "Cert Status: good" <<<"$out"

log "a short-lived response, then past its nextUpdate"
ctl_kill9 # staple_put needs to be the table's only writer
life=12
for leaf in ecdsa muststaple; do
    python3 "$lib/make_response.py" --issuer "$PKI/inter.pem" --cert "$PKI/$leaf.pem" \
        --signer "$PKI/responder.pem" --signer-key "$PKI/responder.key" \
        --this-update -60 --next-update "$life" "$W/short-$leaf.der" ||
        fail "make_response.py"
    read -r tu nu < <(ocsp_times "$W/short-$leaf.der")
    "$STAPLE_PUT" "$TABLE" "$(pki_key "$PKI/$leaf.pem")" "$W/short-$leaf.der" "$tu" "$nu" ||
        fail "staple_put"
done
check "short-lived response stapled while valid" gnutls_staple ecdsa.tern.test "$W/got-short.der"
[ -s "$W/got-short.der" ] || tail -5 "$W/gnutls.out"
check "  and it is the new one (bytes equal)" cmp -s "$W/got-short.der" "$W/short-ecdsa.der"
expired_before=$(stat_of tls_unstapled_expired)
refused_before=$(stat_of tls_unstapled_handshake_refused)
now=$(date +%s)
[ "$nu" -gt "$now" ] && sleep $((nu - now + 2))
out=$(s_client ecdsa.tern.test)
check "past nextUpdate: no staple sent" grep -q "OCSP response: no response sent" <<<"$out"
check "past nextUpdate: lenient certificate still served" grep -q "hello from the backend" <<<"$out"
check "past nextUpdate: gnutls-cli gets no staple" refuses gnutls_staple ecdsa.tern.test "$W/late.der"
out=$(s_client muststaple.tern.test)
check "past nextUpdate: must-staple refused" refuses grep -q "hello from the backend" <<<"$out"
check "counted: unstapled_expired" test "$(stat_of tls_unstapled_expired)" -gt "$expired_before"
check "counted: refused" test "$(stat_of tls_unstapled_handshake_refused)" -gt "$refused_before"
log "hostile clients: silent, plaintext, garbage"
cat >"$W/hostile.py" <<'PY'
import socket, sys, time
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((addr, port), timeout=15)
if mode == "plain":
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
elif mode == "garbage":
    s.sendall(bytes(range(256)) * 8)
elif mode == "badhello":
    # a handshake record holding a ClientHello of nonsense
    body = bytes([1, 0, 0, 60]) + bytes(range(7, 67))
    s.sendall(bytes([22, 3, 1, 0, len(body)]) + body)
t0 = time.monotonic()
data = b""
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
except (ConnectionResetError, socket.timeout) as e:
    data += b"<%s>" % type(e).__name__.encode()
# a TLS alert record is content type 21
print("closed after %.1f s, %d bytes, alert=%s" % (time.monotonic() - t0, len(data), data[:1] == b"\x15"))
PY
timeouts_before=$(stat_of tls_stream_timeouts)
out=$(in_cli timeout 20 python3 "$W/hostile.py" "$DP_ADDR" "$TLS_PORT" silent)
log "silent client: $out"
check "silent client closed by the handshake deadline (3 s)" grep -q "closed after [3-6]\." <<<"$out"
check "counted: handshake timeout" test "$(stat_of tls_stream_timeouts)" -gt "$timeouts_before"
# OpenSSL sends no alert to plaintext HTTP or a non-TLS first record
# (SSL_R_HTTP_REQUEST, wrong version): closed at once is what is checked.
failed_before=$(stat_of tls_handshakes_failed)
for mode in plain garbage; do
    out=$(in_cli timeout 20 python3 "$W/hostile.py" "$DP_ADDR" "$TLS_PORT" "$mode")
    log "$mode client: $out"
    check "$mode bytes: connection closed at once" grep -q "closed after 0\." <<<"$out"
done
out=$(in_cli timeout 20 python3 "$W/hostile.py" "$DP_ADDR" "$TLS_PORT" badhello)
log "bad ClientHello: $out"
check "bad ClientHello: alert sent, connection closed at once" \
    grep -q "closed after 0\..*alert=True" <<<"$out"
check "counted: 3 failed handshakes" test "$(stat_of tls_handshakes_failed)" -ge $((failed_before + 3))
out=$(s_client ecdsa.tern.test)
check "after hostile clients: handshakes still served" grep -q "hello from the backend" <<<"$out"
check "dataplane alive" dp_alive
check "every TLS state and proxy pair released once clients are gone" wait_for 10 all_released
dp_stats | jq -c 'with_entries(select(.key | startswith("tls")) | select(.value != 0))'
check_done
