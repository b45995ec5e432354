/* ocsp_validate(): real responses from `openssl ocsp` (good, revoked,
 * unknown; delegated signer and the CA itself), and one crafted response
 * per failure, each expected to fail with its own reason. */
#include <time.h>

#include "check.h"
#include "ocsp_validate.h"
#include "stapler.h"
#include "testpki.h"

static X509 *leaf, *inter, *rsa, *responder, *rogue;
static EVP_PKEY *inter_key, *responder_key, *rogue_key;

static enum stapler_reason run(const uint8_t *der, size_t len, X509 *l, int64_t held,
                               struct ocsp_verdict *v)
{
    struct ocsp_expect e = {
        .leaf = l, .issuer = inter, .now = time(NULL), .skew_s = 300,
        .held_this_update = held,
    };
    return ocsp_validate(der, len, &e, v);
}

static enum stapler_reason run_file(const char *rel, X509 *l, struct ocsp_verdict *v)
{
    size_t len;
    uint8_t *der = load_file(tpath(rel), &len);
    enum stapler_reason r = run(der, len, l, 0, v);
    free(der);
    return r;
}

static void test_real_responses(void)
{
    struct ocsp_verdict v;
    X509 *revoked = load_cert(tpath("pki/revoked.pem"));
    X509 *unknown = load_cert(tpath("pki/unknown.pem"));

    CHECK_EQ_INT(run_file("real-ecdsa.der", leaf, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_GOOD);
    CHECK_EQ_INT(v.delegated, 1); /* pki.sh's responder signs as the delegate */
    CHECK(v.this_update <= time(NULL) + 5 && v.next_update > time(NULL) + 3600);

    CHECK_EQ_INT(run_file("real-ca-ecdsa.der", leaf, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_GOOD);
    CHECK_EQ_INT(v.delegated, 0);

    CHECK_EQ_INT(run_file("real-revoked.der", revoked, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_REVOKED);
    CHECK(v.revocation_time > 0 && v.revocation_time < time(NULL));
    CHECK_EQ_INT(v.revocation_reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);

    CHECK_EQ_INT(run_file("real-unknown.der", unknown, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_UNKNOWN);

    /* A real response checked against another certificate. */
    CHECK_EQ_INT(run_file("real-ecdsa.der", rsa, &v), STAPLER_REASON_CERTID_MISMATCH);

    /* Trailing bytes, truncation, empty. */
    size_t len;
    uint8_t *der = load_file(tpath("real-ecdsa.der"), &len);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    CHECK_EQ_INT(run(longer, len + 1, leaf, 0, &v), STAPLER_REASON_MALFORMED);
    CHECK_EQ_INT(run(der, len - 1, leaf, 0, &v), STAPLER_REASON_MALFORMED);
    CHECK_EQ_INT(run(der, 0, leaf, 0, &v), STAPLER_REASON_MALFORMED);
    /* Older than one held: the held one's thisUpdate is a minute later. */
    CHECK_EQ_INT(run(der, len, leaf, 0, &v), STAPLER_REASON_OK);
    int64_t t = v.this_update;
    CHECK_EQ_INT(run(der, len, leaf, t + 60, &v), STAPLER_REASON_OLDER);
    CHECK_EQ_INT(run(der, len, leaf, t, &v), STAPLER_REASON_OK); /* same age: fine */
    /* Flip the last byte: for an ECDSA signature that is inside s, or the
     * embedded responder certificate's own signature; either way the
     * response must fail (signature or signer). */
    der[len - 1] ^= 0x01;
    enum stapler_reason r = run(der, len, leaf, 0, &v);
    CHECK(r == STAPLER_REASON_SIGNATURE || r == STAPLER_REASON_SIGNER_UNTRUSTED ||
          r == STAPLER_REASON_MALFORMED);
    free(der);
    free(longer);
    X509_free(revoked);
    X509_free(unknown);
}

/* Envelopes no responder library will produce, written out by hand. */
static void test_envelopes(void)
{
    struct ocsp_verdict v;
    /* responseStatus 4 is unassigned in RFC 6960 */
    static const uint8_t status4[] = {0x30, 0x03, 0x0a, 0x01, 0x04};
    CHECK_EQ_INT(run(status4, sizeof(status4), leaf, 0, &v), STAPLER_REASON_BAD_RESPONSE_STATUS);
    /* successful, but no responseBytes at all */
    static const uint8_t no_bytes[] = {0x30, 0x03, 0x0a, 0x01, 0x00};
    CHECK_EQ_INT(run(no_bytes, sizeof(no_bytes), leaf, 0, &v), STAPLER_REASON_NOT_BASIC);
    /* successful, responseBytes of type 1.2.3.4 instead of id-pkix-ocsp-basic */
    static const uint8_t other_type[] = {0x30, 0x0f, 0x0a, 0x01, 0x00, 0xa0, 0x0a, 0x30, 0x08,
                                         0x06, 0x03, 0x2a, 0x03, 0x04, 0x04, 0x01, 0x00};
    CHECK_EQ_INT(run(other_type, sizeof(other_type), leaf, 0, &v), STAPLER_REASON_NOT_BASIC);
    /* a DER SEQUENCE that is no OCSPResponse */
    static const uint8_t seq[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    CHECK_EQ_INT(run(seq, sizeof(seq), leaf, 0, &v), STAPLER_REASON_MALFORMED);
    CHECK(v.msg[0] != '\0');
}

static enum stapler_reason run_craft(const struct craft *c, struct ocsp_verdict *v)
{
    size_t len;
    uint8_t *der = craft_der(c, &len);
    enum stapler_reason r = run(der, len, leaf, 0, v);
    free(der);
    return r;
}

static void test_crafted(void)
{
    struct ocsp_verdict v;
    const struct craft base = {
        .cert = leaf, .issuer = inter, .signer = responder, .key = responder_key,
        .status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600,
    };
    struct craft c = base;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_GOOD);

    c = base; /* CA-signed, no certificate embedded */
    c.signer = inter, c.key = inter_key, c.no_certs = true;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.delegated, 0);

    c = base; /* SHA-256 CertID is accepted too */
    c.id_md = EVP_sha256();
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_OK);

    c = base; /* delegated signer not embedded: nothing names the key */
    c.no_certs = true;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_SIGNER_UNTRUSTED);

    c = base;
    c.this_off = 3600, c.next_off = 7200;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_THIS_UPDATE_FUTURE);
    c.this_off = 200, c.next_off = 7200; /* inside the 300 s skew */
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_OK);

    c = base;
    c.this_off = -7200, c.next_off = -3600;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_EXPIRED);

    c = base;
    c.no_next = true;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_NO_NEXT_UPDATE);

    c = base;
    c.this_off = -60, c.next_off = -120;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_BAD_TIMES);

    c = base; /* for another certificate */
    c.cert = rsa;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_CERTID_MISMATCH);

    c = base; /* an unrelated CA signs and embeds itself */
    c.signer = rogue, c.key = rogue_key;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_SIGNER_UNTRUSTED);

    c = base; /* revoked and unknown, crafted */
    c.status = V_OCSP_CERTSTATUS_REVOKED;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_REVOKED);
    c.status = V_OCSP_CERTSTATUS_UNKNOWN;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(v.status, STAPLER_OCSP_UNKNOWN);

    static const struct { int st; enum stapler_reason r; } errs[] = {
        {OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, STAPLER_REASON_MALFORMED_REQUEST},
        {OCSP_RESPONSE_STATUS_INTERNALERROR, STAPLER_REASON_INTERNAL_ERROR},
        {OCSP_RESPONSE_STATUS_TRYLATER, STAPLER_REASON_TRY_LATER},
        {OCSP_RESPONSE_STATUS_SIGREQUIRED, STAPLER_REASON_SIG_REQUIRED},
        {OCSP_RESPONSE_STATUS_UNAUTHORIZED, STAPLER_REASON_UNAUTHORIZED},
    };
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        c = base;
        c.error = errs[i].st;
        CHECK_EQ_INT(run_craft(&c, &v), errs[i].r);
    }
}

