/* status.c - JSON and table renderings of a snapshot (rp_status.h). */
#include "rp_status.h"

#include <inttypes.h>
#include <string.h>

#include "rp_breaker.h"

static const char *breaker_name(uint32_t s)
{
    return rp_breaker_state_name((enum rp_breaker_state)s);
}

const char *rp_worker_kind_name(uint32_t kind)
{
    switch (kind) {
    case RP_KIND_WORKER:
        return "worker";
    case RP_KIND_PROBER:
        return "prober";
    case RP_KIND_FOLLOWER:
        return "follower";
    case RP_KIND_FLEET:
        return "fleet";
    }
    return "unknown";
}

int rp_status_append_endpoint(struct rp_buf *b, const struct rp_ep_snapshot *e)
{
    rp_buf_appendf(b, "{\"id\":%" PRIu32 ",\"name\":", e->id);
    rp_buf_append_json_strn(b, e->name, strnlen(e->name, sizeof e->name));
    rp_buf_puts(b, ",\"url\":");
    rp_buf_append_json_strn(b, e->url, strnlen(e->url, sizeof e->url));
    rp_buf_appendf(b, ",\"weight\":%" PRIu32 ",\"state\":\"%s\",\"breaker\":\"%s\",\"tokens\":",
                   e->weight, rp_ep_state_name(e->state), breaker_name(e->breaker));
    rp_buf_append_num(b, e->tokens);
    rp_buf_appendf(b,
                   ",\"inflight\":%" PRIu32 ",\"connections\":{\"active\":%" PRIu32
                   ",\"idle\":%" PRIu32 "},\"requests\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
                   ",\"retried\":%" PRIu64 "},\"latency_ms\":{\"avg\":",
                   e->inflight, e->conns_active, e->conns_idle, e->ok, e->failed, e->retried);
    rp_buf_append_num(b, e->avg_ms);
    rp_buf_puts(b, ",\"p50\":");
    rp_buf_append_num(b, e->p50_ms);
    rp_buf_puts(b, ",\"p99\":");
    rp_buf_append_num(b, e->p99_ms);
    rp_buf_appendf(b, "},\"head_block\":%" PRIu64 ",\"lag\":%" PRId64, e->head_block, e->lag);
    rp_buf_appendf(b, ",\"hedges\":{\"sent\":%" PRIu64 ",\"won\":%" PRIu64 ",\"lost\":%" PRIu64 "}",
                   e->hedges_sent, e->hedges_won, e->hedges_lost);
    rp_buf_appendf(b, ",\"head_feed\":%s", e->head_feed ? "true" : "false");
    if (e->last_error[0]) { /* why it is down, e.g. a refused certificate */
        rp_buf_puts(b, ",\"last_error\":");
        rp_buf_append_json_strn(b, e->last_error, strnlen(e->last_error, sizeof e->last_error));
    }
    return rp_buf_puts(b, "}");
}

/* Render into a temporary buffer, then copy as much as fits. */
size_t rp_status_endpoint_json(char *out, size_t outlen, const struct rp_ep_snapshot *e)
{
    struct rp_buf b = RP_BUF_INIT;
    size_t len = 0;
    if (rp_status_append_endpoint(&b, e) == 0)
        len = b.len;
    if (outlen > 0) {
        size_t n = len < outlen - 1 ? len : outlen - 1;
        if (n)
            memcpy(out, b.data, n);
        out[n] = '\0';
    }
    rp_buf_free(&b);
    return len;
}

int rp_status_append_worker(struct rp_buf *b, const struct rp_worker_snapshot *w)
{
    return rp_buf_appendf(
        b,
        "{\"pid\":%" PRId64 ",\"state\":\"%s\",\"requests\":%" PRIu64 ",\"restarts\":%" PRIu64
        ",\"slot\":%" PRIu32 ",\"kind\":\"%s\",\"heartbeat_age_ms\":%" PRIu64
        ",\"clients\":%" PRIu64 ",\"generation\":%" PRIu64 "}",
        w->pid, rp_worker_state_name(w->state), w->requests, w->restarts, w->slot,
        rp_worker_kind_name(w->kind), w->heartbeat_age_ms, w->clients, w->generation);
}

int rp_status_append_endpoints(struct rp_buf *b, const struct rp_snapshot *s)
{
    rp_buf_puts(b, "[");
    for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++) {
        if (i)
            rp_buf_puts(b, ",");
        rp_status_append_endpoint(b, &s->eps[i]);
    }
    return rp_buf_puts(b, "]");
}

