#!/usr/bin/env bash
# Malformed frames (bad lengths, bad checksums, truncated headers, odd
# flags, fragments, wrong protocol) sent from a raw socket: each counted
# under its drop reason, and the workers keep answering.
source "$(dirname "$0")/lib.sh"
dp_require
dp_net_up
dp_start
in_cli ping -c 1 -W 2 "$DP_ADDR" >/dev/null || fail "ping before"
dp_mac=$(ip -n "$NS_DP" -o link show "$IF_DP" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

before=$(dp_stats)
in_cli python3 "$DP_LIB_DIR/malformed.py" "$IF_CLI" "$dp_mac" "$CLI_ADDR" "$DP_ADDR" \
    >"$WORKDIR/sent.json" || fail "sender"
sleep 0.3
after=$(dp_stats)
python3 - "$WORKDIR/sent.json" <<PY || fail "counters"
import json, sys
before = json.loads('''$before''')
after = json.loads('''$after''')
sent = json.load(open(sys.argv[1]))
bad = 0
for reason, n in sorted(sent.items()):
    d = after[reason] - before[reason]
    ok = d >= n
    print("# %-20s sent %4d counted %4d %s" % (reason, n, d, "" if ok else "<-- MISSING"))
    bad += not ok
sys.exit(1 if bad else 0)
PY
dp_alive || fail "dataplane died"
in_cli ping -c 3 -W 2 -i 0.2 "$DP_ADDR" >/dev/null || fail "ping after"
echo "PASS"
