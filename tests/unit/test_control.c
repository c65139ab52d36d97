/* test_control.c - the control socket module (rp_control.h).
 *
 * A real segment is made with rp_shm_create() (unique name per process),
 * endpoint and worker rows are filled by hand, and the module is opened on
 * a socket in a private temporary directory with fake supervisor ops that
 * record what they were asked. Commands are run through
 * rp_control_execute() and their answers parsed with jsmn; the socket side
 * (line framing, pipelining, too-long lines, the client bound, SO_PEERCRED,
 * shutdown ordering) is driven through a private epoll set pumped by hand.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_control.h"
#include "rp_log.h"
#include "rp_ratelimit.h"
#include "rp_shm.h"
#include "rp_test.h"

static struct rp_shm g_shm;
static int g_epfd = -1;
static char g_dir[64];
static char g_path[100];

/* fake ops */
static int f_reload_rc;
static uint64_t f_reload_gen;
static int f_reload_calls;
static int f_workers_rc;
static unsigned f_workers_n;
static int f_workers_calls;
static int f_shutdown_calls;

static int fake_reload(uint64_t *gen, char *err, size_t errlen)
{
    f_reload_calls++;
    if (f_reload_rc != 0) {
        snprintf(err, errlen, "/etc/rpcpool/x.conf:3: foo: unknown key");
        return -1;
    }
    *gen = f_reload_gen;
    return 0;
}

static int fake_set_workers(unsigned n, char *err, size_t errlen)
{
    f_workers_calls++;
    f_workers_n = n;
    if (f_workers_rc != 0) {
        snprintf(err, errlen, "cannot fork");
        return -1;
    }
    return 0;
}

static void fake_shutdown(void)
{
    f_shutdown_calls++;
}

static struct rp_shm_header *fake_shm(void)
{
    return g_shm.hdr;
}

static const struct rp_config *fake_config(void)
{
    return NULL;
}

/* ------------------------------------------------------------------ */
/* fixture                                                             */
/* ------------------------------------------------------------------ */

static void set_ep(unsigned i, const char *name, const char *url)
{
    struct rp_shm_endpoint *e = rp_shm_ep(g_shm.hdr, i);
    e->id = i;
    e->weight = 1;
    e->url_key = rp_shm_url_key(url);
    e->rl_interval_ns = 100000000; /* 10 per second */
    e->rl_burst = 10;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->url_redacted, sizeof e->url_redacted, "%s", url);
    atomic_store_explicit(&e->state, RP_EP_UP, memory_order_relaxed);
    atomic_store_explicit(&e->in_use, 1, memory_order_release);
}

/* Endpoints: 0 "alpha", 1 "beta" (breaker open), 2 tombstoned "gone",
 * 3 "with space". Workers in slots 0 and 1. Known counters in two worker
 * rows. */
static void fixture_fill(void)
{
    struct rp_shm_header *h = g_shm.hdr;
    set_ep(0, "alpha", "https://alpha.example/***");
    set_ep(1, "beta", "http://127.0.0.1:8545");
    set_ep(2, "gone", "http://gone.example");
    atomic_store_explicit(&rp_shm_ep(h, 2)->in_use, 0, memory_order_release);
    set_ep(3, "with space", "http://space.example");
    atomic_store_explicit(&h->endpoint_count, 4, memory_order_release);

    struct rp_breaker_params bp = {
        .failure_threshold = 1, .recovery_timeout_ms = 600000, .half_open_max = 1};
    struct rp_breaker_ticket allow = {RP_BREAKER_ALLOW, 0};
    rp_breaker_failure(&rp_shm_ep(h, 1)->breaker, &bp, NULL, allow, rp_shm_now_ms(h));

    /* connection counts are per-slot cells that readers sum */
    atomic_store_explicit(&rp_shm_stats(h, 0, 0)->conns_open_held, 3, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 0)->conns_open_held, 2, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 0)->conns_active_held, 2, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 0, 1)->conns_open_held, 1, memory_order_relaxed);

    /* alpha: 30 ok in 3 s total over two workers; beta: 10 ok in 1 s, 4 failed */
    atomic_store_explicit(&rp_shm_stats(h, 0, 0)->ok, 10, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 0)->ok, 20, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 0, 0)->lat_sum_us, 1000000, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 0)->lat_sum_us, 2000000, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 0, 0)->lat_count, 10, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 0)->lat_count, 20, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 0, 0)->hist[20], 30, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 1)->ok, 10, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 1)->failed, 4, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 1)->lat_sum_us, 1000000, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 1, 1)->lat_count, 10, memory_order_relaxed);
    atomic_store_explicit(&rp_shm_stats(h, 0, 0)->client_ok, 40, memory_order_relaxed);

    for (unsigned w = 0; w < 2; w++) {
        struct rp_shm_worker *wk = rp_shm_worker(h, w);
        atomic_store_explicit(&wk->pid, 1000 + w, memory_order_relaxed);
        atomic_store_explicit(&wk->state, RP_WORKER_RUNNING, memory_order_relaxed);
        atomic_store_explicit(&wk->requests, 7 * (w + 1), memory_order_relaxed);
    }
}

