/* Internals shared by the configuration loader's files: a small YAML
 * document tree with positions, and the problem list. Not for other modules. */
#ifndef TERN_CONFIG_PVT_H
#define TERN_CONFIG_PVT_H

#include <stdarg.h>

#include "config-t.h"

enum cy_kind {
    CY_SCALAR,
    CY_SEQ,
    CY_MAP,
};

/* One node of a parsed YAML document. A mapping keeps its keys and values
 * interleaved in items (key 0, value 0, key 1, ...). Positions are 1-based. */
struct cy_node {
    enum cy_kind kind;
    unsigned line, col;
    char *str;    /* scalar text, NUL-terminated */
    size_t len;   /* scalar length (may hold NULs: yaml allows "\0") */
    bool plain;   /* unquoted scalar: "" then means "nothing was written" */
    struct cy_node **items;
    size_t n, cap;
};

/* Deepest nesting accepted; real files use 4 levels. Bounds the recursion
 * of the walkers and the loader's memory on hostile input. */
#define CY_MAX_DEPTH 32
/* Most nodes accepted in one document (100,000 certificates fit). */
#define CY_MAX_NODES 2000000

/* Parses LEN bytes of YAML into a tree. Exactly one document is accepted.
 * Syntax errors, aliases, extra documents are recorded in DIAG (with FILE
 * for messages). Returns the root or NULL (then DIAG holds the reason). */
struct cy_node *cy_parse(const char *file, const void *buf, size_t len,
                         struct config_diag *diag);
void cy_free(struct cy_node *n);

/* Appends "FILE:LINE:COL: message" to DIAG; LINE 0 omits the position. */
void config_diag_add(struct config_diag *diag, const char *file, unsigned line,
                     unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
