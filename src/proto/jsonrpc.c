/* jsonrpc.c - JSON-RPC 2.0 request validation, upstream response checks and
 * the error objects rpcpool writes itself.
 *
 * Requests (at most max_request_bytes) are tokenised with jsmn. Upstream
 * bodies may be up to 128 MiB, so response checks do not build a token
 * array: after rp_frame_validate() has proved the syntax, a shallow walk over
 * the top level reads only the members that matter.
 *
 * Duplicate members: JSON leaves their meaning open and parsers disagree
 * (most keep the last one), so a call that repeats "jsonrpc", "method", "id"
 * or "params" is an invalid request, answered with id null: rpcpool never
 * forwards a call whose method or id an endpoint might read differently.
 * The same goes for keys spelled with escapes ("m\u0065thod" is "method").
 */
#include "rp_frame.h"
#include "rp_jsonrpc.h"
#include "rp_utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

static const char R_NOT_OBJECT[] = "Invalid Request: not an object";
static const char R_SCALAR[] = "Invalid Request: not an object or array";
static const char R_EMPTY_BATCH[] = "Invalid Request: empty batch";
static const char R_BATCH_MAX[] = "Invalid Request: batch larger than max_batch";
static const char R_TOO_LARGE[] = "Invalid Request: too large";
static const char R_JSONRPC[] = "Invalid Request: jsonrpc must be \"2.0\"";
static const char R_NO_JSONRPC[] = "Invalid Request: missing jsonrpc";
static const char R_METHOD[] = "Invalid Request: method must be a string";
static const char R_NO_METHOD[] = "Invalid Request: missing method";
static const char R_ID[] = "Invalid Request: id must be a string, number or null";
static const char R_PARAMS[] = "Invalid Request: params must be an array or object";
static const char R_DUP[] = "Invalid Request: duplicate member";
static const char R_PARSE[] = "Parse error";

void rp_jparser_init(struct rp_jparser *p)
{
    memset(p, 0, sizeof(*p));
}

void rp_jparser_free(struct rp_jparser *p)
{
    free(p->toks);
    free(p->calls);
    rp_jparser_init(p);
}

static int hex_val(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/* Compare the raw contents S[0, N) of a JSON string (between the quotes,
 * escapes not yet decoded) with the ASCII string LIT. Returns 1 on equal. */
static int jstr_equals(const char *s, size_t n, const char *lit)
{
    size_t i = 0, k = 0;

    while (i < n) {
        unsigned c = (unsigned char)s[i++];
        if (c == '\\') {
            if (i >= n)
                return 0;
            unsigned e = (unsigned char)s[i++];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                c = e;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u': {
                if (n - i < 4)
                    return 0;
                unsigned v = 0;
                for (int d = 0; d < 4; d++) {
                    int h = hex_val((unsigned char)s[i++]);
                    if (h < 0)
                        return 0;
                    v = v << 4 | (unsigned)h;
                }
                if (v == 0 || v >= 0x80) /* LIT is non-empty ASCII */
                    return 0;
                c = v;
                break;
            }
            default:
                return 0;
            }
        }
        if (lit[k] == '\0' || (unsigned char)lit[k] != c)
            return 0;
        k++;
    }
    return lit[k] == '\0';
}

#define JP_NOMEM   (-1) /* jp_tokenize(): out of memory */
#define JP_INVALID (-2) /* jp_tokenize(): jsmn rejects the text */

/* Tokenise BUF[0, LEN) into p->toks. Returns the token count, JP_NOMEM or
 * JP_INVALID. */
static int jp_tokenize(struct rp_jparser *p, const char *buf, size_t len)
{
    jsmn_parser jp;

    jsmn_init(&jp);
    int n = jsmn_parse(&jp, buf, len, NULL, 0);
    if (n <= 0)
        return JP_INVALID;
    unsigned want = (unsigned)n;
    for (;;) {
        if (p->tok_cap < want) {
            void *t = realloc(p->toks, (size_t)want * sizeof(jsmntok_t));
            if (!t)
                return JP_NOMEM;
            p->toks = t;
            p->tok_cap = want;
        }
        jsmn_init(&jp);
        int r = jsmn_parse(&jp, buf, len, p->toks, p->tok_cap);
        if (r == JSMN_ERROR_NOMEM) {
            if (p->tok_cap > INT32_MAX / 2)
                return JP_NOMEM;
            want = p->tok_cap * 2;
            continue;
        }
        if (r < 0)
            return JP_INVALID;
        return (int)jp.toknext;
    }
}

