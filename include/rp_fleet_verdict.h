/* rp_fleet_verdict.h - verdicts shared by the hosts of a fleet: a breaker
 * that opened and a Retry-After hold, as one pub/sub message each; which
 * local changes are news to publish and which came from other hosts. Pure
 * functions: words and clocks come in as arguments.
 *
 * A message is text: "v1 KIND EPKEY UNTIL SENDER" with KIND 'b' (breaker
 * open until) or 'h' (hold until), EPKEY the endpoint's fleet key (16 hex
 * digits, rp_fleet_ep_key()), UNTIL wall-clock ms since the epoch (the
 * hosts' monotonic clocks differ; their wall clocks are assumed in sync to
 * well under a second) and SENDER the publishing agent's random id (16 hex
 * digits; an agent ignores its own messages).
 *
 * The endpoint's fleet key is SipHash-2-4 of its full URL under a key
 * derived from the fleet prefix: every host of the fleet computes the same
 * one for the same URL, and a key seen in Redis does not give away the
 * URL's secret parts without the prefix. (Not rp_shm_url_key(), whose key
 * differs per supervisor.)
 */
#ifndef RP_FLEET_VERDICT_H
#define RP_FLEET_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#define RP_VERDICT_MAX 96 /* bytes of a message, NUL included */

struct rp_verdict {
    char kind;              /* 'b' or 'h' */
    uint64_t ep_key;        /* rp_fleet_ep_key() */
    uint64_t until_wall_ms; /* CLOCK_REALTIME ms */
    uint64_t sender;        /* the publishing agent's id */
};

/* The fleet key of URL in the fleet named by PREFIX. */
uint64_t rp_fleet_ep_key(const char *prefix, const char *url);

/* Write V as a message into OUT (RP_VERDICT_MAX bytes). Returns its length. */
size_t rp_verdict_format(char *out, size_t outlen, const struct rp_verdict *v);

/* Parse the message S (LEN bytes). Returns 0, or -1 when it is not one. */
int rp_verdict_parse(const char *s, size_t len, struct rp_verdict *v);

/* Wall-clock UNTIL_WALL_MS on the segment clock, knowing that NOW_WALL_MS
 * is NOW_SEG_MS there; 0 when it has already passed. */
uint64_t rp_verdict_to_seg_ms(uint64_t until_wall_ms, uint64_t now_wall_ms, uint64_t now_seg_ms);

/* Segment UNTIL_SEG_MS in wall-clock ms (same pairing of clocks). */
uint64_t rp_verdict_to_wall_ms(uint64_t until_seg_ms, uint64_t now_seg_ms, uint64_t now_wall_ms);

/* What the agent last saw of one endpoint's breaker and hold words. */
struct rp_verdict_watch {
    int known;           /* 0 until the first look */
    uint32_t period;     /* breaker period last seen */
    uint64_t hold_until; /* highest hold (segment ms) seen or applied */
};

/* A look at breaker word WORD at NOW_SEG_MS: 1 when it shows an opening this
 * host made that is not yet published (an OPEN breaker of a period not seen
 * before, still open; on the first look, any OPEN breaker still open). */
int rp_verdict_breaker_news(struct rp_verdict_watch *w, uint64_t word, uint64_t now_seg_ms);

/* A look at hold word HOLD at NOW_SEG_MS: 1 when it was raised above what
 * was seen or applied and still lies ahead. */
int rp_verdict_hold_news(struct rp_verdict_watch *w, uint64_t hold, uint64_t now_seg_ms);

/* The agent applied a verdict: WORD is the breaker word after it (its
 * period is then not news), HOLD the hold word after it. */
void rp_verdict_applied(struct rp_verdict_watch *w, uint64_t word, uint64_t hold);

#endif
