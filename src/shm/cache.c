/* cache.c - the host's response cache and in-flight table in shm (rp_cache.h,
 * layout in rp_cache_abi.h).
 *
 * Writers: a slot is taken with its lock word (CAS 0 -> pid|ms; a lock whose
 * pid is dead or that is older than CACHE_LOCK_STALE_MS is stolen with the
 * same CAS), then rewritten inside its seqlock (odd while written: made odd
 * with a CAS, and moved on by 2 when found odd, so that a stalled writer's
 * late CAS fails), with a checksum of header and bytes, then published
 * (CAS odd -> even) and unlocked. Readers copy between two loads of the
 * sequence and check the checksum: a torn copy, a dead writer's half entry
 * or a stalled writer's late bytes are all a miss.
 */
#include "rp_cache.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "rp_cachekey.h"
#include "rp_shm.h"

#define CACHE_LOCK_STALE_MS 2000 /* a slot write takes microseconds */
#define CACHE_SWEEP         32   /* CLOCK steps before a writer gives up */
#define CACHE_SUM_SEED      0x5ca1ab1e0ddba11ull

static size_t align128(size_t v)
{
    return (v + 127) & ~(size_t)127;
}

size_t rp_cache_region_bytes(int64_t max_bytes, int coalesce)
{
    if (max_bytes > 0) /* at least what coalescing alone would have */
        return align128((size_t)max_bytes > RP_CACHE_COALESCE_MIN ? (size_t)max_bytes
                                                                  : RP_CACHE_COALESCE_MIN);
    return coalesce ? RP_CACHE_COALESCE_MIN : 0;
}

void rp_cache_region_init(void *base, size_t bytes, int cache_on)
{
    struct rp_shm_cache *c = base;
    c->region_bytes = bytes;
    c->cache_on = (uint32_t)(cache_on != 0);
    c->nclass = RP_CACHE_NCLASS;
    size_t off = align128(sizeof *c);
    c->wstats_offset = off;
    off = align128(off + sizeof(struct rp_cache_wstats) * RP_SHM_MAX_WORKERS);
    c->ring_offset = off;
    off = align128(off + sizeof(uint64_t) * RP_CACHE_RING);
    c->flights_offset = off;
    c->nflights = RP_CACHE_FLIGHTS;
    off = align128(off + sizeof(struct rp_cache_flight) * RP_CACHE_FLIGHTS);
    /* index: one 8-byte word per 512 bytes of slots, in sets of 8, a power of two */
    size_t rest = bytes > off ? bytes - off : 0;
    size_t sets = 1;
    while (sets * 2 * RP_CACHE_WAYS * 8 * 64 <= rest)
        sets *= 2;
    c->index_sets = (uint32_t)sets;
    c->index_offset = off;
    off = align128(off + sets * RP_CACHE_WAYS * 8);
    rest = bytes > off ? bytes - off : 0;
    size_t share = rest / RP_CACHE_NCLASS;
    for (unsigned k = 0; k < RP_CACHE_NCLASS; k++) {
        struct rp_cache_class *cl = &c->cls[k];
        cl->slot_bytes = (uint32_t)(RP_CACHE_SLOT_MIN << (2 * k));
        size_t n = share / cl->slot_bytes;
        cl->slots = n >= 2 ? (uint32_t)n : 0; /* a class of one slot would thrash */
        cl->offset = off;
        off += (size_t)cl->slots * cl->slot_bytes;
    }
}

struct rp_shm_cache *rp_cache_of(struct rp_shm_header *h)
{
    if (!h || h->cache.count == 0)
        return NULL;
    return (struct rp_shm_cache *)((char *)h + h->cache.offset);
}

struct rp_cache_wstats *rp_cache_wstats(struct rp_shm_cache *c, unsigned slot)
{
    return (struct rp_cache_wstats *)((char *)c + c->wstats_offset) + slot;
}

