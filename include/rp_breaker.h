/* rp_breaker.h - the circuit breaker of one endpoint: one atomic word plus
 * one trial cell per process slot.
 *
 * docs/interface.md section 2: CLOSED counts consecutive failures; at
 * failure_threshold it opens. OPEN sends nothing until recovery_timeout_ms
 * has passed, then HALF_OPEN lets at most half_open_max_attempts trials run
 * at once across all processes; a trial success closes it, a trial failure
 * opens it again for a new recovery_timeout_ms.
 *
 * The word (an _Atomic uint64_t in shm, CAS acq_rel) holds the state, the
 * consecutive failures, a period and open_until_ms. The period is bumped on
 * every transition into OPEN and on every reset, so each half-open phase has
 * its own number, and a verdict or give-back is honoured only in the period
 * its trial was taken in (a stale one from an earlier phase is ignored).
 *
 * Trials in flight are not counted in the word. Each process records the
 * trials it holds in its own cell (period << 16 | count, only it writes),
 * and the number in flight is the sum of the cells of the current period.
 * Taking a trial stores the caller's cell first (seq_cst) and then sums all
 * cells (seq_cst): of two processes taking the last slot at once, at least
 * one sees the other, so the maximum holds across processes. A process that
 * dies at any instruction leaves only its own cell, which the supervisor
 * zeroes once it has reaped it: no slot is lost for ever, none is given
 * back twice, and nobody can give back another process's slot.
 *
 * Functions are pure apart from the word and the cells: time comes in as
 * now_ms (ms since the segment's clock base), so tests drive the clock.
 *
 * Word layout: bits 0-1 state, 2-17 consecutive failures (saturating),
 * 18-27 period (mod 1024), 28-63 open_until_ms (36 bits, about 795 days of
 * segment uptime; clamped).
 */
#ifndef RP_BREAKER_H
#define RP_BREAKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum rp_breaker_state {
    RP_BREAKER_CLOSED = 0,
    RP_BREAKER_OPEN = 1,
    RP_BREAKER_HALF_OPEN = 2,
};

/* What rp_breaker_acquire() granted. */
enum rp_breaker_grant {
    RP_BREAKER_DENY = 0,  /* open, or half-open with every trial slot taken */
    RP_BREAKER_ALLOW = 1, /* closed: an ordinary request */
    RP_BREAKER_TRIAL = 2, /* half-open: the caller holds one trial slot */
};

/* A grant and the period it was taken in (what a verdict must quote). */
struct rp_breaker_ticket {
    enum rp_breaker_grant grant;
    uint32_t period;
};

struct rp_breaker_params {
    uint32_t failure_threshold;   /* >= 1 */
    uint64_t recovery_timeout_ms; /* >= 1 */
    uint32_t half_open_max;       /* 1..255 */
};

/* The trial cells of one endpoint: one _Atomic uint32_t per process slot,
 * STRIDE_BYTES apart from slot 0's (FIRST). Slots [0, NSLOTS) and EXTRA (or
 * -1) are summed; SELF is the caller's slot (the only cell it writes). */
struct rp_trial_cells {
    _Atomic uint32_t *first;
    size_t stride_bytes;
    unsigned nslots;
    int extra;
    unsigned self;
};

/* Ask to send one request at now_ms. An OPEN breaker whose recovery time has
 * passed turns HALF_OPEN here. A TRIAL is recorded in the caller's cell. */
struct rp_breaker_ticket rp_breaker_acquire(_Atomic uint64_t *word,
                                            const struct rp_breaker_params *p,
                                            const struct rp_trial_cells *cells, uint64_t now_ms);

/* A request granted T succeeded: a trial success (in its period) closes the
 * breaker; an ordinary success resets the failure count. The trial slot, if
 * any, is given back. */
void rp_breaker_success(_Atomic uint64_t *word, const struct rp_trial_cells *cells,
                        struct rp_breaker_ticket t);

/* A request granted T failed at now_ms (a section 2 failure class): counts
 * towards the threshold, or re-opens after a failed trial of the current
 * period. The trial slot, if any, is given back. */
void rp_breaker_failure(_Atomic uint64_t *word, const struct rp_breaker_params *p,
                        const struct rp_trial_cells *cells, struct rp_breaker_ticket t,
                        uint64_t now_ms);

/* Give back the trial slot of T without a verdict (the request never reached
 * the endpoint, or it was too large to judge). No effect for ALLOW, or for a
 * trial of another period than the one the caller's cell holds. */
void rp_breaker_release(const struct rp_trial_cells *cells, struct rp_breaker_ticket t);

/* Close the breaker and clear its counts (operator `reset`); the period moves
 * on, so trials still out count for nothing and their verdicts are ignored. */
void rp_breaker_reset(_Atomic uint64_t *word);

/* Open the breaker until UNTIL_MS (segment ms): a verdict another host
 * reached (fleet mode). Next period, so trials out count for nothing; an
 * OPEN breaker already open until then or later is left alone, and nothing
 * happens when UNTIL_MS is not after NOW_MS. Once it passes, the breaker
 * turns HALF_OPEN and this host's own trial decides. Returns 1 when opened. */
int rp_breaker_open_until(_Atomic uint64_t *word, uint64_t until_ms, uint64_t now_ms);

/* Trials in flight in WORD's current half-open period (0 in other states). */
uint32_t rp_breaker_trials(uint64_t word, const struct rp_trial_cells *cells);

/* Could a request be admitted at now_ms? No slot is claimed and trial cells
 * are not read (a HALF_OPEN breaker answers 1; rp_breaker_acquire decides):
 * for the balancer's filter. */
int rp_breaker_would_allow(uint64_t word, uint64_t now_ms);

/* The state to show at now_ms: an OPEN breaker past its recovery time shows
 * as HALF_OPEN. */
enum rp_breaker_state rp_breaker_state_at(uint64_t word, uint64_t now_ms);

/* Field accessors of a word and of a trial cell (for tests and display). */
enum rp_breaker_state rp_breaker_word_state(uint64_t word);
uint32_t rp_breaker_word_failures(uint64_t word);
uint32_t rp_breaker_word_period(uint64_t word);
uint64_t rp_breaker_word_open_until_ms(uint64_t word);
uint32_t rp_breaker_cell_period(uint32_t cell);
uint32_t rp_breaker_cell_count(uint32_t cell);

const char *rp_breaker_state_name(enum rp_breaker_state s);

#endif
