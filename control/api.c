/* The control API's request parser and reply formatting (api.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "stapler.h"

static const char *const verb_names[] = {
    [API_STATUS] = "status",
    [API_CERTS] = "certs",
    [API_CERT] = "cert",
    [API_REFRESH] = "refresh",
    [API_RELOAD] = "reload",
};

#define N_VERBS (sizeof(verb_names) / sizeof(verb_names[0]))

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return rc;
}

/* Checks the optional/required members of a request: only "cmd", "name" and
 * "all" exist, and which of name/all a verb needs. */
static int parse_args(json_t *o, struct api_request *req, char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    bool need_name = req->verb == API_CERT || req->verb == API_REFRESH;
    bool have_name = false;

    json_object_foreach(o, key, v) {
        if (strcmp(key, "cmd") == 0)
            continue;
        if (strcmp(key, "name") == 0 && need_name) {
            const char *s = json_string_value(v);
            size_t l = s ? json_string_length(v) : 0;
            if (s == NULL || l == 0 || l > API_NAME_MAX || strlen(s) != l)
                return fail(err, errlen, -EINVAL,
                            "'name' must be a certificate name of 1 to 128 characters");
            memcpy(req->name, s, l + 1);
            have_name = true;
        } else if (strcmp(key, "all") == 0 && req->verb == API_REFRESH) {
            if (!json_is_boolean(v))
                return fail(err, errlen, -EINVAL, "'all' must be true or false");
            req->all = json_is_true(v);
        } else {
            char msg[200];
            snprintf(msg, sizeof(msg), "'%.40s' is not an argument of '%s'", key,
                     verb_names[req->verb]);
            return fail(err, errlen, -EINVAL, msg);
        }
    }
    if (req->verb == API_REFRESH && have_name == req->all)
        return fail(err, errlen, -EINVAL,
                    "'refresh' takes either \"name\" or \"all\": true");
    if (req->verb == API_CERT && !have_name)
        return fail(err, errlen, -EINVAL, "'cert' needs \"name\"");
    return 0;
}

int api_parse_request(const void *buf, size_t len, struct api_request *req, char *err,
                      size_t errlen)
{
    json_error_t jerr;

    memset(req, 0, sizeof(*req));
    if (len > API_REQUEST_MAX)
        return fail(err, errlen, -EMSGSIZE, "request longer than 4096 bytes");
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        char msg[240];
        snprintf(msg, sizeof(msg), "not JSON: %s at column %d", jerr.text, jerr.column);
        return fail(err, errlen, -EINVAL, msg);
    }
    int rc = -EINVAL;
    const char *cmd;
    if (!json_is_object(o)) {
        fail(err, errlen, rc, "expected a JSON object such as {\"cmd\":\"status\"}");
        goto out;
    }
    cmd = json_string_value(json_object_get(o, "cmd"));
    if (cmd == NULL) {
        fail(err, errlen, rc, "missing \"cmd\" (status, certs, cert, refresh, reload)");
        goto out;
    }
    size_t i;
    for (i = 0; i < N_VERBS; i++)
        if (strcmp(cmd, verb_names[i]) == 0)
            break;
    if (i == N_VERBS) {
        fail(err, errlen, rc, "unknown \"cmd\"; expected status, certs, cert, refresh or reload");
        goto out;
    }
    req->verb = (enum api_verb)i;
    rc = parse_args(o, req, err, errlen);
out:
    json_decref(o);
    if (rc < 0)
        memset(req, 0, sizeof(*req));
    return rc;
}

/* Serialises O on one line with a newline; takes O. */
static char *line_of(json_t *o)
{
    if (o == NULL)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (s == NULL)
        return NULL;
    size_t l = strlen(s);
    char *line = realloc(s, l + 2);
    if (line == NULL) {
        free(s);
        return NULL;
    }
    line[l] = '\n';
    line[l + 1] = '\0';
    return line;
}

char *api_format_request(const struct api_request *req)
{
    if ((unsigned)req->verb >= N_VERBS)
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "cmd", json_string(verb_names[req->verb]));
    if (req->verb == API_REFRESH && req->all)
        json_object_set_new(o, "all", json_true());
    else if (req->verb == API_CERT || req->verb == API_REFRESH)
        json_object_set_new(o, "name", json_string(req->name));
    return line_of(o);
}