static struct rp_cache_slot *cache_slot(struct rp_shm_cache *c, unsigned k, uint32_t i)
{
    return (struct rp_cache_slot *)((char *)c + c->cls[k].offset +
                                    (size_t)i * c->cls[k].slot_bytes);
}

static _Atomic uint64_t *cache_index_set(struct rp_shm_cache *c, uint64_t khash)
{
    uint64_t set = khash & (c->index_sets - 1);
    return (_Atomic uint64_t *)((char *)c + c->index_offset) + set * RP_CACHE_WAYS;
}

/* Checksum of a slot header's covered fields and its bytes DATA[0, N). */
static uint64_t cache_sum(const struct rp_cache_slot *h, const char *data, size_t n)
{
    uint64_t f = rp_cachekey_hash(
        &h->kind, offsetof(struct rp_cache_slot, sum) - offsetof(struct rp_cache_slot, kind),
        CACHE_SUM_SEED);
    return rp_cachekey_hash(data, n, f);
}

/* Copy slot S if it holds KEY: 1 with the value in OUT and meta in M. */
static int cache_read_slot(struct rp_shm_cache *c, unsigned k, struct rp_cache_slot *s,
                           const char *key, size_t klen, uint64_t khash, struct rp_buf *out,
                           struct rp_cache_meta *m)
{
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (seq & 1)
        return 0;
    struct rp_cache_slot h;
    memcpy(&h, s, sizeof h);
    if (h.kind == RP_CENT_FREE || h.key_hash != khash || h.key_len != klen ||
        (size_t)h.key_len + h.val_len > c->cls[k].slot_bytes - RP_CACHE_SLOT_HDR)
        return 0;
    size_t n = (size_t)h.key_len + h.val_len;
    rp_buf_reset(out);
    if (rp_buf_append(out, (const char *)(s + 1), n) != 0)
        return 0;
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != seq)
        return 0;
    if (cache_sum(&h, out->data, n) != h.sum || memcmp(out->data, key, klen) != 0)
        return 0;
    memmove(out->data, out->data + klen, h.val_len);
    out->len = h.val_len;
    *m = (struct rp_cache_meta){h.kind, h.id_off, h.head, h.epoch, h.stored_ms, h.shown, h.origin};
    if (!atomic_load_explicit(&s->ref, memory_order_relaxed))
        atomic_store_explicit(&s->ref, 1, memory_order_relaxed);
    return 1;
}

int rp_cache_get(struct rp_shm_cache *c, const char *key, size_t klen, uint64_t khash,
                 struct rp_buf *out, struct rp_cache_meta *m)
{
    if (!c->cache_on || !c->index_sets)
        return 0;
    _Atomic uint64_t *set = cache_index_set(c, khash);
    uint32_t tag = (uint32_t)(khash >> 32) | 1;
    for (int w = 0; w < RP_CACHE_WAYS; w++) {
        uint64_t v = atomic_load_explicit(&set[w], memory_order_acquire);
        if ((uint32_t)(v >> 32) != tag)
            continue;
        unsigned k = (unsigned)((v >> 28) & 0xf);
        uint32_t i = (uint32_t)(v & 0x0fffffff);
        if (k >= RP_CACHE_NCLASS || i >= c->cls[k].slots)
            continue;
        if (cache_read_slot(c, k, cache_slot(c, k, i), key, klen, khash, out, m) &&
            m->kind != RP_CENT_FLIGHT)
            return 1;
    }
    return 0;
}

int rp_cache_get_ref(struct rp_shm_cache *c, uint64_t ref, const char *key, size_t klen,
                     uint64_t origin, struct rp_buf *out, struct rp_cache_meta *m)
{
    if (!ref)
        return 0;
    ref--;
    unsigned k = (unsigned)((ref >> 28) & 0xf);
    uint32_t i = (uint32_t)(ref & 0x0fffffff);
    if (k >= RP_CACHE_NCLASS || i >= c->cls[k].slots)
        return 0;
    uint64_t khash = rp_cachekey_hash(key, klen, 0);
    return cache_read_slot(c, k, cache_slot(c, k, i), key, klen, khash, out, m) &&
           m->origin == origin;
}

