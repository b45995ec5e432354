/* Refresh and retry arithmetic. */
#include "stapler_schedule.h"

int64_t stapler_refresh_at_ms(int64_t this_ms, int64_t next_ms, double fraction,
                              double jitter, double u)
{
    if (next_ms <= this_ms)
        return this_ms;
    double window = (double)(next_ms - this_ms);
    double at = (double)this_ms + window * (fraction + jitter * (2.0 * u - 1.0));
    int64_t lo = this_ms, hi = next_ms - (next_ms - this_ms) / 10;
    int64_t t = (int64_t)at;
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    return t;
}

int64_t stapler_backoff_ms(uint32_t failures, uint32_t min_ms, uint32_t max_ms,
                           double u)
{
    if (failures == 0)
        failures = 1;
    if (max_ms < min_ms)
        max_ms = min_ms;
    int64_t d = min_ms;
    /* Doubling stops at the cap, so 2^failures never overflows. */
    for (uint32_t i = 1; i < failures && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    int64_t half = d / 2;
    return half + (int64_t)((double)(d - half) * u);
}