static const struct rp_control_ops g_ops = {
    .reload = fake_reload,
    .set_workers = fake_set_workers,
    .shutdown = fake_shutdown,
    .config = fake_config,
    .shm = fake_shm,
    .shm_size = RP_SHM_TOTAL_BYTES,
    .started_ms = 0,
};

static int suite_init(void)
{
    char err[RP_ERR_MAX];
    rp_log_set_level(RP_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    char name[64];
    snprintf(name, sizeof name, "/rp_test_control.%d", (int)getpid());
    if (rp_shm_create(&g_shm, name, "ctlpool", 0600, (gid_t)-1, 0, err, sizeof err) != 0) {
        fprintf(stderr, "rp_shm_create: %s\n", err);
        return -1;
    }
    fixture_fill();
    snprintf(g_dir, sizeof g_dir, "/tmp/rp_test_control.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_path, sizeof g_path, "%s/ctl.sock", g_dir);
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0 || rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) != 0) {
        fprintf(stderr, "rp_control_open: %s\n", err);
        return -1;
    }
    return 0;
}

static void suite_cleanup(void)
{
    rp_control_close();
    if (g_epfd >= 0)
        close(g_epfd);
    rp_shm_destroy(&g_shm, 1);
    rmdir(g_dir);
}

/* ------------------------------------------------------------------ */
/* JSON helpers                                                        */
/* ------------------------------------------------------------------ */

struct json {
    char *text;
    jsmntok_t t[4096];
    int n;
};

static struct json g_j;

/* Index after the subtree of token I. */
static int tok_skip(const struct json *j, int i)
{
    int n = j->t[i].size;
    i++;
    for (int k = 0; k < n; k++)
        i = tok_skip(j, i);
    return i;
}

/* The value token of member KEY of the object at token OBJ, or -1. */
static int member(const struct json *j, int obj, const char *key)
{
    if (obj < 0 || j->t[obj].type != JSMN_OBJECT)
        return -1;
    int i = obj + 1;
    for (int k = 0; k < j->t[obj].size; k++) {
        const jsmntok_t *kt = &j->t[i];
        if ((size_t)(kt->end - kt->start) == strlen(key) &&
            memcmp(j->text + kt->start, key, strlen(key)) == 0)
            return i + 1;
        i = tok_skip(j, i);
    }
    return -1;
}

/* Element IDX of the array at token ARR, or -1. */
static int element(const struct json *j, int arr, int idx)
{
    if (arr < 0 || j->t[arr].type != JSMN_ARRAY || idx >= j->t[arr].size)
        return -1;
    int i = arr + 1;
    for (int k = 0; k < idx; k++)
        i = tok_skip(j, i);
    return i;
}

static int tok_eq(const struct json *j, int i, const char *s)
{
    return i >= 0 && (size_t)(j->t[i].end - j->t[i].start) == strlen(s) &&
           memcmp(j->text + j->t[i].start, s, strlen(s)) == 0;
}

