#!/bin/sh
# mkpki.sh DIR: a throwaway PKI for the TLS tests, made with the openssl CLI.
#   ca.pem/ca.key           test CA (ECDSA P-256); also signs OCSP responses
#   www-ec, www-rsa         www.example.test (+ example.test), ECDSA and RSA
#   wild                    *.wild.test (ECDSA)
#   default                 default.test (ECDSA)
#   strict                  strict.test, OCSP Must-Staple (tlsfeature)
# For each leaf X: X.pem (leaf then CA), X.key, X.ocsp.der (a real OCSP
# response from `openssl ocsp` acting as responder over an index file).
set -eu
d=$1
cd "$d"
days=2
cat > ext.cnf <<'EOC'
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
authorityInfoAccess = OCSP;URI:http://127.0.0.1:1/
[strict]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
tlsfeature = status_request
authorityInfoAccess = OCSP;URI:http://127.0.0.1:1/
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
EOC
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj "/CN=tern test CA" -days $days \
    -extensions ca -config ext.cnf -out ca.pem 2>/dev/null
: > index.txt
echo "unique_subject = no" > index.txt.attr
serial=4096
leaf() { # name keytype ext cn san...
    n=$1 kt=$2 ext=$3 cn=$4
    shift 4
    san=""
    for s in "$@"; do san="${san:+$san,}DNS:$s"; done
    if [ "$kt" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$n.key" 2>/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$n.key" 2>/dev/null
    fi
    serial=$((serial + 1))
    printf '%s\nsubjectAltName = %s\n' "$(sed -n "/^\[$ext\]/,/^\[/p" ext.cnf | sed '$d' | sed 1d)" "$san" > "$n.ext"
    printf '[x]\n' | cat - "$n.ext" > "$n.cnf"
    openssl req -new -key "$n.key" -subj "/CN=$cn" -out "$n.csr" 2>/dev/null
    openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -set_serial $serial \
        -days $days -extfile "$n.cnf" -extensions x -out "$n.leaf.pem" 2>/dev/null
    cat "$n.leaf.pem" ca.pem > "$n.pem"
    end=$(openssl x509 -in "$n.leaf.pem" -noout -enddate | sed 's/notAfter=//')
    endz=$(date -u -d "$end" +%y%m%d%H%M%SZ)
    hex=$(printf '%X' $serial)
    printf 'V\t%s\t\t%s\tunknown\t/CN=%s\n' "$endz" "$hex" "$cn" >> index.txt
}
leaf www-ec ec leaf www.example.test www.example.test example.test
leaf www-rsa rsa leaf www.example.test www.example.test example.test
leaf wild ec leaf wild.test '*.wild.test'
leaf default ec leaf default.test default.test
leaf strict ec strict strict.test strict.test
for n in www-ec www-rsa wild default strict; do
    openssl ocsp -issuer ca.pem -cert "$n.leaf.pem" -no_nonce -reqout "$n.req.der" >/dev/null 2>&1
    openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem \
        -reqin "$n.req.der" -respout "$n.ocsp.der" -ndays 1 >/dev/null 2>&1
    test -s "$n.ocsp.der"
done
