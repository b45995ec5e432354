/* The configuration schema: walks the YAML tree (config_yaml.c), fills a
 * struct config, applies defaults, and records every problem it finds.
 *
 * Each section is a table of fields (key, kind, offset in the target struct,
 * bounds); one generic walker handles unknown keys, duplicates, wrong types
 * and missing keys, so every section reports problems the same way. After
 * the walk, cross-references (listener -> pool, listener -> certificate,
 * unique names) are checked against the whole file. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_pvt.h"

/* Largest file accepted: 100,000 certificates at ~200 bytes each fit. */
#define CONFIG_MAX_FILE (64u << 20)

struct walk {
    const char *file;
    char *base; /* folder relative paths are taken from, or NULL */
    struct config_diag *diag;
    unsigned flags;
    struct config *cfg;
};

#define PROBLEM(w, node, ...) \
    config_diag_add((w)->diag, (w)->file, (node)->line, (node)->col, __VA_ARGS__)

enum field_kind {
    F_STR,      /* char * */
    F_PATH,     /* char *, relative to the file's folder */
    F_BOOL,     /* bool */
    F_U32,      /* uint32_t in [min, max] */
    F_PORT,     /* uint16_t, 1..65535 */
    F_DURATION, /* uint64_t ms in [min, max] */
    F_SIZE,     /* uint64_t bytes in [min, max] */
    F_FRACTION, /* double in [dmin, dmax] */
    F_MODE,     /* uint32_t, octal permission bits */
    F_ADDR,     /* struct config_hostport: host and family only */
    F_HOSTPORT, /* struct config_hostport */
    F_STRLIST,  /* char ** at off, size_t at off_n */
    F_HOSTLIST, /* struct config_hostport * at off, size_t at off_n */
    F_CUSTOM,   /* fn */
};

struct field;
typedef void field_fn(struct walk *w, const struct cy_node *v, void *target,
                      const struct field *f);

struct field {
    const char *key;
    enum field_kind kind;
    size_t off;
    bool required;
    uint64_t min, max;
    double dmin, dmax;
    size_t off_n;
    field_fn *fn;
};

static const char *kind_name(const struct cy_node *n)
{
    switch (n->kind) {
    case CY_SEQ:
        return "a list";
    case CY_MAP:
        return "a mapping";
    default:
        return n->plain && n->len == 0 ? "nothing" : "a scalar";
    }
}

/* A scalar with text, or a problem naming what was expected. */
static const char *want_scalar(struct walk *w, const struct cy_node *v, const char *key,
                               const char *expected)
{
    if (v->kind != CY_SCALAR || (v->plain && v->len == 0)) {
        PROBLEM(w, v, "'%s': expected %s, found %s", key, expected, kind_name(v));
        return NULL;
    }
    if (strlen(v->str) != v->len) {
        PROBLEM(w, v, "'%s': expected %s, found a string with a NUL byte", key, expected);
        return NULL;
    }
    return v->str;
}

static char *dup_or_flag(struct walk *w, const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        config_diag_add(w->diag, w->file, 0, 0, "out of memory");
    return d;
}

static char *make_path(struct walk *w, const char *s)
{
    if (s[0] == '/' || w->base == NULL)
        return dup_or_flag(w, s);
    char *p;
    if (asprintf(&p, "%s/%s", w->base, s) < 0) {
        config_diag_add(w->diag, w->file, 0, 0, "out of memory");
        return NULL;
    }
    return p;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"true", "yes", "on"}, *no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0)
            return *out = true, 0;
        if (strcmp(s, no[i]) == 0)
            return *out = false, 0;
    }
    return -EINVAL;
}

static int parse_u64_dec(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    return 0;
}

static void free_hostport(struct config_hostport *h)
{
    free(h->host);
    h->host = NULL;
}

