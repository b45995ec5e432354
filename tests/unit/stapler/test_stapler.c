/* The stapler as a whole against real `openssl ocsp` responders and fake
 * misbehaving ones started by run-stapler-unit.sh: inventory, disk cache,
 * fetch/validate/publish, set_certs diffing, restart from the cache with
 * the responder down, every misbehaviour leaving the good response alone,
 * GET vs POST, all AIA URLs in turn, the per-responder cap, and expiry and
 * the must-staple warning under a test clock. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ocsp_validate.h"
#include "staple_table.h"
#include "stapler.h"
#include "stapler_cache.h"
#include "stapler_inventory.h"
#include "testpki.h"

/* ---- fixtures ------------------------------------------------------------ */

static char logbuf[1 << 20];
static size_t loglen;

static void on_log(void *arg, enum stapler_log_level lvl, const char *cert, const char *msg)
{
    (void)arg;
    int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "<%d> %s: %s\n", (int)lvl,
                     cert ? cert : "-", msg);
    if (n > 0 && loglen + (size_t)n < sizeof(logbuf))
        loglen += (size_t)n;
    if (getenv("TERN_VERBOSE"))
        fprintf(stderr, "<%d> %s: %s\n", (int)lvl, cert ? cert : "-", msg);
}

static bool logged(const char *needle)
{
    return strstr(logbuf, needle) != NULL;
}

static int64_t fake_now; /* 0: real time */

static int64_t test_clock(void *arg)
{
    (void)arg;
    return fake_now ? fake_now : (int64_t)time(NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct staple_table *table;
static char shm_name[128];

static void table_open(void)
{
    static int n;
    snprintf(shm_name, sizeof(shm_name), "%s-%d", env_or_die("TERN_SHM_NAME"), n++);
    staple_table_unlink(shm_name);
    struct staple_table_params tp = {.capacity = 256, .max_response = 65536};
    char err[256];
    table = staple_table_open_writer(shm_name, &tp, err, sizeof(err));
    if (table == NULL) {
        fprintf(stderr, "staple table: %s\n", err);
        exit(2);
    }
}

static void table_close(void)
{
    staple_table_close(table);
    staple_table_unlink(shm_name);
    table = NULL;
}

static struct stapler_params params(const char *cache)
{
    /* tpath() results rotate; the cache path must outlive the call. */
    static char pool[32][1024];
    static unsigned used;
    struct stapler_params p;
    stapler_params_default(&p);
    if (cache != NULL) {
        if (used == 32)
            abort();
        snprintf(pool[used], sizeof(pool[used]), "%s", cache);
        cache = pool[used++];
    }
    p.cache_dir = cache;
    p.backoff_min_ms = 200;
    p.backoff_max_ms = 1000;
    p.connect_timeout_ms = 1000;
    p.total_timeout_ms = 1500;
    p.must_staple_warn_s = 3600;
    p.log = on_log;
    p.clock = test_clock;
    p.seed = 42;
    return p;
}

static struct stapler *make(const struct stapler_params *p)
{
    char err[256];
    struct stapler *s = stapler_create(p, table, err, sizeof(err));
    if (s == NULL) {
        fprintf(stderr, "stapler_create: %s\n", err);
        exit(2);
    }
    return s;
}

/* The start of most cases: a fresh table and a stapler on it made with
 * *P = params(CACHE) (kept: a case may make another stapler from it). */
static struct stapler *stapler_up(const char *cache, struct stapler_params *p)
{
    table_open();
    *p = params(cache);
    return make(p);
}

static struct stapler_cert_status st(struct stapler *s, const char *name)
{
    struct stapler_cert_status x;
    memset(&x, 0, sizeof(x));
    x.state = STAPLER_STATE__COUNT;
    CHECK_EQ_INT(stapler_cert_status(s, name, &x), 0);
    return x;
}

/* Polls until PRED holds or MAX_MS of real time pass. */
static bool poll_until(struct stapler *s, bool (*pred)(struct stapler *, void *), void *arg,
                       int max_ms)
{
    int64_t end = mono_ms() + max_ms;
    while (!pred(s, arg)) {
        if (mono_ms() > end)
            return false;
        int rc = stapler_poll(s, 50, NULL, 0);
        CHECK(rc >= 0);
    }
    return true;
}

static bool none_pending(struct stapler *s, void *arg)
{
    (void)arg;
    struct stapler_metrics m;
    stapler_metrics(s, &m);
    return m.by_state[STAPLER_STATE_PENDING] == 0 && m.inflight == 0 && m.queued == 0;
}

static bool failed_n(struct stapler *s, void *arg)
{
    const char *name = arg;
    struct stapler_cert_status x;
    return stapler_cert_status(s, name, &x) == 0 && x.consecutive_failures >= 1 &&
           !x.fetch_in_flight;
}

static bool fetched(struct stapler *s, void *arg)
{
    const char *name = arg;
    struct stapler_cert_status x;
    return stapler_cert_status(s, name, &x) == 0 && x.last_fetch > 0 && !x.fetch_in_flight;
}

static void just_poll(struct stapler *s, int ms)
{
    int64_t end = mono_ms() + ms;
    while (mono_ms() < end)
        stapler_poll(s, 50, NULL, 0);
}

/* The key of certificate file PEM (its inventory's: SHA-256 of the leaf)
 * into KEY. */
static void cert_key(const char *pem, uint8_t key[STAPLE_TABLE_KEY_LEN])
{
    struct stapler_cert_spec sp = {.name = "x", .chain_path = pem};
    struct stapler_inventory inv;
    char err[STAPLER_ERR_LEN];
    stapler_inventory_load(&sp, &inv, err, sizeof(err));
    memcpy(key, inv.key, STAPLE_TABLE_KEY_LEN);
    stapler_inventory_clear(&inv);
}

/* The path of the cache file in directory CACHE for certificate file PEM
 * into PATH[CAP]. */
static void cache_path_of(const char *cache, const char *pem, char *path, size_t cap)
{
    uint8_t key[STAPLE_TABLE_KEY_LEN];
    cert_key(pem, key);
    stapler_cache_path(cache, key, path, cap);
}

/* The table's response for the key of certificate file PEM; len or -errno. */
static int table_get(const char *pem, uint8_t *buf, uint32_t cap)
{
    uint8_t key[STAPLE_TABLE_KEY_LEN];
    cert_key(pem, key);
    return staple_table_lookup(table, key, test_clock(NULL), buf, cap, NULL);
}

static char url_real[128], url_dead[128];

static const char *fake_url(const char *which)
{
    static char bufs[8][128];
    static int i;
    char *b = bufs[i++ & 7], var[64];
    snprintf(var, sizeof(var), "TERN_PORT_%s", which);
    snprintf(b, 128, "http://127.0.0.1:%s", env_or_die(var));
    return b;
}

/* Counts lines of a fake responder's log with METHOD ("GET"/"POST"/""). */
static int fake_requests(const char *which, const char *method)
{
    char rel[64];
    snprintf(rel, sizeof(rel), "%s.log", which);
    FILE *f = fopen(tpath(rel), "r");
    if (f == NULL)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (method[0] == '\0' || strstr(line, method) != NULL)
            n++;
    fclose(f);
    return n;
}

/* ---- inventory and cache files ------------------------------------------ */

static void test_inventory(void)
{
    struct stapler_inventory inv;
    char err[STAPLER_ERR_LEN], hex[65];
    struct stapler_cert_spec sp = {.name = "ecdsa", .chain_path = tpath("pki/ecdsa.chain.pem")};
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), 0);
    stapler_key_hex(inv.key, hex);
    CHECK(strcmp(hex, env_or_die("TERN_KEY_ECDSA")) == 0); /* same as sha256sum of the DER */
    CHECK_EQ_INT(inv.n_urls, 1);
    CHECK(inv.n_urls == 1 && strcmp(inv.urls[0], url_real) == 0);
    CHECK(!inv.must_staple);
    CHECK(inv.not_after > time(NULL) + 86400 * 800); /* 825 days */
    CHECK(inv.issuer != NULL);
    stapler_inventory_clear(&inv);

    sp.chain_path = tpath("pki/muststaple.chain.pem");
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), 0);
    CHECK(inv.must_staple);
    stapler_inventory_clear(&inv);

    sp.chain_path = tpath("pki/noocsp.chain.pem");
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), 0);
    CHECK_EQ_INT(inv.n_urls, 0);
    stapler_inventory_clear(&inv);

    sp.chain_path = tpath("pki/ecdsa.pem"); /* leaf only, no issuer anywhere */
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), -ENOKEY);
    CHECK(inv.have_key && strstr(err, "no issuer") != NULL);
    stapler_inventory_clear(&inv);

    sp.issuer_path = tpath("pki/inter.pem"); /* issuer configured apart */
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), 0);
    stapler_inventory_clear(&inv);

    sp.issuer_path = tpath("pki/rogue.pem"); /* not the issuer */
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), -ENOKEY);
    stapler_inventory_clear(&inv);

    sp.issuer_path = NULL;
    sp.chain_path = tpath("pki/does-not-exist.pem");
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), -ENOENT);
    CHECK(!inv.have_key);
    stapler_inventory_clear(&inv);

    sp.chain_path = tpath("pki/index.txt"); /* not PEM */
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), -EBADMSG);
    stapler_inventory_clear(&inv);

    sp.chain_path = tpath("pki/ecdsa.chain.pem");
    sp.ocsp_url = "http://override.test/ocsp";
    CHECK_EQ_INT(stapler_inventory_load(&sp, &inv, err, sizeof(err)), 0);
    CHECK(inv.n_urls == 1 && strcmp(inv.urls[0], "http://override.test/ocsp") == 0);
    stapler_inventory_clear(&inv);
}

