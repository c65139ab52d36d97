/* cache_hook.c - the response cache and host-wide coalescing, the worker's
 * half (the shared structure is src/shm/cache.c, the pure classification
 * src/proto/cachekey.c; docs/interface.md section 8).
 *
 * At dispatch a single call with an answer is classified and given its
 * canonical key. A cacheable one is looked up: a valid entry answers it at
 * once with the client's own id. Otherwise, with coalescing on, it joins
 * the flight of its key (plus the best head and cache epoch when the
 * answer depends on them): the first call leads and goes upstream, the
 * others follow, woken through their worker's wake socket (and polling
 * their flight every FOLLOW_POLL_MS, so that a dead leader cannot strand
 * them), and get the leader's answer from the slot it wrote, or make their
 * own call when the leader failed, died or took too long.
 *
 * What an entry is worth (rp_cache_abi.h kinds): chain id and net_version
 * always; by block hash always; by number or transaction hash once the
 * block is finality_depth below the best head (until a reorg that deep is
 * seen); everything else that depends on the head only at the best head it
 * was stored at, in the same epoch (a state-changing call through the pool
 * or a different hash seen at a recent number ends an epoch), and for at
 * most HEAD_MAX_AGE_MS, so that a new block or a reorg that the pool has
 * not seen yet shows within that time. While the pushed head is live (the
 * head follower's WebSocket feeds, ws_url: a new block raises the best
 * head within moments) and has been since before the entry was stored, the
 * entry lasts until the best head moves, at most HEAD_FEED_MAX_AGE_MS; a
 * feed that dies (or a follower that does) lapses within 2.5 s and the
 * 100 ms rule is back. Never errors, never null results,
 * never "pending", never no_retry_methods or filters. A batch is answered
 * here only when every call in it is a hit; else it goes upstream whole
 * (never coalesced) and its cacheable answers are kept.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rp_cachekey.h"
#include "rp_log.h"
#include "rp_sub_ring.h"
#include "rp_wake.h"

#define HEAD_MAX_AGE_MS      100     /* a head-dependent entry, at most (no live pushed head) */
#define HEAD_FEED_MAX_AGE_MS 10000   /* ... and with one, as a guard */
#define FOLLOW_POLL_MS       20      /* a follower looks at its flight (and its leader) */
#define KEY_MAX_BYTES        (16384) /* longer calls are neither cached nor coalesced */

static struct {
    struct rp_shm_cache *c;
    struct rp_req *followers; /* waiting on a flight */
    struct rp_buf val;        /* a value read from the cache */
    struct rp_buf out;        /* an answer built for a client */
    char key[KEY_MAX_BYTES];
    pid_t pid;
} ch;

static struct rp_cache_wstats *hook_stats(void)
{
    return rp_cache_wstats(ch.c, rp_w.slot);
}

static void hook_count(_Atomic uint64_t *n)
{
    atomic_fetch_add_explicit(n, 1, memory_order_relaxed);
}

static int hook_cache_on(void)
{
    return ch.c && ch.c->cache_on && rp_w.cfg->cache_max_bytes > 0;
}

static struct rp_conn *hook_owner(struct rp_conn *c)
{
    return c && c->parent ? c->parent : c;
}

void rp_cache_hook_init(void)
{
    ch.c = rp_cache_of(rp_w.shm);
    ch.pid = getpid();
    rp_buf_init(&ch.val);
    rp_buf_init(&ch.out);
}

void rp_cache_hook_cleanup(void)
{
    rp_buf_free(&ch.val);
    rp_buf_free(&ch.out);
}

void rp_cache_note_call(struct rp_req *r, const char *method, size_t mlen)
{
    if (ch.c && rp_cachekey_mutates(method, mlen)) {
        rp_cache_invalidate(ch.c, 0);
        r->ck.mutates = 1; /* and again when it is answered (rp_cache_req_end) */
    }
}

/* Has the pushed head been live continuously from before STORED_MS until
 * NOW_MS? */
static int hook_feed_live_since(uint64_t stored_ms, uint64_t now_ms)
{
    uint64_t since = rp_head_feed_live_since(rp_shm_subs(rp_w.shm), now_ms);
    return since && since < stored_ms;
}

