/* transport_h1.c - the native HTTP/1.1 upstream client of a worker (see rp_h1.h).
 *
 * A connection is in one of five states: CONNECTING (non-blocking connect
 * under way), HANDSHAKE (https: the TLS handshake), WRITING (the request is
 * partly written), READING (the request is out, the response is being read)
 * and IDLE (in its endpoint's LIFO pool). It is registered in epoll once, with EPOLLIN|EPOLLRDHUP,
 * for its whole life; EPOLLOUT is added only while connecting or while a write is incomplete. An
 * idle connection that becomes readable was closed by the server (or sent bytes nobody asked for):
 * it is closed at once.
 *
 * Reuse of an idle connection races with the server closing it. When the
 * first write fails, or the connection is reset or closed before a single
 * response byte, the attempt moves once to a fresh connection (nginx does
 * the same for a cached keep-alive connection). For a state-changing call
 * (no_retry) that happens only when the write itself failed with nothing
 * accepted, so a request that may have reached the endpoint is never sent
 * twice; otherwise the failure is reported with sent = 1. Over TLS a write
 * that was begun may have sent part of a record: such a call is never moved.
 */
#include "transport_h1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "resolve.h"
#include "rp_hold.h"
#include "rp_log.h"
#include "rp_tls.h"
#include "worker.h"

/* ---------------------------------------------------------------------
 * connections
 * ------------------------------------------------------------------- */

enum h1_state {
    H1_CONNECTING = 1,
    H1_HANDSHAKE, /* https: the TLS handshake is under way */
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
    struct rp_h1_url url;
    /* https */
    SSL_CTX *ctx;          /* shared by the endpoints with the same CA (a reference) */
    SSL_SESSION *session;  /* the last session the server gave: resumed by new connections */
    const char *ctx_error; /* why there is no ctx (the CA could not be loaded) */
    /* addresses, refreshed by the resolver on a schedule */
    struct sockaddr_storage addr[RP_H1_MAX_ADDRS];
    socklen_t addr_len[RP_H1_MAX_ADDRS];
    int naddr;
    int addr_cur;  /* the address new connections go to */
    int numeric;   /* the host is an IP literal: never resolved */
    int resolving; /* a lookup is under way */
    uint64_t resolutions;
    struct rp_timer resolve_timer;
    struct rp_req *wait_head, *wait_tail; /* attempts waiting for a first address */
    char logged[96];                      /* the last error warned about, and when */
    uint64_t logged_ms;
    struct rp_h1_conn *idle; /* LIFO: most recently used first */
    struct rp_h1_conn *all;  /* every open connection */
    unsigned nidle;
};

struct rp_h1_conn {
    struct rp_ev ev; /* handler rp_h1_event */
    struct rp_h1_ep *hep;
    struct rp_h1_conn *all_prev, *all_next;
    struct rp_h1_conn *idle_prev, *idle_next;
    enum h1_state state;
    uint32_t registered; /* events in epoll, 0 = not registered */
    struct rp_req *req;  /* the attempt it carries, NULL when idle */
    int reused;          /* it carried a request before this one */
    int addr;            /* index of the address it connects to */
    int addr_tries;      /* addresses tried by the attempt, this one included */
    size_t written;      /* bytes of the request accepted (by the kernel, or by TLS) */
    size_t total;        /* head + Content-Length line + body */
    char clen[48];
    size_t clen_len;
    SSL *ssl;              /* https, else NULL */
    struct rp_buf tx;      /* https: the whole request, written in as few records as fit */
    int tx_started;        /* https: SSL_write was called for this request (bytes may have left) */
    struct rp_timer timer; /* connect (and handshake) deadline, or idle close */
    struct rp_h1_resp resp;
};

static char *h1_rbuf;  /* RP_H1_READ_BYTES, shared by the worker's connections */
static int h1_closing; /* rp_h1_cleanup() under way */
static uint64_t resolve_max_ms = RP_H1_RESOLVE_MAX_MS;

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
    if (c->ssl) {
        if (c->state == H1_IDLE)
            SSL_shutdown(c->ssl); /* close_notify, never waited for */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    rp_buf_free(&c->tx);
    close(c->ev.fd);
    rp_hold_add(&w->stats->conns_open_held, -1);
    if (c->req && c->req->at.h1.conn == c)
        c->req->at.h1.conn = NULL;
    c->req = NULL;
    rp_worker_defer_free(c);
}