/* The issuer memo shares one parsed issuer between leaves, from chain
 * files and from issuer files, and skips a key bundled in a chain file. */
static void test_issuer_memo(void)
{
    struct stapler_issuer_memo memo = {0};
    struct stapler_inventory a, b, c, d;
    char err[STAPLER_ERR_LEN];
    struct stapler_cert_spec sa = {.name = "a", .chain_path = tpath("pki/ecdsa.chain.pem")};
    struct stapler_cert_spec sb = {.name = "b", .chain_path = tpath("pki/revoked.chain.pem")};
    struct stapler_cert_spec sc = {.name = "c", .chain_path = tpath("pki/leaves/0.pem"),
                                   .issuer_path = tpath("pki/inter.pem")};
    /* leaf, its key, then the issuer: the key block is skipped */
    const char *bundle = tpath("bundle.pem");
    FILE *out = fopen(bundle, "w");
    size_t n1, n2, n3;
    uint8_t *l = load_file(tpath("pki/unknown.pem"), &n1);
    uint8_t *k = load_file(tpath("pki/unknown.key"), &n2);
    uint8_t *i = load_file(tpath("pki/inter.pem"), &n3);
    fwrite(l, 1, n1, out);
    fwrite(k, 1, n2, out);
    fwrite(i, 1, n3, out);
    fclose(out);
    free(l);
    free(k);
    free(i);
    struct stapler_cert_spec sd = {.name = "d", .chain_path = bundle};
    CHECK_EQ_INT(stapler_inventory_load_memo(&sa, &a, &memo, err, sizeof(err)), 0);
    CHECK_EQ_INT(stapler_inventory_load_memo(&sb, &b, &memo, err, sizeof(err)), 0);
    CHECK_EQ_INT(stapler_inventory_load_memo(&sc, &c, &memo, err, sizeof(err)), 0);
    CHECK_EQ_INT(stapler_inventory_load_memo(&sd, &d, &memo, err, sizeof(err)), 0);
    CHECK(a.issuer != NULL && a.issuer == b.issuer && b.issuer == c.issuer &&
          c.issuer == d.issuer);
    CHECK(a.leaf != b.leaf);
    CHECK_EQ_INT(memo.next, 1); /* parsed once */
    stapler_issuer_memo_clear(&memo);
    /* The inventories keep their own references. */
    CHECK(X509_check_issued(a.issuer, a.leaf) == X509_V_OK);
    stapler_inventory_clear(&a);
    stapler_inventory_clear(&b);
    stapler_inventory_clear(&c);
    stapler_inventory_clear(&d);
}

