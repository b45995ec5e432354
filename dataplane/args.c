/* Command line of tern-dataplane (after EAL's `--`). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "args.h"

void dp_args_usage(const char *prog)
{
    fprintf(stderr,
        "usage: %s [EAL options] -- --addr A.B.C.D/N --listen VIP:PORT\n"
        "           --backend IP:PORT [--backend IP:PORT ...] [options]\n"
        "  --gateway A.B.C.D       default route (else only on-link)\n"
        "  --mtu N                 IP MTU (default 1500)\n"
        "  --mbufs N               mbufs per worker (default 16383)\n"
        "  --max-conns N           TCP connections per worker (default 8192)\n"
        "  --max-pairs N           proxied pairs per worker (default 4000)\n"
        "  --sndbuf N --rcvbuf N   per-connection buffers (power of 2, default 65536)\n"
        "  --syn-backlog N         SYN_RCVD entries before SYN cookies\n"
        "  --idle-timeout-ms N     proxy idle timeout (default 60000, 0 = off)\n"
        "  --ring-size N           steering ring size (default 4096)\n"
        "  --fault-reorder PCT     TEST ONLY: hold back PCT%% of received frames\n"
        "  --fault-dup PCT         TEST ONLY: process PCT%% of received frames twice\n"
        "  --config FILE           tern's YAML file: TLS listeners, certificates,\n"
        "                          staple table, dataplane section (after the flags)\n"
        "The listener VIP is normally --addr's address; every worker lcore gets\n"
        "one rx/tx queue pair (or one port each, for one vdev per queue).\n",
        prog);
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > max)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* "A.B.C.D:PORT" -> host-order address and port. */
static int parse_hostport(const char *s, uint32_t *addr_h, uint16_t *port)
{
    char buf[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, (size_t)(colon - s));
    buf[colon - s] = '\0';
    struct in_addr ia;
    uint32_t p;
    if (inet_pton(AF_INET, buf, &ia) != 1 || parse_u32(colon + 1, 65535, &p) < 0 ||
        p == 0)
        return -EINVAL;
    *addr_h = ntohl(ia.s_addr);
    *port = (uint16_t)p;
    return 0;
}

static int parse_prefix(const char *s, uint32_t *addr, uint32_t *mask)
{
    char buf[32];
    const char *slash = strchr(s, '/');
    uint32_t plen = 32;
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct in_addr ia;
    if (inet_pton(AF_INET, buf, &ia) != 1)
        return -EINVAL;
    if (slash && (parse_u32(slash + 1, 32, &plen) < 0 || plen == 0))
        return -EINVAL;
    *addr = ia.s_addr;
    *mask = htonl(plen == 32 ? 0xffffffffu : ~(0xffffffffu >> plen));
    return 0;
}

