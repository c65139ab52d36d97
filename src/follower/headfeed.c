/* headfeed.c - the pushed head (headfeed.h): one WebSocket connection per
 * endpoint with a ws_url, in the head follower.
 *
 * A feed goes IDLE -> CONNECTING (non-blocking connect) -> TLS (wss://,
 * non-blocking handshake, chain and host name verified, SNI) -> UPGRADE
 * (the HTTP/1.1 Upgrade request sent, the 101 answer read and its
 * Sec-WebSocket-Accept checked) -> OPEN (eth_subscribe ["newHeads"] sent;
 * subscribed once its answer has a result). Anything wrong (a malformed or
 * oversize frame, a masked server frame, a close, an error answer, a
 * timeout, 2.5 s without a frame) closes it, and it is tried again after a
 * back-off of 100 ms doubling to 5 s (back to 100 ms once subscribed).
 *
 * Shared words (rp_sub_abi.h, rp_shm_abi.h): per endpoint the last frame
 * heard while subscribed (0 once closed); for the host, live until (the
 * newest frame heard on a subscribed feed of a usable endpoint + 2.5 s)
 * and live since. Only raised heads and deadlines: a SIGKILL between two
 * stores leaves words that lapse by themselves within 2.5 s.
 *
 * Name resolution is getaddrinfo(), blocking (the follower's only one): a
 * ws_url with a numeric host never waits for it.
 */
#include "headfeed.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_buf.h"
#include "rp_cache.h"
#include "rp_event.h"
#include "rp_h1.h"
#include "rp_hold.h"
#include "rp_log.h"
#include "rp_sub_ring.h"
#include "rp_subjson.h"
#include "rp_tls.h"
#include "rp_wsframe.h"

#define HF_BACKOFF_MIN_MS  100
#define HF_BACKOFF_MAX_MS  5000
#define HF_MAX_HEAD_BYTES  16384       /* the server's 101 answer, at most */
#define HF_MAX_PENDING_OUT (64u << 10) /* unsent bytes: more means a stuck peer */
/* bytes held unread: a whole largest frame always fits */
#define HF_READ_LIMIT (RP_WS_MAX_FRAME_BYTES + HF_MAX_HEAD_BYTES + 32768u)

enum hf_state { HF_IDLE, HF_CONNECTING, HF_TLS, HF_UPGRADE, HF_OPEN };

struct hfeed {
    struct rp_ev ev; /* first: the epoll handler's object */
    const struct rp_endpoint_config *cfg;
    struct rp_shm_endpoint *row;
    struct rp_h1_url url; /* cfg->ws_url split: host (no brackets), Host header, target, tls */
    char port[8];         /* url.port, for getaddrinfo */
    int numeric;          /* the host is an IP literal */
    enum hf_state st;
    SSL *ssl;
    uint32_t events;      /* registered with epoll (0: not registered) */
    uint64_t deadline_ms; /* connect..subscribed bound */
    uint64_t retry_at_ms; /* IDLE: the next try */
    uint64_t backoff_ms;  /* the next back-off */
    uint64_t heard_ms;    /* the last frame heard */
    uint64_t ping_at_ms;  /* the next ping */
    int subscribed;       /* the eth_subscribe answer came, with a result */
    unsigned tries;       /* connects tried; modulo the addresses: the next one to use */
    char accept[RP_WS_ACCEPT_LEN + 1];
    struct rp_buf in, out;
    struct rp_ws_msg msg;
};

static struct {
    const struct rp_config *cfg;
    struct rp_shm_header *shm;
    struct rp_shm_subs *subs;
    int epfd;
    struct hfeed f[RP_MAX_ENDPOINTS];
    int n;
    SSL_CTX *ctx[RP_MAX_ENDPOINTS]; /* per feed with wss:// */
    int raised;
} H;

static uint64_t hf_now(void)
{
    return rp_shm_now_ms(H.shm);
}

