/* test_http.c - the pure parts of the HTTP front (rp_http.h): detection of
 * an HTTP client by its first bytes, the paused request parser driven with
 * inputs split at every byte boundary (pipelining, chunked bodies,
 * 100-continue, keep-alive rules, smuggling, size limits), routing, and the
 * formatting of response heads and the /health body.
 *
 * A small driver plays the role of conn.c: it keeps a buffer of unparsed
 * bytes, feeds it after every arrival and writes each event it gets into a
 * transcript string, which the tests compare whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp_breaker.h"
#include "rp_http.h"
#include "rp_test.h"

/* ------------------------------------------------------------------ */
/* driver                                                              */
/* ------------------------------------------------------------------ */

struct drive {
    struct rp_http_parser hp;
    char buf[1 << 16];
    size_t len;
    char log[1 << 16];
    size_t log_len;
    int dead;
};

static void logf_(struct drive *d, const char *fmt, const char *a, size_t alen, long n)
{
    int w = snprintf(d->log + d->log_len, sizeof d->log - d->log_len, fmt, (int)alen, a, n);
    if (w > 0 && (size_t)w < sizeof d->log - d->log_len)
        d->log_len += (size_t)w;
}

static void drive_init(struct drive *d, size_t max_body)
{
    memset(d, 0, sizeof *d);
    rp_http_parser_init(&d->hp, max_body);
}

/* Parse everything buffered; log each event. */
static void drive_run(struct drive *d)
{
    size_t off = 0;
    for (int guard = 0; guard < 10000 && !d->dead; guard++) {
        size_t used = 0;
        enum rp_http_event ev = rp_http_parser_feed(&d->hp, d->buf + off, d->len - off, &used);
        CU_ASSERT_FATAL(used <= d->len - off);
        off += used;
        struct rp_http_msg *m = &d->hp.msg;
        if (ev == RP_HTTP_NEED_MORE) {
            CU_ASSERT(off == d->len);
            break;
        }
        if (ev == RP_HTTP_HEADERS) {
            logf_(d, "H[%.*s cont=%ld]", m->url, strlen(m->url), (long)m->expect_continue);
            continue;
        }
        if (ev == RP_HTTP_MESSAGE) {
            logf_(d, "M[%.*s ka=%ld]", m->body ? m->body : "", m->body_len, (long)m->keep_alive);
            rp_http_parser_trim(&d->hp);
            continue;
        }
        logf_(d, "E[%.*s%ld]", "", 0, (long)d->hp.error_status);
        d->dead = 1;
    }
    memmove(d->buf, d->buf + off, d->len - off);
    d->len -= off;
}

static void drive_add(struct drive *d, const char *data, size_t n)
{
    CU_ASSERT_FATAL(d->len + n <= sizeof d->buf);
    memcpy(d->buf + d->len, data, n);
    d->len += n;
    drive_run(d);
}

/* The transcript of INPUT fed whole into a fresh parser. */
static void transcript(const char *input, size_t n, size_t max_body, char *out, size_t cap)
{
    struct drive *d = malloc(sizeof *d);
    CU_ASSERT_FATAL(d != NULL);
    drive_init(d, max_body);
    drive_add(d, input, n);
    snprintf(out, cap, "%.*s", (int)d->log_len, d->log);
    rp_http_parser_free(&d->hp);
    free(d);
}

/* Feed INPUT split at every single boundary (two pieces), and one byte at
 * a time; every transcript must equal WANT. */
static void check_splits(const char *input, size_t max_body, const char *want)
{
    size_t n = strlen(input);
    struct drive *d = malloc(sizeof *d);
    CU_ASSERT_FATAL(d != NULL);
    char whole[4096];
    transcript(input, n, max_body, whole, sizeof whole);
    CU_ASSERT_STRING_EQUAL(whole, want);
    if (strcmp(whole, want) != 0)
        fprintf(stderr, "\n  got:  %s\n  want: %s\n", whole, want);
    for (size_t cut = 1; cut < n; cut++) {
        drive_init(d, max_body);
        drive_add(d, input, cut);
        drive_add(d, input + cut, n - cut);
        d->log[d->log_len] = '\0';
        CU_ASSERT_STRING_EQUAL(d->log, want);
        if (strcmp(d->log, want) != 0) {
            fprintf(stderr, "\n  cut at %zu: got %s\n", cut, d->log);
            rp_http_parser_free(&d->hp);
            break;
        }
        rp_http_parser_free(&d->hp);
    }
    drive_init(d, max_body);
    for (size_t i = 0; i < n; i++)
        drive_add(d, input + i, 1);
    d->log[d->log_len] = '\0';
    CU_ASSERT_STRING_EQUAL(d->log, want);
    rp_http_parser_free(&d->hp);
    free(d);
}

