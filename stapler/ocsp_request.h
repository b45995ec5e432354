/* OCSP requests in the RFC 5019 profile: one SHA-1 CertID, no nonce, no
 * signature; sent by GET when the URL stays short, else by POST. */
#ifndef TERN_OCSP_REQUEST_H
#define TERN_OCSP_REQUEST_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5019 §5: GET when the whole URL is under 255 bytes. */
#define OCSP_REQUEST_GET_MAX 255

struct x509_st;

/* Encodes the request for LEAF issued by ISSUER into *DER (*LEN bytes,
 * free with OPENSSL_free). Any thread. Returns 0 or -ENOMEM/-EINVAL. */
int ocsp_request_build(struct x509_st *leaf, struct x509_st *issuer,
                       uint8_t **der, size_t *len);

/* Writes the GET URL for DER into BUF: BASE, a '/' if BASE lacks one, then
 * the base64 of DER with '+', '/' and '=' percent-encoded. Pure.
 * Returns the URL's length if it is under OCSP_REQUEST_GET_MAX and fits in
 * CAP (use GET), or -E2BIG (use POST with the DER as body). */
int ocsp_request_get_url(const char *base, const uint8_t *der, size_t len,
                         char *buf, size_t cap);

#endif
