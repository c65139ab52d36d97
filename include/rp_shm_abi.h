/* rp_shm_abi.h - the layout of the shared-memory segment, types only.
 *
 * The supervisor creates the segment once at its largest size; workers, the
 * prober and rpcpoolstat map it. Everything is addressed by offsets from the
 * segment start (never pointers), so rpcpoolstat can check every offset
 * against the mapped size before use. This header carries no daemon code.
 *
 * Layout (all offsets from the segment start):
 *   [header][endpoint table][worker table][stats table]
 * The stats table is sharded: one row of RP_SHM_MAX_ENDPOINTS cells per
 * worker slot; a worker writes only its own row, readers sum the rows.
 *
 * Memory ordering: see the comment on each field. Counters that are only
 * summed by readers use relaxed order; fields that publish other data use
 * release stores and acquire loads.
 *
 * INVARIANTS: who writes each shared word, in which order, and what a
 * process killed between any two of its instructions leaves behind. The
 * rule: a host-wide count is never a second word kept beside per-process
 * shares; it is only the sum of per-slot cells, each written by one process
 * (and by the supervisor after it has reaped that process). A death can
 * then leave only that process's own cells, which the supervisor's repair
 * (rp_hold_repair_slot) zeroes: a leak until the repair, never an underflow,
 * never a double give-back, never another process's share.
 *
 *   word                      writers, order                 a death leaves
 *   ------------------------  -----------------------------  ----------------
 *   epstats.inflight_held     owner: +1 at attempt start,    own cell, zeroed
 *   epstats.conns_open_held   -1 at end (single writer,      by the repair
 *   epstats.conns_active_held never below 0)
 *   worker.clients            owner: admission is store      own cell, zeroed;
 *                             (seq_cst) then sum (seq_cst),  the max holds
 *                             undone when over max_clients   across workers
 *   epstats.trial_held        owner: period<<16|count; the   own cell, zeroed;
 *                             take stores it, sums all cells no slot lost or
 *                             of the period, re-checks the   given twice; a
 *                             breaker word; give-back only   stale give-back
 *                             in the same period             is ignored
 *   endpoint.breaker          any process, one CAS per       a whole transition
 *                             transition; period bumped on   or none
 *                             every opening and reset
 *   endpoint.gcra_tat_ns      any process, one CAS per take  a whole take or
 *                             (N tokens for N calls; above   none
 *                             the burst: never admitted)
 *   endpoint.hold_until_ms    any process, CAS to the max    a raise or none
 *   endpoint.ewma             any process, one CAS of value  a whole sample or
 *                             and time together              none
 *   endpoint identity, rows,  supervisor only, inside the    (supervisor death:
 *   generation                layout_seq seqlock (odd while  the seq stays odd;
 *                             writing); rows reused only     readers flag their
 *                             after retired_gen is reached   copy inconsistent)
 *   header.slots_hwm          supervisor, only grows,        -
 *                             before fork into a slot
 *   endpoint.last_error       prober only, inside its own    the seq stays odd:
 *                             last_error_seq seqlock         readers show ""
 *   epstats.hedge_calls,      owner: relaxed fetch_add, one  own cells: a count
 *   epstats.hedges_sent/won/  word per event; the budget is  or none; a hedge
 *   lost                      only their sum over slots      sent dies unjudged
 *                             (rp_hedge.h)                   (sent > won + lost)
 *   endpoint.head_block,      workers: CAS to the max; the   a raise or none
 *   header.best_head_block    prober: its probe, lowering
 *                             only a value no worker raised
 *                             since its last store (the
 *                             follower raises them too)
 *   subs.ring, arena,         follower only: entry seq 0,    event N unpublished;
 *   next_seq, arena_end       arena claimed, payload, seq    the restarted
 *                             N+1, next_seq N+1 (release)    follower rewrites it
 *   subs.slots[s].heads/logs  worker s: admission is store   own cells, zeroed by
 *                             then sum (seq_cst), undone     the repair
 *                             over subscriptions.max_total
 *   (details: rp_sub_abi.h)
 *   subs.head_feed_since_ms,  follower only: since (relaxed)  until is a deadline:
 *   subs.head_feed_until_ms   only while until has lapsed,    a dead follower's
 *                             then until (release); when no   lapses by itself
 *                             feed is live: until 0, since 0  within 2.5 s
 *   endpoint.head_feed_       follower only, relaxed; a      shown connected only
 *   heard_ms                  frame heard, or 0 on close     while < 2.5 s old
 *   fleet.eps[i].credited     fleet agent only: fetch_add of a whole credit or
 *                             a lease Redis granted          none (a lease
 *                                                            granted, not yet
 *                                                            credited, is lost)
 *   fleet.eps[i].spent        takers: one CAS per take, only a whole take or
 *                             while spent + n <= credited;   none
 *                             the agent: CAS to credited for
 *                             a row that changed endpoints
 *   fleet counters, mode      agent / takers, relaxed        one update or
 *                             (advisory: display, demand)    none
 *   The response cache region (rp_cache_abi.h, src/shm/cache.c):
 *   cache slot.lock           any writer: CAS 0 -> pid|ms;   a held lock: the
 *                             a lock whose pid is dead or    next writer steals
 *                             that is 2 s old is stolen by   it (CAS)
 *                             the same CAS; CAS back to 0
 *   cache slot.seq, header,   the lock holder: CAS even ->   seq odd: readers
 *   key and value bytes       odd (odd -> odd + 2 when found skip the slot; a
 *                             odd), bytes, checksum, CAS     stalled writer's
 *                             odd -> even (a stolen slot's   late bytes fail
 *                             first writer's CAS fails)      the checksum
 *   cache index words         any writer, one store; only a  a lost or stale
 *                             hint, the slot's key decides   hint: a miss
 *   cache.epoch, final_epoch  any worker, fetch_add          a bump or none
 *   cache block-hash ring     any worker, one exchange       a record or none
 *   cache flight.word         one CAS per claim (tag, seq,   RUNNING, leader
 *                             RUNNING) and per end (DONE or  dead: followers
 *                             FAILED); a claim takes over a  see its pid gone
 *                             flight whose leader is dead,   (or, unnamed, its
 *                             unnamed after 1 s, or stale    age) and ask
 *                                                            themselves; the
 *                                                            next claim takes
 *                                                            the row over
 *   cache flight.started_ms,  the claimer: started_ms before -
 *   leader, result            its CAS, leader after it; the
 *                             result before the ending CAS
 *   cache flight.waiters      followers fetch_or, then re-   a spurious wake-up
 *                             read the word; the leader      at worst
 *                             exchanges 0 after its end
 *                             (seq_cst both: none missed)
 *   cache wstats              own slot only, relaxed adds    totals, kept
 */