static double tok_num(const struct json *j, int i)
{
    if (i < 0 || j->t[i].type != JSMN_PRIMITIVE)
        return -12345.0;
    return strtod(j->text + j->t[i].start, NULL);
}

/* Run LINE through rp_control_execute and parse the answer into g_j (one
 * JSON object, no line break). Returns the root token (0). */
static int run(const char *line)
{
    free(g_j.text);
    g_j.text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(rp_control_execute(line, &g_j.text, &len) == 0);
    CU_ASSERT_FATAL(g_j.text != NULL);
    CU_ASSERT(strlen(g_j.text) == len);
    CU_ASSERT(strchr(g_j.text, '\n') == NULL);
    jsmn_parser p;
    jsmn_init(&p);
    g_j.n = jsmn_parse(&p, g_j.text, len, g_j.t, sizeof g_j.t / sizeof g_j.t[0]);
    if (g_j.n <= 0 || g_j.t[0].type != JSMN_OBJECT || g_j.t[0].end != (int)len)
        fprintf(stderr, "not one JSON object: %s\n", g_j.text);
    CU_ASSERT_FATAL(g_j.n > 0 && g_j.t[0].type == JSMN_OBJECT && g_j.t[0].end == (int)len);
    return 0;
}

static int ok_is(int want)
{
    return tok_eq(&g_j, member(&g_j, 0, "ok"), want ? "true" : "false");
}

/* ------------------------------------------------------------------ */
/* commands                                                            */
/* ------------------------------------------------------------------ */

static void test_ping_and_framing(void)
{
    run("ping");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true}");
    run("  ping \r");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true}");
    run("ping extra");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"ping takes no argument\"}");
    run("");
    CU_ASSERT(ok_is(0));
    run("frob");
    CU_ASSERT_STRING_EQUAL(g_j.text,
                           "{\"ok\":false,\"error\":\"unknown command: frob (try help)\"}");
    run("PING");
    CU_ASSERT(ok_is(0));
    run("fr\"ob x");
    CU_ASSERT_STRING_EQUAL(g_j.text,
                           "{\"ok\":false,\"error\":\"unknown command: fr\\\"ob (try help)\"}");
}

static void test_help_lists_the_table(void)
{
    run("help");
    CU_ASSERT(ok_is(1));
    int cmds = member(&g_j, 0, "commands");
    CU_ASSERT_FATAL(cmds >= 0 && g_j.t[cmds].type == JSMN_ARRAY);
    CU_ASSERT_EQUAL(g_j.t[cmds].size, 11);
    static const char *names[] = {"ping",  "status", "stats",   "metrics",  "drain", "enable",
                                  "reset", "reload", "workers", "shutdown", "help"};
    for (int k = 0; k < 11; k++) {
        int found = 0;
        for (int i = 0; i < g_j.t[cmds].size; i++) {
            int e = element(&g_j, cmds, i);
            if (tok_eq(&g_j, member(&g_j, e, "name"), names[k])) {
                found = 1;
                CU_ASSERT(member(&g_j, e, "help") >= 0);
                int args = member(&g_j, e, "args");
                int takes = k >= 4 && k <= 6 ? 1 : k == 8;
                CU_ASSERT(takes ? g_j.t[args].end > g_j.t[args].start
                                : g_j.t[args].end == g_j.t[args].start);
            }
        }
        CU_ASSERT(found);
    }
}

static void test_status(void)
{
    run("status");
    CU_ASSERT(ok_is(1));
    CU_ASSERT(tok_eq(&g_j, member(&g_j, 0, "name"), "ctlpool"));
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "pid")), (double)getpid());
    CU_ASSERT(tok_num(&g_j, member(&g_j, 0, "uptime_s")) >= 0);
    CU_ASSERT(member(&g_j, 0, "generation") >= 0);
    int eps = member(&g_j, 0, "endpoints");
    CU_ASSERT_FATAL(eps >= 0);
    CU_ASSERT_EQUAL(g_j.t[eps].size, 3); /* the tombstoned row is not shown */
    int beta = element(&g_j, eps, 1);
    CU_ASSERT(tok_eq(&g_j, member(&g_j, beta, "name"), "beta"));
    CU_ASSERT(tok_eq(&g_j, member(&g_j, beta, "breaker"), "open"));
    int wk = member(&g_j, 0, "workers");
    CU_ASSERT_FATAL(wk >= 0);
    CU_ASSERT_EQUAL(g_j.t[wk].size, 2);
    CU_ASSERT(tok_eq(&g_j, member(&g_j, element(&g_j, wk, 0), "state"), "running"));
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, element(&g_j, wk, 1), "requests")), 14);
}

