/* request.c - a client request from validation to its one answer.
 *
 * A request (one call or one batch) is routed to an endpoint: candidates
 * are filtered (drained, not up, held back by a 429, breaker denying,
 * already tried), the balancer picks one, its breaker grants a slot and its
 * host-wide GCRA gives the tokens (a batch of N calls takes N). When every
 * usable endpoint is out of tokens the request waits on a timer up to
 * queue_timeout_ms, then gets -32005. A failed attempt is retried on another
 * endpoint within request_timeout_ms and `retries` (state-changing methods
 * only when nothing reached the endpoint); when that is spent the client
 * gets -32603 with the attempts listed in `data`.
 */
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rp_clock.h"
#include "rp_fleet.h"
#include "rp_hedge.h"
#include "rp_hold.h"
#include "rp_log.h"
#include "rp_route.h"
#include "subs.h"

static_assert(RP_REQ_NO_PIN == RP_ROUTE_NONE, "a request pinned nowhere routes anywhere");

static void req_route(struct rp_req *r);
static uint64_t up_seq; /* the last upstream id given out by this worker */
static void req_wait_fired(struct rp_timer *t, void *arg);
static void hedge_fired(struct rp_timer *t, void *arg);
static void hedge_arm(struct rp_req *r, int ep);
static void hedge_release(struct rp_req *r);
static void hedge_won(struct rp_req *t, int ep);
static void hedge_gone(struct rp_req *t, int ep, const char *why, int final);

/* ---------------------------------------------------------------------
 * lifecycle
 * ------------------------------------------------------------------- */

static struct rp_req *req_new(struct rp_conn *c)
{
    struct rp_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    if (c) {
        c->refs++;
        c->pending++;
    }
    r->queued_ep = RP_REQ_NOT_QUEUED;
    r->pin_ep = RP_REQ_NO_PIN;
    r->at.ep = -1;
    r->start_ns = rp_clock_mono_ns();
    r->deadline_ms = r->start_ns / 1000000ull + (uint64_t)rp_w.cfg->request_timeout_ms;
    rp_timer_init(&r->timer, req_wait_fired, r);
    rp_timer_init(&r->hedge_timer, hedge_fired, r);
    r->hedge_ep = -1;
    rp_buf_init(&r->extra);
    rp_buf_init(&r->ids);
    rp_buf_init(&r->up_ids);
    rp_buf_init(&r->trail);
    rp_buf_init(&r->at.body);
    rp_w.nreqs++;
    return r;
}

/* R's attempt body is no longer held for its client (the answer was
 * queued, or a new attempt starts afresh). */
static void req_body_release(struct rp_req *r)
{
    if (r->at.held_bytes) {
        rp_conn_hold(r->conn, -(long long)r->at.held_bytes);
        r->at.held_bytes = 0;
    }
}

int rp_req_body_account(struct rp_req *r)
{
    long long delta = (long long)r->at.body.len - (long long)r->at.held_bytes;
    if (delta == 0)
        return 0;
    r->at.held_bytes = r->at.body.len;
    if (rp_conn_hold(r->conn, delta) != 0) {
        r->at.over_budget = 1;
        return -1;
    }
    return 0;
}

/* Deliver ANSWER (may be NULL: nothing to write) and free the request. */
static void req_finish(struct rp_req *r, const char *answer, size_t len, int ok)
{
    rp_cache_req_end(r);
    rp_timer_cancel(&rp_w.timers, &r->timer);
    rp_timer_cancel(&rp_w.timers, &r->hedge_timer);
    if (r->hedge)
        hedge_release(r); /* the race is over: its hedge lost */
    struct rp_conn *c = r->conn;
    if (answer && r->answer) {
        rp_worker_count_answer(ok);
        if (c)
            rp_conn_write_answer(c, answer, len);
    }
    req_body_release(r);
    if (c) {
        rp_conn_request_done(c);
        rp_conn_unref(c);
    }
    if (r->pin_ep != RP_REQ_NO_PIN)
        rp_w.eps[r->pin_ep].warming--;
    free(r->send);
    free(r->id);
    free(r->lookup_null);
    rp_buf_free(&r->extra);
    rp_buf_free(&r->ids);
    rp_buf_free(&r->up_ids);
    rp_buf_free(&r->trail);
    rp_buf_free(&r->at.body);
    free(r);
    rp_w.nreqs--;
}

/* Answer the request with an error of rpcpool's own: one error object for a
 * call, an array of them (one per id) for a batch, plus the batch's invalid
 * calls. */
static void req_answer_success(struct rp_req *r, int ep);

static void req_fail(struct rp_req *r, int code, const char *msg, const char *data)
{
    if (r->is_hedge) { /* a hedge answers nobody: its primary goes on */
        hedge_gone(r, -1, msg, 0);
        return;
    }
    if (r->lookup_null) {
        /* asking again at the best head came to nothing: the null it had
         * is the answer (its id put back as for any answer) */
        rp_buf_reset(&r->at.body);
        rp_buf_append(&r->at.body, r->lookup_null, r->lookup_null_len);
        rp_jsonrpc_check_response(&rp_w.parser, r->at.body.data, r->at.body.len, 0, r->up_id,
                                  r->up_id_len);
        free(r->lookup_null);
        r->lookup_null = NULL;
        req_answer_success(r, 0);
        return;
    }
    struct rp_buf out = RP_BUF_INIT;
    char one[1024];
    if (!r->is_batch) {
        size_t n = rp_jsonrpc_error(one, sizeof one, r->id, r->id_len, code, msg, data);
        if (n < sizeof one) {
            rp_buf_append(&out, one, n);
        } else {
            char *big = malloc(n + 1);
            if (big) {
                rp_jsonrpc_error(big, n + 1, r->id, r->id_len, code, msg, data);
                rp_buf_append(&out, big, n);
                free(big);
            }
        }
    } else {
        rp_buf_append(&out, "[", 1);
        const char *p = r->ids.data;
        const char *end = p ? p + r->ids.len : NULL;
        int first = 1;
        while (p && p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t idlen = nl ? (size_t)(nl - p) : (size_t)(end - p);
            size_t n = rp_jsonrpc_error(NULL, 0, p, idlen, code, msg, data);
            char *obj = malloc(n + 1);
            if (obj) {
                rp_jsonrpc_error(obj, n + 1, p, idlen, code, msg, data);
                if (!first)
                    rp_buf_append(&out, ",", 1);
                rp_buf_append(&out, obj, n);
                free(obj);
                first = 0;
            }
            p = nl ? nl + 1 : end;
        }
        if (r->extra.len) {
            if (!first)
                rp_buf_append(&out, ",", 1);
            rp_buf_append(&out, r->extra.data, r->extra.len);
            first = 0;
        }
        rp_buf_append(&out, "]", 1);
        if (first) { /* only notifications: nothing to answer */
            rp_buf_free(&out);
            req_finish(r, NULL, 0, 0);
            return;
        }
    }
    if (rp_buf_failed(&out)) {
        /* sized by the compiler, so it cannot drift from its text */
        static const char oom[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
                                  "\"message\":\"Upstream error: out of memory\"}}";
        rp_buf_free(&out);
        req_finish(r, oom, sizeof oom - 1, 0);
        return;
    }
    req_finish(r, out.data, out.len, 0);
    rp_buf_free(&out);
}

/* Record what an attempt met, for the -32603 data field. */
static void req_trail(struct rp_req *r, int ep, const char *what)
{
    rp_buf_append(&r->trail, r->trail.len ? "," : "[", 1);
    rp_buf_puts(&r->trail, "{\"endpoint\":");
    rp_buf_append_json_str(&r->trail, ep >= 0 ? rp_w.eps[ep].cfg->name : "");
    rp_buf_puts(&r->trail, ",\"error\":");
    rp_buf_append_json_str(&r->trail, what);
    rp_buf_puts(&r->trail, "}");
}

static void req_fail_upstream(struct rp_req *r, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof msg, "Upstream error: %s", why);
    rp_buf_append(&r->trail, r->trail.len ? "]" : "[]", r->trail.len ? 1 : 2);
    req_fail(r, RP_JSONRPC_INTERNAL_ERROR, msg, rp_buf_failed(&r->trail) ? NULL : r->trail.data);
}

