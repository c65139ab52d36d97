/* rp_subjson.h - the JSON of subscriptions, pure functions (no I/O, no
 * shared state): eth_subscribe / eth_unsubscribe parameters, a logs
 * subscription's filter and its match against a log, and what the follower
 * makes of the endpoints' answers (a block's header as newHeads sends it,
 * a block's logs as compact records).
 *
 * Log records (the payload of RP_SUB_EV_LOGS and RP_SUB_EV_REMOVED events,
 * rp_sub_abi.h), one after another:
 *   u32 rec_len (whole record), u8 ntopics (0..4), u8 pad[3],
 *   u8 address[20], u8 topics[ntopics][32],
 *   the log's JSON object without its "removed" member and without its
 *   closing brace (the notification appends ,"removed":false} or true}).
 */
#ifndef RP_SUBJSON_H
#define RP_SUBJSON_H

#include <stddef.h>
#include <stdint.h>

#include "rp_buf.h"

#define RP_LOG_MAX_TOPICS     4
#define RP_FILTER_MAX_ADDRS   1000 /* as geth */
#define RP_FILTER_MAX_CHOICES 1000 /* alternatives at one topic position, as geth */

/* What eth_subscribe asked for. */
enum rp_sub_type {
    RP_SUB_NEW_HEADS = 1,
    RP_SUB_LOGS = 2,
};

/* A logs subscription's filter: addresses (none = any) and, per topic
 * position, the alternatives (none = any). */
struct rp_log_filter {
    uint32_t naddr;
    uint8_t (*addr)[20];
    uint32_t npos; /* topic positions given (the log needs at least as many topics) */
    uint32_t nchoice[RP_LOG_MAX_TOPICS];
    uint8_t (*choice[RP_LOG_MAX_TOPICS])[32];
};

/* One decoded log record (pointers into the payload). */
struct rp_log_rec {
    const uint8_t *addr; /* 20 bytes */
    unsigned ntopics;
    const uint8_t (*topics)[32];
    const char *json; /* the object without "removed" and the closing brace */
    size_t json_len;
};

/* A block as the follower keeps it. */
struct rp_block_info {
    uint64_t number;
    uint8_t hash[32];
    uint8_t parent[32];
};

/* Decode "0x" + 2*N hex digits S[0, LEN) into OUT[N]. Returns 0, or -1. */
int rp_hex_bytes(const char *s, size_t len, uint8_t *out, size_t n);

/* Read the params of the eth_subscribe call CALL[0, LEN) (one JSON-RPC
 * request object): *TYPE, and for logs the filter object (or none) into F
 * (free it with rp_log_filter_free()). Returns 0, or -1 with *ERR a
 * message for the client (-32602). */
int rp_subjson_subscribe(const char *call, size_t len, enum rp_sub_type *type,
                         struct rp_log_filter *f, const char **err);

/* Read the subscription id of the eth_unsubscribe call CALL[0, LEN) into
 * ID (at most CAP-1 bytes, NUL-terminated, as given: a hex string).
 * Returns 0, or -1 (missing or not a string). */
int rp_subjson_unsubscribe(const char *call, size_t len, char *id, size_t cap);

/* Parse filter object JSON[0, LEN) ({address, topics}; other members such
 * as fromBlock are ignored, as geth ignores them for subscriptions). */
int rp_log_filter_parse(const char *json, size_t len, struct rp_log_filter *f, const char **err);
void rp_log_filter_free(struct rp_log_filter *f);

/* Does the log (ADDR, NTOPICS TOPICS) pass F? As geth: an address in the
 * set (or none given), at least as many topics as positions given, and at
 * each position one of the alternatives (or any). */
int rp_log_filter_match(const struct rp_log_filter *f, const uint8_t *addr, unsigned ntopics,
                        const uint8_t (*topics)[32]);

/* The answer BODY[0, LEN) to eth_getBlockByNumber/Hash(..., false): fill
 * BI, and append the header object as newHeads sends it (the block without
 * transactions, uncles, withdrawals, size, totalDifficulty; one line) to
 * HEADER (may be NULL). Returns 0, 1 when the result is null (not there
 * yet), -1 when it is not such an answer. */
int rp_subjson_block(const char *body, size_t len, struct rp_block_info *bi, struct rp_buf *header);

/* A message BODY[0, LEN) of a newHeads subscription on an endpoint's
 * WebSocket: for an eth_subscription notification, fill BI from its header
 * (number and hash; parentHash when given) and return 0; 1 for any other
 * JSON-RPC object (the answer to eth_subscribe); -1 when malformed. */
int rp_subjson_new_head(const char *body, size_t len, struct rp_block_info *bi);

/* The answer BODY[0, LEN) to eth_blockNumber: *NUMBER. Returns 0, or -1. */
int rp_subjson_quantity(const char *body, size_t len, uint64_t *number);

/* The answer BODY[0, LEN) to eth_getLogs {blockHash: HASH}: append one
 * record per log to OUT (logs of another block are refused: -1). Returns
 * the number of logs, or -1 when it is not such an answer (an error object
 * included). */
int rp_subjson_logs(const char *body, size_t len, const uint8_t hash[32], struct rp_buf *out);

/* Iterate records: decode the one at *OFF of DATA[0, LEN) into R and move
 * *OFF past it. Returns 1, 0 at the end, -1 when malformed. */
int rp_log_rec_next(const char *data, size_t len, size_t *off, struct rp_log_rec *r);

#endif
