/* worker.c - a worker process: one epoll loop serving clients on the
 * inherited listen socket and driving the native HTTP/1.1 (and TLS) upstream
 * client (h1.c) and its resolver from the same loop.
 *
 * Lifecycle: started by the supervisor after fork(); runs until SIGTERM,
 * then stops accepting, answers what it holds (up to shutdown_timeout_ms),
 * closes its clients and exits 0. It also exits when the supervisor dies
 * (PR_SET_PDEATHSIG), so no worker outlives its supervisor.
 */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "resolve.h"
#include "rp_child.h"
#include "rp_clock.h"
#include "rp_handoff.h"
#include "rp_log.h"
#include "rp_wake.h"
#include "subs.h"
#include "transport_h1.h"

struct rp_worker rp_w;

/* The stop signals (rp_child.h): SIGTERM (rp_child_stop_flag) stops and
 * closes the clients, SIGUSR2 (rp_child_retire_flag) stops and hands them
 * over. */

/* Adopt every client the supervisor passes on from a retiring worker. A
 * worker that is itself retiring adopts them too, and hands them on with
 * its own clients: the supervisor sent them while this worker was still of
 * the current generation (it never sends to one it has told to retire), and
 * closing them would drop a client on every quick succession of reloads.
 * Only a full stop closes them. */
static void worker_adopt_clients(void)
{
    static char buf[RP_HANDOFF_MAX_BYTES];
    for (;;) {
        size_t len = 0;
        int fd = rp_handoff_recv(rp_w.chan_ev.fd, buf, &len);
        if (fd == RP_HANDOFF_DROPPED)
            continue;
        if (fd < 0)
            return;
        if (rp_w.stopping && !rp_w.retiring)
            close(fd);
        else
            rp_conn_adopt(fd, buf, len);
    }
}

/* The slot's wake socket is readable: the follower published events (the
 * subscriptions' pump runs after every loop turn) or a flight this worker
 * follows ended (coalescing). */
static void worker_on_wake(struct rp_ev *ev, uint32_t events)
{
    (void)events;
    rp_wake_drain(ev->fd);
    rp_cache_hook_woken();
}

/* Open the slot's one wake socket (rp_wake.h) on the worker's epoll. Without
 * it, notifications come with the loop's turns and coalescing followers
 * look at their flight on a timer. */
static void worker_open_wake(void)
{
    rp_w.wake_ev.handler = worker_on_wake;
    rp_w.wake_ev.fd = rp_wake_open(rp_w.cfg->shm_name, rp_w.slot);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &rp_w.wake_ev};
    if (rp_w.wake_ev.fd >= 0 && epoll_ctl(rp_w.epfd, EPOLL_CTL_ADD, rp_w.wake_ev.fd, &ev) == 0)
        return;
    rp_warn("no wake socket: notifications come with the loop's turns, coalescing followers "
            "poll their flight",
            "error=\"%s\"", strerror(errno));
    if (rp_w.wake_ev.fd >= 0)
        close(rp_w.wake_ev.fd);
    rp_w.wake_ev.fd = -1;
}

uint64_t rp_worker_now_ms(void)
{
    return rp_clock_mono_ms();
}

/* Count one answered client request in the worker's shm slot and row. */
void rp_worker_count_answer(int ok)
{
    struct rp_shm_worker *ws = rp_shm_worker(rp_w.shm, rp_w.slot);
    atomic_fetch_add_explicit(&ws->requests, 1, memory_order_relaxed);
    struct rp_shm_epstats *st = rp_shm_stats(rp_w.shm, rp_w.slot, 0);
    if (ok)
        atomic_fetch_add_explicit(&st->client_ok, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&st->client_error, 1, memory_order_relaxed);
}

/* Build the per-worker endpoint table from the configuration and the shm
 * rows the supervisor filled (matched by index: the supervisor writes row i
 * for configured endpoint i's slot, see supervisor.c). */
static int worker_setup_endpoints(void)
{
    const struct rp_config *cfg = rp_w.cfg;
    unsigned share = rp_worker_part(rp_worker_conn_pool(cfg, rp_w.count), rp_w.index, rp_w.count);
    if (share < 1) {
        share = 1;
        if (rp_w.index == 0)
            rp_warn("max_connections is below the number of workers: each worker keeps one "
                    "connection per endpoint",
                    "max_connections=%lld workers=%u", (long long)cfg->max_connections, rp_w.count);
    }
    unsigned warm_min = rp_worker_part((uint64_t)cfg->min_connections, rp_w.index, rp_w.count);
    rp_w.nep = 0;
    for (int i = 0; i < cfg->endpoint_count; i++) {
        struct rp_endpoint_config *ec = (struct rp_endpoint_config *)&cfg->endpoints[i];
        struct rp_shm_endpoint *row = rp_shm_find_endpoint(rp_w.shm, ec->url);
        if (!row) {
            rp_error("endpoint has no shm row", "endpoint=%s", ec->name);
            return -1;
        }
        struct rp_wep *w = &rp_w.eps[rp_w.nep++];
        memset(w, 0, sizeof *w);
        w->in_use = 1;
        w->cfg = ec;
        w->shm = row;
        w->stats = rp_shm_stats(rp_w.shm, rp_w.slot, row->id);
        w->share = share;
        w->warm_min = warm_min < share ? warm_min : share;
    }
    return 0;
}

