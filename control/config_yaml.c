/* YAML text to a tree of nodes with positions, using libyaml's event parser.
 *
 * Why a tree rather than walking the events: the schema walk then sees a
 * whole mapping at once, so it can report a missing key at the mapping's
 * position and keep going after an error in one value. Aliases are refused:
 * a configuration does not need them and they let a small file expand into
 * a huge one ("billion laughs"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "config_pvt.h"

void config_diag_add(struct config_diag *diag, const char *file, unsigned line,
                     unsigned col, const char *fmt, ...)
{
    char body[512];
    va_list ap;

    if (diag->n >= CONFIG_DIAG_MAX) {
        diag->dropped++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);

    if (diag->n == diag->cap) {
        size_t cap = diag->cap ? diag->cap * 2 : 8;
        struct config_diag_entry *v = realloc(diag->v, cap * sizeof(*v));
        if (v == NULL) {
            diag->dropped++;
            return;
        }
        diag->v = v;
        diag->cap = cap;
    }
    char *msg;
    int rc = line ? asprintf(&msg, "%s:%u:%u: %s", file, line, col, body)
                  : asprintf(&msg, "%s: %s", file, body);
    if (rc < 0) {
        diag->dropped++;
        return;
    }
    diag->v[diag->n++] = (struct config_diag_entry){.line = line, .col = col, .msg = msg};
}

void cy_free(struct cy_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        cy_free(n->items[i]);
    free(n->items);
    free(n->str);
    free(n);
}

static int cy_append(struct cy_node *parent, struct cy_node *child)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        struct cy_node **v = realloc(parent->items, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        parent->items = v;
        parent->cap = cap;
    }
    parent->items[parent->n++] = child;
    return 0;
}

static struct cy_node *cy_new(enum cy_kind kind, const yaml_mark_t *m)
{
    struct cy_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = (unsigned)m->line + 1;
    n->col = (unsigned)m->column + 1;
    return n;
}

struct cy_builder {
    const char *file;
    struct config_diag *diag;
    struct cy_node *stack[CY_MAX_DEPTH + 1];
    int depth; /* entries used in stack */
    struct cy_node *root;
    size_t nodes;
    int documents;
};

/* Attaches N to the open collection, or makes it the root. Takes N. */
static int cy_attach(struct cy_builder *b, struct cy_node *n)
{
    if (++b->nodes > CY_MAX_NODES) {
        config_diag_add(b->diag, b->file, n->line, n->col,
                        "document too large: more than %d nodes", CY_MAX_NODES);
        cy_free(n);
        return -E2BIG;
    }
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    if (cy_append(b->stack[b->depth - 1], n) < 0) {
        cy_free(n);
        return -ENOMEM;
    }
    return 0;
}

static int cy_open(struct cy_builder *b, enum cy_kind kind, const yaml_mark_t *m)
{
    if (b->depth >= CY_MAX_DEPTH) {
        config_diag_add(b->diag, b->file, (unsigned)m->line + 1, (unsigned)m->column + 1,
                        "nesting deeper than %d levels", CY_MAX_DEPTH);
        return -E2BIG;
    }
    struct cy_node *n = cy_new(kind, m);
    if (n == NULL)
        return -ENOMEM;
    int rc = cy_attach(b, n);
    if (rc < 0)
        return rc;
    b->stack[b->depth++] = n;
    return 0;
}

static int cy_scalar(struct cy_builder *b, const yaml_event_t *ev)
{
    struct cy_node *n = cy_new(CY_SCALAR, &ev->start_mark);
    if (n == NULL)
        return -ENOMEM;
    size_t len = ev->data.scalar.length;
    n->str = malloc(len + 1);
    if (n->str == NULL) {
        free(n);
        return -ENOMEM;
    }
    memcpy(n->str, ev->data.scalar.value, len);
    n->str[len] = '\0';
    n->len = len;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return cy_attach(b, n);
}

/* Handles one event. Returns 1 at the end of the stream, 0 to go on, <0 to
 * stop (the reason is in the diag). */
static int cy_event(struct cy_builder *b, const yaml_event_t *ev)
{
    const yaml_mark_t *m = &ev->start_mark;

    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            config_diag_add(b->diag, b->file, (unsigned)m->line + 1, (unsigned)m->column + 1,
                            "a second YAML document; expected exactly one");
            return -EINVAL;
        }
        return 0;
    case YAML_ALIAS_EVENT:
        config_diag_add(b->diag, b->file, (unsigned)m->line + 1, (unsigned)m->column + 1,
                        "YAML aliases are not supported; write the value out");
        return -EINVAL;
    case YAML_SCALAR_EVENT:
        return cy_scalar(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return cy_open(b, CY_SEQ, m);
    case YAML_MAPPING_START_EVENT:
        return cy_open(b, CY_MAP, m);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (b->depth > 0)
            b->depth--;
        return 0;
    default:
        return 0;
    }
}

struct cy_node *cy_parse(const char *file, const void *buf, size_t len,
                         struct config_diag *diag)
{
    yaml_parser_t parser;
    struct cy_builder b = {.file = file, .diag = diag};
    int rc = 0;

    if (!yaml_parser_initialize(&parser)) {
        config_diag_add(diag, file, 0, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, buf, len);
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            const yaml_mark_t *pm = &parser.problem_mark;
            config_diag_add(diag, file, (unsigned)pm->line + 1, (unsigned)pm->column + 1,
                            "YAML syntax: %s%s%s",
                            parser.problem ? parser.problem : "malformed input",
                            parser.context ? " " : "",
                            parser.context ? parser.context : "");
            rc = -EINVAL;
            break;
        }
        rc = cy_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);

    if (rc < 0) {
        if (rc == -ENOMEM)
            config_diag_add(diag, file, 0, 0, "out of memory");
        cy_free(b.root);
        return NULL;
    }
    if (b.root == NULL)
        config_diag_add(diag, file, 0, 0,
                        "the file is empty; expected a mapping of sections "
                        "(certificates, listeners, backends, stapler, ...)");
    return b.root;
}
