/* ternctl: the command line for tern-control's Unix-socket API.
 *
 * Exit codes: 0 ok; 1 the daemon answered with an error (unknown
 * certificate, reload refused); 2 usage; 3 the daemon cannot be reached or
 * its answer is unreadable. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "ternctl_format.h"

#define DEFAULT_SOCKET "/run/tern/control.sock"
#define EXIT_DAEMON_ERROR 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

/* Largest reply read: `certs` on 100,000 certificates is about 60 MB. */
#define REPLY_MAX (512u << 20)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ternctl [--socket PATH] [--json] [--timeout SECONDS] COMMAND\n"
            "\n"
            "commands:\n"
            "  status              the daemon: certificates by state, fetches, table, reloads\n"
            "  certs               one line per certificate\n"
            "  cert NAME           everything known about one certificate\n"
            "  refresh NAME        fetch NAME's OCSP response now\n"
            "  refresh --all       fetch every certificate's response now\n"
            "  reload              re-read the configuration (refused if it has problems)\n"
            "\n"
            "  -s, --socket PATH   control socket (default $TERN_CONTROL_SOCKET, else "
            DEFAULT_SOCKET ")\n"
            "  -j, --json          print the daemon's JSON reply as it is, one line\n"
            "  -t, --timeout SECS  wait this long for the reply (default 30)\n"
            "\n"
            "exit codes: 0 ok, 1 the daemon reported an error, 2 usage, 3 daemon unreachable\n");
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends REQ and reads one reply line before DEADLINE_MS. Returns the line
 * (NUL-terminated, newline removed; caller frees) or NULL with a message in
 * ERR. */
static char *exchange(int fd, const char *req, int64_t deadline_ms, char *err, size_t errlen)
{
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, errlen, "sending the request: %s", strerror(errno));
            return NULL;
        }
        off += (size_t)w;
    }

    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        char *nl = memchr(buf, '\n', n);
        if (nl != NULL) {
            *nl = '\0';
            return buf;
        }
        int64_t left = deadline_ms - mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            snprintf(err, errlen, "no reply within the timeout");
            break;
        }
        if (n == cap) {
            char *bigger = cap < REPLY_MAX ? realloc(buf, cap * 2) : NULL;
            if (bigger == NULL) {
                snprintf(err, errlen, "reply too large");
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(err, errlen, "%s", r == 0 ? "the daemon closed the connection"
                                               : strerror(errno));
            break;
        }
        n += (size_t)r;
    }
    if (buf == NULL)
        snprintf(err, errlen, "out of memory");
    free(buf);
    return NULL;
}

static void print_errors(const json_t *reply)
{
    size_t i;
    json_t *e;
    fprintf(stderr, "ternctl: %s\n", json_string_value(json_object_get(reply, "error")));
    json_array_foreach(json_object_get(reply, "errors"), i, e)
        fprintf(stderr, "  %s\n", json_string_value(e));
}

/* Prints a successful reply for people. */
static void print_result(enum api_verb verb, const json_t *result)
{
    size_t i;
    json_t *w;

    switch (verb) {
    case API_CERTS:
        ternctl_print_certs(stdout, result);
        break;
    case API_CERT:
        ternctl_print_cert(stdout, result);
        break;
    case API_STATUS:
        ternctl_print_status(stdout, result);
        break;
    case API_REFRESH:
        printf("refresh scheduled for %lld certificate(s)\n",
               (long long)json_integer_value(json_object_get(result, "scheduled")));
        break;
    case API_RELOAD:
        printf("reloaded: %lld certificate(s)\n",
               (long long)json_integer_value(json_object_get(result, "certificates")));
        json_array_foreach(json_object_get(result, "warnings"), i, w)
            printf("warning: %s\n", json_string_value(w));
        break;
    }
}

/* Turns the command words into a request. Returns 0 or -1 (usage). */
static int parse_command(int argc, char **argv, bool all, struct api_request *req)
{
    static const struct {
        const char *word;
        enum api_verb verb;
        int args; /* words after the verb */
    } cmds[] = {
        {"status", API_STATUS, 0}, {"certs", API_CERTS, 0}, {"cert", API_CERT, 1},
        {"refresh", API_REFRESH, 1}, {"reload", API_RELOAD, 0},
    };
    memset(req, 0, sizeof(*req));
    if (argc < 1)
        return -1;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[0], cmds[i].word) != 0)
            continue;
        req->verb = cmds[i].verb;
        if (req->verb == API_REFRESH && all) {
            req->all = true;
            return argc == 1 ? 0 : -1;
        }
        if (all || argc != 1 + cmds[i].args)
            return -1;
        if (cmds[i].args == 1) {
            if (strlen(argv[1]) == 0 || strlen(argv[1]) > API_NAME_MAX)
                return -1;
            strcpy(req->name, argv[1]);
        }
        return 0;
    }
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 't'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = getenv("TERN_CONTROL_SOCKET");
    bool json_out = false, all = false;
    long timeout_s = 30;
    int opt;

    if (path == NULL || *path == '\0')
        path = DEFAULT_SOCKET;
    while ((opt = getopt_long(argc, argv, "s:jt:h", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'j':
            json_out = true;
            break;
        case 't': {
            char *end;
            timeout_s = strtol(optarg, &end, 10);
            if (*end != '\0' || timeout_s < 1 || timeout_s > 3600) {
                fprintf(stderr, "ternctl: --timeout takes 1 to 3600 seconds\n");
                return EXIT_USAGE;
            }
            break;
        }
        case 'a':
            all = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    struct api_request req;
    if (parse_command(argc - optind, argv + optind, all, &req) < 0) {
        usage(stderr);
        return EXIT_USAGE;
    }

    int fd = connect_to(path);
    if (fd < 0) {
        fprintf(stderr, "ternctl: cannot reach tern-control at %s: %s\n", path, strerror(errno));
        return EXIT_UNREACHABLE;
    }
    char *line = api_format_request(&req), err[256];
    char *reply = line ? exchange(fd, line, mono_ms() + timeout_s * 1000, err, sizeof(err)) : NULL;
    if (line == NULL)
        snprintf(err, sizeof(err), "out of memory");
    free(line);
    close(fd);
    if (reply == NULL) {
        fprintf(stderr, "ternctl: %s: %s\n", path, err);
        return EXIT_UNREACHABLE;
    }

    json_error_t jerr;
    json_t *o = json_loads(reply, 0, &jerr);
    json_t *ok = o ? json_object_get(o, "ok") : NULL;
    if (!json_is_boolean(ok)) {
        fprintf(stderr, "ternctl: unreadable reply from %s: %.200s\n", path, reply);
        free(reply);
        json_decref(o);
        return EXIT_UNREACHABLE;
    }
    int rc = json_is_true(ok) ? 0 : EXIT_DAEMON_ERROR;
    if (json_out)
        printf("%s\n", reply);
    else if (rc == 0)
        print_result(req.verb, json_object_get(o, "result"));
    else
        print_errors(o);
    free(reply);
    json_decref(o);
    return rc;
}