/* Is the entry (meta M) good for R now? */
static int hook_valid(const struct rp_req *r, const struct rp_cache_meta *m, uint64_t best,
                      uint64_t epoch, uint64_t now_ms)
{
    switch (m->kind) {
    case RP_CENT_STATIC:
    case RP_CENT_FINAL_HASH:
        return 1;
    case RP_CENT_FINAL_NUM:
        return m->epoch == atomic_load_explicit(&ch.c->final_epoch, memory_order_relaxed);
    case RP_CENT_HEAD: {
        struct rp_conn *c = hook_owner(r->conn);
        if (m->head != best || m->epoch != epoch || now_ms < m->stored_ms ||
            (c && m->head < c->chain_floor))
            return 0;
        uint64_t age = now_ms - m->stored_ms;
        return age < HEAD_MAX_AGE_MS ||
               (age < HEAD_FEED_MAX_AGE_MS && hook_feed_live_since(m->stored_ms, now_ms));
    }
    default:
        return 0;
    }
}

/* Answer R with the value in ch.val (meta M): its own id put in. */
static void hook_answer(struct rp_req *r, const struct rp_cache_meta *m)
{
    struct rp_conn *c = hook_owner(r->conn);
    if (c && m->shown > c->chain_floor)
        c->chain_floor = m->shown; /* as if the endpoint had shown it */
    size_t off = m->id_off <= ch.val.len ? m->id_off : ch.val.len;
    rp_buf_reset(&ch.out);
    rp_buf_append(&ch.out, ch.val.data, off);
    rp_buf_append(&ch.out, r->id, r->id_len);
    rp_buf_append(&ch.out, ch.val.data + off, ch.val.len - off);
    if (rp_buf_failed(&ch.out)) {
        rp_req_route(r);
        return;
    }
    rp_req_answer_now(r, ch.out.data, ch.out.len);
}

static void hook_follow_unlink(struct rp_req *r)
{
    if (r->ck.fprev)
        r->ck.fprev->ck.fnext = r->ck.fnext;
    else if (ch.followers == r)
        ch.followers = r->ck.fnext;
    if (r->ck.fnext)
        r->ck.fnext->ck.fprev = r->ck.fprev;
    r->ck.fprev = r->ck.fnext = NULL;
}

/* The flight follower R waits on ended (STATE, REF): answer R from the
 * leader's slot, or let R make its own call. */
static void hook_follow_end(struct rp_req *r, enum rp_flight_state state, uint64_t ref)
{
    hook_follow_unlink(r);
    r->queued_ep = RP_REQ_NOT_QUEUED;
    r->ck.role = RP_FLIGHT_NONE;
    rp_timer_cancel(&rp_w.timers, &r->timer);
    struct rp_cache_meta m;
    struct rp_conn *c = hook_owner(r->conn);
    if (state == RP_FLIGHT_DONE &&
        rp_cache_get_ref(ch.c, ref, r->ck.key, r->ck.key_len, r->ck.ticket.word, &ch.val, &m) &&
        !(c && r->chain.need == RP_CHAIN_HEAD && m.shown && m.shown < c->chain_floor)) {
        hook_count(&hook_stats()->coalesced);
        hook_answer(r, &m);
        return;
    }
    rp_req_route(r); /* the leader failed, died, or its answer is gone: ask ourselves */
}

void rp_cache_wait_fired(struct rp_req *r)
{
    uint64_t ref = 0;
    enum rp_flight_state st = rp_flight_poll(ch.c, &r->ck.ticket, 1, rp_shm_now_ms(rp_w.shm), &ref);
    uint64_t now = rp_worker_now_ms();
    if (st == RP_FLIGHT_RUNNING && now < r->ck.wait_until_ms) {
        uint64_t when = now + FOLLOW_POLL_MS;
        rp_timer_arm(&rp_w.timers, &r->timer,
                     when < r->ck.wait_until_ms ? when : r->ck.wait_until_ms);
        return;
    }
    hook_follow_end(r, st, ref);
}

/* A wake-up (the worker's wake socket, drained): some flight this worker
 * follows may have ended. */
void rp_cache_hook_woken(void)
{
    struct rp_req *r = ch.followers;
    while (r) {
        struct rp_req *next = r->ck.fnext;
        uint64_t ref = 0;
        enum rp_flight_state st = rp_flight_poll(ch.c, &r->ck.ticket, 0, 0, &ref);
        if (st != RP_FLIGHT_RUNNING)
            hook_follow_end(r, st, ref);
        r = next;
    }
}