static void set_strlist(struct walk *w, const struct cy_node *v, void *target,
                        const struct field *f)
{
    char ***list = (char ***)((char *)target + f->off);
    size_t *count = (size_t *)((char *)target + f->off_n);

    if (v->kind != CY_SEQ) {
        PROBLEM(w, v, "'%s': expected a list of strings, found %s", f->key, kind_name(v));
        return;
    }
    char **out = calloc(v->n ? v->n : 1, sizeof(*out));
    if (out == NULL) {
        config_diag_add(w->diag, w->file, 0, 0, "out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        const char *s = want_scalar(w, v->items[i], f->key, "a string");
        if (s != NULL && (out[k] = dup_or_flag(w, s)) != NULL)
            k++;
    }
    *list = out;
    *count = k;
}

static void set_hostlist(struct walk *w, const struct cy_node *v, void *target,
                         const struct field *f)
{
    struct config_hostport **list = (struct config_hostport **)((char *)target + f->off);
    size_t *count = (size_t *)((char *)target + f->off_n);

    if (v->kind != CY_SEQ || v->n == 0) {
        PROBLEM(w, v, "'%s': expected a non-empty list of ADDRESS:PORT, found %s",
                f->key, v->kind == CY_SEQ ? "an empty list" : kind_name(v));
        return;
    }
    struct config_hostport *out = calloc(v->n, sizeof(*out));
    if (out == NULL) {
        config_diag_add(w->diag, w->file, 0, 0, "out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < v->n; i++) {
        const char *s = want_scalar(w, v->items[i], f->key, "ADDRESS:PORT");
        if (s == NULL)
            continue;
        if (config_parse_hostport(s, &out[k]) == 0)
            k++;
        else
            PROBLEM(w, v->items[i],
                    "'%s': expected ADDRESS:PORT with a numeric address "
                    "(127.0.0.1:8080, [::1]:8080), found '%s'", f->key, s);
    }
    *list = out;
    *count = k;
}

/* Stores the scalar V into TARGET as field F says. */
static void set_field(struct walk *w, const struct cy_node *v, void *target,
                      const struct field *f)
{
    void *dst = (char *)target + f->off;
    const char *s;
    uint64_t u;
    int rc;

    switch (f->kind) {
    case F_CUSTOM:
        f->fn(w, v, target, f);
        return;
    case F_STRLIST:
        set_strlist(w, v, target, f);
        return;
    case F_HOSTLIST:
        set_hostlist(w, v, target, f);
        return;
    case F_STR:
    case F_PATH:
        if ((s = want_scalar(w, v, f->key, f->kind == F_PATH ? "a path" : "a string")) == NULL)
            return;
        free(*(char **)dst);
        *(char **)dst = f->kind == F_PATH ? make_path(w, s) : dup_or_flag(w, s);
        return;
    case F_BOOL:
        if ((s = want_scalar(w, v, f->key, "true or false")) == NULL)
            return;
        if (parse_bool(s, (bool *)dst) < 0)
            PROBLEM(w, v, "'%s': expected true or false, found '%s'", f->key, s);
        return;
    case F_U32:
    case F_PORT:
        if ((s = want_scalar(w, v, f->key, "an integer")) == NULL)
            return;
        uint64_t lo = f->kind == F_PORT ? 1 : f->min, hi = f->kind == F_PORT ? 65535 : f->max;
        rc = parse_u64_dec(s, &u);
        if (rc < 0 || u < lo || u > hi) {
            PROBLEM(w, v, "'%s': expected an integer from %llu to %llu, found '%s'", f->key,
                    (unsigned long long)lo, (unsigned long long)hi, s);
            return;
        }
        if (f->kind == F_PORT)
            *(uint16_t *)dst = (uint16_t)u;
        else
            *(uint32_t *)dst = (uint32_t)u;
        return;
    case F_DURATION:
        if ((s = want_scalar(w, v, f->key, "a duration")) == NULL)
            return;
        if (config_parse_duration(s, &u) < 0) {
            PROBLEM(w, v, "'%s': expected a duration with a unit (500ms, 30s, 5m, 2h, 1d), "
                    "found '%s'", f->key, s);
            return;
        }
        if (u < f->min || u > f->max) {
            PROBLEM(w, v, "'%s': %s is out of range; expected from %llums to %llums", f->key,
                    s, (unsigned long long)f->min, (unsigned long long)f->max);
            return;
        }
        *(uint64_t *)dst = u;
        return;
    case F_SIZE:
        if ((s = want_scalar(w, v, f->key, "a size")) == NULL)
            return;
        if (config_parse_size(s, &u) < 0) {
            PROBLEM(w, v, "'%s': expected a size (4096, 64KiB, 1MiB), found '%s'", f->key, s);
            return;
        }
        if (u < f->min || u > f->max) {
            PROBLEM(w, v, "'%s': %s is out of range; expected from %llu to %llu bytes",
                    f->key, s, (unsigned long long)f->min, (unsigned long long)f->max);
            return;
        }
        *(uint64_t *)dst = u;
        return;
    case F_FRACTION: {
        if ((s = want_scalar(w, v, f->key, "a number")) == NULL)
            return;
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (end == s || *end != '\0' || errno != 0 || !isfinite(d) || d < f->dmin ||
            d > f->dmax) {
            PROBLEM(w, v, "'%s': expected a number from %g to %g, found '%s'", f->key,
                    f->dmin, f->dmax, s);
            return;
        }
        *(double *)dst = d;
        return;
    }
    case F_MODE: {
        if ((s = want_scalar(w, v, f->key, "an octal mode")) == NULL)
            return;
        char *end;
        errno = 0;
        unsigned long m = strtoul(s, &end, 8);
        if (*s < '0' || *s > '7' || *end != '\0' || errno != 0 || m > 0777) {
            PROBLEM(w, v, "'%s': expected an octal permission mode such as 0660, found '%s'",
                    f->key, s);
            return;
        }
        *(uint32_t *)dst = (uint32_t)m;
        return;
    }
    case F_ADDR:
    case F_HOSTPORT: {
        struct config_hostport *hp = dst, tmp;
        bool addr_only = f->kind == F_ADDR;
        if ((s = want_scalar(w, v, f->key, addr_only ? "an address" : "ADDRESS:PORT")) == NULL)
            return;
        char *joined = NULL;
        if (addr_only && asprintf(&joined, strchr(s, ':') ? "[%s]:1" : "%s:1", s) < 0) {
            config_diag_add(w->diag, w->file, 0, 0, "out of memory");
            return;
        }
        rc = config_parse_hostport(addr_only ? joined : s, &tmp);
        free(joined);
        if (rc < 0) {
            PROBLEM(w, v, addr_only
                    ? "'%s': expected a numeric IPv4 or IPv6 address, found '%s'"
                    : "'%s': expected ADDRESS:PORT with a numeric address "
                      "(127.0.0.1:9477, [::1]:9477), found '%s'", f->key, s);
            return;
        }
        free_hostport(hp);
        hp->host = tmp.host;
        hp->family = tmp.family;
        if (!addr_only)
            hp->port = tmp.port;
        return;
    }
    }
}

/* Walks the mapping V against FIELDS (N of them) into TARGET. WHAT names the
 * mapping in messages ("listener", "stapler"). */
static void walk_map(struct walk *w, const struct cy_node *v, const struct field *fields,
                     size_t n, void *target, const char *what)
{
    bool seen[32] = {false};

    if (n > sizeof(seen) / sizeof(seen[0]))
        abort(); /* a field table longer than seen[]: a programming error */
    if (v->kind != CY_MAP) {
        PROBLEM(w, v, "%s: expected a mapping of keys, found %s", what, kind_name(v));
        return;
    }
    for (size_t i = 0; i + 1 < v->n; i += 2) {
        const struct cy_node *k = v->items[i], *val = v->items[i + 1];
        if (k->kind != CY_SCALAR) {
            PROBLEM(w, k, "%s: expected a key, found %s", what, kind_name(k));
            continue;
        }
        size_t j;
        for (j = 0; j < n; j++)
            if (strcmp(fields[j].key, k->str) == 0)
                break;
        if (j == n) {
            char expected[512] = "";
            size_t off = 0;
            for (size_t e = 0; e < n && off < sizeof(expected); e++)
                off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s%s",
                                        e ? ", " : "", fields[e].key);
            PROBLEM(w, k, "unknown key '%s' in %s; expected one of: %s", k->str, what,
                    expected);
            continue;
        }
        if (seen[j]) {
            PROBLEM(w, k, "'%s' given twice in %s", k->str, what);
            continue;
        }
        seen[j] = true;
        set_field(w, val, target, &fields[j]);
    }
    for (size_t j = 0; j < n; j++)
        if (fields[j].required && !seen[j])
            PROBLEM(w, v, "%s: missing required key '%s'", what, fields[j].key);
}

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define MS(x) ((uint64_t)(x))
#define SEC(x) ((uint64_t)(x) * 1000)
#define DAY SEC(86400)

/* ---- certificates ---- */

static void set_policy(struct walk *w, const struct cy_node *v, void *target,
                       const struct field *f)
{
    static const char *names[] = {"lenient", "strict", "must-staple"};
    const char *s = want_scalar(w, v, f->key, "lenient, strict or must-staple");
    if (s == NULL)
        return;
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *(enum config_policy *)((char *)target + f->off) = (enum config_policy)i;
            return;
        }
    }
    PROBLEM(w, v, "'%s': expected lenient, strict or must-staple, found '%s'", f->key, s);
}

