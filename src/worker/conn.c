/* conn.c - client connections of a worker: accept, tell IPC from HTTP by
 * the first bytes, read and frame the byte stream into requests, queue
 * answers and write them, back-pressure, handoff.
 *
 * Ownership: a connection is freed when its fd is closed and no request
 * refers to it (refs == 0). A request whose client went away keeps running
 * and its answer is dropped.
 *
 * IPC framing: each JSON value is one request; answers are written as they
 * come, one line each, in any order.
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
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "rp_handoff.h"
#include "rp_hold.h"
#include "rp_http.h"
#include "rp_log.h"
#include "rp_metrics.h"
#include "rp_shm_view.h"

/* c->proto */
#define CONN_PROTO_UNKNOWN 0
#define CONN_PROTO_IPC     1
#define CONN_PROTO_HTTP    2

/* After an answer that closes an HTTP connection: the write side is shut
 * and what the client still sends is read and dropped for this long, so it
 * reads the answer rather than a reset (nginx's lingering close). */
#define HTTP_LINGER_MS 2000

static const char http_continue[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* One HTTP request's place in its connection's answer order. */
struct http_slot {
    struct rp_conn sub; /* first: the stand-in request.c answers through */
    struct http_slot *next;
    struct rp_buf resp; /* the whole response once filled */
    int filled;
    int interim;       /* "100 Continue" to send when this slot reaches the head */
    int close;         /* the connection closes after this answer */
    int head_only;     /* HEAD: headers only */
    int keep_alive_10; /* an HTTP/1.0 client that asked for keep-alive */
    int in_queue;
    int counted; /* its request counts in the client's pending */
    size_t held; /* bytes of resp counted in rp_conn_hold() */
};

/* HTTP state of a client connection. */
struct rp_http_conn {
    struct rp_http_parser hp;
    struct http_slot *head, *tail;
    struct http_slot *cur; /* the request being received (head complete) */
    unsigned nslots;
    int closing;   /* an answer that closes the connection is queued: parse no more */
    int lingering; /* everything answered, write side shut: drop input until EOF */
};

static void conn_idle_timeout(struct rp_timer *t, void *arg);
static void conn_resume(struct rp_timer *t, void *arg);
static void conn_partial_timeout(struct rp_timer *t, void *arg);
static void conn_process_input(struct rp_conn *c);
static void conn_frame_input(struct rp_conn *c);
static void http_on_error(struct rp_conn *c);
static void http_flush_queue(struct rp_conn *c);

static void conn_link(struct rp_conn *c)
{
    c->next = rp_w.conns;
    c->prev = NULL;
    if (rp_w.conns)
        rp_w.conns->prev = c;
    rp_w.conns = c;
    rp_w.nconns++;
}

static void conn_unlink(struct rp_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        rp_w.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    rp_w.nconns--;
}

static void conn_free(struct rp_conn *c)
{
    if (c->http) {
        rp_http_parser_free(&c->http->hp);
        free(c->http);
    }
    if (c->in != rp_w.scratch)
        free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    rp_worker_defer_free(c); /* events of this epoll batch may still name it */
}

/* Bytes of answers C holds: queued and unsent, being received for its
 * requests, filled HTTP answers waiting for their turn. */
static size_t conn_held(const struct rp_conn *c)
{
    return c->out_len - c->out_off + c->held_bytes;
}

/* Back-pressure: C holds so many answers that none of its further requests
 * is framed (nor read) until it reads some. */
static int conn_backlogged(const struct rp_conn *c)
{
    return conn_held(c) >= RP_CONN_OUT_HIGH_BYTES;
}

/* HTTP input is held back: too many requests unanswered, too much output
 * unsent, or the connection is closing. */
static int http_paused(const struct rp_conn *c)
{
    const struct rp_http_conn *h = c->http;
    return h &&
           (h->nslots >= RP_CONN_MAX_PENDING || h->closing || h->lingering || conn_backlogged(c));
}

/* C's buffered input waits for C itself: too many requests in flight, or
 * its own answers unread (so no request timeout runs against it). */
static int conn_held_back(const struct rp_conn *c)
{
    return c->pending >= RP_CONN_MAX_PENDING || conn_backlogged(c) || http_paused(c);
}

int rp_conn_hold(struct rp_conn *c, long long delta)
{
    if (c && c->parent)
        c = c->parent;
    if (c)
        c->held_bytes = (size_t)((long long)c->held_bytes + delta);
    rp_w.held_bytes = (size_t)((long long)rp_w.held_bytes + delta);
    if (delta <= 0)
        return 0;
    size_t conn_max = (size_t)rp_w.cfg->max_response_bytes + RP_CONN_OUT_HIGH_BYTES;
    if (c && conn_held(c) > conn_max)
        return -1;
    size_t worker_max = conn_max * RP_WORKER_HELD_CONNS;
    if (worker_max < RP_WORKER_HELD_MIN_BYTES)
        worker_max = RP_WORKER_HELD_MIN_BYTES;
    return rp_w.held_bytes > worker_max ? -1 : 0;
}

/* A retiring worker keeps reading an HTTP client until the request it is
 * receiving is whole (a parser's state cannot travel with the fd); the
 * bytes after it are handed over unparsed. */
static int http_finish_request(const struct rp_conn *c)
{
    return rp_w.retiring && c->http && !rp_http_parser_idle(&c->http->hp);
}

/* Register the events the connection wants now: input unless paused by
 * back-pressure or finished, output while answers wait. */
static void conn_update_events(struct rp_conn *c)
{
    if (c->closed)
        return;
    uint32_t want = 0;
    if (c->http && c->http->lingering) {
        want = EPOLLIN | EPOLLRDHUP;
    } else {
        int paused = conn_held_back(c);
        if (!paused && !c->read_eof && !c->close_after_flush &&
            (!rp_w.stopping || http_finish_request(c)))
            want |= EPOLLIN | EPOLLRDHUP;
        if (c->out_len > c->out_off)
            want |= EPOLLOUT;
    }
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    epoll_ctl(rp_w.epfd, EPOLL_CTL_MOD, c->ev.fd, &ev);
    c->events = want;
}

/* The client did something: its idle clock restarts. The timer is only
 * moved when it fires (conn_idle_timeout), not on every request. */
static void conn_touch(struct rp_conn *c)
{
    c->last_active_ms = rp_worker_now_ms();
    if (!rp_timer_armed(&c->idle_timer))
        rp_timer_arm(&rp_w.timers, &c->idle_timer,
                     c->last_active_ms + (uint64_t)rp_w.cfg->client_idle_timeout_ms);
}

/* Make C an HTTP connection. Returns 0, or -1 out of memory. */
static int http_setup(struct rp_conn *c)
{
    struct rp_http_conn *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    rp_http_parser_init(&h->hp, (size_t)rp_w.cfg->max_request_bytes);
    c->http = h;
    c->proto = CONN_PROTO_HTTP;
    return 0;
}

static void conn_on_event(struct rp_ev *ev, uint32_t events);

/* Set up a connection for an accepted (or handed-over) fd. COUNTED: the
 * client is already in this slot's count (admitted by rp_hold_client_admit);
 * else it is counted here. On failure the count is as it was before. */
static struct rp_conn *conn_new(int fd, int http_only, int counted)
{
    struct rp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ev.handler = conn_on_event;
    c->ev.fd = fd;
    c->http_only = http_only;
    if (http_only && http_setup(c) != 0) {
        free(c);
        return NULL;
    }
    rp_frame_init(&c->frame);
    rp_timer_init(&c->idle_timer, conn_idle_timeout, c);
    rp_timer_init(&c->resume_timer, conn_resume, c);
    rp_timer_init(&c->partial_timer, conn_partial_timeout, c);
    c->events = EPOLLIN | EPOLLRDHUP;
    struct epoll_event ev = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(rp_w.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        conn_free(c);
        return NULL;
    }
    conn_link(c);
    conn_touch(c);
    if (!counted)
        rp_hold_client_add(rp_w.shm, rp_w.slot, +1); /* the slot's own count, rp_hold.h */
    return c;
}

/* Refuse a client beyond max_clients cleanly: one answer saying why (an
 * error object for IPC, 503 for HTTP), then close. The write is
 * best-effort: the socket is new, its buffer empty. */
static void conn_refuse(int fd, int http_only)
{
    static const char ipc[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32005,"
                              "\"message\":\"Limit exceeded: too many clients (max_clients)\"}}\n";
    static const char http[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 17\r\nConnection: close\r\n\r\ntoo many clients\n";
    ssize_t n = http_only ? send(fd, http, sizeof http - 1, MSG_NOSIGNAL)
                          : send(fd, ipc, sizeof ipc - 1, MSG_NOSIGNAL);
    (void)n;
    rp_debug("client refused: max_clients reached", "max_clients=%lld",
             (long long)rp_w.cfg->max_clients);
    close(fd);
}

/* Has this worker taken more than its part of the host's clients? Then it
 * pauses accepting a moment so that EPOLLEXCLUSIVE wakes another worker
 * (one worker would otherwise take every burst of connections). */
static int conn_over_share(void)
{
    if (rp_w.count < 2)
        return 0;
    uint64_t open = rp_hold_clients(rp_w.shm);
    return rp_w.nconns > open / rp_w.count + RP_ACCEPT_FAIR_SLACK;
}

/* Accept pending clients on the listen socket. */
void rp_conn_accept(const struct rp_listener *l)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->ev.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop accepting for a while instead of
                 * spinning on a listen socket that stays readable */
                rp_warn("accept failed: pausing accepts", "error=\"%s\" pause_ms=%d",
                        strerror(errno), RP_ACCEPT_PAUSE_MS);
                rp_worker_pause_accept(RP_ACCEPT_PAUSE_MS);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                rp_warn("accept failed", "error=\"%s\"", strerror(errno));
            }
            return;
        }
        /* counted by admission (store then sum, so concurrent accepts on
         * several workers never pass max_clients together) */
        if (!rp_hold_client_admit(rp_w.shm, rp_w.slot, (uint64_t)rp_w.cfg->max_clients)) {
            conn_refuse(fd, l->http_only);
            continue;
        }
        if (!conn_new(fd, l->http_only, 1)) {
            rp_hold_client_add(rp_w.shm, rp_w.slot, -1);
            close(fd);
        }
        if (conn_over_share()) {
            rp_worker_pause_accept(RP_ACCEPT_FAIR_PAUSE_MS);
            return;
        }
    }
}