/* Keep a copy of the key in R (for the store, and a follower's check). */
static int hook_keep_key(struct rp_req *r, size_t klen)
{
    r->ck.key = malloc(klen);
    if (!r->ck.key)
        return -1;
    memcpy(r->ck.key, ch.key, klen);
    r->ck.key_len = klen;
    return 0;
}

int rp_cache_dispatch(struct rp_req *r)
{
    if (!ch.c || r->is_batch)
        return RP_CACHE_GO;
    size_t mlen = strlen(r->method);
    rp_cache_note_call(r, r->method, mlen);
    if (r->ck.mutates || !r->answer || !r->send || !r->id)
        return RP_CACHE_GO;
    int cache_on = hook_cache_on(), coal = rp_w.cfg->coalesce != 0;
    if (r->no_retry || r->chain.kind == RP_CHAIN_FILTER_NEW ||
        r->chain.kind == RP_CHAIN_FILTER_USE || r->chain.kind == RP_CHAIN_TX_FLOW ||
        (!cache_on && !coal))
        return RP_CACHE_GO;
    struct rp_ck ck;
    size_t klen =
        rp_cachekey_classify(r->send, r->send_len, r->method, mlen, &ck, ch.key, sizeof ch.key);
    if (!klen)
        return RP_CACHE_GO;
    uint64_t khash = rp_cachekey_hash(ch.key, klen, 0);
    uint64_t best = atomic_load_explicit(&rp_w.shm->best_head_block, memory_order_relaxed);
    uint64_t epoch = atomic_load_explicit(&ch.c->epoch, memory_order_relaxed);
    uint64_t now_ms = rp_shm_now_ms(rp_w.shm);
    r->ck.cls = ck.cls;
    r->ck.shows = ck.shows;
    r->ck.block = ck.block;
    r->ck.khash = khash;
    r->ck.head = best;
    r->ck.epoch = epoch;
    if (cache_on && ck.cls != RP_CK_PENDING) {
        struct rp_cache_meta m;
        if (rp_cache_get(ch.c, ch.key, klen, khash, &ch.val, &m) &&
            hook_valid(r, &m, best, epoch, now_ms)) {
            hook_count(&hook_stats()->hits);
            hook_answer(r, &m);
            return RP_CACHE_ANSWERED;
        }
        hook_count(&hook_stats()->misses);
    }
    if (hook_keep_key(r, klen) != 0)
        return RP_CACHE_GO;
    if (!coal)
        return RP_CACHE_GO;
    /* what the answer depends on is part of the flight's name */
    uint64_t fhash = khash;
    if (ck.cls != RP_CK_STATIC && ck.cls != RP_CK_HASH)
        fhash = rp_cachekey_hash(&(uint64_t[2]){best, epoch}, 16, khash);
    uint64_t stale_ms = (uint64_t)rp_w.cfg->request_timeout_ms + 1000;
    r->ck.role = (int)rp_flight_join(ch.c, fhash, ch.pid, now_ms, stale_ms, &r->ck.ticket);
    if (r->ck.role != RP_FLIGHT_FOLLOWER)
        return RP_CACHE_GO;
    /* follow: wait for the leader's answer, at most one attempt's time */
    uint64_t now = rp_worker_now_ms();
    uint64_t until = now + (uint64_t)rp_w.cfg->attempt_timeout_ms;
    r->ck.wait_until_ms = until < r->deadline_ms ? until : r->deadline_ms;
    r->queued_ep = RP_REQ_WAIT_FLIGHT;
    r->ck.fprev = NULL;
    r->ck.fnext = ch.followers;
    if (ch.followers)
        ch.followers->ck.fprev = r;
    ch.followers = r;
    if (rp_w.wake_ev.fd < 0 || rp_flight_register(ch.c, &r->ck.ticket, rp_w.slot)) {
        /* ended already (or no wake socket): look now, through the timer */
        rp_timer_arm(&rp_w.timers, &r->timer, now);
        return RP_CACHE_WAITING;
    }
    uint64_t when = now + FOLLOW_POLL_MS;
    rp_timer_arm(&rp_w.timers, &r->timer, when < r->ck.wait_until_ms ? when : r->ck.wait_until_ms);
    return RP_CACHE_WAITING;
}

/* Wake the worker slots in W[2]. */
static void hook_wake(const uint64_t w[2])
{
    for (unsigned i = 0; i < 2; i++)
        for (uint64_t b = w[i]; b; b &= b - 1)
            rp_wake_post(rp_w.cfg->shm_name, i * 64 + (unsigned)__builtin_ctzll(b));
}

