/* rp_worker.h - what the supervisor needs of a worker process: the
 * arguments it hands a new worker, its entry point, and how host-wide
 * limits are split over a generation. The worker's internals (loop,
 * connections, requests, transports) are private to src/worker/
 * (src/worker/worker.h).
 */
#ifndef RP_WORKER_H
#define RP_WORKER_H

#include <stdint.h>

struct rp_config;
struct rp_shm_header;

/* What the supervisor hands a new worker. */
struct rp_worker_args {
    unsigned slot;       /* worker slot in shm */
    unsigned index;      /* 0..count-1 within its generation: its share of the host-wide limits */
    unsigned count;      /* workers in its generation */
    int listen_fd;       /* client UNIX socket */
    int http_fd;         /* server.http_listen, -1 when unset */
    int chan_fd;         /* handoff channel to the supervisor */
    uint64_t generation; /* configuration generation it runs (shown in status) */
};

int rp_worker_main(const struct rp_config *cfg, struct rp_shm_header *shm,
                   const struct rp_worker_args *args);

/* This worker's part of a host-wide TOTAL split over COUNT workers: the
 * remainder goes to the lowest indexes, so the parts add up to TOTAL. */
unsigned rp_worker_part(uint64_t total, unsigned index, unsigned count);
/* The connections per endpoint that COUNT workers split: max_connections,
 * less the one the prober may hold when that leaves each worker one. */
uint64_t rp_worker_conn_pool(const struct rp_config *cfg, unsigned count);

#endif