/* Take over a client handed from a retiring worker. DATA starts with the
 * protocol tag rp_conn_handoff_all() wrote ('I' IPC, 'H' HTTP, 'U' not yet
 * known), followed by the bytes the client had already sent that do not
 * yet form a whole request (for HTTP: the parser was between requests). */
void rp_conn_adopt(int fd, const char *data, size_t len)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int proto = CONN_PROTO_UNKNOWN;
    if (len > 0) {
        if (data[0] == 'H')
            proto = CONN_PROTO_HTTP;
        else if (data[0] == 'I')
            proto = CONN_PROTO_IPC;
        data++;
        len--;
    }
    struct rp_conn *c = conn_new(fd, proto == CONN_PROTO_HTTP, 0);
    if (!c) {
        close(fd);
        return;
    }
    if (proto == CONN_PROTO_IPC)
        c->proto = CONN_PROTO_IPC;
    if (len) {
        c->in = malloc(len > RP_CONN_READ_BYTES ? len : RP_CONN_READ_BYTES);
        if (!c->in) {
            rp_conn_close(c);
            return;
        }
        c->in_cap = len > RP_CONN_READ_BYTES ? len : RP_CONN_READ_BYTES;
        memcpy(c->in, data, len);
        c->in_len = len;
        rp_timer_arm(&rp_w.timers, &c->resume_timer, 0);
    }
}

