/* test_jsonrpc.c - request validation (single calls, notifications, every
 * invalid-request class, batches, duplicate members), upstream response
 * checks, the error objects rpcpool writes, escaping and newline removal. */
#include "rp_frame.h"
#include "rp_jsonrpc.h"
#include "rp_test.h"

#include <stdlib.h>
#include <string.h>

static struct rp_jparser parser;
static struct rp_jmsg msg;

/* Parse S with MAX_BATCH; the input must be what the framing scanner
 * delivers, i.e. valid JSON. */
static const struct rp_jmsg *parse_max(const char *s, long max_batch)
{
    CU_ASSERT_EQUAL(rp_frame_validate(s, strlen(s)), 0);
    CU_ASSERT_EQUAL(rp_jsonrpc_parse(&parser, s, strlen(s), max_batch, &msg), 0);
    return &msg;
}

static const struct rp_jmsg *parse(const char *s)
{
    return parse_max(s, 100);
}

/* 1 when call C's id bytes in BUF are WANT (NULL: no id). */
static int id_is(const char *buf, const struct rp_jcall *c, const char *want)
{
    if (!want)
        return c->id_start < 0;
    return c->id_start >= 0 && c->id_len == strlen(want) &&
           memcmp(buf + c->id_start, want, c->id_len) == 0;
}

static int method_is(const char *buf, const struct rp_jcall *c, const char *want)
{
    return c->method_len == strlen(want) && memcmp(buf + c->method_start, want, c->method_len) == 0;
}

static int reason_has(const char *reason, const char *word)
{
    return reason && strstr(reason, word) != NULL;
}

/* A valid single call with id WANT_ID (NULL for a notification). */
static void expect_valid(const char *s, const char *want_id, const char *want_method)
{
    const struct rp_jmsg *m = parse(s);
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL(m->is_batch, 0);
    CU_ASSERT_EQUAL_FATAL(m->count, 1);
    const struct rp_jcall *c = &m->calls[0];
    if (c->code != 0)
        printf("\n  unexpected invalid: %s: %s\n", s, c->reason);
    CU_ASSERT_EQUAL(c->code, 0);
    CU_ASSERT_PTR_NULL(c->reason);
    CU_ASSERT(id_is(s, c, want_id));
    CU_ASSERT(method_is(s, c, want_method));
    CU_ASSERT_EQUAL(rp_jcall_is_notification(c), want_id == NULL);
}

/* An invalid single call; its reason contains WORD, its id is WANT_ID. */
static void expect_invalid(const char *s, const char *word, const char *want_id)
{
    const struct rp_jmsg *m = parse(s);
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL_FATAL(m->count, 1);
    const struct rp_jcall *c = &m->calls[0];
    if (c->code == 0 || !reason_has(c->reason, word))
        printf("\n  %s: code %d reason %s (want %s)\n", s, c->code, c->reason ? c->reason : "-",
               word);
    CU_ASSERT_EQUAL(c->code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT(reason_has(c->reason, "Invalid Request"));
    CU_ASSERT(reason_has(c->reason, word));
    CU_ASSERT(id_is(s, c, want_id));
    CU_ASSERT_EQUAL(rp_jcall_is_notification(c), 0);
}

static void test_valid_requests(void)
{
    const char *s = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}";
    expect_valid(s, "1", "eth_blockNumber");
    CU_ASSERT_EQUAL(msg.calls[0].start, 0);
    CU_ASSERT_EQUAL(msg.calls[0].len, strlen(s));

    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"eth_chainId\"}", "\"abc\"",
                 "eth_chainId");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":\"a\\\"b\",\"method\":\"m\"}", "\"a\\\"b\"", "m");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"m\"}", "\"\"", "m");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"m\"}", "1.5", "m");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":-7,\"method\":\"m\"}", "-7", "m");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":1e3,\"method\":\"m\"}", "1e3", "m");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", "null", "m");
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":123456789012345678901234567890123,\"method\":\"m\"}",
                 "123456789012345678901234567890123", "m");
    /* member order, whitespace, params object, unknown members */
    expect_valid(" {\n  \"method\" : \"eth_getBalance\" ,\r\n  \"params\" : {\"a\":[1,{}]},\n"
                 "  \"id\" : 42 , \"x-extra\":{\"id\":\"inner\"},\n  \"jsonrpc\" : \"2.0\"\n} ",
                 "42", "eth_getBalance");
    /* nested members named like ours do not count */
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"m\",\"params\":[{\"id\":1,\"method\":"
                 "2,\"jsonrpc\":3}]}",
                 "9", "m");
    /* keys spelled with escapes are the same keys */
    expect_valid("{\"json\\u0072pc\":\"2\\u002e0\",\"\\u0069d\":3,\"m\\u0065thod\":\"x\"}", "3",
                 "x");
    /* method contents are reported raw, without quotes */
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\/b\"}", "1", "a\\/b");
}

