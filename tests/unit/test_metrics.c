/* test_metrics.c - the Prometheus text renderer (rp_metrics.h).
 *
 * Every test renders a snapshot built by hand (no shm, no clock), then
 * parses the text with a strict line parser written here: # HELP and # TYPE
 * precede the samples of their family, families are contiguous, label
 * values are properly quoted and escaped, values parse as floats, no series
 * repeats, and every histogram has cumulative buckets ending with +Inf equal
 * to its _count. Known values are then looked up series by series.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp_breaker.h"
#include "rp_buf.h"
#include "rp_metrics.h"
#include "rp_shm_view.h"
#include "rp_test.h"

/* ------------------------------------------------------------------ */
/* a strict parser of the text format                                  */
/* ------------------------------------------------------------------ */

#define MAX_SAMPLES  8192
#define MAX_FAMILIES 64
#define MAX_LABELS   4

struct sample {
    char name[96];
    int nlabels;
    char lname[MAX_LABELS][32];
    char lval[MAX_LABELS][128];
    double value;
    int family; /* index into families */
};

struct familyinfo {
    char name[96];
    char type[16];
    int has_help, has_type, has_samples, closed;
};

struct parsed {
    struct sample *s;
    int n;
    struct familyinfo f[MAX_FAMILIES];
    int nf;
    char error[1536];
};

static int is_name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int family_find(struct parsed *p, const char *name)
{
    for (int i = 0; i < p->nf; i++)
        if (strcmp(p->f[i].name, name) == 0)
            return i;
    return -1;
}

static int family_get(struct parsed *p, const char *name)
{
    int i = family_find(p, name);
    if (i >= 0 || p->nf >= MAX_FAMILIES)
        return i;
    snprintf(p->f[p->nf].name, sizeof p->f[p->nf].name, "%s", name);
    return p->nf++;
}

/* The family a sample name belongs to: histogram samples carry a suffix. */
static int family_of_sample(struct parsed *p, const char *name)
{
    int i = family_find(p, name);
    if (i >= 0)
        return i;
    static const char *suffixes[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(name), sl = strlen(suffixes[k]);
        if (n > sl && strcmp(name + n - sl, suffixes[k]) == 0) {
            char base[96];
            snprintf(base, sizeof base, "%.*s", (int)(n - sl), name);
            i = family_find(p, base);
            if (i >= 0 && strcmp(p->f[i].type, "histogram") == 0)
                return i;
        }
    }
    return -1;
}

#define PFAIL(...)                                                                                 \
    do {                                                                                           \
        snprintf(p->error, sizeof p->error, __VA_ARGS__);                                          \
        return -1;                                                                                 \
    } while (0)

/* Parse one sample line L into S. */
static int parse_sample(struct parsed *p, const char *l, struct sample *s)
{
    size_t i = 0, k = 0;
    memset(s, 0, sizeof *s);
    if (!is_name_char(l[0], 1, 1))
        PFAIL("bad metric name: %s", l);
    while (is_name_char(l[i], 0, 1) && k + 1 < sizeof s->name)
        s->name[k++] = l[i++];
    if (l[i] == '{') {
        i++;
        while (l[i] != '}') {
            if (s->nlabels >= MAX_LABELS)
                PFAIL("too many labels: %s", l);
            char *ln = s->lname[s->nlabels], *lv = s->lval[s->nlabels];
            k = 0;
            if (!is_name_char(l[i], 1, 0))
                PFAIL("bad label name: %s", l);
            while (is_name_char(l[i], 0, 0) && k + 1 < 32)
                ln[k++] = l[i++];
            if (l[i++] != '=' || l[i++] != '"')
                PFAIL("label without =\": %s", l);
            k = 0;
            while (l[i] != '"') {
                if (!l[i] || l[i] == '\n')
                    PFAIL("unterminated label value: %s", l);
                char c = l[i++];
                if (c == '\\') {
                    c = l[i++];
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        PFAIL("bad escape in label value: %s", l);
                }
                if (k + 1 < 128)
                    lv[k++] = c;
            }
            i++;
            for (int j = 0; j < s->nlabels; j++)
                if (strcmp(s->lname[j], ln) == 0)
                    PFAIL("duplicate label %s: %s", ln, l);
            s->nlabels++;
            if (l[i] == ',')
                i++;
            else if (l[i] != '}')
                PFAIL("expected , or }: %s", l);
        }
        i++;
    }
    if (l[i++] != ' ')
        PFAIL("expected one space before the value: %s", l);
    const char *v = l + i;
    if (strcmp(v, "+Inf") == 0)
        s->value = INFINITY;
    else if (strcmp(v, "-Inf") == 0)
        s->value = -INFINITY;
    else if (strcmp(v, "NaN") == 0)
        s->value = NAN;
    else {
        char *end;
        s->value = strtod(v, &end);
        if (end == v || *end)
            PFAIL("bad value (or trailing text): %s", l);
    }
    return 0;
}