/* Index of the token after token T and all its descendants (tokens are in
 * document order, descendants start before their ancestor ends). */
static int tok_next_sibling(const jsmntok_t *toks, int ntok, int t)
{
    int end = toks[t].end;
    int j = t + 1;
    while (j < ntok && toks[j].start < end)
        j++;
    return j;
}

static int tok_key_is(const char *buf, const jsmntok_t *k, const char *lit)
{
    return k->type == JSMN_STRING && jstr_equals(buf + k->start, (size_t)(k->end - k->start), lit);
}

/* Validate the call that token T of BUF spans and fill C. */
static void jp_validate_call(const char *buf, const jsmntok_t *toks, int ntok, int t,
                             struct rp_jcall *c)
{
    const jsmntok_t *o = &toks[t];
    int is_str = o->type == JSMN_STRING; /* jsmn leaves the quotes out */

    memset(c, 0, sizeof(*c));
    c->start = (uint32_t)(o->start - is_str);
    c->len = (uint32_t)(o->end + is_str) - c->start;
    c->id_start = -1;
    if (o->type != JSMN_OBJECT) {
        c->code = RP_JSONRPC_INVALID_REQUEST;
        c->reason = R_NOT_OBJECT;
        return;
    }

    const char *reason = NULL;
    int n_jsonrpc = 0, n_method = 0, n_id = 0, n_params = 0;
    int id_ok = 0;
    int32_t id_start = -1;
    uint32_t id_len = 0;
#define SET_REASON(r)                                                                              \
    do {                                                                                           \
        if (!reason)                                                                               \
            reason = (r);                                                                          \
    } while (0)

    int j = t + 1;
    while (j + 1 < ntok && toks[j].start < o->end) {
        const jsmntok_t *k = &toks[j];
        const jsmntok_t *v = &toks[j + 1];
        if (tok_key_is(buf, k, "jsonrpc")) {
            if (n_jsonrpc++)
                SET_REASON(R_DUP);
            if (v->type != JSMN_STRING ||
                !jstr_equals(buf + v->start, (size_t)(v->end - v->start), "2.0"))
                SET_REASON(R_JSONRPC);
        } else if (tok_key_is(buf, k, "method")) {
            if (n_method++)
                SET_REASON(R_DUP);
            if (v->type == JSMN_STRING) {
                c->method_start = (uint32_t)v->start;
                c->method_len = (uint32_t)(v->end - v->start);
            } else {
                SET_REASON(R_METHOD);
            }
        } else if (tok_key_is(buf, k, "id")) {
            if (n_id++)
                SET_REASON(R_DUP);
            char f = buf[v->start];
            if (v->type == JSMN_STRING) {
                id_ok = 1;
                id_start = v->start - 1;
                id_len = (uint32_t)(v->end - v->start + 2);
            } else if (v->type == JSMN_PRIMITIVE &&
                       (f == '-' || f == 'n' || (f >= '0' && f <= '9'))) {
                id_ok = 1;
                id_start = v->start;
                id_len = (uint32_t)(v->end - v->start);
            } else {
                id_ok = 0;
                SET_REASON(R_ID);
            }
        } else if (tok_key_is(buf, k, "params")) {
            if (n_params++)
                SET_REASON(R_DUP);
            if (v->type != JSMN_ARRAY && v->type != JSMN_OBJECT)
                SET_REASON(R_PARAMS);
        }
        j = tok_next_sibling(toks, ntok, j + 1);
    }
    if (!n_jsonrpc)
        SET_REASON(R_NO_JSONRPC);
    if (!n_method)
        SET_REASON(R_NO_METHOD);
#undef SET_REASON

    /* the id goes back in the answer when it is unambiguous */
    if (n_id == 1 && id_ok) {
        c->id_start = id_start;
        c->id_len = id_len;
    }
    if (reason) {
        c->code = RP_JSONRPC_INVALID_REQUEST;
        c->reason = reason;
    }
}