static void test_notifications(void)
{
    expect_valid("{\"jsonrpc\":\"2.0\",\"method\":\"eth_subscribe\",\"params\":[\"newHeads\"]}",
                 NULL, "eth_subscribe");
    expect_valid("{\"method\":\"n\",\"jsonrpc\":\"2.0\"}", NULL, "n");
    /* an id null is a call, not a notification */
    expect_valid("{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"id\":null}", "null", "n");
}

static void test_invalid_requests(void)
{
    expect_invalid("{\"id\":1,\"method\":\"m\"}", "missing jsonrpc", "1");
    expect_invalid("{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"m\"}", "jsonrpc", "5");
    expect_invalid("{\"jsonrpc\":2.0,\"id\":5,\"method\":\"m\"}", "jsonrpc", "5");
    expect_invalid("{\"jsonrpc\":\"2.0 \",\"id\":5,\"method\":\"m\"}", "jsonrpc", "5");
    expect_invalid("{\"jsonrpc\":\"2.00\",\"method\":\"m\"}", "jsonrpc", NULL);
    expect_invalid("{\"jsonrpc\":null,\"method\":\"m\"}", "jsonrpc", NULL);
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":\"q\"}", "missing method", "\"q\"");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", "method", "1");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", "method", "1");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"m\"]}", "method", "1");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"m\"}", "id", NULL);
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"m\"}", "id", NULL);
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"m\"}", "id", NULL);
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":false,\"method\":\"m\"}", "id", NULL);
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\",\"params\":\"x\"}", "params",
                   "2");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\",\"params\":3}", "params", "2");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\",\"params\":null}", "params",
                   "2");
    expect_invalid("{}", "missing", NULL);
    /* the first problem is the reason; the id is still read after it */
    expect_invalid("{\"jsonrpc\":\"1.0\",\"method\":5,\"id\":\"late\"}", "jsonrpc", "\"late\"");
}

static void test_duplicates(void)
{
    expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"method\":\"b\",\"id\":1}", "duplicate",
                   "1");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1}",
                   "duplicate", "1");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":[],\"params\":{},\"id\":1}",
                   "duplicate", "1");
    /* a repeated id is ambiguous: the answer carries null */
    expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"id\":1,\"id\":2}", "duplicate", NULL);
    /* a duplicate spelled with an escape */
    expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"eth_call\",\"m\\u0065thod\":"
                   "\"eth_sendRawTransaction\",\"id\":1}",
                   "duplicate", "1");
    /* other members may repeat */
    expect_valid("{\"jsonrpc\":\"2.0\",\"x\":1,\"x\":2,\"method\":\"a\",\"id\":1}", "1", "a");
}

static void test_scalars(void)
{
    static const char *const scalars[] = {"42", "\"x\"", "true", "false", "null", " -1.5 "};
    for (size_t k = 0; k < sizeof(scalars) / sizeof(scalars[0]); k++) {
        const struct rp_jmsg *m = parse(scalars[k]);
        CU_ASSERT_EQUAL(m->code, RP_JSONRPC_INVALID_REQUEST);
        CU_ASSERT(reason_has(m->reason, "Invalid Request"));
        CU_ASSERT_EQUAL(m->count, 0);
        CU_ASSERT_EQUAL(m->is_batch, 0);
    }
}

