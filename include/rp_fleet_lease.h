/* rp_fleet_lease.h - how many tokens the fleet agent leases, and when: pure
 * functions of the host's recent demand, with time passed in.
 *
 * Demand is what takers spent of the leased tokens plus what they were
 * refused (both only grow, rp_fleet_abi.h). Its rate is an exponentially
 * weighted average (time constant RP_LEASE_TAU_NS). The agent keeps the
 * row's balance near the demand of the next RP_LEASE_HORIZON_NS, at least
 * one token and at most the host's share of the burst (burst / hosts): it
 * asks for target - balance once the balance fell to half the target. So a
 * host never holds more than one lease of unspent tokens, and the fleet
 * bound is burst + rate * t plus one lease per host.
 */
#ifndef RP_FLEET_LEASE_H
#define RP_FLEET_LEASE_H

#include <stdint.h>

#define RP_LEASE_TAU_NS     500000000ull /* demand average time constant */
#define RP_LEASE_HORIZON_NS 200000000ull /* a lease covers this much demand */

struct rp_lease {
    uint64_t last_ns;     /* when demand was last observed; 0 = never */
    uint64_t last_demand; /* the demand total then */
    double rate_tps;      /* averaged demand, tokens per second */
};

/* Forget everything (rate 0). */
void rp_lease_init(struct rp_lease *l);

/* Observe the demand total DEMAND (spent + refused, only grows) at NOW_NS. */
void rp_lease_observe(struct rp_lease *l, uint64_t demand, uint64_t now_ns);

/* The most unspent tokens a host holds: max(1, burst / hosts). */
uint64_t rp_lease_cap(uint64_t burst, uint32_t hosts);

/* The balance the agent aims at: the demand of the horizon, in [1, cap]. */
uint64_t rp_lease_target(const struct rp_lease *l, uint64_t burst, uint32_t hosts);

/* Tokens to ask Redis for now, holding BALANCE: target - balance once the
 * balance is at most half the target, else 0. */
uint64_t rp_lease_want(const struct rp_lease *l, uint64_t balance, uint64_t burst, uint32_t hosts);

#endif
