/* consistency.c - chain-consistent answers, the worker's half (the pure half
 * is src/proto/chain.c; the contract is docs/interface.md section 8).
 *
 * Per client connection the worker keeps a floor, the highest block the
 * client has been shown, and a transaction-flow affinity. At dispatch a
 * single call is classified: a call that depends on the head is routed only
 * to endpoints known at the floor or above (request.c waits up to
 * consistency_wait_ms for one, then takes the best head); a call for block N
 * only to endpoints at N or above; a filter call only to the endpoint whose
 * tag its id carries; a nonce read, gas estimate or send first to the
 * connection's affinity endpoint. On an answer, every block number it shows
 * raises the endpoint's head in shm (and the host's best head) at once, and
 * the connection's floor; a filter id made gets its endpoint's tag; a null
 * lookup from an endpoint below the best head is asked again there.
 */
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#include "rp_chain.h"
#include "rp_hold.h"
#include "rp_shm.h"
#include "subs.h"

/* The client's own connection of C (an HTTP request's stand-in answers to
 * its parent), or NULL. */
static struct rp_conn *consist_owner(struct rp_conn *c)
{
    return c && c->parent ? c->parent : c;
}

/* The tag a filter id made on endpoint EP carries: the low bits of its row's
 * key (a keyed hash of its URL: the same in every worker, across reloads). */
static uint32_t consist_tag(int ep)
{
    return (uint32_t)rp_w.eps[ep].shm->url_key;
}

/* The endpoint a filter tag names, if it is still configured: a worker of
 * an older generation still knows an endpoint a reload removed, but its row
 * is tombstoned then, and the filter is gone with it. */
static int consist_ep_of_tag(uint32_t tag)
{
    for (int i = 0; i < rp_w.nep; i++)
        if (rp_w.eps[i].in_use && consist_tag(i) == tag &&
            atomic_load_explicit(&rp_w.eps[i].shm->in_use, memory_order_acquire))
            return i;
    return -1;
}

static void consist_count(_Atomic uint64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

int rp_consist_prepare(struct rp_req *r)
{
    if (r->is_batch || !r->answer || !r->send)
        return RP_CONSIST_OK;
    rp_chain_classify(r->send, r->send_len, r->method, strlen(r->method), &r->chain);
    struct rp_conn *c = consist_owner(r->conn);
    if (r->chain.need == RP_CHAIN_HEAD && c)
        r->min_head = c->chain_floor;
    else if (r->chain.need == RP_CHAIN_BLOCK)
        r->min_head = r->chain.block;
    if (r->chain.kind == RP_CHAIN_FILTER_USE) {
        uint32_t tag = 0;
        size_t n = 0;
        char *own = rp_chain_filter_unwrap_call(r->send, r->send_len, &r->chain, &tag, &n);
        int ep = own ? consist_ep_of_tag(tag) : -1;
        if (ep < 0) {
            free(own);
            return RP_CONSIST_FILTER_UNKNOWN;
        }
        free(r->send);
        r->send = own;
        r->send_len = n;
        r->only_mask = 1ull << ep;
    }
    if (r->chain.kind == RP_CHAIN_TX_FLOW && c && c->aff_until_ms > rp_worker_now_ms())
        r->prefer_mask = 1ull << c->aff_ep;
    return RP_CONSIST_OK;
}

void rp_consist_waited(void)
{
    consist_count(&rp_shm_worker(rp_w.shm, rp_w.slot)->consistency_waits);
}

int rp_consist_answer(struct rp_req *r, int ep)
{
    if (r->is_batch || !r->answer)
        return RP_CONSIST_DELIVER;
    struct rp_buf *b = &r->at.body;
    struct rp_shm_endpoint *e = rp_w.eps[ep].shm;
    struct rp_conn *c = consist_owner(r->conn);
    size_t mlen = strlen(r->method);

    /* heads learned from traffic: the endpoint is at least there now */
    uint64_t shown = rp_chain_answer_block(r->method, mlen, b->data, b->len);
    if (shown) {
        rp_hold_raise(&e->head_block, shown);
        rp_hold_raise(&rp_w.shm->best_head_block, shown);
        rp_subw_head_hint(shown); /* the follower may not know it yet */
    }
    if (r->chain.need == RP_CHAIN_BLOCK && r->chain.block > shown)
        shown = r->chain.block; /* the block it asked for counts as shown */
    if (c && shown > c->chain_floor)
        c->chain_floor = shown;
    if (c && r->floor_until_ms && rp_worker_now_ms() >= r->floor_until_ms) {
        /* nobody reached the floor in consistency_wait_ms: the client was
         * answered at the best head there is, and that is its floor now (so
         * that, with the leader gone, not every call waits again) */
        uint64_t head = atomic_load_explicit(&e->head_block, memory_order_relaxed);
        c->chain_floor = shown > head ? shown : head;
    }

    if (r->chain.kind == RP_CHAIN_TX_FLOW && c && rp_w.cfg->affinity_ms > 0) {
        if (r->prefer_mask == (1ull << ep))
            consist_count(&rp_shm_worker(rp_w.shm, rp_w.slot)->affinity_hits);
        c->aff_ep = ep;
        c->aff_until_ms = rp_worker_now_ms() + (uint64_t)rp_w.cfg->affinity_ms;
    }

    if (r->chain.kind == RP_CHAIN_FILTER_NEW) {
        size_t n = 0;
        char *wrapped = rp_chain_filter_wrap_answer(b->data, b->len, consist_tag(ep), &n);
        if (wrapped) {
            rp_buf_reset(b);
            rp_buf_append(b, wrapped, n);
            free(wrapped);
            /* the id restore reads where the check found the id: check again */
            rp_jsonrpc_check_response(&rp_w.parser, b->data, b->len, 0, r->up_id, r->up_id_len);
        }
    }

    /* a null lookup from an endpoint below the best head: not seen there
     * yet, perhaps; asked once more at the best head */
    if (r->chain.kind == RP_CHAIN_LOOKUP && !r->lookup_null &&
        rp_chain_answer_is_null(b->data, b->len)) {
        uint64_t head = atomic_load_explicit(&e->head_block, memory_order_relaxed);
        uint64_t best = atomic_load_explicit(&rp_w.shm->best_head_block, memory_order_relaxed);
        if (head < best) {
            r->lookup_null = malloc(b->len ? b->len : 1);
            if (r->lookup_null) {
                memcpy(r->lookup_null, b->data, b->len);
                r->lookup_null_len = b->len;
                r->min_head = best;
                consist_count(&rp_shm_worker(rp_w.shm, rp_w.slot)->lookup_retries);
                return RP_CONSIST_ASK_AGAIN;
            }
        }
    }
    return RP_CONSIST_DELIVER;
}
