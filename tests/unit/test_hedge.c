/* test_hedge.c - hedged reads' decisions (rp_hedge.h): the recent latency
 * view, the delay with its floor and ceiling, which calls may be hedged, and
 * the host-wide budget over its window, with the sums read from a segment
 * laid out like the daemon's. */
#include "rp_hedge.h"

#include "rp_chain.h"
#include "rp_test.h"
#include "rp_testshm.h"

/* A histogram with N samples at LATENCY_US (cumulative counts added). */
static void add_samples(uint64_t *cum, uint64_t latency_us, uint64_t n)
{
    cum[rp_lat_bucket(latency_us)] += n;
}

static void test_quantile(void)
{
    double h[RP_LAT_BUCKETS] = {0};
    /* too few samples: nothing known */
    h[rp_lat_bucket(500)] = 10;
    CU_ASSERT_EQUAL(rp_hedge_quantile_us(h, 0.95, RP_HEDGE_MIN_SAMPLES), 0.0);
    /* 95 fast (about 500 us), 5 slow (500 ms): the 0.95 quantile is fast,
     * the 0.99 one slow */
    h[rp_lat_bucket(500)] = 95;
    h[rp_lat_bucket(500000)] = 5;
    double q95 = rp_hedge_quantile_us(h, 0.95, RP_HEDGE_MIN_SAMPLES);
    double q99 = rp_hedge_quantile_us(h, 0.99, RP_HEDGE_MIN_SAMPLES);
    CU_ASSERT(q95 > 300 && q95 <= 720);
    CU_ASSERT(q99 > 300000 && q99 <= 720000);
    /* inside its bucket, linear: a lower share lands lower */
    double q50 = rp_hedge_quantile_us(h, 0.50, RP_HEDGE_MIN_SAMPLES);
    CU_ASSERT(q50 < q95);
}

static void test_delay(void)
{
    /* the lower of the endpoint's and the pool's quantile */
    CU_ASSERT_EQUAL(rp_hedge_delay_us(500000, 4000, 3000), 4000);
    CU_ASSERT_EQUAL(rp_hedge_delay_us(4000, 500000, 3000), 4000);
    CU_ASSERT_EQUAL(rp_hedge_delay_us(0, 6000, 3000), 6000);
    CU_ASSERT_EQUAL(rp_hedge_delay_us(7000, 0, 3000), 7000);
    /* floor: never sooner than RP_HEDGE_FLOOR_US */
    CU_ASSERT_EQUAL(rp_hedge_delay_us(120, 90, 3000), RP_HEDGE_FLOOR_US);
    /* ceiling: RP_HEDGE_CEIL_US, or half the attempt timeout when lower */
    CU_ASSERT_EQUAL(rp_hedge_delay_us(5e6, 4e6, 30000), RP_HEDGE_CEIL_US);
    CU_ASSERT_EQUAL(rp_hedge_delay_us(5e6, 4e6, 400), 200000);
    /* a cold start (nothing known anywhere): the ceiling, not every call */
    CU_ASSERT_EQUAL(rp_hedge_delay_us(0, 0, 3000), RP_HEDGE_CEIL_US);
    CU_ASSERT_EQUAL(rp_hedge_delay_us(0, 0, 1000), 500000);
}

static void test_eligible(void)
{
    CU_ASSERT_TRUE(rp_hedge_eligible(0, 1, 0, 0, 0, 0, RP_CHAIN_PLAIN));
    CU_ASSERT_TRUE(rp_hedge_eligible(0, 1, 0, 0, 0, 0, RP_CHAIN_LOOKUP));
    CU_ASSERT_FALSE(rp_hedge_eligible(1, 1, 0, 0, 0, 0, RP_CHAIN_PLAIN)); /* batch */
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 0, 0, 0, 0, 0, RP_CHAIN_PLAIN)); /* notification */
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 1, 0, 0, 0, RP_CHAIN_PLAIN)); /* no_retry_methods */
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 0, 1, 0, 0, RP_CHAIN_PLAIN)); /* warm-up */
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 0, 0, 4, 0, RP_CHAIN_PLAIN)); /* filter's endpoint */
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 0, 0, 0, 2, RP_CHAIN_PLAIN)); /* affinity */
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 0, 0, 0, 0, RP_CHAIN_FILTER_NEW));
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 0, 0, 0, 0, RP_CHAIN_FILTER_USE));
    CU_ASSERT_FALSE(rp_hedge_eligible(0, 1, 0, 0, 0, 0, RP_CHAIN_TX_FLOW));
}

