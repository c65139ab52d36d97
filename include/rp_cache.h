/* rp_cache.h - the host's response cache and in-flight table in the shm
 * segment (layout in rp_cache_abi.h). Any process may call these at any
 * time; any of them may be SIGKILLed at any instruction (see the
 * INVARIANTS in rp_shm_abi.h for what that leaves).
 */
#ifndef RP_CACHE_H
#define RP_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rp_buf.h"
#include "rp_cache_abi.h"

/* Bytes of the cache region for cache.max_bytes MAX_BYTES (0 = no cache)
 * and coalescing COALESCE: 0 when neither is on. */
size_t rp_cache_region_bytes(int64_t max_bytes, int coalesce);

/* Lay out a zeroed region of BYTES at BASE (CACHE_ON: entries are served). */
void rp_cache_region_init(void *base, size_t bytes, int cache_on);

/* The region of the segment H, or NULL. */
struct rp_shm_cache *rp_cache_of(struct rp_shm_header *h);

/* What a slot says of its entry (the bytes go to the caller's buffer). */
struct rp_cache_meta {
    uint32_t kind;
    uint32_t id_off;
    uint64_t head, epoch, stored_ms, shown, origin;
};

/* Look KEY[0, KLEN) (hash KHASH) up: 1 with the value in OUT (replacing its
 * contents) and its meta in M, 0 when absent (or torn, or being written).
 * Validity (age, head, epoch) is the caller's to judge. */
int rp_cache_get(struct rp_shm_cache *c, const char *key, size_t klen, uint64_t khash,
                 struct rp_buf *out, struct rp_cache_meta *m);

/* Read the slot REF (from a flight's result) if it still holds KEY with
 * ORIGIN: 1 with the value, else 0. */
int rp_cache_get_ref(struct rp_shm_cache *c, uint64_t ref, const char *key, size_t klen,
                     uint64_t origin, struct rp_buf *out, struct rp_cache_meta *m);

/* Store KEY -> VAL[0, VLEN) with meta M (kind, id_off, ...; stored_ms is
 * NOW_MS) as process PID; INDEX: make it findable by rp_cache_get (else only
 * by its reference). Returns the slot reference (class << 28 | index, + 1;
 * nonzero), or 0 when it cannot be kept (too large, every slot busy). */
uint64_t rp_cache_put(struct rp_shm_cache *c, const char *key, size_t klen, uint64_t khash,
                      const char *val, size_t vlen, const struct rp_cache_meta *m, int index,
                      pid_t pid, uint64_t now_ms);

/* Bump the epoch (head-dependent entries die); FINAL too: final_epoch. */
void rp_cache_invalidate(struct rp_shm_cache *c, int final);

/* Record that block NUMBER has hash fingerprint FP (from an answer). Returns
 * 1 when another hash was recorded at that number (a reorg). */
int rp_cache_note_block(struct rp_shm_cache *c, uint64_t number, uint64_t fp);

/* ---- flights (coalescing) ---- */

struct rp_flight_ticket {
    uint32_t idx;  /* flight row */
    uint64_t word; /* the flight word while it runs (tag, seq, RUNNING) */
};

enum rp_flight_role { RP_FLIGHT_NONE = 0, RP_FLIGHT_LEADER = 1, RP_FLIGHT_FOLLOWER = 2 };

/* Join the flight of FHASH: lead it (claim a row) or follow the one
 * running. A running flight whose leader PID is dead, or older than
 * STALE_MS, is taken over. NONE when every row it may use is busy. */
enum rp_flight_role rp_flight_join(struct rp_shm_cache *c, uint64_t fhash, pid_t pid,
                                   uint64_t now_ms, uint64_t stale_ms, struct rp_flight_ticket *t);

/* The leader is done: REF is its answer's slot (0: failed, no answer to
 * share). Returns the worker slots to wake in W[2]. */
void rp_flight_finish(struct rp_shm_cache *c, const struct rp_flight_ticket *t, uint64_t ref,
                      uint64_t w[2]);

/* Any waiters registered on T's flight now (the leader checks before it
 * writes an answer nobody waits for). */
int rp_flight_has_waiters(struct rp_shm_cache *c, const struct rp_flight_ticket *t);

/* A follower in worker SLOT asks to be woken. Returns 1 when the flight is
 * no longer running (look at it now: no wake-up may come). */
int rp_flight_register(struct rp_shm_cache *c, const struct rp_flight_ticket *t, unsigned slot);

/* Where T's flight is: RUNNING (keep waiting), DONE (*REF set) or FAILED
 * (ended without an answer, taken over, or, with CHECK_LEADER, its leader
 * is dead or never named itself; NOW_MS: segment clock). */
enum rp_flight_state rp_flight_poll(struct rp_shm_cache *c, const struct rp_flight_ticket *t,
                                    int check_leader, uint64_t now_ms, uint64_t *ref);

/* The per-slot counters of SLOT. */
struct rp_cache_wstats *rp_cache_wstats(struct rp_shm_cache *c, unsigned slot);

#endif