static void test_stats(void)
{
    run("stats");
    CU_ASSERT(ok_is(1));
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "totalPools")), 3);
    /* beta's breaker is open */
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "healthyPools")), 2);
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "totalConnections")), 6);
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "activeConnections")), 2);
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "idleConnections")), 4);
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "failedRequests")), 4);
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "successfulRequests")), 40);
    /* (3 s + 1 s) / 40 samples = 100 ms: an average of samples, not of averages (which
     * would be 100 ms for alpha and 100 ms for beta as well, so make them differ) */
    CU_ASSERT_DOUBLE_EQUAL(tok_num(&g_j, member(&g_j, 0, "averageLatency")), 100.0, 1e-9);
    struct rp_shm_header *h = g_shm.hdr;
    atomic_store_explicit(&rp_shm_stats(h, 1, 1)->lat_sum_us, 5000000, memory_order_relaxed);
    run("stats");
    /* (3 s + 5 s) / 40 = 200 ms (the mean of per-endpoint means would be 300 ms) */
    CU_ASSERT_DOUBLE_EQUAL(tok_num(&g_j, member(&g_j, 0, "averageLatency")), 200.0, 1e-9);
    atomic_store_explicit(&rp_shm_stats(h, 1, 1)->lat_sum_us, 1000000, memory_order_relaxed);
}

static void test_metrics(void)
{
    run("metrics");
    CU_ASSERT(ok_is(1));
    int t = member(&g_j, 0, "text");
    CU_ASSERT_FATAL(t >= 0 && g_j.t[t].type == JSMN_STRING);
    /* JSON-escaped: line breaks and quotes arrive as \n and \" */
    char *s = strndup(g_j.text + g_j.t[t].start, (size_t)(g_j.t[t].end - g_j.t[t].start));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "# TYPE rpcpool_requests_total counter\\n"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(s, "rpcpool_requests_total{endpoint=\\\"alpha\\\",outcome=\\\"ok\\\"} 30\\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "rpcpool_breaker_state{endpoint=\\\"beta\\\"} 1\\n"));
    CU_ASSERT_PTR_NULL(strstr(s, "gone"));
    free(s);
}

static void test_drain_enable(void)
{
    struct rp_shm_endpoint *a = rp_shm_ep(g_shm.hdr, 0), *b = rp_shm_ep(g_shm.hdr, 1);
    run("drain alpha");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true,\"id\":0,\"name\":\"alpha\",\"drained\":true}");
    CU_ASSERT_EQUAL(atomic_load(&a->drained), 1);
    CU_ASSERT_EQUAL(atomic_load(&b->drained), 0);
    run("status");
    CU_ASSERT(tok_eq(&g_j, member(&g_j, element(&g_j, member(&g_j, 0, "endpoints"), 0), "state"),
                     "drained"));
    run("drain alpha"); /* idempotent */
    CU_ASSERT(ok_is(1));
    run("enable 0");
    CU_ASSERT(ok_is(1));
    CU_ASSERT_EQUAL(atomic_load(&a->drained), 0);
    run("drain 1");
    CU_ASSERT(tok_eq(&g_j, member(&g_j, 0, "name"), "beta"));
    CU_ASSERT_EQUAL(atomic_load(&b->drained), 1);
    run("enable beta");
    CU_ASSERT_EQUAL(atomic_load(&b->drained), 0);
    run("drain with space"); /* names may hold spaces */
    CU_ASSERT(ok_is(1));
    CU_ASSERT_EQUAL(atomic_load(&rp_shm_ep(g_shm.hdr, 3)->drained), 1);
    run("enable   with space  ");
    CU_ASSERT_EQUAL(atomic_load(&rp_shm_ep(g_shm.hdr, 3)->drained), 0);
}