int rp_headfeed_wanted(const struct rp_config *cfg)
{
    if (cfg->cache_max_bytes <= 0)
        return 0;
    for (int i = 0; i < cfg->endpoint_count; i++)
        if (cfg->endpoints[i].ws_url)
            return 1;
    return 0;
}

/* Split F's ws_url (checked by the configuration) as the upstream client
 * splits an http URL (rp_h1.h). */
static int hf_parse_url(struct hfeed *f)
{
    if (rp_h1_url_parse(f->cfg->ws_url, &f->url) != 0)
        return -1;
    snprintf(f->port, sizeof f->port, "%u", (unsigned)f->url.port);
    unsigned char tmp[16];
    f->numeric =
        inet_pton(AF_INET, f->url.host, tmp) == 1 || inet_pton(AF_INET6, f->url.host, tmp) == 1;
    return 0;
}

/* May F's pushed head count (live, raise the best head)? The endpoint is
 * in use, not drained, up, and its breaker is not open. */
static int hf_usable(const struct hfeed *f, uint64_t now_ms)
{
    struct rp_shm_endpoint *row = f->row;
    return atomic_load_explicit(&row->in_use, memory_order_acquire) &&
           !atomic_load_explicit(&row->drained, memory_order_relaxed) &&
           atomic_load_explicit(&row->state, memory_order_relaxed) == RP_EP_UP &&
           rp_breaker_state_at(atomic_load_explicit(&row->breaker, memory_order_acquire), now_ms) !=
               RP_BREAKER_OPEN;
}

/* No pushed head: the deadline first (readers load it first), then since. */
static void hf_words_clear(void)
{
    atomic_store_explicit(&H.subs->head_feed_until_ms, 0, memory_order_release);
    atomic_store_explicit(&H.subs->head_feed_since_ms, 0, memory_order_relaxed);
}

/* Publish the host's liveness words from the feeds at NOW_MS. */
static void hf_publish(uint64_t now_ms)
{
    uint64_t until = 0;
    for (int i = 0; i < H.n; i++) {
        struct hfeed *f = &H.f[i];
        if (f->st == HF_OPEN && f->subscribed && hf_usable(f, now_ms) &&
            f->heard_ms + RP_HEAD_FEED_DEAD_MS > until)
            until = f->heard_ms + RP_HEAD_FEED_DEAD_MS;
    }
    uint64_t old = atomic_load_explicit(&H.subs->head_feed_until_ms, memory_order_relaxed);
    if (until > now_ms) {
        /* since moves only while until has lapsed: no reader can then
         * trust it, whichever of the two stores it sees */
        if (old <= now_ms ||
            !atomic_load_explicit(&H.subs->head_feed_since_ms, memory_order_relaxed))
            atomic_store_explicit(&H.subs->head_feed_since_ms, now_ms ? now_ms : 1,
                                  memory_order_relaxed);
        if (until != old)
            atomic_store_explicit(&H.subs->head_feed_until_ms, until, memory_order_release);
    } else if (old) {
        hf_words_clear();
    }
}

/* Register F's socket for EVENTS with epoll (0: remove it). */
static void hf_watch(struct hfeed *f, uint32_t events)
{
    if (events == f->events || f->ev.fd < 0)
        return;
    struct epoll_event e = {.events = events, .data.ptr = &f->ev};
    int op = !f->events ? EPOLL_CTL_ADD : events ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
    if (epoll_ctl(H.epfd, op, f->ev.fd, &e) == 0 || op == EPOLL_CTL_DEL)
        f->events = events;
}

