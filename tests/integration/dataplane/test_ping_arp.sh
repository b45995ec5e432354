#!/usr/bin/env bash
# Ping and ARP through tern-dataplane on AF_XDP: the gratuitous ARP at start
# replaces a stale neighbour entry, ARP requests for 198.18.0.1 are answered,
# the dataplane resolves the client itself, echo requests of many sizes are
# answered from both queues, and the counters say so.
source "$(dirname "$0")/lib.sh"
dp_require
dp_net_up

dp_mac=$(ip -n "$NS_DP" -o link show "$IF_DP" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
# A stale entry with a wrong MAC: only the gratuitous ARP can fix it before
# any traffic.
in_cli ip neigh replace "$DP_ADDR" lladdr 02:00:00:00:00:99 dev "$IF_CLI" nud stale
sleep 1.2 # past the kernel's ARP locktime (1 s)
dp_start
for _ in $(seq 30); do
    cur=$(in_cli ip neigh show "$DP_ADDR" dev "$IF_CLI" | awk '{print $3}')
    [ "$cur" = "$dp_mac" ] && break
    sleep 0.1
done
[ "$cur" = "$dp_mac" ] || fail "gratuitous ARP did not update the neighbour ($cur != $dp_mac)"
log "gratuitous ARP updated the client's neighbour entry to $dp_mac"

# Forget it and resolve from scratch: the dataplane answers requests.
in_cli ip neigh flush dev "$IF_CLI"
in_cli ping -c 3 -W 2 -i 0.2 "$DP_ADDR" >/dev/null || fail "ping"
cur=$(in_cli ip neigh show "$DP_ADDR" dev "$IF_CLI" | awk '{print $3}')
[ "$cur" = "$dp_mac" ] || fail "ARP answer has wrong MAC ($cur)"
for size in 0 1 56 1000 1472; do
    in_cli ping -c 2 -W 2 -i 0.2 -s "$size" "$DP_ADDR" >/dev/null || fail "ping -s $size"
done
# Many echo requests: the kernel spreads flows over both queues by hash, so
# a longer run with varying ids lands on both workers.
out=$(in_cli ping -c 200 -i 0.005 -W 2 -q "$DP_ADDR") || fail "ping flood: $out"
echo "$out" | grep -q " 0% packet loss" || fail "loss in ping run: $out"
# Too big for the MTU (1500): the kernel fragments, we count and drop.
in_cli ping -c 1 -W 1 -s 2000 "$DP_ADDR" >/dev/null && fail "fragmented ping answered"
sleep 0.05

replies=$(dp_stat icmp_echo_replies)
arp_replies=$(dp_stat arp_replies_sent)
arp_req=$(dp_stat arp_requests_sent)
frags=$(dp_stat drop_ip_frag)
log "echo replies $replies, ARP replies $arp_replies, ARP requests $arp_req, fragments dropped $frags"
[ "$replies" -ge 213 ] || fail "icmp_echo_replies $replies < 213"
[ "$arp_replies" -ge 1 ] || fail "no ARP reply counted"
[ "$arp_req" -ge 2 ] || fail "no gratuitous ARP counted per worker"
[ "$frags" -ge 1 ] || fail "fragments not counted"
dp_alive || fail "dataplane died"
echo "PASS"
