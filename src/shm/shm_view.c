/* shm_view.c - a checked, read-only view of the shared-memory segment.
 *
 * Nothing in the segment is trusted (Varnish's VSM rule): the header is
 * checked field by field against the mapped size before any table is read,
 * every table row is addressed through a descriptor that was bounds-checked,
 * strings are copied with a bound and NUL-terminated here, and no value read
 * from the segment is ever asserted on. The mapping is PROT_READ: this file
 * cannot write to the segment even by mistake.
 */
#include "rp_shm_view.h"

#include "rp_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_ratelimit.h"
#include "rp_seqlock.h"

/* How many times a snapshot is retaken when a reload rewrites the rows
 * while it is being copied (layout_seq odd or moved); after that the last
 * copy is returned with consistent = 0 and the caller says so. */
#define VIEW_SNAPSHOT_TRIES 20

static void view_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void view_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t view_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Check one table descriptor T (already copied out of the segment): at most
 * MAX_COUNT rows of at least MIN_STRIDE bytes, aligned for rows of ALIGN
 * bytes, lying wholly between the header and TOTAL. Returns 0 or -1 with
 * ERR naming the table. */
static int view_check_table(const char *what, struct rp_shm_table t, uint64_t max_count,
                            size_t min_stride, size_t align, uint64_t header_size, uint64_t total,
                            char *err, size_t errlen)
{
    if (t.count > max_count) {
        view_err(err, errlen, "corrupt segment: %s table has %u rows, at most %llu allowed", what,
                 t.count, (unsigned long long)max_count);
        return -1;
    }
    if (t.stride < min_stride) {
        view_err(err, errlen, "corrupt segment: %s table rows are %u bytes, need at least %zu",
                 what, t.stride, min_stride);
        return -1;
    }
    if (t.offset % align != 0 || t.stride % align != 0) {
        view_err(err, errlen,
                 "corrupt segment: %s table offset %llu / stride %u not aligned to %zu bytes", what,
                 (unsigned long long)t.offset, t.stride, align);
        return -1;
    }
    /* count and stride are 32-bit, so their product fits in 64 bits */
    uint64_t bytes = (uint64_t)t.count * (uint64_t)t.stride;
    if (t.offset < header_size || t.offset > total || bytes > total - t.offset) {
        view_err(err, errlen,
                 "corrupt segment: %s table [%llu, +%llu) lies outside the segment "
                 "(header %llu bytes, total %llu bytes)",
                 what, (unsigned long long)t.offset, (unsigned long long)bytes,
                 (unsigned long long)header_size, (unsigned long long)total);
        return -1;
    }
    return 0;
}

/* The table descriptors as they were when checked. Readers address rows
 * only through this copy, so a header rewritten after the check cannot send
 * them outside the mapping. */
struct view_layout {
    struct rp_shm_table ep, wk, st, sub;
};

/* Check a mapping of SIZE bytes at BASE: magic, version, sizes and every
 * table descriptor, copied once into L (may be NULL). Returns 0 when all of
 * it can be read safely through L. */
