/* rp_sub_abi.h - the subscriptions region of the shared segment, types only
 * (included by rp_shm_abi.h; see docs/interface.md section 8).
 *
 * One writer, the head follower (RP_SHM_FOLLOWER_SLOT), publishes events
 * (a new head, a block's logs, logs removed by a reorg, the end of every
 * subscription after a gap beyond backfill_blocks) into a bounded ring;
 * every worker reads them and writes notifications to its subscribers.
 *
 * The ring: event N (0, 1, 2, ...) lives in entry N % RP_SUB_RING_ENTRIES.
 * Its payload (a header's JSON, or a block's logs, rp_sub_ring.h) lives in
 * a byte arena at the monotonic byte position data_pos (modulo
 * RP_SUB_ARENA_BYTES). Publishing event N: the writer stores the entry's
 * seq 0 (entry being rewritten), raises arena_end to the payload's end
 * BEFORE it writes a byte of it, writes payload and fields, stores seq
 * N + 1 (release), then next_seq N + 1 (release). A reader of event N
 * loads seq (acquire) == N + 1, copies fields and payload, and checks
 * after an acquire fence that seq is still N + 1 and that arena_end -
 * data_pos <= RP_SUB_ARENA_BYTES (no later payload overwrote it): else the
 * event was overwritten while it read (the reader fell behind).
 *
 * INVARIANTS (a process killed between any two instructions):
 *   word                 writers, order                 a death leaves
 *   -------------------  -----------------------------  ----------------
 *   ring[i].seq, fields  follower: seq 0, payload,      seq 0: event N is
 *   arena, arena_end     fields, seq N+1 (release)      unpublished; the next
 *                                                       follower rewrites it
 *   next_seq             follower, after the entry      only published events
 *                        (release); only grows          are counted
 *   follower_* counters  follower, relaxed              a stale value
 *   slots[s].heads/logs  worker s only (relaxed; the    own cells, zeroed by
 *                        admission store-then-sum is    the supervisor's
 *                        seq_cst like max_clients)      repair
 *   slots[s] counters    worker s only, relaxed         history, kept
 */
#ifndef RP_SUB_ABI_H
#define RP_SUB_ABI_H

#include <stdatomic.h>
#include <stdint.h>

#define RP_SUB_RING_ENTRIES  4096u       /* events kept (a power of two) */
#define RP_SUB_ARENA_BYTES   (16u << 20) /* payload bytes kept (a power of two) */
#define RP_SUB_SLOTS         128         /* = RP_SHM_MAX_WORKERS */
#define RP_HEAD_FEED_DEAD_MS 2500u       /* a feed not heard from for this long is dead */

/* Event kinds (rp_shm_sub_entry.kind). */
enum rp_sub_kind {
    RP_SUB_EV_HEAD = 1,    /* payload: the header object as newHeads sends it */
    RP_SUB_EV_LOGS = 2,    /* payload: the block's logs (rp_sub_ring.h records) */
    RP_SUB_EV_REMOVED = 3, /* payload: logs of a block a reorg removed ("removed":true) */
    RP_SUB_EV_END = 4,     /* payload: why; every subscription older than it ends */
};

struct rp_shm_sub_entry {
    _Atomic uint64_t seq; /* N + 1 once event N is whole here; 0 while rewritten */
    uint32_t kind;        /* enum rp_sub_kind */
    uint32_t data_len;    /* payload bytes */
    uint64_t data_pos;    /* payload's monotonic arena position */
    uint64_t number;      /* block number */
    uint64_t seen_ns;     /* segment clock when the follower learned the block */
    uint8_t hash[32];     /* block hash */
    uint8_t parent[32];   /* parent hash (HEAD) */
    uint8_t pad[16];
} __attribute__((aligned(64)));

/* What one worker slot holds and has done (only that worker writes). */
struct rp_shm_sub_slot {
    _Atomic uint32_t heads;         /* newHeads subscriptions open */
    _Atomic uint32_t logs;          /* logs subscriptions open */
    _Atomic uint64_t notifications; /* notifications written */
    _Atomic uint64_t lat_sum_us;    /* seen by the follower -> written, summed */
    _Atomic uint64_t lat_count;
    _Atomic uint64_t lat_max_us;
    _Atomic uint64_t ended; /* subscriptions ended by rpcpool (gap, overrun, limits) */
    uint8_t pad[16];
} __attribute__((aligned(64)));

struct rp_shm_subs {
    _Atomic uint64_t next_seq;  /* events published (the next one's number) */
    _Atomic uint64_t arena_end; /* monotonic end of the payload being or last written */
    /* the follower's view (relaxed; shown by status, rpcpoolstat, metrics) */
    _Atomic uint64_t follower_head;      /* last block delivered */
    _Atomic uint64_t follower_seen;      /* highest head an endpoint reported */
    _Atomic uint64_t follower_head_ms;   /* segment clock when follower_head was delivered */
    _Atomic uint64_t fetch_headers;      /* header fetches (eth_getBlockByNumber) */
    _Atomic uint64_t fetch_logs;         /* eth_getLogs calls */
    _Atomic uint64_t fetch_polls;        /* eth_blockNumber polls */
    _Atomic uint64_t fetch_failed;       /* calls that failed */
    _Atomic uint64_t reorgs;             /* reorgs followed */
    _Atomic uint64_t gaps;               /* gaps beyond backfill_blocks (subscriptions ended) */
    _Atomic uint64_t seen_to_publish_us; /* last: block seen -> published, us */
    /* The pushed head (the follower's WebSocket feeds, ws_url): live until
     * head_feed_until_ms (segment clock; the last frame heard on a feed of
     * a usable endpoint + RP_HEAD_FEED_DEAD_MS; 0: no feed), continuously
     * since head_feed_since_ms. The follower stores since (only while
     * until has lapsed) before until (release); readers load until
     * (acquire) first. A deadline, not a flag: a dead follower's lapses. */
    _Atomic uint64_t head_feed_until_ms;
    _Atomic uint64_t head_feed_since_ms;
    uint8_t pad0[128 - 14 * 8];
    struct rp_shm_sub_slot slots[RP_SUB_SLOTS];
    struct rp_shm_sub_entry ring[RP_SUB_RING_ENTRIES];
    uint8_t arena[RP_SUB_ARENA_BYTES];
} __attribute__((aligned(128)));

#endif
