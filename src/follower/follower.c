/* follower.c - the head follower (rp_follower.h): one process for the host
 * that finds each new block once and publishes it in the shm ring for every
 * worker's subscribers.
 *
 * The loop: wait for the poll interval, a wake-up from a worker, or a
 * signal; then one step: learn the head (the host's best head when traffic
 * already showed one above ours, else one eth_blockNumber), and deliver
 * every block after the last one delivered up to it, in order. A block is
 * fetched once (eth_getBlockByNumber(n, false)); while any logs
 * subscription exists, its logs are fetched once (eth_getLogs {blockHash}),
 * and the two are published together, so a failed fetch leaves the block to
 * the next step (never half-delivered, never twice).
 *
 * Reorgs: a block whose parent hash is not the last delivered block's hash
 * means the chain moved under us. The follower walks back (fetching the
 * canonical header at each height) to the newest block it delivered that is
 * still canonical (the fork point), publishes the logs of each block after
 * it again as removed (newest first, as geth), forgets them and delivers
 * the new branch from the fork point on. When none of the blocks kept is
 * canonical (a reorg right after a start, or deeper than the 256 blocks
 * kept), all of them are removed and delivery starts again at the oldest
 * one's height.
 *
 * Gaps: after an outage the missed blocks are delivered (at most
 * subscriptions.backfill_blocks of them; the next block alone is never a
 * gap). A longer gap, or a reorg replacing more blocks than that, ends
 * every subscription: an END event, which each
 * worker turns into an error notification and the close of the
 * subscriber's connection (docs/interface.md section 8).
 *
 * Restarts (a death, every reload): the follower rebuilds its recent blocks
 * from the ring itself, so it carries on after the last block published,
 * without a gap or a duplicate.
 *
 * Calls are synchronous (one at a time) on a libcurl multi handle whose
 * wait also watches the signal descriptor: SIGTERM ends a call at once.
 */
#include "rp_follower.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "headfeed.h"
#include "rp_breaker.h"
#include "rp_buf.h"
#include "rp_child.h"
#include "rp_clock.h"
#include "rp_curlhdr.h"
#include "rp_heldsock.h"
#include "rp_hold.h"
#include "rp_log.h"
#include "rp_ratelimit.h"
#include "rp_sub_ring.h"
#include "rp_subjson.h"
#include "rp_wake.h"

#define FOLLOWER_MAX_BODY_BYTES (64u << 20) /* an answer larger than this is a failure */
#define FOLLOWER_KEEP_BLOCKS    256         /* recent blocks kept for reorgs */
#define FOLLOWER_KEEP_LOG_BYTES (32u << 20) /* their logs, at most */
#define FOLLOWER_RETRY_MS       200         /* a failed step is tried again after this */
#define FOLLOWER_IDLE_GRACE_MS  5000        /* no subscription for this long: the follower idles */

/* One endpoint as the follower sees it. */
struct fep {
    const struct rp_endpoint_config *cfg;
    struct rp_shm_endpoint *row;
    struct rp_shm_epstats *stats; /* the follower slot's row for it: its connections */
    struct curl_slist *headers;
};

/* One delivered block, kept for reorgs. */
struct fblock {
    struct rp_block_info bi;
    char *logs; /* its log records (rp_subjson.h); NULL when not fetched or dropped */
    size_t logs_len;
};

static struct {
    const struct rp_config *cfg;
    struct rp_shm_header *shm;
    struct rp_shm_subs *subs;
    struct rp_shm_worker *slot;
    unsigned slot_index;
    struct rp_child child;
    struct rp_ev wake_ev;
    CURLM *multi;
    struct fep eps[RP_MAX_ENDPOINTS];
    int nep;
    unsigned rr;
    uint64_t next_id;
    struct rp_breaker_params breaker;
    struct fblock blocks[FOLLOWER_KEEP_BLOCKS]; /* a ring: oldest at first */
    unsigned first, count;
    size_t log_bytes;
    uint64_t last_poll_ms;
    int woken;
    int last_ep; /* the endpoint that answered the last call */
    /* a block fetched whose delivery waits (its logs could not be fetched
     * yet): not fetched again */
    struct rp_held_socks socks; /* open (counted) sockets */
    int stalled;                /* the last step failed: the next asks through the pool */
    int idle;                   /* no subscriptions: the follower makes no calls */
    uint64_t resume_at; /* with no block kept: deliver from this height (0: from the head) */
    int pool_fd;        /* a client connection to the pool's own socket, -1 when none */
    struct rp_buf pool_in;
    int pend_valid;
    struct rp_block_info pend_bi;
    struct rp_buf pend_hdr;
} F;

