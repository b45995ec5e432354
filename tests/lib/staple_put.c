/* staple_put: publishes one response into a staple table, for tests of the
 * test tools (staple_dump) and for tests that need a table prepared before
 * the daemon starts.
 *
 *   staple_put NAME KEYHEX DER THIS_UPDATE NEXT_UPDATE
 *       opens NAME as its writer (creating it with room for 1,024 responses
 *       if it does not exist), publishes DER under KEYHEX with those times
 *       (seconds since the epoch), closes. Fails while another writer (a
 *       running tern-control) holds the table.
 *   staple_put -d NAME      unlinks the table NAME
 *
 * Exit status: 0 done; 1 error (message on stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "staple_table.h"

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned v;

        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static uint8_t *read_file(const char *path, uint32_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (long)UINT32_MAX ||
        fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc(n ? (size_t)n : 1))) {
        fclose(f);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (uint32_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    struct staple_table_params params = {
        .capacity = 1024,
        .max_response = STAPLE_TABLE_DEFAULT_MAX_RESPONSE,
    };
    uint8_t key[STAPLE_TABLE_KEY_LEN], *der;
    struct staple_table *t;
    char err[256];
    uint32_t len;
    int rc;

    if (argc == 3 && strcmp(argv[1], "-d") == 0) {
        rc = staple_table_unlink(argv[2]);
        if (rc < 0)
            fprintf(stderr, "staple_put: unlink %s: %s\n", argv[2], strerror(-rc));
        return rc < 0;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: staple_put NAME KEYHEX DER THIS_UPDATE NEXT_UPDATE\n"
                        "       staple_put -d NAME\n");
        return 1;
    }
    if (unhex(argv[2], key, sizeof(key)) < 0) {
        fprintf(stderr, "staple_put: KEYHEX must be 64 hex digits\n");
        return 1;
    }
    der = read_file(argv[3], &len);
    if (!der) {
        fprintf(stderr, "staple_put: %s: cannot read\n", argv[3]);
        return 1;
    }
    t = staple_table_open_writer(argv[1], &params, err, sizeof(err));
    if (!t && errno == EINVAL) /* exists with another geometry: take it as is */
        t = staple_table_open_writer(argv[1], NULL, err, sizeof(err));
    if (!t) {
        fprintf(stderr, "staple_put: %s: %s\n", argv[1], err);
        free(der);
        return 1;
    }
    rc = staple_table_publish(t, key, der, len, strtoll(argv[4], NULL, 10),
                              strtoll(argv[5], NULL, 10));
    if (rc < 0)
        fprintf(stderr, "staple_put: publish: %s\n", strerror(-rc));
    staple_table_close(t);
    free(der);
    return rc < 0;
}