/* Close F's connection (WHY, logged) and plan the next try. */
static void hf_close(struct hfeed *f, const char *why, uint64_t now_ms)
{
    if (strcmp(why, "stopping") == 0)
        ; /* quiet */
    else if (f->st == HF_OPEN && f->subscribed)
        rp_warn("head feed lost", "endpoint=%s url=%s reason=\"%s\"", f->cfg->name,
                f->cfg->ws_url_redacted, why);
    else
        rp_info("head feed cannot connect", "endpoint=%s url=%s reason=\"%s\" retry_ms=%llu",
                f->cfg->name, f->cfg->ws_url_redacted, why, (unsigned long long)f->backoff_ms);
    hf_watch(f, 0);
    if (f->ssl) {
        SSL_free(f->ssl);
        f->ssl = NULL;
    }
    if (f->ev.fd >= 0)
        close(f->ev.fd);
    f->ev.fd = -1;
    f->events = 0;
    atomic_store_explicit(&f->row->head_feed_heard_ms, 0, memory_order_relaxed);
    f->st = HF_IDLE;
    f->subscribed = 0;
    rp_buf_reset(&f->in);
    rp_buf_reset(&f->out);
    rp_ws_msg_reset(&f->msg);
    f->retry_at_ms = now_ms + f->backoff_ms;
    f->backoff_ms = f->backoff_ms * 2 > HF_BACKOFF_MAX_MS ? HF_BACKOFF_MAX_MS : f->backoff_ms * 2;
    hf_publish(now_ms);
}

/* Read what the connection has into F->in, at most HF_READ_LIMIT bytes
 * held. Returns 0 (would block), 1 (read some; more may wait: handle it and
 * call again), -1 (closed or failed: *WHY). */
