#!/bin/sh
# tls_stream_mkpki.sh DIR: the smallest PKI the TLS filter test needs, made
# with the openssl CLI at test time (nothing secret is committed):
#   ca.pem            a throwaway CA (ECDSA P-256), the client's trust anchor
#   leaf.pem leaf.key tls-stream.test (ECDSA P-256), chain = leaf then CA
set -eu
cd "$1"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -new -x509 -key ca.key -subj "/CN=tern tls_stream test CA" -days 2 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key 2>/dev/null
openssl req -new -key leaf.key -subj "/CN=tls-stream.test" -out leaf.csr 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:tls-stream.test" > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 4242 -days 2 \
    -extfile leaf.ext -out leaf.crt 2>/dev/null
cat leaf.crt ca.pem > leaf.pem
test -s leaf.pem && test -s leaf.key