static uint64_t f_now_ms(void)
{
    return rp_shm_now_ms(F.shm);
}

/* ---- recent blocks ---- */

static struct fblock *f_block(unsigned i) /* i-th oldest */
{
    return &F.blocks[(F.first + i) % FOLLOWER_KEEP_BLOCKS];
}

static struct fblock *f_last(void)
{
    return F.count ? f_block(F.count - 1) : NULL;
}

static void f_block_clear(struct fblock *b)
{
    F.log_bytes -= b->logs ? b->logs_len : 0;
    free(b->logs);
    memset(b, 0, sizeof *b);
}

static void f_forget_all(void)
{
    F.pend_valid = 0;
    F.resume_at = 0;
    while (F.count) {
        f_block_clear(f_block(0));
        F.first = (F.first + 1) % FOLLOWER_KEEP_BLOCKS;
        F.count--;
    }
}

/* Drop the newest block. */
static void f_pop(void)
{
    F.pend_valid = 0;
    f_block_clear(f_last());
    F.count--;
}

/* Keep BI (and its LOGS, owned now) as the newest delivered block. */
static void f_push(const struct rp_block_info *bi, char *logs, size_t logs_len)
{
    if (F.count == FOLLOWER_KEEP_BLOCKS) {
        f_block_clear(f_block(0));
        F.first = (F.first + 1) % FOLLOWER_KEEP_BLOCKS;
        F.count--;
    }
    struct fblock *b = &F.blocks[(F.first + F.count) % FOLLOWER_KEEP_BLOCKS];
    F.resume_at = 0;
    b->bi = *bi;
    b->logs = logs;
    b->logs_len = logs ? logs_len : 0;
    F.log_bytes += b->logs_len;
    F.count++;
    /* bounded memory: the oldest blocks' logs go first */
    for (unsigned i = 0; F.log_bytes > FOLLOWER_KEEP_LOG_BYTES && i + 1 < F.count; i++)
        if (f_block(i)->logs) {
            F.log_bytes -= f_block(i)->logs_len;
            free(f_block(i)->logs);
            f_block(i)->logs = NULL;
        }
}

/* Rebuild the recent blocks from the ring (a restarted follower). */
static void f_rebuild(void)
{
    uint64_t next = rp_sub_next_seq(F.subs);
    uint64_t from = next > RP_SUB_RING_ENTRIES ? next - RP_SUB_RING_ENTRIES : 0;
    struct rp_buf pl = RP_BUF_INIT;
    struct rp_sub_event ev;
    for (uint64_t s = from; s < next; s++) {
        if (rp_sub_read(F.subs, s, &ev, &pl) != RP_SUB_READ_OK)
            continue;
        if (ev.kind == RP_SUB_EV_END) {
            f_forget_all();
        } else if (ev.kind == RP_SUB_EV_HEAD) {
            while (F.count && f_last()->bi.number >= ev.number)
                f_pop(); /* a reorg replaced them */
            struct rp_block_info bi = {.number = ev.number};
            memcpy(bi.hash, ev.hash, 32);
            memcpy(bi.parent, ev.parent, 32);
            f_push(&bi, NULL, 0);
        } else if (ev.kind == RP_SUB_EV_LOGS && F.count &&
                   memcmp(f_last()->bi.hash, ev.hash, 32) == 0) {
            struct fblock *b = f_last();
            free(b->logs);
            F.log_bytes -= b->logs ? b->logs_len : 0;
            b->logs = malloc(pl.len ? pl.len : 1);
            if (b->logs) {
                if (pl.len)
                    memcpy(b->logs, pl.data, pl.len);
                b->logs_len = pl.len;
                F.log_bytes += pl.len;
            }
        }
    }
    rp_buf_free(&pl);
    if (F.count)
        rp_info("follower resumes after the last block published", "block=%llu events=%llu",
                (unsigned long long)f_last()->bi.number, (unsigned long long)next);
}

/* ---- calls ---- */

static size_t f_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct rp_buf *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > FOLLOWER_MAX_BODY_BYTES)
        return 0;
    return rp_buf_append(b, ptr, n) == 0 ? n : 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: open the socket and count it as an open
 * connection of endpoint CLIENTP held by the follower's slot (the
 * supervisor gives it back if the follower dies), as the prober does. */
static curl_socket_t f_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    struct fep *e = clientp;
    int fd = rp_held_sock_open(&F.socks, &e->stats->conns_open_held, addr->family, addr->socktype,
                               addr->protocol);
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: uncount and close. */
static int f_close_cb(void *clientp, curl_socket_t fd)
{
    (void)clientp;
    rp_held_sock_forget(&F.socks, fd);
    return close(fd);
}