/* The files in directory DIR (dot files left out); *TMPS: how many of
 * them are temporaries. */
static int count_files(const char *dir, int *tmps)
{
    DIR *d = opendir(dir);
    int files = 0;
    struct dirent *e;
    *tmps = 0;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        *tmps += strstr(e->d_name, ".tmp") != NULL;
    }
    if (d)
        closedir(d);
    return files;
}

static void test_cache_files(void)
{
    const char *dir = tpath("cache-files");
    mkdir(dir, 0755);
    uint8_t key[32], other[32];
    memset(key, 0xab, sizeof(key));
    memset(other, 0xcd, sizeof(other));
    const uint8_t a[] = "first version", b[] = "second, longer version";
    CHECK_EQ_INT(stapler_cache_write(dir, key, a, sizeof(a)), 0);
    CHECK_EQ_INT(stapler_cache_write(dir, key, b, sizeof(b)), 0);
    uint8_t *der;
    size_t len;
    CHECK_EQ_INT(stapler_cache_read(dir, key, 4096, &der, &len), 0);
    CHECK(len == sizeof(b) && memcmp(der, b, len) == 0);
    free(der);
    CHECK_EQ_INT(stapler_cache_read(dir, other, 4096, &der, &len), -ENOENT);
    CHECK_EQ_INT(stapler_cache_read(dir, key, 8, &der, &len), -EFBIG);
    char path[1024];
    CHECK_EQ_INT(stapler_cache_path(dir, key, path, sizeof(path)), 0);
    CHECK(strstr(path, "abababab") != NULL && strstr(path, ".der") != NULL);
    /* Exactly one file, no temporary left behind. */
    int tmps;
    CHECK_EQ_INT(count_files(dir, &tmps), 1);
    CHECK_EQ_INT(tmps, 0);
    CHECK(stapler_cache_write(tpath("no-such-dir"), key, a, sizeof(a)) == -ENOENT);

    /* Batch: three files, one of them replacing the single write above. */
    uint8_t k3[32];
    memset(k3, 0x11, sizeof(k3));
    struct stapler_cache_item items[] = {
        {.key = key, .der = a, .len = sizeof(a)},
        {.key = other, .der = b, .len = sizeof(b)},
        {.key = k3, .der = b, .len = 5},
    };
    CHECK_EQ_INT(stapler_cache_write_batch(dir, items, 3), 0);
    CHECK(items[0].rc == 0 && items[1].rc == 0 && items[2].rc == 0);
    CHECK_EQ_INT(stapler_cache_read(dir, key, 4096, &der, &len), 0);
    CHECK(len == sizeof(a) && memcmp(der, a, len) == 0);
    free(der);
    CHECK_EQ_INT(stapler_cache_read(dir, k3, 4096, &der, &len), 0);
    CHECK(len == 5 && memcmp(der, b, 5) == 0);
    free(der);
    CHECK_EQ_INT(count_files(dir, &tmps), 3);
    CHECK_EQ_INT(tmps, 0);
    /* A directory that does not exist fails every item, and says so. */
    CHECK_EQ_INT(stapler_cache_write_batch(tpath("no-such-dir"), items, 3), 3);
    CHECK_EQ_INT(items[1].rc, -ENOENT);
}

/* ---- end to end against the real responder ------------------------------ */

