/* supervisor.c - the supervisor's life: create the sockets and the shm
 * segment, fork the workers, reap and replace them with back-off, and stop
 * gracefully. Signals only set state: they are read through a signalfd in
 * the supervisor's epoll loop.
 */
#include "rp_supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_clock.h"
#include "rp_log.h"
#include "rp_ratelimit.h"
#include "rp_timer.h"
#include "rp_worker.h"

#define SUP_BACKOFF_MIN_MS 100
#define SUP_BACKOFF_MAX_MS 30000
#define SUP_STABLE_MS 60000

struct sup_slot {
    pid_t pid;            /* 0 when no process */
    int wanted;           /* the slot should have a running worker */
    uint64_t started_ms;
    uint64_t backoff_ms;
    struct rp_timer respawn;
};

static struct {
    struct rp_config *cfg;
    struct rp_shm shm;
    int listen_fd;
    int sigfd;
    int epfd;
    int stopping;
    uint64_t stop_deadline_ms;
    unsigned nworkers;
    struct sup_slot slots[RP_SHM_MAX_WORKERS];
    struct rp_timer_heap timers;
} sup;

int rp_supervisor_publish_endpoints(struct rp_shm_header *h, const struct rp_config *cfg)
{
    int keep[RP_SHM_MAX_ENDPOINTS] = {0};
    for (int i = 0; i < cfg->endpoint_count; i++) {
        const struct rp_endpoint_config *ec = &cfg->endpoints[i];
        uint64_t key = rp_shm_url_key(ec->url);
        int row = -1, free_row = -1;
        for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++) {
            struct rp_shm_endpoint *e = rp_shm_ep(h, s);
            if (e->url_key == key && e->url_key != 0 && !keep[s]) {
                row = (int)s;
                break;
            }
            if (free_row < 0 && !keep[s] && e->url_key == 0)
                free_row = (int)s;
        }
        if (row < 0)
            row = free_row;
        if (row < 0)
            return -1;
        keep[row] = 1;
        struct rp_shm_endpoint *e = rp_shm_ep(h, (unsigned)row);
        int fresh = e->url_key != key;
        if (fresh) {
            atomic_store_explicit(&e->in_use, 0, memory_order_release);
            atomic_store_explicit(&e->breaker, 0, memory_order_relaxed);
            atomic_store_explicit(&e->gcra_tat_ns, 0, memory_order_relaxed);
            atomic_store_explicit(&e->hold_until_ms, 0, memory_order_relaxed);
            atomic_store_explicit(&e->ewma_latency_us, 0, memory_order_relaxed);
            atomic_store_explicit(&e->state, RP_EP_UP, memory_order_relaxed);
            atomic_store_explicit(&e->drained, 0, memory_order_relaxed);
            atomic_store_explicit(&e->health_ok, 1, memory_order_relaxed);
            atomic_store_explicit(&e->head_block, 0, memory_order_relaxed);
            atomic_store_explicit(&e->chain_id, 0, memory_order_relaxed);
        }
        e->id = (uint32_t)row;
        e->url_key = key;
        e->weight = (uint32_t)ec->weight;
        e->rl_interval_ns = rp_gcra_interval_ns((uint64_t)ec->rate_limit.max_requests,
                                                (uint64_t)ec->rate_limit.window_ms);
        e->rl_burst = (uint64_t)ec->rate_limit.burst_size;
        snprintf(e->name, sizeof e->name, "%s", ec->name);
        snprintf(e->url_redacted, sizeof e->url_redacted, "%s", ec->url_redacted);
        atomic_store_explicit(&e->in_use, 1, memory_order_release);
    }
    unsigned used = 0;
    for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++) {
        struct rp_shm_endpoint *e = rp_shm_ep(h, s);
        if (!keep[s] && atomic_load_explicit(&e->in_use, memory_order_relaxed))
            atomic_store_explicit(&e->in_use, 0, memory_order_release); /* tombstone */
        if (e->url_key)
            used = s + 1;
    }
    atomic_store_explicit(&h->endpoint_count, used, memory_order_release);
    return 0;
}

/* Give back what a dead worker held in shm: in-flight attempts, half-open
 * trial slots and connection counts; its sockets died with it. */
static void sup_repair_slot(unsigned slot)
{
    struct rp_shm_header *h = sup.shm.hdr;
    for (unsigned e = 0; e < RP_SHM_MAX_ENDPOINTS; e++) {
        struct rp_shm_epstats *st = rp_shm_stats(h, slot, e);
        struct rp_shm_endpoint *ep = rp_shm_ep(h, e);
        uint32_t v = atomic_exchange_explicit(&st->inflight_held, 0, memory_order_relaxed);
        if (v)
            atomic_fetch_sub_explicit(&ep->inflight, v, memory_order_relaxed);
        v = atomic_exchange_explicit(&st->trials_held, 0, memory_order_relaxed);
        if (v)
            rp_breaker_release_trials(&ep->breaker, v);
        v = atomic_exchange_explicit(&st->conns_open_held, 0, memory_order_relaxed);
        if (v)
            atomic_fetch_sub_explicit(&ep->conns_open, v, memory_order_relaxed);
        v = atomic_exchange_explicit(&st->conns_active_held, 0, memory_order_relaxed);
        if (v)
            atomic_fetch_sub_explicit(&ep->conns_active, v, memory_order_relaxed);
    }
    struct rp_shm_worker *w = rp_shm_worker(h, slot);
    uint64_t clients = atomic_exchange_explicit(&w->clients, 0, memory_order_relaxed);
    if (clients)
        atomic_fetch_sub_explicit(&h->clients_open, clients, memory_order_relaxed);
}

