/* rp_shm_view.h - a checked, read-only view of a segment, for rpcpoolstat,
 * the control socket's status/stats/metrics, and tests.
 *
 * rp_shm_view_open() maps NAME with O_RDONLY/PROT_READ and checks magic,
 * version, sizes and every table descriptor against the mapped size before
 * anything is read; nothing in the segment is trusted (Varnish's VSM rule).
 * rp_shm_view_snapshot() copies the live rows into plain structs, summing
 * the per-worker stats rows, so renderers never touch shared memory twice.
 */
#ifndef RP_SHM_VIEW_H
#define RP_SHM_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "rp_cache_abi.h"
#include "rp_fleet_view.h"
#include "rp_shm_abi.h"
#include "rp_sub_ring.h"

struct rp_shm_view {
    const void *base; /* mapping (read-only) */
    size_t size;      /* mapped bytes */
    int owned;        /* 1 when rp_shm_view_open() mapped it */
};

/* One endpoint as shown to operators (docs/interface.md section 4 shape). */
struct rp_ep_snapshot {
    uint32_t id;
    char name[RP_SHM_NAME_MAX];
    char url[RP_SHM_URL_MAX]; /* redacted */
    uint32_t weight;
    uint32_t state;   /* enum rp_ep_state, derived: drained > quarantined > lagging > down > up */
    uint32_t breaker; /* enum rp_breaker_state as shown at now */
    uint32_t breaker_failures;
    uint32_t trials; /* half-open trials in flight (summed over slots) */
    double tokens;
    uint32_t inflight;
    uint32_t conns_active, conns_idle;
    uint64_t ok, failed, retried;
    uint64_t hedges_sent, hedges_won, hedges_lost; /* hedges sent to it (rp_hedge.h) */
    uint64_t lat_count, lat_sum_us;
    uint64_t hist[RP_LAT_BUCKETS];
    double avg_ms, p50_ms, p99_ms;
    uint64_t head_block;
    int64_t lag;
    int64_t chain_id;
    int head_feed;                     /* its WebSocket head feed (ws_url) is open and heard from */
    char last_error[RP_SHM_ERROR_MAX]; /* why the last probe failed; "" when it did not */
};

struct rp_worker_snapshot {
    uint32_t slot;
    int64_t pid;
    uint32_t state, kind;
    uint64_t heartbeat_age_ms;
    uint64_t requests, restarts, clients, generation;
};

struct rp_snapshot {
    char name[RP_SHM_NAME_MAX];
    uint32_t version_major, version_minor;
    uint64_t generation;
    int64_t supervisor_pid;
    uint64_t supervisor_birth_ns;
    int supervisor_alive;
    int consistent;  /* 0: a reload kept rewriting the rows; this copy may mix two */
    uint64_t now_ms; /* segment clock at snapshot time */
    uint64_t best_head;
    uint64_t client_ok, client_error;
    uint64_t consistency_waits, affinity_hits, lookup_retries;  /* summed over worker rows */
    uint64_t hedge_calls, hedges_sent, hedges_won, hedges_lost; /* summed over stats rows */
    struct rp_cache_totals cache; /* response cache and coalescing (rp_cache_abi.h) */
    int ep_count;
    struct rp_ep_snapshot eps[RP_SHM_MAX_ENDPOINTS];
    int worker_count;
    struct rp_worker_snapshot workers[RP_SHM_MAX_WORKERS];
    struct rp_fleet_snapshot fleet; /* fleet mode (rp_fleet_view.h) */
    struct rp_subs_snapshot subs;   /* subscriptions and the head follower */
};

/* Map NAME read-only and check it. Returns 0, or -1 with a clear message in
 * ERR (no such segment, not ours, other version, truncated, bad offsets). */
int rp_shm_view_open(struct rp_shm_view *v, const char *name, char *err, size_t errlen);

/* Wrap a mapping the caller already holds (the supervisor's own) and check it
 * the same way. */
int rp_shm_view_wrap(struct rp_shm_view *v, const void *base, size_t size, char *err,
                     size_t errlen);

void rp_shm_view_close(struct rp_shm_view *v);

/* Copy the segment into OUT. Returns 0, or -1 with ERR when the segment no
 * longer checks out. */
int rp_shm_view_snapshot(const struct rp_shm_view *v, struct rp_snapshot *out, char *err,
                         size_t errlen);

/* Latency quantile Q (0..1) in ms from a histogram (bucket upper bounds). */
double rp_hist_quantile_ms(const uint64_t *hist, uint64_t count, double q);

const char *rp_ep_state_name(uint32_t state);
const char *rp_worker_state_name(uint32_t state);

#endif
