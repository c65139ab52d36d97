/* test_client.c - CUnit tests of librpcpool (include/rpcpool/client.h).
 *
 * Two groups:
 *  - offline cases (always run): the library against a scripted fake server
 *    on a UNIX socket in a temporary directory, answered from this same
 *    thread (answers are written before the library reads them, so every
 *    case is deterministic): framing, id matching in any order, batches,
 *    error objects, timeouts and abandoned calls, a closing server, garbage
 *    and over-long lines, argument checks;
 *  - live cases, against a running rpcpoold in front of anvil, when
 *    RPCPOOL_TEST_SOCKET names its client socket (and RPCPOOL_TEST_CONTROL
 *    its control socket): results, JSON-RPC errors passed through, batches,
 *    100 pipelined calls matched by id, the fd + non-blocking API driven by
 *    poll(), and stats. tests/integration/packaging.test.js starts anvil and
 *    rpcpoold and runs this binary with those variables.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp_test.h"
#include <rpcpool/client.h>

#define LIVE_TIMEOUT_MS 15000

/* ---- the fake server ---------------------------------------------------- */

struct fake {
    char dir[64];
    char path[128];
    int lfd; /* listening socket */
    int sfd; /* the server side of the client's connection */
    rpcpool_t *p;
};

/* Listen on a fresh socket, connect the library to it and accept. */
static int fake_open(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->lfd = f->sfd = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/rpcpool-client-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/fake.ipc", f->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->lfd, 4) != 0)
        return -1;
    char err[256];
    f->p = rpcpool_connect(f->path, err, sizeof err);
    if (!f->p)
        return -1;
    f->sfd = accept(f->lfd, NULL, NULL);
    return f->sfd < 0 ? -1 : 0;
}

static void fake_close(struct fake *f)
{
    rpcpool_close(f->p);
    f->p = NULL;
    if (f->sfd >= 0)
        close(f->sfd);
    if (f->lfd >= 0)
        close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
}

static void fake_write(struct fake *f, const char *s)
{
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = write(f->sfd, s + off, n - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* Flush the client and read what reached the server (up to 1 s for at
 * least one byte). Returns a static buffer. */
static const char *fake_received(struct fake *f)
{
    static char buf[65536];
    size_t len = 0;
    CU_ASSERT_EQUAL(rpcpool_flush(f->p), 0);
    struct pollfd pfd = {.fd = f->sfd, .events = POLLIN};
    while (len < sizeof buf - 1 && poll(&pfd, 1, len ? 0 : 1000) > 0) {
        ssize_t n = read(f->sfd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

#define FAKE_OPEN(f)                                                                               \
    do {                                                                                           \
        if (fake_open(&(f)) != 0) {                                                                \
            CU_FAIL("fake server");                                                                \
            fake_close(&(f));                                                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ---- offline cases ------------------------------------------------------ */

static void test_connect_errors(void)
{
    char err[256] = "x";
    CU_ASSERT_PTR_NULL(rpcpool_connect("/nonexistent/rpcpool.ipc", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/rpcpool.ipc"));
    char longpath[300];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    CU_ASSERT_PTR_NULL(rpcpool_connect(longpath, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "longer than"));
    CU_ASSERT_PTR_NULL(rpcpool_connect(NULL, NULL, 0));
    struct rpcpool_stats st;
    CU_ASSERT_EQUAL(rpcpool_stats("/nonexistent/rpcpool.ctl", &st, err, sizeof err), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control socket"));
    CU_ASSERT_STRING_EQUAL(rpcpool_version(), RP_VERSION);
}

static void test_send_format_and_checks(void)
{
    struct fake f;
    FAKE_OPEN(f);
    uint64_t id = 0;
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "", NULL, &id), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "method"));
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", "{bad", &id), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", "42", &id), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", "\"s\"", &id), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", "[1] [2]", &id), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", "[1", &id), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_pending(f.p), 0);
    CU_ASSERT_EQUAL(rpcpool_poll_events(f.p), POLLIN);
    /* Refused calls take no id and leave the connection usable. */
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "eth_x", NULL, &id), RPCPOOL_OK);
    CU_ASSERT_EQUAL(id, 1);
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "a\"b\\c\n", " [\"0x1\", {\"k\": true}] ", &id), RPCPOOL_OK);
    CU_ASSERT_EQUAL(id, 2);
    CU_ASSERT_EQUAL(rpcpool_poll_events(f.p), POLLIN | POLLOUT);
    CU_ASSERT_EQUAL(rpcpool_pending(f.p), 2);
    CU_ASSERT_STRING_EQUAL(fake_received(&f),
                           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_x\",\"params\":[]}\n"
                           "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"a\\\"b\\\\c\\u000a\","
                           "\"params\": [\"0x1\", {\"k\": true}] }\n");
    CU_ASSERT_EQUAL(rpcpool_poll_events(f.p), POLLIN);
    const char *const methods[] = {"a", "b"};
    const char *const params[] = {NULL, "{\"x\":1}"};
    uint64_t ids[2];
    CU_ASSERT_EQUAL(rpcpool_send_batch(f.p, 2, methods, params, ids), RPCPOOL_OK);
    CU_ASSERT_EQUAL(ids[0], 3);
    CU_ASSERT_EQUAL(ids[1], 4);
    CU_ASSERT_STRING_EQUAL(
        fake_received(&f),
        "[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"a\",\"params\":[]},"
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"b\",\"params\":{\"x\":1}}]\n");
    const char *const bad[] = {"a", "b"};
    const char *const badp[] = {"[]", "nope"};
    CU_ASSERT_EQUAL(rpcpool_send_batch(f.p, 2, bad, badp, ids), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "call 1"));
    CU_ASSERT_EQUAL(rpcpool_send_batch(f.p, 0, bad, badp, ids), RPCPOOL_ERROR);
    struct rpcpool_response r;
    CU_ASSERT_EQUAL(rpcpool_wait(f.p, 99, 0, &r), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_wait(f.p, 0, 0, &r), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_set_max_line_bytes(f.p, 10), RPCPOOL_ERROR);
    fake_close(&f);
}