static void worker_free_endpoints(void)
{
    rp_w.nep = 0;
}

static void worker_listen(int on);

/* Stop accepting: the listen sockets leave epoll and are closed, so the
 * kernel hands new clients to the other (or the next) workers. */
static void worker_stop_accepting(void)
{
    rp_timer_cancel(&rp_w.timers, &rp_w.accept_timer);
    worker_listen(0);
    for (int i = 0; i < 2; i++) {
        struct rp_listener *l = &rp_w.listeners[i];
        if (l->ev.fd >= 0) {
            close(l->ev.fd);
            l->ev.fd = -1;
        }
    }
}

/* Register (ON) or remove the listen sockets in epoll. */
static void worker_listen(int on)
{
    for (int i = 0; i < 2; i++) {
        struct rp_listener *l = &rp_w.listeners[i];
        if (l->ev.fd < 0)
            continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = l};
        epoll_ctl(rp_w.epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->ev.fd, on ? &ev : NULL);
    }
}

/* A listen socket is readable: accept (nothing once stopping). */
static void worker_on_listen(struct rp_ev *ev, uint32_t events)
{
    (void)events;
    if (!rp_w.stopping)
        rp_conn_accept((struct rp_listener *)ev);
}

/* The supervisor's channel is readable: clients handed over. */
static void worker_on_handoff(struct rp_ev *ev, uint32_t events)
{
    (void)ev;
    (void)events;
    worker_adopt_clients();
}

static void worker_resume_accept(struct rp_timer *t, void *arg)
{
    (void)t;
    (void)arg;
    if (!rp_w.stopping)
        worker_listen(1);
}

/* Stop accepting for MS milliseconds (descriptors ran out, or this worker
 * holds more than its part of the clients). */
void rp_worker_pause_accept(uint64_t ms)
{
    if (rp_timer_armed(&rp_w.accept_timer))
        return;
    worker_listen(0);
    rp_timer_arm(&rp_w.timers, &rp_w.accept_timer, rp_worker_now_ms() + ms);
}

void rp_worker_defer_free(void *p)
{
    rp_child_defer_free(&rp_w.child, p);
}

/* Run timers whose deadline has passed. */
static void worker_run_timers(void)
{
    uint64_t now = rp_worker_now_ms();
    struct rp_timer *t;
    while ((t = rp_timer_pop_expired(&rp_w.timers, now)))
        t->fn(t, t->arg);
}

static int worker_epoll_timeout_ms(void)
{
    uint64_t next = rp_timer_next(&rp_w.timers);
    uint64_t now = rp_worker_now_ms();
    int cap = rp_w.retiring ? 20 : 1000; /* heartbeat cadence; handover retries */
    if (next == UINT64_MAX)
        return cap;
    if (next <= now)
        return 0;
    return next - now < (uint64_t)cap ? (int)(next - now) : cap;
}

uint64_t rp_worker_conn_pool(const struct rp_config *cfg, unsigned count)
{
    uint64_t total = (uint64_t)cfg->max_connections;
    return total > count ? total - 1 : total; /* the prober's one counts too */
}

unsigned rp_worker_part(uint64_t total, unsigned index, unsigned count)
{
    if (count == 0)
        return (unsigned)total;
    return (unsigned)(total / count + (index < total % count ? 1 : 0));
}

