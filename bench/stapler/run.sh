#!/usr/bin/env bash
# Stapler figures against a local `openssl ocsp -multi` responder:
#   bench/stapler/run.sh [BUILD_DIR] [N] [CAP] [WORKERS]
# N certificates (default 1,000; 100,000 works, the PKI then takes about a
# minute to make), CAP requests in flight per responder (default 8), WORKERS
# responder processes (default 4). Prints the cold-start time to the last
# staple, the in-flight high-water mark against the cap, restart from the
# disk cache, and CPU per validated response next to `openssl speed`'s
# ECDSA P-256 verify.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/release}
n=${2:-1000}
cap=${3:-8}
workers=${4:-4}
bin=$build/bench/stapler/bench_stapler
[ -x "$bin" ] || { echo "no $bin: build first (ninja -C $build)" >&2; exit 2; }
. tests/lib/pki.sh

dir=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-stapler.$$.XXXXXX") || exit 2
pids=() multi_pid=
cleanup() {
    local p
    # `openssl ocsp -multi` forks workers that outlive their parent when it
    # is killed: list the workers (children of the PID we started) first,
    # then end the parent and each worker by PID.
    if [ -n "$multi_pid" ]; then
        local kids
        kids=$(pgrep -P "$multi_pid" 2>/dev/null)
        ocsp_stop "$multi_pid" >/dev/null 2>&1
        for p in $kids; do kill -TERM "$p" 2>/dev/null; done
    fi
    for p in "${pids[@]}"; do ocsp_stop "$p" >/dev/null 2>&1; done
    rm -rf "$dir"
    rm -f "/dev/shm/tern-bench-stapler-$$" # if the bench stopped early
}
trap cleanup EXIT

port=$(pki_free_port) && pki_make "$dir" "$port" >/dev/null || exit 2
t0=$(date +%s.%N)
pki_make_leaves "$dir" "$port" "$n" >/dev/null || exit 2
echo "PKI: $n leaves in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"

# ocsp_start has no -multi; start it here, ready when it answers (bounded).
openssl ocsp -index "$dir/index.txt" -CA "$dir/inter.pem" -rsigner "$dir/responder.pem" \
    -rkey "$dir/responder.key" -port "$port" -ndays 1 -multi "$workers" -ignore_err \
    </dev/null >>"$dir/ocsp.log" 2>&1 &
multi_pid=$!
for ((i = 0; i < 100; i++)); do
    openssl ocsp -issuer "$dir/inter.pem" -cert "$dir/leaves/0.pem" -url "http://127.0.0.1:$port" \
        -noverify -no_nonce -timeout 2 -respout "$dir/delegated.der" >/dev/null 2>&1 && break
    sleep 0.1
done
[ -s "$dir/delegated.der" ] || { echo "responder did not start:" >&2; cat "$dir/ocsp.log" >&2; exit 2; }
port_ca=$(pki_free_port)
ocsp_start "$dir" "$port_ca" --ca-signs --ndays 1 >/dev/null || exit 2
pids+=("$OCSP_PID")
ocsp_fetch "$dir" "$dir/leaves/0.pem" "$dir/ca-signed.der" "http://127.0.0.1:$port_ca" || exit 2

echo "responder: openssl ocsp -multi $workers on 127.0.0.1 (delegated signer)"
TERN_BENCH_SHM="/tern-bench-stapler-$$" \
    "$bin" "$dir" "$n" "$cap" "$dir/delegated.der" "$dir/ca-signed.der"
rc=$?

verify=$(openssl speed -seconds 1 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ {print $(NF)}')
if [ -n "$verify" ]; then
    awk -v v="$verify" 'BEGIN { printf "  openssl speed ecdsap256:    %.0f verify/s = %.1f us per ECDSA P-256 verify\n", v, 1e6 / v }'
fi

# Instructions per validation (callgrind: repeatable on a shared machine),
# with the delegate memo as the stapler runs it; 500 validations per file.
if command -v valgrind >/dev/null; then
    for f in delegated ca-signed; do
        valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$f" \
            --toggle-collect=ocsp_validate "$bin" "$dir" 0 0 "$dir/$f.der" >/dev/null 2>&1
        total=$(callgrind_annotate "$dir/cg.$f" 2>/dev/null |
            awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
        # 501 calls: the first check without a memo, then 500 with it.
        awk -v t="$total" -v f="$f" 'BEGIN {
            printf "  instructions per validation: %.2f M (%s, callgrind, 501 calls)\n", t / 501 / 1e6, f }'
    done
fi
exit $rc
