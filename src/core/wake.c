/* wake.c - cross-process wake-ups over abstract datagram sockets
 * (rp_wake.h). */
#include "rp_wake.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The abstract address of SLOT's wake socket; returns its length. */
static socklen_t wake_addr(struct sockaddr_un *sa, const char *shm_name, unsigned slot)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    /* sun_path[0] stays 0: the abstract namespace */
    int n =
        snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "rpcpool-wake:%s:%u", shm_name, slot);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path - 1)
        n = (int)sizeof sa->sun_path - 2;
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int rp_wake_open(const char *shm_name, unsigned slot)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_un sa;
    socklen_t len = wake_addr(&sa, shm_name, slot);
    if (bind(fd, (struct sockaddr *)&sa, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void rp_wake_post(const char *shm_name, unsigned slot)
{
    static int out = -1;
    if (out < 0)
        out = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (out < 0)
        return;
    struct sockaddr_un sa;
    socklen_t len = wake_addr(&sa, shm_name, slot);
    char b = 1;
    /* ECONNREFUSED: nobody listens; EAGAIN: a wake-up is already queued */
    (void)sendto(out, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
}

void rp_wake_drain(int fd)
{
    char b[64];
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) > 0)
        ;
}