#ifndef RP_SHM_ABI_H
#define RP_SHM_ABI_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rp_fleet_abi.h"
#include "rp_sub_abi.h"

#define RP_SHM_MAGIC         0x31534c4f4f505052ULL /* "RPPOOLS1" little-endian */
#define RP_SHM_VERSION_MAJOR 3
#define RP_SHM_VERSION_MINOR 1

#define RP_SHM_MAX_ENDPOINTS 64                       /* slots; reload never remaps */
#define RP_SHM_MAX_WORKERS   128                      /* worker slots (prober included) */
#define RP_SHM_PROBER_SLOT   (RP_SHM_MAX_WORKERS - 1) /* the prober's slot */
#define RP_SHM_FOLLOWER_SLOT (RP_SHM_MAX_WORKERS - 2) /* the head follower (subscriptions) */
#define RP_SHM_FLEET_SLOT    (RP_SHM_MAX_WORKERS - 3) /* the fleet agent (Redis) */
#define RP_SHM_AUX_FIRST     (RP_SHM_MAX_WORKERS - 3) /* workers use [0, RP_SHM_AUX_FIRST) */
#define RP_SHM_NAME_MAX      48
#define RP_SHM_URL_MAX       128
#define RP_SHM_ERROR_MAX     96 /* bytes of an endpoint's last probe error, NUL included */
#define RP_LAT_BUCKETS       42 /* half-octave latency histogram, see below */

static_assert(sizeof(((struct rp_shm_fleet *)0)->eps) / sizeof(struct rp_shm_fleet_ep) ==
                  RP_SHM_MAX_ENDPOINTS,
              "one fleet cell per endpoint row");

