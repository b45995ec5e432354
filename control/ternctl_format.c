/* ternctl's human-readable output (ternctl_format.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ternctl_format.h"

/* Text of member KEY of O for a table cell: strings as they are, numbers in
 * decimal, booleans yes/no, null and absent as "-". Writes into BUF. */
static const char *cell(const json_t *o, const char *key, char *buf, size_t len)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return json_string_length(v) ? json_string_value(v) : "-";
    if (json_is_integer(v)) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, len, "%g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    return "-";
}

struct column {
    const char *title;
    const char *key;
    size_t width;
};

/* The state column adds a marker a reader's eye catches: revoked and
 * must-staple-at-risk certificates are the ones an operator must act on. */
static void state_cell(const json_t *c, char *buf, size_t len)
{
    char tmp[64];
    const char *state = cell(c, "state", tmp, sizeof(tmp));
    bool warn = json_is_true(json_object_get(c, "must_staple_warning"));
    snprintf(buf, len, "%s%s", state,
             strcmp(state, "revoked") == 0 ? "!" : warn ? " (at risk)" : "");
}

int ternctl_print_certs(FILE *out, const json_t *certs)
{
    static const struct column proto[] = {
        {"NAME", "name", 0},         {"KEY", "key", 0},
        {"RESPONDER", "responder", 0}, {"STATE", "state", 0},
        {"THIS_UPDATE", "this_update", 0}, {"NEXT_UPDATE", "next_update", 0},
        {"NEXT_REFRESH", "next_refresh", 0}, {"MUST_STAPLE", "must_staple", 0},
        {"LAST_ERROR", "last_error", 0},
    };
    enum { NCOL = sizeof(proto) / sizeof(proto[0]) };
    struct column cols[NCOL];
    char buf[64];

    if (!json_is_array(certs))
        return -EINVAL;
    memcpy(cols, proto, sizeof(cols));
    size_t n = json_array_size(certs);

    /* Two passes: widths first, then the lines. Each cell is recomputed in
     * the second pass instead of stored: cheap, and no allocation. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t r = 0; r <= n; r++) {
            const json_t *c = r ? json_array_get(certs, r - 1) : NULL;
            for (int k = 0; k < NCOL; k++) {
                char text[256];
                if (r == 0) {
                    snprintf(text, sizeof(text), "%s", cols[k].title);
                } else if (strcmp(cols[k].key, "key") == 0) {
                    snprintf(text, sizeof(text), "%.*s", TERNCTL_KEY_PREFIX,
                             cell(c, "key", buf, sizeof(buf)));
                } else if (strcmp(cols[k].key, "state") == 0) {
                    state_cell(c, text, sizeof(text));
                } else {
                    snprintf(text, sizeof(text), "%s", cell(c, cols[k].key, buf, sizeof(buf)));
                }
                size_t l = strlen(text);
                if (pass == 0) {
                    if (l > cols[k].width)
                        cols[k].width = l;
                } else if (k == NCOL - 1) {
                    fprintf(out, "%s\n", text);
                } else {
                    fprintf(out, "%-*s  ", (int)cols[k].width, text);
                }
            }
        }
    }
    return (int)n;
}

/* Prints O's members as aligned "key: value" lines; nested objects are
 * flattened with PREFIX ("by_state."), arrays of strings one per line. */
static void print_kv(FILE *out, const json_t *o, const char *prefix, int width)
{
    const char *key;
    json_t *v;
    char buf[64];

    json_object_foreach((json_t *)o, key, v) {
        char full[128];
        snprintf(full, sizeof(full), "%s%s", prefix, key);
        if (json_is_object(v)) {
            char sub[130];
            snprintf(sub, sizeof(sub), "%s.", full);
            print_kv(out, v, sub, width);
        } else if (json_is_array(v)) {
            size_t i;
            json_t *e;
            char label[130];
            snprintf(label, sizeof(label), "%s:", full);
            fprintf(out, "%-*s %zu\n", width, label, json_array_size(v));
            json_array_foreach(v, i, e) {
                char *s = json_is_string(e) ? NULL : json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
                fprintf(out, "  %s\n", s ? s : json_string_value(e));
                free(s);
            }
        } else {
            char label[130];
            snprintf(label, sizeof(label), "%s:", full);
            fprintf(out, "%-*s %s\n", width, label, cell(o, key, buf, sizeof(buf)));
        }
    }
}

static int widest_key(const json_t *o, const char *prefix)
{
    const char *key;
    json_t *v;
    int w = 0;
    json_object_foreach((json_t *)o, key, v) {
        int l = (int)(strlen(prefix) + strlen(key) + 1);
        if (json_is_object(v)) {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s.", prefix, key);
            l = widest_key(v, sub);
        }
        if (l > w)
            w = l;
    }
    return w;
}

int ternctl_print_cert(FILE *out, const json_t *cert)
{
    if (!json_is_object(cert))
        return -EINVAL;
    print_kv(out, cert, "", widest_key(cert, ""));
    return 0;
}

int ternctl_print_status(FILE *out, const json_t *status)
{
    return ternctl_print_cert(out, status);
}