/* May the follower send to E now (MIN_HEAD: the endpoint must be known at
 * that block)? Up, not drained, no Retry-After hold, breaker closed. */
static int f_usable(struct fep *e, uint64_t min_head, uint64_t now_ms)
{
    struct rp_shm_endpoint *row = e->row;
    if (!atomic_load_explicit(&row->in_use, memory_order_acquire) ||
        atomic_load_explicit(&row->drained, memory_order_relaxed) ||
        atomic_load_explicit(&row->state, memory_order_relaxed) != RP_EP_UP)
        return 0;
    if (atomic_load_explicit(&row->hold_until_ms, memory_order_relaxed) > now_ms)
        return 0;
    if (rp_breaker_state_at(atomic_load_explicit(&row->breaker, memory_order_acquire), now_ms) !=
        RP_BREAKER_CLOSED)
        return 0;
    return min_head == 0 ||
           atomic_load_explicit(&row->head_block, memory_order_relaxed) >= min_head;
}

/* The epoll set (signals, the wake socket, the head feeds) is ready while
 * a call runs: handle what it holds without waiting. */
static void f_events_now(void)
{
    struct epoll_event events[8];
    int n = rp_child_wait(&F.child, events, 8, 0);
    if (n > 0)
        rp_ev_dispatch(events, n);
}

/* Between and during calls: the head feeds' timers, a pushed head that
 * wants a step, the heartbeat. */
static void f_feeds_tick(void)
{
    uint64_t now = f_now_ms();
    rp_headfeed_tick(now);
    if (rp_headfeed_take_raised())
        F.woken = 1;
    atomic_store_explicit(&F.slot->heartbeat_ms, now, memory_order_relaxed);
}

/* A wait of at most MAX_MS, shorter when a head feed's timer is due. */
static int f_wait_ms(int max_ms)
{
    uint64_t now = f_now_ms(), next = rp_headfeed_next_ms();
    if (next <= now)
        return 0;
    return next - now < (uint64_t)max_ms ? (int)(next - now) : max_ms;
}

/* Run one transfer on the multi handle until it ends or a stop signal
 * comes. Returns the curl result, or -1 when stopped. */
static int f_perform(CURL *h)
{
    if (curl_multi_add_handle(F.multi, h) != CURLM_OK)
        return CURLE_FAILED_INIT;
    int result = -1;
    while (!rp_child_stop_flag) {
        int running = 0;
        curl_multi_perform(F.multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(F.multi, &left)))
            if (m->msg == CURLMSG_DONE && m->easy_handle == h)
                result = (int)m->data.result;
        if (result >= 0 || !running)
            break;
        struct curl_waitfd w = {.fd = F.child.epfd, .events = CURL_WAIT_POLLIN};
        int nfd = 0;
        curl_multi_poll(F.multi, &w, 1, f_wait_ms(1000), &nfd);
        if (w.revents)
            f_events_now();
        f_feeds_tick();
    }
    curl_multi_remove_handle(F.multi, h);
    if (result < 0 && !rp_child_stop_flag)
        result = CURLE_RECV_ERROR;
    return result;
}

/* Call METHOD with PARAMS (raw JSON array) on a usable endpoint known at
 * MIN_HEAD, trying each once. BODY gets the answer, a JSON-RPC response
 * with a result. Returns 0, -1 when no endpoint answered, -2 when stopped. */
