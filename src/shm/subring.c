/* subring.c - the subscriptions ring (rp_sub_ring.h, protocol in
 * rp_sub_abi.h). */
#include "rp_sub_ring.h"

#include <stdlib.h>
#include <string.h>

/* Copy LEN bytes at monotonic arena position POS to or from the arena. */
static void arena_copy_in(struct rp_shm_subs *s, uint64_t pos, const void *data, size_t len)
{
    size_t off = (size_t)(pos % RP_SUB_ARENA_BYTES);
    size_t first = RP_SUB_ARENA_BYTES - off < len ? RP_SUB_ARENA_BYTES - off : len;
    memcpy(s->arena + off, data, first);
    if (first < len)
        memcpy(s->arena, (const char *)data + first, len - first);
}

static void arena_copy_out(struct rp_shm_subs *s, uint64_t pos, char *out, size_t len)
{
    size_t off = (size_t)(pos % RP_SUB_ARENA_BYTES);
    size_t first = RP_SUB_ARENA_BYTES - off < len ? RP_SUB_ARENA_BYTES - off : len;
    memcpy(out, s->arena + off, first);
    if (first < len)
        memcpy(out + first, s->arena, len - first);
}

uint64_t rp_sub_publish(struct rp_shm_subs *s, uint32_t kind, uint64_t number,
                        const uint8_t hash[32], const uint8_t parent[32], uint64_t seen_ns,
                        const void *data, size_t len)
{
    if (len > RP_SUB_ARENA_BYTES / 4)
        return UINT64_MAX;
    uint64_t n = atomic_load_explicit(&s->next_seq, memory_order_relaxed);
    struct rp_shm_sub_entry *e = &s->ring[n % RP_SUB_RING_ENTRIES];
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    uint64_t pos = atomic_load_explicit(&s->arena_end, memory_order_relaxed);
    /* claim the bytes before writing them: a reader of an older payload
     * there sees arena_end move past its end and drops its copy */
    atomic_store_explicit(&s->arena_end, pos + len, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (len)
        arena_copy_in(s, pos, data, len);
    e->kind = kind;
    e->data_len = (uint32_t)len;
    e->data_pos = pos;
    e->number = number;
    e->seen_ns = seen_ns;
    memcpy(e->hash, hash, 32);
    memcpy(e->parent, parent, 32);
    atomic_store_explicit(&e->seq, n + 1, memory_order_release);
    atomic_store_explicit(&s->next_seq, n + 1, memory_order_release);
    return n;
}

uint64_t rp_sub_next_seq(struct rp_shm_subs *s)
{
    return atomic_load_explicit(&s->next_seq, memory_order_acquire);
}

enum rp_sub_read_result rp_sub_read(struct rp_shm_subs *s, uint64_t seq, struct rp_sub_event *ev,
                                    struct rp_buf *payload)
{
    rp_buf_reset(payload);
    uint64_t next = atomic_load_explicit(&s->next_seq, memory_order_acquire);
    if (seq >= next)
        return RP_SUB_READ_NOT_YET;
    if (next - seq > RP_SUB_RING_ENTRIES)
        return RP_SUB_READ_LOST;
    struct rp_shm_sub_entry *e = &s->ring[seq % RP_SUB_RING_ENTRIES];
    if (atomic_load_explicit(&e->seq, memory_order_acquire) != seq + 1)
        return RP_SUB_READ_LOST; /* rewritten for a later event */
    ev->seq = seq;
    ev->kind = e->kind;
    ev->number = e->number;
    ev->seen_ns = e->seen_ns;
    memcpy(ev->hash, e->hash, 32);
    memcpy(ev->parent, e->parent, 32);
    uint64_t pos = e->data_pos;
    size_t len = e->data_len;
    if (len > RP_SUB_ARENA_BYTES / 4)
        return RP_SUB_READ_LOST;
    if (len) {
        if (payload->cap < len + 1) {
            char *d = realloc(payload->data, len + 1);
            if (!d)
                return RP_SUB_READ_LOST;
            payload->data = d;
            payload->cap = len + 1;
        }
        payload->len = len;
        arena_copy_out(s, pos, payload->data, len);
        payload->data[len] = '\0';
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq + 1 ||
        atomic_load_explicit(&s->arena_end, memory_order_relaxed) - pos > RP_SUB_ARENA_BYTES) {
        rp_buf_reset(payload);
        return RP_SUB_READ_LOST;
    }
    return RP_SUB_READ_OK;
}

uint64_t rp_sub_count(struct rp_shm_subs *s, int logs_only)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < RP_SUB_SLOTS; i++) {
        sum += atomic_load_explicit(&s->slots[i].logs, memory_order_seq_cst);
        if (!logs_only)
            sum += atomic_load_explicit(&s->slots[i].heads, memory_order_seq_cst);
    }
    return sum;
}

