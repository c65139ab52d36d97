/* rp_prober.h - the prober process: one for the host, forked and supervised
 * like a worker. It probes every endpoint each health_check_interval_ms
 * (JSON-RPC method or HTTP GET path), applies rise/fall hysteresis, checks
 * eth_chainId (quarantine on a wrong chain) and head blocks (lagging), and
 * publishes each endpoint's state in shm. Probes take rate-limit tokens like
 * any request. */
#ifndef RP_PROBER_H
#define RP_PROBER_H

#include "rp_config.h"
#include "rp_shm.h"

/* Run the prober until SIGTERM (or the supervisor's death). Returns the
 * process exit status. */
int rp_prober_main(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot);

#endif