static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free across processes");
static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free across processes");

/* Latency histogram bucket i (0 <= i < RP_LAT_BUCKETS) counts samples with
 * latency_us in [RP_LAT_BASE_US * 2^((i-1)/2), RP_LAT_BASE_US * 2^(i/2)):
 * half-octave buckets from 50 us (bucket 0 holds everything below) to about
 * 74 s; the last bucket also holds everything above. See rp_lat_bucket(). */
#define RP_LAT_BASE_US 50

/* Endpoint states (rp_shm_endpoint.state). */
enum rp_ep_state {
    RP_EP_UP = 0,
    RP_EP_DOWN = 1,
    RP_EP_DRAINED = 2,
    RP_EP_QUARANTINED = 3,
    RP_EP_LAGGING = 4,
};

/* Worker slot states (rp_shm_worker.state). */
enum rp_worker_state {
    RP_WORKER_FREE = 0,     /* slot unused */
    RP_WORKER_STARTING = 1, /* forked, not yet serving */
    RP_WORKER_RUNNING = 2,
    RP_WORKER_DRAINING = 3, /* finishing its requests, accepts no more */
    RP_WORKER_DEAD = 4,     /* exited; waiting to be replaced */
};

/* Worker slot kinds. */
enum rp_worker_kind {
    RP_KIND_WORKER = 0,
    RP_KIND_PROBER = 1,
    RP_KIND_FOLLOWER = 2,
    RP_KIND_FLEET = 3,
};

/* One table descriptor: where the table is and how big its rows are. */
struct rp_shm_table {
    uint64_t offset; /* bytes from the segment start */
    uint32_t count;  /* rows */
    uint32_t stride; /* bytes per row */
};

struct rp_shm_header {
    /* Written last with a release store once the segment is initialised;
     * readers load it with acquire before trusting anything else. */
    _Atomic uint64_t magic;
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t header_size;          /* sizeof(struct rp_shm_header) */
    uint64_t total_size;           /* bytes of the whole segment */
    struct rp_shm_table endpoints; /* struct rp_shm_endpoint rows */
    struct rp_shm_table workers;   /* struct rp_shm_worker rows */
    struct rp_shm_table stats;     /* struct rp_shm_epstats, [worker][endpoint] */
    char name[RP_SHM_NAME_MAX];    /* pool name, NUL-terminated */

    /* Bumped (release) by the supervisor after each reload has rewritten the
     * endpoint table; readers (acquire) rebuild their view when it changes. */
    _Atomic uint64_t generation;
    /* Seqlock over the endpoint rows' identity (name, URL, weight, limits,
     * in_use) and `generation`: odd while the supervisor rewrites them. A
     * reader loads it (acquire), copies, loads it again and retries when it
     * was odd or changed (rp_seqlock.h). */
    _Atomic uint64_t layout_seq;
    _Atomic int64_t supervisor_pid;           /* relaxed; set once at start */
    _Atomic uint64_t supervisor_birth_ns;     /* CLOCK_REALTIME at start; relaxed */
    _Atomic uint64_t supervisor_heartbeat_ms; /* rp_shm_now_ms(), relaxed */
    _Atomic uint64_t clock_base_ns; /* CLOCK_MONOTONIC at creation; the epoch of all *_ms fields */
    _Atomic uint32_t
        endpoint_count; /* rows in use (live or tombstoned); release after filling a row */
    _Atomic uint32_t worker_target; /* workers the supervisor wants; relaxed */
    _Atomic uint64_t rr_counter; /* host-wide round-robin / weighted sequence; relaxed fetch_add */
    _Atomic uint64_t best_head_block; /* highest head among healthy endpoints; relaxed */
    /* Worker slots [0, slots_hwm) may hold something (plus the prober's
     * slot): readers of host-wide counts sum those. Only grows; set by the
     * supervisor (release) before it forks into a slot. */
    _Atomic uint32_t slots_hwm;
    uint32_t pad_h;
    /* Regions after the stats table (each described by its own header):
     * subscriptions (rp_sub_abi.h), fleet (rp_fleet_abi.h), and the response
     * cache (rp_cache_abi.h), last, sized by cache.max_bytes at creation
     * (count 0 when there is no cache). */
    struct rp_shm_table subs;
    struct rp_shm_table fleet;
    struct rp_shm_table cache;
    uint8_t reserved[200];
};

