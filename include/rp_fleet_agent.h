/* rp_fleet_agent.h - the fleet agent process (src/fleet/agent.c): leases
 * each endpoint's tokens from a fleet-wide GCRA in Redis into shm, and
 * shares breaker and Retry-After verdicts with the other hosts of the
 * fleet. Forked and supervised like the prober, only when `fleet` is
 * configured (docs/interface.md section 8). */
#ifndef RP_FLEET_AGENT_H
#define RP_FLEET_AGENT_H

#include "rp_config.h"
#include "rp_shm.h"

/* Run the agent until SIGTERM (or the supervisor's death). Returns the
 * process exit status. */
int rp_fleet_main(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot);

/* 1 when CFG configures a fleet (the supervisor's `wanted`). */
int rp_fleet_wanted(const struct rp_config *cfg);

#endif