static void conn_timer_fired(struct rp_timer *t, void *arg);
static void conn_write(struct rp_h1_conn *c);
static void conn_go(struct rp_h1_conn *c);

static int h1_starting; /* inside rp_h1_start(): outcomes are reported from a timer */
static struct rp_h1_conn *h1_released; /* kept by the attempt rp_req_attempt_done() hears of */

/* Warn about endpoint H's error WHAT once, then again only when it changes
 * or a minute has passed (a refused certificate fails every attempt). */
static void ep_warn(struct rp_h1_ep *h, const char *msg, const char *what)
{
    uint64_t now = rp_worker_now_ms();
    if (strcmp(h->logged, what) == 0 && now - h->logged_ms < 60000)
        return;
    snprintf(h->logged, sizeof h->logged, "%s", what);
    h->logged_ms = now;
    char q[sizeof h->logged + 8];
    rp_warn(msg, "endpoint=%s error=%s", h->w->cfg->name, rp_log_quote(q, sizeof q, what));
}

/* Unlink R from its endpoint's list of attempts waiting for an address. */
static void wait_unlink(struct rp_h1_ep *h, struct rp_req *r)
{
    struct rp_req **pp = &h->wait_head, *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->at.h1.wnext;
    }
    if (*pp) {
        *pp = r->at.h1.wnext;
        if (h->wait_tail == r)
            h->wait_tail = prev;
    }
    r->at.h1.wnext = NULL;
    r->at.h1.waiting = 0;
}

/* Report a failure of R from its timer, soon (never from inside
 * rp_h1_start(): request.c does not expect the outcome there). SENT tells
 * whether bytes may have left. */
#define H1_FAIL_STATUS 0xff  /* at.h1.fail: enum rp_xfer_status + 1 in the low byte */
#define H1_FAIL_SENT   0x100 /* at.h1.fail: bytes may have left */
static void attempt_fail_soon(struct rp_req *r, enum rp_xfer_status status, const char *detail,
                              int sent)
{
    r->at.h1.fail = ((int)status + 1) | (sent ? H1_FAIL_SENT : 0);
    snprintf(r->at.h1.fail_detail, sizeof r->at.h1.fail_detail, "%s", detail ? detail : "");
    rp_timer_arm(&rp_w.timers, &r->at.h1.timer, rp_worker_now_ms());
}

/* Whether bytes of C's request may have reached the endpoint. */
static int conn_sent(const struct rp_h1_conn *c)
{
    return c->written > 0 || c->tx_started;
}

/* End R's attempt with STATUS (DETAIL for CONNECT / IO; SENT: bytes of the
 * request were accepted on a connection given up before). Its connection,
 * if any, goes back to the pool when KEEP, else is closed. Then request.c
 * hears of it. */