static void test_end_to_end(void)
{
    struct stapler_params p;
    struct stapler *s = stapler_up(tpath("cache"), &p);
    const struct stapler_cert_spec specs[] = {
        {.name = "ecdsa", .chain_path = tpath("pki/ecdsa.chain.pem")},
        {.name = "revoked", .chain_path = tpath("pki/revoked.chain.pem")},
        {.name = "unknown", .chain_path = tpath("pki/unknown.chain.pem")},
        {.name = "muststaple", .chain_path = tpath("pki/muststaple.chain.pem")},
        {.name = "noocsp", .chain_path = tpath("pki/noocsp.chain.pem")},
        {.name = "missing", .chain_path = tpath("pki/missing.pem")},
        {.name = "noissuer", .chain_path = tpath("pki/rsa.pem")},
        {.name = "ecdsa", .chain_path = tpath("pki/rsa.chain.pem")},       /* name twice */
        {.name = "ecdsa-again", .chain_path = tpath("pki/ecdsa.chain.pem")}, /* cert twice */
    };
    int errs[9];
    CHECK_EQ_INT(stapler_set_certs(s, specs, 9, errs), 4);
    CHECK_EQ_INT(errs[0], 0);
    CHECK_EQ_INT(errs[4], 0); /* no OCSP URL is not an error */
    CHECK_EQ_INT(errs[5], -ENOENT);
    CHECK_EQ_INT(errs[6], -ENOKEY);
    CHECK_EQ_INT(errs[7], -EEXIST);
    CHECK_EQ_INT(errs[8], -EEXIST);
    CHECK_EQ_INT(stapler_load_cache(s), 0); /* empty cache */
    CHECK(poll_until(s, none_pending, NULL, 10000));

    CHECK_EQ_INT(st(s, "ecdsa").state, STAPLER_STATE_GOOD);
    CHECK_EQ_INT(st(s, "ecdsa").cert_status, STAPLER_OCSP_GOOD);
    CHECK_EQ_INT(st(s, "revoked").state, STAPLER_STATE_REVOKED);
    CHECK(st(s, "revoked").revocation_time > 0);
    CHECK_EQ_INT(st(s, "unknown").state, STAPLER_STATE_UNKNOWN);
    CHECK_EQ_INT(st(s, "muststaple").state, STAPLER_STATE_GOOD);
    CHECK(st(s, "muststaple").must_staple);
    CHECK(!st(s, "muststaple").must_staple_warning);
    CHECK(!st(s, "ecdsa").must_staple);
    CHECK_EQ_INT(st(s, "noocsp").state, STAPLER_STATE_NO_OCSP_URL);
    CHECK_EQ_INT(st(s, "noocsp").last_fetch, 0);
    CHECK_EQ_INT(st(s, "missing").state, STAPLER_STATE_INVALID);
    CHECK(strstr(st(s, "missing").last_error, "No such file") != NULL);
    CHECK_EQ_INT(st(s, "noissuer").state, STAPLER_STATE_INVALID);
    CHECK(logged("REVOKED"));
    CHECK(strcmp(st(s, "ecdsa").responder, url_real) == 0);

    /* Refresh planned around the midpoint of a one-day response (+/-5 %),
     * which is also under the 12 h default cap. */
    struct stapler_cert_status e = st(s, "ecdsa");
    int64_t mid = e.this_update + (e.next_update - e.this_update) / 2;
    CHECK(e.next_refresh > mid - 4400 && e.next_refresh < mid + 4400);
    CHECK(e.next_refresh <= time(NULL) + 43200); /* max_refresh_s caps it */
    CHECK_EQ_INT(e.consecutive_failures, 0);

    /* The table holds what the stapler holds, and it is the cached file. */
    uint8_t buf[65536], *cached;
    size_t clen;
    int n = table_get(tpath("pki/ecdsa.chain.pem"), buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(stapler_cache_read(tpath("cache"), e.key, 65536, &cached, &clen), 0);
    CHECK(n > 0 && (size_t)n == clen && memcmp(buf, cached, clen) == 0);
    free(cached);
    CHECK(table_get(tpath("pki/revoked.chain.pem"), buf, sizeof(buf)) > 0);
    CHECK_EQ_INT(table_get(tpath("pki/noocsp.chain.pem"), buf, sizeof(buf)), -ENOENT);

    struct stapler_metrics m;
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.certs, 7);
    CHECK_EQ_INT(m.fetches_ok, 4);
    CHECK_EQ_INT(m.fetches[STAPLER_REASON_OK], 4);
    CHECK_EQ_INT(m.fetches_failed, 0);
    CHECK_EQ_INT(m.publishes, 4);
    CHECK_EQ_INT(m.by_state[STAPLER_STATE_GOOD], 2);
    CHECK_EQ_INT(m.by_state[STAPLER_STATE_INVALID], 2);
    CHECK_EQ_INT(m.latency_count, 4);
    CHECK(m.latency_sum_us > 0 && m.latency_max_us > 0);
    CHECK(m.seconds_to_next_update > 80000 && m.seconds_to_next_update <= 86400);
    CHECK(m.max_inflight_per_responder_seen >= 1 && m.max_inflight_per_responder_seen <= 4);

    /* Reload: ecdsa renamed (same certificate), unknown and the broken
     * ones gone. ecdsa keeps its response without a fetch; unknown's
     * staple leaves the table. */
    const struct stapler_cert_spec specs2[] = {
        {.name = "renamed", .chain_path = tpath("pki/ecdsa.chain.pem")},
        {.name = "revoked", .chain_path = tpath("pki/revoked.chain.pem")},
        {.name = "muststaple", .chain_path = tpath("pki/muststaple.chain.pem"),
         .policy = STAPLER_POLICY_MUST_STAPLE},
    };
    CHECK_EQ_INT(stapler_set_certs(s, specs2, 3, NULL), 0);
    just_poll(s, 300);
    struct stapler_cert_status r = st(s, "renamed");
    CHECK_EQ_INT(r.state, STAPLER_STATE_GOOD);
    CHECK_EQ_INT(r.this_update, e.this_update);
    CHECK_EQ_INT(r.last_fetch, e.last_fetch);
    CHECK_EQ_INT(st(s, "muststaple").policy, STAPLER_POLICY_MUST_STAPLE);
    struct stapler_cert_status gone;
    CHECK_EQ_INT(stapler_cert_status(s, "unknown", &gone), -ENOENT);
    CHECK_EQ_INT(table_get(tpath("pki/unknown.chain.pem"), buf, sizeof(buf)), -ENOENT);
    CHECK(table_get(tpath("pki/ecdsa.chain.pem"), buf, sizeof(buf)) > 0);
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.fetches_ok, 4);
    CHECK_EQ_INT(m.certs, 3);

    /* Refresh on demand: one fetch, newer or same thisUpdate. */
    CHECK_EQ_INT(stapler_refresh(s, "nope"), -ENOENT);
    CHECK_EQ_INT(stapler_refresh(s, "renamed"), 1);
    /* Let the refresh start; the loop below checks that it completes. */
    (void)poll_until(s, none_pending, NULL, 100);
    int64_t t0 = mono_ms();
    while (mono_ms() - t0 < 5000) {
        stapler_poll(s, 50, NULL, 0);
        stapler_metrics(s, &m);
        if (m.fetches_ok == 5)
            break;
    }
    CHECK_EQ_INT(m.fetches_ok, 5);
    CHECK(st(s, "renamed").this_update >= e.this_update);
    CHECK_EQ_INT(stapler_refresh(s, NULL), 3);
    CHECK(poll_until(s, none_pending, NULL, 5000));
    stapler_destroy(s);

    /* A restart without a cache directory, with muststaple dropped from
     * the configuration: what the table holds is validated and adopted,
     * muststaple's staple is withdrawn, and no fetch is made. */
    CHECK(table_get(tpath("pki/muststaple.chain.pem"), buf, sizeof(buf)) > 0);
    struct stapler_params p2 = params(NULL);
    s = make(&p2);
    CHECK_EQ_INT(stapler_set_certs(s, specs2, 2, NULL), 0);
    CHECK_EQ_INT(stapler_load_cache(s), 2);
    CHECK_EQ_INT(st(s, "renamed").state, STAPLER_STATE_GOOD);
    CHECK_EQ_INT(st(s, "revoked").state, STAPLER_STATE_REVOKED);
    CHECK_EQ_INT(table_get(tpath("pki/muststaple.chain.pem"), buf, sizeof(buf)), -ENOENT);
    CHECK(table_get(tpath("pki/ecdsa.chain.pem"), buf, sizeof(buf)) > 0);
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.fetches_ok + m.fetches_failed, 0);
    CHECK_EQ_INT(m.cache_loaded, 2);
    CHECK(logged("no longer configured"));
    stapler_destroy(s);
    table_close();
}

