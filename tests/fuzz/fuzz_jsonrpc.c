/* fuzz_jsonrpc.c - libFuzzer target for the request validator
 * (src/proto/jsonrpc.c: rp_jsonrpc_parse, rp_jsonrpc_error, rp_json_escape,
 * rp_jsonrpc_check_response).
 *
 * The input is a client byte stream; it is framed with the scanner the way
 * conn.c frames it, and every value is parsed as a request or batch with a
 * max_batch picked from the input's hash. Invariants:
 *  - a value the scanner accepted is never a -32700 (jsmn and the scanner
 *    agree on what JSON is); message-level errors leave count 0;
 *  - a batch's calls are exactly its elements, in order, within max_batch;
 *    every offset (call, id, method) lies inside the value, ids are JSON
 *    strings, numbers or null, methods are string contents;
 *  - the batch rpcpool forwards (its valid calls joined) parses back to the
 *    same calls, all valid, with the same ids and methods;
 *  - an upstream answer echoing each id passes rp_jsonrpc_check_response,
 *    and so does every error object rpcpool itself would answer;
 *  - rp_jsonrpc_error / rp_json_escape output is always valid JSON whatever
 *    the message bytes (the input itself is used as a message), and behaves
 *    like snprintf when the buffer is short.
 */
#include "rp_frame.h"
#include "rp_jsonrpc.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS 4096

