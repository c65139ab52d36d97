/* warm.c - keeping each endpoint's warm connections (docs/interface.md section
 * 2: min_connections opened at start and kept warm; idle ones beyond that
 * close after idle_timeout_ms).
 *
 * Each worker owns its part of min_connections per endpoint (connections
 * cannot be shared between processes). A periodic check opens what is
 * missing with warm-up requests (a cheap JSON-RPC call that takes a token
 * like any request), and refreshes the warm ones before the idle limit
 * closes them (the native client's idle timer, idle_timeout_ms). Connections beyond the minimum
 * get no refresh, so they close once idle that long.
 */
#include "worker.h"

#include <stdio.h>
#include <string.h>

#include "rp_log.h"

static char warm_body[160];
static size_t warm_len;

/* How often the check runs: a quarter of the idle limit, 100 ms .. 1 s. */
static uint64_t warm_tick_ms(void)
{
    uint64_t t = (uint64_t)rp_w.cfg->idle_timeout_ms / 4;
    return t < 100 ? 100 : t > 1000 ? 1000 : t;
}

/* Can warm-up traffic go to endpoint EP now? Only to endpoints that serve
 * clients: up, not drained, breaker closed. */
static int warm_allowed(const struct rp_wep *w)
{
    const struct rp_shm_endpoint *e = w->shm;
    if (atomic_load_explicit(&e->drained, memory_order_relaxed) ||
        atomic_load_explicit(&e->state, memory_order_relaxed) != RP_EP_UP)
        return 0;
    uint64_t word = atomic_load_explicit(&e->breaker, memory_order_acquire);
    return rp_breaker_word_state(word) == RP_BREAKER_CLOSED;
}

static void warm_check(struct rp_timer *t, void *arg)
{
    (void)arg;
    uint64_t now = rp_worker_now_ms();
    uint64_t refresh_ms = (uint64_t)rp_w.cfg->idle_timeout_ms / 2;
    if (!rp_w.stopping) {
        for (int i = 0; i < rp_w.nep; i++) {
            struct rp_wep *w = &rp_w.eps[i];
            if (!w->in_use || !w->warm_min || w->warming || w->active || !warm_allowed(w))
                continue;
            unsigned open = atomic_load_explicit(&w->stats->conns_open_held, memory_order_relaxed);
            unsigned n = 0;
            if (open < w->warm_min)
                n = w->warm_min; /* open what is missing (and touch the rest) */
            else if (now - w->last_used_ms >= refresh_ms)
                n = w->warm_min; /* keep the minimum from going idle too long */
            for (unsigned k = 0; k < n; k++)
                if (rp_req_warm(i, warm_body, warm_len) != 0)
                    break;
        }
    }
    rp_timer_arm(&rp_w.timers, t, now + warm_tick_ms());
}

void rp_warm_start(void)
{
    const char *method =
        rp_w.cfg->health_check_method ? rp_w.cfg->health_check_method : "eth_chainId";
    char esc[96];
    size_t el = rp_json_escape(esc, sizeof esc, method, strlen(method));
    int n = el < sizeof esc ? snprintf(warm_body, sizeof warm_body,
                                       "{\"jsonrpc\":\"2.0\",\"id\":\"rpcpool-warm\",\"method\":"
                                       "\"%s\",\"params\":[]}",
                                       esc)
                            : -1;
    if (n < 0 || (size_t)n >= sizeof warm_body)
        n = snprintf(warm_body, sizeof warm_body,
                     "{\"jsonrpc\":\"2.0\",\"id\":\"rpcpool-warm\",\"method\":\"eth_chainId\","
                     "\"params\":[]}");
    warm_len = (size_t)n;
    rp_timer_init(&rp_w.warm_timer, warm_check, NULL);
    rp_timer_arm(&rp_w.timers, &rp_w.warm_timer, rp_worker_now_ms());
}
