/* test_stress.c - the shared-state logic under real concurrency: forked
 * processes hammer one GCRA limiter, one breaker with per-slot trial cells,
 * the client admission and their own holding cells in a segment with the
 * daemon's real layout (rp_testshm.h), and the invariants are checked while
 * they run.
 *
 * "Truth" counters: a process adds to a truth counter only after the shared
 * state granted something, and takes it away before it gives the grant back,
 * so a truth counter never exceeds what the shared state holds. A truth
 * counter above a maximum therefore proves the shared state let too much
 * through. Figures are printed as lines starting with "STRESS ". */
#include "rp_breaker.h"
#include "rp_clock.h"
#include "rp_hold.h"
#include "rp_ratelimit.h"
#include "rp_test.h"
#include "rp_testshm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NPROC            8
#define RUN_NS           2000000000ull /* wall time of the hammering phase */
#define MODEL_NS         3000000000ull /* wall time of the model run */
#define MAX_ITERS        2000000000ull /* bound on every loop */
#define COUNTER_K        1000000ull    /* fetch_adds per process in the counter phase */
#define RATE_MAX         2000          /* GCRA: 2000 per 1000 ms, burst 50 */
#define RATE_WINDOW_MS   1000
#define RATE_BURST       50
#define HALF_OPEN_MAX    3
#define BRK_RECOVERY_MS  100 /* the breaker turns half-open 100 ms into the run */
#define MAX_CLIENTS      20
#define START_TIMEOUT_NS 10000000000ull
#define EP               0 /* the endpoint row every process uses */

enum { GO_WAIT = 0, GO_RUN = 1, GO_ABORT = 2 };

/* Test bookkeeping beside the segment (its own mapping). */
struct stress_ctl {
    _Atomic uint32_t ready, go;
    _Atomic uint64_t t0_ns;
    _Atomic uint64_t shared_counter;    /* one counter all processes hit */
    _Atomic int64_t truth_trials[1024]; /* trials in flight, by period */
    _Atomic int64_t truth_clients;      /* clients admitted and not closed */
    _Atomic uint64_t admitted_calls;    /* GCRA tokens taken */
    _Atomic uint64_t violations;        /* invariant breaches seen by anyone */
    _Atomic uint64_t trial_grants, allow_grants, denies, resets, periods_seen;
    _Atomic uint64_t verdicts, give_backs, admits, refusals, never_checks;
    _Atomic uint64_t sharded[NPROC];
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

/* Wait at the start line. Returns t0, or exits the child. */
static uint64_t child_start(struct stress_ctl *c)
{
    atomic_fetch_add(&c->ready, 1);
    uint64_t wait_start = rp_clock_mono_ns();
    uint32_t go;
    while ((go = atomic_load_explicit(&c->go, memory_order_acquire)) == GO_WAIT)
        if (rp_clock_mono_ns() - wait_start > START_TIMEOUT_NS)
            _exit(3);
    if (go != GO_RUN)
        _exit(4);
    return atomic_load(&c->t0_ns);
}

/* Fork N children running FN(h, c, slot); start them together; reap them.
 * Returns how many exited with status 0. */
static int run_children(struct rp_shm_header *h, struct stress_ctl *c, int n,
                        void (*fn)(struct rp_shm_header *, struct stress_ctl *, unsigned))
{
    pid_t pids[NPROC];
    int forked = 0;
    fflush(stdout);
    fflush(stderr);
    for (; forked < n; forked++) {
        pid_t pid = fork();
        if (pid < 0)
            break;
        if (pid == 0) {
            fn(h, c, (unsigned)forked);
            _exit(0);
        }
        pids[forked] = pid;
    }
    if (forked == n) {
        for (int waited = 0; atomic_load(&c->ready) < (unsigned)n && waited < 10000; waited++)
            sleep_ms(1);
        atomic_store(&c->t0_ns, rp_clock_mono_ns());
        atomic_store_explicit(&c->go, GO_RUN, memory_order_release);
    } else {
        atomic_store_explicit(&c->go, GO_ABORT, memory_order_release);
    }
    int clean = 0;
    for (int i = 0; i < forked; i++) {
        int st = 0;
        pid_t r;
        while ((r = waitpid(pids[i], &st, 0)) < 0 && errno == EINTR)
            ;
        if (r == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            clean++;
        else
            printf("STRESS child pid=%d status=0x%x\n", (int)pids[i], st);
    }
    return forked == n ? clean : -1;
}

static struct rp_gcra_params gcra(void)
{
    struct rp_gcra_params gp = {rp_gcra_interval_ns(RATE_MAX, RATE_WINDOW_MS), RATE_BURST};
    return gp;
}

/* Hammer: limiter and breaker until t0 + RUN_NS (trials held for ever),
 * then COUNTER_K increments of the shared counter and of its own cell. */
static void hammer_child(struct rp_shm_header *h, struct stress_ctl *c, unsigned slot)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    struct rp_gcra_params gp = gcra();
    uint64_t t0 = child_start(c);
    for (uint64_t i = 0; i < MAX_ITERS; i++) {
        uint64_t now = rp_clock_mono_ns();
        if (now >= t0 + RUN_NS)
            break;
        /* the take happens at the very time the deadline was checked
         * against, so every admission lies within [t0, t0 + RUN_NS) */
        uint64_t seg_ns = now - atomic_load(&h->clock_base_ns);
        if (rp_gcra_take(&e->gcra_tat_ns, &gp, 1, seg_ns) == 0)
            atomic_fetch_add(&c->admitted_calls, 1);
        struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, slot);
        struct rp_breaker_ticket t =
            rp_breaker_acquire(&e->breaker, &BRK, &cells, rp_shm_now_ms(h));
        if (t.grant == RP_BREAKER_TRIAL)
            atomic_fetch_add(&c->trial_grants, 1); /* held for ever: no verdict */
        else if (t.grant == RP_BREAKER_ALLOW)
            atomic_fetch_add(&c->allow_grants, 1);
        else
            atomic_fetch_add(&c->denies, 1);
    }
    for (uint64_t k = 0; k < COUNTER_K; k++) {
        atomic_fetch_add_explicit(&c->shared_counter, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->sharded[slot], 1, memory_order_relaxed);
    }
}

