/* rp_sub_abi.h - the subscriptions region of the shared segment, types only
 * (included by rp_shm_abi.h; see docs/interface.md section 8).
 *
 * Written by the head follower (RP_SHM_FOLLOWER_SLOT); read by every worker.
 */
#ifndef RP_SUB_ABI_H
#define RP_SUB_ABI_H

#include <stdatomic.h>
#include <stdint.h>

struct rp_shm_subs {
    _Atomic uint64_t follower_head; /* last block the follower delivered; relaxed */
    uint8_t reserved[120];
} __attribute__((aligned(128)));

#endif
