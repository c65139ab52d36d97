/* fleet_view.c - the fleet region, copied and rendered (rp_fleet_view.h). */
#include "rp_fleet_view.h"

#include <inttypes.h>
#include <string.h>

#include "rp_ratelimit.h"
#include "rp_shm_abi.h"
#include "rp_shm_view.h"

void rp_fleet_snap(const void *base, size_t size, uint64_t now_ms, struct rp_fleet_snapshot *out)
{
    memset(out, 0, sizeof *out);
    const struct rp_shm_header *h = base;
    if (size < sizeof *h || h->fleet.count < 1 || h->fleet.stride != sizeof(struct rp_shm_fleet) ||
        h->fleet.offset > size || size - h->fleet.offset < sizeof(struct rp_shm_fleet) ||
        h->fleet.offset % 128 != 0)
        return;
    const struct rp_shm_fleet *f = (const void *)((const char *)base + h->fleet.offset);
    out->configured = atomic_load_explicit(&f->configured, memory_order_relaxed) != 0;
    out->connected = atomic_load_explicit(&f->connected, memory_order_relaxed) != 0;
    out->mode = atomic_load_explicit(&f->mode, memory_order_relaxed);
    out->hosts = atomic_load_explicit(&f->hosts, memory_order_relaxed);
    out->on_down = atomic_load_explicit(&f->on_down, memory_order_relaxed);
    out->leases = atomic_load_explicit(&f->leases, memory_order_relaxed);
    out->verdicts_received = atomic_load_explicit(&f->verdicts_received, memory_order_relaxed);
    out->verdicts_sent = atomic_load_explicit(&f->verdicts_sent, memory_order_relaxed);
    out->connects = atomic_load_explicit(&f->connects, memory_order_relaxed);
    uint64_t since = atomic_load_explicit(&f->since_ms, memory_order_relaxed);
    out->since_age_ms = since && now_ms > since ? now_ms - since : 0;
    for (unsigned i = 0; i < RP_SHM_MAX_ENDPOINTS; i++) {
        uint64_t c = atomic_load_explicit(&f->eps[i].credited, memory_order_relaxed);
        uint64_t s = atomic_load_explicit(&f->eps[i].spent, memory_order_relaxed);
        out->tokens_leased += c;
        out->tokens_spent += s;
        out->tokens_balance += c > s ? c - s : 0;
        out->tokens_denied += atomic_load_explicit(&f->eps[i].denied, memory_order_relaxed);
    }
}

void rp_fleet_snap_tokens(const void *base, size_t size, struct rp_snapshot *out)
{
    const struct rp_shm_header *h = base;
    if (!out->fleet.configured || h->endpoints.stride < sizeof(struct rp_shm_endpoint) ||
        h->endpoints.offset > size)
        return;
    const struct rp_shm_fleet *f = (const void *)((const char *)base + h->fleet.offset);
    uint64_t now_ns = out->now_ms * 1000000ull;
    for (int i = 0; i < out->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++) {
        struct rp_ep_snapshot *e = &out->eps[i];
        if (e->id >= RP_SHM_MAX_ENDPOINTS || e->id >= h->endpoints.count ||
            (size - h->endpoints.offset) / h->endpoints.stride <= e->id)
            continue;
        const struct rp_shm_endpoint *row =
            (const void *)((const char *)base + h->endpoints.offset +
                           (size_t)e->id * h->endpoints.stride);
        uint64_t cr = atomic_load_explicit(&f->eps[e->id].credited, memory_order_relaxed);
        uint64_t sp = atomic_load_explicit(&f->eps[e->id].spent, memory_order_relaxed);
        double tokens = cr > sp ? (double)(cr - sp) : 0.0;
        if (out->fleet.mode == RP_FLEET_MODE_FAIR_SHARE) {
            uint64_t hosts = out->fleet.hosts ? out->fleet.hosts : 1;
            uint64_t interval = row->rl_interval_ns ? row->rl_interval_ns : 1;
            struct rp_gcra_params fp = {.interval_ns = interval * hosts,
                                        .burst = row->rl_burst / hosts ? row->rl_burst / hosts : 1};
            tokens += rp_gcra_tokens(atomic_load_explicit(&row->gcra_tat_ns, memory_order_relaxed),
                                     &fp, now_ns);
        }
        e->tokens = tokens;
    }
}

const char *rp_fleet_mode_name(uint32_t mode)
{
    switch (mode) {
    case RP_FLEET_MODE_STARTING:
        return "starting";
    case RP_FLEET_MODE_SHARING:
        return "sharing";
    case RP_FLEET_MODE_FAIR_SHARE:
        return "fair_share";
    case RP_FLEET_MODE_LEASED_ONLY:
        return "leased_only";
    }
    return "unknown";
}

const char *rp_fleet_policy_name(uint32_t on_down)
{
    return on_down == 1 ? "leased_only" : "fair_share"; /* enum rp_fleet_down */
}

int rp_fleet_status_append(struct rp_buf *b, const struct rp_fleet_snapshot *f)
{
    if (!f->configured)
        return 0;
    return rp_buf_appendf(
        b,
        ",\"fleet\":{\"connected\":%s,\"mode\":\"%s\",\"on_redis_down\":\"%s\",\"hosts\":%" PRIu32
        ",\"since_ms\":%" PRIu64 ",\"connects\":%" PRIu64 ",\"leases\":%" PRIu64
        ",\"tokens_leased\":%" PRIu64 ",\"tokens_spent\":%" PRIu64 ",\"tokens_balance\":%" PRIu64
        ",\"tokens_denied\":%" PRIu64 ",\"verdicts_received\":%" PRIu64
        ",\"verdicts_sent\":%" PRIu64 "}",
        f->connected ? "true" : "false", rp_fleet_mode_name(f->mode),
        rp_fleet_policy_name(f->on_down), f->hosts, f->since_age_ms, f->connects, f->leases,
        f->tokens_leased, f->tokens_spent, f->tokens_balance, f->tokens_denied,
        f->verdicts_received, f->verdicts_sent);
}

void rp_fleet_table(FILE *out, const struct rp_fleet_snapshot *f)
{
    if (!f->configured)
        return;
    fprintf(out,
            "fleet: %s, mode %s (on_redis_down %s, hosts %" PRIu32 "); tokens leased %" PRIu64
            ", spent %" PRIu64 ", on hand %" PRIu64 "; verdicts received %" PRIu64 ", sent %" PRIu64
            "\n",
            f->connected ? "connected" : "NOT connected", rp_fleet_mode_name(f->mode),
            rp_fleet_policy_name(f->on_down), f->hosts, f->tokens_leased, f->tokens_spent,
            f->tokens_balance, f->verdicts_received, f->verdicts_sent);
}
