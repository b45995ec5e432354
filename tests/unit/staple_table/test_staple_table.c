/* Unit tests of the staple table: every operation and every error path.
 * The .c is included so that the crash-reclaim test can leak an allocation
 * the way a killed writer would. */
#include <stddef.h>

static void (*after_copy_hook)(void);
static void run_after_copy_hook(void)
{
    void (*fn)(void) = after_copy_hook;
    after_copy_hook = NULL; /* one shot */
    if (fn != NULL)
        fn();
}
#define ST_TEST_AFTER_COPY() run_after_copy_hook()
#include "../../../stapler/staple_table.c"

#include <sys/wait.h>

#include "check.h"

static int name_seq;

/* A fresh shm name per table; a small ring of buffers so that a test may
 * hold a few names at once. */
static const char *tname(void)
{
    static char bufs[4][64];
    char *b = bufs[name_seq % 4];
    snprintf(b, sizeof(bufs[0]), "/tern-ut-%d-%d", (int)getpid(), name_seq++);
    return b;
}

static void key_of(uint8_t key[STAPLE_TABLE_KEY_LEN], uint32_t i)
{
    /* Spread i over the bytes the table hashes and tags, like SHA-256. */
    uint64_t x = i * 0x9e3779b97f4a7c15ull + 1;
    for (int b = 0; b < STAPLE_TABLE_KEY_LEN; b++) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        key[b] = (uint8_t)(x >> 56);
    }
}

static void fill(uint8_t *buf, uint32_t len, uint32_t seed)
{
    for (uint32_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed * 31 + i * 7);
}

static const struct staple_table_params small = {.capacity = 8, .max_response = 4096};

static void test_publish_lookup_replace_remove(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table *w = staple_table_open_writer(n, &small, err, sizeof(err));
    CHECK(w != NULL);
    struct staple_table *r = staple_table_attach_reader(n, err, sizeof(err));
    CHECK(r != NULL);
    if (w == NULL || r == NULL)
        return;
    uint8_t key[32], der[4096], out[4096];
    key_of(key, 1);
    fill(der, 1500, 1);
    struct staple_table_entry e;

    CHECK_EQ_INT(staple_table_lookup(r, key, 100, out, sizeof(out), &e), -ENOENT);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 1500, 90, 200), 0);
    memset(out, 0, sizeof(out));
    CHECK_EQ_INT(staple_table_lookup(r, key, 100, out, sizeof(out), &e), 1500);
    CHECK_MEM(out, der, 1500);
    CHECK_MEM(e.key, key, 32);
    CHECK_EQ_INT(e.this_update, 90);
    CHECK_EQ_INT(e.next_update, 200);
    CHECK_EQ_INT(e.len, 1500);
    uint64_t v1 = e.version;

    /* A NULL entry is allowed. */
    CHECK_EQ_INT(staple_table_lookup(r, key, 100, out, sizeof(out), NULL), 1500);

    /* Expired: skipped by readers, whatever the writer does. */
    CHECK_EQ_INT(staple_table_lookup(r, key, 200, out, sizeof(out), &e), -ESTALE);
    CHECK_EQ_INT(staple_table_lookup(r, key, 201, out, sizeof(out), &e), -ESTALE);

    /* Too small a buffer: the size is reported, nothing written past CAP. */
    memset(out, 0xee, sizeof(out));
    CHECK_EQ_INT(staple_table_lookup(r, key, 100, out, 1000, &e), -ENOBUFS);
    CHECK_EQ_INT(e.len, 1500);
    CHECK(out[0] == 0xee && out[999] == 0xee);

    /* Replace with a different size: the new bytes, a larger version. */
    fill(der, 700, 2);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 700, 150, 300), 0);
    CHECK_EQ_INT(staple_table_lookup(r, key, 250, out, sizeof(out), &e), 700);
    CHECK_MEM(out, der, 700);
    CHECK(e.version > v1);
    CHECK_EQ_INT(e.this_update, 150);

    struct staple_table_stats s;
    CHECK_EQ_INT(staple_table_stats(r, &s), 0);
    CHECK_EQ_INT(s.entries, 1);
    CHECK_EQ_INT(s.response_bytes, 700);
    CHECK_EQ_INT(s.capacity, 8);
    CHECK(s.shm_resident > 0);
    CHECK_EQ_INT(staple_table_stats(w, &s), 0);
    CHECK_EQ_INT(s.arena_used, st_units_for(700) * 64);

    CHECK_EQ_INT(staple_table_remove(w, key), 0);
    CHECK_EQ_INT(staple_table_lookup(r, key, 250, out, sizeof(out), &e), -ENOENT);
    CHECK_EQ_INT(staple_table_remove(w, key), -ENOENT);
    CHECK_EQ_INT(staple_table_stats(r, &s), 0);
    CHECK_EQ_INT(s.entries, 0);
    CHECK_EQ_INT(s.response_bytes, 0);
    CHECK_EQ_INT(s.arena_used, 0);

    /* A reader handle cannot write. */
    CHECK_EQ_INT(staple_table_publish(r, key, der, 10, 0, 1), -EPERM);
    CHECK_EQ_INT(staple_table_remove(r, key), -EPERM);

    staple_table_close(r);
    staple_table_close(w);
    CHECK_EQ_INT(staple_table_unlink(n), 0);
    CHECK_EQ_INT(staple_table_unlink(n), -ENOENT);
}