/* Restart with the responder unreachable: the cache publishes at once,
 * without any poll; failures leave the published response alone. Then a
 * corrupt and a foreign cache file are refused. */
static void test_restart_from_cache(void)
{
    struct stapler_params p;
    struct stapler *s = stapler_up(tpath("cache"), &p);
    const struct stapler_cert_spec specs[] = {
        {.name = "ecdsa", .chain_path = tpath("pki/ecdsa.chain.pem"), .ocsp_url = url_dead},
        {.name = "revoked", .chain_path = tpath("pki/revoked.chain.pem"), .ocsp_url = url_dead},
        {.name = "muststaple", .chain_path = tpath("pki/muststaple.chain.pem"),
         .ocsp_url = url_dead},
    };
    CHECK_EQ_INT(stapler_set_certs(s, specs, 3, NULL), 0);
    CHECK_EQ_INT(stapler_load_cache(s), 3);
    CHECK_EQ_INT(st(s, "ecdsa").state, STAPLER_STATE_GOOD);
    {
        /* A 10-minute cap wins over the 12 h midpoint. */
        struct stapler_params pc = params(NULL);
        pc.max_refresh_s = 600;
        struct stapler *s2 = make(&pc);
        CHECK_EQ_INT(stapler_set_certs(s2, specs, 1, NULL), 0);
        CHECK_EQ_INT(stapler_load_cache(s2), 1); /* adopted from the table */
        int64_t nr = st(s2, "ecdsa").next_refresh;
        CHECK(nr <= time(NULL) + 600 && nr >= time(NULL) + 600 - 31);
        stapler_destroy(s2);
    }
    CHECK_EQ_INT(st(s, "revoked").state, STAPLER_STATE_REVOKED);
    uint8_t before[65536], after[65536];
    int nb = table_get(tpath("pki/ecdsa.chain.pem"), before, sizeof(before));
    CHECK(nb > 0);
    struct stapler_metrics m;
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.cache_loaded, 3);
    CHECK_EQ_INT(m.fetches_ok + m.fetches_failed, 0); /* no network */

    /* Force fetches against the dead port. */
    CHECK_EQ_INT(stapler_refresh(s, NULL), 3);
    CHECK(poll_until(s, failed_n, "ecdsa", 5000));
    struct stapler_cert_status e = st(s, "ecdsa");
    CHECK_EQ_INT(e.state, STAPLER_STATE_GOOD);
    CHECK_EQ_INT(e.last_reason, STAPLER_REASON_CONNECT);
    CHECK(e.consecutive_failures >= 1);
    CHECK(e.next_refresh > 0);
    int na = table_get(tpath("pki/ecdsa.chain.pem"), after, sizeof(after));
    CHECK(na == nb && memcmp(before, after, (size_t)na) == 0);
    CHECK(logged("keeping the held response"));
    stapler_destroy(s);

    /* Corrupt ecdsa's file; put revoked's response in muststaple's file. */
    char path[1024], path2[1024];
    cache_path_of(tpath("cache"), tpath("pki/ecdsa.chain.pem"), path, sizeof(path));
    write_file(path, "\x30\x03\x0a\x01\x00garbage", 12);
    cache_path_of(tpath("cache"), tpath("pki/muststaple.chain.pem"), path2, sizeof(path2));
    size_t rlen;
    uint8_t *rev = load_file(tpath("real-revoked.der"), &rlen);
    write_file(path2, rev, rlen);
    free(rev);

    table_close();
    table_open();
    loglen = 0;
    logbuf[0] = '\0';
    s = make(&p);
    CHECK_EQ_INT(stapler_set_certs(s, specs, 3, NULL), 0);
    CHECK_EQ_INT(stapler_load_cache(s), 1);
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.cache_rejected, 2);
    CHECK_EQ_INT(st(s, "ecdsa").state, STAPLER_STATE_PENDING);
    CHECK_EQ_INT(st(s, "muststaple").state, STAPLER_STATE_PENDING);
    CHECK(st(s, "muststaple").must_staple_warning);
    CHECK_EQ_INT(st(s, "revoked").state, STAPLER_STATE_REVOKED);
    CHECK(logged("certid_mismatch"));
    CHECK(logged("malformed"));
    CHECK_EQ_INT(table_get(tpath("pki/ecdsa.chain.pem"), after, sizeof(after)), -ENOENT);
    /* Without a response and the responder down: failing, with backoff. */
    CHECK(poll_until(s, failed_n, "ecdsa", 5000));
    CHECK_EQ_INT(st(s, "ecdsa").state, STAPLER_STATE_FAILING);
    stapler_destroy(s);
    table_close();
}

