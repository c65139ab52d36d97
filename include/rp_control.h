/* rp_control.h - the control socket served by the supervisor (docs/interface.md
 * section 4): one command per line in, one JSON object per line out.
 *
 * The supervisor owns the epoll loop; this module owns the control listen
 * socket and its clients. Commands come from one table {name, args,
 * handler, help}; `help` is generated from it. What only the supervisor can
 * do (reload, resize, stop) is reached through struct rp_control_ops.
 */
#ifndef RP_CONTROL_H
#define RP_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "rp_config.h"
#include "rp_event.h"
#include "rp_shm.h"

#define RP_CONTROL_MAX_LINE    4096 /* longer command lines are refused */
#define RP_CONTROL_MAX_CLIENTS 32

/* What the supervisor offers to the control commands. */
struct rp_control_ops {
    /* Re-read the configuration file. 0 with *GENERATION set, or -1 with
     * "FILE:LINE: key: reason" in ERR (the old configuration stays). */
    int (*reload)(uint64_t *generation, char *err, size_t errlen);
    /* Grow or shrink the worker pool to N (1..64). 0, or -1 with ERR. */
    int (*set_workers)(unsigned n, char *err, size_t errlen);
    /* Begin the graceful stop (as SIGTERM). */
    void (*shutdown)(void);
    /* The configuration in force (changes after a reload). */
    const struct rp_config *(*config)(void);
    /* The segment (read-write mapping; commands like drain/reset write the
     * endpoint rows' drained / breaker / gcra words). */
    struct rp_shm_header *(*shm)(void);
    size_t shm_size;
    uint64_t started_ms; /* CLOCK_MONOTONIC ms at start, for uptime_s */
};

/* Create the control socket at PATH (mode 0600; stale file replaced, live
 * server refused) and register it on EPFD. The epoll data of every fd this
 * module registers is a struct rp_ev (rp_event.h) whose handler is
 * rp_control_event(). Returns 0, or -1 with ERR. */
int rp_control_open(const char *path, int epfd, const struct rp_control_ops *ops, char *err,
                    size_t errlen);

/* Handle an epoll event whose data.ptr came from this module (the handler
 * of each of its struct rp_ev). */
void rp_control_event(struct rp_ev *ev, uint32_t events);

/* Close the listen socket and every client; unlink the path. */
void rp_control_close(void);

/* Run one command line (without the newline) and write the JSON answer
 * (one line, no newline) into *OUT (malloc'd; caller frees). Exposed for
 * unit tests. */
int rp_control_execute(const char *line, char **out, size_t *outlen);

#endif
