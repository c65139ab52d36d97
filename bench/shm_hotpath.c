/* shm_hotpath - the cost of the shared-memory part of routing one request,
 * with 1..N processes hammering the same endpoint row.
 *
 *   shm_hotpath [-d MS] [-P 1,2,4,8] [-e ENDPOINTS] [--json]
 *
 * A MAP_SHARED | MAP_ANONYMOUS mapping laid out as the real segment
 * (include/rp_shm_abi.h: header, endpoint rows, per-worker stats rows) is
 * shared by forked processes. Each process loops over one request's routing
 * as src/worker/request.c does it, with the daemon's own modules:
 *
 *   core: one clock read, the routing snapshot of every endpoint (state,
 *         breaker and EWMA words, the host-wide in-flight sum over the
 *         slots' cells), rp_route_plan / rp_route_next (p2c),
 *         rp_breaker_acquire (with the trial cells), rp_gcra_take (CAS on
 *         the shared TAT), rp_breaker_success
 *   full: core + the host-wide round-robin counter, this worker's in-flight
 *         cell +1/-1, the EWMA CAS and this worker's own stats counters
 *
 * The rate limit is set so that nothing is ever refused (1 ns interval, a
 * huge burst): the GCRA CAS still runs for every request, as in the daemon.
 * Reported: CPU ns per op (the processes' CPU time summed, divided by the
 * ops they did: what one routing costs a core, contention included, and
 * independent of how many cores the processes share) and the aggregate
 * throughput in Mops/s. With more processes than cores the CPU time also
 * includes the scheduler's share of switching between them.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp_balancer.h"
#include "rp_breaker.h"
#include "rp_hold.h"
#include "rp_ratelimit.h"
#include "rp_route.h"
#include "rp_shm.h"

#define HP_MAX_PROCS   64
#define HP_CHECK_EVERY 256 /* ops between looks at the stop flag */

/* Per-process results, written by the child, read by the parent. */
struct hp_result {
    _Atomic uint64_t ops;
    _Atomic uint64_t cpu_ns;
    _Atomic uint64_t denied;
} __attribute__((aligned(128)));

/* Run control, shared with the children. */
struct hp_ctl {
    _Atomic uint32_t ready;
    _Atomic uint32_t go;
    _Atomic uint32_t stop;
    _Atomic uint64_t deadline_ns; /* children stop by then even if the parent died */
    struct hp_result res[HP_MAX_PROCS];
};

static uint64_t hp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t hp_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t hp_xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Lay out a fresh segment in SEG with NEP endpoints that admit everything. */
static void hp_init_segment(uint8_t *seg, int nep, int procs)
{
    memset(seg, 0, RP_SHM_TOTAL_BYTES);
    struct rp_shm_header *h = (struct rp_shm_header *)seg;
    rp_shm_layout_init(h);
    atomic_store(&h->slots_hwm, (uint32_t)procs);
    atomic_store(&h->clock_base_ns, hp_mono_ns());
    atomic_store(&h->endpoint_count, (uint32_t)nep);
    for (int i = 0; i < nep; i++) {
        struct rp_shm_endpoint *e = (struct rp_shm_endpoint *)(seg + RP_SHM_ENDPOINTS_OFFSET) + i;
        e->id = (uint32_t)i;
        e->weight = 1;
        e->rl_interval_ns = 1;
        e->rl_burst = 1000000000000000ull;
        atomic_store(&e->health_ok, 1);
        atomic_store(&e->in_use, 1);
    }
    atomic_store(&h->magic, RP_SHM_MAGIC);
}

/* One child: route requests until told to stop; FULL adds the rest of the
 * daemon's per-request shared writes. Writes its results to RES. */
