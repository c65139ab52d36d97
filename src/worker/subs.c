/* subs.c - subscriptions, the worker's half (subs.h).
 *
 * eth_subscribe on an IPC connection admits the subscription against
 * max_per_connection (this connection) and max_total (store-then-sum over
 * the slots' cells, rp_sub_ring.h) and answers a random 128-bit hex id.
 * The worker keeps one cursor into the follower's ring: each event is read
 * once per worker (woken by the follower, and checked on every loop turn)
 * and written to every subscription that matches and is at least as old as
 * the event (a subscription gets events published after it was made).
 *
 * Endings an application sees: an END event (a gap, or a reorg, beyond
 * backfill_blocks), or this worker falling behind the ring, writes for
 * each subscription concerned
 *   {"jsonrpc":"2.0","id":null,"error":{"code":-32000,
 *    "message":"subscription ended: ...","data":{"subscription":ID}}}
 * and closes the connection once its answers are out (client libraries see
 * the socket close and subscribe again). A subscriber that does not read
 * holds at most RP_SUB_UNREAD_MAX_BYTES of notifications: then it is closed.
 *
 * Reloads: a retiring worker hands a subscribed connection over with its
 * subscriptions (ids, filters and the next event they need), and the new
 * worker delivers from that event on: nothing lost, nothing twice.
 */
#include "subs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include "conn.h"
#include "rp_clock.h"
#include "rp_log.h"
#include "rp_sub_ring.h"
#include "rp_subjson.h"
#include "rp_wake.h"
#include "worker.h"

#define RP_SUB_UNREAD_MAX_BYTES ((size_t)16 << 20) /* notifications a subscriber leaves unread */
#define RP_SUB_ID_LEN           34                 /* "0x" + 32 hex digits */

struct rp_sub {
    struct rp_sub *next;          /* the connection's list */
    struct rp_sub *wprev, *wnext; /* the worker's list */
    struct rp_conn *conn;
    char id[RP_SUB_ID_LEN + 1];
    enum rp_sub_type type;
    struct rp_log_filter filter;
    uint64_t from_seq; /* the first event it gets */
    int dead;          /* ended while the worker was delivering: freed after */
};

static struct {
    struct rp_sub *all;
    unsigned count;
    uint64_t cursor; /* the next event this worker reads */
    struct rp_buf payload, note;
    uint64_t hinted; /* the last head this worker woke the follower for */
    int busy;        /* delivering: ended subscriptions are only marked dead */
} S;

static struct rp_shm_subs *subs_shm(void)
{
    return rp_shm_subs(rp_w.shm);
}

void rp_subw_cleanup(void)
{
    rp_buf_free(&S.payload);
    rp_buf_free(&S.note);
}

/* ---- bookkeeping ---- */

static void sub_link(struct rp_conn *c, struct rp_sub *s)
{
    s->conn = c;
    s->next = c->subs;
    c->subs = s;
    s->wprev = NULL;
    s->wnext = S.all;
    if (S.all)
        S.all->wprev = s;
    if (!S.all) /* the first one: events from now on */
        S.cursor = rp_sub_next_seq(subs_shm());
    S.all = s;
    S.count++;
}

/* Unlink S from the worker's list, give its count back, free it (the
 * connection's list is the caller's). */
static void sub_free(struct rp_sub *s)
{
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        S.all = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    S.count--;
    rp_sub_release(subs_shm(), rp_w.slot, s->type == RP_SUB_LOGS);
    rp_log_filter_free(&s->filter);
    free(s);
}

/* Free the subscriptions marked dead while delivering. */
static void subw_sweep(void)
{
    for (struct rp_sub *s = S.all, *next; s; s = next) {
        next = s->wnext;
        if (s->dead)
            sub_free(s);
    }
}

/* S leaves its connection's list (the caller holds it) and ends: freed now,
 * or marked dead while the worker is delivering (the lists it walks stay
 * whole). */
