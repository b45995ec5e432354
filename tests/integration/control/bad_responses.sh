#!/usr/bin/env bash
# tern-control against misbehaving responders (tests/lib/fake_responder.py
# serving crafted responses): nothing bad is ever published, each failure is
# shown with its reason, a good response is never replaced by an error, an
# older response or garbage, and a revoked one does replace it (it is the
# truth). One daemon, one certificate per case, each pointed (ocsp_url) at
# its own fake responder.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init bad

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
cases="garbage http500 hang slow huge other rogue noeku wrongca expired future no-next trylater unauthorized
       delegated casigned older-held error-held revoked-held"
n=0
declare -A leaf fport flog
for c in $cases; do
    leaf[$c]=leaves/$n
    n=$((n + 1))
done
pki_make_leaves "$PKI" "$port" "$n" || { echo "FAIL pki_make_leaves"; exit 1; }

for c in $cases; do
    case $c in
    other | rogue | noeku | wrongca | expired | future | no-next | trylater | unauthorized) want=$c ;;
    delegated | slow) want=good ;;
    casigned) want=ca-signed ;;
    older-held) want="newer older" ;;
    error-held) want="good garbage" ;;
    revoked-held) want="good revoked" ;;
    *) want="" ;;
    esac
    if [ -n "$want" ]; then
        crafted_make "$PKI" "${leaf[$c]}" "$W/c/$c" $want || { echo "FAIL crafted_make $c"; exit 1; }
    fi
    fport[$c]=$(pki_free_port)
    flog[$c]=$W/$c.requests
    d=$W/c/$c
    case $c in
    garbage | http500 | hang) args=("$c") ;;
    slow) args=(--delay 20 slow "$d/good.der") ;; # 20 s to send: past total_timeout
    huge) args=(file "$d/huge.der") ;;
    other | rogue | noeku | wrongca | expired | future | no-next | trylater | unauthorized)
        args=(file "$d/$c.der") ;;
    delegated) args=(file "$d/good.der") ;;
    casigned) args=(file "$d/ca-signed.der") ;;
    older-held) args=(seq "$d/newer.der" "$d/older.der") ;;
    error-held) args=(seq "$d/good.der" "$d/garbage.der") ;;
    revoked-held) args=(seq "$d/good.der" "$d/revoked.der") ;;
    esac
    # 100 KiB of random bytes: above max_response_bytes (64 KiB), refused for its size
    [ "$c" = huge ] && mkdir -p "$d" && head -c 102400 /dev/urandom >"$d/huge.der"
    ctl_fake "${fport[$c]}" 170 --log "${flog[$c]}" "${args[@]}" ||
        { echo "FAIL fake responder $c"; exit 1; }
    ctl_cert "$c" "$PKI/${leaf[$c]}.pem" "ocsp_url: http://127.0.0.1:${fport[$c]}/"
done
ctl_write_config
ctl_start || { echo "FAIL tern-control start"; exit 1; }

key_of() { pki_key "$PKI/${leaf[$1]}.pem"; }

# --- failures: never published, reason shown ---
expect_fail() { # case, reason(s) allowed (a|b)
    local c=$1 reasons=$2 r
    check "$c: fails" ctl_wait "$c" state failing
    r=$(ctl_field "$c" last_reason)
    check "$c: reason $reasons (got $r)" bash -c "[[ '$r' =~ ^($reasons)$ ]]"
    check "$c: error message shown" test -n "$(ctl_field "$c" last_error)"
    check "$c: nothing in the table" table_absent "$(key_of "$c")"
    check_eq "$c: certs STATE column" "$(ctl_certs_col "$c" STATE)" failing
    check "$c: ternctl cert shows state and reason" bash -c \
        "ctl cert '$c' >'$W/cert.$c' && grep -qE '^state: +failing$' '$W/cert.$c' &&
         grep -qE '^last_reason: +$r$' '$W/cert.$c'"
    check "$c: the responder was asked" test "$(fake_requests "${flog[$c]}")" -ge 1
}
expect_fail garbage malformed
expect_fail http500 http_status
expect_fail other certid_mismatch
expect_fail rogue "signature|signer_untrusted"
expect_fail noeku "signer_untrusted|signature"
expect_fail wrongca "signer_untrusted|signature"
expect_fail expired expired
expect_fail future this_update_future
expect_fail no-next no_next_update
expect_fail trylater try_later
expect_fail unauthorized unauthorized
expect_fail hang timeout
expect_fail slow timeout
expect_fail huge "too_large"

