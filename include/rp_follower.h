/* rp_follower.h - the head follower: one process for the host (slot
 * RP_SHM_FOLLOWER_SLOT), forked and supervised like the prober. It finds new
 * blocks by polling the pool's endpoints (eth_blockNumber every
 * subscriptions.poll_interval_ms, at once when a worker wakes it because
 * traffic showed a higher head), fetches each new block's header once and,
 * while any logs subscription exists on the host, its logs once
 * (eth_getLogs {blockHash}), follows reorgs back to the fork point, and
 * publishes every event in the shm ring (rp_sub_ring.h) for the workers to
 * fan out. Its calls take rate-limit tokens and go only to endpoints that
 * are up with a closed breaker (never a half-open trial); their verdicts
 * count in the breaker like any call's. */
#ifndef RP_FOLLOWER_H
#define RP_FOLLOWER_H

#include "rp_config.h"
#include "rp_shm.h"

/* Run the follower until SIGTERM. Returns the exit status. */
int rp_follower_main(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot);

/* Does CFG run a follower (subscriptions allowed at all)? */
int rp_follower_wanted(const struct rp_config *cfg);

#endif
