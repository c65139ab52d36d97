/* rp_hold.h - what each process holds in the shared segment, and the
 * host-wide counts read from it.
 *
 * Every host-wide count that a process can hold a part of (client
 * connections, attempts in flight, upstream connections open and active,
 * half-open trials) exists only as per-slot cells: each process writes only
 * its own cell, readers sum the cells. There is no second, host-wide word
 * to update, so a process killed between any two instructions leaves
 * exactly its own cells behind, and the supervisor's repair
 * (rp_hold_repair_slot(), run once the process is reaped) zeroes them: a
 * death can leave a count too high only until that repair, never negative
 * and never given back twice.
 *
 * Admission against a host-wide maximum (max_clients) is store-then-sum:
 * the caller raises its own cell (seq_cst) and then sums every cell
 * (seq_cst); over the maximum, it lowers its cell and refuses. Of two
 * processes admitting at once, at least one sees the other's cell, so the
 * maximum is never exceeded (a race can only refuse one too many, briefly).
 *
 * Slots summed: [0, slots_hwm) and the prober's slot. The supervisor raises
 * slots_hwm (rp_hold_slot_claim()) before it forks into a slot.
 */
#ifndef RP_HOLD_H
#define RP_HOLD_H

#include <stddef.h>
#include <stdint.h>

#include "rp_breaker.h"
#include "rp_shm.h"

/* Which per-(slot, endpoint) cell of struct rp_shm_epstats. */
enum rp_hold_cell {
    RP_HOLD_INFLIGHT = 0,
    RP_HOLD_CONNS_OPEN = 1,
    RP_HOLD_CONNS_ACTIVE = 2,
};

/* The caller's own cell of KIND for endpoint row EP. */
_Atomic uint32_t *rp_hold_cell(struct rp_shm_header *h, unsigned slot, unsigned ep,
                               enum rp_hold_cell kind);

/* Add DELTA (+1 or -1) to the caller's own cell; never below 0. */
void rp_hold_add(_Atomic uint32_t *cell, int delta);

/* Host-wide count of KIND on endpoint row EP: the sum of every slot's cell. */
uint32_t rp_hold_sum(struct rp_shm_header *h, unsigned ep, enum rp_hold_cell kind);

/* The trial cells of endpoint row EP, for the breaker, as seen by SELF. */
struct rp_trial_cells rp_hold_trial_cells(struct rp_shm_header *h, unsigned ep, unsigned self);

/* Client connections open host-wide: the sum of the slots' counts. */
uint64_t rp_hold_clients(struct rp_shm_header *h);

/* Admit one client on SLOT if the host has fewer than MAX open: 1 (counted)
 * or 0 (refused, nothing counted). */
int rp_hold_client_admit(struct rp_shm_header *h, unsigned slot, uint64_t max);

/* Count one client more (+1, a client handed over to SLOT) or less (-1). */
void rp_hold_client_add(struct rp_shm_header *h, unsigned slot, int delta);

/* Raise the shared word WORD to at least V by CAS, never lower it: a
 * Retry-After hold (a later, shorter hold must not shorten an earlier,
 * longer one), an endpoint's head learned from an answer. */
void rp_hold_raise(_Atomic uint64_t *word, uint64_t v);

/* Supervisor: SLOT is about to hold things (before fork). */
void rp_hold_slot_claim(struct rp_shm_header *h, unsigned slot);

/* Supervisor, after reaping the process of SLOT: zero everything it held
 * (clients, in-flight, connections, trials). Counters that only grow (ok,
 * failed, latency) stay: they are history, not holdings. */
void rp_hold_repair_slot(struct rp_shm_header *h, unsigned slot);

#endif
