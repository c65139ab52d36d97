/* test_health.c - the prober's pure decisions (src/prober/health.c): rise/fall
 * hysteresis, chain quarantine, best head and lag, the published state, and
 * the reading of probe answers. Time is passed in by hand. */
#include <string.h>

#include "rp_health.h"
#include "rp_test.h"

/* Feed N results OK at times from *NOW_MS (100 ms apart); returns the last
 * change. */
static enum rp_health_change feed(struct rp_health *h, int ok, int n, uint64_t *now_ms)
{
    enum rp_health_change c = RP_HEALTH_SAME;
    for (int i = 0; i < n; i++) {
        *now_ms += 100;
        c = rp_health_record(h, ok, *now_ms);
    }
    return c;
}

/* A fresh endpoint starts up; it goes down on exactly the fall-th failure. */
static void test_fall_after_exactly_fall_failures(void)
{
    struct rp_health h;
    uint64_t now = 0;
    rp_health_init(&h, RP_EP_UP, 0, 0);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);
    for (int i = 1; i < RP_HEALTH_FALL; i++) {
        CU_ASSERT_EQUAL(feed(&h, 0, 1, &now), RP_HEALTH_SAME);
        CU_ASSERT_EQUAL(h.failures, (uint32_t)i);
        CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);
    }
    CU_ASSERT_EQUAL(feed(&h, 0, 1, &now), RP_HEALTH_WENT_DOWN);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_DOWN);
    CU_ASSERT_EQUAL(h.up, 0);
    CU_ASSERT_EQUAL(h.last_probe_ms, now);
    /* further failures change nothing */
    CU_ASSERT_EQUAL(feed(&h, 0, 5, &now), RP_HEALTH_SAME);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_DOWN);
}

/* A success in between restarts the failure run. */
static void test_success_resets_failure_run(void)
{
    struct rp_health h;
    uint64_t now = 0;
    rp_health_init(&h, RP_EP_UP, 0, 0);
    feed(&h, 0, RP_HEALTH_FALL - 1, &now);
    CU_ASSERT_EQUAL(feed(&h, 1, 1, &now), RP_HEALTH_SAME);
    CU_ASSERT_EQUAL(h.failures, 0);
    CU_ASSERT_EQUAL(h.last_ok_ms, now);
    CU_ASSERT_EQUAL(feed(&h, 0, RP_HEALTH_FALL - 1, &now), RP_HEALTH_SAME);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);
    CU_ASSERT_EQUAL(feed(&h, 0, 1, &now), RP_HEALTH_WENT_DOWN);
}

/* A down endpoint comes up on the rise-th consecutive success, is held out
 * until its chain id answers, then is up. */
static void test_rise_after_rise_successes_with_chain_gate(void)
{
    struct rp_health h;
    uint64_t now = 0;
    rp_health_init(&h, RP_EP_UP, 0, 0);
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 1, 1), 0);
    feed(&h, 0, RP_HEALTH_FALL, &now);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_DOWN);
    CU_ASSERT_EQUAL(h.chain_pending, 0);
    for (int i = 1; i < RP_HEALTH_RISE; i++) {
        CU_ASSERT_EQUAL(feed(&h, 1, 1, &now), RP_HEALTH_SAME);
        CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_DOWN);
    }
    /* a failure in the middle of a rise starts it over */
    CU_ASSERT_EQUAL(feed(&h, 0, 1, &now), RP_HEALTH_SAME);
    CU_ASSERT_EQUAL(feed(&h, 1, RP_HEALTH_RISE - 1, &now), RP_HEALTH_SAME);
    CU_ASSERT_EQUAL(feed(&h, 1, 1, &now), RP_HEALTH_CAME_UP);
    CU_ASSERT_EQUAL(h.up, 1);
    CU_ASSERT_EQUAL(h.chain_pending, 1);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_DOWN); /* gated */
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 1, 1), 0);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);
    CU_ASSERT_EQUAL(h.chain_pending, 0);
}

/* A restarted prober continues from the row: a down row stays down until
 * rise successes; its counters carry over. */
static void test_seed_from_row(void)
{
    struct rp_health h;
    uint64_t now = 0;
    rp_health_init(&h, RP_EP_DOWN, 1, 0);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_DOWN);
    CU_ASSERT_EQUAL(h.chain_pending, 1);
    CU_ASSERT_EQUAL(feed(&h, 1, 1, &now), RP_HEALTH_CAME_UP); /* 1 carried + 1 */

    rp_health_init(&h, RP_EP_UP, 0, RP_HEALTH_FALL - 1);
    CU_ASSERT_EQUAL(feed(&h, 0, 1, &now), RP_HEALTH_WENT_DOWN);

    rp_health_init(&h, RP_EP_QUARANTINED, 5, 0);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_QUARANTINED);
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 1, 1), -1); /* right chain now */
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);

    rp_health_init(&h, RP_EP_LAGGING, 0, 0);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_LAGGING);
}