/* ------------------------------------------------------------------ */
/* detection                                                           */
/* ------------------------------------------------------------------ */

static void test_detect(void)
{
    CU_ASSERT_EQUAL(rp_http_detect("POST / HTTP/1.1\r\n", 17), RP_HTTP_DETECT_YES);
    CU_ASSERT_EQUAL(rp_http_detect("GET ", 4), RP_HTTP_DETECT_YES);
    CU_ASSERT_EQUAL(rp_http_detect("HEAD /", 6), RP_HTTP_DETECT_YES);
    CU_ASSERT_EQUAL(rp_http_detect("OPTIONS *", 9), RP_HTTP_DETECT_YES);
    CU_ASSERT_EQUAL(rp_http_detect("DELETE /x", 9), RP_HTTP_DETECT_YES);
    CU_ASSERT_EQUAL(rp_http_detect("PUT /", 5), RP_HTTP_DETECT_YES);
    /* prefixes wait for more */
    CU_ASSERT_EQUAL(rp_http_detect("", 0), RP_HTTP_DETECT_MORE);
    CU_ASSERT_EQUAL(rp_http_detect("P", 1), RP_HTTP_DETECT_MORE);
    CU_ASSERT_EQUAL(rp_http_detect("PO", 2), RP_HTTP_DETECT_MORE);
    CU_ASSERT_EQUAL(rp_http_detect("POST", 4), RP_HTTP_DETECT_MORE);
    CU_ASSERT_EQUAL(rp_http_detect("OPTION", 6), RP_HTTP_DETECT_MORE);
    /* JSON and anything else is IPC */
    CU_ASSERT_EQUAL(rp_http_detect("{\"jsonrpc\"", 10), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect("[{}]", 4), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect(" GET /", 6), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect("\n", 1), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect("post / HTTP/1.1", 15), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect("POSTX / ", 8), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect("GETS", 4), RP_HTTP_DETECT_NO);
    CU_ASSERT_EQUAL(rp_http_detect("42", 2), RP_HTTP_DETECT_NO);
}

/* ------------------------------------------------------------------ */
/* the parser                                                          */
/* ------------------------------------------------------------------ */

#define BODY "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\"}"
#define CL_POST(b)                                                                                 \
    "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: "     \
    "51\r\n\r\n" b

static void test_simple_post(void)
{
    CU_ASSERT_EQUAL(strlen(BODY), 51);
    check_splits(CL_POST(BODY), 1 << 20, "H[/ cont=0]M[" BODY " ka=1]");
}

static void test_pipelined(void)
{
    const char *in = CL_POST(BODY) "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" CL_POST(
        BODY) "GET /metrics?x=1 HTTP/1.1\r\n\r\n";
    check_splits(in, 1 << 20,
                 "H[/ cont=0]M[" BODY " ka=1]H[/health cont=0]M[ ka=1]H[/ cont=0]M[" BODY
                 " ka=1]H[/metrics?x=1 cont=0]M[ ka=1]");
}

static void test_chunked(void)
{
    const char *in = "POST /rpc HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\n{\"a\":\r\n"
                     "3;ext=1\r\n1}\n\r\n"
                     "0\r\nX-Trailer: yes\r\n\r\n"
                     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\n[]\r\n0\r\n\r\n";
    check_splits(in, 1 << 20, "H[/rpc cont=0]M[{\"a\":1}\n ka=1]H[/ cont=0]M[[] ka=1]");
}

static void test_expect_continue(void)
{
    const char *in = "POST / HTTP/1.1\r\nExpect: 100-Continue \r\nContent-Length: 2\r\n\r\n{}";
    check_splits(in, 1 << 20, "H[/ cont=1]M[{} ka=1]");
    /* an empty header value before it does not hide it */
    check_splits(
        "POST / HTTP/1.1\r\nX-Empty:\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
        1 << 20, "H[/ cont=1]M[{} ka=1]");
    check_splits("POST / HTTP/1.1\r\nX-Empty: \r\nContent-Length: 2\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n{}",
                 1 << 20, "E[400]");
    /* HTTP/1.0 clients do not wait for 100 */
    check_splits("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", 1 << 20,
                 "H[/ cont=0]M[{} ka=0]");
    /* another expectation: 417 */
    check_splits("POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 2\r\n\r\n{}", 1 << 20,
                 "E[417]");
}

