/* upstream.c - the worker's libcurl multi handle, driven from the worker's
 * epoll loop through CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION (the
 * pattern of curl's ephiperfifo example).
 *
 * Easy handles are reused (keep-alive connections live in the multi
 * handle's cache). Real upstream sockets are counted into shm through
 * CURLOPT_OPENSOCKETFUNCTION / CURLOPT_CLOSESOCKETFUNCTION, so operators see
 * true connection numbers.
 */
#include "rp_worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rp_hold.h"
#include "rp_log.h"

/* Per upstream socket, from curl's open callback to its close callback:
 * the endpoint it is counted against and its epoll registration. The
 * registration outlives curl's interest (CURL_POLL_REMOVE leaves it in
 * place), so a keep-alive connection reused for the next request usually
 * needs no epoll_ctl at all. */
struct curl_sock {
    struct rp_ev ev;
    struct rp_wep *owner; /* NULL for a socket curl did not open through us */
    uint32_t registered;  /* events registered in epoll; 0 = not in epoll */
    uint32_t wanted;      /* events curl asked for; 0 = curl is not watching */
};

/* Indexed by fd; the worker's fd range is small. */
static struct curl_sock **socks;
static int socks_cap;

/* The record of FD, created on first use. NULL when out of memory. */
static struct curl_sock *sock_get(int fd)
{
    if (fd >= socks_cap) {
        int cap = socks_cap ? socks_cap : 1024;
        while (cap <= fd)
            cap *= 2;
        struct curl_sock **p = realloc(socks, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        memset(p + socks_cap, 0, (size_t)(cap - socks_cap) * sizeof *p);
        socks = p;
        socks_cap = cap;
    }
    if (!socks[fd]) {
        struct curl_sock *cs = calloc(1, sizeof *cs);
        if (!cs)
            return NULL;
        cs->ev.kind = RP_EV_CURL;
        cs->ev.fd = fd;
        socks[fd] = cs;
    }
    return socks[fd];
}

/* Make epoll watch CS for EVENTS (0: leave it out of epoll). */
static void sock_register(struct curl_sock *cs, uint32_t events)
{
    if (cs->registered == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = cs};
    int op = !events ? EPOLL_CTL_DEL : cs->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(rp_w.epfd, op, cs->ev.fd, events ? &ev : NULL) != 0 && op == EPOLL_CTL_ADD &&
        errno == EEXIST)
        epoll_ctl(rp_w.epfd, EPOLL_CTL_MOD, cs->ev.fd, &ev);
    cs->registered = events;
}

/* What libcurl's verdict CODE on R's transfer means for request.c. */
static void upstream_result(struct rp_req *r, CURLcode code, struct rp_xfer_result *res)
{
    long http = 0, req_bytes = 0;
    curl_easy_getinfo(r->at.easy, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(r->at.easy, CURLINFO_REQUEST_SIZE, &req_bytes);
    memset(res, 0, sizeof *res);
    res->http = http;
    res->sent = req_bytes > 0;
    if (code == CURLE_OK) {
        res->status = RP_XFER_OK;
    } else if (r->at.too_large) {
        res->status = RP_XFER_TOO_LARGE;
    } else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
               code == CURLE_COULDNT_RESOLVE_PROXY) {
        res->status = RP_XFER_CONNECT;
        res->sent = 0;
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        res->status = RP_XFER_TIMEOUT;
    } else {
        res->status = RP_XFER_IO;
    }
    if (res->status == RP_XFER_CONNECT || res->status == RP_XFER_IO)
        snprintf(res->detail, sizeof res->detail, "%s", curl_easy_strerror(code));
}

static void upstream_check_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(rp_w.multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct rp_req *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r)
            continue;
        struct rp_xfer_result res;
        upstream_result(r, msg->data.result, &res);
        rp_upstream_finish(r);
        rp_req_attempt_done(r, &res);
    }
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in a socket into epoll.
 * When curl stops watching (CURL_POLL_REMOVE) the registration is kept for
 * the connection's next request; see rp_upstream_event(). */
static int upstream_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    (void)socketp;
    struct curl_sock *cs = sock_get(s);
    if (!cs)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        cs->wanted = 0;
        return 0;
    }
    uint32_t events = 0;
    if (what & CURL_POLL_IN)
        events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        events |= EPOLLOUT;
    cs->wanted = events;
    sock_register(cs, events);
    return 0;
}

static void upstream_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    rp_upstream_timeout();
}

/* CURLMOPT_TIMERFUNCTION: curl wants to be called after TIMEOUT_MS (-1:
 * never). Acted on from the loop, never from inside this callback. */
static int upstream_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    (void)userp;
    return rp_timer_set(&rp_w.timers, &rp_w.curl_timer, rp_worker_now_ms(), timeout_ms);
}