/* Per-endpoint shared state. Line 0 holds what every request touches. */
struct rp_shm_endpoint {
    /* ---- line 0: hot, 128-byte aligned ---- */
    _Atomic uint64_t breaker; /* packed word, see rp_breaker.h; CAS acq_rel */
    _Atomic uint64_t
        gcra_tat_ns; /* GCRA theoretical arrival time, ns since clock_base; CAS acq_rel */
    _Atomic uint64_t hold_until_ms; /* Retry-After hold; 0 = none; only raised (CAS max) */
    _Atomic uint64_t ewma;          /* latency EWMA and when it was taken, one word: RP_EWMA_* */
    _Atomic uint32_t state;         /* enum rp_ep_state; relaxed (advisory) */
    _Atomic uint32_t drained;       /* 1 = operator drained; relaxed */
    _Atomic uint32_t health_ok;     /* prober verdict 1 up / 0 down; relaxed */
    uint32_t pad0a;
    /* In-flight attempts and connection counts are NOT here: they are only
     * the per-worker cells of rp_shm_epstats, summed by readers (rp_hold.h),
     * so no process death can leave a host-wide count torn. */
    uint8_t pad0[128 - 4 * 4 - 4 * 8];

    /* ---- line 1+: identity and parameters, written by the supervisor ---- */
    /* 1 = slot describes a configured endpoint, 0 = free or tombstoned.
     * Store release after the fields below are written; load acquire. */
    _Atomic uint32_t in_use;
    uint32_t id; /* index of this row */
    /* SipHash-2-4 of the full URL under a key that lives only in the
     * supervisor's memory (inherited by its children, never written to the
     * segment): stable across reloads, and no guessing a URL's secret parts
     * offline from the segment. 0 = never used. */
    uint64_t url_key;
    uint32_t weight;
    uint32_t pad1;
    uint64_t rl_interval_ns; /* GCRA emission interval = window_ns / max_requests */
    uint64_t rl_burst;       /* burst_size */
    char name[RP_SHM_NAME_MAX];
    char url_redacted[RP_SHM_URL_MAX];

    /* ---- chain awareness (prober) ---- */
    _Atomic uint64_t head_block;      /* relaxed */
    _Atomic int64_t chain_id;         /* 0 = unknown; relaxed */
    _Atomic uint64_t last_probe_ms;   /* relaxed */
    _Atomic uint32_t probe_successes; /* consecutive; relaxed */
    _Atomic uint32_t probe_failures;  /* consecutive; relaxed */
    /* The generation whose reload tombstoned this row (in_use 0, url_key
     * kept): the row is reused, reset, only once every live process runs a
     * generation at or above it (none can still write to it). */
    uint64_t retired_gen;
    /* Why the last probe failed ("" once one succeeds): written by the
     * prober only, inside its own seqlock (last_error_seq odd while it
     * writes), so readers copy a whole text or retry. Shown by status. */
    _Atomic uint64_t last_error_seq; /* rp_seqlock.h */
    char last_error[RP_SHM_ERROR_MAX];
    /* The head follower's WebSocket feed of this endpoint (its ws_url):
     * segment clock of the last frame heard on it while it is open and
     * subscribed, 0 when it is not. Shown as connected while younger than
     * RP_HEAD_FEED_DEAD_MS, so a dead follower's word lapses by itself.
     * Follower only, relaxed. */
    _Atomic uint64_t head_feed_heard_ms;
    uint8_t reserved[8];
} __attribute__((aligned(128)));

/* Per-worker slot. Written by that worker (counters, heartbeat) and by the
 * supervisor (pid, state at fork/reap, restarts). */
