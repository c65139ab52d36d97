/* rp_timer.h - a min-heap of deadlines for one event loop. Each timer is
 * embedded in its owner (no allocation per arm); the loop asks for the
 * nearest deadline to size its epoll_wait and pops what has expired. Pure:
 * time comes in as an argument. */
#ifndef RP_TIMER_H
#define RP_TIMER_H

#include <stdint.h>

struct rp_timer;
typedef void (*rp_timer_fn)(struct rp_timer *t, void *arg);

struct rp_timer {
    uint64_t deadline_ms;
    int idx; /* position in the heap, -1 when not armed */
    rp_timer_fn fn;
    void *arg;
};

struct rp_timer_heap {
    struct rp_timer **v;
    int n, cap;
};

void rp_timer_heap_init(struct rp_timer_heap *h);
void rp_timer_heap_free(struct rp_timer_heap *h);
void rp_timer_init(struct rp_timer *t, rp_timer_fn fn, void *arg);

/* Arm (or re-arm) T for DEADLINE_MS. Returns 0, -1 when out of memory. */
int rp_timer_arm(struct rp_timer_heap *h, struct rp_timer *t, uint64_t deadline_ms);
void rp_timer_cancel(struct rp_timer_heap *h, struct rp_timer *t);

/* Arm T for NOW_MS + DELAY_MS, or cancel it when DELAY_MS is negative (the
 * contract of libcurl's CURLMOPT_TIMERFUNCTION). Returns 0, -1 when out of
 * memory. */
int rp_timer_set(struct rp_timer_heap *h, struct rp_timer *t, uint64_t now_ms, long delay_ms);
static inline int rp_timer_armed(const struct rp_timer *t)
{
    return t->idx >= 0;
}

/* Nearest deadline, or UINT64_MAX when nothing is armed. */
uint64_t rp_timer_next(const struct rp_timer_heap *h);

/* Remove and return one timer whose deadline is <= NOW_MS, or NULL. */
struct rp_timer *rp_timer_pop_expired(struct rp_timer_heap *h, uint64_t now_ms);

#endif
