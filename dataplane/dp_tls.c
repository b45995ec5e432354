/* TLS in tern-dataplane, process side (dp_tls.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_alarm.h>

#include "dataplane/proxy/proxy.h"
#include "dataplane/proxy/tls_stream.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tls/tls_config.h"
#include "dataplane/tls/tls_ticket_keys.h"
#include "dataplane/tls/tls_worker.h"
#include "dp_tls.h"
#include "stapler/staple_table.h"
#include "worker.h"

#define DP_TLS_ALARM_US 1000000
#define DP_TLS_DEADLINE_US 10000   /* handshake deadlines checked this often */
#define DP_TLS_MAX_CONNS 2048      /* TLS states per worker, at most */

/* Tries to attach the staple table. Returns true once attached. Alarm
 * thread (or main thread before the workers start). */
static bool dp_tls_try_attach(struct dp_tls *t)
{
    if (t->table != NULL)
        return true;
    char err[256];
    struct staple_table *tb = staple_table_attach_reader(t->dc->table_name, err,
                                                         sizeof(err));
    t->attach_tries++;
    if (tb == NULL) {
        if (t->attach_tries == 1 || t->attach_tries % 60 == 0)
            fprintf(stderr, "tern-dataplane: %s; handshakes go unstapled "
                    "(must-staple certificates refused) until it exists, "
                    "retrying every second\n", err);
        return false;
    }
    if (tls_config_set_staple_table(t->cfg, tb) < 0) {
        staple_table_close(tb);
        return false;
    }
    t->table = tb;
    if (t->attach_tries > 1)
        fprintf(stderr, "tern-dataplane: staple table %s attached\n",
                t->dc->table_name);
    return true;
}

static void dp_tls_rotate(struct dp_tls *t)
{
    if (t->keys == NULL || t->dc->ticket_rotation_ms == 0)
        return;
    t->since_rotation_ms += DP_TLS_ALARM_US / 1000;
    if (t->since_rotation_ms < t->dc->ticket_rotation_ms)
        return;
    t->since_rotation_ms = 0;
    int rc = t->dc->ticket_key_file != NULL
                 ? tls_ticket_keys_load_file(t->keys, t->dc->ticket_key_file)
                 : tls_ticket_keys_rotate(t->keys);
    if (rc < 0)
        fprintf(stderr, "tern-dataplane: ticket keys: %s (previous keys kept)\n",
                strerror(-rc));
}

/* Once a second, on the EAL's interrupt thread: never on a worker core. */
static void dp_tls_alarm(void *arg)
{
    struct dp_tls *t = arg;
    dp_tls_try_attach(t);
    dp_tls_rotate(t);
    if (rte_eal_alarm_set(DP_TLS_ALARM_US, dp_tls_alarm, t) < 0)
        fprintf(stderr, "tern-dataplane: cannot re-arm the TLS alarm: "
                "table attach and ticket rotation stop\n");
}

int dp_tls_init(struct dp_tls *t, struct dp_config *dc, unsigned n_workers,
                uint32_t max_pairs, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->dc = dc;
    if (dc->workers != n_workers)
        fprintf(stderr, "tern-dataplane: warning: dataplane.workers is %u but "
                "the EAL gave %u lcores; the lcores decide\n", dc->workers,
                n_workers);
    if (dc->tls.num_tickets != -1 || dc->ticket_key_file != NULL) {
        t->keys = tls_ticket_keys_new();
        if (t->keys == NULL) {
            snprintf(err, errlen, "ticket keys: %s", strerror(errno));
            return -ENOMEM;
        }
        if (dc->ticket_key_file != NULL) {
            int rc = tls_ticket_keys_load_file(t->keys, dc->ticket_key_file);
            if (rc < 0) {
                snprintf(err, errlen, "ticket key file %s: %s",
                         dc->ticket_key_file, strerror(-rc));
                return rc;
            }
        }
    }
    struct tls_config_params p = dc->tls;
    p.ticket_keys = t->keys;
    p.staple_table = NULL; /* attached below, possibly later */
    p.per_core_libctx = 1; /* OpenSSL 3.0's global lookups take locks */
    uint32_t conns = max_pairs < DP_TLS_MAX_CONNS ? max_pairs : DP_TLS_MAX_CONNS;
    p.max_conns = conns;
    t->cfg = tls_config_new(&p, err, errlen);
    if (t->cfg == NULL)
        return -EINVAL;
    dp_tls_try_attach(t);
    t->n_workers = n_workers;
    for (unsigned i = 0; i < n_workers; i++) {
        t->tw[i] = tls_worker_new(t->cfg, i, err, errlen);
        if (t->tw[i] == NULL)
            return -ENOMEM;
        t->ts[i] = tls_stream_core_new(t->tw[i], conns, NULL, NULL, err,
                                       errlen);
        if (t->ts[i] == NULL)
            return -ENOMEM;
    }
    return 0;
}