static void attempt_end_sent(struct rp_req *r, enum rp_xfer_status status, const char *detail,
                             int keep, int sent)
{
    struct rp_h1_conn *c = r->at.h1.conn;
    struct rp_h1_ep *h = rp_w.eps[r->at.ep].h1;
    if (r->at.h1.waiting)
        wait_unlink(h, r);
    if (h1_starting) {
        if (c) {
            sent = sent || conn_sent(c);
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
        res.sent = sent || conn_sent(c);
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
    rp_timer_cancel(&rp_w.timers, &r->at.h1.timer);
    r->at.h1.fail = 0;
    r->at.h1.conn = NULL;
    if (c) {
        c->req = NULL;
        if (keep && c->state == H1_READING && !(c->ssl && SSL_has_pending(c->ssl))) {
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
    h1_released = c && c->state == H1_IDLE ? c : NULL;
    rp_req_attempt_done(r, &res);
    h1_released = NULL;
}

void rp_h1_discard_released(void)
{
    if (h1_released && h1_released->state == H1_IDLE)
        conn_close(h1_released);
    h1_released = NULL;
}

static void attempt_end(struct rp_req *r, enum rp_xfer_status status, const char *detail, int keep)
{
    attempt_end_sent(r, status, detail, keep, 0);
}

/* ---- TLS ---- */

/* OpenSSL's new-session callback: keep the endpoint's latest session for
 * the next connection (a resumed handshake skips the certificate work). */
static int tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct rp_h1_conn *c = SSL_get_app_data(ssl);
    if (!c || h1_closing)
        return 0;
    struct rp_h1_ep *h = c->hep;
    if (h->session)
        SSL_SESSION_free(h->session);
    h->session = sess;
    return 1; /* the reference is ours */
}

/* The TLS contexts of this worker, one per CA setting (NULL: the system
 * store), shared by the endpoints that use it. */
#define H1_MAX_CTX 8
static struct {
    char *ca_file;
    SSL_CTX *ctx;
} tls_ctxs[H1_MAX_CTX];
static int ntls_ctx;

/* A client context that verifies chains against CA_FILE (NULL: the system
 * store) and, per connection, the host name. NULL when it cannot be made:
 * *WHY says why. */
static SSL_CTX *tls_ctx_get(const char *ca_file, const char **why)
{
    for (int i = 0; i < ntls_ctx; i++)
        if ((ca_file == NULL) == (tls_ctxs[i].ca_file == NULL) &&
            (!ca_file || strcmp(ca_file, tls_ctxs[i].ca_file) == 0))
            return tls_ctxs[i].ctx;
    if (ntls_ctx == H1_MAX_CTX) {
        *why = "too many distinct tls_ca_file values";
        return NULL;
    }
    SSL_CTX *ctx = rp_tls_client_ctx(ca_file, why);
    if (!ctx)
        return NULL;
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* one read() per response instead of one per record header and body;
     * what is read ahead counts as unread bytes (SSL_has_pending) */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
    /* AES-128-GCM first (the server picks among ours): fewer rounds than
     * OpenSSL's default AES-256 at the same security level for TLS */
    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                  "TLS_AES_256_GCM_SHA384");
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    tls_ctxs[ntls_ctx].ca_file = ca_file ? strdup(ca_file) : NULL;
    if (ca_file && !tls_ctxs[ntls_ctx].ca_file) {
        SSL_CTX_free(ctx);
        *why = "out of memory";
        return NULL;
    }
    tls_ctxs[ntls_ctx++].ctx = ctx;
    return ctx;
}

/* Set C up for a TLS client handshake with its endpoint: SNI, the host
 * name (or IP address) the certificate must name, the last session.
 * Returns 0, -1 when out of memory. */
static int tls_attach(struct rp_h1_conn *c)
{
    struct rp_h1_ep *h = c->hep;
    SSL *ssl = SSL_new(h->ctx);
    if (!ssl)
        return -1;
    SSL_set_app_data(ssl, c);
    if (!SSL_set_fd(ssl, c->ev.fd)) {
        SSL_free(ssl);
        return -1;
    }
    if (rp_tls_set_peer(ssl, h->url.host, h->numeric) != 0) {
        SSL_free(ssl);
        return -1;
    }
    if (h->session)
        SSL_set_session(ssl, h->session);
    SSL_set_connect_state(ssl);
    c->ssl = ssl;
    return 0;
}

/* What went wrong in a TLS call on C that ended with SSL_get_error() E,
 * written into OUT. */
static const char *tls_error(struct rp_h1_conn *c, int e, int saved_errno, char *out, size_t cap)
{
    long v = c->state == H1_HANDSHAKE ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long err = ERR_peek_error();
    if (v != X509_V_OK) {
        snprintf(out, cap, "TLS certificate rejected: %s", X509_verify_cert_error_string(v));
    } else if (e == SSL_ERROR_SYSCALL && !err) {
        snprintf(out, cap, "%s",
                 saved_errno == ECONNRESET ? "connection reset"
                 : saved_errno == 0        ? "closed by the endpoint"
                 : saved_errno == EPIPE    ? "connection reset"
                                           : "connection error");
    } else {
        const char *reason = err ? ERR_reason_error_string(err) : NULL;
        snprintf(out, cap, "TLS error: %s", reason ? reason : "unknown");
    }
    ERR_clear_error();
    return out;
}

/* Drive C's TLS handshake; once done the request is written. */
static void conn_handshake(struct rp_h1_conn *c)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        rp_timer_cancel(&rp_w.timers, &c->timer);
        c->state = H1_WRITING;
        conn_write(c);
        return;
    }
    int saved = errno;
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        conn_register(c, H1_EV_BASE);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_register(c, H1_EV_BASE | EPOLLOUT);
        return;
    }
    char why[96];
    tls_error(c, e, saved, why, sizeof why);
    ep_warn(c->hep, "TLS handshake with endpoint failed", why);
    attempt_end(c->req, RP_XFER_CONNECT, why, 0);
}