static int f_call(const char *method, const char *params, uint64_t min_head, struct rp_buf *body)
{
    char req[512];
    for (int k = 0; k < F.nep; k++) {
        struct fep *e = &F.eps[(F.rr + (unsigned)k) % (unsigned)F.nep];
        uint64_t now_ms = f_now_ms();
        if (!f_usable(e, min_head, now_ms))
            continue;
        struct rp_gcra_params gp = {.interval_ns = e->row->rl_interval_ns,
                                    .burst = e->row->rl_burst};
        if (gp.interval_ns < 1)
            gp.interval_ns = 1;
        if (gp.burst < 1)
            gp.burst = 1;
        if (rp_gcra_take(&e->row->gcra_tat_ns, &gp, 1, rp_shm_now_ns(F.shm)) != 0)
            continue; /* no token: another endpoint, or the next step */
        struct rp_trial_cells cells = rp_hold_trial_cells(F.shm, e->row->id, F.slot_index);
        struct rp_breaker_ticket t =
            rp_breaker_acquire(&e->row->breaker, &F.breaker, &cells, now_ms);
        if (t.grant != RP_BREAKER_ALLOW) {
            rp_breaker_release(&cells, t); /* never a half-open trial */
            continue;
        }
        F.rr = (F.rr + (unsigned)k + 1) % (unsigned)F.nep;
        snprintf(req, sizeof req,
                 "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"%s\",\"params\":%s}",
                 (unsigned long long)++F.next_id, method, params);
        rp_buf_reset(body);
        CURL *h = curl_easy_init();
        if (!h)
            return -1;
        long to = (long)F.cfg->attempt_timeout_ms;
        curl_easy_setopt(h, CURLOPT_URL, e->cfg->url);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, f_write_cb);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to);
        curl_easy_setopt(
            h, CURLOPT_CONNECTTIMEOUT_MS,
            (long)F.cfg->connection_timeout_ms < to ? (long)F.cfg->connection_timeout_ms : to);
        curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, f_open_cb);
        curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, e);
        curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, f_close_cb);
        curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, NULL);
        const char *ca = e->cfg->tls_ca_file ? e->cfg->tls_ca_file : F.cfg->tls_ca_file;
        if (ca)
            curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        int code = f_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (code < 0) {
            rp_breaker_release(&cells, t);
            return -2;
        }
        /* a section 2 failure: transport, 5xx, 429, not a JSON-RPC answer */
        int failure = code != CURLE_OK || status == 429 || status >= 500 || status < 200 ||
                      !body->len || body->data[0] != '{';
        if (failure) {
            rp_breaker_failure(&e->row->breaker, &F.breaker, &cells, t, f_now_ms());
            atomic_fetch_add_explicit(&F.subs->fetch_failed, 1, memory_order_relaxed);
            rp_debug("follower call failed", "endpoint=%s method=%s curl=%d http=%ld", e->cfg->name,
                     method, code, status);
            continue;
        }
        rp_breaker_success(&e->row->breaker, &cells, t);
        F.last_ep = (int)(e - F.eps);
        if (!strstr(body->data, "\"result\"")) {
            /* a JSON-RPC error object: an answer, but not what we need */
            atomic_fetch_add_explicit(&F.subs->fetch_failed, 1, memory_order_relaxed);
            continue;
        }
        return 0;
    }
    return -1;
}

/* ---- delivery ---- */

/* Wake every worker slot that holds a subscription. */
static void f_wake_workers(void)
{
    unsigned n = atomic_load_explicit(&F.shm->slots_hwm, memory_order_acquire);
    if (n > RP_SHM_AUX_FIRST)
        n = RP_SHM_AUX_FIRST;
    for (unsigned s = 0; s < n; s++)
        if (atomic_load_explicit(&F.subs->slots[s].heads, memory_order_relaxed) ||
            atomic_load_explicit(&F.subs->slots[s].logs, memory_order_relaxed))
            rp_wake_post(F.cfg->shm_name, s);
}

/* Fetch block N's header (into BI, HEADER). Returns 0, 1 when no endpoint
 * has it yet, -1 on failure, -2 when stopped. */
static int f_fetch_block(uint64_t n, struct rp_block_info *bi, struct rp_buf *header)
{
    char params[64];
    snprintf(params, sizeof params, "[\"0x%llx\",false]", (unsigned long long)n);
    struct rp_buf body = RP_BUF_INIT;
    int r = f_call("eth_getBlockByNumber", params, n, &body);
    if (r == 0) {
        atomic_fetch_add_explicit(&F.subs->fetch_headers, 1, memory_order_relaxed);
        rp_buf_reset(header);
        r = rp_subjson_block(body.data, body.len, bi, header);
        if (r == 0 && bi->number != n)
            r = -1;
    }
    rp_buf_free(&body);
    return r;
}

/* Fetch the logs of block HASH as records into OUT. Returns 0, -1, -2. */
static int f_fetch_logs(const uint8_t hash[32], uint64_t number, struct rp_buf *out)
{
    char params[128] = "[{\"blockHash\":\"0x";
    size_t p = strlen(params);
    for (int i = 0; i < 32; i++)
        p += (size_t)snprintf(params + p, sizeof params - p, "%02x", hash[i]);
    snprintf(params + p, sizeof params - p, "\"}]");
    struct rp_buf body = RP_BUF_INIT;
    int r = f_call("eth_getLogs", params, number, &body);
    if (r == 0) {
        atomic_fetch_add_explicit(&F.subs->fetch_logs, 1, memory_order_relaxed);
        rp_buf_reset(out);
        if (rp_subjson_logs(body.data, body.len, hash, out) < 0)
            r = -1;
    }
    rp_buf_free(&body);
    return r;
}