int rp_sub_admit(struct rp_shm_subs *s, unsigned slot, int logs, uint64_t max)
{
    _Atomic uint32_t *mine = logs ? &s->slots[slot].logs : &s->slots[slot].heads;
    uint32_t v = atomic_load_explicit(mine, memory_order_relaxed);
    atomic_store_explicit(mine, v + 1, memory_order_seq_cst);
    if (rp_sub_count(s, 0) > max) {
        atomic_store_explicit(mine, v, memory_order_seq_cst);
        return 0;
    }
    return 1;
}

void rp_sub_release(struct rp_shm_subs *s, unsigned slot, int logs)
{
    _Atomic uint32_t *mine = logs ? &s->slots[slot].logs : &s->slots[slot].heads;
    uint32_t v = atomic_load_explicit(mine, memory_order_relaxed);
    if (v)
        atomic_store_explicit(mine, v - 1, memory_order_relaxed);
}

void rp_sub_repair_slot(struct rp_shm_subs *s, unsigned slot)
{
    if (slot >= RP_SUB_SLOTS)
        return;
    atomic_store_explicit(&s->slots[slot].heads, 0, memory_order_seq_cst);
    atomic_store_explicit(&s->slots[slot].logs, 0, memory_order_seq_cst);
}

#define LD(x) atomic_load_explicit((_Atomic uint64_t *)&(x), memory_order_relaxed)

void rp_sub_snapshot(const struct rp_shm_subs *s, uint64_t now_ms, struct rp_subs_snapshot *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < RP_SUB_SLOTS; i++) {
        const struct rp_shm_sub_slot *sl = &s->slots[i];
        out->heads += atomic_load_explicit((_Atomic uint32_t *)&sl->heads, memory_order_relaxed);
        out->logs += atomic_load_explicit((_Atomic uint32_t *)&sl->logs, memory_order_relaxed);
        out->notifications += LD(sl->notifications);
        out->ended += LD(sl->ended);
        out->lat_count += LD(sl->lat_count);
        out->lat_sum_us += LD(sl->lat_sum_us);
        uint64_t m = LD(sl->lat_max_us);
        if (m > out->lat_max_us)
            out->lat_max_us = m;
    }
    out->follower_head = LD(s->follower_head);
    out->follower_seen = LD(s->follower_seen);
    out->lag =
        out->follower_seen > out->follower_head ? out->follower_seen - out->follower_head : 0;
    uint64_t at = LD(s->follower_head_ms);
    out->head_age_ms = at && now_ms > at ? now_ms - at : 0;
    out->events = LD(s->next_seq);
    out->fetch_headers = LD(s->fetch_headers);
    out->fetch_logs = LD(s->fetch_logs);
    out->fetch_polls = LD(s->fetch_polls);
    out->fetch_failed = LD(s->fetch_failed);
    out->reorgs = LD(s->reorgs);
    out->gaps = LD(s->gaps);
    out->seen_to_publish_us = LD(s->seen_to_publish_us);
    uint64_t since = rp_head_feed_live_since(s, now_ms);
    out->head_feed_live = since != 0;
    out->head_feed_live_ms = since ? now_ms - since : 0;
}

uint64_t rp_head_feed_live_since(const struct rp_shm_subs *s, uint64_t now_ms)
{
    uint64_t until =
        atomic_load_explicit((_Atomic uint64_t *)&s->head_feed_until_ms, memory_order_acquire);
    if (until <= now_ms)
        return 0;
    uint64_t since = LD(s->head_feed_since_ms);
    return since <= now_ms ? since : 0;
}