static void sub_drop(struct rp_sub *s)
{
    if (S.busy)
        s->dead = 1;
    else
        sub_free(s);
}

void rp_subw_conn_closed(struct rp_conn *c)
{
    struct rp_sub *s;
    while ((s = c->subs)) {
        c->subs = s->next;
        sub_drop(s);
    }
}

static unsigned conn_sub_count(const struct rp_conn *c)
{
    unsigned n = 0;
    for (const struct rp_sub *s = c->subs; s; s = s->next)
        n++;
    return n;
}

/* ---- answers ---- */

static void subw_answer(struct rp_conn *c, const char *id, size_t id_len, const char *result)
{
    struct rp_buf b = RP_BUF_INIT;
    rp_buf_appendf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%.*s,\"result\":%s}", (int)id_len,
                   id ? id : "null", result);
    rp_worker_count_answer(1);
    if (!rp_buf_failed(&b))
        rp_conn_write_answer(c, b.data, b.len);
    rp_buf_free(&b);
}

static void subw_error(struct rp_conn *c, const char *id, size_t id_len, int code, const char *msg)
{
    char buf[512];
    size_t n = rp_jsonrpc_error(buf, sizeof buf, id, id_len, code, msg, NULL);
    if (n >= sizeof buf)
        n = rp_jsonrpc_error(buf, sizeof buf, id, 0, code, "subscription refused", NULL);
    rp_worker_count_answer(0);
    rp_conn_write_answer(c, buf, n);
}

static int method_is(const char *buf, const struct rp_jcall *call, const char *m)
{
    size_t n = strlen(m);
    return call->method_len == n && memcmp(buf + call->method_start, m, n) == 0;
}

int rp_subw_is_sub_method(const char *buf, const struct rp_jcall *call)
{
    return method_is(buf, call, "eth_subscribe") || method_is(buf, call, "eth_unsubscribe");
}

/* A fresh random id: "0x" + 32 hex digits, as geth gives. */
static void sub_new_id(char *id)
{
    uint8_t r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t t = rp_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < 16; i++)
            r[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
    }
    id[0] = '0';
    id[1] = 'x';
    for (int i = 0; i < 16; i++)
        snprintf(id + 2 + 2 * i, 3, "%02x", r[i]);
}

static void subw_subscribe(struct rp_conn *c, const char *buf, size_t len,
                           const struct rp_jcall *call, const char *id, size_t id_len)
{
    enum rp_sub_type type;
    struct rp_log_filter f;
    const char *err = NULL;
    if (rp_subjson_subscribe(buf + call->start, call->len, &type, &f, &err) != 0) {
        subw_error(c, id, id_len, -32602, err);
        return;
    }
    (void)len;
    if (conn_sub_count(c) >= (unsigned)rp_w.cfg->sub_max_per_connection) {
        rp_log_filter_free(&f);
        subw_error(c, id, id_len, RP_JSONRPC_LIMIT_EXCEEDED,
                   "Limit exceeded: too many subscriptions on this connection "
                   "(subscriptions.max_per_connection)");
        return;
    }
    if (!rp_sub_admit(subs_shm(), rp_w.slot, type == RP_SUB_LOGS,
                      (uint64_t)rp_w.cfg->sub_max_total)) {
        rp_log_filter_free(&f);
        subw_error(c, id, id_len, RP_JSONRPC_LIMIT_EXCEEDED,
                   "Limit exceeded: too many subscriptions on this host "
                   "(subscriptions.max_total)");
        return;
    }
    struct rp_sub *s = calloc(1, sizeof *s);
    if (!s) {
        rp_sub_release(subs_shm(), rp_w.slot, type == RP_SUB_LOGS);
        rp_log_filter_free(&f);
        subw_error(c, id, id_len, RP_JSONRPC_INTERNAL_ERROR, "out of memory");
        return;
    }
    s->type = type;
    s->filter = f;
    sub_new_id(s->id);
    sub_link(c, s);
    if (rp_sub_count(subs_shm(), 0) == 1) /* the first on the host: the follower wakes */
        rp_wake_post(rp_w.cfg->shm_name, RP_SHM_FOLLOWER_SLOT);
    /* events from the next one published: those the worker has not read
     * yet but that were published before are not this subscription's */
    s->from_seq = rp_sub_next_seq(subs_shm());
    char result[RP_SUB_ID_LEN + 3];
    snprintf(result, sizeof result, "\"%s\"", s->id);
    subw_answer(c, id, id_len, result);
    rp_debug("subscription made", "fd=%d id=%s type=%s", c->ev.fd, s->id,
             type == RP_SUB_LOGS ? "logs" : "newHeads");
}