static int hf_read(struct hfeed *f, const char **why)
{
    char buf[16384];
    int got = 0;
    while (f->in.len + sizeof buf <= HF_READ_LIMIT) {
        ssize_t k;
        if (f->ssl) {
            ERR_clear_error();
            int r = SSL_read(f->ssl, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(f->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    return got;
                *why = e == SSL_ERROR_ZERO_RETURN ? "closed by the server" : "TLS read failed";
                return -1;
            }
            k = r;
        } else {
            k = recv(f->ev.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return got;
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                *why = k == 0 ? "closed by the server" : "read failed";
                return -1;
            }
        }
        if (rp_buf_append(&f->in, buf, (size_t)k) != 0) {
            *why = "out of memory";
            return -1;
        }
        got = 1;
    }
    return 1;
}

/* Send what F->out holds. Returns 0, -1 (failed: *WHY). */
static int hf_flush(struct hfeed *f, const char **why)
{
    while (f->out.len) {
        ssize_t k;
        if (f->ssl) {
            ERR_clear_error();
            int r = SSL_write(f->ssl, f->out.data, (int)f->out.len);
            if (r <= 0) {
                int e = SSL_get_error(f->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    break;
                *why = "TLS write failed";
                return -1;
            }
            k = r;
        } else {
            k = send(f->ev.fd, f->out.data, f->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                *why = "write failed";
                return -1;
            }
        }
        memmove(f->out.data, f->out.data + k, f->out.len - (size_t)k);
        f->out.len -= (size_t)k;
    }
    if (f->out.len > HF_MAX_PENDING_OUT) {
        *why = "the server does not read";
        return -1;
    }
    hf_watch(f, EPOLLIN | (f->out.len ? EPOLLOUT : 0));
    return 0;
}

/* Queue one masked frame (OPCODE, PAYLOAD[0, LEN), LEN <= 4096) on F. */
static int hf_queue(struct hfeed *f, int opcode, const void *payload, size_t len)
{
    uint8_t frame[4096 + RP_WS_MAX_HEADER_BYTES];
    uint8_t mask[4];
    if (len > 4096 || RAND_bytes(mask, sizeof mask) != 1)
        return -1;
    size_t n = rp_ws_encode(frame, sizeof frame, 1, opcode, mask, payload, len);
    return n && rp_buf_append(&f->out, (const char *)frame, n) == 0 ? 0 : -1;
}

/* The server's 101 came: subscribe to newHeads. */
static int hf_opened(struct hfeed *f, uint64_t now_ms)
{
    static const char sub[] =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"newHeads\"]}";
    f->st = HF_OPEN;
    f->heard_ms = now_ms;
    f->ping_at_ms = now_ms + RP_HEAD_FEED_PING_MS;
    return hf_queue(f, RP_WS_TEXT, sub, sizeof sub - 1);
}

/* A whole text message MSG[0, LEN) from F. Returns 0, -1 (*WHY). */
static int hf_message(struct hfeed *f, const char *msg, size_t len, uint64_t now_ms,
                      const char **why)
{
    struct rp_block_info bi;
    int r = rp_subjson_new_head(msg, len, &bi);
    if (r < 0) {
        *why = "a message that is not a JSON-RPC object";
        return -1;
    }
    if (r == 1) { /* the answer to eth_subscribe */
        if (f->subscribed)
            return 0;
        if (!memmem(msg, len, "\"result\"", 8) || memmem(msg, len, "\"error\"", 7)) {
            *why = "eth_subscribe [\"newHeads\"] refused";
            return -1;
        }
        f->subscribed = 1;
        f->backoff_ms = HF_BACKOFF_MIN_MS;
        f->tries = f->tries ? f->tries - 1 : 0; /* the same address next time */
        rp_info("head feed connected", "endpoint=%s url=%s", f->cfg->name, f->cfg->ws_url_redacted);
        return 0;
    }
    if (!f->subscribed)
        return 0;
    /* a reorg at a height the cache has seen another hash at: its entries
     * die, as when an answer shows it (src/worker/cache_hook.c) */
    struct rp_shm_cache *c = rp_cache_of(H.shm);
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++)
        fp = fp << 8 | bi.hash[i]; /* the fingerprint cachekey.c takes */
    if (c && rp_cache_note_block(c, bi.number, fp ? fp : 1)) {
        uint64_t best = atomic_load_explicit(&H.shm->best_head_block, memory_order_relaxed);
        int deep = bi.number + (uint64_t)H.cfg->cache_finality_depth <= best;
        rp_cache_invalidate(c, deep);
        rp_warn("cache: the pushed head shows another block hash at a number: reorg, entries "
                "dropped",
                "endpoint=%s block=%llu final=%d", f->cfg->name, (unsigned long long)bi.number,
                deep);
    }
    /* exactly as a head learned from traffic: only ever raised */
    rp_hold_raise(&f->row->head_block, bi.number);
    if (hf_usable(f, now_ms)) {
        uint64_t best = atomic_load_explicit(&H.shm->best_head_block, memory_order_relaxed);
        rp_hold_raise(&H.shm->best_head_block, bi.number);
        if (bi.number > best)
            H.raised = 1;
    }
    return 0;
}

/* Decode and handle every whole frame in F->in. Returns 0, -1 (*WHY). */
static int hf_frames(struct hfeed *f, uint64_t now_ms, const char **why)
{
    size_t off = 0;
    int r = 0;
    while (off < f->in.len) {
        struct rp_ws_frame fr;
        long k =
            rp_ws_decode((uint8_t *)f->in.data + off, f->in.len - off, RP_WS_MAX_FRAME_BYTES, &fr);
        if (k == 0)
            break;
        if (k < 0 || fr.masked) {
            *why = k < 0 ? "a malformed or oversize frame" : "a masked frame from the server";
            r = -1;
            break;
        }
        off += (size_t)k;
        f->heard_ms = now_ms;
        if (fr.opcode == RP_WS_PING) {
            r = hf_queue(f, RP_WS_PONG, fr.payload, fr.payload_len);
        } else if (fr.opcode == RP_WS_PONG) {
            /* heard: nothing else */
        } else if (fr.opcode == RP_WS_CLOSE) {
            hf_queue(f, RP_WS_CLOSE, fr.payload, fr.payload_len > 2 ? 2 : fr.payload_len);
            const char *ignored;
            hf_flush(f, &ignored);
            *why = "closed by the server (close frame)";
            r = -1;
        } else {
            int m = rp_ws_msg_feed(&f->msg, &fr, RP_WS_MAX_MESSAGE_BYTES);
            if (m < 0) {
                *why = "a fragmented message out of order or over 1 MiB";
                r = -1;
            } else if (m == 1) {
                if (f->msg.opcode == RP_WS_TEXT)
                    r = hf_message(f, f->msg.data.data, f->msg.data.len, now_ms, why);
                rp_ws_msg_reset(&f->msg);
            }
        }
        if (r < 0)
            break;
    }
    memmove(f->in.data, f->in.data + off, f->in.len - off);
    f->in.len -= off;
    if (r == 0 && f->subscribed)
        atomic_store_explicit(&f->row->head_feed_heard_ms, f->heard_ms, memory_order_relaxed);
    return r;
}

/* Send the upgrade request (the endpoint's own headers included). */
static int hf_send_upgrade(struct hfeed *f)
{
    uint8_t nonce[16];
    char key[25];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        return -1;
    rp_ws_key(nonce, key);
    if (rp_ws_accept(key, f->accept) != 0)
        return -1;
    rp_buf_appendf(&f->out,
                   "GET %.*s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                   (int)f->url.target_len, f->url.target, f->url.hostport, key);
    for (int i = 0; i < f->cfg->header_count; i++)
        rp_buf_appendf(&f->out, "%s\r\n", f->cfg->headers[i]);
    rp_buf_puts(&f->out, "\r\n");
    f->st = HF_UPGRADE;
    return rp_buf_failed(&f->out) ? -1 : 0;
}

/* Drive F's TLS handshake. Returns 0 (done or waiting), -1 (*WHY). */
static int hf_tls_step(struct hfeed *f, const char **why)
{
    ERR_clear_error();
    int r = SSL_do_handshake(f->ssl);
    if (r == 1)
        return hf_send_upgrade(f) == 0 ? 0 : (*why = "out of memory", -1);
    int e = SSL_get_error(f->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        hf_watch(f, EPOLLIN);
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        hf_watch(f, EPOLLIN | EPOLLOUT);
        return 0;
    }
    long v = SSL_get_verify_result(f->ssl);
    static char msg[160];
    if (v != X509_V_OK)
        snprintf(msg, sizeof msg, "TLS certificate rejected: %s", X509_verify_cert_error_string(v));
    else
        snprintf(msg, sizeof msg, "TLS handshake failed");
    *why = msg;
    return -1;
}

/* Everything F's socket may do now (EVENTS from epoll, or 0 from a tick). */
static void hf_drive(struct hfeed *f, uint32_t events, uint64_t now_ms)
{
    const char *why = NULL;
    if (f->st == HF_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(f->ev.fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
            static char msg[160];
            snprintf(msg, sizeof msg, "connect failed: %s", strerror(err ? err : errno));
            hf_close(f, msg, now_ms);
            return;
        }
        if (f->url.tls) {
            f->ssl = SSL_new(H.ctx[f - H.f]);
            if (!f->ssl || !SSL_set_fd(f->ssl, f->ev.fd) ||
                rp_tls_set_peer(f->ssl, f->url.host, f->numeric) != 0) {
                hf_close(f, "cannot set up TLS", now_ms);
                return;
            }
            SSL_set_connect_state(f->ssl);
            f->st = HF_TLS;
        } else if (hf_send_upgrade(f) != 0) {
            hf_close(f, "out of memory", now_ms);
            return;
        }
    }
    if (f->st == HF_TLS) {
        if (hf_tls_step(f, &why) != 0) {
            hf_close(f, why, now_ms);
            return;
        }
        if (f->st == HF_TLS)
            return;
    }
    if (hf_flush(f, &why) != 0) {
        hf_close(f, why, now_ms);
        return;
    }
    int r;
    do {
        r = hf_read(f, &why);
        if (f->st == HF_UPGRADE && f->in.len) {
            char *end = memmem(f->in.data, f->in.len, "\r\n\r\n", 4);
            if (!end && f->in.len > HF_MAX_HEAD_BYTES) {
                hf_close(f, "the upgrade answer is too long", now_ms);
                return;
            }
            if (end) {
                size_t hl = (size_t)(end - f->in.data) + 4;
                if (rp_ws_check_upgrade(f->in.data, hl, f->accept, &why) != 0) {
                    hf_close(f, why, now_ms);
                    return;
                }
                memmove(f->in.data, f->in.data + hl, f->in.len - hl);
                f->in.len -= hl;
                if (hf_opened(f, now_ms) != 0) {
                    hf_close(f, "out of memory", now_ms);
                    return;
                }
            }
        }
        /* whole frames first, then what reading said (a server's last
         * frames before it closes still count) */
        if (f->st == HF_OPEN && hf_frames(f, now_ms, &why) != 0) {
            hf_close(f, why, now_ms);
            return;
        }
        if (r < 0) {
            hf_close(f, why, now_ms);
            return;
        }
    } while (r == 1);
    if (hf_flush(f, &why) != 0)
        hf_close(f, why, now_ms);
}

/* epoll handler of a feed's socket. */
static void hf_on_event(struct rp_ev *ev, uint32_t events)
{
    struct hfeed *f = (struct hfeed *)ev;
    if (f->st == HF_IDLE || f->ev.fd < 0)
        return;
    uint64_t now = hf_now();
    hf_drive(f, events, now);
    hf_publish(now);
}

/* Start F's connection. */
static void hf_connect(struct hfeed *f, uint64_t now_ms)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = f->numeric ? AI_NUMERICHOST : 0;
    struct addrinfo *ai = NULL;
    int g = getaddrinfo(f->url.host, f->port, &hints, &ai);
    if (g != 0 || !ai) {
        f->st = HF_CONNECTING; /* for hf_close's accounting */
        hf_close(f, g ? gai_strerror(g) : "no address", now_ms);
        return;
    }
    /* one address per try: after a failure the next one (a name with an
     * IPv6 and an IPv4 address, one of them not listening) */
    unsigned count = 0;
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        count++;
    struct addrinfo *use = ai;
    for (unsigned k = f->tries % count; k > 0; k--)
        use = use->ai_next;
    f->tries++;
    int fd = socket(use->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        f->st = HF_CONNECTING;
        hf_close(f, "no socket", now_ms);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = connect(fd, use->ai_addr, use->ai_addrlen);
    int err = errno;
    freeaddrinfo(ai);
    f->ev.fd = fd;
    f->events = 0;
    f->st = HF_CONNECTING;
    f->subscribed = 0;
    f->deadline_ms = now_ms + (uint64_t)H.cfg->connection_timeout_ms;
    if (r != 0 && err != EINPROGRESS) {
        static char msg[160];
        snprintf(msg, sizeof msg, "connect failed: %s", strerror(err));
        hf_close(f, msg, now_ms);
        return;
    }
    hf_watch(f, EPOLLIN | EPOLLOUT);
}

void rp_headfeed_tick(uint64_t now_ms)
{
    for (int i = 0; i < H.n; i++) {
        struct hfeed *f = &H.f[i];
        if (f->st == HF_IDLE) {
            if (now_ms >= f->retry_at_ms)
                hf_connect(f, now_ms);
            continue;
        }
        if (!f->subscribed && now_ms >= f->deadline_ms) {
            hf_close(f, "timed out before the subscription was answered", now_ms);
            continue;
        }
        if (f->st != HF_OPEN)
            continue;
        if (now_ms >= f->heard_ms + RP_HEAD_FEED_DEAD_MS) {
            hf_close(f, "no frame for 2.5 s", now_ms);
            continue;
        }
        if (now_ms >= f->ping_at_ms) {
            const char *why;
            f->ping_at_ms = now_ms + RP_HEAD_FEED_PING_MS;
            if (hf_queue(f, RP_WS_PING, "rp", 2) != 0 || hf_flush(f, &why) != 0)
                hf_close(f, "cannot send a ping", now_ms);
        }
    }
    hf_publish(now_ms);
}

uint64_t rp_headfeed_next_ms(void)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < H.n; i++) {
        struct hfeed *f = &H.f[i];
        uint64_t t;
        if (f->st == HF_IDLE) {
            t = f->retry_at_ms;
        } else {
            t = f->subscribed ? UINT64_MAX : f->deadline_ms;
            if (f->st == HF_OPEN) {
                if (f->ping_at_ms < t)
                    t = f->ping_at_ms;
                if (f->heard_ms + RP_HEAD_FEED_DEAD_MS < t)
                    t = f->heard_ms + RP_HEAD_FEED_DEAD_MS;
            }
        }
        if (t < next)
            next = t;
    }
    return next;
}

