/* child.c - the scaffold of a forked worker or prober (see rp_child.h). */
#include "rp_child.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "rp_log.h"

volatile sig_atomic_t rp_child_stop_flag;
volatile sig_atomic_t rp_child_retire_flag;

/* The signalfd is readable: take every queued signal. */
static void child_on_signal(struct rp_ev *ev, uint32_t events)
{
    (void)events;
    struct signalfd_siginfo si;
    while (read(ev->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR2)
            rp_child_retire_flag = 1;
        else if (si.ssi_signo == SIGTERM)
            rp_child_stop_flag = 1;
    }
}

int rp_child_setup(struct rp_child *ch, pid_t supervisor, int retire)
{
    memset(ch, 0, sizeof *ch);
    ch->epfd = ch->sig_ev.fd = -1;
    rp_child_stop_flag = 0;
    rp_child_retire_flag = 0;
    signal(SIGTERM, SIG_DFL); /* blocked below: read from the signalfd */
    signal(SIGUSR2, retire ? SIG_DFL : SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_SETMASK, &block, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != supervisor) /* the supervisor died before the prctl */
        return -1;
    ch->epfd = epoll_create1(EPOLL_CLOEXEC);
    ch->sig_ev.fd = signalfd(-1, &block, SFD_NONBLOCK | SFD_CLOEXEC);
    ch->sig_ev.handler = child_on_signal;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ch->sig_ev};
    if (ch->epfd < 0 || ch->sig_ev.fd < 0 ||
        epoll_ctl(ch->epfd, EPOLL_CTL_ADD, ch->sig_ev.fd, &ev) != 0) {
        rp_error("cannot set up the process loop", "error=\"%s\"", strerror(errno));
        return -1;
    }
    return 0;
}

int rp_child_wait(struct rp_child *ch, struct epoll_event *evs, int max, int timeout_ms)
{
    int n = epoll_wait(ch->epfd, evs, max, timeout_ms);
    if (n >= 0)
        return n;
    if (errno == EINTR)
        return 0;
    rp_error("epoll_wait failed", "error=\"%s\"", strerror(errno));
    return -1;
}

void rp_child_defer_free(struct rp_child *ch, void *p)
{
    rp_ev_kill(p);
    if (ch->ngrave == ch->capgrave) {
        int cap = ch->capgrave ? ch->capgrave * 2 : 64;
        void **g = realloc(ch->grave, (size_t)cap * sizeof *g);
        if (!g) {
            /* cannot defer: leaking is safer than a use after free */
            rp_warn("out of memory deferring a free", NULL);
            return;
        }
        ch->grave = g;
        ch->capgrave = cap;
    }
    ch->grave[ch->ngrave++] = p;
}

void rp_child_bury(struct rp_child *ch)
{
    for (int i = 0; i < ch->ngrave; i++)
        free(ch->grave[i]);
    ch->ngrave = 0;
}

void rp_child_cleanup(struct rp_child *ch)
{
    rp_child_bury(ch);
    free(ch->grave);
    ch->grave = NULL;
    ch->capgrave = 0;
    if (ch->sig_ev.fd >= 0)
        close(ch->sig_ev.fd);
    ch->sig_ev.fd = -1;
    if (ch->epfd >= 0)
        close(ch->epfd);
    ch->epfd = -1;
}