void rp_upstream_timeout(void)
{
    int running;
    curl_multi_socket_action(rp_w.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    upstream_check_done();
}

void rp_upstream_event(struct rp_ev *ev, uint32_t events)
{
    struct curl_sock *cs = (struct curl_sock *)ev;
    if (!cs->wanted) {
        /* an idle keep-alive connection spoke (most often the server closed
         * it): curl finds out when it next considers the connection */
        sock_register(cs, 0);
        return;
    }
    int mask = 0;
    if (events & EPOLLIN)
        mask |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        mask |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(rp_w.multi, ev->fd, mask, &running);
    upstream_check_done();
}

/* CURLOPT_OPENSOCKETFUNCTION: open the socket and count it as an open
 * connection of the endpoint passed in CLIENTP. */
static curl_socket_t upstream_open_cb(void *clientp, curlsocktype purpose,
                                      struct curl_sockaddr *addr)
{
    (void)purpose;
    struct rp_wep *w = clientp;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    struct curl_sock *cs = sock_get(fd);
    if (!cs) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    cs->owner = w;
    rp_hold_add(&w->stats->conns_open_held, +1);
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: uncount, leave epoll, close. The record is
 * freed at the end of the loop turn (events already fetched may name it). */
static int upstream_close_cb(void *clientp, curl_socket_t fd)
{
    (void)clientp;
    if (fd >= 0 && fd < socks_cap && socks[fd]) {
        struct curl_sock *cs = socks[fd];
        if (cs->owner)
            rp_hold_add(&cs->owner->stats->conns_open_held, -1);
        sock_register(cs, 0);
        socks[fd] = NULL;
        rp_worker_defer_free(cs);
    }
    return close(fd);
}

/* CURLOPT_WRITEFUNCTION: collect the answer, up to max_response_bytes. */
static size_t upstream_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct rp_req *r = userdata;
    size_t n = size * nmemb;
    if (r->at.body.len + n > (size_t)rp_w.cfg->max_response_bytes) {
        r->at.too_large = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (rp_buf_append(&r->at.body, ptr, n) != 0)
        return 0;
    if (rp_req_body_account(r) != 0) {
        r->at.too_large = 1; /* its client (or the worker) holds too much already */
        return 0;
    }
    return n;
}

/* CURLOPT_HEADERFUNCTION: remember Retry-After (seconds form). */
static size_t upstream_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct rp_req *r = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
        long v = strtol(buf + sizeof name - 1, NULL, 10);
        if (v > 0 && v < 86400)
            r->at.retry_after_s = v;
    }
    return n;
}

int rp_upstream_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    rp_w.multi = curl_multi_init();
    if (!rp_w.multi)
        return -1;
    rp_timer_init(&rp_w.curl_timer, upstream_timer_fired, NULL);
    curl_multi_setopt(rp_w.multi, CURLMOPT_SOCKETFUNCTION, upstream_socket_cb);
    curl_multi_setopt(rp_w.multi, CURLMOPT_TIMERFUNCTION, upstream_timer_cb);
    long share =
        (long)rp_worker_part(rp_worker_conn_pool(rp_w.cfg, rp_w.count), rp_w.index, rp_w.count);
    curl_multi_setopt(rp_w.multi, CURLMOPT_MAXCONNECTS,
                      (share < 1 ? 1 : share) * (long)rp_w.cfg->endpoint_count);
    curl_multi_setopt(rp_w.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return 0;
}

void rp_upstream_cleanup(void)
{
    for (int i = 0; i < rp_w.nep; i++) {
        struct rp_wep *w = &rp_w.eps[i];
        for (int k = 0; k < w->neasy; k++)
            curl_easy_cleanup(w->easy[k]);
        free(w->easy);
        w->easy = NULL;
        w->neasy = w->capeasy = 0;
    }
    if (rp_w.multi)
        curl_multi_cleanup(rp_w.multi);
    rp_w.multi = NULL;
    curl_global_cleanup();
    for (int fd = 0; fd < socks_cap; fd++)
        free(socks[fd]);
    free(socks);
    socks = NULL;
    socks_cap = 0;
}

/* Start R's attempt on endpoint EP with TIMEOUT_MS for the whole transfer. */
/* A new easy handle set up for endpoint W: everything that does not change
 * from one request to the next is set once here. */
static CURL *upstream_easy_new(struct rp_wep *w)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, w->cfg->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, upstream_write_cb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, upstream_header_cb);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)rp_w.cfg->connection_timeout_ms);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)(rp_w.cfg->idle_timeout_ms + 999) / 1000);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* endpoints are reached directly: proxy variables of the environment
     * do not apply (and are not looked up on every request) */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, upstream_open_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, w);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, upstream_close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, NULL);
    return e;
}

/* Start R's attempt on endpoint EP with TIMEOUT_MS for the whole transfer:
 * an easy handle of that endpoint's pool gets the per-request options. */
int rp_upstream_start(struct rp_req *r, int ep, long timeout_ms)
{
    struct rp_wep *w = &rp_w.eps[ep];
    CURL *e = w->neasy ? w->easy[--w->neasy] : upstream_easy_new(w);
    if (!e)
        return -1;
    rp_buf_reset(&r->at.body);
    r->at.too_large = 0;
    r->at.retry_after_s = 0;
    r->at.easy = e;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->send);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->send_len);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    rp_hold_add(&w->stats->conns_active_held, +1);
    if (curl_multi_add_handle(rp_w.multi, e) != CURLM_OK) {
        rp_hold_add(&w->stats->conns_active_held, -1);
        curl_easy_cleanup(e);
        r->at.easy = NULL;
        return -1;
    }
    return 0;
}

/* Detach R's finished easy handle from the multi and keep it in its
 * endpoint's pool. */
void rp_upstream_finish(struct rp_req *r)
{
    CURL *e = r->at.easy;
    if (!e)
        return;
    struct rp_wep *w = &rp_w.eps[r->at.ep];
    rp_hold_add(&w->stats->conns_active_held, -1);
    curl_multi_remove_handle(rp_w.multi, e);
    r->at.easy = NULL;
    if (w->neasy == w->capeasy) {
        int cap = w->capeasy ? w->capeasy * 2 : 16;
        CURL **p = realloc(w->easy, (size_t)cap * sizeof *p);
        if (!p) {
            curl_easy_cleanup(e);
            return;
        }
        w->easy = p;
        w->capeasy = cap;
    }
    w->easy[w->neasy++] = e;
}