/* ---- plain and TLS I/O ---- */

/* Open a connection of endpoint H to address ADDR for R (connect under
 * way, or done). On failure R's attempt fails soon, with NULL returned. */
static struct rp_h1_conn *conn_open(struct rp_h1_ep *h, int addr, struct rp_req *r)
{
    if (h->url.tls && !h->ctx) {
        attempt_fail_soon(r, RP_XFER_CONNECT, h->ctx_error, 0);
        return NULL;
    }
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
    c->ev.handler = rp_h1_event;
    c->ev.fd = fd;
    c->hep = h;
    c->addr = addr;
    c->addr_tries = 1;
    rp_buf_init(&c->tx);
    rp_timer_init(&c->timer, conn_timer_fired, c);
    c->all_next = h->all;
    if (h->all)
        h->all->all_prev = c;
    h->all = c;
    struct rp_wep *w = h->w;
    rp_hold_add(&w->stats->conns_open_held, +1);
    c->req = r;
    r->at.h1.conn = c;
    if (h->url.tls && tls_attach(c) != 0) {
        conn_close(c);
        attempt_fail_soon(r, RP_XFER_CONNECT, "cannot set up TLS", 0);
        return NULL;
    }
    if (connect(fd, sa, h->addr_len[addr]) == 0) {
        c->state = h->url.tls ? H1_HANDSHAKE : H1_WRITING;
        conn_register(c, H1_EV_BASE | EPOLLOUT);
        rp_timer_arm(&rp_w.timers, &c->timer,
                     rp_worker_now_ms() + (uint64_t)rp_w.cfg->connection_timeout_ms);
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

/* Set connection C up to write R's request from the start. Over TLS the
 * request is gathered into one buffer, so it leaves in one record. */
static void conn_load(struct rp_h1_conn *c, struct rp_req *r)
{
    c->written = 0;
    c->tx_started = 0;
    c->clen_len = rp_h1_content_length(c->clen, sizeof c->clen, r->send_len);
    c->total = c->hep->head_len + c->clen_len + r->send_len;
    if (c->ssl) {
        rp_buf_reset(&c->tx);
        rp_buf_append(&c->tx, c->hep->head, c->hep->head_len);
        rp_buf_append(&c->tx, c->clen, c->clen_len);
        rp_buf_append(&c->tx, r->send, r->send_len);
    }
    rp_h1_resp_init(&c->resp, &r->at.body, (size_t)rp_w.cfg->max_response_bytes);
}

/* Move on with C after conn_load(): write the request, or finish the
 * connect / handshake first. */
static void conn_go(struct rp_h1_conn *c)
{
    if (c->state == H1_WRITING)
        conn_write(c);
    else if (c->state == H1_HANDSHAKE)
        conn_handshake(c);
}

/* Move R's attempt from its failing connection C to a fresh one (once):
 * a reused keep-alive connection the server had closed. Returns 1 when
 * moved, 0 when the caller must report the failure. */
static int attempt_move(struct rp_h1_conn *c, int write_failed)
{
    struct rp_req *r = c->req;
    if (!r || !c->reused || r->at.h1.retried || c->resp.bytes > 0)
        return 0;
    /* a state-changing call may be moved only when nothing of it can have
     * left: a plain write that failed with nothing accepted (over TLS a
     * failed SSL_write may have sent part of a record: never moved) */
    if (r->no_retry && !(write_failed && c->written == 0 && !c->tx_started))
        return 0;
    struct rp_h1_ep *h = c->hep;
    r->at.h1.retried = 1;
    conn_close(c);
    struct rp_h1_conn *n = conn_open(h, h->addr_cur, r);
    if (!n)
        return 1; /* its failure is reported from the attempt's timer */
    conn_load(n, r);
    conn_go(n);
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
            conn_go(n);
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

#define IO_AGAIN -1
#define IO_ERROR -2

/* Read from C into h1_rbuf: bytes (> 0), 0 at the end of the stream,
 * IO_AGAIN, or IO_ERROR with *WHY. */
static ssize_t conn_recv(struct rp_h1_conn *c, char *why, size_t cap)
{
    if (!c->ssl) {
        for (;;) {
            ssize_t n = read(c->ev.fd, h1_rbuf, RP_H1_READ_BYTES);
            if (n >= 0)
                return n;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return IO_AGAIN;
            snprintf(why, cap, "%s", errno == ECONNRESET ? "connection reset" : "connection error");
            return IO_ERROR;
        }
    }
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int rc = SSL_read_ex(c->ssl, h1_rbuf, RP_H1_READ_BYTES, &n);
    if (rc > 0)
        return (ssize_t)n;
    int saved = errno;
    int e = SSL_get_error(c->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        if (c->registered & EPOLLOUT)
            conn_register(c, H1_EV_BASE);
        return IO_AGAIN;
    case SSL_ERROR_WANT_WRITE: /* a key update to send first */
        conn_register(c, H1_EV_BASE | EPOLLOUT);
        return IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (!ERR_peek_error() && saved == 0)
            return 0;
        /* fall through */
    default:
        tls_error(c, e, saved, why, cap);
        return IO_ERROR;
    }
}

/* Is the whole response just read on C an answer to another call (sent
 * out of turn before this call's own)? Then it is dropped and the call's
 * own answer is waited for on the same connection, for a while. */
static int conn_stray(struct rp_h1_conn *c)
{
    struct rp_req *r = c->req;
    if (r->at.h1.strays >= RP_H1_MAX_STRAYS || c->resp.status < 200 || c->resp.status >= 300 ||
        !rp_req_is_stray(r))
        return 0;
    r->at.h1.strays++;
    rp_debug("endpoint sent an answer to another call: skipped", "endpoint=%s",
             c->hep->w->cfg->name);
    uint64_t until = rp_worker_now_ms() + RP_H1_STRAY_WAIT_MS;
    rp_timer_arm(&rp_w.timers, &r->at.h1.timer,
                 until < r->at.h1.deadline_ms ? until : r->at.h1.deadline_ms);
    rp_h1_resp_init(&c->resp, &r->at.body, (size_t)rp_w.cfg->max_response_bytes);
    return 1;
}

/* Read what the server sent on busy connection C, feeding the parser;
 * ends the attempt when the response is whole or the connection failed. */
static void conn_read(struct rp_h1_conn *c)
{
    struct rp_req *r = c->req;
    char why[96];
    for (int rounds = 0; c->ssl || rounds < 64; rounds++) {
        ssize_t n = conn_recv(c, why, sizeof why);
        enum rp_h1_resp_state st;
        if (n > 0) {
            size_t used = 0;
            st = rp_h1_resp_feed(&c->resp, h1_rbuf, (size_t)n, &used);
            while (st == RP_H1_RESP_DONE && conn_stray(c)) {
                /* what followed it in this read belongs to the next response */
                size_t more = 0;
                st = used < (size_t)n
                         ? rp_h1_resp_feed(&c->resp, h1_rbuf + used, (size_t)n - used, &more)
                         : RP_H1_RESP_MORE;
                used += more;
            }
        } else if (n == 0) {
            if (attempt_move(c, 0))
                return;
            st = rp_h1_resp_eof(&c->resp);
        } else if (n == IO_AGAIN) {
            return;
        } else {
            if (attempt_move(c, 0))
                return;
            attempt_end(r, RP_XFER_IO, why, 0);
            return;
        }
        switch (st) {
        case RP_H1_RESP_MORE:
            if (rp_req_body_account(r) != 0) { /* its client holds too much already */
                attempt_end(r, RP_XFER_TOO_LARGE, NULL, 0);
                return;
            }
            if (!c->ssl && (size_t)n < RP_H1_READ_BYTES)
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

/* Write what is left of C's request over TLS (records of up to 16 KiB;
 * a partial write resumes with the same bytes). */
static void conn_write_tls(struct rp_h1_conn *c)
{
    struct rp_req *r = c->req;
    while (c->written < c->tx.len) {
        size_t k = 0;
        ERR_clear_error();
        errno = 0;
        c->tx_started = 1;
        int rc = SSL_write_ex(c->ssl, c->tx.data + c->written, c->tx.len - c->written, &k);
        if (rc > 0) {
            c->written += k;
            continue;
        }
        int saved = errno;
        int e = SSL_get_error(c->ssl, rc);
        if (e == SSL_ERROR_WANT_WRITE) {
            conn_register(c, H1_EV_BASE | EPOLLOUT);
            return;
        }
        if (e == SSL_ERROR_WANT_READ) {
            conn_register(c, H1_EV_BASE);
            return;
        }
        if (attempt_move(c, 1))
            return;
        char why[96];
        attempt_end(r, RP_XFER_IO, tls_error(c, e, saved, why, sizeof why), 0);
        return;
    }
    c->state = H1_READING;
    conn_register(c, H1_EV_BASE);
}

/* Write what is left of C's request (one sendmsg when the socket takes it
 * all); EPOLLOUT is watched only while some is left. */
static void conn_write(struct rp_h1_conn *c)
{
    if (c->ssl) {
        conn_write_tls(c);
        return;
    }
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

/* The connection's timer: connect / handshake deadline (busy) or idle
 * limit (idle). */
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
    else if (c->state == H1_HANDSHAKE && c->req)
        attempt_end(c->req, RP_XFER_CONNECT, "TLS handshake timed out", 0);
}

/* The attempt's timer: its deadline, or a failure reported soon. */
static void attempt_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_req *r = arg;
    if (r->at.h1.fail) {
        enum rp_xfer_status st = (enum rp_xfer_status)((r->at.h1.fail & H1_FAIL_STATUS) - 1);
        attempt_end_sent(r, st, r->at.h1.fail_detail, 0, (r->at.h1.fail & H1_FAIL_SENT) != 0);
        return;
    }
    if (r->at.h1.strays && rp_worker_now_ms() < r->at.h1.deadline_ms) {
        attempt_end(r, RP_XFER_IO, "HTTP 200: answers to other calls only", 0);
        return;
    }
    attempt_end(r, RP_XFER_TIMEOUT, NULL, 0);
}

void rp_h1_idle_event(struct rp_ev *ev)
{
    struct rp_h1_conn *c = (struct rp_h1_conn *)ev;
    if (c->state == H1_IDLE)
        conn_close(c);
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
        c->hep->addr_cur = c->addr;
        if (c->ssl) {
            c->state = H1_HANDSHAKE; /* the connect deadline covers the handshake too */
            conn_handshake(c);
            return;
        }
        rp_timer_cancel(&rp_w.timers, &c->timer);
        c->state = H1_WRITING;
        conn_write(c);
        return;
    }
    case H1_HANDSHAKE:
        conn_handshake(c);
        return;
    case H1_WRITING:
        if (c->ssl || (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            conn_write(c);
        /* the write may have ended the attempt or moved it elsewhere */
        if (c->ev.handler != rp_h1_event || !c->req || c->state != H1_READING)
            return;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
            conn_read(c);
        return;
    case H1_READING:
        conn_read(c);
        return;
    }
}

/* May idle connection C carry a request? Not when TLS holds bytes read
 * ahead of the last response. (Bytes on the socket make it readable: the
 * loop closes it before the turn's events are handled, rp_h1_idle_event().
 * A MSG_PEEK here would cost a system call per request for no more.) */
static int conn_clean(struct rp_h1_conn *c)
{
    return !(c->ssl && SSL_has_pending(c->ssl));
}

/* Put R's attempt on a connection of H: the most recently used clean idle
 * one, else a new one. */
static void attempt_go(struct rp_h1_ep *h, struct rp_req *r)
{
    struct rp_h1_conn *c;
    while ((c = h->idle)) {
        idle_unlink(c);
        if (!conn_clean(c)) {
            c->state = H1_CONNECTING; /* out of the pool already */
            conn_close(c);
            continue;
        }
        rp_timer_cancel(&rp_w.timers, &c->timer);
        c->req = r;
        r->at.h1.conn = c;
        c->state = H1_WRITING;
        conn_load(c, r);
        conn_write(c);
        return;
    }
    c = conn_open(h, h->addr_cur, r);
    if (c) {
        conn_load(c, r);
        conn_go(c);
    }
}

int rp_h1_start(struct rp_req *r, int ep, long timeout_ms)
{
    struct rp_wep *w = &rp_w.eps[ep];
    struct rp_h1_ep *h = w->h1;
    rp_timer_init(&r->at.h1.timer, attempt_timer_fired, r);
    r->at.h1.conn = NULL;
    r->at.h1.retried = 0;
    r->at.h1.fail = 0;
    r->at.h1.waiting = 0;
    r->at.h1.wnext = NULL;
    r->at.h1.strays = 0;
    r->at.body_checked = 0;
    r->at.too_large = 0;
    r->at.retry_after_s = 0;
    rp_buf_reset(&r->at.body);
    r->at.h1.deadline_ms = rp_worker_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    rp_hold_add(&w->stats->conns_active_held, +1);
    rp_timer_arm(&rp_w.timers, &r->at.h1.timer, r->at.h1.deadline_ms);
    if (h->naddr == 0) {
        /* no address yet: wait for the lookup (started now if none runs) */
        r->at.h1.waiting = 1;
        if (h->wait_tail)
            h->wait_tail->at.h1.wnext = r;
        else
            h->wait_head = r;
        h->wait_tail = r;
        if (!h->resolving)
            rp_timer_arm(&rp_w.timers, &h->resolve_timer, rp_worker_now_ms());
        return 0;
    }
    h1_starting = 1;
    attempt_go(h, r);
    h1_starting = 0;
    return 0;
}

void rp_h1_cancel(struct rp_req *r)
{
    rp_timer_cancel(&rp_w.timers, &r->at.h1.timer);
    attempt_timer_fired(&r->at.h1.timer, r); /* a failure already due, else a timeout */
}

const struct rp_transport rp_transport_http = {"http", rp_h1_start, rp_h1_cancel,
                                               rp_h1_discard_released};
const struct rp_transport rp_transport_https = {"https", rp_h1_start, rp_h1_cancel,
                                                rp_h1_discard_released};

/* ---------------------------------------------------------------------
 * addresses
 * ------------------------------------------------------------------- */

static void ep_resolved(void *arg, const struct rp_resolved *res);

/* The resolve timer: look H's host up again. */
static void resolve_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    struct rp_h1_ep *h = arg;
    if (h->resolving)
        return;
    h->resolving = 1;
    rp_resolve_start(h->url.host, h->url.port, ep_resolved, h);
}

/* A lookup of H's host ended: new addresses (connections already open
 * stay until they close), the next refresh scheduled from the TTL, and
 * the attempts that waited for an address started or failed. */
static void ep_resolved(void *arg, const struct rp_resolved *res)
{
    struct rp_h1_ep *h = arg;
    h->resolving = 0;
    if (h1_closing)
        return;
    uint64_t next_ms;
    if (res->status == 0) {
        int changed = res->naddr != h->naddr;
        for (int i = 0; !changed && i < res->naddr; i++)
            changed = res->addr_len[i] != h->addr_len[i] ||
                      memcmp(&res->addr[i], &h->addr[i], res->addr_len[i]) != 0;
        for (int i = 0; i < res->naddr && i < RP_H1_MAX_ADDRS; i++) {
            h->addr[i] = res->addr[i];
            h->addr_len[i] = res->addr_len[i];
        }
        h->naddr = res->naddr < RP_H1_MAX_ADDRS ? res->naddr : RP_H1_MAX_ADDRS;
        if (changed || h->addr_cur >= h->naddr)
            h->addr_cur = 0;
        h->resolutions++;
        next_ms = res->ttl_s ? (uint64_t)res->ttl_s * 1000u : resolve_max_ms;
        if (next_ms > resolve_max_ms)
            next_ms = resolve_max_ms;
        if (next_ms < RP_H1_RESOLVE_MIN_MS)
            next_ms = RP_H1_RESOLVE_MIN_MS;
        h->logged[0] = '\0';
        if (changed)
            rp_info("endpoint host resolved", "endpoint=%s addresses=%d ttl_s=%u", h->w->cfg->name,
                    h->naddr, res->ttl_s);
        rp_debug("endpoint host looked up", "endpoint=%s addresses=%d lookups=%llu next_ms=%llu",
                 h->w->cfg->name, h->naddr, (unsigned long long)h->resolutions,
                 (unsigned long long)next_ms);
    } else {
        ep_warn(h, "cannot resolve endpoint host", res->err);
        next_ms = h->naddr ? RP_H1_RESOLVE_RETRY_MS : RP_H1_RESOLVE_MIN_MS;
        if (next_ms > resolve_max_ms)
            next_ms = resolve_max_ms;
    }
    rp_timer_arm(&rp_w.timers, &h->resolve_timer, rp_worker_now_ms() + next_ms);
    while (h->wait_head) {
        struct rp_req *r = h->wait_head;
        wait_unlink(h, r);
        if (h->naddr)
            attempt_go(h, r);
        else
            attempt_end(r, RP_XFER_CONNECT, res->err, 0);
    }
}

/* An IP literal host goes straight into H's address list. Returns 1 when
 * HOST was one. */
static int ep_numeric(struct rp_h1_ep *h)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&h->addr[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&h->addr[0];
    memset(&h->addr[0], 0, sizeof h->addr[0]);
    if (inet_pton(AF_INET, h->url.host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(h->url.port);
        h->addr_len[0] = sizeof *a4;
    } else if (inet_pton(AF_INET6, h->url.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(h->url.port);
        h->addr_len[0] = sizeof *a6;
    } else {
        return 0;
    }
    h->naddr = 1;
    h->numeric = 1;
    return 1;
}

/* ---------------------------------------------------------------------
 * set-up
 * ------------------------------------------------------------------- */

int rp_h1_init(void)
{
    if (!h1_rbuf) {
        h1_rbuf = malloc(RP_H1_READ_BYTES);
        if (!h1_rbuf)
            return -1;
    }
    h1_closing = 0;
    const char *env = getenv("RPCPOOL_RESOLVE_REFRESH_MS"); /* tests: a shorter schedule */
    if (env && atol(env) >= RP_H1_RESOLVE_MIN_MS)
        resolve_max_ms = (uint64_t)atol(env);
    if (rp_resolve_init() != 0)
        return -1;
    for (int i = 0; i < rp_w.nep; i++) {
        struct rp_wep *w = &rp_w.eps[i];
        if (!w->in_use)
            continue;
        struct rp_h1_ep *h = calloc(1, sizeof *h);
        if (!h)
            return -1;
        h->w = w;
        h->ep = i;
        w->h1 = h;
        if (rp_h1_url_parse(w->cfg->url, &h->url) != 0) {
            rp_error("endpoint URL not understood", "endpoint=%s", w->cfg->name);
            return -1;
        }
        w->tr = h->url.tls ? &rp_transport_https : &rp_transport_http;
        h->head = rp_h1_request_head(&h->url, w->cfg->headers, w->cfg->header_count, &h->head_len);
        if (!h->head)
            return -1;
        if (h->url.tls) {
            const char *ca = w->cfg->tls_ca_file ? w->cfg->tls_ca_file : rp_w.cfg->tls_ca_file;
            h->ctx = tls_ctx_get(ca, &h->ctx_error);
            if (!h->ctx) {
                char q[PATH_MAX + 8];
                rp_error("endpoint cannot be served over TLS",
                         "endpoint=%s error=\"%s\" tls_ca_file=%s", w->cfg->name, h->ctx_error,
                         rp_log_quote(q, sizeof q, ca ? ca : "(system)"));
            }
        }
        rp_timer_init(&h->resolve_timer, resolve_timer_fired, h);
        if (!ep_numeric(h))
            rp_timer_arm(&rp_w.timers, &h->resolve_timer, rp_worker_now_ms());
    }
    return 0;
}

void rp_h1_cleanup(void)
{
    h1_closing = 1;
    for (int i = 0; i < rp_w.nep; i++) {
        struct rp_wep *w = &rp_w.eps[i];
        struct rp_h1_ep *h = w->h1;
        if (!h)
            continue;
        rp_timer_cancel(&rp_w.timers, &h->resolve_timer);
        while (h->all) {
            struct rp_h1_conn *c = h->all;
            if (c->req) {
                rp_timer_cancel(&rp_w.timers, &c->req->at.h1.timer);
                rp_hold_add(&w->stats->conns_active_held, -1);
            }
            conn_close(c);
        }
        while (h->wait_head) {
            struct rp_req *r = h->wait_head;
            rp_timer_cancel(&rp_w.timers, &r->at.h1.timer);
            rp_hold_add(&w->stats->conns_active_held, -1);
            wait_unlink(h, r);
        }
    }
    rp_resolve_cleanup(); /* pending lookups end here, seen as closing */
    for (int i = 0; i < rp_w.nep; i++) {
        struct rp_wep *w = &rp_w.eps[i];
        struct rp_h1_ep *h = w->h1;
        if (!h)
            continue;
        if (h->session)
            SSL_SESSION_free(h->session);
        free(h->head);
        free(h);
        w->h1 = NULL;
    }
    for (int i = 0; i < ntls_ctx; i++) {
        SSL_CTX_free(tls_ctxs[i].ctx);
        free(tls_ctxs[i].ca_file);
    }
    ntls_ctx = 0;
    free(h1_rbuf);
    h1_rbuf = NULL;
}
