/* test_frame.c - the framing scanner: values split at every byte boundary,
 * concatenated streams, every class of syntax error with its offset, deep
 * nesting, rp_frame_shift and rp_frame_validate. */
#include "rp_frame.h"
#include "rp_test.h"

#include <stdlib.h>
#include <string.h>

#define MAX_VALS 64

struct scan_out {
    int n;                  /* values found */
    size_t start[MAX_VALS]; /* offsets in the original input */
    size_t end[MAX_VALS];
    int res;    /* last result: NEED_MORE, ERROR or TOO_DEEP */
    size_t err; /* err_offset in the original input */
};

/* Feed IN[0, LEN) to a scanner: first CUT bytes, then chunks of STEP bytes.
 * The scanner's buffer is an exact-size heap copy of what has arrived, so
 * AddressSanitizer catches any read past it. With SHIFT 1 the consumed
 * prefix is dropped after every value (memmove + rp_frame_shift); with
 * SHIFT 2 also everything before s.start whenever more bytes are needed. */
static void feed(const char *in, size_t len, size_t cut, size_t step, int shift, struct scan_out *o)
{
    struct rp_frame s;
    char *buf = NULL;
    size_t have = 0, base = 0, sent = 0;

    memset(o, 0, sizeof(*o));
    o->res = RP_FRAME_NEED_MORE;
    rp_frame_init(&s);
    while (sent < len) {
        size_t chunk = sent == 0 ? cut : step;
        if (chunk == 0 || chunk > len - sent)
            chunk = len - sent;
        char *nb = malloc(have + chunk);
        CU_ASSERT_FATAL(nb != NULL);
        if (have)
            memcpy(nb, buf, have);
        memcpy(nb + have, in + sent, chunk);
        free(buf);
        buf = nb;
        have += chunk;
        sent += chunk;
        for (;;) {
            size_t st = 0, en = 0;
            enum rp_frame_result r = rp_frame_scan(&s, buf, have, &st, &en);
            if (r != RP_FRAME_VALUE) {
                o->res = r;
                if (r != RP_FRAME_NEED_MORE) {
                    o->err = s.err_offset + base;
                    free(buf);
                    return;
                }
                if (shift == 2 && s.start > 0) { /* drop all before the open value */
                    size_t drop = s.start;
                    memmove(buf, buf + drop, have - drop);
                    have -= drop;
                    base += drop;
                    rp_frame_shift(&s, drop);
                }
                break;
            }
            CU_ASSERT_FATAL(o->n < MAX_VALS);
            CU_ASSERT(st < en && en <= have);
            o->start[o->n] = st + base;
            o->end[o->n] = en + base;
            o->n++;
            if (shift && en > 0) {
                memmove(buf, buf + en, have - en);
                have -= en;
                base += en;
                rp_frame_shift(&s, en);
            }
        }
    }
    free(buf);
}

static int same_out(const struct scan_out *a, const struct scan_out *b)
{
    if (a->n != b->n || a->res != b->res)
        return 0;
    if (a->res != RP_FRAME_NEED_MORE && a->err != b->err)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (a->start[i] != b->start[i] || a->end[i] != b->end[i])
            return 0;
    return 1;
}

/* Every split of IN (two chunks at each boundary, byte by byte, with and
 * without shifting) must give exactly REF. */
static void check_all_splits(const char *in, size_t len, const struct scan_out *ref)
{
    struct scan_out o;

    for (size_t cut = 1; cut < len; cut++) {
        feed(in, len, cut, len, 0, &o);
        CU_ASSERT(same_out(&o, ref));
        feed(in, len, cut, len, 1, &o);
        CU_ASSERT(same_out(&o, ref));
    }
    feed(in, len, 1, 1, 0, &o);
    CU_ASSERT(same_out(&o, ref));
    feed(in, len, 1, 1, 1, &o);
    CU_ASSERT(same_out(&o, ref));
    feed(in, len, 3, 7, 1, &o);
    CU_ASSERT(same_out(&o, ref));
    feed(in, len, 1, 1, 2, &o);
    CU_ASSERT(same_out(&o, ref));
}

