#!/usr/bin/env bash
# The misbehaving-responder fixtures are what they claim: each crafted
# response fails (or passes) openssl's own checks for the stated reason, and
# each fake_responder.py mode answers as documented, exits at its lifetime and
# on SIGTERM.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib/pki.sh"
. "$here/../../lib/fake.sh"
. "$here/../../lib/crafted.sh"
. "$here/../../lib/check.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-misbehave.$$.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && fake_stop "$pid"
    rm -rf "$work"
}
trap cleanup EXIT

port=$(pki_free_port)
pki_make "$work/pki" "$port" || { echo "FAIL pki_make"; exit 1; }
crafted_make "$work/pki" ecdsa "$work/c" || { echo "FAIL crafted_make"; exit 1; }
d=$work/pki c=$work/c

status_of() { ocsp_status "$d" ecdsa "$1" 2>/dev/null; }
this_of() { ocsp_times "$1" | cut -d' ' -f1; }

check_eq "good.der is good" "$(status_of "$c/good.der")" good
check_eq "newer.der is good" "$(status_of "$c/newer.der")" good
check_eq "older.der is good" "$(status_of "$c/older.der")" good
check "older.der is older than good.der, newer.der newer" \
    test "$(this_of "$c/older.der")" -lt "$(this_of "$c/good.der")" -a \
    "$(this_of "$c/good.der")" -lt "$(this_of "$c/newer.der")"
check_eq "ca-signed.der is good" "$(status_of "$c/ca-signed.der")" good
check "ca-signed.der names the intermediate" bash -c \
    "openssl ocsp -respin '$c/ca-signed.der' -resp_text -noverify 2>/dev/null | grep -q 'Responder Id: .*intermediate'"
check "good.der names the delegated responder" bash -c \
    "openssl ocsp -respin '$c/good.der' -resp_text -noverify 2>/dev/null | grep -q 'Responder Id: .*OCSP responder'"
check_eq "revoked.der is revoked" "$(status_of "$c/revoked.der")" revoked
check_eq "unknown.der is unknown" "$(status_of "$c/unknown.der")" unknown
check "other.der holds no status for ecdsa" bash -c \
    "openssl ocsp -respin '$c/other.der' -issuer '$d/inter.pem' -cert '$d/ecdsa.pem' -CAfile '$d/root.pem' \
     -verify_other '$d/inter.pem' 2>&1 | grep -q 'No Status found'"
check_eq "other.der is good for rsa" "$(ocsp_status "$d" rsa "$c/other.der" 2>/dev/null)" good
check "rogue.der does not verify against our root" refuses ocsp_status "$d" ecdsa "$c/rogue.der"
check "rogue.der: openssl says Response Verify Failure" bash -c \
    "openssl ocsp -respin '$c/rogue.der' -issuer '$d/inter.pem' -cert '$d/ecdsa.pem' \
     -CAfile '$d/root.pem' -verify_other '$d/inter.pem' 2>&1 | grep -q 'Response Verify Failure'"
check "noeku.der (signer lacks OCSPSigning) does not verify" refuses ocsp_status "$d" ecdsa "$c/noeku.der"
check "wrongca.der (signer issued by the root) does not verify" refuses ocsp_status "$d" ecdsa "$c/wrongca.der"
check "noeku.pem chains to the root (only its EKU is wrong)" bash -c \
    "openssl verify -CAfile '$d/root.pem' -untrusted '$d/inter.pem' '$d/noeku.pem' >/dev/null"
check "rogue.der verifies against the rogue CA (it is well formed)" bash -c \
    "openssl ocsp -respin '$c/rogue.der' -issuer '$d/inter.pem' -cert '$d/ecdsa.pem' \
     -CAfile '$d/rogue.pem' -trust_other -verify_other '$d/rogue.pem' 2>&1 | grep -q 'Response verify OK'"
check "expired.der refused by ocsp_status" refuses ocsp_status "$d" ecdsa "$c/expired.der"
check "future.der refused by ocsp_status" refuses ocsp_status "$d" ecdsa "$c/future.der"
check "expired.der: verifies, times out of range" bash -c \
    "v=\$(openssl ocsp -respin '$c/expired.der' -issuer '$d/inter.pem' -cert '$d/ecdsa.pem' -CAfile '$d/root.pem' \
       -verify_other '$d/inter.pem' 2>&1); echo \"\$v\" | grep -q 'Response verify OK' && echo \"\$v\" | grep -q 'status expired'"
check "future.der: verifies, not yet valid" bash -c \
    "v=\$(openssl ocsp -respin '$c/future.der' -issuer '$d/inter.pem' -cert '$d/ecdsa.pem' -CAfile '$d/root.pem' \
       -verify_other '$d/inter.pem' 2>&1); echo \"\$v\" | grep -q 'Response verify OK' && echo \"\$v\" | grep -q 'status not yet valid'"
