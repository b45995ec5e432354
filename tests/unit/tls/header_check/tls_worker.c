/* Compiles tls_worker.h alone: a public header must include what it uses. */
#include "tls_worker.h"

int tls_header_check_tls_worker(void);
int tls_header_check_tls_worker(void)
{
    return 0;
}
