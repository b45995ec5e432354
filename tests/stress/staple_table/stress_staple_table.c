/* Multi-process tests of the staple table's contract.
 *
 *   stress_staple_table stress [SECONDS]
 *       One writer replaces responses for 10,000 keys while two reader
 *       processes look up continuously. Every response a reader gets must be
 *       byte for byte one the writer published for that key.
 *   stress_staple_table crash [ROUNDS]
 *       A writer process publishing in a loop is SIGKILLed at a random moment,
 *       ROUNDS times (>= 200); each time a new writer attaches and goes on.
 *       Two readers check every read meanwhile; after each kill the table
 *       must hold, for every key, the last completed publish (or the one in
 *       flight at the kill), and the arena must not leak across kills.
 *
 * A response is fully determined by (key index, version): a header naming
 * both, bytes generated from them, and a checksum, so a reader can tell a
 * torn read (checksum or bytes wrong), a foreign read (another key's
 * response) and a response that was never published (version too new).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "staple_table.h"

#define N_KEYS_STRESS 10000u
#define N_KEYS_CRASH 1000u
#define MAX_LEN 3000u
#define MIN_LEN 64u

struct payload_hdr {
    uint32_t key;
    uint32_t len;
    uint64_t version;
    uint64_t checksum; /* FNV-1a over the bytes after this header */
};

/* Shared between the processes of one test (anonymous shared mapping). */
struct shared {
    volatile int stop;
    uint32_t hot; /* the key the writer is publishing now */
    /* Per key: the version a writer started publishing and the last one it
     * completed. Written by the writer only. */
    uint64_t started[N_KEYS_STRESS];
    uint64_t done[N_KEYS_STRESS];
    /* Per reader. */
    struct reader_counts {
        uint64_t lookups, hits, misses, eagain, torn, foreign, unpublished, regress;
    } rc[2];
};

