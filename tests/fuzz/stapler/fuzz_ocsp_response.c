/* Fuzz target: DER bytes in, ocsp_validate() against a fixed leaf and
 * issuer (a throwaway test PKI made by tests/lib/pki.sh; keys discarded).
 * The seed corpus holds real responses from `openssl ocsp` for this leaf
 * (delegated signer and CA-signed), one for another leaf, and the crafted
 * set of tests/lib/crafted.sh. NOW is fixed just after the seeds'
 * thisUpdate, so valid seeds reach every check instead of stopping at
 * "expired". */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "ocsp_validate.h"

static const char leaf_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICITCCAcagAwIBAgIIDeRd4gDk1UYwCgYIKoZIzj0EAwIwNTESMBAGA1UECgwJ\n"
    "dGVybiB0ZXN0MR8wHQYDVQQDDBZ0ZXJuIHRlc3QgaW50ZXJtZWRpYXRlMB4XDTI2\n"
    "MTEyNjEzMDY1M1oXDTI5MDIyODEzMDY1M1owLjESMBAGA1UECgwJdGVybiB0ZXN0\n"
    "MRgwFgYDVQQDDA9lY2RzYS50ZXJuLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\n"
    "BwNCAASEHlnj5Lba8e4cyQ4sCIuu8SCaA0HQ8HTQ9zcIUlYhQAvx9jRixDBjaxNQ\n"
    "mX/VOUJYE/AUhkGSd6VUy/zdqlpko4HGMIHDMAwGA1UdEwEB/wQCMAAwDgYDVR0P\n"
    "AQH/BAQDAgWgMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQWBBRLAEqNn9/C\n"
    "sdEz36DMrU3HcoykFDAfBgNVHSMEGDAWgBRDmXBTaxB53ZyhcIEZTJRqlaSiITAy\n"
    "BggrBgEFBQcBAQQmMCQwIgYIKwYBBQUHMAGGFmh0dHA6Ly8xMjcuMC4wLjE6NDAy\n"
    "OTMwGgYDVR0RBBMwEYIPZWNkc2EudGVybi50ZXN0MAoGCCqGSM49BAMCA0kAMEYC\n"
    "IQDFmLG7zj+vycEwQ0mQRgIBgxecYrOcW/6Pq/dG+GJ3QgIhALs+HeImXumoyzYk\n"
    "4NYhDBgH7/+OWAyPwhOFmBn+9iZj\n"
    "-----END CERTIFICATE-----\n";

static const char issuer_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBvTCCAWSgAwIBAgIIA6Bu+bwQm74wCgYIKoZIzj0EAwIwLTESMBAGA1UECgwJ\n"
    "dGVybiB0ZXN0MRcwFQYDVQQDDA50ZXJuIHRlc3Qgcm9vdDAeFw0yNjExMjYxMzA2\n"
    "NTNaFw0zNjExMjMxMzA2NTNaMDUxEjAQBgNVBAoMCXRlcm4gdGVzdDEfMB0GA1UE\n"
    "AwwWdGVybiB0ZXN0IGludGVybWVkaWF0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABBFThEXGHRm77jyFkrotCHCstzl7/fZrGPuUMYAprGEUG7oBdrn9lDa7a+G4\n"
    "Ndxvek/CGMif02EyyHPcihph7w6jZjBkMBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYD\n"
    "VR0PAQH/BAQDAgEGMB0GA1UdDgQWBBRDmXBTaxB53ZyhcIEZTJRqlaSiITAfBgNV\n"
    "HSMEGDAWgBQMRCCQ9cpv61/zucifhYll25vrgTAKBggqhkjOPQQDAgNHADBEAiAa\n"
    "iFC7dtZvLOA8RZ1h6R09CbGwLZpBohzu+2p0cCzJbQIgDtqT5tpxpTkmcumG+kc+\n"
    "WQQwJusGTi3oizG4aRs2Qz0=\n"
    "-----END CERTIFICATE-----\n";

/* thisUpdate of the real seeds plus a minute. */
#define FUZZ_NOW 1795698475

static X509 *pem(const char *text)
{
    BIO *b = BIO_new_mem_buf(text, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (x == NULL)
        abort();
    return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static X509 *leaf, *issuer;
    if (leaf == NULL) {
        leaf = pem(leaf_pem);
        issuer = pem(issuer_pem);
    }
    struct ocsp_verdict v;
    struct ocsp_expect e = {
        .leaf = leaf, .issuer = issuer, .now = FUZZ_NOW, .skew_s = 300,
    };
    enum stapler_reason r = ocsp_validate(data, size, &e, &v);
    /* The verdict must be coherent whatever the input. */
    if ((unsigned)r >= STAPLER_REASON__COUNT || r != v.reason)
        abort();
    if (r == STAPLER_REASON_OK) {
        if (v.next_update <= FUZZ_NOW || v.this_update > FUZZ_NOW + 300 ||
            v.status == STAPLER_OCSP_NONE)
            abort();
        /* The same response against a newer held one must be "older". */
        e.held_this_update = v.this_update + 1;
        if (ocsp_validate(data, size, &e, &v) != STAPLER_REASON_OLDER)
            abort();
    }
    return 0;
}
