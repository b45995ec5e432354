/* Fuzz target: arbitrary client bytes into a server tls_conn.
 *
 * The first byte chooses how the rest is cut into feeds (TCP segments come
 * in any sizes); every feed is followed by a read and a pull, as the proxy
 * would do. The server has a real certificate (made in memory at start),
 * tickets, ALPN and a staple table with one response, so that SNI, ALPN,
 * status_request, PSK and ticket parsing are all reachable. Each input must
 * leave no connection in use and no OpenSSL error queued. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "stapler/staple_table.h"
#include "tls_config.h"
#include "tls_conn.h"
#include "tls_ticket_keys.h"
#include "tls_worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Static so that they stay reachable (no leak report) for the process. */
static struct tls_worker *worker;
static struct staple_table *tw, *tr;
static struct tls_config *cfg;
static struct tls_ticket_keys *keys;
static char dir[96];
static char table_name[64];

static int write_cert(const char *cert_path, const char *key_path)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = key && x;
    if (ok) {
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"fuzz.test", -1, -1, 0);
        X509_set_issuer_name(x, n);
        ok = X509_sign(x, key, EVP_sha256()) > 0;
    }
    FILE *c = ok ? fopen(cert_path, "w") : NULL;
    FILE *k = ok ? fopen(key_path, "w") : NULL;
    ok = c && k && PEM_write_X509(c, x) == 1 &&
         PEM_write_PrivateKey(k, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (c)
        fclose(c);
    if (k)
        fclose(k);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

static void cleanup(void)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    unlink(path);
    rmdir(dir);
    staple_table_unlink(table_name);
}

static int setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tern-fuzz-tls-%d-XXXXXX", (int)getpid());
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(table_name, sizeof(table_name), "/tern-fuzz-tls-%d", (int)getpid());
    atexit(cleanup);
    static char cert[160], key[160];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    if (write_cert(cert, key) != 0)
        return -1;
    char err[256];
    struct staple_table_params tp = {.capacity = 4, .max_response = 4096};
    /* Kept open for the life of the process: the writer owns the table. */
    tw = staple_table_open_writer(table_name, &tp, err, sizeof(err));
    tr = staple_table_attach_reader(table_name, err, sizeof(err));
    if (tw == NULL || tr == NULL)
        return -1;
    static const char *const names[] = {"fuzz.test", "*.fuzz.test"};
    struct tls_certset_params set = {.names = names, .n_names = 2, .n_certs = 1,
                                     .certs = {{.chain_path = cert, .key_path = key}}};
    struct tls_listener_params l = {.alpn = "h2,http/1.1"};
    struct tls_config_params p = {.certsets = &set, .n_certsets = 1, .listeners = &l,
                                  .n_listeners = 1, .max_conns = 2,
                                  .staple_table = tr,
                                  .ticket_keys = keys = tls_ticket_keys_new()};
    cfg = tls_config_new(&p, err, sizeof(err));
    if (cfg == NULL)
        return -1;
    uint8_t leaf[32];
    static const uint8_t resp[] = {0x30, 0x03, 0x0a, 0x01, 0x00}; /* OCSPResponse, status 0 */
    tls_config_leaf_key(cfg, 0, 0, leaf);
    if (staple_table_publish(tw, leaf, resp, sizeof(resp), 0, (int64_t)1 << 40) != 0)
        return -1;
    worker = tls_worker_new(cfg, 0, err, sizeof(err));
    return worker ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (setup() != 0) {
            fprintf(stderr, "fuzz_tls_server: setup failed\n");
            abort();
        }
        ready = 1;
    }
    if (size == 0)
        return 0;
    size_t chunk = 1 + (data[0] % 64) * 37;
    data++, size--;
    struct tls_conn *c = tls_conn_accept(worker, 0, 0);
    if (c == NULL)
        abort();
    uint8_t scratch[16384];
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t k = tls_conn_feed(c, data + off, n);
        ssize_t r;
        while ((r = tls_conn_read(c, scratch, sizeof(scratch))) > 0)
            if (tls_conn_write(c, scratch, (size_t)r) < 0)
                break;
        while (tls_conn_pull(c, scratch, sizeof(scratch)) > 0)
            ;
        if (k < 0 || r < 0)
            break;
        if (k == 0 && r == 0) /* buffer full and nothing readable: stuck */
            break;
        off += (size_t)k;
    }
    tls_conn_check_deadline(c, UINT64_MAX);
    tls_conn_release(c);
    if (tls_worker_conns_in_use(worker) != 0 || ERR_peek_error() != 0)
        abort();
    return 0;
}
