/* hold.c - per-slot holdings and the host-wide counts summed from them (see
 * rp_hold.h for why the sum is the only host-wide count).
 *
 * Memory ordering: a cell has one writer (its process, or the supervisor
 * after that process is reaped: waitpid() orders the two). Plain counts are
 * relaxed; the client admission is seq_cst on both sides (store then sum).
 */
#include "rp_hold.h"
#include "rp_sub_ring.h"

static size_t hold_offset(enum rp_hold_cell kind)
{
    switch (kind) {
    case RP_HOLD_CONNS_OPEN:
        return offsetof(struct rp_shm_epstats, conns_open_held);
    case RP_HOLD_CONNS_ACTIVE:
        return offsetof(struct rp_shm_epstats, conns_active_held);
    case RP_HOLD_INFLIGHT:
    default:
        return offsetof(struct rp_shm_epstats, inflight_held);
    }
}

/* Worker slots that may hold something: [0, hwm). The auxiliary slots
 * [RP_SHM_AUX_FIRST, RP_SHM_MAX_WORKERS) are always summed besides. */
static unsigned hold_hwm(struct rp_shm_header *h)
{
    unsigned n = atomic_load_explicit(&h->slots_hwm, memory_order_acquire);
    return n > RP_SHM_AUX_FIRST ? RP_SHM_AUX_FIRST : n;
}

_Atomic uint32_t *rp_hold_cell(struct rp_shm_header *h, unsigned slot, unsigned ep,
                               enum rp_hold_cell kind)
{
    return (_Atomic uint32_t *)((char *)rp_shm_stats(h, slot, ep) + hold_offset(kind));
}

void rp_hold_add(_Atomic uint32_t *cell, int delta)
{
    uint32_t v = atomic_load_explicit(cell, memory_order_relaxed);
    if (delta < 0 && v == 0)
        return; /* a give-back without a take: never below zero */
    atomic_store_explicit(cell, delta < 0 ? v - 1 : v + 1, memory_order_relaxed);
}

uint32_t rp_hold_sum(struct rp_shm_header *h, unsigned ep, enum rp_hold_cell kind)
{
    unsigned n = hold_hwm(h);
    uint32_t sum = 0;
    for (unsigned s = 0; s < n; s++)
        sum += atomic_load_explicit(rp_hold_cell(h, s, ep, kind), memory_order_relaxed);
    for (unsigned s = RP_SHM_AUX_FIRST; s < RP_SHM_MAX_WORKERS; s++)
        sum += atomic_load_explicit(rp_hold_cell(h, s, ep, kind), memory_order_relaxed);
    return sum;
}

struct rp_trial_cells rp_hold_trial_cells(struct rp_shm_header *h, unsigned ep, unsigned self)
{
    struct rp_trial_cells c = {
        .first = &rp_shm_stats(h, 0, ep)->trial_held,
        .stride_bytes = (size_t)RP_SHM_MAX_ENDPOINTS * h->stats.stride,
        .nslots = hold_hwm(h),
        .extra = RP_SHM_PROBER_SLOT,
        .self = self,
    };
    return c;
}

static uint64_t hold_clients(struct rp_shm_header *h, memory_order mo)
{
    unsigned n = hold_hwm(h);
    uint64_t sum = 0;
    for (unsigned s = 0; s < n; s++)
        sum += atomic_load_explicit(&rp_shm_worker(h, s)->clients, mo);
    return sum;
}

uint64_t rp_hold_clients(struct rp_shm_header *h)
{
    return hold_clients(h, memory_order_relaxed);
}

int rp_hold_client_admit(struct rp_shm_header *h, unsigned slot, uint64_t max)
{
    _Atomic uint64_t *mine = &rp_shm_worker(h, slot)->clients;
    uint64_t v = atomic_load_explicit(mine, memory_order_relaxed);
    atomic_store_explicit(mine, v + 1, memory_order_seq_cst);
    if (hold_clients(h, memory_order_seq_cst) > max) {
        atomic_store_explicit(mine, v, memory_order_seq_cst);
        return 0;
    }
    return 1;
}

void rp_hold_client_add(struct rp_shm_header *h, unsigned slot, int delta)
{
    _Atomic uint64_t *mine = &rp_shm_worker(h, slot)->clients;
    uint64_t v = atomic_load_explicit(mine, memory_order_relaxed);
    if (delta < 0 && v == 0)
        return;
    atomic_store_explicit(mine, delta < 0 ? v - 1 : v + 1, memory_order_relaxed);
}

void rp_hold_slot_claim(struct rp_shm_header *h, unsigned slot)
{
    if (slot >= RP_SHM_AUX_FIRST)
        return; /* always summed */
    unsigned n = atomic_load_explicit(&h->slots_hwm, memory_order_relaxed);
    if (slot + 1 > n)
        atomic_store_explicit(&h->slots_hwm, slot + 1, memory_order_release);
}

void rp_hold_repair_slot(struct rp_shm_header *h, unsigned slot)
{
    for (unsigned e = 0; e < RP_SHM_MAX_ENDPOINTS; e++) {
        struct rp_shm_epstats *st = rp_shm_stats(h, slot, e);
        atomic_store_explicit(&st->inflight_held, 0, memory_order_relaxed);
        atomic_store_explicit(&st->conns_open_held, 0, memory_order_relaxed);
        atomic_store_explicit(&st->conns_active_held, 0, memory_order_relaxed);
        atomic_store_explicit(&st->trial_held, 0, memory_order_seq_cst);
    }
    atomic_store_explicit(&rp_shm_worker(h, slot)->clients, 0, memory_order_seq_cst);
    rp_sub_repair_slot(rp_shm_subs(h), slot); /* its subscriptions */
}

void rp_hold_raise(_Atomic uint64_t *word, uint64_t v)
{
    uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
    while (old < v && !atomic_compare_exchange_weak_explicit(word, &old, v, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}