/* Quarantine against the configured chain, or the first one seen. */
static void test_quarantine_decisions(void)
{
    struct rp_health h;
    CU_ASSERT_EQUAL(rp_health_expected_chain(1, 5), 1);
    CU_ASSERT_EQUAL(rp_health_expected_chain(0, 5), 5);
    CU_ASSERT_EQUAL(rp_health_expected_chain(0, 0), 0);

    rp_health_init(&h, RP_EP_UP, 0, 0);
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 5, rp_health_expected_chain(1, 0)), 1);
    CU_ASSERT_EQUAL(h.chain_id, 5);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_QUARANTINED);
    /* the same answer again is no new event (logged once) */
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 5, 1), 0);
    /* quarantine wins over down and lagging */
    uint64_t now = 0;
    feed(&h, 0, RP_HEALTH_FALL, &now);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_QUARANTINED);

    /* nothing configured: compared with the first endpoint that answered */
    rp_health_init(&h, RP_EP_UP, 0, 0);
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 31337, rp_health_expected_chain(0, 31337)), 0);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 5, rp_health_expected_chain(0, 31337)), 1);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_QUARANTINED);
    /* an endpoint that does not tell (0) is taken as it is */
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 0, 31337), -1);
    CU_ASSERT_EQUAL(rp_health_state(&h), RP_EP_UP);
    /* nothing expected yet: never a mismatch */
    CU_ASSERT_EQUAL(rp_health_chain_result(&h, 5, 0), 0);
    CU_ASSERT_EQUAL(h.quarantined, 0);
}

/* Best head over up, non-quarantined endpoints with a known head; lag. */
static void test_best_head_excludes_down_and_quarantined(void)
{
    struct rp_health hs[5];
    uint64_t now = 0;
    for (int i = 0; i < 5; i++)
        rp_health_init(&hs[i], RP_EP_UP, 0, 0);
    rp_health_set_head(&hs[0], 100);
    rp_health_set_head(&hs[1], 90);
    rp_health_set_head(&hs[2], 500); /* quarantined: another chain's head */
    rp_health_chain_result(&hs[2], 5, 1);
    rp_health_set_head(&hs[3], 400); /* down */
    feed(&hs[3], 0, RP_HEALTH_FALL, &now);
    /* hs[4]: head unknown */
    CU_ASSERT_EQUAL(rp_health_best_head(hs, 5), 100);
    CU_ASSERT_EQUAL(rp_health_update_lag(hs, 5, 5), 100);
    CU_ASSERT_EQUAL(hs[0].lagging, 0);
    CU_ASSERT_EQUAL(hs[1].lagging, 1);
    CU_ASSERT_EQUAL(hs[4].lagging, 0); /* unknown head: lag not judged */
    CU_ASSERT_EQUAL(rp_health_state(&hs[1]), RP_EP_LAGGING);
    CU_ASSERT_EQUAL(rp_health_state(&hs[4]), RP_EP_UP);
    CU_ASSERT_EQUAL(rp_health_state(&hs[3]), RP_EP_DOWN);
    CU_ASSERT_EQUAL(rp_health_best_head(hs, 0), 0);

    /* the down endpoint comes back: its head counts again once its chain
     * is confirmed */
    feed(&hs[3], 1, RP_HEALTH_RISE, &now);
    CU_ASSERT_EQUAL(rp_health_update_lag(hs, 5, 5), 100);
    rp_health_chain_result(&hs[3], 1, 1);
    CU_ASSERT_EQUAL(rp_health_update_lag(hs, 5, 5), 400);
    CU_ASSERT_EQUAL(hs[0].lagging, 1);
}

/* Exactly max_block_lag behind is still fine; one more is lagging; a lagging
 * endpoint's head still counts for the best (it is healthy). */
