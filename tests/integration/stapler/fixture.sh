#!/usr/bin/env bash
# The PKI and responder fixture works: a real `openssl ocsp` responder answers
# good / revoked / unknown for the standard leaves, its delegated signer
# verifies against the root, a response signed by an unrelated key does not,
# and the responder ends by PID.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../lib/pki.sh"
. "$here/../../lib/check.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-fixture.$$.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do ocsp_stop "$p"; done
    rm -rf "$work"
}
trap cleanup EXIT

expect_status() { # leaf, resp, expected
    local got
    got=$(ocsp_status "$work/pki" "$1" "$2") && [ "$got" = "$3" ] ||
        { echo "  $1: got '${got:-}' expected '$3'" >&2; return 1; }
}

port=$(pki_free_port)
pki_make "$work/pki" "$port" || { echo "FAIL pki_make"; exit 1; }
for f in root.pem inter.pem responder.pem responder.key index.txt; do
    check "pki_make wrote $f" test -s "$work/pki/$f"
done
for leaf in $PKI_LEAVES; do
    check "$leaf: leaf, chain and key" test -s "$work/pki/$leaf.pem" -a -s "$work/pki/$leaf.chain.pem" \
        -a -s "$work/pki/$leaf.key"
    check "$leaf: chain verifies to the root" bash -c \
        "openssl verify -CAfile '$work/pki/root.pem' -untrusted '$work/pki/inter.pem' \
         '$work/pki/$leaf.pem' >/dev/null"
done
check "muststaple carries the TLS Feature status_request" bash -c \
    "openssl x509 -in '$work/pki/muststaple.pem' -noout -ext tlsfeature | grep -q status_request"
check "ecdsa does not carry the TLS Feature" bash -c \
    "! openssl x509 -in '$work/pki/ecdsa.pem' -noout -text | grep -q 'TLS Feature'"
check "ecdsa AIA OCSP URL names the port" bash -c \
    "[ \"\$(openssl x509 -in '$work/pki/ecdsa.pem' -noout -ocsp_uri)\" = http://127.0.0.1:$port ]"
check "noocsp has no OCSP URL" bash -c \
    "[ -z \"\$(openssl x509 -in '$work/pki/noocsp.pem' -noout -ocsp_uri)\" ]"
check "rsa leaf is RSA-2048" bash -c \
    "openssl x509 -in '$work/pki/rsa.pem' -noout -text | grep -q 'Public-Key: (2048 bit)'"
check "responder cert has OCSPSigning and ocsp-nocheck" bash -c \
    "openssl x509 -in '$work/pki/responder.pem' -noout -text | grep -q 'OCSP Signing' &&
     openssl x509 -in '$work/pki/responder.pem' -noout -text | grep -q 'OCSP No Check'"

# Delegated signer (the default).
ocsp_start "$work/pki" "$port" --ndays 1 >/dev/null || { echo "FAIL ocsp_start"; exit 1; }
pid=$OCSP_PID
pids+=("$pid")
check "ocsp_start printed a live PID" kill -0 "$pid"
for leaf in ecdsa rsa muststaple revoked unknown; do
    check "fetch $leaf" ocsp_fetch "$work/pki" "$leaf" "$work/$leaf.der"
done
check "noocsp fetched via DIR/port" ocsp_fetch "$work/pki" noocsp "$work/noocsp.der"
check "ecdsa is good" expect_status ecdsa "$work/ecdsa.der" good
check "rsa is good" expect_status rsa "$work/rsa.der" good
check "muststaple is good" expect_status muststaple "$work/muststaple.der" good
check "noocsp is good" expect_status noocsp "$work/noocsp.der" good
check "revoked is revoked" expect_status revoked "$work/revoked.der" revoked
check "unknown is unknown" expect_status unknown "$work/unknown.der" unknown
check "a response for rsa holds no status for ecdsa" \
    refuses ocsp_status "$work/pki" ecdsa "$work/rsa.der"
check "signed by the delegated responder" bash -c \
    "openssl ocsp -respin '$work/ecdsa.der' -resp_text -noverify 2>/dev/null |
     grep -q 'Responder Id: .*tern test OCSP responder'"
check "nextUpdate present with --ndays" bash -c \
    "openssl ocsp -respin '$work/ecdsa.der' -resp_text -noverify 2>/dev/null | grep -q 'Next Update'"
check "delegated signer does not verify against an unrelated root" bash -c \
    "! openssl ocsp -respin '$work/ecdsa.der' -issuer '$work/pki/inter.pem' \
       -cert '$work/pki/ecdsa.pem' -CAfile '$work/pki/rogue.pem' >/dev/null 2>&1"
check "ocsp_stop" ocsp_stop "$pid"
check "responder is gone" pki_pid_gone "$pid"
pids=()
check "port no longer answers" refuses ocsp_fetch "$work/pki" ecdsa "$work/none.der"

# The intermediate signs its own responses.
pid=$(ocsp_start "$work/pki" "$port" --ca-signs) || { echo "FAIL ocsp_start --ca-signs"; exit 1; }
pids+=("$pid")
check "fetch ecdsa (CA signs)" ocsp_fetch "$work/pki" ecdsa "$work/ca.der"
check "CA-signed response is good" expect_status ecdsa "$work/ca.der" good
check "signed by the intermediate" bash -c \
    "openssl ocsp -respin '$work/ca.der' -resp_text -noverify 2>/dev/null |
     grep -q 'Responder Id: .*tern test intermediate'"
ocsp_stop "$pid"; pids=()

# An unrelated key signs: the response must not verify.
pid=$(ocsp_start "$work/pki" "$port" --signer "$work/pki/rogue.pem" "$work/pki/rogue.key") ||
    { echo "FAIL ocsp_start --signer"; exit 1; }
pids+=("$pid")
check "fetch ecdsa (rogue signer)" ocsp_fetch "$work/pki" ecdsa "$work/rogue.der"
check "rogue-signed response does not verify" \
    refuses ocsp_status "$work/pki" ecdsa "$work/rogue.der"
ocsp_stop "$pid"; pids=()

# Extra leaves for benchmarks are issued by the intermediate and answered.
check "pki_make_leaves 50" pki_make_leaves "$work/pki" "$port" 50
check "50 extra leaves" test "$(ls "$work/pki/leaves" | grep -c '^[0-9]*\.pem$')" -eq 50
pid=$(ocsp_start "$work/pki" "$port") || { echo "FAIL ocsp_start (bulk)"; exit 1; }
pids+=("$pid")
check "fetch bulk leaf 49" ocsp_fetch "$work/pki" "$work/pki/leaves/49.pem" "$work/bulk.der"
check "bulk leaf 49 is good" expect_status "$work/pki/leaves/49.pem" "$work/bulk.der" good

check_done
