/* Unit tests of the control API's request parser, its reply lines, the
 * certificate JSON, and ternctl's table formatting of those replies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "check.h"
#include "stapler.h"
#include "ternctl_format.h"

static int parse(const char *s, struct api_request *r, char *err)
{
    return api_parse_request(s, strlen(s), r, err, 256);
}

static void test_parse_valid(void)
{
    struct api_request r;
    char err[256];

    CHECK_EQ_INT(parse("{\"cmd\":\"status\"}", &r, err), 0);
    CHECK_EQ_INT(r.verb, API_STATUS);
    CHECK_EQ_INT(parse(" { \"cmd\" : \"certs\" } \r", &r, err), 0);
    CHECK_EQ_INT(r.verb, API_CERTS);
    CHECK_EQ_INT(parse("{\"cmd\":\"cert\",\"name\":\"www\"}", &r, err), 0);
    CHECK_EQ_INT(r.verb, API_CERT);
    CHECK(strcmp(r.name, "www") == 0);
    CHECK_EQ_INT(parse("{\"name\":\"api\",\"cmd\":\"refresh\"}", &r, err), 0);
    CHECK_EQ_INT(r.verb, API_REFRESH);
    CHECK(strcmp(r.name, "api") == 0);
    CHECK(!r.all);
    CHECK_EQ_INT(parse("{\"cmd\":\"refresh\",\"all\":true}", &r, err), 0);
    CHECK(r.all);
    CHECK(r.name[0] == '\0');
    CHECK_EQ_INT(parse("{\"cmd\":\"reload\"}", &r, err), 0);
    CHECK_EQ_INT(r.verb, API_RELOAD);

    /* Not NUL-terminated: the parser takes a length. */
    const char raw[] = "{\"cmd\":\"certs\"}GARBAGE";
    CHECK_EQ_INT(api_parse_request(raw, 15, &r, err, sizeof(err)), 0);
    CHECK_EQ_INT(r.verb, API_CERTS);
}

static void expect_error(const char *req, int rc, const char *msg_part)
{
    struct api_request r;
    char err[256] = "";
    int got = parse(req, &r, err);
    CHECK_EQ_INT(got, rc);
    if (strstr(err, msg_part) == NULL) {
        fprintf(stderr, "  request %s: error \"%s\" lacks \"%s\"\n", req, err, msg_part);
        CHECK(0);
    }
}

static void test_parse_errors(void)
{
    expect_error("", -EINVAL, "not JSON");
    expect_error("status", -EINVAL, "not JSON");
    expect_error("{\"cmd\":\"status\"", -EINVAL, "not JSON");
    expect_error("[\"status\"]", -EINVAL, "expected a JSON object");
    expect_error("{}", -EINVAL, "missing \"cmd\"");
    expect_error("{\"cmd\":5}", -EINVAL, "missing \"cmd\"");
    expect_error("{\"cmd\":\"shutdown\"}", -EINVAL, "unknown \"cmd\"");
    expect_error("{\"cmd\":\"cert\"}", -EINVAL, "'cert' needs \"name\"");
    expect_error("{\"cmd\":\"cert\",\"name\":\"\"}", -EINVAL, "'name' must be");
    expect_error("{\"cmd\":\"cert\",\"name\":7}", -EINVAL, "'name' must be");
    expect_error("{\"cmd\":\"refresh\"}", -EINVAL, "either \"name\" or \"all\"");
    expect_error("{\"cmd\":\"refresh\",\"all\":false}", -EINVAL, "either");
    expect_error("{\"cmd\":\"refresh\",\"all\":true,\"name\":\"a\"}", -EINVAL, "either");
    expect_error("{\"cmd\":\"refresh\",\"all\":\"yes\"}", -EINVAL, "'all' must be true");
    expect_error("{\"cmd\":\"status\",\"name\":\"a\"}", -EINVAL,
                 "'name' is not an argument of 'status'");
    expect_error("{\"cmd\":\"status\",\"verbose\":1}", -EINVAL, "'verbose' is not an argument");
    expect_error("{\"cmd\":\"status\",\"cmd\":\"reload\"}", -EINVAL, "not JSON: duplicate");
    expect_error("{\"cmd\":\"cert\",\"name\":\"a\\u0000b\"}", -EINVAL, "not JSON");

    char big[API_REQUEST_MAX + 100];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"cmd\":\"status\"}", 16);
    expect_error(big, -EMSGSIZE, "longer than 4096");

    char longname[400];
    snprintf(longname, sizeof(longname), "{\"cmd\":\"cert\",\"name\":\"%0200d\"}", 0);
    expect_error(longname, -EINVAL, "1 to 128");
}