/* One JSON value each (the trailing newline delimits scalars). */
static const char *const samples[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_blockNumber\",\"params\":[]}",
    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\"},"
    "{\"jsonrpc\":\"2.0\",\"id\":\"two\",\"method\":\"eth_getBalance\",\"params\":[\"0xabc\","
    "\"latest\"]},{\"jsonrpc\":\"2.0\",\"method\":\"note\"}]",
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"eth_call\",\"params\":[{\"to\":\"0x0\",\"data\":"
    "\"0x\",\"nested\":{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}},\"latest\"]}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"{[}]\",\"method\":\"x\",\"params\":[\"}}]]{{[[\",\"\\\"q\\\"\","
    "\"back\\\\slash\\\\\",\"\\/\\b\\f\\n\\r\\t\",\"\\\\\\\"\"]}",
    "{\"method\":\"\\u00e9\\uD83D\\uDE00\\u0041\\uFFFF\",\"params\":[\"\\u0000\\u005C\"]}",
    "{\"m\":\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9d\x84\x9e \xe6\x97\xa5\xe6\x9c\xac\","
    "\"edges\":\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80"
    "\xf4\x8f\xbf\xbf\x7f\"}",
    "[0,-0,1.5,-1.5e10,2E-3,1e+2,123456789012345678901234567890,0.0,-0.0e-0,10]",
    "{\"a\":{},\"b\":[],\"c\":[{}],\"d\":[[]],\"e\":\"\",\"\":0}",
    "{\r\n\t\"jsonrpc\" : \"2.0\" ,\n  \"id\" : 7 ,\n  \"params\" : [ 1 , [ ] , { } , true ] ,"
    "\n  \"method\" : \"m\"\n}",
    "\"just a string with } and ]\"",
    "[[[[[[[[[[[[[[[[[[[[\"deep\"]]]]]]]]]]]]]]]]]]]]",
};

static void test_samples_every_split(void)
{
    for (size_t k = 0; k < sizeof(samples) / sizeof(samples[0]); k++) {
        const char *in = samples[k];
        size_t len = strlen(in);
        struct scan_out ref;

        feed(in, len, len, len, 0, &ref);
        CU_ASSERT_EQUAL(ref.n, 1);
        CU_ASSERT_EQUAL(ref.res, RP_FRAME_NEED_MORE);
        CU_ASSERT_EQUAL(ref.start[0], 0);
        CU_ASSERT_EQUAL(ref.end[0], len);
        CU_ASSERT_EQUAL(rp_frame_validate(in, len), 0);
        check_all_splits(in, len, &ref);
    }
}

/* All samples one after another, with and without whitespace between. */
static void test_samples_concatenated(void)
{
    static const char *const seps[] = {"", " ", "\n", "\r\n\t  "};
    size_t ns = sizeof(samples) / sizeof(samples[0]);

    for (size_t sp = 0; sp < sizeof(seps) / sizeof(seps[0]); sp++) {
        char *in = malloc(16384);
        size_t len = 0;
        size_t want_start[MAX_VALS], want_end[MAX_VALS];
        CU_ASSERT_FATAL(in != NULL);
        for (size_t k = 0; k < ns; k++) {
            size_t l = strlen(samples[k]);
            want_start[k] = len;
            memcpy(in + len, samples[k], l);
            len += l;
            want_end[k] = len;
            memcpy(in + len, seps[sp], strlen(seps[sp]));
            len += strlen(seps[sp]);
        }
        struct scan_out ref;
        feed(in, len, len, len, 0, &ref);
        /* the last sample is an array, so every value is delimited */
        CU_ASSERT_EQUAL(ref.n, (int)ns);
        CU_ASSERT_EQUAL(ref.res, RP_FRAME_NEED_MORE);
        for (size_t k = 0; k < ns && (int)k < ref.n; k++) {
            CU_ASSERT_EQUAL(ref.start[k], want_start[k]);
            CU_ASSERT_EQUAL(ref.end[k], want_end[k]);
        }
        struct scan_out o;
        feed(in, len, 1, 1, 1, &o);
        CU_ASSERT(same_out(&o, &ref));
        feed(in, len, 1, 1, 0, &o);
        CU_ASSERT(same_out(&o, &ref));
        for (size_t cut = 1; cut < len; cut += 37) {
            feed(in, len, cut, 13, 1, &o);
            CU_ASSERT(same_out(&o, &ref));
        }
        free(in);
    }
}