/* May C be handed over now? Nothing in flight or unsent, and for HTTP no
 * request begun: the new worker starts a fresh parser. */
static int conn_quiescent(const struct rp_conn *c)
{
    const struct rp_http_conn *h = c->http;
    if (c->pending != 0 || c->out_off != c->out_len || c->close_after_flush ||
        c->in_len >= RP_HANDOFF_MAX_BYTES)
        return 0;
    return !h || (h->nslots == 0 && !h->closing && !h->lingering && rp_http_parser_idle(&h->hp));
}

/* Retiring: hand every quiescent client to the supervisor on channel CH,
 * its protocol tag first (see rp_conn_adopt). Returns the number still
 * held here (busy, or the channel was full). */
unsigned rp_conn_handoff_all(int ch)
{
    static char msg[RP_HANDOFF_MAX_BYTES];
    unsigned held = 0;
    struct rp_conn *c = rp_w.conns;
    while (c) {
        struct rp_conn *next = c->next;
        int quiet = conn_quiescent(c);
        if (quiet) {
            msg[0] = c->proto == CONN_PROTO_HTTP ? 'H' : c->proto == CONN_PROTO_IPC ? 'I' : 'U';
            if (c->in_len)
                memcpy(msg + 1, c->in, c->in_len);
        }
        if (quiet && c->read_eof) {
            rp_conn_close(c);
        } else if (quiet && ch >= 0 && rp_handoff_send(ch, c->ev.fd, msg, c->in_len + 1) == 0) {
            rp_conn_close(c); /* our copy only: the client's socket lives on */
        } else {
            conn_update_events(c);
            held++;
        }
        c = next;
    }
    return held;
}

