/* Fuzz target: the configuration loader, YAML bytes in. Directories named
 * by `directory:` entries are not read (no CONFIG_EXPAND_DIRS), so the run
 * touches no file. Whatever the input, the loader must return either a
 * configuration or at least one problem, never both, and never crash. */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_diag d;
    config_diag_init(&d);
    struct config *c = config_load_buffer("fuzz.yaml", data, size, 0, &d);
    if ((c == NULL) == (d.n + d.dropped == 0))
        abort(); /* a failure without a reason, or a success with problems */
    config_free(c);
    config_diag_free(&d);
    return 0;
}
