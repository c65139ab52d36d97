/* rp_fleet.h - the hot path of fleet mode: taking tokens that the fleet
 * agent leased from Redis, all in shared memory (no process ever waits on
 * Redis to take a token).
 *
 * With `fleet` configured, a take of N tokens (a request of N calls, a
 * probe) on an endpoint first spends N leased tokens of its row
 * (rp_fleet_abi.h: one CAS, a whole take or none). When the row has fewer:
 *   - Redis reachable (SHARING), or not yet reached (STARTING), or
 *     unreachable under `leased_only`: refused; the refusal is counted as
 *     demand (the agent leases more) and the caller waits a little;
 *   - Redis unreachable under `fair_share`: the host's own GCRA word of the
 *     endpoint at quota / hosts (rate and burst divided by fleet.hosts).
 * Pure apart from the shared words: time comes in as now_ns.
 */
#ifndef RP_FLEET_H
#define RP_FLEET_H

#include <stdint.h>

#include "rp_ratelimit.h"
#include "rp_shm_abi.h"

/* Shortest and longest wait suggested after a refused leased take. */
#define RP_FLEET_WAIT_MIN_NS 2000000ull   /* 2 ms */
#define RP_FLEET_WAIT_MAX_NS 100000000ull /* 100 ms */

/* The fleet region of the segment H. */
static inline struct rp_shm_fleet *rp_shm_fleet_of(struct rp_shm_header *h)
{
    return (struct rp_shm_fleet *)((char *)h + h->fleet.offset);
}

/* Spend N leased tokens of cell C: 1 when taken, 0 when fewer are there
 * (nothing taken). */
int rp_fleet_spend(struct rp_shm_fleet_ep *c, uint64_t n);

/* Leased tokens of cell C not yet spent. */
uint64_t rp_fleet_balance(const struct rp_shm_fleet_ep *c);

/* The fair share of P among HOSTS hosts: interval times HOSTS, burst
 * divided by HOSTS (at least 1). */
struct rp_gcra_params rp_fleet_fair_params(const struct rp_gcra_params *p, uint32_t hosts);

/* Take N tokens of endpoint row ROW (whose host GCRA word is TAT and limit
 * P) in fleet region F at now_ns, with rp_gcra_take()'s answer: 0 taken,
 * RP_GCRA_NEVER when N is above the burst, else the ns to wait. */
uint64_t rp_fleet_take(struct rp_shm_fleet *f, unsigned row, _Atomic uint64_t *tat,
                       const struct rp_gcra_params *p, uint64_t n, uint64_t now_ns);

#endif
