/* test_shm_view.c - the read-only segment view and the status renderer.
 *
 * Every test builds a segment by hand in a real POSIX shm object (unique
 * name per process and test), using only rp_shm_abi.h, then checks what
 * rp_shm_view_open()/rp_shm_view_snapshot() make of it. Segments are
 * unlinked at the end of each test.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_buf.h"
#include "rp_shm.h"
#include "rp_shm_view.h"
#include "rp_status.h"
#include "rp_test.h"

#define TOTAL RP_SHM_TOTAL_BYTES

static char g_name[64];
static int g_seq; /* segments created so far: names .1 .. .g_seq */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Create a fresh shm object of SIZE bytes and map it read-write. */
static struct rp_shm_header *seg_create(size_t size)
{
    snprintf(g_name, sizeof g_name, "/rp_test_shm_view.%d.%d", (int)getpid(), ++g_seq);
    shm_unlink(g_name);
    int fd = shm_open(g_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(ftruncate(fd, (off_t)size) == 0);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    CU_ASSERT_FATAL(p != MAP_FAILED);
    return p;
}

static void seg_destroy(struct rp_shm_header *h, size_t size)
{
    munmap(h, size);
    shm_unlink(g_name);
}

static void set_ep(struct rp_shm_header *h, unsigned i, const char *name, const char *url)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, i);
    e->id = i;
    e->weight = 1 + i;
    e->rl_interval_ns = 100000000; /* 10 per second */
    e->rl_burst = 10;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->url_redacted, sizeof e->url_redacted, "%s", url);
    atomic_store_explicit(&e->in_use, 1, memory_order_release);
}

/* Fill a valid header and a known population: endpoints 0 and 2 in use
 * (1 tombstoned), workers in slots 0, 1 (workers) and 5 (prober), counters
 * spread over several worker rows. Publishes the magic last. */
