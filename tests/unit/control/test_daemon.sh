#!/usr/bin/env bash
# tern-control and ternctl end to end on loopback, no root: --check, the
# control socket (framing, malformed and over-long requests on a surviving
# connection, socket mode), ternctl's commands and exit codes, reload by API
# and SIGHUP (a broken file is refused and the running configuration keeps
# serving), metrics, SIGTERM, a stale socket after SIGKILL, a second daemon.
# Certificates come from the fixtures' throwaway PKI and a real `openssl
# ocsp` responder.
#
# env: TERN_CONTROL, TERNCTL, SRCDIR (repository root)
set -uo pipefail
. "$SRCDIR/tests/lib/check.sh"
. "$SRCDIR/tests/lib/pki.sh"

T=$(mktemp -d "/tmp/tern-control-test-$$-XXXXXX")
SHM=/tern-ctl-test-$$
DPID="" OCSP="" NPID=""
cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    [ -n "$NPID" ] && kill "$NPID" 2>/dev/null && wait "$NPID" 2>/dev/null
    [ -n "$OCSP" ] && ocsp_stop "$OCSP" >/dev/null 2>&1
    rm -f "/dev/shm$SHM"
    rm -rf "$T"
}
trap cleanup EXIT

PORT=$(pki_free_port)
MPORT=$(pki_free_port)
pki_make "$T" "$PORT" >/dev/null || exit 1
ocsp_start "$T" "$PORT" --nmin 60 >/dev/null || exit 1
OCSP=$OCSP_PID
SOCK=$T/ctl.sock
ctl() { "$TERNCTL" --socket "$SOCK" "$@"; }

write_config() { # extra certificate entries...
    {
        echo "certificates:"
        echo "  - {name: ecdsa, chain: ecdsa.chain.pem, key: ecdsa.key}"
        echo "  - {name: revoked, chain: revoked.chain.pem, key: revoked.key}"
        echo "  - {name: noocsp, chain: noocsp.chain.pem, key: noocsp.key, policy: strict}"
        for e in "$@"; do echo "  - $e"; done
        echo "stapler: {cache_dir: cache, backoff_min: 1s}"
        echo "table: {shm_name: $SHM, capacity: 16}"
        echo "control: {socket: ctl.sock, socket_mode: \"0640\", socket_group: $(id -gn)}"
        echo "metrics: {listen: \"127.0.0.1:$MPORT\"}"
    } >"$T/tern.yaml"
}

# Sends each argument as one line on ONE connection and prints each reply.
raw() {
    python3 - "$SOCK" "$@" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rb")
for line in sys.argv[2:]:
    s.sendall(line.encode() + b"\n")
    print(f.readline().decode().rstrip("\n"))
EOF
}

# ---- --check ----
out=$("$TERN_CONTROL" --check "$SRCDIR/control/tern.example.yaml" 2>&1)
check "--check accepts the example file" [ $? -eq 0 ]
check_eq "--check prints one summary line" "$(echo "$out" | wc -l)" 1
check "the summary counts" grep -q "ok: 2 certificate(s), 1 listener(s), 1 backend pool(s)" <<<"$out"

printf 'stapler:\n  backoff_min: 30\n  jitter: lots\ncolour: blue\n' >"$T/bad.yaml"
out=$("$TERN_CONTROL" --check "$T/bad.yaml" 2>&1)
check "--check refuses a broken file" [ $? -eq 1 ]
check "every problem is listed (1)" grep -q "bad.yaml:2:16: 'backoff_min': expected a duration" <<<"$out"
check "every problem is listed (2)" grep -q "bad.yaml:3:11: 'jitter': expected a number" <<<"$out"
check "every problem is listed (3)" grep -q "bad.yaml:4:1: unknown section 'colour'" <<<"$out"
check "and counted" grep -q "bad.yaml: 3 problem(s)" <<<"$out"
"$TERN_CONTROL" --bogus >/dev/null 2>&1
check_eq "tern-control usage error exits 2" "$?" 2

# ---- start ----
# A stand-in for systemd's notification socket (bounded lifetime).
python3 - "$T/notify.sock" "$T/notify.log" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
end = time.time() + 100
with open(sys.argv[2], "a", buffering=1) as f:
    while time.time() < end:
        try:
            f.write(s.recv(4096).decode() + "\n")
        except socket.timeout:
            pass
