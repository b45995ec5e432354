/* Scalar syntaxes of the configuration: durations, sizes, host:port. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

/* Reads the unsigned decimal at *P; returns -EINVAL if there is none,
 * -ERANGE if it overflows 64 bits. */
static int read_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

static int mul_add(uint64_t *acc, uint64_t v, uint64_t mult)
{
    if (mult != 0 && v > UINT64_MAX / mult)
        return -ERANGE;
    if (*acc > UINT64_MAX - v * mult)
        return -ERANGE;
    *acc += v * mult;
    return 0;
}

int config_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        /* "ms" before "m": the longest unit that matches wins */
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    uint64_t total = 0;
    int groups = 0;

    if (s == NULL || *s == '\0')
        return -EINVAL;
    while (*s != '\0') {
        uint64_t v;
        int rc = read_u64(&s, &v);
        if (rc < 0)
            return rc;
        size_t i, n = sizeof(units) / sizeof(units[0]);
        for (i = 0; i < n; i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && !isalpha((unsigned char)s[l]))
                break;
        }
        if (i == n)
            return -EINVAL; /* no unit, or an unknown one */
        rc = mul_add(&total, v, units[i].ms);
        if (rc < 0)
            return rc;
        s += strlen(units[i].unit);
        groups++;
    }
    *ms = total;
    return groups > 0 ? 0 : -EINVAL;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1}, {"B", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024},
        {"GiB", 1024 * 1024 * 1024}, {"kB", 1000}, {"KB", 1000},
        {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
    };
    uint64_t v;

    if (s == NULL)
        return -EINVAL;
    int rc = read_u64(&s, &v);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].unit) == 0) {
            uint64_t total = 0;
            rc = mul_add(&total, v, units[i].mult);
            if (rc < 0)
                return rc;
            *bytes = total;
            return 0;
        }
    }
    return -EINVAL;
}

int config_parse_hostport(const char *s, struct config_hostport *out)
{
    const char *host, *colon;
    size_t hlen;

    if (s == NULL)
        return -EINVAL;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return -EINVAL;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -EINVAL;
        host = s;
        hlen = (size_t)(colon - s);
        if (memchr(host, ':', hlen) != NULL)
            return -EINVAL; /* a bare IPv6 literal needs brackets */
    }
    if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
        return -EINVAL;

    const char *p = colon + 1;
    uint64_t port;
    if (read_u64(&p, &port) < 0 || *p != '\0' || port == 0 || port > 65535)
        return -EINVAL;

    char buf[INET6_ADDRSTRLEN];
    memcpy(buf, host, hlen);
    buf[hlen] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    int family;
    if (inet_pton(AF_INET, buf, addr) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, buf, addr) == 1)
        family = AF_INET6;
    else
        return -EINVAL;

    char *copy = strdup(buf);
    if (copy == NULL)
        return -ENOMEM;
    out->host = copy;
    out->port = (uint16_t)port;
    out->family = family;
    return 0;
}