static int same_labels_except_le(const struct sample *a, const struct sample *b)
{
    int na = 0, nb = 0;
    for (int i = 0; i < a->nlabels; i++)
        if (strcmp(a->lname[i], "le") != 0)
            na++;
    for (int i = 0; i < b->nlabels; i++)
        if (strcmp(b->lname[i], "le") != 0)
            nb++;
    if (na != nb)
        return 0;
    for (int i = 0; i < a->nlabels; i++) {
        if (strcmp(a->lname[i], "le") == 0)
            continue;
        int found = 0;
        for (int j = 0; j < b->nlabels; j++)
            if (strcmp(a->lname[i], b->lname[j]) == 0 && strcmp(a->lval[i], b->lval[j]) == 0)
                found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

static const char *label(const struct sample *s, const char *name)
{
    for (int i = 0; i < s->nlabels; i++)
        if (strcmp(s->lname[i], name) == 0)
            return s->lval[i];
    return NULL;
}

/* Check every histogram family: per label set, buckets with increasing le,
 * cumulative counts, a last bucket le="+Inf" equal to _count, and a _sum. */
static int check_histograms(struct parsed *p)
{
    for (int f = 0; f < p->nf; f++) {
        if (strcmp(p->f[f].type, "histogram") != 0)
            continue;
        char bname[128], cname[128], sname[128];
        snprintf(bname, sizeof bname, "%s_bucket", p->f[f].name);
        snprintf(cname, sizeof cname, "%s_count", p->f[f].name);
        snprintf(sname, sizeof sname, "%s_sum", p->f[f].name);
        for (int i = 0; i < p->n; i++) {
            const struct sample *c = &p->s[i];
            if (strcmp(c->name, cname) != 0)
                continue;
            double prev_le = -INFINITY, prev_v = 0, last_le = 0, last_v = -1;
            int buckets = 0, sums = 0;
            for (int j = 0; j < p->n; j++) {
                const struct sample *b = &p->s[j];
                if (strcmp(b->name, sname) == 0 && same_labels_except_le(b, c))
                    sums++;
                if (strcmp(b->name, bname) != 0 || !same_labels_except_le(b, c))
                    continue;
                const char *le = label(b, "le");
                if (!le)
                    PFAIL("bucket without le");
                double lev = strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL);
                if (!(lev > prev_le))
                    PFAIL("le not increasing at %s", le);
                if (b->value < prev_v)
                    PFAIL("buckets not cumulative at le=%s", le);
                prev_le = lev;
                prev_v = b->value;
                last_le = lev;
                last_v = b->value;
                buckets++;
            }
            if (buckets < 2)
                PFAIL("histogram %s has %d buckets", p->f[f].name, buckets);
            if (!isinf(last_le))
                PFAIL("last bucket of %s is not +Inf", p->f[f].name);
            if (last_v != c->value)
                PFAIL("+Inf bucket %g != _count %g", last_v, c->value);
            if (sums != 1)
                PFAIL("histogram %s has %d _sum series for one _count", p->f[f].name, sums);
        }
    }
    return 0;
}

/* Parse TEXT into P (P->s allocated). Returns 0, or -1 with P->error. */
static int parse_text(const char *text, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    p->s = calloc(MAX_SAMPLES, sizeof *p->s);
    int cur = -1; /* family of the previous line */
    const char *line = text;
    if (!*text)
        PFAIL("empty text");
    while (*line) {
        const char *nl = strchr(line, '\n');
        if (!nl)
            PFAIL("last line has no line feed");
        char l[1024];
        size_t len = (size_t)(nl - line);
        if (len >= sizeof l)
            PFAIL("line too long");
        memcpy(l, line, len);
        l[len] = '\0';
        line = nl + 1;
        if (len == 0)
            continue;
        if (strncmp(l, "# HELP ", 7) == 0 || strncmp(l, "# TYPE ", 7) == 0) {
            int help = l[2] == 'H';
            char name[96];
            const char *rest = l + 7;
            size_t n = 0;
            while (is_name_char(rest[n], n == 0, 1) && n + 1 < sizeof name) {
                name[n] = rest[n];
                n++;
            }
            name[n] = '\0';
            if (n == 0 || rest[n] != ' ' || !rest[n + 1])
                PFAIL("bad comment line: %s", l);
            int f = family_get(p, name);
            if (f < 0)
                PFAIL("too many families");
            if (p->f[f].has_samples)
                PFAIL("%s after samples of %s", help ? "HELP" : "TYPE", name);
            if (help) {
                if (p->f[f].has_help++)
                    PFAIL("second HELP for %s", name);
            } else {
                if (p->f[f].has_type++)
                    PFAIL("second TYPE for %s", name);
                const char *t = rest + n + 1;
                if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                    strcmp(t, "summary") && strcmp(t, "untyped"))
                    PFAIL("bad type %s", t);
                snprintf(p->f[f].type, sizeof p->f[f].type, "%s", t);
            }
            if (cur >= 0 && cur != f)
                p->f[cur].closed = 1;
            cur = f;
            continue;
        }
        if (l[0] == '#')
            continue;
        if (p->n >= MAX_SAMPLES)
            PFAIL("too many samples");
        struct sample *s = &p->s[p->n];
        if (parse_sample(p, l, s) != 0)
            return -1;
        int f = family_of_sample(p, s->name);
        if (f < 0)
            PFAIL("sample %s without HELP/TYPE before it", s->name);
        if (!p->f[f].has_help || !p->f[f].has_type)
            PFAIL("family %s lacks HELP or TYPE", p->f[f].name);
        if (p->f[f].closed)
            PFAIL("samples of %s are not contiguous", p->f[f].name);
        if (cur >= 0 && cur != f)
            p->f[cur].closed = 1;
        cur = f;
        p->f[f].has_samples = 1;
        s->family = f;
        if (!strcmp(p->f[f].type, "counter") && !(s->value >= 0))
            PFAIL("negative counter %s", l);
        if (label(s, "le") && strcmp(p->f[f].type, "histogram") != 0)
            PFAIL("le label outside a histogram: %s", l);
        for (int j = 0; j < p->n; j++) {
            const struct sample *o = &p->s[j];
            if (strcmp(o->name, s->name) == 0 && o->nlabels == s->nlabels &&
                same_labels_except_le(o, s)) {
                const char *a = label(o, "le"), *b = label(s, "le");
                if ((!a && !b) || (a && b && strcmp(a, b) == 0))
                    PFAIL("duplicate series: %s", l);
            }
        }
        p->n++;
    }
    return check_histograms(p);
}