static int view_check(const void *base, size_t size, struct view_layout *l, char *err,
                      size_t errlen)
{
    if (!base) {
        view_err(err, errlen, "no mapping");
        return -1;
    }
    if ((uintptr_t)base % _Alignof(struct rp_shm_endpoint) != 0) {
        view_err(err, errlen, "mapping at %p is not %zu-byte aligned", base,
                 (size_t) _Alignof(struct rp_shm_endpoint));
        return -1;
    }
    if (size < sizeof(struct rp_shm_header)) {
        view_err(err, errlen, "truncated segment: %zu bytes, the header alone needs %zu", size,
                 sizeof(struct rp_shm_header));
        return -1;
    }
    const struct rp_shm_header *h = base;
    uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    if (magic != RP_SHM_MAGIC) {
        if (magic == 0)
            view_err(err, errlen,
                     "segment not initialised (no magic yet): the supervisor is starting or died "
                     "while creating it");
        else if (magic == __builtin_bswap64(RP_SHM_MAGIC))
            view_err(err, errlen, "segment written with the other byte order");
        else
            view_err(err, errlen, "not an rpcpool segment (magic 0x%016llx, expected 0x%016llx)",
                     (unsigned long long)magic, (unsigned long long)RP_SHM_MAGIC);
        return -1;
    }
    if (h->version_major != RP_SHM_VERSION_MAJOR) {
        view_err(err, errlen,
                 "segment has layout version %u.%u, this program reads layout version %d.x "
                 "(built for %d.%d): use the rpcpoolstat of the running rpcpoold",
                 (unsigned)h->version_major, (unsigned)h->version_minor, RP_SHM_VERSION_MAJOR,
                 RP_SHM_VERSION_MAJOR, RP_SHM_VERSION_MINOR);
        return -1;
    }
    uint64_t header_size = h->header_size;
    uint64_t total = h->total_size;
    if (header_size < sizeof(struct rp_shm_header) || header_size > size) {
        view_err(err, errlen, "corrupt segment: header size %llu (expected %zu..%zu)",
                 (unsigned long long)header_size, sizeof(struct rp_shm_header), size);
        return -1;
    }
    if (total < header_size) {
        view_err(err, errlen, "corrupt segment: total size %llu is below the header size %llu",
                 (unsigned long long)total, (unsigned long long)header_size);
        return -1;
    }
    if (total > size) {
        view_err(err, errlen, "truncated segment: header says %llu bytes, only %zu mapped",
                 (unsigned long long)total, size);
        return -1;
    }
    struct rp_shm_table ep = h->endpoints, wk = h->workers, st = h->stats;
    if (view_check_table("endpoint", ep, RP_SHM_MAX_ENDPOINTS, sizeof(struct rp_shm_endpoint),
                         _Alignof(struct rp_shm_endpoint), header_size, total, err, errlen) != 0)
        return -1;
    if (view_check_table("worker", wk, RP_SHM_MAX_WORKERS, sizeof(struct rp_shm_worker),
                         _Alignof(struct rp_shm_worker), header_size, total, err, errlen) != 0)
        return -1;
    if (view_check_table("stats", st, (uint64_t)RP_SHM_MAX_WORKERS * RP_SHM_MAX_ENDPOINTS,
                         sizeof(struct rp_shm_epstats), _Alignof(struct rp_shm_epstats),
                         header_size, total, err, errlen) != 0)
        return -1;
    struct rp_shm_table sub = h->subs;
    if (view_check_table("subscriptions", sub, 1, sizeof(struct rp_shm_subs),
                         _Alignof(struct rp_shm_subs), header_size, total, err, errlen) != 0)
        return -1;
    if (l) {
        l->ep = ep;
        l->wk = wk;
        l->st = st;
        l->sub = sub;
    }
    return 0;
}

/* Map NAME read-only (the whole object as it is now) and check it. */
int rp_shm_view_open(struct rp_shm_view *v, const char *name, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            view_err(err, errlen, "shm %s: no such segment (is rpcpoold running?)", name);
        else if (e == EACCES)
            view_err(err, errlen,
                     "shm %s: permission denied (run as the pool's user or group, or root)", name);
        else
            view_err(err, errlen, "shm %s: %s", name, strerror(e));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        view_err(err, errlen, "shm %s: fstat: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    if (st.st_size < (off_t)sizeof(struct rp_shm_header)) {
        view_err(err, errlen, "shm %s: truncated segment: %lld bytes, the header alone needs %zu",
                 name, (long long)st.st_size, sizeof(struct rp_shm_header));
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        view_err(err, errlen, "shm %s: mmap %zu bytes: %s", name, size, strerror(e));
        return -1;
    }
    char why[256];
    if (view_check(p, size, NULL, why, sizeof why) != 0) {
        view_err(err, errlen, "shm %s: %s", name, why);
        munmap(p, size);
        return -1;
    }
    v->base = p;
    v->size = size;
    v->owned = 1;
    return 0;
}

int rp_shm_view_wrap(struct rp_shm_view *v, const void *base, size_t size, char *err, size_t errlen)
{
    memset(v, 0, sizeof *v);
    if (view_check(base, size, NULL, err, errlen) != 0)
        return -1;
    v->base = base;
    v->size = size;
    v->owned = 0;
    return 0;
}

void rp_shm_view_close(struct rp_shm_view *v)
{
    if (v->owned && v->base)
        munmap((void *)v->base, v->size);
    memset(v, 0, sizeof *v);
}

/* Copy the NUL-terminated string of at most SRCLEN bytes at SRC into DST
 * (DSTLEN bytes), always terminating DST. */
