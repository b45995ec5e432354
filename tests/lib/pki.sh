# tern test fixtures: a throwaway PKI and a real `openssl ocsp` responder.
#
# Source this file from a bash test:   . "$SRCDIR/tests/lib/pki.sh"
#
#   pki_make DIR PORT            root, intermediate, delegated OCSP signer and
#                                the standard leaves (below) in DIR
#   pki_make_leaves DIR PORT N   N extra leaves sharing one key, DIR/leaves/
#   pki_free_port                prints a free loopback TCP port
#   ocsp_start DIR PORT [opts]   starts `openssl ocsp`, waits until it answers,
#                                sets OCSP_PID and prints the PID
#   ocsp_stop PID                ends that responder (TERM, then KILL) and waits
#   pki_pid_gone PID             true when PID has exited (absent or a zombie)
#   ocsp_fetch DIR LEAF OUT.der [URL]
#                                asks the responder for LEAF's status, writes the
#                                DER response to OUT.der
#   ocsp_status DIR LEAF RESP.der
#                                verifies RESP.der against DIR/root.pem and prints
#                                good | revoked | unknown (returns 1 if it does
#                                not verify, has no SHA-1 CertID for LEAF, or its
#                                thisUpdate/nextUpdate are out of range)
#   pki_key CERT                 prints the staple table key (SHA-256 of the DER)
#   ocsp_times RESP.der          prints "<thisUpdate> <nextUpdate>" in epoch seconds
#
# Files pki_make writes (stable names; every key is unencrypted PEM):
#   root.pem root.key            self-signed root CA (ECDSA P-256)
#   inter.pem inter.key          intermediate CA, issuer of every leaf
#   responder.pem responder.key  delegated OCSP signer issued by inter:
#                                extendedKeyUsage OCSPSigning + id-pkix-ocsp-nocheck
#   rogue.pem rogue.key          an unrelated self-signed CA (for "signed by an
#                                unrelated key" tests); it issues nothing here
#   noeku.pem noeku.key          issued by inter WITHOUT OCSPSigning: not
#                                authorised to sign responses
#   wrongca.pem wrongca.key      OCSPSigning, but issued by the root, not by the
#                                leaves' issuer: not authorised either
#   index.txt                    the responder's database (openssl ca format)
#   <leaf>.pem <leaf>.chain.pem <leaf>.key    for each leaf:
#     ecdsa       ECDSA P-256, AIA OCSP http://127.0.0.1:PORT, good
#     rsa         RSA-2048, AIA OCSP, good
#     muststaple  ECDSA P-256, AIA OCSP, TLS Feature status_request, good
#     noocsp      ECDSA P-256, no AIA at all, good in index.txt
#     revoked     ECDSA P-256, AIA OCSP, revoked in index.txt (keyCompromise)
#     unknown     ECDSA P-256, AIA OCSP, issued but absent from index.txt
#   Each leaf's SAN is DNS:<leaf>.tern.test; <leaf>.chain.pem is leaf + inter.
#
# The responder binds the port on every local address (`openssl ocsp -port`
# takes only a number); tests reach it through 127.0.0.1 only.
#
# Every wait is bounded; nothing is killed except by the PID we started.

PKI_LEAVES="ecdsa rsa muststaple noocsp revoked unknown"

_pki_die() { echo "pki.sh: $*" >&2; return 1; }

# Runs openssl quietly; on failure shows what it said.
_pki_ssl() {
    local out
    if ! out=$(openssl "$@" 2>&1); then
        echo "pki.sh: openssl $1 failed:" >&2
        echo "$out" >&2
        return 1
    fi
}

