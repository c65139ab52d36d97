/* test_ratelimit.c - the GCRA limiter with the clock driven by hand. */
#include "rp_ratelimit.h"
#include "rp_test.h"

#include <math.h>

#define MS  1000000ull
#define SEC 1000000000ull

/* 10 requests per second (100 ms interval), burst 5. */
static const struct rp_gcra_params P = {.interval_ns = 100 * MS, .burst = 5};

static void test_interval_rounding(void)
{
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(100, 60000), 600 * MS);
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(3, 1000), 333333333ull);
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(2, 1000), 500 * MS);
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(1000, 1), 1000ull);
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(7, 1), 142857ull);    /* 142857.14 rounds down */
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(3, 2), 666667ull);    /* 666666.67 rounds up */
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(2000000, 1), 1ull);   /* 0.5 rounds up */
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(100000000, 1), 1ull); /* never below 1 ns */
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(1, 1), 1 * MS);
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(0, 1000), SEC);              /* 0 taken as 1 */
    CU_ASSERT_EQUAL(rp_gcra_interval_ns(1, UINT64_MAX), UINT64_MAX); /* saturates */
}

static void test_initial_burst(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 50 * SEC;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 0);
    /* the sixth must wait exactly one interval */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 100 * MS);
    /* a denial does not move the TAT */
    CU_ASSERT_EQUAL(atomic_load(&tat), now + 5 * 100 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now + 40 * MS), 60 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now + 100 * MS - 1), 1);
}

static void test_refill(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 1 * SEC;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 0);
    /* exactly one token per interval */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now + 100 * MS), 0);
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&tat, &P, 1, now + 100 * MS), 0);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now + 200 * MS), 0);
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&tat, &P, 1, now + 299 * MS), 0);
    /* a long pause refills to burst, not beyond */
    uint64_t later = now + 100 * SEC;
    int admitted = 0;
    for (int i = 0; i < 20; i++)
        admitted += rp_gcra_take(&tat, &P, 1, later) == 0;
    CU_ASSERT_EQUAL(admitted, 5);
}

static void test_steady_rate(void)
{
    /* over 10 s at 10/s with burst 5: 5 + 100 admitted, polling every 1 ms */
    _Atomic uint64_t tat = 0;
    uint64_t t0 = 7 * SEC;
    int admitted = 0;
    for (uint64_t t = t0; t <= t0 + 10 * SEC; t += 1 * MS)
        while (rp_gcra_take(&tat, &P, 1, t) == 0)
            admitted++;
    CU_ASSERT_EQUAL(admitted, 5 + 100);
}

static void test_batch(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 3 * SEC;
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 3, now), 0);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(atomic_load(&tat), &P, now), 2.0, 1e-9);
    /* 3 more need one more token: wait one interval */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 3, now), 100 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 2, now), 0);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 100 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 2, now), 200 * MS);
    /* n == 0 takes nothing */
    uint64_t before = atomic_load(&tat);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 0, now), 0);
    CU_ASSERT_EQUAL(atomic_load(&tat), before);
}

static void test_batch_over_burst(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 3 * SEC;
    /* 50 > burst 5: never admitted, and nothing is taken */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 50, now), RP_GCRA_NEVER);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 6, now + 100 * SEC), RP_GCRA_NEVER);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, UINT64_MAX, now), RP_GCRA_NEVER);
    CU_ASSERT_EQUAL(atomic_load(&tat), 0);
    /* exactly the burst takes the whole bucket: N calls cost N tokens */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 5, now), 0);
    CU_ASSERT_EQUAL(atomic_load(&tat), now + 5 * 100 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 100 * MS);
    /* a batch of 3 waits for 3 tokens, not for a full bucket */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 3, now + 100 * MS), 200 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 3, now + 300 * MS), 0);
    /* a finite wait is never mistaken for NEVER */
    struct rp_gcra_params slow = {.interval_ns = UINT64_MAX / 4, .burst = 2};
    _Atomic uint64_t t2 = 0;
    CU_ASSERT_EQUAL(rp_gcra_take(&t2, &slow, 2, 0), 0);
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&t2, &slow, 2, 0), RP_GCRA_NEVER);
}

static void test_rescale(void)
{
    uint64_t now = 10 * SEC;
    /* 1 a minute (burst 1), bucket empty; raised to 1000/s burst 1000: the
     * one missing token is now 1 ms away, not a minute */
    struct rp_gcra_params slow = {.interval_ns = rp_gcra_interval_ns(1, 60000), .burst = 1};
    struct rp_gcra_params fast = {.interval_ns = rp_gcra_interval_ns(1000, 1000), .burst = 1000};
    _Atomic uint64_t tat = 0;
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &slow, 1, now), 0);
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&tat, &slow, 1, now), 0);
    rp_gcra_rescale(&tat, &slow, &fast, now);
    CU_ASSERT_EQUAL(atomic_load(&tat), now + 1 * MS);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(atomic_load(&tat), &fast, now), 999.0, 1e-6);
    int admitted = 0;
    for (int i = 0; i < 1200; i++)
        admitted += rp_gcra_take(&tat, &fast, 1, now) == 0;
    CU_ASSERT_EQUAL(admitted, 999);

    /* lowered: 1000/s burst 1000 with 400 taken -> 10/s burst 10: the debt
     * is capped at the new burst (empty), never more */
    _Atomic uint64_t t2 = 0;
    struct rp_gcra_params low = {.interval_ns = 100 * MS, .burst = 10};
    for (int i = 0; i < 400; i++)
        rp_gcra_take(&t2, &fast, 1, now);
    rp_gcra_rescale(&t2, &fast, &low, now);
    CU_ASSERT_EQUAL(atomic_load(&t2), now + 10 * 100 * MS);
    CU_ASSERT_EQUAL(rp_gcra_take(&t2, &low, 1, now), 100 * MS);

    /* a full bucket stays full; a partial one keeps its missing tokens */
    _Atomic uint64_t t3 = 0;
    rp_gcra_rescale(&t3, &fast, &low, now);
    CU_ASSERT_EQUAL(atomic_load(&t3), 0);
    _Atomic uint64_t t4 = 0;
    rp_gcra_take(&t4, &low, 4, now); /* 6 of 10 left */
    rp_gcra_rescale(&t4, &low, &fast, now);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(atomic_load(&t4), &fast, now), 996.0, 1e-6);
}