/* ---------------------------------------------------------------------
 * dispatch: one framed value from a client
 * ------------------------------------------------------------------- */

/* Answer an invalid message at once (connection stays open). */
static void dispatch_invalid(struct rp_conn *c, const char *id, size_t id_len, const char *reason)
{
    char buf[512];
    size_t n = rp_jsonrpc_error(buf, sizeof buf, id, id_len, RP_JSONRPC_INVALID_REQUEST,
                                reason ? reason : "Invalid Request", NULL);
    if (n >= sizeof buf)
        n = rp_jsonrpc_error(buf, sizeof buf, NULL, 0, RP_JSONRPC_INVALID_REQUEST,
                             "Invalid Request", NULL);
    rp_worker_count_answer(0);
    rp_conn_write_answer(c, buf, n);
}

/* Is the call state-changing? A method name written with escapes cannot be
 * compared reliably, so it is treated as state-changing too. */
static int call_no_retry(const char *buf, const struct rp_jcall *call)
{
    const char *m = buf + call->method_start;
    return memchr(m, '\\', call->method_len) != NULL ||
           rp_config_is_no_retry(rp_w.cfg, m, call->method_len);
}

static void copy_method(struct rp_req *r, const char *buf, const struct rp_jcall *call)
{
    size_t n = call->method_len < sizeof r->method - 1 ? call->method_len : sizeof r->method - 1;
    memcpy(r->method, buf + call->method_start, n);
    r->method[n] = '\0';
    if (call_no_retry(buf, call))
        r->no_retry = 1;
}

/* A fresh upstream id into ID (24 bytes): a number unique in this worker
 * (and across workers: the slot is in its high bits). Returns its length. */
static size_t up_id_next(char *id)
{
    if (up_seq == 0)
        up_seq = (uint64_t)(rp_w.slot + 1) << 32;
    return (size_t)snprintf(id, 24, "%llu", (unsigned long long)++up_seq);
}

/* Append call BUF[S, E) to B with its id BUF[IS, IE) replaced by ID. */
static void append_with_id(struct rp_buf *b, const char *buf, size_t s, size_t e, size_t is,
                           size_t ie, const char *id, size_t id_len)
{
    rp_buf_append(b, buf + s, is - s);
    rp_buf_append(b, id, id_len);
    rp_buf_append(b, buf + ie, e - ie);
}

/* Build a request from one framed value and route it, or answer it at once
 * when it is not a valid request. */
