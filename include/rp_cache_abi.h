/* rp_cache_abi.h - the layout of the response cache region, last in the shm
 * segment (h->cache: offset, count = the region's bytes / 128, stride 128;
 * count 0 when neither the cache nor coalescing is on). Types and read-only helpers
 * only: rpcpoolstat includes it without daemon code (the writers are
 * src/shm/cache.c).
 *
 * Region layout (offsets from the region start, all 128-byte aligned):
 *   [struct rp_shm_cache][per-slot counters][block-hash ring][flights]
 *   [index: sets of RP_CACHE_WAYS words][class 0 slots]...[class N-1 slots]
 *
 * Entries live in fixed-size slots of RP_CACHE_NCLASS size classes (256 B
 * to 1 MiB, each class a share of the bytes), evicted by CLOCK per class.
 * Every slot is guarded by its own seqlock (seq, odd while written) and
 * carries a checksum of its header and bytes, so a reader never returns a
 * torn entry; writers take a slot with a lock word (pid and time) that a
 * later writer steals when that pid is dead or the lock is old. The index
 * maps a key hash to a slot; it is only a hint (the slot's key is compared),
 * so a lost or stale index word is a miss, never a wrong answer.
 *
 * A flight is an upstream call in progress that identical calls wait on
 * (coalescing): one 64-bit word (tag, sequence, state) claimed by CAS, the
 * leader's pid, a result reference (a slot) and a bitmap of worker slots to
 * wake.
 */
#ifndef RP_CACHE_ABI_H
#define RP_CACHE_ABI_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "rp_shm_abi.h"

#define RP_CACHE_NCLASS       7   /* slot classes: 256 B << (2 * c) */
#define RP_CACHE_SLOT_MIN     256 /* bytes of a class 0 slot, header included */
#define RP_CACHE_SLOT_HDR     128 /* bytes of a slot's header */
#define RP_CACHE_WAYS         8   /* index words per set (one cache line) */
#define RP_CACHE_FLIGHTS      1024
#define RP_CACHE_RING         1024              /* recent block hashes, by number mod this */
#define RP_CACHE_COALESCE_MIN ((size_t)8 << 20) /* region size when only coalescing is on */

/* Entry kinds (rp_cache_slot.kind). */
enum rp_cache_kind {
    RP_CENT_FREE = 0,
    RP_CENT_STATIC = 1,     /* eth_chainId, net_version: never changes */
    RP_CENT_FINAL_HASH = 2, /* keyed by a block hash: never changes */
    RP_CENT_FINAL_NUM = 3,  /* a block finality_depth below the head: valid while final_epoch */
    RP_CENT_HEAD = 4,       /* head-dependent: valid at its head and epoch, for a short age */
    RP_CENT_FLIGHT = 5,     /* a coalesced answer for the followers of one flight only */
};

/* Flight states (low 4 bits of rp_cache_flight.word). */
enum rp_flight_state {
    RP_FLIGHT_FREE = 0,
    RP_FLIGHT_RUNNING = 1,
    RP_FLIGHT_DONE = 2,
    RP_FLIGHT_FAILED = 3,
};

struct rp_cache_class {
    uint64_t offset;       /* of slot 0, from the region start */
    uint32_t slots;        /* 0: no entry of this size can be kept */
    uint32_t slot_bytes;   /* header included */
    _Atomic uint64_t hand; /* CLOCK hand: relaxed fetch_add by writers */
    uint64_t pad;
};

struct rp_shm_cache {
    uint64_t region_bytes;
    uint32_t cache_on; /* 1: entries are indexed and served; 0: coalescing results only */
    uint32_t nclass;
    uint64_t wstats_offset; /* struct rp_cache_wstats[RP_SHM_MAX_WORKERS] */
    uint64_t ring_offset;   /* _Atomic uint64_t[RP_CACHE_RING] */
    uint64_t flights_offset;
    uint32_t nflights;
    uint32_t index_sets; /* power of two */
    uint64_t index_offset;
    struct rp_cache_class cls[RP_CACHE_NCLASS];
    /* Bumped (relaxed fetch_add) when a state-changing call passes the pool
     * or a reorg is seen: head-dependent entries of an older epoch are
     * dead. final_epoch: bumped when a reorg deeper than finality_depth is
     * seen (entries by a "final" number die too). */
    _Atomic uint64_t epoch __attribute__((aligned(64)));
    _Atomic uint64_t final_epoch;
    uint8_t pad[48];
} __attribute__((aligned(128)));

/* One worker slot's counters: only that process adds (relaxed), readers
 * sum; the supervisor's slot repair leaves them (they are totals). */
struct rp_cache_wstats {
    _Atomic uint64_t hits;      /* answered from the cache */
    _Atomic uint64_t misses;    /* cacheable calls not found (or found stale) */
    _Atomic uint64_t coalesced; /* answered with another call's upstream answer */
    _Atomic uint64_t stores;    /* entries written */
    uint64_t pad[4];
} __attribute__((aligned(64)));