_pki_conf() { # dir port
    cat >"$1/pki.cnf" <<EOF
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused

[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_inter ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_responder ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, OCSPSigning
noCheck = ignored
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_responder_noeku ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_leaf ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$2
subjectAltName = \${ENV::PKI_SAN}

[ v3_leaf_muststaple ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
authorityInfoAccess = OCSP;URI:http://127.0.0.1:$2
subjectAltName = \${ENV::PKI_SAN}
tlsfeature = status_request

[ v3_leaf_noocsp ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = \${ENV::PKI_SAN}
EOF
}

_pki_key() { # out, ec|rsa
    if [ "$2" = rsa ]; then
        _pki_ssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"
    else
        _pki_ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
    fi
}

# Issues a certificate: dir, name, subject CN, extensions, CA name (or "self"),
# key file, days.
_pki_issue() {
    local dir=$1 name=$2 cn=$3 ext=$4 ca=$5 key=$6 days=$7
    local serial
    serial=$(openssl rand -hex 8) || return 1
    # a leading 0 nibble keeps the serial positive and of fixed length
    serial="0${serial:1}"
    _pki_ssl req -new -key "$key" -subj "/O=tern test/CN=$cn" -out "$dir/$name.csr" \
        -config "$dir/pki.cnf" || return 1
    if [ "$ca" = self ]; then
        _pki_ssl x509 -req -in "$dir/$name.csr" -signkey "$key" -days "$days" \
            -set_serial "0x$serial" -extfile "$dir/pki.cnf" -extensions "$ext" \
            -sha256 -out "$dir/$name.pem" || return 1
    else
        _pki_ssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca.key" \
            -days "$days" -set_serial "0x$serial" -extfile "$dir/pki.cnf" \
            -extensions "$ext" -sha256 -out "$dir/$name.pem" || return 1
    fi
    rm -f "$dir/$name.csr"
}

# Prints an index.txt line for CERT with STATUS V or R.
_pki_index_line() { # cert, V|R
    local serial end subject revtime=""
    serial=$(openssl x509 -in "$1" -noout -serial) || return 1
    serial=${serial#serial=}
    end=$(openssl x509 -in "$1" -noout -enddate) || return 1
    end=$(date -u -d "${end#notAfter=}" +%y%m%d%H%M%SZ) || return 1
    subject=$(openssl x509 -in "$1" -noout -subject -nameopt compat) || return 1
    subject=${subject#subject=}
    if [ "$2" = R ]; then
        # revoked an hour ago, reason keyCompromise
        revtime="$(date -u -d '-1 hour' +%y%m%d%H%M%SZ),keyCompromise"
    fi
    printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$2" "$end" "$revtime" "$serial" "$subject"
}

pki_make() { # dir port
    local dir=$1 port=$2 leaf ext keytype
    [ -n "$dir" ] && [ -n "$port" ] || { _pki_die "usage: pki_make DIR PORT"; return 1; }
    mkdir -p "$dir" || return 1
    _pki_conf "$dir" "$port"
    export PKI_SAN=DNS:unused.tern.test

    _pki_key "$dir/root.key" ec &&
    _pki_issue "$dir" root "tern test root" v3_root self "$dir/root.key" 3650 &&
    _pki_key "$dir/inter.key" ec &&
    _pki_issue "$dir" inter "tern test intermediate" v3_inter root "$dir/inter.key" 3650 &&
    _pki_key "$dir/responder.key" ec &&
    _pki_issue "$dir" responder "tern test OCSP responder" v3_responder inter \
        "$dir/responder.key" 3650 &&
    _pki_key "$dir/noeku.key" ec &&
    _pki_issue "$dir" noeku "tern test responder without OCSPSigning" v3_responder_noeku inter \
        "$dir/noeku.key" 3650 &&
    _pki_key "$dir/wrongca.key" ec &&
    _pki_issue "$dir" wrongca "tern test responder issued by the root" v3_responder root \
        "$dir/wrongca.key" 3650 &&
    _pki_key "$dir/rogue.key" ec &&
    _pki_issue "$dir" rogue "tern test rogue CA" v3_root self "$dir/rogue.key" 3650 ||
        return 1

    : >"$dir/index.txt"
    echo "unique_subject = no" >"$dir/index.txt.attr"
    for leaf in $PKI_LEAVES; do
        ext=v3_leaf keytype=ec
        case $leaf in
        rsa) keytype=rsa ;;
        muststaple) ext=v3_leaf_muststaple ;;
        noocsp) ext=v3_leaf_noocsp ;;
        esac
        export PKI_SAN="DNS:$leaf.tern.test"
        _pki_key "$dir/$leaf.key" "$keytype" &&
        _pki_issue "$dir" "$leaf" "$leaf.tern.test" "$ext" inter "$dir/$leaf.key" 825 ||
            return 1
        cat "$dir/$leaf.pem" "$dir/inter.pem" >"$dir/$leaf.chain.pem"
        case $leaf in
        unknown) ;;
        revoked) _pki_index_line "$dir/$leaf.pem" R >>"$dir/index.txt" || return 1 ;;
        *) _pki_index_line "$dir/$leaf.pem" V >>"$dir/index.txt" || return 1 ;;
        esac
    done
    unset PKI_SAN
    echo "$port" >"$dir/port"
}