/* Fork the worker of SLOT. The child never returns. */
static int sup_spawn(unsigned slot)
{
    struct sup_slot *s = &sup.slots[slot];
    struct rp_shm_worker *w = rp_shm_worker(sup.shm.hdr, slot);
    atomic_store_explicit(&w->state, RP_WORKER_STARTING, memory_order_relaxed);
    atomic_store_explicit(&w->kind, RP_KIND_WORKER, memory_order_relaxed);
    pid_t pid = fork();
    if (pid < 0) {
        rp_error("fork failed", "slot=%u error=\"%s\"", slot, strerror(errno));
        atomic_store_explicit(&w->state, RP_WORKER_DEAD, memory_order_relaxed);
        return -1;
    }
    if (pid == 0) {
        close(sup.sigfd);
        close(sup.epfd);
        rp_log_init("worker", sup.cfg->log_level);
        srandom((unsigned)(getpid() ^ rp_clock_mono_ns()));
        int rc = rp_worker_main(sup.cfg, sup.shm.hdr, slot, sup.listen_fd);
        exit(rc);
    }
    s->pid = pid;
    s->started_ms = rp_clock_mono_ms();
    atomic_store_explicit(&w->pid, pid, memory_order_relaxed);
    atomic_store_explicit(&w->started_ms, rp_shm_now_ms(sup.shm.hdr), memory_order_relaxed);
    atomic_store_explicit(&w->heartbeat_ms, rp_shm_now_ms(sup.shm.hdr), memory_order_relaxed);
    rp_info("worker spawned", "slot=%u worker_pid=%d", slot, (int)pid);
    return 0;
}

static void sup_respawn_fired(struct rp_timer *t, void *arg)
{
    (void)t;
    unsigned slot = (unsigned)(uintptr_t)arg;
    if (sup.stopping || !sup.slots[slot].wanted || sup.slots[slot].pid)
        return;
    struct rp_shm_worker *w = rp_shm_worker(sup.shm.hdr, slot);
    atomic_fetch_add_explicit(&w->restarts, 1, memory_order_relaxed);
    if (sup_spawn(slot) != 0)
        rp_timer_arm(&sup.timers, &sup.slots[slot].respawn,
                     rp_clock_mono_ms() + sup.slots[slot].backoff_ms);
}

/* Reap every exited child; schedule replacements with back-off (100 ms
 * doubling to 30 s, reset after a minute of stable running). */
static void sup_reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        unsigned slot;
        for (slot = 0; slot < RP_SHM_MAX_WORKERS; slot++)
            if (sup.slots[slot].pid == pid)
                break;
        if (slot == RP_SHM_MAX_WORKERS)
            continue;
        struct sup_slot *s = &sup.slots[slot];
        s->pid = 0;
        struct rp_shm_worker *w = rp_shm_worker(sup.shm.hdr, slot);
        atomic_store_explicit(&w->state, RP_WORKER_DEAD, memory_order_relaxed);
        sup_repair_slot(slot);
        uint64_t now = rp_clock_mono_ms();
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (sup.stopping || !s->wanted) {
            rp_info("worker exited", "slot=%u worker_pid=%d status=%d", slot, (int)pid,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            atomic_store_explicit(&w->state, RP_WORKER_FREE, memory_order_relaxed);
            continue;
        }
        if (now - s->started_ms >= SUP_STABLE_MS)
            s->backoff_ms = SUP_BACKOFF_MIN_MS;
        rp_warn(clean ? "worker exited unexpectedly" : "worker died",
                "slot=%u worker_pid=%d %s=%d respawn_in_ms=%llu", slot, (int)pid,
                WIFSIGNALED(status) ? "signal" : "status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                (unsigned long long)s->backoff_ms);
        rp_timer_arm(&sup.timers, &s->respawn, now + s->backoff_ms);
        s->backoff_ms = s->backoff_ms * 2 > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS
                                                               : s->backoff_ms * 2;
    }
}

static unsigned sup_live_children(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < RP_SHM_MAX_WORKERS; i++)
        if (sup.slots[i].pid)
            n++;
    return n;
}

static void sup_signal_all(int sig)
{
    for (unsigned i = 0; i < RP_SHM_MAX_WORKERS; i++)
        if (sup.slots[i].pid)
            kill(sup.slots[i].pid, sig);
}

/* Begin the graceful stop: new clients find no socket, workers answer what
 * they hold and exit. */
