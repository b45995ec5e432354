/* Unit test of the control socket server's framing: pipelined lines, a line
 * split across writes, an over-long line skipped with an error reply while
 * the connection lives on, a handler that closes, EOF after the last request,
 * and refusing to take over a live socket or a file that is not a socket.
 * The server is driven by hand here, as tern-control's loop drives it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "control_server.h"

static char *echo(void *arg, const char *line, size_t len)
{
    int *calls = arg;
    (*calls)++;
    if (len == 5 && memcmp(line, "close", 5) == 0)
        return NULL;
    char *r;
    if (asprintf(&r, "got:%.*s\n", (int)len, line) < 0)
        return NULL;
    return r;
}

/* One turn of the daemon's loop, waiting at most 10 ms. */
static void turn(struct control_server *srv, int *calls)
{
    struct stapler_waitfd fds[1 + CONTROL_SERVER_MAX_CLIENTS];
    struct pollfd p[1 + CONTROL_SERVER_MAX_CLIENTS];
    unsigned n = control_server_fds(srv, fds, 1 + CONTROL_SERVER_MAX_CLIENTS);
    for (unsigned i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i].fd, .events = fds[i].events};
    if (poll(p, n, 10) > 0) {
        for (unsigned i = 0; i < n; i++)
            fds[i].revents = p[i].revents;
        control_server_handle(srv, fds, n, echo, calls);
    }
}

/* Reads from FD (non-blocking) while turning the server, until WANT lines
 * arrived, EOF, or 2 s. Returns the text read; *EOF set if the server
 * closed. */
static char *collect(struct control_server *srv, int fd, int want, int *calls, int *eof)
{
    static char buf[16384];
    size_t n = 0;
    int lines = 0;
    *eof = 0;
    for (int i = 0; i < 200 && lines < want && !*eof; i++) {
        turn(srv, calls);
        ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, MSG_DONTWAIT);
        if (r == 0)
            *eof = 1;
        for (ssize_t k = 0; r > 0 && k < r; k++)
            lines += buf[n + (size_t)k] == '\n';
        if (r > 0)
            n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(void)
{
    char dir[] = "/tmp/tern-server-test-XXXXXX", path[64], err[256];
    int calls = 0, eof;
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/s.sock", dir);

    struct control_server *srv = control_server_open(path, 0600, NULL, err, sizeof(err));
    CHECK(srv != NULL);
    if (srv == NULL) {
        fprintf(stderr, "%s\n", err);
        return check_exit();
    }
    struct stat st;
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600);

    /* A live server's socket is not taken over. */
    CHECK(control_server_open(path, 0600, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "another tern-control answers") != NULL);

    int fd = connect_to(path);
    CHECK(fd >= 0);

    /* Three pipelined requests in one write: three replies, in order. */
    CHECK(write(fd, "a\nb\nc\n", 6) == 6);
    char *out = collect(srv, fd, 3, &calls, &eof);
    CHECK(strcmp(out, "got:a\ngot:b\ngot:c\n") == 0);
    CHECK_EQ_INT(calls, 3);

    /* A line in two writes with a turn in between. */
    CHECK(write(fd, "hel", 3) == 3);
    out = collect(srv, fd, 1, &calls, &eof); /* nothing yet: no newline */
    CHECK(strcmp(out, "") == 0);
    CHECK(write(fd, "lo\r\n", 4) == 4);
    out = collect(srv, fd, 1, &calls, &eof);
    CHECK(strcmp(out, "got:hello\r\n") == 0);

    /* An over-long line: one error reply, the rest of it skipped even across
     * reads, then the connection answers again. */
    static char big[10000];
    memset(big, 'x', sizeof(big));
    size_t sent = 0;
    int before = calls;
    for (int i = 0; i < 200 && sent < sizeof(big); i++) {
        ssize_t w = send(fd, big + sent, sizeof(big) - sent, MSG_DONTWAIT);
        if (w > 0)
            sent += (size_t)w;
        turn(srv, &calls);
    }
    CHECK_EQ_INT(sent, sizeof(big));
    CHECK(write(fd, "\nok\n", 4) == 4);
    out = collect(srv, fd, 2, &calls, &eof);
    CHECK(strncmp(out, "{\"ok\":false,\"error\":\"request longer than 4096 bytes\"}\ngot:ok\n",
                  62) == 0);
    CHECK_EQ_INT(calls - before, 1); /* only "ok" reached the handler */
    CHECK(!eof);

    /* The handler can close a connection (out of memory in the daemon). */
    CHECK(write(fd, "close\n", 6) == 6);
    out = collect(srv, fd, 1, &calls, &eof);
    CHECK(eof);
    close(fd);

    /* A client that half-closes after its request still gets the reply. */
    fd = connect_to(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "last\n", 5) == 5);
    shutdown(fd, SHUT_WR);
    out = collect(srv, fd, 1, &calls, &eof);
    CHECK(strcmp(out, "got:last\n") == 0);
    out = collect(srv, fd, 1, &calls, &eof);
    CHECK(eof);
    close(fd);

    control_server_close(srv);
    CHECK(access(path, F_OK) != 0); /* unlinked */

    /* A stale socket (nobody listening) is replaced... */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    CHECK(bind(stale, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(stale);
    srv = control_server_open(path, 0660, NULL, err, sizeof(err));
    CHECK(srv != NULL);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660);
    control_server_close(srv);

    /* ...a regular file is not. */
    int f = open(path, O_CREAT | O_WRONLY, 0600);
    CHECK(f >= 0);
    close(f);
    CHECK(control_server_open(path, 0600, NULL, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "is not a socket") != NULL);
    CHECK(control_server_open(path, 0600, "no-such-group-tern", err, sizeof(err)) == NULL);
    CHECK(strstr(err, "does not exist") != NULL);
    unlink(path);
    CHECK(rmdir(dir) == 0);
    return check_exit();
}
