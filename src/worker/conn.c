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
 * The HTTP front is httpd.c (conn.h is what the two share).
 */
#include "conn.h"

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
#include "subs.h"

static void conn_idle_timeout(struct rp_timer *t, void *arg);
static void conn_resume(struct rp_timer *t, void *arg);
static void conn_partial_timeout(struct rp_timer *t, void *arg);
static void conn_process_input(struct rp_conn *c);
static void conn_frame_input(struct rp_conn *c);

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
int rp_conn_backlogged(const struct rp_conn *c)
{
    return conn_held(c) >= RP_CONN_OUT_HIGH_BYTES;
}

/* C's buffered input waits for C itself: too many requests in flight, or
 * its own answers unread (so no request timeout runs against it). */
static int conn_held_back(const struct rp_conn *c)
{
    return c->pending >= RP_CONN_MAX_PENDING || rp_conn_backlogged(c) || rp_httpd_paused(c);
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

/* Register the events the connection wants now: input unless paused by
 * back-pressure or finished, output while answers wait. */
void rp_conn_update_events(struct rp_conn *c)
{
    if (c->closed)
        return;
    uint32_t want = 0;
    if (c->http && c->http->lingering) {
        want = EPOLLIN | EPOLLRDHUP;
    } else {
        int paused = conn_held_back(c);
        if (!paused && !c->read_eof && !c->close_after_flush &&
            (!rp_w.stopping || rp_httpd_finish_request(c)))
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

/* Set up a connection for an accepted (or handed-over) fd. COUNTED: the
 * client is already in this slot's count (admitted by rp_hold_client_admit);
 * else it is counted here. On failure the count is as it was before. */
static struct rp_conn *conn_new(int fd, int http_only, int counted)
{
    struct rp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ev.handler = rp_conn_on_event;
    c->ev.fd = fd;
    c->http_only = http_only;
    if (http_only && rp_httpd_setup(c) != 0) {
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
    const char *subs = NULL;
    uint32_t subs_len = 0;
    if (len > 5 && data[0] == 'S') { /* its subscriptions first (rp_subw_encode) */
        memcpy(&subs_len, data + 1, 4);
        if (subs_len > len - 5) {
            close(fd);
            return;
        }
        subs = data + 5;
        data += 5 + subs_len;
        len -= 5 + subs_len;
    }
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
    if (subs && rp_subw_adopt(c, subs, subs_len) == (size_t)-1) {
        rp_warn("handed-over subscriptions could not be read: closing the client", NULL);
        rp_conn_close(c);
        return;
    }
    if (c->closed)
        return;
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
        size_t pre = 0; /* its subscriptions, when it has some (subs.c) */
        if (quiet && c->subs) {
            size_t n = c->in_len + 6 < sizeof msg
                           ? rp_subw_encode(c, msg + 5, sizeof msg - 6 - c->in_len)
                           : (size_t)-1;
            if (n == (size_t)-1) {
                /* too many to travel: they end where the client sees it */
                rp_subw_end_conn(c, "too many subscriptions to move to a new worker on reload");
                rp_conn_queue_flush(c);
                quiet = 0;
            } else {
                uint32_t n32 = (uint32_t)n;
                msg[0] = 'S';
                memcpy(msg + 1, &n32, 4);
                pre = 5 + n;
            }
        }
        if (quiet) {
            msg[pre] = c->proto == CONN_PROTO_HTTP ? 'H' : c->proto == CONN_PROTO_IPC ? 'I' : 'U';
            if (c->in_len)
                memcpy(msg + pre + 1, c->in, c->in_len);
        }
        if (quiet && c->read_eof) {
            rp_conn_close(c);
        } else if (quiet && ch >= 0 &&
                   rp_handoff_send(ch, c->ev.fd, msg, pre + c->in_len + 1) == 0) {
            rp_conn_close(c); /* our copy only: the client's socket lives on */
        } else {
            rp_conn_update_events(c);
            held++;
        }
        c = next;
    }
    return held;
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
    rp_subw_conn_closed(c);
    if (c->http) {
        c->refs++; /* the slots' references must not free C under us */
        rp_httpd_drop_slots(c);
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
            rp_httpd_slot_free(s);
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
    rp_conn_update_events(c);
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
    if (c->pending > 0 || (c->subs && c->out_off == c->out_len))
        c->last_active_ms = now; /* a subscriber waiting for blocks is not idle */
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
void rp_conn_queue_flush(struct rp_conn *c)
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
            rp_conn_update_events(c);
    }
}

/* Queue DATA (and a newline when NEWLINE) for output. Returns 0, or -1 when
 * memory ran out (the connection is then closed). */
int rp_conn_out_append(struct rp_conn *c, const char *data, size_t len, int newline)
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

/* Queue DATA followed by a newline and try to send it at once. For an HTTP
 * request's stand-in, DATA is the body of its 200 answer. */
void rp_conn_write_answer(struct rp_conn *c, const char *data, size_t len)
{
    if (c->parent) {
        rp_httpd_sub_answer(c, data, len);
        return;
    }
    if (c->closed)
        return;
    if (rp_conn_out_append(c, data, len, 1) == 0)
        rp_conn_queue_flush(c);
}

/* After a request of C finished: close when that was the last thing to
 * wait for, resume input held back, update the events. */
void rp_conn_after_request(struct rp_conn *c)
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
    rp_conn_update_events(c);
}

/* A request of this connection got its answer (or was dropped). */
void rp_conn_request_done(struct rp_conn *c)
{
    if (c->parent) {
        rp_httpd_sub_done(c);
        return;
    }
    if (c->pending)
        c->pending--;
    rp_conn_after_request(c);
}

static void conn_resume(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_conn *c = arg;
    c->refs++; /* dispatch may close the connection under us */
    conn_process_input(c);
    if (!c->closed && c->read_eof && c->pending == 0 && c->out_off == c->out_len)
        conn_end(c);
    rp_conn_update_events(c);
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
        rp_conn_update_events(c);
}

/* ---------------------------------------------------------------------
 * HTTP requests
 * ------------------------------------------------------------------- */

/* ---------------------------------------------------------------------
 * input
 * ------------------------------------------------------------------- */

/* Decide the protocol of C from its first bytes. Returns 0 when known, -1
 * while more bytes are needed (or the connection was closed). */
static int conn_detect(struct rp_conn *c)
{
    if (c->http_only) {
        if (rp_httpd_setup(c) == 0)
            return 0;
        rp_conn_close(c);
        return -1;
    }
    switch (rp_http_detect(c->in, c->in_len)) {
    case RP_HTTP_DETECT_YES:
        if (rp_httpd_setup(c) == 0)
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
        rp_httpd_on_error(c);
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
        rp_httpd_process_input(c);
        return;
    }
    size_t consumed = 0;
    size_t max_req = (size_t)rp_w.cfg->max_request_bytes;
    c->processing = 1;
    while (!c->closed && !c->close_after_flush && c->pending < RP_CONN_MAX_PENDING &&
           !rp_conn_backlogged(c)) {
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
        rp_httpd_linger_read(c);
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
                (rp_w.stopping && c->http && !rp_httpd_finish_request(c)))
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
    rp_conn_update_events(c);
}

/* Handle one epoll event on client EV (the struct rp_ev of a struct
 * rp_conn). The connection is held for the duration, since answering may
 * close it. */
void rp_conn_on_event(struct rp_ev *ev, uint32_t events)
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
            rp_conn_update_events(c);
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
            rp_conn_update_events(c);
        c = next;
    }
}