static void test_stress(void)
{
    struct rp_shm_header *h = rp_testshm_create(NPROC);
    struct stress_ctl *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(h != NULL && c != MAP_FAILED);
    /* open the breaker now: it turns half-open BRK_RECOVERY_MS into the run */
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    for (uint32_t i = 0; i < BRK.failure_threshold; i++) {
        struct rp_breaker_ticket t = {RP_BREAKER_ALLOW, 0};
        rp_breaker_failure(&e->breaker, &BRK, NULL, t, rp_shm_now_ms(h));
    }
    CU_ASSERT_EQUAL_FATAL(rp_breaker_word_state(atomic_load(&e->breaker)), RP_BREAKER_OPEN);
    uint64_t t_start = rp_clock_mono_ns();
    CU_ASSERT_EQUAL(run_children(h, c, NPROC, hammer_child), NPROC);
    uint64_t wall_ns = rp_clock_mono_ns() - t_start;

    /* (1) GCRA: every take happened within RUN_NS of t0 */
    uint64_t admitted = atomic_load(&c->admitted_calls);
    double rate_per_s = (double)RATE_MAX * 1000.0 / RATE_WINDOW_MS;
    double bound = RATE_BURST + rate_per_s * (double)RUN_NS / 1e9 + 1.0;
    printf("\nSTRESS gcra processes=%d rate=%d/%dms burst=%d admitted=%" PRIu64
           " bound=%.0f ratio=%.4f\n",
           NPROC, RATE_MAX, RATE_WINDOW_MS, RATE_BURST, admitted, bound, (double)admitted / bound);
    CU_ASSERT_TRUE((double)admitted <= bound);
    CU_ASSERT_TRUE((double)admitted >= 0.95 * bound);

    /* (2) breaker: exactly half_open_max trials host-wide, never an ALLOW */
    uint64_t word = atomic_load(&e->breaker);
    struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, 0);
    uint32_t in_cells = rp_breaker_trials(word, &cells);
    printf("STRESS breaker half_open_max=%d trial_grants=%" PRIu64 " allow_grants=%" PRIu64
           " denials=%" PRIu64 " state=%s trials_in_cells=%u\n",
           HALF_OPEN_MAX, atomic_load(&c->trial_grants), atomic_load(&c->allow_grants),
           atomic_load(&c->denies), rp_breaker_state_name(rp_breaker_word_state(word)), in_cells);
    CU_ASSERT_EQUAL(atomic_load(&c->trial_grants), HALF_OPEN_MAX);
    CU_ASSERT_EQUAL(atomic_load(&c->allow_grants), 0);
    CU_ASSERT_TRUE(atomic_load(&c->denies) > 0);
    CU_ASSERT_EQUAL(rp_breaker_word_state(word), RP_BREAKER_HALF_OPEN);
    CU_ASSERT_EQUAL(in_cells, HALF_OPEN_MAX);
    /* the processes are gone: the supervisor's repair frees their trials */
    for (unsigned s = 0; s < NPROC; s++)
        rp_hold_repair_slot(h, s);
    CU_ASSERT_EQUAL(rp_breaker_trials(atomic_load(&e->breaker), &cells), 0);
    CU_ASSERT_EQUAL(rp_breaker_acquire(&e->breaker, &BRK, &cells, rp_shm_now_ms(h)).grant,
                    RP_BREAKER_TRIAL);

    /* (3) counters: relaxed fetch_adds lose nothing, shared or sharded */
    uint64_t shared = atomic_load(&c->shared_counter), sharded = 0;
    for (int i = 0; i < NPROC; i++)
        sharded += atomic_load(&c->sharded[i]);
    printf("STRESS counters processes=%d k=%llu expected=%llu shared=%" PRIu64
           " sharded_sum=%" PRIu64 " wall_s=%.3f\n",
           NPROC, COUNTER_K, NPROC * COUNTER_K, shared, sharded, (double)wall_ns / 1e9);
    CU_ASSERT_EQUAL(shared, NPROC * COUNTER_K);
    CU_ASSERT_EQUAL(sharded, NPROC * COUNTER_K);
    munmap(c, sizeof *c);
    rp_testshm_destroy(h);
}