static void test_sizes(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table *w = staple_table_open_writer(n, &small, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    uint8_t key[32], der[4097];
    key_of(key, 2);
    fill(der, sizeof(der), 3);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 0, 0, 10), -EMSGSIZE);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 4097, 0, 10), -EMSGSIZE);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 4096, 0, 10), 0);
    CHECK_EQ_INT(staple_table_publish(w, key, NULL, 10, 0, 10), -EMSGSIZE);

    /* The default limit is 64 KiB; 16 KiB responses must fit. */
    const char *n2 = tname();
    struct staple_table_params p = {.capacity = 4};
    struct staple_table *w2 = staple_table_open_writer(n2, &p, err, sizeof(err));
    CHECK(w2 != NULL);
    static uint8_t big[STAPLE_TABLE_DEFAULT_MAX_RESPONSE + 1], out[STAPLE_TABLE_DEFAULT_MAX_RESPONSE];
    fill(big, sizeof(big), 4);
    if (w2 != NULL) {
        CHECK_EQ_INT(staple_table_publish(w2, key, big, 16384, 0, 10), 0);
        CHECK_EQ_INT(staple_table_lookup(w2, key, 5, out, sizeof(out), NULL), 16384);
        CHECK_MEM(out, big, 16384);
        CHECK_EQ_INT(staple_table_publish(w2, key, big, STAPLE_TABLE_DEFAULT_MAX_RESPONSE, 0, 10), 0);
        CHECK_EQ_INT(staple_table_publish(w2, key, big, STAPLE_TABLE_DEFAULT_MAX_RESPONSE + 1, 0, 10),
                     -EMSGSIZE);
        staple_table_close(w2);
    }
    staple_table_unlink(n2);
    staple_table_close(w);
    staple_table_unlink(n);
}

