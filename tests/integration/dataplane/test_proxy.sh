#!/usr/bin/env bash
# The plaintext proxy end to end: kernel clients -> tern-dataplane (AF_XDP,
# 2 workers, software steering) -> kernel echo backend, payloads from 1 B to
# 8 MiB checked by SHA-256. 1,000 sequential then 200 concurrent
# connections. Optional environment: PROXY_SEQ, PROXY_CONC (counts),
# DP_QUEUES (queues and workers, default 2),
# DP_EXTRA (more tern arguments), NFT_LOSS_PCT (drop that % each way in
# the client namespace), NAME (label).
source "$(dirname "$0")/lib.sh"
dp_require
dp_net_up
SEQ=${PROXY_SEQ:-1000}
CONC=${PROXY_CONC:-200}

if [ -n "${NFT_LOSS_PCT:-}" ]; then
    command -v nft >/dev/null || skip "nft missing"
    in_cli nft -f - <<NFT
table inet ternloss {
    chain in { type filter hook input priority 0; numgen random mod 100 < $NFT_LOSS_PCT drop; }
    chain out { type filter hook output priority 0; numgen random mod 100 < $NFT_LOSS_PCT drop; }
}
NFT
    log "nftables: dropping $NFT_LOSS_PCT% of packets each way in the client namespace"
fi
be_start
# shellcheck disable=SC2086
dp_start ${DP_EXTRA:-}

run_load() { # label, seconds, load_client args...
    local label=$1 secs=$2; shift 2
    local out
    # Bounded below meson's timeout so that the EXIT trap always cleans up.
    out=$(in_cli timeout "$secs" python3 "$DP_LIB_DIR/load_client.py" "$DP_ADDR" "$VIP_PORT" "$@") || {
        echo "$out"; dp_stats | head -100; fail "$label"; }
    log "$label: $out"
}
SEQ_SECS=${SEQ_SECS:-400}
CONC_SECS=${CONC_SECS:-300}
[ -n "${NFT_LOSS_PCT:-}" ] && SEQ_SECS=900 CONC_SECS=600
run_load "sequential" "$SEQ_SECS" --conns "$SEQ" --concurrency 1 --seed 11 --timeout 60
run_load "concurrent" "$CONC_SECS" --conns "$CONC" --concurrency "$CONC" --seed 12 --timeout 120

sleep 0.5
dp_alive || fail "dataplane died"
accepted=$(dp_stat proxy_accepted)
steered=$(dp_stat steered_out)
log "proxy_accepted $accepted, steered_out $steered, aborted $(dp_stat proxy_aborted), completed $(dp_stat proxy_completed)"
log "tern TCP: $(dp_stat tcp_SEG_OUT) segments out, $(dp_stat tcp_RETRANSMIT) retransmitted" \
    "($(dp_stat tcp_FAST_RETRANSMIT) fast, $(dp_stat tcp_RTO_EXPIRED) RTO expiries," \
    "$(dp_stat tcp_TLP_PROBE) tail loss probes)"
[ "$accepted" -ge $((SEQ + CONC)) ] || fail "proxy_accepted $accepted < $((SEQ + CONC))"
if [ "${DP_QUEUES:-2}" -gt 1 ]; then
    [ "$steered" -gt 0 ] || fail "no frame was steered between the workers"
fi
dp_xsk_check
if [ -n "${CHECK_FAULTS:-}" ]; then
    dup=$(dp_stat fault_dup); reo=$(dp_stat fault_reorder)
    log "fault knob: $dup duplicated, $reo reordered"
    [ "$dup" -gt 0 ] && [ "$reo" -gt 0 ] || fail "fault knob did not act"
fi
echo "PASS"