static int jp_reserve_calls(struct rp_jparser *p, unsigned n)
{
    if (p->call_cap >= n)
        return 0;
    struct rp_jcall *c = realloc(p->calls, (size_t)n * sizeof(*c));
    if (!c)
        return -1;
    p->calls = c;
    p->call_cap = n;
    return 0;
}

static void jp_msg_error(struct rp_jmsg *out, int code, const char *reason)
{
    out->code = code;
    out->reason = reason;
    out->count = 0;
}

/* Parse one JSON value as a request or a batch (see rp_jsonrpc.h). Errors
 * of the message as a whole (scalar, empty batch, batch over MAX_BATCH,
 * which is unlimited when <= 0) leave count 0. Text that jsmn cannot
 * tokenise, which the framing scanner should have refused, gets code
 * -32700. Returns 0, or -1 when out of memory. */
int rp_jsonrpc_parse(struct rp_jparser *p, const char *buf, size_t len, long max_batch,
                     struct rp_jmsg *out)
{
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    out->calls = p->calls;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    if (i == len) {
        jp_msg_error(out, RP_JSONRPC_PARSE_ERROR, R_PARSE);
        return 0;
    }
    out->is_batch = buf[i] == '[';
    if (buf[i] != '{' && buf[i] != '[') {
        jp_msg_error(out, RP_JSONRPC_INVALID_REQUEST, R_SCALAR);
        return 0;
    }
    if (len >= INT32_MAX) {
        jp_msg_error(out, RP_JSONRPC_INVALID_REQUEST, R_TOO_LARGE);
        return 0;
    }

    int ntok = jp_tokenize(p, buf, len);
    if (ntok == JP_NOMEM)
        return -1;
    if (ntok < 0) {
        jp_msg_error(out, RP_JSONRPC_PARSE_ERROR, R_PARSE);
        return 0;
    }
    const jsmntok_t *toks = p->toks;

    if (!out->is_batch) {
        if (jp_reserve_calls(p, 1) < 0)
            return -1;
        jp_validate_call(buf, toks, ntok, 0, &p->calls[0]);
        out->calls = p->calls;
        out->count = 1;
        return 0;
    }

    int n = toks[0].size;
    if (n == 0) {
        jp_msg_error(out, RP_JSONRPC_INVALID_REQUEST, R_EMPTY_BATCH);
        return 0;
    }
    if (max_batch > 0 && n > max_batch) {
        jp_msg_error(out, RP_JSONRPC_INVALID_REQUEST, R_BATCH_MAX);
        return 0;
    }
    if (jp_reserve_calls(p, (unsigned)n) < 0)
        return -1;
    out->calls = p->calls;
    int t = 1;
    for (int k = 0; k < n; k++) {
        if (t >= ntok) {
            jp_msg_error(out, RP_JSONRPC_PARSE_ERROR, R_PARSE);
            return 0;
        }
        jp_validate_call(buf, toks, ntok, t, &p->calls[k]);
        t = tok_next_sibling(toks, ntok, t);
    }
    out->count = n;
    return 0;
}

int rp_jcall_is_notification(const struct rp_jcall *c)
{
    return c->code == 0 && c->id_start < 0;
}

/* ---- upstream responses: a shallow walk over validated JSON ---------- */

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static size_t js_skip_ws(const char *b, size_t len, size_t i)
{
    while (i < len && is_ws((unsigned char)b[i]))
        i++;
    return i;
}

/* B[I] is '"': the index after the closing quote. */
static size_t js_skip_string(const char *b, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (b[i] == '\\')
            i++;
        else if (b[i] == '"')
            return i + 1;
    }
    return len;
}

/* The index after the value that starts at B[I]; containers are skipped by
 * counting depth, so no recursion. Bounded by LEN whatever the input. */
