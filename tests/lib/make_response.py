#!/usr/bin/env python3
"""Crafts a DER OCSP response for tern's tests (python3-cryptography).

usage:
  make_response.py --issuer INTER.pem --cert LEAF.pem --signer CERT --signer-key KEY
                   [--status good|revoked|unknown] [--this-update SECS]
                   [--next-update SECS|none]
                   [--hash sha1|sha256] [--no-certs] OUT.der
  make_response.py --error tryLater|unauthorized|malformedRequest|internalError|sigRequired OUT.der

Times are seconds relative to now (negative: in the past): --this-update -60
--next-update 3600 is a fresh response valid for an hour. Defaults: good,
thisUpdate 60 s ago, nextUpdate in 1 h, SHA-1 CertID
(as `openssl ocsp` and most CAs send), the signer's certificate included when
the signer is not the issuer itself. producedAt is always now (the library
sets it). The response is what a CA would send: the
CertID names --cert under --issuer, whoever signs it. So:
  another certificate:  --cert other.pem
  an unrelated key:     --signer rogue.pem --signer-key rogue.key
  expired:              --this-update -7200 --next-update -3600
  not yet valid:        --this-update 3600 --next-update 7200
  older than one held:  an earlier --this-update than that one's
  tryLater/unauthorized: --error tryLater / --error unauthorized
"""
import argparse
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

ERRORS = {
    "malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
    "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
    "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
    "sigRequired": ocsp.OCSPResponseStatus.SIG_REQUIRED,
    "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
}


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--issuer")
    p.add_argument("--cert")
    p.add_argument("--signer")
    p.add_argument("--signer-key")
    p.add_argument("--status", choices=["good", "revoked", "unknown"], default="good")
    p.add_argument("--this-update", type=int, default=-60)
    p.add_argument("--next-update", default="3600")
    p.add_argument("--hash", choices=["sha1", "sha256"], default="sha1")
    p.add_argument("--no-certs", action="store_true")
    p.add_argument("--error", choices=sorted(ERRORS))
    p.add_argument("out")
    a = p.parse_args()

    if a.error:
        der = ocsp.OCSPResponseBuilder.build_unsuccessful(ERRORS[a.error]).public_bytes(
            serialization.Encoding.DER)
    else:
        for name in ("issuer", "cert", "signer", "signer_key"):
            if getattr(a, name) is None:
                p.error(f"--{name.replace('_', '-')} is required without --error")
        issuer, cert, signer = load_cert(a.issuer), load_cert(a.cert), load_cert(a.signer)
        with open(a.signer_key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        this_update = now + datetime.timedelta(seconds=a.this_update)
        next_update = None
        if a.next_update != "none":
            next_update = now + datetime.timedelta(seconds=int(a.next_update))
        status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
                  "unknown": ocsp.OCSPCertStatus.UNKNOWN}[a.status]
        revoked_at = now - datetime.timedelta(hours=1) if a.status == "revoked" else None
        reason = x509.ReasonFlags.key_compromise if a.status == "revoked" else None
        algo = hashes.SHA1() if a.hash == "sha1" else hashes.SHA256()
        b = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=issuer, algorithm=algo, cert_status=status,
            this_update=this_update, next_update=next_update,
            revocation_time=revoked_at, revocation_reason=reason)
        b = b.responder_id(ocsp.OCSPResponderEncoding.NAME, signer)
        if not a.no_certs and signer.subject != issuer.subject:
            b = b.certificates([signer])
        der = b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    with open(a.out, "wb") as f:
        f.write(der)


if __name__ == "__main__":
    sys.exit(main())