void dp_tls_bind_worker(struct dp_tls *t, struct worker *w,
                        struct proxy_listener_cfg *listeners)
{
    w->tlsw = t->tw[w->id];
    w->tls = t->ts[w->id];
    for (unsigned i = 0; i < t->dc->n_tls_listeners; i++) {
        struct proxy_listener_cfg *l = &listeners[t->dc->first_tls_listener + i];
        l->client_ops = &tls_stream_ops;
        l->client_ops_ctx = tls_stream_listener_ctx(w->tls, i);
    }
}

/* The filter asks for another move on a client connection: forward it to
 * the proxy as both events (either direction may have bytes waiting). */
static void dp_tls_kick(void *arg, tcp_handle_t h)
{
    struct worker *w = arg;
    void *u = tcp_get_user(w->tcp, h);
    if (u == NULL)
        return;
    proxy_on_readable(w->proxy, h, u);
    proxy_on_writable(w->proxy, h, u);
}

void dp_tls_worker_ready(struct worker *w)
{
    if (w->tls != NULL)
        tls_stream_core_set_kick(w->tls, dp_tls_kick, w);
}

int dp_tls_start(struct dp_tls *t)
{
    int rc = rte_eal_alarm_set(DP_TLS_ALARM_US, dp_tls_alarm, t);
    if (rc == 0)
        t->alarm_set = true;
    return rc;
}

void dp_tls_fini(struct dp_tls *t)
{
    if (t->alarm_set)
        rte_eal_alarm_cancel(dp_tls_alarm, t);
    t->alarm_set = false;
    for (unsigned i = 0; i < STEER_MAX_WORKERS; i++) {
        tls_stream_core_free(t->ts[i]);
        tls_worker_free(t->tw[i]);
        t->ts[i] = NULL;
        t->tw[i] = NULL;
    }
    tls_config_free(t->cfg);
    t->cfg = NULL;
    tls_ticket_keys_free(t->keys);
    t->keys = NULL;
    staple_table_close(t->table);
    t->table = NULL;
}

bool dp_tls_worker_tick(struct worker *w)
{
    if (w->tls == NULL)
        return false;
    bool work = false;
    tls_stream_set_time(w->tls, w->now_us);
    if (w->now_us >= w->tls_next_sec_us) {
        /* One clock call a second spares every handshake its own. */
        tls_worker_set_time(w->tlsw, (int64_t)time(NULL));
        w->tls_next_sec_us = w->now_us + 1000000;
    }
    if (tls_stream_pending(w->tls) && tls_stream_poll(w->tls) > 0)
        work = true;
    if (w->now_us >= w->tls_next_deadline_us) {
        if (tls_stream_check_deadlines(w->tls) > 0)
            work = true;
        w->tls_next_deadline_us = w->now_us + DP_TLS_DEADLINE_US;
    }
    return work;
}

void dp_tls_publish(struct worker *w)
{
    if (w->tls == NULL)
        return;
    const uint64_t *c = tls_worker_counters(w->tlsw);
    for (unsigned i = 0; i < TLS_CTR_MAX; i++)
        __atomic_store_n(&w->stats.tls[i], c[i], __ATOMIC_RELAXED);
    for (unsigned i = 0; i < TLS_STREAM_CTR_MAX; i++)
        __atomic_store_n(&w->stats.tls_stream[i], tls_stream_counter(w->tls, i),
                         __ATOMIC_RELAXED);
    __atomic_store_n(&w->stats.tls_conns, tls_worker_conns_in_use(w->tlsw),
                     __ATOMIC_RELAXED);
}
