/* httpd.c - the HTTP/1.1 front of a worker: requests on a client
 * connection that conn.c told to be HTTP (or accepted on http_listen),
 * JSON-RPC over POST, GET /health and GET /metrics, answers in request
 * order, lingering close.
 *
 * HTTP/1.1 (rp_http.h parses): answers must go out in request order, so
 * each request takes a slot at the tail of the connection's queue when its
 * head is complete. A slot embeds a stand-in struct rp_conn ("sub", with
 * parent pointing at the client's connection) that is handed to
 * rp_req_dispatch(): request.c then answers through the usual
 * rp_conn_write_answer() / rp_conn_request_done() / rp_conn_unref() calls,
 * which for a stand-in fill its slot instead of writing. The head of the
 * queue is written out while it is filled. A slot is freed once it left the
 * queue (written, or the client went away) and no request refers to it;
 * each slot holds a reference on the client's connection.
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rp_log.h"
#include "rp_metrics.h"
#include "rp_shm_view.h"

static const char http_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void http_flush_queue(struct rp_conn *c);

/* HTTP input is held back: too many requests unanswered, too much output
 * unsent, or the connection is closing. */
int rp_httpd_paused(const struct rp_conn *c)
{
    const struct rp_http_conn *h = c->http;
    return h && (h->nslots >= RP_CONN_MAX_PENDING || h->closing || h->lingering ||
                 rp_conn_backlogged(c));
}
/* A retiring worker keeps reading an HTTP client until the request it is
 * receiving is whole (a parser's state cannot travel with the fd); the
 * bytes after it are handed over unparsed. */
int rp_httpd_finish_request(const struct rp_conn *c)
{
    return rp_w.retiring && c->http && !rp_http_parser_idle(&c->http->hp);
}
/* Make C an HTTP connection. Returns 0, or -1 out of memory. */
int rp_httpd_setup(struct rp_conn *c)
{
    struct rp_http_conn *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    rp_http_parser_init(&h->hp, (size_t)rp_w.cfg->max_request_bytes);
    c->http = h;
    c->proto = CONN_PROTO_HTTP;
    return 0;
}
/* Free slot S (out of the queue, no request refers to it) and drop its
 * reference on the client's connection. */
void rp_httpd_slot_free(struct http_slot *s)
{
    struct rp_conn *parent = s->sub.parent;
    rp_buf_free(&s->resp);
    free(s);
    rp_conn_unref(parent);
}
/* The client went away: forget every queued answer. Slots a request still
 * refers to are freed when it lets go. The caller holds a reference on C. */
void rp_httpd_drop_slots(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    struct http_slot *s = h->head;
    h->head = h->tail = h->cur = NULL;
    h->nslots = 0;
    while (s) {
        struct http_slot *next = s->next;
        s->in_queue = 0;
        s->interim = 0;
        rp_conn_hold(c, -(long long)s->held);
        s->held = 0;
        rp_buf_free(&s->resp);
        if (s->sub.refs == 0)
            rp_httpd_slot_free(s);
        s = next;
    }
}
/* Fill slot S of client C with a whole response and write out what the
 * queue's order allows. S may be freed by the time this returns. */
static void http_fill(struct rp_conn *c, struct http_slot *s, int status, const char *ctype,
                      const char *body, size_t len, const char *extra)
{
    char head[512];
    unsigned flags = s->close ? RP_HTTP_F_CLOSE : s->keep_alive_10 ? RP_HTTP_F_KEEP_ALIVE : 0;
    size_t n = rp_http_format_head(head, sizeof head, status, ctype, len, extra, flags);
    if (n >= sizeof head)
        n = rp_http_format_head(head, sizeof head, 500, NULL, 0, NULL, RP_HTTP_F_CLOSE);
    rp_buf_reset(&s->resp);
    rp_buf_append(&s->resp, head, n);
    if (!s->head_only && len)
        rp_buf_append(&s->resp, body, len);
    rp_conn_hold(c, (long long)s->resp.len - (long long)s->held);
    s->held = s->resp.len;
    s->filled = 1;
    s->interim = 0;
    http_flush_queue(c);
}
/* Write the filled answers at the head of C's queue (and a waiting
 * "100 Continue" of the first unfilled one), in request order. */