/* Answers in any order, one of them inside a batch array, matched by id. */
static void test_any_order(void)
{
    struct fake f;
    FAKE_OPEN(f);
    uint64_t a, b, c, d;
    rpcpool_send(f.p, "m", NULL, &a);
    rpcpool_send(f.p, "m", NULL, &b);
    rpcpool_send(f.p, "m", NULL, &c);
    rpcpool_send(f.p, "m", NULL, &d);
    fake_received(&f);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"n\":[3,\"x\"]}}\n\n"
                   "[{\"jsonrpc\":\"2.0\",\"result\":\"0x1\",\"id\":1},"
                   "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":null}]\n"
                   "  {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"two\",\"error\":null}\r\n");
    struct rpcpool_response r;
    CU_ASSERT_EQUAL_FATAL(rpcpool_wait(f.p, b, 1000, &r), RPCPOOL_OK);
    CU_ASSERT_EQUAL(r.id, 2);
    CU_ASSERT_EQUAL(r.is_error, 0);
    CU_ASSERT_STRING_EQUAL(r.result_json, "\"two\"");
    CU_ASSERT_PTR_NULL(r.error_message);
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL(rpcpool_pending(f.p), 0);
    /* The others, in arrival order. */
    CU_ASSERT_EQUAL_FATAL(rpcpool_next_response(f.p, &r), 1);
    CU_ASSERT_EQUAL(r.id, 3);
    CU_ASSERT_STRING_EQUAL(r.result_json, "{\"n\":[3,\"x\"]}");
    CU_ASSERT_STRING_EQUAL(r.raw, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"n\":[3,\"x\"]}}");
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(rpcpool_next_response(f.p, &r), 1);
    CU_ASSERT_EQUAL(r.id, 1);
    CU_ASSERT_STRING_EQUAL(r.raw, "{\"jsonrpc\":\"2.0\",\"result\":\"0x1\",\"id\":1}");
    uint64_t q = 0;
    CU_ASSERT_EQUAL(rpcpool_quantity(r.result_json, &q), RPCPOOL_OK);
    CU_ASSERT_EQUAL(q, 1);
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(rpcpool_next_response(f.p, &r), 1);
    CU_ASSERT_EQUAL(r.id, 4);
    CU_ASSERT_STRING_EQUAL(r.result_json, "null");
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL(rpcpool_next_response(f.p, &r), 0);
    rpcpool_response_free(&r); /* zeroed: harmless */
    rpcpool_response_free(NULL);
    fake_close(&f);
}