static void test_bad_endpoints(void)
{
    run("drain nope");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"no such endpoint: nope\"}");
    run("drain gone"); /* tombstoned: by name */
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"no such endpoint: gone\"}");
    CU_ASSERT_EQUAL(atomic_load(&rp_shm_ep(g_shm.hdr, 2)->drained), 0);
    run("reset 2"); /* tombstoned: by id */
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"no such endpoint: 2\"}");
    run("enable 64");
    CU_ASSERT(ok_is(0));
    run("enable 99999999999999999999");
    CU_ASSERT(ok_is(0));
    run("drain");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"usage: drain EP\"}");
    run("reset ");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"usage: reset EP\"}");
}

static void test_reset(void)
{
    struct rp_shm_header *h = g_shm.hdr;
    struct rp_shm_endpoint *b = rp_shm_ep(h, 1);
    uint64_t now_ns = rp_shm_now_ns(h);
    struct rp_gcra_params gp = {.interval_ns = b->rl_interval_ns, .burst = b->rl_burst};
    /* empty the bucket and hold the endpoint back */
    for (int i = 0; i < 10; i++)
        rp_gcra_take(&b->gcra_tat_ns, &gp, 1, now_ns);
    CU_ASSERT(rp_gcra_tokens(atomic_load(&b->gcra_tat_ns), &gp, now_ns) < 1.0);
    atomic_store(&b->hold_until_ms, rp_shm_now_ms(h) + 600000);
    CU_ASSERT_EQUAL(rp_breaker_state_at(atomic_load(&b->breaker), rp_shm_now_ms(h)),
                    RP_BREAKER_OPEN);
    run("reset beta");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true,\"id\":1,\"name\":\"beta\"}");
    CU_ASSERT_EQUAL(rp_breaker_state_at(atomic_load(&b->breaker), rp_shm_now_ms(h)),
                    RP_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(rp_breaker_word_failures(atomic_load(&b->breaker)), 0);
    CU_ASSERT_DOUBLE_EQUAL(rp_gcra_tokens(atomic_load(&b->gcra_tat_ns), &gp, rp_shm_now_ns(h)),
                           10.0, 1e-9);
    CU_ASSERT_EQUAL(atomic_load(&b->hold_until_ms), 0);
    run("stats");
    CU_ASSERT_EQUAL(tok_num(&g_j, member(&g_j, 0, "healthyPools")), 3);
    /* open it again for the other tests */
    struct rp_breaker_params bp = {
        .failure_threshold = 1, .recovery_timeout_ms = 600000, .half_open_max = 1};
    struct rp_breaker_ticket allow = {RP_BREAKER_ALLOW,
                                      rp_breaker_word_period(atomic_load(&b->breaker))};
    rp_breaker_failure(&b->breaker, &bp, NULL, allow, rp_shm_now_ms(h));
}

static void test_reload(void)
{
    f_reload_rc = 0;
    f_reload_gen = 7;
    f_reload_calls = 0;
    run("reload");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true,\"generation\":7}");
    CU_ASSERT_EQUAL(f_reload_calls, 1);
    f_reload_rc = -1;
    run("reload");
    CU_ASSERT_STRING_EQUAL(g_j.text,
                           "{\"ok\":false,\"error\":\"/etc/rpcpool/x.conf:3: foo: unknown key\"}");
    CU_ASSERT_EQUAL(f_reload_calls, 2);
    run("reload now");
    CU_ASSERT(ok_is(0));
    CU_ASSERT_EQUAL(f_reload_calls, 2);
    f_reload_rc = 0;
}

