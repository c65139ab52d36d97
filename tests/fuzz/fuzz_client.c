/* fuzz_client.c - libFuzzer target for librpcpool's line reader
 * (lib/client.c: rpcpool_read and what it calls: the cutting of the answer
 * stream into lines, the answer parser, the id table, rpcpool_next_response),
 * over bytes a (broken or hostile) server might send.
 *
 * lib/client.c is included here, with recv() replaced by a function that
 * serves the fuzz input: no socket is involved, and the library's own read
 * loop (buffer growth, compaction, READS_PER_CALL) runs unchanged.
 *
 * Input: byte 0 picks the calls in flight (1..16, some as a batch) and a
 * small max line length or the default; byte 1 seeds the split plan; the
 * rest is what the server sends, followed by end of stream. It is read
 * whole, then in pieces of 1..97 bytes with EAGAIN between reads.
 * Invariants:
 *  - both runs hand back the same answers in the same order (id, error or
 *    result, code, message, result and raw text): the reader does not depend
 *    on how the bytes arrive;
 *  - every answer carries the id of a call in flight (or 0 for a null id),
 *    a result answer has result text, an error answer has a message;
 *  - the connection ends failed (the stream ends), with a message;
 *  - nothing leaks, nothing is read out of bounds (ASan).
 */
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* what the library reads comes from the fuzz input */
static ssize_t fuzz_recv(int fd, void *buf, size_t len, int flags);
#define recv fuzz_recv
#include "../../lib/client.c"
#include "rp_fuzz.h"
#undef recv

/* The stream being served: S[off, n), in pieces when STEP, with an EAGAIN
 * after each piece. */
static struct {
    const char *s;
    size_t n, off;
    int step;
    unsigned seed;
    int again; /* the next call says EAGAIN */
} feed;

static ssize_t fuzz_recv(int fd, void *buf, size_t len, int flags)
{
    (void)fd;
    (void)flags;
    if (feed.again) {
        feed.again = 0;
        errno = EAGAIN;
        return -1;
    }
    if (feed.off == feed.n)
        return 0; /* end of stream */
    size_t k = feed.n - feed.off;
    if (feed.step) {
        feed.seed = feed.seed * 1103515245u + 12345u;
        size_t piece = 1 + (feed.seed >> 16) % 97;
        if (k > piece)
            k = piece;
        feed.again = 1;
    }
    if (k > len)
        k = len;
    memcpy(buf, feed.s + feed.off, k);
    feed.off += k;
    return (ssize_t)k;
}

/* The answers one run handed back, flattened into text. */
struct transcript {
    char *s;
    size_t len, cap;
};

static void tr_put(struct transcript *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->s = realloc(t->s, cap);
        CHECK(t->s != NULL);
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void tr_str(struct transcript *t, const char *s)
{
    tr_put(t, s ? s : "(null)", s ? strlen(s) : 6);
    tr_put(t, "\x01", 1);
}

/* Collect every answer queued on P into T, checking each. */
static void drain(rpcpool_t *p, uint64_t max_id, struct transcript *t)
{
    struct rpcpool_response r;
    while (rpcpool_next_response(p, &r)) {
        CHECK(r.id <= max_id);
        if (r.is_error)
            CHECK(r.error_message != NULL);
        else
            CHECK(r.result_json != NULL);
        char head[64];
        snprintf(head, sizeof head, "%llu:%d:%lld:", (unsigned long long)r.id, r.is_error,
                 (long long)r.error_code);
        tr_put(t, head, strlen(head));
        tr_str(t, r.error_message);
        tr_str(t, r.result_json);
        tr_str(t, r.raw);
        tr_str(t, r.error_data_json);
        rpcpool_response_free(&r);
    }
}

/* One run over the stream: fresh connection state, CALLS in flight. */
static void run(const char *s, size_t n, int step, unsigned seed, unsigned calls, size_t max_line,
                struct transcript *t)
{
    rpcpool_t *p = calloc(1, sizeof *p);
    CHECK(p != NULL);
    p->fd = -1;
    p->max_line_bytes = max_line;
    p->next_id = 1;
    uint64_t id;
    for (unsigned i = 0; i < calls / 2; i++)
        CHECK(rpcpool_send(p, "eth_blockNumber", NULL, &id) == RPCPOOL_OK);
    const char *methods[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    uint64_t ids[8];
    size_t nb = calls - calls / 2;
    if (nb > 8)
        nb = 8;
    CHECK(rpcpool_send_batch(p, nb, methods, NULL, ids) == RPCPOOL_OK);
    uint64_t max_id = p->next_id - 1;

    feed.s = s;
    feed.n = n;
    feed.off = 0;
    feed.step = step;
    feed.seed = seed;
    feed.again = 0;
    for (int rounds = 0; rounds < 100000; rounds++) {
        int rc = rpcpool_read(p);
        drain(p, max_id, t);
        if (rc == RPCPOOL_ERROR)
            break;
        CHECK(rc >= 0);
    }
    CHECK(p->failed);
    CHECK(rpcpool_error(p)[0] != '\0');
    rpcpool_close(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned calls = 1 + (data[0] & 15);
    size_t max_line = data[0] & 0x80 ? MIN_MAX_LINE_BYTES : RPCPOOL_DEFAULT_MAX_LINE_BYTES;
    unsigned seed = data[1];
    const char *s = (const char *)data + 2;
    size_t n = size - 2;
    struct transcript a = {0}, b = {0};
    run(s, n, 0, seed, calls, max_line, &a);
    run(s, n, 1, seed, calls, max_line, &b);
    if (a.len != b.len || (a.len && memcmp(a.s, b.s, a.len) != 0))
        fprintf(stderr, "whole:  %s\npieces: %s\n", a.s ? a.s : "", b.s ? b.s : "");
    CHECK(a.len == b.len && (a.len == 0 || memcmp(a.s, b.s, a.len) == 0));
    free(a.s);
    free(b.s);
    return 0;
}