static size_t js_skip_value(const char *b, size_t len, size_t i)
{
    if (i >= len)
        return len;
    char c = b[i];
    if (c == '"')
        return js_skip_string(b, len, i);
    if (c == '{' || c == '[') {
        size_t depth = 0;
        while (i < len) {
            c = b[i];
            if (c == '"') {
                i = js_skip_string(b, len, i);
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if ((c == '}' || c == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return len;
    }
    while (i < len && !is_ws((unsigned char)b[i]) && b[i] != ',' && b[i] != ']' && b[i] != '}')
        i++;
    return i;
}

/* Walks the members of the object at B[I]. For each one calls
 * FN(ctx, b, key_start, key_len, value_start, value_end); a nonzero return
 * stops the walk with that value. Returns 0, the callback's value, or -1
 * when B[I] is not a well-formed object. */
typedef int (*js_member_fn)(void *ctx, const char *b, size_t ks, size_t kl, size_t vs, size_t ve);

static int js_each_member(const char *b, size_t len, size_t i, js_member_fn fn, void *ctx)
{
    if (i >= len || b[i] != '{')
        return -1;
    i = js_skip_ws(b, len, i + 1);
    if (i < len && b[i] == '}')
        return 0;
    for (;;) {
        if (i >= len || b[i] != '"')
            return -1;
        size_t ks = i + 1;
        i = js_skip_string(b, len, i);
        size_t kl = i - 1 - ks;
        i = js_skip_ws(b, len, i);
        if (i >= len || b[i] != ':')
            return -1;
        size_t vs = js_skip_ws(b, len, i + 1);
        if (vs >= len)
            return -1;
        size_t ve = js_skip_value(b, len, vs);
        int r = fn(ctx, b, ks, kl, vs, ve);
        if (r)
            return r;
        i = js_skip_ws(b, len, ve);
        if (i < len && b[i] == ',') {
            i = js_skip_ws(b, len, i + 1);
            continue;
        }
        if (i < len && b[i] == '}')
            return 0;
        return -1;
    }
}

struct resp_info {
    int n_jsonrpc, n_result, n_error, n_id;
    int bad;
    size_t id_start, id_end;
    size_t len;
};

struct err_info {
    int n_code;
    int bad;
};

static int err_member(void *ctx, const char *b, size_t ks, size_t kl, size_t vs, size_t ve)
{
    struct err_info *e = ctx;

    if (!jstr_equals(b + ks, kl, "code"))
        return 0;
    e->n_code++;
    /* an integer: -?[0-9]+ (the syntax is already checked) */
    size_t i = vs;
    if (i < ve && b[i] == '-')
        i++;
    if (i == ve)
        e->bad = 1;
    for (; i < ve; i++)
        if (b[i] < '0' || b[i] > '9')
            e->bad = 1;
    return 0;
}

static int resp_member(void *ctx, const char *b, size_t ks, size_t kl, size_t vs, size_t ve)
{
    struct resp_info *ri = ctx;

    if (jstr_equals(b + ks, kl, "jsonrpc")) {
        ri->n_jsonrpc++;
        if (b[vs] != '"' || ve - vs < 2 || !jstr_equals(b + vs + 1, ve - vs - 2, "2.0"))
            ri->bad = 1;
    } else if (jstr_equals(b + ks, kl, "result")) {
        ri->n_result++;
    } else if (jstr_equals(b + ks, kl, "error")) {
        struct err_info e = {0, 0};
        if (b[vs] == 'n') /* "error":null next to a result: tolerated as absent */
            return 0;
        ri->n_error++;
        if (js_each_member(b, ri->len, vs, err_member, &e) != 0 || e.n_code != 1 || e.bad)
            ri->bad = 1;
    } else if (jstr_equals(b + ks, kl, "id")) {
        ri->n_id++;
        ri->id_start = vs;
        ri->id_end = ve;
    }
    return 0;
}

/* Check the response object at B[I]; fills RI. Returns 0 when it is one. */
static int resp_object(const char *b, size_t len, size_t i, struct resp_info *ri)
{
    memset(ri, 0, sizeof(*ri));
    ri->len = len;
    if (js_each_member(b, len, i, resp_member, ri) != 0 || ri->bad)
        return -1;
    if (ri->n_jsonrpc != 1 || ri->n_id > 1 || ri->n_result + ri->n_error != 1)
        return -1;
    return 0;
}

/* Decode the contents S[0, N) of a JSON string (between the quotes) into
 * OUT (CAP bytes) as UTF-8. Returns the length, or -1 when it does not fit
 * or an escape is broken. */
static long jstr_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned c = (unsigned char)s[i++];
        uint32_t cp = c;
        if (c == '\\') {
            if (i >= n)
                return -1;
            unsigned e = (unsigned char)s[i++];
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *hit = e ? strchr(from, (int)e) : NULL;
            if (hit) {
                cp = (unsigned char)to[hit - from];
            } else if (e == 'u') {
                cp = 0;
                for (int pair = 0; pair < 2; pair++) {
                    if (n - i < 4)
                        return -1;
                    uint32_t v = 0;
                    for (int d = 0; d < 4; d++) {
                        int h = hex_val((unsigned char)s[i++]);
                        if (h < 0)
                            return -1;
                        v = v << 4 | (uint32_t)h;
                    }
                    if (pair == 0 && v >= 0xd800 && v < 0xdc00 && n - i >= 6 && s[i] == '\\' &&
                        s[i + 1] == 'u') {
                        cp = v; /* high surrogate: its low half follows */
                        i += 2;
                        continue;
                    }
                    cp = pair ? 0x10000 + ((cp - 0xd800) << 10) + (v - 0xdc00) : v;
                    break;
                }
            } else {
                return -1;
            }
            /* encode CP as UTF-8 */
            char u[4];
            size_t k = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
            if (k == 1) {
                u[0] = (char)cp;
            } else {
                for (size_t b = k - 1; b > 0; b--) {
                    u[b] = (char)(0x80 | (cp & 0x3f));
                    cp >>= 6;
                }
                u[0] = (char)((k == 2 ? 0xc0 : k == 3 ? 0xe0 : 0xf0) | cp);
            }
            if (o + k > cap)
                return -1;
            memcpy(out + o, u, k);
            o += k;
            continue;
        }
        if (o >= cap)
            return -1;
        out[o++] = (char)c;
    }
    return (long)o;
}

/* Do the ids A and B (raw JSON tokens) name the same value? Byte-equal
 * tokens do; strings compare by their decoded text ("\u0061" is "a");
 * numbers by value (1.0 is 1), as nodes rewrite ids when they echo them. */
static int id_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen == blen && memcmp(a, b, alen) == 0)
        return 1;
    if (alen >= 2 && blen >= 2 && a[0] == '"' && b[0] == '"') {
        char da[256], db[256];
        long la = jstr_decode(a + 1, alen - 2, da, sizeof da);
        long lb = jstr_decode(b + 1, blen - 2, db, sizeof db);
        return la >= 0 && la == lb && memcmp(da, db, (size_t)la) == 0;
    }
    int anum = alen && (a[0] == '-' || (a[0] >= '0' && a[0] <= '9'));
    int bnum = blen && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9'));
    if (anum && bnum && alen < 64 && blen < 64) {
        char na[64], nb[64];
        memcpy(na, a, alen);
        na[alen] = '\0';
        memcpy(nb, b, blen);
        nb[blen] = '\0';
        char *ea, *eb;
        double x = strtod(na, &ea), y = strtod(nb, &eb);
        /* both whole numbers (nothing left over), equal and finite */
        return ea == na + alen && eb == nb + blen && x == y && x - x == 0;
    }
    return 0;
}