static void test_workers(void)
{
    f_workers_calls = 0;
    f_workers_rc = 0;
    run("workers 3");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true,\"workers\":3}");
    CU_ASSERT_EQUAL(f_workers_n, 3);
    run("workers 64");
    CU_ASSERT(ok_is(1));
    CU_ASSERT_EQUAL(f_workers_n, 64);
    static const char *bad[] = {"workers 0",   "workers 65",  "workers abc", "workers -1",
                                "workers 3 4", "workers 1e1", "workers",     "workers 0003x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run(bad[i]);
        CU_ASSERT(ok_is(0));
    }
    CU_ASSERT_EQUAL(f_workers_calls, 2);
    f_workers_rc = -1;
    run("workers 2");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":false,\"error\":\"cannot fork\"}");
    f_workers_rc = 0;
}

static void test_shutdown(void)
{
    f_shutdown_calls = 0;
    run("shutdown");
    CU_ASSERT_STRING_EQUAL(g_j.text, "{\"ok\":true}");
    CU_ASSERT_EQUAL(f_shutdown_calls, 1);
    run("shutdown now");
    CU_ASSERT(ok_is(0));
    CU_ASSERT_EQUAL(f_shutdown_calls, 1);
}

/* ------------------------------------------------------------------ */
/* the socket                                                          */
/* ------------------------------------------------------------------ */

/* Serve the control socket's events for up to MS milliseconds. */
static void pump(int ms)
{
    struct epoll_event evs[16];
    int n = epoll_wait(g_epfd, evs, 16, ms);
    for (int i = 0; i < n; i++) {
        struct rp_ev *e = evs[i].data.ptr;
        CU_ASSERT(e->handler == rp_control_event);
        rp_control_event(e, evs[i].events);
    }
}

static int connect_ctl(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Read from FD, pumping the server, until NLINES line feeds arrived or the
 * server closed (then *EOF = 1), at most 5 s. Returns a malloc'd string. */
static char *read_lines(int fd, int nlines, int *eof)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    *eof = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int have = 0;
        for (size_t i = 0; i < len; i++)
            have += buf[i] == '\n';
        if (have >= nlines && nlines > 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > 5000)
            break;
        pump(10);
        for (;;) {
            if (cap - len < 4096) {
                cap *= 2;
                buf = realloc(buf, cap);
            }
            ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
            if (n > 0) {
                len += (size_t)n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                *eof = 1;
            break;
        }
        if (*eof)
            break;
    }
    buf[len] = '\0';
    return buf;
}

