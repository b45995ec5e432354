/* Compiles tls_conn.h alone: a public header must include what it uses. */
#include "tls_conn.h"

int tls_header_check_tls_conn(void);
int tls_header_check_tls_conn(void)
{
    return 0;
}
