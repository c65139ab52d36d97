/* metrics.c - Prometheus text exposition 0.0.4 of a snapshot (rp_metrics.h).
 *
 * Families are written one at a time: # HELP, # TYPE, then every sample of
 * the family, so the output is grouped as the format requires. Numbers are
 * integers where the source is an integer; floats use %.15g and NaN/Inf
 * are spelled as the format spells them.
 */
#include "rp_metrics.h"
#include "rp_utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Endpoint label values, prepared once per render. */
struct metrics_labels {
    char ep[RP_SHM_MAX_ENDPOINTS][RP_SHM_NAME_MAX + 16];
};

/* Append the # HELP and # TYPE lines of family NAME. */
static void family(struct rp_buf *b, const char *name, const char *type, const char *help)
{
    rp_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample: its HELP and TYPE lines, then NAME V. */
static void metric_u64(struct rp_buf *b, const char *name, const char *type, const char *help,
                       uint64_t v)
{
    family(b, name, type, help);
    rp_buf_appendf(b, "%s %" PRIu64 "\n", name, v);
}

/* Append the label value S (at most N bytes, stops at NUL) escaped as the
 * text format wants: backslash, double quote and line feed escaped; bytes
 * that are not valid UTF-8 replaced by '?'. */
static void label_value(struct rp_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && p[i]) {
        size_t run = i;
        /* copy runs of plain bytes in one append */
        while (run < n && p[run] && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '\\' &&
               p[run] != '"')
            run++;
        if (run > i) {
            rp_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '\\') {
            rp_buf_puts(b, "\\\\");
            i++;
        } else if (c == '"') {
            rp_buf_puts(b, "\\\"");
            i++;
        } else if (c == '\n') {
            rp_buf_puts(b, "\\n");
            i++;
        } else if (c < 0x80) {
            /* other control bytes are legal in the format but hostile to
             * terminals and scrapers alike */
            rp_buf_puts(b, "?");
            i++;
        } else {
            size_t len = rp_utf8_seq_len(p + i, n - i);
            size_t k;
            for (k = 0; k < len && p[i + k]; k++)
                ;
            if (len == 0 || k < len) {
                rp_buf_puts(b, "?");
                i++;
            } else {
                rp_buf_append(b, s + i, len);
                i += len;
            }
        }
    }
}

/* Append a float sample value: NaN, +Inf, -Inf as the format spells them,
 * otherwise %.15g (integers print without a fraction). */
static void float_value(struct rp_buf *b, double v)
{
    if (isnan(v))
        rp_buf_puts(b, "NaN");
    else if (isinf(v))
        rp_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else
        rp_buf_appendf(b, "%.15g", v);
}

/* The label value naming endpoint I of S: its name, its id when the name is
 * empty, "name#id" when an earlier row of S has the same name. */
static void endpoint_label(const struct rp_snapshot *s, int i, char *out, size_t outlen)
{
    const struct rp_ep_snapshot *e = &s->eps[i];
    size_t n = strnlen(e->name, sizeof e->name);
    if (n == 0) {
        snprintf(out, outlen, "%" PRIu32, e->id);
        return;
    }
    for (int j = 0; j < i; j++) {
        if (strncmp(s->eps[j].name, e->name, sizeof e->name) == 0) {
            snprintf(out, outlen, "%.*s#%" PRIu32, (int)n, e->name, e->id);
            return;
        }
    }
    snprintf(out, outlen, "%.*s", (int)n, e->name);
}

/* Append `NAME{endpoint="EP"} ` (the value follows). */
static void ep_sample(struct rp_buf *b, const char *name, const char *ep)
{
    rp_buf_appendf(b, "%s{endpoint=\"", name);
    label_value(b, ep, strlen(ep));
    rp_buf_puts(b, "\"} ");
}

