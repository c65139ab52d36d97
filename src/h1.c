/* h1.c - the native HTTP/1.1 upstream client of a worker (see rp_h1.h).
 *
 * A connection is in one of four states: CONNECTING (non-blocking connect
 * under way), WRITING (the request is partly written), READING (the request
 * is out, the response is being read) and IDLE (in its endpoint's LIFO
 * pool). It is registered in epoll once, with EPOLLIN|EPOLLRDHUP, for its
 * whole life; EPOLLOUT is added only while connecting or while a write is
 * incomplete. An idle connection that becomes readable was closed by the
 * server (or sent bytes nobody asked for): it is closed at once.
 *
 * Reuse of an idle connection races with the server closing it. When the
 * first write fails, or the connection is reset or closed before a single
 * response byte, the attempt moves once to a fresh connection (nginx does
 * the same for a cached keep-alive connection). For a state-changing call
 * (no_retry) that happens only when the write itself failed with nothing
 * accepted, so a request that may have reached the endpoint is never sent
 * twice; otherwise the failure is reported with sent = 1.
 */
#include "rp_h1.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rp_hold.h"
#include "rp_log.h"
#include "rp_worker.h"

/* ---------------------------------------------------------------------
 * URL and request head
 * ------------------------------------------------------------------- */

int rp_h1_url_parse(const char *url, struct rp_h1_url *u)
{
    memset(u, 0, sizeof *u);
    if (!url || strncasecmp(url, "http://", 7) != 0)
        return -1;
    for (const unsigned char *b = (const unsigned char *)url; *b; b++)
        if (*b <= 0x20 || *b >= 0x7f)
            return -1;
    const char *auth = url + 7;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *hp = auth;
    if (at) {
        u->has_userinfo = 1;
        hp = at + 1;
    }
    size_t hp_len = (size_t)(auth + auth_len - hp);
    size_t host_len;
    const char *host = hp;
    size_t name_len;
    if (hp_len && hp[0] == '[') {
        const char *close = memchr(hp, ']', hp_len);
        if (!close)
            return -1;
        host_len = (size_t)(close - hp) + 1;
        host = hp + 1;
        name_len = host_len - 2;
    } else {
        host_len = 0;
        while (host_len < hp_len && hp[host_len] != ':')
            host_len++;
        name_len = host_len;
    }
    if (name_len == 0 || name_len >= sizeof u->host)
        return -1;
    memcpy(u->host, host, name_len);
    u->host[name_len] = '\0';
    u->port = 80;
    int explicit_port = 0;
    if (host_len < hp_len) {
        if (hp[host_len] != ':')
            return -1;
        const char *p = hp + host_len + 1;
        size_t plen = hp_len - host_len - 1;
        if (plen == 0 || plen > 5)
            return -1;
        long port = 0;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535)
            return -1;
        u->port = (uint16_t)port;
        explicit_port = 1;
    }
    if (explicit_port && u->port != 80)
        snprintf(u->hostport, sizeof u->hostport, "%.*s:%u", (int)host_len, hp, (unsigned)u->port);
    else
        snprintf(u->hostport, sizeof u->hostport, "%.*s", (int)host_len, hp);
    const char *rest = auth + auth_len;
    size_t rest_len = strcspn(rest, "#");
    u->target = rest;
    u->target_len = rest_len;
    return 0;
}

