/* heldsock.c - counted upstream sockets of the libcurl users (rp_heldsock.h). */
#include "rp_heldsock.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rp_hold.h"

/* Make room in T for descriptor FD. Returns 0, or -1 without memory. */
static int held_grow(struct rp_held_socks *t, int fd)
{
    if (fd < t->cap)
        return 0;
    int cap = t->cap ? t->cap : 64;
    while (cap <= fd)
        cap *= 2;
    _Atomic uint32_t **c = realloc(t->cell, (size_t)cap * sizeof *c);
    if (!c)
        return -1;
    memset(c + t->cap, 0, (size_t)(cap - t->cap) * sizeof *c);
    t->cell = c;
    t->cap = cap;
    return 0;
}

int rp_held_sock_open(struct rp_held_socks *t, _Atomic uint32_t *cell, int family, int type,
                      int protocol)
{
    int fd = socket(family, type | SOCK_CLOEXEC, protocol);
    if (fd < 0)
        return -1;
    if (held_grow(t, fd) != 0) {
        close(fd);
        return -1;
    }
    t->cell[fd] = cell;
    rp_hold_add(cell, +1);
    return fd;
}

int rp_held_sock_forget(struct rp_held_socks *t, int fd)
{
    if (fd < 0 || fd >= t->cap || !t->cell[fd])
        return 0;
    rp_hold_add(t->cell[fd], -1);
    t->cell[fd] = NULL;
    return 1;
}

void rp_held_socks_free(struct rp_held_socks *t)
{
    free(t->cell);
    t->cell = NULL;
    t->cap = 0;
}
