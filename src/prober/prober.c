/* prober.c - the prober process: one for the host, forked and supervised
 * like a worker (slot RP_SHM_MAX_WORKERS-1). It probes every configured
 * endpoint each health_check_interval_ms and publishes each endpoint's state
 * in its shm row; workers send only to rows whose state is RP_EP_UP.
 *
 * One epoll loop drives its own libcurl multi handle (socket and timer
 * callbacks on the loop; the only curl-multi glue of the daemon: workers
 * use the native client). The process scaffold is rp_child.h. A probe
 * round of an endpoint is:
 *   - the health probe: a JSON-RPC POST of health_check_method, or an HTTP
 *     GET of URL + health_check_path (2xx = ok);
 *   - eth_chainId, when a chain check is due (at start, i.e. also after each
 *     reload since the prober is restarted then, and when the endpoint comes
 *     back up);
 *   - eth_blockNumber, for the head block, unless the health probe was
 *     eth_blockNumber itself.
 * Each call takes a token from the endpoint's GCRA like any request; a round
 * whose health probe finds no token is skipped (not a failure). Rounds run on
 * a fixed cadence from the schedule (not from completion), and each call is
 * bounded by min(attempt_timeout_ms, interval). An endpoint's calls run one
 * after the other (the health probe first), on one connection.
 *
 * The decisions (hysteresis, quarantine, lag, the published state) are the
 * pure functions of health.c; this file does the I/O and the logging.
 *
 * The prober's own connections follow the pool's rules: at most one per
 * endpoint (the workers split the rest of max_connections, see
 * rp_worker_conn_pool()), counted in conns_open through the prober's own
 * slot like a worker's, closed once idle_timeout_ms passed with no probe
 * running, and not kept at all when the next round is further away than
 * that.
 */
#include "rp_prober.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "rp_buf.h"
#include "rp_child.h"
#include "rp_curlhdr.h"
#include "rp_fleet.h"
#include "rp_health.h"
#include "rp_heldsock.h"
#include "rp_hold.h"
#include "rp_jsonrpc.h"
#include "rp_log.h"
#include "rp_ratelimit.h"
#include "rp_seqlock.h"
#include "rp_shm_view.h"
#include "rp_timer.h"

#define PROBER_MAX_BODY_BYTES (1u << 20) /* a bigger probe answer is a failure */
#define PROBER_LOOP_CAP_MS    1000       /* heartbeat cadence when nothing is due */
#define PROBER_NAME_Q         (RP_NAME_MAX * 2 + 3)

enum call_kind {
    CALL_HEALTH = 0, /* health_check method or path */
    CALL_CHAIN = 1,  /* eth_chainId */
    CALL_HEAD = 2,   /* eth_blockNumber when the health probe is something else */
    CALL_KINDS = 3,
};

static const char *const call_method[CALL_KINDS] = {NULL, "eth_chainId", "eth_blockNumber"};

struct pep;

/* One probe request in flight. */
struct pcall {
    struct pep *ep;
    enum call_kind kind;
    CURL *easy;
    uint64_t id;        /* JSON-RPC id sent */
    char *req;          /* POST body, owned; NULL for a GET */
    struct rp_buf body; /* the answer */
    int too_large;
    char errbuf[CURL_ERROR_SIZE]; /* curl's detailed message (TLS failures name why) */
};

/* One configured endpoint as the prober sees it. */
struct pep {
    int index; /* into P.eps and P.hs */
    const struct rp_endpoint_config *cfg;
    struct rp_shm_endpoint *row;
    struct rp_shm_epstats *stats; /* the prober slot's row for it: its connections */
    struct curl_slist *headers;   /* Content-Type and the endpoint's own headers */
    char *get_url;                /* URL + health_check_path, owned; NULL in method mode */
    char name[PROBER_NAME_Q];     /* the name as a logfmt value */
    struct pcall *calls[CALL_KINDS];
    unsigned queued;            /* kinds (bits) waiting for the call in flight to end */
    struct rp_timer round;      /* next probe round */
    uint64_t due_ms;            /* when that round is due (segment clock) */
    enum rp_ep_state published; /* last state written to the row */
    uint64_t head_published;    /* last head the prober wrote to the row */
    char error[96];             /* why the last probe failed */
    int chain_unknown_logged;
};

