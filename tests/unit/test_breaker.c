/* test_breaker.c - every transition of the packed circuit breaker, with the
 * clock driven by hand. */
#include "rp_breaker.h"
#include "rp_test.h"

static const struct rp_breaker_params P = {
    .failure_threshold = 3,
    .recovery_timeout_ms = 1000,
    .half_open_max = 2,
};

static uint64_t load(_Atomic uint64_t *w)
{
    return atomic_load(w);
}

/* Drive a fresh breaker to OPEN at now_ms with THRESHOLD ordinary failures. */
static void trip(_Atomic uint64_t *w, const struct rp_breaker_params *p, uint64_t now_ms)
{
    for (uint32_t i = 0; i < p->failure_threshold; i++) {
        CU_ASSERT_EQUAL(rp_breaker_acquire(w, p, now_ms), RP_BREAKER_ALLOW);
        rp_breaker_failure(w, p, RP_BREAKER_ALLOW, now_ms);
    }
}

static void test_initial_closed(void)
{
    _Atomic uint64_t w = 0;
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 0), RP_BREAKER_ALLOW);
    CU_ASSERT_EQUAL(load(&w), 0); /* ALLOW writes nothing */
    CU_ASSERT_TRUE(rp_breaker_would_allow(load(&w), &P, 0));
    CU_ASSERT_STRING_EQUAL(rp_breaker_state_name(rp_breaker_state_at(load(&w), 5)), "closed");
}

static void test_threshold_exact(void)
{
    _Atomic uint64_t w = 0;
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 100);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 100);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 2);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 100), RP_BREAKER_ALLOW);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 100);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 3);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(load(&w)), 1100);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 100), RP_BREAKER_DENY);
    CU_ASSERT_FALSE(rp_breaker_would_allow(load(&w), &P, 100));

    /* threshold 1 opens on the first failure */
    struct rp_breaker_params p1 = P;
    p1.failure_threshold = 1;
    _Atomic uint64_t w1 = 0;
    rp_breaker_failure(&w1, &p1, RP_BREAKER_ALLOW, 7);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w1)), RP_BREAKER_OPEN);
}

static void test_success_resets_failures(void)
{
    _Atomic uint64_t w = 0;
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 0);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 0);
    rp_breaker_success(&w, RP_BREAKER_ALLOW);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 0);
    /* consecutive: two more failures do not open it */
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 0);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);
}

static void test_recovery_boundary(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 5000); /* open until 6000 */
    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&w), 5999), RP_BREAKER_OPEN);
    CU_ASSERT_FALSE(rp_breaker_would_allow(load(&w), &P, 5999));
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 5999), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);

    CU_ASSERT_EQUAL(rp_breaker_state_at(load(&w), 6000), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_TRUE(rp_breaker_would_allow(load(&w), &P, 6000));
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 6000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 1);
}

static void test_trial_success_closes(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1000), RP_BREAKER_TRIAL);
    rp_breaker_success(&w, RP_BREAKER_TRIAL);
    uint64_t v = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(v), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(v), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(v), 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1001), RP_BREAKER_ALLOW);
}

static void test_trial_failure_reopens(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1500), RP_BREAKER_TRIAL);
    rp_breaker_failure(&w, &P, RP_BREAKER_TRIAL, 1700);
    uint64_t v = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(v), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(v), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(v), 2700);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 2699), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 2700), RP_BREAKER_TRIAL);
}

static void test_trial_slots(void)
{
    struct rp_breaker_params p = P;
    p.half_open_max = 3;
    _Atomic uint64_t w = 0;
    trip(&w, &p, 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1001), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 3);
    CU_ASSERT_FALSE(rp_breaker_would_allow(load(&w), &p, 1001));
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1002), RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 99999), RP_BREAKER_DENY);

    rp_breaker_release(&w, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 2);
    CU_ASSERT_TRUE(rp_breaker_would_allow(load(&w), &p, 1003));
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1003), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1003), RP_BREAKER_DENY);

    /* releasing an ALLOW or DENY grant gives nothing back */
    rp_breaker_release(&w, RP_BREAKER_ALLOW);
    rp_breaker_release(&w, RP_BREAKER_DENY);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 3);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
}

static void test_release_trials_dead_process(void)
{
    struct rp_breaker_params p = P;
    p.half_open_max = 4;
    _Atomic uint64_t w = 0;
    trip(&w, &p, 0);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1000), RP_BREAKER_TRIAL);
    rp_breaker_release_trials(&w, 3);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 1);
    rp_breaker_release_trials(&w, 10); /* more than held: stops at zero */
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    rp_breaker_release(&w, RP_BREAKER_TRIAL); /* none held: no underflow */
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_HALF_OPEN);
    rp_breaker_release_trials(&w, 0);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &p, 1000), RP_BREAKER_TRIAL);

    /* in CLOSED or OPEN there are no slots to give back; the word is untouched */
    _Atomic uint64_t c = 0;
    rp_breaker_release_trials(&c, 5);
    CU_ASSERT_EQUAL(load(&c), 0);
    _Atomic uint64_t o = 0;
    trip(&o, &p, 0);
    uint64_t before = load(&o);
    rp_breaker_release_trials(&o, 5);
    CU_ASSERT_EQUAL(load(&o), before);
}

