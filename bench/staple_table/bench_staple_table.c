/* Staple table benchmark: N entries (100,000 by default) of realistic
 * 1.5 KiB responses. Prints publishes per second, ns per lookup (with the
 * copy), and shared memory against the sum of the responses.
 *
 *   bench_staple_table [N]             the figures above
 *   bench_staple_table --lookups M [N] fills the table, then does M lookups
 *                                      and nothing else: run it under
 *                                      callgrind (see run.sh) for
 *                                      instructions per lookup
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "staple_table.h"

static void key_of(uint8_t key[STAPLE_TABLE_KEY_LEN], uint32_t k)
{
    uint64_t x = k * 0x9e3779b97f4a7c15ull + 3;
    for (int b = 0; b < STAPLE_TABLE_KEY_LEN; b++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        key[b] = (uint8_t)(x >> 56);
    }
}

/* Sizes as one CA's responses come: 1.5 KiB give or take a few bytes
 * (signature and serial lengths vary). */
static uint32_t len_of(uint32_t k)
{
    return 1500 + (k * 2654435761u >> 16) % 72;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t (*keys)[STAPLE_TABLE_KEY_LEN];

static int fill(struct staple_table *w, uint32_t n, const uint8_t *der, double *secs)
{
    double t0 = mono();
    for (uint32_t k = 0; k < n; k++) {
        int rc = staple_table_publish(w, keys[k], der, len_of(k), 0, INT64_MAX);
        if (rc != 0) {
            fprintf(stderr, "publish %u: %s\n", k, strerror(-rc));
            return rc;
        }
    }
    *secs = mono() - t0;
    return 0;
}

int main(int argc, char **argv)
{
    long lookups_only = 0;
    int a = 1;
    if (argc > 2 && strcmp(argv[1], "--lookups") == 0) {
        lookups_only = atol(argv[2]);
        a = 3;
    }
    uint32_t n = argc > a ? (uint32_t)atol(argv[a]) : 100000u;
    if (n == 0)
        return 2;
    char name[64], err[256];
    snprintf(name, sizeof(name), "/tern-bench-%d", (int)getpid());
    struct staple_table_params p = {.capacity = n};
    struct staple_table *w = staple_table_open_writer(name, &p, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct staple_table *r = staple_table_attach_reader(name, err, sizeof(err));
    keys = malloc((size_t)n * sizeof(*keys));
    uint8_t *der = malloc(4096), *out = malloc(4096);
    if (r == NULL || keys == NULL || der == NULL || out == NULL)
        return 1;
    for (uint32_t k = 0; k < n; k++)
        key_of(keys[k], k);
    for (int i = 0; i < 4096; i++)
        der[i] = (uint8_t)(i * 13);

    double fill_s, refill_s;
    if (fill(w, n, der, &fill_s) != 0)
        return 1;

    /* A random order of keys, made before timing. */
    uint32_t *order = malloc((size_t)n * sizeof(uint32_t));
    if (order == NULL)
        return 1;
    uint64_t s = 88172645463325252ull;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t j = (uint32_t)(s % (i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    long bad = 0;
    if (lookups_only > 0) {
        for (long i = 0; i < lookups_only; i++)
            bad += staple_table_lookup(r, keys[order[i % n]], 1, out, 4096, NULL) <= 0;
        printf("%ld lookups, %ld failed\n", lookups_only, bad);
        staple_table_close(r);
        staple_table_close(w);
        staple_table_unlink(name);
        return bad != 0;
    }

    /* Republish every key: steady state, blocks reused. */
    if (fill(w, n, der, &refill_s) != 0)
        return 1;

    long rounds = 0;
    double t0 = mono(), dt;
    do {
        for (uint32_t i = 0; i < n; i++)
            bad += staple_table_lookup(r, keys[order[i]], 1, out, 4096, NULL) <= 0;
        rounds++;
        dt = mono() - t0;
    } while (dt < 1.0 && rounds < 100);
    double ns_lookup = dt * 1e9 / ((double)rounds * n);

    struct staple_table_stats st;
    staple_table_stats(w, &st);
    double target = 1.25 * (double)st.response_bytes + 128.0 * n;
    printf("staple table, %u entries of 1500-1571 byte responses\n", n);
    printf("  publish (new keys):         %.0f per second\n", n / fill_s);
    printf("  publish (replace):          %.0f per second\n", n / refill_s);
    printf("  lookup, random keys:        %.1f ns (copy included), %ld misses\n", ns_lookup,
           bad);
    printf("  sum of responses:           %llu bytes\n", (unsigned long long)st.response_bytes);
    printf("  shared memory resident:     %llu bytes = %.3f x the responses "
           "(+%.0f bytes per certificate)\n",
           (unsigned long long)st.shm_resident,
           (double)st.shm_resident / (double)st.response_bytes,
           ((double)st.shm_resident - (double)st.response_bytes) / n);
    printf("  memory target:              %.0f bytes (1.25 x responses + 128 B/cert): %s\n",
           target, st.shm_resident <= target ? "met" : "MISSED");
    staple_table_close(r);
    staple_table_close(w);
    staple_table_unlink(name);
    free(order);
    free(keys);
    free(der);
    free(out);
    return bad != 0;
}