/* Delegated responders that must be refused: no id-kp-OCSPSigning; issued
 * by another CA under the same name is covered by "rogue" above; issued by
 * the issuer but expired. */
static void test_bad_delegates(void)
{
    struct ocsp_verdict v;
    EVP_PKEY *k1, *k2, *k3;
    const int eku[] = {NID_ext_key_usage, 0};
    const char *const eku_v[] = {"OCSPSigning"};
    const char *const eku_srv[] = {"serverAuth"};
    X509 *no_eku = make_cert(inter, inter_key, "no eku", &k1, NULL, NULL);
    X509 *srv_eku = make_cert(inter, inter_key, "server eku", &k2, eku, eku_srv);
    X509 *by_rogue = make_cert(rogue, rogue_key, "by rogue", &k3, eku, eku_v);

    struct craft c = {
        .cert = leaf, .issuer = inter, .status = V_OCSP_CERTSTATUS_GOOD,
        .this_off = -60, .next_off = 3600,
    };
    c.signer = no_eku, c.key = k1;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_SIGNER_UNTRUSTED);
    CHECK(strstr(v.msg, "OCSPSigning") != NULL);
    c.signer = srv_eku, c.key = k2;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_SIGNER_UNTRUSTED);
    c.signer = by_rogue, c.key = k3;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_SIGNER_UNTRUSTED);

    /* Same subject as a legitimate delegate, made by the rogue CA but with
     * the intermediate's name as issuer: the signature check on the
     * delegate catches it. */
    EVP_PKEY *k4;
    X509 *forged = make_cert(inter, rogue_key, "forged", &k4, eku, eku_v);
    c.signer = forged, c.key = k4;
    CHECK_EQ_INT(run_craft(&c, &v), STAPLER_REASON_SIGNER_UNTRUSTED);

    X509_free(no_eku);
    X509_free(srv_eku);
    X509_free(by_rogue);
    X509_free(forged);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k3);
    EVP_PKEY_free(k4);
}