/* An answer cut across writes; timeout 0 looks only at what is there. */
static void test_split_line_and_timeout(void)
{
    struct fake f;
    FAKE_OPEN(f);
    uint64_t id;
    rpcpool_send(f.p, "m", NULL, &id);
    fake_received(&f);
    struct rpcpool_response r;
    CU_ASSERT_EQUAL(rpcpool_wait(f.p, id, 0, &r), RPCPOOL_TIMEOUT);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"res");
    CU_ASSERT_EQUAL(rpcpool_wait(f.p, id, 20, &r), RPCPOOL_TIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "within 20 ms"));
    fake_write(&f, "ult\":\"0xff\"}\n");
    CU_ASSERT_EQUAL_FATAL(rpcpool_wait(f.p, id, 1000, &r), RPCPOOL_OK);
    CU_ASSERT_STRING_EQUAL(r.result_json, "\"0xff\"");
    rpcpool_response_free(&r);
    fake_close(&f);
}

static void test_error_answer(void)
{
    struct fake f;
    FAKE_OPEN(f);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32000,\"message\":"
                   "\"execution reverted: \\u00e9\\\"x\\ud83d\\ude00\\n\",\"data\":\"0x08c3\"}}\n");
    struct rpcpool_response r;
    CU_ASSERT_EQUAL_FATAL(rpcpool_call(f.p, "eth_call", "[{}]", 1000, &r), RPCPOOL_OK);
    CU_ASSERT_EQUAL(r.id, 1);
    CU_ASSERT_EQUAL(r.is_error, 1);
    CU_ASSERT_EQUAL(r.error_code, -32000);
    CU_ASSERT_STRING_EQUAL(r.error_message, "execution reverted: \xc3\xa9\"x\xf0\x9f\x98\x80\n");
    CU_ASSERT_STRING_EQUAL(r.error_data_json, "\"0x08c3\"");
    CU_ASSERT_PTR_NULL(r.result_json);
    rpcpool_response_free(&r);
    fake_close(&f);
}

/* A second answer to a call is a protocol error even after the first was
 * collected (found by tests/fuzz/fuzz_client.c: it used to be handed out
 * again, depending on when the caller read). */
static void test_second_answer(void)
{
    struct fake f;
    FAKE_OPEN(f);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}\n");
    struct rpcpool_response r;
    CU_ASSERT_EQUAL_FATAL(rpcpool_call(f.p, "eth_chainId", NULL, 1000, &r), RPCPOOL_OK);
    CU_ASSERT_EQUAL(r.id, 1);
    rpcpool_response_free(&r);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x2\"}\n");
    CU_ASSERT_EQUAL(rpcpool_call(f.p, "eth_chainId", NULL, 1000, &r), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "two answers to call 1"));
    fake_close(&f);
}

/* A batch answered as an array (in another order), then one rejected as a
 * whole with a null-id error. The answers are written before the call. */
static void test_batch_fake(void)
{
    struct fake f;
    FAKE_OPEN(f);
    fake_write(&f, "[{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32601,\"message\":\"no\"}},"
                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}]\n");
    const char *const methods[] = {"a", "b"};
    struct rpcpool_response r[2];
    CU_ASSERT_EQUAL_FATAL(rpcpool_batch(f.p, 2, methods, NULL, 1000, r), RPCPOOL_OK);
    CU_ASSERT_EQUAL(r[0].id, 1);
    CU_ASSERT_STRING_EQUAL(r[0].result_json, "\"0x1\"");
    CU_ASSERT_EQUAL(r[1].id, 2);
    CU_ASSERT_EQUAL(r[1].is_error, 1);
    CU_ASSERT_EQUAL(r[1].error_code, -32601);
    rpcpool_response_free(&r[0]);
    rpcpool_response_free(&r[1]);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,"
                   "\"message\":\"Invalid Request: batch larger than max_batch\"}}\n");
    CU_ASSERT_EQUAL(rpcpool_batch(f.p, 2, methods, NULL, 1000, r), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "-32600 Invalid Request: batch larger"));
    CU_ASSERT_PTR_NULL(r[0].raw);
    CU_ASSERT_EQUAL(rpcpool_pending(f.p), 0);
    /* The connection still works. */
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":7}\n");
    CU_ASSERT_EQUAL_FATAL(rpcpool_call(f.p, "m", NULL, 1000, r), RPCPOOL_OK);
    CU_ASSERT_STRING_EQUAL(r[0].result_json, "7");
    rpcpool_response_free(&r[0]);
    CU_ASSERT_EQUAL(rpcpool_batch(f.p, 0, methods, NULL, 1000, r), RPCPOOL_ERROR);
    fake_close(&f);
}