check "no-next.der has no nextUpdate" bash -c \
    "openssl ocsp -respin '$c/no-next.der' -resp_text -noverify 2>/dev/null | grep -q 'This Update' &&
     ! openssl ocsp -respin '$c/no-next.der' -resp_text -noverify 2>/dev/null | grep -q 'Next Update'"
check "trylater.der: responder error trylater" bash -c \
    "openssl ocsp -respin '$c/trylater.der' -resp_text -noverify 2>&1 | grep -qi 'trylater'"
check "unauthorized.der: responder error unauthorized" bash -c \
    "openssl ocsp -respin '$c/unauthorized.der' -resp_text -noverify 2>&1 | grep -qi 'unauthorized'"
check "internal.der: responder error internalerror" bash -c \
    "openssl ocsp -respin '$c/internal.der' -resp_text -noverify 2>&1 | grep -qi 'internalerror'"
check "garbage.der does not parse" refuses openssl ocsp -respin "$c/garbage.der" -resp_text -noverify

# fake_responder.py modes, asked with curl (GET and POST)
fport=$(pki_free_port)
url=http://127.0.0.1:$fport/
get() { curl -s -m "${2:-5}" -o "$1" -w '%{http_code} %{content_type}' "$url"; }
post() { curl -s -m 5 -o "$1" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
    --data-binary @"$c/good.der" "$url"; }

fake_start "$fport" 30 --log "$work/file.log" file "$c/good.der" >/dev/null; pid=$FAKE_PID
check_eq "file: GET status and type" "$(get "$work/g.der")" "200 application/ocsp-response"
check "file: GET body is the file" cmp "$work/g.der" "$c/good.der"
check_eq "file: POST status" "$(post "$work/p.der")" 200
check "file: POST body is the file" cmp "$work/p.der" "$c/good.der"
check_eq "file: requests logged" "$(fake_requests "$work/file.log")" 2
fake_stop "$pid"; check "file: gone after fake_stop" pki_pid_gone "$pid"; pid=

fake_start "$fport" 30 seq "$c/newer.der" "$c/older.der" >/dev/null; pid=$FAKE_PID
get "$work/s1.der" >/dev/null; get "$work/s2.der" >/dev/null; get "$work/s3.der" >/dev/null
check "seq: first answer is the first file" cmp "$work/s1.der" "$c/newer.der"
check "seq: second answer is the second file" cmp "$work/s2.der" "$c/older.der"
check "seq: then the last file again" cmp "$work/s3.der" "$c/older.der"
fake_stop "$pid"; pid=

fake_start "$fport" 30 garbage >/dev/null; pid=$FAKE_PID
check_eq "garbage: 200 and the OCSP type" "$(get "$work/r1")" "200 application/ocsp-response"
get "$work/r2" >/dev/null
check "garbage: a body of 1..2048 bytes" test -s "$work/r1" -a "$(stat -c %s "$work/r1")" -le 2048
check "garbage: bodies differ" refuses cmp "$work/r1" "$work/r2"
check "garbage: not an OCSP response" refuses openssl ocsp -respin "$work/r1" -resp_text -noverify
fake_stop "$pid"; pid=

fake_start "$fport" 30 http500 >/dev/null; pid=$FAKE_PID
check_eq "http500: status 500" "$(get "$work/e")" "500 text/plain"
fake_stop "$pid"; pid=

fake_start "$fport" 30 hang >/dev/null; pid=$FAKE_PID
t0=$(date +%s%N)
code=$(get "$work/h" 1)
rc=$?
t1=$(date +%s%N)
check_eq "hang: no answer (curl times out, code 000)" "$code" "000 "
check "hang: curl gave up on its own timeout (exit 28)" test "$rc" -eq 28
check "hang: the wait lasted the client's timeout" test $(((t1 - t0) / 1000000)) -ge 900
fake_stop "$pid"; check "hang: SIGTERM ends it despite the open connection" pki_pid_gone "$pid"; pid=

fake_start "$fport" 30 --delay 1.5 slow "$c/good.der" >/dev/null; pid=$FAKE_PID
code=$(get "$work/sl" 0.5)
check_eq "slow: a 0.5 s client gets the headers" "$code" "200 application/ocsp-response"
check "slow: ...and only part of the body" test "$(stat -c %s "$work/sl" 2>/dev/null || echo 0)" -lt "$(stat -c %s "$c/good.der")"
get "$work/sl2" 10 >/dev/null
check "slow: a patient client gets the whole file" cmp "$work/sl2" "$c/good.der"
fake_stop "$pid"; pid=

fake_start "$fport" 1 garbage >/dev/null; pid=$FAKE_PID
check "lifetime: exits by itself" wait_for 5 pki_pid_gone "$pid"
wait "$pid"
check_eq "lifetime: exit status 0" $? 0
pid=
check "bad arguments refused" refuses python3 "$here/../../lib/fake_responder.py" --port "$fport" \
    --lifetime 99999 garbage
check_done
