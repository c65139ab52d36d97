/* test_subjson.c - the JSON of subscriptions: eth_subscribe parameters, log
 * filters and their match (geth's rules), a block's newHeads header, log
 * records and the removed flag's place. */
#include "rp_subjson.h"
#include "rp_test.h"

#include <stdlib.h>
#include <string.h>

#define A1 "0x5fbdb2315678afecb367f032d93f642f64180aa3"
#define A2 "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512"
#define T1 "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
#define T2 "0x0000000000000000000000000000000000000000000000000000000000000001"
#define T3 "0x0000000000000000000000000000000000000000000000000000000000000002"
#define BH "0x1111111111111111111111111111111111111111111111111111111111111111"

static void hex(const char *s, uint8_t *out, size_t n)
{
    CU_ASSERT_EQUAL_FATAL(rp_hex_bytes(s, strlen(s), out, n), 0);
}

static void test_subscribe_params(void)
{
    enum rp_sub_type t;
    struct rp_log_filter f;
    const char *err = NULL;
    const char *heads =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"newHeads\"]}";
    CU_ASSERT_EQUAL(rp_subjson_subscribe(heads, strlen(heads), &t, &f, &err), 0);
    CU_ASSERT_EQUAL(t, RP_SUB_NEW_HEADS);
    const char *logs =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"logs\","
        "{\"address\":\"" A1 "\",\"topics\":[\"" T1 "\",null,[\"" T2 "\",\"" T3 "\"]]}]}";
    CU_ASSERT_EQUAL(rp_subjson_subscribe(logs, strlen(logs), &t, &f, &err), 0);
    CU_ASSERT_EQUAL(t, RP_SUB_LOGS);
    CU_ASSERT_EQUAL(f.naddr, 1);
    CU_ASSERT_EQUAL(f.npos, 3);
    CU_ASSERT_EQUAL(f.nchoice[0], 1);
    CU_ASSERT_EQUAL(f.nchoice[1], 0);
    CU_ASSERT_EQUAL(f.nchoice[2], 2);
    rp_log_filter_free(&f);
    const char *nofilter = "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"logs\"]}";
    CU_ASSERT_EQUAL(rp_subjson_subscribe(nofilter, strlen(nofilter), &t, &f, &err), 0);
    CU_ASSERT_EQUAL(f.naddr + f.npos, 0);
    const char *bad[] = {
        "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"newPendingTransactions\"]}",
        "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[]}",
        "{\"id\":1,\"method\":\"eth_subscribe\"}",
        "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"logs\",{\"address\":\"0x12\"}]}",
        "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"logs\",{\"topics\":[1]}]}",
        "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"logs\",{\"topics\":[null,null,null,"
        "null,"
        "null]}]}",
        "{\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"logs\",7]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        CU_ASSERT_EQUAL(rp_subjson_subscribe(bad[i], strlen(bad[i]), &t, &f, &err), -1);
        CU_ASSERT_PTR_NOT_NULL(err);
    }
    char id[80];
    const char *un = "{\"id\":2,\"method\":\"eth_unsubscribe\",\"params\":[\"0xabc\"]}";
    CU_ASSERT_EQUAL(rp_subjson_unsubscribe(un, strlen(un), id, sizeof id), 0);
    CU_ASSERT_STRING_EQUAL(id, "0xabc");
    const char *unbad = "{\"id\":2,\"method\":\"eth_unsubscribe\",\"params\":[5]}";
    CU_ASSERT_EQUAL(rp_subjson_unsubscribe(unbad, strlen(unbad), id, sizeof id), -1);
}