/* Per curl socket: its epoll registration, the epoll data of its fd.
 * Handling one event may make curl close another socket of the same epoll
 * batch: its record is then freed at the end of the loop turn
 * (rp_child_defer_free()), and its events left in the batch are skipped. */
struct psock {
    struct rp_ev ev; /* handler prober_on_sock, fd the socket */
    uint32_t events;
};

static struct {
    const struct rp_config *cfg;
    struct rp_shm_header *shm;
    struct rp_shm_worker *slot;
    int epfd;              /* child.epfd */
    struct rp_child child; /* the process scaffold: signals, epoll set, deferred frees */
    CURLM *multi;
    struct rp_timer curl_timer;
    struct rp_timer_heap timers;
    struct pep eps[RP_MAX_ENDPOINTS];
    struct rp_health hs[RP_MAX_ENDPOINTS]; /* parallel to eps, as health.c wants */
    int nep;
    uint64_t interval_ms;
    long call_timeout_ms;
    int64_t first_chain_id; /* first chain id any endpoint answered */
    uint64_t next_id;
    uint64_t best_head;
    uint64_t best_published; /* last best head the prober wrote to the header */
    unsigned slot_index;
    unsigned calls_running;     /* transfers in the multi handle */
    struct rp_timer idle_timer; /* idle_timeout_ms after the last one ended */
    struct rp_held_socks socks; /* open (counted) sockets */
    unsigned conns_open;
} P;

static uint64_t prober_now_ms(void)
{
    return rp_shm_now_ms(P.shm);
}

/* NAME as a logfmt value: bare when it needs no quoting, else quoted. */
static void prober_name_value(char *out, size_t outlen, const char *name)
{
    int plain = *name != '\0';
    for (const char *s = name; *s; s++)
        if (*s <= ' ' || *s == '"' || *s == '=' || *s == '\\' || *s == 0x7f)
            plain = 0;
    if (plain)
        snprintf(out, outlen, "%s", name);
    else
        rp_log_quote(out, outlen, name);
}

/* ---- curl plumbing ---- */

/* Register S in epoll for EVENTS with OP, falling back to the other
 * operation when the kernel's view differs (a reused fd number): no
 * socket is ever left unwatched because an epoll_ctl failed. */
static void prober_watch(struct psock *ps, uint32_t events, int op)
{
    curl_socket_t s = ps->ev.fd;
    struct epoll_event ev = {.events = events, .data.ptr = ps};
    if (epoll_ctl(P.epfd, op, s, &ev) == 0)
        return;
    if (errno == EEXIST || errno == ENOENT) {
        int other = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if (epoll_ctl(P.epfd, other, s, &ev) == 0)
            return;
    }
    rp_warn("prober: cannot watch a socket", "error=\"%s\"", strerror(errno));
}

/* An epoll event on curl socket EV: hand it to curl. */
static void prober_on_sock(struct rp_ev *ev, uint32_t events)
{
    int mask = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(P.multi, ev->fd, mask, &running);
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in a socket into epoll;
 * CURL_POLL_REMOVE forgets the record (curl may close the fd next). */
static int prober_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    struct psock *ps = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ps) {
            epoll_ctl(P.epfd, EPOLL_CTL_DEL, s, NULL);
            rp_child_defer_free(&P.child, ps);
            curl_multi_assign(P.multi, s, NULL);
        }
        return 0;
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN)
        events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        events |= EPOLLOUT;
    if (!ps) {
        ps = calloc(1, sizeof *ps);
        if (!ps)
            return -1;
        ps->ev.handler = prober_on_sock;
        ps->ev.fd = s;
        ps->events = events;
        prober_watch(ps, events, EPOLL_CTL_ADD);
        curl_multi_assign(P.multi, s, ps);
    } else if (ps->events != events) {
        ps->events = events;
        prober_watch(ps, events, EPOLL_CTL_MOD);
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: acted on from the loop, never from in here. */
static int prober_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    (void)userp;
    return rp_timer_set(&P.timers, &P.curl_timer, prober_now_ms(), timeout_ms);
}

/* CURLOPT_OPENSOCKETFUNCTION: open the socket and count it as an open
 * connection of endpoint CLIENTP, held by the prober's slot (the supervisor
 * gives it back if the prober dies). */
