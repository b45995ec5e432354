/* ternctl's output: the API's JSON replies as aligned tables and key/value
 * lists for people. Pure functions of their input, so they are unit-tested
 * without a daemon. */
#ifndef TERN_TERNCTL_FORMAT_H
#define TERN_TERNCTL_FORMAT_H

#include <jansson.h>
#include <stdio.h>

/* Hex digits of the table key shown in `ternctl certs`. */
#define TERNCTL_KEY_PREFIX 12

/* Prints CERTS (the "result" array of a certs reply) as a table: a header
 * line, then one line per certificate; columns separated by at least two
 * spaces and aligned; the last column (last error) is not padded.
 * Returns the number of certificates printed, or -EINVAL if CERTS is not an
 * array. */
int ternctl_print_certs(FILE *out, const json_t *certs);

/* Prints one certificate object (a cert reply's "result") as "key: value"
 * lines with aligned values. Returns 0 or -EINVAL. */
int ternctl_print_cert(FILE *out, const json_t *cert);

/* Prints a status reply's "result" as "key: value" lines, nested objects
 * flattened with dots ("by_state.good: 3"). Returns 0 or -EINVAL. */
int ternctl_print_status(FILE *out, const json_t *status);

#endif
