/* fuzz_response.c - libFuzzer target for the upstream response handler:
 * rp_jsonrpc_check_response (is an endpoint's body a JSON-RPC response to
 * what was sent?) and rp_json_strip_newlines (the reshaping request.c does
 * before writing it to an IPC client), over bodies an endpoint might send.
 *
 * Input format: an optional first line chooses what was sent, the rest is
 * the body. "S<id>\n": a single call with raw id <id>; "N\n": a single call
 * whose id is not checked; "B\n": a batch. Without such a line the whole
 * input is the body and the hash of it picks the mode.
 * Invariants:
 *  - an accepted body is valid JSON, an object (or an array for a batch);
 *    for a single call it holds the wanted id, and is also accepted with no
 *    id check, and refused for any other id;
 *  - a single object's own top-level "id" value is accepted as the wanted
 *    id (also with whitespace around it);
 *  - whitespace around the body, and line breaks removed by
 *    rp_json_strip_newlines, never change the verdict on valid JSON;
 *  - strip_newlines removes exactly the CR and LF bytes, keeps valid JSON
 *    valid, and is idempotent;
 *  - a batch answer (array) is accepted exactly when each element is
 *    accepted as a single response.
 */
#include "rp_frame.h"
#include "rp_jsonrpc.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rp_jparser parser;