static void test_keep_alive_rules(void)
{
    check_splits("GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 100,
                 "H[/health cont=0]M[ ka=0]");
    check_splits("GET /health HTTP/1.0\r\n\r\n", 100, "H[/health cont=0]M[ ka=0]");
    check_splits("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 100,
                 "H[/health cont=0]M[ ka=1]");
    check_splits("GET /health HTTP/1.1\r\nConnection: Keep-Alive, foo\r\n\r\n", 100,
                 "H[/health cont=0]M[ ka=1]");
}

static void test_smuggling(void)
{
    /* both framings: refused whatever their order */
    check_splits("POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "0\r\n\r\n",
                 1 << 20, "E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
                 "0\r\n\r\n",
                 1 << 20, "E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd",
                 1 << 20, "E[400]");
    /* two different lengths */
    check_splits("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 1 << 20,
                 "E[400]");
    /* a transfer coding that does not end in chunked on a request */
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n{}", 1 << 20, "E[400]");
    /* an obs-fold and a space before the colon are not accepted as framing */
    check_splits("POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}", 1 << 20, "E[400]");
    /* garbage in a chunk size */
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1 << 20,
                 "H[/ cont=0]E[400]");
    /* a second request after a good one is still parsed: the error is its own */
    check_splits("GET /health HTTP/1.1\r\n\r\nBLAH\r\n\r\n", 1 << 20,
                 "H[/health cont=0]M[ ka=1]E[400]");
}

/* RFC 9112 framing that libhttp-parser lets through: refused with 400. */
static void test_strict_framing(void)
{
    /* obs-fold, in Transfer-Encoding and in any other header or trailer */
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 1 << 20,
                 "E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: gzip,\r\n\tchunked\r\n\r\n0\r\n\r\n",
                 1 << 20, "E[400]");
    check_splits("GET /health HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", 100, "E[400]");
    check_splits("GET /health HTTP/1.1\r\n X-A: 1\r\n\r\n", 100, "E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
                 "X-T: a\r\n b\r\n\r\n",
                 1 << 20, "H[/ cont=0]E[400]");
    /* bare LF (and bare CR) line endings */
    check_splits("GET /health HTTP/1.1\nHost: x\n\n", 100, "E[400]");
    check_splits("GET /health HTTP/1.1\r\nHost: x\n\r\n", 100, "E[400]");
    check_splits("GET /health HTTP/1.1\r\nHost: x\r\n\n", 100, "E[400]");
    check_splits("GET /health HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", 100, "E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n", 1 << 20,
                 "H[/ cont=0]E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\n0\r\n\r\n", 1 << 20,
                 "H[/ cont=0]E[400]");
    /* chunked (any Transfer-Encoding) with HTTP/1.0 */
    check_splits("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                 1 << 20, "E[400]");
    /* absurd chunk sizes: 17 digits or more, leading zeros included */
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000002\r\n{}\r\n"
                 "0\r\n\r\n",
                 1 << 20, "H[/ cont=0]M[{} ka=1]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000002\r\n{}\r\n"
                 "0\r\n\r\n",
                 1 << 20, "H[/ cont=0]E[400]");
    {
        const char *pre = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        size_t n = strlen(pre);
        char *in = malloc(n + 5000 + 32);
        CU_ASSERT_FATAL(in != NULL);
        memcpy(in, pre, n);
        memset(in + n, '0', 5000);
        strcpy(in + n + 5000, "2\r\n{}\r\n0\r\n\r\n");
        char out[256];
        transcript(in, strlen(in), 1 << 20, out, sizeof out);
        CU_ASSERT_STRING_EQUAL(out, "H[/ cont=0]E[400]");
        free(in);
    }
    /* bytes libhttp-parser would read as digits of the size */
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1a\x87\r\n{}\r\n0\r\n\r\n",
                 1 << 20, "H[/ cont=0]E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\x87\r\n{}\r\n0\r\n\r\n",
                 1 << 20, "H[/ cont=0]E[400]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 ;a=b\r\n{}\r\n0\r\n\r\n",
                 1 << 20, "H[/ cont=0]M[{} ka=1]");
    /* chunk extensions: allowed, bounded */
    {
        const char *pre = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=";
        size_t n = strlen(pre);
        char *in = malloc(n + RP_HTTP_CHUNK_EXT_MAX + 32);
        CU_ASSERT_FATAL(in != NULL);
        memcpy(in, pre, n);
        memset(in + n, 'a', RP_HTTP_CHUNK_EXT_MAX);
        strcpy(in + n + RP_HTTP_CHUNK_EXT_MAX, "\r\n{}\r\n0\r\n\r\n");
        char out[256];
        transcript(in, strlen(in), 1 << 20, out, sizeof out);
        CU_ASSERT_STRING_EQUAL(out, "H[/ cont=0]E[400]");
        free(in);
    }
    /* what stays accepted: an empty line before the request line, trailers,
     * and pipelined requests after a Content-Length body */
    check_splits("\r\nGET /health HTTP/1.1\r\n\r\n", 100, "H[/health cont=0]M[ ka=1]");
    check_splits("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /health HTTP/1.1\r\n\r\n", 100,
                 "H[/ cont=0]M[{} ka=1]H[/health cont=0]M[ ka=1]");
}