static void test_batches(void)
{
    const char *s = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}, 42 ,"
                    "{\"jsonrpc\":\"2.0\",\"method\":\"n\"},{\"foo\":1,\"id\":\"z\"},\"s\",[],"
                    "{\"jsonrpc\":\"2.0\",\"id\":\"last\",\"method\":\"b\",\"params\":[[{}]]}]";
    const struct rp_jmsg *m = parse(s);
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL(m->is_batch, 1);
    CU_ASSERT_EQUAL_FATAL(m->count, 7);
    const struct rp_jcall *c = m->calls;
    CU_ASSERT_EQUAL(c[0].code, 0);
    CU_ASSERT(id_is(s, &c[0], "1"));
    CU_ASSERT(method_is(s, &c[0], "a"));
    CU_ASSERT_EQUAL(c[0].start, 1);
    CU_ASSERT_EQUAL(c[0].len, strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}"));
    CU_ASSERT_EQUAL(c[1].code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT(id_is(s, &c[1], NULL));
    CU_ASSERT_EQUAL(c[1].len, 2);
    CU_ASSERT(memcmp(s + c[1].start, "42", 2) == 0);
    CU_ASSERT_EQUAL(c[2].code, 0);
    CU_ASSERT(rp_jcall_is_notification(&c[2]));
    CU_ASSERT_EQUAL(c[3].code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT(id_is(s, &c[3], "\"z\""));
    CU_ASSERT_EQUAL(c[4].code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT_EQUAL(c[4].len, 3);
    CU_ASSERT(memcmp(s + c[4].start, "\"s\"", 3) == 0);
    CU_ASSERT_EQUAL(c[5].code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT_EQUAL(c[5].len, 2);
    CU_ASSERT_EQUAL(c[6].code, 0);
    CU_ASSERT(id_is(s, &c[6], "\"last\""));
    CU_ASSERT(method_is(s, &c[6], "b"));
    CU_ASSERT_EQUAL(s[c[6].start + c[6].len - 1], '}');
    CU_ASSERT_EQUAL(c[6].start + c[6].len + 1, strlen(s));

    /* only notifications */
    m = parse("[{\"jsonrpc\":\"2.0\",\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"method\":\"b\"}]");
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL_FATAL(m->count, 2);
    CU_ASSERT(rp_jcall_is_notification(&m->calls[0]));
    CU_ASSERT(rp_jcall_is_notification(&m->calls[1]));

    /* empty */
    m = parse("[]");
    CU_ASSERT_EQUAL(m->is_batch, 1);
    CU_ASSERT_EQUAL(m->code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT_EQUAL(m->count, 0);
    CU_ASSERT(reason_has(m->reason, "empty"));
    m = parse(" [ \n ] ");
    CU_ASSERT_EQUAL(m->code, RP_JSONRPC_INVALID_REQUEST);

    /* over max_batch, at max_batch, unlimited */
    const char *three =
        "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":2,"
        "\"method\":\"a\"},{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"a\"}]";
    m = parse_max(three, 2);
    CU_ASSERT_EQUAL(m->code, RP_JSONRPC_INVALID_REQUEST);
    CU_ASSERT(reason_has(m->reason, "max_batch"));
    CU_ASSERT_EQUAL(m->count, 0);
    m = parse_max(three, 3);
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL(m->count, 3);
    CU_ASSERT(id_is(three, &m->calls[2], "3"));
    m = parse_max(three, 0);
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL(m->count, 3);

    /* a nested batch is not a call */
    m = parse("[[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}]]");
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL_FATAL(m->count, 1);
    CU_ASSERT_EQUAL(m->calls[0].code, RP_JSONRPC_INVALID_REQUEST);
}

/* A large batch grows the parser's buffers, and a small parse afterwards
 * reuses them. */
static void test_large_batch_reuse(void)
{
    const int n = 5000;
    size_t cap = (size_t)n * 96 + 16, len = 0;
    char *s = malloc(cap);
    CU_ASSERT_FATAL(s != NULL);
    s[len++] = '[';
    for (int i = 0; i < n; i++)
        len +=
            (size_t)snprintf(s + len, cap - len,
                             "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"eth_getBlockByNumber\","
                             "\"params\":[\"0x%x\",false]}",
                             i ? "," : "", i, i);
    s[len++] = ']';
    s[len] = '\0';
    const struct rp_jmsg *m = parse_max(s, 10000);
    CU_ASSERT_EQUAL(m->code, 0);
    CU_ASSERT_EQUAL_FATAL(m->count, n);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        if (m->calls[i].code != 0 || !id_is(s, &m->calls[i], want) ||
            !method_is(s, &m->calls[i], "eth_getBlockByNumber"))
            ok = 0;
    }
    CU_ASSERT(ok);
    free(s);
    expect_valid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"small\"}", "1", "small");
}

static int check(const char *body, int batch, const char *want_id)
{
    return rp_jsonrpc_check_response(&parser, body, strlen(body), batch, want_id,
                                     want_id ? strlen(want_id) : 0);
}

static void test_responses(void)
{
    const char *ok = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10\"}";
    CU_ASSERT_EQUAL(check(ok, 0, "1"), 0);
    CU_ASSERT_EQUAL(check(ok, 0, " 1\n"), 0);
    CU_ASSERT_EQUAL(check(ok, 0, NULL), 0);
    CU_ASSERT_EQUAL(check(ok, 0, "2"), -1);
    CU_ASSERT_EQUAL(check(ok, 0, "\"1\""), -1);
    CU_ASSERT_EQUAL(check(ok, 0, "10"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":null}", 0, "\"a\""), 0);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":null}", 0, "a"), -1);
    CU_ASSERT_EQUAL(check("{\"result\":{\"id\":7},\"id\":null,\"jsonrpc\":\"2.0\"}", 0, "null"), 0);
    /* valid error objects */
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":"
                          "\"execution reverted\",\"data\":\"0x08c379a0\"}}",
                          0, "1"),
                    0);
    CU_ASSERT_EQUAL(
        check("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"m\",\"code\":3}}", 0, "1"),
        0);
    /* bad error objects */
    CU_ASSERT_EQUAL(
        check("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"m\"}}", 0, "1"),
        -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\"}}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"m\"}}", 0, "1"),
                    -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"boom\"}", 0, "1"), -1);
    /* envelope problems */
    CU_ASSERT_EQUAL(check("{\"id\":1,\"result\":\"0x10\"}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":\"0x10\"}", 0, "1"), -1);
    CU_ASSERT_EQUAL(
        check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1}}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"result\":2}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"result\":1}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":1}", 0, "1"), -1);
    /* "error": null beside a result is tolerated */
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":null}", 0, "1"), 0);
    /* members nested in the result do not count */
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"jsonrpc\":\"1.0\",\"error\":"
                          "{},\"id\":2}}",
                          0, "1"),
                    0);
    /* not JSON, not an object */
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":}", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1} x", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("<html>502 Bad Gateway</html>", 0, "1"), -1);
    CU_ASSERT_EQUAL(check("", 0, NULL), -1);
    CU_ASSERT_EQUAL(check("42", 0, NULL), -1);
    CU_ASSERT_EQUAL(check("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}]", 0, "1"), -1);
    /* pretty-printed */
    CU_ASSERT_EQUAL(check("{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"result\": {\n    \"a\": "
                          "[1, 2]\n  }\n}\n",
                          0, "1"),
                    0);
}