const char *config_policy_name(enum config_policy p)
{
    switch (p) {
    case CONFIG_POLICY_STRICT:
        return "strict";
    case CONFIG_POLICY_MUST_STAPLE:
        return "must-staple";
    default:
        return "lenient";
    }
}

/* A DNS name as TLS clients send it in SNI: labels of letters, digits, '-'
 * and '_', at most 253 bytes, and a leading "*." for a wildcard. */
static bool sni_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > 253)
        return false;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)*s) || *s == '-' || *s == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

static void set_sni_names(struct walk *w, const struct cy_node *v, void *target,
                          const struct field *f)
{
    set_strlist(w, v, target, f);
    if (v->kind != CY_SEQ)
        return;
    /* The nodes, not the copies: they carry the positions. */
    for (size_t i = 0; i < v->n; i++) {
        const struct cy_node *it = v->items[i];
        if (it->kind == CY_SCALAR && it->len > 0 && strlen(it->str) == it->len &&
            !sni_name_ok(it->str))
            PROBLEM(w, it, "'%s': expected a DNS name such as www.example.com or "
                    "*.example.com, found '%s'", f->key, it->str);
    }
}

static const struct field cert_fields[] = {
    {.key = "name", .kind = F_STR, .off = offsetof(struct config_cert, name), .required = true},
    {.key = "chain", .kind = F_PATH, .off = offsetof(struct config_cert, chain), .required = true},
    {.key = "key", .kind = F_PATH, .off = offsetof(struct config_cert, key), .required = true},
    {.key = "issuer", .kind = F_PATH, .off = offsetof(struct config_cert, issuer)},
    {.key = "policy", .kind = F_CUSTOM, .off = offsetof(struct config_cert, policy),
     .fn = set_policy},
    {.key = "ocsp_url", .kind = F_STR, .off = offsetof(struct config_cert, ocsp_url)},
    {.key = "names", .kind = F_CUSTOM, .off = offsetof(struct config_cert, names),
     .off_n = offsetof(struct config_cert, n_names), .fn = set_sni_names},
};

/* A `directory:` entry: its options apply to every pair found in it. */
struct config_dir_entry {
    char *directory;
    char *issuer;
    enum config_policy policy;
};

static const struct field dir_fields[] = {
    {.key = "directory", .kind = F_PATH, .off = offsetof(struct config_dir_entry, directory),
     .required = true},
    {.key = "issuer", .kind = F_PATH, .off = offsetof(struct config_dir_entry, issuer)},
    {.key = "policy", .kind = F_CUSTOM, .off = offsetof(struct config_dir_entry, policy),
     .fn = set_policy},
};

static void free_cert(struct config_cert *c)
{
    free(c->name);
    free(c->chain);
    free(c->key);
    free(c->issuer);
    free(c->ocsp_url);
    for (size_t i = 0; i < c->n_names; i++)
        free(c->names[i]);
    free(c->names);
}

static struct config_cert *push_cert(struct walk *w, size_t *cap)
{
    struct config *cfg = w->cfg;
    if (cfg->n_certs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct config_cert *v = realloc(cfg->certs, ncap * sizeof(*v));
        if (v == NULL) {
            config_diag_add(w->diag, w->file, 0, 0, "out of memory");
            return NULL;
        }
        cfg->certs = v;
        *cap = ncap;
    }
    struct config_cert *c = &cfg->certs[cfg->n_certs++];
    memset(c, 0, sizeof(*c));
    return c;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t l = strlen(s), m = strlen(suffix);
    return l > m && strcmp(s + l - m, suffix) == 0;
}

/* Every NAME.key in the folder with a NAME.pem or NAME.crt beside it becomes
 * a certificate named NAME; the folder is read in name order so that the
 * result does not depend on the file system. */