int rp_worker_main(const struct rp_config *cfg, struct rp_shm_header *shm,
                   const struct rp_worker_args *args)
{
    unsigned slot = args->slot;
    int listen_fd = args->listen_fd, http_fd = args->http_fd, chan_fd = args->chan_fd;
    memset(&rp_w, 0, sizeof rp_w);
    rp_w.index = args->index;
    rp_w.count = args->count;
    rp_w.cfg = cfg;
    rp_w.shm = shm;
    rp_w.slot = slot;
    int fds[2] = {listen_fd, http_fd};
    for (int i = 0; i < 2; i++) {
        rp_w.listeners[i].ev.handler = worker_on_listen;
        rp_w.listeners[i].ev.fd = fds[i];
        rp_w.listeners[i].http_only = i == 1;
    }
    rp_w.chan_ev.handler = worker_on_handoff;
    rp_w.chan_ev.fd = chan_fd;
    rp_w.breaker.failure_threshold = (uint32_t)cfg->cb_failure_threshold;
    rp_w.breaker.recovery_timeout_ms = (uint64_t)cfg->cb_recovery_timeout_ms;
    rp_w.breaker.half_open_max = (uint32_t)cfg->cb_half_open_max_attempts;
    rp_timer_heap_init(&rp_w.timers);
    rp_jparser_init(&rp_w.parser);
    rp_w.scratch = malloc(RP_CONN_READ_BYTES);
    if (!rp_w.scratch)
        return 1;
    rp_balancer_init(&rp_w.balancer);

    pid_t sup = (pid_t)atomic_load_explicit(&shm->supervisor_pid, memory_order_relaxed);
    if (rp_child_setup(&rp_w.child, sup, 1) != 0)
        return 1;
    rp_w.epfd = rp_w.child.epfd;
    rp_timer_init(&rp_w.accept_timer, worker_resume_accept, NULL);
    worker_listen(1);
    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = &rp_w.chan_ev};
    if (chan_fd >= 0 && epoll_ctl(rp_w.epfd, EPOLL_CTL_ADD, chan_fd, &cev) != 0) {
        rp_error("epoll_ctl channel failed", "error=\"%s\"", strerror(errno));
        return 1;
    }
    worker_open_wake();
    if (worker_setup_endpoints() != 0 || rp_h1_init() != 0) {
        rp_error("worker initialisation failed", NULL);
        return 1;
    }

    struct rp_shm_worker *ws = rp_shm_worker(shm, slot);
    atomic_store_explicit(&ws->state, RP_WORKER_RUNNING, memory_order_relaxed);
    /* the generation of the configuration this worker runs: the segment's
     * may already be newer when a reload came while it started */
    atomic_store_explicit(&ws->generation, args->generation, memory_order_relaxed);
    rp_info("worker started", "slot=%u endpoints=%d", slot, rp_w.nep);
    rp_warm_start();
    rp_cache_hook_init();

    struct epoll_event events[256];
    for (;;) {
        if ((rp_child_stop_flag || rp_child_retire_flag) && !rp_w.stopping) {
            rp_w.stopping = 1;
            rp_w.retiring = rp_child_retire_flag && !rp_child_stop_flag;
            rp_w.stop_deadline_ms = rp_worker_now_ms() + (uint64_t)cfg->shutdown_timeout_ms;
            atomic_store_explicit(&ws->state, RP_WORKER_DRAINING, memory_order_relaxed);
            worker_stop_accepting();
            rp_info(rp_w.retiring ? "worker retiring: handing clients over" : "worker draining",
                    "requests=%u clients=%u", rp_w.nreqs, rp_w.nconns);
        }
        if (rp_child_stop_flag && rp_w.retiring)
            rp_w.retiring = 0; /* a full stop overrides a handover */
        if (rp_w.stopping) {
            if (rp_w.retiring) {
                /* clients sent to us before the supervisor told us to
                 * retire are already in the channel: take them, pass them
                 * on, and only then may the loop end */
                worker_adopt_clients();
                rp_conn_handoff_all(rp_w.chan_ev.fd);
            } else
                rp_conn_close_all_idle();
            if (rp_w.nconns == 0 && rp_w.nreqs == 0)
                break;
            if (rp_worker_now_ms() >= rp_w.stop_deadline_ms) {
                rp_warn("shutdown timeout: closing remaining clients", "requests=%u clients=%u",
                        rp_w.nreqs, rp_w.nconns);
                break;
            }
        }
        atomic_store_explicit(&ws->heartbeat_ms, rp_shm_now_ms(shm), memory_order_relaxed);
        int n = rp_child_wait(&rp_w.child, events, 256, worker_epoll_timeout_ms());
        if (n < 0)
            break;
        /* idle upstream connections that spoke close before anything of
         * this batch could reuse them */
        for (int i = 0; i < n; i++)
            if (((struct rp_ev *)events[i].data.ptr)->handler == rp_h1_event)
                rp_h1_idle_event(events[i].data.ptr);
        rp_ev_dispatch(events, n);
        worker_run_timers();
        rp_subw_pump(); /* events a wake-up may have missed (one load when none) */
        rp_conn_flush_all();
        rp_child_bury(&rp_w.child);
    }
    rp_info("worker stopped", "slot=%u", slot);
    rp_cache_hook_cleanup();
    rp_h1_cleanup();
    rp_subw_cleanup();
    if (rp_w.wake_ev.fd >= 0)
        close(rp_w.wake_ev.fd);
    rp_w.wake_ev.fd = -1;
    worker_free_endpoints();
    rp_child_cleanup(&rp_w.child);
    rp_w.epfd = -1;
    free(rp_w.scratch);
    rp_jparser_free(&rp_w.parser);
    rp_balancer_free(&rp_w.balancer);
    rp_timer_heap_free(&rp_w.timers);
    return 0;
}
