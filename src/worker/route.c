/* route.c - routing as a pure function of an endpoint snapshot and the
 * request (see rp_route.h). */
#include "rp_route.h"

#include "rp_breaker.h"
#include "rp_shm_abi.h"

uint64_t rp_route_ewma_decayed(uint64_t ewma, uint64_t now_ms)
{
    uint64_t at = rp_ewma_at_ms(ewma), us = rp_ewma_latency_us(ewma);
    uint64_t halvings = now_ms > at ? (now_ms - at) / RP_EWMA_HALF_LIFE_MS : 0;
    return halvings >= 63 ? 0 : us >> halvings;
}

uint64_t rp_route_latency_us(uint64_t breaker, uint64_t ewma, uint64_t now_ms)
{
    if (rp_breaker_state_at(breaker, now_ms) == RP_BREAKER_HALF_OPEN)
        return 0;
    return rp_route_ewma_decayed(ewma, now_ms);
}

int rp_route_usable(const struct rp_route_ep *e, const struct rp_route_call *call, uint64_t now_ms)
{
    if (call->pin_ep != RP_ROUTE_NONE && e->id != (uint32_t)call->pin_ep)
        return 0;
    if (call->only_mask && !(call->only_mask & (1ull << e->id)))
        return 0;
    if (call->min_head && e->head_block < call->min_head)
        return 0;
    if (!e->in_use || (call->tried_mask & (1ull << e->id)))
        return 0;
    if (e->drained || !e->up)
        return 0;
    if (e->hold_until_ms > now_ms)
        return 0;
    return rp_breaker_would_allow(e->breaker, now_ms);
}

/* Filter, then move the endpoints with a free connection to the front
 * (only when some are free and some are not: otherwise there is one
 * group, and nfree covers it). */
int rp_route_plan(struct rp_route_plan *plan, const struct rp_route_ep *eps, int nep,
                  const struct rp_route_call *call, uint64_t now_ms)
{
    struct rp_balancer_candidate *cand = plan->cand;
    unsigned char isfree[RP_MAX_ENDPOINTS]; /* beside cand[]: has_free_conn */
    int n = 0, full = 0;
    for (int i = 0; i < nep; i++) {
        const struct rp_route_ep *e = &eps[i];
        if (!rp_route_usable(e, call, now_ms))
            continue;
        cand[n].id = e->id;
        cand[n].weight = e->weight ? e->weight : 1;
        cand[n].inflight = e->inflight;
        cand[n].ewma_us = rp_route_latency_us(e->breaker, e->ewma, now_ms);
        isfree[n] = e->has_free_conn != 0;
        if (!isfree[n])
            full++;
        n++;
    }
    int nfree = n;
    if (full && full < n) {
        nfree = 0;
        for (int j = 0; j < n; j++) {
            if (isfree[j]) {
                struct rp_balancer_candidate tmp = cand[nfree];
                unsigned char f = isfree[nfree];
                isfree[nfree] = isfree[j];
                cand[nfree++] = cand[j];
                isfree[j] = f;
                cand[j] = tmp;
            }
        }
    }
    plan->n = n;
    plan->nfree = nfree;
    plan->prefer_mask = call->prefer_mask;
    return n;
}

uint64_t rp_route_best_head(const struct rp_route_ep *eps, int nep,
                            const struct rp_route_call *call, uint64_t now_ms)
{
    struct rp_route_call any = *call;
    any.min_head = 0;
    uint64_t best = 0;
    for (int i = 0; i < nep; i++)
        if (rp_route_usable(&eps[i], &any, now_ms) && eps[i].head_block > best)
            best = eps[i].head_block;
    return best;
}

/* Remove candidate K of PLAN, keeping the busy ones behind the free ones. */
static void route_take(struct rp_route_plan *plan, int k)
{
    struct rp_balancer_candidate *cand = plan->cand;
    if (k < plan->nfree) {
        cand[k] = cand[--plan->nfree];
        cand[plan->nfree] = cand[--plan->n];
    } else {
        cand[k] = cand[--plan->n];
    }
}

int rp_route_next(struct rp_route_plan *plan, struct rp_balancer *b, enum rp_balance mode,
                  uint64_t seq, uint64_t rnd)
{
    if (plan->n <= 0)
        return RP_ROUTE_NONE;
    struct rp_balancer_candidate *cand = plan->cand;
    int k = -1;
    for (int j = 0; j < plan->n && k < 0 && plan->prefer_mask; j++)
        if (plan->prefer_mask & (1ull << cand[j].id))
            k = j;
    plan->prefer_mask = 0; /* preferred once: then the balancer decides */
    if (k < 0)
        k = rp_balancer_pick(b, mode, cand, plan->nfree > 0 ? plan->nfree : plan->n, seq, rnd);
    int id = (int)cand[k].id;
    route_take(plan, k);
    return id;
}