# N extra good leaves, all sharing DIR/leaves/leaf.key (ECDSA P-256), written
# as DIR/leaves/<i>.pem (i = 0..N-1, leaf only; the chain is that + inter.pem)
# with SAN DNS:<i>.bulk.tern.test, appended to index.txt as good.
# Uses python3-cryptography (fast enough for 100,000); falls back to the
# openssl CLI (about 20 ms per leaf) when it is not installed.
pki_make_leaves() { # dir port n
    local dir=$1 port=$2 n=$3 i
    [ -f "$dir/inter.pem" ] || { _pki_die "pki_make_leaves: run pki_make $dir first"; return 1; }
    mkdir -p "$dir/leaves" || return 1
    if python3 -c 'import cryptography' 2>/dev/null; then
        python3 "$(dirname "${BASH_SOURCE[0]}")/make_leaves.py" "$dir" "$port" "$n"
        return
    fi
    _pki_key "$dir/leaves/leaf.key" ec || return 1
    for ((i = 0; i < n; i++)); do
        export PKI_SAN="DNS:$i.bulk.tern.test"
        _pki_issue "$dir" "leaves/$i" "$i.bulk.tern.test" v3_leaf inter \
            "$dir/leaves/leaf.key" 825 || return 1
        _pki_index_line "$dir/leaves/$i.pem" V >>"$dir/index.txt" || return 1
    done
    unset PKI_SAN
}

pki_free_port() {
    python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ocsp_start DIR PORT [options]
#   --ca-signs        sign with the intermediate itself instead of the
#                     delegated responder certificate
#   --signer CERT KEY sign with this certificate and key (e.g. rogue.pem)
#   --index FILE      use another index (default DIR/index.txt)
#   --ndays N         nextUpdate N days after thisUpdate
#   --nmin N          nextUpdate N minutes after thisUpdate
#   (with neither, openssl omits nextUpdate)
#   --no-certs        do not include the signer's certificate in responses
# Runs in the background with its output in DIR/ocsp-PORT.log. Sets
# OCSP_PID and prints the PID on stdout. Prefer `ocsp_start ... >/dev/null;
# pid=$OCSP_PID`: the responder is then the test shell's own child and
# ocsp_stop reaps it; `pid=$(ocsp_start ...)` works too, but the exited
# responder then lingers as a zombie until init reaps it.
ocsp_start() {
    local dir=$1 port=$2
    shift 2 || { _pki_die "usage: ocsp_start DIR PORT [opts]"; return 1; }
    local signer=$dir/responder.pem key=$dir/responder.key index=$dir/index.txt
    local extra=() pid i
    while [ $# -gt 0 ]; do
        case $1 in
        --ca-signs) signer=$dir/inter.pem key=$dir/inter.key ;;
        --signer) signer=$2 key=$3; shift 2 ;;
        --index) index=$2; shift ;;
        --ndays) extra+=(-ndays "$2"); shift ;;
        --nmin) extra+=(-nmin "$2"); shift ;;
        --no-certs) extra+=(-resp_no_certs) ;;
        *) _pki_die "ocsp_start: unknown option $1"; return 1 ;;
        esac
        shift
    done
    openssl ocsp -index "$index" -CA "$dir/inter.pem" -rsigner "$signer" -rkey "$key" \
        -port "$port" -ignore_err "${extra[@]}" </dev/null >>"$dir/ocsp-$port.log" 2>&1 &
    pid=$!
    # Ready when it answers a real request for a known leaf (bounded: ~10 s).
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            _pki_die "ocsp_start: responder exited; log:"
            cat "$dir/ocsp-$port.log" >&2
            return 1
        fi
        if openssl ocsp -issuer "$dir/inter.pem" -cert "$dir/ecdsa.pem" \
            -url "http://127.0.0.1:$port" -noverify -no_nonce -timeout 2 \
            >/dev/null 2>&1; then
            OCSP_PID=$pid
            echo "$pid"
            return 0
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null
    _pki_die "ocsp_start: responder on port $port did not answer in time"
}

