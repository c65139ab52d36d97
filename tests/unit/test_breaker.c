/* test_breaker.c - every transition of the circuit breaker (one word plus
 * per-slot trial cells), with the clock driven by hand. */
#include "rp_breaker.h"
#include "rp_test.h"

static const struct rp_breaker_params P = {
    .failure_threshold = 3,
    .recovery_timeout_ms = 1000,
    .half_open_max = 2,
};

#define NSLOTS 8
static _Atomic uint32_t cells[NSLOTS];

/* The trial cells as slot SELF sees them. */
static struct rp_trial_cells cells_of(unsigned self)
{
    struct rp_trial_cells c = {cells, sizeof cells[0], NSLOTS, -1, self};
    return c;
}

static uint64_t load(_Atomic uint64_t *w)
{
    return atomic_load(w);
}

/* Acquire as slot 0 and keep the ticket for a later verdict. */
static struct rp_breaker_ticket last;
static enum rp_breaker_grant acq(_Atomic uint64_t *w, const struct rp_breaker_params *p,
                                 uint64_t now_ms)
{
    struct rp_trial_cells c = cells_of(0);
    last = rp_breaker_acquire(w, p, &c, now_ms);
    return last.grant;
}

static struct rp_breaker_ticket tk(enum rp_breaker_grant g, uint32_t period)
{
    struct rp_breaker_ticket t = {g, period};
    return t;
}

static void fail(_Atomic uint64_t *w, const struct rp_breaker_params *p, struct rp_breaker_ticket t,
                 uint64_t now_ms)
{
    struct rp_trial_cells c = cells_of(0);
    rp_breaker_failure(w, p, &c, t, now_ms);
}

static void succeed(_Atomic uint64_t *w, struct rp_breaker_ticket t)
{
    struct rp_trial_cells c = cells_of(0);
    rp_breaker_success(w, &c, t);
}

static void give_back(struct rp_breaker_ticket t)
{
    struct rp_trial_cells c = cells_of(0);
    rp_breaker_release(&c, t);
}

static uint32_t trials(_Atomic uint64_t *w)
{
    struct rp_trial_cells c = cells_of(0);
    return rp_breaker_trials(load(w), &c);
}

static struct rp_breaker_ticket allow(_Atomic uint64_t *w)
{
    return tk(RP_BREAKER_ALLOW, rp_breaker_word_period(load(w)));
}

static void clear_cells(void)
{
    for (int i = 0; i < NSLOTS; i++)
        atomic_store(&cells[i], 0);
}

/* Drive a breaker to OPEN at now_ms with THRESHOLD ordinary failures. */
static void trip(_Atomic uint64_t *w, const struct rp_breaker_params *p, uint64_t now_ms)
{
    clear_cells();
    for (uint32_t i = 0; i < p->failure_threshold; i++) {
        CU_ASSERT_EQUAL(acq(w, p, now_ms), RP_BREAKER_ALLOW);
        fail(w, p, last, now_ms);
    }
}

static void test_initial_closed(void)
{
    _Atomic uint64_t w = 0;
    clear_cells();
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(acq(&w, &P, 0), RP_BREAKER_ALLOW);
    CU_ASSERT_EQUAL(load(&w), 0); /* ALLOW writes nothing */
    CU_ASSERT_EQUAL(atomic_load(&cells[0]), 0);
    CU_ASSERT_TRUE(rp_breaker_would_allow(load(&w), 0));
    CU_ASSERT_STRING_EQUAL(rp_breaker_state_name(rp_breaker_state_at(load(&w), 5)), "closed");
}

static void test_threshold_exact(void)
{
    _Atomic uint64_t w = 0;
    fail(&w, &P, allow(&w), 100);
    fail(&w, &P, allow(&w), 100);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 2);
    CU_ASSERT_EQUAL(acq(&w, &P, 100), RP_BREAKER_ALLOW);
    fail(&w, &P, last, 100);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 3);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(load(&w)), 1100);
    CU_ASSERT_EQUAL(rp_breaker_word_period(load(&w)), 1); /* opening starts a period */
    CU_ASSERT_EQUAL(acq(&w, &P, 100), RP_BREAKER_DENY);
    CU_ASSERT_FALSE(rp_breaker_would_allow(load(&w), 100));

    /* threshold 1 opens on the first failure */
    struct rp_breaker_params p1 = P;
    p1.failure_threshold = 1;
    _Atomic uint64_t w1 = 0;
    fail(&w1, &p1, allow(&w1), 7);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w1)), RP_BREAKER_OPEN);
}

