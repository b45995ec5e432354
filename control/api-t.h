/* Types of tern-control's Unix-socket API: one JSON request per line, one
 * JSON reply per line (README.md in this folder: "The control API"). */
#ifndef TERN_API_T_H
#define TERN_API_T_H

#include <stdbool.h>
#include <stddef.h>

/* Largest request line accepted, newline excluded. Requests are a verb and a
 * name: anything near this is hostile or broken. */
#define API_REQUEST_MAX 4096

/* Longest certificate name (config.c accepts 128). */
#define API_NAME_MAX 128

enum api_verb {
    API_STATUS,  /* {"cmd":"status"} */
    API_CERTS,   /* {"cmd":"certs"} */
    API_CERT,    /* {"cmd":"cert","name":"www"} */
    API_REFRESH, /* {"cmd":"refresh","name":"www"} or {"cmd":"refresh","all":true} */
    API_RELOAD,  /* {"cmd":"reload"} */
};

struct api_request {
    enum api_verb verb;
    bool all;                     /* refresh: every certificate */
    char name[API_NAME_MAX + 1];  /* cert, refresh: the certificate; "" if all */
};

/* Builds a {"ok":true,"result":[...]} reply one element at a time
 * (api_list_*), so that a list of 100,000 certificates never exists as a
 * tree of JSON objects: only its text does. */
struct api_list_writer {
    void *f; /* FILE * of an open_memstream */
    char *buf;
    size_t len;
    size_t n;
    int err;
};

#endif
