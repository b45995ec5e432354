#!/usr/bin/env bash
# tern-control killed with SIGKILL and restarted:
#  - while it is dead, readers of the table keep getting the staple (a reader
#    loop runs through the kill and the restart and must never miss);
#  - the restart, with the responder down, republishes from the disk cache
#    before any network call: with the table removed, the staple reappears
#    while a logging responder on the OCSP URL has received no request.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init restart

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
ctl_ocsp "$PKI" "$port" --ndays 1 || { echo "FAIL ocsp_start"; exit 1; }
ocsp_pid=$OCSP_PID
ctl_cert ecdsa ecdsa
ctl_cert rsa rsa
ctl_cert muststaple muststaple
ctl_write_config
key=$(pki_key "$PKI/ecdsa.pem")

ctl_start || { echo "FAIL tern-control start"; exit 1; }
for c in ecdsa rsa muststaple; do
    check "$c: good" ctl_wait "$c" state good
done
table_get "$key" "$W/held.der"
check_eq "table: ecdsa staple verifies" "$(table_status ecdsa)" good
check "cache: written" wait_for 5 cache_files_at_least 3

# A reader that looks the staple up every 20 ms for 8 s and counts what it
# gets: the same bytes, or anything else.
reader() {
    local hits=0 misses=0 i
    for ((i = 0; i < 400; i++)); do
        if "$STAPLE_DUMP" "$TABLE" "$key" "$W/r.der" 2>/dev/null && cmp -s "$W/r.der" "$W/held.der"; then
            hits=$((hits + 1))
        else
            misses=$((misses + 1))
        fi
        sleep 0.02
    done
    echo "$hits $misses" >"$W/reader.out"
}
reader &
rpid=$!
ctl_track "$rpid"
sleep 1
old=$CTL_PID
ctl_kill9
check "tern-control is gone" pki_pid_gone "$old"
sleep 2
check "table: staple served with tern-control dead" table_is ecdsa "$W/held.der"
ctl_start || { echo "FAIL tern-control restart"; exit 1; }
check "ecdsa: good after the restart" ctl_wait ecdsa state good
wait "$rpid"
read -r hits misses <"$W/reader.out"
echo "  reader through kill and restart: $hits hits, $misses misses"
check "reader: got the staple on every lookup" test "$misses" -eq 0 -a "$hits" -gt 0
# the restarted daemon is the table's writer (the old lock died with it): a
# refresh publishes a new response
v0=$(table_row "$key" | grep -o 'version=[0-9]*')
check "ternctl refresh ecdsa" ctl refresh ecdsa
check "table: the restarted daemon publishes (version changes)" wait_for 10 \
    bash -c "[ \"\$(table_row $key | grep -o 'version=[0-9]*')\" != '$v0' ]"
check_eq "table: refreshed staple verifies" "$(table_status ecdsa)" good
table_get "$key" "$W/held.der"
check "cache: holds the refreshed staple" wait_for 5 cache_holds "$W/held.der"

# Kill again; responder down, a logging fake in its place (any request is
# recorded); table removed so that only the disk can provide the staple.
ctl_kill9
ocsp_stop "$ocsp_pid"
rm -f "/dev/shm/${TABLE#/}"
ctl_fake "$port" 120 --log "$W/requests.log" http500 || { echo "FAIL fake responder"; exit 1; }
ctl_start || { echo "FAIL tern-control restart from disk"; exit 1; }
check "table: ecdsa republished from disk" wait_for 5 table_is ecdsa "$W/held.der"
n=$(fake_requests "$W/requests.log")
check_eq "no request reached the responder before the republish" "$n" 0
check_eq "table: republished staple verifies" "$(table_status ecdsa)" good
check_eq "table: rsa republished" "$(table_status rsa)" good
check_eq "table: muststaple republished" "$(table_status muststaple)" good
check_eq "json: ecdsa good" "$(ctl_field ecdsa state)" good
check_eq "json: muststaple not warned (staple valid for a day, threshold 1h)" \
    "$(ctl_field muststaple must_staple_warning)" false
sleep 2
check_eq "still no request: the cached staples are fresh" "$(fake_requests "$W/requests.log")" 0
check_done
