/* test_stress.c - the shared-state logic under real concurrency: 8 forked
 * processes hammer one GCRA limiter, one half-open breaker and a set of
 * counters in a MAP_SHARED mapping for 2 s of wall time (CLOCK_MONOTONIC),
 * and the parent checks the host-wide bounds. No daemon code is involved:
 * the mapping holds one struct rp_shm_endpoint and one struct rp_shm_epstats
 * row per process, as the real segment does.
 *
 * Figures are printed as lines starting with "STRESS ". */
#include "rp_breaker.h"
#include "rp_clock.h"
#include "rp_ratelimit.h"
#include "rp_shm_abi.h"
#include "rp_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROC            8
#define RUN_NS           2000000000ull /* wall time of the hammering phase */
#define MAX_ITERS        2000000000ull /* bound on the hammering loop */
#define COUNTER_K        1000000ull    /* fetch_adds per process in the counter phase */
#define RATE_MAX         2000          /* GCRA: 2000 per 1000 ms, burst 50 */
#define RATE_WINDOW_MS   1000
#define RATE_BURST       50
#define HALF_OPEN_MAX    3
#define BRK_BASE_MS      1000 /* breaker clock: ms since t0 - BRK_BASE_MS */
#define BRK_RECOVERY_MS  100  /* the breaker turns half-open 100 ms into the run */
#define START_TIMEOUT_NS 10000000000ull

enum { GO_WAIT = 0, GO_RUN = 1, GO_ABORT = 2 };

struct stress_shm {
    struct rp_shm_endpoint ep;         /* .breaker and .gcra_tat_ns */
    struct rp_shm_epstats rows[NPROC]; /* each process writes only its own */
    struct rp_shm_epstats shared;      /* .client_ok: one counter all processes hit */
    _Atomic uint32_t ready;            /* children waiting at the start line */
    _Atomic uint32_t go;               /* GO_* */
    _Atomic uint64_t t0_ns;            /* CLOCK_MONOTONIC start, set before GO_RUN */
};