static void seg_fill(struct rp_shm_header *h)
{
    rp_shm_layout_init(h);
    h->total_size = TOTAL;
    snprintf(h->name, sizeof h->name, "test-pool");
    /* the segment clock started 100 s ago */
    atomic_store(&h->clock_base_ns, mono_ns() - 100ull * 1000000000ull);
    atomic_store(&h->supervisor_pid, (int64_t)getpid());
    atomic_store(&h->supervisor_birth_ns, real_ns()); /* "now": this process is older */
    atomic_store(&h->generation, 7);
    atomic_store(&h->best_head_block, 1000);

    set_ep(h, 0, "alpha", "https://alpha.example/v3/SECRETKEY");
    set_ep(h, 1, "tomb", "https://tomb.example");
    atomic_store(&rp_shm_ep(h, 1)->in_use, 0);
    set_ep(h, 2, "gamma", "http://user:pw@gamma.example:8545");

    struct rp_shm_endpoint *e0 = rp_shm_ep(h, 0), *e2 = rp_shm_ep(h, 2);
    atomic_store(&e0->state, RP_EP_LAGGING);
    atomic_store(&e0->head_block, 990);
    /* holdings are per-slot cells, summed by the reader */
    atomic_store(&rp_shm_stats(h, 0, 0)->inflight_held, 1);
    atomic_store(&rp_shm_stats(h, 3, 0)->inflight_held, 2);
    atomic_store(&rp_shm_stats(h, 0, 0)->conns_open_held, 4);
    atomic_store(&rp_shm_stats(h, RP_SHM_PROBER_SLOT, 0)->conns_open_held, 1);
    atomic_store(&rp_shm_stats(h, 3, 0)->conns_active_held, 2);
    atomic_store(&e0->gcra_tat_ns, 0); /* full bucket */
    snprintf(e2->last_error, sizeof e2->last_error, "SSL certificate problem: self-signed");
    atomic_store(&e2->last_error_seq, 2);
    atomic_store(&e2->state, RP_EP_UP);
    atomic_store(&e2->drained, 1);
    atomic_store(&rp_shm_stats(h, 1, 2)->conns_open_held, 1);
    atomic_store(&rp_shm_stats(h, 2, 2)->conns_active_held, 4); /* racy counts: idle clamps to 0 */
    /* the bucket is empty for the next hour */
    atomic_store(&e2->gcra_tat_ns, 200ull * 1000000000ull + 3600ull * 1000000000ull);

    /* endpoint 0 counters over worker rows 0, 5 and the last one */
    struct rp_shm_epstats *c;
    c = rp_shm_stats(h, 0, 0);
    atomic_store(&c->ok, 10);
    atomic_store(&c->failed, 1);
    atomic_store(&c->client_ok, 100);
    atomic_store(&c->client_error, 4);
    c = rp_shm_stats(h, 5, 0);
    atomic_store(&c->ok, 32);
    atomic_store(&c->failed, 2);
    atomic_store(&c->retried, 3);
    atomic_store(&c->client_ok, 20);
    c = rp_shm_stats(h, RP_SHM_MAX_WORKERS - 1, 0);
    atomic_store(&c->ok, 1);
    atomic_store(&c->client_error, 1);
    /* endpoint 0 latencies: 50 samples in bucket 10, 40 in 20, 10 in 30 */
    c = rp_shm_stats(h, 0, 0);
    atomic_store(&c->hist[10], 30);
    atomic_store(&c->hist[20], 40);
    atomic_store(&c->lat_sum_us, 600000);
    atomic_store(&c->lat_count, 60);
    c = rp_shm_stats(h, 5, 0);
    atomic_store(&c->hist[10], 20);
    atomic_store(&c->hist[30], 10);
    atomic_store(&c->lat_sum_us, 400000);
    atomic_store(&c->lat_count, 40);
    /* the tombstoned endpoint's counters must not leak into anything shown */
    atomic_store(&rp_shm_stats(h, 0, 1)->ok, 999);
    /* endpoint 2 */
    atomic_store(&rp_shm_stats(h, 3, 2)->ok, 7);

    struct rp_shm_worker *w;
    w = rp_shm_worker(h, 0);
    atomic_store(&w->pid, 1111);
    atomic_store(&w->state, RP_WORKER_RUNNING);
    atomic_store(&w->requests, 42);
    atomic_store(&w->heartbeat_ms, 99000); /* about 1 s old */
    w = rp_shm_worker(h, 1);
    atomic_store(&w->pid, 2222);
    atomic_store(&w->state, RP_WORKER_DEAD);
    atomic_store(&w->restarts, 3);
    w = rp_shm_worker(h, 5);
    atomic_store(&w->pid, 3333);
    atomic_store(&w->state, RP_WORKER_RUNNING);
    atomic_store(&w->kind, RP_KIND_PROBER);

    atomic_store_explicit(&h->magic, RP_SHM_MAGIC, memory_order_release);
}

static struct rp_snapshot g_snap, g_snap2;

static void test_open_ok(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    CU_ASSERT_EQUAL(v.size, TOTAL);
    CU_ASSERT_EQUAL(v.owned, 1);
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(g_snap.name, "test-pool");
    CU_ASSERT_EQUAL(g_snap.version_major, RP_SHM_VERSION_MAJOR);
    CU_ASSERT_EQUAL(g_snap.generation, 7);
    CU_ASSERT_EQUAL(g_snap.supervisor_pid, getpid());
    CU_ASSERT_EQUAL(g_snap.supervisor_alive, 1);
    CU_ASSERT(g_snap.now_ms >= 100000 && g_snap.now_ms < 200000);
    CU_ASSERT_EQUAL_FATAL(g_snap.ep_count, 2);
    CU_ASSERT_EQUAL(g_snap.eps[0].id, 0);
    CU_ASSERT_STRING_EQUAL(g_snap.eps[0].name, "alpha");
    CU_ASSERT_EQUAL(g_snap.eps[1].id, 2);
    CU_ASSERT_STRING_EQUAL(g_snap.eps[1].name, "gamma");
    CU_ASSERT_EQUAL(g_snap.eps[1].weight, 3);
    rp_shm_view_close(&v);
    CU_ASSERT_PTR_NULL(v.base);
    seg_destroy(h, TOTAL);
}

