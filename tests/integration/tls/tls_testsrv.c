/* Test-only loopback server: drives tern's tls_conn with kernel sockets so
 * that real clients (openssl s_client, curl, gnutls-cli) can be pointed at
 * it. Not the dataplane: the dataplane drives tls_conn from its own TCP.
 *
 *   tls_testsrv PKI_DIR PORT_FILE SECONDS
 *
 * PKI_DIR comes from tests/unit/tls/mkpki.sh. The server creates a staple
 * table named after its PID and publishes: www-ec and www-rsa (valid for an
 * hour), wild (already expired), nothing for default and strict (strict is
 * Must-Staple with the strict policy). It listens on 127.0.0.1, an
 * ephemeral port written to PORT_FILE, answers any request with a small
 * HTTP response, and exits after SECONDS or on SIGTERM. Connections go to
 * two workers in turn (two "cores" sharing the ticket keys), so a client's
 * second connection resumes on the other worker than its first. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stapler/staple_table.h"
#include "tls_config.h"
#include "tls_conn.h"
#include "tls_ticket_keys.h"
#include "tls_worker.h"

#define MAX_CONNS 16

static volatile sig_atomic_t stop;
static const char *pki;

struct slot {
    int fd;
    struct tls_conn *c;
    int answered;
    unsigned id, worker;
};

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char *p(const char *leaf, const char *suffix)
{
    static char buf[16][512];
    static int k;
    k = (k + 1) % 16;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s%s", pki, leaf, suffix);
    return buf[k];
}

static int publish(struct staple_table *t, const struct tls_config *cfg, unsigned set,
                   unsigned cert, const char *leaf, int64_t valid_for)
{
    uint8_t key[32], der[65536];
    FILE *f = fopen(p(leaf, ".ocsp.der"), "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(der, 1, sizeof(der), f);
    fclose(f);
    int64_t now = (int64_t)time(NULL);
    if (tls_config_leaf_key(cfg, set, cert, key) != 0)
        return -1;
    return staple_table_publish(t, key, der, (uint32_t)n, now - 60, now + valid_for);
}

/* Sends what the connection has for the client; returns -1 on a socket
 * error. */