/* Append `NAME{endpoint="EP",KEY="VAL"} `. */
static void ep_sample2(struct rp_buf *b, const char *name, const char *ep, const char *key,
                       const char *val)
{
    rp_buf_appendf(b, "%s{endpoint=\"", name);
    label_value(b, ep, strlen(ep));
    rp_buf_appendf(b, "\",%s=\"%s\"} ", key, val);
}

/* The latency histogram of every endpoint: RP_LAT_BUCKETS - 1 finite
 * buckets (upper bounds from rp_lat_bucket_upper_us) plus +Inf, which also
 * takes the last shm bucket ("everything above"). _count is the buckets'
 * own total, so the +Inf bucket always equals it. */
static void histogram(struct rp_buf *b, const struct rp_snapshot *s, const struct metrics_labels *l)
{
    const char *name = "rpcpool_request_duration_seconds";
    family(b, name, "histogram", "Latency of successful attempts at each endpoint, in seconds.");
    for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++) {
        const struct rp_ep_snapshot *e = &s->eps[i];
        uint64_t cum = 0;
        for (int k = 0; k < RP_LAT_BUCKETS - 1; k++) {
            cum += e->hist[k];
            rp_buf_appendf(b, "%s_bucket{endpoint=\"", name);
            label_value(b, l->ep[i], strlen(l->ep[i]));
            rp_buf_appendf(b, "\",le=\"%.6g\"} %" PRIu64 "\n", rp_lat_bucket_upper_us(k) / 1e6,
                           cum);
        }
        cum += e->hist[RP_LAT_BUCKETS - 1];
        rp_buf_appendf(b, "%s_bucket{endpoint=\"", name);
        label_value(b, l->ep[i], strlen(l->ep[i]));
        rp_buf_appendf(b, "\",le=\"+Inf\"} %" PRIu64 "\n", cum);
        rp_buf_appendf(b, "%s_sum{endpoint=\"", name);
        label_value(b, l->ep[i], strlen(l->ep[i]));
        rp_buf_puts(b, "\"} ");
        float_value(b, (double)e->lat_sum_us / 1e6);
        rp_buf_appendf(b, "\n%s_count{endpoint=\"", name);
        label_value(b, l->ep[i], strlen(l->ep[i]));
        rp_buf_appendf(b, "\"} %" PRIu64 "\n", cum);
    }
}

/* The rpcpool_fleet_* families (rpcpool_fleet_connected always). */
static void fleet_metrics(struct rp_buf *b, const struct rp_fleet_snapshot *f)
{
    metric_u64(b, "rpcpool_fleet_connected", "gauge",
               "1 while the fleet agent holds its Redis connections (0 without a fleet).",
               f->configured && f->connected);
    if (!f->configured)
        return;
    rp_buf_appendf(b,
                   "# HELP rpcpool_fleet_mode How takes are served: sharing through Redis, or the "
                   "policy while Redis is unreachable.\n# TYPE rpcpool_fleet_mode gauge\n");
    for (uint32_t m = 0; m <= RP_FLEET_MODE_LEASED_ONLY; m++)
        rp_buf_appendf(b, "rpcpool_fleet_mode{mode=\"%s\"} %d\n", rp_fleet_mode_name(m),
                       f->mode == m);
    metric_u64(b, "rpcpool_fleet_tokens_leased_total", "counter",
               "Tokens granted to this host by the fleet-wide rate limits in Redis.",
               f->tokens_leased);
    metric_u64(b, "rpcpool_fleet_tokens_spent_total", "counter", "Leased tokens spent by requests.",
               f->tokens_spent);
    metric_u64(b, "rpcpool_fleet_leases_total", "counter", "Lease grants received from Redis.",
               f->leases);
    metric_u64(b, "rpcpool_fleet_verdicts_received_total", "counter",
               "Breaker openings and Retry-After holds of other hosts applied here.",
               f->verdicts_received);
    metric_u64(b, "rpcpool_fleet_verdicts_sent_total", "counter",
               "Breaker openings and Retry-After holds of this host published to the fleet.",
               f->verdicts_sent);
}