void rp_req_dispatch(struct rp_conn *c, const char *buf, size_t len)
{
    struct rp_jmsg m;
    if (rp_jsonrpc_parse(&rp_w.parser, buf, len, rp_w.cfg->max_batch, &m) != 0) {
        dispatch_invalid(c, NULL, 0, "Invalid Request: out of memory");
        return;
    }
    if (m.code) {
        dispatch_invalid(c, NULL, 0, m.reason);
        return;
    }
    if (!m.is_batch) {
        struct rp_jcall *call = &m.calls[0];
        if (call->code) {
            dispatch_invalid(c, call->id_start >= 0 ? buf + call->id_start : NULL, call->id_len,
                             call->reason);
            return;
        }
        if (rp_subw_dispatch(c, buf, len, call)) /* eth_subscribe, eth_unsubscribe */
            return;
        struct rp_req *r = req_new(c);
        if (!r) {
            dispatch_invalid(c, NULL, 0, "Invalid Request: out of memory");
            return;
        }
        r->answer = !rp_jcall_is_notification(call);
        r->ncalls = 1;
        copy_method(r, buf, call);
        if (call->id_start >= 0) {
            r->id = malloc(call->id_len);
            if (r->id) {
                memcpy(r->id, buf + call->id_start, call->id_len);
                r->id_len = call->id_len;
            }
        }
        if (call->id_start < 0) {
            r->send = malloc(len);
            if (r->send)
                memcpy(r->send, buf, len);
            r->send_len = len;
        } else {
            struct rp_buf sb = RP_BUF_INIT;
            size_t is = (size_t)call->id_start, ie = is + call->id_len;
            r->up_id_len = up_id_next(r->up_id);
            append_with_id(&sb, buf, 0, len, is, ie, r->up_id, r->up_id_len);
            r->send = rp_buf_failed(&sb) ? NULL : rp_buf_detach(&sb, &r->send_len);
            rp_buf_free(&sb);
        }
        if (!r->send || (call->id_start >= 0 && !r->id)) {
            req_fail(r, RP_JSONRPC_INTERNAL_ERROR, "Upstream error: out of memory", NULL);
            return;
        }
        if (rp_consist_prepare(r) == RP_CONSIST_FILTER_UNKNOWN) {
            req_fail(r, RP_JSONRPC_SERVER_ERROR, "filter not found", NULL); /* as a node says */
            return;
        }
        if (rp_cache_dispatch(r) != RP_CACHE_GO)
            return; /* answered from the cache, or following an identical call */
        req_route(r);
        return;
    }

    /* a batch: valid calls go upstream as one batch, invalid ones are
     * answered by rpcpool inside the same answer array */
    struct rp_req *r = req_new(c);
    if (!r) {
        dispatch_invalid(c, NULL, 0, "Invalid Request: out of memory");
        return;
    }
    r->is_batch = 1;
    struct rp_buf send = RP_BUF_INIT;
    int valid = 0;
    for (int i = 0; i < m.count; i++) {
        struct rp_jcall *call = &m.calls[i];
        if (!call->code && rp_subw_is_sub_method(buf, call)) {
            call->code = -32601; /* a subscription's notifications need a call of its own */
            call->reason = "Method not found: eth_subscribe and eth_unsubscribe are served "
                           "outside a batch";
        }
        if (call->code) {
            char err[512];
            size_t n = rp_jsonrpc_error(
                err, sizeof err, call->id_start >= 0 ? buf + call->id_start : NULL, call->id_len,
                call->code, call->reason ? call->reason : "Invalid Request", NULL);
            if (n >= sizeof err)
                n = rp_jsonrpc_error(err, sizeof err, NULL, 0, call->code, "Invalid Request", NULL);
            if (r->extra.len)
                rp_buf_append(&r->extra, ",", 1);
            rp_buf_append(&r->extra, err, n);
            continue;
        }
        rp_cache_note_call(r, buf + call->method_start, call->method_len);
        if (valid == 0)
            copy_method(r, buf, call);
        else if (call_no_retry(buf, call))
            r->no_retry = 1;
        rp_buf_append(&send, valid ? "," : "[", 1);
        valid++;
        if (!rp_jcall_is_notification(call)) {
            char id[24];
            size_t idl = up_id_next(id);
            size_t is = (size_t)call->id_start;
            append_with_id(&send, buf, call->start, call->start + call->len, is, is + call->id_len,
                           id, idl);
            rp_buf_append(&r->ids, buf + call->id_start, call->id_len);
            rp_buf_append(&r->ids, "\n", 1);
            rp_buf_append(&r->up_ids, id, idl);
            rp_buf_append(&r->up_ids, "\n", 1);
        } else {
            rp_buf_append(&send, buf + call->start, call->len);
        }
    }
    rp_buf_append(&send, "]", 1);
    r->answer = r->ids.len > 0 || r->extra.len > 0;
    r->ncalls = valid;
    if (rp_buf_failed(&send) || rp_buf_failed(&r->ids) || rp_buf_failed(&r->up_ids) ||
        rp_buf_failed(&r->extra)) {
        rp_buf_free(&send);
        req_fail(r, RP_JSONRPC_INTERNAL_ERROR, "Upstream error: out of memory", NULL);
        return;
    }
    if (valid == 0) { /* nothing to forward: only the invalid calls' errors */
        rp_buf_free(&send);
        req_fail(r, RP_JSONRPC_INVALID_REQUEST, "Invalid Request", NULL);
        return;
    }
    r->send = rp_buf_detach(&send, &r->send_len);
    if (!r->send) {
        req_fail(r, RP_JSONRPC_INTERNAL_ERROR, "Upstream error: out of memory", NULL);
        return;
    }
    if (rp_cache_dispatch_batch(r, buf, &m) != RP_CACHE_GO)
        return; /* every call answered from the cache */
    req_route(r);
}

/* Send a warm-up request BODY (id "rpcpool-warm") to endpoint EP only, to
 * open or refresh a keep-alive connection. It takes a token like any
 * request, never waits and is never retried. Returns 0 when started. */
int rp_req_warm(int ep, const char *body, size_t len)
{
    struct rp_req *r = req_new(NULL);
    if (!r)
        return -1;
    static const char id[] = "\"rpcpool-warm\"";
    r->pin_ep = ep;
    rp_w.eps[ep].warming++;
    r->ncalls = 1;
    r->answer = 0;
    snprintf(r->method, sizeof r->method, "rpcpool-warm");
    r->send = malloc(len);
    r->id = malloc(sizeof id - 1);
    if (!r->send || !r->id) {
        req_finish(r, NULL, 0, 0);
        return -1;
    }
    memcpy(r->send, body, len);
    r->send_len = len;
    memcpy(r->id, id, sizeof id - 1);
    r->id_len = sizeof id - 1;
    req_route(r);
    return 0;
}

/* ---------------------------------------------------------------------
 * routing
 * ------------------------------------------------------------------- */

/* The routing snapshot of endpoint I: what shm and this worker's counters
 * say of it now (rp_route.h decides). Nothing else is read of a slot not in
 * use. */
static void ep_snapshot(struct rp_route_ep *s, int i, uint64_t seg_ms)
{
    struct rp_wep *w = &rp_w.eps[i];
    s->id = (uint32_t)i;
    s->in_use = w->in_use;
    if (!w->in_use)
        return;
    struct rp_shm_endpoint *e = w->shm;
    s->drained = atomic_load_explicit(&e->drained, memory_order_relaxed) != 0;
    s->up = atomic_load_explicit(&e->state, memory_order_relaxed) == RP_EP_UP;
    s->hold_until_ms = atomic_load_explicit(&e->hold_until_ms, memory_order_relaxed);
    s->breaker = atomic_load_explicit(&e->breaker, memory_order_acquire);
    s->ewma = atomic_load_explicit(&e->ewma, memory_order_relaxed);
    s->weight = e->weight;
    if (w->inflight_seen_ms != seg_ms + 1) {
        w->inflight_seen = rp_hold_sum(rp_w.shm, e->id, RP_HOLD_INFLIGHT);
        w->inflight_seen_ms = seg_ms + 1;
    }
    s->inflight = w->inflight_seen;
    s->has_free_conn = w->active < w->share;
    s->head_block = atomic_load_explicit(&e->head_block, memory_order_relaxed);
}

/* Count one attempt in flight on endpoint EP in this worker's own cell (the
 * host-wide count is the sum of the cells, rp_hold.h). */
static void ep_inflight(int ep, int delta)
{
    rp_hold_add(&rp_w.eps[ep].stats->inflight_held, delta);
}

/* The breaker's trial cells of endpoint EP, as this worker sees them. */
static struct rp_trial_cells ep_cells(int ep)
{
    return rp_hold_trial_cells(rp_w.shm, rp_w.eps[ep].shm->id, rp_w.slot);
}

/* The attempt of R on EP ends without a verdict (it never reached the
 * endpoint, or it cannot be judged): give its trial slot back, if any. */
static void req_give_back(struct rp_req *r, int ep)
{
    struct rp_trial_cells c = ep_cells(ep);
    rp_breaker_release(&c, r->at.ticket);
    r->at.ep = -1;
}

