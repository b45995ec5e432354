/* The OCSP stapler: keeps every configured certificate's OCSP response
 * fresh in the staple table (and on disk), following DESIGN.md "Stapler
 * policy".
 *
 * Calling model. The stapler is single-threaded and does no blocking I/O
 * except the disk cache. All calls come from one thread of the control-plane
 * process (the one that owns the table's writer handle). A daemon drives it
 * from its event loop:
 *
 *     s = stapler_create(&params, table, err, sizeof err);
 *     stapler_set_certs(s, specs, n, errs);   // inventory
 *     stapler_load_cache(s);                  // publish from disk, no network
 *     for (;;) {
 *         n = stapler_poll(s, 1000, fds, nfds);   // waits on fds + HTTP
 *         ... handle fds[i].revents ...
 *     }
 *
 * stapler_poll() waits at most min(timeout_ms, stapler_next_timeout_ms())
 * in curl_multi_poll() on the stapler's sockets and the caller's extra
 * descriptors, then advances transfers, validates what arrived, publishes,
 * and starts due fetches. stapler_wakeup() interrupts a wait from another
 * thread. A daemon with its own poll() loop may instead poll its own fds
 * with timeout stapler_next_timeout_ms() and call stapler_poll(s, 0, NULL,
 * 0) after each wake-up, at the cost of not waking on HTTP readiness.
 *
 * Return conventions (CONVENTIONS.md): constructors return a pointer or
 * NULL with a message in err; others 0 / a count, or -errno. */
#ifndef TERN_STAPLER_H
#define TERN_STAPLER_H

#include "stapler-t.h"

struct staple_table;

/* Fills P with the defaults documented in stapler-t.h. */
void stapler_params_default(struct stapler_params *p);

/* Creates a stapler that publishes into TABLE, an open writer handle.
 * PARAMS is copied (cache_dir included). The caller owns both the table and
 * the stapler and must destroy the stapler before closing the table.
 * Control plane, one thread. Calls curl_global_init() (reference counted).
 * Returns the stapler, or NULL with errno and a message in ERR: EINVAL
 * (a parameter out of range, table NULL), ENOTDIR/ENOENT/EACCES (cache
 * directory unusable), ENOMEM. */
struct stapler *stapler_create(const struct stapler_params *params,
                               struct staple_table *table, char *err,
                               size_t errlen);

/* Aborts transfers and frees everything. Leaves the table's contents and
 * the disk cache as they are (staples keep serving while the control plane
 * is down). NULL is a no-op. */
void stapler_destroy(struct stapler *s);

/* Applies a (re)loaded inventory of N certificates. Each SPECS[i] is read
 * (chain, issuer, AIA, Must-Staple, notAfter) and matched to the current
 * set by table key (SHA-256 of the leaf DER):
 *  - a certificate already present keeps its response, schedule and
 *    counters (name, policy, issuer and URL override are updated);
 *  - a new one starts "pending" and is fetched at the next stapler_poll();
 *  - a certificate no longer configured is forgotten, its transfer aborted
 *    and its staple removed from the table (its cache file is left alone).
 * A certificate that cannot be loaded is kept in the set in state
 * "invalid" (or "no-ocsp-url") with a reason; the others are unaffected.
 * ERRS, if not NULL, holds N slots and receives 0 or -errno per spec:
 * -ENOENT/-EACCES (file), -EBADMSG (no certificate, bad PEM), -ENOKEY (no
 * issuer), -EEXIST (name or certificate listed twice: the second is
 * ignored), -EINVAL (spec incomplete). "No OCSP URL" is not an error: it
 * shows as the state "no-ocsp-url" and costs nothing.
 * Control plane, the stapler's thread.
 * Returns the number of specs with an error (0 = all loaded), or -ENOMEM
 * (nothing changed). */
int stapler_set_certs(struct stapler *s, const struct stapler_cert_spec *specs,
                      size_t n, int *errs);

/* Start-up without network: for each configured certificate, publishes
 * its cached response if it still validates (signature by the issuer or
 * its delegate, CertID, times against now); a corrupt or foreign file is
 * logged, counted (cache_rejected) and ignored. A certificate without a
 * usable file adopts the response a previous run left in the table, if
 * that validates. Then withdraws table entries of certificates that are no
 * longer configured. Call after stapler_set_certs(), before the first
 * stapler_poll(). A certificate published here is next fetched at its
 * refresh point, not at once.
 * Returns the number of responses held afterwards from disk or table
 * (>= 0); works without a cache directory (table adoption only). */
int stapler_load_cache(struct stapler *s);

/* One step of the event loop: waits up to TIMEOUT_MS (capped by the
 * stapler's own next deadline; 0 = do not wait) for the stapler's sockets
 * and the N descriptors in EXTRA (may be NULL), then does all due work.
 * EXTRA[i].revents is set for the caller.
 * A negative TIMEOUT_MS waits until the stapler's next deadline (or for
 * the fds, if nothing is planned). stapler_wakeup() ends the wait early.
 * Returns the number of EXTRA descriptors with events (>= 0), or
 * -ENOMEM/-EIO on a libcurl failure (logged; the stapler stays usable). */
int stapler_poll(struct stapler *s, int timeout_ms,
                 struct stapler_waitfd *extra, unsigned n);

/* Milliseconds until the stapler next needs stapler_poll() (a fetch due, an
 * expiry, a transfer timeout); 0 if work is due now; -1 if nothing is
 * planned (no certificates). */
long stapler_next_timeout_ms(struct stapler *s);

/* Wakes a thread blocked in stapler_poll(). The only call that is safe
 * from another thread (not from a signal handler). Returns 0 or -errno. */
int stapler_wakeup(struct stapler *s);

/* Asks for a fetch of certificate NAME now (NULL: every certificate),
 * resetting its backoff. A certificate with a fetch already queued or in
 * flight is left alone: one fetch per certificate at a time. The fetch
 * itself happens in the next stapler_poll(). A certificate in state
 * "invalid" or "no-ocsp-url" is not fetched.
 * Returns the number of certificates scheduled (>= 0), or -ENOENT (no
 * certificate NAME). */
int stapler_refresh(struct stapler *s, const char *name);

/* Calls FN for each certificate, in configuration order, with a snapshot
 * valid for the call. Stops when FN returns non-zero and returns that
 * value; else returns the number of certificates visited. FN must not call
 * into the stapler. */
int stapler_foreach_cert(struct stapler *s,
                         int (*fn)(const struct stapler_cert_status *st, void *arg),
                         void *arg);

/* Fills ST for certificate NAME. Strings stay valid until the next call
 * into the stapler. Returns 0 or -ENOENT. */
int stapler_cert_status(struct stapler *s, const char *name,
                        struct stapler_cert_status *st);

/* Fills M with counters since create and the current gauges. */
void stapler_metrics(struct stapler *s, struct stapler_metrics *m);

/* Names for logs, the CLI, metrics labels and the config parser. The
 * *_name() calls return a static string ("?" if out of range). */
const char *stapler_state_name(enum stapler_state st);
const char *stapler_state_description(enum stapler_state st);
const char *stapler_reason_name(enum stapler_reason r);
const char *stapler_reason_description(enum stapler_reason r);
const char *stapler_policy_name(enum stapler_policy p);
const char *stapler_ocsp_status_name(enum stapler_ocsp_status c);

/* Parses a policy name ("lenient", "strict", "must_staple"; "must-staple"
 * is accepted too). Returns 0 and sets *P, or -EINVAL. */
int stapler_policy_parse(const char *name, enum stapler_policy *p);

#endif
