/* Unit tests of the configuration loader: a full valid file, defaults,
 * duration and size syntax, and each kind of problem with its exact
 * line:column, several in one file.
 *
 * argv[1]: the example file control/tern.example.yaml. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static struct config *load(const char *yaml, struct config_diag *d)
{
    config_diag_init(d);
    return config_load_buffer("t.yaml", yaml, strlen(yaml), 0, d);
}

/* True if some problem starts with PREFIX (file:line:col: text...). */
static int has(const struct config_diag *d, const char *prefix)
{
    for (size_t i = 0; i < d->n; i++)
        if (strncmp(d->v[i].msg, prefix, strlen(prefix)) == 0)
            return 1;
    fprintf(stderr, "  no problem starting with \"%s\"; have:\n", prefix);
    for (size_t i = 0; i < d->n; i++)
        fprintf(stderr, "    %s\n", d->v[i].msg);
    return 0;
}

static void test_durations(void)
{
    uint64_t v = 0;
    CHECK_EQ_INT(config_parse_duration("30s", &v), 0);
    CHECK_EQ_INT(v, 30000);
    CHECK_EQ_INT(config_parse_duration("5m", &v), 0);
    CHECK_EQ_INT(v, 300000);
    CHECK_EQ_INT(config_parse_duration("2h", &v), 0);
    CHECK_EQ_INT(v, 7200000);
    CHECK_EQ_INT(config_parse_duration("1d", &v), 0);
    CHECK_EQ_INT(v, 86400000);
    CHECK_EQ_INT(config_parse_duration("500ms", &v), 0);
    CHECK_EQ_INT(v, 500);
    CHECK_EQ_INT(config_parse_duration("1h30m", &v), 0);
    CHECK_EQ_INT(v, 5400000);
    CHECK_EQ_INT(config_parse_duration("0s", &v), 0);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(config_parse_duration("30", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("s", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("5x", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("5 s", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("-5s", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("5sec", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("1.5h", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_duration("99999999999999999999s", &v), -ERANGE);
    CHECK_EQ_INT(config_parse_duration("999999999999999999d", &v), -ERANGE);
}

static void test_sizes(void)
{
    uint64_t v = 0;
    CHECK_EQ_INT(config_parse_size("64KiB", &v), 0);
    CHECK_EQ_INT(v, 65536);
    CHECK_EQ_INT(config_parse_size("1MiB", &v), 0);
    CHECK_EQ_INT(v, 1048576);
    CHECK_EQ_INT(config_parse_size("2GiB", &v), 0);
    CHECK_EQ_INT(v, 2147483648LL);
    CHECK_EQ_INT(config_parse_size("4096", &v), 0);
    CHECK_EQ_INT(v, 4096);
    CHECK_EQ_INT(config_parse_size("10B", &v), 0);
    CHECK_EQ_INT(v, 10);
    CHECK_EQ_INT(config_parse_size("3kB", &v), 0);
    CHECK_EQ_INT(v, 3000);
    CHECK_EQ_INT(config_parse_size("64kib", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_size("KiB", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_size("", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_size("1 KiB", &v), -EINVAL);
    CHECK_EQ_INT(config_parse_size("18446744073709551615GiB", &v), -ERANGE);
}

static void test_hostport(void)
{
    struct config_hostport h = {0};
    CHECK_EQ_INT(config_parse_hostport("127.0.0.1:8080", &h), 0);
    CHECK(h.host && strcmp(h.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(h.port, 8080);
    CHECK_EQ_INT(h.family, AF_INET);
    free(h.host);
    CHECK_EQ_INT(config_parse_hostport("[::1]:443", &h), 0);
    CHECK(h.host && strcmp(h.host, "::1") == 0);
    CHECK_EQ_INT(h.family, AF_INET6);
    free(h.host);
    CHECK_EQ_INT(config_parse_hostport("::1:443", &h), -EINVAL);
    CHECK_EQ_INT(config_parse_hostport("localhost:80", &h), -EINVAL);
    CHECK_EQ_INT(config_parse_hostport("1.2.3.4:0", &h), -EINVAL);
    CHECK_EQ_INT(config_parse_hostport("1.2.3.4:65536", &h), -EINVAL);
    CHECK_EQ_INT(config_parse_hostport("1.2.3.4:", &h), -EINVAL);
    CHECK_EQ_INT(config_parse_hostport("1.2.3.4", &h), -EINVAL);
    CHECK_EQ_INT(config_parse_hostport("[::1]443", &h), -EINVAL);
}

static void test_example(const char *path)
{
    struct config_diag d;
    config_diag_init(&d);
    struct config *c = config_load_file(path, CONFIG_EXPAND_DIRS, &d);
    config_diag_print(&d, stderr);
    CHECK(c != NULL);
    CHECK_EQ_INT(d.n, 0);
    if (c != NULL) {
        CHECK_EQ_INT(c->n_certs, 2);
        CHECK(strcmp(c->certs[0].name, "www") == 0);
        CHECK(strcmp(c->certs[0].chain, "/etc/tern/certs/www.pem") == 0);
        CHECK(c->certs[0].issuer && strcmp(c->certs[0].issuer, "/etc/tern/certs/ca.pem") == 0);
        CHECK_EQ_INT(c->certs[0].n_names, 2);
        CHECK(strcmp(c->certs[0].names[1], "example.com") == 0);
        CHECK_EQ_INT(c->certs[0].policy, CONFIG_POLICY_LENIENT);
        CHECK_EQ_INT(c->certs[1].policy, CONFIG_POLICY_MUST_STAPLE);
        CHECK(c->certs[1].issuer == NULL);
        CHECK(strcmp(c->certs[1].ocsp_url, "http://ocsp.example.net/") == 0);
        CHECK_EQ_INT(c->n_listeners, 1);
        const struct config_listener *l = &c->listeners[0];
        CHECK(strcmp(l->addr.host, "198.18.0.1") == 0);
        CHECK_EQ_INT(l->addr.port, 443);
        CHECK_EQ_INT(l->n_alpn, 2);
        CHECK(strcmp(l->alpn[0], "h2") == 0);
        CHECK_EQ_INT(l->tls.min_version, 0x0303);
        CHECK_EQ_INT(l->tls.tickets, 1);
        CHECK_EQ_INT(l->tls.ticket_rotation_ms, 3600000);
        CHECK_EQ_INT(l->proxy_protocol, 0);
        CHECK_EQ_INT(c->n_pools, 1);
        CHECK_EQ_INT(c->pools[0].n_servers, 2);
        CHECK_EQ_INT(c->pools[0].servers[1].family, AF_INET6);
        CHECK_EQ_INT(c->pools[0].servers[1].port, 8080);
        CHECK_EQ_INT(c->pools[0].health_interval_ms, 5000);
        CHECK_EQ_INT(c->stapler.max_response_bytes, 65536);
        CHECK_EQ_INT(c->stapler.clock_skew_ms, 300000);
        CHECK_EQ_INT(c->stapler.must_staple_warning_ms, 86400000);
        CHECK_EQ_INT(c->control.socket_mode, 0660);
        CHECK_EQ_INT(c->metrics.listen.port, 9477);
        CHECK_EQ_INT(c->dataplane.flows_per_worker, 65536);
        CHECK(config_find_cert(c, "api") == &c->certs[1]);
        CHECK(config_find_cert(c, "nope") == NULL);
    }
    config_free(c);
    config_diag_free(&d);
}

static void test_defaults(void)
{
    struct config_diag d;
    struct config *c = load("certificates:\n"
                            "  - name: a\n"
                            "    chain: a.pem\n"
                            "    key: a.key\n", &d);
    CHECK(c != NULL);
    CHECK_EQ_INT(d.n, 0);
    if (c != NULL) {
        CHECK(strcmp(c->certs[0].chain, "a.pem") == 0); /* buffer: no base folder */
        CHECK_EQ_INT(c->certs[0].policy, CONFIG_POLICY_LENIENT);
        CHECK(c->stapler.refresh_fraction == 0.5);
        CHECK(c->stapler.jitter == 0.05);
        CHECK_EQ_INT(c->stapler.backoff_min_ms, 5000);
        CHECK_EQ_INT(c->stapler.backoff_max_ms, 600000);
        CHECK_EQ_INT(c->stapler.connect_timeout_ms, 5000);
        CHECK_EQ_INT(c->stapler.total_timeout_ms, 15000);
        CHECK_EQ_INT(c->stapler.per_responder_concurrency, 4);
        CHECK(strcmp(c->stapler.cache_dir, "/var/cache/tern/staples") == 0);
        CHECK(strcmp(c->table.shm_name, "/tern-staples") == 0);
        CHECK_EQ_INT(c->table.capacity, 65536);
        CHECK(strcmp(c->control.socket, "/run/tern/control.sock") == 0);
        CHECK_EQ_INT(c->control.socket_mode, 0660);
        CHECK(c->control.socket_group == NULL);
        CHECK(c->metrics.enabled);
        CHECK(strcmp(c->metrics.listen.host, "127.0.0.1") == 0);
        CHECK_EQ_INT(c->dataplane.workers, 1);
        CHECK_EQ_INT(c->n_listeners, 0);
    }
    config_free(c);
    config_diag_free(&d);

    /* An empty list of certificates is a valid (idle) configuration. */
    c = load("certificates: []\n", &d);
    CHECK(c != NULL);
    config_free(c);
    config_diag_free(&d);
}

static void test_unknown_keys(void)
{
    struct config_diag d;
    struct config *c = load("stapler:\n"
                            "  cache_dir: /tmp/x\n"
                            "  refresh_fractoin: 0.5\n"
                            "colour: blue\n", &d);
    CHECK(c == NULL);
    CHECK_EQ_INT(d.n, 2);
    CHECK(has(&d, "t.yaml:3:3: unknown key 'refresh_fractoin' in stapler; expected one of: "
                  "cache_dir, refresh_fraction,"));
    CHECK(has(&d, "t.yaml:4:1: unknown section 'colour'"));
    config_free(c);
    config_diag_free(&d);
}

static void test_wrong_types(void)
{
    struct config_diag d;
    struct config *c = load("stapler:\n"
                            "  backoff_min: 30\n"          /* 2: no unit */
                            "  max_response_bytes: lots\n" /* 3 */
                            "  per_responder_concurrency: 0\n" /* 4: out of range */
                            "  jitter: 0.9\n"               /* 5 */
                            "  cache_dir: [a, b]\n"         /* 6 */
                            "metrics:\n"
                            "  enabled: maybe\n"            /* 8 */
                            "  listen: localhost:80\n"      /* 9 */
                            "control:\n"
                            "  socket_mode: 0999\n"         /* 11 */
                            "certificates: {a: 1}\n"        /* 12 */
                            "listeners:\n"
                            "  - name: l\n"
                            "    address: 1.2.3.4\n"
                            "    port: 70000\n"             /* 16 */
                            "    backend: b\n"
                            "    tls: {min_version: \"1.1\"}\n" /* 18 */
                            "backends:\n"
                            "  - name: b\n"
                            "    balance: random\n"         /* 21 */
                            "    servers: [1.2.3.4]\n",     /* 22 */
                            &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:2:16: 'backoff_min': expected a duration with a unit"));
    CHECK(has(&d, "t.yaml:3:23: 'max_response_bytes': expected a size"));
    CHECK(has(&d, "t.yaml:4:30: 'per_responder_concurrency': expected an integer from 1 to 1024, "
                  "found '0'"));
    CHECK(has(&d, "t.yaml:5:11: 'jitter': expected a number from 0 to 0.45, found '0.9'"));
    CHECK(has(&d, "t.yaml:6:14: 'cache_dir': expected a path, found a list"));
    CHECK(has(&d, "t.yaml:8:12: 'enabled': expected true or false, found 'maybe'"));
    CHECK(has(&d, "t.yaml:9:11: 'listen': expected ADDRESS:PORT"));
    CHECK(has(&d, "t.yaml:11:16: 'socket_mode': expected an octal permission mode"));
    CHECK(has(&d, "t.yaml:12:15: 'certificates': expected a list, found a mapping"));
    CHECK(has(&d, "t.yaml:16:11: 'port': expected an integer from 1 to 65535, found '70000'"));
    CHECK(has(&d, "t.yaml:18:24: 'min_version': expected \"1.2\" or \"1.3\", found '1.1'"));
    CHECK(has(&d, "t.yaml:21:14: 'balance': expected round-robin or least-conn"));
    CHECK(has(&d, "t.yaml:22:15: 'servers': expected ADDRESS:PORT"));
    CHECK(has(&d, "t.yaml:14:5: listener 'l': no certificate to serve"));
    CHECK_EQ_INT(d.n, 14);
    /* Reported in file order, whatever order the checks ran in. */
    for (size_t i = 1; i < d.n; i++)
        CHECK(d.v[i - 1].line < d.v[i].line ||
              (d.v[i - 1].line == d.v[i].line && d.v[i - 1].col <= d.v[i].col));
    config_free(c);
    config_diag_free(&d);
}

static void test_missing_required(void)
{
    struct config_diag d;
    struct config *c = load("certificates:\n"
                            "  - name: a\n"
                            "    key: a.key\n"
                            "  - chain: b.pem\n"
                            "    key:\n"
                            "listeners:\n"
                            "  - name: l\n"
                            "    port: 443\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:2:5: certificate: missing required key 'chain'"));
    CHECK(has(&d, "t.yaml:4:5: certificate: missing required key 'name'"));
    CHECK(has(&d, "t.yaml:5:9: 'key': expected a path, found nothing"));
    CHECK(has(&d, "t.yaml:7:5: listener: missing required key 'address'"));
    CHECK(has(&d, "t.yaml:7:5: listener: missing required key 'backend'"));
    CHECK_EQ_INT(d.n, 5);
    config_free(c);
    config_diag_free(&d);
}

static void test_cross_references(void)
{
    struct config_diag d;
    struct config *c = load("certificates:\n"
                            "  - {name: a, chain: a.pem, key: a.key}\n"
                            "  - {name: a, chain: b.pem, key: b.key}\n"
                            "  - {name: ../evil, chain: c.pem, key: c.key}\n"
                            "listeners:\n"
                            "  - name: l\n"
                            "    address: \"::\"\n"
                            "    port: 443\n"
                            "    backend: nowhere\n"
                            "    default_certificate: zz\n"
                            "stapler: {backoff_min: 2h, backoff_max: 1h}\n"
                            "table: {shm_name: no-slash, capacity: 2}\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:4:5: certificate name '../evil'"));
    CHECK(has(&d, "t.yaml:3:5: certificate name 'a' is already used at line 2"));
    CHECK(has(&d, "t.yaml:6:5: listener 'l': backend 'nowhere' is not a pool"));
    CHECK(has(&d, "t.yaml:6:5: listener 'l': default_certificate 'zz' is not in"));
    CHECK(has(&d, "t.yaml:11:10: stapler: backoff_min is larger than backoff_max"));
    CHECK(has(&d, "t.yaml:12:8: table: shm_name 'no-slash'"));
    CHECK(has(&d, "t.yaml:12:8: table: capacity 2 is smaller than the 3 certificates"));
    CHECK_EQ_INT(d.n, 7);
    config_free(c);
    config_diag_free(&d);
}

static void test_listener_and_sni_clashes(void)
{
    struct config_diag d;
    struct config *c = load("certificates:\n"
                            "  - {name: a, chain: a.pem, key: a.key, names: [www.example.com]}\n"
                            "  - {name: b, chain: b.pem, key: b.key, names: [WWW.Example.com, x]}\n"
                            "backends: [{name: p, servers: [\"10.0.0.1:80\"]}]\n"
                            "listeners:\n"
                            "  - {name: one, address: 10.1.1.1, port: 443, backend: p}\n"
                            "  - {name: two, address: 10.1.1.1, port: 443, backend: p}\n"
                            "  - {name: three, address: 10.1.1.1, port: 8443, backend: p}\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:3:5: SNI name 'WWW.Example.com' of certificate 'b' is already listed "
                  "by certificate 'a' (line 2)"));
    CHECK(has(&d, "t.yaml:7:5: listener 'two': 10.1.1.1 port 443 is already listener 'one'"));
    CHECK_EQ_INT(d.n, 2);
    config_free(c);
    config_diag_free(&d);

    /* Names compare without case; a pool's health check is checked at the
     * pool's position; every repeat is reported, not only the first. */
    c = load("certificates:\n"
             "  - {name: www, chain: a.pem, key: a.key}\n"
             "  - {name: WWW, chain: b.pem, key: b.key}\n"
             "  - {name: www, chain: c.pem, key: c.key}\n"
             "backends:\n"
             "  - {name: p, servers: [\"10.0.0.1:80\"], health_check: {interval: 1s, timeout: 2s}}\n",
             &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:3:5: certificate name 'WWW' is already used at line 2"));
    CHECK(has(&d, "t.yaml:4:5: certificate name 'www' is already used at line 3"));
    CHECK(has(&d, "t.yaml:6:5: backend pool 'p': health_check timeout is longer"));
    CHECK_EQ_INT(d.n, 3);
    config_free(c);
    config_diag_free(&d);
}

static void test_sni_syntax(void)
{
    struct config_diag d;
    struct config *c = load("certificates:\n"
                            "  - name: a\n"
                            "    chain: a.pem\n"
                            "    key: a.key\n"
                            "    names: [ok.example.com, \"*.example.org\", \"bad name\", a..b, \"*\"]\n",
                            &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:5:46: 'names': expected a DNS name"));
    CHECK(has(&d, "t.yaml:5:58: 'names': expected a DNS name"));
    CHECK(has(&d, "t.yaml:5:64: 'names': expected a DNS name"));
    CHECK_EQ_INT(d.n, 3);
    config_free(c);
    config_diag_free(&d);
}

static void test_yaml_errors(void)
{
    struct config_diag d;
    struct config *c = load("stapler:\n  cache_dir: [a\n  jitter: 0.1\n", &d);
    CHECK(c == NULL);
    CHECK_EQ_INT(d.n, 1);
    CHECK(d.n == 1 && strstr(d.v[0].msg, "YAML syntax") != NULL);
    CHECK(d.n == 1 && d.v[0].line >= 2);
    config_diag_free(&d);

    c = load("a: &x [1]\nb: *x\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:2:4: YAML aliases are not supported"));
    config_diag_free(&d);

    c = load("", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml: the file is empty"));
    config_diag_free(&d);

    c = load("- 1\n- 2\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:1:1: expected a mapping of sections"));
    config_diag_free(&d);

    c = load("table: {}\n---\ntable: {}\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:2:1: a second YAML document"));
    config_diag_free(&d);

    c = load("table: {capacity: 5}\ntable: {capacity: 6}\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:2:1: section 'table' given twice"));
    config_diag_free(&d);

    c = load("table: {capacity: 5, capacity: 6}\n", &d);
    CHECK(c == NULL);
    CHECK(has(&d, "t.yaml:1:22: 'capacity' given twice in table"));
    config_diag_free(&d);

    /* Nesting beyond the limit is refused, not recursed into. */
    char deep[400] = "a: ";
    for (int i = 0; i < 60; i++)
        strcat(deep, "[");
    c = load(deep, &d);
    CHECK(c == NULL);
    CHECK(d.n >= 1 && strstr(d.v[0].msg, "nesting deeper than") != NULL);
    config_diag_free(&d);
}

static void write_file(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("x\n", f);
        fclose(f);
    }
}

static void test_directory_and_relative_paths(void)
{
    char dir[] = "/tmp/tern-config-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char certs[600], cfgpath[600];
    snprintf(certs, sizeof(certs), "%s/certs", dir);
    CHECK_EQ_INT(mkdir(certs, 0700), 0);
    write_file(certs, "b.key");
    write_file(certs, "b.pem");
    write_file(certs, "a.key");
    write_file(certs, "a.crt");
    write_file(certs, "orphan.key");
    write_file(certs, "notes.txt");

    snprintf(cfgpath, sizeof(cfgpath), "%s/tern.yaml", dir);
    FILE *f = fopen(cfgpath, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs("certificates:\n"
              "  - directory: certs\n"
              "    policy: strict\n"
              "  - name: c\n"
              "    chain: certs/c.pem\n"
              "    key: /abs/c.key\n", f);
        fclose(f);
    }
    struct config_diag d;
    config_diag_init(&d);
    struct config *c = config_load_file(cfgpath, CONFIG_EXPAND_DIRS, &d);
    /* orphan.key has no chain: reported, so the load fails... */
    CHECK(c == NULL);
    CHECK_EQ_INT(d.n, 1);
    CHECK(d.n == 1 && strstr(d.v[0].msg, ":2:5: directory '") != NULL &&
          strstr(d.v[0].msg, "key 'orphan.key' has no matching orphan.pem") != NULL);
    config_diag_free(&d);

    char p[700];
    snprintf(p, sizeof(p), "%s/orphan.key", certs);
    unlink(p);
    config_diag_init(&d);
    c = config_load_file(cfgpath, CONFIG_EXPAND_DIRS, &d);
    config_diag_print(&d, stderr);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_EQ_INT(c->n_certs, 3);
        char want[700];
        CHECK(strcmp(c->certs[0].name, "a") == 0);
        snprintf(want, sizeof(want), "%s/certs/a.crt", dir);
        CHECK(strcmp(c->certs[0].chain, want) == 0);
        CHECK_EQ_INT(c->certs[0].policy, CONFIG_POLICY_STRICT);
        CHECK(strcmp(c->certs[1].name, "b") == 0);
        snprintf(want, sizeof(want), "%s/certs/b.key", dir);
        CHECK(strcmp(c->certs[1].key, want) == 0);
        snprintf(want, sizeof(want), "%s/certs/c.pem", dir);
        CHECK(strcmp(c->certs[2].chain, want) == 0);
        CHECK(strcmp(c->certs[2].key, "/abs/c.key") == 0);
    }
    config_free(c);
    config_diag_free(&d);

    /* Without CONFIG_EXPAND_DIRS (fuzzing), the folder is not read. */
    config_diag_init(&d);
    c = config_load_file(cfgpath, 0, &d);
    CHECK(c != NULL && c->n_certs == 1);
    config_free(c);
    config_diag_free(&d);

    const char *names[] = {"a.key", "a.crt", "b.key", "b.pem", "notes.txt", "certs", "tern.yaml"};
    for (size_t i = 0; i < 7; i++) {
        snprintf(p, sizeof(p), "%s/%s", i < 5 ? certs : dir, names[i]);
        if (i == 5)
            rmdir(p);
        else
            unlink(p);
    }
    CHECK_EQ_INT(rmdir(dir), 0);

    config_diag_init(&d);
    c = config_load_file("/nonexistent/tern.yaml", 0, &d);
    CHECK(c == NULL);
    CHECK(has(&d, "/nonexistent/tern.yaml: cannot read: No such file"));
    config_diag_free(&d);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_config EXAMPLE.yaml\n");
        return 2;
    }
    test_durations();
    test_sizes();
    test_hostport();
    test_example(argv[1]);
    test_defaults();
    test_unknown_keys();
    test_wrong_types();
    test_missing_required();
    test_cross_references();
    test_listener_and_sni_clashes();
    test_sni_syntax();
    test_yaml_errors();
    test_directory_and_relative_paths();
    return check_exit();
}