/* Start the attempt of R on EP now that a connection slot is free. */
static void req_launch(struct rp_req *r, int ep)
{
    struct rp_wep *w = &rp_w.eps[ep];
    uint64_t now = rp_worker_now_ms();
    if (now >= r->deadline_ms) {
        req_give_back(r, ep);
        req_trail(r, ep, "request timeout");
        req_fail_upstream(r, "request timeout");
        return;
    }
    long left = (long)(r->deadline_ms - now);
    long timeout = rp_w.cfg->attempt_timeout_ms < left ? (long)rp_w.cfg->attempt_timeout_ms : left;
    req_body_release(r); /* the body of an earlier attempt is dropped */
    r->at.over_budget = 0;
    w->active++;
    w->last_used_ms = now;
    ep_inflight(ep, +1);
    r->at.start_ns = rp_clock_mono_ns();
    r->tries++;
    if (w->tr->start(r, ep, timeout) != 0) {
        w->active--;
        ep_inflight(ep, -1);
        req_give_back(r, ep);
        req_trail(r, ep, "cannot start request");
        req_fail_upstream(r, "cannot start request");
        return;
    }
    if (r->tries == 1 && !r->is_hedge)
        hedge_arm(r, ep);
}

/* Pick an endpoint for R and start (or queue) its attempt. */
/* How often a request waiting for an endpoint at its floor looks again
 * (heads move with the prober's probes and with other requests' answers). */
#define RP_FLOOR_POLL_MS 10

/* No usable endpoint is known at R's floor (CALL->min_head): wait for one,
 * polling, up to consistency_wait_ms from the first time, then lower the
 * floor to the best head there is (none known: no floor). Returns 1 when R
 * now waits on its timer. */
static int req_floor_wait(struct rp_req *r, const struct rp_route_ep *snap,
                          struct rp_route_call *call, uint64_t now_ms, uint64_t seg_ms)
{
    uint64_t best = rp_route_best_head(snap, rp_w.nep, call, seg_ms);
    if (best == 0) {
        call->min_head = 0;
        return 0;
    }
    if (!r->floor_until_ms) {
        uint64_t until = now_ms + (uint64_t)rp_w.cfg->consistency_wait_ms;
        r->floor_until_ms = until < r->deadline_ms ? until : r->deadline_ms;
        if (r->floor_until_ms > now_ms)
            rp_consist_waited();
    }
    if (now_ms < r->floor_until_ms) {
        uint64_t when = now_ms + RP_FLOOR_POLL_MS;
        r->queued_ep = RP_REQ_WAIT_FLOOR;
        rp_timer_arm(&rp_w.timers, &r->timer, when < r->floor_until_ms ? when : r->floor_until_ms);
        return 1;
    }
    call->min_head = best;
    return 0;
}

static void req_route(struct rp_req *r)
{
    uint64_t now_ms = rp_worker_now_ms();
    uint64_t seg_ms = rp_shm_now_ms(rp_w.shm);
    uint64_t seg_ns = rp_shm_now_ns(rp_w.shm);
    struct rp_route_ep snap[RP_MAX_ENDPOINTS];
    for (int i = 0; i < rp_w.nep; i++)
        ep_snapshot(&snap[i], i, seg_ms);
    struct rp_route_call call = {.tried_mask = r->tried_mask,
                                 .pin_ep = r->pin_ep,
                                 .only_mask = r->only_mask,
                                 .prefer_mask = r->prefer_mask,
                                 .min_head = r->min_head};
    struct rp_route_plan plan;
    if (rp_route_plan(&plan, snap, rp_w.nep, &call, seg_ms) == 0 && call.min_head && !r->is_hedge) {
        if (req_floor_wait(r, snap, &call, now_ms, seg_ms))
            return;
        rp_route_plan(&plan, snap, rp_w.nep, &call, seg_ms); /* at the best head there is */
    }
    uint64_t min_wait_ns = UINT64_MAX;
    int too_big = 0; /* endpoints whose bucket can never hold this many calls */
    while (plan.n > 0) {
        uint64_t seq = atomic_fetch_add_explicit(&rp_w.shm->rr_counter, 1, memory_order_relaxed);
        uint64_t rnd = ((uint64_t)random() << 31) ^ (uint64_t)random();
        int ep = rp_route_next(&plan, &rp_w.balancer, rp_w.cfg->balance, seq, rnd);
        struct rp_wep *w = &rp_w.eps[ep];
        if (r->is_hedge && w->active >= w->share)
            continue; /* a hedge never waits for a connection */
        struct rp_trial_cells cells = ep_cells(ep);
        struct rp_breaker_ticket t =
            rp_breaker_acquire(&w->shm->breaker, &rp_w.breaker, &cells, seg_ms);
        if (t.grant == RP_BREAKER_DENY)
            continue;
        struct rp_gcra_params gp = {w->shm->rl_interval_ns, w->shm->rl_burst};
        uint64_t wait = rp_w.cfg->fleet_redis
                            ? rp_fleet_take(rp_shm_fleet_of(rp_w.shm), w->shm->id,
                                            &w->shm->gcra_tat_ns, &gp, (uint64_t)r->ncalls, seg_ns)
                            : rp_gcra_take(&w->shm->gcra_tat_ns, &gp, (uint64_t)r->ncalls, seg_ns);
        if (wait) {
            rp_breaker_release(&cells, t);
            if (wait == RP_GCRA_NEVER)
                too_big++;
            else if (wait < min_wait_ns)
                min_wait_ns = wait;
            continue;
        }
        r->at.ep = ep;
        r->at.ticket = t;
        r->tried_mask |= 1ull << ep;
        if (w->active < w->share) {
            req_launch(r, ep);
            return;
        }
        /* every connection of this worker to EP is busy: wait for one */
        r->qnext = NULL;
        if (w->qtail)
            w->qtail->qnext = r;
        else
            w->qhead = r;
        w->qtail = r;
        r->queued_ep = ep;
        uint64_t until = now_ms + (uint64_t)rp_w.cfg->connection_timeout_ms;
        rp_timer_arm(&rp_w.timers, &r->timer, until < r->deadline_ms ? until : r->deadline_ms);
        return;
    }
    if (r->is_hedge) { /* nothing usable right now: no hedge */
        hedge_gone(r, -1, "no endpoint for a hedge", 0);
        return;
    }
    if (r->pin_ep != RP_REQ_NO_PIN) { /* a warm-up that cannot run now is simply dropped */
        req_finish(r, NULL, 0, 0);
        return;
    }
    if (too_big && min_wait_ns == UINT64_MAX) {
        /* a batch larger than every usable bucket: it can never be admitted */
        req_fail(r, RP_JSONRPC_LIMIT_EXCEEDED,
                 "Limit exceeded: the batch has more calls than burst_size of every usable "
                 "endpoint",
                 NULL);
        return;
    }
    if (min_wait_ns != UINT64_MAX) {
        /* rate-limited everywhere: wait for tokens, up to queue_timeout_ms */
        uint64_t queue_deadline = r->start_ns / 1000000ull + (uint64_t)rp_w.cfg->queue_timeout_ms;
        if (queue_deadline > r->deadline_ms)
            queue_deadline = r->deadline_ms;
        uint64_t when = now_ms + (min_wait_ns + 999999ull) / 1000000ull;
        if (when > queue_deadline) {
            req_fail(r, RP_JSONRPC_LIMIT_EXCEEDED,
                     "Limit exceeded: rate limit of every usable "
                     "endpoint reached",
                     NULL);
            return;
        }
        r->queued_ep = RP_REQ_WAIT_TOKENS;
        rp_timer_arm(&rp_w.timers, &r->timer, when);
        return;
    }
    if (r->tries == 0 && !r->trail.len) {
        req_fail(r, RP_JSONRPC_NO_UPSTREAM, "No upstream available", NULL);
        return;
    }
    req_fail_upstream(r, "no other endpoint to retry on");
}

