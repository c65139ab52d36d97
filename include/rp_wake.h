/* rp_wake.h - waking another process of the same pool (any slot) at once.
 *
 * Each process that wants to be woken opens its own wake socket: a
 * non-blocking datagram socket bound in the abstract UNIX namespace under a
 * name made of the pool's shm name and its slot. Any process of the pool
 * posts a wake-up with one datagram (dropped when the socket's queue is
 * full: the sleeper is already due to wake). A dead process leaves nothing
 * behind: the kernel frees an abstract name with its last descriptor, so a
 * respawned process binds the same name again. Wake-ups carry no data;
 * the woken process re-reads the shared state that changed.
 */
#ifndef RP_WAKE_H
#define RP_WAKE_H

/* Open and bind the wake socket of SLOT of the pool whose segment is
 * SHM_NAME. Returns the descriptor (non-blocking, close-on-exec) to add to
 * an epoll set, or -1 with errno set. */
int rp_wake_open(const char *shm_name, unsigned slot);

/* Wake the process of SLOT (nothing when none listens). Never blocks. */
void rp_wake_post(const char *shm_name, unsigned slot);

/* Read away every pending wake-up from FD (call before re-reading state). */
void rp_wake_drain(int fd);

#endif