/* A call that timed out is abandoned: its late answer is dropped. */
static void test_abandoned(void)
{
    struct fake f;
    FAKE_OPEN(f);
    struct rpcpool_response r;
    CU_ASSERT_EQUAL(rpcpool_call(f.p, "slow", NULL, 0, &r), RPCPOOL_TIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "slow"));
    uint64_t id;
    rpcpool_send(f.p, "fast", NULL, &id);
    CU_ASSERT_EQUAL(id, 2);
    CU_ASSERT_EQUAL(rpcpool_pending(f.p), 2);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"late\"}\n"
                   "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":\"ok\"}\n");
    CU_ASSERT_EQUAL_FATAL(rpcpool_wait(f.p, 2, 1000, &r), RPCPOOL_OK);
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL(rpcpool_next_response(f.p, &r), 0);
    CU_ASSERT_EQUAL(rpcpool_pending(f.p), 0);
    fake_close(&f);
}

/* The server goes away: answers received before stay collectable, then a
 * clear error. */
static void test_server_closes(void)
{
    struct fake f;
    FAKE_OPEN(f);
    uint64_t a, b, c;
    rpcpool_send(f.p, "m", NULL, &a);
    rpcpool_send(f.p, "m", NULL, &b);
    rpcpool_send(f.p, "m", NULL, &c);
    fake_received(&f);
    fake_write(&f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1}\n"
                   "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                   "\"message\":\"Parse error\"}}\n");
    close(f.sfd);
    f.sfd = -1;
    struct rpcpool_response r;
    CU_ASSERT_EQUAL(rpcpool_wait(f.p, b, 1000, &r), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "closed by rpcpoold"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "2 call(s) unanswered"));
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "-32700 Parse error"));
    CU_ASSERT_EQUAL_FATAL(rpcpool_wait(f.p, a, 1000, &r), RPCPOOL_OK);
    CU_ASSERT_STRING_EQUAL(r.result_json, "1");
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(rpcpool_next_response(f.p, &r), 1); /* the null-id error */
    CU_ASSERT_EQUAL(r.id, 0);
    CU_ASSERT_EQUAL(r.error_code, -32700);
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", NULL, &a), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_read(f.p), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_flush(f.p), RPCPOOL_ERROR);
    fake_close(&f);
}

/* Lines that are not JSON-RPC answers fail the connection with a message. */
static void test_garbage_lines(void)
{
    static const char *const lines[] = {
        "hello\n",
        "42\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1}\n",
        "{\"jsonrpc\":\"2.0\",\"result\":1}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"result\":1}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":7}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1} x\n",
        "{\"id\":1,\"result\":[1,2}\n",
        "{\"id\":1,\"result\":\"\\q\"}\n",
        "[1,2]\n",
        "{\"id\":1,\"result\":1}{\"id\":1,\"result\":1}\n",
        "{\"id\":18446744073709551616,\"result\":1}\n",
        "{\"id\":2,\"result\":1}\n",                          /* never sent */
        "{\"id\":1,\"result\":1}\n{\"id\":1,\"result\":2}\n", /* answered twice */
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct fake f;
        FAKE_OPEN(f);
        uint64_t id;
        rpcpool_send(f.p, "m", NULL, &id);
        fake_received(&f);
        fake_write(&f, lines[i]);
        struct rpcpool_response r;
        int rc = rpcpool_wait(f.p, 1, 1000, &r);
        if (rc == RPCPOOL_OK) { /* the duplicate case: the first is fine */
            rpcpool_response_free(&r);
            rc = rpcpool_read(f.p);
            CU_ASSERT_EQUAL(rc, RPCPOOL_ERROR);
        } else {
            CU_ASSERT_EQUAL(rc, RPCPOOL_ERROR);
        }
        if (!strstr(rpcpool_error(f.p), "protocol error"))
            fprintf(stderr, "line %zu: %s\n", i, rpcpool_error(f.p));
        CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "protocol error"));
        CU_ASSERT_EQUAL(rpcpool_send(f.p, "m", NULL, &id), RPCPOOL_ERROR);
        fake_close(&f);
    }
}

/* A line over the limit fails the connection instead of growing memory. */
static void test_long_line(void)
{
    struct fake f;
    FAKE_OPEN(f);
    CU_ASSERT_EQUAL(rpcpool_set_max_line_bytes(f.p, 1024), RPCPOOL_OK);
    uint64_t id;
    rpcpool_send(f.p, "m", NULL, &id);
    fake_received(&f);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fake_write(&f, "{\"id\":1,\"result\":\"");
    fake_write(&f, big);
    struct rpcpool_response r;
    CU_ASSERT_EQUAL(rpcpool_wait(f.p, id, 1000, &r), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(rpcpool_error(f.p), "longer than 1024 bytes"));
    fake_close(&f);
}