static void http_flush_queue(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    int wrote = 0;
    struct http_slot *s;
    while (!c->closed && (s = h->head) != NULL) {
        if (s->interim && !s->filled) {
            s->interim = 0;
            if (rp_conn_out_append(c, http_continue, sizeof http_continue - 1, 0) != 0)
                return;
            wrote = 1;
        }
        if (!s->filled)
            break;
        h->head = s->next;
        if (!h->head)
            h->tail = NULL;
        h->nslots--;
        s->in_queue = 0;
        rp_conn_hold(c, -(long long)s->held); /* now counted as output */
        s->held = 0;
        int close = s->close;
        int failed = rp_buf_failed(&s->resp);
        int rc = failed ? 0 : rp_conn_out_append(c, s->resp.data, s->resp.len, 0);
        rp_buf_free(&s->resp);
        if (s->sub.refs == 0)
            rp_httpd_slot_free(s); /* C is not closed: its struct stays */
        if (rc != 0)
            return;
        if (failed) {
            rp_warn("out of memory building an answer: closing client", NULL);
            rp_conn_close(c);
            return;
        }
        wrote = 1;
        if (close) {
            c->close_after_flush = 1;
            break;
        }
    }
    if (c->closed)
        return;
    if (wrote) {
        rp_conn_queue_flush(c);
        return;
    }
    rp_conn_update_events(c);
}
/* request.c answered the request of stand-in SUB. */
void rp_httpd_sub_answer(struct rp_conn *sub, const char *data, size_t len)
{
    struct http_slot *s = (struct http_slot *)sub;
    if (s->filled)
        return;
    if (sub->parent->closed || !s->in_queue) {
        s->filled = 1;
        return;
    }
    http_fill(sub->parent, s, 200, "application/json", data, len, NULL);
}
/* The request of stand-in SUB is over: a notification (no answer) gets an
 * empty 200, and the client's count of requests in flight drops. */
