/* fuzz_http.c - libFuzzer target for the HTTP request parser (src/proto/http.c:
 * rp_http_detect, rp_http_parser_feed and friends, rp_http_route,
 * rp_http_format_head).
 *
 * The input is what one client sends on a connection. It is fed the way
 * conn.c feeds it (the unparsed rest of the buffer is fed again with the
 * bytes that arrive next), whole, one byte at a time and in random chunks,
 * each time from an exact-size heap copy so AddressSanitizer sees any read
 * past what has arrived. Invariants:
 *  - the loop always makes progress: a call either consumes bytes or
 *    reports an event (conn.c would spin forever otherwise), NEED_MORE
 *    consumes everything it was given, and after an error every call
 *    returns RP_HTTP_ERROR with nothing used;
 *  - events alternate HEADERS, MESSAGE, HEADERS, ... and an error ends
 *    them; every split of the stream gives the same events with the same
 *    request (method, version, URL, body, keep-alive, expect-continue,
 *    chunked, Content-Length) and the same error status (except 400 vs 431
 *    for an over-long bad head, which depends on the split);
 *  - no request with both Content-Length and Transfer-Encoding, another
 *    major version than 1, or a declared body over max_body_bytes gets
 *    through; a body never exceeds max_body_bytes, equals Content-Length
 *    when not chunked, and is NUL-terminated;
 *  - rp_http_route gives a known route and an Allow value; a response head
 *    from rp_http_format_head parses back (libhttp-parser, response mode)
 *    with the same status and Content-Length;
 *  - rp_http_detect is consistent on every prefix of the input.
 */
#include "rp_http.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 256

/* What the caller sees at one event. */
struct event {
    int kind;
    int error_status;
    unsigned method, major, minor;
    char url[RP_HTTP_URL_MAX];
    size_t url_len;
    int keep_alive, expect_continue, has_body, chunked;
    uint64_t content_length;
    char *body;
    size_t body_len;
};

struct run {
    struct event ev[MAX_EVENTS];
    int n;
    int truncated; /* MAX_EVENTS reached */
};

static uint64_t rng_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Record the event and check what holds at it. */
static void on_event(struct run *r, const struct rp_http_parser *hp, int kind, size_t max_body)
{
    const struct rp_http_msg *m = &hp->msg;
    int prev = r->n ? r->ev[r->n - 1].kind : RP_HTTP_MESSAGE;

    if (kind == RP_HTTP_HEADERS)
        CHECK(prev == RP_HTTP_MESSAGE);
    if (kind == RP_HTTP_MESSAGE)
        CHECK(prev == RP_HTTP_HEADERS);
    if (kind == RP_HTTP_ERROR) {
        CHECK(hp->error_status == 400 || hp->error_status == 413 || hp->error_status == 417 ||
              hp->error_status == 431);
        CHECK(hp->error_reason != NULL);
        CHECK(!rp_http_parser_idle(hp));
    } else {
        CHECK(m->http_major == 1);
        CHECK(!(hp->seen_content_length && hp->seen_transfer_encoding));
        CHECK(memchr(m->url, '\0', sizeof m->url) != NULL);
        CHECK(strlen(m->url) <= m->url_len);
        CHECK(m->content_length <= max_body);
        CHECK(m->has_body == (m->chunked || m->content_length > 0));
        if (m->http_minor == 0)
            CHECK(!m->expect_continue);
        const char *allow = NULL;
        size_t ul = m->url_len < sizeof m->url ? m->url_len : strlen(m->url);
        enum rp_http_route rt = rp_http_route(m->method, m->url, ul, &allow);
        CHECK(rt >= RP_HTTP_ROUTE_RPC && rt <= RP_HTTP_ROUTE_BAD_METHOD && allow != NULL);
        if (m->method == HTTP_POST && rt != RP_HTTP_ROUTE_BAD_METHOD)
            CHECK(rt == RP_HTTP_ROUTE_RPC);
    }
    if (kind == RP_HTTP_MESSAGE) {
        CHECK(m->body_len <= max_body);
        if (!m->chunked)
            CHECK(m->body_len == m->content_length);
        if (m->body_len) {
            CHECK(m->body && m->body[m->body_len] == '\0' && m->body_cap > m->body_len);
        }
        CHECK(rp_http_parser_idle(hp));
    }
    if (r->n >= MAX_EVENTS) {
        r->truncated = 1;
        return;
    }
    struct event *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->error_status = kind == RP_HTTP_ERROR ? hp->error_status : 0;
    if (kind == RP_HTTP_ERROR)
        return;
    e->method = m->method;
    e->major = m->http_major;
    e->minor = m->http_minor;
    memcpy(e->url, m->url, sizeof e->url);
    e->url_len = m->url_len;
    e->keep_alive = m->keep_alive;
    e->expect_continue = m->expect_continue;
    e->has_body = m->has_body;
    e->chunked = m->chunked;
    e->content_length = m->content_length;
    if (kind == RP_HTTP_MESSAGE && m->body_len) {
        e->body = malloc(m->body_len);
        CHECK(e->body != NULL);
        memcpy(e->body, m->body, m->body_len);
        e->body_len = m->body_len;
    }
}