/* Pseudo-random bytes (fixed seed) as answer lines: no crash, no leak (the
 * sanitizers watch), and always a clean result. */
static void test_random_bytes(void)
{
    static const char alphabet[] = "{}[]\":,0123456789-.eEtrufalsn \\u\x01\xff"
                                   "idresulterrorcodemessage";
    uint32_t seed = 12345;
    for (int iter = 0; iter < 300; iter++) {
        struct fake f;
        FAKE_OPEN(f);
        uint64_t id;
        rpcpool_send(f.p, "m", NULL, &id);
        fake_received(&f);
        char line[200];
        int n = 1 + (int)(seed % (sizeof line - 2));
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            line[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        line[n] = '\n';
        /* Start most lines like an answer so the parser gets deep. */
        if (iter % 3 != 0)
            memcpy(line, "{\"id\":1,\"", n > 9 ? 9 : (size_t)n);
        if (write(f.sfd, line, (size_t)n + 1) < 0)
            CU_FAIL("write");
        struct rpcpool_response r;
        int rc = rpcpool_wait(f.p, id, 200, &r);
        CU_ASSERT(rc == RPCPOOL_OK || rc == RPCPOOL_ERROR || rc == RPCPOOL_TIMEOUT);
        if (rc == RPCPOOL_OK)
            rpcpool_response_free(&r);
        while (rpcpool_next_response(f.p, &r) == 1)
            rpcpool_response_free(&r);
        fake_close(&f);
    }
}

static void test_quantity(void)
{
    uint64_t v = 7;
    CU_ASSERT_EQUAL(rpcpool_quantity("\"0x7a69\"", &v), RPCPOOL_OK);
    CU_ASSERT_EQUAL(v, 31337);
    CU_ASSERT_EQUAL(rpcpool_quantity(" \"0x0\" ", &v), RPCPOOL_OK);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(rpcpool_quantity("\"0xffffffffffffffff\"", &v), RPCPOOL_OK);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    CU_ASSERT_EQUAL(rpcpool_quantity("\"0x10000000000000000\"", &v), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_quantity("\"0x\"", &v), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_quantity("0x10", &v), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_quantity("\"12\"", &v), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_quantity("\"0xg1\"", &v), RPCPOOL_ERROR);
    CU_ASSERT_EQUAL(rpcpool_quantity(NULL, &v), RPCPOOL_ERROR);
}

/* The stats answer of a fake control socket (a second listener). */
static void test_stats_fake(void)
{
    struct fake f;
    FAKE_OPEN(f);
    /* rpcpool_stats blocks until it has the answer, so answer first: the
     * fake accepts nothing yet, and the kernel queues the connection. Use a
     * child process to play the control socket. */
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(f.lfd, NULL, NULL);
        char cmd[16] = {0};
        ssize_t n = read(c, cmd, sizeof cmd - 1);
        const char *ans =
            n == 6 && memcmp(cmd, "stats\n", 6) == 0
                ? "{\"ok\":true,\"totalPools\":3,\"healthyPools\":2,\"totalConnections\":5,"
                  "\"activeConnections\":1,\"idleConnections\":4,\"failedRequests\":7,"
                  "\"successfulRequests\":120,\"averageLatency\":12.5}\n"
                : "{\"ok\":false,\"error\":\"unexpected command\"}\n";
        if (write(c, ans, strlen(ans)) < 0)
            _exit(1);
        c = accept(f.lfd, NULL, NULL);
        n = read(c, cmd, sizeof cmd - 1);
        ans = "{\"ok\":false,\"error\":\"permission \\\"denied\\\"\"}\n";
        if (write(c, ans, strlen(ans)) < 0)
            _exit(1);
        c = accept(f.lfd, NULL, NULL);
        n = read(c, cmd, sizeof cmd - 1);
        ans = "{\"ok\":true,\"totalPools\":3}\n";
        if (write(c, ans, strlen(ans)) < 0)
            _exit(1);
        _exit(0);
    }
    CU_ASSERT_FATAL(pid > 0);
    struct rpcpool_stats s;
    char err[256];
    CU_ASSERT_EQUAL(rpcpool_stats(f.path, &s, err, sizeof err), RPCPOOL_OK);
    CU_ASSERT_EQUAL(s.total_pools, 3);
    CU_ASSERT_EQUAL(s.healthy_pools, 2);
    CU_ASSERT_EQUAL(s.total_connections, 5);
    CU_ASSERT_EQUAL(s.active_connections, 1);
    CU_ASSERT_EQUAL(s.idle_connections, 4);
    CU_ASSERT_EQUAL(s.failed_requests, 7);
    CU_ASSERT_EQUAL(s.successful_requests, 120);
    CU_ASSERT_DOUBLE_EQUAL(s.average_latency_ms, 12.5, 1e-9);
    CU_ASSERT_EQUAL(rpcpool_stats(f.path, &s, err, sizeof err), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "permission \"denied\""));
    CU_ASSERT_EQUAL(rpcpool_stats(f.path, &s, err, sizeof err), RPCPOOL_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lacks healthyPools"));
    int status = 0;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fake_close(&f);
}

