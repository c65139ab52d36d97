/* lease.c - lease sizing from the host's recent demand (rp_fleet_lease.h). */
#include "rp_fleet_lease.h"

#include <math.h>

void rp_lease_init(struct rp_lease *l)
{
    l->last_ns = 0;
    l->last_demand = 0;
    l->rate_tps = 0.0;
}

/* The first observation only sets the origin; later ones fold the rate of
 * the interval into the average with weight 1 - exp(-dt / tau). A demand
 * total that went backwards (a row reset) restarts from it. */
void rp_lease_observe(struct rp_lease *l, uint64_t demand, uint64_t now_ns)
{
    if (l->last_ns == 0 || now_ns < l->last_ns || demand < l->last_demand) {
        l->last_ns = now_ns ? now_ns : 1;
        l->last_demand = demand;
        return;
    }
    if (now_ns == l->last_ns)
        return;
    uint64_t dt_ns = now_ns - l->last_ns;
    double inst = (double)(demand - l->last_demand) * 1e9 / (double)dt_ns;
    double w = 1.0 - exp(-(double)dt_ns / (double)RP_LEASE_TAU_NS);
    l->rate_tps += w * (inst - l->rate_tps);
    l->last_ns = now_ns;
    l->last_demand = demand;
}

uint64_t rp_lease_cap(uint64_t burst, uint32_t hosts)
{
    uint64_t h = hosts ? hosts : 1;
    uint64_t c = burst / h;
    return c ? c : 1;
}

uint64_t rp_lease_target(const struct rp_lease *l, uint64_t burst, uint32_t hosts)
{
    uint64_t cap = rp_lease_cap(burst, hosts);
    double want = ceil(l->rate_tps * (double)RP_LEASE_HORIZON_NS / 1e9);
    if (!(want >= 1.0))
        return 1;
    if (want >= (double)cap)
        return cap;
    return (uint64_t)want;
}

uint64_t rp_lease_want(const struct rp_lease *l, uint64_t balance, uint64_t burst, uint32_t hosts)
{
    uint64_t target = rp_lease_target(l, burst, hosts);
    if (balance >= target || balance * 2 > target)
        return 0;
    return target - balance;
}
