/* Unit test of the Prometheus text tern-control serves: names, labels,
 * the cumulative histogram built from per-bucket counts, and the format's
 * rules (HELP and TYPE before each family, one sample per line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "control_metrics.h"

static int has_line(const char *text, const char *line)
{
    size_t l = strlen(line);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, l) == 0 && (p[l] == '\n' || p[l] == '\0'))
            return 1;
    fprintf(stderr, "  missing line: %s\n", line);
    return 0;
}

int main(void)
{
    struct control_metrics_snapshot s = {0};
    s.stapler.certs = 5;
    s.stapler.by_state[STAPLER_STATE_GOOD] = 3;
    s.stapler.by_state[STAPLER_STATE_REVOKED] = 1;
    s.stapler.by_state[STAPLER_STATE_FAILING] = 1;
    s.stapler.must_staple_warnings = 1;
    s.stapler.fetches[STAPLER_REASON_OK] = 7;
    s.stapler.fetches[STAPLER_REASON_TIMEOUT] = 2;
    s.stapler.seconds_to_next_update = 3500;
    s.stapler.latency_buckets[0] = 4; /* <= 10 ms */
    s.stapler.latency_buckets[2] = 3; /* <= 50 ms */
    s.stapler.latency_buckets[STAPLER_LATENCY_BUCKETS - 1] = 2; /* > 10 s */
    s.stapler.latency_count = 9;
    s.stapler.latency_sum_us = 21500000;
    s.table.capacity = 64;
    s.table.entries = 4;
    s.reloads_ok = 2;
    s.reloads_refused = 1;

    char *t = control_metrics_format(&s);
    CHECK(t != NULL);
    if (t == NULL)
        return check_exit();
    CHECK(has_line(t, "tern_certificates 5"));
    CHECK(has_line(t, "tern_staples{state=\"good\"} 3"));
    CHECK(has_line(t, "tern_staples{state=\"no-ocsp-url\"} 0"));
    CHECK(has_line(t, "tern_staples_revoked 1"));
    CHECK(has_line(t, "tern_must_staple_at_risk 1"));
    CHECK(has_line(t, "tern_ocsp_fetches_total{result=\"ok\",reason=\"ok\"} 7"));
    CHECK(has_line(t, "tern_ocsp_fetches_total{result=\"error\",reason=\"timeout\"} 2"));
    CHECK(has_line(t, "tern_ocsp_fetches_total{result=\"error\",reason=\"signature\"} 0"));
    CHECK(has_line(t, "tern_ocsp_seconds_to_next_update 3500"));
    /* Prometheus buckets are cumulative; the stapler's are not. */
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_bucket{le=\"0.01\"} 4"));
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_bucket{le=\"0.025\"} 4"));
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_bucket{le=\"0.05\"} 7"));
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_bucket{le=\"10\"} 7"));
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_bucket{le=\"+Inf\"} 9"));
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_count 9"));
    CHECK(has_line(t, "tern_ocsp_responder_latency_seconds_sum 21.500000"));
    CHECK(has_line(t, "tern_staple_table_entries 4"));
    CHECK(has_line(t, "tern_config_reloads_total{result=\"refused\"} 1"));
    CHECK(has_line(t, "# TYPE tern_ocsp_fetches_total counter"));
    CHECK(has_line(t, "# TYPE tern_ocsp_responder_latency_seconds histogram"));

    /* Every sample's family was introduced by a TYPE line before it, and
     * no family is declared twice. */
    char *copy = strdup(t), *save = NULL;
    char declared[64][80];
    int n_declared = 0, bad = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[80];
        if (strncmp(line, "# TYPE ", 7) == 0) {
            sscanf(line + 7, "%79s", name);
            for (int i = 0; i < n_declared; i++)
                bad += strcmp(declared[i], name) == 0;
            if (n_declared < 64)
                snprintf(declared[n_declared++], 80, "%s", name);
            continue;
        }
        if (line[0] == '#')
            continue;
        sscanf(line, "%79[a-z_]", name);
        int found = 0;
        for (int i = 0; i < n_declared; i++) {
            size_t l = strlen(declared[i]);
            if (strncmp(name, declared[i], l) == 0 &&
                (name[l] == '\0' || strcmp(name + l, "_bucket") == 0 ||
                 strcmp(name + l, "_sum") == 0 || strcmp(name + l, "_count") == 0))
                found = 1;
        }
        if (!found) {
            fprintf(stderr, "  sample without TYPE: %s\n", line);
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    free(copy);
    free(t);
    return check_exit();
}
