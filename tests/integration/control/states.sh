#!/usr/bin/env bash
# tern-control against real `openssl ocsp` responders: good, revoked and
# unknown certificates, a delegated responder and a CA that signs its own
# responses, a leaf with no OCSP URL, and Must-Staple warnings. Each case
# checks what the staple table holds (staple_dump + openssl) and what
# `ternctl certs`, `ternctl cert NAME` and `--json` say.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init states

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
pki_make_leaves "$PKI" "$port" 3 || { echo "FAIL pki_make_leaves"; exit 1; }
# the delegated responder (default) serves the leaves' AIA URL
ctl_ocsp "$PKI" "$port" --ndays 1 || { echo "FAIL ocsp_start"; exit 1; }
# a second responder where the intermediate signs for itself
caport=$(pki_free_port)
ctl_ocsp "$PKI" "$caport" --ca-signs --ndays 1 || { echo "FAIL ocsp_start --ca-signs"; exit 1; }
deadport=$(pki_free_port) # nobody listens here

export CTL_METRICS_PORT=$(pki_free_port)
ctl_cert ecdsa ecdsa
ctl_cert rsa rsa
ctl_cert revoked revoked
ctl_cert unknown unknown
ctl_cert noocsp noocsp
ctl_cert muststaple muststaple
ctl_cert casigned "$PKI/leaves/0.pem" "ocsp_url: http://127.0.0.1:$caport"
ctl_cert strictdown "$PKI/leaves/1.pem" "policy: must-staple" \
    "ocsp_url: http://127.0.0.1:$deadport"
# two certificates that cannot be loaded: a chain file that does not exist,
# and a chain with the leaf alone (no issuer anywhere)
cp "$PKI/leaves/2.pem" "$W/leafonly.pem"
CTL_CERTS+="  - name: missing
    chain: $W/no-such-chain.pem
    key: $PKI/ecdsa.key
  - name: noissuer
    chain: $W/leafonly.pem
    key: $PKI/leaves/leaf.key
"
ctl_write_config
ctl_start || { echo "FAIL tern-control start"; exit 1; }

check "ecdsa becomes good" ctl_wait ecdsa state good
check "rsa becomes good" ctl_wait rsa state good
check "revoked becomes revoked" ctl_wait revoked state revoked
check "unknown becomes unknown" ctl_wait unknown state unknown
check "muststaple becomes good" ctl_wait muststaple state good
check "casigned becomes good" ctl_wait casigned state good
check "noocsp shows no-ocsp-url" ctl_wait noocsp state no-ocsp-url 5
check "missing chain file: invalid" ctl_wait missing state invalid 5
check "missing chain file: a reason is shown" test -n "$(ctl_field missing last_error)"
check "no issuer: invalid" ctl_wait noissuer state invalid 5
check "no issuer: a reason is shown" test -n "$(ctl_field noissuer last_error)"
check "strictdown is failing" ctl_wait strictdown state failing

# --- the table ---
check_eq "table: ecdsa staple verifies, good" "$(table_status ecdsa)" good
check_eq "table: rsa staple verifies, good" "$(table_status rsa)" good
check_eq "table: revoked is stapled as revoked" "$(table_status revoked)" revoked
check_eq "table: unknown is stapled as unknown" "$(table_status unknown)" unknown
check_eq "table: muststaple staple verifies, good" "$(table_status muststaple)" good
check_eq "table: CA-signed staple verifies, good" "$(table_status "$PKI/leaves/0.pem")" good
check "table: nothing for noocsp" table_absent "$(pki_key "$PKI/noocsp.pem")"
check "table: nothing for strictdown" table_absent "$(pki_key "$PKI/leaves/1.pem")"

key=$(pki_key "$PKI/ecdsa.pem")
table_get "$key" "$W/ecdsa.der"
check "table: ecdsa staple signed by the delegated responder" bash -c \
    "openssl ocsp -respin '$W/ecdsa.der' -resp_text -noverify 2>/dev/null | grep -q 'Responder Id: .*OCSP responder'"
table_get "$(pki_key "$PKI/leaves/0.pem")" "$W/ca.der"
check "table: casigned staple signed by the intermediate" bash -c \
    "openssl ocsp -respin '$W/ca.der' -resp_text -noverify 2>/dev/null | grep -q 'Responder Id: .*intermediate'"