static void test_success_resets_failures(void)
{
    _Atomic uint64_t w = 0;
    fail(&w, &P, allow(&w), 0);
    fail(&w, &P, allow(&w), 0);
    succeed(&w, allow(&w));
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 0);
    /* consecutive: two more failures do not open it */
    fail(&w, &P, allow(&w), 0);
    fail(&w, &P, allow(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    fail(&w, &P, allow(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);
}

static void test_recovery_boundary(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 5000); /* open until 6000 */
    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&w), 5999), RP_BREAKER_OPEN);
    CU_ASSERT_FALSE(rp_breaker_would_allow(load(&w), 5999));
    CU_ASSERT_EQUAL(acq(&w, &P, 5999), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);

    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&w), 6000), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_TRUE(rp_breaker_would_allow(load(&w), 6000));
    CU_ASSERT_EQUAL(acq(&w, &P, 6000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(trials(&w), 1);
    CU_ASSERT_EQUAL(last.period, rp_breaker_word_period(load(&w)));
    /* the trial is recorded in the taker's own cell */
    CU_ASSERT_EQUAL(rp_breaker_cell_count(atomic_load(&cells[0])), 1);
    CU_ASSERT_EQUAL(rp_breaker_cell_period(atomic_load(&cells[0])), last.period);
}

static void test_trial_success_closes(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    CU_ASSERT_EQUAL(acq(&w, &P, 1000), RP_BREAKER_TRIAL);
    succeed(&w, last);
    uint64_t v = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(v), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(v), 0);
    CU_ASSERT_EQUAL(trials(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_cell_count(atomic_load(&cells[0])), 0); /* slot given back */
    CU_ASSERT_EQUAL(acq(&w, &P, 1001), RP_BREAKER_ALLOW);
}

static void test_trial_failure_reopens(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    uint32_t p0 = rp_breaker_word_period(load(&w));
    CU_ASSERT_EQUAL(acq(&w, &P, 1500), RP_BREAKER_TRIAL);
    fail(&w, &P, last, 1700);
    uint64_t v = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(v), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_period(v), p0 + 1);
    CU_ASSERT_EQUAL(rp_breaker_cell_count(atomic_load(&cells[0])), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(v), 2700);
    CU_ASSERT_EQUAL(acq(&w, &P, 2699), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(acq(&w, &P, 2700), RP_BREAKER_TRIAL);
}

static void test_trial_slots(void)
{
    struct rp_breaker_params p = P;
    p.half_open_max = 3;
    _Atomic uint64_t w = 0;
    trip(&w, &p, 0);
    struct rp_trial_cells c1 = cells_of(1), c2 = cells_of(2);
    CU_ASSERT_EQUAL(acq(&w, &p, 1000), RP_BREAKER_TRIAL);
    struct rp_breaker_ticket t0 = last;
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, &c1, 1000).grant, RP_BREAKER_TRIAL);
    struct rp_breaker_ticket t2 = rp_breaker_acquire(&w, &p, &c2, 1001);
    CU_ASSERT_EQUAL(t2.grant, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(trials(&w), 3);
    CU_ASSERT_EQUAL(acq(&w, &p, 1002), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, &c2, 99999).grant, RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_cell_count(atomic_load(&cells[0])), 1); /* a denial takes back */

    rp_breaker_release(&c2, t2);
    CU_ASSERT_EQUAL(trials(&w), 2);
    CU_ASSERT_EQUAL(acq(&w, &p, 1003), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(acq(&w, &p, 1003), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_cell_count(atomic_load(&cells[0])), 2);

    /* a give-back only touches the giver's own cell, and never below zero */
    rp_breaker_release(&c2, t2);
    CU_ASSERT_EQUAL(trials(&w), 3);
    /* releasing an ALLOW or DENY ticket gives nothing back */
    give_back(tk(RP_BREAKER_ALLOW, t0.period));
    give_back(tk(RP_BREAKER_DENY, t0.period));
    CU_ASSERT_EQUAL(trials(&w), 3);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
}

