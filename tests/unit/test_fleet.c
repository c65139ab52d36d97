/* test_fleet.c - fleet mode's pure parts with the clock driven by hand:
 * leased takes and the policies while Redis is unreachable (src/shm/fleet.c),
 * lease sizing (src/fleet/lease.c), verdict messages and the news filter
 * (src/fleet/verdict.c), and opening a breaker from a verdict. */
#include "rp_breaker.h"
#include "rp_fleet.h"
#include "rp_fleet_lease.h"
#include "rp_fleet_verdict.h"
#include "rp_test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS  1000000ull
#define SEC 1000000000ull

/* 20 per second (50 ms interval), burst 10. */
static const struct rp_gcra_params P = {.interval_ns = 50 * MS, .burst = 10};

static struct rp_shm_fleet F;

static void fleet_reset(uint32_t mode, uint32_t hosts)
{
    memset(&F, 0, sizeof F);
    atomic_store(&F.mode, mode);
    atomic_store(&F.hosts, hosts);
}

static void test_spend_whole_or_none(void)
{
    fleet_reset(RP_FLEET_MODE_SHARING, 2);
    struct rp_shm_fleet_ep *c = &F.eps[3];
    CU_ASSERT_EQUAL(rp_fleet_spend(c, 1), 0);
    atomic_fetch_add(&c->credited, 5);
    CU_ASSERT_EQUAL(rp_fleet_balance(c), 5);
    CU_ASSERT_EQUAL(rp_fleet_spend(c, 3), 1);
    CU_ASSERT_EQUAL(rp_fleet_spend(c, 3), 0); /* 2 left: none taken */
    CU_ASSERT_EQUAL(atomic_load(&c->spent), 3);
    CU_ASSERT_EQUAL(rp_fleet_spend(c, 2), 1);
    CU_ASSERT_EQUAL(rp_fleet_balance(c), 0);
    CU_ASSERT_EQUAL(rp_fleet_spend(c, 0), 1);
}

static void test_sharing_spends_only_leased(void)
{
    fleet_reset(RP_FLEET_MODE_SHARING, 2);
    _Atomic uint64_t tat = 0;
    uint64_t now = 10 * SEC;
    atomic_fetch_add(&F.eps[0].credited, 4);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(rp_fleet_take(&F, 0, &tat, &P, 1, now), 0);
    uint64_t w = rp_fleet_take(&F, 0, &tat, &P, 1, now);
    CU_ASSERT(w >= RP_FLEET_WAIT_MIN_NS && w <= RP_FLEET_WAIT_MAX_NS);
    CU_ASSERT_EQUAL(atomic_load(&F.eps[0].denied), 1);
    CU_ASSERT_EQUAL(atomic_load(&tat), 0); /* the host GCRA is not touched */
    CU_ASSERT_EQUAL(rp_fleet_take(&F, 0, &tat, &P, 11, now), RP_GCRA_NEVER);
    /* STARTING and LEASED_ONLY behave the same */
    atomic_store(&F.mode, RP_FLEET_MODE_LEASED_ONLY);
    CU_ASSERT_NOT_EQUAL(rp_fleet_take(&F, 0, &tat, &P, 1, now), 0);
    atomic_store(&F.mode, RP_FLEET_MODE_STARTING);
    CU_ASSERT_NOT_EQUAL(rp_fleet_take(&F, 0, &tat, &P, 1, now), 0);
}

/* Fair share: leased tokens first, then quota / hosts (burst 10/2 = 5,
 * interval 100 ms): over 10 s at most 5 + 100 takes. */
static void test_fair_share_rate(void)
{
    fleet_reset(RP_FLEET_MODE_FAIR_SHARE, 2);
    _Atomic uint64_t tat = 0;
    atomic_fetch_add(&F.eps[1].credited, 3);
    uint64_t t0 = 100 * SEC, taken = 0;
    for (uint64_t t = t0; t <= t0 + 10 * SEC; t += MS)
        while (rp_fleet_take(&F, 1, &tat, &P, 1, t) == 0)
            taken++;
    CU_ASSERT_EQUAL(taken, 3 + 5 + 100);
    /* a batch above the fair burst but within the burst waits for leases */
    CU_ASSERT_NOT_EQUAL(rp_fleet_take(&F, 1, &tat, &P, 7, t0 + 20 * SEC), RP_GCRA_NEVER);
    struct rp_gcra_params fp = rp_fleet_fair_params(&P, 3);
    CU_ASSERT_EQUAL(fp.interval_ns, 150 * MS);
    CU_ASSERT_EQUAL(fp.burst, 3);
    fp = rp_fleet_fair_params(&P, 64);
    CU_ASSERT_EQUAL(fp.burst, 1);
}

