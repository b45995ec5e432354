/* Backend pools: round robin and least-connections spreads, max_conns,
 * down servers skipped, everything down refused, rise/fall thresholds, and
 * a health writer thread flipping servers while a reader picks. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "dataplane/proxy/pool.h"

static struct pool_cfg cfg3(enum pool_balance b, uint32_t max_conns)
{
    struct pool_cfg c;
    memset(&c, 0, sizeof(c));
    c.balance = b;
    c.max_conns = max_conns;
    c.n_servers = 3;
    for (unsigned i = 0; i < 3; i++) {
        c.servers[i].addr = 0xC6120100u + i;
        c.servers[i].port = (uint16_t)(8080 + i);
    }
    return c;
}

static void test_round_robin(void)
{
    struct pool p;
    struct pool_cfg c = cfg3(POOL_ROUND_ROBIN, 0);
    CHECK_EQ_INT(pool_init(&p, &c, NULL), 0);
    for (int k = 0; k < 9; k++)
        CHECK_EQ_INT(pool_get(&p), k % 3);
    CHECK_EQ_INT(p.conns[0], 3);
    CHECK_EQ_INT(pool_counter(&p, POOL_CTR_picked), 9);
    CHECK_EQ_INT(pool_server(&p, 2)->port, 8082);
    /* releases do not change the turn order */
    pool_put(&p, 0);
    pool_put(&p, 0);
    CHECK_EQ_INT(pool_get(&p), 0);
    CHECK_EQ_INT(pool_get(&p), 1);
    /* a release below zero stays at zero, and a bad index is ignored */
    struct pool q;
    CHECK_EQ_INT(pool_init(&q, &c, NULL), 0);
    pool_put(&q, 1);
    pool_put(&q, 99);
    CHECK_EQ_INT(q.conns[1], 0);
}

static void test_least_conn(void)
{
    struct pool p;
    struct pool_cfg c = cfg3(POOL_LEAST_CONN, 0);
    CHECK_EQ_INT(pool_init(&p, &c, NULL), 0);
    /* equal loads take turns */
    CHECK_EQ_INT(pool_get(&p), 0);
    CHECK_EQ_INT(pool_get(&p), 1);
    CHECK_EQ_INT(pool_get(&p), 2);
    /* 0 and 2 finish: the next two go there, not to busy 1 */
    pool_put(&p, 0);
    pool_put(&p, 2);
    int a = pool_get(&p), b = pool_get(&p);
    CHECK((a == 0 && b == 2) || (a == 2 && b == 0));
    /* long-lived connections pile on server 1: new ones avoid it */
    for (int k = 0; k < 5; k++)
        (void)pool_get(&p);
    /* 8 connections over 3 servers: least-conn keeps them within one */
    unsigned lo = p.conns[0], hi = p.conns[0];
    for (unsigned i = 1; i < 3; i++) {
        lo = p.conns[i] < lo ? p.conns[i] : lo;
        hi = p.conns[i] > hi ? p.conns[i] : hi;
    }
    CHECK(hi - lo <= 1);
    CHECK_EQ_INT(p.conns[0] + p.conns[1] + p.conns[2], 8);
    /* drain server 2 completely: it takes the next ones until level */
    while (p.conns[2] > 0)
        pool_put(&p, 2);
    unsigned before1 = p.conns[1];
    CHECK_EQ_INT(pool_get(&p), 2);
    CHECK_EQ_INT(p.conns[1], before1);
}

static void test_limits(void)
{
    struct pool p;
    struct pool_cfg c = cfg3(POOL_ROUND_ROBIN, 2);
    CHECK_EQ_INT(pool_init(&p, &c, NULL), 0);
    for (int k = 0; k < 6; k++)
        CHECK(pool_get(&p) >= 0);
    CHECK_EQ_INT(pool_get(&p), -EBUSY);
    CHECK_EQ_INT(pool_counter(&p, POOL_CTR_refused_full), 1);
    pool_put(&p, 1);
    CHECK_EQ_INT(pool_get(&p), 1);
    CHECK_EQ_INT(pool_get(&p), -EBUSY);

    struct pool l;
    struct pool_cfg lc = cfg3(POOL_LEAST_CONN, 1);
    CHECK_EQ_INT(pool_init(&l, &lc, NULL), 0);
    CHECK(pool_get(&l) >= 0 && pool_get(&l) >= 0 && pool_get(&l) >= 0);
    CHECK_EQ_INT(pool_get(&l), -EBUSY);

    /* bad configurations */
    struct pool_cfg bad = cfg3(POOL_ROUND_ROBIN, 0);
    bad.n_servers = 0;
    CHECK_EQ_INT(pool_init(&p, &bad, NULL), -EINVAL);
    bad = cfg3(POOL_ROUND_ROBIN, 0);
    bad.servers[1].port = 0;
    CHECK_EQ_INT(pool_init(&p, &bad, NULL), -EINVAL);
    bad.n_servers = POOL_MAX_SERVERS + 1;
    CHECK_EQ_INT(pool_init(&p, &bad, NULL), -EINVAL);
    struct pool_health h2;
    CHECK_EQ_INT(pool_health_init(&h2, 2, 1, 1), 0);
    c = cfg3(POOL_ROUND_ROBIN, 0);
    CHECK_EQ_INT(pool_init(&p, &c, &h2), -EINVAL); /* 3 servers, health of 2 */
}