struct want_vals {
    const char *in;
    int n;
    const char *vals[8];
    int final_res;
};

static void check_vals(const struct want_vals *w)
{
    size_t len = strlen(w->in);
    struct scan_out ref;

    feed(w->in, len, len, len, 0, &ref);
    CU_ASSERT_EQUAL(ref.n, w->n);
    CU_ASSERT_EQUAL(ref.res, w->final_res);
    for (int i = 0; i < w->n && i < ref.n; i++) {
        size_t l = strlen(w->vals[i]);
        CU_ASSERT_EQUAL(ref.end[i] - ref.start[i], l);
        CU_ASSERT(memcmp(w->in + ref.start[i], w->vals[i], l) == 0);
    }
    check_all_splits(w->in, len, &ref);
}

static void test_scalars_and_streams(void)
{
    static const struct want_vals cases[] = {
        {"42 \"x\" true false null -1.5e3 {}",
         7,
         {"42", "\"x\"", "true", "false", "null", "-1.5e3", "{}"},
         RP_FRAME_NEED_MORE},
        {"{\"a\":1}{\"b\":2}[3]\"s\"[]",
         5,
         {"{\"a\":1}", "{\"b\":2}", "[3]", "\"s\"", "[]"},
         RP_FRAME_NEED_MORE},
        {"1{}", 2, {"1", "{}"}, RP_FRAME_NEED_MORE},
        {"\"a\"\"b\"", 2, {"\"a\"", "\"b\""}, RP_FRAME_NEED_MORE},
        {"42", 0, {NULL}, RP_FRAME_NEED_MORE},          /* a number needs its delimiter */
        {"true", 0, {NULL}, RP_FRAME_NEED_MORE},        /* so does a literal */
        {"-", 0, {NULL}, RP_FRAME_NEED_MORE},           /* may still become -1 */
        {"  \n\t ", 0, {NULL}, RP_FRAME_NEED_MORE},     /* only whitespace */
        {"{\"a\":[1,2", 0, {NULL}, RP_FRAME_NEED_MORE}, /* incomplete */
        {"0\n-0\t1e5 ", 3, {"0", "-0", "1e5"}, RP_FRAME_NEED_MORE},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        check_vals(&cases[k]);

    /* "true[1]null\"x\"0 " = true, [1], null, "x", 0 */
    const char *in = "true[1]null\"x\"0 ";
    struct scan_out ref;
    feed(in, strlen(in), strlen(in), 0, 0, &ref);
    CU_ASSERT_EQUAL(ref.n, 5);
    CU_ASSERT_EQUAL(ref.res, RP_FRAME_NEED_MORE);
    static const size_t ws[] = {0, 4, 7, 11, 14}, we[] = {4, 7, 11, 14, 15};
    for (int i = 0; i < 5 && i < ref.n; i++) {
        CU_ASSERT_EQUAL(ref.start[i], ws[i]);
        CU_ASSERT_EQUAL(ref.end[i], we[i]);
    }
    check_all_splits(in, strlen(in), &ref);
}

struct bad_case {
    const char *in;
    size_t len; /* 0: strlen */
    size_t offset;
    int values_before; /* complete values before the error */
};

static const struct bad_case bad_cases[] = {
    /* trailing commas, missing separators */
    {"[1,2,]", 0, 5, 0},
    {"{\"a\":1,}", 0, 7, 0},
    {"[,1]", 0, 1, 0},
    {"{,}", 0, 1, 0},
    {"{\"a\" 1}", 0, 5, 0},
    {"{\"a\":}", 0, 5, 0},
    {"[1 2]", 0, 3, 0},
    {"{\"a\":1 \"b\":2}", 0, 7, 0},
    {"[1:2]", 0, 2, 0},
    {"{1:2}", 0, 1, 0},
    {"{\"a\":1,2:3}", 0, 7, 0},
    {"{\"a\"::1}", 0, 5, 0},
    /* escapes */
    {"\"a\\x\"", 0, 3, 0},
    {"[\"\\u12G4\"]", 0, 6, 0},
    {"\"\\u12\"", 0, 5, 0},
    {"\"\\U0041\"", 0, 2, 0},
    {"\"\\'\"", 0, 2, 0},
    /* raw control bytes in strings */
    {"\"a\tb\"", 0, 2, 0},
    {"{\"k\":\"line\nbreak\"}", 0, 10, 0},
    {"\"\x1f\"", 0, 1, 0},
    /* invalid UTF-8 */
    {"\"\x80\"", 0, 1, 0},             /* stray continuation */
    {"\"\xbf\"", 0, 1, 0},             /* stray continuation */
    {"\"\xc0\x80\"", 0, 1, 0},         /* overlong NUL */
    {"\"\xc1\xbf\"", 0, 1, 0},         /* overlong */
    {"\"\xe0\x80\x80\"", 0, 2, 0},     /* overlong 3-byte */
    {"\"\xe0\x9f\xbf\"", 0, 2, 0},     /* overlong 3-byte */
    {"\"\xf0\x80\x80\x80\"", 0, 2, 0}, /* overlong 4-byte */
    {"\"\xf0\x8f\xbf\xbf\"", 0, 2, 0}, /* overlong 4-byte */
    {"\"\xed\xa0\x80\"", 0, 2, 0},     /* surrogate D800 */
    {"\"\xed\xbf\xbf\"", 0, 2, 0},     /* surrogate DFFF */
    {"\"\xf4\x90\x80\x80\"", 0, 2, 0}, /* above U+10FFFF */
    {"\"\xf5\x80\x80\x80\"", 0, 1, 0}, /* lead F5 */
    {"\"\xff\"", 0, 1, 0},             /* lead FF */
    {"\"\xc3\"", 0, 2, 0},             /* truncated by the quote */
    {"\"\xe2\x82x\"", 0, 3, 0},        /* truncated by ASCII */
    {"\"\xf0\x9d\x84\"", 0, 4, 0},     /* 4-byte missing its last */
    {"\"\xc3\xa9\xa9\"", 0, 3, 0},     /* one continuation too many */
    /* numbers */
    {"01 ", 0, 1, 0},
    {"[01]", 0, 2, 0},
    {"-01 ", 0, 2, 0},
    {"[00]", 0, 2, 0},
    {"[-]", 0, 2, 0},
    {"- ", 0, 1, 0},
    {"-a", 0, 1, 0},
    {"[1.]", 0, 3, 0},
    {"[1.e5]", 0, 3, 0},
    {"[1e]", 0, 3, 0},
    {"[1e+]", 0, 4, 0},
    {"[.5]", 0, 1, 0},
    {"[+1]", 0, 1, 0},
    {"[1.5.2]", 0, 4, 0},
    {"[1e5e5]", 0, 4, 0},
    {"[0x10]", 0, 2, 0},
    {"1x", 0, 1, 0},
    {"1]", 0, 1, 0},
    {"1,2", 0, 1, 0},
    {"1-2", 0, 1, 0},
    /* literals */
    {"[tru]", 0, 4, 0},
    {"[nul1]", 0, 4, 0},
    {"True", 0, 0, 0},
    {"[truex]", 0, 5, 0},
    {"truex", 0, 4, 0},
    {"nulll", 0, 4, 0},
    {"[fals e]", 0, 5, 0},
    {"[NaN]", 0, 1, 0},
    /* unbalanced closers */
    {"]", 0, 0, 0},
    {"}", 0, 0, 0},
    {"{\"a\":1]", 0, 6, 0},
    {"[1}", 0, 2, 0},
    {"{\"a\":1}}", 0, 7, 1},
    {"[[]]]", 0, 4, 1},
    {"[{]}", 0, 2, 0},
    /* garbage */
    {"@", 0, 0, 0},
    {"{\"a\":1} x", 0, 8, 1},
    {"{\"a\":1},{\"b\":2}", 0, 7, 1},
    {":", 0, 0, 0},
    {"'a'", 0, 0, 0},
    {"\xef\xbb\xbf{}", 0, 0, 0}, /* a BOM is not whitespace */
    {"\v{}", 0, 0, 0},
    /* NUL bytes */
    {"{\"a\":\0}", 7, 5, 0},
    {"\"a\0\"", 4, 2, 0},
    {"\0", 1, 0, 0},
    {"{}\0", 3, 2, 1},
    {"[1\0]", 4, 2, 0},
};

static void test_syntax_errors(void)
{
    for (size_t k = 0; k < sizeof(bad_cases) / sizeof(bad_cases[0]); k++) {
        const struct bad_case *b = &bad_cases[k];
        size_t len = b->len ? b->len : strlen(b->in);
        struct scan_out ref;

        feed(b->in, len, len, len, 0, &ref);
        if (ref.res != RP_FRAME_ERROR || ref.err != b->offset || ref.n != b->values_before)
            printf("\n  case %zu: res=%d err=%zu n=%d (want off %zu n %d)\n", k, ref.res, ref.err,
                   ref.n, b->offset, b->values_before);
        CU_ASSERT_EQUAL(ref.res, RP_FRAME_ERROR);
        CU_ASSERT_EQUAL(ref.err, b->offset);
        CU_ASSERT_EQUAL(ref.n, b->values_before);
        check_all_splits(b->in, len, &ref);
        if (b->values_before == 0)
            CU_ASSERT_EQUAL(rp_frame_validate(b->in, len), -1);
    }
}

/* The error is sticky: scanning again returns it without moving. */
static void test_error_sticky(void)
{
    struct rp_frame s;
    size_t st, en;
    const char *in = "[1,]{}";

    rp_frame_init(&s);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, in, strlen(in), &st, &en), RP_FRAME_ERROR);
    CU_ASSERT_EQUAL(s.err_offset, 3);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, in, strlen(in), &st, &en), RP_FRAME_ERROR);
    CU_ASSERT_EQUAL(s.err_offset, 3);
}

