/* Helpers shared by the stapler unit tests: paths handed over by
 * run-stapler-unit.sh, PEM/DER loading, and OCSP responses and certificates
 * crafted with OpenSSL's own API (for the cases no honest responder sends:
 * thisUpdate in the future, expired, older, another certificate, an
 * unrelated signer, error statuses). Test-only: static functions. */
#ifndef TERN_TEST_STAPLER_TESTPKI_H
#define TERN_TEST_STAPLER_TESTPKI_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static __attribute__((unused)) const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "%s not set: run through run-stapler-unit.sh\n", name);
        exit(2);
    }
    return v;
}

/* $TERN_DIR/REL; each result lives until the process ends (a static
 * pool, so tests may keep the pointers in specs and params). */
static __attribute__((unused)) const char *tpath(const char *rel)
{
    static char bufs[1024][512];
    static unsigned i;
    if (i == 1024) {
        fprintf(stderr, "tpath: pool exhausted\n");
        exit(2);
    }
    char *b = bufs[i++];
    snprintf(b, 512, "%s/%s", env_or_die("TERN_DIR"), rel);
    return b;
}

static __attribute__((unused)) X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        fprintf(stderr, "%s: no certificate\n", path);
        exit(2);
    }
    return x;
}

static __attribute__((unused)) EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (k == NULL) {
        fprintf(stderr, "%s: no key\n", path);
        exit(2);
    }
    return k;
}

static __attribute__((unused)) uint8_t *load_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    uint8_t *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static __attribute__((unused)) void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

struct craft {
    X509 *cert, *issuer;     /* the CertID names CERT under ISSUER */
    X509 *signer;            /* signs with KEY; its name is the ResponderID */
    EVP_PKEY *key;
    int status;              /* V_OCSP_CERTSTATUS_* */
    long this_off, next_off; /* seconds from now */
    bool no_next;
    bool no_certs;           /* leave the signer's certificate out */
    const EVP_MD *id_md;     /* CertID hash; NULL: SHA-1 */
    int error;               /* non-zero: an unsuccessful responseStatus */
};

/* DER of the response C describes (malloc'd, *LEN bytes). */
static __attribute__((unused)) uint8_t *craft_der(const struct craft *c, size_t *len)
{
    OCSP_RESPONSE *r;
    if (c->error) {
        r = OCSP_response_create(c->error, NULL);
    } else {
        OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
        OCSP_CERTID *id = OCSP_cert_to_id(c->id_md ? c->id_md : EVP_sha1(), c->cert, c->issuer);
        ASN1_TIME *tu = X509_gmtime_adj(NULL, c->this_off);
        ASN1_TIME *nu = c->no_next ? NULL : X509_gmtime_adj(NULL, c->next_off);
        ASN1_TIME *rev = c->status == V_OCSP_CERTSTATUS_REVOKED ? X509_gmtime_adj(NULL, -7200)
                                                                 : NULL;
        if (OCSP_basic_add1_status(bs, id, c->status,
                                   rev ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1, rev, tu,
                                   nu) == NULL ||
            OCSP_basic_sign(bs, c->signer, c->key, EVP_sha256(), NULL,
                            c->no_certs ? OCSP_NOCERTS : 0) != 1) {
            fprintf(stderr, "craft_der: OpenSSL refused\n");
            exit(2);
        }
        r = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
        OCSP_CERTID_free(id);
        ASN1_TIME_free(tu);
        ASN1_TIME_free(nu);
        ASN1_TIME_free(rev);
        OCSP_BASICRESP_free(bs);
    }
    unsigned char *out = NULL;
    int n = i2d_OCSP_RESPONSE(r, &out);
    OCSP_RESPONSE_free(r);
    uint8_t *der = malloc((size_t)n);
    memcpy(der, out, (size_t)n);
    OPENSSL_free(out);
    *len = (size_t)n;
    return der;
}

static __attribute__((unused)) void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL || !X509_add_ext(x, e, -1)) {
        fprintf(stderr, "add_ext %d %s failed\n", nid, value);
        exit(2);
    }
    X509_EXTENSION_free(e);
}

/* A fresh P-256 certificate CN issued by ISSUER (signed with IKEY), with
 * the extensions in EXTS (pairs nid, value; ends with 0). *KEY receives
 * its private key. */
static __attribute__((unused)) X509 *make_cert(X509 *issuer, EVP_PKEY *ikey, const char *cn, EVP_PKEY **key,
                       const int *nids, const char *const *values)
{
    static long serial = 0x7e000000;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(issuer));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    for (int i = 0; nids != NULL && nids[i] != 0; i++)
        add_ext(x, issuer, nids[i], values[i]);
    if (X509_sign(x, ikey, EVP_sha256()) <= 0) {
        fprintf(stderr, "make_cert: sign failed\n");
        exit(2);
    }
    *key = k;
    return x;
}

/* Writes LEAF then ISSUER as PEM into PATH. */
static __attribute__((unused)) void write_chain(const char *path, X509 *leaf, X509 *issuer)
{
    FILE *f = fopen(path, "w");
    if (f == NULL || !PEM_write_X509(f, leaf) || (issuer && !PEM_write_X509(f, issuer))) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

#endif