int rp_status_append_workers(struct rp_buf *b, const struct rp_snapshot *s)
{
    rp_buf_puts(b, "[");
    for (int i = 0; i < s->worker_count && i < RP_SHM_MAX_WORKERS; i++) {
        if (i)
            rp_buf_puts(b, ",");
        rp_status_append_worker(b, &s->workers[i]);
    }
    return rp_buf_puts(b, "]");
}

/* ,"cache":{...}: the response cache and coalescing counters. */
static int status_append_cache(struct rp_buf *b, const struct rp_snapshot *s)
{
    const struct rp_cache_totals *c = &s->cache;
    return rp_buf_appendf(b,
                          ",\"cache\":{\"enabled\":%s,\"region\":%s,\"hits\":%" PRIu64
                          ",\"misses\":%" PRIu64 ",\"coalesced\":%" PRIu64 ",\"entries\":%" PRIu64
                          ",\"bytes_used\":%" PRIu64 ",\"bytes_total\":%" PRIu64 "}",
                          c->cache_on ? "true" : "false", c->present ? "true" : "false", c->hits,
                          c->misses, c->coalesced, c->entries, c->bytes_used, c->bytes_total);
}

/* The subscriptions and the head follower, as ,"subscriptions":{...}. */
static int status_append_subs(struct rp_buf *b, const struct rp_snapshot *s)
{
    const struct rp_subs_snapshot *u = &s->subs;
    rp_buf_appendf(b,
                   ",\"subscriptions\":{\"total\":%" PRIu64 ",\"new_heads\":%" PRIu64
                   ",\"logs\":%" PRIu64 ",\"notifications\":%" PRIu64 ",\"ended\":%" PRIu64
                   ",\"delivery_latency_ms\":{\"avg\":",
                   u->heads + u->logs, u->heads, u->logs, u->notifications, u->ended);
    rp_buf_append_num(b, u->lat_count ? (double)u->lat_sum_us / (double)u->lat_count / 1000.0 : 0);
    rp_buf_puts(b, ",\"max\":");
    rp_buf_append_num(b, (double)u->lat_max_us / 1000.0);
    return rp_buf_appendf(
        b,
        ",\"count\":%" PRIu64 "},\"follower\":{\"head_block\":%" PRIu64 ",\"seen_block\":%" PRIu64
        ",\"lag\":%" PRIu64 ",\"head_age_ms\":%" PRIu64 ",\"events\":%" PRIu64
        ",\"fetches\":{\"headers\":%" PRIu64 ",\"logs\":%" PRIu64 ",\"polls\":%" PRIu64
        ",\"failed\":%" PRIu64 "},\"reorgs\":%" PRIu64 ",\"gaps\":%" PRIu64
        ",\"head_feed\":{\"live\":%s,\"live_ms\":%" PRIu64 "}}}",
        u->lat_count, u->follower_head, u->follower_seen, u->lag, u->head_age_ms, u->events,
        u->fetch_headers, u->fetch_logs, u->fetch_polls, u->fetch_failed, u->reorgs, u->gaps,
        u->head_feed_live ? "true" : "false", u->head_feed_live_ms);
}

int rp_status_json(struct rp_buf *b, const struct rp_snapshot *s)
{
    rp_buf_puts(b, "{\"name\":");
    rp_buf_append_json_strn(b, s->name, strnlen(s->name, sizeof s->name));
    rp_buf_appendf(b,
                   ",\"version\":\"%" PRIu32 ".%" PRIu32 "\",\"generation\":%" PRIu64
                   ",\"supervisor_pid\":%" PRId64 ",\"supervisor_alive\":%s,%s\"workers\":",
                   s->version_major, s->version_minor, s->generation, s->supervisor_pid,
                   s->supervisor_alive ? "true" : "false",
                   /* only when the seqlock copy gave up: the rows may mix two reloads */
                   s->consistent ? "" : "\"consistent\":false,");
    rp_status_append_workers(b, s);
    rp_buf_puts(b, ",\"endpoints\":");
    rp_status_append_endpoints(b, s);
    rp_fleet_status_append(b, &s->fleet);
    status_append_cache(b, s);
    status_append_subs(b, s);
    return rp_buf_appendf(
        b,
        ",\"best_head_block\":%" PRIu64 ",\"client_requests\":{\"ok\":%" PRIu64
        ",\"error\":%" PRIu64 "},\"consistency\":{\"waits\":%" PRIu64 ",\"affinity_hits\":%" PRIu64
        ",\"lookup_retries\":%" PRIu64 "},\"hedges\":{\"calls\":%" PRIu64 ",\"sent\":%" PRIu64
        ",\"won\":%" PRIu64 ",\"lost\":%" PRIu64 "}}",
        s->best_head, s->client_ok, s->client_error, s->consistency_waits, s->affinity_hits,
        s->lookup_retries, s->hedge_calls, s->hedges_sent, s->hedges_won, s->hedges_lost);
}

