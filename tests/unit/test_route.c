/* test_route.c - routing as a pure function (src/worker/route.c): which
 * endpoints of a hand-made snapshot a request may use, the order they are
 * handed out in (free connections first, busy ones behind them, never
 * dropped), and the latency the balancer sees. */
#include <string.h>

#include "rp_breaker.h"
#include "rp_route.h"
#include "rp_shm_abi.h"
#include "rp_test.h"

#define NOW 100000u /* the segment clock of every test, ms */

/* A usable endpoint ID: configured, up, closed breaker, a free connection. */
static struct rp_route_ep ep(uint32_t id)
{
    struct rp_route_ep e;
    memset(&e, 0, sizeof e);
    e.id = id;
    e.in_use = 1;
    e.up = 1;
    e.weight = 1;
    e.has_free_conn = 1;
    return e;
}

static const struct rp_route_call ANY = {.tried_mask = 0, .pin_ep = RP_ROUTE_NONE};

/* A breaker word opened at AT_MS (threshold 1, recovery 1000 ms). */
static uint64_t open_word(uint64_t at_ms)
{
    static const struct rp_breaker_params p = {1, 1000, 1};
    static _Atomic uint32_t cells[1];
    struct rp_trial_cells c = {cells, sizeof cells[0], 1, -1, 0};
    _Atomic uint64_t w = 0;
    struct rp_breaker_ticket t = rp_breaker_acquire(&w, &p, &c, at_ms);
    rp_breaker_failure(&w, &p, &c, t, at_ms);
    return atomic_load(&w);
}

/* Hand every candidate of PLAN out round-robin (seq 0): their ids, in order. */
static int drain(struct rp_route_plan *plan, int *ids)
{
    struct rp_balancer b;
    rp_balancer_init(&b);
    int n = 0, id;
    while ((id = rp_route_next(plan, &b, RP_BALANCE_ROUND_ROBIN, 0, 0)) != RP_ROUTE_NONE)
        ids[n++] = id;
    rp_balancer_free(&b);
    return n;
}

static void test_every_filter(void)
{
    struct rp_route_ep e[9];
    for (uint32_t i = 0; i < 9; i++)
        e[i] = ep(i);
    e[1].in_use = 0;                      /* not configured */
    e[2].drained = 1;                     /* drained by the operator */
    e[3].up = 0;                          /* the prober says down */
    e[4].hold_until_ms = NOW + 1;         /* Retry-After hold still on */
    e[5].hold_until_ms = NOW;             /* hold ends now: usable */
    e[6].breaker = open_word(NOW - 10);   /* open */
    e[7].breaker = open_word(NOW - 5000); /* open past recovery: half-open, usable */
    struct rp_route_call call = {.tried_mask = 1ull << 8, .pin_ep = RP_ROUTE_NONE}; /* 8 tried */
    struct rp_route_plan plan;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 9, &call, NOW), 3);
    int ids[9];
    CU_ASSERT_EQUAL(drain(&plan, ids), 3);
    CU_ASSERT_EQUAL(ids[0], 0);
    CU_ASSERT_EQUAL(ids[1], 7); /* cand[0] replaced by the last one */
    CU_ASSERT_EQUAL(ids[2], 5);
    CU_ASSERT_FALSE(rp_route_usable(&e[6], &ANY, NOW));
    CU_ASSERT_TRUE(rp_route_usable(&e[7], &ANY, NOW));
    CU_ASSERT_FALSE(rp_route_usable(&e[8], &call, NOW));
    CU_ASSERT_TRUE(rp_route_usable(&e[8], &ANY, NOW));
}

static void test_pinned(void)
{
    struct rp_route_ep e[3] = {ep(0), ep(1), ep(2)};
    struct rp_route_call pin = {.tried_mask = 0, .pin_ep = 1};
    struct rp_route_plan plan;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 3, &pin, NOW), 1);
    CU_ASSERT_EQUAL(plan.cand[0].id, 1);
    /* a pinned endpoint that is down leaves nothing: no fallback */
    e[1].up = 0;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 3, &pin, NOW), 0);
    /* ... and one already tried too */
    e[1].up = 1;
    pin.tried_mask = 1ull << 1;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 3, &pin, NOW), 0);
}

static void test_free_first_busy_behind(void)
{
    struct rp_route_ep e[4] = {ep(0), ep(1), ep(2), ep(3)};
    e[0].has_free_conn = 0;
    e[2].has_free_conn = 0;
    struct rp_route_plan plan;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &ANY, NOW), 4);
    CU_ASSERT_EQUAL(plan.nfree, 2);
    int ids[4];
    CU_ASSERT_EQUAL(drain(&plan, ids), 4);
    /* the free ones first, then the busy ones: none dropped */
    CU_ASSERT_TRUE((ids[0] == 1 && ids[1] == 3) || (ids[0] == 3 && ids[1] == 1));
    CU_ASSERT_TRUE((ids[2] == 0 && ids[3] == 2) || (ids[2] == 2 && ids[3] == 0));
}

static void test_one_group(void)
{
    /* all busy, or all free: one group, every candidate handed out once */
    for (int busy = 0; busy < 2; busy++) {
        struct rp_route_ep e[3] = {ep(0), ep(1), ep(2)};
        for (int i = 0; i < 3; i++)
            e[i].has_free_conn = !busy;
        struct rp_route_plan plan;
        CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 3, &ANY, NOW), 3);
        CU_ASSERT_EQUAL(plan.nfree, 3);
        int ids[3], seen = 0;
        CU_ASSERT_EQUAL(drain(&plan, ids), 3);
        for (int i = 0; i < 3; i++)
            seen |= 1 << ids[i];
        CU_ASSERT_EQUAL(seen, 7);
    }
    struct rp_route_plan empty;
    CU_ASSERT_EQUAL(rp_route_plan(&empty, NULL, 0, &ANY, NOW), 0);
    struct rp_balancer b;
    rp_balancer_init(&b);
    CU_ASSERT_EQUAL(rp_route_next(&empty, &b, RP_BALANCE_P2C, 0, 0), RP_ROUTE_NONE);
    rp_balancer_free(&b);
}

