#!/usr/bin/env bash
# Real clients against tern's tls_conn over loopback (tls_testsrv): the
# staple reaches openssl s_client (TLS 1.2 and 1.3, ECDSA and RSA), curl
# --cert-status and gnutls-cli; expired staples are not sent; Must-Staple
# without a staple is refused; SNI, ALPN and ticket resumption.
#
#   test_tls_clients.sh TLS_TESTSRV MKPKI_SH
set -uo pipefail
srv_bin=$1 mkpki=$2
work=$(mktemp -d "/tmp/tern-tls-it-$$-XXXXXX")
srv_pid=
cleanup() {
    if [ -n "$srv_pid" ]; then kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
[ -n "${TERN_TLS_IT_KEEP:-}" ] && trap - EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); echo "ok   $1"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL $1"; }
check() { # name, command...
    local name=$1; shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

sh "$mkpki" "$work" || { echo "mkpki failed"; exit 1; }
"$srv_bin" "$work" "$work/port" 60 > "$work/srv.out" 2> "$work/srv.err" &
srv_pid=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null)
[ -n "$port" ] || { echo "server did not start"; cat "$work/srv.err"; exit 1; }
ca=$work/ca.pem

# The serial number the staple speaks about, as openssl prints it.
serial_of() { openssl x509 -in "$work/$1.leaf.pem" -noout -serial | sed 's/serial=//'; }

s_client() { # out-file, args...
    local out=$1; shift
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -CAfile "$ca" \
        -verify_return_error "$@" < /dev/null > "$out" 2>&1
}
# The same with a request, reading until the server closes: the client then
# has the TLS 1.3 tickets, which arrive after the handshake.
s_client_req() { # out-file, args...
    local out=$1; shift
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
        -CAfile "$ca" -verify_return_error -ign_eof "$@" > "$out" 2>&1
}

for v in tls1_2 tls1_3; do
    for kt in ec rsa; do
        o=$work/s_${v}_$kt.out
        if [ $kt = rsa ]; then sig="-sigalgs rsa_pss_rsae_sha256:rsa_pkcs1_sha256"; else sig="-sigalgs ecdsa_secp256r1_sha256"; fi
        # shellcheck disable=SC2086
        s_client "$o" -$v -servername www.example.test -status $sig
        check "s_client $v $kt: verified" grep -q "Verify return code: 0 (ok)" "$o"
        check "s_client $v $kt: staple received and good" \
            sh -c "grep -q 'OCSP Response Status: successful' '$o' && grep -q 'Cert Status: good' '$o'"
        check "s_client $v $kt: staple is for the $kt leaf" \
            grep -qi "Serial Number: $(serial_of www-$kt)" "$o"
        want=$([ $v = tls1_3 ] && echo TLSv1.3 || echo TLSv1.2)
        check "s_client $v $kt: protocol" grep -q "^New, $want," "$o"
    done
done

# Expired staple (published with nextUpdate in the past): none sent.
o=$work/wild.out
s_client "$o" -servername a.wild.test -status
check "expired staple not sent (wildcard name verified)" \
    sh -c "grep -q 'OCSP response: no response sent' '$o' && grep -q 'Verify return code: 0 (ok)' '$o'"
# No staple published: none sent, handshake fine.
o=$work/default.out
s_client "$o" -servername default.test -status
check "absent staple: none sent" grep -q "OCSP response: no response sent" "$o"
# Must-Staple, strict policy, nothing published: refused.
o=$work/strict.out
s_client "$o" -servername strict.test -status
check "must-staple without staple refused" \
    sh -c "grep -q 'no peer certificate available' '$o' && grep -qi 'alert' '$o'"
# Unknown name: the default certificate.
o=$work/unknown.out
s_client "$o" -servername nosuch.test -verify_return_error
check "unknown SNI gets the default certificate" grep -q "subject=CN = default.test" "$o"
# ALPN.
o=$work/alpn.out
s_client "$o" -servername www.example.test -alpn h2,http/1.1
check "ALPN http/1.1 selected" grep -q "ALPN protocol: http/1.1" "$o"
# Ticket resumption (TLS 1.3 and 1.2).
for v in tls1_3 tls1_2; do
    o=$work/sess_$v.out
    s_client_req "$o" -$v -servername www.example.test -sess_out "$work/sess_$v"
    check "s_client $v gets the answer" grep -q "hello from tern" "$o"
    s_client "$o.2" -$v -servername www.example.test -sess_in "$work/sess_$v"
    check "s_client $v resumption (on the other worker)" grep -q "^Reused," "$o.2"
done

# curl checks the staple itself (--cert-status): signature, status, freshness.
if command -v curl > /dev/null; then
    out=$(timeout 10 curl -sS --cert-status --cacert "$ca" \
        --resolve "www.example.test:$port:127.0.0.1" "https://www.example.test:$port/" 2>&1)
    check "curl --cert-status gets the body" test "$out" = "hello from tern"
    out=$(timeout 10 curl -sS --cert-status --cacert "$ca" \
        --resolve "default.test:$port:127.0.0.1" "https://default.test:$port/" 2>&1)
    check "curl --cert-status refuses a handshake without staple" \
        grep -q "No OCSP response received" <<< "$out"
else
    echo "skip curl: not installed"
fi

# gnutls-cli --ocsp: with a valid staple it trusts the certificate without
# contacting the responder (whose URL, 127.0.0.1:1, answers nothing); with
# an expired one withheld it has to go to the responder.
if command -v gnutls-cli > /dev/null; then
    gtls() { echo | timeout 10 gnutls-cli --x509cafile "$ca" --port "$port" \
        --sni-hostname "$1" --verify-hostname "$1" --ocsp 127.0.0.1 2>&1; }
    o=$work/gnutls.out
    gtls www.example.test > "$o"
    check "gnutls-cli --ocsp: stapled response received" grep -q "Options: OCSP status request" "$o"
    check "gnutls-cli --ocsp: responder not needed" sh -c "! grep -q 'Connecting to OCSP server' '$o'"
    check "gnutls-cli --ocsp: certificate trusted, answer received" \
        sh -c "grep -q 'certificate is trusted' '$o' && grep -q 'hello from tern' '$o'"
    gtls a.wild.test > "$o.wild"
    check "gnutls-cli --ocsp: expired staple withheld" grep -q "Connecting to OCSP server" "$o.wild"
else
    echo "skip gnutls-cli: not installed"
fi

kill "$srv_pid"; wait "$srv_pid"; srv_pid=
echo "--- server counters"; cat "$work/srv.out"
check "server counted stapled handshakes" grep -q '^staple_sent [1-9]' "$work/srv.out"
check "server counted the expired staple" grep -q '^unstapled_expired [1-9]' "$work/srv.out"
check "server counted the must-staple refusal" grep -q '^unstapled_handshake_refused [1-9]' "$work/srv.out"
# Each resumed connection followed its session's first connection, which the
# server gave to the other worker.
cross=$(awk '$1 == "conn" { w[$2] = $4; if ($6 == 1 && ($2 - 1) in w && w[$2 - 1] != $4) n++ }
             END { print n + 0 }' "$work/srv.err")
check "sessions resumed on the other worker ($cross of 2)" test "$cross" -eq 2
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