/* ---------------------------------------------------------------------
 * model run: random takes, verdicts, give-backs, period changes, resets,
 * client admissions and holding counts, invariants checked as they go
 * ------------------------------------------------------------------- */

static const struct rp_breaker_params MODEL_BRK = {
    .failure_threshold = 2,
    .recovery_timeout_ms = 2,
    .half_open_max = HALF_OPEN_MAX,
};

#define MODEL_HELD 6 /* trials one process holds at most */

static void violation(struct stress_ctl *c, const char *what)
{
    if (atomic_fetch_add(&c->violations, 1) < 10)
        fprintf(stderr, "STRESS violation: %s\n", what);
}

/* Give up trial T (verdict or give-back, chosen at random). */
static void model_finish(struct rp_shm_header *h, struct stress_ctl *c, unsigned slot,
                         struct rp_breaker_ticket t, unsigned r)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, slot);
    atomic_fetch_sub(&c->truth_trials[t.period], 1); /* before the shared state lets go */
    switch (r % 3) {
    case 0:
        rp_breaker_success(&e->breaker, &cells, t);
        atomic_fetch_add(&c->verdicts, 1);
        break;
    case 1:
        rp_breaker_failure(&e->breaker, &MODEL_BRK, &cells, t, rp_shm_now_ms(h));
        atomic_fetch_add(&c->verdicts, 1);
        break;
    default:
        rp_breaker_release(&cells, t);
        atomic_fetch_add(&c->give_backs, 1);
        break;
    }
}

static void model_child(struct rp_shm_header *h, struct stress_ctl *c, unsigned slot)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    struct rp_gcra_params gp = {rp_gcra_interval_ns(1000, 1000), 10};
    unsigned seed = (unsigned)getpid();
    struct rp_breaker_ticket held[MODEL_HELD];
    int nheld = 0, clients = 0;
    uint32_t inflight = 0;
    _Atomic uint32_t *infl = rp_hold_cell(h, slot, EP, RP_HOLD_INFLIGHT);
    uint64_t t0 = child_start(c);
    for (uint64_t i = 0; i < MAX_ITERS && rp_clock_mono_ns() < t0 + MODEL_NS; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        unsigned op = r % 100;
        struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, slot);
        if (op < 40) {
            if (nheld == MODEL_HELD)
                continue;
            struct rp_breaker_ticket t =
                rp_breaker_acquire(&e->breaker, &MODEL_BRK, &cells, rp_shm_now_ms(h));
            if (t.grant == RP_BREAKER_TRIAL) {
                if (atomic_fetch_add(&c->truth_trials[t.period], 1) + 1 > HALF_OPEN_MAX)
                    violation(c, "more trials in flight than half_open_max");
                held[nheld++] = t;
                atomic_fetch_add(&c->trial_grants, 1);
            } else if (t.grant == RP_BREAKER_ALLOW) {
                atomic_fetch_add(&c->allow_grants, 1);
                if (r & 0x100) /* half of them fail: the breaker keeps opening */
                    rp_breaker_failure(&e->breaker, &MODEL_BRK, &cells, t, rp_shm_now_ms(h));
                else
                    rp_breaker_success(&e->breaker, &cells, t);
            } else {
                atomic_fetch_add(&c->denies, 1);
            }
        } else if (op < 70) {
            if (nheld == 0)
                continue;
            int k = (int)((r >> 8) % (unsigned)nheld);
            model_finish(h, c, slot, held[k], r >> 12);
            held[k] = held[--nheld];
        } else if (op < 71) {
            if ((r >> 8) % 64)
                continue;                  /* resets are rare: about 1 in 6400 operations */
            rp_breaker_reset(&e->breaker); /* trials out count for nothing after it */
            atomic_fetch_add(&c->resets, 1);
        } else if (op < 80) {
            if (clients < 5 && (r & 0x200)) {
                if (rp_hold_client_admit(h, slot, MAX_CLIENTS)) {
                    if (atomic_fetch_add(&c->truth_clients, 1) + 1 > MAX_CLIENTS)
                        violation(c, "more clients than max_clients");
                    clients++;
                    atomic_fetch_add(&c->admits, 1);
                } else {
                    atomic_fetch_add(&c->refusals, 1);
                }
            } else if (clients > 0) {
                atomic_fetch_sub(&c->truth_clients, 1);
                rp_hold_client_add(h, slot, -1);
                clients--;
            }
        } else if (op < 90) {
            int up = (r & 0x400) || inflight == 0;
            rp_hold_add(infl, up ? +1 : -1);
            inflight += up ? 1 : -1;
            if (atomic_load(infl) != inflight)
                violation(c, "a holding cell differs from what its process holds");
        } else {
            uint64_t n = 1 + (r >> 8) % 4;
            if (rp_gcra_take(&e->gcra_tat_ns, &gp, n, rp_shm_now_ns(h)) == 0)
                atomic_fetch_add(&c->admitted_calls, n);
            if (rp_gcra_take(&e->gcra_tat_ns, &gp, gp.burst + 1, rp_shm_now_ns(h)) != RP_GCRA_NEVER)
                violation(c, "a batch above the burst was not refused");
            atomic_fetch_add(&c->never_checks, 1);
        }
        if (rp_hold_clients(h) > MAX_CLIENTS + NPROC)
            violation(c, "client count far above the maximum");
    }
    /* leave with whatever it holds: like a worker that exits, the repair
     * must take it back */
    for (int k = 0; k < nheld; k++)
        atomic_fetch_sub(&c->truth_trials[held[k].period], 1);
    atomic_fetch_sub(&c->truth_clients, clients);
}

