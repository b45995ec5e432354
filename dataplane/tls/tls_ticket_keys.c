/* Session ticket keys shared by every core, and the ticket key callback.
 *
 * Layout: TLS_TICKET_SLOTS slots, each a key under a sequence counter, and a
 * generation number; slot (generation % TLS_TICKET_SLOTS) holds the current
 * key, the TLS_TICKET_KEYS_ACCEPTED_OLD slots before it the older ones still
 * accepted. The writer (main thread) fills the slot after the current one
 * and only then publishes the new generation, so readers, which never look
 * ahead of the generation they loaded, meet a slot being rewritten only if
 * they stall across a whole rotation cycle; the sequence counter detects it
 * and the reader gives up on that key (bounded retries, no lock). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls_pvt.h"
#include "tls_ticket_keys.h"

#define TLS_TICKET_SLOTS 4
#define TLS_TICKET_READ_TRIES 4

_Static_assert(TLS_TICKET_SLOTS > TLS_TICKET_KEYS_ACCEPTED_OLD + 1,
               "the slot being written must not be one readers accept");

struct tls_ticket_key {
    uint8_t name[TLS_TICKET_KEY_NAME_LEN];
    uint8_t hmac[TLS_TICKET_KEY_SECRET_LEN];
    uint8_t aes[TLS_TICKET_KEY_SECRET_LEN];
};

struct tls_ticket_slot {
    _Atomic uint32_t seq; /* odd while the writer rewrites key */
    struct tls_ticket_key key;
    _Atomic uint8_t valid;
};

struct tls_ticket_keys {
    _Atomic uint64_t generation; /* >= 1 once a key exists */
    int64_t last_change;         /* main thread only: seconds, 0 = never */
    struct tls_ticket_slot slot[TLS_TICKET_SLOTS];
};

struct tls_ticket_keys *tls_ticket_keys_new(void)
{
    struct tls_ticket_keys *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    if (tls_ticket_keys_rotate(k) != 0) {
        free(k);
        errno = EIO;
        return NULL;
    }
    return k;
}