static void test_full_table_and_arena(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table *w = staple_table_open_writer(n, &small, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    uint8_t key[32], der[100];
    fill(der, sizeof(der), 5);
    for (uint32_t i = 0; i < 8; i++) {
        key_of(key, 100 + i);
        CHECK_EQ_INT(staple_table_publish(w, key, der, sizeof(der), 0, 10), 0);
    }
    key_of(key, 200);
    CHECK_EQ_INT(staple_table_publish(w, key, der, sizeof(der), 0, 10), -ENOSPC);
    /* Replacing an existing key needs no new slot. */
    key_of(key, 103);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 50, 0, 10), 0);
    CHECK_EQ_INT(staple_table_remove(w, key), 0);
    key_of(key, 200);
    CHECK_EQ_INT(staple_table_publish(w, key, der, sizeof(der), 0, 10), 0);
    staple_table_close(w);
    staple_table_unlink(n);

    /* An arena that holds little: -ENOMEM, and space comes back on remove. */
    n = tname();
    struct staple_table_params p = {.capacity = 64, .max_response = 1024, .arena_bytes = 8192};
    w = staple_table_open_writer(n, &p, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    uint8_t big[1024];
    fill(big, sizeof(big), 6);
    int published = 0, rc = 0;
    for (uint32_t i = 0; i < 64 && rc == 0; i++) {
        key_of(key, 300 + i);
        rc = staple_table_publish(w, key, big, sizeof(big), 0, 10);
        if (rc == 0)
            published++;
    }
    CHECK_EQ_INT(rc, -ENOMEM);
    CHECK(published >= 2 && published < 64);
    key_of(key, 300);
    CHECK_EQ_INT(staple_table_remove(w, key), 0);
    key_of(key, 400);
    CHECK_EQ_INT(staple_table_publish(w, key, big, sizeof(big), 0, 10), 0);
    /* Smaller records fit into a freed larger block (split). */
    CHECK_EQ_INT(staple_table_remove(w, key), 0);
    key_of(key, 401);
    CHECK_EQ_INT(staple_table_publish(w, key, big, 100, 0, 10), 0);
    key_of(key, 402);
    CHECK_EQ_INT(staple_table_publish(w, key, big, 100, 0, 10), 0);
    staple_table_close(w);
    staple_table_unlink(n);
}