/* Is the writer of lock word L gone (dead, or holding it far too long)? */
static int cache_lock_stale(uint64_t l, uint64_t now_ms)
{
    pid_t pid = (pid_t)(l >> 32);
    uint32_t at = (uint32_t)l;
    if ((uint32_t)now_ms - at > CACHE_LOCK_STALE_MS)
        return 1;
    return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

/* Take a slot of class K by CLOCK: its lock word is ours on return. */
static struct rp_cache_slot *cache_take(struct rp_shm_cache *c, unsigned k, uint64_t mine,
                                        uint64_t now_ms, uint32_t *idx)
{
    struct rp_cache_class *cl = &c->cls[k];
    for (int step = 0; step < CACHE_SWEEP; step++) {
        uint32_t i =
            (uint32_t)(atomic_fetch_add_explicit(&cl->hand, 1, memory_order_relaxed) % cl->slots);
        struct rp_cache_slot *s = cache_slot(c, k, i);
        uint64_t l = atomic_load_explicit(&s->lock, memory_order_acquire);
        if (l && !cache_lock_stale(l, now_ms))
            continue;
        if (step < CACHE_SWEEP / 2 && atomic_load_explicit(&s->ref, memory_order_relaxed)) {
            atomic_store_explicit(&s->ref, 0, memory_order_relaxed); /* a second chance */
            continue;
        }
        if (atomic_compare_exchange_strong_explicit(&s->lock, &l, mine, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            *idx = i;
            return s;
        }
    }
    return NULL;
}

uint64_t rp_cache_put(struct rp_shm_cache *c, const char *key, size_t klen, uint64_t khash,
                      const char *val, size_t vlen, const struct rp_cache_meta *m, int index,
                      pid_t pid, uint64_t now_ms)
{
    size_t need = klen + vlen + RP_CACHE_SLOT_HDR;
    unsigned k = 0;
    while (k < RP_CACHE_NCLASS && (c->cls[k].slot_bytes < need || c->cls[k].slots == 0))
        k++;
    if (k == RP_CACHE_NCLASS || klen > UINT32_MAX || vlen > UINT32_MAX)
        return 0;
    uint64_t mine = (uint64_t)(uint32_t)pid << 32 | (uint32_t)now_ms;
    uint32_t i;
    struct rp_cache_slot *s = cache_take(c, k, mine, now_ms, &i);
    if (!s)
        return 0;
    /* seqlock odd: from even with a CAS; from odd (a writer died in it) on
     * by two, so a stalled writer's closing CAS fails */
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    uint64_t odd = (seq & 1) ? seq + 2 : seq + 1;
    if (!atomic_compare_exchange_strong_explicit(&s->seq, &seq, odd, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        atomic_compare_exchange_strong_explicit(&s->lock, &mine, 0, memory_order_release,
                                                memory_order_relaxed);
        return 0;
    }
    atomic_thread_fence(memory_order_release);
    s->kind = index ? m->kind : RP_CENT_FLIGHT;
    s->key_len = (uint32_t)klen;
    s->val_len = (uint32_t)vlen;
    s->id_off = m->id_off;
    s->pad0 = 0;
    s->key_hash = khash;
    s->head = m->head;
    s->epoch = m->epoch;
    s->stored_ms = now_ms;
    s->shown = m->shown;
    s->origin = m->origin;
    char *data = (char *)(s + 1);
    memcpy(data, key, klen);
    memcpy(data + klen, val, vlen);
    s->sum = cache_sum(s, data, klen + vlen);
    atomic_store_explicit(&s->ref, 1, memory_order_relaxed);
    uint64_t want = odd;
    int published = atomic_compare_exchange_strong_explicit(
        &s->seq, &want, odd + 1, memory_order_release, memory_order_relaxed);
    atomic_compare_exchange_strong_explicit(&s->lock, &mine, 0, memory_order_release,
                                            memory_order_relaxed);
    if (!published)
        return 0;
    uint64_t ref = ((uint64_t)k << 28 | i);
    if (index && c->cache_on) {
        _Atomic uint64_t *set = cache_index_set(c, khash);
        uint32_t tag = (uint32_t)(khash >> 32) | 1;
        uint64_t word = (uint64_t)tag << 32 | ref;
        int way = -1;
        for (int w = 0; w < RP_CACHE_WAYS && way < 0; w++) {
            uint64_t v = atomic_load_explicit(&set[w], memory_order_relaxed);
            if (v == 0 || (uint32_t)(v >> 32) == tag || (v & 0xffffffff) == ref)
                way = w;
        }
        if (way < 0)
            way = (int)((khash >> 8) % RP_CACHE_WAYS ^ (now_ms & 7));
        atomic_store_explicit(&set[way], word, memory_order_release);
    }
    return ref + 1;
}

void rp_cache_invalidate(struct rp_shm_cache *c, int final)
{
    atomic_fetch_add_explicit(&c->epoch, 1, memory_order_relaxed);
    if (final)
        atomic_fetch_add_explicit(&c->final_epoch, 1, memory_order_relaxed);
}

int rp_cache_note_block(struct rp_shm_cache *c, uint64_t number, uint64_t fp)
{
    if (!fp)
        return 0;
    _Atomic uint64_t *ring = (_Atomic uint64_t *)((char *)c + c->ring_offset);
    _Atomic uint64_t *cell = &ring[number % RP_CACHE_RING];
    /* one word: 24 bits of the number, 40 of the hash */
    uint64_t word = (number & 0xffffff) << 40 | (fp & 0xffffffffffull);
    uint64_t old = atomic_exchange_explicit(cell, word, memory_order_relaxed);
    return old && (old >> 40) == (word >> 40) && old != word;
}

/* ---- flights ---- */

#define FL_STATE(w) ((unsigned)((w)&0xf))
#define FL_SEQ(w)   (((w) >> 4) & 0xfffff)
#define FL_TAG(w)   ((w) >> 24)

static struct rp_cache_flight *flight_row(struct rp_shm_cache *c, uint32_t i)
{
    return (struct rp_cache_flight *)((char *)c + c->flights_offset) + i;
}

/* A claimer writes its pid within microseconds of its CAS: a running flight
 * still without it after this long lost its leader in between. */
#define FLIGHT_NAME_GRACE_MS 1000

/* Is the running flight F (word W) abandoned: its leader dead, or older
 * than STALE_MS, or never named by a leader killed right after its claim? */
static int flight_stale(struct rp_cache_flight *f, uint64_t w, uint64_t now_ms, uint64_t stale_ms)
{
    uint64_t l = atomic_load_explicit(&f->leader, memory_order_acquire);
    uint64_t at = atomic_load_explicit(&f->started_ms, memory_order_relaxed);
    if ((l & 0xfffff) == FL_SEQ(w)) {
        pid_t pid = (pid_t)(l >> 32);
        if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
            return 1;
        return now_ms > at + stale_ms;
    }
    return now_ms > at + FLIGHT_NAME_GRACE_MS; /* (started_ms is written before the claim) */
}

enum rp_flight_role rp_flight_join(struct rp_shm_cache *c, uint64_t fhash, pid_t pid,
                                   uint64_t now_ms, uint64_t stale_ms, struct rp_flight_ticket *t)
{
    uint64_t tag = (fhash >> 24) | 1;
    for (int probe = 0; probe < 4; probe++) {
        uint32_t i = (uint32_t)((fhash + (uint64_t)probe * 0x9e3779b1u) % c->nflights);
        struct rp_cache_flight *f = flight_row(c, i);
        for (int again = 0; again < 2; again++) {
            uint64_t w = atomic_load_explicit(&f->word, memory_order_acquire);
            if (FL_STATE(w) == RP_FLIGHT_RUNNING && !flight_stale(f, w, now_ms, stale_ms)) {
                if (FL_TAG(w) != tag)
                    break; /* another call's flight: the next row */
                t->idx = i;
                t->word = w;
                return RP_FLIGHT_FOLLOWER;
            }
            uint64_t seq = (FL_SEQ(w) + 1) & 0xfffff;
            uint64_t nw = tag << 24 | seq << 4 | RP_FLIGHT_RUNNING;
            /* the time first: a claimer killed before it names itself
             * leaves a flight that ages (flight_stale) */
            atomic_store_explicit(&f->started_ms, now_ms, memory_order_relaxed);
            if (atomic_compare_exchange_strong_explicit(&f->word, &w, nw, memory_order_seq_cst,
                                                        memory_order_relaxed)) {
                atomic_store_explicit(&f->started_ms, now_ms, memory_order_relaxed);
                atomic_store_explicit(&f->leader, (uint64_t)(uint32_t)pid << 32 | seq,
                                      memory_order_release);
                t->idx = i;
                t->word = nw;
                return RP_FLIGHT_LEADER;
            }
        }
    }
    return RP_FLIGHT_NONE;
}

int rp_flight_has_waiters(struct rp_shm_cache *c, const struct rp_flight_ticket *t)
{
    struct rp_cache_flight *f = flight_row(c, t->idx);
    return (atomic_load_explicit(&f->waiters[0], memory_order_seq_cst) |
            atomic_load_explicit(&f->waiters[1], memory_order_seq_cst)) != 0;
}

void rp_flight_finish(struct rp_shm_cache *c, const struct rp_flight_ticket *t, uint64_t ref,
                      uint64_t w[2])
{
    struct rp_cache_flight *f = flight_row(c, t->idx);
    uint64_t seq = FL_SEQ(t->word);
    if (ref)
        atomic_store_explicit(&f->result, seq << 44 | ref, memory_order_release);
    uint64_t want = t->word;
    uint64_t end = (t->word & ~(uint64_t)0xf) | (ref ? RP_FLIGHT_DONE : RP_FLIGHT_FAILED);
    atomic_compare_exchange_strong_explicit(&f->word, &want, end, memory_order_seq_cst,
                                            memory_order_relaxed);
    /* seq_cst after the state: a follower registering now either is seen
     * here or sees the state (rp_flight_register) */
    w[0] = atomic_exchange_explicit(&f->waiters[0], 0, memory_order_seq_cst);
    w[1] = atomic_exchange_explicit(&f->waiters[1], 0, memory_order_seq_cst);
}

int rp_flight_register(struct rp_shm_cache *c, const struct rp_flight_ticket *t, unsigned slot)
{
    struct rp_cache_flight *f = flight_row(c, t->idx);
    atomic_fetch_or_explicit(&f->waiters[slot / 64], 1ull << (slot % 64), memory_order_seq_cst);
    return atomic_load_explicit(&f->word, memory_order_seq_cst) != t->word;
}

enum rp_flight_state rp_flight_poll(struct rp_shm_cache *c, const struct rp_flight_ticket *t,
                                    int check_leader, uint64_t now_ms, uint64_t *ref)
{
    struct rp_cache_flight *f = flight_row(c, t->idx);
    uint64_t seq = FL_SEQ(t->word);
    uint64_t w = atomic_load_explicit(&f->word, memory_order_acquire);
    if (w == t->word) {
        if (check_leader && flight_stale(f, w, now_ms, UINT64_MAX / 2))
            return RP_FLIGHT_FAILED;
        return RP_FLIGHT_RUNNING;
    }
    uint64_t r = atomic_load_explicit(&f->result, memory_order_acquire);
    if ((r >> 44) == seq && (r & ((1ull << 44) - 1))) {
        *ref = r & ((1ull << 44) - 1);
        return RP_FLIGHT_DONE;
    }
    return RP_FLIGHT_FAILED;
}