static void view_copy_str(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t n = 0;
    while (n < srclen && n + 1 < dstlen && src[n] != '\0')
        n++;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Re-redact a URL read from the segment into OUT: "scheme://host[:port]"
 * plus "/" and three stars when a path or query followed the host; user
 * info is dropped. The supervisor stores URLs already redacted; this makes
 * sure a secret can never leave through rpcpoolstat even if a writer got
 * that wrong. */
static void view_redact_url(char *out, size_t outlen, const char *url)
{
    const char *auth = strstr(url, "://");
    if (!auth || auth == url) { /* not a URL we can take apart: show nothing of it */
        snprintf(out, outlen, "%s", url[0] ? "***" : "");
        return;
    }
    size_t scheme_len = (size_t)(auth - url) + 3;
    auth += 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *rest = auth + auth_len;
    for (size_t i = auth_len; i > 0; i--) {
        if (auth[i - 1] == '@') { /* user info: everything up to the last '@' */
            auth += i;
            auth_len -= i;
            break;
        }
    }
    /* as rp_config_redact_url(): a bare "/" path stays, any other is starred */
    const char *tail = !*rest ? "" : strcmp(rest, "/") == 0 ? "/" : "/***";
    snprintf(out, outlen, "%.*s%.*s%s", (int)scheme_len, url, (int)auth_len, auth, tail);
}

/* Copy one endpoint row (index I, known in use) and its summed stats into E. */
static void view_snap_endpoint(const struct rp_shm_header *h, const struct view_layout *l,
                               unsigned i, uint64_t now_ns, uint64_t best_head,
                               struct rp_ep_snapshot *e)
{
    const struct rp_shm_endpoint *row =
        (const void *)((const char *)h + l->ep.offset + (size_t)i * l->ep.stride);
    uint64_t now_ms = now_ns / 1000000ull;
    char url[RP_SHM_URL_MAX];

    memset(e, 0, sizeof *e);
    e->id = i;
    view_copy_str(e->name, sizeof e->name, row->name, sizeof row->name);
    view_copy_str(url, sizeof url, row->url_redacted, sizeof row->url_redacted);
    view_redact_url(e->url, sizeof e->url, url);
    e->weight = row->weight;

    uint32_t state = atomic_load_explicit(&row->state, memory_order_relaxed);
    if (atomic_load_explicit(&row->drained, memory_order_relaxed))
        state = RP_EP_DRAINED;
    e->state = state;

    uint64_t word = atomic_load_explicit(&row->breaker, memory_order_acquire);
    e->breaker = (uint32_t)rp_breaker_state_at(word, now_ms);
    e->breaker_failures = rp_breaker_word_failures(word);

    struct rp_gcra_params gp = {.interval_ns = row->rl_interval_ns, .burst = row->rl_burst};
    uint64_t tat = atomic_load_explicit(&row->gcra_tat_ns, memory_order_acquire);
    e->tokens = rp_gcra_tokens(tat, &gp, now_ns);

    /* sum the sharded counters and holdings: cell [w][i] for every worker
     * row (the host-wide counts exist only as these sums, rp_hold.h) */
    uint64_t open = 0, active = 0, inflight = 0, trials = 0;
    uint32_t period = rp_breaker_word_period(word);
    int half_open = rp_breaker_word_state(word) == RP_BREAKER_HALF_OPEN;
    for (uint64_t idx = i; idx < l->st.count; idx += RP_SHM_MAX_ENDPOINTS) {
        const struct rp_shm_epstats *c =
            (const void *)((const char *)h + l->st.offset + idx * l->st.stride);
        inflight += atomic_load_explicit(&c->inflight_held, memory_order_relaxed);
        open += atomic_load_explicit(&c->conns_open_held, memory_order_relaxed);
        active += atomic_load_explicit(&c->conns_active_held, memory_order_relaxed);
        uint32_t cell = atomic_load_explicit(&c->trial_held, memory_order_relaxed);
        if (half_open && rp_breaker_cell_period(cell) == period)
            trials += rp_breaker_cell_count(cell);
        e->ok += atomic_load_explicit(&c->ok, memory_order_relaxed);
        e->failed += atomic_load_explicit(&c->failed, memory_order_relaxed);
        e->retried += atomic_load_explicit(&c->retried, memory_order_relaxed);
        e->hedges_sent += atomic_load_explicit(&c->hedges_sent, memory_order_relaxed);
        e->hedges_won += atomic_load_explicit(&c->hedges_won, memory_order_relaxed);
        e->hedges_lost += atomic_load_explicit(&c->hedges_lost, memory_order_relaxed);
        e->lat_sum_us += atomic_load_explicit(&c->lat_sum_us, memory_order_relaxed);
        e->lat_count += atomic_load_explicit(&c->lat_count, memory_order_relaxed);
        for (int b = 0; b < RP_LAT_BUCKETS; b++)
            e->hist[b] += atomic_load_explicit(&c->hist[b], memory_order_relaxed);
    }
    e->inflight = inflight > UINT32_MAX ? UINT32_MAX : (uint32_t)inflight;
    e->conns_active = active > UINT32_MAX ? UINT32_MAX : (uint32_t)active;
    e->conns_idle =
        open > active ? (uint32_t)(open - active > UINT32_MAX ? UINT32_MAX : open - active) : 0;
    e->trials = trials > UINT32_MAX ? UINT32_MAX : (uint32_t)trials;
    if (e->lat_count)
        e->avg_ms = (double)e->lat_sum_us / (double)e->lat_count / 1000.0;
    /* the counters are read one by one while workers add to them, so the
     * histogram's own total is what its quantiles are taken over */
    uint64_t hist_total = 0;
    for (int b = 0; b < RP_LAT_BUCKETS; b++)
        hist_total += e->hist[b];
    e->p50_ms = rp_hist_quantile_ms(e->hist, hist_total, 0.50);
    e->p99_ms = rp_hist_quantile_ms(e->hist, hist_total, 0.99);

    e->head_block = atomic_load_explicit(&row->head_block, memory_order_relaxed);
    e->chain_id = atomic_load_explicit(&row->chain_id, memory_order_relaxed);
    uint64_t heard = atomic_load_explicit(&row->head_feed_heard_ms, memory_order_relaxed);
    e->head_feed = heard && heard <= now_ms + 1000 && now_ms < heard + RP_HEAD_FEED_DEAD_MS;
    /* the prober's seqlock: a whole text, or none after a few tries */
    for (int tries = 0; tries < 8; tries++) {
        uint64_t seq = rp_seq_read_begin(&row->last_error_seq);
        view_copy_str(e->last_error, sizeof e->last_error, row->last_error, sizeof row->last_error);
        if (!rp_seq_read_retry(&row->last_error_seq, seq))
            break;
        e->last_error[0] = '\0';
    }
    if (best_head && e->head_block && best_head > e->head_block) {
        uint64_t lag = best_head - e->head_block;
        e->lag = lag > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)lag;
    }
}