/* The id restore: BODY checked for ID, then given ID back; WANT NULL means
 * nothing to change. */
static void restore_case(const char *body, const char *id, const char *want)
{
    CU_ASSERT_FATAL(rp_jsonrpc_check_response(&parser, body, strlen(body), 0, id, strlen(id)) == 0);
    size_t n = rp_jsonrpc_restore_id(&parser, body, strlen(body), id, strlen(id), NULL, 0);
    if (!want) {
        CU_ASSERT_EQUAL(n, 0);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(n, strlen(want));
    char out[256];
    CU_ASSERT_EQUAL(rp_jsonrpc_restore_id(&parser, body, strlen(body), id, strlen(id), out, n), n);
    CU_ASSERT_NSTRING_EQUAL(out, want, n);
    /* a buffer one byte short is not written past */
    memset(out, 'X', sizeof out);
    CU_ASSERT_EQUAL(rp_jsonrpc_restore_id(&parser, body, strlen(body), id, strlen(id), out, n - 1),
                    n);
    CU_ASSERT_EQUAL(out[0], 'X');
}

static void test_restore_id(void)
{
    restore_case("{\"jsonrpc\":\"2.0\",\"id\":\"\\u0061\",\"result\":1}", "\"a\"",
                 "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":1}");
    restore_case("{\"jsonrpc\":\"2.0\",\"id\": 1.0 ,\"result\":1}", "1",
                 "{\"jsonrpc\":\"2.0\",\"id\": 1 ,\"result\":1}");
    restore_case("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}",
                 "7",
                 "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32700,\"message\":\"x\"}}");
    restore_case(" {\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"x\"}}", "[1]",
                 " {\"id\":[1],\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"x\"}}");
    restore_case("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":1}", "\"a\"", NULL);
}