int rp_headfeed_take_raised(void)
{
    int r = H.raised;
    H.raised = 0;
    return r;
}

int rp_headfeed_init(const struct rp_config *cfg, struct rp_shm_header *shm, int epfd)
{
    memset(&H, 0, sizeof H);
    H.cfg = cfg;
    H.shm = shm;
    H.subs = rp_shm_subs(shm);
    H.epfd = epfd;
    /* whatever a former follower published is not ours to keep */
    hf_words_clear();
    for (int i = 0; i < cfg->endpoint_count; i++) {
        struct rp_shm_endpoint *row = rp_shm_find_endpoint(shm, cfg->endpoints[i].url);
        if (row)
            atomic_store_explicit(&row->head_feed_heard_ms, 0, memory_order_relaxed);
    }
    if (!rp_headfeed_wanted(cfg))
        return 0;
    for (int i = 0; i < cfg->endpoint_count; i++) {
        const struct rp_endpoint_config *ec = &cfg->endpoints[i];
        if (!ec->ws_url)
            continue;
        struct hfeed *f = &H.f[H.n];
        memset(f, 0, sizeof *f);
        f->cfg = ec;
        f->row = rp_shm_find_endpoint(shm, ec->url);
        f->ev.fd = -1;
        f->ev.handler = hf_on_event;
        f->backoff_ms = HF_BACKOFF_MIN_MS;
        rp_buf_init(&f->in);
        rp_buf_init(&f->out);
        rp_buf_init(&f->msg.data);
        if (!f->row || hf_parse_url(f) != 0) {
            rp_error("head feed: cannot use ws_url", "endpoint=%s url=%s", ec->name,
                     ec->ws_url_redacted);
            continue;
        }
        if (f->url.tls) {
            const char *why = NULL;
            const char *ca = ec->tls_ca_file ? ec->tls_ca_file : cfg->tls_ca_file;
            H.ctx[H.n] = rp_tls_client_ctx(ca, &why);
            if (!H.ctx[H.n]) {
                rp_error("head feed: no TLS context", "endpoint=%s error=\"%s\"", ec->name, why);
                continue;
            }
            static const unsigned char alpn[] = "\x08http/1.1";
            SSL_CTX_set_alpn_protos(H.ctx[H.n], alpn, sizeof alpn - 1);
        }
        H.n++;
    }
    rp_info("head feeds", "count=%d", H.n);
    return 0;
}

void rp_headfeed_cleanup(void)
{
    uint64_t now = H.shm ? hf_now() : 0;
    for (int i = 0; i < H.n; i++) {
        struct hfeed *f = &H.f[i];
        if (f->st != HF_IDLE) {
            f->st = HF_IDLE; /* quiet: no "lost" line at a stop */
            f->subscribed = 0;
            hf_close(f, "stopping", now);
        }
        rp_buf_free(&f->in);
        rp_buf_free(&f->out);
        rp_ws_msg_free(&f->msg);
        if (H.ctx[i])
            SSL_CTX_free(H.ctx[i]);
        H.ctx[i] = NULL;
    }
    H.n = 0;
    if (H.subs)
        hf_words_clear();
}