/* A slot's header; the key bytes follow it, then the value bytes. */
struct rp_cache_slot {
    _Atomic uint64_t seq;  /* seqlock: odd while a writer rewrites the slot */
    _Atomic uint64_t lock; /* 0 free; else writer pid << 32 | (its segment ms & 0xffffffff) */
    _Atomic uint32_t ref;  /* CLOCK bit: set by hits, cleared by the hand */
    /* ---- covered by sum, written inside the seqlock ---- */
    uint32_t kind; /* enum rp_cache_kind */
    uint32_t key_len, val_len;
    uint32_t id_off; /* the client's id goes at value[id_off] */
    uint32_t pad0;
    uint64_t key_hash;
    uint64_t head;      /* HEAD: the best head it belongs to */
    uint64_t epoch;     /* HEAD: epoch; FINAL_NUM: final_epoch */
    uint64_t stored_ms; /* segment clock */
    uint64_t shown;     /* the block the answer shows (a client's chain floor) */
    uint64_t origin;    /* the flight word (tag, seq) whose leader wrote it; 0 none */
    /* ---- */
    uint64_t sum; /* rp_cache_sum() of the fields above and the bytes */
    uint8_t pad1[RP_CACHE_SLOT_HDR - 96];
};

struct rp_cache_flight {
    _Atomic uint64_t word;       /* tag (40 bits) << 24 | seq (20) << 4 | state (4) */
    _Atomic uint64_t leader;     /* pid << 32 | seq of the flight it leads */
    _Atomic uint64_t started_ms; /* segment clock of the claim */
    _Atomic uint64_t result;     /* seq << 44 | slot ref (class << 28 | index): the answer */
    _Atomic uint64_t waiters[2]; /* worker slots to wake (bit per slot) */
    uint64_t pad[2];
};

_Static_assert(sizeof(struct rp_cache_slot) == RP_CACHE_SLOT_HDR, "slot header size");
_Static_assert(sizeof(struct rp_cache_flight) == 64, "one flight per cache line");
_Static_assert(RP_SHM_MAX_WORKERS <= 128, "two waiter words");

/* Totals for status, rpcpoolstat and metrics. */
struct rp_cache_totals {
    int present;  /* the segment has a cache region */
    int cache_on; /* entries are kept (else coalescing only) */
    uint64_t hits, misses, coalesced, stores;
    uint64_t entries;     /* valid slots (not counting coalescing-only answers) */
    uint64_t bytes_used;  /* their key and value bytes */
    uint64_t bytes_total; /* the region */
};

/* The region of segment H mapped over SIZE bytes, or NULL (none, or a
 * descriptor that does not fit: read-only callers never trust it blindly). */
static inline const struct rp_shm_cache *rp_cache_abi_region(const struct rp_shm_header *h,
                                                             size_t size)
{
    struct rp_shm_table t = h->cache;
    uint64_t bytes = (uint64_t)t.count * t.stride;
    if (t.count == 0 || t.stride != 128 || t.offset < sizeof *h || t.offset > size ||
        bytes > size - t.offset || bytes < sizeof(struct rp_shm_cache) || (t.offset & 127))
        return NULL;
    const struct rp_shm_cache *c = (const void *)((const char *)h + t.offset);
    if (c->region_bytes != bytes)
        return NULL;
    return c;
}

/* Sum the counters and count the live entries of segment H (SIZE bytes
 * mapped) into OUT. Reads only; checks every offset against the region. */
static inline void rp_cache_abi_totals(const struct rp_shm_header *h, size_t size,
                                       struct rp_cache_totals *out)
{
    *out = (struct rp_cache_totals){0};
    const struct rp_shm_cache *c = rp_cache_abi_region(h, size);
    if (!c)
        return;
    uint64_t rb = c->region_bytes;
    out->present = 1;
    out->cache_on = (int)c->cache_on;
    out->bytes_total = rb;
    if (c->wstats_offset + sizeof(struct rp_cache_wstats) * RP_SHM_MAX_WORKERS <= rb) {
        const struct rp_cache_wstats *w = (const void *)((const char *)c + c->wstats_offset);
        for (unsigned i = 0; i < RP_SHM_MAX_WORKERS; i++) {
            out->hits += atomic_load_explicit(&w[i].hits, memory_order_relaxed);
            out->misses += atomic_load_explicit(&w[i].misses, memory_order_relaxed);
            out->coalesced += atomic_load_explicit(&w[i].coalesced, memory_order_relaxed);
            out->stores += atomic_load_explicit(&w[i].stores, memory_order_relaxed);
        }
    }
    for (unsigned k = 0; k < RP_CACHE_NCLASS && k < c->nclass; k++) {
        const struct rp_cache_class *cl = &c->cls[k];
        if (cl->slot_bytes < RP_CACHE_SLOT_HDR || cl->offset > rb ||
            (uint64_t)cl->slots * cl->slot_bytes > rb - cl->offset)
            continue;
        for (uint32_t i = 0; i < cl->slots; i++) {
            const struct rp_cache_slot *s =
                (const void *)((const char *)c + cl->offset + (uint64_t)i * cl->slot_bytes);
            uint64_t seq = atomic_load_explicit((_Atomic uint64_t *)&s->seq, memory_order_acquire);
            uint32_t kind = s->kind, kl = s->key_len, vl = s->val_len;
            atomic_thread_fence(memory_order_acquire);
            if ((seq & 1) ||
                atomic_load_explicit((_Atomic uint64_t *)&s->seq, memory_order_relaxed) != seq)
                continue;
            if (kind == RP_CENT_FREE || kind == RP_CENT_FLIGHT)
                continue;
            out->entries++;
            out->bytes_used += (uint64_t)kl + vl;
        }
    }
}

#endif
