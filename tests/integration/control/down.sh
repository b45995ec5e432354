#!/usr/bin/env bash
# The responder is down when tern-control starts.
#  - Without a disk cache: the error is visible (state failing, reason
#    connect, a message), nothing is published, retries back off with a
#    growing delay, and the staple appears once the responder is back.
#  - With a disk cache from an earlier run (and the table gone, so that only
#    the disk can supply it): the staple is published at once, without the
#    network, byte for byte the one held before.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init down

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
ctl_cert ecdsa ecdsa
ctl_cert rsa rsa
CTL_BACKOFF_MIN=1s CTL_BACKOFF_MAX=16s ctl_write_config
key=$(pki_key "$PKI/ecdsa.pem")

# --- no cache, responder down ---
ctl_start || { echo "FAIL tern-control start"; exit 1; }
check "ecdsa: failing while the responder is down" ctl_wait ecdsa state failing
check_eq "ecdsa: reason connect" "$(ctl_field ecdsa last_reason)" connect
check "ecdsa: error message shown" test -n "$(ctl_field ecdsa last_error)"
check_eq "certs: ecdsa STATE column" "$(ctl_certs_col ecdsa STATE)" failing
check "cert: ecdsa shows failing and reason connect" bash -c \
    "ctl cert ecdsa | grep -qE '^state: +failing$' && ctl cert ecdsa | grep -qE '^last_reason: +connect$'"
check "table: nothing for ecdsa" table_absent "$key"
check "cache: nothing written" refuses cache_files_at_least 1

# Growing backoff: the delay from a failure to the next attempt, as ternctl
# shows it (next_refresh - last_fetch, whole seconds), for successive
# failures. The delay after failure f is drawn in [D/2, D], D = 2^(f-1) s,
# so the delay after failure f+2 is at least 2D: whole-second rounding
# cannot hide that it is longer than the one after f. A loaded machine may
# miss a failure between two polls; any observed pair (f, f+2) will do.
declare -A delay
pairs=()
for ((i = 0; i < 400; i++)); do # <= 40 s
    j=$(ctl --json cert ecdsa 2>/dev/null | jq -c '(if has("result") then .result else . end)')
    f=$(echo "$j" | jq -r .consecutive_failures)
    lf=$(ctl_epoch "$(echo "$j" | jq -r .last_fetch)")
    nr=$(ctl_epoch "$(echo "$j" | jq -r .next_refresh)")
    if [[ "$f" =~ ^[0-9]+$ ]] && [ -n "$lf" ] && [ -n "$nr" ] && [ -z "${delay[$f]:-}" ]; then
        delay[$f]=$((nr - lf))
        [ -n "${delay[$((f - 2))]:-}" ] && pairs+=("$((f - 2))")
    fi
    [ ${#pairs[@]} -ge 1 ] && [ -n "${delay[4]:-}${delay[5]:-}" ] && break
    sleep 0.1
done
echo "  retry delays after failure 1..5: ${delay[1]:-?} ${delay[2]:-?} ${delay[3]:-?} ${delay[4]:-?} ${delay[5]:-?} s"
check "backoff: failures f and f+2 both observed" test ${#pairs[@]} -ge 1
for f in "${pairs[@]}"; do
    check "backoff: the delay after failure $((f + 2)) is longer than after $f" \
        test "${delay[$((f + 2))]}" -gt "${delay[$f]}"
done
check "backoff: the first delay is about backoff_min (1 s)" test "${delay[1]:-${delay[2]:-0}}" -le 2

# the responder comes back: the next retry (or a refresh) staples
ctl_ocsp "$PKI" "$port" --ndays 1 || { echo "FAIL ocsp_start"; exit 1; }
check "ternctl refresh --all" ctl refresh --all
check "ecdsa: good once the responder is back" ctl_wait ecdsa state good
check "rsa: good once the responder is back" ctl_wait rsa state good
check_eq "table: ecdsa staple" "$(table_status ecdsa)" good
check_eq "json: consecutive failures reset" "$(ctl_field ecdsa consecutive_failures)" 0
check "cache: files written" wait_for 5 cache_files_at_least 2
table_get "$key" "$W/held.der"
rsakey=$(pki_key "$PKI/rsa.pem")
table_get "$rsakey" "$W/held-rsa.der"

# --- restart with the cache, responder down, table gone ---
ctl_stop
check "table: staple still served after tern-control stopped" table_is ecdsa "$W/held.der"
ocsp_stop "$OCSP_PID"
rm -f "/dev/shm/${TABLE#/}"
check "table: removed for the test" refuses "$STAPLE_DUMP" "$TABLE"
ctl_start || { echo "FAIL tern-control restart"; exit 1; }
check "ecdsa: published from the cache" ctl_wait ecdsa state good 5
check "table: ecdsa is the staple held before, byte for byte" table_is ecdsa "$W/held.der"
check "table: rsa is the staple held before, byte for byte" table_is rsa "$W/held-rsa.der"
check_eq "table: cached staple verifies, good" "$(table_status ecdsa)" good
check "json: next refresh is in the future (no fetch at once)" bash -c \
    "[ \$(ctl_epoch \"\$(ctl_field ecdsa next_refresh)\") -gt \$(date +%s) ]"
check_eq "json: no failure recorded (no network call was needed)" \
    "$(ctl_field ecdsa consecutive_failures)" 0

# a foreign cache file (rsa's valid response where ecdsa's should be) is
# ignored: ecdsa is not published from it, rsa still is
ctl_stop
efile= rfile=
for f in "$CACHE"/*; do
    cmp -s "$f" "$W/held.der" && efile=$f
    cmp -s "$f" "$W/held-rsa.der" && rfile=$f
done
check "cache: ecdsa's file holds exactly its staple" test -n "$efile"
check "cache: rsa's file holds exactly its staple" test -n "$rfile"
if [ -n "$efile" ] && [ -n "$rfile" ]; then
    cp "$rfile" "$efile"
    rm -f "/dev/shm/${TABLE#/}"
    ctl_start || { echo "FAIL tern-control start with a foreign cache file"; exit 1; }
    check "foreign cache: rsa published from its own file" wait_for 5 table_is rsa "$W/held-rsa.der"
    check "foreign cache: ecdsa not published from rsa's response" table_absent "$key"
    check "foreign cache: ecdsa not good" test "$(ctl_field ecdsa state)" != good
    check "foreign cache: tern-control runs" kill -0 "$CTL_PID"
    ctl_stop
fi

# a corrupt cache file is ignored, not fatal
for f in "$CACHE"/*; do head -c 300 /dev/urandom >"$f"; done
rm -f "/dev/shm/${TABLE#/}"
ctl_start || { echo "FAIL tern-control start with a corrupt cache"; exit 1; }
check "corrupt cache: tern-control runs" kill -0 "$CTL_PID"
check "corrupt cache: ecdsa not published from it" ctl_wait ecdsa state failing
check "corrupt cache: nothing in the table" table_absent "$key"
check "corrupt cache: logged" grep -qi "cache" "$W/control.log"
check_done