void rp_req_answer_now(struct rp_req *r, const char *answer, size_t len)
{
    req_finish(r, answer, len, 1);
}

void rp_req_route(struct rp_req *r)
{
    req_route(r);
}

/* The wait timer fired: for tokens (route again) or for a connection slot
 * (give up on this endpoint, as a failure that sent nothing). */
static void req_wait_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_req *r = arg;
    if (r->queued_ep == RP_REQ_WAIT_FLIGHT) {
        rp_cache_wait_fired(r);
        return;
    }
    if (r->queued_ep == RP_REQ_WAIT_TOKENS || r->queued_ep == RP_REQ_WAIT_FLOOR) {
        r->queued_ep = RP_REQ_NOT_QUEUED;
        req_route(r);
        return;
    }
    int ep = r->queued_ep;
    if (ep < 0)
        return;
    struct rp_wep *w = &rp_w.eps[ep];
    /* unlink from the wait queue */
    struct rp_req **pp = &w->qhead, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp) {
        *pp = r->qnext;
        if (w->qtail == r)
            w->qtail = prev;
    }
    r->queued_ep = RP_REQ_NOT_QUEUED;
    req_give_back(r, ep);
    req_trail(r, ep, "no free connection");
    if (rp_worker_now_ms() >= r->deadline_ms) {
        req_fail_upstream(r, "request timeout");
        return;
    }
    if (r->tries < 1 + rp_w.cfg->retries) {
        req_route(r);
        return;
    }
    req_fail_upstream(r, "retries spent");
}

/* A connection slot of this worker on EP became free: start the first
 * request waiting for it. */
void rp_req_ep_slot_free(int ep)
{
    struct rp_wep *w = &rp_w.eps[ep];
    while (w->qhead && w->active < w->share) {
        struct rp_req *r = w->qhead;
        w->qhead = r->qnext;
        if (!w->qhead)
            w->qtail = NULL;
        r->queued_ep = RP_REQ_NOT_QUEUED;
        rp_timer_cancel(&rp_w.timers, &r->timer);
        req_launch(r, ep);
    }
}

/* ---------------------------------------------------------------------
 * attempt results
 * ------------------------------------------------------------------- */

/* Fold one latency sample into the endpoint's EWMA (alpha 1/8) and this
 * worker's histogram row. */
static void ep_record_latency(int ep, uint64_t latency_us)
{
    struct rp_wep *w = &rp_w.eps[ep];
    uint64_t now_ms = rp_shm_now_ms(rp_w.shm);
    uint64_t old = atomic_load_explicit(&w->shm->ewma, memory_order_relaxed);
    uint64_t upd;
    do { /* value and time in one word: never paired from two updates */
        uint64_t prev = rp_route_ewma_decayed(old, now_ms); /* an old average counts less */
        upd = rp_ewma_pack(prev == 0 ? latency_us : prev - prev / 8 + latency_us / 8, now_ms);
    } while (!atomic_compare_exchange_weak_explicit(&w->shm->ewma, &old, upd, memory_order_relaxed,
                                                    memory_order_relaxed));
    struct rp_shm_epstats *st = w->stats;
    atomic_fetch_add_explicit(&st->ok, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->lat_sum_us, latency_us, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->lat_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->hist[rp_lat_bucket(latency_us)], 1, memory_order_relaxed);
}

/* A node may echo an id in another spelling ("\u0061" for "a", 1.0 for 1)
 * or answer an id it could not read with null: the client gets its own id
 * bytes back. BODY is the answer as it came, checked just before by
 * attempt_verdict() (rp_w.parser holds where its id is). Returns 1 when R
 * was answered here with the id restored (and made one line). */
static int req_restore_id(struct rp_req *r, const char *body, size_t len)
{
    /* where the verdict's check found the id (no second scan of the body) */
    size_t n = rp_jsonrpc_restore_id(&rp_w.parser, body, len, r->id, r->id_len, NULL, 0);
    if (n == 0)
        return 0; /* already ours */
    char *out = malloc(n);
    if (!out)
        return 0;
    rp_jsonrpc_restore_id(&rp_w.parser, body, len, r->id, r->id_len, out, n);
    req_finish(r, out, rp_json_strip_newlines(out, n), 1);
    free(out);
    return 1;
}

/* Answer batch R from its endpoint's (one-line) answer: every call that
 * expects an answer gets its element, matched by id, or -32603 when the
 * endpoint (EP) left it out; elements nobody asked for are dropped; the
 * batch's own error objects follow. */
static void req_answer_batch(struct rp_req *r, int ep)
{
    struct rp_buf *b = &r->at.body;
    struct rp_buf data = RP_BUF_INIT;
    rp_buf_puts(&data, "[{\"endpoint\":");
    rp_buf_append_json_str(&data, rp_w.eps[ep].cfg->name);
    rp_buf_puts(&data, ",\"error\":\"the endpoint's batch answer has no element for this call\"}]");
    if (rp_buf_failed(&data)) {
        rp_buf_free(&data);
        req_fail_upstream(r, "out of memory");
        return;
    }
    int missing = 0;
    size_t need =
        rp_jsonrpc_match_batch(NULL, 0, b->data, b->len, r->up_ids.data, r->up_ids.len, r->ids.data,
                               r->ids.len, r->extra.data, r->extra.len, data.data, NULL);
    char *out = malloc(need + 1);
    if (!out) {
        rp_buf_free(&data);
        req_fail_upstream(r, "out of memory");
        return;
    }
    rp_jsonrpc_match_batch(out, need + 1, b->data, b->len, r->up_ids.data, r->up_ids.len,
                           r->ids.data, r->ids.len, r->extra.data, r->extra.len, data.data,
                           &missing);
    if (missing)
        rp_warn("endpoint's batch answer lacked calls: answered -32603 for them",
                "endpoint=%s missing=%d", rp_w.eps[ep].cfg->name, missing);
    rp_buf_free(&data);
    req_finish(r, out, need, 1);
    free(out);
}

