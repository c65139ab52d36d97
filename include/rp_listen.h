/* rp_listen.h - the listen sockets the supervisor opens (listen.c): the
 * client UNIX socket, server.http_listen, and the control socket. */
#ifndef RP_LISTEN_H
#define RP_LISTEN_H

#include <stddef.h>

/* Create the UNIX listen socket at PATH with MODE: a stale socket file is
 * replaced, a path a live server answers on is refused. Returns the fd, or
 * -1 with ERR set. */
int rp_listen_unix(const char *path, int mode, int backlog, char *err, size_t errlen);

/* Listen on "HOST:PORT" (IPv4, [IPv6] or a name resolved once) over TCP.
 * Returns the fd, or -1 with ERR set. */
int rp_listen_tcp(const char *hostport, int backlog, char *err, size_t errlen);

#endif
