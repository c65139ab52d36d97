/* fuzz_restore.c - libFuzzer target for the restoring of the client's id
 * (src/proto/jsonrpc.c: rp_jsonrpc_restore_id, after rp_jsonrpc_check_response
 * accepted an endpoint's answer to one call), which request.c uses so that a
 * client gets its own id bytes back whatever spelling the node echoed
 * ("\u0061" for "a", 1.0 for 1, null or nothing in an error).
 *
 * Input: "<id>\n<body>": the first line is the raw id the client sent (when
 * it is not a JSON string, number or null, one of a few ids is picked by the
 * input's hash); the rest is the endpoint's body.
 * Invariants, for every body the check accepts for that id:
 *  - the size query and the real write agree; a buffer one byte short is not
 *    written at all;
 *  - nothing to change means the body's id is exactly the client's bytes;
 *  - the result is valid JSON, is accepted again for the same id, and its id
 *    value is exactly the client's bytes;
 *  - only the id changed: the bytes before and after its span are the
 *    body's own (an id member inserted after the object's brace when there
 *    was none), and the length adds up;
 *  - restoring again changes nothing; making it one line keeps all of this.
 */
#include "rp_frame.h"
#include "rp_jsonrpc.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct rp_jparser parser;

/* Is ID[0, N) one JSON string, number or null (what a request's id may be)? */
static int valid_id(const char *id, size_t n)
{
    if (n == 0 || rp_frame_validate(id, n) != 0)
        return 0;
    if (id[0] == ' ' || id[0] == '\t' || id[0] == '\r' || id[n - 1] == ' ' || id[n - 1] == '\t' ||
        id[n - 1] == '\r')
        return 0;
    return id[0] == '"' || id[0] == '-' || (id[0] >= '0' && id[0] <= '9') ||
           (n == 4 && memcmp(id, "null", 4) == 0);
}

/* Check B[0, N) (an exact-size heap copy) for ID; returns the verdict and
 * leaves the id span in PARSER. */
static int check(const char *b, size_t n, const char *id, size_t id_len)
{
    return rp_jsonrpc_check_response(&parser, n ? b : "", n, 0, id, id_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ids[] = {"1", "\"a\"", "null", "-7", "\"\\u0061\"", "1e3", "\"\""};
    const char *d = (const char *)data;
    const char *nl = memchr(d, '\n', size);
    if (!nl)
        return 0;
    const char *id = d;
    size_t id_len = (size_t)(nl - d);
    if (!valid_id(id, id_len)) {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < size; i++)
            h = (h ^ data[i]) * 1099511628211ull;
        id = ids[h % (sizeof ids / sizeof ids[0])];
        id_len = strlen(id);
    }
    size_t len = size - (size_t)(nl + 1 - d);
    char *body = malloc(len ? len : 1);
    CHECK(body != NULL);
    memcpy(body, nl + 1, len);
    if (check(body, len, id, id_len) != 0) {
        free(body);
        return 0;
    }
    long is = parser.id_start, ie = parser.id_end;
    size_t n = rp_jsonrpc_restore_id(&parser, body, len, id, id_len, NULL, 0);
    if (n == 0) {
        CHECK(is >= 0 && (size_t)(ie - is) == id_len && memcmp(body + is, id, id_len) == 0);
        free(body);
        return 0;
    }
    char *out = malloc(n);
    CHECK(out != NULL);
    memset(out, 0x55, n);
    if (n > 1) {
        CHECK(rp_jsonrpc_restore_id(&parser, body, len, id, id_len, out, n - 1) == n);
        for (size_t i = 0; i < n; i++)
            CHECK((unsigned char)out[i] == 0x55);
    }
    CHECK(rp_jsonrpc_restore_id(&parser, body, len, id, id_len, out, n) == n);

    /* only the id changed */
    size_t s, e;
    if (is >= 0) {
        s = (size_t)is;
        e = (size_t)ie;
        CHECK(n == len - (e - s) + id_len);
        CHECK(memcmp(out, body, s) == 0);
        CHECK(memcmp(out + s, id, id_len) == 0);
        CHECK(memcmp(out + s + id_len, body + e, len - e) == 0);
    } else {
        const char *brace = memchr(body, '{', len);
        CHECK(brace != NULL);
        s = (size_t)(brace - body) + 1;
        CHECK(n == len + id_len + 6);
        CHECK(memcmp(out, body, s) == 0);
        CHECK(memcmp(out + s, "\"id\":", 5) == 0);
        CHECK(memcmp(out + s + 5, id, id_len) == 0);
        CHECK(out[s + 5 + id_len] == ',');
        CHECK(memcmp(out + s + 6 + id_len, body + s, len - s) == 0);
    }

    /* valid, accepted for the same id, with exactly its bytes; idempotent */
    CHECK(rp_frame_validate(out, n) == 0);
    CHECK(check(out, n, id, id_len) == 0);
    CHECK(parser.id_start >= 0 && (size_t)(parser.id_end - parser.id_start) == id_len &&
          memcmp(out + parser.id_start, id, id_len) == 0);
    CHECK(rp_jsonrpc_restore_id(&parser, out, n, id, id_len, NULL, 0) == 0);

    /* one line, as written to an IPC client: still all of the above */
    size_t sl = rp_json_strip_newlines(out, n);
    CHECK(memchr(out, '\n', sl) == NULL && memchr(out, '\r', sl) == NULL);
    CHECK(rp_frame_validate(out, sl) == 0);
    CHECK(check(out, sl, id, id_len) == 0);
    CHECK(rp_jsonrpc_restore_id(&parser, out, sl, id, id_len, NULL, 0) == 0);

    free(out);
    free(body);
    return 0;
}