/* Does header line H ("Name: value") carry the header NAME? */
static int header_named(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

char *rp_h1_request_head(const struct rp_h1_url *u, char *const *headers, int count, size_t *len)
{
    int own_host = 1, own_type = 1;
    for (int i = 0; i < count; i++) {
        if (header_named(headers[i], "host"))
            own_host = 0;
        if (header_named(headers[i], "content-type"))
            own_type = 0;
    }
    struct rp_buf b = RP_BUF_INIT;
    rp_buf_puts(&b, "POST ");
    if (u->target_len == 0 || u->target[0] != '/')
        rp_buf_puts(&b, "/");
    rp_buf_append(&b, u->target, u->target_len);
    rp_buf_puts(&b, " HTTP/1.1\r\n");
    if (own_host)
        rp_buf_appendf(&b, "Host: %s\r\n", u->hostport);
    if (own_type)
        rp_buf_puts(&b, "Content-Type: application/json\r\n");
    for (int i = 0; i < count; i++) {
        rp_buf_puts(&b, headers[i]);
        rp_buf_puts(&b, "\r\n");
    }
    return rp_buf_detach(&b, len);
}

size_t rp_h1_content_length(char *out, size_t cap, size_t body_bytes)
{
    int n = snprintf(out, cap, "Content-Length: %zu\r\n\r\n", body_bytes);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---------------------------------------------------------------------
 * response parser
 * ------------------------------------------------------------------- */

static struct rp_h1_resp *resp_of(http_parser *p)
{
    return (struct rp_h1_resp *)((char *)p - offsetof(struct rp_h1_resp, parser));
}

/* The Retry-After value read so far, in seconds (the HTTP-date form is not
 * used: 0). */
static void resp_take_retry_after(struct rp_h1_resp *r)
{
    if (!r->field_is_ra || r->field_len != sizeof "retry-after" - 1)
        return;
    r->ra[r->ra_len] = '\0';
    char *end;
    long v = strtol(r->ra, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end != r->ra && *end == '\0' && v > 0 && v < 86400)
        r->retry_after_s = v;
    r->field_is_ra = 0;
}

static int on_message_begin(http_parser *p)
{
    struct rp_h1_resp *r = resp_of(p);
    r->status = 0;
    r->retry_after_s = 0;
    r->field_len = 0;
    r->field_is_ra = 0;
    r->in_value = 0;
    r->ra_len = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    static const char name[] = "retry-after";
    struct rp_h1_resp *r = resp_of(p);
    if (r->in_value) {
        resp_take_retry_after(r);
        r->in_value = 0;
        r->field_len = 0;
        r->ra_len = 0;
    }
    if (r->field_len == 0)
        r->field_is_ra = 1;
    for (size_t i = 0; i < len && r->field_is_ra; i++) {
        char c = at[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (r->field_len + i >= sizeof name - 1 || c != name[r->field_len + i])
            r->field_is_ra = 0;
    }
    r->field_len += (unsigned)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct rp_h1_resp *r = resp_of(p);
    r->in_value = 1;
    if (r->field_is_ra && r->field_len == sizeof "retry-after" - 1) {
        for (size_t i = 0; i < len; i++) {
            if (r->ra_len + 1 >= sizeof r->ra) {
                r->field_is_ra = 0; /* too long for a number of seconds */
                break;
            }
            r->ra[r->ra_len++] = at[i];
        }
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct rp_h1_resp *r = resp_of(p);
    if (p->status_code < 100)
        return -1; /* not a three-digit status (libhttp-parser takes "20"): not HTTP */
    if (r->in_value)
        resp_take_retry_after(r);
    r->in_value = 0;
    r->status = p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct rp_h1_resp *r = resp_of(p);
    if (r->body->len + len > r->max_body_bytes) {
        r->too_large = 1;
        return -1;
    }
    return rp_buf_append(r->body, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
    struct rp_h1_resp *r = resp_of(p);
    if (p->status_code >= 100 && p->status_code < 200) {
        /* an interim response: forget it, the final one follows */
        r->status = 0;
        r->retry_after_s = 0;
        rp_buf_reset(r->body);
        return 0;
    }
    r->done = 1;
    r->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* anything after it is not ours to consume */
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void rp_h1_resp_init(struct rp_h1_resp *r, struct rp_buf *body, size_t max_body_bytes)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->body = body;
    r->max_body_bytes = max_body_bytes;
    rp_buf_reset(body);
}

enum rp_h1_resp_state rp_h1_resp_feed(struct rp_h1_resp *r, const char *data, size_t len,
                                      size_t *used)
{
    if (used)
        *used = 0;
    if (r->done) {
        if (len)
            r->keep_alive = 0;
        return RP_H1_RESP_DONE;
    }
    if (len == 0)
        return RP_H1_RESP_MORE;
    r->bytes += len;
    size_t n = http_parser_execute(&r->parser, &resp_settings, data, len);
    if (used)
        *used = n;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->done) {
        if (n < len)
            r->keep_alive = 0; /* more than one response: do not trust this connection */
        return RP_H1_RESP_DONE;
    }
    if (r->too_large)
        return RP_H1_RESP_TOO_LARGE;
    if (e != HPE_OK || r->parser.upgrade || n != len)
        return RP_H1_RESP_MALFORMED;
    return RP_H1_RESP_MORE;
}

enum rp_h1_resp_state rp_h1_resp_eof(struct rp_h1_resp *r)
{
    if (r->done)
        return RP_H1_RESP_DONE;
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
        return RP_H1_RESP_MALFORMED;
    if (r->bytes == 0)
        return RP_H1_RESP_TRUNCATED;
    http_parser_execute(&r->parser, &resp_settings, NULL, 0);
    if (r->done) {
        r->keep_alive = 0;
        return RP_H1_RESP_DONE;
    }
    if (r->too_large)
        return RP_H1_RESP_TOO_LARGE;
    return RP_H1_RESP_TRUNCATED;
}

/* ---------------------------------------------------------------------
 * connections
 * ------------------------------------------------------------------- */

enum h1_state {
    H1_CONNECTING = 1,
    H1_WRITING,
    H1_READING,
    H1_IDLE,
};

/* Per endpoint: where it is, what every request starts with, its pool. */
struct rp_h1_ep {
    struct rp_wep *w;
    int ep;
    char *head; /* rp_h1_request_head() */
    size_t head_len;
    struct sockaddr_storage addr[RP_H1_MAX_ADDRS];
    socklen_t addr_len[RP_H1_MAX_ADDRS];
    int naddr;
    int addr_cur;            /* the address new connections go to */
    struct rp_h1_conn *idle; /* LIFO: most recently used first */
    struct rp_h1_conn *all;  /* every open connection */
    unsigned nidle;
};

struct rp_h1_conn {
    struct rp_ev ev; /* kind RP_EV_H1 */
    struct rp_h1_ep *hep;
    struct rp_h1_conn *all_prev, *all_next;
    struct rp_h1_conn *idle_prev, *idle_next;
    enum h1_state state;
    uint32_t registered; /* events in epoll, 0 = not registered */
    struct rp_req *req;  /* the attempt it carries, NULL when idle */
    int reused;          /* it carried a request before this one */
    int addr;            /* index of the address it connects to */
    int addr_tries;      /* addresses tried by the attempt, this one included */
    size_t written;      /* bytes of the request accepted by the kernel */
    size_t total;        /* head + Content-Length line + body */
    char clen[48];
    size_t clen_len;
    struct rp_timer timer; /* connect deadline, or idle close */
    struct rp_h1_resp resp;
};

static char *h1_rbuf; /* RP_H1_READ_BYTES, shared by the worker's connections */

#define H1_EV_BASE (EPOLLIN | EPOLLRDHUP)

/* Make epoll watch C for EVENTS. */
static void conn_register(struct rp_h1_conn *c, uint32_t events)
{
    if (c->registered == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    int op = c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(rp_w.epfd, op, c->ev.fd, &ev) == 0)
        c->registered = events;
}

static void idle_unlink(struct rp_h1_conn *c)
{
    struct rp_h1_ep *h = c->hep;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        h->idle = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    h->nidle--;
}

/* Close C: out of epoll and the pool, uncounted in shm, freed at the end of
 * the loop turn (events of the same batch may still name it). The request
 * it carried, if any, is the caller's business. */
static void conn_close(struct rp_h1_conn *c)
{
    struct rp_h1_ep *h = c->hep;
    struct rp_wep *w = h->w;
    if (c->state == H1_IDLE)
        idle_unlink(c);
    if (c->all_prev)
        c->all_prev->all_next = c->all_next;
    else
        h->all = c->all_next;
    if (c->all_next)
        c->all_next->all_prev = c->all_prev;
    rp_timer_cancel(&rp_w.timers, &c->timer);
    if (c->registered)
        epoll_ctl(rp_w.epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
    close(c->ev.fd);
    rp_hold_add(&w->stats->conns_open_held, -1);
    if (c->req && c->req->at.h1 == c)
        c->req->at.h1 = NULL;
    c->req = NULL;
    rp_worker_defer_free(c);
}

static void conn_timer_fired(struct rp_timer *t, void *arg);
static void conn_write(struct rp_h1_conn *c);

static int h1_starting; /* inside rp_h1_start(): outcomes are reported from a timer */

/* Report a failure of R from its timer, soon (never from inside
 * rp_h1_start(): request.c does not expect the outcome there). DETAIL must
 * be a string constant; SENT tells whether bytes were accepted. */
static void attempt_fail_soon(struct rp_req *r, enum rp_xfer_status status, const char *detail,
                              int sent)
{
    r->at.h1_fail = ((int)status + 1) | (sent ? 0x100 : 0);
    r->at.h1_fail_detail = detail;
    rp_timer_arm(&rp_w.timers, &r->at.h1_timer, rp_worker_now_ms());
}

/* End R's attempt with STATUS (DETAIL for CONNECT / IO; SENT: bytes of the
 * request were accepted on a connection given up before). Its connection,
 * if any, goes back to the pool when KEEP, else is closed. Then request.c
 * hears of it. */
static void attempt_end_sent(struct rp_req *r, enum rp_xfer_status status, const char *detail,
                             int keep, int sent)
{
    struct rp_h1_conn *c = r->at.h1;
    if (h1_starting) {
        if (c) {
            sent = sent || c->written > 0;
            conn_close(c);
        }
        attempt_fail_soon(r, status, detail, sent);
        return;
    }
    struct rp_wep *w = &rp_w.eps[r->at.ep];
    struct rp_xfer_result res;
    memset(&res, 0, sizeof res);
    res.status = status;
    res.sent = sent;
    if (c) {
        res.sent = sent || c->written > 0;
        if (c->resp.status >= 200)
            res.http = c->resp.status;
        r->at.retry_after_s = c->resp.retry_after_s;
    }
    if (status == RP_XFER_CONNECT)
        res.sent = 0;
    if (status == RP_XFER_TOO_LARGE)
        r->at.too_large = 1;
    if (detail && (status == RP_XFER_CONNECT || status == RP_XFER_IO))
        snprintf(res.detail, sizeof res.detail, "%s", detail);
    rp_timer_cancel(&rp_w.timers, &r->at.h1_timer);
    r->at.h1_fail = 0;
    r->at.h1 = NULL;
    if (c) {
        c->req = NULL;
        if (keep && c->state == H1_READING) {
            struct rp_h1_ep *h = c->hep;
            c->state = H1_IDLE;
            c->reused = 1;
            c->idle_prev = NULL;
            c->idle_next = h->idle;
            if (h->idle)
                h->idle->idle_prev = c;
            h->idle = c;
            h->nidle++;
            rp_timer_arm(&rp_w.timers, &c->timer,
                         rp_worker_now_ms() + (uint64_t)rp_w.cfg->idle_timeout_ms);
        } else {
            conn_close(c);
        }
    }
    rp_hold_add(&w->stats->conns_active_held, -1);
    rp_req_attempt_done(r, &res);
}

static void attempt_end(struct rp_req *r, enum rp_xfer_status status, const char *detail, int keep)
{
    attempt_end_sent(r, status, detail, keep, 0);
}

/* Open a connection of endpoint H to address ADDR for R (connect under
 * way, or done). On failure R's attempt fails soon, with NULL returned. */
static struct rp_h1_conn *conn_open(struct rp_h1_ep *h, int addr, struct rp_req *r)
{
    const struct sockaddr *sa = (const struct sockaddr *)&h->addr[addr];
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        attempt_fail_soon(r, RP_XFER_CONNECT,
                          errno == EMFILE || errno == ENFILE ? "out of file descriptors"
                                                             : "cannot create a socket",
                          0);
        return NULL;
    }
    struct rp_h1_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        attempt_fail_soon(r, RP_XFER_CONNECT, "out of memory", 0);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    c->ev.kind = RP_EV_H1;
    c->ev.fd = fd;
    c->hep = h;
    c->addr = addr;
    c->addr_tries = 1;
    rp_timer_init(&c->timer, conn_timer_fired, c);
    c->all_next = h->all;
    if (h->all)
        h->all->all_prev = c;
    h->all = c;
    struct rp_wep *w = h->w;
    rp_hold_add(&w->stats->conns_open_held, +1);
    c->req = r;
    r->at.h1 = c;
    if (connect(fd, sa, h->addr_len[addr]) == 0) {
        c->state = H1_WRITING;
        conn_register(c, H1_EV_BASE | EPOLLOUT);
        return c;
    }
    if (errno != EINPROGRESS) {
        const char *why = errno == ECONNREFUSED ? "connection refused" : "cannot connect";
        conn_close(c);
        attempt_fail_soon(r, RP_XFER_CONNECT, why, 0);
        return NULL;
    }
    c->state = H1_CONNECTING;
    conn_register(c, H1_EV_BASE | EPOLLOUT);
    if (!c->registered) {
        conn_close(c);
        attempt_fail_soon(r, RP_XFER_CONNECT, "cannot watch the socket", 0);
        return NULL;
    }
    rp_timer_arm(&rp_w.timers, &c->timer,
                 rp_worker_now_ms() + (uint64_t)rp_w.cfg->connection_timeout_ms);
    return c;
}

/* Set connection C up to write R's request from the start. */
static void conn_load(struct rp_h1_conn *c, struct rp_req *r)
{
    c->written = 0;
    c->clen_len = rp_h1_content_length(c->clen, sizeof c->clen, r->send_len);
    c->total = c->hep->head_len + c->clen_len + r->send_len;
    rp_h1_resp_init(&c->resp, &r->at.body, (size_t)rp_w.cfg->max_response_bytes);
}

/* Move R's attempt from its failing connection C to a fresh one (once):
 * a reused keep-alive connection the server had closed. Returns 1 when
 * moved, 0 when the caller must report the failure. */
static int attempt_move(struct rp_h1_conn *c, int write_failed)
{
    struct rp_req *r = c->req;
    if (!r || !c->reused || r->at.h1_retried || c->resp.bytes > 0)
        return 0;
    /* a state-changing call may be moved only when nothing of it was
     * accepted: then it cannot have reached the endpoint */
    if (r->no_retry && !(write_failed && c->written == 0))
        return 0;
    struct rp_h1_ep *h = c->hep;
    r->at.h1_retried = 1;
    conn_close(c);
    struct rp_h1_conn *n = conn_open(h, h->addr_cur, r);
    if (!n)
        return 1; /* its failure is reported from the attempt's timer */
    conn_load(n, r);
    if (n->state == H1_WRITING)
        conn_write(n);
    return 1;
}

/* C's connect failed with ERR: the attempt goes on with the endpoint's
 * next address when one is left untried, else the failure is reported and
 * the next attempt starts with the next address. */
static void conn_connect_failed(struct rp_h1_conn *c, int err)
{
    struct rp_req *r = c->req;
    struct rp_h1_ep *h = c->hep;
    int next = (c->addr + 1) % h->naddr;
    int tries = c->addr_tries;
    conn_close(c);
    h->addr_cur = next;
    if (tries < h->naddr) {
        struct rp_h1_conn *n = conn_open(h, next, r);
        if (n) {
            n->addr_tries = tries + 1;
            conn_load(n, r);
            if (n->state == H1_WRITING)
                conn_write(n);
        }
        return;
    }
    attempt_end(r, RP_XFER_CONNECT,
                err == ECONNREFUSED   ? "connection refused"
                : err == ETIMEDOUT    ? "connection timed out"
                : err == ENETUNREACH  ? "network unreachable"
                : err == EHOSTUNREACH ? "host unreachable"
                                      : "cannot connect",
                0);
}

/* Read what the server sent on busy connection C, feeding the parser;
 * ends the attempt when the response is whole or the connection failed. */
static void conn_read(struct rp_h1_conn *c)
{
    struct rp_req *r = c->req;
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = read(c->ev.fd, h1_rbuf, RP_H1_READ_BYTES);
        enum rp_h1_resp_state st;
        if (n > 0) {
            st = rp_h1_resp_feed(&c->resp, h1_rbuf, (size_t)n, NULL);
        } else if (n == 0) {
            if (attempt_move(c, 0))
                return;
            st = rp_h1_resp_eof(&c->resp);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (attempt_move(c, 0))
                return;
            attempt_end(r, RP_XFER_IO,
                        errno == ECONNRESET ? "connection reset" : "connection error", 0);
            return;
        }
        switch (st) {
        case RP_H1_RESP_MORE:
            if (rp_req_body_account(r) != 0) { /* its client holds too much already */
                attempt_end(r, RP_XFER_TOO_LARGE, NULL, 0);
                return;
            }
            if ((size_t)n < RP_H1_READ_BYTES)
                return; /* drained: the next bytes come with the next event */
            continue;
        case RP_H1_RESP_DONE:
            attempt_end(r, RP_XFER_OK, NULL, n > 0 && c->resp.keep_alive && c->written == c->total);
            return;
        case RP_H1_RESP_TOO_LARGE:
            attempt_end(r, RP_XFER_TOO_LARGE, NULL, 0);
            return;
        case RP_H1_RESP_MALFORMED:
            attempt_end(r, RP_XFER_IO, "malformed HTTP response", 0);
            return;
        case RP_H1_RESP_TRUNCATED:
            attempt_end(r, RP_XFER_IO, "closed before the response was complete", 0);
            return;
        }
    }
}

/* Write what is left of C's request (one sendmsg when the socket takes it
 * all); EPOLLOUT is watched only while some is left. */
static void conn_write(struct rp_h1_conn *c)
{
    struct rp_req *r = c->req;
    struct rp_h1_ep *h = c->hep;
    for (;;) {
        struct iovec iov[3];
        const char *part[3] = {h->head, c->clen, r->send};
        size_t plen[3] = {h->head_len, c->clen_len, r->send_len};
        int n = 0;
        size_t skip = c->written;
        for (int i = 0; i < 3; i++) {
            if (skip >= plen[i]) {
                skip -= plen[i];
                continue;
            }
            iov[n].iov_base = (char *)part[i] + skip;
            iov[n].iov_len = plen[i] - skip;
            skip = 0;
            n++;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = n ? sendmsg(c->ev.fd, &msg, MSG_NOSIGNAL) : 0;
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_register(c, H1_EV_BASE | EPOLLOUT);
                return;
            }
            if (attempt_move(c, 1))
                return;
            attempt_end(r, RP_XFER_IO,
                        errno == ECONNRESET || errno == EPIPE ? "connection reset"
                                                              : "cannot send the request",
                        0);
            return;
        }
        c->written += (size_t)k;
        if (c->written >= c->total) {
            c->state = H1_READING;
            conn_register(c, H1_EV_BASE);
            return;
        }
        /* the socket buffer is full: wait until it drains */
        conn_register(c, H1_EV_BASE | EPOLLOUT);
        return;
    }
}

/* The connection's timer: connect deadline (busy) or idle limit (idle). */
static void conn_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_h1_conn *c = arg;
    if (c->state == H1_IDLE) {
        conn_close(c);
        return;
    }
    if (c->state == H1_CONNECTING && c->req)
        conn_connect_failed(c, ETIMEDOUT);
}

/* The attempt's timer: its deadline, or a failure reported soon. */
static void attempt_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_req *r = arg;
    if (r->at.h1_fail) {
        enum rp_xfer_status st = (enum rp_xfer_status)((r->at.h1_fail & 0xff) - 1);
        attempt_end_sent(r, st, r->at.h1_fail_detail, 0, (r->at.h1_fail & 0x100) != 0);
        return;
    }
    attempt_end(r, RP_XFER_TIMEOUT, NULL, 0);
}