static void test_format_request(void)
{
    struct api_request r = {.verb = API_REFRESH, .all = true}, back;
    char err[256];
    char *s = api_format_request(&r);
    CHECK(s && strcmp(s, "{\"cmd\": \"refresh\", \"all\": true}\n") != 0); /* compact */
    CHECK(s && strcmp(s, "{\"cmd\":\"refresh\",\"all\":true}\n") == 0);
    CHECK(s && api_parse_request(s, strlen(s) - 1, &back, err, sizeof(err)) == 0 && back.all);
    free(s);

    r = (struct api_request){.verb = API_CERT};
    strcpy(r.name, "www.example");
    s = api_format_request(&r);
    CHECK(s && strcmp(s, "{\"cmd\":\"cert\",\"name\":\"www.example\"}\n") == 0);
    free(s);
}

static void test_replies(void)
{
    char *s = api_reply_ok(json_pack("{s:i}", "scheduled", 3));
    CHECK(s && strcmp(s, "{\"ok\":true,\"result\":{\"scheduled\":3}}\n") == 0);
    free(s);
    s = api_reply_ok(NULL);
    CHECK(s && strcmp(s, "{\"ok\":true}\n") == 0);
    free(s);
    s = api_reply_error("no certificate named \"x\"\n", NULL);
    /* The newline inside the message is escaped: a reply is always one line. */
    CHECK(s && strcmp(s, "{\"ok\":false,\"error\":\"no certificate named \\\"x\\\"\\n\"}\n") == 0);
    free(s);
    s = api_reply_error("configuration refused", json_pack("[s,s]", "a:1:2: x", "b"));
    CHECK(s && strcmp(s, "{\"ok\":false,\"error\":\"configuration refused\","
                         "\"errors\":[\"a:1:2: x\",\"b\"]}\n") == 0);
    free(s);
    s = api_reply_error("caf\xc3\xa9", NULL);
    CHECK(s && strstr(s, "caf\\u00E9") != NULL); /* ASCII on the wire */
    free(s);
}

static struct stapler_cert_status sample(const char *name, enum stapler_state state)
{
    struct stapler_cert_status st = {0};
    st.name = name;
    for (int i = 0; i < STAPLE_TABLE_KEY_LEN; i++)
        st.key[i] = (uint8_t)(0xa0 + i);
    st.responder = "http://127.0.0.1:8888/";
    st.state = state;
    st.cert_status = state == STAPLER_STATE_REVOKED ? STAPLER_OCSP_REVOKED : STAPLER_OCSP_GOOD;
    st.policy = STAPLER_POLICY_LENIENT;
    st.this_update = 1795000000; /* 2026-11-18T11:06:40Z */
    st.next_update = 1795604800;
    st.next_refresh = 1795302400;
    st.last_reason = STAPLER_REASON_OK;
    st.last_error = "";
    return st;
}

static void test_cert_json(void)
{
    struct stapler_cert_status st = sample("www", STAPLER_STATE_GOOD);
    json_t *o = api_cert_json(&st);
    CHECK(o != NULL);
    CHECK(strcmp(json_string_value(json_object_get(o, "name")), "www") == 0);
    CHECK(strncmp(json_string_value(json_object_get(o, "key")), "a0a1a2a3", 8) == 0);
    CHECK_EQ_INT(strlen(json_string_value(json_object_get(o, "key"))), 64);
    CHECK(strcmp(json_string_value(json_object_get(o, "state")), "good") == 0);
    CHECK(strcmp(json_string_value(json_object_get(o, "this_update")),
                 "2026-11-18T11:06:40Z") == 0);
    CHECK(json_is_null(json_object_get(o, "revocation_time")));
    CHECK(json_is_false(json_object_get(o, "must_staple")));
    CHECK(strcmp(json_string_value(json_object_get(o, "last_reason")), "ok") == 0);
    json_decref(o);

    char buf[32];
    CHECK(strcmp(api_time_str(0, buf, sizeof(buf)), "-") == 0);
    CHECK(strcmp(api_time_str(86400, buf, sizeof(buf)), "1970-01-02T00:00:00Z") == 0);
}

