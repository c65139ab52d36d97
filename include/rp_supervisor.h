/* rp_supervisor.h - the supervisor process: owns the listen sockets, the
 * shm segment and the control socket; forks, watches and replaces workers;
 * reloads; stops gracefully. It never talks to an endpoint. */
#ifndef RP_SUPERVISOR_H
#define RP_SUPERVISOR_H

#include <stdint.h>

#include "rp_config.h"
#include "rp_shm.h"

/* Run the supervisor with CFG, a heap object it owns from now on (a reload
 * replaces it; it is freed before returning). Returns the process exit
 * status: 0 after a clean stop, 2 for a start-up failure. */
int rp_supervisor_run(struct rp_config *cfg, int workers_override);

#endif