static void test_snapshot_sums(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    const struct rp_ep_snapshot *a = &g_snap.eps[0], *g = &g_snap.eps[1];
    CU_ASSERT_EQUAL(a->ok, 43);
    CU_ASSERT_EQUAL(a->failed, 3);
    CU_ASSERT_EQUAL(a->retried, 3);
    CU_ASSERT_EQUAL(a->lat_count, 100);
    CU_ASSERT_EQUAL(a->lat_sum_us, 1000000);
    CU_ASSERT_DOUBLE_EQUAL(a->avg_ms, 10.0, 1e-9);
    CU_ASSERT_EQUAL(a->hist[10], 50);
    CU_ASSERT_EQUAL(g->ok, 7);
    CU_ASSERT_EQUAL(g_snap.client_ok, 120);
    CU_ASSERT_EQUAL(g_snap.client_error, 5);
    /* derived fields */
    CU_ASSERT_EQUAL(a->state, RP_EP_LAGGING);
    CU_ASSERT_EQUAL(a->head_block, 990);
    CU_ASSERT_EQUAL(a->lag, 10);
    CU_ASSERT_EQUAL(a->inflight, 3);
    CU_ASSERT_STRING_EQUAL(a->last_error, "");
    CU_ASSERT_EQUAL(a->conns_active, 2);
    CU_ASSERT_EQUAL(a->conns_idle, 3);
    CU_ASSERT_DOUBLE_EQUAL(a->tokens, 10.0, 1e-9);
    CU_ASSERT_EQUAL(a->breaker, RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(g->state, RP_EP_DRAINED);
    CU_ASSERT_EQUAL(g->conns_idle, 0);
    CU_ASSERT_EQUAL(g->lag, 0); /* head unknown */
    CU_ASSERT_STRING_EQUAL(g->last_error, "SSL certificate problem: self-signed");
    struct rp_buf eb = RP_BUF_INIT;
    rp_status_append_endpoint(&eb, g);
    CU_ASSERT_PTR_NOT_NULL(strstr(rp_buf_cstr(&eb), ",\"last_error\":\"SSL certificate problem: "
                                                    "self-signed\"}"));
    rp_buf_reset(&eb);
    rp_status_append_endpoint(&eb, a); /* no error: no key */
    CU_ASSERT_PTR_NULL(strstr(rp_buf_cstr(&eb), "last_error"));
    rp_buf_free(&eb);
    /* a text the prober is rewriting (odd sequence) is not shown torn */
    struct rp_shm_endpoint *row2 = rp_shm_ep(h, 2);
    atomic_store(&row2->last_error_seq, 3);
    CU_ASSERT_EQUAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(g_snap.eps[1].last_error, "");
    atomic_store(&row2->last_error_seq, 4);
    CU_ASSERT_DOUBLE_EQUAL(g->tokens, 0.0, 1e-9);
    /* URLs: secrets and user info never shown */
    CU_ASSERT_STRING_EQUAL(a->url, "https://alpha.example/***");
    CU_ASSERT_STRING_EQUAL(g->url, "http://gamma.example:8545");
    /* workers: the three used slots, in slot order */
    CU_ASSERT_EQUAL_FATAL(g_snap.worker_count, 3);
    CU_ASSERT_EQUAL(g_snap.workers[0].slot, 0);
    CU_ASSERT_EQUAL(g_snap.workers[0].pid, 1111);
    CU_ASSERT_EQUAL(g_snap.workers[0].requests, 42);
    CU_ASSERT(g_snap.workers[0].heartbeat_age_ms >= 1000 &&
              g_snap.workers[0].heartbeat_age_ms < 100000);
    CU_ASSERT_EQUAL(g_snap.workers[1].state, RP_WORKER_DEAD);
    CU_ASSERT_EQUAL(g_snap.workers[1].restarts, 3);
    CU_ASSERT_EQUAL(g_snap.workers[2].slot, 5);
    CU_ASSERT_EQUAL(g_snap.workers[2].kind, RP_KIND_PROBER);
    rp_shm_view_close(&v);
    seg_destroy(h, TOTAL);
}

static void test_breaker_open(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    /* open endpoint 0's breaker for a long time, through the breaker's own API */
    struct rp_breaker_params bp = {
        .failure_threshold = 1, .recovery_timeout_ms = 1000000000ull, .half_open_max = 1};
    struct rp_breaker_ticket allow = {RP_BREAKER_ALLOW, 0};
    rp_breaker_failure(&rp_shm_ep(h, 0)->breaker, &bp, NULL, allow, 100000);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    CU_ASSERT_EQUAL(g_snap.eps[0].breaker, RP_BREAKER_OPEN);
    CU_ASSERT_EQUAL(g_snap.eps[0].breaker_failures, 1);
    CU_ASSERT_EQUAL(g_snap.eps[1].breaker, RP_BREAKER_CLOSED);
    rp_shm_view_close(&v);
    seg_destroy(h, TOTAL);
}

/* Snapshot the segment at H with supervisor_pid set to PID; its verdict. */
static int alive_with_pid(struct rp_shm_header *h, int64_t pid)
{
    atomic_store(&h->supervisor_pid, pid);
    struct rp_shm_view v;
    char err[256] = "";
    if (rp_shm_view_open(&v, g_name, err, sizeof err) != 0)
        return -1;
    int rc = rp_shm_view_snapshot(&v, &g_snap, err, sizeof err);
    rp_shm_view_close(&v);
    return rc == 0 ? g_snap.supervisor_alive : -1;
}

static void test_supervisor_alive(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    CU_ASSERT_EQUAL(alive_with_pid(h, getpid()), 1);
    /* the pid of a supervisor born before this process started was reused:
     * this process is not that supervisor */
    uint64_t birth = atomic_load(&h->supervisor_birth_ns);
    atomic_store(&h->supervisor_birth_ns, 1234567890ull);
    CU_ASSERT_EQUAL(alive_with_pid(h, getpid()), 0);
    atomic_store(&h->supervisor_birth_ns, birth);
    CU_ASSERT_EQUAL(alive_with_pid(h, 1), 1); /* init: alive, maybe EPERM */
    /* 0 and negative pids would address process groups with kill() */
    CU_ASSERT_EQUAL(alive_with_pid(h, 0), 0);
    CU_ASSERT_EQUAL(alive_with_pid(h, -1), 0);
    CU_ASSERT_EQUAL(alive_with_pid(h, (int64_t)1 << 40), 0);
    /* a child that exited but was not reaped yet (zombie) is dead */
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(0);
    siginfo_t si;
    CU_ASSERT_EQUAL(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
    CU_ASSERT_EQUAL(alive_with_pid(h, child), 0);
    /* reaped: gone */
    CU_ASSERT_EQUAL(waitpid(child, NULL, 0), child);
    CU_ASSERT_EQUAL(alive_with_pid(h, child), 0);
    seg_destroy(h, TOTAL);
}

static void test_quantiles(void)
{
    uint64_t hist[RP_LAT_BUCKETS] = {0};
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 0, 0.5), 0.0, 1e-12);
    /* bucket 2 holds [70.7, 100) us: every quantile is its upper bound, 0.1 ms */
    hist[2] = 10;
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 10, 0.5), 0.1, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 10, 0.0), 0.1, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 10, 1.0), 0.1, 1e-6);
    /* 50 in bucket 10 (1.6 ms), 49 in bucket 20 (51.2 ms), 1 in bucket 30 */
    memset(hist, 0, sizeof hist);
    hist[10] = 50;
    hist[20] = 49;
    hist[30] = 1;
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 100, 0.50), 1.6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 100, 0.51), 51.2, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 100, 0.99), 51.2, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 100, 0.995), 1638.4, 1e-3);
    /* a count above what the buckets hold (racy reads): highest bucket */
    CU_ASSERT_DOUBLE_EQUAL(rp_hist_quantile_ms(hist, 1000, 0.99), 1638.4, 1e-3);
    /* a value lands in the bucket whose upper bound is above it */
    uint64_t us = 12345;
    int b = rp_lat_bucket(us);
    CU_ASSERT(rp_lat_bucket_upper_us(b) > (double)us);
    CU_ASSERT(b == 0 || rp_lat_bucket_upper_us(b - 1) <= (double)us + 1);

    /* the same through a snapshot of the segment built by seg_fill */
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    CU_ASSERT_DOUBLE_EQUAL(g_snap.eps[0].p50_ms, 1.6, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(g_snap.eps[0].p99_ms, 1638.4, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(g_snap.eps[1].p50_ms, 0.0, 1e-12);
    rp_shm_view_close(&v);
    seg_destroy(h, TOTAL);
}

/* Open NAME and expect a failure whose message contains WANT. */
static void expect_open_error(const char *want)
{
    struct rp_shm_view v;
    char err[512] = "";
    int rc = rp_shm_view_open(&v, g_name, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    if (rc == 0) {
        fprintf(stderr, "unexpected success (wanted \"%s\")\n", want);
        rp_shm_view_close(&v);
        return;
    }
    if (!strstr(err, want))
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, g_name));
}