/* See rp_jsonrpc.h. The id span comes from the check that accepted BODY
 * (no second scan of it). */
size_t rp_jsonrpc_restore_id(const struct rp_jparser *p, const char *body, size_t len,
                             const char *id, size_t id_len, char *out, size_t outlen)
{
    size_t s, e;
    if (p->id_start < 0) {
        /* no id member (an error the node could not tie to one): ours goes
         * in first, after the object's opening brace */
        const char *brace = memchr(body, '{', len);
        if (!brace)
            return 0;
        s = e = (size_t)(brace - body) + 1;
    } else {
        s = (size_t)p->id_start;
        e = (size_t)p->id_end;
        if (e < s || e > len)
            return 0;
        if (e - s == id_len && memcmp(body + s, id, id_len) == 0)
            return 0; /* already ours */
    }
    int insert = s == e;
    size_t n = len - (e - s) + id_len + (insert ? 6 : 0);
    if (!out || n > outlen)
        return n;
    size_t o = 0;
    memcpy(out, body, s);
    o = s;
    if (insert) {
        memcpy(out + o, "\"id\":", 5);
        o += 5;
    }
    memcpy(out + o, id, id_len);
    o += id_len;
    if (insert)
        out[o++] = ',';
    memcpy(out + o, body + e, len - e);
    return n;
}

