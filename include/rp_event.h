/* rp_event.h - what an epoll event's data.ptr points to, in every process:
 * a struct rp_ev first in the object that owns the descriptor, carrying its
 * handler (the way nginx's events do). The loop calls ev->handler(ev,
 * events) and knows nothing of the kinds of objects behind it.
 *
 * Deferred free: an object freed while the events of one epoll batch are
 * being handled may still have events later in the same batch. Its owner
 * clears ev->handler (rp_ev_kill()) and frees it only at the end of the
 * turn; rp_ev_dispatch() skips an event whose handler is NULL.
 */
#ifndef RP_EVENT_H
#define RP_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct rp_ev;

/* Handle EVENTS (EPOLLIN, EPOLLOUT, ...) on EV's descriptor. */
typedef void (*rp_ev_handler)(struct rp_ev *ev, uint32_t events);

struct rp_ev {
    rp_ev_handler handler; /* NULL: freed during this loop turn, its events are ignored */
    int fd;
};

/* Mark EV dead for the rest of this loop turn (see above). */
static inline void rp_ev_kill(struct rp_ev *ev)
{
    ev->handler = NULL;
}

/* Call the handler of each of EVS[0, N) in order, skipping dead ones. */
void rp_ev_dispatch(const struct epoll_event *evs, int n);

#endif