static void test_candidate_fields(void)
{
    struct rp_route_ep e[2] = {ep(0), ep(1)};
    e[0].weight = 0; /* counts as 1 */
    e[1].weight = 5;
    e[0].inflight = 7;
    e[0].ewma = rp_ewma_pack(800, NOW - 2500); /* two half-lives old */
    e[1].ewma = rp_ewma_pack(800, NOW);
    struct rp_route_plan plan;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 2, &ANY, NOW), 2);
    CU_ASSERT_EQUAL(plan.cand[0].weight, 1);
    CU_ASSERT_EQUAL(plan.cand[1].weight, 5);
    CU_ASSERT_EQUAL(plan.cand[0].inflight, 7);
    CU_ASSERT_EQUAL(plan.cand[0].ewma_us, 200);
    CU_ASSERT_EQUAL(plan.cand[1].ewma_us, 800);
}

static void test_latency(void)
{
    uint64_t w = rp_ewma_pack(1000, NOW);
    CU_ASSERT_EQUAL(rp_route_ewma_decayed(w, NOW), 1000);
    CU_ASSERT_EQUAL(rp_route_ewma_decayed(w, NOW + RP_EWMA_HALF_LIFE_MS - 1), 1000);
    CU_ASSERT_EQUAL(rp_route_ewma_decayed(w, NOW + RP_EWMA_HALF_LIFE_MS), 500);
    CU_ASSERT_EQUAL(rp_route_ewma_decayed(w, NOW + 63ull * RP_EWMA_HALF_LIFE_MS), 0);
    CU_ASSERT_EQUAL(rp_route_ewma_decayed(w, NOW - 5), 1000); /* a clock behind the sample */
    /* closed: the decayed sample; half-open: 0, so its trial comes soon */
    CU_ASSERT_EQUAL(rp_route_latency_us(0, w, NOW), 1000);
    CU_ASSERT_EQUAL(rp_route_latency_us(open_word(NOW - 5000), w, NOW), 0);
}

static void test_chain_filters(void)
{
    struct rp_route_ep e[4];
    for (uint32_t i = 0; i < 4; i++)
        e[i] = ep(i);
    e[0].head_block = 100;
    e[1].head_block = 97;
    e[2].head_block = 0; /* not known yet */
    e[3].head_block = 101;
    struct rp_route_plan plan;
    int ids[4];
    /* a floor: only endpoints known to be at it or above */
    struct rp_route_call floor = ANY;
    floor.min_head = 100;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &floor, NOW), 2);
    CU_ASSERT_EQUAL(drain(&plan, ids), 2);
    CU_ASSERT_TRUE((ids[0] == 0 && ids[1] == 3) || (ids[0] == 3 && ids[1] == 0));
    floor.min_head = 102;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &floor, NOW), 0);
    /* the best head among the usable ones, whatever the floor */
    CU_ASSERT_EQUAL(rp_route_best_head(e, 4, &floor, NOW), 101);
    e[3].drained = 1;
    CU_ASSERT_EQUAL(rp_route_best_head(e, 4, &floor, NOW), 100);
    e[3].drained = 0;
    /* a filter's endpoint only */
    struct rp_route_call only = ANY;
    only.only_mask = 1ull << 1;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &only, NOW), 1);
    CU_ASSERT_EQUAL(rp_route_next(&plan, NULL, RP_BALANCE_ROUND_ROBIN, 0, 0), 1);
    e[1].up = 0;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &only, NOW), 0);
    e[1].up = 1;
    /* affinity: the preferred endpoint first, then the balancer, once */
    for (uint64_t seq = 0; seq < 4; seq++) {
        struct rp_route_call pref = ANY;
        pref.prefer_mask = 1ull << 2;
        CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &pref, NOW), 4);
        struct rp_balancer b;
        rp_balancer_init(&b);
        CU_ASSERT_EQUAL(rp_route_next(&plan, &b, RP_BALANCE_ROUND_ROBIN, seq, 0), 2);
        int rest = 0, id;
        while ((id = rp_route_next(&plan, &b, RP_BALANCE_ROUND_ROBIN, seq, 0)) != RP_ROUTE_NONE) {
            CU_ASSERT_NOT_EQUAL(id, 2);
            rest++;
        }
        CU_ASSERT_EQUAL(rest, 3);
        rp_balancer_free(&b);
    }
    /* a preferred endpoint that is not usable is simply not there */
    struct rp_route_call gone = ANY;
    gone.prefer_mask = 1ull << 1;
    gone.tried_mask = 1ull << 1;
    CU_ASSERT_EQUAL(rp_route_plan(&plan, e, 4, &gone, NOW), 3);
    CU_ASSERT_EQUAL(drain(&plan, ids), 3);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"every filter", test_every_filter},
        {"a pinned warm-up sees its endpoint only", test_pinned},
        {"free connections first, busy ones behind", test_free_first_busy_behind},
        {"one group when all are free or all busy", test_one_group},
        {"candidate weight, inflight, latency", test_candidate_fields},
        {"EWMA decay and the half-open latency", test_latency},
        {"chain floor, a filter's endpoint, affinity", test_chain_filters},
        {NULL, NULL},
    };
    return rp_test_run("route", cases);
}