uint64_t rp_status_uptime_s(const struct rp_snapshot *s, uint64_t now_realtime_ns)
{
    if (s->supervisor_birth_ns == 0 || s->supervisor_birth_ns > now_realtime_ns)
        return 0;
    return (now_realtime_ns - s->supervisor_birth_ns) / 1000000000ull;
}

int rp_status_control_json(struct rp_buf *b, const struct rp_snapshot *s, uint64_t now_realtime_ns)
{
    rp_buf_puts(b, "{\"ok\":true,\"name\":");
    rp_buf_append_json_strn(b, s->name, strnlen(s->name, sizeof s->name));
    rp_buf_appendf(
        b, ",\"pid\":%" PRId64 ",\"uptime_s\":%" PRIu64 ",\"generation\":%" PRIu64 ",\"workers\":",
        s->supervisor_pid, rp_status_uptime_s(s, now_realtime_ns), s->generation);
    rp_status_append_workers(b, s);
    rp_buf_puts(b, ",\"endpoints\":");
    rp_status_append_endpoints(b, s);
    rp_fleet_status_append(b, &s->fleet);
    status_append_cache(b, s);
    status_append_subs(b, s);
    return rp_buf_appendf(b,
                          ",\"hedges\":{\"calls\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"won\":%" PRIu64
                          ",\"lost\":%" PRIu64 "}}",
                          s->hedge_calls, s->hedges_sent, s->hedges_won, s->hedges_lost);
}

/* Copy SRC (at most SRCLEN bytes) into DST for a terminal: control bytes,
 * DEL and non-ASCII bytes (C1 controls among them) become '?', so a segment
 * cannot send escape sequences to the operator's terminal. */