static curl_socket_t prober_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    struct pep *e = clientp;
    int fd = rp_held_sock_open(&P.socks, &e->stats->conns_open_held, addr->family, addr->socktype,
                               addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    P.conns_open++;
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: uncount, leave epoll before the fd number
 * can be reused, close. */
static int prober_close_cb(void *clientp, curl_socket_t fd)
{
    (void)clientp;
    if (rp_held_sock_forget(&P.socks, fd))
        P.conns_open--;
    epoll_ctl(P.epfd, EPOLL_CTL_DEL, fd, NULL);
    return close(fd);
}

/* CURLOPT_WRITEFUNCTION: collect the answer, up to PROBER_MAX_BODY_BYTES. */
static size_t prober_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct pcall *c = userdata;
    size_t n = size * nmemb;
    if (c->body.len + n > PROBER_MAX_BODY_BYTES) {
        c->too_large = 1;
        return 0;
    }
    return rp_buf_append(&c->body, ptr, n) == 0 ? n : 0;
}

/* Detach and free a call (finished or aborted). The last one to end
 * starts the idle clock of the prober's connections. */
static void call_free(struct pcall *c)
{
    if (c->easy) {
        curl_multi_remove_handle(P.multi, c->easy);
        curl_easy_cleanup(c->easy);
        if (--P.calls_running == 0 && !rp_child_stop_flag)
            rp_timer_arm(&P.timers, &P.idle_timer,
                         prober_now_ms() + (uint64_t)P.cfg->idle_timeout_ms);
    }
    if (c->ep && c->ep->calls[c->kind] == c)
        c->ep->calls[c->kind] = NULL;
    rp_buf_free(&c->body);
    free(c->req);
    free(c);
}

/* Take one token from E's rate limit at the segment clock. Returns 1 when
 * granted. */
static int prober_take_token(struct pep *e)
{
    struct rp_gcra_params gp = {.interval_ns = e->row->rl_interval_ns, .burst = e->row->rl_burst};
    if (gp.interval_ns < 1)
        gp.interval_ns = 1;
    if (gp.burst < 1)
        gp.burst = 1;
    if (P.cfg->fleet_redis) /* fleet mode: leased tokens (rp_fleet.h) */
        return rp_fleet_take(rp_shm_fleet_of(P.shm), e->row->id, &e->row->gcra_tat_ns, &gp, 1,
                             rp_shm_now_ns(P.shm)) == 0;
    return rp_gcra_take(&e->row->gcra_tat_ns, &gp, 1, rp_shm_now_ns(P.shm)) == 0;
}

/* Start call KIND on E (the caller took its token). Returns 0, or -1 when
 * the call could not be set up. */
static int call_start(struct pep *e, enum call_kind kind)
{
    struct pcall *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->ep = e;
    c->kind = kind;
    c->id = ++P.next_id;
    rp_buf_init(&c->body);
    int get = kind == CALL_HEALTH && e->get_url;
    if (!get) {
        const char *m = kind == CALL_HEALTH ? P.cfg->health_check_method : call_method[kind];
        char esc[256];
        size_t n = rp_json_escape(esc, sizeof esc, m, strlen(m));
        if (n >= sizeof esc) {
            free(c);
            return -1;
        }
        size_t cap = n + 96;
        c->req = malloc(cap);
        if (!c->req) {
            free(c);
            return -1;
        }
        snprintf(c->req, cap, "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"%s\",\"params\":[]}",
                 (unsigned long long)c->id, esc);
    }
    c->easy = curl_easy_init();
    if (!c->easy) {
        call_free(c);
        return -1;
    }
    CURL *h = c->easy;
    curl_easy_setopt(h, CURLOPT_URL, get ? e->get_url : e->cfg->url);
    if (get) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->req);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->req));
    }
    long connect_ms = (long)P.cfg->connection_timeout_ms < P.call_timeout_ms
                          ? (long)P.cfg->connection_timeout_ms
                          : P.call_timeout_ms;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, prober_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_PRIVATE, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, P.call_timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* a connection that would wait longer than idle_timeout_ms for the
     * next round is not kept at all */
    if (P.interval_ms > (uint64_t)P.cfg->idle_timeout_ms)
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, prober_open_cb);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, e);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, prober_close_cb);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    /* certificates and host names are always verified (curl's default);
     * tls_ca_file replaces the system store */
    const char *ca = e->cfg->tls_ca_file ? e->cfg->tls_ca_file : P.cfg->tls_ca_file;
    if (ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (curl_multi_add_handle(P.multi, h) != CURLM_OK) {
        curl_easy_cleanup(h);
        c->easy = NULL;
        call_free(c);
        return -1;
    }
    P.calls_running++;
    rp_timer_cancel(&P.timers, &P.idle_timer);
    e->calls[kind] = c;
    return 0;
}

