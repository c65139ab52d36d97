/* test_chain.c - what calls need of an endpoint's head, what answers show of
 * the chain, and filter ids that carry their endpoint. */
#include "rp_chain.h"
#include "rp_test.h"

#include <stdlib.h>
#include <string.h>

static struct rp_chain_call cls(const char *call)
{
    struct rp_chain_call c;
    const char *m = strstr(call, "\"method\":\"") + 10;
    size_t mlen = (size_t)(strchr(m, '"') - m);
    rp_chain_classify(call, strlen(call), m, mlen, &c);
    return c;
}

static void test_classify_head(void)
{
    struct rp_chain_call c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD);
    c = cls(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"latest\","
        "false]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0xab\"]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD); /* omitted tag: latest */
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{},\"pending\"]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD);
    c = cls(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getStorageAt\",\"params\":[\"0x1\",\"0x0\","
        "\"finalized\"]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"fromBlock\":"
            "\"0x1\"}]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD); /* toBlock omitted: latest */
}

static void test_classify_block(void)
{
    struct rp_chain_call c =
        cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBlockByNumber\","
            "\"params\":[\"0x3e8\",true]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_BLOCK);
    CU_ASSERT_EQUAL(c.block, 1000);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0xab\","
            "{\"blockNumber\":\"0x10\"}]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_BLOCK);
    CU_ASSERT_EQUAL(c.block, 16);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"fromBlock\":"
            "\"0x20\","
            "\"toBlock\":\"0x10\"}]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_BLOCK);
    CU_ASSERT_EQUAL(c.block, 32);
}

static void test_classify_any_and_kinds(void)
{
    struct rp_chain_call c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_ANY);
    CU_ASSERT_EQUAL(c.kind, RP_CHAIN_PLAIN);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0xab\","
            "{\"blockHash\":\"0xdead\"}]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_ANY);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":["
            "\"earliest\"]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_ANY);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"blockHash\":"
            "\"0x1\"}]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_ANY);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getTransactionReceipt\",\"params\":["
            "\"0x1\"]}");
    CU_ASSERT_EQUAL(c.kind, RP_CHAIN_LOOKUP);
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_ANY);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendRawTransaction\",\"params\":["
            "\"0x1\"]}");
    CU_ASSERT_EQUAL(c.kind, RP_CHAIN_TX_FLOW);
    c = cls(
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getTransactionCount\",\"params\":[\"0x1\","
        "\"pending\"]}");
    CU_ASSERT_EQUAL(c.kind, RP_CHAIN_TX_FLOW);
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_newBlockFilter\"}");
    CU_ASSERT_EQUAL(c.kind, RP_CHAIN_FILTER_NEW);
    /* malformed params never crash and need nothing */
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":{\"a\":1}}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_HEAD);
    c = cls("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBalance\",\"params\":[\"0x1\",7]}");
    CU_ASSERT_EQUAL(c.need, RP_CHAIN_ANY);
}

static void test_answer_block(void)
{
    const char *a = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x3e9\"}";
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_blockNumber", 15, a, strlen(a)), 1001);
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_chainId", 11, a, strlen(a)), 0);
    const char *b =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"hash\":\"0xab\",\"number\":\"0x10\","
        "\"transactions\":[]}}";
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_getBlockByNumber", 20, b, strlen(b)), 16);
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_getBlockByHash", 18, b, strlen(b)), 16);
    const char *nul = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}";
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_getBlockByHash", 18, nul, strlen(nul)), 0);
    CU_ASSERT_TRUE(rp_chain_answer_is_null(nul, strlen(nul)));
    CU_ASSERT_FALSE(rp_chain_answer_is_null(b, strlen(b)));
    const char *err = "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\"}}";
    CU_ASSERT_FALSE(rp_chain_answer_is_null(err, strlen(err)));
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_blockNumber", 15, err, strlen(err)), 0);

    /* a block with more tokens than are read: its number still counts */
    size_t cap = 200000, n = 0;
    char *big = malloc(cap);
    n += (size_t)sprintf(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"number\":\"0x20\","
                              "\"transactions\":[");
    for (int i = 0; i < 2000; i++)
        n += (size_t)sprintf(big + n, "%s\"0x%04x\"", i ? "," : "", i);
    n += (size_t)sprintf(big + n, "]}}");
    CU_ASSERT_EQUAL(rp_chain_answer_block("eth_getBlockByNumber", 20, big, n), 32);
    free(big);
}

static void test_filter_ids(void)
{
    const char *ans = "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":\"0x1a2b\"}";
    size_t n = 0;
    char *w = rp_chain_filter_wrap_answer(ans, strlen(ans), 0xdeadbeef, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_STRING_EQUAL(w, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":\"0xdeadbeef1a2b\"}");
    CU_ASSERT_EQUAL(n, strlen(w));
    free(w);
    /* an error answer is passed on as it is */
    const char *err = "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":1,\"message\":\"x\"}}";
    CU_ASSERT_PTR_NULL(rp_chain_filter_wrap_answer(err, strlen(err), 1, &n));

    const char *call = "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"eth_getFilterChanges\","
                       "\"params\":[\"0xdeadbeef1a2b\"]}";
    struct rp_chain_call c = cls(call);
    CU_ASSERT_EQUAL(c.kind, RP_CHAIN_FILTER_USE);
    uint32_t tag = 0;
    char *u = rp_chain_filter_unwrap_call(call, strlen(call), &c, &tag, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(tag, 0xdeadbeef);
    CU_ASSERT_STRING_EQUAL(u, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"eth_getFilterChanges\","
                              "\"params\":[\"0x1a2b\"]}");
    free(u);
    /* an id we never handed out (too short, not hex) is not ours */
    const char *foreign =
        "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"eth_uninstallFilter\",\"params\":[\"0x1a2b\"]}";
    c = cls(foreign);
    CU_ASSERT_PTR_NULL(rp_chain_filter_unwrap_call(foreign, strlen(foreign), &c, &tag, &n));
    const char *junk = "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"eth_uninstallFilter\","
                       "\"params\":[\"0xzzzzzzzzzz\"]}";
    c = cls(junk);
    CU_ASSERT_PTR_NULL(rp_chain_filter_unwrap_call(junk, strlen(junk), &c, &tag, &n));
    const char *none = "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"eth_uninstallFilter\"}";
    c = cls(none);
    CU_ASSERT_PTR_NULL(rp_chain_filter_unwrap_call(none, strlen(none), &c, &tag, &n));
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"head-dependent calls", test_classify_head},
        {"explicit block numbers", test_classify_block},
        {"calls that need nothing; kinds", test_classify_any_and_kinds},
        {"block numbers shown by answers", test_answer_block},
        {"filter ids carry their endpoint", test_filter_ids},
        {NULL, NULL},
    };
    return rp_test_run("chain", cases);
}