static void table_clean(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    size_t n = 0;
    for (; n < srclen && n + 1 < dstlen && src[n]; n++) {
        unsigned char c = (unsigned char)src[n];
        dst[n] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[n] = '\0';
}

/* The endpoint of PREV that is the same one as E (same id, name and URL). */
static const struct rp_ep_snapshot *table_prev_ep(const struct rp_snapshot *prev,
                                                  const struct rp_ep_snapshot *e)
{
    if (!prev)
        return NULL;
    for (int i = 0; i < prev->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++) {
        const struct rp_ep_snapshot *p = &prev->eps[i];
        if (p->id == e->id && strncmp(p->name, e->name, sizeof p->name) == 0 &&
            strncmp(p->url, e->url, sizeof p->url) == 0)
            return p;
    }
    return NULL;
}

/* Format a duration in ms compactly: "850ms", "12.3s", "5m03s", "2h07m". */
static void table_age(char *out, size_t outlen, uint64_t ms)
{
    if (ms < 1000)
        snprintf(out, outlen, "%" PRIu64 "ms", ms);
    else if (ms < 60000)
        snprintf(out, outlen, "%.1fs", (double)ms / 1000.0);
    else if (ms < 3600000)
        snprintf(out, outlen, "%" PRIu64 "m%02" PRIu64 "s", ms / 60000, ms / 1000 % 60);
    else
        snprintf(out, outlen, "%" PRIu64 "h%02" PRIu64 "m", ms / 3600000, ms / 60000 % 60);
}

void rp_status_table(FILE *f, const struct rp_snapshot *s, const struct rp_snapshot *prev,
                     double interval_s)
{
    fprintf(f, "%-3s %-16s %-34s %-11s %-9s %7s %4s %9s %10s %8s %8s %8s %8s %8s %10s %5s %13s\n",
            "ID", "NAME", "URL", "STATE", "BREAKER", "TOKENS", "INFL", "CONN A/I", "OK", "FAILED",
            "RETRIED", "REQ/S", "P50ms", "P99ms", "HEAD", "LAG", "HEDGES S/W");
    for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++) {
        const struct rp_ep_snapshot *e = &s->eps[i];
        char name[RP_SHM_NAME_MAX], url[RP_SHM_URL_MAX], conns[32], rate[32], head[32], hedges[48];
        table_clean(name, sizeof name, e->name, sizeof e->name);
        table_clean(url, sizeof url, e->url, sizeof e->url);
        snprintf(conns, sizeof conns, "%" PRIu32 "/%" PRIu32, e->conns_active, e->conns_idle);
        const struct rp_ep_snapshot *p = table_prev_ep(prev, e);
        uint64_t done = e->ok + e->failed;
        if (p && interval_s > 0.0 && done >= p->ok + p->failed)
            snprintf(rate, sizeof rate, "%.1f", (double)(done - (p->ok + p->failed)) / interval_s);
        else
            snprintf(rate, sizeof rate, "-");
        snprintf(hedges, sizeof hedges, "%" PRIu64 "/%" PRIu64, e->hedges_sent, e->hedges_won);
        if (e->head_block)
            snprintf(head, sizeof head, "%" PRIu64, e->head_block);
        else
            snprintf(head, sizeof head, "-");
        fprintf(f,
                "%-3" PRIu32 " %-16.16s %-34.34s %-11s %-9s %7.1f %4" PRIu32 " %9s %10" PRIu64
                " %8" PRIu64 " %8" PRIu64 " %8s %8.1f %8.1f %10s %5" PRId64 " %13s\n",
                e->id, name, url, rp_ep_state_name(e->state), breaker_name(e->breaker), e->tokens,
                e->inflight, conns, e->ok, e->failed, e->retried, rate, e->p50_ms, e->p99_ms, head,
                e->lag, hedges);
    }
    if (s->ep_count == 0)
        fprintf(f, "(no endpoints configured)\n");

    fprintf(f, "\n%-4s %8s %-8s %-9s %8s %10s %8s %7s %4s\n", "SLOT", "PID", "KIND", "STATE",
            "HB AGE", "REQUESTS", "RESTARTS", "CLIENTS", "GEN");
    for (int i = 0; i < s->worker_count && i < RP_SHM_MAX_WORKERS; i++) {
        const struct rp_worker_snapshot *w = &s->workers[i];
        char age[32];
        table_age(age, sizeof age, w->heartbeat_age_ms);
        fprintf(f,
                "%-4" PRIu32 " %8" PRId64 " %-8s %-9s %8s %10" PRIu64 " %8" PRIu64 " %7" PRIu64
                " %4" PRIu64 "\n",
                w->slot, w->pid, rp_worker_kind_name(w->kind), rp_worker_state_name(w->state), age,
                w->requests, w->restarts, w->clients, w->generation);
    }
    if (s->worker_count == 0)
        fprintf(f, "(no workers)\n");
    fprintf(f, "\nclient requests: ok %" PRIu64 ", error %" PRIu64 "; best head %" PRIu64 "\n",
            s->client_ok, s->client_error, s->best_head);
    rp_fleet_table(f, &s->fleet);
    fprintf(f,
            "hedges: sent %" PRIu64 ", won %" PRIu64 ", lost %" PRIu64 " (of %" PRIu64
            " calls that could be hedged)\n",
            s->hedges_sent, s->hedges_won, s->hedges_lost, s->hedge_calls);
    if (s->cache.present)
        fprintf(f,
                "cache: %s  hits %" PRIu64 "  misses %" PRIu64 "  coalesced %" PRIu64
                "  entries %" PRIu64 "  bytes %" PRIu64 "/%" PRIu64 "\n",
                s->cache.cache_on ? "on" : "off (coalescing only)", s->cache.hits, s->cache.misses,
                s->cache.coalesced, s->cache.entries, s->cache.bytes_used, s->cache.bytes_total);
    const struct rp_subs_snapshot *u = &s->subs;
    fprintf(f,
            "subscriptions: %" PRIu64 " (newHeads %" PRIu64 ", logs %" PRIu64
            "); follower head %" PRIu64 ", seen %" PRIu64 ", lag %" PRIu64
            "; notifications %" PRIu64 ", delivery avg %.1f ms\n",
            u->heads + u->logs, u->heads, u->logs, u->follower_head, u->follower_seen, u->lag,
            u->notifications,
            u->lat_count ? (double)u->lat_sum_us / (double)u->lat_count / 1000.0 : 0.0);
    /* the pushed head (ws_url feeds): a line of its own, the columns above
     * stay as they were */
    int feeds = 0;
    for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++)
        feeds += s->eps[i].head_feed;
    if (feeds || u->head_feed_live) {
        fprintf(f, "head feed: %s", u->head_feed_live ? "live" : "not live");
        if (u->head_feed_live)
            fprintf(f, " for %.1f s", (double)u->head_feed_live_ms / 1000.0);
        fprintf(f, "; connected:");
        for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++)
            if (s->eps[i].head_feed) {
                char name[RP_SHM_NAME_MAX];
                table_clean(name, sizeof name, s->eps[i].name, sizeof s->eps[i].name);
                fprintf(f, " %s", name);
            }
        fprintf(f, "\n");
    }
}
