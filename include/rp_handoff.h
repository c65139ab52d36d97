/* rp_handoff.h - moving live client connections between workers.
 *
 * When workers are replaced (reload, `workers N`), a retiring worker hands
 * each client connection, once it is quiescent (no request in flight, no
 * answer unsent), to the supervisor over its SOCK_SEQPACKET channel: the fd
 * travels as SCM_RIGHTS with the bytes the client already sent but that do
 * not yet form a whole request. The supervisor passes it on to a worker of
 * the new generation, which carries on reading. No client connection is
 * dropped by a reload.
 *
 * Reloads in quick succession: the worker a client was passed to may be
 * superseded before it has read it, even before it has started. It then
 * retires too (SIGUSR2 is blocked from the fork until its handler exists),
 * finds its endpoints' rows although they are already tombstoned
 * (rp_shm_find_endpoint), takes what is in its channel and passes it on
 * with its own clients before it exits. The supervisor never sends to a
 * worker it has told to retire, so nothing arrives after that drain.
 */
#ifndef RP_HANDOFF_H
#define RP_HANDOFF_H

#include <stddef.h>

#define RP_HANDOFF_MAX_BYTES 65536 /* buffered input that may travel with an fd */

/* Send FD and DATA[0, LEN) on channel CH. Returns 0 when sent, 1 when the
 * channel is full (try later), -1 on error. FD stays open in the caller. */
int rp_handoff_send(int ch, int fd, const char *data, size_t len);

/* What rp_handoff_recv() returns when it got no fd. */
#define RP_HANDOFF_CLOSED  (-1) /* an error, or the peer closed the channel */
#define RP_HANDOFF_AGAIN   (-2) /* nothing is waiting */
#define RP_HANDOFF_DROPPED (-3) /* a message without an fd: dropped, read on */

/* Receive one message from CH into BUF (RP_HANDOFF_MAX_BYTES). Returns the
 * fd (>= 0) with *LEN set, RP_HANDOFF_AGAIN when nothing is waiting,
 * RP_HANDOFF_CLOSED on error or when the peer closed the channel. A message
 * that arrives without an fd is dropped (RP_HANDOFF_DROPPED). */
int rp_handoff_recv(int ch, char *buf, size_t *len);

#endif