void rp_h1_event(struct rp_ev *ev, uint32_t events)
{
    struct rp_h1_conn *c = (struct rp_h1_conn *)ev;
    switch (c->state) {
    case H1_IDLE:
        /* the server closed it (or spoke out of turn): not reusable */
        conn_close(c);
        return;
    case H1_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->ev.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (!err && (events & (EPOLLERR | EPOLLHUP)))
            err = ECONNREFUSED;
        if (err) {
            conn_connect_failed(c, err);
            return;
        }
        if (!(events & EPOLLOUT))
            return;
        rp_timer_cancel(&rp_w.timers, &c->timer);
        c->hep->addr_cur = c->addr;
        c->state = H1_WRITING;
        conn_write(c);
        return;
    }
    case H1_WRITING:
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_write(c);
        /* the write may have ended the attempt or moved it elsewhere */
        if (c->ev.kind != RP_EV_H1 || !c->req)
            return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
            conn_read(c);
        return;
    case H1_READING:
        conn_read(c);
        return;
    }
}

int rp_h1_start(struct rp_req *r, int ep, long timeout_ms)
{
    struct rp_wep *w = &rp_w.eps[ep];
    struct rp_h1_ep *h = w->h1;
    rp_timer_init(&r->at.h1_timer, attempt_timer_fired, r);
    r->at.h1 = NULL;
    r->at.h1_retried = 0;
    r->at.h1_fail = 0;
    r->at.too_large = 0;
    r->at.retry_after_s = 0;
    rp_buf_reset(&r->at.body);
    r->at.h1_deadline_ms = rp_worker_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    rp_hold_add(&w->stats->conns_active_held, +1);
    rp_timer_arm(&rp_w.timers, &r->at.h1_timer, r->at.h1_deadline_ms);
    h1_starting = 1;
    struct rp_h1_conn *c = h->idle;
    if (c) {
        idle_unlink(c);
        rp_timer_cancel(&rp_w.timers, &c->timer);
        c->req = r;
        r->at.h1 = c;
        c->state = H1_WRITING;
        conn_load(c, r);
        conn_write(c);
    } else {
        c = conn_open(h, h->addr_cur, r);
        if (c) {
            conn_load(c, r);
            if (c->state == H1_WRITING)
                conn_write(c);
        }
    }
    h1_starting = 0;
    return 0;
}

