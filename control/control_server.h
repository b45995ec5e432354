/* tern-control's Unix-socket server: accepts clients, frames requests by
 * newline, hands each complete line to a handler and queues its reply.
 * Non-blocking, driven by the daemon's single event loop; it knows nothing
 * of the requests' meaning (api.h does). */
#ifndef TERN_CONTROL_SERVER_H
#define TERN_CONTROL_SERVER_H

#include <sys/types.h>

#include "control_server-t.h"
#include "stapler-t.h"

/* Creates the socket PATH with permission bits MODE and group GROUP (NULL:
 * the process's). A stale socket left by a dead daemon is replaced; a live
 * one (something answers) or a file that is not a socket is refused.
 * Main thread. Returns the server or NULL with a message in ERR. */
struct control_server *control_server_open(const char *path, mode_t mode, const char *group,
                                           char *err, size_t errlen);

/* Closes every connection and the socket, and unlinks PATH. NULL: no-op. */
void control_server_close(struct control_server *srv);

/* Writes into FDS (room for CAP) the descriptors to wait on and their
 * events. Returns how many were written. The same FDS, with revents set,
 * must be passed to control_server_handle before the next call. */
unsigned control_server_fds(struct control_server *srv, struct stapler_waitfd *fds,
                            unsigned cap);

/* Accepts, reads, answers through HANDLER and writes, as FDS' revents say.
 * Lines longer than API_REQUEST_MAX get an error reply and are skipped; the
 * connection stays open. */
void control_server_handle(struct control_server *srv, const struct stapler_waitfd *fds,
                           unsigned n, control_server_handler *handler, void *arg);

/* Closes connections with no traffic for IDLE_MS: a client that connects
 * and never finishes its line must not hold one of the slots forever.
 * Call between control_server_handle and the next control_server_fds. */
void control_server_expire(struct control_server *srv, int idle_ms);

/* Path the server listens on. */
const char *control_server_path(const struct control_server *srv);

#endif