static void subw_unsubscribe(struct rp_conn *c, const char *buf, const struct rp_jcall *call,
                             const char *id, size_t id_len)
{
    char sid[80];
    if (rp_subjson_unsubscribe(buf + call->start, call->len, sid, sizeof sid) != 0) {
        subw_error(c, id, id_len, -32602, "invalid params: expected [subscription id]");
        return;
    }
    for (struct rp_sub **pp = &c->subs; *pp; pp = &(*pp)->next) {
        if (strcasecmp((*pp)->id, sid) == 0) {
            struct rp_sub *s = *pp;
            *pp = s->next;
            sub_drop(s);
            subw_answer(c, id, id_len, "true");
            return;
        }
    }
    subw_answer(c, id, id_len, "false"); /* as geth: an id it does not know */
}

int rp_subw_dispatch(struct rp_conn *c, const char *buf, size_t len, const struct rp_jcall *call)
{
    int sub = method_is(buf, call, "eth_subscribe");
    if (!sub && !method_is(buf, call, "eth_unsubscribe"))
        return 0;
    const char *id = call->id_start >= 0 ? buf + call->id_start : NULL;
    size_t id_len = call->id_start >= 0 ? call->id_len : 0;
    if (c->parent || c->proto == CONN_PROTO_HTTP) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "Method not found: %s needs the IPC socket (%s); HTTP cannot carry "
                 "subscriptions",
                 sub ? "eth_subscribe" : "eth_unsubscribe", rp_w.cfg->socket_path);
        subw_error(c, id, id_len, -32601, msg);
        return 1;
    }
    if (!id) /* a notification: nothing to answer, nothing made */
        return 1;
    if (sub)
        subw_subscribe(c, buf, len, call, id, id_len);
    else
        subw_unsubscribe(c, buf, call, id, id_len);
    return 1;
}

/* ---- delivery ---- */

/* Queue one notification for S with RESULT (RLEN bytes, then TAIL). */
static void sub_notify(struct rp_sub *s, const char *result, size_t rlen, const char *tail)
{
    struct rp_conn *c = s->conn;
    if (s->dead || c->closed)
        return;
    if (c->out_len - c->out_off > RP_SUB_UNREAD_MAX_BYTES) {
        rp_info("subscriber does not read its notifications: closing", "fd=%d unsent_bytes=%zu",
                c->ev.fd, c->out_len - c->out_off);
        rp_conn_close(c);
        return;
    }
    struct rp_buf *b = &S.note;
    rp_buf_reset(b);
    rp_buf_appendf(b,
                   "{\"jsonrpc\":\"2.0\",\"method\":\"eth_subscription\",\"params\":{"
                   "\"subscription\":\"%s\",\"result\":",
                   s->id);
    rp_buf_append(b, result, rlen);
    if (tail)
        rp_buf_puts(b, tail);
    rp_buf_append(b, "}}", 2);
    if (rp_buf_failed(b))
        return;
    if (rp_conn_out_append(c, b->data, b->len, 1) == 0)
        rp_conn_queue_flush(c);
    atomic_fetch_add_explicit(&subs_shm()->slots[rp_w.slot].notifications, 1, memory_order_relaxed);
}

