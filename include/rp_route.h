/* rp_route.h - routing as a pure function: which endpoints may take a
 * request now, and in which order they are tried.
 *
 * The worker takes a snapshot of every configured endpoint (struct
 * rp_route_ep: what shm and its own counters say at this instant), and
 * rp_route_plan() filters and orders it for one request; rp_route_next()
 * then hands out the endpoints one by one in the balancer's pick order.
 * Nothing here reads a clock, shared memory or a global: the side effects
 * of routing (the breaker's trial slots, the token bucket, queueing for a
 * connection, timers) stay with the caller (src/worker/request.c), which
 * asks for the next candidate when one refuses.
 *
 * Filters, in order: the slot is configured (in_use), the request has not
 * tried it yet, it is the warm-up's pinned endpoint (when pinned), not
 * drained by the operator, state up, no Retry-After hold past now, and its
 * breaker would allow a request (a half-open one does; the trial slot is
 * the caller's to take), the request's only endpoint (a filter's), and a
 * known head at or above the request's minimum (a connection's chain floor,
 * or the block it asks for). Order: the preferred endpoint first (a
 * connection's transaction-flow affinity), then endpoints where this worker
 * has a free connection, the busy ones behind them (tried, queued for a
 * connection, only when every free one refuses: never dropped); within
 * each group, the balancer's pick (rp_balancer.h).
 */
#ifndef RP_ROUTE_H
#define RP_ROUTE_H

#include <stdint.h>

#include "rp_balancer.h"
#include "rp_config.h"

/* An old EWMA sample halves for every RP_EWMA_HALF_LIFE_MS it has not been
 * refreshed (see rp_route_latency_us()). */
#define RP_EWMA_HALF_LIFE_MS 1000

/* No endpoint: rp_route_next() on an empty plan, rp_route_call.pin_ep
 * when the request may go anywhere. */
#define RP_ROUTE_NONE (-1)

/* One configured endpoint as the worker sees it at routing time. */
struct rp_route_ep {
    uint32_t id;            /* endpoint index, returned by rp_route_next() */
    int in_use;             /* a configured slot; nothing else is read when 0 */
    int drained;            /* drained by the operator */
    int up;                 /* the prober's state is RP_EP_UP */
    uint64_t hold_until_ms; /* Retry-After hold until (segment clock), 0 = none */
    uint64_t breaker;       /* the breaker word (rp_breaker.h) */
    uint64_t ewma;          /* the latency EWMA word (RP_EWMA_*, rp_shm_abi.h) */
    uint32_t weight;        /* configured weight; 0 counts as 1 */
    uint32_t inflight;      /* attempts in flight host-wide */
    int has_free_conn;      /* this worker has a connection slot free on it */
    uint64_t head_block;    /* latest block seen on it, 0 = unknown */
};

/* What routing needs of the request. */
struct rp_route_call {
    uint64_t tried_mask;  /* endpoints already tried (bit = id) */
    int pin_ep;           /* a warm-up: only this endpoint; else RP_ROUTE_NONE */
    uint64_t only_mask;   /* 0 = any endpoint; else only these (a filter's endpoint) */
    uint64_t prefer_mask; /* handed out first when usable (affinity); 0 = none */
    uint64_t min_head;    /* only endpoints whose known head is at least this; 0 = any */
};

/* The usable endpoints of one request, in the order they are handed out. */
struct rp_route_plan {
    struct rp_balancer_candidate cand[RP_MAX_ENDPOINTS];
    int n;     /* candidates left */
    int nfree; /* cand[0..nfree) have a free connection and are picked first; 0 = no split */
    uint64_t prefer_mask; /* ids handed out before any pick (one at most in practice) */
};

/* The EWMA word EWMA's latency at NOW_MS: halved for every
 * RP_EWMA_HALF_LIFE_MS since it was taken. */
uint64_t rp_route_ewma_decayed(uint64_t ewma, uint64_t now_ms);

/* The latency the balancer should see for an endpoint whose breaker and
 * EWMA words are BREAKER and EWMA at NOW_MS: the EWMA only moves when
 * requests succeed, so an endpoint that was once slow would never be picked
 * again by p2c and never show it got better; the sample decays with
 * RP_EWMA_HALF_LIFE_MS. A half-open endpoint counts as fast (0), so its
 * trial request comes soon. */
uint64_t rp_route_latency_us(uint64_t breaker, uint64_t ewma, uint64_t now_ms);

/* Is endpoint E usable for CALL at NOW_MS (segment clock)? */
int rp_route_usable(const struct rp_route_ep *e, const struct rp_route_call *call, uint64_t now_ms);

/* Fill PLAN with the endpoints of EPS[0..NEP) usable for CALL at NOW_MS,
 * the ones with a free connection first. Returns the number of candidates. */
int rp_route_plan(struct rp_route_plan *plan, const struct rp_route_ep *eps, int nep,
                  const struct rp_route_call *call, uint64_t now_ms);

/* The highest known head among the endpoints of EPS[0..NEP) usable for
 * CALL at NOW_MS, ignoring CALL's min_head; 0 when none is known. */
uint64_t rp_route_best_head(const struct rp_route_ep *eps, int nep,
                            const struct rp_route_call *call, uint64_t now_ms);

/* Take the next endpoint out of PLAN: the preferred one when it is in the
 * plan, else the balancer B's pick (MODE, with the round-robin sequence SEQ
 * and the random word RND) among the free ones while any is left, then
 * among the rest. Returns its id, or RP_ROUTE_NONE when PLAN is empty. */
int rp_route_next(struct rp_route_plan *plan, struct rp_balancer *b, enum rp_balance mode,
                  uint64_t seq, uint64_t rnd);

#endif
