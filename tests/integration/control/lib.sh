# Shared by the control plane's end-to-end tests: a private tern-control
# (its own table name, socket, cache dir and config), ternctl wrappers, and
# assertions on what the staple table holds.
#
# Needs in the environment (meson passes them):
#   TERN_CONTROL  path of tern-control      TERNCTL  path of ternctl
#   STAPLE_DUMP   path of staple_dump
#
# After `ctl_init NAME`:
#   $W        the test's private directory (removed at exit)
#   $TABLE    a shm name unique to this run       $SOCK  the control socket
#   $CACHE    the disk cache directory            $CFG   the config file
#   $PKI      where pki_make is expected to put the PKI
#   ctl_cleanup runs at exit (trap) and ends, by PID, every process started
#   through ctl_start, ctl_ocsp, ctl_fake or registered with ctl_track; after
#   a failed check it prints the end of tern-control's log. CTL_KEEP=1 keeps
#   $W for a look afterwards.

lib=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../lib" && pwd)
. "$lib/pki.sh"
. "$lib/fake.sh"
. "$lib/crafted.sh"
. "$lib/check.sh"

: "${TERN_CONTROL:?path of tern-control}" "${TERNCTL:?path of ternctl}"
: "${STAPLE_DUMP:?path of staple_dump}"

CTL_PIDS=()      # responders and daemons to end at exit
CTL_PID=         # the running tern-control, if any

ctl_cleanup() {
    local p
    [ -n "$CTL_PID" ] && ctl_stop
    if [ "$check_failures" -gt 0 ] && [ -f "$W/control.log" ]; then
        echo "--- last lines of tern-control's log ---"
        tail -n 40 "$W/control.log"
    fi
    for p in "${CTL_PIDS[@]}"; do fake_stop "$p"; done
    # the table outlives its writer on purpose; this run's name is ours
    [ -n "${TABLE:-}" ] && rm -f "/dev/shm/${TABLE#/}"
    if [ "${CTL_KEEP:-0}" = 1 ]; then
        echo "kept $W"
    else
        rm -rf "$W"
    fi
}

ctl_init() { # test name
    W=$(mktemp -d "${TMPDIR:-/tmp}/tern-ctl-$1.$$.XXXXXX") || exit 1
    TABLE=/tern-test-$1-$$
    SOCK=$W/control.sock
    CACHE=$W/cache
    CFG=$W/tern.yaml
    PKI=$W/pki
    mkdir -p "$CACHE"
    export W TABLE SOCK CACHE CFG PKI
    trap ctl_cleanup EXIT
}

# Registers a PID to be ended at exit.
ctl_track() { CTL_PIDS+=("$1"); }

# ocsp_start / fake_start wrappers that register the PID; they set
# OCSP_PID / FAKE_PID like the originals.
ctl_ocsp() { ocsp_start "$@" >/dev/null || return 1; ctl_track "$OCSP_PID"; }
ctl_fake() { fake_start "$@" >/dev/null || return 1; ctl_track "$FAKE_PID"; }

# --- configuration --------------------------------------------------------
# ctl_cert NAME LEAF [key: value]...   adds a certificate entry: LEAF is a
# leaf name of $PKI ("ecdsa") or a path to a leaf PEM issued by inter.pem
# (its key is $PKI/leaves/leaf.key). Extra "key: value" pairs (policy,
# ocsp_url, issuer) are written as given.
CTL_CERTS=""
ctl_cert() {
    local name=$1 leaf=$2 chain key
    shift 2
    if [ -f "$leaf" ]; then
        chain=$W/certs/$name.chain.pem
        mkdir -p "$W/certs"
        cat "$leaf" "$PKI/inter.pem" >"$chain"
        key=$PKI/leaves/leaf.key
    else
        chain=$PKI/$leaf.chain.pem key=$PKI/$leaf.key
    fi
    CTL_CERTS+="  - name: $name
    chain: $chain
    key: $key
"
    local kv
    for kv in "$@"; do CTL_CERTS+="    $kv
"; done
}

