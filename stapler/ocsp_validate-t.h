/* Types of OCSP response validation (ocsp_validate.h). */
#ifndef TERN_OCSP_VALIDATE_T_H
#define TERN_OCSP_VALIDATE_T_H

#include <stdint.h>

#include "stapler-t.h"

/* Delegated responder certificates already vetted against an issuer
 * (issued and signed by it, id-kp-OCSPSigning): a CA's responder signs
 * every response with the same certificate, so remembering it saves one
 * signature verification per response. Validity dates are still checked
 * on every use. Zero-initialise; release with ocsp_delegate_memo_clear(). */
#define OCSP_DELEGATE_MEMO_SLOTS 8
struct ocsp_delegate_memo {
    struct {
        struct x509_st *issuer;  /* a reference held by the memo */
        uint8_t signer_sha256[32];
    } slot[OCSP_DELEGATE_MEMO_SLOTS];
    unsigned next;               /* round-robin replacement */
};

/* What a response is checked against. */
struct ocsp_expect {
    struct x509_st *leaf;     /* the certificate the response must be for */
    struct x509_st *issuer;   /* the only trust anchor: signs the response
                               * itself or issued the delegated responder */
    int64_t now;              /* seconds since the epoch */
    uint32_t skew_s;          /* thisUpdate may be this far in the future */
    int64_t held_this_update; /* thisUpdate of the response already held, or
                               * 0: an older response is refused */
    struct ocsp_delegate_memo *memo; /* NULL, or vetted delegates to reuse
                                      * (and to add to) */
};

/* What validation found. Times are seconds since the epoch. */
struct ocsp_verdict {
    enum stapler_reason reason;   /* OK or the first check that failed */
    enum stapler_ocsp_status status;
    int64_t this_update;
    int64_t next_update;          /* 0 if absent */
    int64_t revocation_time;      /* 0 unless revoked */
    int revocation_reason;        /* CRLReason, -1 if none given */
    int delegated;                /* signed by a delegated responder */
    char msg[STAPLER_ERR_LEN];    /* one line saying why, for logs */
};

#endif
