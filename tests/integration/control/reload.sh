#!/usr/bin/env bash
# Configuration reloads: a broken file is refused (by `ternctl reload` and by
# SIGHUP) with its errors at file:line:column, and the running configuration
# keeps serving; a good file adds and removes certificates. `tern-control
# --check` reports the same errors and exits non-zero.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ctl_init reload

port=$(pki_free_port)
pki_make "$PKI" "$port" || { echo "FAIL pki_make"; exit 1; }
ctl_ocsp "$PKI" "$port" --ndays 1 || { echo "FAIL ocsp_start"; exit 1; }
ctl_cert ecdsa ecdsa
ctl_write_config
cp "$CFG" "$W/good1.yaml"
key=$(pki_key "$PKI/ecdsa.pem")

check "--check accepts the good file" "$TERN_CONTROL" --check "$CFG"
ctl_start || { echo "FAIL tern-control start"; exit 1; }
check "ecdsa: good" ctl_wait ecdsa state good
table_get "$key" "$W/held.der"

# broken 1: a YAML syntax error (an unclosed flow sequence) on line 3
{
    echo "# broken on purpose"
    echo "certificates:"
    echo "  - name: [ecdsa"
    sed -n '/^stapler:/,$p' "$W/good1.yaml"
} >"$W/broken-syntax.yaml"
# broken 2: well-formed YAML, but an unknown key and a missing chain
CTL_CERTS=""
ctl_cert ecdsa ecdsa "colour: blue"
ctl_write_config "$W/broken-keys.yaml"
sed -i "/^    chain: /d" "$W/broken-keys.yaml"
CTL_CERTS=""

"$TERN_CONTROL" --check "$W/broken-syntax.yaml" >"$W/out" 2>&1
rc=$?
sed 's/^/  --check| /' "$W/out"
check "--check: syntax error exits non-zero" test "$rc" -ne 0
check "--check: syntax error at file:line:column (line 3, or 4 where libyaml notices)" \
    grep -qE 'broken-syntax.yaml:[34]:[0-9]+' "$W/out"
"$TERN_CONTROL" --check "$W/broken-keys.yaml" >"$W/out" 2>&1
rc=$?
sed 's/^/  --check| /' "$W/out"
check "--check: bad keys exit non-zero" test "$rc" -ne 0
check "--check: the unknown key is reported with its line" \
    bash -c "grep -E 'broken-keys.yaml:[0-9]+:[0-9]+' '$W/out' | grep -q colour"
check "--check: the missing chain is reported" grep -q chain "$W/out"

for broken in broken-syntax broken-keys; do
    cp "$W/$broken.yaml" "$CFG"
    ctl reload >"$W/out" 2>&1
    rc=$?
    sed 's/^/  reload| /' "$W/out"
    check "$broken: ternctl reload fails" test "$rc" -ne 0
    check "$broken: the error names the file, line and column" \
        grep -qE 'tern.yaml:[0-9]+:[0-9]+' "$W/out"
    check "$broken: tern-control still running" kill -0 "$CTL_PID"
    check_eq "$broken: ecdsa still good" "$(ctl_field ecdsa state)" good
    check "$broken: table still holds the staple" table_is ecdsa "$W/held.der"
done

# SIGHUP with a broken file: refused and logged
cp "$W/broken-syntax.yaml" "$CFG"
lines=$(wc -l <"$W/control.log")
kill -HUP "$CTL_PID"
check "SIGHUP with a broken file: refusal logged" wait_for 5 \
    bash -c "tail -n +$((lines + 1)) '$W/control.log' | grep -qE 'tern.yaml:[0-9]+:[0-9]+'"
check "SIGHUP: tern-control still running" kill -0 "$CTL_PID"
check_eq "SIGHUP: ecdsa still good" "$(ctl_field ecdsa state)" good
check "SIGHUP: table still holds the staple" table_is ecdsa "$W/held.der"

# a good file: rsa added, ecdsa removed
ctl_cert rsa rsa
ctl_write_config
check "good reload accepted" ctl reload
check "rsa: added and good" ctl_wait rsa state good
check_eq "table: rsa staple verifies" "$(table_status rsa)" good
check "ecdsa: gone from ternctl" refuses ctl cert ecdsa
check "ecdsa: withdrawn from the table" wait_for 5 table_absent "$key"
check "certs: only rsa listed" bash -c "[ -n \"\$(ctl_certs_row rsa)\" ] && [ -z \"\$(ctl_certs_row ecdsa)\" ]"

# SIGHUP with a good file brings ecdsa back
cp "$W/good1.yaml" "$CFG"
kill -HUP "$CTL_PID"
check "SIGHUP good file: ecdsa back and good" ctl_wait ecdsa state good
check "SIGHUP good file: rsa removed" wait_for 5 refuses ctl cert rsa

# one writer per table: a second tern-control on the same table is refused
# (exit 1) and the first keeps serving
table_get "$key" "$W/before.der"
timeout 20 "$TERN_CONTROL" --config "$CFG" --socket "$W/second.sock" >"$W/second.log" 2>&1
check_eq "a second tern-control on the same table exits 1" "$?" 1
sed 's/^/  second| /' "$W/second.log" | tail -3
check "the second one says why" grep -qiE "writer|busy|held|lock" "$W/second.log"
check "the first one still answers" bash -c "ctl status >/dev/null"
check "the table still holds the staple" table_is ecdsa "$W/before.der"
check_eq "status: refused reloads counted (2 by ternctl, 1 by SIGHUP)" "$(ctl_status reloads.refused)" 3
check_eq "status: applied reloads counted" "$(ctl_status reloads.ok)" 2
check_done
