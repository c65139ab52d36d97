/* test_publish.c - the supervisor's endpoint table across reloads: rows kept
 * by URL, retired rows reused only once no older process is alive (and then
 * reset, stats cells included), a removed and re-added endpoint starting
 * fresh, a changed rate limit applied at once, the layout seqlock, and a
 * refused publish changing nothing. */
#include "rp_breaker.h"
#include "rp_hold.h"
#include "rp_publish.h"
#include "rp_ratelimit.h"
#include "rp_test.h"
#include "rp_testshm.h"

#include <stdio.h>
#include <string.h>

static struct rp_config cfg;
static char urls[RP_MAX_ENDPOINTS][64];

/* A configuration of N endpoints; endpoint i has URL base_i. */
static void conf(int n, const int *base, int64_t max_requests, int64_t burst)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.endpoint_count = n;
    for (int i = 0; i < n; i++) {
        struct rp_endpoint_config *e = &cfg.endpoints[i];
        snprintf(urls[i], sizeof urls[i], "https://node%d.example/v3/KEY%d", base[i], base[i]);
        snprintf(e->name, sizeof e->name, "node%d", base[i]);
        e->url = urls[i];
        e->url_redacted = urls[i];
        e->weight = 1;
        e->rate_limit.max_requests = max_requests;
        e->rate_limit.window_ms = 1000;
        e->rate_limit.burst_size = burst;
    }
}

static int row_of(struct rp_shm_header *h, int base)
{
    char name[RP_NAME_MAX];
    snprintf(name, sizeof name, "node%d", base);
    for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++) {
        struct rp_shm_endpoint *e = rp_shm_ep(h, s);
        if (atomic_load(&e->in_use) && strcmp(e->name, name) == 0)
            return (int)s;
    }
    return -1;
}

