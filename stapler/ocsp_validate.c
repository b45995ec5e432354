/* OCSP response validation. Every check has its own reason code so that
 * logs, metrics and tests can tell one failure from another.
 *
 * The signer check is done here rather than by OCSP_basic_verify()'s chain
 * building: the only trust anchor is the certificate's own issuer, which is
 * usually an intermediate (not self-signed), and the delegation rule of RFC
 * 6960 §4.2.2.2 is short enough to state plainly: the signer is the issuer,
 * or a certificate the issuer signed that carries id-kp-OCSPSigning.
 * OCSP_basic_verify() is then used only for the signature itself. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ocsp_validate.h"

static enum stapler_reason fail(struct ocsp_verdict *v, enum stapler_reason r,
                                const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum stapler_reason fail(struct ocsp_verdict *v, enum stapler_reason r,
                                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
    va_end(ap);
    v->reason = r;
    ERR_clear_error(); /* leave nothing for the next caller to misread */
    return r;
}

/* GeneralizedTime to seconds since the epoch; -1 if unreadable. */
static int64_t gtime_to_epoch(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    return (int64_t)timegm(&tm);
}

static enum stapler_reason check_response_status(int st, struct ocsp_verdict *v)
{
    switch (st) {
    case OCSP_RESPONSE_STATUS_SUCCESSFUL:
        return STAPLER_REASON_OK;
    case OCSP_RESPONSE_STATUS_MALFORMEDREQUEST:
        return fail(v, STAPLER_REASON_MALFORMED_REQUEST, "responder: malformedRequest");
    case OCSP_RESPONSE_STATUS_INTERNALERROR:
        return fail(v, STAPLER_REASON_INTERNAL_ERROR, "responder: internalError");
    case OCSP_RESPONSE_STATUS_TRYLATER:
        return fail(v, STAPLER_REASON_TRY_LATER, "responder: tryLater");
    case OCSP_RESPONSE_STATUS_SIGREQUIRED:
        return fail(v, STAPLER_REASON_SIG_REQUIRED, "responder: sigRequired");
    case OCSP_RESPONSE_STATUS_UNAUTHORIZED:
        return fail(v, STAPLER_REASON_UNAUTHORIZED, "responder: unauthorized");
    default:
        return fail(v, STAPLER_REASON_BAD_RESPONSE_STATUS,
                    "unknown OCSPResponseStatus %d", st);
    }
}

void ocsp_delegate_memo_clear(struct ocsp_delegate_memo *m)
{
    for (unsigned i = 0; i < OCSP_DELEGATE_MEMO_SLOTS; i++)
        X509_free(m->slot[i].issuer);
    memset(m, 0, sizeof(*m));
}

static bool memo_has(const struct ocsp_delegate_memo *m, X509 *issuer, const uint8_t *d)
{
    for (unsigned i = 0; m != NULL && i < OCSP_DELEGATE_MEMO_SLOTS; i++)
        if (m->slot[i].issuer != NULL && memcmp(m->slot[i].signer_sha256, d, 32) == 0 &&
            X509_cmp(m->slot[i].issuer, issuer) == 0)
            return true;
    return false;
}

static void memo_add(struct ocsp_delegate_memo *m, X509 *issuer, const uint8_t *d)
{
    if (m == NULL || !X509_up_ref(issuer))
        return;
    unsigned i = m->next++ % OCSP_DELEGATE_MEMO_SLOTS;
    X509_free(m->slot[i].issuer);
    m->slot[i].issuer = issuer;
    memcpy(m->slot[i].signer_sha256, d, 32);
}

/* RFC 6960 §4.2.2.2: a delegated responder is issued directly by the CA
 * that issued the certificate in question and carries id-kp-OCSPSigning.
 * Its validity dates are checked every time, the rest once per memo. */
