/* rp_ratelimit.h - one endpoint's rate limit for the whole host: GCRA in one
 * atomic word.
 *
 * The word is the theoretical arrival time (TAT) in ns since the segment's
 * clock base (CLOCK_MONOTONIC, shared by all processes). A request of N
 * calls computes new = max(tat, now) + N * interval and is admitted when
 * new - now <= burst * interval, by CAS (acq_rel). This behaves as a token
 * bucket refilling 1 token per interval and holding at most burst tokens.
 * Pure apart from the word: time comes in as now_ns.
 */
#ifndef RP_RATELIMIT_H
#define RP_RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

struct rp_gcra_params {
    uint64_t interval_ns; /* window_ns / max_requests, >= 1 */
    uint64_t burst;       /* bucket capacity in tokens, >= 1 */
};

/* Emission interval for MAX_REQUESTS per WINDOW_MS (rounded, at least 1 ns). */
uint64_t rp_gcra_interval_ns(uint64_t max_requests, uint64_t window_ms);

/* Returned by rp_gcra_take() for N above the burst: never admitted. */
#define RP_GCRA_NEVER UINT64_MAX

/* Take exactly N tokens at now_ns. Returns 0 when admitted; RP_GCRA_NEVER
 * when N is above the burst (the bucket can never hold that many: a batch
 * of N calls costs N tokens, docs/interface.md section 8); otherwise the ns to wait
 * before N tokens will be there (>= 1). */
uint64_t rp_gcra_take(_Atomic uint64_t *tat, const struct rp_gcra_params *p, uint64_t n,
                      uint64_t now_ns);

/* A reload changed the limit from OLD to NEW: keep the tokens the bucket
 * lacks (burst minus what it holds), re-priced at NEW's interval and at most
 * NEW's burst, so a raised rate applies at once and a lowered one is not
 * escaped by a reload. */
void rp_gcra_rescale(_Atomic uint64_t *tat, const struct rp_gcra_params *old_p,
                     const struct rp_gcra_params *new_p, uint64_t now_ns);

/* Tokens available at now_ns, fractional (for display and metrics). */
double rp_gcra_tokens(uint64_t tat, const struct rp_gcra_params *p, uint64_t now_ns);

/* Refill the bucket (operator `reset`). */
void rp_gcra_reset(_Atomic uint64_t *tat);

#endif