/* The element-by-element list reply is byte for byte the whole-array one. */
static void test_list_writer(void)
{
    struct api_list_writer w;
    struct stapler_cert_status a = sample("a", STAPLER_STATE_GOOD);
    struct stapler_cert_status b = sample("b\"q", STAPLER_STATE_REVOKED);

    CHECK_EQ_INT(api_list_begin(&w), 0);
    char *empty = api_list_end(&w);
    CHECK(empty && strcmp(empty, "{\"ok\":true,\"result\":[]}\n") == 0);
    free(empty);

    CHECK_EQ_INT(api_list_begin(&w), 0);
    api_list_add(&w, api_cert_json(&a));
    api_list_add(&w, api_cert_json(&b));
    char *streamed = api_list_end(&w);
    json_t *arr = json_array();
    json_array_append_new(arr, api_cert_json(&a));
    json_array_append_new(arr, api_cert_json(&b));
    char *whole = api_reply_ok(arr);
    CHECK(streamed && whole && strcmp(streamed, whole) == 0);
    free(streamed);
    free(whole);

    /* A failed element makes the whole reply fail, not a truncated list. */
    CHECK_EQ_INT(api_list_begin(&w), 0);
    api_list_add(&w, NULL);
    CHECK(api_list_end(&w) == NULL);
}

/* Reads what FN printed into a string the caller frees. */
static char *capture(int (*fn)(FILE *, const json_t *), const json_t *arg, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = fn(f, arg);
    fclose(f);
    return buf;
}

static void test_table(void)
{
    struct stapler_cert_status a = sample("www", STAPLER_STATE_GOOD);
    struct stapler_cert_status b = sample("api-long-name", STAPLER_STATE_FAILING);
    b.this_update = b.next_update = 0;
    b.responder = "";
    b.last_error = "connect: Connection refused";
    b.must_staple = true;
    b.must_staple_warning = true;
    struct stapler_cert_status c = sample("old", STAPLER_STATE_REVOKED);
    json_t *arr = json_array();
    json_array_append_new(arr, api_cert_json(&a));
    json_array_append_new(arr, api_cert_json(&b));
    json_array_append_new(arr, api_cert_json(&c));

    int rc;
    char *out = capture(ternctl_print_certs, arr, &rc);
    CHECK_EQ_INT(rc, 3);
    const char *want =
        "NAME           KEY           RESPONDER               STATE              "
        "THIS_UPDATE           NEXT_UPDATE           NEXT_REFRESH          MUST_STAPLE  LAST_ERROR\n"
        "www            a0a1a2a3a4a5  http://127.0.0.1:8888/  good               "
        "2026-11-18T11:06:40Z  2026-11-25T11:06:40Z  2026-11-21T23:06:40Z  no           -\n"
        "api-long-name  a0a1a2a3a4a5  -                       failing (at risk)  "
        "-                     -                     2026-11-21T23:06:40Z  yes          "
        "connect: Connection refused\n"
        "old            a0a1a2a3a4a5  http://127.0.0.1:8888/  revoked!           "
        "2026-11-18T11:06:40Z  2026-11-25T11:06:40Z  2026-11-21T23:06:40Z  no           -\n";
    if (out == NULL || strcmp(out, want) != 0) {
        fprintf(stderr, "table:\n%s\nwanted:\n%s", out ? out : "(null)", want);
        CHECK(0);
    }
    free(out);

    /* Every line has its columns at the same offsets. */
    json_t *empty = json_array();
    out = capture(ternctl_print_certs, empty, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(out && strncmp(out, "NAME  KEY  RESPONDER  STATE", 27) == 0);
    free(out);
    json_decref(empty);

    json_t *notarr = json_object();
    out = capture(ternctl_print_certs, notarr, &rc);
    CHECK_EQ_INT(rc, -EINVAL);
    free(out);
    json_decref(notarr);

    out = capture(ternctl_print_cert, json_array_get(arr, 0), &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(out && strstr(out, "\nstate:                good\n") != NULL);
    CHECK(out && strstr(out, "\nthis_update:          2026-11-18T11:06:40Z\n") != NULL);
    CHECK(out && strncmp(out, "name:                 www\n", 26) == 0);
    free(out);
    json_decref(arr);

    json_t *status = json_pack("{s:i,s:{s:i,s:i},s:[s]}", "certs", 2, "by_state", "good", 1,
                               "revoked", 1, "errors", "x:1:1: bad");
    out = capture(ternctl_print_status, status, &rc);
    CHECK(out && strcmp(out, "certs:            2\nby_state.good:    1\n"
                             "by_state.revoked: 1\nerrors:           1\n  x:1:1: bad\n") == 0);
    free(out);
    json_decref(status);
}

int main(void)
{
    test_parse_valid();
    test_parse_errors();
    test_format_request();
    test_replies();
    test_cert_json();
    test_list_writer();
    test_table();
    return check_exit();
}