/* End S with WHY: an error notification, then the connection closes once
 * its answers are out. */
static void sub_end(struct rp_sub *s, const char *why)
{
    struct rp_conn *c = s->conn;
    rp_info("subscription ended", "id=%s fd=%d reason=\"%s\"", s->id, c->closed ? -1 : c->ev.fd,
            why);
    if (!c->closed) {
        struct rp_buf *b = &S.note;
        rp_buf_reset(b);
        /* an error object with a null id, as rpcpool refuses a client over
         * max_clients: shown by raw clients, ignored by libraries (ethers,
         * viem) that would choke on an eth_subscription without a result;
         * all of them see the close that follows */
        char msg[400];
        snprintf(msg, sizeof msg, "subscription ended: %s", why);
        rp_buf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,\"message\":");
        rp_buf_append_json_str(b, msg);
        rp_buf_appendf(b, ",\"data\":{\"subscription\":\"%s\"}}}", s->id);
        if (!rp_buf_failed(b) && rp_conn_out_append(c, b->data, b->len, 1) == 0) {
            c->close_after_flush = 1; /* closed once its answers are out */
            rp_conn_queue_flush(c);
        }
    }
    atomic_fetch_add_explicit(&subs_shm()->slots[rp_w.slot].ended, 1, memory_order_relaxed);
}

void rp_subw_end_conn(struct rp_conn *c, const char *why)
{
    for (struct rp_sub *s = c->subs; s; s = s->next)
        sub_end(s, why);
    rp_subw_conn_closed(c);
}

/* Every subscription of the worker made before event SEQ ends (WHY).
 * Called while delivering (S.busy). */
