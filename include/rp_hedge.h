/* rp_hedge.h - hedged reads: when a second attempt goes out, and whether the
 * host's hedge budget allows one (docs/interface.md section 8, `hedge`).
 *
 * A read whose first attempt has waited longer than the `quantile` of
 * recent latency gets a second attempt on another endpoint; the first
 * answer wins (request.c runs the race). This file holds the decisions,
 * as functions of what they are given (time passed in), and the sums they
 * read from the shared segment:
 *
 *  - Recent latency: each worker folds the host-wide histograms (struct
 *    rp_shm_epstats.hist summed over slots) into a decaying histogram per
 *    endpoint once per RP_HEDGE_TICK_MS: weights fall by RP_HEDGE_DECAY per
 *    tick (half-life about 3 s), so a provider that turns slow, or fast
 *    again, is seen within seconds, not diluted by hours of history.
 *  - The delay: the quantile of the endpoint's recent latency, or of the
 *    whole pool's when that is lower (an endpoint slow on more than 1 - q of
 *    its calls has its own quantile at the slow value and would never be
 *    hedged), never below RP_HEDGE_FLOOR_US nor above RP_HEDGE_CEIL_US (and
 *    half the attempt timeout). Fewer than RP_HEDGE_MIN_SAMPLES recent
 *    samples say nothing: such an endpoint (cold, or idle) uses the pool's
 *    quantile, and with no data at all the ceiling, so a cold start does not
 *    hedge every call at once.
 *  - The budget: hedges sent in the last RP_HEDGE_WINDOW_MS, host-wide, at
 *    most budget_percent of the calls that could be hedged in that window.
 *    Both counts are sums of per-slot cells that only grow (hedge_calls in
 *    each slot's endpoint-0 row, hedges_sent in each slot's rows); each
 *    worker keeps its own ring of those sums, one per tick, and takes the
 *    window as the difference to the oldest sample inside it. A sum that
 *    went down (a row reset for reuse) starts the window afresh.
 */
#ifndef RP_HEDGE_H
#define RP_HEDGE_H

#include <stdint.h>

#include "rp_shm.h"

#define RP_HEDGE_TICK_MS     1000    /* the latency view and the budget ring advance */
#define RP_HEDGE_DECAY       0.8     /* a sample's weight after one more tick */
#define RP_HEDGE_MIN_SAMPLES 20.0    /* recent (decayed) samples needed for a quantile */
#define RP_HEDGE_FLOOR_US    1000    /* never hedge sooner (timers are in ms) */
#define RP_HEDGE_CEIL_US     1000000 /* never wait longer to hedge */
#define RP_HEDGE_WINDOW_MS   10000   /* the budget's window */
#define RP_HEDGE_RING        16      /* budget samples kept (> window / tick) */

/* One endpoint's recent latency in one worker. */
struct rp_hedge_lat {
    uint64_t last[RP_LAT_BUCKETS]; /* host-wide cumulative counts at the last fold */
    double recent[RP_LAT_BUCKETS]; /* decayed counts */
};

/* Fold the host-wide cumulative histogram CUM into L, TICKS ticks after the
 * last fold (the older weights decay TICKS times; 0 = the first fold). A
 * bucket whose count went down (its row was reset) contributes nothing and
 * is taken as the new base. */
void rp_hedge_lat_fold(struct rp_hedge_lat *l, const uint64_t *cum, unsigned ticks);

/* The quantile Q (0..1) in microseconds of a (decayed) histogram, linear
 * inside its half-octave bucket; 0 when it holds fewer than MIN samples. */
double rp_hedge_quantile_us(const double *hist, double q, double min);

/* How long (us) a first attempt waits before its hedge goes out: from the
 * endpoint's recent quantile EP_Q_US and the pool's POOL_Q_US (0 = not
 * known), clamped to [RP_HEDGE_FLOOR_US, ceiling], the ceiling being
 * RP_HEDGE_CEIL_US or half of ATTEMPT_TIMEOUT_MS when that is lower. */
uint64_t rp_hedge_delay_us(double ep_q_us, double pool_q_us, int64_t attempt_timeout_ms);

/* May this request be hedged at all? Only a single call that expects an
 * answer, that may be retried (not in no_retry_methods: no write, no send),
 * that is not bound to one endpoint (a filter's, an affinity's, a warm-up),
 * and whose kind (rp_chain.h) is neither a filter's nor a transaction
 * flow's. */
int rp_hedge_eligible(int is_batch, int answer, int no_retry, int pinned, uint64_t only_mask,
                      uint64_t prefer_mask, int chain_kind);

/* The budget's samples of the host-wide sums, one per tick. */
struct rp_hedge_budget {
    uint64_t at_ms[RP_HEDGE_RING];
    uint64_t calls[RP_HEDGE_RING];
    uint64_t hedges[RP_HEDGE_RING];
    unsigned n;    /* samples held */
    unsigned next; /* where the next one goes */
};

/* Keep a sample of the sums CALLS and HEDGES taken at NOW_MS when the last
 * one is RP_HEDGE_TICK_MS old (or there is none). Returns 1 when kept. */
int rp_hedge_budget_sample(struct rp_hedge_budget *b, uint64_t now_ms, uint64_t calls,
                           uint64_t hedges);

/* May WANT more hedges go out now, when the sums are CALLS and HEDGES at
 * NOW_MS and the budget is PERCENT of calls? Counted against the oldest
 * sample inside the window; 0 without one (nothing to count a share of). */
int rp_hedge_budget_allows(const struct rp_hedge_budget *b, uint64_t now_ms, uint64_t calls,
                           uint64_t hedges, unsigned want, int64_t percent);

/* Host-wide sums from the shared segment: calls that could be hedged and
 * hedges sent (slots [0, slots_hwm)). */
void rp_hedge_host_counts(struct rp_shm_header *h, uint64_t *calls, uint64_t *hedges);

/* Host-wide cumulative latency histogram of endpoint row EP into OUT. */
void rp_hedge_host_hist(struct rp_shm_header *h, unsigned ep, uint64_t *out);

#endif