struct rp_shm_worker {
    _Atomic int64_t pid;           /* relaxed */
    _Atomic uint32_t state;        /* enum rp_worker_state; relaxed */
    _Atomic uint32_t kind;         /* enum rp_worker_kind; relaxed */
    _Atomic uint64_t heartbeat_ms; /* rp_shm_now_ms() of its last loop turn; relaxed */
    _Atomic uint64_t started_ms;   /* relaxed */
    _Atomic uint64_t requests;     /* client requests answered; relaxed */
    _Atomic uint64_t restarts;     /* times this slot was refilled after a death; relaxed */
    _Atomic uint64_t clients;      /* client connections open now: the host-wide count is the
                                      sum over slots (rp_hold.h); seq_cst for admission */
    _Atomic uint64_t generation;   /* config generation the worker runs; relaxed */
    /* chain consistency (only this worker adds to them; readers sum) */
    _Atomic uint64_t consistency_waits; /* requests that waited for an endpoint at their floor */
    _Atomic uint64_t affinity_hits;     /* tx-flow calls kept on their connection's endpoint */
    _Atomic uint64_t lookup_retries;    /* null lookups asked again at the best head */
    uint8_t reserved[40];
} __attribute__((aligned(128)));

/* Per (worker, endpoint) counters: only that worker writes them (relaxed
 * fetch_add), readers sum over workers. */
struct rp_shm_epstats {
    _Atomic uint64_t ok;         /* attempts answered by the endpoint */
    _Atomic uint64_t failed;     /* attempts that failed (section 2 failure classes) */
    _Atomic uint64_t retried;    /* attempts that were retried elsewhere after failing here */
    _Atomic uint64_t lat_sum_us; /* sum of latencies of ok attempts */
    _Atomic uint64_t lat_count;  /* samples in lat_sum_us and hist */
    _Atomic uint64_t hist[RP_LAT_BUCKETS];
    /* client-facing results attributed to this worker (endpoint 0 row only) */
    _Atomic uint64_t client_ok;
    _Atomic uint64_t client_error;
    /* What this worker holds right now. These cells ARE the host-wide
     * counts (readers sum them over slots, rp_hold.h); only this worker
     * writes them, and the supervisor zeroes them when it has reaped it. */
    _Atomic uint32_t inflight_held;     /* attempts in flight */
    _Atomic uint32_t trial_held;        /* half-open trials: period << 16 | count, rp_breaker.h */
    _Atomic uint32_t conns_open_held;   /* upstream sockets open */
    _Atomic uint32_t conns_active_held; /* of those, carrying a request */
    /* Hedged reads (rp_hedge.h): only this worker adds (relaxed), readers
     * sum; history, never zeroed by the repair. The host-wide budget is
     * counted from these sums only. */
    _Atomic uint64_t hedge_calls; /* endpoint 0 row only: calls that could be hedged */
    _Atomic uint64_t hedges_sent; /* second attempts sent to this endpoint */
    _Atomic uint64_t hedges_won;  /* ... that answered first (the client got theirs) */
    _Atomic uint64_t hedges_lost; /* ... cancelled, failed, or beaten by the first */
} __attribute__((aligned(64)));

static_assert(offsetof(struct rp_shm_endpoint, in_use) == 128, "hot line is exactly 128 bytes");

/* The EWMA word: latency in us (saturating) in the low RP_EWMA_LAT_BITS, the
 * ms (since clock_base) of the sample in the rest, so value and age always
 * come from one update. */
#define RP_EWMA_LAT_BITS 26
#define RP_EWMA_LAT_MAX  ((1ull << RP_EWMA_LAT_BITS) - 1)
static inline uint64_t rp_ewma_pack(uint64_t latency_us, uint64_t at_ms)
{
    if (latency_us > RP_EWMA_LAT_MAX)
        latency_us = RP_EWMA_LAT_MAX;
    return (at_ms << RP_EWMA_LAT_BITS) | latency_us;
}
static inline uint64_t rp_ewma_latency_us(uint64_t word)
{
    return word & RP_EWMA_LAT_MAX;
}
static inline uint64_t rp_ewma_at_ms(uint64_t word)
{
    return word >> RP_EWMA_LAT_BITS;
}
static_assert(sizeof(struct rp_shm_endpoint) % 128 == 0, "endpoint rows are 128-byte aligned");
static_assert(sizeof(struct rp_shm_worker) % 128 == 0, "worker rows are 128-byte aligned");
static_assert(sizeof(struct rp_shm_epstats) % 64 == 0, "stats cells are cache-line aligned");