char *api_reply_ok(json_t *result)
{
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(result);
        return NULL;
    }
    json_object_set_new(o, "ok", json_true());
    if (result != NULL)
        json_object_set_new(o, "result", result);
    return line_of(o);
}

char *api_reply_error(const char *msg, json_t *errors)
{
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(errors);
        return NULL;
    }
    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "error", json_string(msg));
    if (errors != NULL)
        json_object_set_new(o, "errors", errors);
    return line_of(o);
}

int api_list_begin(struct api_list_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->f = open_memstream(&w->buf, &w->len);
    if (w->f == NULL)
        return -ENOMEM;
    fputs("{\"ok\":true,\"result\":[", w->f);
    return 0;
}

void api_list_add(struct api_list_writer *w, json_t *item)
{
    char *s = item ? json_dumps(item, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(item);
    if (s == NULL) {
        w->err = -ENOMEM;
        return;
    }
    if (w->n++ > 0)
        fputc(',', w->f);
    fputs(s, w->f);
    free(s);
}

char *api_list_end(struct api_list_writer *w)
{
    fputs("]}\n", w->f);
    if (fclose(w->f) != 0)
        w->err = -ENOMEM;
    if (w->err < 0) {
        free(w->buf);
        return NULL;
    }
    return w->buf;
}

char *api_time_str(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (t <= 0 || gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
    return buf;
}

static json_t *time_json(int64_t t)
{
    char buf[32];
    return t > 0 ? json_string(api_time_str(t, buf, sizeof(buf))) : json_null();
}

static const char *ocsp_status_str(enum stapler_ocsp_status c)
{
    switch (c) {
    case STAPLER_OCSP_GOOD:
        return "good";
    case STAPLER_OCSP_REVOKED:
        return "revoked";
    case STAPLER_OCSP_UNKNOWN:
        return "unknown";
    default:
        return "none";
    }
}

json_t *api_cert_json(const struct stapler_cert_status *st)
{
    /* By hand rather than 32 snprintf calls: `certs` formats one key per
     * certificate and 100,000 of them must not stall the daemon's loop. */
    static const char digits[] = "0123456789abcdef";
    char hex[2 * STAPLE_TABLE_KEY_LEN + 1];
    for (size_t i = 0; i < STAPLE_TABLE_KEY_LEN; i++) {
        hex[2 * i] = digits[st->key[i] >> 4];
        hex[2 * i + 1] = digits[st->key[i] & 0xf];
    }
    hex[2 * STAPLE_TABLE_KEY_LEN] = '\0';

    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "name", json_string(st->name ? st->name : ""));
    json_object_set_new(o, "key", json_string(hex));
    json_object_set_new(o, "responder", json_string(st->responder ? st->responder : ""));
    json_object_set_new(o, "state", json_string(stapler_state_name(st->state)));
    json_object_set_new(o, "ocsp_status", json_string(ocsp_status_str(st->cert_status)));
    json_object_set_new(o, "policy", json_string(stapler_policy_name(st->policy)));
    json_object_set_new(o, "must_staple", json_boolean(st->must_staple));
    json_object_set_new(o, "must_staple_warning", json_boolean(st->must_staple_warning));
    json_object_set_new(o, "fetch_in_flight", json_boolean(st->fetch_in_flight));
    json_object_set_new(o, "this_update", time_json(st->this_update));
    json_object_set_new(o, "next_update", time_json(st->next_update));
    json_object_set_new(o, "next_refresh", time_json(st->next_refresh));
    json_object_set_new(o, "revocation_time", time_json(st->revocation_time));
    json_object_set_new(o, "not_after", time_json(st->not_after));
    json_object_set_new(o, "last_fetch", time_json(st->last_fetch));
    json_object_set_new(o, "last_reason", json_string(stapler_reason_name(st->last_reason)));
    json_object_set_new(o, "last_error", json_string(st->last_error ? st->last_error : ""));
    json_object_set_new(o, "consecutive_failures", json_integer(st->consecutive_failures));
    json_object_set_new(o, "urls", json_integer(st->n_urls));
    return o;
}