/* Free slot S (out of the queue, no request refers to it) and drop its
 * reference on the client's connection. */
static void http_slot_free(struct http_slot *s)
{
    struct rp_conn *parent = s->sub.parent;
    rp_buf_free(&s->resp);
    free(s);
    rp_conn_unref(parent);
}

/* The client went away: forget every queued answer. Slots a request still
 * refers to are freed when it lets go. The caller holds a reference on C. */
static void http_drop_slots(struct rp_conn *c)
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
            http_slot_free(s);
        s = next;
    }
}

/* Close the fd now; the struct lives on while requests refer to it. */
void rp_conn_close(struct rp_conn *c)
{
    if (c->closed || c->parent)
        return;
    c->closed = 1;
    epoll_ctl(rp_w.epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
    close(c->ev.fd);
    rp_timer_cancel(&rp_w.timers, &c->idle_timer);
    rp_timer_cancel(&rp_w.timers, &c->partial_timer);
    rp_timer_cancel(&rp_w.timers, &c->resume_timer);
    conn_unlink(c);
    rp_conn_hold(NULL, -(long long)(c->out_len - c->out_off)); /* never to be sent */
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = c->out_cap = 0;
    rp_hold_client_add(rp_w.shm, rp_w.slot, -1);
    if (c->http) {
        c->refs++; /* the slots' references must not free C under us */
        http_drop_slots(c);
        c->refs--;
    }
    if (c->refs == 0)
        conn_free(c);
}

void rp_conn_unref(struct rp_conn *c)
{
    c->refs--;
    if (c->parent) {
        struct http_slot *s = (struct http_slot *)c;
        if (c->refs == 0 && !s->in_queue)
            http_slot_free(s);
        return;
    }
    if (c->closed && c->refs == 0)
        conn_free(c);
}

/* The connection is done with. IPC: close it. HTTP after an answer that
 * closes the connection: shut the write side and drop what the client
 * still sends until it closes or HTTP_LINGER_MS pass. */
static void conn_end(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    if (h && h->lingering)
        return; /* already ending: EOF or the timer closes it */
    if (!h || c->read_eof || !c->close_after_flush || rp_w.stopping) {
        rp_conn_close(c);
        return;
    }
    h->lingering = 1;
    shutdown(c->ev.fd, SHUT_WR);
    rp_timer_cancel(&rp_w.timers, &c->resume_timer);
    rp_timer_arm(&rp_w.timers, &c->idle_timer, rp_worker_now_ms() + HTTP_LINGER_MS);
    conn_update_events(c);
}

static void conn_idle_timeout(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_conn *c = arg;
    if (c->http && c->http->lingering) {
        rp_conn_close(c);
        return;
    }
    uint64_t idle_ms = (uint64_t)rp_w.cfg->client_idle_timeout_ms;
    uint64_t now = rp_worker_now_ms();
    /* requests in flight keep it open (the wait is ours); answers it does
     * not read do not: that is the send timeout */
    if (c->pending > 0)
        c->last_active_ms = now;
    if (now - c->last_active_ms < idle_ms) {
        rp_timer_arm(&rp_w.timers, &c->idle_timer, c->last_active_ms + idle_ms);
        return;
    }
    if (c->out_len > c->out_off)
        rp_info("client took none of its answers for client_idle_timeout_ms: closing",
                "fd=%d unsent_bytes=%zu", c->ev.fd, c->out_len - c->out_off);
    else
        rp_debug("client idle timeout", "fd=%d", c->ev.fd);
    rp_conn_close(c);
}

/* Write as much queued output as the socket takes. Returns -1 when the
 * connection was closed (write error) or is ending. */
static int conn_flush(struct rp_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->ev.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            rp_conn_hold(NULL, -(long long)n);
            conn_touch(c); /* the client takes its answers */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        rp_conn_close(c);
        return -1;
    }
    if (c->out_off == c->out_len) {
        free(c->out); /* an idle client holds no output buffer */
        c->out = NULL;
        c->out_cap = c->out_off = c->out_len = 0;
        if ((c->close_after_flush || c->read_eof) && c->pending == 0) {
            conn_end(c);
            return -1;
        }
    } else if (c->out_off > (1u << 16) && c->out_off * 2 > c->out_len) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return 0;
}

