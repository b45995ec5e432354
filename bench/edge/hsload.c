/* hsload: a TLS handshake load generator, one thread, non-blocking sockets
 * under epoll.
 *
 *   hsload -a IP:PORT [options]
 *
 * Keeps -c connections open at once. Each one connects, does a full TLS
 * handshake asking for an OCSP staple (status_request), optionally sends one
 * HTTP request and reads the answer until the server closes, then closes.
 * It stops after -n connections or -t seconds, whichever comes first, waits
 * at most 5 s for the ones in flight, and prints one line:
 *
 *   hsload: ok=N fail=N stapled=N resumed=N secs=S rate=HS/s bytes=B mib_s=M
 *
 * "ok" counts connections that completed the handshake (and the exchange,
 * with -g); "stapled" those whose handshake carried an OCSP response that
 * parses and says "successful"; the exit status is 1 when any failed, when
 * nothing completed, or when a staple was expected (full handshakes) and
 * missing, so a broken server never yields a figure.
 *
 * Options:
 *   -c N         concurrent connections (default 16)
 *   -n N         stop after N connections (default 1000000)
 *   -t SECS      stop starting new ones after SECS seconds (default 5)
 *   -v 1.2|1.3   TLS version (default 1.3)
 *   -k ec|rsa    ask for ECDSA or RSA: signature algorithms and, for
 *                TLS 1.2, the cipher suite (ECDHE-ECDSA/RSA-AES128-GCM)
 *   -s NAME      SNI (default none)
 *   -r           resumption: keep the newest session (ticket) the server
 *                sent and offer it on every new connection; the first
 *                connection is a full handshake to get one. In TLS 1.3
 *                tickets arrive after the handshake: use it with -g, so
 *                that every connection reads the server's fresh tickets
 *   -g PATH      send "GET PATH HTTP/1.1", Connection: close, and read
 *                the answer until the server ends the stream
 *   -q           no staple expected (do not fail without one)
 *   -b IP        source address (several hsload with different addresses
 *                get past one address's ports and TIME_WAIT)
 *
 * The only key share offered is X25519, as in the crypto floor (P-256 is
 * listed after it so that TLS 1.2 servers can pick an ECDSA P-256
 * certificate; servers pick X25519, first in their defaults). The client does
 * not verify the certificate (that would be client CPU, the measure is the
 * server's); it checks the staple's response status. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>

#define MAX_CONNS 4096
#define DRAIN_S 5.0

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_WRITE, C_READ };

struct conn {
    enum cstate st;
    int fd;
    SSL *ssl;
    size_t req_off;
    unsigned long long bytes; /* answer bytes read */
};

struct opts {
    struct sockaddr_in addr;
    struct sockaddr_in src; /* sin_family 0: the kernel chooses */
    unsigned conc;
    unsigned long count;
    double secs;
    int version;
    int rsa;
    const char *sni;
    int resume;
    const char *path;
    int no_staple;
};

struct totals {
    unsigned long started, ok, fail, stapled, resumed;
    unsigned long long bytes;
};

static struct opts o = {.conc = 16, .count = 1000000, .secs = 5, .version = TLS1_3_VERSION};
static struct totals tot;
static struct conn conns[MAX_CONNS];
static int ep;
static SSL_SESSION *session; /* newest ticket, with -r */
static char request[512];
static size_t request_len;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keeps the newest resumable session; the client offers it next. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    if (!SSL_SESSION_is_resumable(sess))
        return 0;
    SSL_SESSION_free(session);
    session = sess;
    return 1; /* we keep the reference */
}

/* A staple counts when it parses and its responseStatus is successful; the
 * client does not check the signature (server-side measure). */
static int staple_ok(SSL *ssl)
{
    const unsigned char *p;
    long n = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
    if (n <= 0 || p == NULL)
        return 0;
    OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, n);
    int ok = r && OCSP_response_status(r) == OCSP_RESPONSE_STATUS_SUCCESSFUL;
    OCSP_RESPONSE_free(r);
    return ok;
}

