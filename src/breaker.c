/* breaker.c - the circuit breaker of one endpoint, in one atomic word.
 *
 * Word layout (rp_breaker.h): bits 0-1 state, 2-17 consecutive failures
 * (saturating at 65535), 18-25 half-open trials in flight (at most 255),
 * 26-63 open_until_ms (38 bits, about 8.7 years of milliseconds; clamped).
 *
 * Memory ordering: the word carries its whole state, and nothing else is
 * published through it, so its own consistency only needs atomicity. Every
 * read-modify-write is a CAS loop with acq_rel on success (a transition made
 * by one process is ordered with what that process did before it, and what
 * the winner of the next CAS does after it, e.g. a worker that saw the
 * breaker close and then bumps counters) and acquire on failure (the
 * freshly reloaded value is what the next attempt recomputes from). Plain
 * loads are acquire for the same reason. A CAS that fails only means another
 * process changed the word first: we recompute from the new value, so every
 * transition is decided on the exact word it replaces.
 */
#include "rp_breaker.h"

#define BRK_STATE_MASK  0x3ull
#define BRK_FAIL_SHIFT  2
#define BRK_FAIL_MAX    0xffffull
#define BRK_TRIAL_SHIFT 18
#define BRK_TRIAL_MAX   0xffull
#define BRK_UNTIL_SHIFT 26
#define BRK_UNTIL_MAX   ((1ull << 38) - 1)

static uint64_t brk_pack(enum rp_breaker_state s, uint64_t failures, uint64_t trials,
                         uint64_t open_until_ms)
{
    if (failures > BRK_FAIL_MAX)
        failures = BRK_FAIL_MAX;
    if (trials > BRK_TRIAL_MAX)
        trials = BRK_TRIAL_MAX;
    if (open_until_ms > BRK_UNTIL_MAX)
        open_until_ms = BRK_UNTIL_MAX;
    return ((uint64_t)s & BRK_STATE_MASK) | (failures << BRK_FAIL_SHIFT) |
           (trials << BRK_TRIAL_SHIFT) | (open_until_ms << BRK_UNTIL_SHIFT);
}

enum rp_breaker_state rp_breaker_word_state(uint64_t word)
{
    return (enum rp_breaker_state)(word & BRK_STATE_MASK);
}

uint32_t rp_breaker_word_failures(uint64_t word)
{
    return (uint32_t)((word >> BRK_FAIL_SHIFT) & BRK_FAIL_MAX);
}

uint32_t rp_breaker_word_trials(uint64_t word)
{
    return (uint32_t)((word >> BRK_TRIAL_SHIFT) & BRK_TRIAL_MAX);
}

uint64_t rp_breaker_word_open_until_ms(uint64_t word)
{
    return (word >> BRK_UNTIL_SHIFT) & BRK_UNTIL_MAX;
}

/* The parameters as the word can hold them: a threshold of at least 1 and at
 * most the failure field's ceiling (else a saturated count could never reach
 * it), and 1..255 trial slots. */
static uint32_t brk_threshold(const struct rp_breaker_params *p)
{
    uint32_t t = p->failure_threshold;
    if (t < 1)
        t = 1;
    if (t > BRK_FAIL_MAX)
        t = (uint32_t)BRK_FAIL_MAX;
    return t;
}

static uint32_t brk_half_open_max(const struct rp_breaker_params *p)
{
    uint32_t m = p->half_open_max;
    if (m < 1)
        m = 1;
    if (m > BRK_TRIAL_MAX)
        m = (uint32_t)BRK_TRIAL_MAX;
    return m;
}

/* now_ms + recovery, saturating; brk_pack() clamps it to 38 bits. */
static uint64_t brk_open_until(const struct rp_breaker_params *p, uint64_t now_ms)
{
    uint64_t r = p->recovery_timeout_ms ? p->recovery_timeout_ms : 1;
    return now_ms > UINT64_MAX - r ? UINT64_MAX : now_ms + r;
}

/* Has the recovery time of an OPEN word passed at now_ms? A clamped
 * open_until (BRK_UNTIL_MAX) is compared as it is stored. */
static int brk_recovered(uint64_t word, uint64_t now_ms)
{
    return now_ms >= rp_breaker_word_open_until_ms(word);
}

static int brk_cas(_Atomic uint64_t *word, uint64_t *old, uint64_t desired)
{
    return atomic_compare_exchange_weak_explicit(word, old, desired, memory_order_acq_rel,
                                                 memory_order_acquire);
}

/* Decide one request at now_ms. CLOSED grants ALLOW without writing. OPEN
 * past its recovery time becomes HALF_OPEN with this caller holding trial 1;
 * HALF_OPEN grants a trial while slots are free. Both are claimed by CAS, so
 * across all processes at most half_open_max trials are out at once. A
 * corrupt state value (3) is treated as CLOSED: a damaged word must not keep
 * an endpoint out of service forever. */
enum rp_breaker_grant rp_breaker_acquire(_Atomic uint64_t *word, const struct rp_breaker_params *p,
                                         uint64_t now_ms)
{
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    uint32_t max = brk_half_open_max(p);
    for (;;) {
        uint64_t desired;
        switch (rp_breaker_word_state(old)) {
        case RP_BREAKER_OPEN:
            if (!brk_recovered(old, now_ms))
                return RP_BREAKER_DENY;
            desired = brk_pack(RP_BREAKER_HALF_OPEN, rp_breaker_word_failures(old), 1,
                               rp_breaker_word_open_until_ms(old));
            break;
        case RP_BREAKER_HALF_OPEN: {
            uint32_t trials = rp_breaker_word_trials(old);
            if (trials >= max)
                return RP_BREAKER_DENY;
            desired = brk_pack(RP_BREAKER_HALF_OPEN, rp_breaker_word_failures(old), trials + 1,
                               rp_breaker_word_open_until_ms(old));
            break;
        }
        case RP_BREAKER_CLOSED:
        default:
            return RP_BREAKER_ALLOW;
        }
        if (brk_cas(word, &old, desired))
            return RP_BREAKER_TRIAL;
    }
}