static int is_ws(unsigned c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Run the check on an exact-size heap copy of B[0, N). */
static int check(const char *b, size_t n, int batch, const char *id, size_t id_len)
{
    char *c = malloc(n ? n : 1);
    CHECK(c != NULL);
    memcpy(c, b, n);
    int r = rp_jsonrpc_check_response(&parser, n ? c : NULL, n, batch, id, id_len);
    CHECK(r == 0 || r == -1);
    free(c);
    return r;
}

/* The end of the JSON string at B[I] (B[I] is '"'), B valid JSON. */
static size_t skip_string(const char *b, size_t n, size_t i)
{
    for (i++; i < n && b[i] != '"'; i++)
        if (b[i] == '\\')
            i++;
    return i + 1;
}

/* The end of the value at B[I] of valid JSON B[0, N). */
static size_t skip_value(const char *b, size_t n, size_t i)
{
    if (b[i] == '"')
        return skip_string(b, n, i);
    if (b[i] == '{' || b[i] == '[') {
        int depth = 0;
        while (i < n) {
            if (b[i] == '"') {
                i = skip_string(b, n, i);
                continue;
            }
            if (b[i] == '{' || b[i] == '[')
                depth++;
            else if ((b[i] == '}' || b[i] == ']') && --depth == 0)
                return i + 1;
            i++;
        }
        return n;
    }
    while (i < n && !is_ws((unsigned char)b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']')
        i++;
    return i;
}

/* The container at B[I] of valid JSON: the bounds of each element of an
 * array, or of the value of each plain "id" key of an object, into VS/VE
 * (at most MAX). Returns how many there are. */
static int walk(const char *b, size_t n, size_t i, size_t *vs, size_t *ve, int max)
{
    int is_obj = b[i] == '{';
    int count = 0;
    i++;
    for (;;) {
        while (i < n && is_ws((unsigned char)b[i]))
            i++;
        if (i >= n || b[i] == '}' || b[i] == ']')
            return count;
        int is_id = 0;
        if (is_obj) {
            size_t ke = skip_string(b, n, i);
            is_id = ke - i == 4 && memcmp(b + i, "\"id\"", 4) == 0;
            i = ke;
            while (i < n && (is_ws((unsigned char)b[i]) || b[i] == ':'))
                i++;
        }
        size_t e = skip_value(b, n, i);
        if ((!is_obj || is_id) && count < max) {
            vs[count] = i;
            ve[count] = e;
        }
        if (!is_obj || is_id)
            count++;
        i = e;
        while (i < n && is_ws((unsigned char)b[i]))
            i++;
        if (i < n && b[i] == ',')
            i++;
    }
}

#define MAX_ELEMS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static size_t vs[MAX_ELEMS], ve[MAX_ELEMS];
    const char *d = (const char *)data;
    const char *body = d, *id = NULL;
    size_t blen = size, id_len = 0;
    int batch;
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    const char *nl = memchr(d, '\n', size);
    if (size && nl && (d[0] == 'S' || d[0] == 'N' || d[0] == 'B')) {
        batch = d[0] == 'B';
        if (d[0] == 'S') {
            id = d + 1;
            id_len = (size_t)(nl - d - 1);
        }
        body = nl + 1;
        blen = size - (size_t)(nl + 1 - d);
    } else {
        batch = (h & 3) == 0;
    }

    int r = check(body, blen, batch, id, id_len);
    int valid = rp_frame_validate(blen ? body : "", blen) == 0;
    size_t s = 0;
    while (s < blen && is_ws((unsigned char)body[s]))
        s++;
    if (r == 0) {
        CHECK(valid);
        CHECK(body[s] == '{' || (batch && body[s] == '['));
        if (id) {
            CHECK(check(body, blen, 0, NULL, 0) == 0);
            /* another id (one byte longer) is refused, unless the answer
             * is an error tied to no id (missing or null): the node's
             * answer to whatever call it was sent for */
            CHECK(check(body, blen, 0, NULL, 0) == 0); /* sets the id span */
            long is = parser.id_start, ie = parser.id_end;
            int untied = is < 0 || (ie - is == 4 && memcmp(body + is, "null", 4) == 0);
            char *other = malloc(id_len + 1);
            CHECK(other != NULL);
            memcpy(other, id, id_len);
            other[id_len] = 'x';
            CHECK(untied || check(body, blen, 0, other, id_len + 1) != 0);
            free(other);
        }
    }

    /* whitespace around the body changes nothing */
    char *wrapped = malloc(blen + 6);
    CHECK(wrapped != NULL);
    memcpy(wrapped, " \r\n", 3);
    memcpy(wrapped + 3, body, blen);
    memcpy(wrapped + 3 + blen, "\n\t ", 3);
    CHECK(check(wrapped, blen + 6, batch, id, id_len) == r);
    free(wrapped);

    /* strip_newlines: exactly the CR/LF bytes go, valid JSON stays valid,
     * the verdict on a valid body stays the same */
    char *st = malloc(blen ? blen : 1);
    CHECK(st != NULL);
    memcpy(st, body, blen);
    size_t sl = rp_json_strip_newlines(st, blen);
    CHECK(sl <= blen);
    size_t w = 0;
    for (size_t i = 0; i < blen; i++)
        if (body[i] != '\n' && body[i] != '\r')
            CHECK(w < sl && st[w++] == body[i]);
    CHECK(w == sl);
    CHECK(rp_json_strip_newlines(st, sl) == sl);
    if (valid) {
        CHECK(rp_frame_validate(sl ? st : "", sl) == 0);
        CHECK(check(st, sl, batch, id, id_len) == r);
    }
    free(st);

    if (!valid || s >= blen)
        return 0;

    /* a single object: its own id is the id it answers */
    if (body[s] == '{' && check(body, blen, 0, NULL, 0) == 0) {
        int nid = walk(body, blen, s, vs, ve, MAX_ELEMS);
        if (nid == 1) {
            CHECK(check(body, blen, 0, body + vs[0], ve[0] - vs[0]) == 0);
            char *pad = malloc(ve[0] - vs[0] + 2);
            CHECK(pad != NULL);
            pad[0] = ' ';
            memcpy(pad + 1, body + vs[0], ve[0] - vs[0]);
            pad[ve[0] - vs[0] + 1] = '\n';
            CHECK(check(body, blen, 0, pad, ve[0] - vs[0] + 2) == 0);
            free(pad);
        }
    }

    /* a batch answer: accepted exactly when every element is */
    if (body[s] == '[') {
        int ne = walk(body, blen, s, vs, ve, MAX_ELEMS);
        if (ne <= MAX_ELEMS) {
            int all = 1;
            for (int k = 0; k < ne && all; k++)
                all = check(body + vs[k], ve[k] - vs[k], 0, NULL, 0) == 0;
            CHECK(check(body, blen, 1, NULL, 0) == (all ? 0 : -1));
        }
    }
    return 0;
}
