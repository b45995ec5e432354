/* Refresh and retry arithmetic of the stapler, apart so that tests can
 * check it with chosen random draws. Times in milliseconds. Pure. */
#ifndef TERN_STAPLER_SCHEDULE_H
#define TERN_STAPLER_SCHEDULE_H

#include <stdint.h>

/* When to refresh a response valid THIS..NEXT: at FRACTION of the window,
 * moved by JITTER * window * (2U - 1) for a draw U in [0, 1), and kept
 * inside [THIS, NEXT - window/10] so that a refresh always leaves a tenth
 * of the window for retries. Returns the time, or THIS if NEXT <= THIS. */
int64_t stapler_refresh_at_ms(int64_t this_ms, int64_t next_ms, double fraction,
                              double jitter, double u);

/* Delay before retry number FAILURES (>= 1): MIN * 2^(FAILURES-1) capped
 * at MAX, then drawn uniformly from its upper half with U in [0, 1) so that
 * certificates that failed together do not retry together. Never below
 * MIN/2, never above MAX. */
int64_t stapler_backoff_ms(uint32_t failures, uint32_t min_ms, uint32_t max_ms,
                           double u);

#endif