static void test_lease_sizing(void)
{
    struct rp_lease l;
    rp_lease_init(&l);
    CU_ASSERT_EQUAL(rp_lease_cap(10, 2), 5);
    CU_ASSERT_EQUAL(rp_lease_cap(1, 4), 1);
    /* idle: one token on hand */
    CU_ASSERT_EQUAL(rp_lease_want(&l, 0, 10, 2), 1);
    CU_ASSERT_EQUAL(rp_lease_want(&l, 1, 10, 2), 0);
    /* a steady 20 tokens/s for 3 s: target 20 * 0.2 = 4 */
    uint64_t demand = 0;
    for (uint64_t t = 1; t <= 300; t++) {
        rp_lease_observe(&l, demand, t * 10 * MS);
        demand += (t % 5 == 0) ? 1 : 0; /* 1 per 50 ms */
    }
    CU_ASSERT(l.rate_tps > 18.0 && l.rate_tps < 22.0);
    CU_ASSERT_EQUAL(rp_lease_target(&l, 10, 2), 4);
    CU_ASSERT_EQUAL(rp_lease_want(&l, 0, 10, 2), 4);
    CU_ASSERT_EQUAL(rp_lease_want(&l, 2, 10, 2), 2);
    CU_ASSERT_EQUAL(rp_lease_want(&l, 3, 10, 2), 0);
    /* a huge demand is capped at the host's share of the burst */
    for (uint64_t t = 301; t <= 600; t++) {
        demand += 100;
        rp_lease_observe(&l, demand, t * 10 * MS);
    }
    CU_ASSERT_EQUAL(rp_lease_target(&l, 10, 2), 5);
    CU_ASSERT_EQUAL(rp_lease_want(&l, 0, 10, 2), 5);
    /* the demand stops: the average decays back to one token */
    for (uint64_t t = 601; t <= 1500; t++)
        rp_lease_observe(&l, demand, t * 10 * MS);
    CU_ASSERT_EQUAL(rp_lease_target(&l, 10, 2), 1);
    /* a total that went backwards restarts */
    rp_lease_observe(&l, 0, 1600 * 10 * MS);
    CU_ASSERT_EQUAL(l.last_demand, 0);
}