/* The value of series NAME with labels K1=V1 (and K2=V2 when K2), or NAN. */
static double value_of(const struct parsed *p, const char *name, const char *k1, const char *v1,
                       const char *k2, const char *v2)
{
    for (int i = 0; i < p->n; i++) {
        const struct sample *s = &p->s[i];
        if (strcmp(s->name, name) != 0)
            continue;
        if (k1 && (!label(s, k1) || strcmp(label(s, k1), v1) != 0))
            continue;
        if (k2 && (!label(s, k2) || strcmp(label(s, k2), v2) != 0))
            continue;
        return s->value;
    }
    return NAN;
}

/* ------------------------------------------------------------------ */
/* snapshots                                                           */
/* ------------------------------------------------------------------ */

static struct rp_snapshot snap;

/* Two endpoints with known counters and latencies, three workers. */
static void snap_fill(void)
{
    memset(&snap, 0, sizeof snap);
    snprintf(snap.name, sizeof snap.name, "pool");
    snap.generation = 4;
    snap.client_ok = 1000;
    snap.client_error = 3;
    snap.ep_count = 2;
    struct rp_ep_snapshot *a = &snap.eps[0], *b = &snap.eps[1];
    a->id = 0;
    snprintf(a->name, sizeof a->name, "alpha");
    snprintf(a->url, sizeof a->url, "https://alpha.example/***");
    a->state = RP_EP_UP;
    a->breaker = RP_BREAKER_CLOSED;
    a->tokens = 9.5;
    a->inflight = 2;
    a->conns_active = 2;
    a->conns_idle = 3;
    a->ok = 600;
    a->failed = 4;
    a->retried = 3;
    /* 600 samples: 100 in bucket 0, 300 in bucket 10, 200 in the last */
    a->hist[0] = 100;
    a->hist[10] = 300;
    a->hist[RP_LAT_BUCKETS - 1] = 200;
    a->lat_count = 600;
    a->lat_sum_us = 1234567;
    a->head_block = 21000000;
    b->id = 3;
    snprintf(b->name, sizeof b->name, "beta");
    snprintf(b->url, sizeof b->url, "http://127.0.0.1:8545");
    b->state = RP_EP_DRAINED;
    b->breaker = RP_BREAKER_OPEN;
    b->tokens = 0.25;
    b->ok = 5;
    b->failed = 9;
    b->hist[3] = 5;
    b->lat_count = 5;
    b->lat_sum_us = 5000;
    b->head_block = 20999990;
    b->lag = 10;
    snap.worker_count = 4;
    snap.workers[0] = (struct rp_worker_snapshot){
        .slot = 0, .pid = 10, .state = RP_WORKER_RUNNING, .kind = RP_KIND_WORKER, .restarts = 2};
    snap.workers[1] = (struct rp_worker_snapshot){
        .slot = 1, .pid = 11, .state = RP_WORKER_RUNNING, .kind = RP_KIND_WORKER};
    snap.workers[2] = (struct rp_worker_snapshot){
        .slot = 2, .pid = 12, .state = RP_WORKER_DRAINING, .kind = RP_KIND_WORKER, .restarts = 1};
    snap.workers[3] = (struct rp_worker_snapshot){
        .slot = 5, .pid = 13, .state = RP_WORKER_RUNNING, .kind = RP_KIND_PROBER, .restarts = 4};
}