static uint64_t g_rng;

static uint64_t rng_next(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void fill_random(void *p, size_t n)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)rng_next();
}

static void test_garbage(void)
{
    size_t hdr = sizeof(struct rp_shm_header);
    for (uint64_t seed = 1; seed <= 16; seed++) {
        g_rng = seed * 0x9e3779b97f4a7c15ull;
        struct rp_shm_header *h = seg_create(TOTAL);
        /* pure noise: not ours */
        fill_random(h, TOTAL);
        expect_open_error("not an rpcpool segment");
        /* our magic and version over noise: some check must refuse it */
        atomic_store(&h->magic, RP_SHM_MAGIC);
        h->version_major = RP_SHM_VERSION_MAJOR;
        expect_open_error("segment");
        /* a valid header but noisy table descriptors */
        h->header_size = (uint32_t)hdr;
        h->total_size = TOTAL;
        expect_open_error("corrupt segment");
        seg_destroy(h, TOTAL);
    }
    /* an all-zero segment: created, never initialised */
    seg_create(TOTAL);
    expect_open_error("not initialised");
    seg_destroy(NULL, 0);
}

static void test_truncated(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    int fd = shm_open(g_name, O_RDWR, 0);
    CU_ASSERT_FATAL(fd >= 0);
    /* shorter than the header says */
    CU_ASSERT_FATAL(ftruncate(fd, (off_t)(TOTAL - 4096)) == 0);
    expect_open_error("truncated");
    /* shorter than the header itself */
    munmap(h, TOTAL);
    CU_ASSERT_FATAL(ftruncate(fd, 16) == 0);
    expect_open_error("truncated");
    /* empty */
    CU_ASSERT_FATAL(ftruncate(fd, 0) == 0);
    expect_open_error("truncated");
    close(fd);
    seg_destroy(NULL, 0);
}