static void test_filter_match(void)
{
    uint8_t a1[20], a2[20], t[3][32];
    hex(A1, a1, 20);
    hex(A2, a2, 20);
    hex(T1, t[0], 32);
    hex(T2, t[1], 32);
    hex(T3, t[2], 32);
    struct rp_log_filter f;
    const char *err;
    /* empty filter: everything */
    CU_ASSERT_EQUAL(rp_log_filter_parse("{}", 2, &f, &err), 0);
    CU_ASSERT_TRUE(rp_log_filter_match(&f, a1, 0, t));
    rp_log_filter_free(&f);
    /* an address set (case does not matter) */
    const char *fa = "{\"address\":[\"" A2 "\",\"0x5FBDB2315678AFECB367F032D93F642F64180AA3\"]}";
    CU_ASSERT_EQUAL(rp_log_filter_parse(fa, strlen(fa), &f, &err), 0);
    CU_ASSERT_TRUE(rp_log_filter_match(&f, a1, 1, t));
    CU_ASSERT_TRUE(rp_log_filter_match(&f, a2, 1, t));
    uint8_t other[20] = {0};
    CU_ASSERT_FALSE(rp_log_filter_match(&f, other, 1, t));
    rp_log_filter_free(&f);
    /* topics: position 0 exact, 1 any, 2 one of two; the log needs three */
    const char *ft = "{\"topics\":[\"" T1 "\",null,[\"" T2 "\",\"" T3 "\"]]}";
    CU_ASSERT_EQUAL(rp_log_filter_parse(ft, strlen(ft), &f, &err), 0);
    uint8_t l1[3][32], l2[3][32];
    memcpy(l1[0], t[0], 32);
    memcpy(l1[1], t[2], 32);
    memcpy(l1[2], t[1], 32);
    CU_ASSERT_TRUE(rp_log_filter_match(&f, a1, 3, (const uint8_t(*)[32])l1));
    CU_ASSERT_FALSE(rp_log_filter_match(&f, a1, 2, (const uint8_t(*)[32])l1)); /* too few topics */
    memcpy(l2, l1, sizeof l2);
    memcpy(l2[2], t[0], 32);
    CU_ASSERT_FALSE(rp_log_filter_match(&f, a1, 3, (const uint8_t(*)[32])l2)); /* position 2 */
    memcpy(l2, l1, sizeof l2);
    memcpy(l2[0], t[1], 32);
    CU_ASSERT_FALSE(rp_log_filter_match(&f, a1, 3, (const uint8_t(*)[32])l2)); /* position 0 */
    rp_log_filter_free(&f);
    /* [] at a position is a wildcard too, and so is topics: null */
    const char *fw = "{\"topics\":[[]],\"address\":null}";
    CU_ASSERT_EQUAL(rp_log_filter_parse(fw, strlen(fw), &f, &err), 0);
    CU_ASSERT_TRUE(rp_log_filter_match(&f, a2, 1, t));
    CU_ASSERT_FALSE(rp_log_filter_match(&f, a2, 0, t));
    rp_log_filter_free(&f);
}

static void test_block_header(void)
{
    const char *body =
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"hash\":\"" BH "\",\n \"parentHash\":\"" T2
        "\",\"number\":\"0x1a\",\"transactions\":[\"" T1 "\"],\"uncles\":[],\"size\":\"0x200\","
        "\"totalDifficulty\":\"0x0\",\"withdrawals\":[{\"index\":\"0x0\"}],\"gasUsed\":\"0x5208\","
        "\"extraData\":\"0x\"}}";
    struct rp_block_info bi;
    struct rp_buf h = RP_BUF_INIT;
    CU_ASSERT_EQUAL(rp_subjson_block(body, strlen(body), &bi, &h), 0);
    CU_ASSERT_EQUAL(bi.number, 26);
    uint8_t want[32];
    hex(BH, want, 32);
    CU_ASSERT_EQUAL(memcmp(bi.hash, want, 32), 0);
    hex(T2, want, 32);
    CU_ASSERT_EQUAL(memcmp(bi.parent, want, 32), 0);
    CU_ASSERT_STRING_EQUAL(rp_buf_cstr(&h), "{\"hash\":\"" BH "\",\"parentHash\":\"" T2
                                            "\",\"number\":\"0x1a\",\"gasUsed\":\"0x5208\","
                                            "\"extraData\":\"0x\"}");
    rp_buf_free(&h);
    const char *null = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":null}";
    CU_ASSERT_EQUAL(rp_subjson_block(null, strlen(null), &bi, NULL), 1);
    const char *errb =
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32000,\"message\":\"x\"}}";
    CU_ASSERT_EQUAL(rp_subjson_block(errb, strlen(errb), &bi, NULL), -1);
    uint64_t n = 0;
    const char *q = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10\"}";
    CU_ASSERT_EQUAL(rp_subjson_quantity(q, strlen(q), &n), 0);
    CU_ASSERT_EQUAL(n, 16);
}

