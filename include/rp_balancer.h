/* rp_balancer.h - picking an endpoint among the usable candidates.
 *
 * The caller filters candidates (drained, down, quarantined, lagging, open
 * breakers and endpoints already tried are left out) and passes the rest.
 * Strategies (docs/interface.md section 2, `balance`):
 *   p2c         two distinct random candidates; the lower
 *               (inflight + 1) * ewma_us / weight wins
 *   round_robin candidate seq % n, seq from one host-wide counter
 *   weighted    smooth weighted round-robin (nginx's), position seq in the
 *               schedule of the candidate set, so the whole host follows one
 *               rotation
 *   random      uniform
 * Pure: seq and rnd come in as arguments.
 */
#ifndef RP_BALANCER_H
#define RP_BALANCER_H

#include <stdint.h>

#include "rp_config.h"

struct rp_balancer_candidate {
    uint32_t id;       /* endpoint id, returned to the caller unchanged */
    uint32_t weight;   /* >= 1 */
    uint32_t inflight; /* attempts in flight host-wide */
    uint64_t ewma_us;  /* 0 = no sample yet */
};

#define RP_BALANCER_MAX_SCHEDULE (RP_MAX_ENDPOINTS * 1000)

/* Per-process cache of the weighted schedule for the last candidate set. */
struct rp_balancer {
    uint64_t key;      /* hash of the (id, weight) set the schedule was built for */
    uint32_t len;      /* schedule length = sum of weights */
    uint8_t *schedule; /* candidate positions, owned; NULL until first use */
};

void rp_balancer_init(struct rp_balancer *b);
void rp_balancer_free(struct rp_balancer *b);

/* Pick among C[0..N) (N >= 1). Returns the index into C. */
int rp_balancer_pick(struct rp_balancer *b, enum rp_balance mode,
                     const struct rp_balancer_candidate *c, int n, uint64_t seq, uint64_t rnd);

#endif