/* Subscriptions and the head follower. */
static void subs_metrics(struct rp_buf *b, const struct rp_subs_snapshot *u)
{
    family(b, "rpcpool_subscriptions", "gauge", "eth_subscribe subscriptions open, by type.");
    rp_buf_appendf(b, "rpcpool_subscriptions{type=\"newHeads\"} %" PRIu64 "\n", u->heads);
    rp_buf_appendf(b, "rpcpool_subscriptions{type=\"logs\"} %" PRIu64 "\n", u->logs);
    metric_u64(b, "rpcpool_subscription_notifications_total", "counter",
               "eth_subscription notifications written to clients.", u->notifications);
    metric_u64(b, "rpcpool_subscriptions_ended_total", "counter",
               "Subscriptions rpcpool ended with an error (gap beyond backfill_blocks, overrun).",
               u->ended);
    family(b, "rpcpool_subscription_delivery_seconds_total", "counter",
           "Sum over delivered events of the time from the follower learning the block to its "
           "notifications being queued by a worker.");
    rp_buf_appendf(b, "rpcpool_subscription_delivery_seconds_total ");
    float_value(b, (double)u->lat_sum_us / 1e6);
    rp_buf_puts(b, "\n");
    metric_u64(b, "rpcpool_subscription_deliveries_total", "counter",
               "Events delivered by workers (the count for the sum above).", u->lat_count);
    metric_u64(b, "rpcpool_follower_head_block", "gauge", "Last block the head follower delivered.",
               u->follower_head);
    metric_u64(b, "rpcpool_follower_lag_blocks", "gauge",
               "Blocks between the highest head seen and the last one delivered.", u->lag);
    family(b, "rpcpool_follower_fetches_total", "counter", "The head follower's upstream calls.");
    rp_buf_appendf(b, "rpcpool_follower_fetches_total{kind=\"header\"} %" PRIu64 "\n",
                   u->fetch_headers);
    rp_buf_appendf(b, "rpcpool_follower_fetches_total{kind=\"logs\"} %" PRIu64 "\n", u->fetch_logs);
    rp_buf_appendf(b, "rpcpool_follower_fetches_total{kind=\"poll\"} %" PRIu64 "\n",
                   u->fetch_polls);
    rp_buf_appendf(b, "rpcpool_follower_fetches_total{kind=\"failed\"} %" PRIu64 "\n",
                   u->fetch_failed);
    metric_u64(b, "rpcpool_follower_reorgs_total", "counter", "Reorgs the head follower followed.",
               u->reorgs);
    metric_u64(b, "rpcpool_head_feed_live", "gauge",
               "1 while a pushed head (an endpoint's WebSocket feed) is live, else 0.",
               (uint64_t)u->head_feed_live);
}