static void test_socket_mode_and_pipelining(void)
{
    struct stat st;
    CU_ASSERT_FATAL(lstat(g_path, &st) == 0);
    CU_ASSERT(S_ISSOCK(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    int fd = connect_ctl();
    CU_ASSERT_FATAL(fd >= 0);
    const char *req = "ping\r\nfrob\nstats\nhelp\n";
    CU_ASSERT(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req));
    int eof;
    char *out = read_lines(fd, 4, &eof);
    CU_ASSERT(!eof);
    CU_ASSERT(strncmp(out, "{\"ok\":true}\n{\"ok\":false,\"error\":\"unknown command: frob", 52) ==
              0);
    char *third = strchr(strchr(out, '\n') + 1, '\n') + 1;
    CU_ASSERT(strncmp(third, "{\"ok\":true,\"totalPools\":3,", 26) == 0);
    free(out);
    /* a command split over two writes, then the peer's EOF after an unterminated line */
    CU_ASSERT(send(fd, "pi", 2, 0) == 2);
    pump(20);
    CU_ASSERT(send(fd, "ng\nping", 7, 0) == 7);
    shutdown(fd, SHUT_WR);
    out = read_lines(fd, 0, &eof);
    CU_ASSERT(eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":true}\n{\"ok\":true}\n");
    free(out);
    close(fd);
}

static void test_socket_long_line_and_nul(void)
{
    int fd = connect_ctl();
    CU_ASSERT_FATAL(fd >= 0);
    /* exactly RP_CONTROL_MAX_LINE bytes is still a line */
    char *line = malloc(RP_CONTROL_MAX_LINE + 2);
    memset(line, 'x', RP_CONTROL_MAX_LINE);
    line[RP_CONTROL_MAX_LINE] = '\n';
    CU_ASSERT(send(fd, line, RP_CONTROL_MAX_LINE + 1, 0) == RP_CONTROL_MAX_LINE + 1);
    int eof;
    char *out = read_lines(fd, 1, &eof);
    CU_ASSERT(!eof);
    CU_ASSERT(strstr(out, "unknown command: xxx") != NULL);
    free(out);
    CU_ASSERT(send(fd, "pi\0ng\n", 6, 0) == 6);
    out = read_lines(fd, 1, &eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":false,\"error\":\"invalid command: NUL byte\"}\n");
    free(out);
    /* one byte more without a line feed: an error, then the server closes */
    memset(line, 'y', RP_CONTROL_MAX_LINE + 1);
    CU_ASSERT(send(fd, line, RP_CONTROL_MAX_LINE + 1, 0) == RP_CONTROL_MAX_LINE + 1);
    out = read_lines(fd, 0, &eof);
    CU_ASSERT(eof);
    CU_ASSERT_STRING_EQUAL(out,
                           "{\"ok\":false,\"error\":\"command line too long (max 4096 bytes)\"}\n");
    free(out);
    free(line);
    close(fd);
}

static void test_socket_client_bound(void)
{
    int fds[RP_CONTROL_MAX_CLIENTS];
    for (int i = 0; i < RP_CONTROL_MAX_CLIENTS; i++) {
        fds[i] = connect_ctl();
        CU_ASSERT_FATAL(fds[i] >= 0);
    }
    pump(20);
    pump(20);
    int extra = connect_ctl();
    CU_ASSERT_FATAL(extra >= 0);
    CU_ASSERT(send(extra, "ping\n", 5, 0) == 5);
    int eof;
    char *out = read_lines(extra, 0, &eof);
    CU_ASSERT(eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":false,\"error\":\"too many control clients\"}\n");
    free(out);
    close(extra);
    /* the admitted ones still work; once one leaves, a new client is admitted */
    CU_ASSERT(send(fds[5], "ping\n", 5, 0) == 5);
    out = read_lines(fds[5], 1, &eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":true}\n");
    free(out);
    close(fds[0]);
    pump(20);
    extra = connect_ctl();
    CU_ASSERT(send(extra, "ping\n", 5, 0) == 5);
    out = read_lines(extra, 1, &eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":true}\n");
    free(out);
    close(extra);
    for (int i = 1; i < RP_CONTROL_MAX_CLIENTS; i++)
        close(fds[i]);
    for (int i = 0; i < 5; i++)
        pump(10);
}

/* A peer with another uid is answered "permission denied" and closed (only
 * testable as root: the child drops to nobody; the socket is opened up with
 * chmod so that connect() itself succeeds and SO_PEERCRED decides). */
static void test_socket_peercred(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "(peercred test skipped: not root)\n");
        return;
    }
    CU_ASSERT_FATAL(chmod(g_dir, 0755) == 0);
    CU_ASSERT_FATAL(chmod(g_path, 0666) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g_path);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
            _exit(11);
        ssize_t w = send(fd, "ping\n", 5, MSG_NOSIGNAL);
        (void)w;
        char buf[256];
        size_t len = 0;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        while (len + 1 < sizeof buf && poll(&pf, 1, 5000) == 1) {
            ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        buf[len] = '\0';
        _exit(strcmp(buf, "{\"ok\":false,\"error\":\"permission denied\"}\n") == 0 ? 0 : 12);
    }
    int status = -1;
    for (int i = 0; i < 500; i++) {
        pump(10);
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
    }
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    chmod(g_path, 0600);
    chmod(g_dir, 0700);
    /* root (the owner here) is still served */
    int fd = connect_ctl();
    CU_ASSERT(send(fd, "ping\n", 5, 0) == 5);
    int eof;
    char *out = read_lines(fd, 1, &eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":true}\n");
    free(out);
    close(fd);
}

static int g_shutdown_fd = -1;
static int g_shutdown_saw_answer = -1;

