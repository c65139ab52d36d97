/* balancer.c - picking an endpoint among the usable candidates.
 *
 * Pure functions of the candidate list, a sequence number and a random
 * number; the only state is the per-process cache of the weighted schedule.
 */
#include "rp_balancer.h"

#include <stdlib.h>

static uint32_t cand_weight(const struct rp_balancer_candidate *c)
{
    return c->weight ? c->weight : 1;
}

/* Power of two choices: two distinct candidates drawn from rnd (the first
 * uniformly, the second uniformly among the others), the one with the lower
 * (inflight + 1) * max(ewma_us, 1) / weight wins; on a tie the first drawn,
 * which is itself uniform. Scores are compared by cross-multiplying the
 * weights, in double (exact while the products stay below 2^53, and never
 * overflowing beyond). */
static int pick_p2c(const struct rp_balancer_candidate *c, int n, uint64_t rnd)
{
    if (n == 1)
        return 0;
    uint64_t un = (uint64_t)n;
    int a = (int)(rnd % un);
    int b = (int)((rnd / un) % (un - 1));
    if (b >= a)
        b++;

    double cost_a = ((double)c[a].inflight + 1.0) * (double)(c[a].ewma_us ? c[a].ewma_us : 1);
    double cost_b = ((double)c[b].inflight + 1.0) * (double)(c[b].ewma_us ? c[b].ewma_us : 1);
    /* cost_a / w_a <= cost_b / w_b  <=>  cost_a * w_b <= cost_b * w_a */
    if (cost_a * (double)cand_weight(&c[b]) > cost_b * (double)cand_weight(&c[a]))
        return b;
    return a;
}

/* FNV-1a 64 over the candidate count and each (id, weight) in order: the
 * cache key of the weighted schedule. */
static uint64_t fnv_word(uint64_t h, uint64_t v)
{
    for (int byte = 0; byte < 8; byte++) {
        h ^= (v >> (8 * byte)) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t set_key(const struct rp_balancer_candidate *c, int n)
{
    uint64_t h = fnv_word(0xcbf29ce484222325ull, (uint64_t)(uint32_t)n);
    for (int i = 0; i < n; i++)
        h = fnv_word(h, ((uint64_t)c[i].id << 32) | cand_weight(&c[i]));
    return h;
}

/* Fill SCHED[0..total) with nginx's smooth weighted round-robin over C:
 * each step every candidate's current weight grows by its weight, the
 * largest (the first on a tie) is chosen and loses the total. Over one
 * period of sum(weights) steps each candidate is chosen exactly weight
 * times, spread as evenly as the weights allow (5,1,1 -> a a b a c a a). */
static void build_swrr(const struct rp_balancer_candidate *c, int n, uint64_t total, uint8_t *sched)
{
    int64_t current[RP_MAX_ENDPOINTS] = {0};
    for (uint64_t step = 0; step < total; step++) {
        int best = 0;
        for (int i = 0; i < n; i++) {
            current[i] += cand_weight(&c[i]);
            if (current[i] > current[best])
                best = i;
        }
        current[best] -= (int64_t)total;
        sched[step] = (uint8_t)best;
    }
}

/* Position seq of the cumulative-weight layout: exact per-period counts but
 * not smooth. Used only when the schedule cannot be cached (a candidate set
 * beyond the schedule's bounds, or no memory). */
static int pick_cumulative(const struct rp_balancer_candidate *c, int n, uint64_t total,
                           uint64_t seq)
{
    uint64_t pos = seq % total;
    for (int i = 0; i < n; i++) {
        uint64_t w = cand_weight(&c[i]);
        if (pos < w)
            return i;
        pos -= w;
    }
    return n - 1;
}

/* Smooth weighted round-robin at position seq of the candidate set's
 * schedule. The schedule is rebuilt only when the (id, weight) list differs
 * from the cached one; every process builds the same schedule for the same
 * set, so with one host-wide seq the whole host follows one rotation. */
static int pick_weighted(struct rp_balancer *b, const struct rp_balancer_candidate *c, int n,
                         uint64_t seq)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += cand_weight(&c[i]);
    if (!b || n > RP_MAX_ENDPOINTS || total > RP_BALANCER_MAX_SCHEDULE)
        return pick_cumulative(c, n, total, seq);

    uint64_t key = set_key(c, n);
    if (!b->schedule || b->key != key || b->len != total) {
        uint8_t *sched = realloc(b->schedule, (size_t)total);
        if (!sched) {
            free(b->schedule);
            rp_balancer_init(b);
            return pick_cumulative(c, n, total, seq);
        }
        build_swrr(c, n, total, sched);
        b->schedule = sched;
        b->key = key;
        b->len = (uint32_t)total;
    }
    int pos = b->schedule[seq % b->len];
    return pos < n ? pos : n - 1;
}

void rp_balancer_init(struct rp_balancer *b)
{
    b->key = 0;
    b->len = 0;
    b->schedule = NULL;
}

void rp_balancer_free(struct rp_balancer *b)
{
    free(b->schedule);
    rp_balancer_init(b);
}

/* Pick among C[0..N) with MODE; returns an index into C (0 when N <= 1). */
int rp_balancer_pick(struct rp_balancer *b, enum rp_balance mode,
                     const struct rp_balancer_candidate *c, int n, uint64_t seq, uint64_t rnd)
{
    if (n <= 1)
        return 0;
    switch (mode) {
    case RP_BALANCE_ROUND_ROBIN:
        return (int)(seq % (uint64_t)n);
    case RP_BALANCE_WEIGHTED:
        return pick_weighted(b, c, n, seq);
    case RP_BALANCE_RANDOM:
        return (int)(rnd % (uint64_t)n);
    case RP_BALANCE_P2C:
    default:
        return pick_p2c(c, n, rnd);
    }
}