/* The body with the id [ID_START, ID_END) cut out and its line breaks
 * removed, into ch.out; *ID_OFF: where an id goes back. */
static int hook_value(const char *body, size_t len, long id_start, long id_end, uint32_t *id_off)
{
    rp_buf_reset(&ch.out);
    rp_buf_append(&ch.out, body, (size_t)id_start);
    size_t pre = rp_json_strip_newlines(ch.out.data ? ch.out.data : (char *)"", ch.out.len);
    ch.out.len = pre;
    rp_buf_append(&ch.out, body + id_end, len - (size_t)id_end);
    if (rp_buf_failed(&ch.out))
        return -1;
    size_t post = rp_json_strip_newlines(ch.out.data + pre, ch.out.len - pre);
    ch.out.len = pre + post;
    *id_off = (uint32_t)pre;
    return 0;
}

/* An answer showed block NUMBER with hash FP: another hash there than
 * recorded is a reorg, and the entries it may concern die. */
static void hook_note_block(const struct rp_ck_answer *a, uint64_t best)
{
    uint64_t depth = (uint64_t)rp_w.cfg->cache_finality_depth;
    if (a->ok && a->number && a->hash_fp && rp_cache_note_block(ch.c, a->number, a->hash_fp)) {
        int deep = a->number + depth <= best;
        rp_cache_invalidate(ch.c, deep);
        rp_warn("cache: another block hash seen at a number: reorg, entries dropped",
                "block=%llu final=%d", (unsigned long long)a->number, deep);
    }
}

/* What answer A (to a call classified CLS/SHOWS/BLOCK, dispatched at best
 * head HEAD in EPOCH, answered by EP) is worth: 1 with M's kind, head,
 * epoch and shown set when it may be kept, else 0. */
static int hook_kind(int cls, int shows, uint64_t block, uint64_t head, uint64_t epoch, int ep,
                     const struct rp_ck_answer *a, uint64_t best, struct rp_cache_meta *m)
{
    uint64_t depth = (uint64_t)rp_w.cfg->cache_finality_depth;
    int keep = 0;
    if (!a->ok || a->null)
        return 0;
    switch (cls) {
    case RP_CK_STATIC:
        m->kind = RP_CENT_STATIC, keep = 1;
        break;
    case RP_CK_HASH:
        m->kind = RP_CENT_FINAL_HASH, keep = 1;
        m->shown = shows == RP_CK_SHOWS_BLOCK ? a->number : 0;
        break;
    case RP_CK_NUMBER:
    case RP_CK_TX: {
        uint64_t n = cls == RP_CK_NUMBER ? block : a->number;
        if (cls == RP_CK_TX && !a->number)
            break; /* a pending transaction */
        if (n + depth <= best) {
            m->kind = RP_CENT_FINAL_NUM, keep = 1;
            m->epoch = atomic_load_explicit(&ch.c->final_epoch, memory_order_relaxed);
        } else if (n <= best && best == head) {
            m->kind = RP_CENT_HEAD, keep = 1;
        }
        /* what the answer would have shown the connection (consistency.c) */
        m->shown = cls == RP_CK_NUMBER ? n : 0;
        break;
    }
    case RP_CK_HEAD: {
        uint64_t eph = atomic_load_explicit(&rp_w.eps[ep].shm->head_block, memory_order_relaxed);
        if (a->number ? a->number == best : (best == head && eph >= best))
            m->kind = RP_CENT_HEAD, keep = 1;
        m->shown = a->number;
        break;
    }
    default:
        break;
    }
    if (keep && m->kind == RP_CENT_HEAD) {
        m->head = best;
        m->epoch = epoch;
    }
    return keep;
}

static void hook_answered_batch(struct rp_req *r, int ep);

