/* test_balancer.c - the four strategies over many picks, with seq and rnd
 * supplied by the test (a seeded splitmix64 stands in for the random
 * source, so every run is the same). */
#include "rp_balancer.h"
#include "rp_test.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void set_equal(struct rp_balancer_candidate *c, int n)
{
    for (int i = 0; i < n; i++) {
        c[i].id = (uint32_t)(10 + i);
        c[i].weight = 1;
        c[i].inflight = 3;
        c[i].ewma_us = 2000;
    }
}

static void test_single_candidate(void)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    struct rp_balancer_candidate c[1];
    set_equal(c, 1);
    enum rp_balance modes[] = {RP_BALANCE_P2C, RP_BALANCE_ROUND_ROBIN, RP_BALANCE_WEIGHTED,
                               RP_BALANCE_RANDOM};
    for (int m = 0; m < 4; m++)
        for (uint64_t s = 0; s < 50; s++)
            CU_ASSERT_EQUAL(rp_balancer_pick(&b, modes[m], c, 1, s, s * 7919), 0);
    rp_balancer_free(&b);
}

static void test_round_robin(void)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    struct rp_balancer_candidate c[5];
    set_equal(c, 5);
    c[0].weight = 9; /* weights and scores play no part */
    c[1].inflight = 1000;
    for (uint64_t s = 0; s < 1000; s++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_ROUND_ROBIN, c, 5, s, 12345), (int)(s % 5));
    /* a huge host-wide sequence number keeps rotating */
    uint64_t big = UINT64_MAX - 9;
    for (uint64_t s = big; s < big + 5; s++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_ROUND_ROBIN, c, 5, s, 0), (int)(s % 5));
    rp_balancer_free(&b);
}

static void test_weighted_nginx_pattern(void)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    struct rp_balancer_candidate c[3];
    set_equal(c, 3);
    c[0].weight = 5;
    c[1].weight = 1;
    c[2].weight = 1;
    /* nginx smooth weighted round-robin: a a b a c a a, repeating */
    static const int expect[7] = {0, 0, 1, 0, 2, 0, 0};
    for (uint64_t s = 0; s < 7 * 20; s++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, c, 3, s, 0), expect[s % 7]);
    CU_ASSERT_EQUAL(b.len, 7);

    /* 2,1 is a b a (smooth), not a a b */
    struct rp_balancer_candidate d[2];
    set_equal(d, 2);
    d[0].weight = 2;
    static const int expect2[3] = {0, 1, 0};
    for (uint64_t s = 0; s < 30; s++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, d, 2, s, 0), expect2[s % 3]);
    rp_balancer_free(&b);
}

/* Exact per-period counts, and smoothness: in every prefix of the period a
 * candidate's count stays within one pick of its proportional share. */
static void check_weighted(struct rp_balancer *b, const struct rp_balancer_candidate *c, int n,
                           int smooth)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += c[i].weight;
    uint64_t counts[RP_MAX_ENDPOINTS] = {0};
    double worst = 0.0;
    for (uint64_t s = 0; s < total * 3; s++) {
        int k = rp_balancer_pick(b, RP_BALANCE_WEIGHTED, c, n, s, s);
        if (k < 0 || k >= n)
            CU_FAIL_FATAL("pick out of range");
        counts[k]++;
        for (int i = 0; i < n; i++) {
            double share = (double)(s + 1) * c[i].weight / (double)total;
            double dev = fabs((double)counts[i] - share);
            if (dev > worst)
                worst = dev;
        }
    }
    for (int i = 0; i < n; i++)
        CU_ASSERT_EQUAL(counts[i], 3ull * c[i].weight);
    if (smooth)
        CU_ASSERT_TRUE(worst < 1.0 + 1e-9);
}

