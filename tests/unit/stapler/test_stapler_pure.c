/* Arithmetic and encoding of the stapler that needs no responder: refresh
 * points, backoff, the GET/POST choice, the names of states and reasons. */
#include <errno.h>

#include <openssl/evp.h>

#include "check.h"
#include "ocsp_request.h"
#include "stapler.h"
#include "stapler_schedule.h"
#include "testpki.h"

static void test_refresh_at(void)
{
    /* Window 0..1000 s, midpoint, no jitter. */
    CHECK_EQ_INT(stapler_refresh_at_ms(0, 1000000, 0.5, 0.0, 0.3), 500000);
    /* Jitter +/-10 %: u = 0 -> 400 s, u -> 1 -> just under 600 s. */
    CHECK_EQ_INT(stapler_refresh_at_ms(0, 1000000, 0.5, 0.1, 0.0), 400000);
    CHECK(stapler_refresh_at_ms(0, 1000000, 0.5, 0.1, 0.999999) > 599000);
    CHECK(stapler_refresh_at_ms(0, 1000000, 0.5, 0.1, 0.999999) < 600000);
    /* Clamped: never after the last tenth, never before thisUpdate. */
    CHECK_EQ_INT(stapler_refresh_at_ms(0, 1000000, 0.95, 0.0, 0.5), 900000);
    CHECK_EQ_INT(stapler_refresh_at_ms(1000, 2000, 0.01, 0.4, 0.0), 1000);
    /* Real dates: a 7-day response refreshed at 3.5 days. */
    int64_t t0 = 1790000000000, week = 7 * 86400000LL;
    CHECK_EQ_INT(stapler_refresh_at_ms(t0, t0 + week, 0.5, 0.0, 0.7), t0 + week / 2);
    /* Degenerate window. */
    CHECK_EQ_INT(stapler_refresh_at_ms(5000, 5000, 0.5, 0.1, 0.5), 5000);
    /* Spread: 1000 draws at +/-5 % all inside [45 %, 55 %]. */
    uint64_t s = 88172645463325252ull;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int64_t t = stapler_refresh_at_ms(0, 100000, 0.5, 0.05, (double)(s >> 11) / 9007199254740992.0);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    CHECK(lo >= 45000 && hi <= 55000 && hi - lo > 8000);
}

static void test_backoff(void)
{
    /* u = 0 gives the lower half-bound, u -> 1 the doubled delay. */
    CHECK_EQ_INT(stapler_backoff_ms(1, 1000, 60000, 0.0), 500);
    CHECK_EQ_INT(stapler_backoff_ms(1, 1000, 60000, 0.999999), 999);
    CHECK_EQ_INT(stapler_backoff_ms(2, 1000, 60000, 0.0), 1000);
    CHECK_EQ_INT(stapler_backoff_ms(3, 1000, 60000, 0.0), 2000);
    CHECK_EQ_INT(stapler_backoff_ms(6, 1000, 60000, 0.0), 16000);
    CHECK_EQ_INT(stapler_backoff_ms(7, 1000, 60000, 0.0), 30000); /* 64 s capped to 60 */
    CHECK(stapler_backoff_ms(7, 1000, 60000, 0.999999) < 60000);
    /* A huge failure count neither overflows nor exceeds the cap. */
    CHECK_EQ_INT(stapler_backoff_ms(4000000000u, 1000, 60000, 0.0), 30000);
    CHECK(stapler_backoff_ms(4000000000u, 1000, 60000, 0.5) <= 60000);
    /* failures = 0 is treated as the first failure. */
    CHECK_EQ_INT(stapler_backoff_ms(0, 1000, 60000, 0.0), 500);
    /* Monotonic in failures for a fixed draw, until the cap. */
    int64_t prev = 0;
    for (uint32_t f = 1; f < 40; f++) {
        int64_t d = stapler_backoff_ms(f, 250, 600000, 0.5);
        CHECK(d >= prev && d <= 600000);
        prev = d;
    }
}

/* A self-signed CA made on the spot (no files needed here). */
static X509 *make_ca(EVP_PKEY **key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"pure ca", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_sign(x, k, EVP_sha256());
    *key = k;
    return x;
}