/* The recent view forgets: an endpoint slow for a while and fast since has
 * its quantile back down within seconds, where the cumulative one would not. */
static void test_decay(void)
{
    struct rp_hedge_lat l;
    memset(&l, 0, sizeof l);
    uint64_t cum[RP_LAT_BUCKETS] = {0};
    add_samples(cum, 400000, 10000); /* a long slow past */
    rp_hedge_lat_fold(&l, cum, 0);
    CU_ASSERT(rp_hedge_quantile_us(l.recent, 0.95, RP_HEDGE_MIN_SAMPLES) > 200000);
    for (int s = 0; s < 30; s++) { /* 30 s of 100 fast calls per second */
        add_samples(cum, 800, 100);
        rp_hedge_lat_fold(&l, cum, 1);
    }
    CU_ASSERT(rp_hedge_quantile_us(l.recent, 0.95, RP_HEDGE_MIN_SAMPLES) < 2000);
    double cumul[RP_LAT_BUCKETS];
    for (int b = 0; b < RP_LAT_BUCKETS; b++)
        cumul[b] = (double)cum[b];
    CU_ASSERT(rp_hedge_quantile_us(cumul, 0.95, RP_HEDGE_MIN_SAMPLES) > 200000);
    /* an idle minute: everything forgotten, nothing known */
    rp_hedge_lat_fold(&l, cum, 60);
    CU_ASSERT_EQUAL(rp_hedge_quantile_us(l.recent, 0.95, RP_HEDGE_MIN_SAMPLES), 0.0);
    /* a row reset (counts went down): no negative samples, a new base */
    uint64_t zero[RP_LAT_BUCKETS] = {0};
    rp_hedge_lat_fold(&l, zero, 1);
    for (int b = 0; b < RP_LAT_BUCKETS; b++)
        CU_ASSERT(l.recent[b] >= 0.0);
    add_samples(zero, 800, 50);
    rp_hedge_lat_fold(&l, zero, 1);
    CU_ASSERT(rp_hedge_quantile_us(l.recent, 0.95, RP_HEDGE_MIN_SAMPLES) < 2000);
}

