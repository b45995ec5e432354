#!/usr/bin/env python3
"""Issues N leaf certificates from DIR/inter.pem for benchmarks and big tests.

usage: make_leaves.py DIR PORT N

All leaves share one ECDSA P-256 key (DIR/leaves/leaf.key). Leaf i is
DIR/leaves/<i>.pem with SAN DNS:<i>.bulk.tern.test and an AIA OCSP URL
http://127.0.0.1:PORT; each is appended to DIR/index.txt as good so that the
`openssl ocsp` responder of pki.sh answers for it. Called by pki_make_leaves.
"""
import datetime
import os
import secrets
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, AuthorityInformationAccessOID


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    d, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(os.path.join(d, "inter.pem"), "rb") as f:
        inter = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(d, "inter.key"), "rb") as f:
        inter_key = serialization.load_pem_private_key(f.read(), None)
    os.makedirs(os.path.join(d, "leaves"), exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    with open(os.path.join(d, "leaves", "leaf.key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    not_after = now + datetime.timedelta(days=825)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key())
    aia = x509.AuthorityInformationAccess([x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP,
        x509.UniformResourceIdentifier(f"http://127.0.0.1:{port}"))])
    end = not_after.strftime("%y%m%d%H%M%SZ")
    lines = []
    for i in range(n):
        cn = f"{i}.bulk.tern.test"
        serial = secrets.randbits(63) | 1
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tern test"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
                .issuer_name(inter.subject)
                .public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
                .add_extension(ski, False)
                .add_extension(aki, False)
                .add_extension(aia, False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), False)
                .sign(inter_key, hashes.SHA256()))
        with open(os.path.join(d, "leaves", f"{i}.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        hexserial = "%X" % serial
        if len(hexserial) % 2:
            hexserial = "0" + hexserial
        lines.append(f"V\t{end}\t\t{hexserial}\tunknown\t/O=tern test/CN={cn}\n")
    with open(os.path.join(d, "index.txt"), "a") as f:
        f.writelines(lines)


if __name__ == "__main__":
    main()