/* ---------------------------------------------------------------------
 * set-up
 * ------------------------------------------------------------------- */

/* Resolve H's host (numeric first) into its address list. Returns 0 when
 * at least one address was found. */
static int ep_resolve(struct rp_h1_ep *h, const struct rp_h1_url *u)
{
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)u->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        hints.ai_flags = AI_NUMERICSERV;
        res = NULL;
        rc = getaddrinfo(u->host, port, &hints, &res);
    }
    if (rc != 0)
        return -1;
    h->naddr = 0;
    for (struct addrinfo *a = res; a && h->naddr < RP_H1_MAX_ADDRS; a = a->ai_next) {
        if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
            a->ai_addrlen > sizeof h->addr[0])
            continue;
        memcpy(&h->addr[h->naddr], a->ai_addr, a->ai_addrlen);
        h->addr_len[h->naddr] = a->ai_addrlen;
        h->naddr++;
    }
    freeaddrinfo(res);
    return h->naddr > 0 ? 0 : -1;
}

int rp_h1_init(void)
{
    if (!h1_rbuf) {
        h1_rbuf = malloc(RP_H1_READ_BYTES);
        if (!h1_rbuf)
            return -1;
    }
    for (int i = 0; i < rp_w.nep; i++) {
        struct rp_wep *w = &rp_w.eps[i];
        if (!w->in_use || !w->native)
            continue;
        struct rp_h1_url u;
        if (rp_h1_url_parse(w->cfg->url, &u) != 0 || u.has_userinfo) {
            w->native = 0; /* libcurl handles it (user info: Basic auth) */
            continue;
        }
        struct rp_h1_ep *h = calloc(1, sizeof *h);
        if (!h)
            return -1;
        h->w = w;
        h->ep = i;
        if (ep_resolve(h, &u) != 0) {
            rp_warn("cannot resolve endpoint host: using libcurl for it", "endpoint=%s",
                    w->cfg->name);
            free(h);
            w->native = 0;
            continue;
        }
        h->head = rp_h1_request_head(&u, w->cfg->headers, w->cfg->header_count, &h->head_len);
        if (!h->head) {
            free(h);
            return -1;
        }
        w->h1 = h;
    }
    return 0;
}

void rp_h1_cleanup(void)
{
    for (int i = 0; i < rp_w.nep; i++) {
        struct rp_wep *w = &rp_w.eps[i];
        struct rp_h1_ep *h = w->h1;
        if (!h)
            continue;
        while (h->all) {
            struct rp_h1_conn *c = h->all;
            if (c->req) {
                rp_timer_cancel(&rp_w.timers, &c->req->at.h1_timer);
                rp_hold_add(&w->stats->conns_active_held, -1);
            }
            conn_close(c);
        }
        free(h->head);
        free(h);
        w->h1 = NULL;
    }
    free(h1_rbuf);
    h1_rbuf = NULL;
}
