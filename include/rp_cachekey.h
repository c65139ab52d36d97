/* rp_cachekey.h - which calls the response cache may keep or coalesce, their
 * canonical key, and what an answer shows: pure functions of bytes (the
 * shared structure is rp_cache.h, the worker's half src/worker/cache_hook.c).
 */
#ifndef RP_CACHEKEY_H
#define RP_CACHEKEY_H

#include <stddef.h>
#include <stdint.h>

/* What a call's answer depends on. */
enum rp_ck_class {
    RP_CK_NONE = 0,    /* neither cached nor coalesced: writes, filters, unknown methods */
    RP_CK_STATIC = 1,  /* eth_chainId, net_version */
    RP_CK_HASH = 2,    /* a block named by its hash: the answer never changes */
    RP_CK_NUMBER = 3,  /* a block named by number (block): final once deep enough */
    RP_CK_TX = 4,      /* a transaction by hash: final once its block is deep enough */
    RP_CK_HEAD = 5,    /* the head (latest, safe, finalized, omitted tag, eth_blockNumber) */
    RP_CK_PENDING = 6, /* "pending": coalesced while in flight, never cached */
};

/* What an answer body shows (rp_cachekey_answer()). */
enum rp_ck_shows {
    RP_CK_SHOWS_NONE = 0,
    RP_CK_SHOWS_QUANTITY = 1, /* result is a block number (eth_blockNumber) */
    RP_CK_SHOWS_BLOCK = 2,    /* result is a block object: number, hash */
    RP_CK_SHOWS_TX = 3,       /* result carries blockNumber, blockHash */
};

struct rp_ck {
    enum rp_ck_class cls;
    enum rp_ck_shows shows;
    uint64_t block; /* RP_CK_NUMBER: the block asked for */
};

/* Classify the call object CALL[0, LEN) with method METHOD[0, MLEN) and
 * write its canonical key into KEY (KEYCAP bytes): the method, a newline,
 * and the params in canonical JSON (no whitespace, object members sorted by
 * name, 0x-hex strings in lower case; absent params are []). Returns the
 * key's length, or 0 with OUT->cls = RP_CK_NONE when the call is neither
 * cacheable nor coalescible (or its key does not fit). */
size_t rp_cachekey_classify(const char *call, size_t len, const char *method, size_t mlen,
                            struct rp_ck *out, char *key, size_t keycap);

/* 1 when METHOD may change chain state seen by reads (sends, evm_*, anvil_*,
 * hardhat_*, miner_*, debug_setHead): head-dependent entries die. */
int rp_cachekey_mutates(const char *method, size_t mlen);

struct rp_ck_answer {
    int ok;                /* a response with a result member and no error member */
    int null;              /* its result is null */
    long id_start, id_end; /* the id value, body offsets; -1 when absent */
    uint64_t number;       /* the block it shows (0 none) */
    uint64_t hash_fp;      /* 64 bits of the block hash it shows (0 none) */
};

/* Read an answer BODY[0, LEN) to a call classified with SHOWS. Returns 0,
 * -1 when it is not a single JSON-RPC response. */
int rp_cachekey_answer(const char *body, size_t len, enum rp_ck_shows shows,
                       struct rp_ck_answer *out);

/* One element of a batch answer: its bytes, and its id value's (quotes
 * included; id_start -1 when it has none). */
struct rp_ck_elem {
    uint32_t start, len;
    int32_t id_start;
    uint32_t id_len;
};

/* The object elements of a batch answer BODY[0, LEN) (a JSON array), at most
 * MAX into OUT. Returns how many, or -1 when BODY is not an array (or out of
 * memory). */
int rp_cachekey_batch_elems(const char *body, size_t len, struct rp_ck_elem *out, int max);

/* 64-bit hash of BUF[0, LEN) (keys, checksums; not keyed). */
uint64_t rp_cachekey_hash(const void *buf, size_t len, uint64_t seed);

#endif