/* See rp_jsonrpc.h. The syntax is checked here too (rp_frame_validate), so
 * callers need not validate the body first. No token array is built. */
int rp_jsonrpc_check_response(struct rp_jparser *p, const char *buf, size_t len, int want_batch,
                              const char *want_id, size_t want_id_len)
{
    struct resp_info ri;

    p->id_start = p->id_end = -1;
    if (rp_frame_validate(buf, len) != 0)
        return -1;
    size_t i = js_skip_ws(buf, len, 0);
    if (buf[i] == '{') {
        if (resp_object(buf, len, i, &ri) != 0)
            return -1;
        if (ri.n_id == 1) {
            p->id_start = (long)ri.id_start;
            p->id_end = (long)ri.id_end;
        }
        if (want_batch) /* one error object may answer a whole batch */
            return ri.n_error ? 0 : -1;
        if (!want_id)
            return 0;
        while (want_id_len && is_ws((unsigned char)want_id[0])) {
            want_id++;
            want_id_len--;
        }
        while (want_id_len && is_ws((unsigned char)want_id[want_id_len - 1]))
            want_id_len--;
        if (ri.n_id == 1 &&
            id_equal(buf + ri.id_start, ri.id_end - ri.id_start, want_id, want_id_len))
            return 0;
        /* an error the node could not tie to an id (it could not read
         * ours): the node's answer to this call all the same */
        if (ri.n_error && (ri.n_id == 0 ||
                           (ri.id_end - ri.id_start == 4 && !memcmp(buf + ri.id_start, "null", 4))))
            return 0;
        return -1;
    }
    if (buf[i] != '[' || !want_batch)
        return -1;
    i = js_skip_ws(buf, len, i + 1);
    if (i < len && buf[i] == ']')
        return 0;
    for (;;) {
        if (resp_object(buf, len, i, &ri) != 0)
            return -1;
        i = js_skip_ws(buf, len, js_skip_value(buf, len, i));
        if (i < len && buf[i] == ',') {
            i = js_skip_ws(buf, len, i + 1);
            continue;
        }
        return i < len && buf[i] == ']' ? 0 : -1;
    }
}

/* ---- output: snprintf-like bounded writers --------------------------- */

struct jout {
    char *out;
    size_t cap;
    size_t n; /* bytes the full text needs */
};

static void jout_put(struct jout *o, const char *s, size_t k)
{
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->out + o->n, s, k < room ? k : room);
    }
    o->n += k;
}

/* NUL-terminate like snprintf and return the full length. */
static size_t jout_finish(struct jout *o)
{
    if (o->cap)
        o->out[o->n < o->cap ? o->n : o->cap - 1] = '\0';
    return o->n;
}

/* Append S[0, LEN) as a JSON string body: '"', '\\' and control bytes are
 * escaped, valid UTF-8 is kept, every invalid byte becomes \ufffd so the
 * result is always valid JSON. */
