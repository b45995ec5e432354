/* OCSP response validation: every check a response must pass before it is
 * stapled (DESIGN.md "Stapler policy"). Pure: no I/O, no global state, so
 * the fuzz target drives exactly what the stapler runs. */
#ifndef TERN_OCSP_VALIDATE_H
#define TERN_OCSP_VALIDATE_H

#include <stddef.h>

#include "ocsp_validate-t.h"

/* Checks DER (LEN bytes, a whole OCSPResponse and nothing after it) for the
 * leaf in EXP, in this order: DER parses; responseStatus is successful;
 * the body is a BasicOCSPResponse; the signer is EXP->issuer itself or a
 * certificate issued (and signed) by it, valid now and carrying
 * id-kp-OCSPSigning; the signature verifies with the signer's key; a
 * SingleResponse's CertID (with whatever hash it uses) matches the leaf;
 * thisUpdate <= now + skew; nextUpdate present, after thisUpdate and after
 * now; thisUpdate not before EXP->held_this_update.
 * Any thread (OpenSSL objects in EXP are only read).
 * Fills V (always; V->msg says why on failure) and returns V->reason. */
enum stapler_reason ocsp_validate(const uint8_t *der, size_t len,
                                  const struct ocsp_expect *exp,
                                  struct ocsp_verdict *v);

/* Drops the memo's references and empties it. */
void ocsp_delegate_memo_clear(struct ocsp_delegate_memo *m);

#endif