static void test_verdict_roundtrip(void)
{
    struct rp_verdict v = {.kind = 'b',
                           .ep_key = 0x0123456789abcdefull,
                           .until_wall_ms = 1780000000123ull,
                           .sender = 0xfeedfacecafebeefull};
    char msg[RP_VERDICT_MAX];
    size_t n = rp_verdict_format(msg, sizeof msg, &v);
    CU_ASSERT_STRING_EQUAL(msg, "v1 b 0123456789abcdef 1780000000123 feedfacecafebeef");
    struct rp_verdict w;
    CU_ASSERT_EQUAL(rp_verdict_parse(msg, n, &w), 0);
    CU_ASSERT_EQUAL(w.kind, 'b');
    CU_ASSERT_EQUAL(w.ep_key, v.ep_key);
    CU_ASSERT_EQUAL(w.until_wall_ms, v.until_wall_ms);
    CU_ASSERT_EQUAL(w.sender, v.sender);
    static const char *bad[] = {"",
                                "v1",
                                "v2 b 0123456789abcdef 1 feedfacecafebeef",
                                "v1 x 0123456789abcdef 1 feedfacecafebeef",
                                "v1 b 0123456789abcde 1 feedfacecafebeef",
                                "v1 b 0123456789abcdef  feedfacecafebeef",
                                "v1 b 0123456789abcdef 1 feedfacecafebee",
                                "v1 b 0123456789abcdef 1 feedfacecafebeef ",
                                "v1 h 0123456789abcdef 99999999999999999999 feedfacecafebeef"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_EQUAL(rp_verdict_parse(bad[i], strlen(bad[i]), &w), -1);
    /* the fleet key: same URL and prefix, same key; another prefix, another */
    uint64_t k1 = rp_fleet_ep_key("rpcpool:a:", "https://x/key123");
    CU_ASSERT_EQUAL(k1, rp_fleet_ep_key("rpcpool:a:", "https://x/key123"));
    CU_ASSERT_NOT_EQUAL(k1, rp_fleet_ep_key("rpcpool:b:", "https://x/key123"));
    CU_ASSERT_NOT_EQUAL(k1, rp_fleet_ep_key("rpcpool:a:", "https://x/key124"));
    /* clocks */
    CU_ASSERT_EQUAL(rp_verdict_to_seg_ms(5000, 4000, 100), 1100);
    CU_ASSERT_EQUAL(rp_verdict_to_seg_ms(4000, 4000, 100), 0);
    CU_ASSERT_EQUAL(rp_verdict_to_wall_ms(1100, 100, 4000), 5000);
    CU_ASSERT_EQUAL(rp_verdict_to_wall_ms(50, 100, 4000), 4000);
}

/* Published once per opening; an applied verdict is never news. */
static void test_verdict_news_and_echo(void)
{
    _Atomic uint64_t word = 0;
    struct rp_breaker_params bp = {
        .failure_threshold = 1, .recovery_timeout_ms = 5000, .half_open_max = 1};
    struct rp_verdict_watch w = {0};
    CU_ASSERT_EQUAL(rp_verdict_breaker_news(&w, atomic_load(&word), 1000), 0);
    struct rp_breaker_ticket t = {RP_BREAKER_ALLOW, 0};
    rp_breaker_failure(&word, &bp, NULL, t, 1000); /* opens until 6000 */
    CU_ASSERT_EQUAL(rp_breaker_word_state(atomic_load(&word)), RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(rp_verdict_breaker_news(&w, atomic_load(&word), 1010), 1);
    CU_ASSERT_EQUAL(rp_verdict_breaker_news(&w, atomic_load(&word), 1020), 0);
    /* another host's verdict: open until later; applied, so not news */
    CU_ASSERT_EQUAL(rp_breaker_open_until(&word, 9000, 1030), 1);
    CU_ASSERT_EQUAL(rp_breaker_word_open_until_ms(atomic_load(&word)), 9000);
    rp_verdict_applied(&w, atomic_load(&word), 0);
    CU_ASSERT_EQUAL(rp_verdict_breaker_news(&w, atomic_load(&word), 1040), 0);
    /* a shorter one changes nothing */
    CU_ASSERT_EQUAL(rp_breaker_open_until(&word, 8000, 1050), 0);
    CU_ASSERT_EQUAL(rp_breaker_open_until(&word, 500, 1050), 0);
    /* past it, the breaker half-opens and this host's trial decides */
    CU_ASSERT_EQUAL(rp_breaker_state_at(atomic_load(&word), 9000), RP_BREAKER_HALF_OPEN);
    /* a first look at a breaker already open is news (an agent restarted) */
    struct rp_verdict_watch fresh = {0};
    CU_ASSERT_EQUAL(rp_verdict_breaker_news(&fresh, atomic_load(&word), 2000), 1);
    /* holds: raised here is news once; applied is not */
    struct rp_verdict_watch h = {0};
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 0, 100), 0);
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 3000, 100), 1);
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 3000, 200), 0);
    rp_verdict_applied(&h, 0, 5000);
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 5000, 300), 0);
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 4000, 300), 0);
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 7000, 300), 1);
    CU_ASSERT_EQUAL(rp_verdict_hold_news(&h, 8000, 9000), 0); /* already over */
}

/* Crash injection on the leased-token words: two processes at once credit
 * (the agent's fetch_add) and spend (the takers' CAS) on one shared cell.
 * Each writes what it is about to do (its pending credit or spend) before
 * doing it and tallies it after; the parent SIGKILLs both at a random
 * instant, again and again. After every kill: spent is never above
 * credited, and each word is its tally plus exactly some subset of the
 * pending updates (a whole take or credit, or none: never a torn one, never
 * one given twice). */
