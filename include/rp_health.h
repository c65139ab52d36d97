/* rp_health.h - the prober's verdicts, as pure functions: rise/fall
 * hysteresis over probe results, chain checks (quarantine), head blocks and
 * lag, and the endpoint state derived from all of them. No clocks, no I/O:
 * the prober (prober.c) feeds in results and the time, and publishes what
 * these functions decide; CUnit drives them by hand.
 *
 * Start-up rule: an endpoint starts in the state its shm row holds (a fresh
 * row is `up`, written by the supervisor), so a prober that starts (at
 * daemon start, after each reload, after a crash) does not take endpoints
 * away before it has seen them fail: an up endpoint goes down after
 * RP_HEALTH_FALL consecutive failed probes, a down one comes up after
 * RP_HEALTH_RISE consecutive successes. The chain is checked at every prober
 * start and again each time an endpoint comes back up; in the second case
 * the endpoint stays out (shown `down`) until its chain id has answered.
 *
 * Chain rule: the expected chain is the configured chain_id when set, else
 * the chain id of the first endpoint that answered eth_chainId. An endpoint
 * reporting another chain is quarantined; an endpoint that answers
 * eth_chainId with an error object (does not tell) is taken as it is.
 *
 * Lag rule: the best head is the highest head block among endpoints that are
 * up (lagging ones included), not quarantined and not waiting for their
 * chain check; an endpoint whose head is
 * known and more than max_block_lag below the best is lagging.
 */
#ifndef RP_HEALTH_H
#define RP_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "rp_shm_abi.h"

#define RP_HEALTH_RISE 2 /* consecutive successes that bring a down endpoint up */
#define RP_HEALTH_FALL 3 /* consecutive failures that take an up endpoint down */

/* What the prober knows about one endpoint. */
struct rp_health {
    uint8_t up;            /* hysteresis verdict */
    uint8_t quarantined;   /* answered a chain id other than the expected one */
    uint8_t lagging;       /* head more than max_block_lag below the best head */
    uint8_t chain_pending; /* an eth_chainId check is due */
    uint8_t chain_gate;    /* held out until the pending chain check answers */
    uint8_t head_known;    /* head_block holds a real answer */
    uint32_t successes;    /* consecutive successful probes */
    uint32_t failures;     /* consecutive failed probes */
    int64_t chain_id;      /* last reported chain id, 0 unknown */
    uint64_t head_block;
    uint64_t last_probe_ms; /* when the last probe result arrived */
    uint64_t last_ok_ms;    /* when the last successful probe result arrived */
};

/* What a probe result did to the hysteresis. */
enum rp_health_change {
    RP_HEALTH_SAME = 0,
    RP_HEALTH_WENT_DOWN = 1,
    RP_HEALTH_CAME_UP = 2,
};

/* Seed H from what the endpoint's shm row holds (its published state and
 * consecutive counters), so a restarted prober continues where the last one
 * stopped. A chain check is made due. */
void rp_health_init(struct rp_health *h, enum rp_ep_state row_state, uint32_t successes,
                    uint32_t failures);

/* Record one probe result (OK 1 success, 0 failure) arriving at NOW_MS.
 * Returns RP_HEALTH_WENT_DOWN on the RP_HEALTH_FALL-th consecutive failure of
 * an up endpoint, RP_HEALTH_CAME_UP on the RP_HEALTH_RISE-th consecutive
 * success of a down one (which also makes a chain check due and holds the
 * endpoint out until it answers), RP_HEALTH_SAME otherwise. */
enum rp_health_change rp_health_record(struct rp_health *h, int ok, uint64_t now_ms);

/* The chain id endpoints must report: CFG_CHAIN_ID when set (non-zero), else
 * FIRST_SEEN (the first answer of any endpoint; 0 while none answered). */
int64_t rp_health_expected_chain(int64_t cfg_chain_id, int64_t first_seen);

/* Record an eth_chainId answer: CHAIN_ID (0 when the endpoint answered with
 * an error object, i.e. does not tell) against EXPECTED (0 when nothing is
 * expected yet). Clears the pending check and the gate and sets the
 * quarantine. Returns 1 when the endpoint became quarantined, -1 when its
 * quarantine was lifted, 0 when nothing changed. */
int rp_health_chain_result(struct rp_health *h, int64_t chain_id, int64_t expected);

/* Record an eth_blockNumber answer (the head block). */
void rp_health_set_head(struct rp_health *h, uint64_t head_block);

/* Forget the head (the endpoint cannot tell it, e.g. an HTTP GET probe on
 * a server that does not speak JSON-RPC): lag is not judged for it. */
void rp_health_clear_head(struct rp_health *h);

/* Highest head among the N endpoints HS that are up (lagging included), not
 * quarantined nor held out for a chain check, and whose head is known; 0
 * when none. */
uint64_t rp_health_best_head(const struct rp_health *hs, size_t n);

/* 1 when H's head is known and more than MAX_LAG blocks below BEST. */
int rp_health_is_lagging(const struct rp_health *h, uint64_t best, uint64_t max_lag);

/* Recompute the best head over HS[0, N) and every endpoint's lagging flag.
 * Returns the best head. */
uint64_t rp_health_update_lag(struct rp_health *hs, size_t n, uint64_t max_lag);

/* The state to publish for H: quarantined, else down (not up, or held out
 * for a chain check), else lagging, else up. Never RP_EP_DRAINED (that is
 * the operator's separate flag). */
enum rp_ep_state rp_health_state(const struct rp_health *h);

/* Classification of one JSON-RPC answer to a probe. */
enum rp_reply_kind {
    RP_REPLY_INVALID = 0, /* not a JSON-RPC 2.0 response to our id */
    RP_REPLY_RESULT = 1,  /* a result member */
    RP_REPLY_ERROR = 2,   /* an error object */
};

struct rp_reply {
    enum rp_reply_kind kind;
    int has_quantity;  /* the result is a hex quantity string ("0x1a") */
    uint64_t quantity; /* its value */
};

/* Classify BODY[0, LEN) as the answer to a single request with the numeric
 * id WANT_ID, and decode a hex-quantity result. Returns OUT->kind. */
enum rp_reply_kind rp_health_parse_reply(const char *body, size_t len, uint64_t want_id,
                                         struct rp_reply *out);

/* Decode a JSON-RPC quantity S[0, LEN) ("0x0", "0x1a2b", at most 16 hex
 * digits). Returns 0 and the value in OUT, or -1 (rp_jsonrpc_parse_quantity(),
 * under the prober's name). */
int rp_health_parse_quantity(const char *s, size_t len, uint64_t *out);

#endif