static void test_budget_window(void)
{
    struct rp_hedge_budget b;
    memset(&b, 0, sizeof b);
    /* no sample yet: nothing to count a share of */
    CU_ASSERT_FALSE(rp_hedge_budget_allows(&b, 1000, 100, 0, 1, 10));
    CU_ASSERT_TRUE(rp_hedge_budget_sample(&b, 1000, 0, 0));
    CU_ASSERT_FALSE(rp_hedge_budget_sample(&b, 1500, 50, 0)); /* within a tick: kept as is */
    /* 100 calls since: 10 hedges at 10 %, not 11 */
    CU_ASSERT_TRUE(rp_hedge_budget_allows(&b, 1900, 100, 9, 1, 10));
    CU_ASSERT_FALSE(rp_hedge_budget_allows(&b, 1900, 100, 10, 1, 10));
    CU_ASSERT_FALSE(rp_hedge_budget_allows(&b, 1900, 100, 0, 1, 0)); /* 0 = off */
    CU_ASSERT_TRUE(rp_hedge_budget_allows(&b, 1900, 100, 99, 1, 100));
    /* a steady 100 calls/s with 10 % hedged for a minute: the window holds
     * the last ~10 s only, so the allowance never piles up */
    uint64_t calls = 0, hedges = 0;
    for (uint64_t t = 2000; t <= 62000; t += 1000) {
        calls += 100;
        hedges += 10;
        rp_hedge_budget_sample(&b, t, calls, hedges);
    }
    CU_ASSERT_FALSE(rp_hedge_budget_allows(&b, 62500, calls, hedges, 1, 10));
    /* then the provider turns slow and every call wants a hedge: over the
     * next 20 s at most ~10 % of the calls get one */
    uint64_t sent = 0, asked = 0;
    for (uint64_t t = 62000; t < 82000; t += 10) {
        calls += 1;
        asked++;
        rp_hedge_budget_sample(&b, t, calls, hedges);
        if (rp_hedge_budget_allows(&b, t, calls, hedges, 1, 10)) {
            hedges++;
            sent++;
        }
    }
    CU_ASSERT(sent * 100 <= 10 * asked + 100);
    CU_ASSERT(sent > 0);
    /* a sum that went down (rows reset): not a base, no allowance from it */
    struct rp_hedge_budget r;
    memset(&r, 0, sizeof r);
    rp_hedge_budget_sample(&r, 1000, 5000, 0);
    CU_ASSERT_FALSE(rp_hedge_budget_allows(&r, 1500, 10, 0, 1, 10));
    rp_hedge_budget_sample(&r, 2000, 10, 0);
    CU_ASSERT_TRUE(rp_hedge_budget_allows(&r, 2500, 110, 0, 1, 10));
    /* a sample older than the window is no base */
    CU_ASSERT_FALSE(rp_hedge_budget_allows(&r, 2000 + RP_HEDGE_WINDOW_MS + 1, 110, 0, 1, 10));
}

/* The sums come from per-slot cells only: a slot's counts (say, of a worker
 * SIGKILLed) stay its own, and the host-wide figure is their sum. */
static void test_host_sums(void)
{
    struct rp_shm_header *h = rp_testshm_create(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    atomic_store(&rp_shm_stats(h, 0, 0)->hedge_calls, 100);
    atomic_store(&rp_shm_stats(h, 2, 0)->hedge_calls, 50);
    atomic_store(&rp_shm_stats(h, 0, 1)->hedges_sent, 4);
    atomic_store(&rp_shm_stats(h, 1, 2)->hedges_sent, 3);
    atomic_store(&rp_shm_stats(h, 2, 63)->hedges_sent, 1);
    atomic_store(&rp_shm_stats(h, 5, 1)->hedges_sent, 1000); /* above slots_hwm: not summed */
    uint64_t calls = 0, hedges = 0;
    rp_hedge_host_counts(h, &calls, &hedges);
    CU_ASSERT_EQUAL(calls, 150);
    CU_ASSERT_EQUAL(hedges, 8);

    atomic_store(&rp_shm_stats(h, 0, 1)->hist[rp_lat_bucket(700)], 30);
    atomic_store(&rp_shm_stats(h, 1, 1)->hist[rp_lat_bucket(700)], 12);
    atomic_store(&rp_shm_stats(h, 1, 2)->hist[rp_lat_bucket(700)], 99); /* another endpoint */
    uint64_t out[RP_LAT_BUCKETS];
    rp_hedge_host_hist(h, 1, out);
    CU_ASSERT_EQUAL(out[rp_lat_bucket(700)], 42);
    uint64_t total = 0;
    for (int b = 0; b < RP_LAT_BUCKETS; b++)
        total += out[b];
    CU_ASSERT_EQUAL(total, 42);
    rp_testshm_destroy(h);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"quantile of a decayed histogram", test_quantile},
        {"delay: lower quantile, floor, ceiling, cold start", test_delay},
        {"which calls may be hedged", test_eligible},
        {"the recent view forgets", test_decay},
        {"budget over a window", test_budget_window},
        {"host-wide sums from per-slot cells", test_host_sums},
        {NULL, NULL},
    };
    return rp_test_run("hedge", cases);
}
