/* conn.c - client connections of a worker: accept, read and frame the byte
 * stream into JSON values, queue answers and write them, back-pressure.
 *
 * Ownership: a connection is freed when its fd is closed and no request
 * refers to it (refs == 0). A request whose client went away keeps running
 * and its answer is dropped.
 */
#include "rp_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rp_handoff.h"
#include "rp_log.h"

static void conn_idle_timeout(struct rp_timer *t, void *arg);
static void conn_resume(struct rp_timer *t, void *arg);
static void conn_process_input(struct rp_conn *c);

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
    free(c->in);
    free(c->out);
    free(c);
}

/* Register the events the connection wants now: input unless paused by
 * back-pressure or finished, output while answers wait. */
static void conn_update_events(struct rp_conn *c)
{
    if (c->closed)
        return;
    uint32_t want = 0;
    int paused = c->pending >= RP_CONN_MAX_PENDING ||
                 c->out_len - c->out_off >= RP_CONN_OUT_HIGH_BYTES;
    if (!paused && !c->read_eof && !c->close_after_flush && !rp_w.stopping)
        want |= EPOLLIN | EPOLLRDHUP;
    if (c->out_len > c->out_off)
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    epoll_ctl(rp_w.epfd, EPOLL_CTL_MOD, c->ev.fd, &ev);
    c->events = want;
}

static void conn_touch(struct rp_conn *c)
{
    c->last_active_ms = rp_worker_now_ms();
    rp_timer_arm(&rp_w.timers, &c->idle_timer,
                 c->last_active_ms + (uint64_t)rp_w.cfg->client_idle_timeout_ms);
}

/* Set up a connection for an accepted (or handed-over) fd. */
static struct rp_conn *conn_new(int fd, int http_only)
{
    struct rp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ev.kind = RP_EV_CLIENT;
    c->ev.fd = fd;
    c->http_only = http_only;
    rp_frame_init(&c->frame);
    rp_timer_init(&c->idle_timer, conn_idle_timeout, c);
    rp_timer_init(&c->resume_timer, conn_resume, c);
    c->events = EPOLLIN | EPOLLRDHUP;
    struct epoll_event ev = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(rp_w.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        return NULL;
    }
    conn_link(c);
    conn_touch(c);
    struct rp_shm_worker *ws = rp_shm_worker(rp_w.shm, rp_w.slot);
    atomic_fetch_add_explicit(&ws->clients, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rp_w.shm->clients_open, 1, memory_order_relaxed);
    return c;
}

/* Accept every pending client on the listen socket. */
void rp_conn_accept(const struct rp_listener *l)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(l->ev.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                rp_warn("accept failed", "error=\"%s\"", strerror(errno));
            return;
        }
        if (!conn_new(fd, l->http_only))
            close(fd);
    }
}

/* Take over a client handed from a retiring worker, with the bytes it had
 * already sent that do not yet form a whole request. */
void rp_conn_adopt(int fd, const char *data, size_t len)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    struct rp_conn *c = conn_new(fd, 0);
    if (!c) {
        close(fd);
        return;
    }
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

/* Retiring: hand every quiescent client to the supervisor on channel CH.
 * Returns the number still held here (busy, or the channel was full). */
unsigned rp_conn_handoff_all(int ch)
{
    unsigned held = 0;
    struct rp_conn *c = rp_w.conns;
    while (c) {
        struct rp_conn *next = c->next;
        int quiet = c->pending == 0 && c->out_off == c->out_len && !c->close_after_flush &&
                    c->in_len <= RP_HANDOFF_MAX_BYTES;
        if (quiet && c->read_eof) {
            rp_conn_close(c);
        } else if (quiet && ch >= 0 && rp_handoff_send(ch, c->ev.fd, c->in, c->in_len) == 0) {
            rp_conn_close(c); /* our copy only: the client's socket lives on */
        } else {
            conn_update_events(c);
            held++;
        }
        c = next;
    }
    return held;
}

