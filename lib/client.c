/* client.c - librpcpool, the C client library (include/rpcpool/client.h).
 *
 * One connection = one non-blocking UNIX stream socket, an output queue of
 * request bytes, an input buffer of answer bytes cut at '\n', and the
 * answers received but not collected yet: a list in arrival order (for
 * rpcpool_next_response) indexed by id in an open-addressing table (for
 * rpcpool_wait). Answer lines are tokenised with jsmn, sized by a counting
 * pass; every token is bounds-checked before use, because the bytes come
 * from another process and must never crash the caller.
 */
#include "rpcpool/client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#ifndef RP_VERSION
#define RP_VERSION "0.0.0"
#endif

#define READ_CHUNK_BYTES     65536
#define READS_PER_CALL       64 /* bound on recv() calls in one rpcpool_read() */
#define MIN_MAX_LINE_BYTES   1024
#define MAX_MAX_LINE_BYTES   ((size_t)1 << 30)
#define STATS_TIMEOUT_MS     5000
#define STATS_MAX_LINE_BYTES (1u << 20)
#define CONNECT_TIMEOUT_MS   5000

/* An answer waiting to be collected. */
struct node {
    struct rpcpool_response r;
    struct node *prev, *next;
};

/* uint64 id -> pointer, linear probing; key 0 marks an empty slot (ids
 * start at 1). */
struct idmap {
    uint64_t *keys;
    void **vals;
    size_t cap; /* a power of two, or 0 */
    size_t count;
};

struct rpcpool {
    int fd;
    int failed; /* sticky: the connection is unusable */
    char errbuf[512];
    size_t max_line_bytes;
    uint64_t next_id;
    size_t pending; /* calls queued whose answer has not arrived */

    char *out; /* queued request bytes: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;

    char *in; /* received bytes: in[in_off..in_len); no '\n' in [in_off..in_scan) */
    size_t in_off, in_scan, in_len, in_cap;

    struct node *head, *tail; /* answers in arrival order */
    size_t null_count;        /* of which with a null id */
    struct idmap done;        /* id -> node */
    struct idmap inflight;    /* ids sent and not answered yet */
    struct idmap abandoned;   /* ids whose late answer is dropped */
    char null_error[256];     /* last error answered with a null id */
};

const char *rpcpool_version(void)
{
    return RP_VERSION;
}

/* ---- errors --------------------------------------------------------- */

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Format a message into a caller's ERR buffer (may be NULL / 0 bytes). */
static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void set_err(rpcpool_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record the message of a failure that leaves the connection usable. */
static void set_err(rpcpool_t *p, const char *fmt, ...)
{
    if (p->failed)
        return; /* keep the message that failed the connection */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errbuf, sizeof p->errbuf, fmt, ap);
    va_end(ap);
}

static void fail(rpcpool_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fail the connection for good with a message (the first one stays). */
static void fail(rpcpool_t *p, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errbuf, sizeof p->errbuf, fmt, ap);
    va_end(ap);
}

const char *rpcpool_error(const rpcpool_t *p)
{
    return p ? p->errbuf : "no connection";
}

/* Milliseconds on CLOCK_MONOTONIC. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- id table --------------------------------------------------------- */

static size_t idmap_home(const struct idmap *m, uint64_t key)
{
    uint64_t h = key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h ^ (h >> 29)) & (m->cap - 1);
}

/* The slot of KEY, or SIZE_MAX when absent. */
static size_t idmap_find(const struct idmap *m, uint64_t key)
{
    if (m->cap == 0 || key == 0)
        return SIZE_MAX;
    for (size_t i = idmap_home(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return i;
        if (m->keys[i] == 0)
            return SIZE_MAX;
    }
}

static void *idmap_get(const struct idmap *m, uint64_t key)
{
    size_t i = idmap_find(m, key);
    return i == SIZE_MAX ? NULL : m->vals[i];
}

/* Insert KEY (not present, non-zero) -> VAL, growing the table to keep it
 * at most half full. Returns 0, or -1 when out of memory. */
static int idmap_put(struct idmap *m, uint64_t key, void *val)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct idmap n = {calloc(ncap, sizeof *n.keys), calloc(ncap, sizeof *n.vals), ncap, 0};
        if (!n.keys || !n.vals) {
            free(n.keys);
            free(n.vals);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                idmap_put(&n, m->keys[i], m->vals[i]); /* cannot grow again */
        free(m->keys);
        free(m->vals);
        *m = n;
    }
    size_t i = idmap_home(m, key);
    while (m->keys[i])
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return 0;
}

/* Remove KEY (backward-shift deletion, no tombstones); returns its value or
 * NULL when absent. */
static void *idmap_del(struct idmap *m, uint64_t key)
{
    size_t i = idmap_find(m, key);
    if (i == SIZE_MAX)
        return NULL;
    void *val = m->vals[i];
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t k = idmap_home(m, m->keys[j]);
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        int stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            i = j;
        }
    }
    m->keys[i] = 0;
    m->vals[i] = NULL;
    m->count--;
    return val;
}