/* Deterministic mutations of the samples (xorshift, fixed seed): whatever
 * the verdict, scanning the whole buffer and scanning it in pieces (byte by
 * byte, and random chunks with shifting) must agree. */
static void test_mutations_split_invariant(void)
{
    static const char alpha[] =
        "{}[]\":,\\-+.eE019tfnul \t\n\x00\x1f\x80\xbf\xc3\xe0\xed\xf0\xf4\xff";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char in[1024];
    int errors = 0;

    for (int it = 0; it < 3000; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const char *sd = samples[x % (sizeof(samples) / sizeof(samples[0]))];
        size_t len = strlen(sd);
        memcpy(in, sd, len);
        for (int k = 0; k < 1 + (int)(x >> 60) % 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t pos = (size_t)(x % (len + 1));
            char ch = alpha[(x >> 32) % (sizeof(alpha) - 1)];
            if ((x >> 50) % 3 == 0 && pos < len) {
                memmove(in + pos, in + pos + 1, len - pos - 1);
                len--;
            } else if ((x >> 50) % 3 == 1 && len < sizeof(in) - 1) {
                memmove(in + pos + 1, in + pos, len - pos);
                in[pos] = ch;
                len++;
            } else if (pos < len) {
                in[pos] = ch;
            }
        }
        struct scan_out ref, o;
        feed(in, len, len, len, 0, &ref);
        errors += ref.res == RP_FRAME_ERROR;
        feed(in, len, 1, 1, 0, &o);
        CU_ASSERT(same_out(&o, &ref));
        feed(in, len, 1 + (size_t)(x % 17), 1 + (size_t)((x >> 8) % 11), 1, &o);
        CU_ASSERT(same_out(&o, &ref));
        /* a single value that validates is exactly what the scanner found */
        if (rp_frame_validate(in, len) == 0 && ref.n == 1 && ref.res == RP_FRAME_NEED_MORE) {
            for (size_t i = ref.end[0]; i < len; i++)
                CU_ASSERT(in[i] == ' ' || in[i] == '\t' || in[i] == '\n' || in[i] == '\r');
        }
    }
    /* the mutations do produce both verdicts */
    CU_ASSERT(errors > 300 && errors < 2900);
}

