/* fuzz_cachekey.c - libFuzzer target for the cache's pure half
 * (src/proto/cachekey.c): classification and canonical keys of client
 * calls, and what an endpoint's answer shows.
 *
 * Input: the first byte picks a method from the table (the call's bytes are
 * the rest), the same bytes are also read as an answer.
 * Invariants:
 *  - never a crash; a key fits its buffer and starts with "METHOD\n";
 *  - for valid JSON (what the daemon hands it: rp_frame_validate passed),
 *    a call that is classified has a key that is valid JSON after the
 *    method, and gives the same class and key when sent again with its
 *    params in their canonical form (a fixed point) and another id;
 *  - an answer's id span lies inside the body and is a JSON value there;
 *    a batch answer's elements and their ids lie inside it.
 */
#include "rp_cachekey.h"
#include "rp_frame.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const methods[] = {
    "eth_blockNumber",
    "eth_chainId",
    "eth_getBlockByNumber",
    "eth_getBalance",
    "eth_call",
    "eth_getLogs",
    "eth_getBlockByHash",
    "eth_getTransactionReceipt",
    "eth_getStorageAt",
    "eth_getBlockReceipts",
    "eth_sendRawTransaction",
    "eth_feeHistory",
};

static char key[8192], key2[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *m = methods[data[0] % (sizeof methods / sizeof methods[0])];
    size_t mlen = strlen(m);
    char *call = malloc(size);
    CHECK(call != NULL);
    memcpy(call, data + 1, size - 1);
    size_t len = size - 1;
    struct rp_ck ck;
    size_t n = rp_cachekey_classify(call, len, m, mlen, &ck, key, sizeof key);
    CHECK(n <= sizeof key);
    if (n) {
        CHECK(ck.cls != RP_CK_NONE);
        CHECK(n > mlen && memcmp(key, m, mlen) == 0 && key[mlen] == '\n');
    }
    if (n && rp_frame_validate(call, len) == 0) {
        CHECK(rp_frame_validate(key + mlen + 1, n - mlen - 1) == 0);
        /* the canonical params as a call of their own: the same class and key */
        size_t plen = n - mlen - 1;
        size_t cap = plen + mlen + 64;
        char *again = malloc(cap);
        CHECK(again != NULL);
        int k = snprintf(again, cap, "{\"id\":\"x\",\"method\":\"%s\",\"params\":%.*s}", m,
                         (int)plen, key + mlen + 1);
        CHECK(k > 0 && (size_t)k < cap);
        struct rp_ck ck2;
        size_t n2 = rp_cachekey_classify(again, (size_t)k, m, mlen, &ck2, key2, sizeof key2);
        CHECK(n2 == n && memcmp(key, key2, n) == 0);
        CHECK(ck2.cls == ck.cls && ck2.block == ck.block);
        free(again);
    } else if (!n) {
        CHECK(ck.cls == RP_CK_NONE);
    }
    struct rp_ck_answer a;
    if (rp_cachekey_answer(call, len, (enum rp_ck_shows)(data[0] % 4), &a) == 0 &&
        a.id_start >= 0) {
        CHECK(a.id_start < a.id_end && (size_t)a.id_end <= len);
    }
    /* a batch answer's elements lie inside it, their ids inside them */
    static struct rp_ck_elem el[64];
    int ne = rp_cachekey_batch_elems(call, len, el, 64);
    CHECK(ne >= -1 && ne <= 64);
    for (int i = 0; i < ne; i++) {
        CHECK((size_t)el[i].start + el[i].len <= len);
        if (el[i].id_start >= 0)
            CHECK((uint32_t)el[i].id_start >= el[i].start &&
                  el[i].id_start + el[i].id_len <= el[i].start + el[i].len);
    }
    (void)rp_cachekey_hash(call, len, data[0]);
    free(call);
    return 0;
}