read -r this next < <(ocsp_times "$W/ecdsa.der")
row=$(table_row "$key")
check "table row: length, times and digest of the staple" bash -c \
    "[[ '$row' == *' len=$(stat -c %s "$W/ecdsa.der") '* ]] && [[ '$row' == *' this_update=$this next_update=$next '* ]] &&
     [[ '$row' == *' sha256=$(sha256sum "$W/ecdsa.der" | cut -d' ' -f1)' ]]"

# --- ternctl --json cert ---
check_eq "json: ecdsa key is SHA-256 of the leaf" "$(ctl_field ecdsa key)" "$key"
check_eq "json: ecdsa ocsp_status" "$(ctl_field ecdsa ocsp_status)" good
check_eq "json: ecdsa this_update matches the staple" "$(ctl_epoch "$(ctl_field ecdsa this_update)")" "$this"
check_eq "json: ecdsa next_update matches the staple" "$(ctl_epoch "$(ctl_field ecdsa next_update)")" "$next"
check_eq "json: ecdsa responder is the AIA URL" "$(ctl_field ecdsa responder)" "http://127.0.0.1:$port"
check_eq "json: ecdsa last_reason" "$(ctl_field ecdsa last_reason)" ok
check "json: ecdsa next refresh after now, before nextUpdate" bash -c \
    "r=\$(date -u -d '$(ctl_field ecdsa next_refresh)' +%s) && [ \$r -gt $(date +%s) ] && [ \$r -lt $next ]"
check_eq "json: ecdsa not must-staple" "$(ctl_field ecdsa must_staple)" false
check_eq "json: revoked ocsp_status" "$(ctl_field revoked ocsp_status)" revoked
check "json: revoked has a revocation time" bash -c \
    "[ -n \"\$(ctl_epoch '$(ctl_field revoked revocation_time)')\" ]"
check_eq "json: unknown ocsp_status" "$(ctl_field unknown ocsp_status)" unknown
check_eq "json: casigned responder is the override" "$(ctl_field casigned responder)" "http://127.0.0.1:$caport"
check_eq "json: noocsp has no error" "$(ctl_field noocsp last_error)" ""
check_eq "json: noocsp has no URL" "$(ctl_field noocsp urls)" 0
check_eq "json: muststaple flagged from the TLS Feature" "$(ctl_field muststaple must_staple)" true
check_eq "json: muststaple with a day of validity: no warning (threshold 1h)" \
    "$(ctl_field muststaple must_staple_warning)" false
check_eq "json: strictdown must-staple by policy" "$(ctl_field strictdown must_staple)" true
check_eq "json: strictdown with no staple: warning" "$(ctl_field strictdown must_staple_warning)" true
check_eq "json: strictdown last_reason" "$(ctl_field strictdown last_reason)" connect
check "json: strictdown has an error message" test -n "$(ctl_field strictdown last_error)"