static void test_dead_process_cell(void)
{
    struct rp_breaker_params p = P;
    p.half_open_max = 2;
    _Atomic uint64_t w = 0;
    trip(&w, &p, 0);
    struct rp_trial_cells c3 = cells_of(3);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, &c3, 1000).grant, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, &c3, 1000).grant, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(acq(&w, &p, 1000), RP_BREAKER_DENY);
    /* slot 3 dies: the supervisor's repair zeroes its cell, the slots are free */
    atomic_store(&cells[3], 0);
    CU_ASSERT_EQUAL(trials(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(acq(&w, &p, 1001), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(acq(&w, &p, 1001), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(acq(&w, &p, 1001), RP_BREAKER_DENY);
    /* a worker killed between its cell store and its count leaves a phantom
     * trial in its own cell only: repair removes it */
    atomic_store(&cells[5], atomic_load(&cells[0]));
    CU_ASSERT_EQUAL(trials(&w), 4);
    atomic_store(&cells[5], 0);
    CU_ASSERT_EQUAL(trials(&w), 2);
}

static void test_periods(void)
{
    /* a give-back or verdict from an earlier half-open period counts for
     * nothing in the next one */
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0); /* max 2 */
    struct rp_trial_cells c1 = cells_of(1);
    CU_ASSERT_EQUAL(acq(&w, &P, 1000), RP_BREAKER_TRIAL);
    struct rp_breaker_ticket old0 = last;
    struct rp_breaker_ticket old1 = rp_breaker_acquire(&w, &P, &c1, 1000);
    CU_ASSERT_EQUAL(old1.grant, RP_BREAKER_TRIAL);
    rp_breaker_failure(&w, &P, &c1, old1, 1100); /* reopens: period + 1 */
    CU_ASSERT_EQUAL(rp_breaker_word_period(load(&w)), old0.period + 1);
    CU_ASSERT_EQUAL(acq(&w, &P, 2100), RP_BREAKER_TRIAL); /* new period, slot 0 again */
    struct rp_breaker_ticket new0 = last;
    CU_ASSERT_NOT_EQUAL(new0.period, old0.period);
    struct rp_breaker_ticket new1 = rp_breaker_acquire(&w, &P, &c1, 2100);
    CU_ASSERT_EQUAL(new1.grant, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(trials(&w), 2);
    /* the stale trial of slot 0 comes back: ignored, still 2 in flight */
    give_back(old0);
    CU_ASSERT_EQUAL(trials(&w), 2);
    CU_ASSERT_EQUAL(acq(&w, &P, 2101), RP_BREAKER_DENY);
    /* its stale success does not close the breaker either */
    succeed(&w, old0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    fail(&w, &P, old0, 2102);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    /* the current period's verdict decides */
    succeed(&w, new0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
}

static void test_late_verdicts(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    struct rp_trial_cells c1 = cells_of(1);
    CU_ASSERT_EQUAL(acq(&w, &P, 1000), RP_BREAKER_TRIAL);
    struct rp_breaker_ticket a = last;
    struct rp_breaker_ticket b = rp_breaker_acquire(&w, &P, &c1, 1000);
    CU_ASSERT_EQUAL(b.grant, RP_BREAKER_TRIAL);

    /* first trial succeeds: closed; the second's verdict arrives late */
    succeed(&w, a);
    uint64_t closed = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(closed), RP_BREAKER_CLOSED);
    rp_breaker_failure(&w, &P, &c1, b, 1200);
    CU_ASSERT_EQUAL(load(&w), closed);
    CU_ASSERT_EQUAL(rp_breaker_cell_count(atomic_load(&cells[1])), 0); /* its slot came back */
    rp_breaker_success(&w, &c1, b);
    CU_ASSERT_EQUAL(load(&w), closed);

    /* trial failure re-opens; the other trial's verdicts are then ignored */
    trip(&w, &P, 2000);
    CU_ASSERT_EQUAL(acq(&w, &P, 3000), RP_BREAKER_TRIAL);
    a = last;
    b = rp_breaker_acquire(&w, &P, &c1, 3000);
    fail(&w, &P, a, 3100);
    uint64_t open = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(open), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(open), 4100);
    rp_breaker_success(&w, &c1, b);
    CU_ASSERT_EQUAL(load(&w), open);
    rp_breaker_failure(&w, &P, &c1, b, 3200);
    CU_ASSERT_EQUAL(load(&w), open); /* open_until not pushed out */

    /* ordinary verdicts from before the breaker opened are ignored too */
    succeed(&w, tk(RP_BREAKER_ALLOW, 0));
    CU_ASSERT_EQUAL(load(&w), open);
    fail(&w, &P, tk(RP_BREAKER_ALLOW, 0), 3300);
    CU_ASSERT_EQUAL(load(&w), open);
    CU_ASSERT_EQUAL(acq(&w, &P, 4100), RP_BREAKER_TRIAL);
    uint64_t half = load(&w);
    succeed(&w, tk(RP_BREAKER_ALLOW, 0));
    fail(&w, &P, tk(RP_BREAKER_ALLOW, 0), 4200);
    CU_ASSERT_EQUAL(load(&w), half);

    /* DENY verdicts never change anything */
    succeed(&w, tk(RP_BREAKER_DENY, 0));
    fail(&w, &P, tk(RP_BREAKER_DENY, 0), 4300);
    CU_ASSERT_EQUAL(load(&w), half);
}

static void test_saturation(void)
{
    struct rp_breaker_params p = P;
    p.failure_threshold = 100000; /* above the 16-bit field: opens at 65535 */
    _Atomic uint64_t w = 0;
    for (uint32_t i = 0; i < 65534; i++)
        fail(&w, &p, allow(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 65534);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    fail(&w, &p, allow(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 65535);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);

    /* open_until clamps to 36 bits instead of spilling */
    struct rp_breaker_params far = P;
    far.recovery_timeout_ms = UINT64_MAX;
    _Atomic uint64_t f = 0;
    trip(&f, &far, 12345);
    uint64_t v = load(&f);
    CU_ASSERT_EQUAL(rp_breaker_word_state(v), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(v), 3);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(v), (1ull << 36) - 1);
    CU_ASSERT_EQUAL(acq(&f, &far, (1ull << 36) - 2), RP_BREAKER_DENY);

    /* half_open_max above 255 is held to 255 */
    struct rp_breaker_params many = P;
    many.half_open_max = 1000;
    _Atomic uint64_t m = 0;
    trip(&m, &many, 0);
    int granted = 0;
    for (int i = 0; i < 300; i++)
        granted += acq(&m, &many, 1000) == RP_BREAKER_TRIAL;
    CU_ASSERT_EQUAL(granted, 255);
    CU_ASSERT_EQUAL(trials(&m), 255);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&m)), RP_BREAKER_HALF_OPEN);

    /* the period wraps at 1024 without touching its neighbours */
    _Atomic uint64_t r = 0;
    for (int i = 0; i < 1030; i++)
        rp_breaker_reset(&r);
    CU_ASSERT_EQUAL(rp_breaker_word_period(load(&r)), 1030 % 1024);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&r)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&r)), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(load(&r)), 0);
}

