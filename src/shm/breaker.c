/* breaker.c - the circuit breaker of one endpoint: one atomic word plus one
 * trial cell per process slot (see rp_breaker.h for the scheme and why it
 * survives a process death at any instruction).
 *
 * Word layout: bits 0-1 state, 2-17 consecutive failures (saturating at
 * 65535), 18-27 period (mod 1024), 28-63 open_until_ms (36 bits; clamped).
 * Trial cell: period (mod 1024) << 16 | trials held by that slot.
 *
 * Memory ordering: every read-modify-write of the word is a CAS loop with
 * acq_rel on success and acquire on failure; a CAS that fails only means
 * another process changed the word first, and we recompute from the new
 * value, so every transition is decided on the exact word it replaces.
 * Taking a trial is a store-then-sum over the cells, both seq_cst (the
 * Dekker pattern): that is what keeps half_open_max across processes.
 */
#include "rp_breaker.h"

#define BRK_STATE_MASK   0x3ull
#define BRK_FAIL_SHIFT   2
#define BRK_FAIL_MAX     0xffffull
#define BRK_PERIOD_SHIFT 18
#define BRK_PERIOD_MASK  0x3ffull
#define BRK_UNTIL_SHIFT  28
#define BRK_UNTIL_MAX    ((1ull << 36) - 1)
#define BRK_CELL_COUNT   0xffffu
#define BRK_TRIAL_MAX    255u

static uint64_t brk_pack(enum rp_breaker_state s, uint64_t failures, uint64_t period,
                         uint64_t open_until_ms)
{
    if (failures > BRK_FAIL_MAX)
        failures = BRK_FAIL_MAX;
    if (open_until_ms > BRK_UNTIL_MAX)
        open_until_ms = BRK_UNTIL_MAX;
    return ((uint64_t)s & BRK_STATE_MASK) | (failures << BRK_FAIL_SHIFT) |
           ((period & BRK_PERIOD_MASK) << BRK_PERIOD_SHIFT) | (open_until_ms << BRK_UNTIL_SHIFT);
}

enum rp_breaker_state rp_breaker_word_state(uint64_t word)
{
    return (enum rp_breaker_state)(word & BRK_STATE_MASK);
}

uint32_t rp_breaker_word_failures(uint64_t word)
{
    return (uint32_t)((word >> BRK_FAIL_SHIFT) & BRK_FAIL_MAX);
}

uint32_t rp_breaker_word_period(uint64_t word)
{
    return (uint32_t)((word >> BRK_PERIOD_SHIFT) & BRK_PERIOD_MASK);
}

uint64_t rp_breaker_word_open_until_ms(uint64_t word)
{
    return (word >> BRK_UNTIL_SHIFT) & BRK_UNTIL_MAX;
}

uint32_t rp_breaker_cell_period(uint32_t cell)
{
    return (cell >> 16) & (uint32_t)BRK_PERIOD_MASK;
}

uint32_t rp_breaker_cell_count(uint32_t cell)
{
    return cell & BRK_CELL_COUNT;
}

static uint32_t brk_cell(uint32_t period, uint32_t count)
{
    return ((period & (uint32_t)BRK_PERIOD_MASK) << 16) | (count & BRK_CELL_COUNT);
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
        m = BRK_TRIAL_MAX;
    return m;
}

/* now_ms + recovery, saturating; brk_pack() clamps it to 36 bits. */
static uint64_t brk_open_until(const struct rp_breaker_params *p, uint64_t now_ms)
{
    uint64_t r = p->recovery_timeout_ms ? p->recovery_timeout_ms : 1;
    return now_ms > UINT64_MAX - r ? UINT64_MAX : now_ms + r;
}

/* Has the recovery time of an OPEN word passed at now_ms? */
static int brk_recovered(uint64_t word, uint64_t now_ms)
{
    return now_ms >= rp_breaker_word_open_until_ms(word);
}

static int brk_cas(_Atomic uint64_t *word, uint64_t *old, uint64_t desired)
{
    return atomic_compare_exchange_weak_explicit(word, old, desired, memory_order_acq_rel,
                                                 memory_order_acquire);
}

static _Atomic uint32_t *brk_cell_at(const struct rp_trial_cells *c, unsigned slot)
{
    return (_Atomic uint32_t *)((char *)c->first + (size_t)slot * c->stride_bytes);
}

/* Trials of PERIOD held over all summed cells (seq_cst loads: the second half
 * of the store-then-sum admission). */