static int flush_out(struct slot *s)
{
    const uint8_t *o;
    size_t n;
    while ((n = tls_conn_out_peek(s->c, &o)) > 0) {
        ssize_t w = send(s->fd, o, n, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN ? 0 : -1;
        tls_conn_out_consume(s->c, (size_t)w);
    }
    return 0;
}

static void close_slot(struct slot *s)
{
    flush_out(s); /* the alert or close_notify, if any */
    /* One line per connection, for the test to follow which worker issued
     * and which resumed a session. */
    fprintf(stderr, "conn %u worker %u resumed %d\n", s->id, s->worker, tls_conn_resumed(s->c));
    close(s->fd);
    tls_conn_release(s->c);
    s->fd = -1;
    s->c = NULL;
}

/* Reads from the socket into the connection, answers a request once. */
static void serve(struct slot *s, uint64_t now)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n"
                                 "Connection: close\r\n\r\nhello from tern\n";
    uint8_t buf[16384];
    ssize_t r = recv(s->fd, buf, sizeof(buf), 0);
    if (r == 0 || (r < 0 && errno != EAGAIN)) {
        close_slot(s);
        return;
    }
    for (ssize_t off = 0; r > 0 && off < r;) {
        ssize_t k = tls_conn_feed(s->c, buf + off, (size_t)(r - off));
        if (k < 0) {
            fprintf(stderr, "tls_testsrv: connection failed: %s\n",
                    tls_reason_name(tls_conn_reason(s->c)));
            close_slot(s);
            return;
        }
        off += k;
        ssize_t n;
        char pt[16384];
        while ((n = tls_conn_read(s->c, pt, sizeof(pt))) > 0) {
            if (!s->answered) {
                tls_conn_write(s->c, answer, sizeof(answer) - 1);
                tls_conn_shutdown(s->c);
                s->answered = 1;
            }
        }
        if (n < 0) {
            close_slot(s);
            return;
        }
        if (k == 0)
            break;
    }
    if (tls_conn_check_deadline(s->c, now) < 0 || flush_out(s) < 0 ||
        (s->answered && tls_conn_out_peek(s->c, &(const uint8_t *){0}) == 0)) {
        close_slot(s);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s PKI_DIR PORT_FILE SECONDS\n", argv[0]);
        return 2;
    }
    pki = argv[1];
    int seconds = atoi(argv[3]);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    char err[256], tname[64];
    snprintf(tname, sizeof(tname), "/tern-tls-it-%d", (int)getpid());
    struct staple_table_params tp = {.capacity = 16, .max_response = 65536};
    struct staple_table *tw = staple_table_open_writer(tname, &tp, err, sizeof(err));
    struct staple_table *tr = tw ? staple_table_attach_reader(tname, err, sizeof(err)) : NULL;
    if (tr == NULL) {
        fprintf(stderr, "tls_testsrv: %s\n", err);
        return 1;
    }
    static const char *const www[] = {"www.example.test", "example.test"};
    static const char *const wild[] = {"*.wild.test"};
    static const char *const def[] = {"default.test"};
    static const char *const strict[] = {"strict.test"};
    struct tls_certset_params sets[4] = {
        {.names = www, .n_names = 2, .n_certs = 2,
         .certs = {{p("www-ec", ".pem"), p("www-ec", ".key")},
                   {p("www-rsa", ".pem"), p("www-rsa", ".key")}}},
        {.names = wild, .n_names = 1, .n_certs = 1, .certs = {{p("wild", ".pem"), p("wild", ".key")}}},
        {.names = def, .n_names = 1, .n_certs = 1,
         .certs = {{p("default", ".pem"), p("default", ".key")}}},
        {.names = strict, .n_names = 1, .n_certs = 1, .staple_policy = TLS_STAPLE_STRICT,
         .certs = {{p("strict", ".pem"), p("strict", ".key")}}},
    };
    struct tls_listener_params l = {.alpn = "http/1.1"};
    struct tls_ticket_keys *keys = tls_ticket_keys_new();
    struct tls_config_params cp = {.certsets = sets, .n_certsets = 4, .default_certset = 2,
                                   .listeners = &l, .n_listeners = 1,
                                   .max_conns = MAX_CONNS, .handshake_timeout_ms = 5000,
                                   .staple_table = tr, .ticket_keys = keys};
    struct tls_config *cfg = tls_config_new(&cp, err, sizeof(err));
    struct tls_worker *ws[2] = {cfg ? tls_worker_new(cfg, 0, err, sizeof(err)) : NULL,
                                cfg ? tls_worker_new(cfg, 1, err, sizeof(err)) : NULL};
    unsigned accepted = 0;
    if (ws[0] == NULL || ws[1] == NULL) {
        fprintf(stderr, "tls_testsrv: %s\n", err);
        return 1;
    }
    if (publish(tw, cfg, 0, 0, "www-ec", 3600) != 0 ||
        publish(tw, cfg, 0, 1, "www-rsa", 3600) != 0 ||
        publish(tw, cfg, 1, 0, "wild", -10) != 0) {
        fprintf(stderr, "tls_testsrv: publishing staples failed\n");
        return 1;
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        perror("tls_testsrv: listen");
        return 1;
    }
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
    FILE *pf = fopen(tmp, "w");
    if (pf == NULL || fprintf(pf, "%d\n", ntohs(a.sin_port)) < 0 || fclose(pf) != 0 ||
        rename(tmp, argv[2]) != 0) {
        perror("tls_testsrv: port file");
        return 1;
    }

    struct slot slots[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++)
        slots[i] = (struct slot){.fd = -1};
    uint64_t end = mono_ns() + (uint64_t)seconds * 1000000000ull;
    while (!stop && mono_ns() < end) {
        struct pollfd pfd[MAX_CONNS + 1];
        int idx[MAX_CONNS + 1], n = 0;
        pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        idx[n++] = -1;
        for (int i = 0; i < MAX_CONNS; i++) {
            if (slots[i].fd >= 0) {
                pfd[n] = (struct pollfd){.fd = slots[i].fd, .events = POLLIN};
                idx[n++] = i;
            }
        }
        if (poll(pfd, (nfds_t)n, 200) < 0 && errno != EINTR)
            break;
        uint64_t now = mono_ns();
        tls_worker_set_time(ws[0], (int64_t)time(NULL));
        tls_worker_set_time(ws[1], (int64_t)time(NULL));
        if (pfd[0].revents & POLLIN) {
            int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            int i = 0;
            while (i < MAX_CONNS && slots[i].fd >= 0)
                i++;
            unsigned wi = accepted % 2;
            struct tls_conn *c =
                fd >= 0 && i < MAX_CONNS ? tls_conn_accept(ws[wi], 0, now) : NULL;
            if (c == NULL) {
                if (fd >= 0)
                    close(fd);
            } else {
                slots[i] = (struct slot){.fd = fd, .c = c, .id = accepted++, .worker = wi};
            }
        }
        for (int k = 1; k < n; k++) {
            struct slot *s = &slots[idx[k]];
            if (s->fd >= 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
                serve(s, now);
            else if (s->fd >= 0 && tls_conn_check_deadline(s->c, now) < 0)
                close_slot(s);
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (slots[i].fd >= 0)
            close_slot(&slots[i]);
    close(lfd);
    /* Both workers' counters, summed, then those of worker 1 alone. */
    const uint64_t *c0 = tls_worker_counters(ws[0]), *c1 = tls_worker_counters(ws[1]);
    for (unsigned i = 0; i < TLS_CTR_MAX; i++)
        if (c0[i] + c1[i])
            printf("%s %llu\n", tls_counter_name(i), (unsigned long long)(c0[i] + c1[i]));
    for (unsigned i = 0; i < TLS_CTR_MAX; i++)
        if (c1[i])
            printf("worker1.%s %llu\n", tls_counter_name(i), (unsigned long long)c1[i]);
    tls_worker_free(ws[0]);
    tls_worker_free(ws[1]);
    tls_config_free(cfg);
    tls_ticket_keys_free(keys);
    staple_table_close(tr);
    staple_table_close(tw);
    staple_table_unlink(tname);
    return 0;
}
