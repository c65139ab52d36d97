/* rp_child.h - the scaffold of a process the supervisor forks (a worker or
 * the prober): one signal convention, one parent-death rule, the epoll
 * wait and the deferred free of the loop.
 *
 * Signals: SIGTERM (stop) and SIGUSR2 (retire: a worker hands its clients
 * over; the prober ignores it) are blocked and read from a signalfd in the
 * epoll set, like the supervisor's: its handler sets the flags, so a
 * request can never slip in between the loop's flag test and its wait,
 * however busy the loop. SIGINT (a terminal's Ctrl-C reaches the
 * supervisor, which stops us), SIGPIPE and SIGHUP are ignored.
 *
 * Parent death: the kernel sends SIGTERM when the supervisor dies
 * (PR_SET_PDEATHSIG); a supervisor that died before that was set shows as
 * a parent other than the supervisor recorded in the segment.
 */
#ifndef RP_CHILD_H
#define RP_CHILD_H

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include "rp_event.h"

/* Set by the signal handlers; read by the loop between waits. */
extern volatile sig_atomic_t rp_child_stop_flag;   /* SIGTERM */
extern volatile sig_atomic_t rp_child_retire_flag; /* SIGUSR2, when retiring is wanted */

struct rp_child {
    int epfd;
    struct rp_ev sig_ev; /* the signalfd: handler sets the flags */
    void **grave;        /* rp_child_defer_free() */
    int ngrave, capgrave;
};

/* Install the signal convention (RETIRE: SIGUSR2 sets rp_child_retire_flag,
 * else it is ignored), the parent-death signal, and create the epoll set.
 * Returns 0, or -1 when the supervisor SUPERVISOR is already gone or epoll
 * cannot be created (logged). */
int rp_child_setup(struct rp_child *ch, pid_t supervisor, int retire);

/* Wait up to TIMEOUT_MS for events. Returns epoll_wait()'s count: 0 on
 * EINTR, -1 on another error (logged). */
int rp_child_wait(struct rp_child *ch, struct epoll_event *evs, int max, int timeout_ms);

/* Free P (whose first member is a struct rp_ev) at the end of this loop
 * turn: events already fetched for it in the same batch see it dead. */
void rp_child_defer_free(struct rp_child *ch, void *p);

/* Free what rp_child_defer_free() kept (the end of a loop turn). */
void rp_child_bury(struct rp_child *ch);

/* Bury, free the graveyard and close the signalfd and the epoll set. */
void rp_child_cleanup(struct rp_child *ch);

#endif
