/* rp_heldsock.h - upstream sockets a libcurl user (the prober, the head
 * follower) opens itself, each counted in its slot's conns_open cell of the
 * endpoint it belongs to (rp_hold.h), so that host-wide connection counts
 * see them and the supervisor's repair gives them back if the process dies.
 */
#ifndef RP_HELDSOCK_H
#define RP_HELDSOCK_H

#include <stdatomic.h>
#include <stdint.h>

/* fd -> the cell it is counted in (NULL: not counted). Zero-initialised. */
struct rp_held_socks {
    _Atomic uint32_t **cell;
    int cap;
};

/* Open a socket (FAMILY, TYPE, PROTOCOL; close-on-exec added) and count it
 * in CELL. Returns the descriptor, or -1. */
int rp_held_sock_open(struct rp_held_socks *t, _Atomic uint32_t *cell, int family, int type,
                      int protocol);

/* Uncount FD when it was counted (the caller closes it). Returns 1 when it
 * was, 0 when not. */
int rp_held_sock_forget(struct rp_held_socks *t, int fd);

/* Free the table (the sockets are the caller's to close). */
void rp_held_socks_free(struct rp_held_socks *t);

#endif
