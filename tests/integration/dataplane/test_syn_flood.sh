#!/usr/bin/env bash
# A bounded SYN flood (hping3, spoofed source that never answers) against
# the proxy port with a small SYN backlog: SYN cookies take over, and
# legitimate connections made during the flood still complete with their
# data intact.
source "$(dirname "$0")/lib.sh"
dp_require
command -v hping3 >/dev/null || skip "hping3 missing"
dp_net_up
# The flood's source address exists (so ARP resolves and SYN-ACKs really go
# out) but drops everything it receives: no RST ever frees a half-open entry.
FLOOD_SRC=198.18.0.9
ip -n "$NS_CLI" addr add "$FLOOD_SRC/24" dev "$IF_CLI"
in_cli nft -f - <<NFT
table inet ternflood {
    chain in { type filter hook input priority 0; ip daddr $FLOOD_SRC drop; }
}
NFT
be_start
dp_start --syn-backlog 64
# 20,000 SYNs at ~10 kpps (2 s), random source ports, in the background.
in_cli timeout 20 hping3 -q -S -p "$VIP_PORT" -a "$FLOOD_SRC" -i u100 -c 20000 \
    "$DP_ADDR" >"$WORKDIR/hping.log" 2>&1 &
FLOOD=$!
BG_PIDS+=($FLOOD)
sleep 0.3
out=$(in_cli timeout 120 python3 "$DP_LIB_DIR/load_client.py" "$DP_ADDR" "$VIP_PORT" --conns 30 \
      --concurrency 3 --max-size 200000 --timeout 30) || { echo "$out"; fail "legitimate connections during the flood"; }
log "during the flood: $out"
wait "$FLOOD" 2>/dev/null || true
syn_in=$(dp_stat tcp_SYN_IN)
cookies=$(dp_stat tcp_SYNCOOKIE_SENT)
full=$(dp_stat tcp_SYN_BACKLOG_FULL)
log "SYNs in $syn_in, backlog full $full, SYN cookies sent $cookies"
[ "$syn_in" -ge 5000 ] || fail "flood did not arrive ($syn_in SYNs)"
[ "$cookies" -gt 0 ] || fail "no SYN cookie sent with a full backlog"
dp_alive || fail "dataplane died"
echo "PASS"
