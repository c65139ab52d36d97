/* fuzz_frame.c - libFuzzer target for the framing scanner (src/proto/frame.c).
 *
 * The input is a client byte stream. Invariants checked on every input:
 *  - scanning it whole, fed in random chunks (exact-size heap buffers, so
 *    AddressSanitizer sees any read past the bytes that have arrived), fed
 *    one byte at a time (inputs up to 1 KiB), and with the consumed prefix dropped the way
 *    conn.c drops it (memmove + rp_frame_shift) all give the same values at
 *    the same stream offsets, the same final result and the same error
 *    offset;
 *  - an independent recursive reference parser (strict RFC 8259 + strict
 *    UTF-8, same depth limit) agrees on every value boundary, the final
 *    result and the error offset (the length of the longest viable prefix);
 *  - rp_frame_validate() agrees with the reference on the whole input, and
 *    accepts every value the scanner emits (also with whitespace around).
 */
#include "rp_frame.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reference: a recursive, whole-buffer JSON stream parser ----------- */

enum { REF_OK, REF_EOF, REF_ERR, REF_DEEP };

struct ref {
    const uint8_t *b;
    size_t n, i;
};

static int ref_is_ws(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void ref_ws(struct ref *r)
{
    while (r->i < r->n && ref_is_ws(r->b[r->i]))
        r->i++;
}

static int ref_is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* b[i] is '"'. */
static int ref_string(struct ref *r)
{
    r->i++;
    for (;;) {
        if (r->i >= r->n)
            return REF_EOF;
        unsigned c = r->b[r->i];
        if (c == '"') {
            r->i++;
            return REF_OK;
        }
        if (c < 0x20)
            return REF_ERR;
        if (c == '\\') {
            r->i++;
            if (r->i >= r->n)
                return REF_EOF;
            c = r->b[r->i];
            if (c == 'u') {
                r->i++;
                for (int k = 0; k < 4; k++) {
                    if (r->i >= r->n)
                        return REF_EOF;
                    if (!ref_is_hex(r->b[r->i]))
                        return REF_ERR;
                    r->i++;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", (int)c) || c == 0)
                return REF_ERR;
            r->i++;
            continue;
        }
        if (c < 0x80) {
            r->i++;
            continue;
        }
        /* strict UTF-8 (RFC 3629): no overlongs, no surrogates, <= U+10FFFF */
        int need;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            need = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0;
            if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90;
            if (c == 0xf4)
                hi = 0x8f;
        } else
            return REF_ERR;
        r->i++;
        for (int k = 0; k < need; k++) {
            if (r->i >= r->n)
                return REF_EOF;
            unsigned d = r->b[r->i];
            if (d < lo || d > hi)
                return REF_ERR;
            lo = 0x80;
            hi = 0xbf;
            r->i++;
        }
    }
}

static int ref_digit(const struct ref *r)
{
    return r->i < r->n && r->b[r->i] >= '0' && r->b[r->i] <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; a complete number that
 * ends at the buffer's end is REF_OK (the caller decides). */
static int ref_number(struct ref *r)
{
    if (r->b[r->i] == '-')
        r->i++;
    if (r->i >= r->n)
        return REF_EOF;
    if (r->b[r->i] == '0')
        r->i++;
    else if (ref_digit(r))
        while (ref_digit(r))
            r->i++;
    else
        return REF_ERR;
    if (r->i < r->n && r->b[r->i] == '.') {
        r->i++;
        if (r->i >= r->n)
            return REF_EOF;
        if (!ref_digit(r))
            return REF_ERR;
        while (ref_digit(r))
            r->i++;
    }
    if (r->i < r->n && (r->b[r->i] == 'e' || r->b[r->i] == 'E')) {
        r->i++;
        if (r->i < r->n && (r->b[r->i] == '+' || r->b[r->i] == '-'))
            r->i++;
        if (r->i >= r->n)
            return REF_EOF;
        if (!ref_digit(r))
            return REF_ERR;
        while (ref_digit(r))
            r->i++;
    }
    return REF_OK;
}

static int ref_literal(struct ref *r, const char *lit)
{
    for (size_t k = 0; lit[k]; k++) {
        if (r->i >= r->n)
            return REF_EOF;
        if (r->b[r->i] != (uint8_t)lit[k])
            return REF_ERR;
        r->i++;
    }
    return REF_OK;
}

/* One value at b[i] (not whitespace); depth = containers already open. */
static int ref_value(struct ref *r, unsigned depth)
{
    if (r->i >= r->n)
        return REF_EOF;
    unsigned c = r->b[r->i];
    int res;
    switch (c) {
    case '{':
    case '[': {
        if (depth >= RP_FRAME_MAX_DEPTH)
            return REF_DEEP;
        unsigned close = c == '{' ? '}' : ']';
        r->i++;
        ref_ws(r);
        if (r->i >= r->n)
            return REF_EOF;
        if (r->b[r->i] == close) {
            r->i++;
            return REF_OK;
        }
        for (;;) {
            if (c == '{') {
                if (r->i >= r->n)
                    return REF_EOF;
                if (r->b[r->i] != '"')
                    return REF_ERR;
                if ((res = ref_string(r)) != REF_OK)
                    return res;
                ref_ws(r);
                if (r->i >= r->n)
                    return REF_EOF;
                if (r->b[r->i] != ':')
                    return REF_ERR;
                r->i++;
                ref_ws(r);
            }
            if ((res = ref_value(r, depth + 1)) != REF_OK)
                return res;
            ref_ws(r);
            if (r->i >= r->n)
                return REF_EOF;
            if (r->b[r->i] == close) {
                r->i++;
                return REF_OK;
            }
            if (r->b[r->i] != ',')
                return REF_ERR;
            r->i++;
            ref_ws(r);
        }
    }
    case '"':
        return ref_string(r);
    case 't':
        return ref_literal(r, "true");
    case 'f':
        return ref_literal(r, "false");
    case 'n':
        return ref_literal(r, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return ref_number(r);
        return REF_ERR;
    }
}

struct outcome {
    size_t *vs, *ve; /* value boundaries, absolute stream offsets */
    size_t nv;
    int res;    /* final: NEED_MORE, ERROR or TOO_DEEP */
    size_t err; /* absolute error offset */
};

static int is_top_delim(unsigned c)
{
    return ref_is_ws(c) || c == '{' || c == '[' || c == '"';
}

/* The reference stream semantics (rp_frame.h): values one after another; a
 * top-level number or literal needs a delimiter after it. */
static void ref_stream(const uint8_t *b, size_t n, struct outcome *o)
{
    struct ref r = {b, n, 0};
    o->nv = 0;
    for (;;) {
        ref_ws(&r);
        if (r.i >= n) {
            o->res = RP_FRAME_NEED_MORE;
            return;
        }
        size_t start = r.i;
        unsigned first = b[start];
        int res = ref_value(&r, 0);
        if (res == REF_OK && first != '{' && first != '[' && first != '"') {
            if (r.i >= n)
                res = REF_EOF;
            else if (!is_top_delim(b[r.i]))
                res = REF_ERR;
        }
        if (res == REF_EOF) {
            o->res = RP_FRAME_NEED_MORE;
            return;
        }
        if (res != REF_OK) {
            o->res = res == REF_DEEP ? RP_FRAME_TOO_DEEP : RP_FRAME_ERROR;
            o->err = r.i;
            return;
        }
        o->vs[o->nv] = start;
        o->ve[o->nv] = r.i;
        o->nv++;
    }
}

/* Exactly one value with whitespace around it; a scalar may end the buffer. */
static int ref_validate(const uint8_t *b, size_t n)
{
    struct ref r = {b, n, 0};
    ref_ws(&r);
    if (r.i >= n || ref_value(&r, 0) != REF_OK)
        return -1;
    ref_ws(&r);
    return r.i == n ? 0 : -1;
}

/* ---- the scanner under test -------------------------------------------- */

static uint64_t rng_next(uint64_t *st)
{
    /* splitmix64 */
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

enum { MODE_WHOLE, MODE_BYTES, MODE_CHUNKS, MODE_CHUNKS_KEEP };

/* Feed DATA to one scanner as MODE says. MODE_BYTES and MODE_CHUNKS drop
 * the consumed prefix as conn.c does (max of s.start and the end of the last
 * value); MODE_CHUNKS_KEEP drops only up to the end of the last value (the
 * header's contract), and only sometimes. */
static void scan_stream(const uint8_t *data, size_t n, int mode, uint64_t seed, struct outcome *o)
{
    struct rp_frame s;
    char *buf = NULL;
    size_t have = 0, base = 0, sent = 0;
    uint64_t rng = seed;

    rp_frame_init(&s);
    o->nv = 0;
    o->res = RP_FRAME_NEED_MORE;
    if (mode == MODE_WHOLE) {
        for (;;) {
            size_t st = 0, en = 0;
            enum rp_frame_result r = rp_frame_scan(&s, (const char *)data, n, &st, &en);
            if (r != RP_FRAME_VALUE) {
                o->res = r;
                o->err = s.err_offset;
                return;
            }
            CHECK(st < en && en <= n && en <= s.pos);
            o->vs[o->nv] = st;
            o->ve[o->nv] = en;
            o->nv++;
        }
    }
    while (sent < n) {
        /* every arrival is copied whole (exact-size buffer), so chunks grow
         * with the input to keep the cost near linear */
        size_t chunk = 1;
        if (mode != MODE_BYTES)
            chunk = 1 + (size_t)(rng_next(&rng) % (17 + n / 64));
        if (chunk > n - sent)
            chunk = n - sent;
        /* an exact-size copy of what has arrived and is still kept */
        char *nb = malloc(have + chunk);
        CHECK(nb != NULL);
        if (have)
            memcpy(nb, buf, have);
        memcpy(nb + have, data + sent, chunk);
        free(buf);
        buf = nb;
        have += chunk;
        sent += chunk;
        size_t consumed = 0;
        for (;;) {
            size_t st = 0, en = 0;
            enum rp_frame_result r = rp_frame_scan(&s, buf, have, &st, &en);
            if (r == RP_FRAME_VALUE) {
                CHECK(st < en && en <= have);
                o->vs[o->nv] = base + st;
                o->ve[o->nv] = base + en;
                o->nv++;
                consumed = en;
                continue;
            }
            if (r != RP_FRAME_NEED_MORE) {
                o->res = r;
                o->err = base + s.err_offset;
                free(buf);
                return;
            }
            break;
        }
        CHECK(s.pos == have);
        size_t drop;
        if (mode == MODE_CHUNKS_KEEP)
            drop = (rng_next(&rng) & 1) ? consumed : 0;
        else
            drop = s.start > consumed ? s.start : consumed;
        if (drop > have)
            drop = have;
        if (drop) {
            memmove(buf, buf + drop, have - drop);
            have -= drop;
            base += drop;
            rp_frame_shift(&s, drop);
        }
    }
    free(buf);
}

static void same_outcome(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->nv == b->nv);
    for (size_t k = 0; k < a->nv; k++)
        CHECK(a->vs[k] == b->vs[k] && a->ve[k] == b->ve[k]);
    CHECK(a->res == b->res);
    if (a->res != RP_FRAME_NEED_MORE)
        CHECK(a->err == b->err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome o[5];
    size_t cap = size + 1;
    uint64_t seed = 1469598103934665603ull;

    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 1099511628211ull;
    for (int k = 0; k < 5; k++) {
        o[k].vs = malloc(cap * sizeof(size_t));
        o[k].ve = malloc(cap * sizeof(size_t));
        CHECK(o[k].vs && o[k].ve);
    }

    ref_stream(data, size, &o[0]);
    scan_stream(data, size, MODE_WHOLE, seed, &o[1]);
    /* one byte at a time: quadratic copying, so for inputs up to 1 KiB */
    scan_stream(data, size, size <= 1024 ? MODE_BYTES : MODE_CHUNKS, seed ^ 0xaaaa, &o[2]);
    scan_stream(data, size, MODE_CHUNKS, seed, &o[3]);
    scan_stream(data, size, MODE_CHUNKS_KEEP, seed ^ 0x5555, &o[4]);
    for (int k = 1; k < 5; k++)
        same_outcome(&o[0], &o[k]);

    /* rp_frame_validate agrees with the reference on the whole input */
    CHECK((rp_frame_validate((const char *)data, size) == 0) == (ref_validate(data, size) == 0));

    /* every emitted value is one valid value, also with whitespace around */
    for (size_t k = 0; k < o[1].nv; k++) {
        size_t len = o[1].ve[k] - o[1].vs[k];
        char *v = malloc(len + 2);
        CHECK(v != NULL);
        memcpy(v, data + o[1].vs[k], len);
        CHECK(rp_frame_validate(v, len) == 0);
        v[len] = ' ';
        v[len + 1] = '\n';
        CHECK(rp_frame_validate(v, len + 2) == 0);
        free(v);
    }
    /* a stream that is exactly one value and whitespace validates */
    if (o[1].nv == 1 && o[1].res == RP_FRAME_NEED_MORE) {
        int rest_ws = 1;
        for (size_t i = o[1].ve[0]; i < size; i++)
            rest_ws &= ref_is_ws(data[i]);
        if (rest_ws)
            CHECK(rp_frame_validate((const char *)data, size) == 0);
    }

    for (int k = 0; k < 5; k++) {
        free(o[k].vs);
        free(o[k].ve);
    }
    return 0;
}