static void test_weighted_counts_and_smoothness(void)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    struct rp_balancer_candidate c[RP_MAX_ENDPOINTS];

    set_equal(c, 4);
    c[0].weight = 3;
    c[1].weight = 2;
    c[2].weight = 1;
    c[3].weight = 4;
    check_weighted(&b, c, 4, 1);

    set_equal(c, 6);
    uint32_t w6[6] = {7, 1, 13, 2, 2, 5};
    for (int i = 0; i < 6; i++)
        c[i].weight = w6[i];
    check_weighted(&b, c, 6, 1);

    /* the largest cacheable set: 64 candidates of weight 1000 */
    set_equal(c, RP_MAX_ENDPOINTS);
    for (int i = 0; i < RP_MAX_ENDPOINTS; i++)
        c[i].weight = 1000;
    check_weighted(&b, c, RP_MAX_ENDPOINTS, 0);
    CU_ASSERT_EQUAL(b.len, RP_BALANCER_MAX_SCHEDULE);
    rp_balancer_free(&b);
}

static void test_weighted_cache(void)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    CU_ASSERT_PTR_NULL(b.schedule);
    struct rp_balancer_candidate c[3];
    set_equal(c, 3);
    c[0].weight = 5;
    rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, c, 3, 0, 0);
    CU_ASSERT_PTR_NOT_NULL(b.schedule);
    uint64_t key = b.key;
    CU_ASSERT_EQUAL(b.len, 7);

    /* same set, other load figures: the cached schedule is kept */
    c[1].inflight = 99;
    c[2].ewma_us = 1;
    rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, c, 3, 1, 0);
    CU_ASSERT_EQUAL(b.key, key);

    /* a changed weight rebuilds */
    c[2].weight = 3;
    CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, c, 3, 0, 0), 0);
    CU_ASSERT_NOT_EQUAL(b.key, key);
    CU_ASSERT_EQUAL(b.len, 9);

    /* same weights but other endpoints (a retry leaving one out) rebuilds */
    uint64_t key2 = b.key;
    c[0].id = 77;
    rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, c, 3, 0, 0);
    CU_ASSERT_NOT_EQUAL(b.key, key2);

    /* a subset (weights 1, 3): positions refer to the subset */
    static const int expect[4] = {1, 0, 1, 1};
    for (uint64_t s = 0; s < 40; s++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, &c[1], 2, s, 0), expect[s % 4]);
    rp_balancer_free(&b);
    CU_ASSERT_PTR_NULL(b.schedule);
}

static void test_weighted_uncacheable(void)
{
    /* a set beyond the schedule's size still gets exact per-period counts */
    struct rp_balancer b;
    rp_balancer_init(&b);
    struct rp_balancer_candidate c[2];
    set_equal(c, 2);
    c[0].weight = RP_BALANCER_MAX_SCHEDULE;
    c[1].weight = 3;
    uint64_t total = RP_BALANCER_MAX_SCHEDULE + 3, n1 = 0;
    for (uint64_t s = 0; s < total; s++)
        n1 += rp_balancer_pick(&b, RP_BALANCE_WEIGHTED, c, 2, s, 0) == 1;
    CU_ASSERT_EQUAL(n1, 3);
    CU_ASSERT_PTR_NULL(b.schedule);

    /* and without a cache at all */
    c[0].weight = 2;
    c[1].weight = 1;
    n1 = 0;
    for (uint64_t s = 0; s < 300; s++)
        n1 += rp_balancer_pick(NULL, RP_BALANCE_WEIGHTED, c, 2, s, 0) == 1;
    CU_ASSERT_EQUAL(n1, 100);
}

/* Pick N_PICKS times with MODE over N candidates and check each got its
 * 1/n share within TOL (relative). */
static void check_uniform(enum rp_balance mode, struct rp_balancer_candidate *c, int n,
                          uint64_t seed)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    enum { N_PICKS = 140000 };
    uint64_t counts[RP_MAX_ENDPOINTS] = {0};
    uint64_t st = seed;
    for (uint64_t s = 0; s < N_PICKS; s++) {
        int k = rp_balancer_pick(&b, mode, c, n, s, splitmix64(&st));
        if (k < 0 || k >= n)
            CU_FAIL_FATAL("pick out of range");
        counts[k]++;
    }
    double expect = (double)N_PICKS / n;
    for (int i = 0; i < n; i++)
        CU_ASSERT_TRUE(fabs((double)counts[i] - expect) < 0.05 * expect);
    rp_balancer_free(&b);
}