static void hp_child(uint8_t *seg, struct hp_ctl *ctl, int slot, int nep, int full)
{
    struct rp_shm_header *h = (struct rp_shm_header *)seg;
    struct rp_shm_endpoint *eps = (struct rp_shm_endpoint *)(seg + RP_SHM_ENDPOINTS_OFFSET);
    struct rp_breaker_params bp = {5, 60000, 3};
    struct rp_route_call call = {.tried_mask = 0, .pin_ep = RP_ROUTE_NONE};
    uint32_t inflight_seen[RP_SHM_MAX_ENDPOINTS] = {0};
    uint64_t inflight_seen_ms = 0; /* the worker reads the in-flight sums once per ms */
    struct rp_balancer bal;
    rp_balancer_init(&bal);
    uint64_t base = atomic_load_explicit(&h->clock_base_ns, memory_order_relaxed);
    uint64_t rnd_state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)getpid() << 17);
    uint64_t ops = 0, denied = 0;

    atomic_fetch_add(&ctl->ready, 1);
    uint64_t spin_end = hp_mono_ns() + 15000000000ull;
    while (!atomic_load_explicit(&ctl->go, memory_order_acquire))
        if (hp_mono_ns() > spin_end)
            return;
    uint64_t deadline = atomic_load_explicit(&ctl->deadline_ns, memory_order_relaxed);
    uint64_t cpu0 = hp_cpu_ns();
    for (;;) {
        if (ops % HP_CHECK_EVERY == 0 && atomic_load_explicit(&ctl->stop, memory_order_relaxed))
            break;
        uint64_t mono = hp_mono_ns();
        if (mono > deadline)
            break;
        uint64_t now_ns = mono - base;
        uint64_t now_ms = now_ns / 1000000ull;
        /* the routing snapshot, as the worker takes it (request.c) */
        struct rp_route_ep snap[RP_SHM_MAX_ENDPOINTS];
        int fresh = inflight_seen_ms != now_ms + 1;
        inflight_seen_ms = now_ms + 1;
        for (int i = 0; i < nep; i++) {
            if (fresh)
                inflight_seen[i] = rp_hold_sum(h, (unsigned)i, RP_HOLD_INFLIGHT);
            struct rp_shm_endpoint *e = &eps[i];
            snap[i] = (struct rp_route_ep){
                .id = (uint32_t)i,
                .in_use = 1,
                .drained = atomic_load_explicit(&e->drained, memory_order_relaxed) != 0,
                .up = atomic_load_explicit(&e->state, memory_order_relaxed) == RP_EP_UP,
                .hold_until_ms = atomic_load_explicit(&e->hold_until_ms, memory_order_relaxed),
                .breaker = atomic_load_explicit(&e->breaker, memory_order_acquire),
                .ewma = atomic_load_explicit(&e->ewma, memory_order_relaxed),
                .weight = e->weight,
                .inflight = inflight_seen[i],
                .has_free_conn = 1,
                .head_block = atomic_load_explicit(&e->head_block, memory_order_relaxed),
            };
        }
        uint64_t seq =
            full ? atomic_fetch_add_explicit(&h->rr_counter, 1, memory_order_relaxed) : ops;
        struct rp_route_plan plan;
        rp_route_plan(&plan, snap, nep, &call, now_ms);
        int id = rp_route_next(&plan, &bal, RP_BALANCE_P2C, seq, hp_xorshift(&rnd_state));
        struct rp_shm_endpoint *e = &eps[id];
        struct rp_trial_cells cells = rp_hold_trial_cells(h, (unsigned)id, (unsigned)slot);
        struct rp_breaker_ticket t = rp_breaker_acquire(&e->breaker, &bp, &cells, now_ms);
        struct rp_gcra_params gp = {e->rl_interval_ns, e->rl_burst};
        if (t.grant == RP_BREAKER_DENY || rp_gcra_take(&e->gcra_tat_ns, &gp, 1, now_ns) != 0) {
            denied++;
            ops++;
            continue;
        }
        if (full) {
            struct rp_shm_epstats *st = rp_shm_stats(h, (unsigned)slot, (unsigned)id);
            rp_hold_add(&st->inflight_held, +1);
            /* ... the request would run here ... */
            rp_hold_add(&st->inflight_held, -1);
            uint64_t lat_us = 100 + (seq & 63);
            uint64_t old = atomic_load_explicit(&e->ewma, memory_order_relaxed), upd;
            do {
                uint64_t prev = rp_route_ewma_decayed(old, now_ms);
                upd = rp_ewma_pack(prev == 0 ? lat_us : prev - prev / 8 + lat_us / 8, now_ms);
            } while (!atomic_compare_exchange_weak_explicit(
                &e->ewma, &old, upd, memory_order_relaxed, memory_order_relaxed));
            atomic_fetch_add_explicit(&st->ok, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&st->lat_sum_us, lat_us, memory_order_relaxed);
            atomic_fetch_add_explicit(&st->lat_count, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&st->hist[rp_lat_bucket(lat_us)], 1, memory_order_relaxed);
        }
        rp_breaker_success(&e->breaker, &cells, t);
        ops++;
    }
    uint64_t cpu = hp_cpu_ns() - cpu0;
    atomic_store(&ctl->res[slot].ops, ops);
    atomic_store(&ctl->res[slot].cpu_ns, cpu);
    atomic_store(&ctl->res[slot].denied, denied);
    rp_balancer_free(&bal);
}

struct hp_run {
    int procs;
    int full;
    uint64_t ops, denied;
    double cpu_ns_per_op, wall_s, mops;
};