static void test_batch_responses(void)
{
    CU_ASSERT_EQUAL(
        check("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"jsonrpc\":\"2.0\",\"id\":2,"
              "\"error\":{\"code\":-32601,\"message\":\"nope\"}}]",
              1, NULL),
        0);
    CU_ASSERT_EQUAL(check(" [ {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1} ] ", 1, NULL), 0);
    CU_ASSERT_EQUAL(check("[]", 1, NULL), 0);
    CU_ASSERT_EQUAL(
        check("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},{\"id\":2,\"result\":2}]", 1, NULL),
        -1);
    CU_ASSERT_EQUAL(check("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1},7]", 1, NULL), -1);
    /* one error object answering the whole batch */
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":"
                          "\"x\"}}",
                          1, NULL),
                    0);
    /* but not a single result */
    CU_ASSERT_EQUAL(check("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}", 1, NULL), -1);
}

static void test_error_objects(void)
{
    char out[512];
    size_t n;

    n = rp_jsonrpc_error(out, sizeof(out), "7", 1, RP_JSONRPC_INVALID_REQUEST,
                         "Invalid Request: missing method", NULL);
    const char *want = "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32600,\"message\":"
                       "\"Invalid Request: missing method\"}}";
    CU_ASSERT_STRING_EQUAL(out, want);
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT_EQUAL(rp_jsonrpc_check_response(&parser, out, n, 0, "7", 1), 0);

    n = rp_jsonrpc_error(out, sizeof(out), NULL, 0, RP_JSONRPC_PARSE_ERROR, "Parse error", NULL);
    CU_ASSERT_STRING_EQUAL(out, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                                "\"message\":\"Parse error\"}}");
    CU_ASSERT_EQUAL(n, strlen(out));

    /* escaping of the message; data is raw JSON */
    n = rp_jsonrpc_error(out, sizeof(out), "\"a\"", 3, RP_JSONRPC_INTERNAL_ERROR,
                         "Upstream error: \"q\" \\ line\nx\t\x01 caf\xc3\xa9 bad\xff",
                         "{\"attempts\":[{\"endpoint\":\"infura\",\"error\":\"timeout\"}]}");
    want = "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":-32603,\"message\":"
           "\"Upstream error: \\\"q\\\" \\\\ line\\nx\\t\\u0001 caf\xc3\xa9 bad\\ufffd\","
           "\"data\":{\"attempts\":[{\"endpoint\":\"infura\",\"error\":\"timeout\"}]}}}";
    CU_ASSERT_STRING_EQUAL(out, want);
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT_EQUAL(rp_frame_validate(out, n), 0);
    CU_ASSERT_EQUAL(rp_jsonrpc_check_response(&parser, out, n, 0, "\"a\"", 3), 0);

    /* truncation: like snprintf */
    char small[20];
    memset(small, 'Z', sizeof(small));
    size_t full =
        rp_jsonrpc_error(small, sizeof(small), "1", 1, -32002, "No upstream available", NULL);
    CU_ASSERT_EQUAL(full, strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32002,"
                                 "\"message\":\"No upstream available\"}}"));
    CU_ASSERT_EQUAL(small[sizeof(small) - 1], '\0');
    CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
    CU_ASSERT(memcmp(small, "{\"jsonrpc\":\"2.0\",\"i", 19) == 0);
    CU_ASSERT_EQUAL(rp_jsonrpc_error(NULL, 0, "1", 1, -32002, "No upstream available", NULL), full);
    /* exactly enough room */
    char *exact = malloc(full + 1);
    CU_ASSERT_FATAL(exact != NULL);
    CU_ASSERT_EQUAL(
        rp_jsonrpc_error(exact, full + 1, "1", 1, -32002, "No upstream available", NULL), full);
    CU_ASSERT_EQUAL(strlen(exact), full);
    free(exact);
}