static enum stapler_reason check_delegate(X509 *signer, const struct ocsp_expect *exp,
                                          struct ocsp_verdict *v)
{
    X509 *issuer = exp->issuer;
    time_t t = (time_t)exp->now;
    if (X509_cmp_time(X509_get0_notBefore(signer), &t) > 0 ||
        X509_cmp_time(X509_get0_notAfter(signer), &t) < 0)
        return fail(v, STAPLER_REASON_SIGNER_UNTRUSTED,
                    "responder certificate is not valid now");
    uint8_t d[32];
    unsigned dlen = 0;
    bool have_digest = X509_digest(signer, EVP_sha256(), d, &dlen) == 1 && dlen == 32;
    if (have_digest && memo_has(exp->memo, issuer, d)) {
        v->delegated = 1;
        return STAPLER_REASON_OK;
    }
    if (X509_check_issued(issuer, signer) != X509_V_OK)
        return fail(v, STAPLER_REASON_SIGNER_UNTRUSTED,
                    "responder certificate is not issued by the certificate's issuer");
    EVP_PKEY *ikey = X509_get0_pubkey(issuer);
    if (ikey == NULL || X509_verify(signer, ikey) != 1)
        return fail(v, STAPLER_REASON_SIGNER_UNTRUSTED,
                    "responder certificate's signature does not verify with the issuer's key");
    uint32_t xf = X509_get_extension_flags(signer);
    if (!(xf & EXFLAG_XKUSAGE) || !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN))
        return fail(v, STAPLER_REASON_SIGNER_UNTRUSTED,
                    "responder certificate lacks id-kp-OCSPSigning");
    if (have_digest)
        memo_add(exp->memo, issuer, d);
    v->delegated = 1;
    return STAPLER_REASON_OK;
}

static enum stapler_reason check_signature(OCSP_BASICRESP *bs, const struct ocsp_expect *exp,
                                           struct ocsp_verdict *v)
{
    STACK_OF(X509) *anchor = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    X509 *signer = NULL;
    enum stapler_reason r = STAPLER_REASON_OK;

    if (anchor == NULL || store == NULL || !sk_X509_push(anchor, exp->issuer)) {
        r = fail(v, STAPLER_REASON_INTERNAL, "out of memory");
        goto out;
    }
    /* Looks in ANCHOR (the issuer) first, then in the certificates the
     * response carries, for the one its ResponderID names. */
    if (OCSP_resp_get0_signer(bs, &signer, anchor) != 1 || signer == NULL) {
        r = fail(v, STAPLER_REASON_SIGNER_UNTRUSTED,
                 "no certificate matches the ResponderID");
        goto out;
    }
    if (X509_cmp(signer, exp->issuer) != 0) {
        r = check_delegate(signer, exp, v);
        if (r != STAPLER_REASON_OK)
            goto out;
    }
    /* Signature only: the signer was vetted above, so no chain building
     * (NOVERIFY) and no certificate from the response is used in place of
     * the one we chose (NOINTERN). */
    sk_X509_set(anchor, 0, signer);
    if (OCSP_basic_verify(bs, anchor, store, OCSP_NOVERIFY | OCSP_NOINTERN) != 1)
        r = fail(v, STAPLER_REASON_SIGNATURE, "%s signature does not verify",
                 v->delegated ? "delegated responder" : "issuer");
out:
    sk_X509_free(anchor); /* references only */
    X509_STORE_free(store);
    return r;
}

/* Finds the SingleResponse for the leaf, whatever hash its CertID uses
 * (RFC 5019 asks for SHA-1, but a responder may answer with another). */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, const struct ocsp_expect *exp)
{
    int n = OCSP_resp_count(bs);
    for (int i = 0; i < n && i < 64; i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
        const OCSP_CERTID *cid = OCSP_SINGLERESP_get0_id(sr);
        ASN1_OBJECT *alg = NULL;
        if (cid == NULL ||
            OCSP_id_get0_info(NULL, &alg, NULL, NULL, (OCSP_CERTID *)cid) != 1)
            continue;
        const EVP_MD *md = EVP_get_digestbyobj(alg);
        if (md == NULL)
            continue;
        OCSP_CERTID *mine = OCSP_cert_to_id(md, exp->leaf, exp->issuer);
        int match = mine != NULL && OCSP_id_cmp(mine, cid) == 0;
        OCSP_CERTID_free(mine);
        if (match)
            return sr;
    }
    return NULL;
}