static void test_other_version(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    h->version_major = RP_SHM_VERSION_MAJOR + 1;
    h->version_minor = 3;
    char want[64];
    snprintf(want, sizeof want, "layout version %d.3", RP_SHM_VERSION_MAJOR + 1);
    expect_open_error(want);
    snprintf(want, sizeof want, "reads layout version %d.x", RP_SHM_VERSION_MAJOR);
    expect_open_error(want);
    /* a newer minor version of the same major is readable */
    h->version_major = RP_SHM_VERSION_MAJOR;
    h->version_minor = RP_SHM_VERSION_MINOR + 1;
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    rp_shm_view_close(&v);
    /* byte-swapped magic */
    atomic_store(&h->magic, __builtin_bswap64(RP_SHM_MAGIC));
    expect_open_error("byte order");
    seg_destroy(h, TOTAL);
}

static void test_bad_tables(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    struct rp_shm_table good_ep = h->endpoints, good_st = h->stats, good_wk = h->workers;

    h->endpoints.offset = TOTAL - 128; /* rows run past the end */
    expect_open_error("endpoint table");
    h->endpoints.offset = UINT64_MAX - 127; /* offset + size overflows */
    expect_open_error("endpoint table");
    h->endpoints.offset = 0; /* inside the header */
    expect_open_error("endpoint table");
    h->endpoints = good_ep;
    h->endpoints.offset += 8; /* misaligned rows */
    expect_open_error("aligned");
    h->endpoints = good_ep;
    h->endpoints.count = RP_SHM_MAX_ENDPOINTS + 1;
    expect_open_error("at most");
    h->endpoints = good_ep;

    h->workers.stride = sizeof(struct rp_shm_worker) - 128; /* too small for a row */
    expect_open_error("worker table");
    h->workers = good_wk;
    h->workers.stride = UINT32_MAX - 127; /* huge stride */
    expect_open_error("worker table");
    h->workers = good_wk;

    h->stats.count = UINT32_MAX;
    expect_open_error("stats table");
    h->stats = good_st;
    h->stats.offset = TOTAL; /* empty table at the very end is fine ... */
    h->stats.count = 0;
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    rp_shm_view_close(&v);
    h->stats.count = 1; /* ... one row there is not */
    expect_open_error("stats table");
    h->stats = good_st;

    h->header_size = 8;
    expect_open_error("header size");
    h->header_size = sizeof(struct rp_shm_header);
    h->total_size = UINT64_MAX;
    expect_open_error("truncated");
    h->total_size = 16;
    expect_open_error("total size");
    h->total_size = TOTAL;

    /* repaired: opens again */
    CU_ASSERT_EQUAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    /* a header broken after open: the next snapshot refuses, no crash */
    h->workers.offset = TOTAL;
    CU_ASSERT_EQUAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "worker table"));
    rp_shm_view_close(&v);
    seg_destroy(h, TOTAL);
}