/* Take a token and start call KIND on E unless one is already in flight.
 * Returns 1 when started. */
static int call_try(struct pep *e, enum call_kind kind)
{
    if (e->calls[kind])
        return 0;
    if (!prober_take_token(e)) {
        rp_debug("probe call skipped: no rate-limit token", "endpoint=%s method=%s", e->name,
                 kind == CALL_HEALTH ? (e->get_url ? "GET" : P.cfg->health_check_method)
                                     : call_method[kind]);
        return 0;
    }
    if (call_start(e, kind) != 0) {
        rp_warn("probe call could not start", "endpoint=%s", e->name);
        return 0;
    }
    return 1;
}

/* ---- publishing ---- */

/* Log E's move from state OLD to NEW. */
static void prober_log_change(struct pep *e, enum rp_ep_state old, enum rp_ep_state now)
{
    const struct rp_health *h = &P.hs[e->index];
    char err[sizeof e->error + 8];
    switch (now) {
    case RP_EP_DOWN:
        if (!h->up)
            rp_warn("endpoint down", "endpoint=%s failures=%u error=%s", e->name, h->failures,
                    rp_log_quote(err, sizeof err, e->error));
        else
            rp_info("endpoint answering again: checking its chain id", "endpoint=%s successes=%u",
                    e->name, h->successes);
        break;
    case RP_EP_QUARANTINED:
        rp_warn("endpoint quarantined: wrong chain",
                "endpoint=%s expected_chain_id=%lld chain_id=%lld", e->name,
                (long long)rp_health_expected_chain(P.cfg->chain_id, P.first_chain_id),
                (long long)h->chain_id);
        break;
    case RP_EP_LAGGING:
        rp_warn("endpoint lagging",
                "endpoint=%s head_block=%llu best_head_block=%llu lag=%llu "
                "max_block_lag=%lld",
                e->name, (unsigned long long)h->head_block, (unsigned long long)P.best_head,
                (unsigned long long)(P.best_head - h->head_block), (long long)P.cfg->max_block_lag);
        break;
    case RP_EP_UP:
        if (old == RP_EP_LAGGING)
            rp_info("endpoint caught up", "endpoint=%s head_block=%llu best_head_block=%llu",
                    e->name, (unsigned long long)h->head_block, (unsigned long long)P.best_head);
        else if (old == RP_EP_QUARANTINED)
            rp_info("endpoint chain ok: quarantine lifted", "endpoint=%s chain_id=%lld", e->name,
                    (long long)h->chain_id);
        else
            rp_info("endpoint up", "endpoint=%s successes=%u chain_id=%lld", e->name, h->successes,
                    (long long)h->chain_id);
        break;
    default:
        break;
    }
}

/* Publish HEAD in the shared word W, whose last value from the prober was
 * *PUBLISHED. Workers only raise W (from the block numbers their answers
 * show): a W above *PUBLISHED is newer than the probe and is kept (raised to
 * HEAD by CAS); otherwise the probe is the truth and may lower it (a node
 * that was reset or replaced behind its URL is seen behind again). */
static void prober_store_head(_Atomic uint64_t *w, uint64_t *published, uint64_t head)
{
    if (atomic_load_explicit(w, memory_order_relaxed) > *published) {
        rp_hold_raise(w, head); /* a worker raised it since: the higher one stays */
    } else {
        atomic_store_explicit(w, head, memory_order_relaxed);
    }
    *published = atomic_load_explicit(w, memory_order_relaxed);
}

/* Recompute lag and every endpoint's state, write them to shm (relaxed
 * stores) and log each change. A head a worker learned from traffic since
 * the last publication is newer than the probe's: lag is judged on it. */