/* Sizes of the whole segment, computed the same way by every program. */
#define RP_SHM_HEADER_BYTES     (((sizeof(struct rp_shm_header) + 127) / 128) * 128)
#define RP_SHM_ENDPOINTS_OFFSET RP_SHM_HEADER_BYTES
#define RP_SHM_WORKERS_OFFSET                                                                      \
    (RP_SHM_ENDPOINTS_OFFSET + RP_SHM_MAX_ENDPOINTS * sizeof(struct rp_shm_endpoint))
#define RP_SHM_STATS_OFFSET                                                                        \
    (RP_SHM_WORKERS_OFFSET + RP_SHM_MAX_WORKERS * sizeof(struct rp_shm_worker))
#define RP_SHM_SUBS_OFFSET                                                                         \
    (RP_SHM_STATS_OFFSET +                                                                         \
     (size_t)RP_SHM_MAX_WORKERS * RP_SHM_MAX_ENDPOINTS * sizeof(struct rp_shm_epstats))
#define RP_SHM_FLEET_OFFSET (RP_SHM_SUBS_OFFSET + sizeof(struct rp_shm_subs))
#define RP_SHM_CACHE_OFFSET (RP_SHM_FLEET_OFFSET + sizeof(struct rp_shm_fleet))
/* Bytes of the segment without the cache region (the cache follows). */
#define RP_SHM_TOTAL_BYTES RP_SHM_CACHE_OFFSET

/* Write the layout part of a fresh (zeroed) segment's header: version,
 * sizes and the table descriptors, as every program computes them. The
 * creator then fills the rest and publishes the magic last. */
static inline void rp_shm_layout_init(struct rp_shm_header *h)
{
    h->version_major = RP_SHM_VERSION_MAJOR;
    h->version_minor = RP_SHM_VERSION_MINOR;
    h->header_size = sizeof(struct rp_shm_header);
    h->total_size = RP_SHM_TOTAL_BYTES;
    h->endpoints = (struct rp_shm_table){RP_SHM_ENDPOINTS_OFFSET, RP_SHM_MAX_ENDPOINTS,
                                         sizeof(struct rp_shm_endpoint)};
    h->workers = (struct rp_shm_table){RP_SHM_WORKERS_OFFSET, RP_SHM_MAX_WORKERS,
                                       sizeof(struct rp_shm_worker)};
    h->stats = (struct rp_shm_table){RP_SHM_STATS_OFFSET, RP_SHM_MAX_WORKERS * RP_SHM_MAX_ENDPOINTS,
                                     sizeof(struct rp_shm_epstats)};
    h->subs = (struct rp_shm_table){RP_SHM_SUBS_OFFSET, 1, sizeof(struct rp_shm_subs)};
    h->fleet = (struct rp_shm_table){RP_SHM_FLEET_OFFSET, 1, sizeof(struct rp_shm_fleet)};
    h->cache = (struct rp_shm_table){RP_SHM_CACHE_OFFSET, 0, 0};
}

/* Histogram bucket of a latency in microseconds (pure, no daemon code). */
static inline int rp_lat_bucket(uint64_t latency_us)
{
    if (latency_us < RP_LAT_BASE_US)
        return 0;
    /* bucket = 1 + floor(2 * log2(latency / base)), half octaves */
    uint64_t ratio_q = latency_us / RP_LAT_BASE_US; /* >= 1 */
    int octave = 63 - __builtin_clzll(ratio_q);
    /* within the octave: upper half when latency >= base * 2^octave * sqrt2 */
    uint64_t lo = (uint64_t)RP_LAT_BASE_US << octave;
    int half = (latency_us * 1000 >= lo * 1414) ? 1 : 0;
    int b = 1 + 2 * octave + half;
    return b >= RP_LAT_BUCKETS ? RP_LAT_BUCKETS - 1 : b;
}

/* Upper bound in microseconds of histogram bucket B (for quantiles). */
static inline double rp_lat_bucket_upper_us(int b)
{
    double v = RP_LAT_BASE_US;
    for (int i = 0; i < b; i++)
        v *= 1.41421356237;
    return v;
}

#endif