/* ---- misbehaving responders ---------------------------------------------- */

/* One certificate fetched from URL after HOLD (a DER file or NULL) was
 * published from a cache; returns its status after the first failure or
 * success, and checks the table still holds HOLD when the fetch failed. */
static struct stapler_cert_status one_fetch(const char *url, const char *hold,
                                            struct stapler_params *p)
{
    table_open();
    const char *cache = tpath("cache-one");
    mkdir(cache, 0755);
    struct stapler_cert_spec sp = {.name = "ecdsa", .chain_path = tpath("pki/ecdsa.chain.pem"),
                                   .ocsp_url = url};
    char path[1024];
    cache_path_of(cache, sp.chain_path, path, sizeof(path));
    unlink(path);
    size_t hlen = 0;
    uint8_t *hder = NULL;
    if (hold != NULL) {
        hder = load_file(tpath(hold), &hlen);
        write_file(path, hder, hlen);
    }
    struct stapler_params pp = params(cache);
    pp.max_response_bytes = p->max_response_bytes;
    struct stapler *s = make(&pp);
    stapler_set_certs(s, &sp, 1, NULL);
    CHECK_EQ_INT(stapler_load_cache(s), hold ? 1 : 0);
    if (hold)
        stapler_refresh(s, "ecdsa");
    CHECK(poll_until(s, fetched, "ecdsa", 8000));
    struct stapler_cert_status x = st(s, "ecdsa");
    if (hold != NULL && x.consecutive_failures > 0) {
        uint8_t buf[65536];
        int n = table_get(tpath("pki/ecdsa.chain.pem"), buf, sizeof(buf));
        CHECK(n > 0 && (size_t)n == hlen && memcmp(buf, hder, hlen) == 0);
        CHECK(x.state == STAPLER_STATE_GOOD);
    }
    free(hder);
    x.name = x.responder = x.last_error = NULL; /* freed with s */
    stapler_destroy(s);
    table_close();
    return x;
}

static void test_misbehaving(void)
{
    struct stapler_params p = params(NULL);
    struct stapler_cert_status x;

    x = one_fetch(fake_url("GARBAGE"), "real-ecdsa.der", &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_MALFORMED);
    x = one_fetch(fake_url("HTTP500"), "real-ecdsa.der", &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_HTTP_STATUS);
    x = one_fetch(fake_url("HANG"), "real-ecdsa.der", &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_TIMEOUT);
    x = one_fetch(fake_url("OLDER"), "crafted/good.der", &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_OLDER);
    x = one_fetch(url_dead, "real-ecdsa.der", &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_CONNECT);
    /* Crafted answers served over HTTP; each refused, the held one kept. */
    static const struct { const char *fake; enum stapler_reason r; } crafted[] = {
        {"TRYLATER", STAPLER_REASON_TRY_LATER},
        {"UNAUTHORIZED", STAPLER_REASON_UNAUTHORIZED},
        {"OTHER", STAPLER_REASON_CERTID_MISMATCH},
        {"FUTURE", STAPLER_REASON_THIS_UPDATE_FUTURE},
        {"EXPIRED", STAPLER_REASON_EXPIRED},
        {"ROGUE", STAPLER_REASON_SIGNER_UNTRUSTED},
        {"NONEXT", STAPLER_REASON_NO_NEXT_UPDATE},
    };
    for (size_t i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
        x = one_fetch(fake_url(crafted[i].fake), "real-ecdsa.der", &p);
        CHECK_EQ_INT(x.last_reason, crafted[i].r);
        CHECK_EQ_INT(x.consecutive_failures, 1);
    }

    x = one_fetch(url_dead, NULL, &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_CONNECT);
    CHECK_EQ_INT(x.state, STAPLER_STATE_FAILING);
    /* Size cap: the real response is a few hundred bytes. (No held
     * response here: the cap applies to cache files too.) */
    struct stapler_params small = p;
    small.max_response_bytes = 100;
    x = one_fetch(url_real, NULL, &small);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_TOO_LARGE);
    CHECK_EQ_INT(x.state, STAPLER_STATE_FAILING);
    /* Delegated responder vs the CA itself: both accepted. */
    char url_ca[128];
    snprintf(url_ca, sizeof(url_ca), "http://127.0.0.1:%s", env_or_die("TERN_PORT_CA"));
    x = one_fetch(url_ca, NULL, &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_OK);
    CHECK_EQ_INT(x.state, STAPLER_STATE_GOOD);

    /* seq: good, older (refused), rogue (refused), newer (taken). */
    table_open();
    struct stapler_cert_spec sp = {.name = "ecdsa", .chain_path = tpath("pki/ecdsa.chain.pem"),
                                   .ocsp_url = fake_url("SEQ")};
    struct stapler *s = make(&p);
    stapler_set_certs(s, &sp, 1, NULL);
    CHECK(poll_until(s, fetched, "ecdsa", 5000));
    int64_t good_this = st(s, "ecdsa").this_update;
    CHECK_EQ_INT(st(s, "ecdsa").state, STAPLER_STATE_GOOD);
    static const enum stapler_reason want[] = {STAPLER_REASON_OLDER,
                                               STAPLER_REASON_SIGNER_UNTRUSTED,
                                               STAPLER_REASON_OK};
    for (int i = 0; i < 3; i++) {
        int64_t last = st(s, "ecdsa").last_fetch;
        uint64_t before_fetches;
        struct stapler_metrics m;
        stapler_metrics(s, &m);
        before_fetches = m.fetches_ok + m.fetches_failed;
        CHECK_EQ_INT(stapler_refresh(s, "ecdsa"), 1);
        int64_t end = mono_ms() + 5000;
        while (mono_ms() < end) {
            stapler_poll(s, 50, NULL, 0);
            stapler_metrics(s, &m);
            if (m.fetches_ok + m.fetches_failed > before_fetches)
                break;
        }
        (void)last;
        CHECK_EQ_INT(st(s, "ecdsa").last_reason, want[i]);
        CHECK_EQ_INT(st(s, "ecdsa").state, STAPLER_STATE_GOOD);
        if (want[i] != STAPLER_REASON_OK)
            CHECK_EQ_INT(st(s, "ecdsa").this_update, good_this);
    }
    CHECK(st(s, "ecdsa").this_update > good_this);
    size_t nlen;
    uint8_t *newer = load_file(tpath("crafted/newer.der"), &nlen), buf[65536];
    int n = table_get(tpath("pki/ecdsa.chain.pem"), buf, sizeof(buf));
    CHECK(n > 0 && (size_t)n == nlen && memcmp(buf, newer, nlen) == 0);
    free(newer);
    stapler_destroy(s);
    table_close();
}

