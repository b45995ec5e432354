/* Compiles tls_ticket_keys.h alone: a public header must include what it uses. */
#include "tls_ticket_keys.h"

int tls_header_check_tls_ticket_keys(void);
int tls_header_check_tls_ticket_keys(void)
{
    return 0;
}