static void prober_publish(void)
{
    for (int i = 0; i < P.nep; i++) {
        uint64_t seen = atomic_load_explicit(&P.eps[i].row->head_block, memory_order_relaxed);
        if (seen > P.eps[i].head_published && seen > P.hs[i].head_block)
            rp_health_set_head(&P.hs[i], seen);
    }
    P.best_head = rp_health_update_lag(P.hs, (size_t)P.nep, (uint64_t)P.cfg->max_block_lag);
    prober_store_head(&P.shm->best_head_block, &P.best_published, P.best_head);
    for (int i = 0; i < P.nep; i++) {
        struct pep *e = &P.eps[i];
        const struct rp_health *h = &P.hs[i];
        struct rp_shm_endpoint *row = e->row;
        atomic_store_explicit(&row->health_ok, h->up ? 1u : 0u, memory_order_relaxed);
        atomic_store_explicit(&row->probe_successes, h->successes, memory_order_relaxed);
        atomic_store_explicit(&row->probe_failures, h->failures, memory_order_relaxed);
        if (h->last_probe_ms)
            atomic_store_explicit(&row->last_probe_ms, h->last_probe_ms, memory_order_relaxed);
        if (h->head_known)
            prober_store_head(&row->head_block, &e->head_published, h->head_block);
        atomic_store_explicit(&row->chain_id, h->chain_id, memory_order_relaxed);
        enum rp_ep_state st = rp_health_state(h);
        if (st != e->published) {
            atomic_store_explicit(&row->state, (uint32_t)st, memory_order_relaxed);
            prober_log_change(e, e->published, st);
            e->published = st;
        }
    }
}

/* ---- results ---- */

/* Why a finished call got no HTTP answer to read (curl's generic text,
 * which names no URL path), or NULL when it got one. */
static const char *call_transport_error(const struct pcall *c, CURLcode code)
{
    if (c->too_large)
        return "answer too large";
    /* a refused certificate: curl's own text says why (it names the
     * host, never the URL's path) */
    if ((code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CONNECT_ERROR ||
         code == CURLE_SSL_CACERT_BADFILE) &&
        c->errbuf[0])
        return c->errbuf;
    if (code != CURLE_OK)
        return curl_easy_strerror(code);
    return NULL;
}

/* Publish E's last probe error WHY ("" for none) in its row, inside the
 * row's error seqlock (the prober is its only writer). An odd sequence is a
 * prober killed in the middle of a write: rewritten even when the text
 * looks the same, so readers see it again. */
static void prober_publish_error(struct pep *e, const char *why)
{
    struct rp_shm_endpoint *row = e->row;
    uint64_t seq = atomic_load_explicit(&row->last_error_seq, memory_order_relaxed);
    if (!(seq & 1) && strncmp(row->last_error, why, sizeof row->last_error) == 0)
        return;
    rp_seq_write_str(&row->last_error_seq, row->last_error, sizeof row->last_error, why);
}

/* The health probe of E finished: OK or not, with WHY when not. */
static void health_done(struct pep *e, int ok, const char *why)
{
    struct rp_health *h = &P.hs[e->index];
    prober_publish_error(e, ok ? "" : why);
    if (!ok) {
        snprintf(e->error, sizeof e->error, "%s", why);
        rp_debug("probe failed", "endpoint=%s error=\"%s\" failures=%u", e->name, why,
                 h->failures + 1);
    }
    enum rp_health_change ch = rp_health_record(h, ok, prober_now_ms());
    if (ch == RP_HEALTH_CAME_UP && !e->calls[CALL_CHAIN])
        e->queued |= 1u << CALL_CHAIN; /* held out until it answers */
}

/* Start the next call queued for E unless one is in flight: an endpoint's
 * calls go one after the other, so the prober holds one connection to it
 * (and a queued call's timeout does not run while it waits). */
static void pep_run_queue(struct pep *e)
{
    for (int k = 0; k < CALL_KINDS; k++)
        if (e->calls[k])
            return;
    while (e->queued) {
        int k = __builtin_ctz(e->queued);
        e->queued &= ~(1u << k);
        if (call_try(e, (enum call_kind)k))
            return;
        if (k == CALL_HEALTH) /* no token: the round is skipped, not counted */
            e->queued &= ~((1u << CALL_CHAIN) | (1u << CALL_HEAD));
    }
}

