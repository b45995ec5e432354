/* Certificate inventory from PEM files. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "stapler_inventory.h"

/* RFC 7633: TLS Feature value 5 is status_request (OCSP Must-Staple). */
#define TLS_FEATURE_STATUS_REQUEST 5

void stapler_key_hex(const uint8_t key[STAPLE_TABLE_KEY_LEN], char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < STAPLE_TABLE_KEY_LEN; i++) {
        out[2 * i] = hex[key[i] >> 4];
        out[2 * i + 1] = hex[key[i] & 15];
    }
    out[2 * STAPLE_TABLE_KEY_LEN] = '\0';
}

void stapler_issuer_memo_clear(struct stapler_issuer_memo *m)
{
    for (unsigned i = 0; i < STAPLER_ISSUER_MEMO_SLOTS; i++) {
        X509_free(m->slot[i].x);
        OPENSSL_free(m->slot[i].der);
    }
    memset(m, 0, sizeof(*m));
}

/* The next certificate block of F as an X509, through MEMO when its DER
 * is one seen before. Other PEM blocks (a key bundled in the file) are
 * skipped. NULL at the end of the file or on a bad block. */
static X509 *read_cert_block(FILE *f, struct stapler_issuer_memo *memo)
{
    for (int guard = 0; guard < 64; guard++) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long len = 0;
        if (PEM_read(f, &name, &header, &der, &len) != 1)
            return NULL;
        bool cert = strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0;
        OPENSSL_free(name);
        OPENSSL_free(header);
        if (!cert) {
            OPENSSL_free(der);
            continue;
        }
        for (unsigned i = 0; memo != NULL && i < STAPLER_ISSUER_MEMO_SLOTS; i++) {
            if (memo->slot[i].x != NULL && memo->slot[i].len == len &&
                memcmp(memo->slot[i].der, der, (size_t)len) == 0 &&
                X509_up_ref(memo->slot[i].x)) {
                OPENSSL_free(der);
                return memo->slot[i].x;
            }
        }
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, len);
        if (x != NULL && memo != NULL && X509_up_ref(x)) {
            unsigned i = memo->next++ % STAPLER_ISSUER_MEMO_SLOTS;
            X509_free(memo->slot[i].x);
            OPENSSL_free(memo->slot[i].der);
            memo->slot[i].x = x;
            memo->slot[i].der = der;
            memo->slot[i].len = len;
            der = NULL;
        }
        OPENSSL_free(der);
        return x;
    }
    return NULL;
}

/* Opens PATH and reads its first certificate (through MEMO when FIRST_MEMO,
 * as for an issuer file), and the second through MEMO if SECOND is not
 * NULL (left NULL if the file has only one). */
static int read_pem(const char *path, X509 **first, X509 **second,
                    struct stapler_issuer_memo *memo, bool first_memo, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    *first = read_cert_block(f, first_memo ? memo : NULL);
    if (*first != NULL && second != NULL)
        *second = read_cert_block(f, memo);
    fclose(f);
    ERR_clear_error(); /* the end of the file reads as an error */
    if (*first == NULL) {
        snprintf(err, errlen, "%s: no PEM certificate", path);
        return -EBADMSG;
    }
    return 0;
}

static int64_t asn1_to_epoch(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static bool has_must_staple(X509 *leaf)
{
    int crit = 0;
    TLS_FEATURE *tf = X509_get_ext_d2i(leaf, NID_tlsfeature, &crit, NULL);
    bool found = false;
    for (int i = 0; tf != NULL && i < sk_ASN1_INTEGER_num(tf); i++)
        if (ASN1_INTEGER_get(sk_ASN1_INTEGER_value(tf, i)) == TLS_FEATURE_STATUS_REQUEST)
            found = true;
    TLS_FEATURE_free(tf);
    return found;
}

static int collect_urls(X509 *leaf, const char *override, struct stapler_inventory *inv)
{
    if (override != NULL) {
        inv->urls[0] = strdup(override);
        if (inv->urls[0] == NULL)
            return -ENOMEM;
        inv->n_urls = 1;
        return 0;
    }
    STACK_OF(OPENSSL_STRING) *ocsp = X509_get1_ocsp(leaf);
    int rc = 0;
    for (int i = 0; ocsp != NULL && i < sk_OPENSSL_STRING_num(ocsp) &&
                    inv->n_urls < STAPLER_MAX_URLS; i++) {
        const char *u = sk_OPENSSL_STRING_value(ocsp, i);
        /* Only HTTP(S) can be fetched; ldap:// and the like are skipped. */
        if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
            continue;
        inv->urls[inv->n_urls] = strdup(u);
        if (inv->urls[inv->n_urls] == NULL) {
            rc = -ENOMEM;
            break;
        }
        inv->n_urls++;
    }
    X509_email_free(ocsp);
    return rc;
}

int stapler_inventory_load(const struct stapler_cert_spec *spec,
                           struct stapler_inventory *inv, char *err, size_t errlen)
{
    return stapler_inventory_load_memo(spec, inv, NULL, err, errlen);
}

int stapler_inventory_load_memo(const struct stapler_cert_spec *spec,
                                struct stapler_inventory *inv,
                                struct stapler_issuer_memo *memo, char *err, size_t errlen)
{
    memset(inv, 0, sizeof(*inv));
    err[0] = '\0';
    X509 *second = NULL;
    int rc = read_pem(spec->chain_path, &inv->leaf,
                      spec->issuer_path == NULL ? &second : NULL, memo, false, err, errlen);
    if (rc < 0)
        return rc;

    unsigned char *der = NULL;
    int len = i2d_X509(inv->leaf, &der);
    if (len <= 0 || EVP_Digest(der, (size_t)len, inv->key, NULL, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        snprintf(err, errlen, "%s: cannot encode the leaf", spec->chain_path);
        X509_free(second);
        return -ENOMEM;
    }
    OPENSSL_free(der);
    inv->have_key = true;
    inv->must_staple = has_must_staple(inv->leaf);
    inv->not_after = asn1_to_epoch(X509_get0_notAfter(inv->leaf));
    rc = collect_urls(inv->leaf, spec->ocsp_url, inv);
    if (rc < 0) {
        X509_free(second);
        snprintf(err, errlen, "out of memory");
        return rc;
    }

    if (spec->issuer_path != NULL) {
        rc = read_pem(spec->issuer_path, &inv->issuer, NULL, memo, true, err, errlen);
        if (rc < 0)
            return rc == -EBADMSG ? -ENOKEY : rc;
    } else {
        inv->issuer = second;
        if (inv->issuer == NULL) {
            snprintf(err, errlen, "%s: no issuer certificate after the leaf, and no issuer "
                     "file configured", spec->chain_path);
            return -ENOKEY;
        }
    }
    if (X509_check_issued(inv->issuer, inv->leaf) != X509_V_OK) {
        snprintf(err, errlen, "%s: the issuer certificate did not issue the leaf",
                 spec->issuer_path ? spec->issuer_path : spec->chain_path);
        X509_free(inv->issuer);
        inv->issuer = NULL;
        return -ENOKEY;
    }
    return 0;
}

void stapler_inventory_clear(struct stapler_inventory *inv)
{
    X509_free(inv->leaf);
    X509_free(inv->issuer);
    for (unsigned i = 0; i < inv->n_urls; i++)
        free(inv->urls[i]);
    memset(inv, 0, sizeof(*inv));
}
