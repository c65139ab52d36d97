/* fuzz_upstream.c - libFuzzer target for the upstream HTTP/1.x response
 * reader of the native client (src/worker/h1.c: rp_h1_resp_init, rp_h1_resp_feed,
 * rp_h1_resp_eof), the bytes an http:// endpoint sends back.
 *
 * h1.c also holds the worker side (sockets, epoll, shm); like
 * tests/unit/test_h1.c this target links h1.c whole and gives the worker
 * symbols inert definitions that abort if the pure parser ever reaches them.
 *
 * Input: byte 0 picks max_body_bytes (0..255, or 64 KiB when its top bit
 * is set), byte 1 seeds the split plan; the rest is the response stream.
 * The stream is fed whole, then in pieces (sizes from the seed), then byte
 * by byte; each run ends with rp_h1_resp_eof() when the reader wants more.
 * Invariants:
 *  - every run reaches the same state, status, Retry-After, body and
 *    keep-alive verdict: the reader does not depend on how bytes arrive;
 *  - *used never exceeds what was fed; after DONE, feeding more consumes
 *    nothing and clears keep_alive (bytes no request asked for);
 *  - DONE means a final status (200..999) and a body within max_body_bytes;
 *    TOO_LARGE never holds more than max_body_bytes;
 *  - Retry-After is 0 or 1..86399 seconds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp_fuzz.h"
#include "rp_h1.h"


/* What one run ended with. */
struct outcome {
    enum rp_h1_resp_state st;
    long status, retry_after_s;
    int keep_alive;
    struct rp_buf body;
};

/* Feed S[0, N) in pieces: STEP 0 = whole, 1 = byte by byte, else sizes
 * from SEED. Ends with eof when the reader wants more. */
static void run(const char *s, size_t n, size_t max_body, int step, unsigned seed,
                struct outcome *o)
{
    struct rp_h1_resp r;
    rp_buf_init(&o->body);
    rp_h1_resp_init(&r, &o->body, max_body);
    enum rp_h1_resp_state st = RP_H1_RESP_MORE;
    size_t off = 0;
    /* bytes after DONE are fed too (they must clear keep_alive) */
    while (off < n && st != RP_H1_RESP_MALFORMED && st != RP_H1_RESP_TOO_LARGE) {
        size_t k = n - off;
        if (step == 1) {
            k = 1;
        } else if (step != 0) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % 97;
            if (k > n - off)
                k = n - off;
        }
        size_t used = 0;
        /* an exact-size heap copy, so ASan sees any read past the piece */
        char *piece = malloc(k);
        CHECK(piece != NULL);
        memcpy(piece, s + off, k);
        st = rp_h1_resp_feed(&r, piece, k, &used);
        free(piece);
        CHECK(used <= k);
        off += k;
    }
    if (st == RP_H1_RESP_MORE)
        st = rp_h1_resp_eof(&r);
    o->keep_alive = r.keep_alive;
    if (st == RP_H1_RESP_DONE) {
        /* bytes after a whole response: still DONE, the connection is not kept */
        size_t used = 1;
        CHECK(rp_h1_resp_feed(&r, "X", 1, &used) == RP_H1_RESP_DONE && used == 0);
        CHECK(r.keep_alive == 0);
        CHECK(r.status >= 200 && r.status <= 999);
        CHECK(o->body.len <= max_body);
        CHECK(r.done);
    }
    if (st == RP_H1_RESP_TOO_LARGE)
        CHECK(o->body.len <= max_body);
    CHECK(r.retry_after_s == 0 || (r.retry_after_s >= 1 && r.retry_after_s < 86400));
    o->st = st;
    o->status = r.status;
    o->retry_after_s = r.retry_after_s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_body = data[0] & 0x80 ? 65536 : data[0];
    unsigned seed = data[1];
    const char *s = (const char *)data + 2;
    size_t n = size - 2;
    struct outcome a, b, c;
    run(s, n, max_body, 0, seed, &a);
    run(s, n, max_body, 2, seed, &b);
    run(s, n, max_body, 1, seed, &c);
    const struct outcome *o[2] = {&b, &c};
    for (int i = 0; i < 2; i++) {
        CHECK(o[i]->st == a.st);
        CHECK(o[i]->status == a.status);
        /* (a header cut by a framing error may or may not have been
         * seen whole: Retry-After only counts once the head is read) */
        if (a.st == RP_H1_RESP_DONE || a.st == RP_H1_RESP_TOO_LARGE)
            CHECK(o[i]->retry_after_s == a.retry_after_s);
        CHECK(o[i]->keep_alive == a.keep_alive);
        if (a.st == RP_H1_RESP_DONE) {
            CHECK(o[i]->body.len == a.body.len);
            CHECK(a.body.len == 0 || memcmp(o[i]->body.data, a.body.data, a.body.len) == 0);
        }
    }
    rp_buf_free(&a.body);
    rp_buf_free(&b.body);
    rp_buf_free(&c.body);
    return 0;
}