# --- ternctl certs (the table for people) ---
for c in ecdsa:good rsa:good revoked:revoked! unknown:unknown casigned:good \
    noocsp:no-ocsp-url "strictdown:failing (at risk)" muststaple:good missing:invalid noissuer:invalid; do
    name=${c%%:*} state=${c#*:}
    check_eq "certs: $name STATE column" "$(ctl_certs_col "$name" STATE)" "$state"
done
check_eq "certs: muststaple MUST_STAPLE column" "$(ctl_certs_col muststaple MUST_STAPLE)" yes
check_eq "certs: ecdsa MUST_STAPLE column" "$(ctl_certs_col ecdsa MUST_STAPLE)" no
check_eq "certs: noocsp LAST_ERROR column is empty" "$(ctl_certs_col noocsp LAST_ERROR)" -
check "certs: strictdown LAST_ERROR column says something" \
    bash -c '[ -n "$(ctl_certs_col strictdown LAST_ERROR)" ] && [ "$(ctl_certs_col strictdown LAST_ERROR)" != - ]'
check_eq "certs: ecdsa KEY column is the key prefix" "$(ctl_certs_col ecdsa KEY)" "${key:0:12}"
check_eq "certs: ecdsa RESPONDER column" "$(ctl_certs_col ecdsa RESPONDER)" "http://127.0.0.1:$port"

# --- ternctl --json certs: the same, for machines ---
ctl --json certs >"$W/certs.json"
check_eq "json certs: one object per certificate" \
    "$(jq '(if type == "object" then .result else . end) | length' "$W/certs.json")" 10
check_eq "json certs: states by name" \
    "$(jq -r '(if type == "object" then .result else . end) | sort_by(.name) | map(.name + "=" + .state) | join(" ")' "$W/certs.json")" \
    "casigned=good ecdsa=good missing=invalid muststaple=good noissuer=invalid noocsp=no-ocsp-url revoked=revoked rsa=good strictdown=failing unknown=unknown"
check_eq "json certs: ecdsa key" \
    "$(jq -r '(if type == "object" then .result else . end) | .[] | select(.name == "ecdsa") | .key' "$W/certs.json")" "$key"

check_eq "socket mode is control.socket_mode (0600)" "$(stat -c %a "$SOCK")" 600

# --- ternctl status ---
for c in good:4 revoked:1 unknown:1 failing:1 no-ocsp-url:1 pending:0 invalid:2; do
    check_eq "status: states.${c%%:*}" "$(ctl_status "states[\"${c%%:*}\"]")" "${c#*:}"
done
check_eq "status: certificates" "$(ctl_status certificates)" 10
check_eq "status: revoked count" "$(ctl_status revoked)" 1
check_eq "status: must-staple at risk (strictdown)" "$(ctl_status must_staple_at_risk)" 1
check_eq "status: table entries (good, revoked, unknown staples)" "$(ctl_status table.entries)" 6
check_eq "status: table name is ours" "$(ctl_status table.name)" "$TABLE"

# --- metrics (Prometheus text) ---
check "metrics: refreshed to the current states" wait_for 5 \
    bash -c '[ "$(ctl_metric "tern_staples{state=\"good\"}")" = 4 ]'
for c in revoked:1 unknown:1 failing:1 no-ocsp-url:1 pending:0; do
    check_eq "metrics: tern_staples{state=\"${c%%:*}\"}" \
        "$(ctl_metric "tern_staples{state=\"${c%%:*}\"}")" "${c#*:}"
done
check_eq "metrics: tern_staples_revoked" "$(ctl_metric tern_staples_revoked)" 1
check_eq "metrics: tern_must_staple_at_risk (strictdown)" "$(ctl_metric tern_must_staple_at_risk)" 1
check_eq "metrics: tern_certificates" "$(ctl_metric tern_certificates)" 10
check_eq "metrics: tern_staple_table_entries" "$(ctl_metric tern_staple_table_entries)" 6
check "metrics: failed fetches counted with reason connect" bash -c \
    "curl -s 'http://127.0.0.1:$CTL_METRICS_PORT/metrics' | grep '^tern_ocsp_fetches_total{' |
     grep 'reason=\"connect\"' | awk '{ exit !(\$2 >= 1) }'"
check_eq "staple_dump agrees on the entry count" "$("$STAPLE_DUMP" "$TABLE" | tail -1)" "entries=6"
check "certs: one row per certificate" test "$(ctl certs | grep -cE '^(ecdsa|rsa|revoked|unknown|noocsp|muststaple|casigned|strictdown|missing|noissuer) ')" -eq 10
check "cert: revoked is shown as revoked" bash -c "ctl cert revoked | grep -qi revoked"
check "cert: strictdown shows the must-staple warning" bash -c "ctl cert strictdown | grep -i 'warn' | grep -qi 'true\|yes'"
ctl cert no-such-cert >/dev/null 2>&1
check_eq "cert: unknown name, exit 1 (the daemon says no)" "$?" 1
"$TERNCTL" --socket "$W/nobody.sock" certs >/dev/null 2>&1
check_eq "ternctl: no daemon on the socket, exit 3" "$?" 3
ctl no-such-command >/dev/null 2>&1
check_eq "ternctl: unknown command, exit 2" "$?" 2
check "log: revoked is reported loudly" grep -qi "revoked" "$W/control.log"

# Must-Staple warning before the staple's nextUpdate: raise the threshold
# above the staple's day of validity (the stapler section is read at start:
# restart; the staples come back from the disk cache).
kill -TERM "$CTL_PID"
wait "$CTL_PID"
check_eq "tern-control exits 0 on SIGTERM" "$?" 0
CTL_PID=
check_eq "table: staples stay after a clean stop" "$(table_status ecdsa)" good
CTL_MUST_STAPLE_WARNING=2d ctl_write_config
ctl_start || { echo "FAIL tern-control restart"; exit 1; }
check "json: muststaple now warned (nextUpdate within 2d)" \
    ctl_wait muststaple must_staple_warning true 5
check_eq "certs: muststaple marked at risk" "$(ctl_certs_col muststaple STATE)" "good (at risk)"
check_eq "json: ecdsa is not must-staple, so not warned" "$(ctl_field ecdsa must_staple_warning)" false
check_eq "table: muststaple still stapled while warned" "$(table_status muststaple)" good
check_done