/* Feed DATA as conn.c would, CHUNK bytes arriving at a time (0: random
 * sizes from RNG; SIZE_MAX: all at once). */
static void run_stream(const uint8_t *data, size_t size, size_t chunk, uint64_t rng,
                       size_t max_body, struct run *r)
{
    struct rp_http_parser hp;
    char *buf = NULL;
    size_t have = 0, sent = 0;
    int dead = 0;

    memset(r, 0, sizeof *r);
    rp_http_parser_init(&hp, max_body);
    CHECK(rp_http_parser_idle(&hp));
    while (sent < size && !dead && !r->truncated) {
        size_t k = chunk == 0 ? 1 + (size_t)(rng_next(&rng) % 64) : chunk;
        if (k > size - sent)
            k = size - sent;
        char *nb = malloc(have + k);
        CHECK(nb != NULL);
        if (have)
            memcpy(nb, buf, have);
        memcpy(nb + have, data + sent, k);
        free(buf);
        buf = nb;
        have += k;
        sent += k;
        size_t off = 0;
        while (off < have && !dead && !r->truncated) {
            size_t used = 12345;
            enum rp_http_event ev = rp_http_parser_feed(&hp, buf + off, have - off, &used);
            CHECK(used <= have - off);
            if (ev == RP_HTTP_NEED_MORE) {
                /* no event: bytes must have been consumed, or conn.c spins */
                CHECK(used > 0);
            }
            off += used;
            if (ev == RP_HTTP_NEED_MORE)
                continue;
            CHECK(ev == RP_HTTP_HEADERS || ev == RP_HTTP_MESSAGE || ev == RP_HTTP_ERROR);
            on_event(r, &hp, (int)ev, max_body);
            if (ev == RP_HTTP_ERROR) {
                size_t u2 = 7;
                CHECK(rp_http_parser_feed(&hp, buf + off, have - off, &u2) == RP_HTTP_ERROR);
                CHECK(u2 == 0);
                dead = 1;
            }
            if (ev == RP_HTTP_MESSAGE)
                rp_http_parser_trim(&hp);
        }
        /* keep only the unparsed rest, as conn.c does */
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    free(buf);
    rp_http_parser_free(&hp);
}

static void same_run(const struct run *a, const struct run *b)
{
    /* past MAX_EVENTS only the common prefix is compared */
    int n = a->n < b->n ? a->n : b->n;
    if (!a->truncated && !b->truncated)
        CHECK(a->n == b->n);
    for (int i = 0; i < n; i++) {
        const struct event *x = &a->ev[i], *y = &b->ev[i];
        CHECK(x->kind == y->kind);
        /* which error wins may depend on the split: libhttp-parser checks
         * the header size per call, so a long bad head is 431 in small
         * pieces and 400 in one; both refuse and close */
        if (x->error_status != y->error_status)
            CHECK((x->error_status == 431 || y->error_status == 431) &&
                  (x->error_status == 400 || y->error_status == 400));
        CHECK(x->method == y->method && x->major == y->major && x->minor == y->minor);
        CHECK(x->url_len == y->url_len && strcmp(x->url, y->url) == 0);
        CHECK(x->keep_alive == y->keep_alive && x->expect_continue == y->expect_continue);
        CHECK(x->has_body == y->has_body && x->chunked == y->chunked);
        CHECK(x->content_length == y->content_length);
        CHECK(x->body_len == y->body_len);
        if (x->body_len)
            CHECK(memcmp(x->body, y->body, x->body_len) == 0);
    }
}

static void free_run(struct run *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->ev[i].body);
}