static void f_publish(uint32_t kind, const struct rp_block_info *bi, uint64_t seen_ns,
                      const void *data, size_t len)
{
    if (rp_sub_publish(F.subs, kind, bi->number, bi->hash, bi->parent, seen_ns, data, len) ==
        UINT64_MAX)
        rp_warn("subscription event too large: dropped", "block=%llu bytes=%zu",
                (unsigned long long)bi->number, len);
}

/* End every subscription (WHY), forget the recent blocks. */
static void f_end_all(const char *why)
{
    struct rp_block_info none = {0};
    rp_warn("subscriptions ended", "reason=\"%s\"", why);
    atomic_fetch_add_explicit(&F.subs->gaps, 1, memory_order_relaxed);
    f_publish(RP_SUB_EV_END, &none, 0, why, strlen(why));
    f_forget_all();
    f_wake_workers();
}

/* Publish block BI (with HEADER and, when LOGS_FETCHED, its LOGS records)
 * and keep it. */
static void f_deliver(const struct rp_block_info *bi, const struct rp_buf *header, int logs_fetched,
                      struct rp_buf *logs, uint64_t seen_ns)
{
    f_publish(RP_SUB_EV_HEAD, bi, seen_ns, header->data, header->len);
    char *kept = NULL;
    size_t kept_len = 0;
    if (logs_fetched) {
        f_publish(RP_SUB_EV_LOGS, bi, seen_ns, logs->data, logs->len);
        kept = logs->len ? rp_buf_detach(logs, &kept_len) : malloc(1);
    }
    f_push(bi, kept, kept_len);
    uint64_t now_ns = rp_shm_now_ns(F.shm);
    atomic_store_explicit(&F.subs->follower_head, bi->number, memory_order_relaxed);
    atomic_store_explicit(&F.subs->follower_head_ms, now_ns / 1000000u, memory_order_relaxed);
    atomic_store_explicit(&F.subs->seen_to_publish_us, (now_ns - seen_ns) / 1000u,
                          memory_order_relaxed);
    f_wake_workers();
}

/* The chain changed under the newest delivered blocks: walk back to the
 * newest one still canonical, re-send the logs of those after it as
 * removed, and forget them. Returns 0, or -1 (-2 stopped) when the walk
 * could not finish (tried again next step). */
static int f_unwind(void)
{
    struct rp_buf hdr = RP_BUF_INIT;
    int r = 0;
    unsigned keep = F.count;
    while (keep > 0) {
        struct fblock *b = f_block(keep - 1);
        struct rp_block_info cur;
        r = f_fetch_block(b->bi.number, &cur, &hdr);
        if (r != 0)
            break;
        if (memcmp(cur.hash, b->bi.hash, 32) == 0)
            break; /* the fork point */
        keep--;
    }
    rp_buf_free(&hdr);
    if (r == 1)
        r = -1;
    if (r != 0)
        return r;
    atomic_fetch_add_explicit(&F.subs->reorgs, 1, memory_order_relaxed);
    if (keep == 0) {
        /* none of the blocks kept is canonical (the follower has just
         * started, or the reorg is deeper than it keeps): every one of them
         * is removed, and delivery starts again at the oldest one's height */
        rp_info("reorg below the oldest block kept", "from_block=%llu removed_blocks=%u",
                (unsigned long long)f_block(0)->bi.number, F.count);
        F.resume_at = f_block(0)->bi.number;
    } else {
        rp_info("reorg followed", "fork_block=%llu removed_blocks=%u",
                (unsigned long long)f_block(keep - 1)->bi.number, F.count - keep);
    }
    uint64_t now_ns = rp_shm_now_ns(F.shm);
    while (F.count > keep) {
        struct fblock *b = f_last();
        if (b->logs && b->logs_len)
            f_publish(RP_SUB_EV_REMOVED, &b->bi, now_ns, b->logs, b->logs_len);
        f_pop();
    }
    if (F.count)
        atomic_store_explicit(&F.subs->follower_head, f_last()->bi.number, memory_order_relaxed);
    f_wake_workers();
    return 0;
}

/* ---- the head, asked through the pool ---- */

static void f_pool_close(void)
{
    if (F.pool_fd >= 0)
        close(F.pool_fd);
    F.pool_fd = -1;
    rp_buf_reset(&F.pool_in);
}

/* Ask the pool itself (its client socket, as any client) for the head: the
 * call is routed like any request, so it is what takes a half-open
 * breaker's trial after an outage (the follower's own calls never do) and
 * what teaches the endpoints' heads. Returns 0 with *HEAD, -1, -2. */