static SSL_CTX *make_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, o.version);
    SSL_CTX_set_max_proto_version(ctx, o.version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* X25519 for the exchange (first, the key share); P-256 listed too because
     * TLS 1.2 servers only pick an ECDSA P-256 certificate when the client
     * names its curve. */
    int ok = SSL_CTX_set1_groups_list(ctx, "X25519:P-256");
    ok = ok && SSL_CTX_set1_sigalgs_list(ctx, o.rsa ? "rsa_pss_rsae_sha256:RSA+SHA256"
                                                    : "ECDSA+SHA256");
    if (o.version == TLS1_2_VERSION)
        ok = ok && SSL_CTX_set_cipher_list(ctx, o.rsa ? "ECDHE-RSA-AES128-GCM-SHA256"
                                                      : "ECDHE-ECDSA-AES128-GCM-SHA256");
    else
        ok = ok && SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256");
    if (o.resume) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void conn_end(struct conn *c, int good)
{
    if (good) {
        tot.ok++;
        if (SSL_session_reused(c->ssl))
            tot.resumed++;
        else if (staple_ok(c->ssl))
            tot.stapled++;
    } else {
        tot.fail++;
    }
    if (good && c->st == C_HANDSHAKE)
        SSL_shutdown(c->ssl); /* handshake only: say goodbye first */
    /* Freed without a shutdown, OpenSSL marks the session not resumable,
     * and that SSL_SESSION is the one every new connection offers. The
     * server has ended a good connection, so mark it ended cleanly. */
    if (good)
        SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c->ssl);
    close(c->fd); /* also removes it from the epoll set */
    c->ssl = NULL;
    c->fd = -1;
    c->st = C_FREE;
    ERR_clear_error();
}

static int conn_want(struct conn *c, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static int conn_start(struct conn *c, SSL_CTX *ctx)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o.src.sin_family == AF_INET &&
        bind(fd, (struct sockaddr *)&o.src, sizeof(o.src)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    c->fd = fd;
    c->req_off = 0;
    c->bytes = 0;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
        SSL_free(c->ssl);
        close(fd);
        return -ENOMEM;
    }
    SSL_set_tlsext_status_type(c->ssl, TLSEXT_STATUSTYPE_ocsp);
    if (o.sni)
        SSL_set_tlsext_host_name(c->ssl, o.sni);
    if (o.resume && session)
        SSL_set_session(c->ssl, session);
    tot.started++;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    c->st = C_CONNECTING;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&o.addr, sizeof(o.addr)) < 0 && errno != EINPROGRESS) {
        conn_end(c, 0);
        return 0;
    }
    return 0;
}

/* Runs one connection as far as it can go without blocking. */
static void conn_step(struct conn *c)
{
    int r;
    if (c->st == C_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0) {
            conn_end(c, 0);
            return;
        }
        c->st = C_HANDSHAKE;
    }
    if (c->st == C_HANDSHAKE) {
        r = SSL_connect(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                conn_want(c, EPOLLIN);
            else if (e == SSL_ERROR_WANT_WRITE)
                conn_want(c, EPOLLOUT);
            else
                conn_end(c, 0);
            return;
        }
        if (!o.no_staple && !SSL_session_reused(c->ssl) && !staple_ok(c->ssl)) {
            conn_end(c, 0); /* a full handshake that should have stapled */
            return;
        }
        if (o.path == NULL) {
            if (o.resume && o.version == TLS1_3_VERSION && session == NULL) {
                /* The ticket comes after the handshake: read it. */
                c->st = C_READ;
            } else {
                conn_end(c, 1);
                return;
            }
        } else {
            c->st = C_WRITE;
        }
    }
    if (c->st == C_WRITE) {
        while (c->req_off < request_len) {
            r = SSL_write(c->ssl, request + c->req_off, (int)(request_len - c->req_off));
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE)
                    conn_want(c, EPOLLOUT);
                else if (e == SSL_ERROR_WANT_READ)
                    conn_want(c, EPOLLIN);
                else
                    conn_end(c, 0);
                return;
            }
            c->req_off += (size_t)r;
        }
        c->st = C_READ;
        conn_want(c, EPOLLIN);
    }
    if (c->st == C_READ) {
        static char buf[1 << 16];
        for (;;) {
            r = SSL_read(c->ssl, buf, sizeof(buf));
            if (r > 0) {
                tot.bytes += (unsigned long long)r;
                c->bytes += (unsigned long long)r;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                if (o.path == NULL && session != NULL) {
                    conn_end(c, 1); /* got the ticket we were waiting for */
                    return;
                }
                conn_want(c, EPOLLIN);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                conn_want(c, EPOLLOUT);
                return;
            }
            /* close_notify, or a plain EOF after a response (servers and
             * proxies that do not send close_notify): done if we got bytes. */
            int clean = e == SSL_ERROR_ZERO_RETURN ||
                        (e == SSL_ERROR_SYSCALL && o.path != NULL && c->bytes > 0);
            conn_end(c, clean || (o.path == NULL && session != NULL));
            return;
        }
    }
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    long port = strtol(colon + 1, NULL, 10);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1 || port <= 0 || port > 65535)
        return -1;
    a->sin_port = htons((uint16_t)port);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: hsload -a IP:PORT [-c CONC] [-n COUNT] [-t SECS] [-v 1.2|1.3]\n"
                    "              [-k ec|rsa] [-s SNI] [-r] [-g PATH] [-q] [-b SRC_IP]\n");
}

