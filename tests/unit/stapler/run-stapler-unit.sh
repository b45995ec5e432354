#!/usr/bin/env bash
# Runs the stapler unit tests against a real throwaway PKI and real
# responders: builds the PKI (tests/lib/pki.sh), starts `openssl ocsp`
# twice (delegated signer, and the CA itself), a fake responder per
# misbehaviour the stapler must survive, fetches a few real DER responses,
# then runs the C test binary with everything in its environment.
#
#   run-stapler-unit.sh SRCROOT TEST_BINARY
#
# Every process is ended by the PID this script started; the temporary
# directory is removed on exit.
set -uo pipefail
src=$1 bin=$2
. "$src/tests/lib/pki.sh"
. "$src/tests/lib/fake.sh"
. "$src/tests/lib/crafted.sh"

dir=$(mktemp -d "${TMPDIR:-/tmp}/tern-stapler-unit.$$.XXXXXX") || exit 2
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        if [ -f "$dir/fake.$p" ]; then fake_stop "$p"; else ocsp_stop "$p"; fi
    done
    rm -rf "$dir"
    # tables the test binary left behind if it stopped early (its names)
    rm -f /dev/shm/tern-stapler-unit-$$-*
}
trap cleanup EXIT

port=$(pki_free_port) && pki_make "$dir/pki" "$port" || exit 2
# The bulk leaves go into index.txt before the responders read it: added
# later, a responder that had not yet reloaded its index answered "unknown".
pki_make_leaves "$dir/pki" "$port" 24 >/dev/null || exit 2
ocsp_start "$dir/pki" "$port" --ndays 1 >/dev/null || exit 2
pids+=("$OCSP_PID")
port_ca=$(pki_free_port) &&
ocsp_start "$dir/pki" "$port_ca" --ndays 1 --ca-signs >/dev/null || exit 2
pids+=("$OCSP_PID")
# The port that must refuse connections is held by the test binary itself.

crafted_make "$dir/pki" ecdsa "$dir/crafted" || exit 2
fake() { # name mode [der]
    local p
    p=$(pki_free_port) || return 1
    fake_start "$p" 300 --log "$dir/$1.log" "${@:2}" >/dev/null || return 1
    pids+=("$FAKE_PID")
    : >"$dir/fake.$FAKE_PID"
    export "TERN_PORT_${1^^}=$p"
}
fake garbage garbage || exit 2
fake http500 http500 || exit 2
fake hang hang || exit 2
fake older file "$dir/crafted/older.der" || exit 2
fake seq seq "$dir/crafted/good.der" "$dir/crafted/older.der" "$dir/crafted/rogue.der" \
    "$dir/crafted/newer.der" || exit 2
fake count file "$dir/crafted/good.der" || exit 2
for f in trylater unauthorized other future expired rogue no-next; do
    fake "${f//-/}" file "$dir/crafted/$f.der" || exit 2
done

for leaf in ecdsa revoked unknown muststaple; do
    ocsp_fetch "$dir/pki" "$leaf" "$dir/real-$leaf.der" || exit 2
done
ocsp_fetch "$dir/pki" ecdsa "$dir/real-ca-ecdsa.der" "http://127.0.0.1:$port_ca" || exit 2

mkdir -p "$dir/cache" "$dir/cache2"
TERN_DIR=$dir TERN_PORT=$port TERN_PORT_CA=$port_ca \
TERN_KEY_ECDSA=$(pki_key "$dir/pki/ecdsa.pem") \
TERN_SHM_NAME="/tern-stapler-unit-$$" \
    "$bin"