static char *repeat(const char *unit, size_t times, const char *tail, size_t *len)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *p = malloc(ul * times + tl + 1);
    CU_ASSERT_FATAL(p != NULL);
    for (size_t i = 0; i < times; i++)
        memcpy(p + i * ul, unit, ul);
    memcpy(p + ul * times, tail, tl + 1);
    *len = ul * times + tl;
    return p;
}

static void test_depth(void)
{
    size_t len, st, en;
    struct rp_frame s;

    /* 100,000 '[' */
    char *deep = repeat("[", 100000, "", &len);
    rp_frame_init(&s);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, deep, len, &st, &en), RP_FRAME_TOO_DEEP);
    CU_ASSERT_EQUAL(s.err_offset, RP_FRAME_MAX_DEPTH);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, deep, len, &st, &en), RP_FRAME_TOO_DEEP); /* sticky */
    CU_ASSERT_EQUAL(rp_frame_validate(deep, len), -1);
    /* the same, byte by byte */
    rp_frame_init(&s);
    enum rp_frame_result r = RP_FRAME_NEED_MORE;
    for (size_t avail = 1; avail <= len && r == RP_FRAME_NEED_MORE; avail++)
        r = rp_frame_scan(&s, deep, avail, &st, &en);
    CU_ASSERT_EQUAL(r, RP_FRAME_TOO_DEEP);
    CU_ASSERT_EQUAL(s.err_offset, RP_FRAME_MAX_DEPTH);
    free(deep);

    /* 100,000 nested objects */
    deep = repeat("{\"a\":", 100000, "1", &len);
    rp_frame_init(&s);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, deep, len, &st, &en), RP_FRAME_TOO_DEEP);
    CU_ASSERT_EQUAL(s.err_offset, RP_FRAME_MAX_DEPTH * 5);
    free(deep);

    /* exactly the limit is fine, one more is not */
    char *ok = malloc(2 * RP_FRAME_MAX_DEPTH + 2);
    CU_ASSERT_FATAL(ok != NULL);
    for (int d = RP_FRAME_MAX_DEPTH; d <= RP_FRAME_MAX_DEPTH + 1; d++) {
        for (int i = 0; i < d; i++) {
            ok[i] = '[';
            ok[2 * d - 1 - i] = ']';
        }
        rp_frame_init(&s);
        r = rp_frame_scan(&s, ok, (size_t)(2 * d), &st, &en);
        if (d == RP_FRAME_MAX_DEPTH) {
            CU_ASSERT_EQUAL(r, RP_FRAME_VALUE);
            CU_ASSERT_EQUAL(en, (size_t)(2 * d));
            CU_ASSERT_EQUAL(rp_frame_validate(ok, (size_t)(2 * d)), 0);
        } else {
            CU_ASSERT_EQUAL(r, RP_FRAME_TOO_DEEP);
            CU_ASSERT_EQUAL(rp_frame_validate(ok, (size_t)(2 * d)), -1);
        }
    }
    free(ok);

    /* depth returns to 0 between values: many shallow values never trip it */
    char *many = repeat("[[[]]]", 2000, " ", &len);
    rp_frame_init(&s);
    int n = 0;
    while (rp_frame_scan(&s, many, len, &st, &en) == RP_FRAME_VALUE)
        n++;
    CU_ASSERT_EQUAL(n, 2000);
    CU_ASSERT_EQUAL(s.depth, 0);
    free(many);
}