static void test_late_verdicts(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1000), RP_BREAKER_TRIAL);

    /* first trial succeeds: closed; the second's verdict arrives late */
    rp_breaker_success(&w, RP_BREAKER_TRIAL);
    uint64_t closed = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(closed), RP_BREAKER_CLOSED);
    rp_breaker_failure(&w, &P, RP_BREAKER_TRIAL, 1200);
    CU_ASSERT_EQUAL(load(&w), closed);
    rp_breaker_success(&w, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(load(&w), closed);
    rp_breaker_release(&w, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(load(&w), closed);

    /* trial failure re-opens; the other trial's verdicts are then ignored */
    trip(&w, &P, 2000);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 3000), RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 3000), RP_BREAKER_TRIAL);
    rp_breaker_failure(&w, &P, RP_BREAKER_TRIAL, 3100);
    uint64_t open = load(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(open), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(open), 4100);
    rp_breaker_success(&w, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(load(&w), open);
    rp_breaker_failure(&w, &P, RP_BREAKER_TRIAL, 3200);
    CU_ASSERT_EQUAL(load(&w), open); /* open_until not pushed out */
    rp_breaker_release(&w, RP_BREAKER_TRIAL);
    CU_ASSERT_EQUAL(load(&w), open);

    /* ordinary verdicts from before the breaker opened are ignored too */
    rp_breaker_success(&w, RP_BREAKER_ALLOW);
    CU_ASSERT_EQUAL(load(&w), open);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 3300);
    CU_ASSERT_EQUAL(load(&w), open);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 4100), RP_BREAKER_TRIAL);
    uint64_t half = load(&w);
    rp_breaker_success(&w, RP_BREAKER_ALLOW);
    rp_breaker_failure(&w, &P, RP_BREAKER_ALLOW, 4200);
    CU_ASSERT_EQUAL(load(&w), half);

    /* DENY verdicts never change anything */
    rp_breaker_success(&w, RP_BREAKER_DENY);
    rp_breaker_failure(&w, &P, RP_BREAKER_DENY, 4300);
    CU_ASSERT_EQUAL(load(&w), half);
}

static void test_saturation(void)
{
    struct rp_breaker_params p = P;
    p.failure_threshold = 100000; /* above the 16-bit field: opens at 65535 */
    _Atomic uint64_t w = 0;
    for (uint32_t i = 0; i < 65534; i++)
        rp_breaker_failure(&w, &p, RP_BREAKER_ALLOW, 0);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 65534);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    rp_breaker_failure(&w, &p, RP_BREAKER_ALLOW, 0);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(load(&w)), 65535);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_OPEN);

    /* open_until clamps to 38 bits instead of spilling */
    struct rp_breaker_params far = P;
    far.recovery_timeout_ms = UINT64_MAX;
    _Atomic uint64_t f = 0;
    trip(&f, &far, 12345);
    uint64_t v = load(&f);
    CU_ASSERT_EQUAL(rp_breaker_word_state(v), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(v), 3);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(v), 0);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(v), (1ull << 38) - 1);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&f, &far, (1ull << 38) - 2), RP_BREAKER_DENY);

    /* half_open_max above 255 is held to the 8-bit field */
    struct rp_breaker_params many = P;
    many.half_open_max = 1000;
    _Atomic uint64_t m = 0;
    trip(&m, &many, 0);
    int granted = 0;
    for (int i = 0; i < 300; i++)
        granted += rp_breaker_acquire(&m, &many, 1000) == RP_BREAKER_TRIAL;
    CU_ASSERT_EQUAL(granted, 255);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&m)), 255);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&m)), RP_BREAKER_HALF_OPEN);
}

static void test_reset(void)
{
    _Atomic uint64_t w = 0;
    trip(&w, &P, 0);
    rp_breaker_reset(&w);
    CU_ASSERT_EQUAL(load(&w), 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1), RP_BREAKER_ALLOW);

    trip(&w, &P, 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&w, &P, 1000), RP_BREAKER_TRIAL);
    rp_breaker_reset(&w);
    CU_ASSERT_EQUAL(rp_breaker_word_state(load(&w)), RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(load(&w)), 0);
    rp_breaker_release(&w, RP_BREAKER_TRIAL); /* the held trial comes back late */
    CU_ASSERT_EQUAL(load(&w), 0);
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
    CU_ASSERT_EQUAL(rp_breaker_acquire(&bad, &P, 0), RP_BREAKER_ALLOW);
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
        {"half-open trial slots", test_trial_slots},
        {"release_trials for a dead process", test_release_trials_dead_process},
        {"late verdicts leave the word alone", test_late_verdicts},
        {"saturation and clamping", test_saturation},
        {"reset", test_reset},
        {"names and display state", test_names_and_display},
        {NULL, NULL},
    };
    return rp_test_run("breaker", cases);
}
