/* Certificate inventory: what the stapler needs to know about one leaf,
 * read from its chain PEM (and an optional issuer PEM). Internal to the
 * stapler library; also used by tests and the benchmark. */
#ifndef TERN_STAPLER_INVENTORY_H
#define TERN_STAPLER_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stapler-t.h"

struct stapler_inventory {
    struct x509_st *leaf;   /* owned */
    struct x509_st *issuer; /* owned; NULL if none could be found */
    uint8_t key[STAPLE_TABLE_KEY_LEN]; /* SHA-256 of the leaf DER */
    bool have_key;
    char *urls[STAPLER_MAX_URLS]; /* OCSP URLs, AIA order (or the override) */
    unsigned n_urls;
    bool must_staple;       /* TLS Feature extension lists status_request */
    int64_t not_after;      /* seconds since the epoch */
};

/* Issuers already parsed during one inventory pass, matched by DER bytes:
 * thousands of leaves usually share a handful of issuers, and parsing a
 * certificate (its public key above all) is most of the cost of loading
 * one with OpenSSL 3.0. Zero-initialise; stapler_issuer_memo_clear(). */
#define STAPLER_ISSUER_MEMO_SLOTS 16
struct stapler_issuer_memo {
    struct {
        struct x509_st *x; /* a reference held by the memo */
        unsigned char *der;
        long len;
    } slot[STAPLER_ISSUER_MEMO_SLOTS];
    unsigned next;
};

void stapler_issuer_memo_clear(struct stapler_issuer_memo *m);

/* Reads SPEC's files into INV (zeroed first). The leaf is the first
 * certificate of spec->chain_path; the issuer is spec->issuer_path's first
 * certificate, else the chain's second; it must have issued the leaf.
 * On error INV keeps what was learned (the key if the leaf was read) and
 * ERR says why. Control plane. Returns 0, or -ENOENT/-EACCES/-EIO (file),
 * -EBADMSG (no PEM certificate), -ENOKEY (no issuer, or it did not issue
 * the leaf), -ENOMEM. No OCSP URL is not an error (n_urls == 0). Release
 * with stapler_inventory_clear() in every case. */
int stapler_inventory_load(const struct stapler_cert_spec *spec,
                           struct stapler_inventory *inv, char *err, size_t errlen);

/* The same, reusing and filling MEMO (may be NULL) for the issuer. */
int stapler_inventory_load_memo(const struct stapler_cert_spec *spec,
                                struct stapler_inventory *inv,
                                struct stapler_issuer_memo *memo, char *err, size_t errlen);

/* Frees what INV owns and zeroes it. */
void stapler_inventory_clear(struct stapler_inventory *inv);

/* Hex of KEY into OUT (at least 2 * STAPLE_TABLE_KEY_LEN + 1 bytes). */
void stapler_key_hex(const uint8_t key[STAPLE_TABLE_KEY_LEN], char *out);

#endif