static void test_model(void)
{
    struct rp_shm_header *h = rp_testshm_create(NPROC);
    struct stress_ctl *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(h != NULL && c != MAP_FAILED);
    uint64_t t_start = rp_clock_mono_ns();
    CU_ASSERT_EQUAL(run_children(h, c, NPROC, model_child), NPROC);
    double elapsed_s = (double)(rp_clock_mono_ns() - t_start) / 1e9;
    double bound = 10.0 + 1000.0 * elapsed_s;
    uint64_t admitted = atomic_load(&c->admitted_calls);
    printf("\nSTRESS model processes=%d seconds=%.2f trial_grants=%" PRIu64 " allow_grants=%" PRIu64
           " denies=%" PRIu64 " verdicts=%" PRIu64 " give_backs=%" PRIu64 " resets=%" PRIu64
           " admits=%" PRIu64 " refusals=%" PRIu64 " gcra_admitted=%" PRIu64
           " gcra_bound=%.0f never_checks=%" PRIu64 " violations=%" PRIu64 "\n",
           NPROC, elapsed_s, atomic_load(&c->trial_grants), atomic_load(&c->allow_grants),
           atomic_load(&c->denies), atomic_load(&c->verdicts), atomic_load(&c->give_backs),
           atomic_load(&c->resets), atomic_load(&c->admits), atomic_load(&c->refusals), admitted,
           bound, atomic_load(&c->never_checks), atomic_load(&c->violations));
    CU_ASSERT_EQUAL(atomic_load(&c->violations), 0);
    CU_ASSERT_TRUE((double)admitted <= bound);
    CU_ASSERT_TRUE(atomic_load(&c->trial_grants) > 100); /* the run did exercise trials */
    CU_ASSERT_TRUE(atomic_load(&c->refusals) > 0);       /* and the client maximum */
    /* all gone: after repair nothing is held anywhere */
    for (unsigned s = 0; s < NPROC; s++)
        rp_hold_repair_slot(h, s);
    CU_ASSERT_EQUAL(rp_hold_clients(h), 0);
    CU_ASSERT_EQUAL(rp_hold_sum(h, EP, RP_HOLD_INFLIGHT), 0);
    struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, 0);
    CU_ASSERT_EQUAL(rp_breaker_trials(atomic_load(&rp_shm_ep(h, EP)->breaker), &cells), 0);
    munmap(c, sizeof *c);
    rp_testshm_destroy(h);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"8 processes on one limiter, breaker and counters", test_stress},
        {"8 processes, random operations, invariants checked as they run", test_model},
        {NULL, NULL},
    };
    return rp_test_run("stress", cases);
}