/* Close the fd now; the struct lives on while requests refer to it. */
void rp_conn_close(struct rp_conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    epoll_ctl(rp_w.epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
    close(c->ev.fd);
    rp_timer_cancel(&rp_w.timers, &c->idle_timer);
    rp_timer_cancel(&rp_w.timers, &c->resume_timer);
    conn_unlink(c);
    struct rp_shm_worker *ws = rp_shm_worker(rp_w.shm, rp_w.slot);
    atomic_fetch_sub_explicit(&ws->clients, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&rp_w.shm->clients_open, 1, memory_order_relaxed);
    if (c->refs == 0)
        conn_free(c);
}

void rp_conn_unref(struct rp_conn *c)
{
    c->refs--;
    if (c->closed && c->refs == 0)
        conn_free(c);
}

static void conn_idle_timeout(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_conn *c = arg;
    if (c->pending > 0 || c->out_len > c->out_off) {
        conn_touch(c); /* busy, not idle */
        return;
    }
    rp_debug("client idle timeout", "fd=%d", c->ev.fd);
    rp_conn_close(c);
}

/* Write as much queued output as the socket takes. Returns -1 when the
 * connection was closed (write error). */
static int conn_flush(struct rp_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->ev.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
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
        c->out_off = c->out_len = 0;
        if ((c->close_after_flush || c->read_eof) && c->pending == 0) {
            rp_conn_close(c);
            return -1;
        }
    } else if (c->out_off > (1u << 16) && c->out_off * 2 > c->out_len) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    return 0;
}

/* Queue DATA followed by a newline and try to send it at once. */
void rp_conn_write_answer(struct rp_conn *c, const char *data, size_t len)
{
    if (c->closed)
        return;
    size_t need = c->out_len + len + 1;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < need)
            cap *= 2;
        char *o = realloc(c->out, cap);
        if (!o) {
            rp_warn("out of memory queueing an answer: closing client", NULL);
            rp_conn_close(c);
            return;
        }
        c->out = o;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out[c->out_len + len] = '\n';
    c->out_len += len + 1;
    conn_touch(c);
    if (conn_flush(c) == 0)
        conn_update_events(c);
}

/* A request of this connection got its answer (or was dropped). */
void rp_conn_request_done(struct rp_conn *c)
{
    if (c->pending)
        c->pending--;
    if (c->closed)
        return;
    if ((c->read_eof || c->close_after_flush) && c->pending == 0 && c->out_off == c->out_len &&
        (!c->in_len || c->close_after_flush)) {
        rp_conn_close(c);
        return;
    }
    /* input held back by back-pressure runs from the loop, not from here:
     * this may be called while that input is being dispatched */
    if (c->in_len && !c->processing && c->pending < RP_CONN_MAX_PENDING)
        rp_timer_arm(&rp_w.timers, &c->resume_timer, 0);
    conn_update_events(c);
}

static void conn_resume(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_conn *c = arg;
    c->refs++; /* dispatch may close the connection under us */
    conn_process_input(c);
    if (!c->closed && c->read_eof && c->pending == 0 && c->out_off == c->out_len)
        rp_conn_close(c);
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

/* Frame what has arrived into values and hand each to the request layer.
 * Stops early when back-pressure applies; the rest stays buffered. */
static void conn_process_input(struct rp_conn *c)
{
    size_t consumed = 0;
    size_t max_req = (size_t)rp_w.cfg->max_request_bytes;
    c->processing = 1;
    while (!c->closed && !c->close_after_flush && c->pending < RP_CONN_MAX_PENDING) {
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

/* Read what the socket has (bounded per call so one client cannot starve
 * the others), then frame it. */
static void conn_read(struct rp_conn *c)
{
    size_t max_buf = (size_t)rp_w.cfg->max_request_bytes + RP_CONN_READ_BYTES;
    for (int rounds = 0; rounds < 16 && !c->closed; rounds++) {
        if (c->in_cap - c->in_len < RP_CONN_READ_BYTES) {
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
        ssize_t n = recv(c->ev.fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            conn_touch(c);
            conn_process_input(c);
            if (c->closed || c->pending >= RP_CONN_MAX_PENDING || c->close_after_flush)
                break;
            continue;
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
    if (c->closed)
        return;
    if (c->read_eof && c->pending == 0 && c->out_off == c->out_len) {
        rp_conn_close(c);
        return;
    }
    conn_update_events(c);
}

/* Handle one epoll event. The connection is held for the duration, since
 * answering may close it. */
void rp_conn_event(struct rp_conn *c, uint32_t events)
{
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