int main(int argc, char **argv)
{
    int opt, have_addr = 0;
    while ((opt = getopt(argc, argv, "a:b:c:n:t:v:k:s:rg:q")) != -1) {
        switch (opt) {
        case 'a':
            if (parse_addr(optarg, &o.addr) < 0) {
                fprintf(stderr, "hsload: bad address %s\n", optarg);
                return 2;
            }
            have_addr = 1;
            break;
        case 'b':
            o.src.sin_family = AF_INET;
            if (inet_pton(AF_INET, optarg, &o.src.sin_addr) != 1) {
                fprintf(stderr, "hsload: bad source address %s\n", optarg);
                return 2;
            }
            break;
        case 'c': o.conc = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': o.count = strtoul(optarg, NULL, 10); break;
        case 't': o.secs = strtod(optarg, NULL); break;
        case 'v':
            if (strcmp(optarg, "1.2") == 0)
                o.version = TLS1_2_VERSION;
            else if (strcmp(optarg, "1.3") == 0)
                o.version = TLS1_3_VERSION;
            else {
                usage();
                return 2;
            }
            break;
        case 'k':
            if (strcmp(optarg, "rsa") != 0 && strcmp(optarg, "ec") != 0) {
                usage();
                return 2;
            }
            o.rsa = strcmp(optarg, "rsa") == 0;
            break;
        case 's': o.sni = optarg; break;
        case 'r': o.resume = 1; break;
        case 'g': o.path = optarg; break;
        case 'q': o.no_staple = 1; break;
        default: usage(); return 2;
        }
    }
    if (!have_addr || o.conc == 0 || o.conc > MAX_CONNS || o.count == 0 || o.secs <= 0 ||
        o.secs > 3600) {
        usage();
        return 2;
    }
    if (o.path) {
        int n = snprintf(request, sizeof(request),
                         "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o.path,
                         o.sni ? o.sni : "bench");
        if (n <= 0 || (size_t)n >= sizeof(request)) {
            fprintf(stderr, "hsload: path too long\n");
            return 2;
        }
        request_len = (size_t)n;
    }
    signal(SIGPIPE, SIG_IGN); /* a close_notify to a server that already left */
    SSL_CTX *ctx = make_ctx();
    if (ctx == NULL) {
        fprintf(stderr, "hsload: SSL_CTX setup failed\n");
        ERR_print_errors_fp(stderr);
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("hsload: epoll_create1");
        return 1;
    }
    for (unsigned i = 0; i < MAX_CONNS; i++)
        conns[i].fd = -1;

    double t0 = now_s(), stop = t0 + o.secs, t_end = t0;
    /* With -r, one connection first, alone, to get the ticket. */
    unsigned conc = o.resume ? 1 : o.conc;
    unsigned active = 0;
    int err_start = 0;
    struct epoll_event evs[256];
    for (;;) {
        double t = now_s();
        int starting = t < stop && tot.started < o.count && err_start == 0;
        if (o.resume && session && conc == 1)
            conc = o.conc;
        for (unsigned i = 0; starting && active < conc && i < o.conc; i++) {
            if (conns[i].st != C_FREE)
                continue;
            int rc = conn_start(&conns[i], ctx);
            if (rc < 0) {
                fprintf(stderr, "hsload: cannot open a connection: %s\n", strerror(-rc));
                err_start = rc;
                break;
            }
            if (conns[i].st != C_FREE)
                active++;
            if (tot.started >= o.count)
                break;
        }
        if (active == 0 && !starting)
            break;
        if (!starting && t > stop + DRAIN_S) {
            fprintf(stderr, "hsload: %u connections still open after %.0f s, counted as failed\n",
                    active, DRAIN_S);
            for (unsigned i = 0; i < o.conc; i++)
                if (conns[i].st != C_FREE)
                    conn_end(&conns[i], 0);
            t_end = now_s();
            break;
        }
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR) {
            perror("hsload: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            conn_step(c);
            if (c->st == C_FREE) {
                active--;
                t_end = now_s();
            }
        }
    }
    double dt = t_end - t0;
    if (dt <= 0)
        dt = 1e-9;
    printf("hsload: ok=%lu fail=%lu stapled=%lu resumed=%lu secs=%.3f rate=%.1f bytes=%llu "
           "mib_s=%.1f\n",
           tot.ok, tot.fail, tot.stapled, tot.resumed, dt, (double)tot.ok / dt, tot.bytes,
           (double)tot.bytes / dt / (1 << 20));
    SSL_SESSION_free(session);
    SSL_CTX_free(ctx);
    close(ep);
    int bad = tot.fail > 0 || tot.ok == 0 || err_start != 0;
    if (!o.no_staple && tot.stapled + tot.resumed < tot.ok)
        bad = 1;
    return bad;
}