static void test_read_only(void)
{
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    void *copy = malloc(TOTAL);
    CU_ASSERT_FATAL(copy != NULL);
    memcpy(copy, h, TOTAL);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    struct rp_buf b = RP_BUF_INIT;
    CU_ASSERT_EQUAL(rp_status_json(&b, &g_snap), 0);
    rp_buf_free(&b);
    rp_shm_view_close(&v);
    CU_ASSERT_EQUAL(memcmp(copy, h, TOTAL), 0);
    free(copy);
    seg_destroy(h, TOTAL);
}

static void test_wrap(void)
{
    void *mem = aligned_alloc(4096, (TOTAL + 4095) / 4096 * 4096);
    CU_ASSERT_FATAL(mem != NULL);
    memset(mem, 0, TOTAL);
    seg_fill(mem);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_wrap(&v, mem, TOTAL, err, sizeof err), 0);
    CU_ASSERT_EQUAL(v.owned, 0);
    CU_ASSERT_EQUAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    CU_ASSERT_EQUAL(g_snap.ep_count, 2);
    rp_shm_view_close(&v); /* must not unmap or free */
    CU_ASSERT_EQUAL(rp_shm_view_wrap(&v, mem, TOTAL - 1, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));
    CU_ASSERT_EQUAL(rp_shm_view_wrap(&v, (char *)mem + 64, TOTAL - 64, err, sizeof err), -1);
    CU_ASSERT_EQUAL(rp_shm_view_wrap(&v, NULL, 0, err, sizeof err), -1);
    free(mem);
}

/* Parse JS strictly with jsmn; returns the token count or a negative error. */
static int json_parse(const char *js, size_t len)
{
    static jsmntok_t toks[4096];
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, js, len, toks, sizeof toks / sizeof toks[0]);
    if (n > 0 && (toks[0].type != JSMN_OBJECT || (size_t)toks[0].end != len))
        return -100;
    return n;
}

static void make_known_snapshot(struct rp_snapshot *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "eth \"main\"\n");
    s->version_major = 1;
    s->version_minor = 0;
    s->generation = 4;
    s->supervisor_pid = 321;
    s->supervisor_alive = 1;
    s->consistent = 1;
    s->supervisor_birth_ns = 1000ull * 1000000000ull;
    s->best_head = 21000000;
    s->client_ok = 5;
    s->hedge_calls = 90;
    s->hedges_sent = 6;
    s->hedges_won = 4;
    s->hedges_lost = 2;
    s->client_error = 1;
    s->ep_count = 2;
    struct rp_ep_snapshot *e = &s->eps[0];
    e->id = 0;
    snprintf(e->name, sizeof e->name, "infura");
    snprintf(e->url, sizeof e->url, "https://mainnet.infura.io/***");
    e->weight = 1;
    e->state = RP_EP_UP;
    e->breaker = RP_BREAKER_CLOSED;
    e->tokens = 9.5;
    e->conns_idle = 2;
    e->ok = 120;
    e->failed = 1;
    e->retried = 1;
    e->hedges_sent = 6;
    e->hedges_won = 4;
    e->hedges_lost = 2;
    e->avg_ms = 12.3;
    e->p50_ms = 10.1;
    e->p99_ms = 40.2;
    e->head_block = 21000000;
    e = &s->eps[1];
    e->id = 3;
    snprintf(e->name, sizeof e->name, "b\xff\\d\x01");
    snprintf(e->url, sizeof e->url, "http://127.0.0.1:8545");
    e->weight = 2;
    e->state = RP_EP_QUARANTINED;
    e->breaker = RP_BREAKER_HALF_OPEN;
    e->tokens = 0.0004;
    e->inflight = 7;
    e->conns_active = 3;
    e->ok = 200;
    e->avg_ms = NAN;
    e->head_block = 20999990;
    e->lag = 10;
    s->worker_count = 2;
    s->workers[0] = (struct rp_worker_snapshot){.slot = 0,
                                                .pid = 400,
                                                .state = RP_WORKER_RUNNING,
                                                .kind = RP_KIND_WORKER,
                                                .heartbeat_age_ms = 12,
                                                .requests = 77,
                                                .restarts = 1,
                                                .clients = 2,
                                                .generation = 4};
    s->workers[1] = (struct rp_worker_snapshot){
        .slot = 9, .pid = 401, .state = RP_WORKER_DRAINING, .kind = RP_KIND_PROBER};
}

