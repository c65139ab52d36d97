/* supervisor.c - the supervisor's life: create the sockets and the shm
 * segment, fork the workers, reap and replace them with back-off, and stop
 * gracefully. Signals only set state: they are read through a signalfd in
 * the supervisor's epoll loop.
 */
#include "rp_supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_cache.h"
#include "rp_clock.h"
#include "rp_control.h"
#include "rp_event.h"
#include "rp_fleet_agent.h"
#include "rp_follower.h"
#include "rp_handoff.h"
#include "rp_hold.h"
#include "rp_listen.h"
#include "rp_log.h"
#include "rp_privs.h"
#include "rp_prober.h"
#include "rp_publish.h"
#include "rp_ratelimit.h"
#include "rp_timer.h"
#include "rp_worker.h"

#define SUP_BACKOFF_MIN_MS  100
#define SUP_BACKOFF_MAX_MS  30000
#define SUP_STABLE_MS       60000
#define SUP_REPLACE_WAIT_MS 5000 /* longest wait for new workers before old ones retire */

/* The auxiliary processes: each has its own slot at the top of the table,
 * is restarted with back-off like a worker, repaired on death, and started
 * again on a reload (it reads the endpoints when it starts). WANTED says
 * whether a configuration runs it at all (NULL: always). */
struct sup_aux {
    unsigned slot;
    uint32_t kind;
    const char *name;
    int (*main)(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot);
    int (*wanted)(const struct rp_config *cfg);
};

static const struct sup_aux sup_auxes[] = {
    {RP_SHM_PROBER_SLOT, RP_KIND_PROBER, "prober", rp_prober_main, NULL},
    {RP_SHM_FLEET_SLOT, RP_KIND_FLEET, "fleet", rp_fleet_main, rp_fleet_wanted},
    {RP_SHM_FOLLOWER_SLOT, RP_KIND_FOLLOWER, "follower", rp_follower_main, rp_follower_wanted},
};
#define SUP_NAUX (sizeof sup_auxes / sizeof sup_auxes[0])

/* The auxiliary process of SLOT, or NULL for a worker slot. */
static const struct sup_aux *sup_aux_of(unsigned slot)
{
    for (size_t i = 0; i < SUP_NAUX; i++)
        if (sup_auxes[i].slot == slot)
            return &sup_auxes[i];
    return NULL;
}

struct sup_slot {
    struct rp_ev ev; /* epoll data of the channel: handler sup_on_chan, fd chan */
    unsigned index;
    pid_t pid;             /* 0 when no process */
    int wanted;            /* the slot should have a running worker */
    int chan;              /* supervisor's end of the handoff channel, -1 when none */
    int restarting;        /* stopped on purpose to be started again (prober on reload) */
    unsigned index_in_gen; /* 0..nworkers-1: its part of host-wide connection limits */
    uint64_t generation;   /* configuration generation it was started with */
    uint64_t started_ms;
    uint64_t backoff_ms;
    struct rp_timer respawn;
};

static void sup_on_chan(struct rp_ev *ev, uint32_t events);

static struct {
    struct rp_config *cfg; /* in force; replaced by a reload */
    struct rp_shm shm;
    int listen_fd;
    int http_fd; /* server.http_listen, -1 when unset */
    int sigfd;
    int epfd;
    struct rp_ev sig_ev; /* epoll data of sigfd: handler sup_on_signal */
    int stopping;
    uint64_t stop_deadline_ms;
    unsigned nworkers;
    uint64_t generation;
    int replacing; /* new workers started; old ones retire once these run */
    uint64_t replace_deadline_ms;
    unsigned handoff_rr;
    int workers_override;
    struct sup_slot slots[RP_SHM_MAX_WORKERS];
    struct rp_timer_heap timers;
} sup;

static void sup_child_close_fds(const int *keep, int nkeep);
static int sup_reload(uint64_t *generation, char *err, size_t errlen);
static void sup_start_auxes(int reload);

