/* tern-control's Unix-socket API: request parsing and reply formatting.
 *
 * Wire format: each request is one JSON object on one line; each reply is
 * one JSON object on one line, {"ok":true,"result":...} or
 * {"ok":false,"error":"...", ["errors":[...]]}. The parser is a pure
 * function (bytes in, request or error out) so that it can be fuzzed. */
#ifndef TERN_API_H
#define TERN_API_H

#include <jansson.h>

#include "api-t.h"
#include "stapler-t.h"

/* Parses LEN bytes at BUF (one request line, newline excluded, need not be
 * NUL-terminated) into REQ. Any thread; no allocation survives the call.
 * Returns 0, or -EMSGSIZE (longer than API_REQUEST_MAX), -EINVAL (not JSON,
 * not an object, unknown verb, missing or wrong argument) with a message for
 * the client in ERR (ERRLEN bytes). */
int api_parse_request(const void *buf, size_t len, struct api_request *req,
                      char *err, size_t errlen);

/* Formats REQ as a request line (with its newline), for ternctl.
 * Returns a string the caller frees, or NULL (ENOMEM). */
char *api_format_request(const struct api_request *req);

/* Reply lines, each ending with a newline; the caller frees them.
 * api_reply_ok takes ownership of RESULT (may be NULL: no result member).
 * api_reply_error's ERRORS (may be NULL) is a list of strings, also taken.
 * Return NULL only when out of memory. */
char *api_reply_ok(json_t *result);
char *api_reply_error(const char *msg, json_t *errors);

/* A list reply written element by element: api_list_begin, then
 * api_list_add for each element (takes ITEM), then api_list_end, which
 * returns the same line api_reply_ok would for the whole array (caller
 * frees), or NULL if anything failed (memory). Not thread-safe per W. */
int api_list_begin(struct api_list_writer *w);
void api_list_add(struct api_list_writer *w, json_t *item);
char *api_list_end(struct api_list_writer *w);

/* One certificate as the API shows it (names are those of stapler-t.h's
 * lists; times are RFC 3339 UTC strings, or null when unknown).
 * Returns a new object, or NULL (ENOMEM). */
json_t *api_cert_json(const struct stapler_cert_status *st);

/* Writes T (seconds since the epoch) as "2026-11-26T13:05:00Z" into BUF
 * (at least 21 bytes). Returns BUF; T <= 0 gives "-". */
char *api_time_str(int64_t t, char *buf, size_t len);

#endif