/* Render SNAP and parse it into P; fails the test on any format error. */
static char *render_parse(struct parsed *p)
{
    struct rp_buf b = RP_BUF_INIT;
    CU_ASSERT_FATAL(rp_metrics_render(&b, &snap) == 0);
    char *text = rp_buf_detach(&b, NULL);
    CU_ASSERT_FATAL(text != NULL);
    int rc = parse_text(text, p);
    if (rc != 0)
        fprintf(stderr, "format error: %s\n", p->error);
    CU_ASSERT_FATAL(rc == 0);
    return text;
}

static void test_structure_and_required_families(void)
{
    snap_fill();
    struct parsed p;
    char *text = render_parse(&p);
    static const char *families[][2] = {
        {"rpcpool_requests_total", "counter"},
        {"rpcpool_client_requests_total", "counter"},
        {"rpcpool_request_duration_seconds", "histogram"},
        {"rpcpool_endpoint_up", "gauge"},
        {"rpcpool_breaker_state", "gauge"},
        {"rpcpool_ratelimit_tokens", "gauge"},
        {"rpcpool_upstream_connections", "gauge"},
        {"rpcpool_endpoint_inflight", "gauge"},
        {"rpcpool_endpoint_head_block", "gauge"},
        {"rpcpool_worker_restarts_total", "counter"},
        {"rpcpool_workers", "gauge"},
        {"rpcpool_generation", "gauge"},
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        int f = family_find(&p, families[i][0]);
        CU_ASSERT(f >= 0);
        if (f < 0) {
            fprintf(stderr, "missing family %s\n", families[i][0]);
            continue;
        }
        CU_ASSERT_STRING_EQUAL(p.f[f].type, families[i][1]);
        CU_ASSERT(p.f[f].has_samples);
    }
    /* every declared family has samples */
    for (int f = 0; f < p.nf; f++)
        CU_ASSERT(p.f[f].has_samples);
    /* the text ends with exactly one line feed */
    size_t len = strlen(text);
    CU_ASSERT(len > 2 && text[len - 1] == '\n' && text[len - 2] != '\n');
    free(text);
    free(p.s);
}

