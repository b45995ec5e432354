/* staple_dump: a read-only look into a staple table, for tests.
 *
 *   staple_dump NAME
 *       one line per published key, in the table's order:
 *       key=<64 hex> len=<bytes> this_update=<epoch s> next_update=<epoch s>
 *       version=<publish counter> sha256=<64 hex of the DER | expired>
 *       then a last line "entries=<n>". An expired entry is listed (the
 *       table keeps it until the writer removes it) but its bytes cannot be
 *       read through the reader API, so its digest shows as "expired".
 *   staple_dump NAME KEYHEX OUT.der
 *       writes KEYHEX's response to OUT.der so that a test can compare it
 *       byte for byte with what a responder sent and check it with openssl.
 *
 * Attaches with staple_table_attach_reader (a PROT_READ mapping): it cannot
 * disturb the writer, and it runs while tern-control is running or dead.
 *
 * Exit status: 0 done; 1 usage or system error; 2 no such table or key;
 * 3 the key's response is expired; 4 the writer kept replacing it (EAGAIN).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "staple_table.h"

enum { EXIT_USAGE = 1, EXIT_ABSENT = 2, EXIT_EXPIRED = 3, EXIT_BUSY = 4 };

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v;

        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return -EINVAL;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

/* Copies KEY's response into a malloc'ed buffer (*out, caller frees).
 * Returns its length or the lookup's -errno. */
static int fetch(const struct staple_table *t, const uint8_t *key, uint32_t hint,
                 uint8_t **out)
{
    uint32_t cap = hint ? hint : 4096;

    for (int tries = 0; tries < 4; tries++) {
        struct staple_table_entry e;
        uint8_t *buf = malloc(cap);
        int n;

        if (!buf)
            return -ENOMEM;
        n = staple_table_lookup(t, key, (int64_t)time(NULL), buf, cap, &e);
        if (n > 0) {
            *out = buf;
            return n;
        }
        free(buf);
        if (n != -ENOBUFS)
            return n;
        cap = e.len; /* it grew since foreach: ask again with its size */
    }
    return -EAGAIN;
}

struct dump_ctx {
    const struct staple_table *t;
    int entries;
    int errors;
};

static int dump_one(const struct staple_table_entry *e, void *arg)
{
    struct dump_ctx *c = arg;
    char key[2 * STAPLE_TABLE_KEY_LEN + 1], digest[2 * 32 + 1];
    uint8_t *der = NULL, md[32];
    int n = fetch(c->t, e->key, e->len, &der);

    hex(e->key, STAPLE_TABLE_KEY_LEN, key);
    if (n > 0) {
        if (!EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
            c->errors++;
            snprintf(digest, sizeof(digest), "error");
        } else {
            hex(md, sizeof(md), digest);
        }
        free(der);
    } else if (n == -ESTALE) {
        snprintf(digest, sizeof(digest), "expired");
    } else if (n == -ENOENT) {
        /* removed between the walk and the lookup */
        snprintf(digest, sizeof(digest), "removed");
    } else {
        c->errors++;
        snprintf(digest, sizeof(digest), "error:%s", strerror(-n));
    }
    printf("key=%s len=%" PRIu32 " this_update=%" PRId64 " next_update=%" PRId64
           " version=%" PRIu64 " sha256=%s\n",
           key, e->len, e->this_update, e->next_update, e->version, digest);
    c->entries++;
    return 0;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (!f)
        return -errno;
    if (fwrite(p, 1, n, f) != n) {
        int err = errno ? -errno : -EIO;

        fclose(f);
        return err;
    }
    return fclose(f) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
    char err[256];
    struct staple_table *t;
    int status = 0;

    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: staple_dump NAME\n"
                        "       staple_dump NAME KEYHEX OUT.der\n");
        return EXIT_USAGE;
    }
    t = staple_table_attach_reader(argv[1], err, sizeof(err));
    if (!t) {
        fprintf(stderr, "staple_dump: %s: %s\n", argv[1], err);
        return errno == ENOENT ? EXIT_ABSENT : EXIT_USAGE;
    }
    if (argc == 2) {
        struct dump_ctx c = { .t = t };
        int n = staple_table_foreach(t, dump_one, &c);

        if (n < 0) {
            fprintf(stderr, "staple_dump: foreach: %s\n", strerror(-n));
            status = EXIT_USAGE;
        } else {
            printf("entries=%d\n", c.entries);
            status = c.errors ? EXIT_USAGE : 0;
        }
    } else {
        uint8_t key[STAPLE_TABLE_KEY_LEN], *der = NULL;
        int n;

        if (unhex(argv[2], key, sizeof(key)) < 0) {
            fprintf(stderr, "staple_dump: KEYHEX must be 64 hex digits\n");
            staple_table_close(t);
            return EXIT_USAGE;
        }
        n = fetch(t, key, 0, &der);
        if (n > 0) {
            int w = write_file(argv[3], der, (size_t)n);

            if (w < 0) {
                fprintf(stderr, "staple_dump: %s: %s\n", argv[3], strerror(-w));
                status = EXIT_USAGE;
            }
            free(der);
        } else {
            fprintf(stderr, "staple_dump: %s: %s\n", argv[2], strerror(-n));
            status = n == -ENOENT   ? EXIT_ABSENT
                     : n == -ESTALE ? EXIT_EXPIRED
                     : n == -EAGAIN ? EXIT_BUSY
                                    : EXIT_USAGE;
        }
    }
    staple_table_close(t);
    return status;
}
