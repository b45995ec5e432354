/* The staple table: OCSP responses in POSIX shared memory, one writer,
 * lock-free readers. Contract in staple_table.h; the layout and the reasons
 * for it are here.
 *
 * Layout of the shared object (all offsets from the start of the mapping):
 *
 *   [0, 4096)            header: magic, layout version, geometry, and a few
 *                        counters the writer keeps for the CLI
 *   [index_off, ...)     index: n_slots 64-bit words, open addressing with
 *                        linear probing, n_slots a power of two >= 2 *
 *                        capacity so that probes stay short
 *   [arena_off, ...)     arena: immutable records (64-byte header + DER),
 *                        each 64-byte aligned
 *
 * An index word is 0 (empty: ends a probe), 1 (tombstone: probe on), or
 * (record offset in 64-byte units << 24 | 24 bits of the key). The tag lets
 * a reader skip most foreign slots without touching their record.
 *
 * Why no seqlock on the slot: a writer killed between "begin" and "end" of a
 * seqlock would leave the slot odd forever and every reader retrying, which
 * breaks "a writer killed anywhere leaves the previous response published".
 * Instead a record is written completely in free arena space and made
 * visible by one release store of the slot's word. Nothing a reader can
 * reach is ever half-written, except a freed record being reused while a
 * slow reader still copies it; the record's version field protects that
 * case the way a sequence counter would: the writer stores a fresh version
 * (then a release fence) before it writes any other byte of a reused
 * record, and a reader accepts its copy only if the version and the slot's
 * word are unchanged after the copy (acquire fence before re-reading).
 *
 * Crash safety: the free-space map lives only in the writer's memory. A new
 * writer rebuilds it from the live records the index references, so space a
 * killed writer had allocated but not published (or had unpublished but not
 * freed) is reclaimed at the next attach.
 *
 * Memory: the object is created sparse (ftruncate); tmpfs only backs the
 * pages that are written, so resident memory follows the responses actually
 * published, not capacity times the largest response.
 */
#include "staple_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAGIC 0x3130545354524554ull /* "TERTST01" read as little endian */
#define ST_LAYOUT_VERSION 1u
#define ST_HEADER_BYTES 4096u
#define ST_PAGE 4096u
#define ST_REC_ALIGN 64u
#define ST_REC_SHIFT 6u
#define ST_WORD_EMPTY 0ull
#define ST_WORD_TOMB 1ull
#define ST_TAG_BITS 24u
#define ST_TAG_MASK ((1ull << ST_TAG_BITS) - 1)
#define ST_MAX_RESPONSE_LIMIT (16u * 1024u * 1024u)
#define ST_MAX_CAPACITY (1u << 28)
/* A reader that keeps meeting a record being replaced gives up after this
 * many tries and reports -EAGAIN: the handshake goes out without a staple
 * rather than the core spinning. */
#define ST_READ_RETRIES 16
/* Sizing of the default arena: an average OCSP response is 1-2 KiB. */
#define ST_AVG_RESPONSE 2048u

struct st_header {
    uint64_t magic;
    uint32_t layout_version;
    uint32_t header_bytes;
    uint32_t capacity;
    uint32_t n_slots;
    uint32_t max_response;
    uint32_t pad0;
    uint64_t index_off;
    uint64_t arena_off;
    uint64_t arena_bytes;
    uint64_t total_bytes;
    /* Written by the writer only, read by anyone (relaxed: statistics). */
    uint64_t next_version;  /* last version handed to a record */
    uint32_t max_probe;     /* longest displacement ever used */
    uint32_t entries;
    uint64_t response_bytes;
    uint64_t arena_used;
};

/* One record in the arena; immutable while any slot references it. */
struct st_record {
    uint64_t version; /* atomic; see the reuse protocol above */
    uint8_t key[STAPLE_TABLE_KEY_LEN];
    int64_t this_update;
    int64_t next_update;
    uint32_t len;
    uint32_t units; /* allocated size in 64-byte units, header included */
    uint8_t der[];
};

_Static_assert(sizeof(struct st_header) <= ST_HEADER_BYTES, "header fits its page");
_Static_assert(sizeof(struct st_record) == ST_REC_ALIGN, "record header is one line");

