/* test_cachekey.c - which calls the cache keeps or coalesces and their
 * canonical keys (src/proto/cachekey.c), and what answers show. */
#include "rp_cachekey.h"
#include "rp_test.h"

#include <string.h>

static char key[4096];

/* Classify CALL (method taken from METHOD); returns the key length. */
static size_t cls(const char *call, const char *method, struct rp_ck *ck)
{
    return rp_cachekey_classify(call, strlen(call), method, strlen(method), ck, key, sizeof key);
}

static void test_classes(void)
{
    struct rp_ck ck;
    size_t n = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}", "eth_chainId", &ck);
    CU_ASSERT(n > 0);
    key[n] = 0;
    CU_ASSERT_EQUAL(ck.cls, RP_CK_STATIC);
    CU_ASSERT_STRING_EQUAL(key, "eth_chainId\n[]");
    CU_ASSERT(cls("{\"id\":1,\"method\":\"net_version\",\"params\":[]}", "net_version", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_STATIC);
    CU_ASSERT(
        cls("{\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}", "eth_blockNumber", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HEAD);
    CU_ASSERT_EQUAL(ck.shows, RP_CK_SHOWS_QUANTITY);

    const char *latest =
        "{\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"latest\",false]}";
    CU_ASSERT(cls(latest, "eth_getBlockByNumber", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HEAD);
    CU_ASSERT_EQUAL(ck.shows, RP_CK_SHOWS_BLOCK);
    const char *num = "{\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"0x1a\",true]}";
    CU_ASSERT(cls(num, "eth_getBlockByNumber", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_NUMBER);
    CU_ASSERT_EQUAL(ck.block, 26);
    const char *earliest =
        "{\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"earliest\",true]}";
    CU_ASSERT(cls(earliest, "eth_getBlockByNumber", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_NUMBER);
    CU_ASSERT_EQUAL(ck.block, 0);
    const char *pend = "{\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0xab\",\"pending\"]}";
    CU_ASSERT(cls(pend, "eth_getBalance", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_PENDING);
    const char *omitted = "{\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0xab\"]}";
    CU_ASSERT(cls(omitted, "eth_getBalance", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HEAD);
    const char *safe = "{\"id\":1,\"method\":\"eth_call\",\"params\":[{\"to\":\"0x1\"},\"safe\"]}";
    CU_ASSERT(cls(safe, "eth_call", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HEAD);
    const char *h1898 =
        "{\"id\":1,\"method\":\"eth_call\",\"params\":[{\"to\":\"0x1\"},{\"blockHash\":"
        "\"0xaa\"}]}";
    CU_ASSERT(cls(h1898, "eth_call", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HASH);
    const char *n1898 =
        "{\"id\":1,\"method\":\"eth_call\",\"params\":[{\"to\":\"0x1\"},{\"blockNumber\":"
        "\"0x10\"}]}";
    CU_ASSERT(cls(n1898, "eth_call", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_NUMBER);
    CU_ASSERT_EQUAL(ck.block, 16);
    const char *byhash = "{\"id\":1,\"method\":\"eth_getBlockByHash\",\"params\":[\"0xAB\",false]}";
    CU_ASSERT(cls(byhash, "eth_getBlockByHash", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HASH);
    const char *tx = "{\"id\":1,\"method\":\"eth_getTransactionReceipt\",\"params\":[\"0xAB\"]}";
    CU_ASSERT(cls(tx, "eth_getTransactionReceipt", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_TX);
    CU_ASSERT_EQUAL(ck.shows, RP_CK_SHOWS_TX);

    /* eth_getLogs: by hash, numbers (the highest), a moving end, pending */
    const char *lh = "{\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"blockHash\":\"0x1\"}]}";
    CU_ASSERT(cls(lh, "eth_getLogs", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HASH);
    const char *ln = "{\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"fromBlock\":\"0x5\","
                     "\"toBlock\":\"0x9\"}]}";
    CU_ASSERT(cls(ln, "eth_getLogs", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_NUMBER);
    CU_ASSERT_EQUAL(ck.block, 9);
    const char *ll = "{\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"fromBlock\":\"0x5\"}]}";
    CU_ASSERT(cls(ll, "eth_getLogs", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HEAD);
    const char *lp = "{\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"toBlock\":\"pending\"}]}";
    CU_ASSERT(cls(lp, "eth_getLogs", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_PENDING);
    /* eth_getBlockReceipts: a block hash or a tag */
    char rh[200];
    snprintf(rh, sizeof rh,
             "{\"id\":1,\"method\":\"eth_getBlockReceipts\",\"params\":[\"0x%064d\"]}", 7);
    CU_ASSERT(cls(rh, "eth_getBlockReceipts", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_HASH);
    const char *rn = "{\"id\":1,\"method\":\"eth_getBlockReceipts\",\"params\":[\"0x7\"]}";
    CU_ASSERT(cls(rn, "eth_getBlockReceipts", &ck) > 0);
    CU_ASSERT_EQUAL(ck.cls, RP_CK_NUMBER);
}

static void test_never(void)
{
    struct rp_ck ck;
    static const char *const calls[][2] = {
        {"{\"id\":1,\"method\":\"eth_sendRawTransaction\",\"params\":[\"0x00\"]}",
         "eth_sendRawTransaction"},
        {"{\"id\":1,\"method\":\"eth_sendTransaction\",\"params\":[{}]}", "eth_sendTransaction"},
        {"{\"id\":1,\"method\":\"eth_getFilterChanges\",\"params\":[\"0x1\"]}",
         "eth_getFilterChanges"},
        {"{\"id\":1,\"method\":\"eth_newFilter\",\"params\":[{}]}", "eth_newFilter"},
        {"{\"id\":1,\"method\":\"eth_getTransactionCount\",\"params\":[\"0x1\",\"latest\"]}",
         "eth_getTransactionCount"},
        {"{\"id\":1,\"method\":\"eth_estimateGas\",\"params\":[{}]}", "eth_estimateGas"},
        {"{\"id\":1,\"method\":\"evm_mine\"}", "evm_mine"},
        {"{\"id\":1,\"method\":\"web3_clientVersion\"}", "web3_clientVersion"},
        /* a tag that is neither a tag nor a quantity, or params of the wrong shape */
        {"{\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0x1\",\"nonsense\"]}",
         "eth_getBalance"},
        {"{\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0x1\",7]}", "eth_getBalance"},
        {"{\"id\":1,\"method\":\"eth_getBalance\",\"params\":\"x\"}", "eth_getBalance"},
        {"{\"id\":1,\"method\":\"eth_getBlockByHash\",\"params\":[7]}", "eth_getBlockByHash"},
        {"not json", "eth_chainId"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        CU_ASSERT_EQUAL(cls(calls[i][0], calls[i][1], &ck), 0);
        CU_ASSERT_EQUAL(ck.cls, RP_CK_NONE);
    }
    CU_ASSERT(rp_cachekey_mutates("eth_sendRawTransaction", 22));
    CU_ASSERT(rp_cachekey_mutates("evm_mine", 8));
    CU_ASSERT(rp_cachekey_mutates("anvil_reorg", 11));
    CU_ASSERT(rp_cachekey_mutates("hardhat_mine", 12));
    CU_ASSERT(!rp_cachekey_mutates("eth_call", 8));
    CU_ASSERT(!rp_cachekey_mutates("eth_blockNumber", 15));
    /* a key that does not fit is no key */
    struct rp_ck k2;
    char small[8];
    CU_ASSERT_EQUAL(rp_cachekey_classify("{\"id\":1,\"method\":\"eth_chainId\"}", 31, "eth_chainId",
                                         11, &k2, small, sizeof small),
                    0);
}

/* The same question in other spellings is the same key; another question is
 * another key. */
static void test_canonical(void)
{
    struct rp_ck ck;
    char a[512], b[512];
    const char *x = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{\"to\":"
                    "\"0xAbCd\",\"data\":\"0x70A08231\"},\"latest\"]}";
    const char *y =
        "{ \"params\" : [ { \"data\" : \"0x70a08231\" ,\n \"to\":\"0xabcd\" } , "
        "\"latest\" ], \"method\":\"eth_call\", \"id\":\"other\", \"jsonrpc\":\"2.0\" }";
    size_t n = cls(x, "eth_call", &ck);
    CU_ASSERT(n > 0);
    memcpy(a, key, n);
    a[n] = 0;
    size_t m = cls(y, "eth_call", &ck);
    CU_ASSERT(m > 0);
    memcpy(b, key, m);
    b[m] = 0;
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_STRING_EQUAL(a, "eth_call\n[{\"data\":\"0x70a08231\",\"to\":\"0xabcd\"},\"latest\"]");
    /* not hex: kept as it is */
    const char *z = "{\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"ABC\",\"0x1\"]}";
    m = cls(z, "eth_getBalance", &ck);
    CU_ASSERT(m > 0);
    key[m] = 0;
    CU_ASSERT_STRING_EQUAL(key, "eth_getBalance\n[\"ABC\",\"0x1\"]");
    /* member names are names, not hex values: kept as they came (the
     * fuzzer found "0x0BBBB" lower-cased after the sort, so the key was not
     * a fixed point and two distinct names could be one key) */
    const char *v = "{\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"0x0BBBB\":\"0xAB\","
                    "\"0x0BBBBBuu\":1,\"0x0bbbb\":2}]}";
    m = cls(v, "eth_getLogs", &ck);
    CU_ASSERT(m > 0);
    key[m] = 0;
    CU_ASSERT_STRING_EQUAL(key,
                           "eth_getLogs\n[{\"0x0BBBB\":\"0xab\",\"0x0BBBBBuu\":1,\"0x0bbbb\":2}]");
    /* another block is another key */
    const char *w = "{\"id\":1,\"method\":\"eth_call\",\"params\":[{\"to\":\"0xabcd\",\"data\":"
                    "\"0x70a08231\"},\"0x5\"]}";
    m = cls(w, "eth_call", &ck);
    CU_ASSERT(m > 0);
    key[m] = 0;
    CU_ASSERT(strcmp(key, a) != 0);
    /* hashes differ for different keys, match for equal ones */
    CU_ASSERT_EQUAL(rp_cachekey_hash(a, strlen(a), 0), rp_cachekey_hash(b, strlen(b), 0));
    CU_ASSERT(rp_cachekey_hash(a, strlen(a), 0) != rp_cachekey_hash(key, strlen(key), 0));
    CU_ASSERT(rp_cachekey_hash(a, strlen(a), 0) != rp_cachekey_hash(a, strlen(a), 1));
}

static void test_answers(void)
{
    struct rp_ck_answer a;
    const char *bn = "{\"jsonrpc\":\"2.0\",\"id\":\"x y\",\"result\":\"0x10\"}";
    CU_ASSERT_EQUAL(rp_cachekey_answer(bn, strlen(bn), RP_CK_SHOWS_QUANTITY, &a), 0);
    CU_ASSERT(a.ok && !a.null);
    CU_ASSERT_EQUAL(a.number, 16);
    CU_ASSERT_EQUAL(a.id_end - a.id_start, 5);
    CU_ASSERT(memcmp(bn + a.id_start, "\"x y\"", 5) == 0);
    const char *blk = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"hash\":\"0xAB00000000000000cd\","
                      "\"number\":\"0x2a\",\"transactions\":[]}}";
    CU_ASSERT_EQUAL(rp_cachekey_answer(blk, strlen(blk), RP_CK_SHOWS_BLOCK, &a), 0);
    CU_ASSERT(a.ok);
    CU_ASSERT_EQUAL(a.number, 42);
    CU_ASSERT_EQUAL(a.hash_fp, 0xab00000000000000ull);
    CU_ASSERT(memcmp(blk + a.id_start, "7", 1) == 0 && a.id_end - a.id_start == 1);
    const char *rc =
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"blockHash\":\"0x1200000000000000\","
        "\"blockNumber\":\"0x3\"}}";
    CU_ASSERT_EQUAL(rp_cachekey_answer(rc, strlen(rc), RP_CK_SHOWS_TX, &a), 0);
    CU_ASSERT_EQUAL(a.number, 3);
    CU_ASSERT_EQUAL(a.hash_fp, 0x1200000000000000ull);
    const char *nul = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}";
    CU_ASSERT_EQUAL(rp_cachekey_answer(nul, strlen(nul), RP_CK_SHOWS_TX, &a), 0);
    CU_ASSERT(a.ok && a.null);
    const char *err =
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":3,\"message\":\"reverted\"}}";
    CU_ASSERT_EQUAL(rp_cachekey_answer(err, strlen(err), RP_CK_SHOWS_NONE, &a), 0);
    CU_ASSERT(!a.ok);
    const char *both = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":1,\"error\":{}}";
    CU_ASSERT_EQUAL(rp_cachekey_answer(both, strlen(both), RP_CK_SHOWS_NONE, &a), 0);
    CU_ASSERT(!a.ok);
    /* a long block (more tokens than are read): still an answer, its id and
     * number found */
    static char lng[262144];
    int k = snprintf(lng, sizeof lng,
                     "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"result\":{\"number\":"
                     "\"0x99\",\"hash\":\"0x7700000000000000\",\"transactions\":[");
    for (int i = 0; i < 3000; i++)
        k += snprintf(lng + k, sizeof lng - (size_t)k, "%s\"0x%064d\"", i ? "," : "", i);
    k += snprintf(lng + k, sizeof lng - (size_t)k, "]}}");
    CU_ASSERT_EQUAL(rp_cachekey_answer(lng, (size_t)k, RP_CK_SHOWS_BLOCK, &a), 0);
    CU_ASSERT(a.ok && !a.null);
    CU_ASSERT_EQUAL(a.number, 0x99);
    CU_ASSERT_EQUAL(a.hash_fp, 0x7700000000000000ull);
    CU_ASSERT(a.id_start >= 0 && memcmp(lng + a.id_start, "\"q\"", 3) == 0);
    CU_ASSERT_EQUAL(rp_cachekey_answer("[1]", 3, RP_CK_SHOWS_NONE, &a), -1);
    CU_ASSERT_EQUAL(rp_cachekey_answer("garbage", 7, RP_CK_SHOWS_NONE, &a), -1);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"classes", test_classes},
        {"never cached or coalesced", test_never},
        {"canonical keys", test_canonical},
        {"answers", test_answers},
        {NULL, NULL},
    };
    return rp_test_run("cachekey", cases);
}
