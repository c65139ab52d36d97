/* resolve.c - the worker's c-ares channel on its epoll (see resolve.h).
 *
 * c-ares tells through ARES_OPT_SOCK_STATE_CB which of its sockets to
 * watch; each gets a small record (first member a struct rp_ev) that is
 * added to epoll on first interest and removed (EPOLL_CTL_DEL, record freed
 * at the end of the loop turn) when c-ares stops watching it, before it
 * closes the fd: a later socket with the same number starts clean. Its
 * timeouts run on the worker's timer heap.
 */
#include "resolve.h"

#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "rp_log.h"
#include "worker.h"

struct ares_sock {
    struct rp_ev ev; /* handler rp_resolve_event */
    struct ares_sock *next;
    uint32_t registered;
};

static ares_channel channel;
static int channel_ok;
static struct ares_sock *asocks;
static struct rp_timer ares_timer;

/* Re-arm the timer for c-ares's next timeout (retransmits, giving up). */
static void resolve_rearm(void)
{
    struct timeval tv;
    if (!channel_ok || !ares_timeout(channel, NULL, &tv)) {
        rp_timer_cancel(&rp_w.timers, &ares_timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)(tv.tv_usec + 999) / 1000u;
    rp_timer_arm(&rp_w.timers, &ares_timer, rp_worker_now_ms() + ms);
}

static void ares_timer_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    resolve_rearm();
}

/* ARES_OPT_SOCK_STATE_CB: mirror c-ares's interest in FD into epoll. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    (void)data;
    struct ares_sock **pp = &asocks;
    while (*pp && (*pp)->ev.fd != fd)
        pp = &(*pp)->next;
    struct ares_sock *s = *pp;
    if (!readable && !writable) {
        if (!s)
            return;
        if (s->registered)
            epoll_ctl(rp_w.epfd, EPOLL_CTL_DEL, fd, NULL);
        *pp = s->next;
        rp_worker_defer_free(s);
        return;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            rp_warn("resolver: out of memory", NULL);
            return;
        }
        s->ev.handler = rp_resolve_event;
        s->ev.fd = fd;
        s->next = asocks;
        asocks = s;
    }
    uint32_t events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = events, .data.ptr = s};
    int op = s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(rp_w.epfd, op, fd, &ev) != 0) {
        rp_warn("resolver: cannot watch its socket", "error=\"%s\"", strerror(errno));
        return;
    }
    s->registered = events;
}

void rp_resolve_event(struct rp_ev *ev, uint32_t events)
{
    ares_socket_t fd = ev->fd;
    ares_process_fd(channel, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
                    (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
    resolve_rearm();
}

int rp_resolve_init(void)
{
    if (channel_ok)
        return 0;
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        rp_error("resolver: c-ares initialisation failed", "error=\"%s\"", ares_strerror(rc));
        return -1;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = sock_state_cb;
    o.timeout = 2000; /* ms per try */
    o.tries = 2;
    rc = ares_init_options(&channel, &o,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        rp_error("resolver: c-ares initialisation failed", "error=\"%s\"", ares_strerror(rc));
        ares_library_cleanup();
        return -1;
    }
    rp_timer_init(&ares_timer, ares_timer_fired, NULL);
    channel_ok = 1;
    return 0;
}

void rp_resolve_cleanup(void)
{
    if (!channel_ok)
        return;
    rp_timer_cancel(&rp_w.timers, &ares_timer);
    ares_destroy(channel); /* pending callbacks run with ARES_EDESTRUCTION */
    channel_ok = 0;
    while (asocks) {
        struct ares_sock *s = asocks;
        asocks = s->next;
        free(s);
    }
    ares_library_cleanup();
}

struct lookup {
    rp_resolve_cb cb;
    void *arg;
};

/* ares_getaddrinfo's callback: the addresses (IPv4 first, as the order of
 * c-ares's answer is kept) and the smallest TTL. */
static void lookup_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    struct lookup l = *(struct lookup *)arg;
    free(arg);
    struct rp_resolved res;
    memset(&res, 0, sizeof res);
    if (status == ARES_SUCCESS && ai) {
        int min_ttl = -1;
        for (struct ares_addrinfo_node *n = ai->nodes; n && res.naddr < RP_RESOLVE_MAX_ADDRS;
             n = n->ai_next) {
            if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
                n->ai_addrlen > sizeof res.addr[0])
                continue;
            memcpy(&res.addr[res.naddr], n->ai_addr, n->ai_addrlen);
            res.addr_len[res.naddr] = (socklen_t)n->ai_addrlen;
            res.naddr++;
            if (n->ai_ttl > 0 && (min_ttl < 0 || n->ai_ttl < min_ttl))
                min_ttl = n->ai_ttl;
        }
        res.ttl_s = min_ttl > 0 ? (uint32_t)min_ttl : 0;
    }
    if (ai)
        ares_freeaddrinfo(ai);
    if (res.naddr == 0) {
        res.status = -1;
        snprintf(res.err, sizeof res.err, "cannot resolve host: %s",
                 status == ARES_SUCCESS ? "no address" : ares_strerror(status));
    }
    l.cb(l.arg, &res);
}

void rp_resolve_start(const char *host, uint16_t port, rp_resolve_cb cb, void *arg)
{
    struct lookup *l = malloc(sizeof *l);
    if (!l || !channel_ok) {
        free(l);
        struct rp_resolved res;
        memset(&res, 0, sizeof res);
        res.status = -1;
        snprintf(res.err, sizeof res.err, "cannot resolve host: resolver unavailable");
        cb(arg, &res);
        return;
    }
    l->cb = cb;
    l->arg = arg;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV;
    ares_getaddrinfo(channel, host, service, &hints, lookup_done, l);
    resolve_rearm();
}
