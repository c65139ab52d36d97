/* test_timer.c - the timer heap: ordering, re-arming, cancelling, and a
 * randomised comparison against a plain sorted model. */
#include "rp_test.h"
#include "rp_timer.h"

#include <stdlib.h>

static int fired[64];
static int nfired;

static void on_fire(struct rp_timer *t, void *arg)
{
    (void)t;
    fired[nfired++] = (int)(intptr_t)arg;
}

static void drain(struct rp_timer_heap *h, uint64_t now)
{
    struct rp_timer *t;
    while ((t = rp_timer_pop_expired(h, now)))
        t->fn(t, t->arg);
}

static void test_order(void)
{
    struct rp_timer_heap h;
    rp_timer_heap_init(&h);
    struct rp_timer t[5];
    uint64_t when[5] = {50, 10, 40, 20, 30};
    for (int i = 0; i < 5; i++) {
        rp_timer_init(&t[i], on_fire, (void *)(intptr_t)i);
        CU_ASSERT_EQUAL(rp_timer_arm(&h, &t[i], when[i]), 0);
    }
    CU_ASSERT_EQUAL(rp_timer_next(&h), 10);
    nfired = 0;
    drain(&h, 35);
    CU_ASSERT_EQUAL(nfired, 3);
    CU_ASSERT_EQUAL(fired[0], 1);
    CU_ASSERT_EQUAL(fired[1], 3);
    CU_ASSERT_EQUAL(fired[2], 4);
    CU_ASSERT_EQUAL(rp_timer_next(&h), 40);
    CU_ASSERT_FALSE(rp_timer_armed(&t[1]));
    CU_ASSERT_TRUE(rp_timer_armed(&t[0]));
    drain(&h, 1000);
    CU_ASSERT_EQUAL(nfired, 5);
    CU_ASSERT_EQUAL(rp_timer_next(&h), UINT64_MAX);
    rp_timer_heap_free(&h);
}

static void test_rearm_and_cancel(void)
{
    struct rp_timer_heap h;
    rp_timer_heap_init(&h);
    struct rp_timer a, b, c;
    rp_timer_init(&a, on_fire, (void *)1);
    rp_timer_init(&b, on_fire, (void *)2);
    rp_timer_init(&c, on_fire, (void *)3);
    rp_timer_arm(&h, &a, 100);
    rp_timer_arm(&h, &b, 200);
    rp_timer_arm(&h, &c, 300);
    rp_timer_arm(&h, &c, 50);  /* earlier */
    rp_timer_arm(&h, &a, 400); /* later */
    rp_timer_cancel(&h, &b);
    rp_timer_cancel(&h, &b); /* twice is harmless */
    struct rp_timer d;
    rp_timer_init(&d, on_fire, (void *)4);
    CU_ASSERT_EQUAL(rp_timer_set(&h, &d, 1000, 5), 0); /* at 1005 */
    CU_ASSERT_TRUE(rp_timer_armed(&d));
    CU_ASSERT_EQUAL(rp_timer_set(&h, &d, 1000, -1), 0); /* cancelled */
    CU_ASSERT_FALSE(rp_timer_armed(&d));
    nfired = 0;
    drain(&h, 1000);
    CU_ASSERT_EQUAL(nfired, 2);
    CU_ASSERT_EQUAL(fired[0], 3);
    CU_ASSERT_EQUAL(fired[1], 1);
    rp_timer_heap_free(&h);
}

/* Random arms, re-arms and cancels against a model: every pop is the
 * earliest armed deadline, and exactly the armed timers fire. */
static void test_random_model(void)
{
    enum { N = 64, OPS = 20000 };
    struct rp_timer_heap h;
    rp_timer_heap_init(&h);
    struct rp_timer t[N];
    uint64_t model[N];
    for (int i = 0; i < N; i++) {
        rp_timer_init(&t[i], on_fire, (void *)(intptr_t)i);
        model[i] = UINT64_MAX;
    }
    srand(12345);
    uint64_t now = 0;
    for (int op = 0; op < OPS; op++) {
        int i = rand() % N;
        int kind = rand() % 4;
        if (kind < 2) {
            model[i] = now + (uint64_t)(rand() % 1000);
            rp_timer_arm(&h, &t[i], model[i]);
        } else if (kind == 2) {
            model[i] = UINT64_MAX;
            rp_timer_cancel(&h, &t[i]);
        } else {
            now += (uint64_t)(rand() % 50);
            struct rp_timer *x;
            uint64_t last = 0;
            while ((x = rp_timer_pop_expired(&h, now))) {
                int k = (int)(intptr_t)x->arg;
                CU_ASSERT_TRUE(model[k] <= now);
                CU_ASSERT_TRUE(model[k] >= last);
                last = model[k];
                model[k] = UINT64_MAX;
            }
            for (int k = 0; k < N; k++)
                CU_ASSERT_TRUE(model[k] == UINT64_MAX || model[k] > now);
        }
        uint64_t min = UINT64_MAX;
        for (int k = 0; k < N; k++)
            if (model[k] < min)
                min = model[k];
        CU_ASSERT_EQUAL(rp_timer_next(&h), min);
    }
    rp_timer_heap_free(&h);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"expired timers pop in deadline order", test_order},
        {"re-arming moves a timer, cancelling removes it", test_rearm_and_cancel},
        {"random operations agree with a sorted model", test_random_model},
        {NULL, NULL},
    };
    return rp_test_run("timer", cases);
}
