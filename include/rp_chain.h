/* rp_chain.h - chain-consistent answers, the pure half: what a call needs of
 * the endpoint that answers it, what an answer shows of the chain, and the
 * filter ids that carry their endpoint (README "Consistency").
 *
 * Everything here is a function of bytes: the call as the client sent it
 * (one JSON-RPC call object), or the endpoint's answer. The worker keeps the
 * per-connection state (the floor, the affinity) and asks these functions.
 */
#ifndef RP_CHAIN_H
#define RP_CHAIN_H

#include <stddef.h>
#include <stdint.h>

/* Hex digits of the endpoint tag at the front of a filter id we hand out. */
#define RP_CHAIN_TAG_HEX 8

/* What a call needs of its endpoint's head. */
enum rp_chain_need {
    RP_CHAIN_ANY = 0,   /* nothing: by hash, chain id, "earliest", unknown methods */
    RP_CHAIN_HEAD = 1,  /* the head: latest / pending / safe / finalized / omitted tag */
    RP_CHAIN_BLOCK = 2, /* an explicit block number: an endpoint that has it */
};

/* What else the worker does with it. */
enum rp_chain_kind {
    RP_CHAIN_PLAIN = 0,
    RP_CHAIN_FILTER_NEW = 1, /* eth_new*Filter: the answer's id gets the endpoint's tag */
    RP_CHAIN_FILTER_USE = 2, /* eth_getFilterChanges / eth_getFilterLogs / eth_uninstallFilter */
    RP_CHAIN_TX_FLOW = 3,    /* nonce read, gas estimate, send: stays on one endpoint */
    RP_CHAIN_LOOKUP = 4,     /* lookup by hash: a null may only mean "not seen yet" */
};

struct rp_chain_call {
    enum rp_chain_need need;
    enum rp_chain_kind kind;
    uint64_t block;              /* RP_CHAIN_BLOCK: the block asked for */
    uint32_t arg_start, arg_len; /* FILTER_USE: the id's string contents in the call */
};

/* Classify one call object CALL[0, LEN) whose method is METHOD[0, MLEN).
 * Never fails: what it cannot read is RP_CHAIN_ANY / RP_CHAIN_PLAIN. */
void rp_chain_classify(const char *call, size_t len, const char *method, size_t mlen,
                       struct rp_chain_call *out);

/* The block number an answer BODY[0, LEN) to METHOD shows: the result of
 * eth_blockNumber, or the "number" of a block object (eth_getBlockByNumber,
 * eth_getBlockByHash). 0 when it shows none. */
uint64_t rp_chain_answer_block(const char *method, size_t mlen, const char *body, size_t len);

/* 1 when BODY[0, LEN) is a JSON-RPC response whose result is null. */
int rp_chain_answer_is_null(const char *body, size_t len);

/* The answer BODY[0, LEN) to a filter creation, its result (a hex string id)
 * given TAG in front: a new malloc'd body and its length in *OUT_LEN, or NULL
 * when the answer carries no string result (an error: passed on as it is). */
char *rp_chain_filter_wrap_answer(const char *body, size_t len, uint32_t tag, size_t *out_len);

/* The call CALL[0, LEN) classified FILTER_USE as C, with the id the client
 * holds turned back into the endpoint's own: a new malloc'd call (length in
 * *OUT_LEN) and the tag in *TAG; NULL when the id is not one we handed out
 * (the answer is then "filter not found"). */
char *rp_chain_filter_unwrap_call(const char *call, size_t len, const struct rp_chain_call *c,
                                  uint32_t *tag, size_t *out_len);

#endif
