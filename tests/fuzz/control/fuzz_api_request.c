/* Fuzz target: the control API's request parser, one request line in.
 * An accepted request must survive a round trip through api_format_request
 * unchanged; a refused one must come with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct api_request req, back;
    char err[256] = "";

    if (api_parse_request(data, size, &req, err, sizeof(err)) < 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    char *line = api_format_request(&req);
    if (line == NULL)
        abort();
    if (api_parse_request(line, strlen(line) - 1, &back, err, sizeof(err)) < 0 ||
        back.verb != req.verb || back.all != req.all || strcmp(back.name, req.name) != 0)
        abort();
    free(line);
    return 0;
}