static void test_single_writer(void)
{
    const char *n = tname();
    char err[256] = "";
    struct staple_table *w = staple_table_open_writer(n, &small, err, sizeof(err));
    CHECK(w != NULL);
    struct staple_table *w2 = staple_table_open_writer(n, &small, err, sizeof(err));
    CHECK(w2 == NULL);
    CHECK_EQ_INT(errno, EBUSY);
    CHECK(strstr(err, "another writer") != NULL);

    /* In another process too; and the lock goes with its holder. */
    pid_t pid = fork();
    if (pid == 0) {
        struct staple_table *c = staple_table_open_writer(n, NULL, err, sizeof(err));
        _exit(c == NULL && errno == EBUSY ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    uint8_t key[32], der[64], out[64];
    key_of(key, 7);
    fill(der, sizeof(der), 7);
    CHECK_EQ_INT(staple_table_publish(w, key, der, sizeof(der), 0, 100), 0);
    staple_table_close(w);

    /* A new writer attaches with no geometry and keeps what was there. */
    w2 = staple_table_open_writer(n, NULL, err, sizeof(err));
    CHECK(w2 != NULL);
    if (w2 != NULL) {
        CHECK_EQ_INT(staple_table_lookup(w2, key, 50, out, sizeof(out), NULL), 64);
        CHECK_MEM(out, der, 64);
        staple_table_close(w2);
    }

    /* A writer SIGKILLed while holding the lock: the next one gets in. */
    pid = fork();
    if (pid == 0) {
        struct staple_table *c = staple_table_open_writer(n, NULL, err, sizeof(err));
        if (c == NULL)
            _exit(1);
        pause();
        _exit(0);
    }
    struct staple_table *w3 = NULL;
    for (int i = 0; i < 200; i++) { /* until the child holds it: at most 2 s */
        w3 = staple_table_open_writer(n, NULL, err, sizeof(err));
        if (w3 == NULL)
            break;
        staple_table_close(w3);
        w3 = NULL;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    w3 = staple_table_open_writer(n, NULL, err, sizeof(err));
    CHECK(w3 != NULL);
    staple_table_close(w3);
    staple_table_unlink(n);
}

static void test_attach_errors(void)
{
    char err[256] = "";
    const char *n = tname();
    CHECK(staple_table_attach_reader(n, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, ENOENT);
    CHECK(staple_table_open_writer(n, NULL, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, ENOENT);
    staple_table_unlink(n);

    struct staple_table_params bad = {.capacity = 0};
    CHECK(staple_table_open_writer(n, &bad, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    bad.capacity = 4;
    bad.max_response = ST_MAX_RESPONSE_LIMIT + 1;
    CHECK(staple_table_open_writer(n, &bad, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EINVAL);

    /* Geometry mismatch with an existing table. */
    struct staple_table *w = staple_table_open_writer(n, &small, err, sizeof(err));
    CHECK(w != NULL);
    staple_table_close(w);
    struct staple_table_params other = {.capacity = 16, .max_response = 4096};
    CHECK(staple_table_open_writer(n, &other, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(strstr(err, "geometry") != NULL);
    w = staple_table_open_writer(n, &small, err, sizeof(err)); /* same geometry: fine */
    CHECK(w != NULL);
    staple_table_close(w);

    /* An unknown layout version is refused with a clear error, by readers
     * and by writers alike. */
    int fd = shm_open(n, O_RDWR, 0);
    CHECK(fd >= 0);
    struct st_header h;
    CHECK(pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
    uint32_t saved = h.layout_version;
    h.layout_version = 99;
    CHECK(pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
    CHECK(staple_table_attach_reader(n, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EPROTO);
    CHECK(strstr(err, "layout version 99") != NULL);
    CHECK(staple_table_open_writer(n, NULL, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EPROTO);

    h.layout_version = saved;
    h.magic ^= 0xff;
    CHECK(pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
    CHECK(staple_table_attach_reader(n, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EPROTO);
    CHECK(strstr(err, "magic") != NULL);

    /* Truncated. */
    h.magic ^= 0xff;
    CHECK(pwrite(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h));
    struct staple_table *r = staple_table_attach_reader(n, err, sizeof(err));
    CHECK(r != NULL);
    staple_table_close(r);
    CHECK(ftruncate(fd, (off_t)h.total_bytes - 4096) == 0);
    CHECK(staple_table_attach_reader(n, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(strstr(err, "truncated") != NULL);
    CHECK(ftruncate(fd, 100) == 0);
    CHECK(staple_table_attach_reader(n, err, sizeof(err)) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    close(fd);
    staple_table_unlink(n);
}

/* Keys whose hash and tag bytes are equal: one probe chain, told apart by
 * the full key in the record. Removing one leaves the others reachable. */
static void test_collisions(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table_params p = {.capacity = 16, .max_response = 256};
    struct staple_table *w = staple_table_open_writer(n, &p, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    uint8_t keys[5][32], der[64], out[64];
    for (int i = 0; i < 5; i++) {
        memset(keys[i], 0xab, 32);
        keys[i][31] = (uint8_t)i;
        fill(der, sizeof(der), (uint32_t)i);
        CHECK_EQ_INT(staple_table_publish(w, keys[i], der, sizeof(der), 0, 10), 0);
    }
    CHECK_EQ_INT(staple_table_remove(w, keys[1]), 0);
    CHECK_EQ_INT(staple_table_remove(w, keys[2]), 0);
    for (int i = 0; i < 5; i++) {
        int rc = staple_table_lookup(w, keys[i], 1, out, sizeof(out), NULL);
        if (i == 1 || i == 2) {
            CHECK_EQ_INT(rc, -ENOENT);
            continue;
        }
        CHECK_EQ_INT(rc, 64);
        fill(der, sizeof(der), (uint32_t)i);
        CHECK_MEM(out, der, 64);
    }
    /* A new key reuses the first tombstone and stays findable. */
    uint8_t k6[32];
    memset(k6, 0xab, 32);
    k6[31] = 6;
    CHECK_EQ_INT(staple_table_publish(w, k6, der, 10, 0, 10), 0);
    CHECK_EQ_INT(staple_table_lookup(w, k6, 1, out, sizeof(out), NULL), 10);
    CHECK_EQ_INT(staple_table_lookup(w, keys[4], 1, out, sizeof(out), NULL), 64);
    /* Removing the chain's tail turns trailing tombstones back to empty. */
    CHECK_EQ_INT(staple_table_remove(w, keys[4]), 0);
    CHECK_EQ_INT(staple_table_remove(w, keys[3]), 0);
    uint32_t start = (uint32_t)st_key_hash(keys[0]) & w->mask;
    CHECK(w->slots[(start + 2) & w->mask] == ST_WORD_EMPTY);
    CHECK(w->slots[(start + 3) & w->mask] == ST_WORD_EMPTY);
    CHECK_EQ_INT(staple_table_lookup(w, keys[0], 1, out, sizeof(out), NULL), 64);
    staple_table_close(w);
    staple_table_unlink(n);
}

static int count_cb(const struct staple_table_entry *e, void *arg)
{
    int *c = arg;
    (*c)++;
    return e->len == 77 ? 42 : 0;
}

static void test_foreach(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table_params p = {.capacity = 100, .max_response = 256};
    struct staple_table *w = staple_table_open_writer(n, &p, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    uint8_t key[32], der[256];
    fill(der, sizeof(der), 9);
    for (uint32_t i = 0; i < 50; i++) {
        key_of(key, 1000 + i);
        /* One of them expired: the CLI still sees it. */
        CHECK_EQ_INT(staple_table_publish(w, key, der, 10 + i, 0, i == 3 ? -5 : 10), 0);
    }
    int c = 0;
    CHECK_EQ_INT(staple_table_foreach(w, count_cb, &c), 50);
    CHECK_EQ_INT(c, 50);
    key_of(key, 1000 + 67);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 77, 0, 10), 0);
    c = 0;
    CHECK_EQ_INT(staple_table_foreach(w, count_cb, &c), 42);
    CHECK(c >= 1 && c <= 51);
    staple_table_close(w);
    staple_table_unlink(n);
}

/* A writer that died between allocating and publishing (or between
 * publishing and freeing the old record) leaks arena space; the next writer
 * reclaims it. */
static void test_reclaim_after_crash(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table_params p = {.capacity = 16, .max_response = 1024, .arena_bytes = 16384};
    struct staple_table *w = staple_table_open_writer(n, &p, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    uint8_t key[32], der[1024], out[1024];
    fill(der, sizeof(der), 11);
    key_of(key, 1);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 1000, 0, 10), 0);
    /* Leak everything else, as a writer killed mid-publish would. */
    while (st_alloc(w, st_units_for(1000)) != 0)
        ;
    key_of(key, 2);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 1000, 0, 10), -ENOMEM);
    staple_table_close(w);

    w = staple_table_open_writer(n, NULL, err, sizeof(err));
    CHECK(w != NULL);
    if (w == NULL)
        return;
    struct staple_table_stats s;
    CHECK_EQ_INT(staple_table_stats(w, &s), 0);
    CHECK_EQ_INT(s.entries, 1);
    CHECK_EQ_INT(s.arena_used, st_units_for(1000) * 64);
    CHECK_EQ_INT(staple_table_publish(w, key, der, 1000, 0, 10), 0);
    key_of(key, 1);
    CHECK_EQ_INT(staple_table_lookup(w, key, 1, out, sizeof(out), NULL), 1000);
    CHECK_MEM(out, der, 1000);
    staple_table_close(w);
    staple_table_unlink(n);
}

/* A random sequence of publishes and removes against a simple model. */
static void test_model(void)
{
    const char *n = tname();
    char err[256];
    enum { N = 2000 };
    struct staple_table_params p = {.capacity = N, .max_response = 2048};
    struct staple_table *w = staple_table_open_writer(n, &p, err, sizeof(err));
    struct staple_table *r = staple_table_attach_reader(n, err, sizeof(err));
    CHECK(w != NULL && r != NULL);
    if (w == NULL || r == NULL)
        return;
    static uint32_t model_len[N], model_seed[N];
    uint64_t s = 12345;
    uint8_t key[32], der[2048], out[2048], exp[2048];
    int bad = 0;
    for (int step = 0; step < 40000; step++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t k = (uint32_t)(s % N);
        key_of(key, k);
        if ((s >> 40) % 5 == 0) {
            int rc = staple_table_remove(w, key);
            bad += rc != (model_len[k] ? 0 : -ENOENT);
            model_len[k] = 0;
        } else {
            uint32_t len = 1 + (uint32_t)((s >> 20) % 2048);
            fill(der, len, (uint32_t)step);
            bad += staple_table_publish(w, key, der, len, 0, 100) != 0;
            model_len[k] = len;
            model_seed[k] = (uint32_t)step;
        }
    }
    uint64_t total = 0;
    uint32_t live = 0;
    for (uint32_t k = 0; k < N; k++) {
        key_of(key, k);
        int rc = staple_table_lookup(r, key, 50, out, sizeof(out), NULL);
        if (model_len[k] == 0) {
            bad += rc != -ENOENT;
            continue;
        }
        fill(exp, model_len[k], model_seed[k]);
        bad += rc != (int)model_len[k] || memcmp(out, exp, model_len[k]) != 0;
        total += model_len[k];
        live++;
    }
    CHECK_EQ_INT(bad, 0);
    struct staple_table_stats st;
    CHECK_EQ_INT(staple_table_stats(r, &st), 0);
    CHECK_EQ_INT(st.entries, live);
    CHECK_EQ_INT(st.response_bytes, total);
    staple_table_close(r);
    staple_table_close(w);
    staple_table_unlink(n);
}

/* A reader copying a record that the writer frees and reuses for another
 * key in the middle of the copy must not return the mix: it retries and
 * returns the key's new response. */
static struct staple_table *race_w;
static uint8_t race_key_a[32], race_key_b[32];
static int race_hook_ran;

static void race_hook(void)
{
    uint8_t der[600];
    fill(der, sizeof(der), 21);
    /* Replace A (its old block is freed), then publish B of the same size:
     * B takes A's old block, under the reader's feet. */
    CHECK_EQ_INT(staple_table_publish(race_w, race_key_a, der, sizeof(der), 0, 10), 0);
    fill(der, sizeof(der), 22);
    CHECK_EQ_INT(staple_table_publish(race_w, race_key_b, der, sizeof(der), 0, 10), 0);
    race_hook_ran++;
}

static void test_reuse_during_copy(void)
{
    const char *n = tname();
    char err[256];
    struct staple_table_params p = {.capacity = 8, .max_response = 1024};
    race_w = staple_table_open_writer(n, &p, err, sizeof(err));
    struct staple_table *r = staple_table_attach_reader(n, err, sizeof(err));
    CHECK(race_w != NULL && r != NULL);
    if (race_w == NULL || r == NULL)
        return;
    key_of(race_key_a, 31);
    key_of(race_key_b, 32);
    uint8_t der[600], out[1024], expect[600];
    fill(der, sizeof(der), 20);
    CHECK_EQ_INT(staple_table_publish(race_w, race_key_a, der, sizeof(der), 0, 10), 0);
    uint64_t old_off = st_word_off(race_w->slots[st_key_hash(race_key_a) & race_w->mask]);
    after_copy_hook = race_hook;
    struct staple_table_entry e;
    CHECK_EQ_INT(staple_table_lookup(r, race_key_a, 1, out, sizeof(out), &e), 600);
    CHECK_EQ_INT(race_hook_ran, 1);
    fill(expect, sizeof(expect), 21);
    CHECK_MEM(out, expect, 600);
    /* The premise: B really took A's old block. */
    uint32_t i = (uint32_t)st_key_hash(race_key_b) & race_w->mask;
    while (st_word_live(race_w->slots[i]) &&
           memcmp(st_rec(race_w, st_word_off(race_w->slots[i]))->key, race_key_b, 32) != 0)
        i = (i + 1) & race_w->mask;
    CHECK_EQ_INT(st_word_off(race_w->slots[i]), old_off);
    staple_table_close(r);
    staple_table_close(race_w);
    staple_table_unlink(n);
}

int main(void)
{
    test_reuse_during_copy();
    test_publish_lookup_replace_remove();
    test_sizes();
    test_full_table_and_arena();
    test_single_writer();
    test_attach_errors();
    test_collisions();
    test_foreach();
    test_reclaim_after_crash();
    test_model();
    return check_exit();
}
