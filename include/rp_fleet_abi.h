/* rp_fleet_abi.h - the fleet region of the shared segment, types only
 * (included by rp_shm_abi.h; see docs/interface.md section 8).
 *
 * Written by the fleet agent (RP_SHM_FLEET_SLOT); read by workers and
 * rpcpoolstat.
 */
#ifndef RP_FLEET_ABI_H
#define RP_FLEET_ABI_H

#include <stdatomic.h>
#include <stdint.h>

struct rp_shm_fleet {
    _Atomic uint32_t connected; /* 1 while the agent holds a Redis connection; relaxed */
    uint32_t pad;
    uint8_t reserved[120];
} __attribute__((aligned(128)));

#endif