static void test_get_or_post(void)
{
    EVP_PKEY *ck, *lk;
    X509 *ca = make_ca(&ck);
    X509 *leaf = make_cert(ca, ck, "leaf", &lk, NULL, NULL);
    uint8_t *der;
    size_t len;
    CHECK_EQ_INT(ocsp_request_build(leaf, ca, &der, &len), 0);
    /* RFC 5019 request: SEQUENCE{tbsRequest{requestList{Request{CertID}}}},
     * SHA-1 CertID, no nonce extension: about 80 bytes. */
    CHECK(len > 60 && len < 100);
    OCSP_REQUEST *req = NULL;
    const unsigned char *p = der;
    req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    CHECK(req != NULL);
    CHECK_EQ_INT(OCSP_request_onereq_count(req), 1);
    CHECK_EQ_INT(OCSP_REQUEST_get_ext_count(req), 0); /* no nonce */
    OCSP_REQUEST_free(req);

    char url[OCSP_REQUEST_GET_MAX + 1];
    int n = ocsp_request_get_url("http://ocsp.example.test", der, len, url, sizeof(url));
    CHECK(n > 0 && n < OCSP_REQUEST_GET_MAX);
    CHECK(strncmp(url, "http://ocsp.example.test/", 25) == 0);
    CHECK(strchr(url + 25, '+') == NULL && strchr(url + 25, '/') == NULL &&
          strchr(url + 25, '=') == NULL);
    CHECK_EQ_INT((int)strlen(url), n);
    /* Base that already ends in '/': no double slash. */
    n = ocsp_request_get_url("http://ocsp.example.test/", der, len, url, sizeof(url));
    CHECK(n > 0 && strstr(url, "test//") == NULL);
    /* A base URL long enough to push the whole URL to 255: POST. */
    char base[300];
    memset(base, 'a', sizeof(base));
    memcpy(base, "http://x/", 9);
    size_t room = 254 - 1 - 4 * ((len + 2) / 3); /* longest base still under 255 with no escapes */
    base[room] = '\0';
    int n_short = ocsp_request_get_url(base, der, len, url, sizeof(url));
    base[room] = 'a';
    base[200] = '\0';
    int n_long = ocsp_request_get_url(base, der, len, url, sizeof(url));
    CHECK_EQ_INT(n_long, -E2BIG);
    /* The short one is GET only if no character needed escaping; either
     * way it never reaches 255. */
    CHECK(n_short == -E2BIG || (n_short > 0 && n_short < OCSP_REQUEST_GET_MAX));
    /* Escapes: a known block with '+', '/' and '='. */
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf, 0x00}; /* base64 "+/+/AA==" */
    n = ocsp_request_get_url("http://h", bytes, sizeof(bytes), url, sizeof(url));
    CHECK(n > 0 && strcmp(url, "http://h/%2B%2F%2B%2FAA%3D%3D") == 0);
    /* Too small a buffer is E2BIG, not an overflow. */
    CHECK_EQ_INT(ocsp_request_get_url("http://h", bytes, sizeof(bytes), url, 12), -E2BIG);

    OPENSSL_free(der);
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(lk);
}

static void test_names(void)
{
    CHECK(strcmp(stapler_state_name(STAPLER_STATE_GOOD), "good") == 0);
    CHECK(strcmp(stapler_state_name(STAPLER_STATE_NO_OCSP_URL), "no-ocsp-url") == 0);
    CHECK(strcmp(stapler_state_name((enum stapler_state)99), "?") == 0);
    CHECK(strcmp(stapler_reason_name(STAPLER_REASON_TRY_LATER), "try_later") == 0);
    for (int i = 0; i < STAPLER_STATE__COUNT; i++)
        CHECK(stapler_state_name(i)[0] != '?' && stapler_state_description(i)[0] != '?');
    for (int i = 0; i < STAPLER_REASON__COUNT; i++)
        CHECK(stapler_reason_name(i)[0] != '?' && stapler_reason_description(i)[0] != '?');
    enum stapler_policy p;
    CHECK(stapler_policy_parse("strict", &p) == 0 && p == STAPLER_POLICY_STRICT);
    CHECK(stapler_policy_parse("must-staple", &p) == 0 && p == STAPLER_POLICY_MUST_STAPLE);
    CHECK(stapler_policy_parse("must_staple", &p) == 0 && p == STAPLER_POLICY_MUST_STAPLE);
    CHECK_EQ_INT(stapler_policy_parse("sometimes", &p), -EINVAL);
    CHECK(strcmp(stapler_policy_name(STAPLER_POLICY_LENIENT), "lenient") == 0);
}

int main(void)
{
    test_refresh_at();
    test_backoff();
    test_get_or_post();
    test_names();
    return check_exit();
}
