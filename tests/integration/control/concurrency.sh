#!/usr/bin/env bash
# per_responder_concurrency holds end to end: ten certificates share one
# responder that never answers; only four requests reach it at once, the
# rest wait in the queue (ternctl status shows both), and when a real
# responder takes over the queue drains and every certificate is stapled.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init conc

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
pki_make_leaves "$PKI" "$port" 10 || { echo "FAIL pki_make_leaves"; exit 1; }
ctl_fake "$port" 170 --log "$W/requests.log" hang || { echo "FAIL fake responder"; exit 1; }
hang_pid=$FAKE_PID
for ((i = 0; i < 10; i++)); do ctl_cert "bulk$i" "$PKI/leaves/$i.pem"; done
export CTL_METRICS_PORT=$(pki_free_port)
CTL_TOTAL_TIMEOUT=6s CTL_CONNECT_TIMEOUT=6s ctl_write_config
ctl_start || { echo "FAIL tern-control start"; exit 1; }

check "four requests reach the responder" wait_for 5 requests_at_least "$W/requests.log" 4
sleep 1 # well inside the 6 s timeout of the first four
check_eq "no more than four while they hang" "$(fake_requests "$W/requests.log")" 4
check_eq "status: 4 in flight" "$(ctl_status inflight)" 4
check_eq "status: 6 queued" "$(ctl_status queued)" 6
check_eq "status: all 10 pending" "$(ctl_status states.pending)" 10

# the real responder takes over the port
fake_stop "$hang_pid"
ctl_ocsp "$PKI" "$port" --ndays 1 || { echo "FAIL ocsp_start"; exit 1; }
check "ternctl refresh --all" ctl refresh --all
check "all ten good" wait_for 40 bash -c '[ "$(ctl_status states.good)" = 10 ]'
for ((i = 0; i < 10; i++)); do
    check_eq "table: bulk$i stapled, good" "$(table_status "$PKI/leaves/$i.pem")" good
done
check_eq "status: nothing in flight" "$(ctl_status inflight)" 0
check_eq "status: nothing queued" "$(ctl_status queued)" 0
check "metrics: published" wait_for 5 bash -c '[ "$(ctl_metric tern_staple_table_entries)" = 10 ]'
check_eq "metrics: most requests at once to the responder" \
    "$(ctl_metric tern_ocsp_responder_inflight_max)" 4
check_eq "staple_dump: ten entries" "$("$STAPLE_DUMP" "$TABLE" | tail -1)" "entries=10"
check_done