static void test_escape(void)
{
    char out[64];

    CU_ASSERT_EQUAL(rp_json_escape(out, sizeof(out), "plain", 5), 5);
    CU_ASSERT_STRING_EQUAL(out, "plain");
    CU_ASSERT_EQUAL(rp_json_escape(out, sizeof(out), "a\"b\\c/", 6), 8);
    CU_ASSERT_STRING_EQUAL(out, "a\\\"b\\\\c/");
    CU_ASSERT_EQUAL(rp_json_escape(out, sizeof(out), "\b\f\n\r\t\x1f\0", 7), 22);
    CU_ASSERT_STRING_EQUAL(out, "\\b\\f\\n\\r\\t\\u001f\\u0000");
    /* valid UTF-8 (2, 3, 4 bytes) kept; invalid bytes become U+FFFD */
    const char *u = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    CU_ASSERT_EQUAL(rp_json_escape(out, sizeof(out), u, strlen(u)), strlen(u));
    CU_ASSERT_STRING_EQUAL(out, u);
    CU_ASSERT_EQUAL(rp_json_escape(out, sizeof(out), "\xed\xa0\x80x\xc3", 5), 6 * 3 + 1 + 6);
    CU_ASSERT_STRING_EQUAL(out, "\\ufffd\\ufffd\\ufffdx\\ufffd");
    CU_ASSERT_EQUAL(rp_json_escape(out, sizeof(out), "\x7f", 1), 1);
    /* truncation */
    char t[4];
    CU_ASSERT_EQUAL(rp_json_escape(t, sizeof(t), "ab\"cd", 5), 6);
    CU_ASSERT_STRING_EQUAL(t, "ab\\");
    CU_ASSERT_EQUAL(rp_json_escape(NULL, 0, "ab\"cd", 5), 6);
}

static void test_strip_newlines(void)
{
    char buf[256];
    const char *pretty =
        "{\r\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"result\": [\n    \"a\\nb\","
        "\n    1\n  ]\n}\n";
    const char *want = "{  \"jsonrpc\": \"2.0\",  \"id\": 1,  \"result\": [    \"a\\nb\",    1  ]}";
    strcpy(buf, pretty);
    size_t n = rp_json_strip_newlines(buf, strlen(buf));
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT(memcmp(buf, want, n) == 0);
    CU_ASSERT(memchr(buf, '\n', n) == NULL);
    CU_ASSERT_EQUAL(rp_frame_validate(buf, n), 0);
    CU_ASSERT_EQUAL(rp_jsonrpc_check_response(&parser, buf, n, 0, "1", 1), 0);

    strcpy(buf, "{\"a\":1}");
    CU_ASSERT_EQUAL(rp_json_strip_newlines(buf, 7), 7);
    CU_ASSERT(memcmp(buf, "{\"a\":1}", 7) == 0);
    strcpy(buf, "\n\r\n");
    CU_ASSERT_EQUAL(rp_json_strip_newlines(buf, 3), 0);
    CU_ASSERT_EQUAL(rp_json_strip_newlines(buf, 0), 0);
}

/* Merge BODY with EXTRA and compare with WANT; the result must be valid JSON. */
static void check_merge(const char *body, const char *extra, const char *want)
{
    char out[256];
    size_t n = rp_jsonrpc_merge_batch(out, sizeof out, body, strlen(body), extra, strlen(extra));
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT_STRING_EQUAL(out, want);
    CU_ASSERT_EQUAL(rp_frame_validate(out, n), 0);
}

static void test_merge_batch(void)
{
    const char *e =
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"x\"}}";
    char want[256];
    snprintf(want, sizeof want, "[{\"id\":1},%s]", e);
    check_merge("[{\"id\":1}]", e, want);
    check_merge("  [ {\"id\":1} ]\t", e, want);
    snprintf(want, sizeof want, "[%s]", e);
    check_merge("", e, want);
    check_merge("[]", e, want);
    check_merge("[ ]", e, want);
    check_merge("[\r\n  ]", e, want);
    snprintf(want, sizeof want, "[{\"error\":1},%s]", e);
    check_merge("{\"error\":1}", e, want);
    check_merge("[{\"id\":1},{\"id\":2}]", "", "[{\"id\":1},{\"id\":2}]");
    /* too small a buffer: the needed length, like snprintf */
    char small[4];
    CU_ASSERT_EQUAL(rp_jsonrpc_merge_batch(small, sizeof small, "[1]", 3, "2", 1), 5);
    CU_ASSERT_EQUAL(small[3], '\0');
    CU_ASSERT_EQUAL(rp_jsonrpc_merge_batch(NULL, 0, NULL, 0, "2", 1), 3);
}