static void test_random_uniform(void)
{
    struct rp_balancer_candidate c[7];
    set_equal(c, 7);
    check_uniform(RP_BALANCE_RANDOM, c, 7, 1);
    set_equal(c, 2);
    check_uniform(RP_BALANCE_RANDOM, c, 2, 2);
}

static void test_p2c_uniform_for_equal_scores(void)
{
    struct rp_balancer_candidate c[7];
    set_equal(c, 7);
    check_uniform(RP_BALANCE_P2C, c, 7, 3);
    set_equal(c, 3);
    check_uniform(RP_BALANCE_P2C, c, 3, 4);
    /* equal scores reached with different figures */
    set_equal(c, 3);
    c[0].weight = 2;
    c[0].ewma_us = 4000; /* 4 * 4000 / 2 == 4 * 2000 / 1 */
    check_uniform(RP_BALANCE_P2C, c, 3, 5);
}

static void test_p2c_prefers_lower_score(void)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    uint64_t st = 42;

    /* two candidates: the pair is always both, so the better one always wins
     * (this fails if the two draws could be the same candidate) */
    struct rp_balancer_candidate c[4];
    set_equal(c, 2);
    c[1].inflight = 4; /* 5 * 2000 vs 4 * 2000 */
    for (int i = 0; i < 10000; i++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_P2C, c, 2, 0, splitmix64(&st)), 0);

    /* weight divides the score: (1+1)*100/2 = 100 beats (0+1)*150/1 */
    c[0].inflight = 1;
    c[0].ewma_us = 100;
    c[0].weight = 2;
    c[1].inflight = 0;
    c[1].ewma_us = 150;
    c[1].weight = 1;
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_P2C, c, 2, 0, splitmix64(&st)), 0);

    /* no sample yet counts as 1 us: (5+1)*1 beats (0+1)*10 */
    c[0].inflight = 5;
    c[0].ewma_us = 0;
    c[0].weight = 1;
    c[1].ewma_us = 10;
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(rp_balancer_pick(&b, RP_BALANCE_P2C, c, 2, 0, splitmix64(&st)), 0);

    /* four candidates, one clearly best: it wins whenever it is drawn, i.e.
     * in 3 of the 6 pairs; the three equal others share the rest */
    set_equal(c, 4);
    c[2].inflight = 0;
    enum { PICKS = 120000 };
    uint64_t counts[4] = {0};
    for (int i = 0; i < PICKS; i++)
        counts[rp_balancer_pick(&b, RP_BALANCE_P2C, c, 4, 0, splitmix64(&st))]++;
    CU_ASSERT_TRUE(fabs((double)counts[2] - PICKS / 2.0) < 0.03 * PICKS / 2.0);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            CU_ASSERT_TRUE(fabs((double)counts[i] - PICKS / 6.0) < 0.05 * PICKS / 6.0);

    /* graded scores: the worst candidate is never picked, the best most */
    for (int i = 0; i < 4; i++) {
        c[i].inflight = (uint32_t)i;
        c[i].ewma_us = 1000;
    }
    memset(counts, 0, sizeof(counts));
    for (int i = 0; i < PICKS; i++)
        counts[rp_balancer_pick(&b, RP_BALANCE_P2C, c, 4, 0, splitmix64(&st))]++;
    CU_ASSERT_EQUAL(counts[3], 0);
    CU_ASSERT_TRUE(counts[0] > counts[1] && counts[1] > counts[2]);
    rp_balancer_free(&b);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"one candidate is always index 0", test_single_candidate},
        {"round_robin exact rotation", test_round_robin},
        {"weighted follows nginx's smooth pattern", test_weighted_nginx_pattern},
        {"weighted exact counts and smoothness", test_weighted_counts_and_smoothness},
        {"weighted schedule cache", test_weighted_cache},
        {"weighted beyond the cache", test_weighted_uncacheable},
        {"random is uniform", test_random_uniform},
        {"p2c is uniform for equal scores", test_p2c_uniform_for_equal_scores},
        {"p2c prefers the lower score", test_p2c_prefers_lower_score},
        {NULL, NULL},
    };
    return rp_test_run("balancer", cases);
}