/* ---- live cases (RPCPOOL_TEST_SOCKET) ---------------------------------- */

static const char *live_socket;
static const char *live_control;

static rpcpool_t *live_connect(void)
{
    char err[256];
    rpcpool_t *p = rpcpool_connect(live_socket, err, sizeof err);
    if (!p)
        fprintf(stderr, "connect: %s\n", err);
    return p;
}

/* 1 when R is a result (not an error); else prints the error and 0. */
static int is_result(const struct rpcpool_response *r, const char *what)
{
    if (!r->is_error && r->result_json)
        return 1;
    fprintf(stderr, "%s: unexpected error %" PRId64 ": %s\n", what, r->error_code,
            r->error_message ? r->error_message : "(none)");
    return 0;
}

static uint64_t expected_chain_id(void)
{
    const char *s = getenv("RPCPOOL_TEST_CHAIN_ID");
    return s ? strtoull(s, NULL, 10) : 31337;
}

static void test_live_call(void)
{
    rpcpool_t *p = live_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct rpcpool_response r;
    int rc = rpcpool_call(p, "eth_chainId", NULL, LIVE_TIMEOUT_MS, &r);
    CU_ASSERT_EQUAL_FATAL(rc, RPCPOOL_OK);
    CU_ASSERT(is_result(&r, "eth_chainId"));
    CU_ASSERT_EQUAL(r.id, 1);
    uint64_t v = 0;
    CU_ASSERT_EQUAL(rpcpool_quantity(r.result_json, &v), RPCPOOL_OK);
    CU_ASSERT_EQUAL(v, expected_chain_id());
    CU_ASSERT_PTR_NOT_NULL(strstr(r.raw, "\"id\":1"));
    rpcpool_response_free(&r);
    rc = rpcpool_call(p, "eth_getBalance",
                      "[\"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\", \"latest\"]",
                      LIVE_TIMEOUT_MS, &r);
    CU_ASSERT_EQUAL_FATAL(rc, RPCPOOL_OK);
    CU_ASSERT(is_result(&r, "eth_getBalance"));
    CU_ASSERT(r.result_json && r.result_json[0] == '"');
    rpcpool_response_free(&r);
    rpcpool_close(p);
}

/* The node's own error objects come back untouched, as answers. */
static void test_live_errors(void)
{
    rpcpool_t *p = live_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    struct rpcpool_response r;
    CU_ASSERT_EQUAL_FATAL(rpcpool_call(p, "eth_call", "[\"bad\"]", LIVE_TIMEOUT_MS, &r),
                          RPCPOOL_OK);
    CU_ASSERT_EQUAL(r.is_error, 1);
    CU_ASSERT_EQUAL(r.error_code, -32602);
    CU_ASSERT(r.error_message && r.error_message[0]);
    CU_ASSERT_PTR_NULL(r.result_json);
    rpcpool_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(rpcpool_call(p, "rpcpool_test_no_such_method", NULL, LIVE_TIMEOUT_MS, &r),
                          RPCPOOL_OK);
    CU_ASSERT_EQUAL(r.is_error, 1);
    CU_ASSERT_EQUAL(r.error_code, -32601);
    rpcpool_response_free(&r);
    /* Still usable after errors. */
    CU_ASSERT_EQUAL_FATAL(rpcpool_call(p, "eth_blockNumber", "[]", LIVE_TIMEOUT_MS, &r),
                          RPCPOOL_OK);
    CU_ASSERT(is_result(&r, "eth_blockNumber"));
    rpcpool_response_free(&r);
    rpcpool_close(p);
}

