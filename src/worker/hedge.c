/* hedge.c - hedged reads' decisions: recent latency, the delay, the budget
 * (rp_hedge.h). No worker state here: time and sums are passed in, so the
 * unit tests drive it as they like; request.c runs the race itself. */
#include "rp_hedge.h"

#include "rp_chain.h"

void rp_hedge_lat_fold(struct rp_hedge_lat *l, const uint64_t *cum, unsigned ticks)
{
    double f = 1.0;
    for (unsigned i = 0; i < ticks && f > 1e-9; i++)
        f *= RP_HEDGE_DECAY;
    if (f <= 1e-9)
        f = 0.0;
    for (int b = 0; b < RP_LAT_BUCKETS; b++) {
        uint64_t add = cum[b] >= l->last[b] ? cum[b] - l->last[b] : 0;
        l->recent[b] = l->recent[b] * f + (double)add;
        l->last[b] = cum[b];
    }
}

double rp_hedge_quantile_us(const double *hist, double q, double min)
{
    double total = 0.0;
    for (int b = 0; b < RP_LAT_BUCKETS; b++)
        total += hist[b];
    if (total < min || total <= 0.0)
        return 0.0;
    double want = q * total, seen = 0.0;
    for (int b = 0; b < RP_LAT_BUCKETS; b++) {
        if (hist[b] <= 0.0)
            continue;
        if (seen + hist[b] >= want) {
            double lo = b == 0 ? 0.0 : rp_lat_bucket_upper_us(b - 1);
            double hi = rp_lat_bucket_upper_us(b);
            double frac = (want - seen) / hist[b];
            return lo + (hi - lo) * frac;
        }
        seen += hist[b];
    }
    return rp_lat_bucket_upper_us(RP_LAT_BUCKETS - 1);
}

uint64_t rp_hedge_delay_us(double ep_q_us, double pool_q_us, int64_t attempt_timeout_ms)
{
    uint64_t ceil_us = RP_HEDGE_CEIL_US;
    if (attempt_timeout_ms > 0 && (uint64_t)attempt_timeout_ms * 500u < ceil_us)
        ceil_us = (uint64_t)attempt_timeout_ms * 500u; /* half of it, in us */
    if (ceil_us < RP_HEDGE_FLOOR_US)
        ceil_us = RP_HEDGE_FLOOR_US;
    double q = ep_q_us;
    if (pool_q_us > 0.0 && (q <= 0.0 || pool_q_us < q))
        q = pool_q_us;
    if (q <= 0.0)
        return ceil_us; /* nothing known: only the slowest calls */
    if (q < RP_HEDGE_FLOOR_US)
        return RP_HEDGE_FLOOR_US;
    if (q > (double)ceil_us)
        return ceil_us;
    return (uint64_t)q;
}

int rp_hedge_eligible(int is_batch, int answer, int no_retry, int pinned, uint64_t only_mask,
                      uint64_t prefer_mask, int chain_kind)
{
    if (is_batch || !answer || no_retry || pinned || only_mask || prefer_mask)
        return 0;
    return chain_kind != RP_CHAIN_FILTER_NEW && chain_kind != RP_CHAIN_FILTER_USE &&
           chain_kind != RP_CHAIN_TX_FLOW;
}

int rp_hedge_budget_sample(struct rp_hedge_budget *b, uint64_t now_ms, uint64_t calls,
                           uint64_t hedges)
{
    if (b->n) {
        unsigned last = (b->next + RP_HEDGE_RING - 1) % RP_HEDGE_RING;
        if (now_ms < b->at_ms[last] + RP_HEDGE_TICK_MS)
            return 0;
    }
    b->at_ms[b->next] = now_ms;
    b->calls[b->next] = calls;
    b->hedges[b->next] = hedges;
    b->next = (b->next + 1) % RP_HEDGE_RING;
    if (b->n < RP_HEDGE_RING)
        b->n++;
    return 1;
}

int rp_hedge_budget_allows(const struct rp_hedge_budget *b, uint64_t now_ms, uint64_t calls,
                           uint64_t hedges, unsigned want, int64_t percent)
{
    if (percent <= 0)
        return 0;
    /* the oldest sample inside the window, whose sums are not above now's */
    int base = -1;
    for (unsigned k = 0; k < b->n; k++) {
        unsigned i = (b->next + RP_HEDGE_RING - b->n + k) % RP_HEDGE_RING;
        if (b->at_ms[i] > now_ms || now_ms - b->at_ms[i] > RP_HEDGE_WINDOW_MS)
            continue;
        if (b->calls[i] > calls || b->hedges[i] > hedges)
            continue; /* a sum went down since: not a base */
        base = (int)i;
        break;
    }
    if (base < 0)
        return 0;
    uint64_t dc = calls - b->calls[base], dh = hedges - b->hedges[base];
    return (dh + want) * 100u <= (uint64_t)percent * dc;
}

/* Worker slots whose rows may hold counts: [0, slots_hwm). */
static unsigned hedge_hwm(struct rp_shm_header *h)
{
    unsigned n = atomic_load_explicit(&h->slots_hwm, memory_order_acquire);
    return n > RP_SHM_AUX_FIRST ? RP_SHM_AUX_FIRST : n;
}

void rp_hedge_host_counts(struct rp_shm_header *h, uint64_t *calls, uint64_t *hedges)
{
    unsigned n = hedge_hwm(h);
    uint64_t c = 0, s = 0;
    for (unsigned w = 0; w < n; w++) {
        c += atomic_load_explicit(&rp_shm_stats(h, w, 0)->hedge_calls, memory_order_relaxed);
        for (unsigned e = 0; e < RP_SHM_MAX_ENDPOINTS; e++)
            s += atomic_load_explicit(&rp_shm_stats(h, w, e)->hedges_sent, memory_order_relaxed);
    }
    *calls = c;
    *hedges = s;
}

void rp_hedge_host_hist(struct rp_shm_header *h, unsigned ep, uint64_t *out)
{
    unsigned n = hedge_hwm(h);
    for (int b = 0; b < RP_LAT_BUCKETS; b++)
        out[b] = 0;
    for (unsigned w = 0; w < n; w++) {
        struct rp_shm_epstats *st = rp_shm_stats(h, w, ep);
        for (int b = 0; b < RP_LAT_BUCKETS; b++)
            out[b] += atomic_load_explicit(&st->hist[b], memory_order_relaxed);
    }
}
