/* test_crash.c - crash injection: a child process runs the real hot-path
 * operations on the shared state in a loop (take a half-open trial, give a
 * verdict or give it back, reset the breaker, admit and close clients, count
 * in-flight attempts and connections up and down, take tokens), the parent
 * SIGKILLs it at a random instant, runs the supervisor's real repair
 * (rp_hold_repair_slot) and checks every invariant, thousands of times.
 *
 * A bystander process (slot 1) holds trials, clients and counts throughout:
 * the repair of the dead slot must never give back what the bystander holds.
 * The parent probes from slot 2: after each repair it must be able to take
 * exactly the trials and client places that are free (nothing leaked,
 * nothing given twice), then gives them back.
 *
 * Bounded by RP_CRASH_SECONDS (default 10) and RP_CRASH_KILLS (default
 * 20000). Prints "CRASH op=NAME kills=N violations=M" per operation. */
#include "rp_breaker.h"
#include "rp_clock.h"
#include "rp_hold.h"
#include "rp_ratelimit.h"
#include "rp_seqlock.h"
#include "rp_test.h"
#include "rp_testshm.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EP          0
#define VICTIM      0
#define BYSTANDER   1
#define PROBE       2
#define MAX_TRIALS  4
#define MAX_CLIENTS 6
#define BY_TRIALS   1 /* what the bystander holds */
#define BY_CLIENTS  2
#define BY_INFLIGHT 3
#define BY_CONNS    2
#define RATE_PER_S  5000
#define BURST       20

enum crash_op {
    OP_LOOP = 0,
    OP_TRIAL_TAKE,
    OP_TRIAL_SUCCESS,
    OP_TRIAL_FAILURE,
    OP_TRIAL_GIVE_BACK,
    OP_RESET,
    OP_OPEN,
    OP_CLIENT_ADMIT,
    OP_CLIENT_CLOSE,
    OP_INFLIGHT_UP,
    OP_INFLIGHT_DOWN,
    OP_CONN_OPEN,
    OP_CONN_CLOSE,
    OP_TOKEN_TAKE,
    OP_HOLD_RAISE,
    OP_ERROR_WRITE,
    OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
    "loop",
    "trial_take",
    "trial_success",
    "trial_failure",
    "trial_give_back",
    "breaker_reset",
    "breaker_open",
    "client_admit",
    "client_close",
    "inflight_up",
    "inflight_down",
    "conn_open",
    "conn_close",
    "token_take",
    "retry_after_raise",
    "last_error_write",
};

struct crash_ctl {
    _Atomic uint32_t phase;          /* the victim's current operation */
    _Atomic uint64_t loops;          /* victim iterations (it is running) */
    _Atomic uint64_t admitted_calls; /* tokens the victims took, all rounds */
    _Atomic uint32_t by_ready;       /* the bystander holds its share */
    _Atomic uint32_t by_stop;
    _Atomic uint32_t by_period;     /* the period of the bystander's trials */
    _Atomic uint64_t victim_trials; /* trials the victims were granted */
    _Atomic uint64_t ran[OP_COUNT]; /* operations the victims started */
};

/* Mark the victim's current operation (what a kill lands in) and count it. */
static void enter(struct crash_ctl *c, enum crash_op op)
{
    atomic_store_explicit(&c->phase, op, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->ran[op], 1, memory_order_relaxed);
}

static const struct rp_breaker_params BRK = {
    .failure_threshold = 1,
    .recovery_timeout_ms = 1,
    .half_open_max = MAX_TRIALS,
};