# ctl_write_config [FILE]: writes the config from the ctl_cert entries and
# the CTL_* settings below (short timeouts so that tests run in seconds).
# Metrics are off unless CTL_METRICS_PORT is set (then on 127.0.0.1:PORT).
ctl_write_config() {
    local f=${1:-$CFG}
    cat >"$f" <<EOF
# written by tests/integration/control/lib.sh
certificates:
${CTL_CERTS}
stapler:
  cache_dir: ${CTL_CACHE_DIR-$CACHE}
  refresh_fraction: 0.5
  jitter: 0.1
  backoff_min: ${CTL_BACKOFF_MIN:-1s}
  backoff_max: ${CTL_BACKOFF_MAX:-8s}
  connect_timeout: ${CTL_CONNECT_TIMEOUT:-1s}
  total_timeout: ${CTL_TOTAL_TIMEOUT:-2s}
  max_response_bytes: 64KiB
  per_responder_concurrency: 4
  clock_skew: 5m
  must_staple_warning: ${CTL_MUST_STAPLE_WARNING:-1h}

table:
  shm_name: $TABLE
  capacity: 1024

control:
  socket: $SOCK
  socket_mode: "0600"

metrics:
$(if [ -n "${CTL_METRICS_PORT:-}" ]; then
    printf '  enabled: true\n  listen: 127.0.0.1:%s\n' "$CTL_METRICS_PORT"
else
    printf '  enabled: false\n'
fi)
EOF
}

# --- the daemon -----------------------------------------------------------
# ctl_start: starts tern-control on $CFG in the foreground (as a child of
# the test shell), its log in $W/control.log, and waits (bounded, 15 s)
# until `ternctl status` answers. Sets CTL_PID.
ctl_start() {
    "$TERN_CONTROL" --config "$CFG" </dev/null >>"$W/control.log" 2>&1 &
    CTL_PID=$!
    local i
    for ((i = 0; i < 150; i++)); do
        if ! kill -0 "$CTL_PID" 2>/dev/null; then
            echo "tern-control exited at start; log:" >&2
            sed 's/^/  log| /' "$W/control.log" >&2
            wait "$CTL_PID" 2>/dev/null
            CTL_PID=
            return 1
        fi
        ctl status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "tern-control did not answer on $SOCK in 15 s" >&2
    return 1
}

# ctl_stop: SIGTERM, bounded wait (5 s), SIGKILL; reaps it.
ctl_stop() {
    [ -n "$CTL_PID" ] || return 0
    fake_stop "$CTL_PID"
    CTL_PID=
}

# ctl_kill9: SIGKILL, reaped; the table and cache stay as they are.
ctl_kill9() {
    kill -KILL "$CTL_PID" 2>/dev/null
    wait "$CTL_PID" 2>/dev/null
    CTL_PID=
}

# ctl ARGS...: ternctl against our socket.
ctl() { "$TERNCTL" --socket "$SOCK" "$@"; }

# ctl_field NAME FIELD: one field of `ternctl --json cert NAME` (jq syntax
# without the dot: state, ocsp_status, must_staple, last_reason ...).
# Accepts the bare object or the API's {"ok":..,"result":..} envelope.
ctl_field() {
    ctl --json cert "$1" 2>/dev/null | jq -r "(if has(\"result\") then .result else . end) | .$2"
}

# ctl_certs_row NAME: the line of `ternctl certs` whose first column is NAME.
ctl_certs_row() {
    ctl certs 2>/dev/null | awk -v n="$1" '$1 == n'
}

# ctl_certs_col NAME COLUMN: the value in column COLUMN (a header word:
# STATE, KEY, RESPONDER, MUST_STAPLE, LAST_ERROR ...) of NAME's row of
# `ternctl certs` (columns are separated by two or more spaces).
ctl_certs_col() {
    ctl certs 2>/dev/null | awk -F '  +' -v n="$1" -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        $1 == n && c { print $c; found = 1 }
        END { exit !found }'
}