static void sup_begin_stop(const char *why)
{
    if (sup.stopping)
        return;
    sup.stopping = 1;
    sup.stop_deadline_ms = rp_clock_mono_ms() + (uint64_t)sup.cfg->shutdown_timeout_ms + 2000;
    rp_info("stopping", "reason=%s workers=%u", why, sup_live_children());
    unlink(sup.cfg->socket_path);
    sup_signal_all(SIGTERM);
}

static void sup_handle_signals(void)
{
    struct signalfd_siginfo si;
    while (read(sup.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            sup_reap();
            break;
        case SIGTERM:
        case SIGINT:
            sup_begin_stop(si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        case SIGHUP:
            rp_info("SIGHUP received: reload not available in this build", NULL);
            break;
        default:
            break;
        }
    }
}

static int sup_timeout_ms(void)
{
    uint64_t next = rp_timer_next(&sup.timers);
    uint64_t now = rp_clock_mono_ms();
    if (next == UINT64_MAX)
        return 1000;
    return next <= now ? 0 : (next - now > 1000 ? 1000 : (int)(next - now));
}

int rp_supervisor_run(struct rp_config *cfg, int workers_override)
{
    char err[RP_ERR_MAX];
    memset(&sup, 0, sizeof sup);
    sup.cfg = cfg;
    sup.listen_fd = sup.sigfd = sup.epfd = -1;
    rp_timer_heap_init(&sup.timers);
    if (workers_override > 0)
        cfg->workers = workers_override;
    sup.nworkers = (unsigned)cfg->workers;
    if (sup.nworkers < 1)
        sup.nworkers = 1;
    if (sup.nworkers > RP_SHM_MAX_WORKERS - 1)
        sup.nworkers = RP_SHM_MAX_WORKERS - 1;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    sup.listen_fd = rp_listen_unix(cfg->socket_path, cfg->socket_mode, 4096, err, sizeof err);
    if (sup.listen_fd < 0) {
        rp_error("cannot create the client socket", "error=\"%s\"", err);
        return 2;
    }
    mode_t shm_mode = cfg->group ? 0640 : 0600;
    if (rp_shm_create(&sup.shm, cfg->shm_name, cfg->name, shm_mode, (gid_t)-1, err, sizeof err) !=
        0) {
        rp_error("cannot create the shm segment", "error=\"%s\"", err);
        close(sup.listen_fd);
        unlink(cfg->socket_path);
        return 2;
    }
    if (rp_supervisor_publish_endpoints(sup.shm.hdr, cfg) != 0) {
        rp_error("too many endpoints for the shm segment", NULL);
        rp_shm_destroy(&sup.shm, 1);
        close(sup.listen_fd);
        unlink(cfg->socket_path);
        return 2;
    }
    atomic_store_explicit(&sup.shm.hdr->worker_target, sup.nworkers, memory_order_relaxed);
    sup.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    sup.epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = sup.sigfd};
    if (sup.sigfd < 0 || sup.epfd < 0 || epoll_ctl(sup.epfd, EPOLL_CTL_ADD, sup.sigfd, &ev) != 0) {
        rp_error("cannot set up the supervisor loop", "error=\"%s\"", strerror(errno));
        return 2;
    }
    rp_info("rpcpoold started", "version=%s name=%s socket=%s shm=%s workers=%u endpoints=%d",
            RP_VERSION, cfg->name, cfg->socket_path, cfg->shm_name, sup.nworkers,
            cfg->endpoint_count);

    for (unsigned i = 0; i < sup.nworkers; i++) {
        sup.slots[i].wanted = 1;
        sup.slots[i].backoff_ms = SUP_BACKOFF_MIN_MS;
        rp_timer_init(&sup.slots[i].respawn, sup_respawn_fired, (void *)(uintptr_t)i);
        sup_spawn(i);
    }

    int killed = 0;
    for (;;) {
        atomic_store_explicit(&sup.shm.hdr->supervisor_heartbeat_ms, rp_shm_now_ms(sup.shm.hdr),
                              memory_order_relaxed);
        if (sup.stopping) {
            if (sup_live_children() == 0)
                break;
            if (!killed && rp_clock_mono_ms() >= sup.stop_deadline_ms) {
                rp_warn("workers did not stop in time: killing them", "workers=%u",
                        sup_live_children());
                sup_signal_all(SIGKILL);
                killed = 1;
            }
        }
        struct epoll_event evs[8];
        int n = epoll_wait(sup.epfd, evs, 8, sup_timeout_ms());
        if (n < 0 && errno != EINTR) {
            rp_error("epoll_wait failed", "error=\"%s\"", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            if (evs[i].data.fd == sup.sigfd)
                sup_handle_signals();
        struct rp_timer *t;
        while ((t = rp_timer_pop_expired(&sup.timers, rp_clock_mono_ms())))
            t->fn(t, t->arg);
    }

    close(sup.listen_fd);
    struct stat st;
    if (lstat(cfg->socket_path, &st) == 0 && S_ISSOCK(st.st_mode) && !sup.stopping)
        unlink(cfg->socket_path);
    rp_shm_destroy(&sup.shm, 1);
    close(sup.sigfd);
    close(sup.epfd);
    rp_timer_heap_free(&sup.timers);
    rp_info("rpcpoold stopped", NULL);
    return 0;
}
