/* resolve.h - asynchronous host-name resolution for a worker: one c-ares
 * channel driven from the worker's own epoll and timer heap (never a
 * blocking getaddrinfo on the loop). c-ares reads /etc/hosts and
 * resolv.conf like the C library and reports each address's TTL.
 *
 * Who refreshes what, and when, is the caller's business (transport_h1.c re-resolves
 * each endpoint host on a schedule derived from the TTLs).
 */
#ifndef RP_WORKER_RESOLVE_H
#define RP_WORKER_RESOLVE_H

#include <stdint.h>
#include <sys/socket.h>

#define RP_RESOLVE_MAX_ADDRS 4

struct rp_resolved {
    int status;   /* 0 = at least one address; else an error */
    char err[96]; /* when status != 0: what went wrong */
    int naddr;
    struct sockaddr_storage addr[RP_RESOLVE_MAX_ADDRS];
    socklen_t addr_len[RP_RESOLVE_MAX_ADDRS];
    uint32_t ttl_s; /* smallest TTL of the addresses; 0 when unknown (hosts file) */
};

/* Called once per rp_resolve_start(), maybe before rp_resolve_start()
 * returns (hosts file, errors): the caller must expect that. */
typedef void (*rp_resolve_cb)(void *arg, const struct rp_resolved *res);

/* Set up the worker's channel. Returns 0, -1 (logged) on failure. */
int rp_resolve_init(void);
void rp_resolve_cleanup(void);

/* Look up HOST (IPv4 and IPv6) for PORT; CB gets the answer. */
void rp_resolve_start(const char *host, uint16_t port, rp_resolve_cb cb, void *arg);

struct rp_ev;
/* An epoll event on one of c-ares's sockets. */
void rp_resolve_event(struct rp_ev *ev, uint32_t events);

#endif