/* Match BODY to the '\n'-separated IDS (EXTRA after) and compare with WANT. */
static void check_match(const char *body, const char *ids, const char *extra, const char *want,
                        int want_missing)
{
    char out[1024];
    int missing = -1;
    size_t need = rp_jsonrpc_match_batch(NULL, 0, body, strlen(body), ids, strlen(ids), NULL, 0,
                                         extra, strlen(extra), "\"d\"", NULL);
    size_t n = rp_jsonrpc_match_batch(out, sizeof out, body, strlen(body), ids, strlen(ids), NULL,
                                      0, extra, strlen(extra), "\"d\"", &missing);
    CU_ASSERT_EQUAL(n, need);
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT_STRING_EQUAL(out, want);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "\n  got  %s\n  want %s\n", out, want);
    CU_ASSERT_EQUAL(missing, want_missing);
    CU_ASSERT_EQUAL(rp_frame_validate(out, n), 0);
}

static void test_match_batch(void)
{
#define R(id, v) "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"result\":" v "}"
#define MISS(id)                                                                                   \
    "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"error\":{\"code\":-32603,\"message\":\"Upstream "        \
    "error\",\"data\":\"d\"}}"
    /* whole, in another order: the request's order comes back */
    check_match("[" R("2", "\"b\"") "," R("1", "\"a\"") "]", "1\n2\n", "",
                "[" R("1", "\"a\"") "," R("2", "\"b\"") "]", 0);
    /* the last element missing, an unknown id added: -32603 for it, the
     * stranger dropped */
    check_match("[" R("1", "1") "," R("\"zz\"", "9") "]", "1\n\"x\"\n", "",
                "[" R("1", "1") "," MISS("\"x\"") "]", 1);
    /* an id echoed in another spelling gets the client's bytes back */
    check_match("[" R("1.0", "1") "," R("\"\\u0061\"", "2") "]", "1\n\"a\"\n", "",
                "[" R("1", "1") "," R("\"a\"", "2") "]", 0);
    /* the same id twice: each element used once; a third call missing */
    check_match("[" R("7", "1") "," R("7", "2") "]", "7\n7\n7\n", "",
                "[" R("7", "1") "," R("7", "2") "," MISS("7") "]", 1);
    /* an empty answer: every call missing; rpcpool's own errors follow */
    check_match("[]", "1\n", "{\"e\":1}", "[" MISS("1") ",{\"e\":1}]", 1);
    check_match("", "1\n", "", "[" MISS("1") "]", 1);
    /* one error object for the whole batch: every call gets it */
    check_match("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,\"message\":\"no\"}}",
                "1\n2\n", "",
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":\"no\"}},"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32000,\"message\":\"no\"}}]",
                0);
    check_match("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"no\"}}", "3\n", "",
                "[{\"id\":3,\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"no\"}}]",
                0);
    /* sent with rpcpool's own ids: the client's come back */
    char out[256];
    int missing = -1;
    const char *body = "[" R("101", "1") "," R("1", "9") "]";
    size_t n = rp_jsonrpc_match_batch(out, sizeof out, body, strlen(body), "101\n102\n", 8,
                                      "1\n\"b\"\n", 6, "", 0, "\"d\"", &missing);
    CU_ASSERT_STRING_EQUAL(out, "[" R("1", "1") "," MISS("\"b\"") "]");
    CU_ASSERT_EQUAL(n, strlen(out));
    CU_ASSERT_EQUAL(missing, 1);
#undef R
#undef MISS
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"valid requests", test_valid_requests},
        {"notifications", test_notifications},
        {"invalid requests", test_invalid_requests},
        {"duplicate members", test_duplicates},
        {"top-level scalars", test_scalars},
        {"batches", test_batches},
        {"large batch, parser reuse", test_large_batch_reuse},
        {"responses", test_responses},
        {"batch responses", test_batch_responses},
        {"the client's id restored", test_restore_id},
        {"error objects", test_error_objects},
        {"rp_json_escape", test_escape},
        {"rp_json_strip_newlines", test_strip_newlines},
        {"batch answers merged with rpcpool's own errors", test_merge_batch},
        {"batch answers matched to the request's ids", test_match_batch},
        {NULL, NULL},
    };
    rp_jparser_init(&parser);
    int rc = rp_test_run("jsonrpc", cases);
    rp_jparser_free(&parser);
    return rc;
}
