/* The systemd readiness protocol (sd_notify) without libsystemd: one
 * datagram to $NOTIFY_SOCKET. tern-control.service is Type=notify. */
#ifndef TERN_CONTROL_NOTIFY_H
#define TERN_CONTROL_NOTIFY_H

/* Sends STATE ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") when
 * started by systemd; does nothing otherwise. Main thread.
 * Returns 1 sent, 0 not under systemd, or -errno. */
int control_notify(const char *state);

#endif