static void test_malformed(void)
{
    check_splits("GET / HTTP/9.9\r\n\r\n", 100, "E[400]");
    check_splits("GET /\r\n\r\n", 100, "E[400]");
    check_splits("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 100, "E[400]");
    check_splits("POST / HTTP/1.1\r\nBad Header\r\n\r\n", 100, "E[400]");
    check_splits("POST / HTTP/1.1\r\nHost: a\r\n\r\n", 100, "H[/ cont=0]M[ ka=1]");
}

static void test_body_limits(void)
{
    /* Content-Length over the limit: refused at the head, before the body */
    check_splits("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10, "E[413]");
    check_splits("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 10,
                 "H[/ cont=0]M[0123456789 ka=1]");
    /* chunked: refused once the chunks pass it */
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n"
                 "5\r\n67890\r\n0\r\n\r\n",
                 10, "H[/ cont=0]E[413]");
    check_splits("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n"
                 "4\r\n6789\r\n0\r\n\r\n",
                 10, "H[/ cont=0]M[0123456789 ka=1]");
}

/* A request whose head is N bytes long (padded with one header). */
static char *head_of(size_t n)
{
    const char *pre = "GET /health HTTP/1.1\r\nX-Pad: ";
    size_t fixed = strlen(pre) + 4;
    char *s = malloc(n + 1);
    CU_ASSERT_FATAL(s != NULL && n > fixed);
    memcpy(s, pre, strlen(pre));
    memset(s + strlen(pre), 'a', n - fixed);
    memcpy(s + n - 4, "\r\n\r\n", 4);
    s[n] = '\0';
    return s;
}

static void test_header_limit(void)
{
    char log[256];
    char *ok = head_of(RP_HTTP_MAX_HEADER_BYTES - 64);
    transcript(ok, strlen(ok), 100, log, sizeof log);
    CU_ASSERT_STRING_EQUAL(log, "H[/health cont=0]M[ ka=1]");
    free(ok);
    char *big = head_of(RP_HTTP_MAX_HEADER_BYTES + 64);
    transcript(big, strlen(big), 100, log, sizeof log);
    CU_ASSERT_STRING_EQUAL(log, "E[431]");
    /* byte by byte too: the limit holds however the head arrives */
    struct drive *d = malloc(sizeof *d);
    CU_ASSERT_FATAL(d != NULL);
    drive_init(d, 100);
    for (size_t i = 0; i < strlen(big) && !d->dead; i++)
        drive_add(d, big + i, 1);
    d->log[d->log_len] = '\0';
    CU_ASSERT_STRING_EQUAL(d->log, "E[431]");
    rp_http_parser_free(&d->hp);
    free(d);
    free(big);
    /* many small headers add up */
    char many[20000];
    size_t n = (size_t)snprintf(many, sizeof many, "GET /health HTTP/1.1\r\n");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(many + n, sizeof many - n, "\r\n");
    transcript(many, n, 100, log, sizeof log);
    CU_ASSERT_STRING_EQUAL(log, "E[431]");
}

static void test_error_is_sticky(void)
{
    struct rp_http_parser hp;
    rp_http_parser_init(&hp, 100);
    size_t used = 99;
    CU_ASSERT_EQUAL(rp_http_parser_feed(&hp, "XYZ / HTTP/1.1\r\n\r\n", 18, &used), RP_HTTP_ERROR);
    CU_ASSERT_EQUAL(hp.error_status, 400);
    CU_ASSERT_FALSE(rp_http_parser_idle(&hp));
    CU_ASSERT_EQUAL(rp_http_parser_feed(&hp, "GET / HTTP/1.1\r\n\r\n", 18, &used), RP_HTTP_ERROR);
    CU_ASSERT_EQUAL(used, 0);
    rp_http_parser_free(&hp);
}

static void test_idle(void)
{
    struct rp_http_parser hp;
    rp_http_parser_init(&hp, 100);
    size_t used;
    CU_ASSERT_TRUE(rp_http_parser_idle(&hp));
    CU_ASSERT_EQUAL(rp_http_parser_feed(&hp, "POST / HTTP/1.1\r\nContent-Le", 27, &used),
                    RP_HTTP_NEED_MORE);
    CU_ASSERT_EQUAL(used, 27);
    CU_ASSERT_FALSE(rp_http_parser_idle(&hp));
    const char *rest = "ngth: 2\r\n\r\n{}GET";
    CU_ASSERT_EQUAL(rp_http_parser_feed(&hp, rest, strlen(rest), &used), RP_HTTP_HEADERS);
    CU_ASSERT_FALSE(rp_http_parser_idle(&hp));
    rest += used;
    CU_ASSERT_EQUAL(rp_http_parser_feed(&hp, rest, strlen(rest), &used), RP_HTTP_MESSAGE);
    CU_ASSERT_TRUE(rp_http_parser_idle(&hp));
    rest += used;
    CU_ASSERT_STRING_EQUAL(rest, "GET"); /* the next request is left unparsed */
    CU_ASSERT_EQUAL(rp_http_parser_feed(&hp, rest, strlen(rest), &used), RP_HTTP_NEED_MORE);
    CU_ASSERT_FALSE(rp_http_parser_idle(&hp));
    rp_http_parser_free(&hp);
}

static void test_upgrade_ignored(void)
{
    /* an upgrade request is answered as plain HTTP; the next request parses */
    check_splits("POST / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: "
                 "2\r\n\r\n{}GET /health HTTP/1.1\r\n\r\n",
                 100, "H[/ cont=0]M[{} ka=1]H[/health cont=0]M[ ka=1]");
}

/* ------------------------------------------------------------------ */
/* routing and responses                                               */
/* ------------------------------------------------------------------ */

static enum rp_http_route route(unsigned method, const char *url, const char **allow)
{
    return rp_http_route(method, url, strlen(url), allow);
}

static void test_route(void)
{
    const char *allow = NULL;
    CU_ASSERT_EQUAL(route(HTTP_POST, "/", &allow), RP_HTTP_ROUTE_RPC);
    CU_ASSERT_EQUAL(route(HTTP_POST, "/v1/anything?x", &allow), RP_HTTP_ROUTE_RPC);
    CU_ASSERT_EQUAL(route(HTTP_POST, "http://localhost:8545/", &allow), RP_HTTP_ROUTE_RPC);
    CU_ASSERT_EQUAL(route(HTTP_GET, "/health", &allow), RP_HTTP_ROUTE_HEALTH);
    CU_ASSERT_EQUAL(route(HTTP_HEAD, "/health?verbose=1", &allow), RP_HTTP_ROUTE_HEALTH);
    CU_ASSERT_EQUAL(route(HTTP_GET, "http://h/health", &allow), RP_HTTP_ROUTE_HEALTH);
    CU_ASSERT_EQUAL(route(HTTP_GET, "/metrics", &allow), RP_HTTP_ROUTE_METRICS);
    CU_ASSERT_EQUAL(route(HTTP_GET, "/healthz", &allow), RP_HTTP_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(route(HTTP_GET, "/metrics/x", &allow), RP_HTTP_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(route(HTTP_GET, "/", &allow), RP_HTTP_ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST, OPTIONS");
    CU_ASSERT_EQUAL(route(HTTP_GET, "http://h", &allow), RP_HTTP_ROUTE_BAD_METHOD);
    CU_ASSERT_EQUAL(route(HTTP_PUT, "/", &allow), RP_HTTP_ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "POST, OPTIONS");
    CU_ASSERT_EQUAL(route(HTTP_DELETE, "/health", &allow), RP_HTTP_ROUTE_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD, OPTIONS");
    CU_ASSERT_EQUAL(route(HTTP_POST, "/metrics", &allow), RP_HTTP_ROUTE_BAD_METHOD);
    CU_ASSERT_EQUAL(route(HTTP_OPTIONS, "*", &allow), RP_HTTP_ROUTE_OPTIONS);
    CU_ASSERT_EQUAL(route(HTTP_CONNECT, "localhost:1", &allow), RP_HTTP_ROUTE_BAD_METHOD);
}

static void test_format_head(void)
{
    char out[512];
    size_t n = rp_http_format_head(out, sizeof out, 200, "application/json", 17, NULL, 0);
    CU_ASSERT_STRING_EQUAL(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 17\r\n\r\n");
    CU_ASSERT_EQUAL(n, strlen(out));
    rp_http_format_head(out, sizeof out, 413, "text/plain", 0, NULL, RP_HTTP_F_CLOSE);
    CU_ASSERT_STRING_EQUAL(out, "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n");
    rp_http_format_head(out, sizeof out, 405, NULL, 0, "Allow: POST\r\n", RP_HTTP_F_KEEP_ALIVE);
    CU_ASSERT_STRING_EQUAL(out, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
                                "Allow: POST\r\nConnection: keep-alive\r\n\r\n");
    rp_http_format_head(out, sizeof out, 431, NULL, 5, NULL, RP_HTTP_F_CLOSE);
    CU_ASSERT_STRING_EQUAL(out, "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: "
                                "5\r\nConnection: close\r\n\r\n");
    rp_http_format_head(out, sizeof out, 599, NULL, 0, NULL, 0);
    CU_ASSERT_STRING_EQUAL(out, "HTTP/1.1 599 Unknown\r\nContent-Length: 0\r\n\r\n");
    /* cut like snprintf */
    char small[10];
    n = rp_http_format_head(small, sizeof small, 200, NULL, 0, NULL, 0);
    CU_ASSERT(n >= sizeof small);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
}

static void test_health_body(void)
{
    static struct rp_snapshot s;
    memset(&s, 0, sizeof s);
    char out[128];
    size_t len = 0;
    CU_ASSERT_EQUAL(rp_http_health_body(&s, out, sizeof out, &len), 503);
    CU_ASSERT_STRING_EQUAL(out, "{\"status\":\"unavailable\",\"healthy\":0}");
    CU_ASSERT_EQUAL(len, strlen(out));
    s.ep_count = 4;
    s.eps[0].state = RP_EP_UP;
    s.eps[0].breaker = RP_BREAKER_OPEN; /* up but its breaker is open */
    s.eps[1].state = RP_EP_DRAINED;
    s.eps[2].state = RP_EP_DOWN;
    s.eps[3].state = RP_EP_LAGGING;
    CU_ASSERT_EQUAL(rp_http_healthy_count(&s), 0);
    CU_ASSERT_EQUAL(rp_http_health_body(&s, out, sizeof out, &len), 503);
    s.eps[0].breaker = RP_BREAKER_HALF_OPEN;
    CU_ASSERT_EQUAL(rp_http_health_body(&s, out, sizeof out, &len), 200);
    CU_ASSERT_STRING_EQUAL(out, "{\"status\":\"ok\",\"healthy\":1}");
    s.eps[2].state = RP_EP_UP;
    s.eps[2].breaker = RP_BREAKER_CLOSED;
    CU_ASSERT_EQUAL(rp_http_health_body(&s, out, sizeof out, &len), 200);
    CU_ASSERT_STRING_EQUAL(out, "{\"status\":\"ok\",\"healthy\":2}");
    CU_ASSERT_EQUAL(len, strlen(out));
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"detect", test_detect},
        {"simple POST split everywhere", test_simple_post},
        {"pipelined requests", test_pipelined},
        {"chunked bodies", test_chunked},
        {"strict RFC 9112 framing", test_strict_framing},
        {"Expect: 100-continue", test_expect_continue},
        {"keep-alive rules", test_keep_alive_rules},
        {"smuggling refused", test_smuggling},
        {"malformed requests", test_malformed},
        {"body limits", test_body_limits},
        {"header limit", test_header_limit},
        {"error is sticky", test_error_is_sticky},
        {"idle between messages", test_idle},
        {"upgrade ignored", test_upgrade_ignored},
        {"route", test_route},
        {"format head", test_format_head},
        {"health body", test_health_body},
        {NULL, NULL},
    };
    return rp_test_run("http", cases);
}