# ctl_status FIELD: a field of `ternctl --json status` (jq path without
# the dot: states.good, table.entries, revoked ...).
ctl_status() {
    ctl --json status 2>/dev/null | jq -r "(if has(\"result\") then .result else . end) | .$1"
}

# ctl_metric 'NAME{labels}': the value of one Prometheus sample from the
# daemon's metrics (CTL_METRICS_PORT must have been set for the config).
ctl_metric() {
    curl -s -m 5 "http://127.0.0.1:$CTL_METRICS_PORT/metrics" |
        awk -v m="$1" 'substr($0, 1, length(m) + 1) == m " " { print $2; found = 1 } END { exit !found }'
}

# ctl_wait NAME FIELD VALUE [SECONDS]: waits (bounded, default 20 s) until
# FIELD of certificate NAME equals VALUE.
ctl_wait() {
    local name=$1 field=$2 want=$3 limit=${4:-20}
    wait_for "$limit" _ctl_is "$name" "$field" "$want"
}
_ctl_is() { [ "$(ctl_field "$1" "$2")" = "$3" ]; }

# --- the table ------------------------------------------------------------
# table_get KEY OUT.der: the table's response for KEY (staple_dump's exit
# status: 0 found, 2 absent, 3 expired).
table_get() { "$STAPLE_DUMP" "$TABLE" "$1" "$2" 2>/dev/null; }

# table_absent KEY: no response published for KEY.
table_absent() {
    "$STAPLE_DUMP" "$TABLE" "$1" "$W/.absent.der" >/dev/null 2>&1
    [ $? -eq 2 ]
}

# table_status LEAF: extracts LEAF's staple from the table and prints its
# status as openssl verifies it against the root (good/revoked/unknown);
# fails when absent or when it does not verify.
table_status() { # leaf (name or path)
    local cert=$1 out=$W/.status.$$.der
    [ -f "$cert" ] || cert=$PKI/$1.pem
    table_get "$(pki_key "$cert")" "$out" || return 1
    ocsp_status "$PKI" "$cert" "$out"
}

# table_row KEY: staple_dump's listing line for KEY.
table_row() { "$STAPLE_DUMP" "$TABLE" 2>/dev/null | grep "^key=$1 "; }

# table_is LEAF FILE.der: the table holds exactly FILE's bytes for LEAF.
table_is() {
    local cert=$1 out=$W/.is.$$.der
    [ -f "$cert" ] || cert=$PKI/$1.pem
    table_get "$(pki_key "$cert")" "$out" && cmp -s "$out" "$2"
}

# requests_at_least LOG N: the fake responder logged at least N requests.
requests_at_least() { [ "$(fake_requests "$1")" -ge "$2" ]; }

# cache_files_at_least N: $CACHE holds at least N files.
cache_files_at_least() { [ "$(find "$CACHE" -maxdepth 1 -type f | wc -l)" -ge "$1" ]; }

# cache_holds FILE.der: some file in $CACHE contains FILE's bytes (whatever
# the cache's own file format around them).
cache_holds() {
    python3 - "$1" "$CACHE" <<'PY'
import os, sys
want = open(sys.argv[1], "rb").read()
d = sys.argv[2]
sys.exit(0 if want and any(want in open(os.path.join(d, f), "rb").read()
                           for f in os.listdir(d)
                           if os.path.isfile(os.path.join(d, f))) else 1)
PY
}

# Epoch seconds of an RFC 3339 string, or empty when null.
ctl_epoch() { [ -n "$1" ] && [ "$1" != null ] && date -u -d "$1" +%s; }

# `check NAME bash -c "..."` runs a child shell: give it these helpers and
# this test's paths.
export -f $(declare -F | awk '{print $3}')
export TERN_CONTROL TERNCTL STAPLE_DUMP