/* GET for a short URL, POST when the URL would reach 255 bytes. */
static void test_get_post(void)
{
    struct stapler_params p = params(NULL);
    int get0 = fake_requests("count", "GET"), post0 = fake_requests("count", "POST");
    struct stapler_cert_status x = one_fetch(fake_url("COUNT"), NULL, &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_OK);
    CHECK_EQ_INT(fake_requests("count", "GET"), get0 + 1);
    CHECK_EQ_INT(fake_requests("count", "POST"), post0);
    char longurl[512];
    int k = snprintf(longurl, sizeof(longurl), "%s/", fake_url("COUNT"));
    memset(longurl + k, 'p', 220);
    longurl[k + 220] = '\0';
    x = one_fetch(longurl, NULL, &p);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_OK);
    CHECK_EQ_INT(fake_requests("count", "GET"), get0 + 1);
    CHECK_EQ_INT(fake_requests("count", "POST"), post0 + 1);
}

/* A certificate whose AIA lists a dead responder first, the real one
 * second: the second answers within the same attempt. */
static void test_all_urls(void)
{
    X509 *inter = load_cert(tpath("pki/inter.pem"));
    EVP_PKEY *ikey = load_key(tpath("pki/inter.key")), *k;
    char aia[300];
    snprintf(aia, sizeof(aia), "OCSP;URI:%s,OCSP;URI:%s", url_dead, url_real);
    const int nids[] = {NID_info_access, 0};
    const char *const vals[] = {aia};
    X509 *leaf = make_cert(inter, ikey, "two urls", &k, nids, vals);
    write_chain(tpath("twourls.pem"), leaf, inter);

    struct stapler_params p;
    struct stapler *s = stapler_up(NULL, &p);
    struct stapler_cert_spec sp = {.name = "two", .chain_path = tpath("twourls.pem")};
    CHECK_EQ_INT(stapler_set_certs(s, &sp, 1, NULL), 0);
    CHECK_EQ_INT(st(s, "two").n_urls, 2);
    CHECK(poll_until(s, fetched, "two", 8000));
    struct stapler_cert_status x = st(s, "two");
    /* Not in the responder's index: a valid "unknown" answer. */
    CHECK_EQ_INT(x.state, STAPLER_STATE_UNKNOWN);
    CHECK_EQ_INT(x.last_reason, STAPLER_REASON_OK);
    CHECK(strcmp(x.responder, url_real) == 0);
    CHECK(logged("trying the next URL"));
    stapler_destroy(s);
    table_close();
    X509_free(leaf);
    X509_free(inter);
    EVP_PKEY_free(ikey);
    EVP_PKEY_free(k);
}

/* At most N requests in flight per responder: counted by the responder
 * itself (the hanging fake logs each request it reads and answers none),
 * then a real run of 24 certificates through `openssl ocsp`. */
