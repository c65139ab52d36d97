/* transport_h1.h - the worker's native HTTP/1.1 upstream client: the one transport
 * of every endpoint, http:// and https:// (OpenSSL, non-blocking on the same
 * epoll: chain and host name verified, SNI sent, sessions resumed). Host
 * names are resolved by resolve.c (c-ares) on a schedule (see
 * RP_H1_RESOLVE_MAX_MS). libcurl serves only the prober.
 *
 * Modelled on nginx's upstream module with keep-alive: per endpoint a LIFO
 * pool of idle keep-alive connections on the worker's own epoll, one
 * sendmsg per request (head and body as an iovec, the body never copied),
 * the response parsed by libhttp-parser straight into the attempt's body
 * buffer, no liveness probes (an idle connection stays in epoll and is
 * closed as soon as the server closes it).
 *
 * The transport contract towards request.c: rp_h1_start() begins an
 * attempt with a deadline; when it ends, a struct rp_xfer_result is filled
 * and rp_req_attempt_done() is called (never from inside rp_h1_start());
 * cancelling is the attempt's deadline timer ending it. No request is sent
 * twice once a byte of it may have left (result.sent = 1), a connection
 * with unread bytes is never reused. Sockets are counted into shm.
 *
 * Private to the worker; the pure parts (URL splitting, request
 * formatting, the incremental response parser) are src/proto/h1.c
 * (rp_h1.h).
 */
#ifndef RP_TRANSPORT_H1_H
#define RP_TRANSPORT_H1_H

#include "rp_h1.h"

#define RP_H1_MAX_ADDRS  4     /* addresses kept per endpoint */
#define RP_H1_READ_BYTES 65536 /* one read() of a response */
/* Host names are looked up again after their TTL, at most this long
 * (RPCPOOL_RESOLVE_REFRESH_MS in the environment overrides it, for tests),
 * at least RP_H1_RESOLVE_MIN_MS; a failed refresh keeps the old addresses
 * and tries again after RP_H1_RESOLVE_RETRY_MS. */
#define RP_H1_RESOLVE_MAX_MS   60000
#define RP_H1_RESOLVE_MIN_MS   1000
#define RP_H1_RESOLVE_RETRY_MS 5000
/* A 2xx response on a call's connection that answers another call (a
 * response the server sent out of turn) is skipped: the call's own answer
 * is waited for on the same connection, at most this long, for at most
 * RP_H1_MAX_STRAYS such responses. */
#define RP_H1_STRAY_WAIT_MS 250
#define RP_H1_MAX_STRAYS    2

/* ---------------------------------------------------------------------
 * worker side (transport_h1.c, on the worker's epoll)
 * ------------------------------------------------------------------- */

struct rp_req;
struct rp_ev;

/* Set up every endpoint: split its URL, build its request head, its TLS
 * context (https), and start resolving its host (from the loop; attempts
 * wait for the first address). Returns 0, -1 when out of memory or a URL
 * is not understood. */
int rp_h1_init(void);

/* Close every connection (uncounted in shm) and free the endpoints' state. */
void rp_h1_cleanup(void);

/* Start R's attempt on native endpoint EP with TIMEOUT_MS for the whole
 * transfer (connect included). Returns 0; the end is always reported later
 * through rp_req_attempt_done(). */
int rp_h1_start(struct rp_req *r, int ep, long timeout_ms);

/* End R's attempt now (see struct rp_transport). */
void rp_h1_cancel(struct rp_req *r);

/* The transports h1.c implements (struct rp_transport in worker.h). */
extern const struct rp_transport rp_transport_http, rp_transport_https;

/* Called from rp_req_attempt_done() when an attempt that read a whole
 * response is judged failed (not the call's answer): the connection that
 * carried it is closed instead of kept. */
void rp_h1_discard_released(void);

/* An epoll event on one of the client's connections, seen before the
 * loop turn's events are handled: an idle connection that became readable
 * (bytes nobody asked for, or the server's close) is closed at once, so
 * nothing handled in the same turn can reuse it. */
void rp_h1_idle_event(struct rp_ev *ev);

/* An epoll event on one of the client's connections. */
void rp_h1_event(struct rp_ev *ev, uint32_t events);

#endif