pki_pid_gone() { # pid
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$state" = Z ] || [ -z "$state" ]
}

# Ends a process we started, by PID: SIGTERM, up to 5 s, then SIGKILL; reaps
# it if it is our child. Returns 0 once it is gone.
ocsp_stop() { # pid
    local pid=$1 i state
    [ -n "$pid" ] || { _pki_die "usage: ocsp_stop PID"; return 1; }
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
        [ "$state" = Z ] && break
        [ $i -eq 50 ] && kill -KILL "$pid" 2>/dev/null
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    pki_pid_gone "$pid" || { _pki_die "ocsp_stop: $pid is still running"; return 1; }
}

# ocsp_fetch DIR LEAF OUT.der [URL]: LEAF is a name from pki_make ("ecdsa")
# or a path to a certificate issued by DIR/inter.pem. The URL defaults to the
# leaf's AIA OCSP URL, else http://127.0.0.1:$(cat DIR/port). No nonce, as a
# stapler asks. Does not verify (see ocsp_status).
ocsp_fetch() {
    local dir=$1 leaf=$2 out=$3 url=${4:-}
    local cert=$leaf
    [ -f "$cert" ] || cert=$dir/$leaf.pem
    [ -f "$cert" ] || { _pki_die "ocsp_fetch: no certificate $leaf"; return 1; }
    [ -n "$url" ] || url=$(openssl x509 -in "$cert" -noout -ocsp_uri 2>/dev/null)
    [ -n "$url" ] || url="http://127.0.0.1:$(cat "$dir/port")"
    _pki_ssl ocsp -issuer "$dir/inter.pem" -cert "$cert" -url "$url" -respout "$out" \
        -noverify -no_nonce -timeout 5
}

# ocsp_status DIR LEAF RESP.der: verifies the response's signature and signer
# against DIR/root.pem (the delegated signer or the intermediate itself) and
# prints LEAF's status. Returns 1 when it does not verify, when the response
# holds no status for LEAF, or when it is not a successful response.
ocsp_status() {
    local dir=$1 leaf=$2 resp=$3 cert=$2 out
    [ -f "$cert" ] || cert=$dir/$leaf.pem
    if ! out=$(openssl ocsp -respin "$resp" -issuer "$dir/inter.pem" -cert "$cert" \
        -CAfile "$dir/root.pem" -verify_other "$dir/inter.pem" 2>&1); then
        echo "pki.sh: ocsp_status: $out" >&2
        return 1
    fi
    case $out in
    *"Response verify OK"*) ;;
    *) echo "pki.sh: ocsp_status: does not verify: $out" >&2; return 1 ;;
    esac
    # openssl prints "<cert>: <status>", or "<cert>: WARNING: Status times
    # invalid." with the status on the next line when thisUpdate/nextUpdate
    # are out of range: that is a failure here.
    echo "$out" | awk -v c="$cert: " '
        index($0, c) == 1 { rest = substr($0, length(c) + 1); found = 1
            if (rest ~ /^WARNING/ || rest ~ /^ERROR/) { bad = rest; next }
            print rest; exit }
        END { if (bad != "") { print "pki.sh: ocsp_status: " bad > "/dev/stderr"; exit 1 }
              exit !found }'
}

# pki_key CERT: prints the staple table key of CERT (SHA-256 of its DER), hex.
pki_key() {
    openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# ocsp_times RESP.der: prints "<thisUpdate> <nextUpdate>" of the response's
# first single response in seconds since the epoch ("-" when absent).
ocsp_times() {
    local text this next
    text=$(openssl ocsp -respin "$1" -resp_text -noverify 2>/dev/null) || return 1
    this=$(echo "$text" | sed -n 's/^ *This Update: //p' | head -1)
    next=$(echo "$text" | sed -n 's/^ *Next Update: //p' | head -1)
    [ -n "$this" ] || return 1
    echo "$(date -u -d "$this" +%s) $([ -n "$next" ] && date -u -d "$next" +%s || echo -)"
}