/* Write endpoint EP's answer to the client: single-line, with the batch's
 * own error objects merged in. */
static void req_answer_success(struct rp_req *r, int ep)
{
    rp_cache_answered(r, ep); /* kept, and shared with identical calls waiting */
    struct rp_buf *b = &r->at.body;
    /* the id span from the verdict's check is an offset into the body as
     * it came: put the client's id back before the body is made one line */
    if (r->answer && !r->is_batch && r->id && b->len && req_restore_id(r, b->data, b->len))
        return;
    size_t len = rp_json_strip_newlines(b->data ? b->data : (char *)"", b->len);
    b->len = len;
    if (r->is_batch && r->ids.len) {
        req_answer_batch(r, ep);
        return;
    }
    if (!r->is_batch || !r->extra.len) {
        if (r->is_batch && len == 0) { /* notifications only */
            req_finish(r, NULL, 0, 1);
            return;
        }
        req_finish(r, b->data, len, 1);
        return;
    }
    size_t need = rp_jsonrpc_merge_batch(NULL, 0, b->data, len, r->extra.data, r->extra.len);
    char *merged = malloc(need + 1);
    if (!merged) {
        req_fail_upstream(r, "out of memory");
        return;
    }
    rp_jsonrpc_merge_batch(merged, need + 1, b->data, len, r->extra.data, r->extra.len);
    req_finish(r, merged, need, 1);
    free(merged);
}

/* Is the body R's attempt just read a JSON-RPC response to another call:
 * one with an id that is not null and not the one R was sent with (for a
 * batch: a single object with such an id, as no batch answer is one)? */
int rp_req_is_stray(struct rp_req *r)
{
    const char *b = r->at.body.data;
    size_t n = r->at.body.len;
    r->at.body_checked = 0;
    if (!n || !r->answer || (!r->is_batch && !r->up_id_len))
        return 0;
    if (r->is_batch) {
        size_t i = 0;
        while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n'))
            i++;
        if (i == n || b[i] != '{')
            return 0; /* an array: a batch answer, judged by the verdict */
    } else if (rp_jsonrpc_check_response(&rp_w.parser, b, n, 0, r->up_id, r->up_id_len) == 0) {
        r->at.body_checked = 1; /* ours: the verdict need not check it again */
        return 0;
    }
    if (rp_jsonrpc_check_response(&rp_w.parser, b, n, 0, NULL, 0) != 0)
        return 0; /* not a single response at all */
    long s = rp_w.parser.id_start, e = rp_w.parser.id_end;
    return s >= 0 && !(e - s == 4 && memcmp(b + s, "null", 4) == 0);
}

/* Classify a finished attempt. Returns NULL for an answer, else a short
 * description of the failure; *BREAKER tells whether it counts against the
 * endpoint's breaker. */
static const char *attempt_verdict(struct rp_req *r, const struct rp_xfer_result *res, int *breaker,
                                   char *why, size_t whylen)
{
    long http = res->http;
    *breaker = 1;
    switch (res->status) {
    case RP_XFER_OK:
        break;
    case RP_XFER_TOO_LARGE:
        *breaker = 0;
        snprintf(why, whylen, "%s",
                 r->at.over_budget ? "response larger than what is left of the client's answer "
                                     "buffer (max_response_bytes in all)"
                                   : "response larger than max_response_bytes");
        return why;
    case RP_XFER_CONNECT:
        snprintf(why, whylen, "connect failed: %s", res->detail);
        return why;
    case RP_XFER_TIMEOUT:
        snprintf(why, whylen, "timeout");
        return why;
    case RP_XFER_IO:
    default:
        snprintf(why, whylen, "%s", res->detail[0] ? res->detail : "transfer failed");
        return why;
    }
    if (http == 429) {
        snprintf(why, whylen, "HTTP 429");
        return why;
    }
    if (http >= 500) {
        snprintf(why, whylen, "HTTP %ld", http);
        return why;
    }
    if (r->at.body.len == 0 && r->is_batch && r->ids.len == 0 && http >= 200 && http < 300)
        return NULL; /* a batch of notifications: nothing comes back */
    if (r->at.body.len == 0 && !r->answer && http >= 200 && http < 300)
        return NULL; /* a notification */
    /* a single call is checked against the id it was sent with */
    const char *want = r->is_batch ? NULL : r->up_id_len ? r->up_id : r->id;
    size_t want_len = r->is_batch ? 0 : r->up_id_len ? r->up_id_len : r->id_len;
    if (!r->at.body_checked &&
        rp_jsonrpc_check_response(&rp_w.parser, r->at.body.data, r->at.body.len, r->is_batch, want,
                                  want_len) != 0) {
        if (!r->answer && http >= 200 && http < 300)
            return NULL; /* notification: whatever came back is dropped */
        snprintf(why, whylen, "HTTP %ld: not a JSON-RPC response", http);
        return why;
    }
    return NULL;
}

/* R was answered by endpoint EP (its body holds the answer, just checked):
 * chain bookkeeping, then the client's answer, or one more ask. */
static void req_answered(struct rp_req *r, int ep)
{
    if (rp_consist_answer(r, ep) == RP_CONSIST_ASK_AGAIN) {
        req_route(r); /* its endpoint is tried: the next one at the best head */
        return;
    }
    req_answer_success(r, ep);
}

/* The upstream layer reports a finished attempt of R (its transfer handle
 * already released). */