/* One pass over the segment into OUT through the checked layout L. */
static void view_snap_once(const struct rp_shm_header *h, const struct view_layout *l,
                           struct rp_snapshot *out)
{
    memset(out, 0, sizeof *out);
    view_copy_str(out->name, sizeof out->name, h->name, sizeof h->name);
    out->version_major = h->version_major;
    out->version_minor = h->version_minor;
    out->generation = atomic_load_explicit(&h->generation, memory_order_acquire);
    out->supervisor_pid = atomic_load_explicit(&h->supervisor_pid, memory_order_relaxed);
    out->supervisor_birth_ns = atomic_load_explicit(&h->supervisor_birth_ns, memory_order_relaxed);
    out->supervisor_alive = rp_pid_alive_since(out->supervisor_pid, out->supervisor_birth_ns);

    uint64_t base = atomic_load_explicit(&h->clock_base_ns, memory_order_relaxed);
    uint64_t mono = view_mono_ns();
    uint64_t now_ns = mono > base ? mono - base : 0;
    out->now_ms = now_ns / 1000000ull;
    out->best_head = atomic_load_explicit(&h->best_head_block, memory_order_relaxed);

    for (unsigned i = 0; i < l->ep.count; i++) {
        const struct rp_shm_endpoint *row =
            (const void *)((const char *)h + l->ep.offset + (size_t)i * l->ep.stride);
        if (!atomic_load_explicit(&row->in_use, memory_order_acquire))
            continue;
        view_snap_endpoint(h, l, i, now_ns, out->best_head, &out->eps[out->ep_count++]);
    }

    for (unsigned i = 0; i < l->wk.count; i++) {
        const struct rp_shm_worker *row =
            (const void *)((const char *)h + l->wk.offset + (size_t)i * l->wk.stride);
        uint32_t state = atomic_load_explicit(&row->state, memory_order_relaxed);
        if (state == RP_WORKER_FREE)
            continue;
        struct rp_worker_snapshot *w = &out->workers[out->worker_count++];
        w->slot = i;
        w->pid = atomic_load_explicit(&row->pid, memory_order_relaxed);
        w->state = state;
        w->kind = atomic_load_explicit(&row->kind, memory_order_relaxed);
        uint64_t hb = atomic_load_explicit(&row->heartbeat_ms, memory_order_relaxed);
        w->heartbeat_age_ms = out->now_ms > hb ? out->now_ms - hb : 0;
        w->requests = atomic_load_explicit(&row->requests, memory_order_relaxed);
        w->restarts = atomic_load_explicit(&row->restarts, memory_order_relaxed);
        w->clients = atomic_load_explicit(&row->clients, memory_order_relaxed);
        w->generation = atomic_load_explicit(&row->generation, memory_order_relaxed);
        out->consistency_waits +=
            atomic_load_explicit(&row->consistency_waits, memory_order_relaxed);
        out->affinity_hits += atomic_load_explicit(&row->affinity_hits, memory_order_relaxed);
        out->lookup_retries += atomic_load_explicit(&row->lookup_retries, memory_order_relaxed);
    }