/* rp_frame_shift: drop the consumed prefix, including in the middle of the
 * next value, and keep scanning. */
static void test_shift(void)
{
    struct rp_frame s;
    size_t st, en;
    char buf[64];
    size_t have;

    rp_frame_init(&s);
    strcpy(buf, "{\"a\":1}  {\"b\":[1,\"x\\");
    have = strlen(buf);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_VALUE);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(en, 7);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_NEED_MORE);
    CU_ASSERT_EQUAL(s.start, 9);
    CU_ASSERT_EQUAL(s.pos, have);
    CU_ASSERT_EQUAL(s.depth, 2);
    /* drop the first value; the scanner is inside an escape in a string */
    memmove(buf, buf + 7, have - 7);
    have -= 7;
    rp_frame_shift(&s, 7);
    CU_ASSERT_EQUAL(s.start, 2);
    CU_ASSERT_EQUAL(s.pos, have);
    memcpy(buf + have, "\"\"]}7", 5);
    have += 5;
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_VALUE);
    CU_ASSERT_EQUAL(st, 2);
    CU_ASSERT_EQUAL(en, have - 1);
    CU_ASSERT(memcmp(buf + st, "{\"b\":[1,\"x\\\"\"]}", en - st) == 0);
    /* a top-level number in progress across a shift */
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_NEED_MORE);
    size_t drop = have - 1;
    memmove(buf, buf + drop, 1);
    have = 1;
    rp_frame_shift(&s, drop);
    CU_ASSERT_EQUAL(s.start, 0);
    CU_ASSERT_EQUAL(s.pos, 1);
    memcpy(buf + have, "5 ", 2);
    have += 2;
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_VALUE);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(en, 2);

    /* whitespace scanned past between values may be dropped too */
    rp_frame_init(&s);
    strcpy(buf, "[]     ");
    have = strlen(buf);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_VALUE);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_NEED_MORE);
    CU_ASSERT_EQUAL(s.pos, have);
    CU_ASSERT_EQUAL(s.start, have); /* no value open: start follows pos */
    CU_ASSERT_EQUAL(s.in_value, 0);
    rp_frame_shift(&s, have);
    have = 0;
    CU_ASSERT_EQUAL(s.pos, 0);
    strcpy(buf, "{}");
    have = 2;
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_VALUE);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(en, 2);

    /* an error offset found after a shift is relative to the new buffer */
    rp_frame_init(&s);
    strcpy(buf, "{} [1,");
    have = strlen(buf);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_VALUE);
    memmove(buf, buf + 2, have - 2);
    have -= 2;
    rp_frame_shift(&s, 2);
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_NEED_MORE);
    buf[have++] = '}';
    CU_ASSERT_EQUAL(rp_frame_scan(&s, buf, have, &st, &en), RP_FRAME_ERROR);
    CU_ASSERT_EQUAL(s.err_offset, 4);
}