/* Parse a head written by rp_http_format_head as a response. */
struct resp_check {
    int done;
};

static int rc_headers_complete(http_parser *p)
{
    ((struct resp_check *)p->data)->done = 1;
    return 1; /* "no body": OUT holds the head only */
}

static void check_head(int status, size_t content_length, unsigned flags)
{
    char out[512];
    size_t n = rp_http_format_head(out, sizeof out, status, "application/json", content_length,
                                   "Allow: POST, OPTIONS\r\n", flags);
    CHECK(n > 0 && n < sizeof out);
    CHECK(n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0);
    http_parser p;
    http_parser_settings s;
    struct resp_check rc = {0};
    memset(&s, 0, sizeof s);
    s.on_headers_complete = rc_headers_complete;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &rc;
    http_parser_execute(&p, &s, out, n);
    CHECK(rc.done);
    CHECK(p.status_code == status);
    CHECK(p.content_length == content_length);
    /* snprintf-like: a short buffer gets the same length back */
    char small[16];
    CHECK(rp_http_format_head(small, sizeof small, status, "application/json", content_length,
                              "Allow: POST, OPTIONS\r\n", flags) == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t bodies[] = {64, 1024, 1048576};
    static struct run runs[4];
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    size_t max_body = bodies[h % 3];

    /* detection: consistent on every prefix (only the first few matter) */
    enum rp_http_detect_result full = rp_http_detect((const char *)data, size);
    for (size_t k = 0; k <= size && k <= 9; k++) {
        char *pfx = malloc(k ? k : 1);
        CHECK(pfx != NULL);
        memcpy(pfx, data, k);
        enum rp_http_detect_result d = rp_http_detect(pfx, k);
        free(pfx);
        if (full == RP_HTTP_DETECT_YES || full == RP_HTTP_DETECT_MORE)
            CHECK(d != RP_HTTP_DETECT_NO);
        if (d == RP_HTTP_DETECT_YES)
            CHECK(full == RP_HTTP_DETECT_YES);
    }
    if (size && data[0] == '{')
        CHECK(full == RP_HTTP_DETECT_NO);

    run_stream(data, size, SIZE_MAX, h, max_body, &runs[0]);
    run_stream(data, size, 1, h, max_body, &runs[1]);
    run_stream(data, size, 0, h, max_body, &runs[2]);
    run_stream(data, size, 0, h ^ 0xa5a5a5a5ull, max_body, &runs[3]);
    for (int k = 1; k < 4; k++)
        same_run(&runs[0], &runs[k]);
    for (int k = 0; k < 4; k++)
        free_run(&runs[k]);

    static const int statuses[] = {200, 204, 400, 404, 405, 413, 417, 431, 500, 503};
    check_head(statuses[(h >> 8) % 10], (size_t)(h >> 16) % 2000000, (unsigned)(h >> 40) % 4);
    return 0;
}