/* Write C's queued output at the end of this loop turn, together with
 * whatever else gets answered in the same turn: one write for many answers
 * (rp_conn_flush_all()). */
static void conn_queue_flush(struct rp_conn *c)
{
    if (c->flush_queued || c->closed)
        return;
    c->flush_queued = 1;
    c->flush_next = rp_w.flush_head;
    rp_w.flush_head = c;
}

void rp_conn_flush_all(void)
{
    struct rp_conn *c;
    while ((c = rp_w.flush_head)) {
        rp_w.flush_head = c->flush_next;
        c->flush_queued = 0;
        if (c->closed) /* freed at the end of the turn, after this */
            continue;
        if (conn_flush(c) == 0)
            conn_update_events(c);
    }
}

/* Queue DATA (and a newline when NEWLINE) for output. Returns 0, or -1 when
 * memory ran out (the connection is then closed). */
static int conn_out_append(struct rp_conn *c, const char *data, size_t len, int newline)
{
    size_t need = c->out_len + len + (newline ? 1 : 0);
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) {
            rp_warn("out of memory queueing an answer: closing client", NULL);
            rp_conn_close(c);
            return -1;
        }
        c->out = o;
        c->out_cap = cap;
    }
    if (len)
        memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    if (newline)
        c->out[c->out_len++] = '\n';
    rp_conn_hold(NULL, (long long)(len + (newline ? 1 : 0)));
    return 0;
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
            if (conn_out_append(c, http_continue, sizeof http_continue - 1, 0) != 0)
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
        int rc = failed ? 0 : conn_out_append(c, s->resp.data, s->resp.len, 0);
        rp_buf_free(&s->resp);
        if (s->sub.refs == 0)
            http_slot_free(s); /* C is not closed: its struct stays */
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
        conn_queue_flush(c);
        return;
    }
    conn_update_events(c);
}

/* request.c answered the request of stand-in SUB. */
static void http_sub_answer(struct rp_conn *sub, const char *data, size_t len)
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

/* Queue DATA followed by a newline and try to send it at once. For an HTTP
 * request's stand-in, DATA is the body of its 200 answer. */
void rp_conn_write_answer(struct rp_conn *c, const char *data, size_t len)
{
    if (c->parent) {
        http_sub_answer(c, data, len);
        return;
    }
    if (c->closed)
        return;
    if (conn_out_append(c, data, len, 1) == 0)
        conn_queue_flush(c);
}

