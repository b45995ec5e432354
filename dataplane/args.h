/* Parsing of tern-dataplane's own arguments. Start-up only. */
#ifndef TERN_ARGS_H
#define TERN_ARGS_H

#include <stddef.h>

#include "args-t.h"

/* Fills *a with defaults, then with argv[0..argc-1] (the arguments after
 * EAL's `--`; argv[0] is not skipped). Returns 0, or -EINVAL with a reason
 * in err. Listeners get every --backend given (the pool is shared). */
int dp_args_parse(int argc, char **argv, struct dp_args *a, char *err,
                  size_t errlen);

/* Prints the usage text to stderr. */
void dp_args_usage(const char *prog);

#endif