/* Fork PROCS children over a fresh segment, let them run for MS, collect. */
static int hp_measure(int procs, int nep, int full, int ms, struct hp_run *out)
{
    uint8_t *seg =
        mmap(NULL, RP_SHM_TOTAL_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct hp_ctl *ctl =
        mmap(NULL, sizeof *ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (seg == MAP_FAILED || ctl == MAP_FAILED) {
        perror("shm_hotpath: mmap");
        return -1;
    }
    hp_init_segment(seg, nep, procs);
    memset(ctl, 0, sizeof *ctl);
    pid_t pids[HP_MAX_PROCS];
    for (int i = 0; i < procs; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("shm_hotpath: fork");
            atomic_store(&ctl->stop, 1);
            atomic_store(&ctl->go, 1);
            for (int k = 0; k < i; k++)
                waitpid(pids[k], NULL, 0);
            return -1;
        }
        if (pids[i] == 0) {
            hp_child(seg, ctl, i, nep, full);
            _exit(0);
        }
    }
    uint64_t wait_end = hp_mono_ns() + 10000000000ull;
    while (atomic_load(&ctl->ready) < (uint32_t)procs && hp_mono_ns() < wait_end)
        usleep(1000);
    uint64_t t0 = hp_mono_ns();
    atomic_store(&ctl->deadline_ns, t0 + (uint64_t)ms * 1000000ull + 5000000000ull);
    atomic_store_explicit(&ctl->go, 1, memory_order_release);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&ctl->stop, 1);
    int bad = 0;
    for (int i = 0; i < procs; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    uint64_t t1 = hp_mono_ns();
    uint64_t ops = 0, cpu = 0, denied = 0;
    for (int i = 0; i < procs; i++) {
        ops += atomic_load(&ctl->res[i].ops);
        cpu += atomic_load(&ctl->res[i].cpu_ns);
        denied += atomic_load(&ctl->res[i].denied);
    }
    out->procs = procs;
    out->full = full;
    out->ops = ops;
    out->denied = denied;
    out->cpu_ns_per_op = ops ? (double)cpu / (double)ops : 0;
    out->wall_s = (double)(t1 - t0) / 1e9;
    out->mops = out->wall_s > 0 ? (double)ops / out->wall_s / 1e6 : 0;
    munmap(seg, RP_SHM_TOTAL_BYTES);
    munmap(ctl, sizeof *ctl);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    int ms = 1000, nep = 1, json = 0;
    int plist[16] = {1, 2, 4, 8}, np = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            ms = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-e") == 0 && i + 1 < argc) {
            nep = atoi(argv[++i]);
        } else if (strcmp(argv[i], "-P") == 0 && i + 1 < argc) {
            np = 0;
            for (char *s = argv[++i]; *s && np < 16;) {
                plist[np++] = (int)strtol(s, &s, 10);
                if (*s == ',')
                    s++;
                else if (*s)
                    break;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: shm_hotpath [-d MS] [-P 1,2,4,8] [-e ENDPOINTS] [--json]\n");
            return 2;
        }
    }
    if (ms < 10 || ms > 60000 || nep < 1 || nep > RP_SHM_MAX_ENDPOINTS) {
        fprintf(stderr, "shm_hotpath: -d 10..60000, -e 1..%d\n", RP_SHM_MAX_ENDPOINTS);
        return 2;
    }
    for (int i = 0; i < np; i++)
        if (plist[i] < 1 || plist[i] > HP_MAX_PROCS) {
            fprintf(stderr, "shm_hotpath: processes 1..%d\n", HP_MAX_PROCS);
            return 2;
        }
    FILE *t = json ? stderr : stdout;
    fprintf(t, "shm hot path, %d endpoint row(s), %d ms per run, %ld CPUs\n", nep, ms,
            sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(t, "  %-6s %5s %14s %12s %10s %8s\n", "path", "procs", "ops", "cpu ns/op", "Mops/s",
            "denied");
    int rc = 0;
    for (int full = 0; full <= 1; full++)
        for (int i = 0; i < np; i++) {
            struct hp_run r;
            if (hp_measure(plist[i], nep, full, ms, &r) < 0) {
                rc = 1;
                continue;
            }
            fprintf(t, "  %-6s %5d %14" PRIu64 " %12.1f %10.2f %8" PRIu64 "\n",
                    full ? "full" : "core", r.procs, r.ops, r.cpu_ns_per_op, r.mops, r.denied);
            if (json)
                printf("{\"path\":\"%s\",\"procs\":%d,\"endpoints\":%d,\"ops\":%" PRIu64
                       ",\"cpu_ns_per_op\":%.1f,\"mops\":%.3f,\"denied\":%" PRIu64 "}\n",
                       full ? "full" : "core", r.procs, nep, r.ops, r.cpu_ns_per_op, r.mops,
                       r.denied);
            if (r.denied)
                rc = 1;
        }
    fflush(stdout);
    return rc;
}
