/* rp_sub_ring.h - the subscriptions ring in shm (layout and protocol in
 * rp_sub_abi.h): the follower publishes, workers read. */
#ifndef RP_SUB_RING_H
#define RP_SUB_RING_H

#include <stddef.h>
#include <stdint.h>

#include "rp_buf.h"
#include "rp_shm_abi.h"
#include "rp_sub_abi.h"

/* The subscriptions region of segment H. */
static inline struct rp_shm_subs *rp_shm_subs(struct rp_shm_header *h)
{
    return (struct rp_shm_subs *)((char *)h + h->subs.offset);
}

/* One event as a reader copied it. */
struct rp_sub_event {
    uint64_t seq;
    uint32_t kind; /* enum rp_sub_kind */
    uint64_t number;
    uint64_t seen_ns;
    uint8_t hash[32];
    uint8_t parent[32];
};

/* Follower (the only writer): publish one event with payload DATA[0, LEN)
 * (LEN at most RP_SUB_ARENA_BYTES / 4). Returns its sequence number, or
 * UINT64_MAX when the payload is too large (nothing published). */
uint64_t rp_sub_publish(struct rp_shm_subs *s, uint32_t kind, uint64_t number,
                        const uint8_t hash[32], const uint8_t parent[32], uint64_t seen_ns,
                        const void *data, size_t len);

/* What rp_sub_read() found. */
enum rp_sub_read_result {
    RP_SUB_READ_OK = 0,
    RP_SUB_READ_NOT_YET = 1, /* event SEQ is not published yet */
    RP_SUB_READ_LOST = -1,   /* overwritten: the reader fell too far behind */
};

/* Copy event SEQ into EV and its payload into PAYLOAD (reset first). */
enum rp_sub_read_result rp_sub_read(struct rp_shm_subs *s, uint64_t seq, struct rp_sub_event *ev,
                                    struct rp_buf *payload);

/* Events published so far (the next one's sequence number). */
uint64_t rp_sub_next_seq(struct rp_shm_subs *s);

/* Host-wide subscriptions: the sum of the slots' cells (heads + logs, or
 * only logs when LOGS_ONLY). */
uint64_t rp_sub_count(struct rp_shm_subs *s, int logs_only);

/* Admit one subscription on SLOT (LOGS: a logs one) if the host holds
 * fewer than MAX: store-then-sum as for max_clients. Returns 1 (counted)
 * or 0 (refused, nothing counted). */
int rp_sub_admit(struct rp_shm_subs *s, unsigned slot, int logs, uint64_t max);

/* One subscription of SLOT ended. */
void rp_sub_release(struct rp_shm_subs *s, unsigned slot, int logs);

/* What operators see of subscriptions (status, rpcpoolstat, metrics). */
struct rp_subs_snapshot {
    uint64_t heads, logs;   /* subscriptions open, by kind (summed cells) */
    uint64_t follower_head; /* last block delivered */
    uint64_t follower_seen; /* highest head an endpoint reported */
    uint64_t lag;           /* seen - head */
    uint64_t head_age_ms;   /* since follower_head was delivered */
    uint64_t events;        /* published */
    uint64_t fetch_headers, fetch_logs, fetch_polls, fetch_failed;
    uint64_t reorgs, gaps;
    uint64_t notifications, ended;              /* summed over worker slots */
    uint64_t lat_count, lat_sum_us, lat_max_us; /* seen by the follower -> written */
    uint64_t seen_to_publish_us;                /* last block: seen -> published */
    int head_feed_live;                         /* the pushed head is live now */
    uint64_t head_feed_live_ms;                 /* for this long, continuously (0: not live) */
};

/* Copy S (read-only; relaxed loads) at segment clock NOW_MS. */
void rp_sub_snapshot(const struct rp_shm_subs *s, uint64_t now_ms, struct rp_subs_snapshot *out);

/* The pushed head (rp_sub_abi.h): the time since which it has been live
 * without a break when it is live at NOW_MS, else 0. Loads the deadline
 * first (acquire), then since. */
uint64_t rp_head_feed_live_since(const struct rp_shm_subs *s, uint64_t now_ms);

/* Supervisor, after reaping SLOT's process: zero its cells. */
void rp_sub_repair_slot(struct rp_shm_subs *s, unsigned slot);

#endif
