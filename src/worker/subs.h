/* subs.h - subscriptions, the worker's half (subs.c), private to
 * src/worker/: eth_subscribe / eth_unsubscribe on IPC connections, and the
 * fan-out of the follower's events (rp_sub_ring.h) to this worker's
 * subscribers. */
#ifndef RP_WORKER_SUBS_H
#define RP_WORKER_SUBS_H

#include <stddef.h>
#include <stdint.h>

#include "rp_jsonrpc.h"

struct rp_conn;

/* Free what the subscriptions' worker half holds. (The follower posts new
 * events to the worker's wake socket, rp_w.wake_ev; rp_subw_pump() runs
 * after every loop turn.) */
void rp_subw_cleanup(void);

/* Is CALL (of BUF) eth_subscribe or eth_unsubscribe? Then it is answered
 * here (on HTTP: -32601 naming the IPC socket) and 1 is returned. */
int rp_subw_dispatch(struct rp_conn *c, const char *buf, size_t len, const struct rp_jcall *call);

/* Is CALL of BUF a subscription method (for a batch: refused there)? */
int rp_subw_is_sub_method(const char *buf, const struct rp_jcall *call);

/* End C's subscriptions with WHY (an error notification each); C closes
 * once its answers are out. */
void rp_subw_end_conn(struct rp_conn *c, const char *why);

/* C closes: its subscriptions end. */
void rp_subw_conn_closed(struct rp_conn *c);

/* Write every event published since the last pump to the subscribers. */
void rp_subw_pump(void);

/* A head seen in traffic: wake the follower when it is above the
 * follower's. */
void rp_subw_head_hint(uint64_t head);

/* Handoff: encode C's subscriptions into OUT[0, CAP) (after a 'S' tag the
 * caller writes). Returns the bytes written, 0 when C has none, or
 * (size_t)-1 when they do not fit. */
size_t rp_subw_encode(const struct rp_conn *c, char *out, size_t cap);

/* Adopt: DATA[0, LEN) as rp_subw_encode() wrote it. Returns the bytes it
 * took, or (size_t)-1 when malformed. */
size_t rp_subw_adopt(struct rp_conn *c, const char *data, size_t len);

#endif
