/* rp_fleet_abi.h - the fleet region of the shared segment, types only
 * (included by rp_shm_abi.h; see docs/interface.md section 8).
 *
 * Written by the fleet agent (RP_SHM_FLEET_SLOT) and, for `spent` and
 * `denied`, by whoever takes tokens (workers, the prober); read by
 * rpcpoolstat and the control socket.
 *
 * Leased tokens of endpoint row i are fleet.eps[i]: the agent adds what
 * Redis granted to `credited` (fetch_add, release), takers move `spent`
 * forward by CAS (acq_rel) only while spent + n <= credited, a whole take
 * or none. Both words only grow; the balance is credited - spent. A take
 * that reads a stale (smaller) `credited` only refuses, never over-spends.
 *
 * INVARIANTS (added to the table of rp_shm_abi.h):
 *   fleet.eps[i].credited   agent only, fetch_add of one    a whole credit or
 *                           granted lease                   none: a lease Redis
 *                                                           granted but not yet
 *                                                           credited is lost
 *                                                           (under-spends)
 *   fleet.eps[i].spent      takers: one CAS per take, never a whole take or
 *                           past credited; the agent moves  none
 *                           it to credited (drain) for a
 *                           row that changed endpoints
 *   fleet.eps[i].denied,    takers / agent: relaxed         a count off by at
 *   fleet counters, mode,   fetch_add or store; advisory    most one update
 *   connected               (display, demand estimate)
 */
#ifndef RP_FLEET_ABI_H
#define RP_FLEET_ABI_H

#include <stdatomic.h>
#include <stdint.h>

/* rp_shm_fleet.mode: how takes are served right now. */
enum rp_fleet_mode {
    RP_FLEET_MODE_STARTING = 0,   /* the agent has not reached Redis yet: leased tokens only */
    RP_FLEET_MODE_SHARING = 1,    /* Redis reachable: leased tokens only */
    RP_FLEET_MODE_FAIR_SHARE = 2, /* Redis unreachable: leased tokens, then quota / hosts */
    RP_FLEET_MODE_LEASED_ONLY = 3 /* Redis unreachable: leased tokens only */
};

/* Leased tokens of one endpoint row. */
struct rp_shm_fleet_ep {
    _Atomic uint64_t credited; /* tokens Redis granted this host; agent fetch_add, release */
    _Atomic uint64_t spent;    /* of those, taken; CAS acq_rel, never above credited */
    _Atomic uint64_t denied;   /* tokens asked for and refused (demand); relaxed */
    _Atomic uint64_t url_key;  /* the row's url_key the words belong to; agent only */
    uint8_t reserved[32];
} __attribute__((aligned(64)));

struct rp_shm_fleet {
    _Atomic uint32_t configured; /* 1 while a fleet agent runs for this pool; relaxed */
    _Atomic uint32_t connected;  /* 1 while the agent holds a Redis connection; relaxed */
    _Atomic uint32_t mode;       /* enum rp_fleet_mode; relaxed */
    _Atomic uint32_t hosts;      /* fleet.hosts in force; relaxed */
    _Atomic uint32_t on_down;    /* enum rp_fleet_down configured; relaxed */
    uint32_t pad;
    _Atomic uint64_t leases;            /* lease grants received from Redis; relaxed */
    _Atomic uint64_t verdicts_received; /* verdicts of other hosts applied here; relaxed */
    _Atomic uint64_t verdicts_sent;     /* verdicts of this host published; relaxed */
    _Atomic uint64_t connects;          /* connections to Redis made; relaxed */
    _Atomic uint64_t since_ms;          /* segment ms of the last connect / disconnect; relaxed */
    uint8_t reserved[128 - 6 * 4 - 5 * 8];
    struct rp_shm_fleet_ep eps[64]; /* by endpoint row (RP_SHM_MAX_ENDPOINTS) */
} __attribute__((aligned(128)));

#endif