static void subw_end_all(uint64_t seq, const char *why)
{
    for (struct rp_sub *s = S.all; s; s = s->wnext) {
        if (s->dead || s->from_seq > seq)
            continue;
        for (struct rp_sub **pp = &s->conn->subs; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        s->dead = 1;
        sub_end(s, why);
    }
}

/* Deliver event EV (payload PL) to subscription S. */
static void sub_deliver(struct rp_sub *s, const struct rp_sub_event *ev, const struct rp_buf *pl)
{
    if (ev->kind == RP_SUB_EV_HEAD) {
        if (s->type == RP_SUB_NEW_HEADS && pl->len)
            sub_notify(s, pl->data, pl->len, NULL);
        return;
    }
    if (s->type != RP_SUB_LOGS || (ev->kind != RP_SUB_EV_LOGS && ev->kind != RP_SUB_EV_REMOVED))
        return;
    const char *tail = ev->kind == RP_SUB_EV_REMOVED ? ",\"removed\":true}" : ",\"removed\":false}";
    size_t off = 0;
    struct rp_log_rec r;
    while (rp_log_rec_next(pl->data, pl->len, &off, &r) == 1)
        if (rp_log_filter_match(&s->filter, r.addr, r.ntopics, r.topics))
            sub_notify(s, r.json, r.json_len, tail);
}

/* Record the latency of event EV (seen by the follower -> written here). */
static void subw_latency(const struct rp_sub_event *ev)
{
    if (!ev->seen_ns)
        return;
    uint64_t now = rp_shm_now_ns(rp_w.shm);
    uint64_t us = now > ev->seen_ns ? (now - ev->seen_ns) / 1000u : 0;
    struct rp_shm_sub_slot *sl = &subs_shm()->slots[rp_w.slot];
    atomic_fetch_add_explicit(&sl->lat_sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&sl->lat_count, 1, memory_order_relaxed);
    if (us > atomic_load_explicit(&sl->lat_max_us, memory_order_relaxed))
        atomic_store_explicit(&sl->lat_max_us, us, memory_order_relaxed);
}

/* Deliver events [FROM, TO) to subscription ONLY (a subscription adopted
 * behind this worker's cursor). Returns -1 when they are gone. */
static int sub_catch_up(struct rp_sub *only, uint64_t from, uint64_t to)
{
    struct rp_sub_event ev;
    for (uint64_t q = from; q < to; q++) {
        if (rp_sub_read(subs_shm(), q, &ev, &S.payload) != RP_SUB_READ_OK)
            return -1;
        if (ev.kind == RP_SUB_EV_END)
            return -1;
        sub_deliver(only, &ev, &S.payload);
    }
    return 0;
}

void rp_subw_pump(void)
{
    if (!S.all || S.busy)
        return;
    struct rp_shm_subs *sh = subs_shm();
    struct rp_sub_event ev;
    S.busy = 1;
    while (S.all && S.cursor < rp_sub_next_seq(sh)) {
        enum rp_sub_read_result r = rp_sub_read(sh, S.cursor, &ev, &S.payload);
        if (r == RP_SUB_READ_NOT_YET)
            break;
        if (r == RP_SUB_READ_LOST) {
            rp_warn("worker fell behind the subscription ring: its subscriptions end", "event=%llu",
                    (unsigned long long)S.cursor);
            subw_end_all(UINT64_MAX, "the worker fell behind the follower's ring");
            S.cursor = rp_sub_next_seq(sh);
            break;
        }
        if (ev.kind == RP_SUB_EV_END) {
            char why[256];
            snprintf(why, sizeof why, "%.*s", (int)S.payload.len,
                     S.payload.data ? S.payload.data : "");
            subw_end_all(ev.seq, why);
        } else {
            int any = 0;
            for (struct rp_sub *s = S.all; s; s = s->wnext)
                if (!s->dead && s->from_seq <= ev.seq) {
                    sub_deliver(s, &ev, &S.payload);
                    any = 1;
                }
            if (any)
                subw_latency(&ev);
        }
        S.cursor++;
    }
    S.busy = 0;
    subw_sweep(); /* connections whose subscriptions ended close once flushed */
}

void rp_subw_head_hint(uint64_t head)
{
    if (head <= S.hinted)
        return;
    struct rp_shm_subs *sh = subs_shm();
    if (head <= atomic_load_explicit(&sh->follower_head, memory_order_relaxed))
        return;
    S.hinted = head;
    if (rp_sub_count(sh, 0) > 0)
        rp_wake_post(rp_w.cfg->shm_name, RP_SHM_FOLLOWER_SLOT);
}

/* ---- handoff ---- */

static int enc(char *out, size_t cap, size_t *off, const void *p, size_t n)
{
    if (*off + n > cap)
        return -1;
    memcpy(out + *off, p, n);
    *off += n;
    return 0;
}

size_t rp_subw_encode(const struct rp_conn *c, char *out, size_t cap)
{
    if (!c->subs)
        return 0;
    size_t off = 0;
    uint32_t n = conn_sub_count(c);
    uint64_t cursor = S.cursor;
    if (enc(out, cap, &off, &n, 4) || enc(out, cap, &off, &cursor, 8))
        return (size_t)-1;
    for (const struct rp_sub *s = c->subs; s; s = s->next) {
        uint32_t hdr[2 + RP_LOG_MAX_TOPICS] = {(uint32_t)s->type, s->filter.naddr};
        uint64_t from = s->from_seq;
        uint32_t npos = s->filter.npos;
        if (enc(out, cap, &off, s->id, RP_SUB_ID_LEN) || enc(out, cap, &off, &from, 8) ||
            enc(out, cap, &off, hdr, 8) || enc(out, cap, &off, &npos, 4) ||
            enc(out, cap, &off, s->filter.nchoice, sizeof s->filter.nchoice) ||
            (s->filter.naddr && enc(out, cap, &off, s->filter.addr, 20u * s->filter.naddr)))
            return (size_t)-1;
        for (int k = 0; k < RP_LOG_MAX_TOPICS; k++)
            if (s->filter.nchoice[k] &&
                enc(out, cap, &off, s->filter.choice[k], 32u * s->filter.nchoice[k]))
                return (size_t)-1;
    }
    return off;
}

static int dec(const char *in, size_t len, size_t *off, void *p, size_t n)
{
    if (*off + n > len)
        return -1;
    memcpy(p, in + *off, n);
    *off += n;
    return 0;
}

/* Decode N*SIZE bytes into a fresh array *P (NULL when N is 0). */
static int dec_alloc(const char *in, size_t len, size_t *off, void **p, size_t n, size_t size)
{
    *p = NULL;
    if (!n)
        return 0;
    if (n > RP_FILTER_MAX_ADDRS || *off + n * size > len)
        return -1;
    *p = malloc(n * size);
    return *p ? dec(in, len, off, *p, n * size) : -1;
}

size_t rp_subw_adopt(struct rp_conn *c, const char *data, size_t len)
{
    size_t off = 0;
    uint32_t n;
    uint64_t cursor;
    if (dec(data, len, &off, &n, 4) || dec(data, len, &off, &cursor, 8))
        return (size_t)-1;
    int lost = 0;
    S.busy = 1; /* a catch-up may close C */
    for (uint32_t i = 0; i < n; i++) {
        struct rp_sub *s = calloc(1, sizeof *s);
        uint32_t hdr[2];
        uint64_t from;
        if (!s)
            goto fail;
        if (dec(data, len, &off, s->id, RP_SUB_ID_LEN) || dec(data, len, &off, &from, 8) ||
            dec(data, len, &off, hdr, 8) || dec(data, len, &off, &s->filter.npos, 4) ||
            dec(data, len, &off, s->filter.nchoice, sizeof s->filter.nchoice) ||
            dec_alloc(data, len, &off, (void **)&s->filter.addr, hdr[1], 20)) {
            rp_log_filter_free(&s->filter);
            free(s);
            goto fail;
        }
        s->filter.naddr = hdr[1];
        s->type = hdr[0] == RP_SUB_LOGS ? RP_SUB_LOGS : RP_SUB_NEW_HEADS;
        int bad = s->filter.npos > RP_LOG_MAX_TOPICS;
        for (int k = 0; !bad && k < RP_LOG_MAX_TOPICS; k++)
            bad = dec_alloc(data, len, &off, (void **)&s->filter.choice[k], s->filter.nchoice[k],
                            32) != 0;
        if (bad) {
            rp_log_filter_free(&s->filter);
            free(s);
            goto fail;
        }
        s->id[RP_SUB_ID_LEN] = '\0';
        /* counted here now (the old worker gave its count back) */
        struct rp_shm_subs *sh = subs_shm();
        _Atomic uint32_t *cell =
            s->type == RP_SUB_LOGS ? &sh->slots[rp_w.slot].logs : &sh->slots[rp_w.slot].heads;
        atomic_store_explicit(cell, atomic_load_explicit(cell, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        int first = S.all == NULL;
        sub_link(c, s);
        uint64_t need = from > cursor ? from : cursor; /* the next event it lacks */
        if (first) {
            S.cursor = need;
            s->from_seq = need;
        } else if (need >= S.cursor) {
            s->from_seq = need;
        } else {
            /* this worker already read past it: catch up alone */
            s->from_seq = S.cursor;
            if (sub_catch_up(s, need, S.cursor) != 0)
                lost = 1;
        }
    }
    if (lost && !c->closed) {
        for (struct rp_sub *s = c->subs; s; s = s->next)
            sub_end(s, "events were lost while the connection moved to another worker");
        rp_subw_conn_closed(c);
    }
    S.busy = 0;
    subw_sweep();
    rp_subw_pump();
    return off;
fail:
    S.busy = 0;
    subw_sweep();
    return (size_t)-1;
}
