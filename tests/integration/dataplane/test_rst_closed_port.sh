#!/usr/bin/env bash
# A SYN to a port nobody listens on gets a RST at once (connection refused,
# not a timeout), on both workers' flows, and the proxy port still works.
source "$(dirname "$0")/lib.sh"
dp_require
dp_net_up
be_start
dp_start
out=$(in_cli python3 - "$DP_ADDR" <<'PY'
import socket, sys, time
refused = other = 0
t0 = time.monotonic()
for i in range(40):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((sys.argv[1], 81 + i % 3))
        other += 1
    except ConnectionRefusedError:
        refused += 1
    except OSError:
        other += 1
    s.close()
print(refused, other, round(time.monotonic() - t0, 2))
PY
)
read -r refused other secs <<<"$out"
log "closed ports: $refused refused, $other other outcomes, in $secs s"
[ "$refused" -eq 40 ] || fail "expected 40 refusals, got $refused ($other other)"
rst=$(dp_stat tcp_RST_OUT)
[ "$rst" -ge 40 ] || fail "tcp_RST_OUT $rst < 40"
in_cli python3 "$DP_LIB_DIR/load_client.py" "$DP_ADDR" "$VIP_PORT" --conns 5 >/dev/null ||
    fail "proxy after RSTs"
dp_alive || fail "dataplane died"
echo "PASS"