/* The lowest generation a live worker or the prober still runs: endpoint
 * rows tombstoned above it may still be written to (rp_publish.h). */
static uint64_t sup_oldest_live_gen(void)
{
    uint64_t oldest = UINT64_MAX;
    for (unsigned i = 0; i < RP_SHM_MAX_WORKERS; i++)
        if (sup.slots[i].pid && sup.slots[i].generation < oldest)
            oldest = sup.slots[i].generation;
    return oldest;
}

/* Fork the worker of SLOT with a fresh handoff channel. The child never
 * returns. */
static int sup_spawn(unsigned slot)
{
    struct sup_slot *s = &sup.slots[slot];
    struct rp_shm_worker *w = rp_shm_worker(sup.shm.hdr, slot);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        rp_error("socketpair failed", "slot=%u error=\"%s\"", slot, strerror(errno));
        return -1;
    }
    int sndbuf = 4 * RP_HANDOFF_MAX_BYTES;
    setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    const struct sup_aux *aux = sup_aux_of(slot);
    atomic_store_explicit(&w->state, RP_WORKER_STARTING, memory_order_relaxed);
    atomic_store_explicit(&w->kind, aux ? aux->kind : RP_KIND_WORKER, memory_order_relaxed);
    rp_hold_slot_claim(sup.shm.hdr, slot); /* readers sum its cells from now on */
    /* SIGUSR2 (retire) stays blocked in a new worker until its handler is
     * in place (rp_worker_main unblocks it): a worker superseded by a
     * reload while it starts must retire and pass on the clients already
     * sent to it, not die of the signal's default action with them. */
    sigset_t usr2, saved;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, &saved);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0) {
        rp_error("fork failed", "slot=%u error=\"%s\"", slot, strerror(errno));
        atomic_store_explicit(&w->state, RP_WORKER_DEAD, memory_order_relaxed);
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (pid == 0) {
        /* the child starts with default dispositions and nothing blocked
         * but a worker's SIGUSR2 (see above): the supervisor's mask (for
         * its signalfd) must not be inherited */
        sigset_t none;
        sigemptyset(&none);
        if (!aux)
            sigaddset(&none, SIGUSR2);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        srandom((unsigned)(getpid() ^ rp_clock_mono_ns()));
        if (aux) {
            int keep[] = {-1};
            sup_child_close_fds(keep, 0);
            rp_log_init(aux->name, sup.cfg->log_level);
            exit(aux->main(sup.cfg, sup.shm.hdr, slot));
        }
        int keep[] = {sup.listen_fd, sup.http_fd, pair[1]};
        sup_child_close_fds(keep, 3);
        rp_log_init("worker", sup.cfg->log_level);
        struct rp_worker_args args = {.slot = slot,
                                      .index = s->index_in_gen,
                                      .count = sup.nworkers,
                                      .listen_fd = sup.listen_fd,
                                      .http_fd = sup.http_fd,
                                      .chan_fd = pair[1],
                                      .generation = sup.generation};
        int rc = rp_worker_main(sup.cfg, sup.shm.hdr, &args);
        exit(rc);
    }
    close(pair[1]);
    s->chan = pair[0];
    s->ev.handler = sup_on_chan;
    s->ev.fd = s->chan;
    s->index = slot;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    epoll_ctl(sup.epfd, EPOLL_CTL_ADD, s->chan, &ev);
    s->pid = pid;
    s->generation = sup.generation;
    s->started_ms = rp_clock_mono_ms();
    atomic_store_explicit(&w->pid, pid, memory_order_relaxed);
    atomic_store_explicit(&w->generation, sup.generation, memory_order_relaxed);
    atomic_store_explicit(&w->started_ms, rp_shm_now_ms(sup.shm.hdr), memory_order_relaxed);
    atomic_store_explicit(&w->heartbeat_ms, rp_shm_now_ms(sup.shm.hdr), memory_order_relaxed);
    rp_info(aux ? "auxiliary process spawned" : "worker spawned",
            "slot=%u kind=%s worker_pid=%d generation=%llu", slot, aux ? aux->name : "worker",
            (int)pid, (unsigned long long)sup.generation);
    return 0;
}