static uint32_t brk_sum(const struct rp_trial_cells *c, uint32_t period)
{
    uint32_t n = 0;
    for (unsigned s = 0; s < c->nslots; s++) {
        uint32_t v = atomic_load_explicit(brk_cell_at(c, s), memory_order_seq_cst);
        if (rp_breaker_cell_period(v) == period)
            n += rp_breaker_cell_count(v);
    }
    if (c->extra >= 0 && (unsigned)c->extra >= c->nslots) {
        uint32_t v = atomic_load_explicit(brk_cell_at(c, (unsigned)c->extra), memory_order_seq_cst);
        if (rp_breaker_cell_period(v) == period)
            n += rp_breaker_cell_count(v);
    }
    return n;
}

uint32_t rp_breaker_trials(uint64_t word, const struct rp_trial_cells *cells)
{
    if (rp_breaker_word_state(word) != RP_BREAKER_HALF_OPEN || !cells)
        return 0;
    return brk_sum(cells, rp_breaker_word_period(word));
}

/* Take one trial of PERIOD: record it in our own cell first (a trial of an
 * earlier period still recorded there is forgotten: its give-back will not
 * match), then count every cell. Over the maximum: take it back, deny. */
static int brk_take_trial(const struct rp_trial_cells *c, uint32_t period, uint32_t max)
{
    _Atomic uint32_t *self = brk_cell_at(c, c->self);
    uint32_t mine = atomic_load_explicit(self, memory_order_relaxed);
    uint32_t held = rp_breaker_cell_period(mine) == period ? rp_breaker_cell_count(mine) : 0;
    if (held >= BRK_CELL_COUNT)
        return 0;
    atomic_store_explicit(self, brk_cell(period, held + 1), memory_order_seq_cst);
    if (brk_sum(c, period) > max) {
        atomic_store_explicit(self, brk_cell(period, held), memory_order_seq_cst);
        return 0;
    }
    return 1;
}

/* Give back one trial of PERIOD from our own cell, if it still holds one of
 * that period. Only the owner writes its cell, so a load and a store do. */
static void brk_give_back(const struct rp_trial_cells *c, uint32_t period)
{
    if (!c)
        return;
    _Atomic uint32_t *self = brk_cell_at(c, c->self);
    uint32_t mine = atomic_load_explicit(self, memory_order_relaxed);
    if (rp_breaker_cell_period(mine) != (period & BRK_PERIOD_MASK) ||
        rp_breaker_cell_count(mine) == 0)
        return;
    atomic_store_explicit(self, brk_cell(period, rp_breaker_cell_count(mine) - 1),
                          memory_order_release);
}

/* Decide one request at now_ms. CLOSED grants ALLOW without writing. OPEN
 * past its recovery time becomes HALF_OPEN (same period) by CAS; HALF_OPEN
 * grants a trial while the cells of its period hold fewer than the maximum.
 * A corrupt state value (3) is treated as CLOSED: a damaged word must not
 * keep an endpoint out of service forever. */
struct rp_breaker_ticket rp_breaker_acquire(_Atomic uint64_t *word,
                                            const struct rp_breaker_params *p,
                                            const struct rp_trial_cells *cells, uint64_t now_ms)
{
    struct rp_breaker_ticket t = {RP_BREAKER_DENY, 0};
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        enum rp_breaker_state s = rp_breaker_word_state(old);
        t.period = rp_breaker_word_period(old);
        if (s != RP_BREAKER_OPEN && s != RP_BREAKER_HALF_OPEN) {
            t.grant = RP_BREAKER_ALLOW;
            return t;
        }
        if (s == RP_BREAKER_OPEN) {
            if (!brk_recovered(old, now_ms))
                return t;
            uint64_t half =
                brk_pack(RP_BREAKER_HALF_OPEN, rp_breaker_word_failures(old), t.period, 0);
            if (!brk_cas(word, &old, half))
                continue;
            old = half;
        }
        if (!cells || !brk_take_trial(cells, t.period, brk_half_open_max(p)))
            return t;
        /* the phase may have ended while we counted: then the trial is
         * given back and the new word decides */
        uint64_t now_word = atomic_load_explicit(word, memory_order_acquire);
        if (rp_breaker_word_state(now_word) == RP_BREAKER_HALF_OPEN &&
            rp_breaker_word_period(now_word) == t.period) {
            t.grant = RP_BREAKER_TRIAL;
            return t;
        }
        brk_give_back(cells, t.period);
        old = now_word;
    }
}

/* A trial success closes a HALF_OPEN breaker of the same period (the other
 * trials still out then find it CLOSED and their verdicts are ignored); an
 * ordinary success resets the failure count of a CLOSED one. Any other
 * combination is a late verdict from an earlier state and is ignored. */