static const struct rp_breaker_params BRK = {
    .failure_threshold = 5,
    .recovery_timeout_ms = BRK_RECOVERY_MS,
    .half_open_max = HALF_OPEN_MAX,
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* One child: wait for the start, hammer the limiter and the breaker until
 * t0 + RUN_NS, then do COUNTER_K increments of the shared counter and of its
 * own row. Counts go to its own row: ok = GCRA admissions, trials_held =
 * TRIAL grants, failed = ALLOW grants (must stay 0), retried = DENY grants,
 * client_ok = its sharded counter. Never returns. */
static void child_main(struct stress_shm *s, int idx)
{
    struct rp_shm_epstats *row = &s->rows[idx];
    struct rp_gcra_params gp = {
        .interval_ns = rp_gcra_interval_ns(RATE_MAX, RATE_WINDOW_MS),
        .burst = RATE_BURST,
    };

    atomic_fetch_add_explicit(&s->ready, 1, memory_order_relaxed);
    uint64_t wait_start = rp_clock_mono_ns();
    uint32_t go;
    while ((go = atomic_load_explicit(&s->go, memory_order_acquire)) == GO_WAIT) {
        if (rp_clock_mono_ns() - wait_start > START_TIMEOUT_NS)
            _exit(3);
    }
    if (go != GO_RUN)
        _exit(4);

    uint64_t t0 = atomic_load_explicit(&s->t0_ns, memory_order_relaxed);
    uint64_t deadline = t0 + RUN_NS;
    uint64_t brk_epoch_ns = t0 - (uint64_t)BRK_BASE_MS * 1000000ull;
    for (uint64_t i = 0; i < MAX_ITERS; i++) {
        uint64_t now = rp_clock_mono_ns();
        if (now >= deadline)
            break;
        if (rp_gcra_take(&s->ep.gcra_tat_ns, &gp, 1, now) == 0)
            atomic_fetch_add_explicit(&row->ok, 1, memory_order_relaxed);
        switch (rp_breaker_acquire(&s->ep.breaker, &BRK, (now - brk_epoch_ns) / 1000000ull)) {
        case RP_BREAKER_TRIAL:
            atomic_fetch_add_explicit(&row->trials_held, 1, memory_order_relaxed);
            break; /* held forever: this test never reports a verdict */
        case RP_BREAKER_ALLOW:
            atomic_fetch_add_explicit(&row->failed, 1, memory_order_relaxed);
            break;
        case RP_BREAKER_DENY:
            atomic_fetch_add_explicit(&row->retried, 1, memory_order_relaxed);
            break;
        }
    }

    for (uint64_t k = 0; k < COUNTER_K; k++) {
        atomic_fetch_add_explicit(&s->shared.client_ok, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&row->client_ok, 1, memory_order_relaxed);
    }
    _exit(0);
}

/* Wait for every child in PIDS[0..N); returns how many exited with status 0. */
static int reap_all(const pid_t *pids, int n)
{
    int clean = 0;
    for (int i = 0; i < n; i++) {
        int st = 0;
        pid_t r;
        while ((r = waitpid(pids[i], &st, 0)) < 0 && errno == EINTR)
            ;
        if (r == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            clean++;
        else
            printf("STRESS child pid=%d status=0x%x\n", (int)pids[i], st);
    }
    return clean;
}

static void test_stress(void)
{
    struct stress_shm *s =
        mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(s != MAP_FAILED);
    /* the mapping is zeroed: a full bucket (TAT 0), a closed breaker */

    /* Open the breaker at breaker-ms BRK_BASE_MS (= t0): it turns half-open
     * BRK_RECOVERY_MS into the run, while every process is hammering. */
    for (uint32_t i = 0; i < BRK.failure_threshold; i++)
        rp_breaker_failure(&s->ep.breaker, &BRK, RP_BREAKER_ALLOW, BRK_BASE_MS);
    CU_ASSERT_EQUAL_FATAL(rp_breaker_word_state(atomic_load(&s->ep.breaker)), RP_BREAKER_OPEN);

    pid_t pids[NPROC];
    int forked = 0;
    fflush(stdout);
    fflush(stderr);
    for (; forked < NPROC; forked++) {
        pid_t pid = fork();
        if (pid < 0)
            break;
        if (pid == 0)
            child_main(s, forked);
        pids[forked] = pid;
    }
    if (forked < NPROC) {
        atomic_store_explicit(&s->go, GO_ABORT, memory_order_release);
        reap_all(pids, forked);
        munmap(s, sizeof(*s));
        CU_FAIL_FATAL("fork failed");
    }

    /* start line: all children ready (bounded wait), then go */
    for (int waited = 0; atomic_load(&s->ready) < NPROC && waited < 10000; waited++)
        sleep_ms(1);
    CU_ASSERT_EQUAL(atomic_load(&s->ready), NPROC);
    uint64_t t0 = rp_clock_mono_ns();
    atomic_store_explicit(&s->t0_ns, t0, memory_order_relaxed);
    atomic_store_explicit(&s->go, GO_RUN, memory_order_release);
    int clean = reap_all(pids, NPROC);
    uint64_t wall_ns = rp_clock_mono_ns() - t0;
    CU_ASSERT_EQUAL(clean, NPROC);

    /* (1) GCRA: every take happened at a now in [t0, t0 + RUN_NS) */
    uint64_t admitted = 0, admitted_min = UINT64_MAX, admitted_max = 0;
    uint64_t trials = 0, allows = 0, denies = 0, sharded = 0;
    for (int i = 0; i < NPROC; i++) {
        uint64_t a = atomic_load(&s->rows[i].ok);
        admitted += a;
        admitted_min = a < admitted_min ? a : admitted_min;
        admitted_max = a > admitted_max ? a : admitted_max;
        trials += atomic_load(&s->rows[i].trials_held);
        allows += atomic_load(&s->rows[i].failed);
        denies += atomic_load(&s->rows[i].retried);
        sharded += atomic_load(&s->rows[i].client_ok);
    }
    double elapsed_s = (double)RUN_NS / 1e9;
    double rate_per_s = (double)RATE_MAX * 1000.0 / RATE_WINDOW_MS;
    double bound = RATE_BURST + rate_per_s * elapsed_s + 1.0;
    printf("\nSTRESS gcra processes=%d rate=%d/%dms burst=%d elapsed_s=%.3f admitted=%" PRIu64
           " bound=%.0f ratio=%.4f per_process_min=%" PRIu64 " per_process_max=%" PRIu64 "\n",
           NPROC, RATE_MAX, RATE_WINDOW_MS, RATE_BURST, elapsed_s, admitted, bound,
           (double)admitted / bound, admitted_min, admitted_max);
    CU_ASSERT_TRUE((double)admitted <= bound);
    CU_ASSERT_TRUE((double)admitted >= 0.95 * bound);

    /* (2) breaker: exactly half_open_max trials host-wide, never an ALLOW */
    uint64_t word = atomic_load(&s->ep.breaker);
    printf("STRESS breaker half_open_max=%d trial_grants=%" PRIu64 " allow_grants=%" PRIu64
           " denials=%" PRIu64 " state=%s trials_in_word=%u\n",
           HALF_OPEN_MAX, trials, allows, denies,
           rp_breaker_state_name(rp_breaker_word_state(word)), rp_breaker_word_trials(word));
    CU_ASSERT_EQUAL(trials, HALF_OPEN_MAX);
    CU_ASSERT_EQUAL(allows, 0);
    CU_ASSERT_TRUE(denies > 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(word), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(rp_breaker_word_trials(word), HALF_OPEN_MAX);

    /* (3) counters: relaxed fetch_adds lose nothing, shared or sharded */
    uint64_t shared = atomic_load(&s->shared.client_ok);
    printf("STRESS counters processes=%d k=%llu expected=%llu shared=%" PRIu64
           " sharded_sum=%" PRIu64 "\n",
           NPROC, COUNTER_K, NPROC * COUNTER_K, shared, sharded);
    printf("STRESS wall_s=%.3f\n", (double)wall_ns / 1e9);
    CU_ASSERT_EQUAL(shared, NPROC * COUNTER_K);
    CU_ASSERT_EQUAL(sharded, NPROC * COUNTER_K);

    munmap(s, sizeof(*s));
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"8 processes on one limiter, breaker and counters", test_stress},
        {NULL, NULL},
    };
    return rp_test_run("stress", cases);
}