static void test_fractional_rate(void)
{
    /* 3 per second, burst 1: admissions 333333333 ns apart */
    struct rp_gcra_params p = {.interval_ns = rp_gcra_interval_ns(3, 1000), .burst = 1};
    _Atomic uint64_t tat = 0;
    uint64_t t = 10 * SEC;
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &p, 1, t), 0);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &p, 1, t), 333333333ull);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &p, 1, t + 333333332ull), 1);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &p, 1, t + 333333333ull), 0);

    /* 100 per minute, burst 10: after the burst, one every 600 ms */
    struct rp_gcra_params m = {.interval_ns = rp_gcra_interval_ns(100, 60000), .burst = 10};
    _Atomic uint64_t tat2 = 0;
    int admitted = 0;
    for (uint64_t ms = 0; ms <= 60000; ms++)
        while (rp_gcra_take(&tat2, &m, 1, 5 * SEC + ms * MS) == 0)
            admitted++;
    CU_ASSERT_EQUAL(admitted, 10 + 100);

    /* 1000 per ms: 1 us interval */
    struct rp_gcra_params f = {.interval_ns = rp_gcra_interval_ns(1000, 1), .burst = 1};
    _Atomic uint64_t tat3 = 0;
    admitted = 0;
    for (uint64_t ns = 0; ns < 1 * MS; ns += 100)
        admitted += rp_gcra_take(&tat3, &f, 1, SEC + ns) == 0;
    CU_ASSERT_EQUAL(admitted, 1000);
}

static void test_clock_steps_back(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 100 * SEC;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 0);
    uint64_t tat_full = atomic_load(&tat);

    /* a caller whose clock reads 10 s earlier: no underflow, no admission,
     * a wait that is finite and consistent with its own clock */
    uint64_t back = now - 10 * SEC;
    uint64_t wait = rp_gcra_take(&tat, &P, 1, back);
    CU_ASSERT_EQUAL(wait, 10 * SEC + 100 * MS);
    CU_ASSERT_EQUAL(atomic_load(&tat), tat_full);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(atomic_load(&tat), &P, back), 0.0, 1e-12);
    /* clock 0 against a TAT far ahead */
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 1, 0), tat_full - 5 * 100 * MS + 100 * MS);

    /* interleaving forward and backward readings never admits more than
     * burst + elapsed / interval over the forward span */
    _Atomic uint64_t t2 = 0;
    uint64_t base = 200 * SEC;
    int admitted = 0;
    for (uint64_t step = 0; step <= 1000; step++) {
        uint64_t fwd = base + step * MS;
        uint64_t bwd = fwd > 50 * MS ? fwd - 50 * MS : 0;
        admitted += rp_gcra_take(&t2, &P, 1, fwd) == 0;
        admitted += rp_gcra_take(&t2, &P, 1, bwd) == 0;
        admitted += rp_gcra_take(&t2, &P, 1, fwd) == 0;
    }
    CU_ASSERT_EQUAL(admitted, 5 + 10);

    /* a TAT near the top of the range saturates rather than wrapping */
    _Atomic uint64_t top = UINT64_MAX - 10;
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&top, &P, 1, 5), 0);
    CU_ASSERT_EQUAL(atomic_load(&top), UINT64_MAX - 10);
}

static void test_tokens_display(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 2 * SEC;
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(0, &P, now), 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(0, &P, 0), 5.0, 1e-12);
    for (int i = 0; i < 5; i++)
        rp_gcra_take(&tat, &P, 1, now);
    uint64_t v = atomic_load(&tat);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(v, &P, now), 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(v, &P, now + 50 * MS), 0.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(v, &P, now + 250 * MS), 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(v, &P, now + 500 * MS), 5.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(v, &P, now + 90 * SEC), 5.0, 1e-12);
    double t = rp_gcra_tokens(v, &P, now + 333 * MS);
    CU_ASSERT_TRUE(fabs(t - 3.33) < 1e-9);
}

static void test_reset(void)
{
    _Atomic uint64_t tat = 0;
    uint64_t now = 4 * SEC;
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 5, now), 0);
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&tat, &P, 1, now), 0);
    rp_gcra_reset(&tat);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(atomic_load(&tat), &P, now), 5.0, 1e-12);
    CU_ASSERT_EQUAL(rp_gcra_take(&tat, &P, 5, now), 0);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"interval rounding", test_interval_rounding},
        {"initial burst admitted exactly, then the right wait", test_initial_burst},
        {"refill after an interval", test_refill},
        {"steady rate over 10 s", test_steady_rate},
        {"a batch of N takes N", test_batch},
        {"N above burst is never admitted, N <= burst costs N", test_batch_over_burst},
        {"a reload rescales the bucket to the new limit", test_rescale},
        {"fractional rates", test_fractional_rate},
        {"a clock that steps back", test_clock_steps_back},
        {"tokens display", test_tokens_display},
        {"reset refills", test_reset},
        {NULL, NULL},
    };
    return rp_test_run("ratelimit", cases);
}