void rp_req_attempt_done(struct rp_req *r, const struct rp_xfer_result *res)
{
    int ep = r->at.ep;
    struct rp_wep *w = &rp_w.eps[ep];
    long http = res->http;
    int sent = res->sent;
    w->active--;
    ep_inflight(ep, -1);
    rp_timer_cancel(&rp_w.timers, &r->hedge_timer);
    uint64_t latency_us = (rp_clock_mono_ns() - r->at.start_ns) / 1000ull;

    char why[160];
    int counts;
    const char *fail = attempt_verdict(r, res, &counts, why, sizeof why);
    if (fail && res->status == RP_XFER_OK && http >= 200 && http < 300)
        w->tr->discard(); /* not this call's answer: its own may still come */
    struct rp_shm_epstats *st = w->stats;
    struct rp_breaker_ticket t = r->at.ticket;
    struct rp_trial_cells cells = ep_cells(ep);
    r->at.ep = -1;
    rp_req_ep_slot_free(ep);

    if (!fail) {
        rp_breaker_success(&w->shm->breaker, &cells, t);
        ep_record_latency(ep, latency_us);
        if (r->is_hedge) {
            hedge_won(r, ep);
            return;
        }
        if (r->hedge)
            hedge_release(r); /* answered first: its hedge lost */
        req_answered(r, ep);
        return;
    }
    if (http == 429 && r->at.retry_after_s > 0) {
        uint64_t until = rp_shm_now_ms(rp_w.shm) + (uint64_t)r->at.retry_after_s * 1000ull;
        rp_hold_raise(&w->shm->hold_until_ms, until);
        rp_warn("endpoint rate-limited us: holding it back", "endpoint=%s retry_after_s=%ld",
                w->cfg->name, r->at.retry_after_s);
    }
    if (counts) {
        rp_breaker_failure(&w->shm->breaker, &rp_w.breaker, &cells, t, rp_shm_now_ms(rp_w.shm));
        atomic_fetch_add_explicit(&st->failed, 1, memory_order_relaxed);
    } else {
        rp_breaker_release(&cells, t);
    }
    rp_debug("attempt failed", "endpoint=%s error=\"%s\" sent=%d", w->cfg->name, why, sent);
    if (r->is_hedge) {
        hedge_gone(r, ep, why, !counts);
        return;
    }
    req_trail(r, ep, why);
    /* too large: another endpoint would send the same; a warm-up is never
     * retried */
    if (!counts || r->pin_ep != RP_REQ_NO_PIN) {
        req_fail_upstream(r, why);
        return;
    }
    if (r->no_retry && sent) {
        req_fail_upstream(r, "state-changing call reached the endpoint; not retried");
        return;
    }
    if (rp_worker_now_ms() >= r->deadline_ms) {
        req_fail_upstream(r, "request timeout");
        return;
    }
    if (r->hedge) { /* its hedge, already running, is the retry: wait for it */
        atomic_fetch_add_explicit(&st->retried, 1, memory_order_relaxed);
        r->hedge_waiting = 1;
        return;
    }
    if (r->tries >= 1 + rp_w.cfg->retries) {
        req_fail_upstream(r, "retries spent");
        return;
    }
    atomic_fetch_add_explicit(&st->retried, 1, memory_order_relaxed);
    req_route(r);
}

/* ---------------------------------------------------------------------
 * hedged reads (rp_hedge.h)
 *
 * A read's first attempt that has waited longer than its endpoint's recent
 * quantile gets a hedge: a request of its own, without a client, sent as
 * the same bytes to another endpoint (taking tokens and a breaker grant
 * like any attempt, never waiting for either). The first answer wins and
 * the client gets it (a hedge that wins takes over the client); the other
 * attempt runs on without a client, its answer discarded when it comes, so
 * its keep-alive connection is not lost, and it gives back its in-flight
 * count, connection slot and breaker trial as any attempt does when it ends
 * (bounded by the attempt timeout). A failed attempt does not end the race
 * while the other still runs and the retry rules would retry.
 * ------------------------------------------------------------------- */

/* This worker's view for the decisions: recent latency and the delay per
 * endpoint (refreshed once per RP_HEDGE_TICK_MS), the budget's samples. */
static struct {
    struct rp_hedge_lat lat[RP_MAX_ENDPOINTS];
    uint64_t delay_us[RP_MAX_ENDPOINTS];
    struct rp_hedge_budget budget;
    uint64_t tick_ms; /* worker clock of the last refresh, 0 = never */
} hedge_view;

/* Refresh the recent latency and the hedge delays when a tick has passed. */
static void hedge_tick(uint64_t now_ms)
{
    if (hedge_view.tick_ms && now_ms < hedge_view.tick_ms + RP_HEDGE_TICK_MS)
        return;
    unsigned ticks =
        hedge_view.tick_ms ? (unsigned)((now_ms - hedge_view.tick_ms) / RP_HEDGE_TICK_MS) : 0;
    hedge_view.tick_ms = now_ms;
    double pool[RP_LAT_BUCKETS] = {0};
    uint64_t cum[RP_LAT_BUCKETS];
    for (int i = 0; i < rp_w.nep; i++) {
        if (!rp_w.eps[i].in_use)
            continue;
        rp_hedge_host_hist(rp_w.shm, rp_w.eps[i].shm->id, cum);
        rp_hedge_lat_fold(&hedge_view.lat[i], cum, ticks);
        for (int b = 0; b < RP_LAT_BUCKETS; b++)
            pool[b] += hedge_view.lat[i].recent[b];
    }
    double q = rp_w.cfg->hedge_quantile;
    double pool_q = rp_hedge_quantile_us(pool, q, RP_HEDGE_MIN_SAMPLES);
    for (int i = 0; i < rp_w.nep; i++) {
        double ep_q = rp_hedge_quantile_us(hedge_view.lat[i].recent, q, RP_HEDGE_MIN_SAMPLES);
        hedge_view.delay_us[i] = rp_hedge_delay_us(ep_q, pool_q, rp_w.cfg->attempt_timeout_ms);
    }
    /* the budget's ring gets a sample per tick while calls flow, so its
     * window starts about RP_HEDGE_WINDOW_MS back when a hedge is asked for */
    uint64_t calls = 0, hedges = 0;
    rp_hedge_host_counts(rp_w.shm, &calls, &hedges);
    rp_hedge_budget_sample(&hedge_view.budget, now_ms, calls, hedges);
}

/* Count a hedge's outcome on the endpoint it went to. */
static void hedge_count(int ep, int won)
{
    struct rp_shm_epstats *st = rp_w.eps[ep].stats;
    atomic_fetch_add_explicit(won ? &st->hedges_won : &st->hedges_lost, 1, memory_order_relaxed);
}

/* R's first attempt started on EP: when R may be hedged, count it among
 * the calls the budget is a share of and arm its hedge timer. */
static void hedge_arm(struct rp_req *r, int ep)
{
    if (rp_w.cfg->hedge_budget_percent <= 0 || rp_w.nep < 2 || r->conn == NULL)
        return;
    if (!rp_hedge_eligible(r->is_batch, r->answer, r->no_retry, r->pin_ep != RP_REQ_NO_PIN,
                           r->only_mask, r->prefer_mask, (int)r->chain.kind))
        return;
    atomic_fetch_add_explicit(&rp_shm_stats(rp_w.shm, rp_w.slot, 0)->hedge_calls,
                              (uint64_t)r->ncalls, memory_order_relaxed);
    uint64_t now = rp_worker_now_ms();
    hedge_tick(now);
    uint64_t wait_ms = (hedge_view.delay_us[ep] + 999u) / 1000u;
    if (now + wait_ms < r->deadline_ms)
        rp_timer_arm(&rp_w.timers, &r->hedge_timer, now + wait_ms);
}