static struct rp_gcra_params gcra(void)
{
    struct rp_gcra_params p = {rp_gcra_interval_ns(RATE_PER_S, 1000), BURST};
    return p;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Put the breaker in HALF_OPEN of some period (opening it if needed). */
static void make_half_open(struct rp_shm_header *h)
{
    _Atomic uint64_t *w = &rp_shm_ep(h, EP)->breaker;
    struct rp_trial_cells probe = rp_hold_trial_cells(h, EP, PROBE);
    for (int i = 0; i < 100; i++) {
        uint64_t v = atomic_load(w);
        if (rp_breaker_word_state(v) == RP_BREAKER_HALF_OPEN)
            return;
        struct rp_breaker_ticket t = {RP_BREAKER_ALLOW, rp_breaker_word_period(v)};
        if (rp_breaker_word_state(v) == RP_BREAKER_CLOSED)
            rp_breaker_failure(w, &BRK, &probe, t, rp_shm_now_ms(h)); /* opens */
        /* an open breaker past its recovery turns half-open on acquire */
        struct rp_breaker_ticket g = rp_breaker_acquire(w, &BRK, &probe, rp_shm_now_ms(h) + 10);
        rp_breaker_release(&probe, g);
    }
}

/* The victim: random operations on its own slot, for ever (until killed). */
static void victim_main(struct rp_shm_header *h, struct crash_ctl *c)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    struct rp_gcra_params gp = gcra();
    unsigned seed = (unsigned)(getpid() ^ rp_clock_mono_ns());
    struct rp_breaker_ticket held[8];
    int nheld = 0, clients = 0;
    uint32_t inflight = 0, conns = 0;
    _Atomic uint32_t *infl = rp_hold_cell(h, VICTIM, EP, RP_HOLD_INFLIGHT);
    _Atomic uint32_t *open = rp_hold_cell(h, VICTIM, EP, RP_HOLD_CONNS_OPEN);
    for (uint64_t i = 0;; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, VICTIM);
        /* a clock one ms per iteration ahead: an opened breaker recovers
         * within a few operations, so half-open periods keep coming */
        uint64_t now_ms = rp_shm_now_ms(h) + 10 + i;
        enter(c, OP_LOOP);
        atomic_fetch_add_explicit(&c->loops, 1, memory_order_relaxed);
        switch (r % 13) {
        case 0:
        case 1:
            if (nheld == 8)
                break;
            enter(c, OP_TRIAL_TAKE);
            held[nheld] = rp_breaker_acquire(&e->breaker, &BRK, &cells, now_ms);
            if (held[nheld].grant == RP_BREAKER_TRIAL) {
                nheld++;
                atomic_fetch_add_explicit(&c->victim_trials, 1, memory_order_relaxed);
            } else if (held[nheld].grant == RP_BREAKER_ALLOW) {
                /* closed: fail it open again, so half-open periods keep coming */
                enter(c, OP_OPEN);
                rp_breaker_failure(&e->breaker, &BRK, &cells, held[nheld], now_ms);
            }
            break;
        case 2:
            if (!nheld)
                break;
            switch ((r >> 8) % 8) {
            case 0:
                enter(c, OP_TRIAL_SUCCESS);
                rp_breaker_success(&e->breaker, &cells, held[--nheld]);
                break;
            case 1:
                enter(c, OP_TRIAL_FAILURE);
                rp_breaker_failure(&e->breaker, &BRK, &cells, held[--nheld], now_ms);
                break;
            default:
                enter(c, OP_TRIAL_GIVE_BACK);
                rp_breaker_release(&cells, held[--nheld]);
                break;
            }
            break;
        case 3:
            if ((r >> 8) % 16)
                break;
            enter(c, OP_RESET);
            rp_breaker_reset(&e->breaker);
            break;
        case 4:
            if (clients >= 3)
                break;
            enter(c, OP_CLIENT_ADMIT);
            clients += rp_hold_client_admit(h, VICTIM, MAX_CLIENTS);
            break;
        case 5:
            if (!clients)
                break;
            enter(c, OP_CLIENT_CLOSE);
            rp_hold_client_add(h, VICTIM, -1);
            clients--;
            break;
        case 6:
            enter(c, OP_INFLIGHT_UP);
            rp_hold_add(infl, +1);
            inflight++;
            break;
        case 7:
            if (!inflight)
                break;
            enter(c, OP_INFLIGHT_DOWN);
            rp_hold_add(infl, -1);
            inflight--;
            break;
        case 8:
            enter(c, OP_CONN_OPEN);
            rp_hold_add(open, +1);
            conns++;
            break;
        case 9:
            if (!conns)
                break;
            enter(c, OP_CONN_CLOSE);
            rp_hold_add(open, -1);
            conns--;
            break;
        case 10: {
            enter(c, OP_TOKEN_TAKE);
            uint64_t n = 1 + (r >> 8) % 3;
            if (rp_gcra_take(&e->gcra_tat_ns, &gp, n, rp_shm_now_ns(h)) == 0)
                atomic_fetch_add(&c->admitted_calls, n);
            break;
        }
        case 11:
            enter(c, OP_HOLD_RAISE);
            rp_hold_raise(&e->hold_until_ms, rp_shm_now_ms(h) + (r >> 8) % 1000);
            break;
        default: {
            /* the prober's write of an endpoint's last error (one letter,
             * repeated: a torn copy would mix two) */
            char text[RP_SHM_ERROR_MAX];
            memset(text, 'a' + (int)((r >> 8) % 26), sizeof text - 1);
            text[sizeof text - 1] = '\0';
            enter(c, OP_ERROR_WRITE);
            rp_seq_write_str(&e->last_error_seq, e->last_error, sizeof e->last_error, text);
            break;
        }
        }
    }
}