static void test_lag_boundary_and_catching_up(void)
{
    struct rp_health hs[2];
    rp_health_init(&hs[0], RP_EP_UP, 0, 0);
    rp_health_init(&hs[1], RP_EP_UP, 0, 0);
    rp_health_set_head(&hs[0], 100);
    rp_health_set_head(&hs[1], 95);
    rp_health_update_lag(hs, 2, 5);
    CU_ASSERT_EQUAL(rp_health_state(&hs[1]), RP_EP_UP);
    rp_health_set_head(&hs[1], 94);
    rp_health_update_lag(hs, 2, 5);
    CU_ASSERT_EQUAL(rp_health_state(&hs[1]), RP_EP_LAGGING);
    CU_ASSERT_EQUAL(rp_health_is_lagging(&hs[1], 100, 6), 0);
    CU_ASSERT_EQUAL(rp_health_is_lagging(&hs[1], 100, 5), 1);
    CU_ASSERT_EQUAL(rp_health_is_lagging(&hs[1], 90, 0), 0); /* ahead */

    /* the leader goes down: the lagging one is the best now, and up */
    uint64_t now = 0;
    feed(&hs[0], 0, RP_HEALTH_FALL, &now);
    CU_ASSERT_EQUAL(rp_health_update_lag(hs, 2, 5), 94);
    CU_ASSERT_EQUAL(rp_health_state(&hs[1]), RP_EP_UP);
    feed(&hs[0], 1, RP_HEALTH_RISE, &now);
    rp_health_chain_result(&hs[0], 1, 1);
    rp_health_update_lag(hs, 2, 5);
    CU_ASSERT_EQUAL(rp_health_state(&hs[1]), RP_EP_LAGGING);

    /* catching up */
    rp_health_set_head(&hs[1], 101);
    CU_ASSERT_EQUAL(rp_health_update_lag(hs, 2, 5), 101);
    CU_ASSERT_EQUAL(rp_health_state(&hs[1]), RP_EP_UP);
    CU_ASSERT_EQUAL(rp_health_state(&hs[0]), RP_EP_UP);

    /* a head that cannot be read any more is not judged */
    rp_health_set_head(&hs[0], 10);
    rp_health_update_lag(hs, 2, 5);
    CU_ASSERT_EQUAL(rp_health_state(&hs[0]), RP_EP_LAGGING);
    rp_health_clear_head(&hs[0]);
    rp_health_update_lag(hs, 2, 5);
    CU_ASSERT_EQUAL(rp_health_state(&hs[0]), RP_EP_UP);
}

static void test_parse_quantity(void)
{
    uint64_t v = 7;
    CU_ASSERT_EQUAL(rp_health_parse_quantity("0x0", 3, &v), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(rp_health_parse_quantity("0x7a69", 6, &v), 0);
    CU_ASSERT_EQUAL(v, 31337);
    CU_ASSERT_EQUAL(rp_health_parse_quantity("0xFFFFFFFFFFFFFFFF", 18, &v), 0);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    CU_ASSERT_EQUAL(rp_health_parse_quantity("0x1FFFFFFFFFFFFFFFF", 19, &v), -1);
    CU_ASSERT_EQUAL(rp_health_parse_quantity("0x", 2, &v), -1);
    CU_ASSERT_EQUAL(rp_health_parse_quantity("12", 2, &v), -1);
    CU_ASSERT_EQUAL(rp_health_parse_quantity("0xg1", 4, &v), -1);
}

static enum rp_reply_kind parse(const char *s, uint64_t id, struct rp_reply *r)
{
    return rp_health_parse_reply(s, strlen(s), id, r);
}

static void test_parse_reply(void)
{
    struct rp_reply r;
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":\"0x64\"}", 7, &r),
                    RP_REPLY_RESULT);
    CU_ASSERT_EQUAL(r.has_quantity, 1);
    CU_ASSERT_EQUAL(r.quantity, 100);
    /* member order and whitespace do not matter; nested values are skipped */
    CU_ASSERT_EQUAL(parse(" { \"result\" : {\"a\":[1,{\"id\":9}],\"b\":\"x\"}, \"id\" : 12 ,"
                          " \"jsonrpc\":\"2.0\" }",
                          12, &r),
                    RP_REPLY_RESULT);
    CU_ASSERT_EQUAL(r.has_quantity, 0);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":false}", 3, &r),
                    RP_REPLY_RESULT);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32601,"
                          "\"message\":\"method not found\"}}",
                          3, &r),
                    RP_REPLY_ERROR);
    /* not answers to us */
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":\"0x1\"}", 3, &r),
                    RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":\"3\",\"result\":\"0x1\"}", 3, &r),
                    RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"id\":3,\"result\":\"0x1\"}", 3, &r), RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"1.0\",\"id\":3,\"result\":\"0x1\"}", 3, &r),
                    RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":3}", 3, &r), RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":1,\"error\":{}}", 3, &r),
                    RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":\"bad\"}", 3, &r),
                    RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("[{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0x1\"}]", 3, &r),
                    RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("Internal Server Error", 3, &r), RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("", 3, &r), RP_REPLY_INVALID);
    CU_ASSERT_EQUAL(parse("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0x1\"", 3, &r),
                    RP_REPLY_INVALID);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"fall after exactly fall failures", test_fall_after_exactly_fall_failures},
        {"success resets the failure run", test_success_resets_failure_run},
        {"rise after rise successes, chain gate", test_rise_after_rise_successes_with_chain_gate},
        {"seeded from the shm row", test_seed_from_row},
        {"quarantine decisions", test_quarantine_decisions},
        {"best head excludes down and quarantined", test_best_head_excludes_down_and_quarantined},
        {"lag boundary and catching up", test_lag_boundary_and_catching_up},
        {"parse quantity", test_parse_quantity},
        {"parse reply", test_parse_reply},
        {NULL, NULL},
    };
    return rp_test_run("health", cases);
}