static void test_status_json(void)
{
    make_known_snapshot(&g_snap);
    struct rp_buf b = RP_BUF_INIT;
    CU_ASSERT_EQUAL_FATAL(rp_status_json(&b, &g_snap), 0);
    const char *js = rp_buf_cstr(&b);
    CU_ASSERT(json_parse(js, b.len) > 0);
    CU_ASSERT_EQUAL(strlen(js), b.len);
    CU_ASSERT_PTR_NOT_NULL(strstr(
        js, "{\"id\":0,\"name\":\"infura\",\"url\":\"https://mainnet.infura.io/***\",\"weight\":1,"
            "\"state\":\"up\",\"breaker\":\"closed\",\"tokens\":9.5,\"inflight\":0,"
            "\"connections\":{\"active\":0,\"idle\":2},\"requests\":{\"ok\":120,\"failed\":1,"
            "\"retried\":1},\"latency_ms\":{\"avg\":12.3,\"p50\":10.1,\"p99\":40.2},"
            "\"head_block\":21000000,\"lag\":0,\"hedges\":{\"sent\":6,\"won\":4,\"lost\":2},"
            "\"head_feed\":false}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "{\"name\":\"eth \\\"main\\\"\\n\",\"version\":\"1.0\","
                                      "\"generation\":4,\"supervisor_pid\":321,"
                                      "\"supervisor_alive\":true,\"workers\":[{\"pid\":400,"
                                      "\"state\":\"running\",\"requests\":77,\"restarts\":1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"name\":\"b\\ufffd\\\\d\\u0001\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"state\":\"quarantined\",\"breaker\":\"half_open\","
                                      "\"tokens\":0,\"inflight\":7,"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(js, "\"avg\":0,\"p50\":0,\"p99\":0},\"head_block\":20999990,"
                   "\"lag\":10,\"hedges\":{\"sent\":0,\"won\":0,\"lost\":0},\"head_feed\":false}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"kind\":\"prober\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"state\":\"draining\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(js, "\"client_requests\":{\"ok\":5,\"error\":1},"
                                      "\"consistency\":{\"waits\":0,\"affinity_hits\":0,"
                                      "\"lookup_retries\":0},\"hedges\":{\"calls\":90,"
                                      "\"sent\":6,\"won\":4,\"lost\":2}}"));
    CU_ASSERT_PTR_NULL(strstr(js, "consistent"));
    /* a copy the seqlock could not make whole says so */
    g_snap.consistent = 0;
    struct rp_buf torn = RP_BUF_INIT;
    CU_ASSERT_EQUAL(rp_status_json(&torn, &g_snap), 0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(rp_buf_cstr(&torn), "\"supervisor_alive\":true,\"consistent\":false,"));
    rp_buf_free(&torn);
    g_snap.consistent = 1;

    /* the control socket's reply uses the same pieces */
    rp_buf_reset(&b);
    CU_ASSERT_EQUAL(rp_status_control_json(&b, &g_snap, 1062ull * 1000000000ull + 5), 0);
    js = rp_buf_cstr(&b);
    CU_ASSERT(json_parse(js, b.len) > 0);
    CU_ASSERT_EQUAL(strncmp(js, "{\"ok\":true,\"name\":", 18), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(js, ",\"pid\":321,\"uptime_s\":62,\"generation\":4,"));
    rp_buf_free(&b);

    /* the fixed-buffer form: cut and terminated, full length returned */
    char small[32];
    char big[2048];
    size_t full = rp_status_endpoint_json(big, sizeof big, &g_snap.eps[0]);
    CU_ASSERT(full < sizeof big);
    CU_ASSERT_EQUAL(strlen(big), full);
    CU_ASSERT_EQUAL(rp_status_endpoint_json(small, sizeof small, &g_snap.eps[0]), full);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT_EQUAL(strncmp(small, big, sizeof small - 1), 0);
    CU_ASSERT(json_parse(big, full) > 0);

    /* a snapshot taken from a real segment renders as valid JSON too */
    struct rp_shm_header *h = seg_create(TOTAL);
    seg_fill(h);
    struct rp_shm_view v;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_open(&v, g_name, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(rp_shm_view_snapshot(&v, &g_snap, err, sizeof err), 0);
    rp_buf_init(&b);
    CU_ASSERT_EQUAL(rp_status_json(&b, &g_snap), 0);
    CU_ASSERT(json_parse(rp_buf_cstr(&b), b.len) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(rp_buf_cstr(&b), "\"state\":\"lagging\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(rp_buf_cstr(&b), "\"state\":\"drained\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(rp_buf_cstr(&b), "\"requests\":{\"ok\":43,\"failed\":3,"));
    rp_buf_free(&b);
    rp_shm_view_close(&v);
    seg_destroy(h, TOTAL);
}

static void test_buf(void)
{
    struct rp_buf b;
    rp_buf_init(&b);
    CU_ASSERT_STRING_EQUAL(rp_buf_cstr(&b), "");
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(rp_buf_appendf(&b, "%04d,", i), 0);
    CU_ASSERT_EQUAL(b.len, 5000);
    CU_ASSERT_EQUAL(strncmp(b.data + 4995, "0999,", 5), 0);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_EQUAL(rp_buf_appendf(&b, "[%s]", big), 0);
    CU_ASSERT_EQUAL(b.len, 5000 + 3001);
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    rp_buf_reset(&b);
    CU_ASSERT_EQUAL(rp_buf_append_json_strn(&b, "a\0b\t\xe2\x82\xac\xed\xa0\x80", 10), 0);
    CU_ASSERT_STRING_EQUAL(rp_buf_cstr(&b), "\"a\\u0000b\\t\xe2\x82\xac\\ufffd\\ufffd\\ufffd\"");
    size_t len = 0;
    char *s = rp_buf_detach(&b, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(len, strlen(s));
    CU_ASSERT_PTR_NULL(b.data);
    free(s);
    rp_buf_free(&b);
}

static void test_table(void)
{
    make_known_snapshot(&g_snap);
    g_snap2 = g_snap;
    g_snap2.eps[0].ok = 69;  /* 51 more done in 2 s: 25.5 req/s */
    g_snap2.eps[1].ok = 300; /* counters went backwards: "-" */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_FATAL(f != NULL);
    rp_status_table(f, &g_snap, &g_snap2, 2.0);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "infura"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "https://mainnet.infura.io/***"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "quarantined"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "half_open"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, " 25.5 "));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "draining"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "prober"));
    /* control and non-ASCII bytes never reach the terminal */
    CU_ASSERT_PTR_NULL(strchr(text, '\x01'));
    CU_ASSERT_PTR_NULL(strchr(text, '\xff'));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "b?\\d?"));
    free(text);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"open_ok", test_open_ok},
        {"snapshot_sums", test_snapshot_sums},
        {"breaker_open", test_breaker_open},
        {"supervisor_alive", test_supervisor_alive},
        {"quantiles", test_quantiles},
        {"garbage", test_garbage},
        {"truncated", test_truncated},
        {"other_version", test_other_version},
        {"bad_tables", test_bad_tables},
        {"read_only", test_read_only},
        {"wrap", test_wrap},
        {"status_json", test_status_json},
        {"buf", test_buf},
        {"table", test_table},
        {NULL, NULL},
    };
    int rc = rp_test_run("shm_view", cases);
    /* a test stopped by a fatal assertion skipped its seg_destroy() */
    for (int i = 1; i <= g_seq; i++) {
        snprintf(g_name, sizeof g_name, "/rp_test_shm_view.%d.%d", (int)getpid(), i);
        shm_unlink(g_name);
    }
    return rc;
}
