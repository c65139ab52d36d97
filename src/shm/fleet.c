/* fleet.c - taking leased tokens in fleet mode (rp_fleet.h).
 *
 * Memory ordering: the agent credits with a release fetch_add; a taker
 * loads `credited` with acquire and moves `spent` by CAS (acq_rel), so the
 * takes of all processes form one order on `spent` and none passes the
 * credit it read. `credited` only grows, so a stale load only refuses.
 */
#include "rp_fleet.h"

int rp_fleet_spend(struct rp_shm_fleet_ep *c, uint64_t n)
{
    if (n == 0)
        return 1;
    uint64_t credited = atomic_load_explicit(&c->credited, memory_order_acquire);
    uint64_t spent = atomic_load_explicit(&c->spent, memory_order_acquire);
    for (;;) {
        if (spent > credited || credited - spent < n)
            return 0;
        if (atomic_compare_exchange_weak_explicit(&c->spent, &spent, spent + n,
                                                  memory_order_acq_rel, memory_order_acquire))
            return 1;
    }
}

uint64_t rp_fleet_balance(const struct rp_shm_fleet_ep *c)
{
    uint64_t credited = atomic_load_explicit(&c->credited, memory_order_acquire);
    uint64_t spent = atomic_load_explicit(&c->spent, memory_order_acquire);
    return credited > spent ? credited - spent : 0;
}

struct rp_gcra_params rp_fleet_fair_params(const struct rp_gcra_params *p, uint32_t hosts)
{
    uint64_t h = hosts ? hosts : 1;
    uint64_t interval = p->interval_ns ? p->interval_ns : 1;
    struct rp_gcra_params fp;
    fp.interval_ns = interval > UINT64_MAX / h ? UINT64_MAX : interval * h;
    fp.burst = p->burst / h ? p->burst / h : 1;
    return fp;
}

/* Leased tokens first; then, only under fair_share with Redis unreachable,
 * the host's own GCRA at the fair share. A refusal of leased tokens is
 * counted as demand, and the wait suggested is N intervals, clamped, since
 * the agent tops the row up continuously. */
uint64_t rp_fleet_take(struct rp_shm_fleet *f, unsigned row, _Atomic uint64_t *tat,
                       const struct rp_gcra_params *p, uint64_t n, uint64_t now_ns)
{
    uint64_t burst = p->burst ? p->burst : 1;
    if (n > burst)
        return RP_GCRA_NEVER;
    struct rp_shm_fleet_ep *c = &f->eps[row % RP_SHM_MAX_ENDPOINTS];
    if (rp_fleet_spend(c, n))
        return 0;
    uint32_t mode = atomic_load_explicit(&f->mode, memory_order_relaxed);
    if (mode == RP_FLEET_MODE_FAIR_SHARE) {
        struct rp_gcra_params fp =
            rp_fleet_fair_params(p, atomic_load_explicit(&f->hosts, memory_order_relaxed));
        if (n <= fp.burst)
            return rp_gcra_take(tat, &fp, n, now_ns);
        /* more than the fair burst: only leased tokens can ever pay for it */
    }
    atomic_fetch_add_explicit(&c->denied, n, memory_order_relaxed);
    uint64_t interval = p->interval_ns ? p->interval_ns : 1;
    uint64_t wait = n > UINT64_MAX / interval ? UINT64_MAX : n * interval;
    if (wait < RP_FLEET_WAIT_MIN_NS)
        wait = RP_FLEET_WAIT_MIN_NS;
    if (wait > RP_FLEET_WAIT_MAX_NS)
        wait = RP_FLEET_WAIT_MAX_NS;
    return wait;
}