/* Handle one finished call C with curl result CODE. */
static void call_done(struct pcall *c, CURLcode code)
{
    struct pep *e = c->ep;
    struct rp_health *h = &P.hs[e->index];
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *terr = call_transport_error(c, code);
    int http_ok = !terr && status >= 200 && status < 300;
    struct rp_reply rep = {0};
    if (http_ok && c->req)
        rp_health_parse_reply(c->body.data ? c->body.data : "", c->body.len, c->id, &rep);
    char statusbuf[32];
    snprintf(statusbuf, sizeof statusbuf, "HTTP %ld", status);

    switch (c->kind) {
    case CALL_HEALTH:
        if (terr)
            health_done(e, 0, terr);
        else if (!http_ok)
            health_done(e, 0, statusbuf);
        else if (!c->req) /* GET: any 2xx is healthy */
            health_done(e, 1, NULL);
        else if (rep.kind == RP_REPLY_INVALID)
            health_done(e, 0, "not a JSON-RPC response");
        else if (rep.kind == RP_REPLY_ERROR)
            health_done(e, 0, "JSON-RPC error object");
        else {
            if (strcmp(P.cfg->health_check_method, "eth_blockNumber") == 0) {
                if (rep.has_quantity)
                    rp_health_set_head(h, rep.quantity);
                else
                    rp_health_clear_head(h);
            }
            health_done(e, 1, NULL);
        }
        break;
    case CALL_CHAIN:
        if (rep.kind == RP_REPLY_RESULT && rep.has_quantity) {
            int64_t cid = (int64_t)rep.quantity;
            if (P.cfg->chain_id == 0 && P.first_chain_id == 0 && cid != 0) {
                P.first_chain_id = cid;
                rp_info("expected chain id taken from the first endpoint that answered",
                        "endpoint=%s chain_id=%lld", e->name, (long long)cid);
            }
            rp_health_chain_result(h, cid,
                                   rp_health_expected_chain(P.cfg->chain_id, P.first_chain_id));
        } else if (rep.kind == RP_REPLY_ERROR || rep.kind == RP_REPLY_RESULT ||
                   (e->get_url && !terr && status != 429 && status < 500)) {
            /* it answers but will not tell (or, behind an HTTP GET probe,
             * does not speak JSON-RPC): taken as it is */
            if (!e->chain_unknown_logged)
                rp_info("endpoint does not report its chain id; not checked", "endpoint=%s",
                        e->name);
            e->chain_unknown_logged = 1;
            rp_health_chain_result(h, 0, 0);
        } else {
            rp_debug("chain check failed; retried next round", "endpoint=%s error=\"%s\"", e->name,
                     terr      ? terr
                     : http_ok ? "not a JSON-RPC response"
                               : statusbuf);
        }
        break;
    case CALL_HEAD:
        if (rep.kind == RP_REPLY_RESULT && rep.has_quantity)
            rp_health_set_head(h, rep.quantity);
        else if (!terr) /* answers, but no head: lag is not judged */
            rp_health_clear_head(h);
        break;
    default:
        break;
    }
    call_free(c);
}