void rp_httpd_sub_done(struct rp_conn *sub)
{
    struct http_slot *s = (struct http_slot *)sub;
    struct rp_conn *parent = sub->parent;
    if (sub->pending)
        sub->pending--;
    if (!s->filled) {
        if (parent->closed || !s->in_queue)
            s->filled = 1;
        else
            http_fill(parent, s, 200, "application/json", "", 0, NULL);
    }
    if (s->counted) {
        s->counted = 0;
        if (parent->pending)
            parent->pending--;
    }
    rp_conn_after_request(parent);
}
/* A new slot at the tail of C's queue, or NULL out of memory. */
static struct http_slot *http_slot_new(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    struct http_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sub.ev.handler = rp_conn_on_event;
    s->sub.ev.fd = -1;
    s->sub.parent = c;
    s->sub.proto = CONN_PROTO_HTTP;
    rp_buf_init(&s->resp);
    s->in_queue = 1;
    c->refs++;
    if (h->tail)
        h->tail->next = s;
    else
        h->head = s;
    h->tail = s;
    h->nslots++;
    return s;
}
/* Copy the segment into a snapshot (heap; the caller frees it), or NULL. */
static struct rp_snapshot *http_snapshot(void)
{
    struct rp_snapshot *snap = malloc(sizeof *snap);
    if (!snap)
        return NULL;
    struct rp_shm_view v;
    char err[160];
    if (rp_shm_view_wrap(&v, rp_w.shm, rp_w.shm->total_size, err, sizeof err) != 0 ||
        rp_shm_view_snapshot(&v, snap, err, sizeof err) != 0) {
        rp_warn("cannot read the shm segment for HTTP", "error=\"%s\"", err);
        free(snap);
        return NULL;
    }
    rp_shm_view_close(&v);
    return snap;
}
/* GET /health: 200 when an endpoint can serve, else 503. */
static void http_health(struct rp_conn *c, struct http_slot *s)
{
    char body[128];
    size_t len = 0;
    int status = 503;
    struct rp_snapshot *snap = http_snapshot();
    if (snap) {
        status = rp_http_health_body(snap, body, sizeof body, &len);
        free(snap);
    } else {
        len = (size_t)snprintf(body, sizeof body, "{\"status\":\"unavailable\",\"healthy\":0}");
    }
    http_fill(c, s, status, "application/json", body, len, NULL);
}
/* GET /metrics: the Prometheus text of a snapshot. */
static void http_metrics(struct rp_conn *c, struct http_slot *s)
{
    struct rp_snapshot *snap = http_snapshot();
    struct rp_buf text = RP_BUF_INIT;
    if (!snap || rp_metrics_render(&text, snap) != 0) {
        static const char msg[] = "cannot render metrics\n";
        http_fill(c, s, 500, "text/plain; charset=utf-8", msg, sizeof msg - 1, NULL);
    } else {
        http_fill(c, s, 200, RP_METRICS_CONTENT_TYPE, text.data, text.len, NULL);
    }
    free(snap);
    rp_buf_free(&text);
}
/* A plain-text answer of rpcpool's own (404, 405, 4xx errors). */
static void http_plain(struct rp_conn *c, struct http_slot *s, int status, const char *msg,
                       const char *extra)
{
    char body[160];
    int n = snprintf(body, sizeof body, "%s\n", msg);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof body ? (size_t)n : sizeof body - 1;
    http_fill(c, s, status, "text/plain; charset=utf-8", body, len, extra);
}
/* A JSON-RPC error of rpcpool's own as a 200 answer (geth does the same). */
static void http_rpc_error(struct rp_conn *c, struct http_slot *s, int code, const char *msg)
{
    char buf[256];
    size_t n = rp_jsonrpc_error(buf, sizeof buf, NULL, 0, code, msg, NULL);
    rp_worker_count_answer(0);
    http_fill(c, s, 200, "application/json", buf, n < sizeof buf ? n : sizeof buf - 1, NULL);
}
static int is_json_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}
/* POST: BODY must be exactly one JSON value (a request or a batch); it is
 * dispatched through slot S's stand-in, which receives the answer. */
static void http_rpc(struct rp_conn *c, struct http_slot *s, const char *body, size_t len)
{
    struct rp_frame f;
    size_t start = 0, end = 0;
    rp_frame_init(&f);
    enum rp_frame_result r = rp_frame_scan(&f, body, len, &start, &end);
    if (r == RP_FRAME_NEED_MORE) {
        /* a lone scalar ends only at the end of the body; anything else
         * unfinished (or an empty body) is not JSON */
        if (rp_frame_validate(body, len) == 0) {
            while (start < len && is_json_ws(body[start]))
                start++;
            end = len;
            while (end > start && is_json_ws(body[end - 1]))
                end--;
            r = RP_FRAME_VALUE;
        }
    } else if (r == RP_FRAME_VALUE) {
        for (size_t i = end; i < len; i++)
            if (!is_json_ws(body[i])) {
                r = RP_FRAME_ERROR; /* a second value */
                break;
            }
    }
    if (r == RP_FRAME_TOO_DEEP) {
        http_rpc_error(c, s, RP_JSONRPC_INVALID_REQUEST, "Invalid Request: nesting too deep");
        return;
    }
    if (r != RP_FRAME_VALUE) {
        http_rpc_error(c, s, RP_JSONRPC_PARSE_ERROR, "Parse error");
        return;
    }
    s->sub.refs++; /* the request may finish, and let go of S, before we look */
    rp_req_dispatch(&s->sub, body + start, end - start);
    if (s->sub.pending > 0) {
        s->counted = 1;
        c->pending++;
    } else if (!s->filled && s->in_queue) {
        http_fill(c, s, 200, "application/json", "", 0, NULL); /* nothing to answer */
    }
    rp_conn_unref(&s->sub);
}
/* A request's head is complete: it takes its place in the answer order;
 * a client waiting for "100 Continue" gets it when its turn comes. */