static void sup_forward_handoffs(struct sup_slot *from);

/* A worker's channel is readable: clients it hands over (EV is the
 * struct rp_ev first in its struct sup_slot). */
static void sup_on_chan(struct rp_ev *ev, uint32_t events)
{
    (void)events;
    sup_forward_handoffs((struct sup_slot *)ev);
}

static void sup_close_chan(struct sup_slot *s)
{
    if (s->chan >= 0) {
        epoll_ctl(sup.epfd, EPOLL_CTL_DEL, s->chan, NULL);
        close(s->chan);
        s->chan = s->ev.fd = -1;
    }
}

/* A retiring worker handed over client connections: pass each to a running
 * worker of the current generation, round-robin. */
static void sup_forward_handoffs(struct sup_slot *from)
{
    static char buf[RP_HANDOFF_MAX_BYTES];
    for (;;) {
        size_t len = 0;
        int fd = rp_handoff_recv(from->chan, buf, &len);
        if (fd == RP_HANDOFF_DROPPED)
            continue;
        if (fd == RP_HANDOFF_CLOSED) { /* the worker is gone */
            sup_close_chan(from);
            return;
        }
        if (fd < 0)
            return;
        int sent = 0;
        for (unsigned tries = 0; tries < RP_SHM_MAX_WORKERS && !sent && !sup.stopping; tries++) {
            struct sup_slot *to = &sup.slots[sup.handoff_rr++ % RP_SHM_MAX_WORKERS];
            if (to == from || to->index >= RP_SHM_AUX_FIRST || !to->pid || !to->wanted ||
                to->chan < 0 || to->generation != sup.generation)
                continue;
            sent = rp_handoff_send(to->chan, fd, buf, len) == 0;
        }
        if (!sent)
            rp_warn("no worker could take a handed-over client: closing it", NULL);
        close(fd);
    }
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
        if (s->chan >= 0)
            sup_forward_handoffs(s); /* what it sent before dying */
        sup_close_chan(s);
        struct rp_shm_worker *w = rp_shm_worker(sup.shm.hdr, slot);
        atomic_store_explicit(&w->state, RP_WORKER_DEAD, memory_order_relaxed);
        rp_hold_repair_slot(sup.shm.hdr, slot); /* what it held dies with it */
        uint64_t now = rp_clock_mono_ms();
        int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (sup.stopping || !s->wanted) {
            rp_info("worker exited", "slot=%u worker_pid=%d status=%d", slot, (int)pid,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
            atomic_store_explicit(&w->state, RP_WORKER_FREE, memory_order_relaxed);
            continue;
        }
        if (s->restarting) {
            s->restarting = 0;
            rp_info("restarting", "slot=%u worker_pid=%d", slot, (int)pid);
            sup_spawn(slot);
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
        s->backoff_ms =
            s->backoff_ms * 2 > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : s->backoff_ms * 2;
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

static void sup_handle_signals(void);

/* The signalfd is readable. */
static void sup_on_signal(struct rp_ev *ev, uint32_t events)
{
    (void)ev;
    (void)events;
    sup_handle_signals();
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
        case SIGHUP: {
            uint64_t gen;
            char err[RP_ERR_MAX];
            rp_info("SIGHUP received: reloading", NULL);
            sup_reload(&gen, err, sizeof err);
            break;
        }
        default:
            break;
        }
    }
}

/* In a forked child: close every fd but stdio and the KEEP ones (the
 * supervisor's control socket, its clients, other workers' channels). */
static void sup_child_close_fds(const int *keep, int nkeep)
{
    int sorted[8];
    int n = 0;
    for (int i = 0; i < nkeep && n < 8; i++)
        if (keep[i] > 2)
            sorted[n++] = keep[i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    unsigned from = 3;
    for (int i = 0; i < n; i++) {
        if ((unsigned)sorted[i] > from)
            close_range(from, (unsigned)sorted[i] - 1, 0);
        from = (unsigned)sorted[i] + 1;
    }
    close_range(from, ~0u, 0);
}

/* Start a full set of workers of the current generation in free slots; the
 * running ones retire (hand their clients over) once the new ones run. */
static void sup_replace_workers(void)
{
    for (unsigned i = 0; i < RP_SHM_AUX_FIRST; i++)
        sup.slots[i].wanted = 0;
    unsigned started = 0;
    for (unsigned i = 0; i < RP_SHM_AUX_FIRST && started < sup.nworkers; i++) {
        struct sup_slot *s = &sup.slots[i];
        if (s->pid || s->chan >= 0)
            continue;
        rp_timer_cancel(&sup.timers, &s->respawn);
        struct rp_shm_worker *w = rp_shm_worker(sup.shm.hdr, i);
        atomic_store_explicit(&w->requests, 0, memory_order_relaxed);
        atomic_store_explicit(&w->restarts, 0, memory_order_relaxed);
        s->wanted = 1;
        s->backoff_ms = SUP_BACKOFF_MIN_MS;
        s->index_in_gen = started;
        started++;
        if (sup_spawn(i) != 0)
            rp_timer_arm(&sup.timers, &s->respawn, rp_clock_mono_ms() + s->backoff_ms);
    }
    if (started < sup.nworkers)
        rp_warn("not enough free worker slots", "wanted=%u started=%u", sup.nworkers, started);
    sup.replacing = 1;
    sup.replace_deadline_ms = rp_clock_mono_ms() + SUP_REPLACE_WAIT_MS;
}

/* Once every new worker runs (or the wait is over), the old ones retire. */
static void sup_check_replacement(void)
{
    if (!sup.replacing)
        return;
    int ready = 1;
    for (unsigned i = 0; i < RP_SHM_AUX_FIRST; i++) {
        struct sup_slot *s = &sup.slots[i];
        if (s->wanted && s->pid &&
            atomic_load_explicit(&rp_shm_worker(sup.shm.hdr, i)->state, memory_order_relaxed) !=
                RP_WORKER_RUNNING)
            ready = 0;
    }
    if (!ready && rp_clock_mono_ms() < sup.replace_deadline_ms)
        return;
    sup.replacing = 0;
    for (unsigned i = 0; i < RP_SHM_AUX_FIRST; i++) {
        struct sup_slot *s = &sup.slots[i];
        if (!s->wanted && s->pid) {
            rp_info("worker retiring", "slot=%u worker_pid=%d", i, (int)s->pid);
            kill(s->pid, SIGUSR2);
        }
    }
}

static void sup_apply_log_level(void)
{
    rp_log_set_level(sup.cfg->log_level);
}

/* Re-read the configuration file: parse, validate, swap. A bad file keeps
 * the configuration in force. Settings bound at start (sockets, shm name)
 * keep their old values until a restart. */
static int sup_reload(uint64_t *generation, char *err, size_t errlen)
{
    struct rp_config *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rp_config_load(sup.cfg->path, n, err, errlen) != 0) {
        free(n);
        char q[RP_ERR_MAX + 8];
        rp_warn("reload failed: keeping the configuration in force", "error=%s",
                rp_log_quote(q, sizeof q, err));
        return -1;
    }
    static const char *const fixed[] = {"server.socket", "server.control_socket", "server.shm_name",
                                        "server.http_listen"};
    char **oldv[] = {&sup.cfg->socket_path, &sup.cfg->control_socket, &sup.cfg->shm_name,
                     &sup.cfg->http_listen};
    char **newv[] = {&n->socket_path, &n->control_socket, &n->shm_name, &n->http_listen};
    for (int i = 0; i < 4; i++) {
        const char *a = *oldv[i] ? *oldv[i] : "", *b = *newv[i] ? *newv[i] : "";
        if (strcmp(a, b) != 0)
            rp_warn("reload: setting needs a restart; keeping the old value", "key=%s", fixed[i]);
        char *t = *oldv[i];
        *oldv[i] = *newv[i];
        *newv[i] = t;
    }
    if (sup.workers_override > 0)
        n->workers = sup.workers_override;
    if (rp_cache_region_bytes(n->cache_max_bytes, n->coalesce) !=
        rp_cache_region_bytes(sup.cfg->cache_max_bytes, sup.cfg->coalesce))
        rp_warn("reload: the cache region keeps its size until the next start",
                "max_bytes=%lld in_force_bytes=%zu", (long long)n->cache_max_bytes,
                rp_cache_region_bytes(sup.cfg->cache_max_bytes, sup.cfg->coalesce));
    char why[RP_ERR_MAX];
    if (rp_publish_endpoints(sup.shm.hdr, n, sup.generation + 1, sup_oldest_live_gen(), why,
                             sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", n->path, why);
        rp_config_free(n);
        free(n);
        char q[RP_ERR_MAX + 8];
        rp_warn("reload failed: keeping the configuration in force", "error=%s",
                rp_log_quote(q, sizeof q, err));
        return -1;
    }
    rp_config_free(sup.cfg);
    free(sup.cfg);
    sup.cfg = n;
    sup.nworkers = (unsigned)n->workers;
    sup.generation++; /* rp_publish_endpoints() stored it in the segment */
    atomic_store_explicit(&sup.shm.hdr->worker_target, sup.nworkers, memory_order_relaxed);
    sup_apply_log_level();
    rp_info("configuration reloaded", "generation=%llu endpoints=%d workers=%u",
            (unsigned long long)sup.generation, n->endpoint_count, sup.nworkers);
    sup_replace_workers();
    sup_start_auxes(1);
    *generation = sup.generation;
    return 0;
}

/* Start the auxiliary processes the configuration wants and stop the others.
 * On a reload (RELOAD), a running one is started again: it reads the new
 * endpoints when it starts. */
static void sup_start_auxes(int reload)
{
    for (size_t i = 0; i < SUP_NAUX; i++) {
        const struct sup_aux *a = &sup_auxes[i];
        struct sup_slot *s = &sup.slots[a->slot];
        int want = !a->wanted || a->wanted(sup.cfg);
        if (!want) {
            s->wanted = 0;
            rp_timer_cancel(&sup.timers, &s->respawn);
            if (s->pid)
                kill(s->pid, SIGTERM);
            continue;
        }
        s->wanted = 1;
        if (s->pid) {
            if (reload) {
                s->restarting = 1;
                kill(s->pid, SIGTERM);
            }
        } else {
            rp_timer_cancel(&sup.timers, &s->respawn);
            if (sup_spawn(a->slot) != 0)
                rp_timer_arm(&sup.timers, &s->respawn, rp_clock_mono_ms() + s->backoff_ms);
        }
    }
}

/* `workers N`: a new set of N workers replaces the running ones (each
 * worker's share of max_connections depends on N). */
static int sup_set_workers(unsigned n, char *err, size_t errlen)
{
    if (n < 1 || n > 64) {
        snprintf(err, errlen, "workers: must be between 1 and 64, got %u", n);
        return -1;
    }
    if (sup.stopping) {
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    sup.nworkers = n;
    sup.cfg->workers = n;
    sup.workers_override = (int)n;
    sup.generation++;
    atomic_store_explicit(&sup.shm.hdr->generation, sup.generation, memory_order_release);
    atomic_store_explicit(&sup.shm.hdr->worker_target, n, memory_order_relaxed);
    rp_info("resizing the worker pool", "workers=%u", n);
    sup_replace_workers();
    return 0;
}

static void sup_shutdown_cmd(void)
{
    sup_begin_stop("shutdown command");
}

static const struct rp_config *sup_config(void)
{
    return sup.cfg;
}

static struct rp_shm_header *sup_shm(void)
{
    return sup.shm.hdr;
}

static int sup_timeout_ms(void)
{
    uint64_t next = rp_timer_next(&sup.timers);
    uint64_t now = rp_clock_mono_ms();
    uint64_t cap = sup.replacing || sup.stopping ? 20 : 1000;
    if (next == UINT64_MAX)
        return (int)cap;
    return next <= now ? 0 : (next - now > cap ? (int)cap : (int)(next - now));
}

static int sup_run(struct rp_config *cfg, int workers_override);

int rp_supervisor_run(struct rp_config *cfg, int workers_override)
{
    int rc = sup_run(cfg, workers_override);
    rp_config_free(sup.cfg); /* a reload may have replaced the one we were given */
    free(sup.cfg);
    sup.cfg = NULL;
    return rc;
}

/* The supervisor's life, from socket creation to the last worker's exit. */
static int sup_run(struct rp_config *cfg, int workers_override)
{
    char err[RP_ERR_MAX];
    memset(&sup, 0, sizeof sup);
    sup.cfg = cfg;
    sup.listen_fd = sup.http_fd = sup.sigfd = sup.epfd = -1;
    rp_timer_heap_init(&sup.timers);
    for (unsigned i = 0; i < RP_SHM_MAX_WORKERS; i++) {
        sup.slots[i].chan = -1;
        sup.slots[i].index = i;
        sup.slots[i].backoff_ms = SUP_BACKOFF_MIN_MS;
        rp_timer_init(&sup.slots[i].respawn, sup_respawn_fired, (void *)(uintptr_t)i);
    }
    sup.generation = 1;
    sup.workers_override = workers_override;
    if (workers_override > 0)
        cfg->workers = workers_override;
    sup.nworkers = (unsigned)cfg->workers;
    if (sup.nworkers < 1)
        sup.nworkers = 1;
    if (sup.nworkers > RP_SHM_AUX_FIRST)
        sup.nworkers = RP_SHM_AUX_FIRST;

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 2; /* until the loop ends normally */
    sup.listen_fd = rp_listen_unix(cfg->socket_path, cfg->socket_mode, 4096, err, sizeof err);
    if (sup.listen_fd < 0) {
        rp_error("cannot create the client socket", "error=\"%s\"", err);
        goto out;
    }
    if (cfg->http_listen) {
        sup.http_fd = rp_listen_tcp(cfg->http_listen, 4096, err, sizeof err);
        if (sup.http_fd < 0) {
            rp_error("cannot listen on server.http_listen", "error=\"%s\"", err);
            goto out;
        }
    }
    uid_t run_uid;
    gid_t run_gid;
    if (rp_privs_resolve(cfg->user, cfg->group, &run_uid, &run_gid, err, sizeof err) != 0) {
        rp_error("cannot start", "error=\"%s\"", err);
        goto out;
    }
    /* the files we create belong to the user we run as (root only can chown) */
    if (geteuid() == 0 && (run_uid != (uid_t)-1 || run_gid != (gid_t)-1) &&
        chown(cfg->socket_path, run_uid, run_gid) != 0)
        rp_warn("cannot chown the client socket", "error=\"%s\"", strerror(errno));
    mode_t shm_mode = cfg->group ? 0640 : 0600;
    size_t cache_bytes = rp_cache_region_bytes(cfg->cache_max_bytes, cfg->coalesce);
    if (rp_shm_create(&sup.shm, cfg->shm_name, cfg->name, shm_mode,
                      geteuid() == 0 ? run_gid : (gid_t)-1, cache_bytes, err, sizeof err) != 0) {
        rp_error("cannot create the shm segment", "error=\"%s\"", err);
        goto out;
    }
    if (cache_bytes) /* before any fork: every child sees it laid out */
        rp_cache_region_init(rp_cache_of(sup.shm.hdr), cache_bytes, cfg->cache_max_bytes > 0);
    if (rp_publish_endpoints(sup.shm.hdr, cfg, sup.generation, UINT64_MAX, err, sizeof err) != 0) {
        char q[RP_ERR_MAX + 8];
        rp_error("cannot publish the endpoints", "error=%s", rp_log_quote(q, sizeof q, err));
        goto out;
    }
    atomic_store_explicit(&sup.shm.hdr->worker_target, sup.nworkers, memory_order_relaxed);
    sup.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    sup.epfd = epoll_create1(EPOLL_CLOEXEC);
    sup.sig_ev.handler = sup_on_signal;
    sup.sig_ev.fd = sup.sigfd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &sup.sig_ev};
    if (sup.sigfd < 0 || sup.epfd < 0 || epoll_ctl(sup.epfd, EPOLL_CTL_ADD, sup.sigfd, &ev) != 0) {
        rp_error("cannot set up the supervisor loop", "error=\"%s\"", strerror(errno));
        goto out;
    }
    static struct rp_control_ops ops;
    ops.reload = sup_reload;
    ops.set_workers = sup_set_workers;
    ops.shutdown = sup_shutdown_cmd;
    ops.config = sup_config;
    ops.shm = sup_shm;
    ops.shm_size = sup.shm.size;
    ops.started_ms = rp_clock_mono_ms();
    if (rp_control_open(cfg->control_socket, sup.epfd, &ops, err, sizeof err) != 0) {
        rp_error("cannot create the control socket", "error=\"%s\"", err);
        goto out;
    }
    if (geteuid() == 0 && run_uid != (uid_t)-1) {
        char path[300];
        snprintf(path, sizeof path, "/dev/shm%s", cfg->shm_name);
        if (chown(path, run_uid, (gid_t)-1) != 0 || chown(cfg->control_socket, run_uid, -1) != 0)
            rp_warn("cannot chown the shm segment or the control socket", "error=\"%s\"",
                    strerror(errno));
    }
    if (rp_privs_drop(cfg->user, run_uid, run_gid, err, sizeof err) != 0) {
        rp_error("cannot drop privileges", "error=\"%s\"", err);
        goto out;
    }
    if (cfg->user || cfg->group)
        rp_info("running as", "uid=%d gid=%d", (int)geteuid(), (int)getegid());
    rp_info("rpcpoold started", "version=%s name=%s socket=%s shm=%s workers=%u endpoints=%d",
            RP_VERSION, cfg->name, cfg->socket_path, cfg->shm_name, sup.nworkers,
            cfg->endpoint_count);

    for (unsigned i = 0; i < sup.nworkers; i++) {
        sup.slots[i].wanted = 1;
        sup.slots[i].index_in_gen = i;
        sup_spawn(i);
    }
    sup_start_auxes(0);

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
        rp_ev_dispatch(evs, n > 0 ? n : 0);
        sup_check_replacement();
        struct rp_timer *t;
        while ((t = rp_timer_pop_expired(&sup.timers, rp_clock_mono_ms())))
            t->fn(t, t->arg);
    }

    rc = 0;

out:
    /* the one exit path: undo what was set up, in reverse */
    rp_control_close(); /* nothing when it was never opened */
    if (sup.listen_fd >= 0) {
        close(sup.listen_fd);
        /* a start that failed removes the socket it made; a stop leaves it
         * to whoever may have replaced us unless it is still a socket of
         * ours that nobody took over */
        struct stat st = {0};
        if (rc != 0 ||
            (!sup.stopping && lstat(sup.cfg->socket_path, &st) == 0 && S_ISSOCK(st.st_mode)))
            unlink(sup.cfg->socket_path);
    }
    if (sup.http_fd >= 0)
        close(sup.http_fd);
    if (sup.shm.hdr)
        rp_shm_destroy(&sup.shm, 1);
    if (sup.sigfd >= 0)
        close(sup.sigfd);
    if (sup.epfd >= 0)
        close(sup.epfd);
    rp_timer_heap_free(&sup.timers);
    if (rc == 0)
        rp_info("rpcpoold stopped", NULL);
    return rc;
}
