/* The control socket (control_server.h).
 *
 * Each client has a fixed request buffer (one line at most API_REQUEST_MAX)
 * and a reply buffer. A client's next line is only handled once its previous
 * reply has been written out: a client that pipelines requests and never
 * reads holds at most one reply in memory. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "control_server.h"

struct client {
    int fd;
    int64_t last_active_ms; /* monotonic; idle clients are closed */
    bool discarding; /* skipping the rest of an over-long line */
    bool eof;        /* peer closed its side; close once the reply is out */
    size_t in_len;
    char *out;
    size_t out_len, out_off;
    char in[API_REQUEST_MAX + 1];
};

struct control_server {
    int fd;
    char *path;
    struct client *clients[CONTROL_SERVER_MAX_CLIENTS];
    unsigned n_clients;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *control_server_path(const struct control_server *srv)
{
    return srv->path;
}

/* Refuses to take over a live daemon's socket or a file that is not a
 * socket; removes a socket nobody listens on any more. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a socket; not replacing it", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int e = errno;
    close(fd);
    if (rc == 0) {
        snprintf(err, errlen, "%s: another tern-control answers on it", path);
        return -1;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -1;
    }
    unlink(path);
    return 0;
}

struct control_server *control_server_open(const char *path, mode_t mode, const char *group,
                                           char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    gid_t gid = (gid_t)-1;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path longer than %zu bytes: %s", sizeof(sa.sun_path) - 1,
                 path);
        return NULL;
    }
    strcpy(sa.sun_path, path);
    if (group != NULL) {
        struct group *g = getgrnam(group);
        if (g == NULL) {
            snprintf(err, errlen, "socket group '%s' does not exist", group);
            return NULL;
        }
        gid = g->gr_gid;
    }
    if (clear_stale(path, &sa, err, errlen) < 0)
        return NULL;

    struct control_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL || (srv->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "out of memory");
        free(srv);
        return NULL;
    }
    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    /* Bound with owner-only bits, then opened up to MODE: nobody else can
     * connect in the window between bind and chmod. */
    mode_t old = umask(0177);
    int rc = bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (rc < 0) {
        snprintf(err, errlen, "bind %s: %s", path, strerror(e));
        goto fail_fd;
    }
    if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) || chmod(path, mode) < 0) {
        snprintf(err, errlen, "%s: setting group/mode: %s", path, strerror(errno));
        unlink(path);
        goto fail_fd;
    }
    if (listen(srv->fd, CONTROL_SERVER_MAX_CLIENTS) < 0) {
        snprintf(err, errlen, "listen %s: %s", path, strerror(errno));
        unlink(path);
        goto fail_fd;
    }
    return srv;

fail_fd:
    close(srv->fd);
fail:
    free(srv->path);
    free(srv);
    return NULL;
}

static void client_close(struct control_server *srv, unsigned i)
{
    struct client *c = srv->clients[i];
    close(c->fd);
    free(c->out);
    free(c);
    srv->clients[i] = srv->clients[--srv->n_clients];
    srv->clients[srv->n_clients] = NULL;
}

void control_server_close(struct control_server *srv)
{
    if (srv == NULL)
        return;
    while (srv->n_clients > 0)
        client_close(srv, srv->n_clients - 1);
    close(srv->fd);
    unlink(srv->path);
    free(srv->path);
    free(srv);
}

unsigned control_server_fds(struct control_server *srv, struct stapler_waitfd *fds,
                            unsigned cap)
{
    unsigned n = 0;
    if (cap == 0)
        return 0;
    fds[n++] = (struct stapler_waitfd){.fd = srv->fd, .events = POLLIN};
    for (unsigned i = 0; i < srv->n_clients && n < cap; i++) {
        struct client *c = srv->clients[i];
        fds[n++] = (struct stapler_waitfd){
            .fd = c->fd,
            .events = c->out_len > c->out_off ? POLLOUT : POLLIN,
        };
    }
    return n;
}

static void accept_clients(struct control_server *srv)
{
    for (int budget = 0; budget < 16; budget++) {
        int fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct client *c = srv->n_clients < CONTROL_SERVER_MAX_CLIENTS ? malloc(sizeof(*c)) : NULL;
        if (c == NULL) {
            close(fd); /* full: the client sees EOF and can retry */
            continue;
        }
        c->fd = fd;
        c->last_active_ms = mono_ms();
        c->discarding = c->eof = false;
        c->in_len = 0;
        c->out = NULL;
        c->out_len = c->out_off = 0;
        srv->clients[srv->n_clients++] = c;
    }
}

static void set_reply(struct client *c, char *reply)
{
    free(c->out);
    c->out = reply;
    c->out_len = reply ? strlen(reply) : 0;
    c->out_off = 0;
}

/* Handles buffered lines while no reply is pending. Returns -1 to close. */
static int pump(struct client *c, control_server_handler *handler, void *arg)
{
    while (c->out_len == c->out_off) {
        char *nl = memchr(c->in, '\n', c->in_len);
        if (nl == NULL) {
            if (c->in_len == sizeof(c->in)) {
                /* A full buffer without a newline: the line is too long. */
                if (!c->discarding)
                    set_reply(c, api_reply_error("request longer than 4096 bytes", NULL));
                c->discarding = true;
                c->in_len = 0;
                continue;
            }
            return 0;
        }
        size_t len = (size_t)(nl - c->in);
        if (c->discarding) {
            c->discarding = false;
        } else {
            char *reply = handler(arg, c->in, len);
            if (reply == NULL)
                return -1;
            set_reply(c, reply);
        }
        memmove(c->in, nl + 1, c->in_len - len - 1);
        c->in_len -= len + 1;
    }
    return 0;
}

/* Returns -1 when the client is to be closed. */
static int client_io(struct client *c, short revents, control_server_handler *handler,
                     void *arg)
{
    if (revents & POLLOUT) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->out_off += (size_t)w;
        if (c->out_off == c->out_len) {
            set_reply(c, NULL);
            if (pump(c, handler, arg) < 0)
                return -1;
            if (c->eof && c->out_len == 0)
                return -1;
        }
        return 0;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
        if (r < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (r == 0)
            c->eof = true;
        c->in_len += (size_t)r;
        if (pump(c, handler, arg) < 0)
            return -1;
        if (c->eof && c->out_len == c->out_off)
            return -1;
    }
    return 0;
}

void control_server_expire(struct control_server *srv, int idle_ms)
{
    int64_t now = mono_ms();
    for (unsigned i = srv->n_clients; i-- > 0;)
        if (now - srv->clients[i]->last_active_ms > idle_ms)
            client_close(srv, i);
}

void control_server_handle(struct control_server *srv, const struct stapler_waitfd *fds,
                           unsigned n, control_server_handler *handler, void *arg)
{
    /* fds[0] is the listening socket; fds[1..] are the clients in the order
     * control_server_fds wrote them. Closing swaps the last client in, so
     * walk backwards to keep the mapping. */
    unsigned n_clients = srv->n_clients;
    for (unsigned i = n_clients; i-- > 0;) {
        if (i + 1 >= n || fds[i + 1].fd != srv->clients[i]->fd)
            continue;
        if (fds[i + 1].revents == 0)
            continue;
        srv->clients[i]->last_active_ms = mono_ms();
        if (client_io(srv->clients[i], fds[i + 1].revents, handler, arg) < 0)
            client_close(srv, i);
    }
    if (n > 0 && (fds[0].revents & POLLIN))
        accept_clients(srv);
}
