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

int main(void)
{
    test_round_robin();
    test_least_conn();
    test_limits();
    test_health();
    test_threads();
    return check_exit();
}