/* A success closes a HALF_OPEN breaker when it was a trial (the other trials
 * still out then find it CLOSED and their verdicts are ignored), and resets
 * the failure count of a CLOSED one when it was an ordinary request. Any
 * other combination is a late verdict from an earlier state and is ignored. */
void rp_breaker_success(_Atomic uint64_t *word, enum rp_breaker_grant grant)
{
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        enum rp_breaker_state s = rp_breaker_word_state(old);
        if (grant == RP_BREAKER_TRIAL) {
            if (s != RP_BREAKER_HALF_OPEN)
                return;
        } else if (grant == RP_BREAKER_ALLOW) {
            if (s != RP_BREAKER_CLOSED || rp_breaker_word_failures(old) == 0)
                return;
        } else {
            return;
        }
        if (brk_cas(word, &old, brk_pack(RP_BREAKER_CLOSED, 0, 0, 0)))
            return;
    }
}

/* A failed ordinary request counts towards the threshold in CLOSED and opens
 * the breaker on reaching it; a failed trial re-opens a HALF_OPEN breaker for
 * a new recovery period (dropping every trial slot: the other trials' later
 * verdicts find it OPEN and are ignored). Late verdicts are ignored. */
void rp_breaker_failure(_Atomic uint64_t *word, const struct rp_breaker_params *p,
                        enum rp_breaker_grant grant, uint64_t now_ms)
{
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    uint32_t threshold = brk_threshold(p);
    for (;;) {
        enum rp_breaker_state s = rp_breaker_word_state(old);
        uint64_t desired;
        if (grant == RP_BREAKER_TRIAL) {
            if (s != RP_BREAKER_HALF_OPEN)
                return;
            desired = brk_pack(RP_BREAKER_OPEN, rp_breaker_word_failures(old), 0,
                               brk_open_until(p, now_ms));
        } else if (grant == RP_BREAKER_ALLOW) {
            if (s != RP_BREAKER_CLOSED)
                return;
            uint64_t failures = (uint64_t)rp_breaker_word_failures(old) + 1;
            if (failures > BRK_FAIL_MAX)
                failures = BRK_FAIL_MAX;
            if (failures >= threshold)
                desired = brk_pack(RP_BREAKER_OPEN, failures, 0, brk_open_until(p, now_ms));
            else
                desired = brk_pack(RP_BREAKER_CLOSED, failures, 0, 0);
            if (desired == old)
                return; /* already saturated */
        } else {
            return;
        }
        if (brk_cas(word, &old, desired))
            return;
    }
}

/* Return up to N trial slots of a HALF_OPEN breaker, never below zero. In any
 * other state the slots were already dropped by the transition out of
 * HALF_OPEN, so there is nothing to give back. */
static void brk_give_back(_Atomic uint64_t *word, uint32_t n)
{
    if (n == 0)
        return;
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        if (rp_breaker_word_state(old) != RP_BREAKER_HALF_OPEN)
            return;
        uint32_t trials = rp_breaker_word_trials(old);
        if (trials == 0)
            return;
        uint32_t left = trials > n ? trials - n : 0;
        uint64_t desired = brk_pack(RP_BREAKER_HALF_OPEN, rp_breaker_word_failures(old), left,
                                    rp_breaker_word_open_until_ms(old));
        if (brk_cas(word, &old, desired))
            return;
    }
}

void rp_breaker_release(_Atomic uint64_t *word, enum rp_breaker_grant grant)
{
    if (grant == RP_BREAKER_TRIAL)
        brk_give_back(word, 1);
}

void rp_breaker_release_trials(_Atomic uint64_t *word, uint32_t n)
{
    brk_give_back(word, n);
}

/* Unconditional: the operator's reset wins over whatever state the word was
 * in. Release, so a reader that sees CLOSED also sees what preceded it. */
void rp_breaker_reset(_Atomic uint64_t *word)
{
    atomic_store_explicit(word, brk_pack(RP_BREAKER_CLOSED, 0, 0, 0), memory_order_release);
}

/* Mirrors rp_breaker_acquire() without claiming anything: 1 when acquire at
 * now_ms would grant ALLOW or TRIAL, else 0. */
int rp_breaker_would_allow(uint64_t word, const struct rp_breaker_params *p, uint64_t now_ms)
{
    switch (rp_breaker_word_state(word)) {
    case RP_BREAKER_OPEN:
        return brk_recovered(word, now_ms);
    case RP_BREAKER_HALF_OPEN:
        return rp_breaker_word_trials(word) < brk_half_open_max(p);
    case RP_BREAKER_CLOSED:
    default:
        return 1;
    }
}

enum rp_breaker_state rp_breaker_state_at(uint64_t word, uint64_t now_ms)
{
    enum rp_breaker_state s = rp_breaker_word_state(word);
    if (s == RP_BREAKER_OPEN && brk_recovered(word, now_ms))
        return RP_BREAKER_HALF_OPEN;
    if (s != RP_BREAKER_OPEN && s != RP_BREAKER_HALF_OPEN)
        return RP_BREAKER_CLOSED;
    return s;
}

const char *rp_breaker_state_name(enum rp_breaker_state s)
{
    switch (s) {
    case RP_BREAKER_CLOSED:
        return "closed";
    case RP_BREAKER_OPEN:
        return "open";
    case RP_BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}