/* The delegate memo: a vetted delegate is remembered, and only that one:
 * others still get every check, and validity dates are checked each time. */
static void test_memo(void)
{
    struct ocsp_delegate_memo memo = {0};
    struct ocsp_verdict v;
    size_t len;
    uint8_t *der = load_file(tpath("real-ecdsa.der"), &len);
    struct ocsp_expect e = {.leaf = leaf, .issuer = inter, .now = time(NULL), .skew_s = 300,
                            .memo = &memo};
    CHECK_EQ_INT(ocsp_validate(der, len, &e, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(memo.next, 1);
    CHECK(memo.slot[0].issuer != NULL);
    CHECK_EQ_INT(ocsp_validate(der, len, &e, &v), STAPLER_REASON_OK);
    CHECK_EQ_INT(memo.next, 1); /* a hit adds nothing */
    CHECK_EQ_INT(v.delegated, 1);
    /* Remembered, but a response signed by it years later is refused:
     * the delegate's own notAfter (pki.sh: 3650 days) has passed. */
    e.now = time(NULL) + 3651LL * 86400;
    CHECK(ocsp_validate(der, len, &e, &v) != STAPLER_REASON_OK);
    e.now = time(NULL);
    /* A delegate without OCSPSigning is not excused by the memo. */
    EVP_PKEY *k;
    X509 *no_eku = make_cert(inter, inter_key, "no eku 2", &k, NULL, NULL);
    struct craft c = {.cert = leaf, .issuer = inter, .signer = no_eku, .key = k,
                      .status = V_OCSP_CERTSTATUS_GOOD, .this_off = -60, .next_off = 3600};
    size_t clen;
    uint8_t *cder = craft_der(&c, &clen);
    CHECK_EQ_INT(ocsp_validate(cder, clen, &e, &v), STAPLER_REASON_SIGNER_UNTRUSTED);
    CHECK_EQ_INT(memo.next, 1);
    /* Same delegate, another issuer expected: not a hit (rogue did not
     * issue it), and the leaf's CertID would not match anyway. */
    e.issuer = rogue;
    CHECK(ocsp_validate(der, len, &e, &v) != STAPLER_REASON_OK);
    free(cder);
    free(der);
    X509_free(no_eku);
    EVP_PKEY_free(k);
    ocsp_delegate_memo_clear(&memo);
    CHECK(memo.slot[0].issuer == NULL);
}

int main(void)
{
    leaf = load_cert(tpath("pki/ecdsa.pem"));
    rsa = load_cert(tpath("pki/rsa.pem"));
    inter = load_cert(tpath("pki/inter.pem"));
    responder = load_cert(tpath("pki/responder.pem"));
    rogue = load_cert(tpath("pki/rogue.pem"));
    inter_key = load_key(tpath("pki/inter.key"));
    responder_key = load_key(tpath("pki/responder.key"));
    rogue_key = load_key(tpath("pki/rogue.key"));

    test_real_responses();
    test_envelopes();
    test_crafted();
    test_bad_delegates();
    test_memo();

    X509_free(leaf);
    X509_free(rsa);
    X509_free(inter);
    X509_free(responder);
    X509_free(rogue);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(responder_key);
    EVP_PKEY_free(rogue_key);
    return check_exit();
}