static void key_of(uint8_t key[STAPLE_TABLE_KEY_LEN], uint32_t k)
{
    uint64_t x = k * 0x9e3779b97f4a7c15ull + 7;
    for (int b = 0; b < STAPLE_TABLE_KEY_LEN; b++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        key[b] = (uint8_t)(x >> 56);
    }
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

/* Most responses of one CA have nearly the same size; so do most here
 * (one 64-byte size class), which makes the writer reuse a just-freed
 * record at once: the race the readers must survive. The rest spread over
 * every size, to exercise splitting. */
static uint32_t len_of(uint32_t k, uint64_t v)
{
    uint64_t r = mix(k * 1000003ull + v);
    if (r % 4 != 0)
        return 1500 + (uint32_t)(r >> 8) % 20;
    return MIN_LEN + (uint32_t)((r >> 8) % (MAX_LEN - MIN_LEN));
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint32_t make_payload(uint8_t *buf, uint32_t k, uint64_t v)
{
    uint32_t len = len_of(k, v);
    struct payload_hdr h = {.key = k, .len = len, .version = v};
    uint64_t s = mix(k ^ (v << 20));
    for (uint32_t i = sizeof(h); i < len; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(s >> 56);
    }
    h.checksum = fnv(buf + sizeof(h), len - sizeof(h));
    memcpy(buf, &h, sizeof(h));
    return len;
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Checks one successful lookup; updates the counters. */
static void check_read(struct shared *sh, struct reader_counts *c, uint32_t k,
                       const uint8_t *buf, int len, uint64_t *last_seen)
{
    static uint8_t expect[MAX_LEN];
    struct payload_hdr h;
    if (len < (int)sizeof(h)) {
        c->torn++;
        return;
    }
    memcpy(&h, buf, sizeof(h));
    if (h.key != k) {
        c->foreign++;
        return;
    }
    if (h.len != (uint32_t)len || h.checksum != fnv(buf + sizeof(h), (size_t)len - sizeof(h))) {
        c->torn++;
        return;
    }
    uint32_t elen = make_payload(expect, k, h.version);
    if (elen != (uint32_t)len || memcmp(expect, buf, elen) != 0) {
        c->torn++;
        return;
    }
    /* The writer records "started" before it publishes: a version above it
     * was never published. */
    if (h.version > __atomic_load_n(&sh->started[k], __ATOMIC_ACQUIRE))
        c->unpublished++;
    if (h.version < last_seen[k])
        c->regress++;
    last_seen[k] = h.version;
}

static int reader_main(const char *name, struct shared *sh, int id, uint32_t n_keys)
{
    char err[256];
    struct staple_table *t = staple_table_attach_reader(name, err, sizeof(err));
    if (t == NULL) {
        fprintf(stderr, "reader %d: %s\n", id, err);
        return 1;
    }
    static uint8_t buf[MAX_LEN];
    uint64_t *last_seen = calloc(n_keys, sizeof(uint64_t));
    if (last_seen == NULL)
        return 1;
    struct reader_counts *c = &sh->rc[id];
    uint64_t s = 0x1234567ull + (uint64_t)id;
    int64_t now = now_s();
    while (!sh->stop) {
        for (int i = 0; i < 256; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            /* Half the lookups go to the key the writer just replaced:
             * its old record is the one being reused right now. */
            uint32_t k = (s & 1) ? (uint32_t)(s % n_keys)
                                 : __atomic_load_n(&sh->hot, __ATOMIC_RELAXED);
            uint8_t key[STAPLE_TABLE_KEY_LEN];
            key_of(key, k);
            int rc = staple_table_lookup(t, key, now, buf, sizeof(buf), NULL);
            c->lookups++;
            if (rc > 0) {
                c->hits++;
                check_read(sh, c, k, buf, rc, last_seen);
            } else if (rc == -ENOENT) {
                c->misses++;
            } else if (rc == -EAGAIN) {
                c->eagain++;
            } else {
                c->torn++; /* -ESTALE or -ENOBUFS cannot happen here */
            }
        }
    }
    free(last_seen);
    staple_table_close(t);
    return 0;
}

/* Publishes random keys until stopped (or killed). Returns publishes done. */
static uint64_t writer_loop(struct staple_table *t, struct shared *sh, uint32_t n_keys,
                            uint64_t seed, double until)
{
    static uint8_t buf[MAX_LEN];
    uint64_t s = seed, n = 0;
    int64_t next_update = now_s() + 3600;
    while (!sh->stop && (until == 0 || (n & 63) != 0 || mono() < until)) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        uint32_t k = (uint32_t)(s % n_keys);
        uint8_t key[STAPLE_TABLE_KEY_LEN];
        key_of(key, k);
        uint64_t v = sh->started[k] + 1;
        uint32_t len = make_payload(buf, k, v);
        __atomic_store_n(&sh->started[k], v, __ATOMIC_RELEASE);
        __atomic_store_n(&sh->hot, k, __ATOMIC_RELAXED);
        int rc = staple_table_publish(t, key, buf, len, now_s(), next_update);
        if (rc != 0) {
            fprintf(stderr, "writer: publish failed: %s\n", strerror(-rc));
            exit(3);
        }
        __atomic_store_n(&sh->done[k], v, __ATOMIC_RELEASE);
        n++;
    }
    return n;
}

static int report(struct shared *sh, int n_readers)
{
    int bad = 0;
    for (int i = 0; i < n_readers; i++) {
        struct reader_counts *c = &sh->rc[i];
        printf("reader %d: %llu lookups, %llu hits, %llu misses, %llu eagain, "
               "%llu torn, %llu foreign, %llu never-published, %llu went-back\n",
               i, (unsigned long long)c->lookups, (unsigned long long)c->hits,
               (unsigned long long)c->misses, (unsigned long long)c->eagain,
               (unsigned long long)c->torn, (unsigned long long)c->foreign,
               (unsigned long long)c->unpublished, (unsigned long long)c->regress);
        if (c->torn || c->foreign || c->unpublished || c->regress) {
            fprintf(stderr, "FAIL: reader %d saw a bad response\n", i);
            bad = 1;
        }
        if (c->hits == 0) {
            fprintf(stderr, "FAIL: reader %d never got a response\n", i);
            bad = 1;
        }
    }
    return bad;
}

static pid_t spawn_reader(const char *name, struct shared *sh, int id, uint32_t n_keys)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(reader_main(name, sh, id, n_keys));
    return pid;
}

static int wait_ok(pid_t pid)
{
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int run_stress(const char *name, struct shared *sh, double seconds)
{
    char err[256];
    struct staple_table_params p = {.capacity = N_KEYS_STRESS, .max_response = MAX_LEN};
    struct staple_table *w = staple_table_open_writer(name, &p, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "writer: %s\n", err);
        return 1;
    }
    /* Every key once, so that readers mostly hit. */
    static uint8_t buf[MAX_LEN];
    for (uint32_t k = 0; k < N_KEYS_STRESS; k++) {
        uint8_t key[STAPLE_TABLE_KEY_LEN];
        key_of(key, k);
        sh->started[k] = 1;
        uint32_t len = make_payload(buf, k, 1);
        if (staple_table_publish(w, key, buf, len, now_s(), now_s() + 3600) != 0)
            return 1;
        sh->done[k] = 1;
    }
    pid_t r0 = spawn_reader(name, sh, 0, N_KEYS_STRESS);
    pid_t r1 = spawn_reader(name, sh, 1, N_KEYS_STRESS);
    double t0 = mono();
    uint64_t n = writer_loop(w, sh, N_KEYS_STRESS, 99, t0 + seconds);
    double dt = mono() - t0;
    sh->stop = 1;
    int ok = wait_ok(r0) & wait_ok(r1);
    struct staple_table_stats st;
    staple_table_stats(w, &st);
    printf("writer: %llu publishes in %.1f s (%.0f/s) over %u keys; table: %u entries, "
           "%llu response bytes, %llu arena bytes, %llu shm bytes resident\n",
           (unsigned long long)n, dt, n / dt, N_KEYS_STRESS, st.entries,
           (unsigned long long)st.response_bytes, (unsigned long long)st.arena_used,
           (unsigned long long)st.shm_resident);
    staple_table_close(w);
    int bad = report(sh, 2) || !ok || st.entries != N_KEYS_STRESS;
    printf("%s\n", bad ? "stress: FAIL" : "stress: zero torn, zero foreign reads");
    return bad;
}

static int arena_units_cb(const struct staple_table_entry *e, void *arg)
{
    uint64_t *sum = arg;
    *sum += (64 + e->len + 63) / 64 * 64;
    return 0;
}

/* After a kill: for every key the table holds the last completed publish,
 * or the one the writer had started (it may have become visible just
 * before the kill). */
static int check_after_kill(struct staple_table *r, struct shared *sh, uint64_t *mismatch)
{
    static uint8_t buf[MAX_LEN];
    for (uint32_t k = 0; k < N_KEYS_CRASH; k++) {
        uint8_t key[STAPLE_TABLE_KEY_LEN];
        key_of(key, k);
        int rc = staple_table_lookup(r, key, now_s(), buf, sizeof(buf), NULL);
        uint64_t done = sh->done[k], started = sh->started[k];
        if (rc <= 0) {
            if (done != 0 || rc != -ENOENT)
                (*mismatch)++;
            continue;
        }
        struct payload_hdr h;
        memcpy(&h, buf, sizeof(h));
        uint32_t elen = len_of(k, h.version);
        if (h.key != k || elen != (uint32_t)rc || h.version < done || h.version > started ||
            h.checksum != fnv(buf + sizeof(h), (size_t)rc - sizeof(h)))
            (*mismatch)++;
    }
    return 0;
}

static int run_crash(const char *name, struct shared *sh, int rounds)
{
    char err[256];
    /* A small arena: leaked records would fill it within the rounds. */
    struct staple_table_params p = {.capacity = N_KEYS_CRASH, .max_response = MAX_LEN,
                                    .arena_bytes = (uint64_t)N_KEYS_CRASH * MAX_LEN / 2 * 3};
    struct staple_table *w = staple_table_open_writer(name, &p, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "writer: %s\n", err);
        return 1;
    }
    staple_table_close(w);
    struct staple_table *r = staple_table_attach_reader(name, err, sizeof(err));
    if (r == NULL) {
        fprintf(stderr, "reader: %s\n", err);
        return 1;
    }
    pid_t r0 = spawn_reader(name, sh, 0, N_KEYS_CRASH);
    pid_t r1 = spawn_reader(name, sh, 1, N_KEYS_CRASH);
    uint64_t mismatch = 0, killed_alive = 0;
    srand(4242);
    for (int round = 0; round < rounds; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            struct staple_table *cw = staple_table_open_writer(name, NULL, err, sizeof(err));
            if (cw == NULL) {
                fprintf(stderr, "round writer: %s\n", err);
                _exit(2);
            }
            writer_loop(cw, sh, N_KEYS_CRASH, 1000u + (uint64_t)round, 0);
            _exit(0);
        }
        /* Between 0.2 and 5 ms: early rounds die in open_writer's rebuild,
         * most in the middle of a publish. */
        usleep(200 + (useconds_t)(rand() % 4800));
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
            killed_alive++;
        else
            fprintf(stderr, "round %d: writer exited %d before the kill\n", round,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        check_after_kill(r, sh, &mismatch);
    }
    sh->stop = 1;
    int ok = wait_ok(r0) & wait_ok(r1);

    /* The last writer's leak is reclaimed too: arena use equals the live
     * records, nothing more. */
    w = staple_table_open_writer(name, NULL, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "final writer: %s\n", err);
        return 1;
    }
    struct staple_table_stats st;
    staple_table_stats(w, &st);
    uint64_t live_units = 0;
    staple_table_foreach(w, arena_units_cb, &live_units);
    uint64_t publishes = 0;
    for (uint32_t k = 0; k < N_KEYS_CRASH; k++)
        publishes += sh->done[k];
    printf("crash: %d rounds, %llu writers killed by SIGKILL, %llu completed publishes; "
           "%llu keys not at their last completed publish; arena %llu bytes for %llu bytes "
           "of live records\n",
           rounds, (unsigned long long)killed_alive, (unsigned long long)publishes,
           (unsigned long long)mismatch, (unsigned long long)st.arena_used,
           (unsigned long long)live_units);
    staple_table_close(w);
    staple_table_close(r);
    int bad = report(sh, 2) || !ok || mismatch != 0 || killed_alive < 200 ||
              st.arena_used != live_units;
    printf("%s\n", bad ? "crash: FAIL" : "crash: every kill left the last publish readable");
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "stress") != 0 && strcmp(argv[1], "crash") != 0)) {
        fprintf(stderr, "usage: %s stress [SECONDS] | crash [ROUNDS]\n", argv[0]);
        return 2;
    }
    struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 2;
    char name[64];
    snprintf(name, sizeof(name), "/tern-stress-%s-%d", argv[1], (int)getpid());
    staple_table_unlink(name);
    int rc;
    if (strcmp(argv[1], "stress") == 0)
        rc = run_stress(name, sh, argc > 2 ? atof(argv[2]) : 5.0);
    else
        rc = run_crash(name, sh, argc > 2 ? atoi(argv[2]) : 250);
    staple_table_unlink(name);
    return rc;
}