int dp_args_parse(int argc, char **argv, struct dp_args *a, char *err,
                  size_t errlen)
{
    enum {
        O_ADDR = 256, O_GW, O_MTU, O_LISTEN, O_BACKEND, O_MBUFS, O_MAXC,
        O_MAXP, O_SND, O_RCV, O_SYNB, O_IDLE, O_RING, O_FREORD, O_FDUP,
        O_CONFIG,
    };
    static const struct option opts[] = {
        {"addr", required_argument, NULL, O_ADDR},
        {"gateway", required_argument, NULL, O_GW},
        {"mtu", required_argument, NULL, O_MTU},
        {"listen", required_argument, NULL, O_LISTEN},
        {"backend", required_argument, NULL, O_BACKEND},
        {"mbufs", required_argument, NULL, O_MBUFS},
        {"max-conns", required_argument, NULL, O_MAXC},
        {"max-pairs", required_argument, NULL, O_MAXP},
        {"sndbuf", required_argument, NULL, O_SND},
        {"rcvbuf", required_argument, NULL, O_RCV},
        {"syn-backlog", required_argument, NULL, O_SYNB},
        {"idle-timeout-ms", required_argument, NULL, O_IDLE},
        {"ring-size", required_argument, NULL, O_RING},
        {"fault-reorder", required_argument, NULL, O_FREORD},
        {"fault-dup", required_argument, NULL, O_FDUP},
        {"config", required_argument, NULL, O_CONFIG},
        {NULL, 0, NULL, 0},
    };
    struct proxy_backend backends[PROXY_MAX_BACKENDS];
    unsigned n_backends = 0;
    int rc = 0;

    memset(a, 0, sizeof(*a));
    a->mtu = 1500;
    a->mbufs_per_worker = 16383;
    a->rx_desc = 1024;
    a->tx_desc = 1024;
    a->ring_size = 4096;
    a->max_conns = 8192;
    a->max_pairs = 4000;
    a->sndbuf = 65536;
    a->rcvbuf = 65536;
    a->idle_timeout_ms = 60000;

    optind = 0; /* restart getopt: argv is EAL's leftover */
    int c;
    while (rc == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        uint32_t v = 0;
        switch (c) {
        case O_ADDR:
            rc = parse_prefix(optarg, &a->addr, &a->mask);
            break;
        case O_GW: {
            struct in_addr ia;
            rc = inet_pton(AF_INET, optarg, &ia) == 1 ? 0 : -EINVAL;
            a->gateway = ia.s_addr;
            break;
        }
        case O_MTU:
            rc = parse_u32(optarg, 9000, &v);
            if (rc == 0 && v < 576)
                rc = -EINVAL;
            a->mtu = (uint16_t)v;
            break;
        case O_LISTEN: {
            if (a->n_listeners == PROXY_MAX_LISTENERS) {
                rc = -EINVAL;
                break;
            }
            struct proxy_listener_cfg *l = &a->listeners[a->n_listeners++];
            rc = parse_hostport(optarg, &l->addr, &l->port);
            break;
        }
        case O_BACKEND:
            if (n_backends == PROXY_MAX_BACKENDS) {
                rc = -EINVAL;
                break;
            }
            rc = parse_hostport(optarg, &backends[n_backends].addr,
                                &backends[n_backends].port);
            n_backends++;
            break;
        case O_MBUFS: rc = parse_u32(optarg, 1u << 24, &a->mbufs_per_worker); break;
        case O_MAXC: rc = parse_u32(optarg, 1u << 20, &a->max_conns); break;
        case O_MAXP: rc = parse_u32(optarg, 1u << 20, &a->max_pairs); break;
        case O_SND: rc = parse_u32(optarg, 1u << 26, &a->sndbuf); break;
        case O_RCV: rc = parse_u32(optarg, 1u << 26, &a->rcvbuf); break;
        case O_SYNB: rc = parse_u32(optarg, 1u << 20, &a->syn_backlog); break;
        case O_IDLE: rc = parse_u32(optarg, 3600000, &a->idle_timeout_ms); break;
        case O_RING: rc = parse_u32(optarg, 1u << 20, &a->ring_size); break;
        case O_FREORD: rc = parse_u32(optarg, 100, &a->fault_reorder_pct); break;
        case O_FDUP: rc = parse_u32(optarg, 100, &a->fault_dup_pct); break;
        case O_CONFIG: a->config_path = optarg; break;
        default:
            snprintf(err, errlen, "unknown option");
            return -EINVAL;
        }
        if (rc < 0) {
            snprintf(err, errlen, "bad value for --%s: '%s'",
                     opts[c - O_ADDR].name, optarg);
            return rc;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return -EINVAL;
    }
    if (a->addr == 0) {
        snprintf(err, errlen, "--addr is required");
        return -EINVAL;
    }
    if (a->n_listeners > 0 && n_backends == 0) {
        snprintf(err, errlen, "--listen needs at least one --backend");
        return -EINVAL;
    }
    if ((a->sndbuf & (a->sndbuf - 1)) || (a->rcvbuf & (a->rcvbuf - 1))) {
        snprintf(err, errlen, "--sndbuf and --rcvbuf must be powers of two");
        return -EINVAL;
    }
    for (unsigned i = 0; i < a->n_listeners; i++) {
        a->listeners[i].n_backends = (uint16_t)n_backends;
        memcpy(a->listeners[i].backends, backends, n_backends * sizeof(backends[0]));
    }
    return 0;
}