# hang: each attempt lasts the total timeout (2 s), then a backoff drawn in
# [d/2, d] with d = 1 s, 2 s, 4 s ...: attempt gaps of 2.5-3, 3-4, 4-6 s.
check "hang: retried after backoff (4 attempts)" wait_for 30 \
    requests_at_least "${flog[hang]}" 4
mapfile -t ts < <(cut -d' ' -f1 "${flog[hang]}")
if [ "${#ts[@]}" -ge 4 ]; then
    gap() { awk -v a="${ts[$1]}" -v b="${ts[$2]}" 'BEGIN { printf "%.2f", b - a }'; }
    g1=$(gap 0 1) g2=$(gap 1 2) g3=$(gap 2 3)
    echo "  hang: attempts ${g1}s, ${g2}s, ${g3}s apart"
    check "hang: each attempt waits out the 2 s timeout before the retry" \
        awk -v a="$g1" -v b="$g2" -v c="$g3" 'BEGIN { exit !(a >= 2.0 && b >= 2.0 && c >= 2.0) }'
    check "hang: the backoff grows (3rd gap longer than the 1st)" \
        awk -v a="$g1" -v c="$g3" 'BEGIN { exit !(c > a) }'
fi
check "hang: consecutive failures counted" test "$(ctl_field hang consecutive_failures)" -ge 2

# --- good ones, byte for byte what the responder sent ---
check "delegated: good" ctl_wait delegated state good
check "delegated: table holds the responder's bytes" table_is "$PKI/${leaf[delegated]}.pem" \
    "$W/c/delegated/good.der"
check "delegated: asked with GET (RFC 5019, a small request)" grep -q ' GET /' "${flog[delegated]}"
check "casigned: good" ctl_wait casigned state good
check "casigned: table holds the responder's bytes" table_is "$PKI/${leaf[casigned]}.pem" \
    "$W/c/casigned/ca-signed.der"

# --- a held good response survives an older one and an error ---
for c in older-held error-held revoked-held; do
    check "$c: first response published" ctl_wait "$c" state good
done
check "older-held: holds the newer response" table_is "$PKI/${leaf[older-held]}.pem" \
    "$W/c/older-held/newer.der"
check "error-held: holds the good response" table_is "$PKI/${leaf[error-held]}.pem" \
    "$W/c/error-held/good.der"
for c in older-held error-held revoked-held; do
    check "$c: ternctl refresh" ctl refresh "$c"
    check "$c: the refresh reached the responder" wait_for 10 \
        requests_at_least "${flog[$c]}" 2
done
check "older-held: the older response is refused" ctl_wait older-held last_reason older
check "older-held: still good" test "$(ctl_field older-held state)" = good
check "older-held: table still holds the newer bytes" table_is \
    "$PKI/${leaf[older-held]}.pem" "$W/c/older-held/newer.der"
check "error-held: garbage refused" ctl_wait error-held last_reason malformed
check "error-held: still good" test "$(ctl_field error-held state)" = good
check "error-held: table still holds the good bytes" table_is \
    "$PKI/${leaf[error-held]}.pem" "$W/c/error-held/good.der"
check "revoked-held: a revoked response replaces the good one" ctl_wait revoked-held state revoked
check_eq "revoked-held: certs STATE column" "$(ctl_certs_col revoked-held STATE)" "revoked!"
check "revoked-held: table holds the revoked bytes" table_is \
    "$PKI/${leaf[revoked-held]}.pem" "$W/c/revoked-held/revoked.der"
check_eq "revoked-held: verified status in the table" \
    "$(table_status "$PKI/${leaf[revoked-held]}.pem")" revoked

check "refresh of an unknown name fails" refuses ctl refresh no-such-cert
check "tern-control still running" kill -0 "$CTL_PID"
check_done