static void test_keep_and_tombstone(void)
{
    struct rp_shm_header *h = rp_testshm_create(2);
    char err[256];
    int a[] = {1, 2, 3};
    conf(3, a, 10, 10);
    CU_ASSERT_EQUAL_FATAL(rp_publish_endpoints(h, &cfg, 1, UINT64_MAX, err, sizeof err), 0);
    int r2 = row_of(h, 2);
    CU_ASSERT_TRUE(r2 >= 0);
    /* live state of node2 survives a reload that keeps it */
    struct rp_shm_endpoint *e2 = rp_shm_ep(h, (unsigned)r2);
    struct rp_breaker_ticket t = {RP_BREAKER_ALLOW, 0};
    struct rp_breaker_params bp = {1, 60000, 1};
    rp_breaker_failure(&e2->breaker, &bp, NULL, t, rp_shm_now_ms(h));
    atomic_store(&e2->drained, 1);
    int b[] = {2, 3};
    conf(2, b, 10, 10);
    CU_ASSERT_EQUAL(rp_publish_endpoints(h, &cfg, 2, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(row_of(h, 2), r2);
    CU_ASSERT_EQUAL(rp_breaker_word_state(atomic_load(&e2->breaker)), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(atomic_load(&e2->drained), 1);
    CU_ASSERT_EQUAL(row_of(h, 1), -1); /* tombstoned */
    CU_ASSERT_EQUAL(atomic_load(&h->generation), 2);
    CU_ASSERT_EQUAL(atomic_load(&h->layout_seq) % 2, 0);
    CU_ASSERT_EQUAL(atomic_load(&h->layout_seq), 4); /* two sections, each +2 */
    rp_testshm_destroy(h);
}

static void test_readd_fresh(void)
{
    struct rp_shm_header *h = rp_testshm_create(2);
    char err[256];
    int a[] = {1, 2};
    conf(2, a, 10, 10);
    CU_ASSERT_EQUAL_FATAL(rp_publish_endpoints(h, &cfg, 1, UINT64_MAX, err, sizeof err), 0);
    unsigned r1 = (unsigned)row_of(h, 1);
    struct rp_shm_endpoint *e1 = rp_shm_ep(h, r1);
    struct rp_breaker_ticket t = {RP_BREAKER_ALLOW, 0};
    struct rp_breaker_params bp = {1, 60000, 1};
    rp_breaker_failure(&e1->breaker, &bp, NULL, t, rp_shm_now_ms(h));
    atomic_store(&e1->drained, 1);
    struct rp_gcra_params gp = {e1->rl_interval_ns, e1->rl_burst};
    CU_ASSERT_EQUAL(rp_gcra_take(&e1->gcra_tat_ns, &gp, 10, rp_shm_now_ns(h)), 0);
    atomic_store(&rp_shm_stats(h, 0, r1)->ok, 77);
    atomic_store(&e1->state, RP_EP_DOWN);

    int b[] = {2};
    conf(1, b, 10, 10);
    CU_ASSERT_EQUAL(rp_publish_endpoints(h, &cfg, 2, 1, err, sizeof err), 0);
    /* re-added while generation-1 workers still run: a different, fresh row */
    conf(2, a, 10, 10);
    CU_ASSERT_EQUAL(rp_publish_endpoints(h, &cfg, 3, 1, err, sizeof err), 0);
    int n1 = row_of(h, 1);
    CU_ASSERT_TRUE(n1 >= 0 && (unsigned)n1 != r1);
    struct rp_shm_endpoint *f = rp_shm_ep(h, (unsigned)n1);
    CU_ASSERT_EQUAL(atomic_load(&f->breaker), 0);
    CU_ASSERT_EQUAL(atomic_load(&f->drained), 0);
    CU_ASSERT_EQUAL(atomic_load(&f->state), RP_EP_UP);
    CU_ASSERT_EQUAL(atomic_load(&f->gcra_tat_ns), 0); /* full bucket */
    /* the old row stays out of use: generation-1 processes may write to it */
    CU_ASSERT_FALSE(atomic_load(&e1->in_use));
    CU_ASSERT_EQUAL(e1->retired_gen, 2);

    /* once every process runs generation 3, the old row may be reused, and
     * comes back reset, its stats cells cleared */
    int c[] = {1, 2, 5};
    conf(3, c, 10, 10);
    CU_ASSERT_EQUAL(rp_publish_endpoints(h, &cfg, 4, 3, err, sizeof err), 0);
    CU_ASSERT_EQUAL(row_of(h, 5), (int)r1);
    CU_ASSERT_EQUAL(atomic_load(&rp_shm_stats(h, 0, r1)->ok), 0);
    CU_ASSERT_EQUAL(atomic_load(&e1->breaker), 0);
    CU_ASSERT_EQUAL(atomic_load(&e1->drained), 0);
    rp_testshm_destroy(h);
}

static void test_rotation(void)
{
    /* one endpoint's URL rotated 1000 times: rows are reused as the old
     * generations go away, the table never runs out */
    struct rp_shm_header *h = rp_testshm_create(2);
    char err[256];
    int a[] = {0, 1000};
    conf(2, a, 10, 10);
    CU_ASSERT_EQUAL_FATAL(rp_publish_endpoints(h, &cfg, 1, UINT64_MAX, err, sizeof err), 0);
    int ok = 1;
    for (int g = 2; g < 1002 && ok; g++) {
        int b[] = {g, 1000};
        conf(2, b, 10, 10);
        /* the previous generation is still draining while this one starts */
        ok = rp_publish_endpoints(h, &cfg, (uint64_t)g, (uint64_t)g - 1, err, sizeof err) == 0;
    }
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_TRUE(atomic_load(&h->endpoint_count) <= 4);

    /* if old processes never go, rows do run out: refused, nothing changed */
    uint64_t seq = atomic_load(&h->layout_seq), gen = atomic_load(&h->generation);
    int refused = 0;
    for (int g = 2000; g < 2100 && !refused; g++) {
        int b[] = {g, 1000};
        conf(2, b, 10, 10);
        seq = atomic_load(&h->layout_seq);
        gen = atomic_load(&h->generation);
        refused = rp_publish_endpoints(h, &cfg, (uint64_t)g, 1001, err, sizeof err) != 0;
    }
    CU_ASSERT_TRUE(refused);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no free endpoint row"));
    CU_ASSERT_EQUAL(atomic_load(&h->layout_seq), seq);
    CU_ASSERT_EQUAL(atomic_load(&h->generation), gen);
    rp_testshm_destroy(h);
}

static void test_rate_change(void)
{
    struct rp_shm_header *h = rp_testshm_create(2);
    char err[256];
    int a[] = {1};
    /* 1 a second, burst 1, bucket emptied */
    conf(1, a, 1, 1);
    CU_ASSERT_EQUAL_FATAL(rp_publish_endpoints(h, &cfg, 1, UINT64_MAX, err, sizeof err), 0);
    struct rp_shm_endpoint *e = rp_shm_ep(h, (unsigned)row_of(h, 1));
    struct rp_gcra_params gp = {e->rl_interval_ns, e->rl_burst};
    uint64_t now = rp_shm_now_ns(h);
    CU_ASSERT_EQUAL(rp_gcra_take(&e->gcra_tat_ns, &gp, 1, now), 0);
    CU_ASSERT_NOT_EQUAL(rp_gcra_take(&e->gcra_tat_ns, &gp, 1, now), 0);
    /* raised to 1000 a second, burst 1000: usable at once */
    conf(1, a, 1000, 1000);
    CU_ASSERT_EQUAL(rp_publish_endpoints(h, &cfg, 2, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(e->rl_burst, 1000);
    struct rp_gcra_params np = {e->rl_interval_ns, e->rl_burst};
    now = rp_shm_now_ns(h);
    int admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += rp_gcra_take(&e->gcra_tat_ns, &np, 1, now) == 0;
    CU_ASSERT_EQUAL(admitted, 100);
    rp_testshm_destroy(h);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"kept rows keep their state; removed ones are tombstoned", test_keep_and_tombstone},
        {"a re-added endpoint starts fresh; retired rows reused once free", test_readd_fresh},
        {"1000 URL rotations never run out of rows; a refusal changes nothing", test_rotation},
        {"a raised rate limit applies at once", test_rate_change},
        {NULL, NULL},
    };
    return rp_test_run("publish", cases);
}
