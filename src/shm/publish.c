/* publish.c - the supervisor's writes of the endpoint table (see
 * rp_publish.h): plan every row first, write only when the plan fits, and
 * write inside the layout seqlock. */
#include "rp_publish.h"

#include <stdio.h>
#include <string.h>

#include "rp_breaker.h"
#include "rp_ratelimit.h"
#include "rp_seqlock.h"

/* Can row E take a new endpoint? Never used, or tombstoned at a generation
 * every live process has reached. */
static int pub_row_free(const struct rp_shm_endpoint *e, uint64_t oldest_live_gen)
{
    if (e->url_key == 0)
        return 1;
    return !atomic_load_explicit(&e->in_use, memory_order_relaxed) &&
           e->retired_gen <= oldest_live_gen;
}

/* A fresh row: every live word and every slot's stats cell back to zero (no
 * process can write to it: pub_row_free() said so). */
static void pub_row_reset(struct rp_shm_header *h, unsigned row)
{
    struct rp_shm_endpoint *e = rp_shm_ep(h, row);
    atomic_store_explicit(&e->in_use, 0, memory_order_release);
    atomic_store_explicit(&e->breaker, 0, memory_order_relaxed);
    atomic_store_explicit(&e->gcra_tat_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&e->hold_until_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&e->ewma, 0, memory_order_relaxed);
    atomic_store_explicit(&e->state, RP_EP_UP, memory_order_relaxed);
    atomic_store_explicit(&e->drained, 0, memory_order_relaxed);
    atomic_store_explicit(&e->health_ok, 1, memory_order_relaxed);
    atomic_store_explicit(&e->head_block, 0, memory_order_relaxed);
    atomic_store_explicit(&e->chain_id, 0, memory_order_relaxed);
    atomic_store_explicit(&e->last_probe_ms, 0, memory_order_relaxed);
    atomic_store_explicit(&e->probe_successes, 0, memory_order_relaxed);
    atomic_store_explicit(&e->probe_failures, 0, memory_order_relaxed);
    atomic_store_explicit(&e->head_feed_heard_ms, 0, memory_order_relaxed);
    e->retired_gen = 0;
    atomic_store_explicit(&e->last_error_seq, 0, memory_order_relaxed);
    e->last_error[0] = '\0';
    for (unsigned s = 0; s < RP_SHM_MAX_WORKERS; s++)
        memset((void *)rp_shm_stats(h, s, row), 0, sizeof(struct rp_shm_epstats));
}

static struct rp_gcra_params pub_gcra(const struct rp_endpoint_config *ec)
{
    struct rp_gcra_params p = {
        rp_gcra_interval_ns((uint64_t)ec->rate_limit.max_requests,
                            (uint64_t)ec->rate_limit.window_ms),
        (uint64_t)ec->rate_limit.burst_size,
    };
    return p;
}

int rp_publish_endpoints(struct rp_shm_header *h, const struct rp_config *cfg, uint64_t new_gen,
                         uint64_t oldest_live_gen, char *err, size_t errlen)
{
    int row_of[RP_MAX_ENDPOINTS];
    int fresh[RP_MAX_ENDPOINTS] = {0};
    int taken[RP_SHM_MAX_ENDPOINTS] = {0};
    uint64_t keys[RP_MAX_ENDPOINTS];

    /* plan 1: endpoints that stay keep their live row */
    for (int i = 0; i < cfg->endpoint_count; i++) {
        keys[i] = rp_shm_url_key(cfg->endpoints[i].url);
        row_of[i] = -1;
        for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++) {
            struct rp_shm_endpoint *e = rp_shm_ep(h, s);
            if (!taken[s] && e->url_key == keys[i] &&
                atomic_load_explicit(&e->in_use, memory_order_relaxed)) {
                row_of[i] = (int)s;
                taken[s] = 1;
                break;
            }
        }
    }
    /* plan 2: new endpoints take free rows (not a row that stays live) */
    for (int i = 0; i < cfg->endpoint_count; i++) {
        if (row_of[i] >= 0)
            continue;
        for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS && row_of[i] < 0; s++) {
            struct rp_shm_endpoint *e = rp_shm_ep(h, s);
            if (!taken[s] && pub_row_free(e, oldest_live_gen) &&
                !atomic_load_explicit(&e->in_use, memory_order_relaxed)) {
                row_of[i] = (int)s;
                taken[s] = fresh[i] = 1;
            }
        }
        if (row_of[i] < 0) {
            unsigned waiting = 0;
            for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++)
                if (!pub_row_free(rp_shm_ep(h, s), oldest_live_gen))
                    waiting++;
            snprintf(err, errlen,
                     "no free endpoint row in the shm segment (%d rows; %u still held by "
                     "running or draining processes): try again once the old workers are gone",
                     RP_SHM_MAX_ENDPOINTS, waiting);
            return -1;
        }
    }

    /* write, inside the seqlock */
    rp_seq_write_begin(&h->layout_seq);
    uint64_t now_ns = rp_shm_now_ns(h);
    for (int i = 0; i < cfg->endpoint_count; i++) {
        const struct rp_endpoint_config *ec = &cfg->endpoints[i];
        unsigned row = (unsigned)row_of[i];
        struct rp_shm_endpoint *e = rp_shm_ep(h, row);
        struct rp_gcra_params np = pub_gcra(ec);
        if (fresh[i]) {
            pub_row_reset(h, row);
        } else if (e->rl_interval_ns != np.interval_ns || e->rl_burst != np.burst) {
            struct rp_gcra_params op = {e->rl_interval_ns, e->rl_burst};
            rp_gcra_rescale(&e->gcra_tat_ns, &op, &np, now_ns);
        }
        e->id = row;
        e->url_key = keys[i];
        e->weight = (uint32_t)ec->weight;
        e->rl_interval_ns = np.interval_ns;
        e->rl_burst = np.burst;
        snprintf(e->name, sizeof e->name, "%s", ec->name);
        snprintf(e->url_redacted, sizeof e->url_redacted, "%s", ec->url_redacted);
        atomic_store_explicit(&e->in_use, 1, memory_order_release);
    }
    unsigned used = 0;
    for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++) {
        struct rp_shm_endpoint *e = rp_shm_ep(h, s);
        if (!taken[s] && atomic_load_explicit(&e->in_use, memory_order_relaxed)) {
            e->retired_gen = new_gen;
            atomic_store_explicit(&e->in_use, 0, memory_order_release); /* tombstone */
        }
        if (e->url_key)
            used = s + 1;
    }
    atomic_store_explicit(&h->endpoint_count, used, memory_order_release);
    atomic_store_explicit(&h->generation, new_gen, memory_order_release);
    rp_seq_write_end(&h->layout_seq);
    return 0;
}
