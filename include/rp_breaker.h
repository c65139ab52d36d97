/* rp_breaker.h - the circuit breaker of one endpoint, in one atomic word.
 *
 * INTERFACE.md section 2: CLOSED counts consecutive failures; at
 * failure_threshold it opens. OPEN sends nothing until recovery_timeout_ms
 * has passed, then HALF_OPEN lets at most half_open_max_attempts trials run
 * at once across all processes; a trial success closes it, a trial failure
 * opens it again for a new recovery_timeout_ms.
 *
 * The whole state is one _Atomic uint64_t in shm, updated by CAS (acq_rel on
 * success, acquire on failure), so every worker sees one breaker. Functions
 * are pure apart from that word: time comes in as now_ms (milliseconds since
 * the segment's clock base), so tests drive the clock by hand.
 *
 * Word layout: bits 0-1 state, 2-17 consecutive failures (saturating),
 * 18-25 half-open trials in flight, 26-63 open_until_ms.
 */
#ifndef RP_BREAKER_H
#define RP_BREAKER_H

#include <stdatomic.h>
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

struct rp_breaker_params {
    uint32_t failure_threshold;   /* >= 1 */
    uint64_t recovery_timeout_ms; /* >= 1 */
    uint32_t half_open_max;       /* 1..255 */
};

/* Ask to send one request at now_ms. An OPEN breaker whose recovery time has
 * passed turns HALF_OPEN here, and the caller gets the first trial slot. */
enum rp_breaker_grant rp_breaker_acquire(_Atomic uint64_t *word, const struct rp_breaker_params *p,
                                         uint64_t now_ms);

/* Report that a request granted GRANT succeeded. A trial success closes the
 * breaker; an ordinary success resets the failure count. */
void rp_breaker_success(_Atomic uint64_t *word, enum rp_breaker_grant grant);

/* Report that a request granted GRANT failed at now_ms (a section 2 failure
 * class). Opens the breaker at the threshold, or again after a failed trial. */
void rp_breaker_failure(_Atomic uint64_t *word, const struct rp_breaker_params *p,
                        enum rp_breaker_grant grant, uint64_t now_ms);

/* Give back a trial slot whose request never reached the endpoint (no
 * verdict). No effect for RP_BREAKER_ALLOW. */
void rp_breaker_release(_Atomic uint64_t *word, enum rp_breaker_grant grant);

/* Give back N trial slots held by a process that died. */
void rp_breaker_release_trials(_Atomic uint64_t *word, uint32_t n);

/* Close the breaker and clear its counts (operator `reset`). */
void rp_breaker_reset(_Atomic uint64_t *word);

/* Would a request be admitted at now_ms? No slot is claimed: for the
 * balancer's filter and for display. */
int rp_breaker_would_allow(uint64_t word, const struct rp_breaker_params *p, uint64_t now_ms);

/* The state to show at now_ms: an OPEN breaker past its recovery time shows
 * as HALF_OPEN. */
enum rp_breaker_state rp_breaker_state_at(uint64_t word, uint64_t now_ms);

/* Field accessors of a word (for tests and display). */
enum rp_breaker_state rp_breaker_word_state(uint64_t word);
uint32_t rp_breaker_word_failures(uint64_t word);
uint32_t rp_breaker_word_trials(uint64_t word);
uint64_t rp_breaker_word_open_until_ms(uint64_t word);

const char *rp_breaker_state_name(enum rp_breaker_state s);

#endif