EOF
NPID=$!
wait_for 5 [ -S "$T/notify.sock" ]
export NOTIFY_SOCKET=$T/notify.sock
write_config
"$TERN_CONTROL" --config "$T/tern.yaml" --foreground 2>"$T/daemon.log" &
DPID=$!
check "the daemon comes up" wait_for 10 ctl status
check "sd_notify: READY=1" wait_for 5 grep -qx "READY=1" "$T/notify.log"
check_eq "socket mode follows the configuration" "$(stat -c %a "$SOCK")" 640
check_eq "socket group follows the configuration" "$(stat -c %G "$SOCK")" "$(id -gn)"
check "the first fetch makes ecdsa good" wait_for 10 sh -c "'$TERNCTL' --socket '$SOCK' cert ecdsa | grep -q '^state: *good'"
check "and revoked revoked" wait_for 10 sh -c "'$TERNCTL' --socket '$SOCK' cert revoked | grep -q '^state: *revoked'"

out=$(ctl certs)
check_eq "certs: a header and one line per certificate" "$(echo "$out" | wc -l)" 4
check "certs: header" grep -q "^NAME  *KEY  *RESPONDER  *STATE  *THIS_UPDATE  *NEXT_UPDATE  *NEXT_REFRESH  *MUST_STAPLE  *LAST_ERROR$" <<<"$out"
key=$(pki_key "$T/ecdsa.pem")
check "certs: ecdsa line with its key prefix and responder" grep -Eq "^ecdsa +${key:0:12} +http://127.0.0.1:$PORT +good +20" <<<"$out"
check "certs: revoked is marked" grep -Eq "^revoked +[0-9a-f]{12} .* revoked! " <<<"$out"
check "certs: no OCSP URL is a state, not an error" grep -Eq "^noocsp .* no-ocsp-url .* -$" <<<"$out"
json=$(ctl --json certs)
check "--json prints the reply as one JSON line" [ "$(echo "$json" | wc -l)" -eq 1 ]
check "--json: machine-readable" python3 -c '
import json, sys
r = json.loads(sys.argv[1]); c = {x["name"]: x for x in r["result"]}
assert r["ok"] and c["ecdsa"]["state"] == "good" and c["ecdsa"]["key"] == sys.argv[2]
assert c["revoked"]["ocsp_status"] == "revoked" and c["noocsp"]["policy"] == "strict"' "$json" "$key"

out=$(ctl cert nope 2>&1)
check_eq "unknown certificate exits 1" "$?" 1
check "and says so" grep -q "no certificate named 'nope'" <<<"$out"
ctl frobnicate >/dev/null 2>&1
check_eq "unknown command exits 2" "$?" 2
ctl refresh >/dev/null 2>&1
check_eq "refresh without a name exits 2" "$?" 2
"$TERNCTL" --socket "$T/nothing.sock" status >/dev/null 2>&1
check_eq "no daemon exits 3" "$?" 3
out=$(ctl refresh ecdsa)
check_eq "refresh NAME" "$out" "refresh scheduled for 1 certificate(s)"
out=$(ctl refresh --all)
check "refresh --all" grep -Eq "^refresh scheduled for [0-9] certificate\(s\)$" <<<"$out"

# ---- the socket itself ----
big=$(printf '%5000s' x)
out=$(raw 'status' '{"cmd":"certs","x":1}' "$big" '{"cmd":"cert","name":"ecdsa"}')
l1=$(sed -n 1p <<<"$out") l2=$(sed -n 2p <<<"$out") l3=$(sed -n 3p <<<"$out") l4=$(sed -n 4p <<<"$out")
check "not JSON: an error reply" grep -q '^{"ok":false,"error":"not JSON' <<<"$l1"
check "unknown argument: an error reply" grep -q "'x' is not an argument of 'certs'" <<<"$l2"
check "over-long line: an error reply" grep -q 'request longer than 4096 bytes' <<<"$l3"
check "the same connection still answers" grep -q '^{"ok":true,"result":{"name":"ecdsa"' <<<"$l4"

# 70 clients at once: 64 are served, the rest are closed at once (EOF), and
# the daemon goes on answering afterwards.
out=$(python3 - "$SOCK" <<'EOF'
import socket, sys, time
conns = []
for _ in range(70):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    for attempt in range(500):  # a full listen backlog says EAGAIN: retry, bounded
        try:
            s.connect(sys.argv[1])
            break
        except BlockingIOError:
            time.sleep(0.01)
    conns.append(s)
served = closed = 0
for s in conns:
    try:
        s.sendall(b'{"cmd":"status"}\n')
        r = s.makefile("rb").readline()
    except OSError:
        r = b""
    if r.startswith(b'{"ok":true'):
        served += 1
    elif r == b"":
        closed += 1
print(served, closed)
EOF
)
check_eq "64 clients served at once, the others closed" "$out" "64 6"
check "the daemon still answers after that" ctl status