/* The bystander: takes its share once, publishes it, holds it until told. */
static void bystander_main(struct rp_shm_header *h, struct crash_ctl *c)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    struct rp_trial_cells cells = rp_hold_trial_cells(h, EP, BYSTANDER);
    int trials = 0;
    for (int i = 0; i < 1000 && trials < BY_TRIALS; i++) {
        make_half_open(h);
        struct rp_breaker_ticket t =
            rp_breaker_acquire(&e->breaker, &BRK, &cells, rp_shm_now_ms(h) + 10);
        if (t.grant == RP_BREAKER_TRIAL) {
            trials++;
            atomic_store(&c->by_period, t.period);
        }
    }
    for (int i = 0; i < BY_CLIENTS; i++)
        if (!rp_hold_client_admit(h, BYSTANDER, MAX_CLIENTS))
            _exit(5);
    for (int i = 0; i < BY_INFLIGHT; i++)
        rp_hold_add(rp_hold_cell(h, BYSTANDER, EP, RP_HOLD_INFLIGHT), +1);
    for (int i = 0; i < BY_CONNS; i++)
        rp_hold_add(rp_hold_cell(h, BYSTANDER, EP, RP_HOLD_CONNS_OPEN), +1);
    atomic_store(&c->by_ready, trials == BY_TRIALS ? 1 : 2);
    while (!atomic_load(&c->by_stop))
        sleep_us(1000);
    _exit(0);
}

/* After a repair: what the probe can take must be exactly what is free.
 * Returns the number of invariants broken (0). */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            bad++;                                                                                 \
            if (reported++ < 10)                                                                   \
                fprintf(stderr, "CRASH violation: %s\n", #cond);                                   \
        }                                                                                          \
    } while (0)
static int reported;

/* Read endpoint E's last error as rpcpoolstat does; 0 when no whole copy
 * could be made (a write under way, or a writer that died in one). */
static int error_read(struct rp_shm_endpoint *e, char *out)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t seq = rp_seq_read_begin(&e->last_error_seq);
        memcpy(out, e->last_error, RP_SHM_ERROR_MAX);
        out[RP_SHM_ERROR_MAX - 1] = '\0';
        if (!rp_seq_read_retry(&e->last_error_seq, seq))
            return 1;
    }
    return 0;
}

/* A whole copy of E's last error is one letter repeated (or "restarted",
 * or empty); no copy at all is fine too (the writer died mid-write). */
static int error_text_whole(struct rp_shm_endpoint *e)
{
    char t[RP_SHM_ERROR_MAX];
    if (!error_read(e, t) || !t[0] || strcmp(t, "restarted") == 0)
        return 1;
    for (size_t i = 1; t[i]; i++)
        if (t[i] != t[0])
            return 0;
    return strlen(t) == RP_SHM_ERROR_MAX - 1;
}

static int check_after_repair(struct rp_shm_header *h, struct crash_ctl *c)
{
    int bad = 0;
    struct rp_shm_endpoint *e = rp_shm_ep(h, EP);
    /* the dead slot holds nothing; the bystander's cells are untouched */
    CHECK(atomic_load(rp_hold_cell(h, VICTIM, EP, RP_HOLD_INFLIGHT)) == 0);
    CHECK(atomic_load(&rp_shm_worker(h, VICTIM)->clients) == 0);
    CHECK(atomic_load(&rp_shm_stats(h, VICTIM, EP)->trial_held) == 0);
    CHECK(rp_hold_sum(h, EP, RP_HOLD_INFLIGHT) == BY_INFLIGHT);
    CHECK(rp_hold_sum(h, EP, RP_HOLD_CONNS_OPEN) == BY_CONNS);
    CHECK(rp_hold_clients(h) == BY_CLIENTS);
    uint32_t by_cell = atomic_load(&rp_shm_stats(h, BYSTANDER, EP)->trial_held);
    CHECK(rp_breaker_cell_count(by_cell) == BY_TRIALS);

    /* trials: exactly max minus the bystander's (when still its period) */
    struct rp_trial_cells probe = rp_hold_trial_cells(h, EP, PROBE);
    /* past the recovery of anything the victim opened (its clock ran ahead
     * by one ms per iteration, far fewer than 10^9 in one round) */
    uint64_t now_ms = rp_shm_now_ms(h) + 1000000000ull;
    struct rp_breaker_ticket got[MAX_TRIALS + 2];
    int n = 0, allow = 0;
    for (int i = 0; i < MAX_TRIALS + 2; i++) {
        struct rp_breaker_ticket t = rp_breaker_acquire(&e->breaker, &BRK, &probe, now_ms);
        if (t.grant == RP_BREAKER_TRIAL)
            got[n++] = t;
        else if (t.grant == RP_BREAKER_ALLOW)
            allow = 1;
    }
    if (!allow) {
        uint64_t w = atomic_load(&e->breaker);
        int expected =
            MAX_TRIALS - (rp_breaker_word_period(w) == atomic_load(&c->by_period) ? BY_TRIALS : 0);
        CHECK(n == expected);
    }
    for (int i = 0; i < n; i++)
        rp_breaker_release(&probe, got[i]);
    /* clients: exactly the free places */
    int admitted = 0;
    for (int i = 0; i < MAX_CLIENTS + 2; i++)
        admitted += rp_hold_client_admit(h, PROBE, MAX_CLIENTS);
    CHECK(admitted == MAX_CLIENTS - BY_CLIENTS);
    for (int i = 0; i < admitted; i++)
        rp_hold_client_add(h, PROBE, -1);
    /* the last error: a reader sees a whole text or none, never a torn one;
     * the restarted writer's text is seen whole */
    CHECK(error_text_whole(e));
    char seen[RP_SHM_ERROR_MAX];
    if (atomic_load(&e->last_error_seq) & 1) /* killed mid-write: that copy is never shown */
        CHECK(!error_read(e, seen));
    rp_seq_write_str(&e->last_error_seq, e->last_error, sizeof e->last_error, "restarted");
    CHECK((atomic_load(&e->last_error_seq) & 1) == 0);
    CHECK(error_read(e, seen) && strcmp(seen, "restarted") == 0);
    /* the bucket never runs further ahead than its burst */
    struct rp_gcra_params gp = gcra();
    CHECK(atomic_load(&e->gcra_tat_ns) <= rp_shm_now_ns(h) + gp.burst * gp.interval_ns);
    return bad;
}

