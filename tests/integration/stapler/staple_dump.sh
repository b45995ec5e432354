#!/usr/bin/env bash
# staple_dump shows what a staple table holds: a real response from a real
# responder published with staple_put is listed with its length, times and
# SHA-256, and comes back out byte for byte; expired, absent keys and a
# missing table give their exit codes.
#   env: STAPLE_DUMP, STAPLE_PUT (paths of the built tools)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib/pki.sh"
. "$here/../../lib/check.sh"
: "${STAPLE_DUMP:?path of staple_dump}" "${STAPLE_PUT:?path of staple_put}"

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-dump.$$.XXXXXX")
table=/tern-test-dump-$$
pid=
cleanup() {
    [ -n "$pid" ] && ocsp_stop "$pid"
    "$STAPLE_PUT" -d "$table" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(pki_free_port)
pki_make "$work/pki" "$port" || { echo "FAIL pki_make"; exit 1; }
ocsp_start "$work/pki" "$port" --ndays 1 >/dev/null || { echo "FAIL ocsp_start"; exit 1; }
pid=$OCSP_PID
ocsp_fetch "$work/pki" ecdsa "$work/ecdsa.der" || { echo "FAIL fetch"; exit 1; }
ocsp_fetch "$work/pki" revoked "$work/revoked.der" || { echo "FAIL fetch"; exit 1; }

check "no table: exit 2" bash -c "'$STAPLE_DUMP' '$table' >/dev/null 2>&1; [ \$? -eq 2 ]"

key=$(pki_key "$work/pki/ecdsa.pem")
read -r this next < <(ocsp_times "$work/ecdsa.der")
check "response times parsed" test -n "$this" -a "$next" != -
check "staple_put ecdsa" "$STAPLE_PUT" "$table" "$key" "$work/ecdsa.der" "$this" "$next"
rkey=$(pki_key "$work/pki/revoked.pem")
read -r rthis rnext < <(ocsp_times "$work/revoked.der")
check "staple_put revoked" "$STAPLE_PUT" "$table" "$rkey" "$work/revoked.der" "$rthis" "$rnext"
now=$(date +%s)
ekey=$(pki_key "$work/pki/rsa.pem")
check "staple_put an expired entry" "$STAPLE_PUT" "$table" "$ekey" "$work/ecdsa.der" \
    $((now - 7200)) $((now - 3600))

out=$("$STAPLE_DUMP" "$table")
check "dump exits 0" test $? -eq 0
echo "$out" | sed 's/^/  | /'
len=$(stat -c %s "$work/ecdsa.der")
sum=$(sha256sum "$work/ecdsa.der" | cut -d' ' -f1)
line=$(echo "$out" | grep "^key=$key ")
check_eq "ecdsa line" "$line" \
    "key=$key len=$len this_update=$this next_update=$next $(echo "$line" | grep -o 'version=[0-9]*') sha256=$sum"
check "expired entry listed as expired" bash -c "echo '$out' | grep -q '^key=$ekey .* sha256=expired$'"
check_eq "entry count" "$(echo "$out" | tail -1)" "entries=3"

check "extract ecdsa" "$STAPLE_DUMP" "$table" "$key" "$work/out.der"
check "extracted bytes are the responder's" cmp "$work/out.der" "$work/ecdsa.der"
check_eq "extracted ecdsa status" "$(ocsp_status "$work/pki" ecdsa "$work/out.der")" good
check "extract revoked" "$STAPLE_DUMP" "$table" "$rkey" "$work/rout.der"
check_eq "extracted revoked status" "$(ocsp_status "$work/pki" revoked "$work/rout.der")" revoked
check "expired key: exit 3" bash -c "'$STAPLE_DUMP' '$table' '$ekey' '$work/x.der' 2>/dev/null; [ \$? -eq 3 ]"
absent=$(pki_key "$work/pki/unknown.pem")
check "absent key: exit 2" bash -c "'$STAPLE_DUMP' '$table' '$absent' '$work/x.der' 2>/dev/null; [ \$? -eq 2 ]"
check "bad key: exit 1" bash -c "'$STAPLE_DUMP' '$table' 1234 '$work/x.der' 2>/dev/null; [ \$? -eq 1 ]"
check "no file written for a miss" test ! -e "$work/x.der"

# a newer publish replaces the bytes
ocsp_fetch "$work/pki" ecdsa "$work/ecdsa2.der"
read -r this2 next2 < <(ocsp_times "$work/ecdsa2.der")
check "staple_put replacement" "$STAPLE_PUT" "$table" "$key" "$work/ecdsa2.der" "$this2" "$next2"
"$STAPLE_DUMP" "$table" "$key" "$work/out2.der"
check "replacement read back" cmp "$work/out2.der" "$work/ecdsa2.der"
check_done
