/* test_h1.c - the pure parts of the native HTTP/1.1 upstream client
 * (src/worker/h1.c): URL splitting, the request head, and the response reader
 * driven with every input split byte by byte (and whole).
 *
 * src/worker/h1.c also holds the worker side, which refers to the worker's
 * globals; this test links h1.c with buf.c and timer.c (TEST_DEPS_h1) and
 * gives the worker symbols inert definitions that fail the test if called.
 */
#include <stdlib.h>
#include <string.h>

#include "rp_h1.h"
#include "rp_test.h"

/* ---- URL ---- */

static void test_url(void)
{
    struct rp_h1_url u;
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://127.0.0.1:8545", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.host, "127.0.0.1");
    CU_ASSERT_EQUAL(u.port, 8545);
    CU_ASSERT_STRING_EQUAL(u.hostport, "127.0.0.1:8545");
    CU_ASSERT_EQUAL(u.target_len, 0);
    CU_ASSERT_EQUAL(u.has_userinfo, 0);

    CU_ASSERT_EQUAL(rp_h1_url_parse("HTTP://node.example/v3/KEY?x=1&y=2#frag", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.host, "node.example");
    CU_ASSERT_EQUAL(u.port, 80);
    CU_ASSERT_STRING_EQUAL(u.hostport, "node.example");
    CU_ASSERT_EQUAL(u.target_len, strlen("/v3/KEY?x=1&y=2"));
    CU_ASSERT_NSTRING_EQUAL(u.target, "/v3/KEY?x=1&y=2", u.target_len);

    /* explicit default port: not repeated in Host */
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://localhost:80/", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.hostport, "localhost");
    CU_ASSERT_NSTRING_EQUAL(u.target, "/", u.target_len);

    CU_ASSERT_EQUAL(rp_h1_url_parse("http://[::1]:8545/rpc", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.host, "::1");
    CU_ASSERT_STRING_EQUAL(u.hostport, "[::1]:8545");
    CU_ASSERT_EQUAL(u.port, 8545);

    CU_ASSERT_EQUAL(rp_h1_url_parse("http://user:pw@h:81?q", &u), 0);
    CU_ASSERT_EQUAL(u.has_userinfo, 1);
    CU_ASSERT_STRING_EQUAL(u.host, "h");
    CU_ASSERT_EQUAL(u.port, 81);
    CU_ASSERT_NSTRING_EQUAL(u.target, "?q", u.target_len);

    CU_ASSERT_EQUAL(rp_h1_url_parse("https://node.example/v3/K", &u), 0);
    CU_ASSERT_EQUAL(u.tls, 1);
    CU_ASSERT_EQUAL(u.port, 443);
    CU_ASSERT_STRING_EQUAL(u.hostport, "node.example");
    CU_ASSERT_NSTRING_EQUAL(u.target, "/v3/K", u.target_len);
    CU_ASSERT_EQUAL(rp_h1_url_parse("HTTPS://localhost:443", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.hostport, "localhost");
    CU_ASSERT_EQUAL(rp_h1_url_parse("https://localhost:8443/", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.hostport, "localhost:8443");
    CU_ASSERT_EQUAL(u.tls, 1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://h:443/", &u), 0);
    CU_ASSERT_STRING_EQUAL(u.hostport, "h:443");
    CU_ASSERT_EQUAL(u.tls, 0);
    /* WebSocket URLs (a head feed's ws_url) take http's form */
    CU_ASSERT_EQUAL(rp_h1_url_parse("wss://mainnet.example/ws/v3/K?x=1", &u), 0);
    CU_ASSERT_EQUAL(u.tls, 1);
    CU_ASSERT_EQUAL(u.port, 443);
    CU_ASSERT_STRING_EQUAL(u.hostport, "mainnet.example");
    CU_ASSERT_NSTRING_EQUAL(u.target, "/ws/v3/K?x=1", u.target_len);
    CU_ASSERT_EQUAL(rp_h1_url_parse("WS://[::1]:8546", &u), 0);
    CU_ASSERT_EQUAL(u.tls, 0);
    CU_ASSERT_EQUAL(u.port, 8546);
    CU_ASSERT_STRING_EQUAL(u.host, "::1");
    CU_ASSERT_STRING_EQUAL(u.hostport, "[::1]:8546");
    CU_ASSERT_NSTRING_EQUAL(u.target, "/", u.target_len);
    CU_ASSERT_EQUAL(rp_h1_url_parse("wsx://h/", &u), -1);

    CU_ASSERT_EQUAL(rp_h1_url_parse("ftp://h/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("https://", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://:80/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://h:0/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://h:65536/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://h:8a/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://h:/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://h/a b", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse("http://[::1/", &u), -1);
    CU_ASSERT_EQUAL(rp_h1_url_parse(NULL, &u), -1);
}

/* ---- request head ---- */

static void test_request_head(void)
{
    struct rp_h1_url u;
    CU_ASSERT_EQUAL_FATAL(rp_h1_url_parse("http://127.0.0.1:8545/v3/KEY?a=1", &u), 0);
    char *hdrs[] = {"Authorization: Bearer T", "X-Custom: 1"};
    size_t len = 0;
    char *head = rp_h1_request_head(&u, hdrs, 2, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    const char *want = "POST /v3/KEY?a=1 HTTP/1.1\r\n"
                       "Host: 127.0.0.1:8545\r\n"
                       "Content-Type: application/json\r\n"
                       "Authorization: Bearer T\r\n"
                       "X-Custom: 1\r\n";
    CU_ASSERT_EQUAL(len, strlen(want));
    CU_ASSERT_STRING_EQUAL(head, want);
    free(head);

    /* an empty path is "/"; a query alone gets one; configured Host and
     * Content-Type replace rpcpool's own */
    CU_ASSERT_EQUAL_FATAL(rp_h1_url_parse("http://h?k=v", &u), 0);
    char *over[] = {"host: other", "Content-Type: application/json; charset=utf-8"};
    head = rp_h1_request_head(&u, over, 2, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    CU_ASSERT_STRING_EQUAL(head, "POST /?k=v HTTP/1.1\r\n"
                                 "host: other\r\n"
                                 "Content-Type: application/json; charset=utf-8\r\n");
    free(head);

    CU_ASSERT_EQUAL_FATAL(rp_h1_url_parse("http://h", &u), 0);
    head = rp_h1_request_head(&u, NULL, 0, &len);
    CU_ASSERT_STRING_EQUAL(head, "POST / HTTP/1.1\r\nHost: h\r\n"
                                 "Content-Type: application/json\r\n");
    free(head);

    /* user info becomes Basic authorization (escapes decoded) unless a
     * configured header sets Authorization */
    CU_ASSERT_EQUAL_FATAL(rp_h1_url_parse("https://user:p%40ss@h/x", &u), 0);
    head = rp_h1_request_head(&u, NULL, 0, &len);
    CU_ASSERT_STRING_EQUAL(head, "POST /x HTTP/1.1\r\nHost: h\r\n"
                                 "Content-Type: application/json\r\n"
                                 "Authorization: Basic dXNlcjpwQHNz\r\n");
    free(head);
    char *auth[] = {"authorization: Bearer T"};
    head = rp_h1_request_head(&u, auth, 1, &len);
    CU_ASSERT_STRING_EQUAL(head, "POST /x HTTP/1.1\r\nHost: h\r\n"
                                 "Content-Type: application/json\r\n"
                                 "authorization: Bearer T\r\n");
    free(head);

    char cl[48];
    size_t n = rp_h1_content_length(cl, sizeof cl, 1234567);
    CU_ASSERT_EQUAL(n, strlen("Content-Length: 1234567\r\n\r\n"));
    CU_ASSERT_STRING_EQUAL(cl, "Content-Length: 1234567\r\n\r\n");
    n = rp_h1_content_length(cl, sizeof cl, 0);
    CU_ASSERT_STRING_EQUAL(cl, "Content-Length: 0\r\n\r\n");
}

/* ---- response reader ---- */

struct outcome {
    enum rp_h1_resp_state st;
    long status;
    long retry_after_s;
    int keep_alive;
    size_t used_total;
    char body[256];
    size_t body_len;
};

/* Feed IN in pieces of STEP bytes (0: whole), then EOF when CLOSE and the
 * response is not complete. */
static struct outcome run(const char *in, size_t len, size_t step, size_t max_body, int close)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    struct rp_buf body = RP_BUF_INIT;
    struct rp_h1_resp r;
    rp_h1_resp_init(&r, &body, max_body);
    enum rp_h1_resp_state st = RP_H1_RESP_MORE;
    size_t off = 0;
    while (off < len && st == RP_H1_RESP_MORE) {
        size_t n = step ? (len - off < step ? len - off : step) : len - off;
        size_t used = 0;
        st = rp_h1_resp_feed(&r, in + off, n, &used);
        o.used_total += used;
        off += n;
    }
    if (st == RP_H1_RESP_DONE && off < len) /* bytes the last feed left */
        st = rp_h1_resp_feed(&r, in + off, len - off, NULL);
    if (st == RP_H1_RESP_MORE && close)
        st = rp_h1_resp_eof(&r);
    o.st = st;
    o.status = r.status;
    o.retry_after_s = r.retry_after_s;
    o.keep_alive = r.keep_alive;
    o.body_len = body.len;
    if (body.len && body.len < sizeof o.body)
        memcpy(o.body, body.data, body.len);
    rp_buf_free(&body);
    return o;
}

/* Check IN whole and split at every byte give the same outcome. */
static void check(const char *in, size_t max_body, int close, enum rp_h1_resp_state st, long status,
                  int keep_alive, const char *body)
{
    size_t len = strlen(in);
    for (size_t step = 0; step <= 3; step++) {
        struct outcome o = run(in, len, step, max_body, close);
        CU_ASSERT_EQUAL(o.st, st);
        if (o.st != st)
            fprintf(stderr, "\nstep %zu: state %d, want %d for %.40s\n", step, (int)o.st, (int)st,
                    in);
        CU_ASSERT_EQUAL(o.status, status);
        if (st == RP_H1_RESP_DONE) {
            CU_ASSERT_EQUAL(o.keep_alive, keep_alive);
            CU_ASSERT_EQUAL(o.body_len, strlen(body));
            CU_ASSERT_NSTRING_EQUAL(o.body, body, strlen(body));
        }
    }
}

static void test_content_length(void)
{
    check("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          "{\"a\":\"bcd\"}",
          1000, 0, RP_H1_RESP_DONE, 200, 1, "{\"a\":\"bcd\"}");
    /* no body at all */
    check("HTTP/1.1 204 No Content\r\n\r\n", 1000, 0, RP_H1_RESP_DONE, 204, 1, "");
    check("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1000, 0, RP_H1_RESP_DONE, 200, 1, "");
    /* an error status is a response read whole, too */
    check("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom", 1000, 0,
          RP_H1_RESP_DONE, 500, 1, "boom");
    /* a body exactly at the limit is fine */
    check("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcde", 5, 0, RP_H1_RESP_DONE, 200, 1,
          "abcde");
}

static void test_chunked(void)
{
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "4\r\n{\"a\"\r\n6;ext=1\r\n:\"bcd\"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n",
          1000, 0, RP_H1_RESP_DONE, 200, 1, "{\"a\":\"bcd\"}");
    /* chunked and Content-Length together: smuggling shape, refused */
    check("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
          "3\r\nabc\r\n0\r\n\r\n",
          1000, 0, RP_H1_RESP_MALFORMED, 0, 0, "");
    /* bad chunk size */
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1000, 0,
          RP_H1_RESP_MALFORMED, 200, 0, "");
}

static void test_interim(void)
{
    check("HTTP/1.1 100 Continue\r\n\r\n"
          "HTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
          1000, 0, RP_H1_RESP_DONE, 200, 1, "ok");
    /* an interim response alone is not the answer */
    check("HTTP/1.1 100 Continue\r\n\r\n", 1000, 1, RP_H1_RESP_TRUNCATED, 0, 0, "");
}

static void test_keep_alive(void)
{
    check("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 1000, 0,
          RP_H1_RESP_DONE, 200, 0, "ok");
    check("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 1000, 0, RP_H1_RESP_DONE, 200, 0, "ok");
    check("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 1000, 0,
          RP_H1_RESP_DONE, 200, 1, "ok");
    /* HTTP/1.0 without a length: the body ends when the server closes */
    check("HTTP/1.0 200 OK\r\n\r\n{\"x\":1}", 1000, 1, RP_H1_RESP_DONE, 200, 0, "{\"x\":1}");
    check("HTTP/1.1 200 OK\r\n\r\n{\"x\":1}", 1000, 1, RP_H1_RESP_DONE, 200, 0, "{\"x\":1}");
    /* bytes after the response: answered, but the connection is not kept */
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n";
    struct outcome o = run(two, strlen(two), 0, 1000, 0);
    CU_ASSERT_EQUAL(o.st, RP_H1_RESP_DONE);
    CU_ASSERT_EQUAL(o.keep_alive, 0);
    CU_ASSERT_EQUAL(o.body_len, 2);
    CU_ASSERT(o.used_total < strlen(two));
    /* a Content-Length smaller than what follows: the same */
    const char *shortcl = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{\"a\":1}";
    o = run(shortcl, strlen(shortcl), 0, 1000, 0);
    CU_ASSERT_EQUAL(o.st, RP_H1_RESP_DONE);
    CU_ASSERT_EQUAL(o.keep_alive, 0);
    CU_ASSERT_EQUAL(o.body_len, 3);
}

static void test_retry_after(void)
{
    struct outcome o;
    const char *in =
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n";
    for (size_t step = 0; step <= 2; step++) {
        o = run(in, strlen(in), step, 100, 0);
        CU_ASSERT_EQUAL(o.st, RP_H1_RESP_DONE);
        CU_ASSERT_EQUAL(o.status, 429);
        CU_ASSERT_EQUAL(o.retry_after_s, 7);
    }
    /* any case, surrounding blanks; the last header of the head */
    in = "HTTP/1.1 429 x\r\nContent-Length: 0\r\nrEtRy-AfTeR:   12  \r\n\r\n";
    o = run(in, strlen(in), 1, 100, 0);
    CU_ASSERT_EQUAL(o.retry_after_s, 12);
    /* HTTP-date form, zero, absurd values and look-alike names: ignored */
    const char *ignored[] = {
        "HTTP/1.1 429 x\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 429 x\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 429 x\r\nRetry-After: 99999999999999999999\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 429 x\r\nRetry-After-X: 5\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 429 x\r\nX-Retry-After: 5\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 429 x\r\nRetry-Afte: 5\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        o = run(ignored[i], strlen(ignored[i]), 1, 100, 0);
        CU_ASSERT_EQUAL(o.st, RP_H1_RESP_DONE);
        CU_ASSERT_EQUAL(o.retry_after_s, 0);
    }
    /* an interim response's header does not leak into the final one */
    in = "HTTP/1.1 103 Early\r\nRetry-After: 3\r\n\r\nHTTP/1.1 429 x\r\nContent-Length: 0\r\n\r\n";
    o = run(in, strlen(in), 1, 100, 0);
    CU_ASSERT_EQUAL(o.status, 429);
    CU_ASSERT_EQUAL(o.retry_after_s, 0);
}

static void test_too_large(void)
{
    check("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef", 5, 0, RP_H1_RESP_TOO_LARGE, 200, 0,
          "");
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
          5, 0, RP_H1_RESP_TOO_LARGE, 200, 0, "");
    check("HTTP/1.0 200 OK\r\n\r\nabcdef", 5, 1, RP_H1_RESP_TOO_LARGE, 200, 0, "");
}

static void test_truncated_and_malformed(void)
{
    /* Content-Length larger than what came before the close */
    check("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\"", 1000, 1, RP_H1_RESP_TRUNCATED,
          200, 0, "");
    /* closed in the middle of the head, or before a byte */
    check("HTTP/1.1 200 OK\r\nContent-Le", 1000, 1, RP_H1_RESP_TRUNCATED, 0, 0, "");
    check("", 1000, 1, RP_H1_RESP_TRUNCATED, 0, 0, "");
    /* a chunked body cut short */
    check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1000, 1,
          RP_H1_RESP_TRUNCATED, 200, 0, "");
    /* not HTTP */
    check("<html>502 Bad Gateway</html>\r\n", 1000, 1, RP_H1_RESP_MALFORMED, 0, 0, "");
    check("HTTP/1.1 2x0 OK\r\n\r\n", 1000, 1, RP_H1_RESP_MALFORMED, 0, 0, "");
    /* a status of fewer than three digits (found by fuzz_upstream) */
    check("HTTP/1.0 20 OK\r\nContent-Length: 2\r\n\r\n{}", 1000, 1, RP_H1_RESP_MALFORMED, 0, 0, "");
    check("SSH-2.0-OpenSSH_9.2\r\n", 1000, 1, RP_H1_RESP_MALFORMED, 0, 0, "");
    /* a protocol switch nobody asked for */
    check("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
          1000, 0, RP_H1_RESP_MALFORMED, 0, 0, "");
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"url", test_url},
        {"request head", test_request_head},
        {"Content-Length bodies", test_content_length},
        {"chunked bodies", test_chunked},
        {"1xx interim responses", test_interim},
        {"keep-alive rules", test_keep_alive},
        {"Retry-After", test_retry_after},
        {"max_response_bytes", test_too_large},
        {"truncated and malformed", test_truncated_and_malformed},
        {NULL, NULL},
    };
    return rp_test_run("h1", cases);
}