static void test_reset(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    rp_breaker_reset(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 0);
    CU_ASSERT_EQUAL(acq(&w, &P, 1), RP_BREAKER_ALLOW);

    /* reset while trials are out: they count for nothing afterwards */
    trip(&w, &P, 0);
    struct rp_trial_cells c1 = cells_of(1);
    CU_ASSERT_EQUAL(acq(&w, &P, 1000), RP_BREAKER_TRIAL);
    struct rp_breaker_ticket held = last;
    struct rp_breaker_ticket held1 = rp_breaker_acquire(&w, &P, &c1, 1000);
    rp_breaker_reset(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(trials(&w), 0);
    /* open again and go half-open: the old trials do not fill the new phase */
    fail(&w, &P, allow(&w), 2000);
    fail(&w, &P, allow(&w), 2000);
    fail(&w, &P, allow(&w), 2000);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, &c1, 3000).grant, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(acq(&w, &P, 3000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(trials(&w), 2);
    give_back(held); /* the pre-reset trial comes back late: ignored */
    rp_breaker_release(&c1, held1);
    CU_ASSERT_EQUAL(trials(&w), 2);
    CU_ASSERT_EQUAL(acq(&w, &P, 3000), RP_BREAKER_DENY);
}

static void test_names_and_display(void)
{
    _Atomic uint64_t w = 0;
    CU_ASSERT_STRING_EQUAL(rp_breaker_state_name(RP_BREAKER_CLOSED), "closed");
    CU_ASSERT_STRING_EQUAL(rp_breaker_state_name(RP_BREAKER_OPEN), "open");
    CU_ASSERT_STRING_EQUAL(rp_breaker_state_name(RP_BREAKER_HALF_OPEN), "half_open");
    trip(&w, &P, 10);
    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&w), 1009), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&w), 1010), RP_BREAKER_HALF_OPEN);
    /* the display function does not change the word */
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);
    /* a corrupt state value reads as closed and lets traffic through */
    _Atomic uint64_t bad = 3;
    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&bad), 0), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(acq(&bad, &P, 0), RP_BREAKER_ALLOW);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"initial state is closed", test_initial_closed},
        {"opens exactly at the threshold", test_threshold_exact},
        {"ordinary success resets the failure count", test_success_resets_failures},
        {"recovery exactly at the boundary", test_recovery_boundary},
        {"trial success closes", test_trial_success_closes},
        {"trial failure re-opens for a new recovery", test_trial_failure_reopens},
        {"half-open trial slots across slots' cells", test_trial_slots},
        {"a dead process's zeroed cell frees its trials", test_dead_process_cell},
        {"give-backs and verdicts only count in their period", test_periods},
        {"late verdicts leave the word alone", test_late_verdicts},
        {"saturation, clamping and period wrap", test_saturation},
        {"reset, with trials out", test_reset},
        {"names and display state", test_names_and_display},
        {NULL, NULL},
    };
    return rp_test_run("breaker", cases);
}