static void test_values(void)
{
    snap_fill();
    struct parsed p;
    char *text = render_parse(&p);
    const char *R = "rpcpool_requests_total";
    CU_ASSERT_EQUAL(value_of(&p, R, "endpoint", "alpha", "outcome", "ok"), 600);
    CU_ASSERT_EQUAL(value_of(&p, R, "endpoint", "alpha", "outcome", "failed"), 4);
    CU_ASSERT_EQUAL(value_of(&p, R, "endpoint", "alpha", "outcome", "retried"), 3);
    CU_ASSERT_EQUAL(value_of(&p, R, "endpoint", "beta", "outcome", "failed"), 9);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_client_requests_total", "result", "ok", NULL, NULL),
                    1000);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_client_requests_total", "result", "error", NULL, NULL),
                    3);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_up", "endpoint", "alpha", NULL, NULL), 1);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_up", "endpoint", "beta", NULL, NULL), 0);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_breaker_state", "endpoint", "alpha", NULL, NULL), 0);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_breaker_state", "endpoint", "beta", NULL, NULL), 1);
    CU_ASSERT_DOUBLE_EQUAL(
        value_of(&p, "rpcpool_ratelimit_tokens", "endpoint", "alpha", NULL, NULL), 9.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(value_of(&p, "rpcpool_ratelimit_tokens", "endpoint", "beta", NULL, NULL),
                           0.25, 1e-12);
    CU_ASSERT_EQUAL(
        value_of(&p, "rpcpool_upstream_connections", "endpoint", "alpha", "state", "active"), 2);
    CU_ASSERT_EQUAL(
        value_of(&p, "rpcpool_upstream_connections", "endpoint", "alpha", "state", "idle"), 3);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_inflight", "endpoint", "alpha", NULL, NULL), 2);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_head_block", "endpoint", "alpha", NULL, NULL),
                    21000000);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_lag_blocks", "endpoint", "beta", NULL, NULL),
                    10);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_worker_restarts_total", NULL, NULL, NULL, NULL), 7);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_workers", "state", "running", NULL, NULL), 2);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_workers", "state", "draining", NULL, NULL), 1);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_workers", "state", "dead", NULL, NULL), 0);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_generation", NULL, NULL, NULL, NULL), 4);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_info", "endpoint", "alpha", "url",
                             "https://alpha.example/***"),
                    1);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_info", "endpoint", "beta", "id", "3"), 1);
    free(text);
    free(p.s);
}

static void test_histogram(void)
{
    snap_fill();
    struct parsed p;
    char *text = render_parse(&p);
    const char *B = "rpcpool_request_duration_seconds_bucket";
    /* alpha: 100 below 50 us, 300 more in bucket 10 (upper 50us * 2^5 = 1.6 ms), the last
     * 200 only in +Inf */
    CU_ASSERT_EQUAL(value_of(&p, B, "endpoint", "alpha", "le", "5e-05"), 100);
    CU_ASSERT_EQUAL(value_of(&p, B, "endpoint", "alpha", "le", "0.0016"), 400);
    CU_ASSERT_EQUAL(value_of(&p, B, "endpoint", "alpha", "le", "+Inf"), 600);
    CU_ASSERT_EQUAL(
        value_of(&p, "rpcpool_request_duration_seconds_count", "endpoint", "alpha", NULL, NULL),
        600);
    CU_ASSERT_DOUBLE_EQUAL(
        value_of(&p, "rpcpool_request_duration_seconds_sum", "endpoint", "alpha", NULL, NULL),
        1.234567, 1e-9);
    CU_ASSERT_EQUAL(value_of(&p, B, "endpoint", "beta", "le", "+Inf"), 5);
    /* RP_LAT_BUCKETS - 1 finite buckets plus +Inf per endpoint */
    int alpha_buckets = 0;
    for (int i = 0; i < p.n; i++)
        if (strcmp(p.s[i].name, B) == 0 && strcmp(label(&p.s[i], "endpoint"), "alpha") == 0)
            alpha_buckets++;
    CU_ASSERT_EQUAL(alpha_buckets, RP_LAT_BUCKETS);
    /* +Inf equals _count even when the snapshot's lat_count raced ahead of the buckets */
    snap.eps[0].lat_count = 650;
    free(text);
    free(p.s);
    text = render_parse(&p);
    CU_ASSERT_EQUAL(
        value_of(&p, "rpcpool_request_duration_seconds_count", "endpoint", "alpha", NULL, NULL),
        600);
    free(text);
    free(p.s);
}