void rp_breaker_success(_Atomic uint64_t *word, const struct rp_trial_cells *cells,
                        struct rp_breaker_ticket t)
{
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        enum rp_breaker_state s = rp_breaker_word_state(old);
        if (t.grant == RP_BREAKER_TRIAL) {
            if (s != RP_BREAKER_HALF_OPEN || rp_breaker_word_period(old) != t.period)
                break;
        } else if (t.grant == RP_BREAKER_ALLOW) {
            if (s != RP_BREAKER_CLOSED || rp_breaker_word_failures(old) == 0)
                break;
        } else {
            break;
        }
        if (brk_cas(word, &old, brk_pack(RP_BREAKER_CLOSED, 0, rp_breaker_word_period(old), 0)))
            break;
    }
    if (t.grant == RP_BREAKER_TRIAL)
        brk_give_back(cells, t.period);
}

/* A failed ordinary request counts towards the threshold in CLOSED and opens
 * the breaker (next period) on reaching it; a failed trial re-opens a
 * HALF_OPEN breaker of its period for a new recovery time (next period: the
 * other trials' later verdicts and give-backs count for nothing). */
void rp_breaker_failure(_Atomic uint64_t *word, const struct rp_breaker_params *p,
                        const struct rp_trial_cells *cells, struct rp_breaker_ticket t,
                        uint64_t now_ms)
{
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    uint32_t threshold = brk_threshold(p);
    for (;;) {
        enum rp_breaker_state s = rp_breaker_word_state(old);
        uint64_t period = rp_breaker_word_period(old);
        uint64_t desired;
        if (t.grant == RP_BREAKER_TRIAL) {
            if (s != RP_BREAKER_HALF_OPEN || period != t.period)
                break;
            desired = brk_pack(RP_BREAKER_OPEN, rp_breaker_word_failures(old), period + 1,
                               brk_open_until(p, now_ms));
        } else if (t.grant == RP_BREAKER_ALLOW) {
            if (s != RP_BREAKER_CLOSED)
                break;
            uint64_t failures = (uint64_t)rp_breaker_word_failures(old) + 1;
            if (failures > BRK_FAIL_MAX)
                failures = BRK_FAIL_MAX;
            if (failures >= threshold)
                desired =
                    brk_pack(RP_BREAKER_OPEN, failures, period + 1, brk_open_until(p, now_ms));
            else
                desired = brk_pack(RP_BREAKER_CLOSED, failures, period, 0);
            if (desired == old)
                break; /* already saturated */
        } else {
            break;
        }
        if (brk_cas(word, &old, desired))
            break;
    }
    if (t.grant == RP_BREAKER_TRIAL)
        brk_give_back(cells, t.period);
}

void rp_breaker_release(const struct rp_trial_cells *cells, struct rp_breaker_ticket t)
{
    if (t.grant == RP_BREAKER_TRIAL)
        brk_give_back(cells, t.period);
}

/* The operator's reset wins over whatever state the word was in; the period
 * moves on so that trials taken before it count for nothing. */
void rp_breaker_reset(_Atomic uint64_t *word)
{
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    while (!brk_cas(word, &old, brk_pack(RP_BREAKER_CLOSED, 0, rp_breaker_word_period(old) + 1, 0)))
        ;
}

/* An OPEN breaker already open at least that long is left alone; else it
 * opens (next period, failure count kept) until UNTIL_MS. Returns 1 when
 * this call opened it, 0 when it was left as it was. */
int rp_breaker_open_until(_Atomic uint64_t *word, uint64_t until_ms, uint64_t now_ms)
{
    if (until_ms <= now_ms)
        return 0;
    uint64_t old = atomic_load_explicit(word, memory_order_acquire);
    for (;;) {
        if (rp_breaker_word_state(old) == RP_BREAKER_OPEN &&
            rp_breaker_word_open_until_ms(old) >= until_ms)
            return 0;
        uint64_t desired = brk_pack(RP_BREAKER_OPEN, rp_breaker_word_failures(old),
                                    (uint64_t)rp_breaker_word_period(old) + 1, until_ms);
        if (brk_cas(word, &old, desired))
            return 1;
    }
}

/* Mirrors rp_breaker_acquire() without claiming anything or reading trial
 * cells: 1 when acquire at now_ms may grant ALLOW or TRIAL, else 0. */
int rp_breaker_would_allow(uint64_t word, uint64_t now_ms)
{
    if (rp_breaker_word_state(word) == RP_BREAKER_OPEN)
        return brk_recovered(word, now_ms);
    return 1;
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
