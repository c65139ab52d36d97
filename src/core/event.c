/* event.c - the one epoll dispatch of every process (see rp_event.h). */
#include "rp_event.h"

#include <stddef.h>

void rp_ev_dispatch(const struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        struct rp_ev *e = evs[i].data.ptr;
        if (e->handler) /* NULL: freed earlier in this batch */
            e->handler(e, evs[i].events);
    }
}