void tls_ticket_keys_free(struct tls_ticket_keys *k)
{
    if (k == NULL)
        return;
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

uint64_t tls_ticket_keys_generation(const struct tls_ticket_keys *k)
{
    return atomic_load_explicit(&k->generation, memory_order_acquire);
}

/* Writer side of the slot's sequence counter. The release fence after the
 * odd store pairs with the reader's acquire fence before its second load of
 * seq: a reader that copied any new byte sees the odd or a newer value. */
static void slot_write(struct tls_ticket_slot *s, const struct tls_ticket_key *key)
{
    uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    memcpy(&s->key, key, sizeof(*key));
    atomic_store_explicit(&s->valid, 1, memory_order_relaxed);
    /* Pairs with the reader's acquire load of seq before copying. */
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

/* Publishes KEY as the next generation. Pairs with the acquire load of
 * generation in the readers. */
static void publish(struct tls_ticket_keys *k, const struct tls_ticket_key *key)
{
    uint64_t g = atomic_load_explicit(&k->generation, memory_order_relaxed) + 1;
    slot_write(&k->slot[g % TLS_TICKET_SLOTS], key);
    atomic_store_explicit(&k->generation, g, memory_order_release);
}

int tls_ticket_keys_rotate(struct tls_ticket_keys *k)
{
    struct tls_ticket_key key;
    if (RAND_bytes((unsigned char *)&key, sizeof(key)) != 1)
        return -EIO;
    publish(k, &key);
    OPENSSL_cleanse(&key, sizeof(key));
    k->last_change = 0; /* the schedule restarts at the next tick */
    return 0;
}

int tls_ticket_keys_tick(struct tls_ticket_keys *k, int64_t now, int64_t period)
{
    if (k->last_change == 0)
        k->last_change = now; /* the first key counts from the first tick */
    if (now - k->last_change < period)
        return 0;
    int rc = tls_ticket_keys_rotate(k);
    if (rc < 0)
        return rc;
    k->last_change = now;
    return 1;
}

int tls_ticket_keys_load_file(struct tls_ticket_keys *k, const char *path)
{
    enum { MAXREC = TLS_TICKET_KEYS_ACCEPTED_OLD + 1 };
    uint8_t buf[MAXREC * TLS_TICKET_KEY_FILE_RECORD + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = 0;
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n == 0 || n % TLS_TICKET_KEY_FILE_RECORD != 0 ||
        n / TLS_TICKET_KEY_FILE_RECORD > MAXREC) {
        OPENSSL_cleanse(buf, sizeof(buf));
        return -EINVAL;
    }
    /* Oldest first, so that the first record ends up current. */
    for (size_t i = n / TLS_TICKET_KEY_FILE_RECORD; i-- > 0;) {
        struct tls_ticket_key key;
        memcpy(&key, buf + i * TLS_TICKET_KEY_FILE_RECORD, sizeof(key));
        publish(k, &key);
        OPENSSL_cleanse(&key, sizeof(key));
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    k->last_change = 0; /* the schedule restarts at the next tick */
    return 0;
}

/* Copies the key of slot S; false if it kept changing or is empty. */
static bool slot_read(const struct tls_ticket_slot *s, struct tls_ticket_key *out)
{
    for (int t = 0; t < TLS_TICKET_READ_TRIES; t++) {
        uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        bool valid = atomic_load_explicit(&s->valid, memory_order_relaxed);
        memcpy(out, &s->key, sizeof(*out));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == s1)
            return valid;
    }
    return false;
}

static int set_hmac_key(EVP_MAC_CTX *hctx, const uint8_t *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                  (void *)key,
                                                  TLS_TICKET_KEY_SECRET_LEN);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -1;
}

static int encrypt_ticket(struct tls_worker *w, unsigned char key_name[16],
                          unsigned char *iv, EVP_CIPHER_CTX *ctx,
                          EVP_MAC_CTX *hctx)
{
    const struct tls_ticket_keys *k = w->cfg->ticket_keys;
    uint64_t g = atomic_load_explicit(&k->generation, memory_order_acquire);
    struct tls_ticket_key key;
    if (!slot_read(&k->slot[g % TLS_TICKET_SLOTS], &key)) {
        tls_count(w, TLS_CTR_TICKET_KEY_BUSY);
        return 0; /* no ticket this time */
    }
    int ret = -1;
    if (RAND_bytes_ex(w->libctx, iv, 16, 0) == 1 &&
        EVP_EncryptInit_ex(ctx, w->ticket_cipher, NULL, key.aes, iv) == 1 &&
        set_hmac_key(hctx, key.hmac) == 0) {
        memcpy(key_name, key.name, TLS_TICKET_KEY_NAME_LEN);
        tls_count(w, TLS_CTR_TICKET_ISSUED);
        ret = 1;
    }
    OPENSSL_cleanse(&key, sizeof(key));
    return ret;
}

static int decrypt_ticket(struct tls_worker *w, bool tls13,
                          const unsigned char *key_name, unsigned char *iv,
                          EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx)
{
    const struct tls_ticket_keys *k = w->cfg->ticket_keys;
    uint64_t g = atomic_load_explicit(&k->generation, memory_order_acquire);
    struct tls_ticket_key key;
    for (uint64_t age = 0; age <= TLS_TICKET_KEYS_ACCEPTED_OLD && age < g; age++) {
        if (!slot_read(&k->slot[(g - age) % TLS_TICKET_SLOTS], &key) ||
            memcmp(key.name, key_name, TLS_TICKET_KEY_NAME_LEN) != 0)
            continue;
        int ok = EVP_DecryptInit_ex(ctx, w->ticket_cipher, NULL, key.aes, iv) == 1 &&
                 set_hmac_key(hctx, key.hmac) == 0;
        OPENSSL_cleanse(&key, sizeof(key));
        if (!ok)
            return -1;
        /* 2 asks OpenSSL for a fresh ticket under the current key: always
         * in TLS 1.3, whose tickets are for one use (RFC 8446 C.4; with 1
         * OpenSSL sends none after a resumption and the client's next
         * connection is a full handshake), in TLS 1.2 once the key aged. */
        tls_count(w, age == 0 ? TLS_CTR_TICKET_ACCEPTED : TLS_CTR_TICKET_RENEWED);
        return age == 0 && !tls13 ? 1 : 2;
    }
    OPENSSL_cleanse(&key, sizeof(key));
    tls_count(w, TLS_CTR_TICKET_UNKNOWN_KEY);
    return 0; /* full handshake */
}

int _tls_ticket_key_cb(SSL *ssl, unsigned char key_name[16],
                       unsigned char iv[EVP_MAX_IV_LENGTH],
                       EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_conn *c = SSL_get_app_data(ssl);
    if (enc)
        return encrypt_ticket(c->w, key_name, iv, ctx, hctx);
    return decrypt_ticket(c->w, SSL_version(ssl) == TLS1_3_VERSION, key_name,
                          iv, ctx, hctx);
}