static void test_live_batch(void)
{
    rpcpool_t *p = live_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    const char *const methods[] = {"eth_chainId", "eth_call", "eth_blockNumber", "web3_sha3"};
    const char *const params[] = {NULL, "[\"bad\"]", "[]", "[\"0x01\"]"};
    struct rpcpool_response r[4];
    CU_ASSERT_EQUAL_FATAL(rpcpool_batch(p, 4, methods, params, LIVE_TIMEOUT_MS, r), RPCPOOL_OK);
    uint64_t v = 0;
    CU_ASSERT(is_result(&r[0], "eth_chainId"));
    CU_ASSERT_EQUAL(rpcpool_quantity(r[0].result_json, &v), RPCPOOL_OK);
    CU_ASSERT_EQUAL(v, expected_chain_id());
    CU_ASSERT_EQUAL(r[1].is_error, 1);
    CU_ASSERT_EQUAL(r[1].error_code, -32602);
    CU_ASSERT(is_result(&r[2], "eth_blockNumber"));
    CU_ASSERT_EQUAL(rpcpool_quantity(r[2].result_json, &v), RPCPOOL_OK);
    CU_ASSERT(is_result(&r[3], "web3_sha3") &&
              strcmp(r[3].result_json, "\"0x5fe7f977e71dba2ea1a68e21057beebb9be2ac30c6410aa38d4f3f"
                                       "be41dcffd2\"") == 0);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(r[i].id, (uint64_t)i + 1);
        rpcpool_response_free(&r[i]);
    }
    rpcpool_close(p);
}

#define PIPELINE_N 100

/* 100 calls in flight at once, each with its own answer (web3_sha3 of its
 * index), collected in reverse order and compared with one-by-one calls. */
static void test_live_pipeline(void)
{
    rpcpool_t *p = live_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    static char expect[PIPELINE_N][80];
    for (int i = 0; i < PIPELINE_N; i++) {
        char params[48];
        snprintf(params, sizeof params, "[\"0x%04x\"]", i);
        struct rpcpool_response r;
        CU_ASSERT_EQUAL_FATAL(rpcpool_call(p, "web3_sha3", params, LIVE_TIMEOUT_MS, &r),
                              RPCPOOL_OK);
        CU_ASSERT_FATAL(is_result(&r, "web3_sha3") && strlen(r.result_json) < sizeof expect[i]);
        snprintf(expect[i], sizeof expect[i], "%s", r.result_json);
        rpcpool_response_free(&r);
    }
    uint64_t ids[PIPELINE_N];
    for (int i = 0; i < PIPELINE_N; i++) {
        char params[48];
        snprintf(params, sizeof params, "[\"0x%04x\"]", i);
        CU_ASSERT_EQUAL_FATAL(rpcpool_send(p, "web3_sha3", params, &ids[i]), RPCPOOL_OK);
    }
    CU_ASSERT_EQUAL(rpcpool_pending(p), PIPELINE_N);
    int matched = 0;
    for (int i = PIPELINE_N - 1; i >= 0; i--) {
        struct rpcpool_response r;
        int rc = rpcpool_wait(p, ids[i], LIVE_TIMEOUT_MS, &r);
        CU_ASSERT_EQUAL(rc, RPCPOOL_OK);
        if (rc != RPCPOOL_OK) {
            fprintf(stderr, "wait %" PRIu64 ": %s\n", ids[i], rpcpool_error(p));
            break;
        }
        CU_ASSERT_EQUAL(r.id, ids[i]);
        if (is_result(&r, "pipelined web3_sha3") && strcmp(r.result_json, expect[i]) == 0)
            matched++;
        rpcpool_response_free(&r);
    }
    CU_ASSERT_EQUAL(matched, PIPELINE_N);
    CU_ASSERT_EQUAL(rpcpool_pending(p), 0);
    rpcpool_close(p);
}

/* The caller's own poll() loop: send, flush on POLLOUT, read on POLLIN,
 * collect with rpcpool_next_response(). */
