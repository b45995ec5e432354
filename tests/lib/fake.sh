# tern test fixtures: start and stop tests/lib/fake_responder.py from bash.
#
#   fake_start PORT LIFETIME [--log FILE] [--delay S] MODE [DER...]
#       starts the fake responder on 127.0.0.1:PORT, waits (bounded, 10 s) for
#       its READY line, sets FAKE_PID and prints the PID. Call it as
#       `fake_start ... >/dev/null; pid=$FAKE_PID` so that it is the test
#       shell's own child.
#   fake_stop PID      SIGTERM, bounded wait, SIGKILL if needed; reaps it
#   fake_requests LOG  prints how many requests the responder logged (0 if none)

_fake_lib=$(dirname "${BASH_SOURCE[0]}")

fake_start() { # port lifetime args...
    local port=$1 lifetime=$2 out pid i
    shift 2 || { echo "fake.sh: usage: fake_start PORT LIFETIME MODE ..." >&2; return 1; }
    out=$(mktemp "${TMPDIR:-/tmp}/tern-fake.$$.XXXXXX") || return 1
    python3 "$_fake_lib/fake_responder.py" --port "$port" --lifetime "$lifetime" "$@" \
        </dev/null >"$out" 2>&1 &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        if grep -q "^READY pid=$pid " "$out"; then
            rm -f "$out"
            FAKE_PID=$pid
            echo "$pid"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "fake.sh: fake responder on port $port did not start:" >&2
    cat "$out" >&2
    rm -f "$out"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
}

fake_stop() { # pid
    local pid=$1 i state
    [ -n "$pid" ] || return 1
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    for ((i = 0; i < 50; i++)); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
        [ "$state" = Z ] && break
        [ $i -eq 30 ] && kill -KILL "$pid" 2>/dev/null
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    return 0
}

fake_requests() { # log
    if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}