static enum stapler_reason check_single(OCSP_SINGLERESP *sr, const struct ocsp_expect *exp,
                                        struct ocsp_verdict *v)
{
    int crl_reason = -1;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    int st = OCSP_single_get0_status(sr, &crl_reason, &rev, &thisupd, &nextupd);

    v->this_update = gtime_to_epoch(thisupd);
    if (v->this_update < 0)
        return fail(v, STAPLER_REASON_BAD_TIMES, "thisUpdate unreadable");
    if (v->this_update > exp->now + (int64_t)exp->skew_s)
        return fail(v, STAPLER_REASON_THIS_UPDATE_FUTURE,
                    "thisUpdate is %lld s in the future (skew allowed %u s)",
                    (long long)(v->this_update - exp->now), exp->skew_s);
    if (nextupd == NULL)
        return fail(v, STAPLER_REASON_NO_NEXT_UPDATE,
                    "nextUpdate absent: the response could never expire");
    v->next_update = gtime_to_epoch(nextupd);
    if (v->next_update < 0 || v->next_update <= v->this_update)
        return fail(v, STAPLER_REASON_BAD_TIMES, "nextUpdate not after thisUpdate");
    if (v->next_update <= exp->now)
        return fail(v, STAPLER_REASON_EXPIRED, "nextUpdate passed %lld s ago",
                    (long long)(exp->now - v->next_update));
    if (exp->held_this_update != 0 && v->this_update < exp->held_this_update)
        return fail(v, STAPLER_REASON_OLDER,
                    "thisUpdate %lld s older than the response held",
                    (long long)(exp->held_this_update - v->this_update));

    switch (st) {
    case V_OCSP_CERTSTATUS_GOOD:
        v->status = STAPLER_OCSP_GOOD;
        break;
    case V_OCSP_CERTSTATUS_REVOKED:
        v->status = STAPLER_OCSP_REVOKED;
        v->revocation_reason = crl_reason;
        v->revocation_time = rev != NULL ? gtime_to_epoch(rev) : 0;
        break;
    case V_OCSP_CERTSTATUS_UNKNOWN:
        v->status = STAPLER_OCSP_UNKNOWN;
        break;
    default:
        return fail(v, STAPLER_REASON_MALFORMED, "unknown CertStatus %d", st);
    }
    return STAPLER_REASON_OK;
}

enum stapler_reason ocsp_validate(const uint8_t *der, size_t len,
                                  const struct ocsp_expect *exp,
                                  struct ocsp_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->revocation_reason = -1;
    if (der == NULL || len == 0 || len > (1u << 30))
        return fail(v, STAPLER_REASON_MALFORMED, "empty body");

    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL)
        return fail(v, STAPLER_REASON_MALFORMED, "body is not a DER OCSPResponse");
    OCSP_BASICRESP *bs = NULL;
    enum stapler_reason r;
    if (p != der + len) {
        /* Trailing bytes would be stapled as they are; refuse them. */
        r = fail(v, STAPLER_REASON_MALFORMED, "%zu bytes after the OCSPResponse",
                 (size_t)(der + len - p));
        goto out;
    }
    r = check_response_status(OCSP_response_status(resp), v);
    if (r != STAPLER_REASON_OK)
        goto out;
    bs = OCSP_response_get1_basic(resp);
    if (bs == NULL) {
        r = fail(v, STAPLER_REASON_NOT_BASIC, "no BasicOCSPResponse");
        goto out;
    }
    r = check_signature(bs, exp, v);
    if (r != STAPLER_REASON_OK)
        goto out;
    OCSP_SINGLERESP *sr = find_single(bs, exp);
    if (sr == NULL) {
        r = fail(v, STAPLER_REASON_CERTID_MISMATCH,
                 "no SingleResponse for this certificate (response for another)");
        goto out;
    }
    r = check_single(sr, exp, v);
    if (r == STAPLER_REASON_OK) {
        v->reason = STAPLER_REASON_OK;
        snprintf(v->msg, sizeof(v->msg), "valid, status %s%s",
                 v->status == STAPLER_OCSP_GOOD      ? "good"
                 : v->status == STAPLER_OCSP_REVOKED ? "REVOKED"
                                                      : "unknown",
                 v->delegated ? ", delegated responder" : "");
    }
out:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return r;
}