void rp_cache_answered(struct rp_req *r, int ep)
{
    if (r->ck.batch && ch.c) {
        hook_answered_batch(r, ep);
        return;
    }
    if (!r->ck.key || !ch.c)
        return;
    struct rp_buf *b = &r->at.body;
    struct rp_ck_answer a;
    if (rp_cachekey_answer(b->data ? b->data : "", b->len, (enum rp_ck_shows)r->ck.shows, &a) != 0)
        return; /* not ours to judge: the leader ends without sharing (req_end) */
    uint64_t best = atomic_load_explicit(&rp_w.shm->best_head_block, memory_order_relaxed);
    hook_note_block(&a, best);
    if (!a.ok || a.id_start < 0 || a.id_end < a.id_start)
        return;
    struct rp_cache_meta m = {0};
    /* keep: an indexed entry of kind m.kind; else for this flight's followers only */
    int keep =
        hook_kind(r->ck.cls, r->ck.shows, r->ck.block, r->ck.head, r->ck.epoch, ep, &a, best, &m) &&
        hook_cache_on();
    int leader = r->ck.role == RP_FLIGHT_LEADER;
    uint64_t ref = 0;
    if (keep || (leader && rp_flight_has_waiters(ch.c, &r->ck.ticket))) {
        m.origin = leader ? r->ck.ticket.word : 0;
        if (hook_value(b->data, b->len, a.id_start, a.id_end, &m.id_off) == 0) {
            ref = rp_cache_put(ch.c, r->ck.key, r->ck.key_len, r->ck.khash, ch.out.data, ch.out.len,
                               &m, keep, ch.pid, rp_shm_now_ms(rp_w.shm));
            if (ref && keep)
                hook_count(&hook_stats()->stores);
        }
    }
    if (leader) {
        uint64_t w[2];
        rp_flight_finish(ch.c, &r->ck.ticket, ref, w);
        r->ck.role = RP_FLIGHT_NONE;
        hook_wake(w);
    }
}

/* ---- batches: answered from the cache when every call is a hit; else
 * sent as they came, and their answers kept call by call ---- */

/* A cacheable call of a batch, kept until the batch's answer. */
struct hook_bcall {
    char up_id[24];
    size_t up_id_len;
    char *key;
    size_t key_len;
    uint64_t khash;
    int cls, shows;
    uint64_t block;
};

static void hook_batch_free(struct rp_req *r)
{
    struct hook_bcall *bc = r->ck.batch;
    for (int i = 0; bc && i < r->ck.nbatch; i++)
        free(bc[i].key);
    free(bc);
    r->ck.batch = NULL;
    r->ck.nbatch = 0;
}

int rp_cache_dispatch_batch(struct rp_req *r, const char *buf, const struct rp_jmsg *msg)
{
    if (!ch.c || !hook_cache_on() || !r->answer || msg->count <= 0)
        return RP_CACHE_GO;
    struct hook_bcall *bc = calloc((size_t)msg->count, sizeof *bc);
    if (!bc)
        return RP_CACHE_GO;
    uint64_t best = atomic_load_explicit(&rp_w.shm->best_head_block, memory_order_relaxed);
    uint64_t epoch = atomic_load_explicit(&ch.c->epoch, memory_order_relaxed);
    uint64_t now_ms = rp_shm_now_ms(rp_w.shm);
    int all = 1, hits = 0, nb = 0;
    struct rp_buf out = RP_BUF_INIT;
    const char *up = r->up_ids.data, *up_end = up ? up + r->up_ids.len : NULL;
    rp_buf_append(&out, "[", 1);
    for (int i = 0; i < msg->count; i++) {
        const struct rp_jcall *call = &msg->calls[i];
        if (call->code)
            continue; /* its error object is in r->extra */
        if (rp_jcall_is_notification(call)) {
            all = 0; /* it must reach an endpoint */
            continue;
        }
        /* the id this call went upstream with: the next line of up_ids */
        const char *nl = up ? memchr(up, '\n', (size_t)(up_end - up)) : NULL;
        size_t ul = nl ? (size_t)(nl - up) : 0;
        const char *uid = up;
        up = nl ? nl + 1 : up_end;
        const char *m = buf + call->method_start;
        struct rp_ck ck;
        size_t klen = 0;
        if (!memchr(m, '\\', call->method_len) &&
            !rp_config_is_no_retry(rp_w.cfg, m, call->method_len) &&
            !rp_cachekey_mutates(m, call->method_len))
            klen = rp_cachekey_classify(buf + call->start, call->len, m, call->method_len, &ck,
                                        ch.key, sizeof ch.key);
        if (!klen || ck.cls == RP_CK_PENDING || ul == 0 || ul >= sizeof bc[nb].up_id) {
            all = 0;
            continue;
        }
        uint64_t khash = rp_cachekey_hash(ch.key, klen, 0);
        struct rp_cache_meta meta;
        if (all && rp_cache_get(ch.c, ch.key, klen, khash, &ch.val, &meta) &&
            hook_valid(r, &meta, best, epoch, now_ms)) {
            size_t off = meta.id_off <= ch.val.len ? meta.id_off : ch.val.len;
            if (hits)
                rp_buf_append(&out, ",", 1);
            rp_buf_append(&out, ch.val.data, off);
            rp_buf_append(&out, buf + call->id_start, call->id_len);
            rp_buf_append(&out, ch.val.data + off, ch.val.len - off);
            hits++;
            continue;
        }
        all = 0;
        struct hook_bcall *b = &bc[nb];
        b->key = malloc(klen);
        if (!b->key)
            continue;
        memcpy(b->key, ch.key, klen);
        memcpy(b->up_id, uid, ul);
        b->up_id_len = ul;
        b->key_len = klen;
        b->khash = khash;
        b->cls = ck.cls;
        b->shows = ck.shows;
        b->block = ck.block;
        nb++;
    }
    if (all && hits > 0) {
        if (r->extra.len) {
            rp_buf_append(&out, ",", 1);
            rp_buf_append(&out, r->extra.data, r->extra.len);
        }
        rp_buf_append(&out, "]", 1);
        free(bc);
        if (!rp_buf_failed(&out)) {
            for (int i = 0; i < hits; i++)
                hook_count(&hook_stats()->hits);
            rp_req_answer_now(r, out.data, out.len);
            rp_buf_free(&out);
            return RP_CACHE_ANSWERED;
        }
        rp_buf_free(&out);
        return RP_CACHE_GO;
    }
    rp_buf_free(&out);
    for (int i = 0; i < nb; i++)
        hook_count(&hook_stats()->misses);
    if (nb == 0) {
        free(bc);
        return RP_CACHE_GO;
    }
    r->ck.batch = bc;
    r->ck.nbatch = nb;
    r->ck.head = best;
    r->ck.epoch = epoch;
    return RP_CACHE_GO;
}