/* The shutdown op checks that the answer was already written when it runs. */
static void shutdown_checks_answer(void)
{
    char buf[64] = "";
    ssize_t n = recv(g_shutdown_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    g_shutdown_saw_answer = n > 0 && strncmp(buf, "{\"ok\":true}\n", 12) == 0;
}

static void test_socket_shutdown_answers_first(void)
{
    /* reopen with an op that looks at the client's socket */
    rp_control_close();
    struct rp_control_ops ops = g_ops;
    ops.shutdown = shutdown_checks_answer;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(rp_control_open(g_path, g_epfd, &ops, err, sizeof err) == 0);
    g_shutdown_fd = connect_ctl();
    CU_ASSERT_FATAL(g_shutdown_fd >= 0);
    CU_ASSERT(send(g_shutdown_fd, "shutdown\n", 9, 0) == 9);
    for (int i = 0; i < 20 && g_shutdown_saw_answer < 0; i++)
        pump(10);
    CU_ASSERT_EQUAL(g_shutdown_saw_answer, 1);
    close(g_shutdown_fd);
    pump(10);
    rp_control_close();
    CU_ASSERT_FATAL(rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) == 0);
}

static void test_open_close_paths(void)
{
    char err[RP_ERR_MAX];
    /* a second open while open is refused */
    CU_ASSERT(rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) != 0);
    /* close unlinks; a stale socket file is replaced */
    rp_control_close();
    struct stat st;
    CU_ASSERT(lstat(g_path, &st) != 0 && errno == ENOENT);
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g_path);
    CU_ASSERT_FATAL(bind(stale, (struct sockaddr *)&sa, sizeof sa) == 0);
    close(stale); /* bound, never listening, owner gone: stale */
    CU_ASSERT_FATAL(rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) == 0);
    CU_ASSERT(lstat(g_path, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* a live server on the path is refused, and its socket left alone */
    rp_control_close();
    int live = socket(AF_UNIX, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(bind(live, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(live, 4) == 0);
    CU_ASSERT(rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "live server") != NULL);
    CU_ASSERT(lstat(g_path, &st) == 0);
    close(live);
    unlink(g_path);
    CU_ASSERT_FATAL(rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) == 0);
    /* a forked child closing its copy leaves the socket to the parent */
    pid_t pid = fork();
    if (pid == 0) {
        rp_control_close();
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    CU_ASSERT(lstat(g_path, &st) == 0);
    int fd = connect_ctl();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(send(fd, "ping\n", 5, 0) == 5);
    int eof;
    char *out = read_lines(fd, 1, &eof);
    CU_ASSERT_STRING_EQUAL(out, "{\"ok\":true}\n");
    free(out);
    close(fd);
}

static void test_no_ops(void)
{
    /* with the module closed, commands that need the supervisor fail cleanly and help works */
    rp_control_close();
    run("help");
    CU_ASSERT(ok_is(1));
    run("status");
    CU_ASSERT(ok_is(0));
    run("reload");
    CU_ASSERT(ok_is(0));
    run("drain alpha");
    CU_ASSERT(ok_is(0));
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(rp_control_open(g_path, g_epfd, &g_ops, err, sizeof err) == 0);
}

int main(void)
{
    if (suite_init() != 0) {
        printf("RESULT suite=control passed=0 failed=1\n");
        return 1;
    }
    static const struct rp_test_case cases[] = {
        {"ping and framing", test_ping_and_framing},
        {"help lists the table", test_help_lists_the_table},
        {"status", test_status},
        {"stats", test_stats},
        {"metrics", test_metrics},
        {"drain and enable", test_drain_enable},
        {"unknown endpoints and missing arguments", test_bad_endpoints},
        {"reset", test_reset},
        {"reload", test_reload},
        {"workers", test_workers},
        {"shutdown", test_shutdown},
        {"socket: mode and pipelining", test_socket_mode_and_pipelining},
        {"socket: long line and NUL", test_socket_long_line_and_nul},
        {"socket: client bound", test_socket_client_bound},
        {"socket: SO_PEERCRED", test_socket_peercred},
        {"socket: shutdown answers first", test_socket_shutdown_answers_first},
        {"socket: open and close", test_open_close_paths},
        {"no ops", test_no_ops},
        {NULL, NULL},
    };
    int rc = rp_test_run("control", cases);
    free(g_j.text);
    suite_cleanup();
    return rc;
}