static void http_on_headers(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    const struct rp_http_msg *m = &h->hp.msg;
    struct http_slot *s = http_slot_new(c);
    if (!s) {
        rp_warn("out of memory for an HTTP request: closing client", NULL);
        rp_conn_close(c);
        return;
    }
    h->cur = s;
    s->head_only = m->method == HTTP_HEAD;
    if (m->expect_continue && m->has_body) {
        s->interim = 1;
        http_flush_queue(c);
    }
}
/* A whole request: route it and answer (now, or when its call returns). */
static void http_on_message(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    const struct rp_http_msg *m = &h->hp.msg;
    struct http_slot *s = h->cur;
    h->cur = NULL;
    if (!s) /* cannot happen: every message had its head first */
        return;
    s->interim = 0; /* the body is here: no need to invite it any more */
    s->close = !m->keep_alive || m->method == HTTP_CONNECT;
    s->keep_alive_10 = m->keep_alive && m->http_minor == 0;
    if (s->close)
        h->closing = 1;
    const char *allow = NULL;
    size_t url_len = m->url_len < sizeof m->url ? m->url_len : strlen(m->url);
    enum rp_http_route route = rp_http_route(m->method, m->url, url_len, &allow);
    char extra[64];
    switch (route) {
    case RP_HTTP_ROUTE_RPC:
        http_rpc(c, s, m->body ? m->body : "", m->body_len);
        break;
    case RP_HTTP_ROUTE_HEALTH:
        http_health(c, s);
        break;
    case RP_HTTP_ROUTE_METRICS:
        http_metrics(c, s);
        break;
    case RP_HTTP_ROUTE_OPTIONS:
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        http_fill(c, s, 200, NULL, "", 0, extra);
        break;
    case RP_HTTP_ROUTE_NOT_FOUND:
        http_plain(c, s, 404, "not found", NULL);
        break;
    case RP_HTTP_ROUTE_BAD_METHOD:
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        http_plain(c, s, 405, "method not allowed", extra);
        break;
    }
    if (!c->closed)
        rp_http_parser_trim(&h->hp);
}
/* A bad request: answer it in its turn and close the connection. */
void rp_httpd_on_error(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    struct http_slot *s = h->cur ? h->cur : http_slot_new(c);
    h->cur = NULL;
    if (!s) {
        rp_conn_close(c);
        return;
    }
    int status = h->hp.error_status ? h->hp.error_status : 400;
    const char *why = h->hp.error_reason ? h->hp.error_reason : "bad request";
    rp_debug("HTTP request refused", "fd=%d status=%d reason=\"%s\"", c->ev.fd, status, why);
    s->interim = 0;
    s->head_only = 0;
    s->close = 1;
    h->closing = 1;
    http_plain(c, s, status, why, NULL);
}
/* Parse what has arrived, one event at a time, while back-pressure allows;
 * the unparsed rest stays buffered. */
void rp_httpd_process_input(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    size_t off = 0;
    c->processing = 1;
    while (!c->closed && off < c->in_len && c->pending < RP_CONN_MAX_PENDING &&
           !rp_httpd_paused(c)) {
        if (rp_w.stopping && rp_http_parser_idle(&h->hp))
            break; /* no new request: the rest is handed over (or dropped) */
        size_t used = 0;
        enum rp_http_event ev = rp_http_parser_feed(&h->hp, c->in + off, c->in_len - off, &used);
        off += used;
        if (ev == RP_HTTP_HEADERS)
            http_on_headers(c);
        else if (ev == RP_HTTP_MESSAGE)
            http_on_message(c);
        else if (ev == RP_HTTP_ERROR)
            rp_httpd_on_error(c);
    }
    c->processing = 0;
    if (!c->closed && off > 0) {
        if (h->closing)
            off = c->in_len; /* nothing after a closing request is read */
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}
/* Lingering close: read and drop until the client closes (bounded per
 * call, like conn_read). */
void rp_httpd_linger_read(struct rp_conn *c)
{
    char sink[16384];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = recv(c->ev.fd, sink, sizeof sink, 0);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        rp_conn_close(c);
        return;
    }
}