/* Keep the elements of batch R's answer (from EP) whose calls are
 * cacheable, matched by the ids they went upstream with. */
static void hook_answered_batch(struct rp_req *r, int ep)
{
    struct rp_buf *b = &r->at.body;
    struct hook_bcall *bc = r->ck.batch;
    enum { MAX_ELEMS = 1024 };
    struct rp_ck_elem *el = malloc(MAX_ELEMS * sizeof *el);
    int n = el && b->len ? rp_cachekey_batch_elems(b->data, b->len, el, MAX_ELEMS) : -1;
    uint64_t best = atomic_load_explicit(&rp_w.shm->best_head_block, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        if (el[i].id_start < 0)
            continue;
        const char *id = b->data + el[i].id_start;
        struct hook_bcall *c = NULL;
        for (int k = 0; k < r->ck.nbatch && !c; k++)
            if (bc[k].up_id_len == el[i].id_len && memcmp(bc[k].up_id, id, el[i].id_len) == 0)
                c = &bc[k];
        if (!c)
            continue;
        const char *e = b->data + el[i].start;
        struct rp_ck_answer a;
        if (rp_cachekey_answer(e, el[i].len, (enum rp_ck_shows)c->shows, &a) != 0)
            continue;
        hook_note_block(&a, best);
        struct rp_cache_meta m = {0};
        if (!a.ok || a.id_start < 0 ||
            !hook_kind(c->cls, c->shows, c->block, r->ck.head, r->ck.epoch, ep, &a, best, &m))
            continue;
        if (hook_value(e, el[i].len, a.id_start, a.id_end, &m.id_off) != 0)
            continue;
        if (rp_cache_put(ch.c, c->key, c->key_len, c->khash, ch.out.data, ch.out.len, &m, 1, ch.pid,
                         rp_shm_now_ms(rp_w.shm)))
            hook_count(&hook_stats()->stores);
    }
    free(el);
}

void rp_cache_req_end(struct rp_req *r)
{
    /* a state change is done: what was read while it ran is dead too */
    if (r->ck.mutates && ch.c)
        rp_cache_invalidate(ch.c, 0);
    r->ck.mutates = 0;
    if (r->ck.role == RP_FLIGHT_LEADER && ch.c) {
        uint64_t w[2];
        rp_flight_finish(ch.c, &r->ck.ticket, 0, w); /* nothing to share: they ask themselves */
        hook_wake(w);
    } else if (r->ck.role == RP_FLIGHT_FOLLOWER) {
        hook_follow_unlink(r);
    }
    r->ck.role = RP_FLIGHT_NONE;
    free(r->ck.key);
    r->ck.key = NULL;
    hook_batch_free(r);
}