/* Writer-private free-space map: one stack of free block offsets per size
 * class (in 64-byte units), plus a bump pointer. */
struct st_free_class {
    uint64_t *offs; /* in units */
    uint32_t n, cap;
};

struct staple_table {
    uint8_t *base;
    size_t map_len;
    int fd;
    bool writer;
    uint32_t mask;
    uint32_t max_response;
    uint64_t arena_units;
    struct st_header *hdr;
    uint64_t *slots;
    uint8_t *arena;
    /* writer only */
    uint64_t bump;    /* first never-used unit */
    uint32_t n_classes;
    struct st_free_class *free;
};

static void st_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void st_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static inline uint64_t st_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint64_t st_key_hash(const uint8_t key[STAPLE_TABLE_KEY_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* SHA-256 output: already uniform */
    return h;
}

static inline uint64_t st_key_tag(const uint8_t key[STAPLE_TABLE_KEY_LEN])
{
    return ((uint64_t)key[8] | (uint64_t)key[9] << 8 | (uint64_t)key[10] << 16);
}

static inline uint64_t st_word(uint64_t off_units, uint64_t tag)
{
    return off_units << ST_TAG_BITS | tag;
}

static inline uint64_t st_word_off(uint64_t w)
{
    return w >> ST_TAG_BITS;
}

static inline bool st_word_live(uint64_t w)
{
    return w > ST_WORD_TOMB;
}

static inline struct st_record *st_rec(const struct staple_table *t, uint64_t off_units)
{
    return (struct st_record *)(t->arena + (off_units << ST_REC_SHIFT));
}

static uint32_t st_units_for(uint32_t len)
{
    return (uint32_t)((sizeof(struct st_record) + len + ST_REC_ALIGN - 1) >> ST_REC_SHIFT);
}

static uint64_t st_round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* ---- geometry ----------------------------------------------------------- */

static int st_geometry(const struct staple_table_params *p, struct st_header *h,
                       char *err, size_t errlen)
{
    if (p->capacity == 0 || p->capacity > ST_MAX_CAPACITY) {
        st_err(err, errlen, "capacity %u out of range 1..%u", p->capacity, ST_MAX_CAPACITY);
        return -EINVAL;
    }
    uint32_t max_response = p->max_response ? p->max_response : STAPLE_TABLE_DEFAULT_MAX_RESPONSE;
    if (max_response > ST_MAX_RESPONSE_LIMIT) {
        st_err(err, errlen, "max_response %u above %u", max_response, ST_MAX_RESPONSE_LIMIT);
        return -EINVAL;
    }
    uint32_t n_slots = 2;
    while (n_slots < 2ull * p->capacity)
        n_slots <<= 1;
    uint64_t arena = p->arena_bytes;
    if (arena == 0)
        arena = (uint64_t)p->capacity * ST_AVG_RESPONSE * 2;
    /* Room for at least two of the largest records (one live, one being
     * replaced) beyond unit 0, which is never used so that a live word is
     * never 0 or 1. */
    uint64_t floor = ST_REC_ALIGN + 2ull * st_units_for(max_response) * ST_REC_ALIGN;
    if (arena < floor)
        arena = floor;
    arena = st_round_up(arena, ST_PAGE);
    if ((arena >> ST_REC_SHIFT) >= (1ull << (64 - ST_TAG_BITS))) {
        st_err(err, errlen, "arena of %llu bytes too large", (unsigned long long)arena);
        return -EINVAL;
    }
    memset(h, 0, sizeof(*h));
    h->layout_version = ST_LAYOUT_VERSION;
    h->header_bytes = ST_HEADER_BYTES;
    h->capacity = p->capacity;
    h->n_slots = n_slots;
    h->max_response = max_response;
    h->index_off = ST_HEADER_BYTES;
    h->arena_off = st_round_up(h->index_off + (uint64_t)n_slots * sizeof(uint64_t), ST_PAGE);
    h->arena_bytes = arena;
    h->total_bytes = h->arena_off + arena;
    return 0;
}

/* Checks a header found in shared memory against what this build
 * understands and against the object's real size. */
static int st_check_header(const struct st_header *h, uint64_t file_size,
                           char *err, size_t errlen)
{
    if (h->magic == 0) {
        st_err(err, errlen, "staple table not initialised yet (its creator is starting or died)");
        return -EINVAL;
    }
    if (h->magic != ST_MAGIC) {
        st_err(err, errlen, "not a tern staple table (bad magic %016llx)",
               (unsigned long long)h->magic);
        return -EPROTO;
    }
    if (h->layout_version != ST_LAYOUT_VERSION || h->header_bytes != ST_HEADER_BYTES) {
        st_err(err, errlen,
               "staple table layout version %u (header %u bytes); this build understands "
               "version %u only",
               h->layout_version, h->header_bytes, ST_LAYOUT_VERSION);
        return -EPROTO;
    }
    if (h->n_slots == 0 || (h->n_slots & (h->n_slots - 1)) != 0 ||
        h->n_slots < h->capacity || h->max_response == 0 ||
        h->max_response > ST_MAX_RESPONSE_LIMIT || h->index_off != ST_HEADER_BYTES ||
        h->arena_off < h->index_off + (uint64_t)h->n_slots * 8 ||
        h->total_bytes != h->arena_off + h->arena_bytes) {
        st_err(err, errlen, "staple table header is inconsistent");
        return -EINVAL;
    }
    if (file_size < h->total_bytes) {
        st_err(err, errlen, "staple table truncated: %llu bytes, header says %llu",
               (unsigned long long)file_size, (unsigned long long)h->total_bytes);
        return -EINVAL;
    }
    return 0;
}

static void st_bind(struct staple_table *t)
{
    t->hdr = (struct st_header *)t->base;
    t->mask = t->hdr->n_slots - 1;
    t->max_response = t->hdr->max_response;
    t->slots = (uint64_t *)(t->base + t->hdr->index_off);
    t->arena = t->base + t->hdr->arena_off;
    t->arena_units = t->hdr->arena_bytes >> ST_REC_SHIFT;
}

/* ---- writer: free-space map --------------------------------------------- */

static int st_free_push(struct staple_table *t, uint64_t off, uint32_t units)
{
    if (units == 0)
        return 0;
    uint32_t c = units < t->n_classes ? units : t->n_classes - 1;
    struct st_free_class *fc = &t->free[c];
    if (fc->n == fc->cap) {
        uint32_t ncap = fc->cap ? fc->cap * 2 : 16;
        uint64_t *n = realloc(fc->offs, (size_t)ncap * 2 * sizeof(uint64_t));
        if (n == NULL)
            return -ENOMEM;
        fc->offs = n;
        fc->cap = ncap;
    }
    /* Pairs (offset, units): the last class holds blocks of mixed sizes. */
    fc->offs[2 * fc->n] = off;
    fc->offs[2 * fc->n + 1] = units;
    fc->n++;
    return 0;
}

/* Returns the offset of a block of UNITS, or 0 when the arena is full
 * (unit 0 is never handed out). Exact size first (steady-state republishing
 * of same-sized responses reuses blocks), then never-used space, then the
 * smallest larger free block, split. */
static uint64_t st_alloc(struct staple_table *t, uint32_t units)
{
    uint32_t c = units < t->n_classes ? units : t->n_classes - 1;
    struct st_free_class *fc = &t->free[c];
    for (uint32_t i = fc->n; i-- > 0;) {
        if (fc->offs[2 * i + 1] == units) {
            uint64_t off = fc->offs[2 * i];
            fc->offs[2 * i] = fc->offs[2 * (fc->n - 1)];
            fc->offs[2 * i + 1] = fc->offs[2 * (fc->n - 1) + 1];
            fc->n--;
            return off;
        }
        if (c < t->n_classes - 1)
            break;
    }
    if (t->bump + units <= t->arena_units) {
        uint64_t off = t->bump;
        t->bump += units;
        return off;
    }
    for (uint32_t k = c + 1; k < t->n_classes; k++) {
        fc = &t->free[k];
        for (uint32_t i = 0; i < fc->n; i++) {
            uint64_t bunits = fc->offs[2 * i + 1];
            if (bunits < units)
                continue;
            uint64_t off = fc->offs[2 * i];
            fc->offs[2 * i] = fc->offs[2 * (fc->n - 1)];
            fc->offs[2 * i + 1] = fc->offs[2 * (fc->n - 1) + 1];
            fc->n--;
            /* The remainder goes back; if that fails for lack of memory it
             * is leaked until the next writer attach rebuilds the map. */
            (void)st_free_push(t, off + units, (uint32_t)(bunits - units));
            return off;
        }
    }
    return 0;
}

static int st_cmp_extent(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Rebuilds the free-space map and the header's counters from the records
 * the index references. Everything else in the arena is free: that is how a
 * killed writer's half-done publish is reclaimed. */
static int st_rebuild(struct staple_table *t, char *err, size_t errlen)
{
    struct st_header *h = t->hdr;
    t->n_classes = st_units_for(t->max_response) + 2;
    t->free = calloc(t->n_classes, sizeof(*t->free));
    uint64_t *ext = malloc((size_t)h->capacity * 2 * sizeof(uint64_t) + 16);
    if (t->free == NULL || ext == NULL) {
        free(ext);
        st_err(err, errlen, "out of memory rebuilding the free-space map");
        return -ENOMEM;
    }
    uint32_t n = 0, max_probe = 0;
    uint64_t bytes = 0, max_version = h->next_version;
    for (uint32_t i = 0; i <= t->mask; i++) {
        uint64_t w = t->slots[i];
        if (!st_word_live(w))
            continue;
        uint64_t off = st_word_off(w);
        if (off >= t->arena_units) {
            free(ext);
            st_err(err, errlen, "staple table index points outside the arena at slot %u", i);
            return -EINVAL;
        }
        const struct st_record *r = st_rec(t, off);
        if (n >= h->capacity || off + r->units > t->arena_units || r->units == 0 ||
            r->len > t->max_response || st_units_for(r->len) != r->units) {
            free(ext);
            st_err(err, errlen, "staple table index references a bad record at slot %u", i);
            return -EINVAL;
        }
        uint32_t disp = (uint32_t)((i - st_key_hash(r->key)) & t->mask);
        if (disp > max_probe)
            max_probe = disp;
        ext[2 * n] = off;
        ext[2 * n + 1] = r->units;
        if (r->version > max_version)
            max_version = r->version;
        bytes += r->len;
        n++;
    }
    qsort(ext, n, 2 * sizeof(uint64_t), st_cmp_extent);
    uint64_t cur = 1, used = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (ext[2 * i] < cur) {
            free(ext);
            st_err(err, errlen, "staple table records overlap");
            return -EINVAL;
        }
        for (uint64_t gap = ext[2 * i] - cur; gap > 0;) {
            /* Split gaps into blocks a size class can name exactly. */
            uint32_t u = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
            if (st_free_push(t, cur, u) != 0) {
                free(ext);
                st_err(err, errlen, "out of memory rebuilding the free-space map");
                return -ENOMEM;
            }
            cur += u;
            gap -= u;
        }
        cur = ext[2 * i] + ext[2 * i + 1];
        used += ext[2 * i + 1];
    }
    free(ext);
    t->bump = cur;
    /* A killed writer may have handed out a version it never recorded:
     * step past everything seen. */
    h->next_version = max_version + 1;
    if (max_probe > h->max_probe)
        __atomic_store_n(&h->max_probe, max_probe, __ATOMIC_RELEASE);
    __atomic_store_n(&h->entries, n, __ATOMIC_RELAXED);
    __atomic_store_n(&h->response_bytes, bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&h->arena_used, used << ST_REC_SHIFT, __ATOMIC_RELAXED);
    return 0;
}

/* ---- open / attach / close ---------------------------------------------- */

static struct staple_table *st_fail(struct staple_table *t, int e)
{
    if (t != NULL) {
        if (t->base != NULL && t->base != MAP_FAILED)
            munmap(t->base, t->map_len);
        if (t->fd >= 0)
            close(t->fd);
        if (t->free != NULL) {
            for (uint32_t i = 0; i < t->n_classes; i++)
                free(t->free[i].offs);
            free(t->free);
        }
        free(t);
    }
    errno = e;
    return NULL;
}

static bool st_params_match(const struct staple_table_params *p, const struct st_header *h)
{
    struct st_header want;
    if (st_geometry(p, &want, NULL, 0) != 0)
        return false;
    return want.capacity == h->capacity && want.max_response == h->max_response &&
           (p->arena_bytes == 0 || want.arena_bytes == h->arena_bytes);
}

struct staple_table *staple_table_open_writer(const char *name,
                                              const struct staple_table_params *params,
                                              char *err, size_t errlen)
{
    struct staple_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        st_err(err, errlen, "out of memory");
        return st_fail(NULL, ENOMEM);
    }
    t->fd = -1;
    t->writer = true;
    struct st_header geo;
    if (params != NULL) {
        int rc = st_geometry(params, &geo, err, errlen);
        if (rc != 0)
            return st_fail(t, -rc);
    }
    t->fd = shm_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        int e = errno;
        st_err(err, errlen, "shm_open %s: %s", name, strerror(e));
        return st_fail(t, e);
    }
    /* The kernel drops a flock when its holder dies, however it dies: the
     * single-writer rule needs no cleanup after a crash. */
    if (flock(t->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno == EWOULDBLOCK ? EBUSY : errno;
        st_err(err, errlen, "staple table %s: %s", name,
               e == EBUSY ? "another writer holds it" : strerror(e));
        return st_fail(t, e);
    }
    struct stat st;
    if (fstat(t->fd, &st) != 0) {
        int e = errno;
        st_err(err, errlen, "fstat %s: %s", name, strerror(e));
        return st_fail(t, e);
    }
    bool fresh = st.st_size == 0;
    if (!fresh && st.st_size < (off_t)sizeof(struct st_header)) {
        st_err(err, errlen, "staple table %s truncated (%lld bytes)", name,
               (long long)st.st_size);
        return st_fail(t, EINVAL);
    }
    if (fresh) {
        if (params == NULL) {
            st_err(err, errlen, "staple table %s does not exist and no geometry was given",
                   name);
            return st_fail(t, ENOENT);
        }
        /* Sparse: tmpfs backs pages only when they are written. */
        if (ftruncate(t->fd, (off_t)geo.total_bytes) != 0) {
            int e = errno;
            st_err(err, errlen, "ftruncate %s to %llu: %s", name,
                   (unsigned long long)geo.total_bytes, strerror(e));
            return st_fail(t, e);
        }
        t->map_len = geo.total_bytes;
    } else {
        struct st_header h;
        if (pread(t->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
            st_err(err, errlen, "reading header of %s failed", name);
            return st_fail(t, EIO);
        }
        /* A creator that died before writing the magic leaves a zeroed
         * header: take the table over as new if we know its geometry. */
        if (h.magic == 0 && params != NULL && (uint64_t)st.st_size == geo.total_bytes) {
            fresh = true;
            t->map_len = geo.total_bytes;
        } else {
            int rc = st_check_header(&h, (uint64_t)st.st_size, err, errlen);
            if (rc != 0)
                return st_fail(t, -rc);
            if (params != NULL && !st_params_match(params, &h)) {
                st_err(err, errlen,
                       "staple table %s exists with capacity %u, max_response %u: "
                       "not the geometry asked for",
                       name, h.capacity, h.max_response);
                return st_fail(t, EINVAL);
            }
            t->map_len = h.total_bytes;
        }
    }
    t->base = mmap(NULL, t->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
    if (t->base == MAP_FAILED) {
        int e = errno;
        st_err(err, errlen, "mmap %s: %s", name, strerror(e));
        return st_fail(t, e);
    }
    if (fresh) {
        struct st_header *h = (struct st_header *)t->base;
        geo.magic = 0;
        *h = geo;
        /* Readers check the magic first: publish it last. */
        __atomic_store_n(&h->magic, ST_MAGIC, __ATOMIC_RELEASE);
    }
    st_bind(t);
    int rc = st_rebuild(t, err, errlen);
    if (rc != 0)
        return st_fail(t, -rc);
    return t;
}

struct staple_table *staple_table_attach_reader(const char *name, char *err,
                                                size_t errlen)
{
    struct staple_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        st_err(err, errlen, "out of memory");
        return st_fail(NULL, ENOMEM);
    }
    t->fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
    if (t->fd < 0) {
        int e = errno;
        st_err(err, errlen, "staple table %s: %s", name,
               e == ENOENT ? "does not exist (is tern-control running?)" : strerror(e));
        return st_fail(t, e);
    }
    struct stat st;
    struct st_header h;
    if (fstat(t->fd, &st) != 0) {
        int e = errno;
        st_err(err, errlen, "fstat %s: %s", name, strerror(e));
        return st_fail(t, e);
    }
    if (st.st_size < (off_t)sizeof(h) || pread(t->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        st_err(err, errlen, "staple table %s truncated or not yet initialised", name);
        return st_fail(t, EINVAL);
    }
    int rc = st_check_header(&h, (uint64_t)st.st_size, err, errlen);
    if (rc != 0)
        return st_fail(t, -rc);
    t->map_len = h.total_bytes;
    t->base = mmap(NULL, t->map_len, PROT_READ, MAP_SHARED, t->fd, 0);
    if (t->base == MAP_FAILED) {
        int e = errno;
        st_err(err, errlen, "mmap %s: %s", name, strerror(e));
        return st_fail(t, e);
    }
    /* The mapping stays valid without the descriptor; a reader holds
     * nothing the writer could wait for. */
    close(t->fd);
    t->fd = -1;
    st_bind(t);
    return t;
}

void staple_table_close(struct staple_table *t)
{
    if (t != NULL)
        st_fail(t, errno);
}

int staple_table_unlink(const char *name)
{
    return shm_unlink(name) == 0 ? 0 : -errno;
}

/* ---- writer: publish / remove ------------------------------------------- */

/* Finds KEY's slot (returns its index and sets *found) or the slot a new
 * entry should take (first tombstone on the probe path, else the empty slot
 * that ends it). Writer only: it is the only one who changes words. */
static uint32_t st_find_slot(const struct staple_table *t,
                             const uint8_t key[STAPLE_TABLE_KEY_LEN], bool *found)
{
    uint64_t tag = st_key_tag(key);
    uint32_t i = (uint32_t)st_key_hash(key) & t->mask;
    uint32_t first_free = UINT32_MAX;
    for (uint32_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
        uint64_t w = t->slots[i];
        if (w == ST_WORD_EMPTY) {
            *found = false;
            return first_free != UINT32_MAX ? first_free : i;
        }
        if (w == ST_WORD_TOMB) {
            if (first_free == UINT32_MAX)
                first_free = i;
            continue;
        }
        if ((w & ST_TAG_MASK) == tag &&
            memcmp(st_rec(t, st_word_off(w))->key, key, STAPLE_TABLE_KEY_LEN) == 0) {
            *found = true;
            return i;
        }
    }
    *found = false;
    return first_free;
}

int staple_table_publish(struct staple_table *t,
                         const uint8_t key[STAPLE_TABLE_KEY_LEN],
                         const uint8_t *der, uint32_t len,
                         int64_t this_update, int64_t next_update)
{
    if (!t->writer)
        return -EPERM;
    if (len == 0 || len > t->max_response || der == NULL)
        return -EMSGSIZE;
    struct st_header *h = t->hdr;
    bool found;
    uint32_t slot = st_find_slot(t, key, &found);
    if (!found && (h->entries >= h->capacity || slot == UINT32_MAX))
        return -ENOSPC;
    uint32_t units = st_units_for(len);
    uint64_t off = st_alloc(t, units);
    if (off == 0)
        return -ENOMEM;

    struct st_record *r = st_rec(t, off);
    /* The version goes first, then a release fence, then the bytes: a slow
     * reader still copying this block's previous record will see the new
     * version after its copy and retry (pairs with the acquire fence in
     * staple_table_lookup). The header's counter is stored before use so
     * that no later writer hands the same version out again. */
    uint64_t version = h->next_version + 1;
    __atomic_store_n(&h->next_version, version, __ATOMIC_RELAXED);
    __atomic_store_n(&r->version, version, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(r->key, key, STAPLE_TABLE_KEY_LEN);
    r->this_update = this_update;
    r->next_update = next_update;
    r->len = len;
    r->units = units;
    memcpy(r->der, der, len);

    uint64_t old = t->slots[slot];
    if (!found) {
        uint32_t disp = (uint32_t)((slot - st_key_hash(key)) & t->mask);
        /* Raise the readers' probe bound before the entry can be seen. */
        if (disp > h->max_probe)
            __atomic_store_n(&h->max_probe, disp, __ATOMIC_RELEASE);
    }
    /* The single store that makes the record visible; pairs with the
     * acquire load of the word in staple_table_lookup. */
    __atomic_store_n(&t->slots[slot], st_word(off, st_key_tag(key)), __ATOMIC_RELEASE);

    uint64_t used = h->arena_used + ((uint64_t)units << ST_REC_SHIFT);
    uint64_t bytes = h->response_bytes + len;
    if (found) {
        const struct st_record *o = st_rec(t, st_word_off(old));
        used -= (uint64_t)o->units << ST_REC_SHIFT;
        bytes -= o->len;
        /* Freed at once: a reader still copying it detects reuse by the
         * version. Failure to remember the block leaks it until the next
         * writer attach, which is harmless. */
        (void)st_free_push(t, st_word_off(old), o->units);
    } else {
        __atomic_store_n(&h->entries, h->entries + 1, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&h->arena_used, used, __ATOMIC_RELAXED);
    __atomic_store_n(&h->response_bytes, bytes, __ATOMIC_RELAXED);
    return 0;
}

int staple_table_remove(struct staple_table *t, const uint8_t key[STAPLE_TABLE_KEY_LEN])
{
    if (!t->writer)
        return -EPERM;
    bool found;
    uint32_t slot = st_find_slot(t, key, &found);
    if (!found)
        return -ENOENT;
    struct st_header *h = t->hdr;
    uint64_t old = t->slots[slot];
    const struct st_record *o = st_rec(t, st_word_off(old));
    uint32_t units = o->units, len = o->len;
    /* A tombstone keeps later entries of the probe chain reachable. If the
     * next slot is empty nothing depends on this one, so it and any
     * tombstones right before it can become empty again, which keeps
     * probe chains from filling with tombstones under churn. */
    uint64_t w = t->slots[(slot + 1) & t->mask] == ST_WORD_EMPTY ? ST_WORD_EMPTY : ST_WORD_TOMB;
    __atomic_store_n(&t->slots[slot], w, __ATOMIC_RELEASE);
    if (w == ST_WORD_EMPTY) {
        for (uint32_t i = (slot - 1) & t->mask; t->slots[i] == ST_WORD_TOMB;
             i = (i - 1) & t->mask)
            __atomic_store_n(&t->slots[i], ST_WORD_EMPTY, __ATOMIC_RELEASE);
    }
    (void)st_free_push(t, st_word_off(old), units);
    __atomic_store_n(&h->entries, h->entries - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->arena_used, h->arena_used - ((uint64_t)units << ST_REC_SHIFT),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&h->response_bytes, h->response_bytes - len, __ATOMIC_RELAXED);
    return 0;
}

/* ---- readers ------------------------------------------------------------ */

/* Test seam: the unit test defines it to run writer steps in the middle of
 * a reader's copy, which no scheduler does on demand. Empty otherwise. */
#ifndef ST_TEST_AFTER_COPY
#define ST_TEST_AFTER_COPY() ((void)0)
#endif

/* One consistent read of the record behind slot word W: metadata into E,
 * the DER into BUF if it fits and KEY matches. Returns 1 on a consistent
 * read, 0 if the record changed under us (retry). */
static int st_read_record(const struct staple_table *t, const uint64_t *slotp, uint64_t w,
                          uint8_t *buf, uint32_t cap, bool copy,
                          struct staple_table_entry *e)
{
    uint64_t off = st_word_off(w);
    /* Bounds come from our own copy of the geometry, never from the
     * record, so a torn read cannot make us touch memory outside the map. */
    if (off + 1 > t->arena_units)
        return 0;
    const struct st_record *r = st_rec(t, off);
    uint64_t v1 = __atomic_load_n(&r->version, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    memcpy(e->key, r->key, STAPLE_TABLE_KEY_LEN);
    e->this_update = r->this_update;
    e->next_update = r->next_update;
    e->len = r->len;
    e->version = v1;
    if (e->len > t->max_response || off + st_units_for(e->len) > t->arena_units)
        copy = false;
    else if (copy && e->len <= cap)
        memcpy(buf, r->der, e->len);
    ST_TEST_AFTER_COPY();
    /* Pairs with the release fence in staple_table_publish: if any byte we
     * copied came from a newer record, we see its version now. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t v2 = __atomic_load_n(&r->version, __ATOMIC_RELAXED);
    return v1 == v2 && st_load(slotp) == w;
}

int staple_table_lookup(const struct staple_table *t,
                        const uint8_t key[STAPLE_TABLE_KEY_LEN], int64_t now,
                        uint8_t *buf, uint32_t cap,
                        struct staple_table_entry *entry)
{
    struct staple_table_entry local;
    struct staple_table_entry *e = entry != NULL ? entry : &local;
    uint64_t tag = st_key_tag(key);
    uint32_t start = (uint32_t)st_key_hash(key) & t->mask;

    for (int attempt = 0; attempt < ST_READ_RETRIES; attempt++) {
        uint32_t max_probe = __atomic_load_n(&t->hdr->max_probe, __ATOMIC_ACQUIRE);
        if (max_probe > t->mask)
            max_probe = t->mask;
        bool changed = false;
        for (uint32_t n = 0, i = start; n <= max_probe; n++, i = (i + 1) & t->mask) {
            uint64_t w = st_load(&t->slots[i]);
            if (w == ST_WORD_EMPTY)
                return -ENOENT;
            if (w == ST_WORD_TOMB || (w & ST_TAG_MASK) != tag)
                continue;
            if (!st_read_record(t, &t->slots[i], w, buf, cap, true, e)) {
                changed = true;
                break;
            }
            if (memcmp(e->key, key, STAPLE_TABLE_KEY_LEN) != 0)
                continue; /* same tag, another certificate */
            if (e->next_update <= now)
                return -ESTALE;
            if (e->len > cap)
                return -ENOBUFS;
            return (int)e->len;
        }
        if (!changed)
            return -ENOENT;
    }
    return -EAGAIN;
}

int staple_table_foreach(const struct staple_table *t,
                         int (*fn)(const struct staple_table_entry *e, void *arg),
                         void *arg)
{
    int visited = 0;
    for (uint32_t i = 0; i <= t->mask; i++) {
        struct staple_table_entry e;
        int ok = 0;
        for (int attempt = 0; attempt < ST_READ_RETRIES && !ok; attempt++) {
            uint64_t w = st_load(&t->slots[i]);
            if (!st_word_live(w))
                break;
            ok = st_read_record(t, &t->slots[i], w, NULL, 0, false, &e);
        }
        if (!ok)
            continue;
        int rc = fn(&e, arg);
        if (rc != 0)
            return rc;
        visited++;
    }
    return visited;
}

int staple_table_stats(const struct staple_table *t, struct staple_table_stats *s)
{
    const struct st_header *h = t->hdr;
    s->capacity = h->capacity;
    s->entries = __atomic_load_n(&h->entries, __ATOMIC_RELAXED);
    s->response_bytes = __atomic_load_n(&h->response_bytes, __ATOMIC_RELAXED);
    s->arena_used = __atomic_load_n(&h->arena_used, __ATOMIC_RELAXED);
    s->shm_resident = 0;
    /* tmpfs counts the pages it backs in st_blocks. A reader closed its
     * descriptor; it sees resident bytes only through mincore. */
    if (t->fd >= 0) {
        struct stat st;
        if (fstat(t->fd, &st) != 0)
            return -errno;
        s->shm_resident = (uint64_t)st.st_blocks * 512u;
        return 0;
    }
    size_t pages = (t->map_len + ST_PAGE - 1) / ST_PAGE;
    unsigned char *vec = malloc(pages);
    if (vec == NULL)
        return -ENOMEM;
    if (mincore(t->base, t->map_len, vec) != 0) {
        int e = errno;
        free(vec);
        return -e;
    }
    for (size_t i = 0; i < pages; i++)
        s->shm_resident += (vec[i] & 1) ? ST_PAGE : 0;
    free(vec);
    return 0;
}