static int f_pool_poll(uint64_t *head)
{
    if (F.pool_fd < 0) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(F.cfg->socket_path) >= sizeof sa.sun_path)
            return -1;
        strcpy(sa.sun_path, F.cfg->socket_path);
        F.pool_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (F.pool_fd < 0)
            return -1;
        if (connect(F.pool_fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            f_pool_close();
            return -1;
        }
    }
    char req[128];
    unsigned long long id = ++F.next_id;
    int n = snprintf(req, sizeof req,
                     "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"eth_blockNumber\","
                     "\"params\":[]}\n",
                     id);
    if (send(F.pool_fd, req, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
        f_pool_close();
        return -1;
    }
    char want[40];
    int wl = snprintf(want, sizeof want, "\"id\":%llu,", id);
    uint64_t deadline = f_now_ms() + (uint64_t)F.cfg->request_timeout_ms;
    while (!rp_child_stop_flag) {
        char *nl;
        while ((nl = F.pool_in.len ? memchr(F.pool_in.data, '\n', F.pool_in.len) : NULL)) {
            size_t line = (size_t)(nl - F.pool_in.data);
            int mine = memmem(F.pool_in.data, line, want, (size_t)wl) != NULL;
            int r = mine ? rp_subjson_quantity(F.pool_in.data, line, head) : 1;
            memmove(F.pool_in.data, nl + 1, F.pool_in.len - line - 1);
            F.pool_in.len -= line + 1;
            if (mine)
                return r == 0 ? 0 : -1; /* an error answer (no endpoint): direct next */
        }
        uint64_t now = f_now_ms();
        if (now >= deadline) {
            f_pool_close();
            return -1;
        }
        struct pollfd pf[2] = {{.fd = F.pool_fd, .events = POLLIN},
                               {.fd = F.child.epfd, .events = POLLIN}};
        int wait = f_wait_ms(deadline - now > 1000 ? 1000 : (int)(deadline - now));
        if (poll(pf, 2, wait) < 0 && errno != EINTR) {
            f_pool_close();
            return -1;
        }
        if (pf[1].revents)
            f_events_now();
        f_feeds_tick();
        if (pf[0].revents) {
            char buf[4096];
            ssize_t k = recv(F.pool_fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k <= 0 && !(k < 0 && (errno == EAGAIN || errno == EINTR))) {
                f_pool_close();
                return -1;
            }
            if (k > 0 && (F.pool_in.len + (size_t)k > (1u << 20) ||
                          rp_buf_append(&F.pool_in, buf, (size_t)k) != 0)) {
                f_pool_close();
                return -1;
            }
        }
    }
    return -2;
}

/* Learn the head: the host's best head when traffic showed one above the
 * last delivered block, else one eth_blockNumber. Returns 0 with *HEAD, or
 * -1 / -2. */
static int f_head(uint64_t *head)
{
    uint64_t best = atomic_load_explicit(&F.shm->best_head_block, memory_order_relaxed);
    uint64_t last = F.count ? f_last()->bi.number : 0;
    if (F.count && best > last && !F.stalled) {
        *head = best;
        return 0;
    }
    int r;
    if (F.stalled) {
        /* the last step found no endpoint it may use: ask through the pool
         * (a worker takes a half-open breaker's trial), then hang up */
        r = f_pool_poll(head);
        f_pool_close();
        if (r == 0 || r == -2) {
            if (r == 0)
                atomic_fetch_add_explicit(&F.subs->fetch_polls, 1, memory_order_relaxed);
            return r;
        }
    }
    struct rp_buf body = RP_BUF_INIT;
    r = f_call("eth_blockNumber", "[]", 0, &body);
    if (r == 0) {
        atomic_fetch_add_explicit(&F.subs->fetch_polls, 1, memory_order_relaxed);
        if (rp_subjson_quantity(body.data, body.len, head) != 0) {
            r = -1;
        } else {
            /* the endpoint is at least there now (its row may be older):
             * the block fetches that follow may go to it */
            rp_hold_raise(&F.eps[F.last_ep].row->head_block, *head);
            rp_hold_raise(&F.shm->best_head_block, *head);
        }
    }
    rp_buf_free(&body);
    return r;
}

/* One step: deliver every block up to the head. Returns 0 when caught up,
 * -1 when something failed (try again soon), -2 when stopped. */
