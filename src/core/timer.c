/* timer.c - binary min-heap of embedded timers (see rp_timer.h). */
#include "rp_timer.h"

#include <stdlib.h>

void rp_timer_heap_init(struct rp_timer_heap *h)
{
    h->v = NULL;
    h->n = h->cap = 0;
}

void rp_timer_heap_free(struct rp_timer_heap *h)
{
    for (int i = 0; i < h->n; i++)
        h->v[i]->idx = -1;
    free(h->v);
    rp_timer_heap_init(h);
}

void rp_timer_init(struct rp_timer *t, rp_timer_fn fn, void *arg)
{
    t->deadline_ms = 0;
    t->idx = -1;
    t->fn = fn;
    t->arg = arg;
}

static void heap_set(struct rp_timer_heap *h, int i, struct rp_timer *t)
{
    h->v[i] = t;
    t->idx = i;
}

static void sift_up(struct rp_timer_heap *h, int i)
{
    struct rp_timer *t = h->v[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (h->v[p]->deadline_ms <= t->deadline_ms)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, t);
}

static void sift_down(struct rp_timer_heap *h, int i)
{
    struct rp_timer *t = h->v[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->deadline_ms < h->v[c]->deadline_ms)
            c++;
        if (h->v[c]->deadline_ms >= t->deadline_ms)
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, t);
}

int rp_timer_arm(struct rp_timer_heap *h, struct rp_timer *t, uint64_t deadline_ms)
{
    if (t->idx >= 0) {
        uint64_t old = t->deadline_ms;
        t->deadline_ms = deadline_ms;
        if (deadline_ms < old)
            sift_up(h, t->idx);
        else
            sift_down(h, t->idx);
        return 0;
    }
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        struct rp_timer **v = realloc(h->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        h->v = v;
        h->cap = cap;
    }
    t->deadline_ms = deadline_ms;
    heap_set(h, h->n++, t);
    sift_up(h, t->idx);
    return 0;
}

void rp_timer_cancel(struct rp_timer_heap *h, struct rp_timer *t)
{
    int i = t->idx;
    if (i < 0)
        return;
    t->idx = -1;
    struct rp_timer *last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    sift_up(h, i);
    sift_down(h, last->idx);
}

int rp_timer_set(struct rp_timer_heap *h, struct rp_timer *t, uint64_t now_ms, long delay_ms)
{
    if (delay_ms < 0) {
        rp_timer_cancel(h, t);
        return 0;
    }
    return rp_timer_arm(h, t, now_ms + (uint64_t)delay_ms);
}

uint64_t rp_timer_next(const struct rp_timer_heap *h)
{
    return h->n ? h->v[0]->deadline_ms : UINT64_MAX;
}

struct rp_timer *rp_timer_pop_expired(struct rp_timer_heap *h, uint64_t now_ms)
{
    if (!h->n || h->v[0]->deadline_ms > now_ms)
        return NULL;
    struct rp_timer *t = h->v[0];
    rp_timer_cancel(h, t);
    return t;
}