static void jout_escape(struct jout *o, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    while (i < len) {
        unsigned c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        jout_put(o, s + run, i - run);
        if (c >= 0x80) {
            size_t k = rp_utf8_seq_len(u + i, len - i);
            if (k) {
                jout_put(o, s + i, k);
                i += k;
            } else {
                jout_put(o, "\\ufffd", 6);
                i++;
            }
            run = i;
            continue;
        }
        char esc[8];
        switch (c) {
        case '"':
            jout_put(o, "\\\"", 2);
            break;
        case '\\':
            jout_put(o, "\\\\", 2);
            break;
        case '\n':
            jout_put(o, "\\n", 2);
            break;
        case '\r':
            jout_put(o, "\\r", 2);
            break;
        case '\t':
            jout_put(o, "\\t", 2);
            break;
        case '\b':
            jout_put(o, "\\b", 2);
            break;
        case '\f':
            jout_put(o, "\\f", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            jout_put(o, esc, 6);
            break;
        }
        i++;
        run = i;
    }
    jout_put(o, s + run, i - run);
}

size_t rp_json_escape(char *out, size_t outlen, const char *s, size_t len)
{
    struct jout o = {out, outlen, 0};

    jout_escape(&o, s, len);
    return jout_finish(&o);
}

/* Build rpcpool's own error answer (see rp_jsonrpc.h). */
size_t rp_jsonrpc_error(char *out, size_t outlen, const char *id, size_t id_len, int code,
                        const char *msg, const char *data)
{
    struct jout o = {out, outlen, 0};
    char num[16];

    jout_put(&o, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
    if (id && id_len)
        jout_put(&o, id, id_len);
    else
        jout_put(&o, "null", 4);
    int k = snprintf(num, sizeof(num), "%d", code);
    jout_put(&o, ",\"error\":{\"code\":", 17);
    jout_put(&o, num, (size_t)k);
    jout_put(&o, ",\"message\":\"", 12);
    if (msg)
        jout_escape(&o, msg, strlen(msg));
    jout_put(&o, "\"", 1);
    if (data) {
        jout_put(&o, ",\"data\":", 8);
        jout_put(&o, data, strlen(data));
    }
    jout_put(&o, "}}", 2);
    return jout_finish(&o);
}

/* Drop every CR and LF in place. In valid JSON they can only be
 * whitespace between tokens, and no two tokens need it to stay apart. */
size_t rp_json_strip_newlines(char *buf, size_t len)
{
    size_t r = 0;

    while (r < len && buf[r] != '\n' && buf[r] != '\r')
        r++;
    size_t w = r;
    for (; r < len; r++) {
        char c = buf[r];
        if (c != '\n' && c != '\r')
            buf[w++] = c;
    }
    return w;
}

/* Append N bytes of S at *POS of OUT (OUTLEN), counting what does not fit. */
static void merge_put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (*pos < outlen) {
        size_t room = outlen - *pos;
        memcpy(out + *pos, s, n < room ? n : room);
    }
    *pos += n;
}

static int merge_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

size_t rp_jsonrpc_merge_batch(char *out, size_t outlen, const char *body, size_t len,
                              const char *extra, size_t extra_len)
{
    size_t s = 0, e = len, pos = 0;
    while (s < e && merge_ws(body[s]))
        s++;
    while (e > s && merge_ws(body[e - 1]))
        e--;
    if (e - s >= 2 && body[s] == '[' && body[e - 1] == ']') {
        s++; /* the array's elements, without its brackets */
        e--;
        while (s < e && merge_ws(body[s]))
            s++;
        while (e > s && merge_ws(body[e - 1]))
            e--;
    }
    merge_put(out, outlen, &pos, "[", 1);
    merge_put(out, outlen, &pos, body + s, e - s);
    if (e > s && extra_len)
        merge_put(out, outlen, &pos, ",", 1);
    merge_put(out, outlen, &pos, extra, extra_len);
    merge_put(out, outlen, &pos, "]", 1);
    if (pos < outlen)
        out[pos] = '\0';
    else if (outlen)
        out[outlen - 1] = '\0';
    return pos;
}

/* Write element B[S, E) (a response object whose id is B[IS, IE), or
 * IS == IE == 0 when it has none) with its id replaced by ID: the client
 * gets its own id bytes back. */
static void match_put_elem(char *out, size_t outlen, size_t *pos, const char *b, size_t s, size_t e,
                           size_t is, size_t ie, const char *id, size_t id_len)
{
    if (is == 0 && ie == 0) { /* no id member: put one in after the brace */
        merge_put(out, outlen, pos, b + s, 1);
        merge_put(out, outlen, pos, "\"id\":", 5);
        merge_put(out, outlen, pos, id, id_len);
        merge_put(out, outlen, pos, ",", 1);
        merge_put(out, outlen, pos, b + s + 1, e - s - 1);
        return;
    }
    merge_put(out, outlen, pos, b + s, is - s);
    merge_put(out, outlen, pos, id, id_len);
    merge_put(out, outlen, pos, b + ie, e - ie);
}

/* See rp_jsonrpc.h. */
size_t rp_jsonrpc_match_batch(char *out, size_t outlen, const char *body, size_t len,
                              const char *ids, size_t ids_len, const char *out_ids,
                              size_t out_ids_len, const char *extra, size_t extra_len,
                              const char *missing_data, int *missing)
{
    size_t pos = 0;
    int nmiss = 0;
    size_t i = body && len ? js_skip_ws(body, len, 0) : len;
    int single = i < len && body[i] == '{';
    /* the elements of the answer: where each is and where its id is */
    size_t cap = 0, n = 0;
    struct {
        size_t s, e, is, ie;
        int used;
    } *el = NULL;
    if (i < len && (body[i] == '[' || single)) {
        size_t k = single ? i : js_skip_ws(body, len, i + 1);
        while (k < len && body[k] == '{') {
            struct resp_info ri;
            size_t end = js_skip_value(body, len, k);
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                void *p = realloc(el, nc * sizeof *el);
                if (!p)
                    break;
                el = p;
                cap = nc;
            }
            el[n].s = k;
            el[n].e = end;
            el[n].is = el[n].ie = 0;
            el[n].used = 0;
            if (resp_object(body, len, k, &ri) == 0 && ri.n_id == 1) {
                el[n].is = ri.id_start;
                el[n].ie = ri.id_end;
            }
            n++;
            if (single)
                break;
            k = js_skip_ws(body, len, end);
            if (k < len && body[k] == ',')
                k = js_skip_ws(body, len, k + 1);
        }
    }
    merge_put(out, outlen, &pos, "[", 1);
    int first = 1;
    if (!out_ids) {
        out_ids = ids;
        out_ids_len = ids_len;
    }
    const char *p = ids, *end = ids ? ids + ids_len : NULL;
    const char *q = out_ids, *qend = out_ids ? out_ids + out_ids_len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t idl = nl ? (size_t)(nl - p) : (size_t)(end - p);
        /* the id the client gave this call (Q), and the one it was sent with (P) */
        const char *qnl = q && q < qend ? memchr(q, '\n', (size_t)(qend - q)) : NULL;
        size_t ql = q && q < qend ? (qnl ? (size_t)(qnl - q) : (size_t)(qend - q)) : 0;
        if (!first)
            merge_put(out, outlen, &pos, ",", 1);
        first = 0;
        int found = 0;
        if (single && n == 1) {
            /* one error object answering the whole batch: each call gets it */
            match_put_elem(out, outlen, &pos, body, el[0].s, el[0].e, el[0].is, el[0].ie, q, ql);
            found = 1;
        }
        for (size_t j = 0; !found && j < n; j++) {
            if (el[j].used || el[j].is == el[j].ie ||
                !id_equal(body + el[j].is, el[j].ie - el[j].is, p, idl))
                continue;
            el[j].used = 1;
            match_put_elem(out, outlen, &pos, body, el[j].s, el[j].e, el[j].is, el[j].ie, q, ql);
            found = 1;
        }
        if (!found) {
            size_t need = rp_jsonrpc_error(NULL, 0, q, ql, RP_JSONRPC_INTERNAL_ERROR,
                                           "Upstream error", missing_data);
            size_t room = pos < outlen ? outlen - pos : 0;
            rp_jsonrpc_error(room > need ? out + pos : NULL, room > need ? room : 0, q, ql,
                             RP_JSONRPC_INTERNAL_ERROR, "Upstream error", missing_data);
            pos += need;
            nmiss++;
        }
        p = nl ? nl + 1 : end;
        q = qnl ? qnl + 1 : qend;
    }
    if (extra_len) {
        if (!first)
            merge_put(out, outlen, &pos, ",", 1);
        merge_put(out, outlen, &pos, extra, extra_len);
    }
    merge_put(out, outlen, &pos, "]", 1);
    if (pos < outlen)
        out[pos] = '\0';
    else if (outlen)
        out[outlen - 1] = '\0';
    free(el);
    if (missing)
        *missing = nmiss;
    return pos;
}

int rp_jsonrpc_parse_quantity(const char *s, size_t len, uint64_t *out)
{
    if (len < 3 || len > 18 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return -1;
    uint64_t v = 0;
    for (size_t i = 2; i < len; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return -1;
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}