static int f_step(void)
{
    uint64_t head;
    int r = f_head(&head);
    if (r != 0)
        return r;
    uint64_t seen_ns = rp_shm_now_ns(F.shm);
    uint64_t seen = atomic_load_explicit(&F.subs->follower_seen, memory_order_relaxed);
    if (head > seen)
        atomic_store_explicit(&F.subs->follower_seen, head, memory_order_relaxed);
    struct rp_buf hdr = RP_BUF_INIT, logs = RP_BUF_INIT;
    uint64_t backfill = (uint64_t)F.cfg->sub_backfill_blocks;
    /* the next block is never a gap (backfill_blocks = 0 still follows) */
    if (F.count && head > f_last()->bi.number + backfill && head > f_last()->bi.number + 1) {
        char why[160];
        snprintf(why, sizeof why,
                 "%llu blocks to catch up, more than subscriptions.backfill_blocks (%llu)",
                 (unsigned long long)(head - f_last()->bi.number), (unsigned long long)backfill);
        f_end_all(why);
    }
    if (!F.count && F.resume_at && head >= F.resume_at && head - F.resume_at >= backfill) {
        char why[160];
        snprintf(why, sizeof why,
                 "a reorg of %llu blocks, more than subscriptions.backfill_blocks (%llu)",
                 (unsigned long long)(head - F.resume_at + 1), (unsigned long long)backfill);
        f_end_all(why);
    }
    uint64_t n = F.count ? f_last()->bi.number + 1 : F.resume_at ? F.resume_at : head;
    int unwinds = 0;
    while (n <= head && !rp_child_stop_flag) {
        struct rp_block_info bi;
        if (F.pend_valid && F.pend_bi.number == n) {
            bi = F.pend_bi;
            rp_buf_reset(&hdr);
            rp_buf_append(&hdr, F.pend_hdr.data, F.pend_hdr.len);
            r = rp_buf_failed(&hdr) ? -1 : 0;
        } else {
            r = f_fetch_block(n, &bi, &hdr);
        }
        F.pend_valid = 0;
        if (r == 1) { /* not there yet on any endpoint we may use */
            r = 0;
            break;
        }
        if (r != 0)
            break;
        struct fblock *last = f_last();
        if (last && memcmp(bi.parent, last->bi.hash, 32) != 0) {
            if (++unwinds > 4 || (r = f_unwind()) != 0)
                break;
            n = F.count ? f_last()->bi.number + 1 : F.resume_at ? F.resume_at : n;
            continue;
        }
        int want_logs = rp_sub_count(F.subs, 1) > 0;
        if (want_logs && (r = f_fetch_logs(bi.hash, bi.number, &logs)) != 0) {
            rp_buf_reset(&F.pend_hdr);
            rp_buf_append(&F.pend_hdr, hdr.data, hdr.len);
            F.pend_bi = bi;
            F.pend_valid = !rp_buf_failed(&F.pend_hdr);
            break;
        }
        f_deliver(&bi, &hdr, want_logs, &logs, seen_ns);
        rp_buf_reset(&logs);
        n++;
    }
    rp_buf_free(&hdr);
    rp_buf_free(&logs);
    return r;
}

/* ---- process ---- */

static void f_on_wake(struct rp_ev *ev, uint32_t events)
{
    (void)events;
    rp_wake_drain(ev->fd);
    F.woken = 1;
}

int rp_follower_wanted(const struct rp_config *cfg)
{
    return (cfg->sub_max_total > 0 && cfg->sub_max_per_connection > 0) || rp_headfeed_wanted(cfg);
}

static int f_setup_endpoints(void)
{
    for (int i = 0; i < F.cfg->endpoint_count; i++) {
        const struct rp_endpoint_config *ec = &F.cfg->endpoints[i];
        struct rp_shm_endpoint *row = rp_shm_find_endpoint(F.shm, ec->url);
        if (!row) {
            rp_error("endpoint has no shm row", "endpoint=%s", ec->name);
            return -1;
        }
        struct fep *e = &F.eps[F.nep++];
        e->cfg = ec;
        e->row = row;
        e->stats = rp_shm_stats(F.shm, F.slot_index, row->id);
        e->headers = rp_curl_json_headers(ec->headers, ec->header_count);
        if (!e->headers)
            return -1;
    }
    return 0;
}

static void f_cleanup(void)
{
    rp_headfeed_cleanup();
    for (int i = 0; i < F.nep; i++)
        curl_slist_free_all(F.eps[i].headers);
    F.nep = 0;
    f_forget_all();
    rp_buf_free(&F.pend_hdr);
    f_pool_close();
    rp_buf_free(&F.pool_in);
    if (F.multi)
        curl_multi_cleanup(F.multi); /* closes (and uncounts) its connections */
    F.multi = NULL;
    curl_global_cleanup();
    rp_held_socks_free(&F.socks);
    if (F.wake_ev.fd >= 0)
        close(F.wake_ev.fd);
    rp_child_cleanup(&F.child);
}

