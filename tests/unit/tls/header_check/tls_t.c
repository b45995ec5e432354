/* Compiles tls-t.h alone: a public header must include what it uses. */
#include "tls-t.h"

int tls_header_check_tls_t(void);
int tls_header_check_tls_t(void)
{
    return 0;
}