static void test_validate(void)
{
    static const char *const good[] = {
        "{\"a\":1}", "  [1,2]  \n",
        "42",        "-0.5e10",
        "true",      "null",
        "\"x\"",     " false ",
        "0",         "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x10\"}",
        "[]",        "{}",
    };
    static const char *const bad[] = {
        "",    "   ", "{} {}", "{}x",      "[1,]",  "-",   "1.",
        "tru", "1 2", "[",     "{\"a\":1", "\"abc", "{}]", "01",
    };
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++)
        CU_ASSERT_EQUAL(rp_frame_validate(good[k], strlen(good[k])), 0);
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        CU_ASSERT_EQUAL(rp_frame_validate(bad[k], strlen(bad[k])), -1);

    /* a big body: a million short strings in one array */
    size_t len;
    char *body = repeat("\"0x0123456789abcdef\",", 1000000, "1]", &len);
    char *big = malloc(len + 1);
    CU_ASSERT_FATAL(big != NULL);
    big[0] = '[';
    memcpy(big + 1, body, len);
    len++;
    free(body);
    CU_ASSERT_EQUAL(rp_frame_validate(big, len), 0);
    big[len - 2] = ','; /* trailing comma */
    CU_ASSERT_EQUAL(rp_frame_validate(big, len), -1);
    free(big);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"samples split at every byte", test_samples_every_split},
        {"samples concatenated", test_samples_concatenated},
        {"scalars and streams", test_scalars_and_streams},
        {"syntax errors at their offset", test_syntax_errors},
        {"errors are sticky", test_error_sticky},
        {"mutations: split invariant", test_mutations_split_invariant},
        {"nesting depth", test_depth},
        {"rp_frame_shift", test_shift},
        {"rp_frame_validate", test_validate},
        {NULL, NULL},
    };
    return rp_test_run("frame", cases);
}