static void test_cap(void)
{
    enum { N = 24, CAP = 3 };
    struct stapler_cert_spec sp[N];
    char names[N][16], paths[N][512];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "bulk%d", i);
        snprintf(paths[i], sizeof(paths[i]), "%s", tpath("pki/leaves/x"));
        snprintf(strrchr(paths[i], '/') + 1, 32, "%d.pem", i);
        sp[i] = (struct stapler_cert_spec){.name = names[i], .chain_path = paths[i],
                                           .issuer_path = tpath("pki/inter.pem")};
    }

    table_open();
    struct stapler_params p = params(NULL);
    p.max_inflight_per_responder = CAP;
    p.total_timeout_ms = 8000; /* the hanging responder must outlast the checks below */
    for (int i = 0; i < N; i++)
        sp[i].ocsp_url = fake_url("HANG");
    struct stapler *s = make(&p);
    int hang0 = fake_requests("hang", "");
    CHECK_EQ_INT(stapler_set_certs(s, sp, N, NULL), 0);
    just_poll(s, 1500); /* well inside the 8 s timeout */
    struct stapler_metrics m;
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.inflight, CAP);
    CHECK_EQ_INT(m.queued, N - CAP);
    CHECK_EQ_INT(fake_requests("hang", "") - hang0, CAP);
    /* A reload with the same certificates keeps the transfers and the
     * queue as they are: no new request reaches the responder. */
    CHECK_EQ_INT(stapler_set_certs(s, sp, N, NULL), 0);
    just_poll(s, 300);
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.inflight, CAP);
    CHECK_EQ_INT(m.queued, N - CAP);
    CHECK_EQ_INT(fake_requests("hang", "") - hang0, CAP);
    /* Changing one certificate's URL restarts that one only. */
    sp[N - 1].ocsp_url = url_dead;
    CHECK_EQ_INT(stapler_set_certs(s, sp, N, NULL), 0);
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.queued + m.inflight, N - 1); /* its new fetch starts at the next poll */
    CHECK(poll_until(s, failed_n, names[N - 1], 3000)); /* against the dead port */
    CHECK_EQ_INT(st(s, names[N - 1]).last_reason, STAPLER_REASON_CONNECT);
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.queued + m.inflight, N - 1);
    CHECK_EQ_INT(m.inflight, CAP);
    /* If the cancelled fetch was one of the CAP running, its slot went to
     * the next in the queue: one request more, never more than that. */
    CHECK(fake_requests("hang", "") - hang0 <= CAP + 1);
    sp[N - 1].ocsp_url = fake_url("HANG");
    stapler_destroy(s);

    for (int i = 0; i < N; i++)
        sp[i].ocsp_url = NULL; /* their AIA: the real responder */
    s = make(&p);
    CHECK_EQ_INT(stapler_set_certs(s, sp, N, NULL), 0);
    CHECK(poll_until(s, none_pending, NULL, 20000));
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.by_state[STAPLER_STATE_GOOD], N);
    CHECK_EQ_INT(m.max_inflight_per_responder_seen, CAP);
    stapler_destroy(s);
    table_close();
}

/* Test clock: the must-staple warning comes before nextUpdate, and at
 * nextUpdate the response is withdrawn from the table (responder down). */
static void test_expiry(void)
{
    const char *cache = tpath("cache2");
    struct stapler_cert_spec sp = {.name = "ms", .chain_path = tpath("pki/muststaple.chain.pem"),
                                   .ocsp_url = url_dead};
    uint8_t key[STAPLE_TABLE_KEY_LEN];
    cert_key(sp.chain_path, key);
    size_t len;
    uint8_t *der = load_file(tpath("real-muststaple.der"), &len);
    CHECK_EQ_INT(stapler_cache_write(cache, key, der, len), 0);
    free(der);

    fake_now = time(NULL);
    struct stapler_params p;
    struct stapler *s = stapler_up(cache, &p);
    CHECK_EQ_INT(stapler_set_certs(s, &sp, 1, NULL), 0);
    CHECK_EQ_INT(stapler_load_cache(s), 1);
    struct stapler_cert_status x = st(s, "ms");
    CHECK_EQ_INT(x.state, STAPLER_STATE_GOOD);
    CHECK(x.must_staple && !x.must_staple_warning);
    int64_t next = x.next_update;

    fake_now = next - 1800; /* inside the 3600 s margin */
    just_poll(s, 200);
    x = st(s, "ms");
    CHECK(x.must_staple_warning);
    CHECK_EQ_INT(x.state, STAPLER_STATE_GOOD);
    CHECK(logged("expires in"));
    uint8_t buf[65536];
    CHECK(table_get(tpath("pki/muststaple.chain.pem"), buf, sizeof(buf)) > 0);

    fake_now = next + 1;
    just_poll(s, 200);
    x = st(s, "ms");
    CHECK_EQ_INT(x.state, STAPLER_STATE_EXPIRED);
    CHECK(x.must_staple_warning);
    CHECK_EQ_INT(x.next_update, 0);
    struct stapler_metrics m;
    stapler_metrics(s, &m);
    CHECK_EQ_INT(m.withdrawals, 1);
    CHECK_EQ_INT(m.by_state[STAPLER_STATE_EXPIRED], 1);
    /* Withdrawn, not merely stale. */
    CHECK_EQ_INT(table_get(tpath("pki/muststaple.chain.pem"), buf, sizeof(buf)), -ENOENT);
    /* Still expired after failed retries (not "failing"). */
    CHECK(poll_until(s, failed_n, "ms", 5000));
    CHECK_EQ_INT(st(s, "ms").state, STAPLER_STATE_EXPIRED);
    stapler_destroy(s);
    table_close();
    fake_now = 0;
}

/* A loopback port that refuses connections for the whole run: bound but
 * never listening, and held until exit so that no responder started by
 * this or another test can take it (a port found free and released at
 * once was sometimes handed to one of the fake responders). Returns the
 * port, or 0. */
static int hold_dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return 0;
    return ntohs(a.sin_port); /* fd stays open on purpose */
}

int main(void)
{
    snprintf(url_real, sizeof(url_real), "http://127.0.0.1:%s", env_or_die("TERN_PORT"));
    int dead = hold_dead_port();
    if (dead == 0) {
        fprintf(stderr, "cannot hold a dead port\n");
        return 2;
    }
    snprintf(url_dead, sizeof(url_dead), "http://127.0.0.1:%d", dead);
    test_inventory();
    test_issuer_memo();
    test_cache_files();
    test_end_to_end();
    test_restart_from_cache();
    test_misbehaving();
    test_get_post();
    test_all_urls();
    test_cap();
    test_expiry();
    return check_exit();
}