static void test_log_records(void)
{
    const char *body = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":["
                       "{\"address\":\"" A1 "\",\"topics\":[\"" T1 "\",\"" T2 "\"],\"data\":\"0x\","
                       "\"blockHash\":\"" BH "\",\"logIndex\":\"0x0\",\"removed\":false},"
                       "{\"address\":\"" A2 "\",\"topics\":[],\"data\":\"0x01\",\"blockHash\":\"" BH
                       "\",\"removed\":false}]}";
    uint8_t bh[32];
    hex(BH, bh, 32);
    struct rp_buf out = RP_BUF_INIT;
    CU_ASSERT_EQUAL(rp_subjson_logs(body, strlen(body), bh, &out), 2);
    size_t off = 0;
    struct rp_log_rec r;
    CU_ASSERT_EQUAL(rp_log_rec_next(out.data, out.len, &off, &r), 1);
    CU_ASSERT_EQUAL(r.ntopics, 2);
    uint8_t a1[20], t1[32];
    hex(A1, a1, 20);
    hex(T1, t1, 32);
    CU_ASSERT_EQUAL(memcmp(r.addr, a1, 20), 0);
    CU_ASSERT_EQUAL(memcmp(r.topics[0], t1, 32), 0);
    /* the object without "removed" and without its closing brace */
    const char *j1 = "{\"address\":\"" A1 "\",\"topics\":[\"" T1 "\",\"" T2 "\"],\"data\":\"0x\","
                     "\"blockHash\":\"" BH "\",\"logIndex\":\"0x0\"";
    CU_ASSERT_EQUAL(r.json_len, strlen(j1));
    CU_ASSERT_EQUAL(memcmp(r.json, j1, strlen(j1)), 0);
    CU_ASSERT_EQUAL(rp_log_rec_next(out.data, out.len, &off, &r), 1);
    CU_ASSERT_EQUAL(r.ntopics, 0);
    CU_ASSERT_EQUAL(rp_log_rec_next(out.data, out.len, &off, &r), 0);
    /* a truncated payload is refused, not read past */
    off = 0;
    CU_ASSERT_EQUAL(rp_log_rec_next(out.data, out.len - 3, &off, &r), 1);
    CU_ASSERT_EQUAL(rp_log_rec_next(out.data, out.len - 3, &off, &r), -1);
    /* logs of another block are refused */
    uint8_t other[32] = {0};
    rp_buf_reset(&out);
    CU_ASSERT_EQUAL(rp_subjson_logs(body, strlen(body), other, &out), -1);
    /* not strict JSON (a byte that is not UTF-8): refused, never copied on */
    const char *bad =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[{\"address\":\"" A1 "\",\"data\":\"\x92\"}]}";
    rp_buf_reset(&out);
    CU_ASSERT_EQUAL(rp_subjson_logs(bad, strlen(bad), bh, &out), -1);
    const char *empty = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":[]}";
    rp_buf_reset(&out);
    CU_ASSERT_EQUAL(rp_subjson_logs(empty, strlen(empty), bh, &out), 0);
    CU_ASSERT_EQUAL(out.len, 0);
    rp_buf_free(&out);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"eth_subscribe and eth_unsubscribe parameters", test_subscribe_params},
        {"log filters match as geth's", test_filter_match},
        {"a block answer becomes the newHeads header", test_block_header},
        {"logs become records; removed is left to the notification", test_log_records},
        {NULL, NULL},
    };
    return rp_test_run("subjson", cases);
}