int rp_metrics_render(struct rp_buf *b, const struct rp_snapshot *s)
{
    struct metrics_labels l;
    int n = s->ep_count < 0 ? 0 : s->ep_count;
    if (n > RP_SHM_MAX_ENDPOINTS)
        n = RP_SHM_MAX_ENDPOINTS;
    for (int i = 0; i < n; i++)
        endpoint_label(s, i, l.ep[i], sizeof l.ep[i]);

    family(b, "rpcpool_requests_total", "counter",
           "Attempts sent to each endpoint by outcome (retried: failed attempts that were "
           "retried on another endpoint).");
    for (int i = 0; i < n; i++) {
        const struct rp_ep_snapshot *e = &s->eps[i];
        ep_sample2(b, "rpcpool_requests_total", l.ep[i], "outcome", "ok");
        rp_buf_appendf(b, "%" PRIu64 "\n", e->ok);
        ep_sample2(b, "rpcpool_requests_total", l.ep[i], "outcome", "failed");
        rp_buf_appendf(b, "%" PRIu64 "\n", e->failed);
        ep_sample2(b, "rpcpool_requests_total", l.ep[i], "outcome", "retried");
        rp_buf_appendf(b, "%" PRIu64 "\n", e->retried);
    }

    family(b, "rpcpool_client_requests_total", "counter",
           "Client requests answered, by result (error: rpcpool answered with its own error).");
    rp_buf_appendf(b, "rpcpool_client_requests_total{result=\"ok\"} %" PRIu64 "\n", s->client_ok);
    rp_buf_appendf(b, "rpcpool_client_requests_total{result=\"error\"} %" PRIu64 "\n",
                   s->client_error);

    metric_u64(b, "rpcpool_consistency_waits_total", "counter",
               "Requests that waited for an endpoint at their connection's chain floor.",
               s->consistency_waits);
    metric_u64(b, "rpcpool_affinity_hits_total", "counter",
               "Nonce reads, gas estimates and sends kept on their connection's endpoint.",
               s->affinity_hits);
    metric_u64(
        b, "rpcpool_lookup_retries_total", "counter",
        "Lookups by hash answered null by a lagging endpoint and asked again at the best head.",
        s->lookup_retries);
    fleet_metrics(b, &s->fleet);

    family(b, "rpcpool_hedges_total", "counter",
           "Hedged reads: second attempts that answered first (won) or were cancelled, failed "
           "or answered second (lost).");
    rp_buf_appendf(b, "rpcpool_hedges_total{outcome=\"won\"} %" PRIu64 "\n", s->hedges_won);
    rp_buf_appendf(b, "rpcpool_hedges_total{outcome=\"lost\"} %" PRIu64 "\n", s->hedges_lost);
    metric_u64(b, "rpcpool_hedges_sent_total", "counter",
               "Hedged reads: second attempts sent (host-wide, within hedge.budget_percent).",
               s->hedges_sent);
    metric_u64(b, "rpcpool_hedge_eligible_calls_total", "counter",
               "Calls that could have been hedged: what hedge.budget_percent is a share of.",
               s->hedge_calls);

    family(b, "rpcpool_cache_requests_total", "counter",
           "Cacheable calls looked up in the response cache, by result.");
    rp_buf_appendf(b, "rpcpool_cache_requests_total{result=\"hit\"} %" PRIu64 "\n", s->cache.hits);
    rp_buf_appendf(b, "rpcpool_cache_requests_total{result=\"miss\"} %" PRIu64 "\n",
                   s->cache.misses);
    metric_u64(b, "rpcpool_coalesced_total", "counter",
               "Calls answered with an identical call's upstream answer (host-wide coalescing).",
               s->cache.coalesced);
    metric_u64(b, "rpcpool_cache_entries", "gauge", "Entries in the response cache.",
               s->cache.entries);
    family(b, "rpcpool_cache_bytes", "gauge",
           "Key and value bytes of the response cache entries (used), and its region (total).");
    rp_buf_appendf(b, "rpcpool_cache_bytes{state=\"used\"} %" PRIu64 "\n", s->cache.bytes_used);
    rp_buf_appendf(b, "rpcpool_cache_bytes{state=\"total\"} %" PRIu64 "\n", s->cache.bytes_total);

    subs_metrics(b, &s->subs);

    histogram(b, s, &l);

    family(b, "rpcpool_endpoint_info", "gauge",
           "Configured endpoints: always 1, with the row id and the redacted URL.");
    for (int i = 0; i < n; i++) {
        const struct rp_ep_snapshot *e = &s->eps[i];
        rp_buf_puts(b, "rpcpool_endpoint_info{endpoint=\"");
        label_value(b, l.ep[i], strlen(l.ep[i]));
        rp_buf_appendf(b, "\",id=\"%" PRIu32 "\",url=\"", e->id);
        label_value(b, e->url, sizeof e->url);
        rp_buf_puts(b, "\"} 1\n");
    }

    family(b, "rpcpool_endpoint_up", "gauge",
           "1 when the endpoint is up (healthy, on the right chain, not lagging, not drained).");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_endpoint_up", l.ep[i]);
        rp_buf_puts(b, s->eps[i].state == RP_EP_UP ? "1\n" : "0\n");
    }

    family(b, "rpcpool_breaker_state", "gauge",
           "Circuit breaker state: 0 closed, 1 open, 2 half-open.");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_breaker_state", l.ep[i]);
        rp_buf_appendf(b, "%" PRIu32 "\n", s->eps[i].breaker);
    }

    family(b, "rpcpool_ratelimit_tokens", "gauge",
           "Rate-limit tokens available now in the endpoint's host-wide bucket.");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_ratelimit_tokens", l.ep[i]);
        float_value(b, s->eps[i].tokens);
        rp_buf_puts(b, "\n");
    }

    family(b, "rpcpool_upstream_connections", "gauge",
           "Upstream connections open to the endpoint, host-wide, by state.");
    for (int i = 0; i < n; i++) {
        ep_sample2(b, "rpcpool_upstream_connections", l.ep[i], "state", "active");
        rp_buf_appendf(b, "%" PRIu32 "\n", s->eps[i].conns_active);
        ep_sample2(b, "rpcpool_upstream_connections", l.ep[i], "state", "idle");
        rp_buf_appendf(b, "%" PRIu32 "\n", s->eps[i].conns_idle);
    }

    family(b, "rpcpool_endpoint_inflight", "gauge",
           "Attempts in flight at the endpoint, host-wide.");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_endpoint_inflight", l.ep[i]);
        rp_buf_appendf(b, "%" PRIu32 "\n", s->eps[i].inflight);
    }

    family(b, "rpcpool_endpoint_head_block", "gauge",
           "Latest block number the endpoint reported (0 when unknown).");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_endpoint_head_block", l.ep[i]);
        rp_buf_appendf(b, "%" PRIu64 "\n", s->eps[i].head_block);
    }

    family(b, "rpcpool_head_feed_connected", "gauge",
           "1 while the endpoint's WebSocket head feed (ws_url) is open and heard from, else 0.");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_head_feed_connected", l.ep[i]);
        rp_buf_appendf(b, "%d\n", s->eps[i].head_feed ? 1 : 0);
    }

    family(b, "rpcpool_endpoint_lag_blocks", "gauge",
           "Blocks the endpoint is behind the best head among healthy endpoints.");
    for (int i = 0; i < n; i++) {
        ep_sample(b, "rpcpool_endpoint_lag_blocks", l.ep[i]);
        rp_buf_appendf(b, "%" PRId64 "\n", s->eps[i].lag);
    }

    uint64_t restarts = 0;
    uint64_t by_state[RP_WORKER_DEAD + 1] = {0};
    for (int i = 0; i < s->worker_count && i < RP_SHM_MAX_WORKERS; i++) {
        const struct rp_worker_snapshot *w = &s->workers[i];
        restarts += w->restarts;
        if (w->kind == RP_KIND_WORKER && w->state <= RP_WORKER_DEAD)
            by_state[w->state]++;
    }
    metric_u64(b, "rpcpool_worker_restarts_total", "counter",
               "Times a worker or prober slot was refilled after its process died.", restarts);

    family(b, "rpcpool_workers", "gauge", "Worker processes by state (the prober excluded).");
    for (uint32_t st = RP_WORKER_STARTING; st <= RP_WORKER_DEAD; st++)
        rp_buf_appendf(b, "rpcpool_workers{state=\"%s\"} %" PRIu64 "\n", rp_worker_state_name(st),
                       by_state[st]);

    metric_u64(b, "rpcpool_generation", "gauge",
               "Configuration generation in force (bumped by every reload).", s->generation);

    return rp_buf_failed(b) ? -1 : 0;
}