    for (uint64_t idx = 0; idx < l->st.count; idx++) {
        const struct rp_shm_epstats *c =
            (const void *)((const char *)h + l->st.offset + idx * l->st.stride);
        out->client_ok += atomic_load_explicit(&c->client_ok, memory_order_relaxed);
        out->client_error += atomic_load_explicit(&c->client_error, memory_order_relaxed);
        out->hedge_calls += atomic_load_explicit(&c->hedge_calls, memory_order_relaxed);
        out->hedges_sent += atomic_load_explicit(&c->hedges_sent, memory_order_relaxed);
        out->hedges_won += atomic_load_explicit(&c->hedges_won, memory_order_relaxed);
        out->hedges_lost += atomic_load_explicit(&c->hedges_lost, memory_order_relaxed);
    }
    if (l->sub.count == 1)
        rp_sub_snapshot((const void *)((const char *)h + l->sub.offset), out->now_ms, &out->subs);
}

/* Check the segment again (a view may live for hours) and copy it; retaken
 * when a reload bumped the generation while the rows were being copied. */
int rp_shm_view_snapshot(const struct rp_shm_view *v, struct rp_snapshot *out, char *err,
                         size_t errlen)
{
    struct view_layout l;
    if (view_check(v->base, v->size, &l, err, errlen) != 0)
        return -1;
    const struct rp_shm_header *h = v->base;
    for (int tries = 0; tries < VIEW_SNAPSHOT_TRIES; tries++) {
        uint64_t seq = rp_seq_read_begin(&h->layout_seq);
        view_snap_once(h, &l, out);
        rp_fleet_snap(v->base, v->size, out->now_ms, &out->fleet);
        rp_fleet_snap_tokens(v->base, v->size, out);
        if (!rp_seq_read_retry(&h->layout_seq, seq)) {
            out->consistent = 1;
            break;
        }
        /* a reload was rewriting the rows: wait a moment and copy again */
        struct timespec pause = {0, 1000000L << (tries < 6 ? tries : 6)};
        nanosleep(&pause, NULL);
    }
    /* the cache's counters and entries: sums and a scan, no seqlock */
    rp_cache_abi_totals(h, v->size, &out->cache);
    return 0;
}

/* Quantile Q of a histogram of COUNT samples: the upper bound (in ms) of the
 * bucket holding the sample of rank ceil(Q * COUNT). 0 for no samples; the
 * highest non-empty bucket when the buckets hold fewer than COUNT. */
double rp_hist_quantile_ms(const uint64_t *hist, uint64_t count, double q)
{
    if (count == 0)
        return 0.0;
    if (!(q > 0.0))
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    double r = q * (double)count;
    uint64_t rank = r >= (double)count ? count : (uint64_t)r;
    if ((double)rank < r)
        rank++; /* ceil */
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    int last = -1;
    for (int b = 0; b < RP_LAT_BUCKETS; b++) {
        if (hist[b] == 0)
            continue;
        last = b;
        cum += hist[b];
        if (cum >= rank)
            return rp_lat_bucket_upper_us(b) / 1000.0;
    }
    return last < 0 ? 0.0 : rp_lat_bucket_upper_us(last) / 1000.0;
}

const char *rp_ep_state_name(uint32_t state)
{
    switch (state) {
    case RP_EP_UP:
        return "up";
    case RP_EP_DOWN:
        return "down";
    case RP_EP_DRAINED:
        return "drained";
    case RP_EP_QUARANTINED:
        return "quarantined";
    case RP_EP_LAGGING:
        return "lagging";
    }
    return "unknown";
}

const char *rp_worker_state_name(uint32_t state)
{
    switch (state) {
    case RP_WORKER_FREE:
        return "free";
    case RP_WORKER_STARTING:
        return "starting";
    case RP_WORKER_RUNNING:
        return "running";
    case RP_WORKER_DRAINING:
        return "draining";
    case RP_WORKER_DEAD:
        return "dead";
    }
    return "unknown";
}
