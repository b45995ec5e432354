#!/usr/bin/env bash
# Instructions per operation of bench_pool's cases, counted by callgrind
# (deterministic on a shared machine): the difference between N and 2N
# operations divided by N, so set-up cost cancels out.
#   bench/proxy/run.sh BUILD_DIR
set -euo pipefail
bin=${1:?build dir}/bench/proxy/bench_pool
command -v valgrind >/dev/null || { echo "valgrind missing"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
N=20000
count() { # case ops
    valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" --only "$1" "$2" \
        >/dev/null 2>"$tmp/err"
    sed -n 's/^==[0-9]*== Collected : //p' "$tmp/err"
}
printf "%-18s %12s\n" case "instr/op"
for c in rr-2 rr-64 rr-64-half-down lc-2 lc-8 lc-64 lc-64-half-down pp2-plain pp2-tls; do
    a=$(count "$c" $N)
    b=$(count "$c" $((2 * N)))
    printf "%-18s %12d\n" "$c" $(((b - a) / N))
done