/* R's first attempt has waited long enough: send its hedge when the host's
 * budget allows one and another endpoint can take it now. */
static void hedge_fired(struct rp_timer *tm, void *arg)
{
    (void)tm;
    struct rp_req *r = arg;
    uint64_t now = rp_worker_now_ms();
    if (r->hedge || r->at.ep < 0 || now >= r->deadline_ms)
        return;
    uint64_t calls = 0, hedges = 0;
    rp_hedge_host_counts(rp_w.shm, &calls, &hedges);
    rp_hedge_budget_sample(&hedge_view.budget, now, calls, hedges);
    if (!rp_hedge_budget_allows(&hedge_view.budget, now, calls, hedges, (unsigned)r->ncalls,
                                rp_w.cfg->hedge_budget_percent))
        return;
    struct rp_req *t = req_new(NULL);
    if (!t)
        return;
    t->send = malloc(r->send_len);
    t->id = r->id_len ? malloc(r->id_len) : NULL;
    if (!t->send || (r->id_len && !t->id)) {
        req_finish(t, NULL, 0, 0);
        return;
    }
    memcpy(t->send, r->send, r->send_len);
    t->send_len = r->send_len;
    if (r->id_len)
        memcpy(t->id, r->id, r->id_len);
    t->id_len = r->id_len;
    memcpy(t->method, r->method, sizeof t->method);
    memcpy(t->up_id, r->up_id, sizeof t->up_id);
    t->up_id_len = r->up_id_len;
    t->answer = r->answer;
    t->ncalls = r->ncalls;
    t->chain = r->chain;
    t->min_head = r->min_head;
    t->tried_mask = r->tried_mask;
    t->deadline_ms = r->deadline_ms;
    t->is_hedge = 1;
    t->hedge_of = r;
    r->hedge = t;
    req_route(t);
    if (r->hedge != t)
        return; /* not sent: nothing usable took it now */
    t->hedge_ep = t->at.ep;
    r->tried_mask |= 1ull << t->at.ep;
    r->tries++; /* a hedge is an attempt of R's: retries count it */
    atomic_fetch_add_explicit(&rp_w.eps[t->at.ep].stats->hedges_sent, 1, memory_order_relaxed);
    rp_debug("hedge sent", "method=%s endpoint=%s", r->method, rp_w.eps[t->at.ep].cfg->name);
}

/* Primary R's race is over (it was answered, or it ends): its hedge lost.
 * The hedge runs on alone, without a client: its answer, when it comes, is
 * discarded (the connection stays for reuse, its verdict and latency are
 * recorded as for any attempt) and it gives back what it holds then. */
static void hedge_release(struct rp_req *r)
{
    struct rp_req *t = r->hedge;
    r->hedge = NULL;
    t->hedge_of = NULL;
    if (t->hedge_ep >= 0)
        hedge_count(t->hedge_ep, 0);
}

/* Hedge T answers for primary R, whose own attempt still runs: T takes R's
 * client (and what the answer needs of R: its trail, attempts, lookup
 * state), R runs on alone as T would have (its answer discarded). */
static void hedge_take_over(struct rp_req *r, struct rp_req *t)
{
    req_body_release(r); /* held on the client: R's body is nobody's now */
    req_body_release(t); /* held on the worker only */
    t->conn = r->conn;   /* the client's counts (refs, pending) move with it */
    r->conn = NULL;
    rp_req_body_account(t);
    struct rp_buf trail = t->trail;
    t->trail = r->trail;
    r->trail = trail;
    t->tries = r->tries;
    t->tried_mask = r->tried_mask;
    t->start_ns = r->start_ns;
    t->floor_until_ms = r->floor_until_ms;
    t->lookup_null = r->lookup_null;
    t->lookup_null_len = r->lookup_null_len;
    r->lookup_null = NULL;
    /* the cache and flight state go with the answer: T now answers the
     * flight R leads (a leader is never on a followers' list) */
    struct rp_req_cache ck = t->ck;
    t->ck = r->ck;
    r->ck = ck;
    t->is_hedge = 0;
    t->hedge_ep = -1;
    r->is_hedge = 1;
    r->hedge_ep = -1;
    r->hedge_of = NULL;
}

/* Hedge T's attempt on EP answered first: its answer is its primary's. */
static void hedge_won(struct rp_req *t, int ep)
{
    struct rp_req *r = t->hedge_of;
    t->hedge_of = NULL;
    if (!r) { /* a hedge that lost the race: its answer is discarded */
        req_finish(t, NULL, 0, 0);
        return;
    }
    r->hedge = NULL;
    hedge_count(ep, 1);
    rp_timer_cancel(&rp_w.timers, &r->hedge_timer);
    rp_debug("hedge won", "method=%s endpoint=%s", r->method, rp_w.eps[ep].cfg->name);
    if (r->at.ep >= 0) { /* R's attempt still runs: it goes on without the client */
        hedge_take_over(r, t);
        req_answered(t, ep);
        return;
    }
    /* R's attempt failed and waited for this one: the answer moves to R */
    r->hedge_waiting = 0;
    req_body_release(r);
    struct rp_buf body = r->at.body;
    r->at.body = t->at.body;
    t->at.body = body;
    rp_req_body_account(r);
    req_finish(t, NULL, 0, 0);
    /* the answer's id span for the restore: checked again in its new place */
    rp_jsonrpc_check_response(&rp_w.parser, r->at.body.data, r->at.body.len, 0, r->up_id,
                              r->up_id_len);
    req_answered(r, ep);
}

/* Hedge T ends without an answer: its attempt on EP (-1: none began) failed
 * with WHY (FINAL: no endpoint would answer better), or it found nowhere to
 * go. Its primary goes on; one that was waiting for it retries or fails by
 * the usual rules. */
static void hedge_gone(struct rp_req *t, int ep, const char *why, int final)
{
    struct rp_req *r = t->hedge_of;
    t->hedge_of = NULL;
    if (r) {
        r->hedge = NULL;
        if (t->hedge_ep >= 0)
            hedge_count(t->hedge_ep, 0);
    }
    req_finish(t, NULL, 0, 0);
    if (!r || ep < 0)
        return;
    req_trail(r, ep, why);
    if (!r->hedge_waiting)
        return;
    r->hedge_waiting = 0;
    if (final) {
        req_fail_upstream(r, why);
        return;
    }
    if (rp_worker_now_ms() >= r->deadline_ms) {
        req_fail_upstream(r, "request timeout");
        return;
    }
    if (r->tries >= 1 + rp_w.cfg->retries) {
        req_fail_upstream(r, "retries spent");
        return;
    }
    req_route(r);
}