static void test_label_escaping(void)
{
    snap_fill();
    /* quote, backslash, line feed, an invalid UTF-8 byte, valid UTF-8 */
    snprintf(snap.eps[0].name, sizeof snap.eps[0].name, "a\"b\\c\nd\xff\xc3\xa9");
    struct parsed p;
    char *text = render_parse(&p);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "endpoint=\"a\\\"b\\\\c\\nd?\xc3\xa9\""));
    CU_ASSERT_EQUAL(
        value_of(&p, "rpcpool_endpoint_inflight", "endpoint", "a\"b\\c\nd?\xc3\xa9", NULL, NULL),
        2);
    free(text);
    free(p.s);
}

static void test_duplicate_and_empty_names(void)
{
    snap_fill();
    snap.ep_count = 3;
    snap.eps[2] = snap.eps[0]; /* same name "alpha" as row 0 */
    snap.eps[2].id = 7;
    snap.eps[1].name[0] = '\0'; /* beta loses its name */
    struct parsed p;
    char *text = render_parse(&p); /* no duplicate series */
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_info", "endpoint", "alpha#7", "id", "7"), 1);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_endpoint_info", "endpoint", "3", "id", "3"), 1);
    free(text);
    free(p.s);
}

static void test_empty_pool_and_special_floats(void)
{
    snap_fill();
    snap.ep_count = 0;
    snap.worker_count = 0;
    struct parsed p;
    char *text = render_parse(&p);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_generation", NULL, NULL, NULL, NULL), 4);
    CU_ASSERT_EQUAL(value_of(&p, "rpcpool_workers", "state", "running", NULL, NULL), 0);
    free(text);
    free(p.s);

    snap_fill();
    snap.eps[0].tokens = NAN;
    snap.eps[1].tokens = INFINITY;
    text = render_parse(&p);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rpcpool_ratelimit_tokens{endpoint=\"alpha\"} NaN\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rpcpool_ratelimit_tokens{endpoint=\"beta\"} +Inf\n"));
    free(text);
    free(p.s);
}

/* The checker itself must reject broken text, or the tests above prove nothing. */
static void test_checker_rejects(void)
{
    static const char *bad[] = {
        "x 1\n",                                         /* no HELP/TYPE */
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP x h\n", /* HELP after samples */
        "# HELP x h\n# TYPE x gauge\nx{a=\"1} 1\n",      /* unterminated value */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\t\"} 1\n",  /* bad escape */
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",        /* duplicate series */
        "# HELP x h\n# TYPE x counter\nx -1\n",          /* negative counter */
        "# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
        "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n", /* not cumulative */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1\nh_count 3\n", /* +Inf != count */
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\n"
        "h_sum 1\nh_count 2\n",                  /* no +Inf */
        "# HELP x h\n# TYPE x gauge\nx 1",       /* no final line feed */
        "# HELP x h\n# TYPE x gauge\nx 1 2 3\n", /* trailing text */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct parsed p;
        int rc = parse_text(bad[i], &p);
        if (rc == 0)
            fprintf(stderr, "checker accepted bad text #%zu\n", i);
        CU_ASSERT(rc != 0);
        free(p.s);
    }
    struct parsed p;
    CU_ASSERT(parse_text("# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                         "h_bucket{le=\"+Inf\"} 2\nh_sum 1.5\nh_count 2\n",
                         &p) == 0);
    free(p.s);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"structure and required families", test_structure_and_required_families},
        {"values", test_values},
        {"histogram", test_histogram},
        {"label escaping", test_label_escaping},
        {"duplicate and empty names", test_duplicate_and_empty_names},
        {"empty pool and special floats", test_empty_pool_and_special_floats},
        {"the checker rejects broken text", test_checker_rejects},
        {NULL, NULL},
    };
    return rp_test_run("metrics", cases);
}
