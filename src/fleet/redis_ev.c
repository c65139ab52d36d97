/* redis_ev.c - hiredis async contexts on an epoll set (rp_redis_ev.h). */
#include "rp_redis_ev.h"

#include <string.h>
#include <sys/epoll.h>

/* Register the events R wants now (or take the fd out when none). */
static void rev_update(struct rp_redis_ev *r, uint32_t events)
{
    if (events == r->events && (r->added || !events))
        return;
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = events;
    e.data.ptr = &r->ev;
    if (!events) {
        if (r->added)
            epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->ev.fd, NULL);
        r->added = 0;
    } else if (r->added) {
        epoll_ctl(r->epfd, EPOLL_CTL_MOD, r->ev.fd, &e);
    } else if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->ev.fd, &e) == 0) {
        r->added = 1;
    }
    r->events = events;
}

static void rev_add_read(void *p)
{
    struct rp_redis_ev *r = p;
    rev_update(r, r->events | EPOLLIN);
}

static void rev_del_read(void *p)
{
    struct rp_redis_ev *r = p;
    rev_update(r, r->events & ~(uint32_t)EPOLLIN);
}

static void rev_add_write(void *p)
{
    struct rp_redis_ev *r = p;
    rev_update(r, r->events | EPOLLOUT);
}

static void rev_del_write(void *p)
{
    struct rp_redis_ev *r = p;
    rev_update(r, r->events & ~(uint32_t)EPOLLOUT);
}

/* hiredis frees the context: forget it and its descriptor. */
static void rev_cleanup(void *p)
{
    struct rp_redis_ev *r = p;
    rev_update(r, 0);
    r->ac = NULL;
    r->events = 0;
}

/* Readiness of the context's socket: reading may free the context (the
 * server closed), so writing is only attempted while it is still there.
 * An error or hang-up is handed to the read side, where hiredis sees it. */
static void rev_on_event(struct rp_ev *ev, uint32_t events)
{
    struct rp_redis_ev *r = (struct rp_redis_ev *)ev;
    if (r->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        redisAsyncHandleRead(r->ac);
    if (r->ac && (events & EPOLLOUT))
        redisAsyncHandleWrite(r->ac);
}

int rp_redis_ev_attach(struct rp_redis_ev *r, int epfd, redisAsyncContext *ac)
{
    memset(r, 0, sizeof *r);
    r->ev.handler = rev_on_event;
    r->ev.fd = ac->c.fd;
    r->epfd = epfd;
    r->ac = ac;
    if (ac->ev.data) {
        redisAsyncFree(ac);
        r->ac = NULL;
        return -1;
    }
    ac->ev.addRead = rev_add_read;
    ac->ev.delRead = rev_del_read;
    ac->ev.addWrite = rev_add_write;
    ac->ev.delWrite = rev_del_write;
    ac->ev.cleanup = rev_cleanup;
    ac->ev.data = r;
    return 0;
}
