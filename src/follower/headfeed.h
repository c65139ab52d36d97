/* headfeed.h - the pushed head: the head follower's WebSocket feeds (one
 * per endpoint with a ws_url, while the cache is on). Each feed holds one
 * RFC 6455 connection (rp_wsframe.h) subscribed to eth_subscribe
 * ["newHeads"]; every header pushed raises the endpoint's head and the
 * host's best head (CAS max, as traffic does), and the follower's step is
 * woken. The feeds publish in shm (rp_sub_abi.h) until when the pushed head
 * is live and since when it has been, for the workers' cache
 * (src/worker/cache_hook.c), and per endpoint whether its feed is heard.
 *
 * The feeds' sockets are in the follower's epoll set; the follower calls
 * rp_headfeed_tick() on every turn of each of its waits (its own loop and
 * its synchronous calls), which runs connects, pings, the 2.5 s silence
 * rule and the reconnect back-off (100 ms doubling to 5 s). */
#ifndef RP_HEADFEED_H
#define RP_HEADFEED_H

#include <stdint.h>

#include "rp_config.h"
#include "rp_shm.h"

#define RP_HEAD_FEED_PING_MS 1000 /* a ping this often */

/* Does CFG run any feed (the cache on, some endpoint with a ws_url)? */
int rp_headfeed_wanted(const struct rp_config *cfg);

/* Set up the feeds of CFG (none when not wanted); their sockets go into
 * epoll set EPFD. Clears what a former follower published. Returns 0, -1. */
int rp_headfeed_init(const struct rp_config *cfg, struct rp_shm_header *shm, int epfd);

/* Run what is due at segment clock NOW_MS and publish the liveness words. */
void rp_headfeed_tick(uint64_t now_ms);

/* The segment clock at which rp_headfeed_tick() is next due (UINT64_MAX:
 * never). */
uint64_t rp_headfeed_next_ms(void);

/* 1 once (then 0) when a pushed head raised the best head since the last
 * call: the follower's step should run. */
int rp_headfeed_take_raised(void);

/* Close every feed and clear what they published. */
void rp_headfeed_cleanup(void);

#endif