static void test_health(void)
{
    struct pool_health h;
    CHECK_EQ_INT(pool_health_init(&h, 3, 2, 3), 0);
    CHECK_EQ_INT(pool_health_init(&h, 0, 2, 3), -EINVAL);
    CHECK_EQ_INT(pool_health_init(&h, 3, 2, 3), 0);
    struct pool rr, lc;
    struct pool_cfg c = cfg3(POOL_ROUND_ROBIN, 0);
    CHECK_EQ_INT(pool_init(&rr, &c, &h), 0);
    c = cfg3(POOL_LEAST_CONN, 0);
    CHECK_EQ_INT(pool_init(&lc, &c, &h), 0);
    for (unsigned i = 0; i < 3; i++)
        CHECK(pool_health_up(&h, i));

    /* fall = 3: two failures keep it up, a success resets the streak */
    CHECK_EQ_INT(pool_health_report(&h, 1, false), 0);
    CHECK_EQ_INT(pool_health_report(&h, 1, false), 0);
    CHECK_EQ_INT(pool_health_report(&h, 1, true), 0);
    CHECK_EQ_INT(pool_health_report(&h, 1, false), 0);
    CHECK_EQ_INT(pool_health_report(&h, 1, false), 0);
    CHECK(pool_health_up(&h, 1));
    CHECK_EQ_INT(pool_health_report(&h, 1, false), -1);
    CHECK(!pool_health_up(&h, 1));
    CHECK(!pool_server_up(&rr, 1));
    CHECK_EQ_INT(pool_health_report(&h, 1, false), 0); /* already down */

    /* a down server gets nothing from either algorithm */
    for (int k = 0; k < 20; k++) {
        int a = pool_get(&rr), b = pool_get(&lc);
        CHECK(a == 0 || a == 2);
        CHECK(b == 0 || b == 2);
    }
    CHECK_EQ_INT(rr.conns[1], 0);
    CHECK_EQ_INT(lc.conns[1], 0);
    CHECK_EQ_INT(rr.conns[0], 10);
    CHECK_EQ_INT(rr.conns[2], 10);

    /* everything down: refused and counted, not queued */
    for (int k = 0; k < 3; k++) {
        pool_health_report(&h, 0, false);
        pool_health_report(&h, 2, false);
    }
    CHECK_EQ_INT(pool_get(&rr), -EHOSTUNREACH);
    CHECK_EQ_INT(pool_get(&lc), -EHOSTUNREACH);
    CHECK_EQ_INT(pool_counter(&rr, POOL_CTR_refused_down), 1);

    /* rise = 2 */
    CHECK_EQ_INT(pool_health_report(&h, 1, true), 0);
    CHECK_EQ_INT(pool_get(&rr), -EHOSTUNREACH);
    CHECK_EQ_INT(pool_health_report(&h, 1, true), 1);
    CHECK_EQ_INT(pool_get(&rr), 1);
    /* least-conn: the returning server has no connections, it takes the
     * new ones while 0 and 2 still hold theirs */
    CHECK_EQ_INT(pool_get(&lc), 1);
    CHECK_EQ_INT(atomic_load(&h.transitions[1]), 2);
    CHECK_EQ_INT(pool_counter_name(POOL_CTR_refused_down) != NULL, 1);
    CHECK(pool_counter_name(POOL_CTR_MAX) == NULL);
}

/* One thread writes verdicts as the checker would, another picks as a
 * worker would: a pick never returns a server that was down for the whole
 * time the reader looked (server 1 goes down for good halfway), and TSan /
 * ASan see no race on the shared bytes. */
struct race {
    struct pool_health h;
    _Atomic int phase;
};

static void *writer(void *arg)
{
    struct race *r = arg;
    for (int k = 0; k < 20000; k++)
        pool_health_report(&r->h, 0, (k & 1) != 0);
    for (int k = 0; k < 3; k++)
        pool_health_report(&r->h, 1, false);
    atomic_store_explicit(&r->phase, 1, memory_order_release);
    for (int k = 0; k < 20000; k++)
        pool_health_report(&r->h, 0, (k & 1) != 0);
    return NULL;
}