# ---- metrics ----
metrics() { curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }
check "metrics: served, and fresh within a second" wait_for 5 sh -c "curl -s --max-time 5 http://127.0.0.1:$MPORT/metrics | grep -qx 'tern_staples_revoked 1'"
m=$(metrics)
check "metrics: certificates" grep -qx 'tern_certificates 3' <<<"$m"
check "metrics: staples by state" grep -qx 'tern_staples{state="good"} 1' <<<"$m"
check "metrics: revoked" grep -qx 'tern_staples_revoked 1' <<<"$m"
check "metrics: fetches by result and reason" grep -Eq '^tern_ocsp_fetches_total\{result="ok",reason="ok"\} [1-9]' <<<"$m"
check "metrics: latency histogram" grep -Eq '^tern_ocsp_responder_latency_seconds_bucket\{le="\+Inf"\} [1-9]' <<<"$m"
check "metrics: seconds to next update" grep -Eq '^tern_ocsp_seconds_to_next_update [1-9][0-9]*$' <<<"$m"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$MPORT/other")
check_eq "metrics: other paths are 404" "$code" 404

# ---- reload ----
cp "$T/tern.yaml" "$T/good.yaml"
printf 'certificates:\n  - name: x\nlisteners: 5\n' >"$T/tern.yaml"
out=$(ctl reload 2>&1)
check_eq "reload of a broken file exits 1" "$?" 1
check "and lists its problems with positions" grep -q "tern.yaml:2:5: certificate: missing required key 'chain'" <<<"$out"
check "all of them" grep -q "tern.yaml:3:12: 'listeners': expected a list" <<<"$out"
check "the running configuration keeps serving" sh -c "'$TERNCTL' --socket '$SOCK' cert ecdsa | grep -q '^state: *good'"
kill -HUP "$DPID"
check "SIGHUP with a broken file: refused in the log" wait_for 5 grep -q "reload refused: .*tern.yaml:2:5" "$T/daemon.log"
check "the daemon survives it" ctl status
out=$(ctl status)
check "status shows the refused reloads" grep -q "^reloads.refused: *2$" <<<"$out"

write_config "{name: muststaple, chain: muststaple.chain.pem, key: muststaple.key}"
sed -i 's/capacity: 16/capacity: 32/' "$T/tern.yaml"
out=$(ctl reload)
check_eq "reload of a good file exits 0" "$?" 0
check "sd_notify: RELOADING=1 around a reload" grep -qx "RELOADING=1" "$T/notify.log"
check "reload says how many certificates" grep -q "^reloaded: 4 certificate(s)$" <<<"$out"
check "reload warns that the table section needs a restart" grep -q "section 'table' changed" <<<"$out"
check "the added certificate is stapled" wait_for 10 sh -c "'$TERNCTL' --socket '$SOCK' cert muststaple | grep -q '^state: *good'"
check "ecdsa kept its response across the reload" sh -c "'$TERNCTL' --socket '$SOCK' cert ecdsa | grep -q '^state: *good'"
check "state changes are logged one per line with a reason" grep -q "cert=ecdsa: state pending -> good" "$T/daemon.log"

# ---- a second daemon, SIGKILL and a stale socket, SIGTERM ----
"$TERN_CONTROL" --config "$T/tern.yaml" 2>"$T/second.log"
check_eq "a second daemon on the same table refuses to start" "$?" 1
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null
check "SIGKILL leaves the socket file" [ -S "$SOCK" ]
"$TERN_CONTROL" --config "$T/tern.yaml" 2>>"$T/daemon.log" &
DPID=$!
check "a restart replaces the stale socket" wait_for 10 ctl status
check "and republishes from the disk cache first" wait_for 5 grep -q "published 3 response(s) from the disk cache" "$T/daemon.log"
kill -TERM "$DPID"
wait "$DPID"
check_eq "SIGTERM: clean exit" "$?" 0
DPID=""
check "SIGTERM removes the socket" [ ! -e "$SOCK" ]
check "sd_notify: STOPPING=1" grep -qx "STOPPING=1" "$T/notify.log"
check "the table outlives the daemon" [ -e "/dev/shm$SHM" ]

check_done
