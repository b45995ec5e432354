/* Types of tern-control's control socket server (control_server.h). */
#ifndef TERN_CONTROL_SERVER_T_H
#define TERN_CONTROL_SERVER_T_H

#include <stddef.h>

struct control_server;

/* Returns the reply line (with its newline, malloc'd; the server frees it)
 * for the request LINE of LEN bytes (newline excluded), or NULL to close
 * the connection. */
typedef char *control_server_handler(void *arg, const char *line, size_t len);

/* Most clients connected at once; more are accepted and closed at once. */
#define CONTROL_SERVER_MAX_CLIENTS 64

/* Idle connections are closed after this long (tern-control's choice). */
#define CONTROL_SERVER_IDLE_MS 60000

#endif
