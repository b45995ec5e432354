/* OCSP request encoding (RFC 5019 profile). */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "ocsp_request.h"

int ocsp_request_build(X509 *leaf, X509 *issuer, uint8_t **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    if (leaf == NULL || issuer == NULL)
        return -EINVAL;
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    /* SHA-1 CertID: RFC 5019 §2.1.1; what every responder answers. */
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (req == NULL || id == NULL || OCSP_request_add0_id(req, id) == NULL) {
        OCSP_CERTID_free(id);
        OCSP_REQUEST_free(req);
        return -ENOMEM;
    }
    unsigned char *out = NULL;
    int n = i2d_OCSP_REQUEST(req, &out);
    OCSP_REQUEST_free(req); /* frees id too */
    if (n <= 0)
        return -ENOMEM;
    *der = out;
    *len = (size_t)n;
    return 0;
}

int ocsp_request_get_url(const char *base, const uint8_t *der, size_t len,
                         char *buf, size_t cap)
{
    size_t blen = strlen(base);
    size_t b64len = 4 * ((len + 2) / 3);
    /* Cheap bound first: each of the b64 characters may become 3. */
    if (blen + 1 + b64len >= OCSP_REQUEST_GET_MAX || blen + 1 + b64len >= cap)
        return -E2BIG;
    unsigned char b64[OCSP_REQUEST_GET_MAX + 4];
    int n = EVP_EncodeBlock(b64, der, (int)len);
    if (n < 0)
        return -E2BIG;
    size_t o = 0;
    memcpy(buf, base, blen);
    o = blen;
    if (blen == 0 || base[blen - 1] != '/')
        buf[o++] = '/';
    for (int i = 0; i < n; i++) {
        const char *esc = b64[i] == '+' ? "%2B" : b64[i] == '/' ? "%2F"
                        : b64[i] == '=' ? "%3D" : NULL;
        size_t need = esc ? 3 : 1;
        if (o + need >= OCSP_REQUEST_GET_MAX || o + need >= cap)
            return -E2BIG;
        if (esc)
            memcpy(buf + o, esc, 3);
        else
            buf[o] = (char)b64[i];
        o += need;
    }
    buf[o] = '\0';
    return (int)o;
}