static void test_live_nonblocking(void)
{
    enum { N = 30 };
    rpcpool_t *p = live_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    int seen[N + 1] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t id;
        CU_ASSERT_EQUAL_FATAL(rpcpool_send(p, i % 2 ? "eth_chainId" : "eth_blockNumber", NULL, &id),
                              RPCPOOL_OK);
        CU_ASSERT_EQUAL(id, (uint64_t)i + 1);
    }
    CU_ASSERT(rpcpool_poll_events(p) & POLLOUT);
    int got = 0, rounds = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (got < N) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed_ms > LIVE_TIMEOUT_MS)
            break;
        struct pollfd pfd = {.fd = rpcpool_fd(p), .events = rpcpool_poll_events(p)};
        int rc = poll(&pfd, 1, 100);
        rounds++;
        if (rc <= 0)
            continue;
        if (pfd.revents & POLLOUT)
            CU_ASSERT(rpcpool_flush(p) >= 0);
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (rpcpool_read(p) < 0) {
                fprintf(stderr, "read: %s\n", rpcpool_error(p));
                break;
            }
        }
        struct rpcpool_response r;
        while (rpcpool_next_response(p, &r) == 1) {
            CU_ASSERT(r.id >= 1 && r.id <= N);
            if (r.id >= 1 && r.id <= N) {
                seen[r.id]++;
                CU_ASSERT(is_result(&r, "nonblocking"));
            }
            got++;
            rpcpool_response_free(&r);
        }
    }
    CU_ASSERT_EQUAL(got, N);
    for (int i = 1; i <= N; i++)
        CU_ASSERT_EQUAL(seen[i], 1);
    CU_ASSERT_EQUAL(rpcpool_pending(p), 0);
    CU_ASSERT_EQUAL(rpcpool_poll_events(p), POLLIN);
    printf("nonblocking: %d answers in %d poll rounds\n", got, rounds);
    rpcpool_close(p);
}

static void test_live_stats(void)
{
    if (!live_control) {
        printf("stats: skipped: RPCPOOL_TEST_CONTROL is not set\n");
        return;
    }
    struct rpcpool_stats s;
    char err[256];
    int rc = rpcpool_stats(live_control, &s, err, sizeof err);
    if (rc != RPCPOOL_OK && (strstr(err, "cannot connect") || strstr(err, "refused stats") ||
                             strstr(err, "closed without an answer"))) {
        printf("stats: skipped: the control socket does not answer stats yet: %s\n", err);
        return;
    }
    if (rc != RPCPOOL_OK)
        fprintf(stderr, "stats: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, RPCPOOL_OK);
    printf("stats: pools=%" PRIu64 " healthy=%" PRIu64 " conns=%" PRIu64 " ok=%" PRIu64
           " failed=%" PRIu64 " avg=%.3f ms\n",
           s.total_pools, s.healthy_pools, s.total_connections, s.successful_requests,
           s.failed_requests, s.average_latency_ms);
    CU_ASSERT(s.total_pools >= 1);
    CU_ASSERT(s.healthy_pools <= s.total_pools);
    CU_ASSERT_EQUAL(s.total_connections, s.active_connections + s.idle_connections);
    CU_ASSERT(s.successful_requests >= PIPELINE_N); /* the live cases ran first */
    CU_ASSERT(s.average_latency_ms >= 0.0);
}

int main(void)
{
    static const struct rp_test_case offline[] = {
        {"connect_errors", test_connect_errors},
        {"send_format_and_checks", test_send_format_and_checks},
        {"any_order", test_any_order},
        {"split_line_and_timeout", test_split_line_and_timeout},
        {"error_answer", test_error_answer},
        {"second_answer", test_second_answer},
        {"batch_fake", test_batch_fake},
        {"abandoned", test_abandoned},
        {"server_closes", test_server_closes},
        {"garbage_lines", test_garbage_lines},
        {"long_line", test_long_line},
        {"random_bytes", test_random_bytes},
        {"quantity", test_quantity},
        {"stats_fake", test_stats_fake},
        {NULL, NULL},
    };
    static const struct rp_test_case live[] = {
        {"live_call", test_live_call},
        {"live_errors", test_live_errors},
        {"live_batch", test_live_batch},
        {"live_pipeline", test_live_pipeline},
        {"live_nonblocking", test_live_nonblocking},
        {"live_stats", test_live_stats},
        {NULL, NULL},
    };
    live_socket = getenv("RPCPOOL_TEST_SOCKET");
    live_control = getenv("RPCPOOL_TEST_CONTROL");
    if (live_socket && *live_socket)
        return rp_test_run("client_live", live);
    printf("client: live cases skipped (RPCPOOL_TEST_SOCKET not set; "
           "tests/integration/packaging.test.js runs them against rpcpoold)\n");
    return rp_test_run("client", offline);
}