static void test_crash_injection(void)
{
    const char *s_env = getenv("RP_CRASH_SECONDS"), *k_env = getenv("RP_CRASH_KILLS");
    uint64_t seconds = s_env ? strtoull(s_env, NULL, 10) : 10;
    uint64_t max_kills = k_env ? strtoull(k_env, NULL, 10) : 20000;
    struct rp_shm_header *h = rp_testshm_create(3);
    struct crash_ctl *c =
        mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(h != NULL && c != MAP_FAILED);
    fflush(stdout);
    fflush(stderr);
    pid_t by = fork();
    CU_ASSERT_FATAL(by >= 0);
    if (by == 0)
        bystander_main(h, c);
    for (int i = 0; i < 10000 && !atomic_load(&c->by_ready); i++)
        sleep_us(1000);
    CU_ASSERT_EQUAL_FATAL(atomic_load(&c->by_ready), 1);

    uint64_t kills[OP_COUNT] = {0}, viol[OP_COUNT] = {0}, total = 0, total_viol = 0;
    unsigned seed = (unsigned)getpid();
    uint64_t t0 = rp_clock_mono_ns(), deadline = t0 + seconds * 1000000000ull;
    while (total < max_kills && rp_clock_mono_ns() < deadline) {
        make_half_open(h);
        atomic_store(&c->loops, 0);
        pid_t v = fork();
        if (v < 0)
            break;
        if (v == 0)
            victim_main(h, c);
        /* wait until it runs, then a random instant within its loop */
        for (int i = 0; i < 100000 && atomic_load(&c->loops) == 0; i++)
            sleep_us(10);
        sleep_us((long)((unsigned)rand_r(&seed) % 300));
        kill(v, SIGKILL);
        int st;
        while (waitpid(v, &st, 0) < 0 && errno == EINTR)
            ;
        uint32_t op = atomic_load(&c->phase);
        if (op >= OP_COUNT)
            op = OP_LOOP;
        rp_hold_repair_slot(h, VICTIM); /* the supervisor's real repair */
        int bad = check_after_repair(h, c);
        kills[op]++;
        total++;
        viol[op] += (uint64_t)bad;
        total_viol += (uint64_t)bad;
    }
    atomic_store(&c->by_stop, 1);
    waitpid(by, NULL, 0);
    double elapsed_s = (double)(rp_clock_mono_ns() - t0) / 1e9;
    printf("\n");
    for (int i = 0; i < OP_COUNT; i++)
        printf("CRASH op=%s ran=%" PRIu64 " kills=%" PRIu64 " violations=%" PRIu64 "\n",
               op_names[i], atomic_load(&c->ran[i]), kills[i], viol[i]);
    uint64_t admitted = atomic_load(&c->admitted_calls);
    double bound = BURST + RATE_PER_S * elapsed_s;
    printf("CRASH total kills=%" PRIu64 " violations=%" PRIu64
           " seconds=%.1f victim_trials=%" PRIu64 " tokens_admitted=%" PRIu64 " token_bound=%.0f\n",
           total, total_viol, elapsed_s, atomic_load(&c->victim_trials), admitted, bound);
    CU_ASSERT_EQUAL(total_viol, 0);
    CU_ASSERT_TRUE(total >= 100); /* the run did kill, many times */
    CU_ASSERT_TRUE((double)admitted <= bound);
    munmap(c, sizeof *c);
    rp_testshm_destroy(h);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"SIGKILL at random instants, repair, every invariant", test_crash_injection},
        {NULL, NULL},
    };
    return rp_test_run("crash", cases);
}