/* Collect every finished transfer. */
static void prober_check_done(void)
{
    CURLMsg *msg;
    int left, any = 0;
    while ((msg = curl_multi_info_read(P.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct pcall *c = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode code = msg->data.result;
        if (c) {
            struct pep *e = c->ep;
            call_done(c, code);
            pep_run_queue(e);
            any = 1;
        }
    }
    if (any)
        prober_publish();
}

static void prober_curl_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    int running;
    curl_multi_socket_action(P.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    prober_check_done();
}

/* A fresh multi handle with the prober's callbacks, keeping at most one
 * idle connection per endpoint. Returns 0, or -1 when libcurl could not
 * make one. */
static int prober_multi_new(void)
{
    P.multi = curl_multi_init();
    if (!P.multi)
        return -1;
    curl_multi_setopt(P.multi, CURLMOPT_SOCKETFUNCTION, prober_socket_cb);
    curl_multi_setopt(P.multi, CURLMOPT_TIMERFUNCTION, prober_timer_cb);
    curl_multi_setopt(P.multi, CURLMOPT_MAXCONNECTS, (long)(P.cfg->endpoint_count + 1));
    return 0;
}

/* No probe ran for idle_timeout_ms: close the connections libcurl keeps
 * for the next round (it has no call for that, so the multi handle, which
 * holds nothing else then, is made afresh). */
static void prober_idle_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    if (P.calls_running || P.conns_open == 0)
        return;
    rp_debug("prober connections idle for idle_timeout_ms: closing", "connections=%u",
             P.conns_open);
    rp_timer_cancel(&P.timers, &P.curl_timer);
    curl_multi_cleanup(P.multi);
    P.multi = NULL;
    if (prober_multi_new() != 0) {
        rp_error("curl initialisation failed", NULL);
        rp_child_stop_flag = 1;
    }
}

/* ---- rounds ---- */

/* A probe round of endpoint ARG is due: schedule the next one on the fixed
 * cadence, then send the health probe and whatever checks are due. */
static void prober_round(struct rp_timer *t, void *arg)
{
    struct pep *e = arg;
    struct rp_health *h = &P.hs[e->index];
    uint64_t now = prober_now_ms();
    e->due_ms += P.interval_ms;
    if (e->due_ms <= now) /* fell more than a round behind: skip, keep the phase */
        e->due_ms += ((now - e->due_ms) / P.interval_ms + 1) * P.interval_ms;
    rp_timer_arm(&P.timers, t, e->due_ms);

    if (e->calls[CALL_HEALTH]) { /* still running after a whole interval: a failure */
        call_free(e->calls[CALL_HEALTH]);
        health_done(e, 0, "probe overran the interval");
        prober_publish();
    }
    /* the health probe first, then the checks due; a check of the last
     * round still running goes on (its own timeout bounds it) */
    e->queued |= 1u << CALL_HEALTH;
    if (h->chain_pending)
        e->queued |= 1u << CALL_CHAIN;
    if (e->get_url || strcmp(P.cfg->health_check_method, "eth_blockNumber") != 0)
        e->queued |= 1u << CALL_HEAD;
    pep_run_queue(e);
}

/* ---- set-up ---- */

/* Match the configured endpoints to their shm rows (by URL key, as the
 * workers do) and seed each one's health from its row. */
static int prober_setup_endpoints(void)
{
    const struct rp_config *cfg = P.cfg;
    uint64_t now = prober_now_ms();
    for (int i = 0; i < cfg->endpoint_count; i++) {
        const struct rp_endpoint_config *ec = &cfg->endpoints[i];
        struct rp_shm_endpoint *row = rp_shm_find_endpoint(P.shm, ec->url);
        if (!row) {
            rp_error("endpoint has no shm row", "endpoint=%s", ec->name);
            return -1;
        }
        struct pep *e = &P.eps[P.nep];
        memset(e, 0, sizeof *e);
        e->index = P.nep;
        e->cfg = ec;
        e->row = row;
        e->stats = rp_shm_stats(P.shm, P.slot_index, row->id);
        prober_name_value(e->name, sizeof e->name, ec->name);
        e->headers = rp_curl_json_headers(ec->headers, ec->header_count);
        if (!e->headers)
            return -1;
        if (cfg->health_check_path) {
            const char *path = cfg->health_check_path;
            size_t ulen = strlen(ec->url);
            if (ulen && ec->url[ulen - 1] == '/' && path[0] == '/')
                ulen--;
            size_t cap = ulen + strlen(path) + 2;
            e->get_url = malloc(cap);
            if (!e->get_url)
                return -1;
            snprintf(e->get_url, cap, "%.*s%s%s", (int)ulen, ec->url, path[0] == '/' ? "" : "/",
                     path);
        }
        enum rp_ep_state st =
            (enum rp_ep_state)atomic_load_explicit(&row->state, memory_order_relaxed);
        if (st == RP_EP_DRAINED)
            st = RP_EP_UP;
        struct rp_health *h = &P.hs[P.nep];
        rp_health_init(h, st, atomic_load_explicit(&row->probe_successes, memory_order_relaxed),
                       atomic_load_explicit(&row->probe_failures, memory_order_relaxed));
        uint64_t head = atomic_load_explicit(&row->head_block, memory_order_relaxed);
        if (head)
            rp_health_set_head(h, head);
        e->head_published = head;
        e->published = st;
        rp_timer_init(&e->round, prober_round, e);
        e->due_ms = now;
        P.nep++;
    }
    P.best_published = atomic_load_explicit(&P.shm->best_head_block, memory_order_relaxed);
    return 0;
}

static void prober_cleanup(void)
{
    for (int i = 0; i < P.nep; i++) {
        struct pep *e = &P.eps[i];
        for (int k = 0; k < CALL_KINDS; k++)
            if (e->calls[k])
                call_free(e->calls[k]);
        curl_slist_free_all(e->headers);
        free(e->get_url);
    }
    P.nep = 0;
    if (P.multi)
        curl_multi_cleanup(P.multi); /* closes (and uncounts) its connections */
    P.multi = NULL;
    curl_global_cleanup();
    rp_held_socks_free(&P.socks);
    rp_timer_heap_free(&P.timers);
    rp_child_cleanup(&P.child);
    P.epfd = -1;
}

/* Milliseconds epoll may sleep: until the nearest timer, at most the
 * heartbeat cap. */
static int prober_wait_ms(void)
{
    uint64_t next = rp_timer_next(&P.timers);
    uint64_t now = prober_now_ms();
    if (next == UINT64_MAX)
        return PROBER_LOOP_CAP_MS;
    if (next <= now)
        return 0;
    return next - now < PROBER_LOOP_CAP_MS ? (int)(next - now) : PROBER_LOOP_CAP_MS;
}

/* The prober's life: signals, curl, endpoints, then the loop until SIGTERM
 * (sent by the supervisor, or by the kernel when the supervisor dies).
 * Transfers in flight are aborted on the way out. Returns 0 after a stop,
 * 1 when it could not start. */
int rp_prober_main(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot)
{
    memset(&P, 0, sizeof P);
    P.cfg = cfg;
    P.shm = shm;
    P.slot = rp_shm_worker(shm, slot);
    P.slot_index = slot;
    P.epfd = -1;
    P.interval_ms =
        cfg->health_check_interval_ms > 0 ? (uint64_t)cfg->health_check_interval_ms : 30000;
    P.call_timeout_ms =
        (long)(cfg->attempt_timeout_ms < (int64_t)P.interval_ms ? cfg->attempt_timeout_ms
                                                                : (int64_t)P.interval_ms);
    if (P.call_timeout_ms < 1)
        P.call_timeout_ms = 1;
    rp_timer_heap_init(&P.timers);

    /* signals, parent death and the epoll set: rp_child.h (SIGUSR2 means
     * nothing to the prober) */
    pid_t sup = (pid_t)atomic_load_explicit(&shm->supervisor_pid, memory_order_relaxed);
    if (rp_child_setup(&P.child, sup, 0) != 0)
        return 1;
    P.epfd = P.child.epfd;
    /* libcurl is not fork-safe: initialised here, in the child */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || prober_multi_new() != 0) {
        rp_error("curl initialisation failed", NULL);
        prober_cleanup();
        return 1;
    }
    rp_timer_init(&P.curl_timer, prober_curl_timer_fired, NULL);
    rp_timer_init(&P.idle_timer, prober_idle_fired, NULL);
    if (prober_setup_endpoints() != 0) {
        rp_error("prober initialisation failed", NULL);
        prober_cleanup();
        return 1;
    }
    for (int i = 0; i < P.nep; i++) /* the first probe runs at start */
        rp_timer_arm(&P.timers, &P.eps[i].round, P.eps[i].due_ms);

    atomic_store_explicit(&P.slot->generation,
                          atomic_load_explicit(&shm->generation, memory_order_acquire),
                          memory_order_relaxed);
    atomic_store_explicit(&P.slot->state, RP_WORKER_RUNNING, memory_order_relaxed);
    rp_info("prober started",
            "slot=%u endpoints=%d interval_ms=%llu timeout_ms=%ld rise=%d fall=%d "
            "chain_id=%lld",
            slot, P.nep, (unsigned long long)P.interval_ms, P.call_timeout_ms, RP_HEALTH_RISE,
            RP_HEALTH_FALL, (long long)cfg->chain_id);

    struct epoll_event events[64];
    while (!rp_child_stop_flag) {
        atomic_store_explicit(&P.slot->heartbeat_ms, prober_now_ms(), memory_order_relaxed);
        int n = rp_child_wait(&P.child, events, 64, prober_wait_ms());
        if (n < 0)
            break;
        rp_ev_dispatch(events, n);
        if (n > 0)
            prober_check_done();
        uint64_t now = prober_now_ms();
        struct rp_timer *t;
        while (!rp_child_stop_flag && (t = rp_timer_pop_expired(&P.timers, now)))
            t->fn(t, t->arg);
        rp_child_bury(&P.child);
    }
    rp_info("prober stopped", "slot=%u", slot);
    prober_cleanup();
    return 0;
}
