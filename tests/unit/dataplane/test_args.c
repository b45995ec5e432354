/* Unit tests of tern-dataplane's command line. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "check.h"
#include "dataplane/args.h"

#define ARGV(...) (char *[]){"x", __VA_ARGS__, NULL}
#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static int parse(int argc, char **argv, struct dp_args *a)
{
    char err[256];
    return dp_args_parse(argc, argv, a, err, sizeof(err));
}

int main(void)
{
    struct dp_args a;
    char **v = ARGV("--addr", "198.18.0.1/24", "--listen", "198.18.0.1:80",
                    "--backend", "198.18.1.2:8080", "--backend", "198.18.1.3:8081",
                    "--gateway", "198.18.0.254", "--fault-dup", "5");
    CHECK_EQ_INT(parse(13, v, &a), 0);
    CHECK_EQ_INT(ntohl(a.addr), 0xc6120001);
    CHECK_EQ_INT(ntohl(a.mask), 0xffffff00u);
    CHECK_EQ_INT(ntohl(a.gateway), 0xc61200fe);
    CHECK_EQ_INT(a.n_listeners, 1);
    CHECK_EQ_INT(a.listeners[0].port, 80);
    CHECK_EQ_INT(a.listeners[0].addr, 0xc6120001);
    CHECK_EQ_INT(a.listeners[0].n_backends, 2);
    CHECK_EQ_INT(a.listeners[0].backends[1].port, 8081);
    CHECK_EQ_INT(a.fault_dup_pct, 5);
    CHECK_EQ_INT(a.mtu, 1500);

    char **bad1 = ARGV("--addr", "198.18.0.300/24");
    CHECK_EQ_INT(parse(3, bad1, &a), -EINVAL);
    char **bad2 = ARGV("--addr", "198.18.0.1/24", "--listen", "198.18.0.1:80");
    CHECK_EQ_INT(parse(5, bad2, &a), -EINVAL); /* no backend */
    char **bad3 = ARGV("--addr", "198.18.0.1/33");
    CHECK_EQ_INT(parse(3, bad3, &a), -EINVAL);
    char **bad4 = ARGV("--addr", "198.18.0.1/24", "--sndbuf", "1000");
    CHECK_EQ_INT(parse(5, bad4, &a), -EINVAL);
    char **bad5 = ARGV("--listen", "198.18.0.1:80", "--backend", "1.2.3.4:5");
    CHECK_EQ_INT(parse(5, bad5, &a), -EINVAL); /* no --addr */
    char **bad6 = ARGV("--addr", "198.18.0.1/24", "--fault-dup", "101");
    CHECK_EQ_INT(parse(5, bad6, &a), -EINVAL);
    char **bad7 = ARGV("--addr", "198.18.0.1/24", "stray");
    CHECK_EQ_INT(parse(4, bad7, &a), -EINVAL);
    char **ok = ARGV("--addr", "10.0.0.1");
    CHECK_EQ_INT(parse(3, ok, &a), 0);
    CHECK_EQ_INT(ntohl(a.mask), 0xffffffffu);
    return check_exit();
}