struct crash_proc {
    _Atomic uint64_t pend_credit, pend_spend; /* set before the update */
};

struct crash_shared {
    struct rp_shm_fleet_ep cell;
    _Atomic uint64_t credited_tally, spent_tally;
    struct crash_proc p[2];
};

static void crash_victim(struct crash_shared *c, struct crash_proc *me, unsigned seed)
{
    srand(seed);
    for (;;) {
        uint64_t n = 1 + (uint64_t)(rand() % 4);
        if (rand() % 3 == 0) {
            atomic_store(&me->pend_credit, n);
            atomic_fetch_add_explicit(&c->cell.credited, n, memory_order_release);
            atomic_fetch_add(&c->credited_tally, n);
            atomic_store(&me->pend_credit, 0);
        } else {
            atomic_store(&me->pend_spend, n);
            if (rp_fleet_spend(&c->cell, n))
                atomic_fetch_add(&c->spent_tally, n);
            atomic_store(&me->pend_spend, 0);
        }
    }
}

/* Is DELTA the sum of some subset of {A, B}? */
static int subset_sum(uint64_t delta, uint64_t a, uint64_t b)
{
    return delta == 0 || delta == a || delta == b || delta == a + b;
}

static void test_crash_leased_words(void)
{
    struct crash_shared *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(c != MAP_FAILED);
    memset(c, 0, sizeof *c);
    int violations = 0, kills = 0;
    for (int i = 0; i < 300; i++) {
        pid_t v[2];
        for (int k = 0; k < 2; k++) {
            v[k] = fork();
            CU_ASSERT_FATAL(v[k] >= 0);
            if (v[k] == 0)
                crash_victim(c, &c->p[k], (unsigned)(2 * i + k + 1));
        }
        struct timespec d = {0, (long)(rand() % 3000) * 1000L};
        nanosleep(&d, NULL);
        kill(v[0], SIGKILL);
        kill(v[1], SIGKILL);
        waitpid(v[0], NULL, 0);
        waitpid(v[1], NULL, 0);
        kills += 2;
        uint64_t cr = atomic_load(&c->cell.credited), sp = atomic_load(&c->cell.spent);
        uint64_t ct = atomic_load(&c->credited_tally), st = atomic_load(&c->spent_tally);
        if (sp > cr || cr < ct || sp < st ||
            !subset_sum(cr - ct, atomic_load(&c->p[0].pend_credit),
                        atomic_load(&c->p[1].pend_credit)) ||
            !subset_sum(sp - st, atomic_load(&c->p[0].pend_spend),
                        atomic_load(&c->p[1].pend_spend)))
            violations++;
        /* start the next round from what the words say */
        atomic_store(&c->credited_tally, cr);
        atomic_store(&c->spent_tally, sp);
        for (int k = 0; k < 2; k++) {
            atomic_store(&c->p[k].pend_credit, 0);
            atomic_store(&c->p[k].pend_spend, 0);
        }
    }
    uint64_t cr = atomic_load(&c->cell.credited), sp = atomic_load(&c->cell.spent);
    printf("\nCRASH op=fleet_leased kills=%d violations=%d credited=%llu spent=%llu\n", kills,
           violations, (unsigned long long)cr, (unsigned long long)sp);
    CU_ASSERT_EQUAL(violations, 0);
    CU_ASSERT(sp > 0 && sp <= cr);
    munmap(c, sizeof *c);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"spend_whole_or_none", test_spend_whole_or_none},
        {"sharing_spends_only_leased", test_sharing_spends_only_leased},
        {"fair_share_rate", test_fair_share_rate},
        {"lease_sizing", test_lease_sizing},
        {"verdict_roundtrip", test_verdict_roundtrip},
        {"verdict_news_and_echo", test_verdict_news_and_echo},
        {"crash_leased_words", test_crash_leased_words},
        {NULL, NULL},
    };
    return rp_test_run("fleet", cases);
}
