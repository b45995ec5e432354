/* Compiles tls_config.h alone: a public header must include what it uses. */
#include "tls_config.h"

int tls_header_check_tls_config(void);
int tls_header_check_tls_config(void)
{
    return 0;
}
