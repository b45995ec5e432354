#!/usr/bin/env bash
# Staple table figures: bench_staple_table's own timing, then instructions
# per lookup from callgrind (repeatable on a shared machine), the copy of the
# response excluded.
#   bench/staple_table/run.sh [BUILD_DIR] [ENTRIES]
set -euo pipefail
build=${1:-build/release}
n=${2:-100000}
bin=$build/bench/staple_table/bench_staple_table
[ -x "$bin" ] || { echo "no $bin: build first (ninja -C $build)" >&2; exit 2; }
"$bin" "$n"

lookups=200000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    --toggle-collect=staple_table_lookup --dump-instr=no "$bin" --lookups "$lookups" "$n" >/dev/null 2>&1
callgrind_annotate --threshold=100 --inclusive=no --auto=no "$out/cg" > "$out/ann" 2>/dev/null
total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}' "$out/ann")
copy=$(awk '/^ *[0-9,]+ .*:_*mem(cpy|move)[a-z_]* \[/ {gsub(",", "", $1); s += $1} END {print s + 0}' "$out/ann")
awk -v t="$total" -v c="$copy" -v n="$lookups" 'BEGIN {
    printf "  instructions per lookup:    %.1f without the copy (%.1f with it; callgrind, %d lookups)\n", (t - c) / n, t / n, n
    printf "  instruction target:         300 per lookup: %s\n", ((t - c) / n <= 300) ? "met" : "MISSED"
}'
