/* Types of the shared-memory staple table. Layout notes are in
 * staple_table.c; only what callers need is here. */
#ifndef TERN_STAPLE_TABLE_T_H
#define TERN_STAPLE_TABLE_T_H

#include <stddef.h>
#include <stdint.h>

/* Table key: SHA-256 of the leaf certificate's DER encoding. */
#define STAPLE_TABLE_KEY_LEN 32

/* Largest response a table accepts unless created with a larger limit. */
#define STAPLE_TABLE_DEFAULT_MAX_RESPONSE (64u * 1024u)

/* Opaque handle; one per attach. */
struct staple_table;

/* Geometry chosen by the creator. The reader and later writers take it from
 * the header. */
struct staple_table_params {
    uint32_t capacity;     /* certificates the table must hold (>= 1) */
    uint32_t max_response; /* largest DER response accepted, bytes */
    uint64_t arena_bytes;  /* address space reserved for responses; 0 means
                            * capacity * average_response * 2, see .c.
                            * Reserved, not resident: shm pages are only
                            * backed once written. */
};

/* What a reader or the CLI learns about one published response. */
struct staple_table_entry {
    uint8_t key[STAPLE_TABLE_KEY_LEN];
    int64_t this_update; /* seconds since the epoch */
    int64_t next_update; /* seconds since the epoch; readers skip an entry
                          * whose next_update <= now */
    uint32_t len;        /* DER length in bytes */
    uint64_t version;    /* writer's publish counter; grows with each publish */
};

/* Counters of the table as a whole, for the CLI and benchmarks. */
struct staple_table_stats {
    uint32_t capacity;
    uint32_t entries;        /* published keys */
    uint64_t response_bytes; /* sum of the published responses' lengths */
    uint64_t arena_used;     /* bytes of arena holding live records */
    uint64_t shm_resident;   /* bytes of shared memory actually backed */
};

#endif