int rp_follower_main(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot)
{
    memset(&F, 0, sizeof F);
    F.cfg = cfg;
    F.shm = shm;
    F.subs = rp_shm_subs(shm);
    F.slot = rp_shm_worker(shm, slot);
    F.slot_index = slot;
    F.wake_ev.fd = -1;
    F.pool_fd = -1;
    F.breaker.failure_threshold = (uint32_t)cfg->cb_failure_threshold;
    F.breaker.recovery_timeout_ms = (uint64_t)cfg->cb_recovery_timeout_ms;
    F.breaker.half_open_max = (uint32_t)cfg->cb_half_open_max_attempts;
    pid_t sup = (pid_t)atomic_load_explicit(&shm->supervisor_pid, memory_order_relaxed);
    if (rp_child_setup(&F.child, sup, 0) != 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(F.multi = curl_multi_init())) {
        rp_error("curl initialisation failed", NULL);
        f_cleanup();
        return 1;
    }
    curl_multi_setopt(F.multi, CURLMOPT_MAXCONNECTS, (long)(cfg->endpoint_count + 1));
    F.wake_ev.fd = rp_wake_open(cfg->shm_name, slot);
    F.wake_ev.handler = f_on_wake;
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &F.wake_ev};
    if (F.wake_ev.fd < 0 || epoll_ctl(F.child.epfd, EPOLL_CTL_ADD, F.wake_ev.fd, &wev) != 0) {
        rp_error("follower cannot open its wake socket", "error=\"%s\"", strerror(errno));
        f_cleanup();
        return 1;
    }
    if (f_setup_endpoints() != 0 || rp_headfeed_init(cfg, shm, F.child.epfd) != 0) {
        f_cleanup();
        return 1;
    }
    f_rebuild();
    atomic_store_explicit(&F.slot->generation,
                          atomic_load_explicit(&shm->generation, memory_order_acquire),
                          memory_order_relaxed);
    atomic_store_explicit(&F.slot->state, RP_WORKER_RUNNING, memory_order_relaxed);
    uint64_t interval = (uint64_t)cfg->sub_poll_interval_ms;
    rp_info("follower started", "slot=%u endpoints=%d poll_interval_ms=%llu backfill_blocks=%lld",
            slot, F.nep, (unsigned long long)interval, (long long)cfg->sub_backfill_blocks);
    uint64_t due = 0;        /* the first step runs at once */
    uint64_t zero_since = 0; /* since when no subscription exists (0: some do) */
    uint64_t grace = interval * 3 > FOLLOWER_IDLE_GRACE_MS ? interval * 3 : FOLLOWER_IDLE_GRACE_MS;
    struct epoll_event events[8];
    while (!rp_child_stop_flag) {
        /* the head feeds run whether or not anyone subscribed (the cache
         * uses them); only the polling below idles */
        f_feeds_tick();
        uint64_t now = f_now_ms();
        int none = rp_sub_count(F.subs, 0) == 0;
        if (!none)
            zero_since = 0;
        else if (!zero_since)
            zero_since = now;
        /* nobody subscribed (for the grace period: a reload hands every
         * subscription from old workers to new ones, and the count passes
         * through 0 on the way) or nothing delivered yet: no calls at all;
         * the first subscription wakes us. What was delivered before is
         * stale by then: start again at the head (without ending anything) */
        if ((now >= due || F.woken) && none && (!F.count || now - zero_since >= grace)) {
            F.woken = 0;
            if (!F.idle)
                rp_debug("follower idle: no subscriptions", NULL);
            F.idle = 1;
            due = now + interval;
            continue;
        }
        if (now >= due || F.woken) {
            F.woken = 0;
            if (F.idle) {
                F.idle = 0;
                f_forget_all();
                F.stalled = 0;
            }
            int r = f_step();
            /* a failed step (no endpoint with a closed breaker, say) asks
             * the pool next: a worker then takes the half-open trial */
            F.stalled = r == -1;
            now = f_now_ms();
            due = now + (r == -1 && FOLLOWER_RETRY_MS < interval ? FOLLOWER_RETRY_MS : interval);
            continue;
        }
        uint64_t wait = due - now;
        int n = rp_child_wait(&F.child, events, 8, f_wait_ms(wait > 1000 ? 1000 : (int)wait));
        if (n < 0)
            break;
        rp_ev_dispatch(events, n);
        rp_child_bury(&F.child);
    }
    rp_info("follower stopped", "slot=%u", slot);
    f_cleanup();
    return 0;
}