/* After a request of C finished: close when that was the last thing to
 * wait for, resume input held back, update the events. */
static void conn_after_request(struct rp_conn *c)
{
    if (c->closed)
        return;
    if ((c->read_eof || c->close_after_flush) && c->pending == 0 && c->out_off == c->out_len &&
        (!c->in_len || c->close_after_flush)) {
        conn_end(c);
        return;
    }
    /* input held back by back-pressure runs from the loop, not from here:
     * this may be called while that input is being dispatched */
    if (c->in_len && !c->processing && c->pending < RP_CONN_MAX_PENDING)
        rp_timer_arm(&rp_w.timers, &c->resume_timer, 0);
    conn_update_events(c);
}

/* The request of stand-in SUB is over: a notification (no answer) gets an
 * empty 200, and the client's count of requests in flight drops. */
static void http_sub_done(struct rp_conn *sub)
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
    conn_after_request(parent);
}

/* A request of this connection got its answer (or was dropped). */
void rp_conn_request_done(struct rp_conn *c)
{
    if (c->parent) {
        http_sub_done(c);
        return;
    }
    if (c->pending)
        c->pending--;
    conn_after_request(c);
}

static void conn_resume(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_conn *c = arg;
    c->refs++; /* dispatch may close the connection under us */
    conn_process_input(c);
    if (!c->closed && c->read_eof && c->pending == 0 && c->out_off == c->out_len)
        conn_end(c);
    conn_update_events(c);
    rp_conn_unref(c);
}

/* Answer a framing-level error (-32700 or too large) and close after it. */
static void conn_fatal(struct rp_conn *c, int code, const char *msg)
{
    char buf[256];
    size_t n = rp_jsonrpc_error(buf, sizeof buf, NULL, 0, code, msg, NULL);
    rp_worker_count_answer(0);
    c->close_after_flush = 1;
    rp_conn_write_answer(c, buf, n < sizeof buf ? n : sizeof buf - 1);
    if (!c->closed)
        conn_update_events(c);
}

/* ---------------------------------------------------------------------
 * HTTP requests
 * ------------------------------------------------------------------- */