static void idmap_free(struct idmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- buffers ------------------------------------------------------------ */

/* Make room for NEED bytes in *BUF of capacity *CAP. 0, or -1 on overflow or
 * out of memory. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    char *n = realloc(*buf, ncap);
    if (!n)
        return -1;
    *buf = n;
    *cap = ncap;
    return 0;
}

/* A growable string used to build one request before it is queued. */
struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom || reserve(&b->s, &b->cap, b->len + n + 1) != 0) {
        b->oom = 1;
        return;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* Append S as a JSON string literal (quotes, escapes for '"', '\' and
 * control characters; other bytes as they are). */
static void sb_json_string(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            sb_put(b, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *c);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* ---- JSON helpers ------------------------------------------------------ */

/* Index just past the subtree of token I (its value and all descendants).
 * Relies on jsmn's size = number of direct children (1 for an object key).
 */
static int tok_skip(const jsmntok_t *t, int ntok, int i)
{
    int todo = 1;
    while (todo > 0 && i < ntok) {
        todo += t[i].size;
        todo--;
        i++;
    }
    return i;
}

/* The JSON text of token T: strings include their quotes. */
static void tok_span(const jsmntok_t *t, int *start, int *end)
{
    *start = t->type == JSMN_STRING ? t->start - 1 : t->start;
    *end = t->type == JSMN_STRING ? t->end + 1 : t->end;
}

static int tok_eq(const char *js, const jsmntok_t *t, const char *s)
{
    size_t n = strlen(s);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(js + t->start, s, n) == 0;
}

static int tok_is_null(const char *js, const jsmntok_t *t)
{
    return t->type == JSMN_PRIMITIVE && t->end - t->start == 4 &&
           memcmp(js + t->start, "null", 4) == 0;
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Tokenise JS[0..LEN) as exactly one JSON object or array (surrounding
 * whitespace allowed): tokens sized by a counting pass, then a real pass.
 * Returns the token count with *TOKS malloc'd (caller frees), or -1 with a
 * reason in *WHY. */
static int tokenize(const char *js, size_t len, jsmntok_t **toks, const char **why)
{
    *toks = NULL;
    if (len > INT_MAX / 2) {
        *why = "too long";
        return -1;
    }
    if (memchr(js, '\0', len)) {
        *why = "contains a NUL byte";
        return -1;
    }
    size_t b = 0, e = len;
    while (b < e && is_ws(js[b]))
        b++;
    while (e > b && is_ws(js[e - 1]))
        e--;
    if (b == e || (js[b] != '{' && js[b] != '[')) {
        *why = "not a JSON object or array";
        return -1;
    }
    jsmn_parser jp;
    jsmn_init(&jp);
    int n = jsmn_parse(&jp, js, len, NULL, 0);
    if (n <= 0) {
        *why = "not valid JSON";
        return -1;
    }
    jsmntok_t *t = malloc((size_t)n * sizeof *t);
    if (!t) {
        *why = "out of memory";
        return -1;
    }
    jsmn_init(&jp);
    int r = jsmn_parse(&jp, js, len, t, (unsigned)n);
    if (r <= 0 || t[0].start != (int)b || t[0].end != (int)e || tok_skip(t, r, 0) != r) {
        free(t);
        *why = r == JSMN_ERROR_PART ? "incomplete JSON" : "not valid JSON";
        return -1;
    }
    *toks = t;
    return r;
}

/* Append the UTF-8 encoding of code point CP to O (4 bytes of room). */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Four hex digits at S (N bytes available) as a number, or -1. */
static long hex4(const char *s, size_t n)
{
    if (n < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decode the body of a JSON string (between the quotes, N bytes) into a
 * malloc'd UTF-8 C string; bad escapes and lone surrogates become U+FFFD.
 * NULL when out of memory. */
static char *json_unescape(const char *s, size_t n)
{
    char *o = malloc(n + 1); /* decoding never grows the text */
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\' || i + 1 >= n) {
            o[j++] = s[i++];
            continue;
        }
        char c = s[i + 1];
        i += 2;
        switch (c) {
        case 'b':
            o[j++] = '\b';
            break;
        case 'f':
            o[j++] = '\f';
            break;
        case 'n':
            o[j++] = '\n';
            break;
        case 'r':
            o[j++] = '\r';
            break;
        case 't':
            o[j++] = '\t';
            break;
        case 'u': {
            long u = hex4(s + i, n - i);
            uint32_t cp = 0xFFFD;
            if (u >= 0) {
                i += 4;
                cp = (uint32_t)u;
                if (u >= 0xD800 && u <= 0xDBFF && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
                    long lo = hex4(s + i + 2, n - i - 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + (((uint32_t)u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                        i += 6;
                    }
                }
                if (cp >= 0xD800 && cp <= 0xDFFF)
                    cp = 0xFFFD;
            }
            /* "\uXXXX" is 6 bytes and yields at most 3; a pair is 12 -> 4. */
            j += put_utf8(o + j, cp);
            break;
        }
        default: /* '"', '\\', '/' and anything else: the character itself */
            o[j++] = c;
            break;
        }
    }
    o[j] = '\0';
    return o;
}

/* Parse a primitive token as a signed integer (an integral JSON number).
 * 0, or -1 when it is not one. */
/* Copy a primitive token that starts like a number into TMP (NUL-ended).
 * 0, or -1 when it is not one or is too long. */
static int tok_number_text(const char *js, const jsmntok_t *t, char *tmp, size_t cap)
{
    int n = t->end - t->start;
    if (t->type != JSMN_PRIMITIVE || n <= 0 || (size_t)n >= cap)
        return -1;
    memcpy(tmp, js + t->start, (size_t)n);
    tmp[n] = '\0';
    return tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9') ? 0 : -1;
}

/* Parse a number token as a finite double. 0, or -1 when it is not one. */
static int tok_double(const char *js, const jsmntok_t *t, double *out)
{
    char tmp[64];
    if (tok_number_text(js, t, tmp, sizeof tmp) != 0)
        return -1;
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (*end != '\0' || errno != 0 || d != d)
        return -1;
    *out = d;
    return 0;
}

static int tok_int64(const char *js, const jsmntok_t *t, int64_t *out)
{
    char tmp[64];
    if (tok_number_text(js, t, tmp, sizeof tmp) != 0)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end == '\0' && errno == 0) {
        *out = v;
        return 0;
    }
    /* An integral value written as a float ("-32000.0", "1e3"). */
    double d;
    if (tok_double(js, t, &d) != 0 || d < -9.2e18 || d > 9.2e18 || d != (double)(int64_t)d)
        return -1;
    *out = (int64_t)d;
    return 0;
}

/* Parse a primitive token of decimal digits as an unsigned integer. */
static int tok_uint64(const char *js, const jsmntok_t *t, uint64_t *out)
{
    int n = t->end - t->start;
    if (t->type != JSMN_PRIMITIVE || n <= 0 || n > 20)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = js[t->start + i];
        if (c < '0' || c > '9')
            return -1;
        unsigned d = (unsigned)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static char *dup_span(const char *js, int start, int end)
{
    size_t n = (size_t)(end - start);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, js + start, n);
        s[n] = '\0';
    }
    return s;
}

/* ---- responses --------------------------------------------------------- */

void rpcpool_response_free(struct rpcpool_response *resp)
{
    if (!resp)
        return;
    free(resp->error_message);
    free(resp->result_json);
    free(resp->raw);
    free(resp->error_data_json);
    memset(resp, 0, sizeof *resp);
}

static void list_unlink(rpcpool_t *p, struct node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        p->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        p->tail = n->prev;
    n->prev = n->next = NULL;
    if (n->r.id == 0)
        p->null_count--;
}

/* Move node N (already unlinked) into *RESP and free it. */
static void node_take(struct node *n, struct rpcpool_response *resp)
{
    *resp = n->r;
    free(n);
}

/* Hand back the answer to ID if it has arrived: 1, else 0. */
static int take_id(rpcpool_t *p, uint64_t id, struct rpcpool_response *resp)
{
    struct node *n = idmap_del(&p->done, id);
    if (!n)
        return 0;
    list_unlink(p, n);
    node_take(n, resp);
    return 1;
}

/* Parse the error object at token I of an answer into R. 0, or -1 with the
 * reason in *WHY. */
static int parse_error_obj(const char *js, const jsmntok_t *t, int ntok, int i,
                           struct rpcpool_response *r, const char **why)
{
    int have_code = 0, have_msg = 0;
    int k = i + 1;
    for (int m = 0; m < t[i].size && k + 1 < ntok; m++) {
        const jsmntok_t *key = &t[k], *val = &t[k + 1];
        if (tok_eq(js, key, "code")) {
            if (tok_int64(js, val, &r->error_code) != 0) {
                *why = "error code is not an integer";
                return -1;
            }
            have_code = 1;
        } else if (tok_eq(js, key, "message") && val->type == JSMN_STRING) {
            free(r->error_message);
            r->error_message = json_unescape(js + val->start, (size_t)(val->end - val->start));
            if (!r->error_message) {
                *why = "out of memory";
                return -1;
            }
            have_msg = 1;
        } else if (tok_eq(js, key, "data")) {
            int s, e;
            tok_span(val, &s, &e);
            free(r->error_data_json);
            r->error_data_json = dup_span(js, s, e);
            if (!r->error_data_json) {
                *why = "out of memory";
                return -1;
            }
        }
        k = tok_skip(t, ntok, k + 1);
    }
    if (!have_code || !have_msg) {
        *why = "error object without an integer code and a string message";
        return -1;
    }
    return 0;
}

/* Turn the answer object at token I into a queued node (or drop it when its
 * call was abandoned). Returns 1 when an answer was queued, 0 when dropped,
 * -1 when the connection failed. */
static int handle_answer(rpcpool_t *p, const char *js, const jsmntok_t *t, int ntok, int i)
{
    const char *why = NULL;
    struct rpcpool_response r = {0};
    int have_id = 0, result_tok = -1, error_tok = -1;
    if (t[i].type != JSMN_OBJECT) {
        fail(p, "protocol error: an answer is not a JSON object");
        return -1;
    }
    int k = i + 1;
    for (int m = 0; m < t[i].size && k + 1 < ntok; m++) {
        const jsmntok_t *key = &t[k], *val = &t[k + 1];
        if (key->type != JSMN_STRING) {
            fail(p, "protocol error: answer object with a non-string key");
            return -1;
        }
        if (tok_eq(js, key, "id")) {
            if (tok_is_null(js, val)) {
                r.id = 0;
            } else if (tok_uint64(js, val, &r.id) != 0 || r.id == 0) {
                int s, e;
                tok_span(val, &s, &e);
                fail(p, "protocol error: answer with an id this client never uses: %.*s",
                     e - s > 64 ? 64 : e - s, js + s);
                return -1;
            }
            have_id = 1;
        } else if (tok_eq(js, key, "result")) {
            result_tok = k + 1;
        } else if (tok_eq(js, key, "error")) {
            /* "error":null next to a result counts as absent. */
            if (!tok_is_null(js, val))
                error_tok = k + 1;
        }
        k = tok_skip(t, ntok, k + 1);
    }
    if (!have_id) {
        fail(p, "protocol error: answer without an id");
        return -1;
    }
    if (error_tok >= 0) {
        if (t[error_tok].type != JSMN_OBJECT) {
            fail(p, "protocol error: answer whose error is not an object");
            return -1;
        }
        r.is_error = 1;
        if (parse_error_obj(js, t, ntok, error_tok, &r, &why) != 0) {
            rpcpool_response_free(&r);
            fail(p, "protocol error: %s", why);
            return -1;
        }
    } else if (result_tok >= 0) {
        int s, e;
        tok_span(&t[result_tok], &s, &e);
        r.result_json = dup_span(js, s, e);
    } else {
        fail(p, "protocol error: answer with neither result nor error");
        return -1;
    }
    if (r.id >= p->next_id) {
        fail(p, "protocol error: answer to call %" PRIu64 ", which was never sent", r.id);
        rpcpool_response_free(&r);
        return -1;
    }
    /* a second answer to a call is an error whether or not the first was
     * collected already (it must not depend on when the caller reads) */
    if (r.id != 0 && !idmap_del(&p->inflight, r.id)) {
        fail(p, "protocol error: two answers to call %" PRIu64, r.id);
        rpcpool_response_free(&r); /* (zeroes r: after the message) */
        return -1;
    }
    if (r.id != 0 && idmap_get(&p->abandoned, r.id)) {
        idmap_del(&p->abandoned, r.id);
        if (p->pending > 0)
            p->pending--;
        rpcpool_response_free(&r);
        return 0;
    }
    r.raw = dup_span(js, t[i].start, t[i].end);
    struct node *n = calloc(1, sizeof *n);
    if (!n || !r.raw || (!r.is_error && !r.result_json) ||
        (r.id != 0 && idmap_put(&p->done, r.id, n) != 0)) {
        free(n);
        rpcpool_response_free(&r);
        fail(p, "out of memory");
        return -1;
    }
    n->r = r;
    n->prev = p->tail;
    if (p->tail)
        p->tail->next = n;
    else
        p->head = n;
    p->tail = n;
    if (r.id == 0) {
        p->null_count++;
        if (r.is_error)
            snprintf(p->null_error, sizeof p->null_error, "%" PRId64 " %s", r.error_code,
                     r.error_message);
    } else if (p->pending > 0) {
        p->pending--;
    }
    return 1;
}

/* Handle one answer line (without its '\n'): an object, or an array of
 * answers to a batch. Returns answers queued, or -1 when it failed the
 * connection. */
static int handle_line(rpcpool_t *p, const char *line, size_t len)
{
    size_t b = 0;
    while (b < len && is_ws(line[b]))
        b++;
    if (b == len)
        return 0; /* blank line */
    jsmntok_t *t;
    const char *why;
    int ntok = tokenize(line, len, &t, &why);
    if (ntok < 0) {
        fail(p, "protocol error: answer line %s: %.*s%s", why, len - b > 80 ? 80 : (int)(len - b),
             line + b, len - b > 80 ? "..." : "");
        return -1;
    }
    int queued = 0;
    if (t[0].type == JSMN_OBJECT) {
        queued = handle_answer(p, line, t, ntok, 0);
    } else {
        int k = 1;
        for (int m = 0; m < t[0].size && k < ntok; m++) {
            int r = handle_answer(p, line, t, ntok, k);
            if (r < 0) {
                queued = -1;
                break;
            }
            queued += r;
            k = tok_skip(t, ntok, k);
        }
    }
    free(t);
    return queued;
}

/* Cut every complete line out of the input buffer and handle it. Returns
 * answers queued, or -1 when the connection failed. */
static int process_input(rpcpool_t *p)
{
    int queued = 0;
    while (!p->failed) {
        char *nl = memchr(p->in + p->in_scan, '\n', p->in_len - p->in_scan);
        if (!nl) {
            p->in_scan = p->in_len;
            if (p->in_len - p->in_off > p->max_line_bytes)
                fail(p, "protocol error: answer line longer than %zu bytes", p->max_line_bytes);
            break;
        }
        size_t len = (size_t)(nl - (p->in + p->in_off));
        if (len > p->max_line_bytes) {
            fail(p, "protocol error: answer line longer than %zu bytes", p->max_line_bytes);
            break;
        }
        int r = handle_line(p, p->in + p->in_off, len);
        if (r < 0)
            break;
        queued += r;
        p->in_off = p->in_scan = (size_t)(nl - p->in) + 1;
        if (p->in_off == p->in_len)
            p->in_off = p->in_scan = p->in_len = 0;
    }
    return p->failed ? -1 : queued;
}

/* ---- connection ----------------------------------------------------------- */

/* Connect a stream socket to the UNIX socket PATH, bounded by TIMEOUT_MS
 * (SO_SNDTIMEO bounds a UNIX connect() whose listener backlog is full).
 * Returns a non-blocking close-on-exec fd, or -1 with ERR. */
static int connect_unix(const char *path, const char *what, int timeout_ms, char *err,
                        size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path) {
        fmt_err(err, errlen, "%s: no socket path given", what);
        return -1;
    }
    if (strlen(path) >= sizeof sa.sun_path) {
        fmt_err(err, errlen, "%s: path longer than %zu bytes: %.80s...", what,
                sizeof sa.sun_path - 1, path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fmt_err(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        const char *hint = e == ENOENT         ? " (is rpcpoold running?)"
                           : e == ECONNREFUSED ? " (nothing listens: rpcpoold is not running)"
                           : e == EACCES       ? " (not allowed: check the socket's owner and mode)"
                           : e == EAGAIN       ? " (timed out: rpcpoold is not accepting)"
                                               : "";
        fmt_err(err, errlen, "cannot connect to %s %s: %s%s", what, path, strerror(e), hint);
        close(fd);
        return -1;
    }
    struct timeval zero = {0, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        fmt_err(err, errlen, "fcntl: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

rpcpool_t *rpcpool_connect(const char *socket_path, char *err, size_t errlen)
{
    fmt_err(err, errlen, "%s", "");
    rpcpool_t *p = calloc(1, sizeof *p);
    if (!p) {
        fmt_err(err, errlen, "out of memory");
        return NULL;
    }
    p->fd = connect_unix(socket_path, "rpcpool socket", CONNECT_TIMEOUT_MS, err, errlen);
    if (p->fd < 0) {
        free(p);
        return NULL;
    }
    p->max_line_bytes = RPCPOOL_DEFAULT_MAX_LINE_BYTES;
    p->next_id = 1;
    return p;
}

void rpcpool_close(rpcpool_t *p)
{
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    for (struct node *n = p->head, *next; n; n = next) {
        next = n->next;
        rpcpool_response_free(&n->r);
        free(n);
    }
    idmap_free(&p->done);
    idmap_free(&p->inflight);
    idmap_free(&p->abandoned);
    free(p->out);
    free(p->in);
    free(p);
}

int rpcpool_set_max_line_bytes(rpcpool_t *p, size_t max_line_bytes)
{
    if (max_line_bytes < MIN_MAX_LINE_BYTES || max_line_bytes > MAX_MAX_LINE_BYTES) {
        set_err(p, "max line bytes %zu out of range %d..%zu", max_line_bytes, MIN_MAX_LINE_BYTES,
                MAX_MAX_LINE_BYTES);
        return RPCPOOL_ERROR;
    }
    p->max_line_bytes = max_line_bytes;
    return RPCPOOL_OK;
}

int rpcpool_fd(const rpcpool_t *p)
{
    return p->fd;
}

short rpcpool_poll_events(const rpcpool_t *p)
{
    return (short)(POLLIN | (p->out_len > p->out_off ? POLLOUT : 0));
}

size_t rpcpool_pending(const rpcpool_t *p)
{
    return p->pending;
}

/* ---- sending -------------------------------------------------------------- */

/* Check that PARAMS (NULL allowed) is one JSON array or object. 0, or -1
 * with the reason set on P. */
static int check_params(rpcpool_t *p, const char *params, size_t index)
{
    if (!params)
        return 0;
    jsmntok_t *t;
    const char *why;
    if (tokenize(params, strlen(params), &t, &why) < 0) {
        set_err(p, "params of call %zu: %s (want a JSON array or object)", index, why);
        return -1;
    }
    free(t);
    return 0;
}

/* Append one request object for call ID to B. */
static void build_call(struct sbuf *b, uint64_t id, const char *method, const char *params)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, id);
    sb_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    sb_puts(b, num);
    sb_puts(b, ",\"method\":");
    sb_json_string(b, method);
    sb_puts(b, ",\"params\":");
    sb_puts(b, params ? params : "[]");
    sb_puts(b, "}");
}

/* Move B's bytes to the output queue. 0, or -1 when out of memory. */
static int queue_bytes(rpcpool_t *p, const char *s, size_t n)
{
    if (p->out_off == p->out_len)
        p->out_off = p->out_len = 0;
    else if (p->out_off > p->out_cap / 2) {
        memmove(p->out, p->out + p->out_off, p->out_len - p->out_off);
        p->out_len -= p->out_off;
        p->out_off = 0;
    }
    if (reserve(&p->out, &p->out_cap, p->out_len + n) != 0)
        return -1;
    memcpy(p->out + p->out_len, s, n);
    p->out_len += n;
    return 0;
}

int rpcpool_send_batch(rpcpool_t *p, size_t n, const char *const methods[],
                       const char *const params[], uint64_t ids[])
{
    if (p->failed)
        return RPCPOOL_ERROR;
    if (n == 0 || !methods || !ids) {
        set_err(p, "a batch needs at least one call (methods and ids arrays)");
        return RPCPOOL_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        if (!methods[i] || !*methods[i]) {
            set_err(p, "call %zu: empty method name", i);
            return RPCPOOL_ERROR;
        }
        if (check_params(p, params ? params[i] : NULL, i) != 0)
            return RPCPOOL_ERROR;
    }
    struct sbuf b = {0};
    sb_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sb_puts(&b, ",");
        build_call(&b, p->next_id + i, methods[i], params ? params[i] : NULL);
    }
    sb_puts(&b, "]\n");
    if (b.oom || queue_bytes(p, b.s, b.len) != 0) {
        free(b.s);
        set_err(p, "out of memory");
        return RPCPOOL_ERROR;
    }
    free(b.s);
    for (size_t i = 0; i < n; i++) {
        if (idmap_put(&p->inflight, p->next_id + i, p) != 0) {
            while (i-- > 0)
                idmap_del(&p->inflight, p->next_id + i);
            p->out_len -= b.len; /* not queued after all */
            set_err(p, "out of memory");
            return RPCPOOL_ERROR;
        }
    }
    for (size_t i = 0; i < n; i++)
        ids[i] = p->next_id++;
    p->pending += n;
    return RPCPOOL_OK;
}

int rpcpool_send(rpcpool_t *p, const char *method, const char *params_json, uint64_t *id)
{
    if (p->failed)
        return RPCPOOL_ERROR;
    if (!method || !*method) {
        set_err(p, "empty method name");
        return RPCPOOL_ERROR;
    }
    if (check_params(p, params_json, 0) != 0)
        return RPCPOOL_ERROR;
    struct sbuf b = {0};
    build_call(&b, p->next_id, method, params_json);
    sb_puts(&b, "\n");
    if (b.oom || queue_bytes(p, b.s, b.len) != 0) {
        free(b.s);
        set_err(p, "out of memory");
        return RPCPOOL_ERROR;
    }
    if (idmap_put(&p->inflight, p->next_id, p) != 0) {
        p->out_len -= b.len; /* not queued after all */
        free(b.s);
        set_err(p, "out of memory");
        return RPCPOOL_ERROR;
    }
    free(b.s);
    if (id)
        *id = p->next_id;
    p->next_id++;
    p->pending++;
    return RPCPOOL_OK;
}

long rpcpool_flush(rpcpool_t *p)
{
    if (p->failed)
        return RPCPOOL_ERROR;
    while (p->out_off < p->out_len) {
        ssize_t n =
            send(p->fd, p->out + p->out_off, p->out_len - p->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            fail(p, "write to rpcpoold failed: %s", n < 0 ? strerror(errno) : "no progress");
            return RPCPOOL_ERROR;
        }
    }
    if (p->out_off == p->out_len)
        p->out_off = p->out_len = 0;
    size_t left = p->out_len - p->out_off;
    return left > LONG_MAX ? LONG_MAX : (long)left;
}

/* ---- receiving ------------------------------------------------------------ */

/* The server closed the connection: fail it with what is known. */
static void closed_by_server(rpcpool_t *p)
{
    int partial = 0;
    for (size_t i = p->in_off; i < p->in_len; i++)
        if (!is_ws(p->in[i]))
            partial = 1;
    char extra[320] = "";
    if (p->null_error[0])
        snprintf(extra, sizeof extra, "; its last error: %s", p->null_error);
    fail(p, "connection closed by rpcpoold%s with %zu call(s) unanswered%s",
         partial ? " in the middle of an answer" : "", p->pending, extra);
}

int rpcpool_read(rpcpool_t *p)
{
    if (p->failed)
        return RPCPOOL_ERROR;
    int queued = 0;
    for (int reads = 0; reads < READS_PER_CALL; reads++) {
        if (p->in_cap - p->in_len < READ_CHUNK_BYTES && p->in_off > 0) {
            memmove(p->in, p->in + p->in_off, p->in_len - p->in_off);
            p->in_len -= p->in_off;
            p->in_scan -= p->in_off;
            p->in_off = 0;
        }
        if (reserve(&p->in, &p->in_cap, p->in_len + READ_CHUNK_BYTES) != 0) {
            fail(p, "out of memory");
            return RPCPOOL_ERROR;
        }
        ssize_t n = recv(p->fd, p->in + p->in_len, p->in_cap - p->in_len, MSG_DONTWAIT);
        if (n > 0) {
            p->in_len += (size_t)n;
            int r = process_input(p);
            if (r < 0)
                return RPCPOOL_ERROR;
            queued += r;
        } else if (n == 0) {
            closed_by_server(p);
            return RPCPOOL_ERROR;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            fail(p, "read from rpcpoold failed: %s", strerror(errno));
            return RPCPOOL_ERROR;
        }
    }
    return queued;
}

int rpcpool_next_response(rpcpool_t *p, struct rpcpool_response *resp)
{
    struct node *n = p->head;
    if (!n)
        return 0;
    list_unlink(p, n);
    if (n->r.id != 0)
        idmap_del(&p->done, n->r.id);
    node_take(n, resp);
    return 1;
}

/* Wait for the socket until DEADLINE_MS (-1: no bound): flush, poll, read.
 * Returns RPCPOOL_OK when it made a round (something may have arrived),
 * RPCPOOL_TIMEOUT when the deadline has passed, RPCPOOL_ERROR when the
 * connection failed. */
static int pump(rpcpool_t *p, int64_t deadline_ms)
{
    if (rpcpool_flush(p) < 0)
        return RPCPOOL_ERROR;
    int wait_ms = -1;
    if (deadline_ms >= 0) {
        int64_t left = deadline_ms - now_ms();
        wait_ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    }
    struct pollfd pfd = {.fd = p->fd, .events = rpcpool_poll_events(p)};
    int rc = poll(&pfd, 1, wait_ms);
    if (rc < 0) {
        if (errno == EINTR)
            return RPCPOOL_OK;
        fail(p, "poll: %s", strerror(errno));
        return RPCPOOL_ERROR;
    }
    if (rc == 0)
        return RPCPOOL_TIMEOUT;
    if ((pfd.revents & POLLOUT) && rpcpool_flush(p) < 0)
        return RPCPOOL_ERROR;
    if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && rpcpool_read(p) < 0)
        return RPCPOOL_ERROR;
    return RPCPOOL_OK;
}

static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int deadline_passed(int64_t deadline_ms)
{
    return deadline_ms >= 0 && now_ms() >= deadline_ms;
}

int rpcpool_wait(rpcpool_t *p, uint64_t id, int timeout_ms, struct rpcpool_response *resp)
{
    if (id == 0 || id >= p->next_id) {
        set_err(p, "no call with id %" PRIu64 " was sent on this connection", id);
        return RPCPOOL_ERROR;
    }
    int64_t deadline = deadline_after(timeout_ms);
    for (int round = 0;; round++) {
        if (take_id(p, id, resp))
            return RPCPOOL_OK;
        if (p->failed)
            return RPCPOOL_ERROR;
        if (round > 0 && deadline_passed(deadline)) {
            set_err(p, "no answer to call %" PRIu64 " within %d ms", id, timeout_ms);
            return RPCPOOL_TIMEOUT;
        }
        int r = pump(p, deadline);
        if (r == RPCPOOL_ERROR && !idmap_get(&p->done, id))
            return RPCPOOL_ERROR;
    }
}

/* Drop the late answer of call ID when it comes. */
static void abandon(rpcpool_t *p, uint64_t id)
{
    struct rpcpool_response r;
    if (take_id(p, id, &r)) {
        rpcpool_response_free(&r);
        return;
    }
    if (!idmap_get(&p->abandoned, id) && idmap_put(&p->abandoned, id, p) != 0) {
        /* Out of memory: the answer will be queued and freed at close. */
    }
}

int rpcpool_call(rpcpool_t *p, const char *method, const char *params_json, int timeout_ms,
                 struct rpcpool_response *resp)
{
    uint64_t id;
    memset(resp, 0, sizeof *resp);
    if (rpcpool_send(p, method, params_json, &id) != RPCPOOL_OK)
        return RPCPOOL_ERROR;
    int r = rpcpool_wait(p, id, timeout_ms, resp);
    if (r == RPCPOOL_TIMEOUT) {
        abandon(p, id);
        set_err(p, "%s: no answer within %d ms", method, timeout_ms);
    }
    return r;
}

int rpcpool_batch(rpcpool_t *p, size_t n, const char *const methods[], const char *const params[],
                  int timeout_ms, struct rpcpool_response resps[])
{
    if (n == 0 || !resps) {
        set_err(p, "a batch needs at least one call");
        return RPCPOOL_ERROR;
    }
    memset(resps, 0, n * sizeof *resps);
    uint64_t *ids = malloc(n * sizeof *ids);
    if (!ids) {
        set_err(p, "out of memory");
        return RPCPOOL_ERROR;
    }
    if (rpcpool_send_batch(p, n, methods, params, ids) != RPCPOOL_OK) {
        free(ids);
        return RPCPOOL_ERROR;
    }
    size_t got = 0; /* resps[0..got) are filled; later ones may be too */
    int64_t deadline = deadline_after(timeout_ms);
    int rc = RPCPOOL_OK;
    for (int round = 0; got < n; round++) {
        while (got < n && (resps[got].id == ids[got] || take_id(p, ids[got], &resps[got])))
            got++;
        if (got == n)
            break;
        if (p->null_count > 0) {
            /* rpcpool answered the batch as a whole with one error (id null). */
            struct node *nn = p->head;
            while (nn && nn->r.id != 0)
                nn = nn->next;
            if (nn && nn->r.is_error) {
                list_unlink(p, nn);
                set_err(p, "rpcpoold rejected the batch of %zu: %" PRId64 " %s", n,
                        nn->r.error_code, nn->r.error_message);
                rpcpool_response_free(&nn->r);
                free(nn);
                p->pending = p->pending >= n - got ? p->pending - (n - got) : 0;
                rc = RPCPOOL_ERROR;
                break;
            }
        }
        if (p->failed) {
            rc = RPCPOOL_ERROR;
            break;
        }
        if (round > 0 && deadline_passed(deadline)) {
            set_err(p, "batch of %zu: %zu answer(s) within %d ms", n, got, timeout_ms);
            rc = RPCPOOL_TIMEOUT;
            for (size_t i = got; i < n; i++)
                abandon(p, ids[i]);
            break;
        }
        pump(p, deadline);
    }
    if (rc != RPCPOOL_OK)
        for (size_t i = 0; i < n; i++)
            rpcpool_response_free(&resps[i]);
    free(ids);
    return rc;
}

/* ---- helpers --------------------------------------------------------------- */

int rpcpool_quantity(const char *json, uint64_t *out)
{
    if (!json)
        return RPCPOOL_ERROR;
    size_t n = strlen(json);
    while (n > 0 && is_ws(json[n - 1]))
        n--;
    while (n > 0 && is_ws(*json)) {
        json++;
        n--;
    }
    if (n < 5 || json[0] != '"' || json[n - 1] != '"' || json[1] != '0' ||
        (json[2] != 'x' && json[2] != 'X'))
        return RPCPOOL_ERROR;
    uint64_t v = 0;
    for (size_t i = 3; i < n - 1; i++) {
        char c = json[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0 || v > (UINT64_MAX >> 4))
            return RPCPOOL_ERROR;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return RPCPOOL_OK;
}

/* ---- stats ------------------------------------------------------------------ */

/* Fill *OUT from the `stats` answer line JS (LEN bytes). 0, or -1 with ERR. */
static int parse_stats(const char *js, size_t len, struct rpcpool_stats *out, char *err,
                       size_t errlen)
{
    static const struct {
        const char *key;
        size_t off;
    } fields[] = {
        {"totalPools", offsetof(struct rpcpool_stats, total_pools)},
        {"healthyPools", offsetof(struct rpcpool_stats, healthy_pools)},
        {"totalConnections", offsetof(struct rpcpool_stats, total_connections)},
        {"activeConnections", offsetof(struct rpcpool_stats, active_connections)},
        {"idleConnections", offsetof(struct rpcpool_stats, idle_connections)},
        {"failedRequests", offsetof(struct rpcpool_stats, failed_requests)},
        {"successfulRequests", offsetof(struct rpcpool_stats, successful_requests)},
    };
    enum { NFIELDS = sizeof fields / sizeof fields[0] };
    jsmntok_t *t;
    const char *why;
    int ntok = tokenize(js, len, &t, &why);
    if (ntok < 0 || t[0].type != JSMN_OBJECT) {
        fmt_err(err, errlen, "control socket: answer %s: %.80s", ntok < 0 ? why : "not an object",
                js);
        free(t);
        return -1;
    }
    struct rpcpool_stats s = {0};
    unsigned seen = 0; /* bit i: fields[i]; bit NFIELDS: averageLatency */
    int ok = -1;
    char *error = NULL;
    int k = 1;
    for (int m = 0; m < t[0].size && k + 1 < ntok; m++) {
        const jsmntok_t *key = &t[k], *val = &t[k + 1];
        if (tok_eq(js, key, "ok") && val->type == JSMN_PRIMITIVE) {
            ok = js[val->start] == 't';
        } else if (tok_eq(js, key, "error") && val->type == JSMN_STRING && !error) {
            error = json_unescape(js + val->start, (size_t)(val->end - val->start));
        } else if (tok_eq(js, key, "averageLatency")) {
            if (tok_double(js, val, &s.average_latency_ms) != 0) {
                fmt_err(err, errlen, "control socket: averageLatency is not a number");
                goto bad;
            }
            seen |= 1u << NFIELDS;
        } else {
            for (unsigned f = 0; f < NFIELDS; f++) {
                if (!tok_eq(js, key, fields[f].key))
                    continue;
                uint64_t v;
                if (tok_uint64(js, val, &v) != 0) {
                    fmt_err(err, errlen, "control socket: %s is not a count", fields[f].key);
                    goto bad;
                }
                memcpy((char *)&s + fields[f].off, &v, sizeof v);
                seen |= 1u << f;
            }
        }
        k = tok_skip(t, ntok, k + 1);
    }
    if (ok != 1) {
        fmt_err(err, errlen, "rpcpoold refused stats: %s", error ? error : "no \"ok\":true");
        goto bad;
    }
    for (unsigned f = 0; f <= NFIELDS; f++) {
        if (!(seen & (1u << f))) {
            fmt_err(err, errlen, "control socket: stats answer lacks %s",
                    f < NFIELDS ? fields[f].key : "averageLatency");
            goto bad;
        }
    }
    *out = s;
    free(error);
    free(t);
    return 0;
bad:
    free(error);
    free(t);
    return -1;
}

int rpcpool_stats(const char *control_socket, struct rpcpool_stats *out, char *err, size_t errlen)
{
    fmt_err(err, errlen, "%s", "");
    int64_t deadline = now_ms() + STATS_TIMEOUT_MS;
    int fd = connect_unix(control_socket, "control socket", STATS_TIMEOUT_MS, err, errlen);
    if (fd < 0)
        return RPCPOOL_ERROR;
    static const char cmd[] = "stats\n";
    size_t sent = 0, len = 0, cap = 0;
    char *buf = NULL;
    int rc = RPCPOOL_ERROR;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            fmt_err(err, errlen, "control socket %s: no answer to stats within %d ms",
                    control_socket, STATS_TIMEOUT_MS);
            rc = RPCPOOL_TIMEOUT;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = sent < sizeof cmd - 1 ? POLLOUT : POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno != EINTR) {
            fmt_err(err, errlen, "poll: %s", strerror(errno));
            break;
        }
        if (pr <= 0)
            continue;
        if (sent < sizeof cmd - 1) {
            ssize_t n = send(fd, cmd + sent, sizeof cmd - 1 - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                fmt_err(err, errlen, "control socket %s: write: %s", control_socket,
                        strerror(errno));
                break;
            }
            if (n > 0)
                sent += (size_t)n;
            continue;
        }
        if (reserve(&buf, &cap, len + 4096) != 0) {
            fmt_err(err, errlen, "out of memory");
            break;
        }
        ssize_t n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fmt_err(err, errlen, "control socket %s: read: %s", control_socket, strerror(errno));
            break;
        }
        if (n == 0) {
            fmt_err(err, errlen, "control socket %s: closed without an answer to stats",
                    control_socket);
            break;
        }
        char *nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            *nl = '\0';
            if (parse_stats(buf, (size_t)(nl - buf), out, err, errlen) == 0)
                rc = RPCPOOL_OK;
            break;
        }
        if (len > STATS_MAX_LINE_BYTES) {
            fmt_err(err, errlen, "control socket %s: answer longer than %u bytes", control_socket,
                    STATS_MAX_LINE_BYTES);
            break;
        }
    }
    free(buf);
    close(fd);
    return rc;
}