static void test_threads(void)
{
    struct race r;
    memset(&r, 0, sizeof(r));
    CHECK_EQ_INT(pool_health_init(&r.h, 3, 1, 1), 0);
    struct pool p;
    struct pool_cfg c = cfg3(POOL_ROUND_ROBIN, 0);
    CHECK_EQ_INT(pool_init(&p, &c, &r.h), 0);
    pthread_t t;
    CHECK_EQ_INT(pthread_create(&t, NULL, writer, &r), 0);
    unsigned after_down_to_1 = 0, picks = 0;
    for (int k = 0; k < 200000 && picks < 100000; k++) {
        int done = atomic_load_explicit(&r.phase, memory_order_acquire);
        int s = pool_get(&p);
        if (s < 0)
            continue;
        picks++;
        pool_put(&p, (unsigned)s);
        if (done && s == 1)
            after_down_to_1++;
    }
    pthread_join(t, NULL);
    CHECK_EQ_INT(after_down_to_1, 0);
    CHECK(!pool_health_up(&r.h, 1));
    CHECK(picks > 0);
}

/* Two cores' pools sharing one struct pool_health: max_conns and
 * least-connections hold over both, and a release on one core frees the
 * slot for the other. */
static void test_shared_counts(void)
{
    static struct pool_health ph; /* static: 4 KiB of padded counts */
    CHECK_EQ_INT(pool_health_init(&ph, 3, 1, 1), 0);
    struct pool_cfg c = cfg3(POOL_ROUND_ROBIN, 2);
    struct pool a, b;
    CHECK_EQ_INT(pool_init(&a, &c, &ph), 0);
    CHECK_EQ_INT(pool_init(&b, &c, &ph), 0);
    /* 6 slots in all: core a takes 4, core b the 2 left, then both full */
    for (int k = 0; k < 4; k++)
        CHECK(pool_get(&a) >= 0);
    CHECK(pool_get(&b) >= 0);
    CHECK(pool_get(&b) >= 0);
    CHECK_EQ_INT(pool_get(&b), -EBUSY);
    CHECK_EQ_INT(pool_get(&a), -EBUSY);
    for (unsigned i = 0; i < 3; i++)
        CHECK_EQ_INT(atomic_load(&ph.conns[i].n), 2);
    /* core a ends one on server 0: core b may take it */
    CHECK(a.conns[0] > 0);
    pool_put(&a, 0);
    CHECK_EQ_INT(pool_get(&b), 0);
    /* a release of a connection this core does not hold changes nothing */
    struct pool fresh;
    CHECK_EQ_INT(pool_init(&fresh, &c, &ph), 0);
    pool_put(&fresh, 1);
    CHECK_EQ_INT(atomic_load(&ph.conns[1].n), 2);

    /* least-conn sees the other core's connections */
    CHECK_EQ_INT(pool_health_init(&ph, 3, 1, 1), 0);
    struct pool_cfg lc = cfg3(POOL_LEAST_CONN, 0);
    CHECK_EQ_INT(pool_init(&a, &lc, &ph), 0);
    CHECK_EQ_INT(pool_init(&b, &lc, &ph), 0);
    CHECK_EQ_INT(pool_get(&a), 0);
    CHECK_EQ_INT(pool_get(&a), 1);
    /* b has none of its own; server 2 is the only one without any */
    CHECK_EQ_INT(pool_get(&b), 2);
    CHECK_EQ_INT(pool_get(&b), 0);
}

/* Two threads (cores) pick and release on one shared pool with max_conns:
 * the connections granted on a server never go past the limit (the count
 * itself may, for an instant, while a refused add is undone), and the
 * counts end at zero. */
static _Atomic unsigned granted[2];

struct shared_arg {
    struct pool p;
    struct pool_health *ph;
    unsigned over, got, full;
};

static void *shared_thread(void *v)
{
    struct shared_arg *s = v;
    int held[4];
    for (int round = 0; round < 20000; round++) {
        int n = 0;
        for (; n < 4; n++) {
            held[n] = pool_get(&s->p);
            if (held[n] < 0)
                break;
            s->got++;
            if (atomic_fetch_add(&granted[held[n]], 1) + 1 > 3)
                s->over++;
        }
        if (n < 4)
            s->full++;
        while (n > 0) {
            atomic_fetch_sub(&granted[held[--n]], 1);
            pool_put(&s->p, (unsigned)held[n]);
        }
    }
    return NULL;
}

static void test_shared_threads(void)
{
    static struct pool_health ph;
    CHECK_EQ_INT(pool_health_init(&ph, 2, 1, 1), 0);
    struct pool_cfg c = cfg3(POOL_LEAST_CONN, 3);
    c.n_servers = 2;
    static struct shared_arg s[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        s[i].ph = &ph;
        CHECK_EQ_INT(pool_init(&s[i].p, &c, &ph), 0);
        CHECK_EQ_INT(pthread_create(&th[i], NULL, shared_thread, &s[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(s[0].over + s[1].over, 0);
    CHECK(s[0].got + s[1].got > 0);
    CHECK_EQ_INT(atomic_load(&ph.conns[0].n), 0);
    CHECK_EQ_INT(atomic_load(&ph.conns[1].n), 0);
    fprintf(stderr, "shared pool: %u picks, %u rounds found it full\n",
            s[0].got + s[1].got, s[0].full + s[1].full);
}

int main(void)
{
    test_round_robin();
    test_least_conn();
    test_limits();
    test_health();
    test_threads();
    test_shared_counts();
    test_shared_threads();
    return check_exit();
}
