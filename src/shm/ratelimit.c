/* ratelimit.c - GCRA (generic cell rate algorithm) in one atomic word.
 *
 * The word is the theoretical arrival time (TAT) in ns: the time at which
 * the bucket would be full again. A request of N tokens at now moves it to
 * max(tat, now) + N * interval and is admitted when that lies no more than
 * burst * interval ahead of now. A TAT of 0 (a fresh or reset segment) is at
 * or before every now, so the bucket starts full.
 *
 * Memory ordering: the word publishes nothing but itself; the CAS is acq_rel
 * on success and acquire on failure so that admissions form one total order
 * across processes and each retry recomputes from the value that beat it.
 *
 * A clock that steps back (a now below an earlier caller's now) is safe: the
 * TAT never moves backwards (max(tat, now)), so a smaller now only makes
 * new - now larger and admits less, never more; all arithmetic is on values
 * with new >= now, so nothing underflows.
 */
#include "rp_ratelimit.h"

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a)
        return UINT64_MAX;
    return a * b;
}

/* window_ms * 1e6 / max_requests, rounded to the nearest ns, at least 1 ns.
 * Zero requests per window is taken as one. */
uint64_t rp_gcra_interval_ns(uint64_t max_requests, uint64_t window_ms)
{
    uint64_t m = max_requests ? max_requests : 1;
    uint64_t window_ns = sat_mul(window_ms, 1000000ull);
    uint64_t q = window_ns / m;
    uint64_t r = window_ns % m;
    if (r >= m - r) /* r / m >= 1/2, without overflowing 2 * r */
        q++;
    return q ? q : 1;
}

static uint64_t gcra_interval(const struct rp_gcra_params *p)
{
    return p->interval_ns ? p->interval_ns : 1;
}

static uint64_t gcra_burst(const struct rp_gcra_params *p)
{
    return p->burst ? p->burst : 1;
}

/* Take N tokens at now_ns: 0 when admitted (the TAT was advanced by CAS),
 * RP_GCRA_NEVER when N is above the burst, else the ns until N tokens will
 * be there. N == 0 takes nothing and is admitted. */
uint64_t rp_gcra_take(_Atomic uint64_t *tat, const struct rp_gcra_params *p, uint64_t n,
                      uint64_t now_ns)
{
    uint64_t interval = gcra_interval(p);
    uint64_t burst = gcra_burst(p);
    if (n == 0)
        return 0;
    if (n > burst)
        return RP_GCRA_NEVER;
    uint64_t limit = sat_mul(burst, interval); /* how far ahead of now the TAT may go */
    uint64_t cost = sat_mul(n, interval);      /* <= limit */

    uint64_t old = atomic_load_explicit(tat, memory_order_acquire);
    for (;;) {
        uint64_t base = old > now_ns ? old : now_ns;
        uint64_t desired = sat_add(base, cost);
        uint64_t ahead = desired - now_ns; /* desired >= base >= now_ns */
        if (ahead > limit) {
            uint64_t wait = ahead - limit; /* >= 1 */
            return wait == RP_GCRA_NEVER ? wait - 1 : wait;
        }
        if (atomic_compare_exchange_weak_explicit(tat, &old, desired, memory_order_acq_rel,
                                                  memory_order_acquire))
            return 0;
    }
}

/* burst - (tat - now) / interval, as a fraction, within [0, burst]. A TAT
 * further ahead than the bucket allows (after a clock step back) shows 0. */
double rp_gcra_tokens(uint64_t tat, const struct rp_gcra_params *p, uint64_t now_ns)
{
    double burst = (double)gcra_burst(p);
    if (tat <= now_ns)
        return burst;
    double tokens = burst - (double)(tat - now_ns) / (double)gcra_interval(p);
    if (tokens < 0.0)
        return 0.0;
    if (tokens > burst)
        return burst;
    return tokens;
}

/* Back to a full bucket: TAT 0 is never ahead of now. */
void rp_gcra_reset(_Atomic uint64_t *tat)
{
    atomic_store_explicit(tat, 0, memory_order_release);
}

/* The debt (how far the TAT is ahead of now) is burst - tokens, in OLD's
 * intervals; it is carried over as the same number of missing tokens at NEW's
 * interval (128-bit product, no overflow) and capped at NEW's burst. */
void rp_gcra_rescale(_Atomic uint64_t *tat, const struct rp_gcra_params *old_p,
                     const struct rp_gcra_params *new_p, uint64_t now_ns)
{
    uint64_t oi = gcra_interval(old_p), ni = gcra_interval(new_p);
    uint64_t cap = sat_mul(gcra_burst(new_p), ni);
    uint64_t old = atomic_load_explicit(tat, memory_order_acquire);
    for (;;) {
        if (old <= now_ns)
            return; /* a full bucket stays full */
        unsigned __int128 debt = (unsigned __int128)(old - now_ns) * ni / oi;
        uint64_t d = debt > cap ? cap : (uint64_t)debt;
        if (atomic_compare_exchange_weak_explicit(tat, &old, sat_add(now_ns, d),
                                                  memory_order_acq_rel, memory_order_acquire))
            return;
    }
}