/* A new slot at the tail of C's queue, or NULL out of memory. */
static struct http_slot *http_slot_new(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    struct http_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sub.ev.handler = conn_on_event;
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
    if (rp_shm_view_wrap(&v, rp_w.shm, RP_SHM_TOTAL_BYTES, err, sizeof err) != 0 ||
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
static void http_on_error(struct rp_conn *c)
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
static void http_process_input(struct rp_conn *c)
{
    struct rp_http_conn *h = c->http;
    size_t off = 0;
    c->processing = 1;
    while (!c->closed && off < c->in_len && c->pending < RP_CONN_MAX_PENDING && !http_paused(c)) {
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
            http_on_error(c);
    }
    c->processing = 0;
    if (!c->closed && off > 0) {
        if (h->closing)
            off = c->in_len; /* nothing after a closing request is read */
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

/* ---------------------------------------------------------------------
 * input
 * ------------------------------------------------------------------- */

/* Decide the protocol of C from its first bytes. Returns 0 when known, -1
 * while more bytes are needed (or the connection was closed). */
static int conn_detect(struct rp_conn *c)
{
    if (c->http_only) {
        if (http_setup(c) == 0)
            return 0;
        rp_conn_close(c);
        return -1;
    }
    switch (rp_http_detect(c->in, c->in_len)) {
    case RP_HTTP_DETECT_YES:
        if (http_setup(c) == 0)
            return 0;
        rp_conn_close(c);
        return -1;
    case RP_HTTP_DETECT_NO:
        c->proto = CONN_PROTO_IPC;
        return 0;
    default:
        return -1;
    }
}

/* A request that has begun but is not whole yet: bytes of an unfinished
 * JSON value, or an HTTP message still being parsed. */
static int conn_has_partial(const struct rp_conn *c)
{
    if (c->http)
        return c->in_len > 0 || !rp_http_parser_idle(&c->http->hp);
    return c->in_len > 0;
}

/* Slow-loris guard: a request must be whole within request_timeout_ms of
 * its first byte (the clock restarts when a request completes). */
static void conn_partial_check(struct rp_conn *c, int progressed)
{
    if (c->closed)
        return;
    if (!conn_has_partial(c) || conn_held_back(c)) {
        /* held back by its own unread answers (or requests in flight), the
         * client is not slow: the send timeout watches it instead */
        rp_timer_cancel(&rp_w.timers, &c->partial_timer);
        return;
    }
    if (progressed || !rp_timer_armed(&c->partial_timer))
        rp_timer_arm(&rp_w.timers, &c->partial_timer,
                     rp_worker_now_ms() + (uint64_t)rp_w.cfg->request_timeout_ms);
}

static void conn_partial_timeout(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_conn *c = arg;
    if (c->closed || !conn_has_partial(c) || conn_held_back(c))
        return;
    rp_info("client request incomplete after request_timeout_ms: closing", "fd=%d bytes=%zu",
            c->ev.fd, c->in_len);
    c->refs++;
    if (c->http) {
        c->http->hp.error_status = 408;
        c->http->hp.error_reason = "request timeout";
        http_on_error(c);
    } else {
        conn_fatal(c, RP_JSONRPC_INVALID_REQUEST,
                   "Invalid Request: incomplete after "
                   "request_timeout_ms");
    }
    rp_conn_unref(c);
}

/* Frame what has arrived into values and hand each to the request layer,
 * then watch what is left unfinished. */
static void conn_process_input(struct rp_conn *c)
{
    uint32_t before = c->pending;
    size_t in_before = c->in_len;
    conn_frame_input(c);
    conn_partial_check(c, c->pending != before || c->in_len < in_before);
}

/* Frame what has arrived into values and hand each to the request layer.
 * Stops early when back-pressure applies; the rest stays buffered. */
static void conn_frame_input(struct rp_conn *c)
{
    if (c->closed)
        return;
    if (c->proto == CONN_PROTO_UNKNOWN && conn_detect(c) != 0)
        return;
    if (c->proto == CONN_PROTO_HTTP) {
        http_process_input(c);
        return;
    }
    size_t consumed = 0;
    size_t max_req = (size_t)rp_w.cfg->max_request_bytes;
    c->processing = 1;
    while (!c->closed && !c->close_after_flush && c->pending < RP_CONN_MAX_PENDING &&
           !conn_backlogged(c)) {
        size_t start, end;
        enum rp_frame_result r = rp_frame_scan(&c->frame, c->in, c->in_len, &start, &end);
        if (r == RP_FRAME_VALUE) {
            consumed = end;
            if (end - start > max_req) {
                conn_fatal(c, RP_JSONRPC_INVALID_REQUEST, "Request too large");
                break;
            }
            rp_req_dispatch(c, c->in + start, end - start);
            continue;
        }
        if (r == RP_FRAME_NEED_MORE) {
            /* a value still open beyond the limit will never fit */
            if (c->in_len - c->frame.start > max_req && c->frame.pos > c->frame.start)
                conn_fatal(c, RP_JSONRPC_INVALID_REQUEST, "Request too large");
            break;
        }
        if (r == RP_FRAME_TOO_DEEP) {
            conn_fatal(c, RP_JSONRPC_INVALID_REQUEST, "Invalid Request: nesting too deep");
            break;
        }
        conn_fatal(c, RP_JSONRPC_PARSE_ERROR, "Parse error");
        break;
    }
    c->processing = 0;
    /* drop what was consumed, whitespace between values included */
    size_t drop = c->frame.start > consumed ? c->frame.start : consumed;
    if (drop > c->in_len)
        drop = c->in_len;
    if (!c->closed && drop > 0) {
        memmove(c->in, c->in + drop, c->in_len - drop);
        c->in_len -= drop;
        rp_frame_shift(&c->frame, drop);
    }
}

/* Lingering close: read and drop until the client closes (bounded per
 * call, like conn_read). */
static void http_linger_read(struct rp_conn *c)
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

/* After input was handled in the worker's scratch buffer: keep what is
 * left (a request not yet whole) in a buffer of the connection's own. */
static void conn_unscratch(struct rp_conn *c)
{
    if (c->in != rp_w.scratch)
        return;
    char *left = NULL;
    size_t cap = 0;
    if (c->in_len && !c->closed) {
        cap = c->in_len * 2 > 4096 ? c->in_len * 2 : 4096;
        left = malloc(cap);
        if (left)
            memcpy(left, c->in, c->in_len);
    }
    c->in = left;
    c->in_cap = left ? cap : 0;
    if (!left)
        c->in_len = 0;
    if (!left && !c->closed && cap)
        rp_conn_close(c); /* out of memory keeping a partial request */
}

/* Read what the socket has (bounded per call so one client cannot starve
 * the others), then frame it. */
static void conn_read(struct rp_conn *c)
{
    if (c->http && c->http->lingering) {
        http_linger_read(c);
        return;
    }
    size_t max_buf = (size_t)rp_w.cfg->max_request_bytes + RP_CONN_READ_BYTES;
    for (int rounds = 0; rounds < 16 && !c->closed; rounds++) {
        int scratch = 0;
        if (c->in_len == 0 && c->in_cap < RP_CONN_READ_BYTES) {
            /* nothing buffered: read into the worker's buffer, so an idle
             * connection holds no input buffer of its own */
            free(c->in);
            c->in = rp_w.scratch;
            c->in_cap = RP_CONN_READ_BYTES;
            scratch = 1;
        } else if (c->in_cap - c->in_len < RP_CONN_READ_BYTES) {
            size_t cap = c->in_cap ? c->in_cap * 2 : RP_CONN_READ_BYTES * 2;
            if (cap > max_buf + RP_CONN_READ_BYTES)
                cap = max_buf + RP_CONN_READ_BYTES;
            if (cap - c->in_len < 1) {
                /* the buffer is full of one unfinished value: too large */
                conn_process_input(c);
                return;
            }
            char *p = realloc(c->in, cap);
            if (!p) {
                rp_conn_close(c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->ev.fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            conn_touch(c);
            conn_process_input(c);
            if (scratch)
                conn_unscratch(c);
            if (c->closed || conn_held_back(c) || c->close_after_flush ||
                (rp_w.stopping && c->http && !http_finish_request(c)))
                break;
            if ((size_t)n < room)
                break; /* drained: level-triggered epoll says when more comes */
            continue;
        }
        if (scratch) {
            c->in = NULL;
            c->in_cap = 0;
        }
        if (n == 0) {
            c->read_eof = 1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            c->read_eof = 1; /* reset: answers cannot be delivered either */
        break;
    }
    if (c->closed || (c->http && c->http->lingering))
        return;
    if (c->read_eof && c->pending == 0 && c->out_off == c->out_len) {
        rp_conn_close(c);
        return;
    }
    conn_update_events(c);
}

/* Handle one epoll event on client EV (the struct rp_ev of a struct
 * rp_conn). The connection is held for the duration, since answering may
 * close it. */
static void conn_on_event(struct rp_ev *ev, uint32_t events)
{
    struct rp_conn *c = (struct rp_conn *)ev;
    c->refs++;
    if (events & EPOLLERR) {
        rp_conn_close(c);
    } else {
        if ((events & EPOLLOUT) && conn_flush(c) == 0 && c->in_len &&
            c->pending < RP_CONN_MAX_PENDING && !c->close_after_flush)
            conn_process_input(c); /* input held back by back-pressure */
        if (!c->closed && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
            conn_read(c);
        else
            conn_update_events(c);
    }
    rp_conn_unref(c);
}

/* During shutdown: close every client that has nothing in flight. */
void rp_conn_close_all_idle(void)
{
    struct rp_conn *c = rp_w.conns;
    while (c) {
        struct rp_conn *next = c->next;
        if (c->pending == 0 && c->out_off == c->out_len)
            rp_conn_close(c);
        else
            conn_update_events(c);
        c = next;
    }
}
