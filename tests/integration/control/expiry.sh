#!/usr/bin/env bash
# The last good response is kept until its nextUpdate and not a moment
# longer: while the responder sends only errors, the staple keeps serving;
# once its nextUpdate passes, readers stop getting it, tern-control shows the
# certificate as expired, and a restart does not bring it back from the
# disk cache.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init expiry

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
c=$W/c
crafted_make "$PKI" ecdsa "$c" garbage || { echo "FAIL crafted_make"; exit 1; }
# valid for 25 more seconds (room for a slow start on a loaded machine)
python3 "$lib/make_response.py" --issuer "$PKI/inter.pem" --cert "$PKI/ecdsa.pem" \
    --signer "$PKI/responder.pem" --signer-key "$PKI/responder.key" \
    --this-update -60 --next-update 25 "$c/short.der" || { echo "FAIL make_response"; exit 1; }
read -r _ next < <(ocsp_times "$c/short.der")
ctl_fake "$port" 170 --log "$W/requests.log" seq "$c/short.der" "$c/garbage.der" ||
    { echo "FAIL fake responder"; exit 1; }
ctl_cert ecdsa ecdsa
ctl_write_config
key=$(pki_key "$PKI/ecdsa.pem")
ctl_start || { echo "FAIL tern-control start"; exit 1; }

check "ecdsa: good" ctl_wait ecdsa state good
check "table: holds the short-lived response" table_is ecdsa "$c/short.der"
# it is close to nextUpdate, so it is refreshed at once and gets garbage
check "refresh attempted and failed" wait_for 10 requests_at_least "$W/requests.log" 2
check_eq "json: the failure is recorded" "$(ctl_field ecdsa last_reason)" malformed
check_eq "json: still good while valid" "$(ctl_field ecdsa state)" good
check "table: still served while valid" table_is ecdsa "$c/short.der"
check "test timing: nextUpdate still ahead here" test "$(date +%s)" -lt "$next"

check "after nextUpdate: state expired" ctl_wait ecdsa state expired 40
check "after nextUpdate: now past it" test "$(date +%s)" -ge "$next"
"$STAPLE_DUMP" "$TABLE" "$key" "$W/late.der" 2>/dev/null
rc=$?
check "after nextUpdate: readers get nothing (absent or skipped as expired)" \
    test "$rc" -eq 2 -o "$rc" -eq 3
check "after nextUpdate: no file written by the lookup" test ! -e "$W/late.der"
check_eq "certs: STATE column" "$(ctl_certs_col ecdsa STATE)" expired
check "cert: shows expired" bash -c "ctl cert ecdsa | grep -qE '^state: +expired$'"
check_eq "status: states.expired" "$(ctl_status 'states.expired')" 1
check "log: the withdrawal is logged" grep -qi "expired" "$W/control.log"

# restart: the expired response in the cache must not come back
ctl_stop
rm -f "/dev/shm/${TABLE#/}"
ctl_start || { echo "FAIL tern-control restart"; exit 1; }
sleep 1
check "restart: ecdsa not good" test "$(ctl_field ecdsa state)" != good
"$STAPLE_DUMP" "$TABLE" "$key" "$W/late2.der" 2>/dev/null
check_eq "restart: nothing published (staple_dump: absent)" "$?" 2
check_done
