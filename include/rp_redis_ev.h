/* rp_redis_ev.h - hiredis's asynchronous API on a process's own epoll set
 * (the fleet agent's): the addRead/delRead/addWrite/delWrite/cleanup hooks
 * of a redisAsyncContext, and the rp_ev handler that feeds hiredis the
 * readiness events.
 *
 * One struct rp_redis_ev per context, owned by the caller and never freed
 * by hiredis: when hiredis frees the context (a disconnect, a failed
 * connect, redisAsyncFree) its cleanup hook takes the descriptor out of the
 * epoll set and sets `ac` to NULL, so events of the same epoll batch find
 * a NULL context and are ignored.
 */
#ifndef RP_REDIS_EV_H
#define RP_REDIS_EV_H

#include <hiredis/async.h>
#include <stdint.h>

#include "rp_event.h"

struct rp_redis_ev {
    struct rp_ev ev;       /* handler rp_redis_ev_on_event, fd the context's socket */
    int epfd;              /* the epoll set */
    uint32_t events;       /* EPOLLIN / EPOLLOUT registered */
    int added;             /* the fd is in the epoll set */
    redisAsyncContext *ac; /* NULL once hiredis freed it */
};

/* Drive AC from epoll set EPFD through R (R->ac = AC). Returns 0, or -1
 * (AC is then freed and R->ac NULL). */
int rp_redis_ev_attach(struct rp_redis_ev *r, int epfd, redisAsyncContext *ac);

#endif