static int is_ws(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Element boundaries [s, e) of the valid JSON array at B[0, N) (B[0] is
 * '['), found by an independent depth walk. Returns the count, or -1 past
 * MAX_ELEMS. */
static int split_array(const char *b, size_t n, size_t *s, size_t *e)
{
    int count = 0, depth = 0;
    size_t i = 1, cur = 0;
    int open = 0;

    for (; i < n; i++) {
        char c = b[i];
        if (c == '"') {
            if (!open && depth == 0) {
                cur = i;
                open = 1;
            }
            for (i++; i < n && b[i] != '"'; i++)
                if (b[i] == '\\')
                    i++;
            continue;
        }
        if (is_ws((unsigned char)c))
            continue;
        if (depth == 0 && (c == ',' || c == ']')) {
            if (open) {
                if (count >= MAX_ELEMS)
                    return -1;
                size_t end = i;
                while (end > cur && is_ws((unsigned char)b[end - 1]))
                    end--;
                s[count] = cur;
                e[count] = end;
                count++;
                open = 0;
            }
            if (c == ']')
                return count;
            continue;
        }
        if (!open && depth == 0) {
            cur = i;
            open = 1;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
    }
    return count;
}

/* rp_jsonrpc_error into a fresh exact-size buffer; also checks the
 * snprintf-like contract with a short buffer. Caller frees. */
static char *error_answer(const char *id, size_t id_len, int code, const char *msg,
                          const char *data, size_t *len_out, size_t cut)
{
    size_t need = rp_jsonrpc_error(NULL, 0, id, id_len, code, msg, data);
    char *out = malloc(need + 1);
    CHECK(out != NULL);
    CHECK(rp_jsonrpc_error(out, need + 1, id, id_len, code, msg, data) == need);
    CHECK(out[need] == '\0' && strlen(out) == need);
    /* a short buffer: same length returned, a NUL-terminated prefix */
    size_t small = cut % (need + 1);
    char *part = malloc(small + 1);
    CHECK(part != NULL);
    memset(part, 'x', small + 1);
    CHECK(rp_jsonrpc_error(part, small, id, id_len, code, msg, data) == need);
    if (small) {
        CHECK(part[small - 1] == '\0');
        CHECK(memcmp(part, out, small - 1) == 0);
    }
    CHECK(part[small] == 'x');
    free(part);
    *len_out = need;
    return out;
}

/* An error answer for ID must be valid JSON and a response for that id. */
static void check_error_answer(struct rp_jparser *p, const char *id, size_t id_len, int code,
                               const char *msg, const char *data, uint64_t h)
{
    size_t n;
    char *e = error_answer(id, id_len, code, msg, data, &n, (size_t)h);
    CHECK(rp_frame_validate(e, n) == 0);
    CHECK(rp_jsonrpc_check_response(p, e, n, 0, id_len ? id : "null", id_len ? id_len : 4) == 0);
    CHECK(rp_jsonrpc_check_response(p, e, n, 1, NULL, 0) == 0); /* answers a batch too */
    free(e);
}

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = (*len + n + 1) * 2;
        char *nb = realloc(*buf, c);
        CHECK(nb != NULL);
        *buf = nb;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static int id_is_valid_json(const char *v, size_t n)
{
    if (n == 0 || rp_frame_validate(v, n) != 0)
        return 0;
    return v[0] == '"' || v[0] == '-' || (v[0] >= '0' && v[0] <= '9') ||
           (n == 4 && memcmp(v, "null", 4) == 0);
}

/* Check one framed value V[0, N) (an exact-size copy). */
static void check_value(struct rp_jparser *p, struct rp_jparser *p2, const char *v, size_t n,
                        long max_batch, uint64_t h)
{
    static size_t es[MAX_ELEMS], ee[MAX_ELEMS];
    struct rp_jmsg m;

    CHECK(rp_jsonrpc_parse(p, v, n, max_batch, &m) == 0);
    CHECK(m.code != RP_JSONRPC_PARSE_ERROR); /* the scanner said it is JSON */
    CHECK(m.code == 0 || m.code == RP_JSONRPC_INVALID_REQUEST);
    CHECK(m.is_batch == (v[0] == '['));
    if (v[0] != '{' && v[0] != '[')
        CHECK(m.code == RP_JSONRPC_INVALID_REQUEST);
    if (m.code) {
        CHECK(m.count == 0 && m.reason != NULL);
        check_error_answer(p2, NULL, 0, m.code, m.reason, NULL, h);
        return;
    }
    if (!m.is_batch) {
        CHECK(m.count == 1);
        CHECK(m.calls[0].start == 0 && m.calls[0].len == n);
    } else {
        int ne = split_array(v, n, es, ee);
        if (ne < 0)
            return;
        CHECK(ne >= 1 && m.count == ne);
        if (max_batch > 0)
            CHECK(m.count <= max_batch);
        for (int k = 0; k < ne; k++)
            CHECK(m.calls[k].start == es[k] && m.calls[k].start + m.calls[k].len == ee[k]);
    }

    /* what request.c forwards, and a well-formed upstream answer to it */
    char *fwd = NULL, *ans = NULL;
    size_t flen = 0, fcap = 0, alen = 0, acap = 0;
    int valid = 0, answered = 0;
    for (int k = 0; k < m.count; k++) {
        const struct rp_jcall *c = &m.calls[k];
        CHECK((size_t)c->start + c->len <= n && c->len > 0);
        CHECK(rp_frame_validate(v + c->start, c->len) == 0);
        if (c->id_start >= 0) {
            CHECK((size_t)c->id_start + c->id_len <= n);
            CHECK(id_is_valid_json(v + c->id_start, c->id_len));
            CHECK((uint32_t)c->id_start >= c->start &&
                  (uint32_t)c->id_start + c->id_len <= c->start + c->len);
        }
        if (c->code) {
            CHECK(c->code == RP_JSONRPC_INVALID_REQUEST && c->reason != NULL);
            CHECK(!rp_jcall_is_notification(c));
            check_error_answer(p2, c->id_start >= 0 ? v + c->id_start : NULL,
                               c->id_start >= 0 ? c->id_len : 0, c->code, c->reason, NULL, h);
            continue;
        }
        CHECK(c->method_start >= 1 && (size_t)c->method_start + c->method_len < n);
        CHECK(v[c->method_start - 1] == '"' && v[c->method_start + c->method_len] == '"');
        append(&fwd, &flen, &fcap, valid ? "," : "[", 1);
        append(&fwd, &flen, &fcap, v + c->start, c->len);
        valid++;
        if (rp_jcall_is_notification(c))
            continue;
        append(&ans, &alen, &acap, answered ? "," : "[", 1);
        append(&ans, &alen, &acap, "{\"jsonrpc\":\"2.0\",\"id\":", 22);
        append(&ans, &alen, &acap, v + c->id_start, c->id_len);
        append(&ans, &alen, &acap, ",\"result\":null}", 15);
        answered++;
        /* the answer rpcpool gives when the call fails upstream */
        check_error_answer(p2, v + c->id_start, c->id_len, RP_JSONRPC_INTERNAL_ERROR,
                           "Upstream error: retries spent",
                           "[{\"endpoint\":\"a\",\"error\":\"x\"}]", h);
    }
    if (valid) {
        append(&fwd, &flen, &fcap, "]", 1);
        CHECK(rp_frame_validate(fwd, flen) == 0);
        struct rp_jmsg m2;
        CHECK(rp_jsonrpc_parse(p2, fwd, flen, 0, &m2) == 0);
        CHECK(m2.code == 0 && m2.is_batch && m2.count == valid);
        int j = 0;
        for (int k = 0; k < m.count; k++) {
            const struct rp_jcall *a = &m.calls[k], *b = &m2.calls[j];
            if (a->code)
                continue;
            j++;
            CHECK(b->code == 0);
            CHECK(a->method_len == b->method_len &&
                  memcmp(v + a->method_start, fwd + b->method_start, a->method_len) == 0);
            CHECK((a->id_start < 0) == (b->id_start < 0));
            if (a->id_start >= 0)
                CHECK(a->id_len == b->id_len &&
                      memcmp(v + a->id_start, fwd + b->id_start, a->id_len) == 0);
        }
    }
    if (answered) {
        append(&ans, &alen, &acap, "]", 1);
        CHECK(rp_jsonrpc_check_response(p2, ans, alen, 1, NULL, 0) == 0);
        if (!m.is_batch) { /* the single answer, without the array */
            CHECK(rp_jsonrpc_check_response(p2, ans + 1, alen - 2, 0, v + m.calls[0].id_start,
                                            m.calls[0].id_len) == 0);
            /* and not for another id */
            if (m.calls[0].id_len != 15 ||
                memcmp(v + m.calls[0].id_start, "\"rpcpool-other\"", 15) != 0)
                CHECK(rp_jsonrpc_check_response(p2, ans + 1, alen - 2, 0, "\"rpcpool-other\"",
                                                15) != 0);
        }
    }
    free(fwd);
    free(ans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long batches[] = {0, 1, 2, 3, 1000};
    struct rp_jparser p, p2;
    struct rp_frame s;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    long max_batch = batches[h % 5];

    rp_jparser_init(&p);
    rp_jparser_init(&p2);
    rp_frame_init(&s);
    for (;;) {
        size_t st, en;
        if (rp_frame_scan(&s, (const char *)data, size, &st, &en) != RP_FRAME_VALUE)
            break;
        char *v = malloc(en - st);
        CHECK(v != NULL);
        memcpy(v, data + st, en - st);
        check_value(&p, &p2, v, en - st, max_batch, h);
        free(v);
    }
    /* a value that ends the input (a top-level scalar needs a delimiter) */
    if (rp_frame_validate((const char *)data, size) == 0) {
        size_t a = 0, b = size;
        while (a < b && is_ws(data[a]))
            a++;
        while (b > a && is_ws(data[b - 1]))
            b--;
        char *v = malloc(b - a);
        CHECK(v != NULL);
        memcpy(v, data + a, b - a);
        check_value(&p, &p2, v, b - a, max_batch, h);
        free(v);
    }

    /* the input as an error message (any bytes: invalid UTF-8, controls) */
    char *msg = malloc(size + 1);
    CHECK(msg != NULL);
    memcpy(msg, data, size);
    msg[size] = '\0';
    size_t mlen = strlen(msg);
    check_error_answer(&p2, "7", 1, RP_JSONRPC_INVALID_REQUEST, msg, NULL, h);
    check_error_answer(&p2, "\"a\\\"b\"", 6, RP_JSONRPC_LIMIT_EXCEEDED, msg, "{\"k\":[1,2]}",
                       h >> 7);
    size_t en = rp_json_escape(NULL, 0, msg, mlen);
    char *esc = malloc(en + 3);
    CHECK(esc != NULL);
    esc[0] = '"';
    CHECK(rp_json_escape(esc + 1, en + 1, msg, mlen) == en);
    esc[en + 1] = '"';
    CHECK(rp_frame_validate(esc, en + 2) == 0);
    for (size_t i = 1; i <= en; i++)
        CHECK(esc[i] != '\n' && esc[i] != '\r');
    free(esc);
    free(msg);

    rp_jparser_free(&p);
    rp_jparser_free(&p2);
    return 0;
}