static void expand_dir(struct walk *w, const struct cy_node *v,
                       const struct config_dir_entry *d, size_t *cap)
{
    struct dirent **list;
    int n = scandir(d->directory, &list, NULL, alphasort);
    if (n < 0) {
        PROBLEM(w, v, "directory '%s': %s", d->directory, strerror(errno));
        return;
    }
    int found = 0;
    for (int i = 0; i < n; i++) {
        const char *fn = list[i]->d_name;
        if (!has_suffix(fn, ".key"))
            continue;
        size_t stem = strlen(fn) - 4;
        char *chain = NULL;
        static const char *exts[] = {".pem", ".crt"};
        for (int e = 0; e < 2 && chain == NULL; e++) {
            char *p;
            if (asprintf(&p, "%s/%.*s%s", d->directory, (int)stem, fn, exts[e]) < 0)
                break;
            if (access(p, F_OK) == 0)
                chain = p;
            else
                free(p);
        }
        if (chain == NULL) {
            PROBLEM(w, v, "directory '%s': key '%s' has no matching %.*s.pem or %.*s.crt",
                    d->directory, fn, (int)stem, fn, (int)stem, fn);
            continue;
        }
        struct config_cert *c = push_cert(w, cap);
        if (c == NULL) {
            free(chain);
            break;
        }
        c->chain = chain;
        c->line = v->line;
        c->col = v->col;
        c->policy = d->policy;
        if (asprintf(&c->name, "%.*s", (int)stem, fn) < 0 ||
            asprintf(&c->key, "%s/%s", d->directory, fn) < 0 ||
            (d->issuer && (c->issuer = strdup(d->issuer)) == NULL))
            config_diag_add(w->diag, w->file, 0, 0, "out of memory");
        found++;
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    if (found == 0)
        PROBLEM(w, v, "directory '%s' holds no NAME.key with NAME.pem or NAME.crt",
                d->directory);
}

static bool map_has_key(const struct cy_node *v, const char *key)
{
    for (size_t i = 0; v->kind == CY_MAP && i + 1 < v->n; i += 2)
        if (v->items[i]->kind == CY_SCALAR && strcmp(v->items[i]->str, key) == 0)
            return true;
    return false;
}

/* Certificate names become file names in the staple cache and words in the
 * CLI: keep them to a safe alphabet. */
static bool name_ok(const char *s)
{
    if (*s == '\0' || *s == '.' || strlen(s) > 128)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

static void walk_certs(struct walk *w, const struct cy_node *v)
{
    size_t cap = 0;
    if (v->kind != CY_SEQ) {
        PROBLEM(w, v, "'certificates': expected a list, found %s", kind_name(v));
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const struct cy_node *item = v->items[i];
        if (map_has_key(item, "directory")) {
            struct config_dir_entry d = {0};
            size_t before = w->diag->n;
            walk_map(w, item, dir_fields, NFIELDS(dir_fields), &d, "certificates directory entry");
            if (w->diag->n == before && d.directory && (w->flags & CONFIG_EXPAND_DIRS))
                expand_dir(w, item, &d, &cap);
            free(d.directory);
            free(d.issuer);
            continue;
        }
        struct config_cert *c = push_cert(w, &cap);
        if (c == NULL)
            return;
        c->line = item->line;
        c->col = item->col;
        walk_map(w, item, cert_fields, NFIELDS(cert_fields), c, "certificate");
        if (c->name && !name_ok(c->name))
            PROBLEM(w, item, "certificate name '%s': expected letters, digits, '.', '_' "
                    "or '-', not starting with '.'", c->name);
    }
}

/* ---- listeners ---- */

static void set_tls_version(struct walk *w, const struct cy_node *v, void *target,
                            const struct field *f)
{
    const char *s = want_scalar(w, v, f->key, "\"1.2\" or \"1.3\"");
    if (s == NULL)
        return;
    int *dst = (int *)((char *)target + f->off);
    if (strcmp(s, "1.2") == 0)
        *dst = 0x0303;
    else if (strcmp(s, "1.3") == 0)
        *dst = 0x0304;
    else
        PROBLEM(w, v, "'%s': expected \"1.2\" or \"1.3\", found '%s'", f->key, s);
}

static const struct field tls_fields[] = {
    {.key = "min_version", .kind = F_CUSTOM, .off = offsetof(struct config_tls, min_version),
     .fn = set_tls_version},
    {.key = "ciphersuites", .kind = F_STR, .off = offsetof(struct config_tls, ciphersuites)},
    {.key = "ciphers", .kind = F_STR, .off = offsetof(struct config_tls, ciphers)},
    {.key = "tickets", .kind = F_U32, .off = offsetof(struct config_tls, tickets), .max = 16},
    {.key = "ticket_key_file", .kind = F_PATH,
     .off = offsetof(struct config_tls, ticket_key_file)},
    {.key = "ticket_rotation", .kind = F_DURATION,
     .off = offsetof(struct config_tls, ticket_rotation_ms), .min = SEC(60), .max = 7 * DAY},
};

static void set_tls(struct walk *w, const struct cy_node *v, void *target,
                    const struct field *f)
{
    walk_map(w, v, tls_fields, NFIELDS(tls_fields), (char *)target + f->off, "listener tls");
}

static const struct field listener_fields[] = {
    {.key = "name", .kind = F_STR, .off = offsetof(struct config_listener, name),
     .required = true},
    {.key = "address", .kind = F_ADDR, .off = offsetof(struct config_listener, addr),
     .required = true},
    {.key = "port", .kind = F_PORT,
     .off = offsetof(struct config_listener, addr) + offsetof(struct config_hostport, port),
     .required = true},
    {.key = "backend", .kind = F_STR, .off = offsetof(struct config_listener, backend),
     .required = true},
    {.key = "alpn", .kind = F_STRLIST, .off = offsetof(struct config_listener, alpn),
     .off_n = offsetof(struct config_listener, n_alpn)},
    {.key = "default_certificate", .kind = F_STR,
     .off = offsetof(struct config_listener, default_cert)},
    {.key = "proxy_protocol", .kind = F_BOOL,
     .off = offsetof(struct config_listener, proxy_protocol)},
    {.key = "tls", .kind = F_CUSTOM, .off = offsetof(struct config_listener, tls),
     .fn = set_tls},
};

static void listener_defaults(struct config_listener *l)
{
    l->tls.min_version = 0x0303;
    l->tls.tickets = 1;
    l->tls.ticket_rotation_ms = SEC(3600);
}

/* ---- backends ---- */

static void set_balance(struct walk *w, const struct cy_node *v, void *target,
                        const struct field *f)
{
    const char *s = want_scalar(w, v, f->key, "round-robin or least-conn");
    if (s == NULL)
        return;
    enum config_balance *dst = (enum config_balance *)((char *)target + f->off);
    if (strcmp(s, "round-robin") == 0)
        *dst = CONFIG_BALANCE_ROUND_ROBIN;
    else if (strcmp(s, "least-conn") == 0)
        *dst = CONFIG_BALANCE_LEAST_CONN;
    else
        PROBLEM(w, v, "'%s': expected round-robin or least-conn, found '%s'", f->key, s);
}

static const struct field health_fields[] = {
    {.key = "interval", .kind = F_DURATION, .off = offsetof(struct config_pool, health_interval_ms),
     .min = MS(100), .max = DAY},
    {.key = "timeout", .kind = F_DURATION, .off = offsetof(struct config_pool, health_timeout_ms),
     .min = MS(10), .max = SEC(3600)},
};

static void set_health(struct walk *w, const struct cy_node *v, void *target,
                       const struct field *f)
{
    (void)f;
    walk_map(w, v, health_fields, NFIELDS(health_fields), target, "health_check");
}

static const struct field pool_fields[] = {
    {.key = "name", .kind = F_STR, .off = offsetof(struct config_pool, name), .required = true},
    {.key = "balance", .kind = F_CUSTOM, .off = offsetof(struct config_pool, balance),
     .fn = set_balance},
    {.key = "servers", .kind = F_HOSTLIST, .off = offsetof(struct config_pool, servers),
     .off_n = offsetof(struct config_pool, n_servers), .required = true},
    {.key = "health_check", .kind = F_CUSTOM, .fn = set_health},
    {.key = "max_conns", .kind = F_U32, .off = offsetof(struct config_pool, max_conns),
     .max = 10000000},
};

static void pool_defaults(struct config_pool *p)
{
    p->balance = CONFIG_BALANCE_ROUND_ROBIN;
    p->health_interval_ms = SEC(5);
    p->health_timeout_ms = SEC(2);
}

/* Walks a list section whose items are mappings of FIELDS, each ITEM_SIZE
 * bytes, into a freshly allocated array. */
static void *walk_list(struct walk *w, const struct cy_node *v, const char *section,
                       const struct field *fields, size_t nfields, size_t item_size,
                       size_t line_off, void (*defaults)(void *), const char *what,
                       size_t *count)
{
    if (v->kind != CY_SEQ) {
        PROBLEM(w, v, "'%s': expected a list, found %s", section, kind_name(v));
        return NULL;
    }
    char *arr = calloc(v->n ? v->n : 1, item_size);
    if (arr == NULL) {
        config_diag_add(w->diag, w->file, 0, 0, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < v->n; i++) {
        char *item = arr + i * item_size;
        defaults(item);
        /* line, then col: the two unsigned at LINE_OFF */
        unsigned pos[2] = {v->items[i]->line, v->items[i]->col};
        memcpy(item + line_off, pos, sizeof(pos));
        walk_map(w, v->items[i], fields, nfields, item, what);
    }
    *count = v->n;
    return arr;
}

static void listener_defaults_v(void *p) { listener_defaults(p); }
static void pool_defaults_v(void *p) { pool_defaults(p); }

/* ---- the single-mapping sections ---- */

static const struct field stapler_fields[] = {
    {.key = "cache_dir", .kind = F_PATH, .off = offsetof(struct config_stapler, cache_dir)},
    {.key = "refresh_fraction", .kind = F_FRACTION,
     .off = offsetof(struct config_stapler, refresh_fraction), .dmin = 0.05, .dmax = 0.95},
    {.key = "jitter", .kind = F_FRACTION, .off = offsetof(struct config_stapler, jitter),
     .dmin = 0.0, .dmax = 0.45},
    {.key = "backoff_min", .kind = F_DURATION, .off = offsetof(struct config_stapler, backoff_min_ms),
     .min = SEC(1), .max = DAY},
    {.key = "backoff_max", .kind = F_DURATION, .off = offsetof(struct config_stapler, backoff_max_ms),
     .min = SEC(1), .max = 7 * DAY},
    {.key = "connect_timeout", .kind = F_DURATION,
     .off = offsetof(struct config_stapler, connect_timeout_ms), .min = MS(100), .max = SEC(600)},
    {.key = "total_timeout", .kind = F_DURATION,
     .off = offsetof(struct config_stapler, total_timeout_ms), .min = MS(100), .max = SEC(600)},
    {.key = "max_response_bytes", .kind = F_SIZE,
     .off = offsetof(struct config_stapler, max_response_bytes), .min = 512, .max = 1u << 20},
    {.key = "per_responder_concurrency", .kind = F_U32,
     .off = offsetof(struct config_stapler, per_responder_concurrency), .min = 1, .max = 1024},
    {.key = "clock_skew", .kind = F_DURATION, .off = offsetof(struct config_stapler, clock_skew_ms),
     .min = 0, .max = SEC(3600)},
    {.key = "must_staple_warning", .kind = F_DURATION,
     .off = offsetof(struct config_stapler, must_staple_warning_ms), .min = SEC(60), .max = 30 * DAY},
};

static const struct field table_fields[] = {
    {.key = "shm_name", .kind = F_STR, .off = offsetof(struct config_table, shm_name)},
    {.key = "capacity", .kind = F_U32, .off = offsetof(struct config_table, capacity), .min = 1,
     .max = 10000000},
};

static const struct field control_fields[] = {
    {.key = "socket", .kind = F_PATH, .off = offsetof(struct config_control, socket)},
    {.key = "socket_mode", .kind = F_MODE, .off = offsetof(struct config_control, socket_mode)},
    {.key = "socket_group", .kind = F_STR, .off = offsetof(struct config_control, socket_group)},
};

static const struct field metrics_fields[] = {
    {.key = "enabled", .kind = F_BOOL, .off = offsetof(struct config_metrics, enabled)},
    {.key = "listen", .kind = F_HOSTPORT, .off = offsetof(struct config_metrics, listen)},
};

static const struct field dataplane_fields[] = {
    {.key = "workers", .kind = F_U32, .off = offsetof(struct config_dataplane, workers), .min = 1,
     .max = 128},
    {.key = "mbufs", .kind = F_U32, .off = offsetof(struct config_dataplane, mbufs), .min = 512,
     .max = 1u << 24},
    {.key = "flows_per_worker", .kind = F_U32,
     .off = offsetof(struct config_dataplane, flows_per_worker), .min = 16, .max = 1u << 24},
    {.key = "handshake_timeout", .kind = F_DURATION,
     .off = offsetof(struct config_dataplane, handshake_timeout_ms), .min = MS(100), .max = SEC(600)},
    {.key = "idle_timeout", .kind = F_DURATION,
     .off = offsetof(struct config_dataplane, idle_timeout_ms), .min = SEC(1), .max = DAY},
    {.key = "backend_idle_timeout", .kind = F_DURATION,
     .off = offsetof(struct config_dataplane, backend_idle_timeout_ms), .min = SEC(1), .max = DAY},
};

/* Defaults for everything an operator may omit; README.md lists them. */
static int config_defaults(struct config *c)
{
    c->stapler = (struct config_stapler){
        .refresh_fraction = 0.5,
        .jitter = 0.05,
        .backoff_min_ms = SEC(5),
        .backoff_max_ms = SEC(600),
        .connect_timeout_ms = SEC(5),
        .total_timeout_ms = SEC(15),
        .max_response_bytes = 64 * 1024,
        .per_responder_concurrency = 4,
        .clock_skew_ms = SEC(300),
        .must_staple_warning_ms = DAY,
    };
    c->table.capacity = 65536;
    c->control.socket_mode = 0660;
    c->metrics.enabled = true;
    c->metrics.listen.port = 9477;
    c->metrics.listen.family = AF_INET;
    c->dataplane = (struct config_dataplane){
        .workers = 1,
        .mbufs = 16384,
        .flows_per_worker = 65536,
        .handshake_timeout_ms = SEC(10),
        .idle_timeout_ms = SEC(60),
        .backend_idle_timeout_ms = SEC(60),
    };
    c->stapler.cache_dir = strdup("/var/cache/tern/staples");
    c->table.shm_name = strdup("/tern-staples");
    c->control.socket = strdup("/run/tern/control.sock");
    c->metrics.listen.host = strdup("127.0.0.1");
    if (!c->stapler.cache_dir || !c->table.shm_name || !c->control.socket ||
        !c->metrics.listen.host)
        return -ENOMEM;
    return 0;
}

/* ---- checks across sections ---- */

/* A name and where it was written, for the checks below. */
struct named {
    const char *name;
    const char *owner; /* the certificate an SNI name belongs to */
    unsigned line, col;
    size_t order;      /* position in the file, to report the later one */
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcasecmp(x->name, y->name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Sorted, then neighbours compared: O(n log n), since a file may list
 * 100,000 certificates. Names compare without case (SNI names are DNS
 * names, and two certificates named "www" and "WWW" would share a cache
 * file on a case-insensitive file system). Each repeat is reported at its
 * own position. Takes V (K entries). */
static void report_repeats(struct walk *w, struct named *v, size_t k, const char *what)
{
    qsort(v, k, sizeof(*v), cmp_named);
    for (size_t i = 1; i < k; i++) {
        if (strcasecmp(v[i - 1].name, v[i].name) != 0)
            continue;
        if (v[i].owner != NULL)
            config_diag_add(w->diag, w->file, v[i].line, v[i].col,
                            "%s '%s' of certificate '%s' is already listed by certificate '%s' "
                            "(line %u)", what, v[i].name, v[i].owner, v[i - 1].owner,
                            v[i - 1].line);
        else
            config_diag_add(w->diag, w->file, v[i].line, v[i].col,
                            "%s name '%s' is already used at line %u", what, v[i].name,
                            v[i - 1].line);
    }
    free(v);
}

static struct named *named_alloc(struct walk *w, size_t n)
{
    struct named *v = malloc((n ? n : 1) * sizeof(*v));
    if (v == NULL)
        config_diag_add(w->diag, w->file, 0, 0, "out of memory");
    return v;
}

static void check_unique_names(struct walk *w)
{
    const struct config *c = w->cfg;
    struct named *v;
    size_t k;

    if ((v = named_alloc(w, c->n_certs)) != NULL) {
        k = 0;
        for (size_t i = 0; i < c->n_certs; i++)
            if (c->certs[i].name)
                v[k++] = (struct named){c->certs[i].name, NULL, c->certs[i].line,
                                        c->certs[i].col, i};
        report_repeats(w, v, k, "certificate");
    }
    if ((v = named_alloc(w, c->n_listeners)) != NULL) {
        k = 0;
        for (size_t i = 0; i < c->n_listeners; i++)
            if (c->listeners[i].name)
                v[k++] = (struct named){c->listeners[i].name, NULL, c->listeners[i].line,
                                        c->listeners[i].col, i};
        report_repeats(w, v, k, "listener");
    }
    if ((v = named_alloc(w, c->n_pools)) != NULL) {
        k = 0;
        for (size_t i = 0; i < c->n_pools; i++)
            if (c->pools[i].name)
                v[k++] = (struct named){c->pools[i].name, NULL, c->pools[i].line,
                                        c->pools[i].col, i};
        report_repeats(w, v, k, "backend pool");
    }

    /* Two certificates claiming one SNI name would make the choice between
     * them depend on file order: refuse it. */
    size_t n = 0;
    for (size_t i = 0; i < c->n_certs; i++)
        n += c->certs[i].n_names;
    if ((v = named_alloc(w, n)) != NULL) {
        k = 0;
        for (size_t i = 0; i < c->n_certs; i++)
            for (size_t j = 0; j < c->certs[i].n_names; j++, k++)
                v[k] = (struct named){c->certs[i].names[j],
                                      c->certs[i].name ? c->certs[i].name : "?",
                                      c->certs[i].line, c->certs[i].col, k};
        report_repeats(w, v, k, "SNI name");
    }
}

const struct config_cert *config_find_cert(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_certs; i++)
        if (cfg->certs[i].name && strcmp(cfg->certs[i].name, name) == 0)
            return &cfg->certs[i];
    return NULL;
}

/* Cross-section checks. Positions point at the section that holds the
 * problem, found again in the tree. */
static void check_config(struct walk *w, const struct cy_node *root)
{
    struct config *c = w->cfg;
    const struct cy_node *listeners = NULL, *stapler = root, *table = root;
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const char *k = root->items[i]->str;
        if (k == NULL)
            continue;
        if (strcmp(k, "listeners") == 0)
            listeners = root->items[i + 1];
        else if (strcmp(k, "stapler") == 0)
            stapler = root->items[i + 1];
        else if (strcmp(k, "table") == 0)
            table = root->items[i + 1];
    }

    check_unique_names(w);

    for (size_t i = 0; i < c->n_listeners; i++) {
        const struct config_listener *l = &c->listeners[i];
        const struct cy_node *at = listeners && listeners->kind == CY_SEQ && i < listeners->n
                                       ? listeners->items[i] : root;
        if (l->backend) {
            size_t j;
            for (j = 0; j < c->n_pools; j++)
                if (c->pools[j].name && strcmp(c->pools[j].name, l->backend) == 0)
                    break;
            if (j == c->n_pools)
                PROBLEM(w, at, "listener '%s': backend '%s' is not a pool in 'backends'",
                        l->name ? l->name : "?", l->backend);
        }
        if (l->default_cert && config_find_cert(c, l->default_cert) == NULL)
            PROBLEM(w, at, "listener '%s': default_certificate '%s' is not in 'certificates'",
                    l->name ? l->name : "?", l->default_cert);
        for (size_t j = 0; j < l->n_alpn; j++)
            if (strlen(l->alpn[j]) > 255)
                PROBLEM(w, at, "listener '%s': ALPN protocol names are at most 255 bytes",
                        l->name ? l->name : "?");
        for (size_t j = 0; j < i; j++) {
            const struct config_listener *o = &c->listeners[j];
            if (l->addr.host && o->addr.host && l->addr.port == o->addr.port &&
                strcmp(l->addr.host, o->addr.host) == 0)
                PROBLEM(w, at, "listener '%s': %s port %u is already listener '%s'",
                        l->name ? l->name : "?", l->addr.host, l->addr.port,
                        o->name ? o->name : "?");
        }
        if (l->default_cert == NULL && c->n_certs == 0)
            PROBLEM(w, at, "listener '%s': no certificate to serve; 'certificates' is empty",
                    l->name ? l->name : "?");
    }
    for (size_t i = 0; i < c->n_pools; i++)
        if (c->pools[i].health_timeout_ms > c->pools[i].health_interval_ms)
            config_diag_add(w->diag, w->file, c->pools[i].line, c->pools[i].col,
                            "backend pool '%s': health_check timeout is longer than its interval",
                            c->pools[i].name ? c->pools[i].name : "?");

    const struct config_stapler *s = &c->stapler;
    if (s->backoff_min_ms > s->backoff_max_ms)
        PROBLEM(w, stapler, "stapler: backoff_min is larger than backoff_max");
    if (s->connect_timeout_ms > s->total_timeout_ms)
        PROBLEM(w, stapler, "stapler: connect_timeout is longer than total_timeout");

    const char *shm = c->table.shm_name;
    if (shm && (shm[0] != '/' || strchr(shm + 1, '/') != NULL || strlen(shm) < 2 ||
                strlen(shm) > NAME_MAX))
        PROBLEM(w, table, "table: shm_name '%s' must be '/' followed by a name without '/'",
                shm);
    if (c->n_certs > c->table.capacity)
        PROBLEM(w, table, "table: capacity %u is smaller than the %zu certificates configured",
                c->table.capacity, c->n_certs);
}

static const struct field section_dummy[] = {
    {.key = "certificates"}, {.key = "listeners"}, {.key = "backends"}, {.key = "stapler"},
    {.key = "table"}, {.key = "control"}, {.key = "metrics"}, {.key = "dataplane"},
};

static void walk_root(struct walk *w, const struct cy_node *root)
{
    struct config *c = w->cfg;
    bool seen[NFIELDS(section_dummy)] = {false};

    if (root->kind != CY_MAP) {
        PROBLEM(w, root, "expected a mapping of sections (certificates, listeners, backends, "
                "stapler, table, control, metrics, dataplane), found %s", kind_name(root));
        return;
    }
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const struct cy_node *k = root->items[i], *v = root->items[i + 1];
        size_t j;
        for (j = 0; k->kind == CY_SCALAR && j < NFIELDS(section_dummy); j++)
            if (strcmp(k->str, section_dummy[j].key) == 0)
                break;
        if (k->kind != CY_SCALAR || j == NFIELDS(section_dummy)) {
            PROBLEM(w, k, "unknown section '%s'; expected one of: certificates, listeners, "
                    "backends, stapler, table, control, metrics, dataplane",
                    k->kind == CY_SCALAR ? k->str : "?");
            continue;
        }
        if (seen[j]) {
            PROBLEM(w, k, "section '%s' given twice", k->str);
            continue;
        }
        seen[j] = true;
        switch (j) {
        case 0:
            walk_certs(w, v);
            break;
        case 1:
            c->listeners = walk_list(w, v, "listeners", listener_fields, NFIELDS(listener_fields),
                                     sizeof(struct config_listener),
                                     offsetof(struct config_listener, line), listener_defaults_v,
                                     "listener", &c->n_listeners);
            break;
        case 2:
            c->pools = walk_list(w, v, "backends", pool_fields, NFIELDS(pool_fields),
                                 sizeof(struct config_pool), offsetof(struct config_pool, line),
                                 pool_defaults_v, "backend pool",
                                 &c->n_pools);
            break;
        case 3:
            walk_map(w, v, stapler_fields, NFIELDS(stapler_fields), &c->stapler, "stapler");
            break;
        case 4:
            walk_map(w, v, table_fields, NFIELDS(table_fields), &c->table, "table");
            break;
        case 5:
            walk_map(w, v, control_fields, NFIELDS(control_fields), &c->control, "control");
            break;
        case 6:
            walk_map(w, v, metrics_fields, NFIELDS(metrics_fields), &c->metrics, "metrics");
            break;
        case 7:
            walk_map(w, v, dataplane_fields, NFIELDS(dataplane_fields), &c->dataplane,
                     "dataplane");
            break;
        }
    }
    check_config(w, root);
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_certs; i++)
        free_cert(&c->certs[i]);
    free(c->certs);
    for (size_t i = 0; i < c->n_listeners; i++) {
        struct config_listener *l = &c->listeners[i];
        free(l->name);
        free_hostport(&l->addr);
        free(l->backend);
        for (size_t j = 0; j < l->n_alpn; j++)
            free(l->alpn[j]);
        free(l->alpn);
        free(l->default_cert);
        free(l->tls.ciphersuites);
        free(l->tls.ciphers);
        free(l->tls.ticket_key_file);
    }
    free(c->listeners);
    for (size_t i = 0; i < c->n_pools; i++) {
        free(c->pools[i].name);
        for (size_t j = 0; j < c->pools[i].n_servers; j++)
            free_hostport(&c->pools[i].servers[j]);
        free(c->pools[i].servers);
    }
    free(c->pools);
    free(c->stapler.cache_dir);
    free(c->table.shm_name);
    free(c->control.socket);
    free(c->control.socket_group);
    free_hostport(&c->metrics.listen);
    free(c->path);
    free(c);
}

static int cmp_diag(const void *a, const void *b)
{
    const struct config_diag_entry *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return strcmp(x->msg, y->msg); /* qsort is not stable: stay deterministic */
}

static struct config *load(const char *name, const char *base, const void *buf, size_t len,
                           unsigned flags, struct config_diag *diag)
{
    size_t before = diag->n + diag->dropped, first = diag->n;
    struct config *c = calloc(1, sizeof(*c));
    if (c == NULL || config_defaults(c) < 0 || (c->path = strdup(name)) == NULL) {
        config_diag_add(diag, name, 0, 0, "out of memory");
        config_free(c);
        return NULL;
    }
    struct cy_node *root = cy_parse(name, buf, len, diag);
    if (root != NULL) {
        struct walk w = {.file = name, .diag = diag, .flags = flags, .cfg = c};
        if (base != NULL)
            w.base = strdup(base);
        walk_root(&w, root);
        free(w.base);
        cy_free(root);
    }
    if (diag->n + diag->dropped != before) {
        /* In file order: an operator reads them top to bottom. Problems
         * without a position (the file itself) come first. */
        qsort(diag->v + first, diag->n - first, sizeof(*diag->v), cmp_diag);
        config_free(c);
        return NULL;
    }
    return c;
}

struct config *config_load_buffer(const char *name, const void *buf, size_t len,
                                  unsigned flags, struct config_diag *diag)
{
    return load(name, NULL, buf, len, flags, diag);
}

struct config *config_load_file(const char *path, unsigned flags, struct config_diag *diag)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        config_diag_add(diag, path, 0, 0, "cannot read: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > (off_t)CONFIG_MAX_FILE) {
        config_diag_add(diag, path, 0, 0, "not a regular file of at most %u bytes",
                        CONFIG_MAX_FILE);
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    size_t got = 0;
    while (buf != NULL && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL || got != len) {
        config_diag_add(diag, path, 0, 0, "cannot read: %s", buf ? "short read" : "out of memory");
        free(buf);
        return NULL;
    }

    /* Relative paths in the file are taken from the file's folder. */
    char *slash = strrchr(path, '/');
    char *base = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    struct config *c = load(path, base, buf, len, flags, diag);
    free(base);
    free(buf);
    return c;
}

void config_diag_init(struct config_diag *diag)
{
    memset(diag, 0, sizeof(*diag));
}

void config_diag_free(struct config_diag *diag)
{
    for (size_t i = 0; i < diag->n; i++)
        free(diag->v[i].msg);
    free(diag->v);
    memset(diag, 0, sizeof(*diag));
}

size_t config_diag_print(const struct config_diag *diag, FILE *out)
{
    for (size_t i = 0; i < diag->n; i++)
        fprintf(out, "%s\n", diag->v[i].msg);
    if (diag->dropped)
        fprintf(out, "... and %zu more problems\n", diag->dropped);
    return diag->n;
}
