/* rp_jsonrpc.h - JSON-RPC 2.0 request validation, response checks and the
 * error objects rpcpool writes itself (docs/interface.md section 3).
 *
 * Input is one complete, syntactically valid JSON value (as delimited by the
 * framing scanner). jsmn (JSMN_PARENT_LINKS, JSMN_STRICT) tokenises it to
 * read jsonrpc, id and method. The request bytes are forwarded as they came.
 */
#ifndef RP_JSONRPC_H
#define RP_JSONRPC_H

#include <stddef.h>
#include <stdint.h>

#define RP_JSONRPC_PARSE_ERROR     -32700
#define RP_JSONRPC_INVALID_REQUEST -32600
#define RP_JSONRPC_INTERNAL_ERROR  -32603
#define RP_JSONRPC_NO_UPSTREAM     -32002
#define RP_JSONRPC_LIMIT_EXCEEDED  -32005
#define RP_JSONRPC_SERVER_ERROR    -32000 /* what nodes answer, e.g. "filter not found" */

/* One call: a single request, or one element of a batch. Offsets are into
 * the value passed to rp_jsonrpc_parse(). */
struct rp_jcall {
    uint32_t start, len; /* the call's own bytes */
    int32_t id_start;    /* raw id bytes (e.g. `7`, `"a"`, `null`); -1 when absent */
    uint32_t id_len;
    uint32_t method_start, method_len; /* method string contents, no quotes */
    int code;                          /* 0 = valid; else RP_JSONRPC_INVALID_REQUEST */
    const char *reason;                /* for code != 0: short reason, static string */
};

/* A parsed message: a single call or a batch. */
struct rp_jmsg {
    int is_batch;
    int count; /* calls; 0 for an empty batch */
    int code;  /* 0, or -32600 for the message as a whole (e.g. empty batch,
                  a scalar, batch over max_batch) */
    const char *reason;
    struct rp_jcall *calls; /* owned by the parser; valid until the next parse */
};

/* Reusable parser state: token and call buffers, grown as needed. */
struct rp_jparser {
    void *toks; /* jsmntok_t array */
    unsigned tok_cap;
    struct rp_jcall *calls;
    unsigned call_cap;
    /* Set by rp_jsonrpc_check_response() for a single response object it
     * accepted: its id value is body[id_start, id_end); -1 when it had no
     * id member (or the body was a batch or refused). */
    long id_start, id_end;
};

void rp_jparser_init(struct rp_jparser *p);
void rp_jparser_free(struct rp_jparser *p);

/* Parse BUF[0, LEN) (one JSON value) as a JSON-RPC request or batch. A batch
 * with more than MAX_BATCH calls gets code -32600. Returns 0, or -1 when out
 * of memory. */
int rp_jsonrpc_parse(struct rp_jparser *p, const char *buf, size_t len, long max_batch,
                     struct rp_jmsg *out);

/* 1 when a call is a notification (valid and without id). */
int rp_jcall_is_notification(const struct rp_jcall *c);

/* Check an upstream body: a JSON-RPC 2.0 response object (jsonrpc "2.0",
 * and result or error), or for a batch an array of them. For a single call
 * the response id must name the same value as WANT_ID (raw bytes; strings
 * compared decoded, numbers by value), or the response must be an error
 * with a null or missing id (a node that could not read the id); pass NULL
 * to skip the check. Returns 0 when it is a response, -1 otherwise; for an
 * accepted single response P's id_start / id_end tell where its id is. */
int rp_jsonrpc_check_response(struct rp_jparser *p, const char *buf, size_t len, int want_batch,
                              const char *want_id, size_t want_id_len);

/* Give the client its own id back: BODY[0, LEN) is a single response that
 * rp_jsonrpc_check_response(P, ...) has just accepted for a call whose raw
 * id is ID[0, ID_LEN). The id value P found is replaced by ID; a response
 * without an id member gets "id":ID as its first member. The result goes to
 * OUT (OUTLEN bytes; OUT may be NULL with OUTLEN 0 to learn the size).
 * Returns its length (written only when it fits), or 0 when BODY already
 * carries exactly ID's bytes (nothing to change). */
size_t rp_jsonrpc_restore_id(const struct rp_jparser *p, const char *body, size_t len,
                             const char *id, size_t id_len, char *out, size_t outlen);

/* Write {"jsonrpc":"2.0","id":ID,"error":{"code":CODE,"message":"MSG"[,"data":DATA]}}
 * into OUT (no newline). ID is raw JSON bytes, or NULL/0 for null. MSG is
 * escaped; DATA, when not NULL, is raw JSON. Returns the length written, or
 * the length needed when OUTLEN is too small (like snprintf). */
size_t rp_jsonrpc_error(char *out, size_t outlen, const char *id, size_t id_len, int code,
                        const char *msg, const char *data);

/* Merge an endpoint's answer BODY[0, LEN) to a forwarded batch with EXTRA,
 * rpcpool's own error objects for the batch's invalid calls (comma-joined,
 * may be empty), into one JSON array in OUT. BODY may be an array (maybe
 * empty), a single object (an error for the whole batch), or nothing.
 * Returns the length written, or needed when OUTLEN is too small (like
 * snprintf; OUT is NUL-terminated when it fits). */
size_t rp_jsonrpc_merge_batch(char *out, size_t outlen, const char *body, size_t len,
                              const char *extra, size_t extra_len);

/* Match an endpoint's answer BODY[0, LEN) to a forwarded batch whose calls
 * expecting an answer were sent with the raw ids IDS ('\n'-separated, in
 * request order; OUT_IDS, in the same order, are the ids the client gave
 * them, or NULL when the same), and write one JSON array into OUT: for
 * each id, in that order, the first unused element whose id names the same
 * value (given back with the client's id bytes), or, when the answer has
 * none, an error object
 * {"code":-32603,"message":"Upstream error","data":MISSING_DATA} for that
 * id; a single error object answering the whole batch is given to every
 * call. Elements with unknown ids (or none) and extra elements are dropped.
 * EXTRA (rpcpool's own error objects, comma-joined) follows. *MISSING (may
 * be NULL) gets the number of calls the answer lacked. Returns the length
 * written, or needed when OUTLEN is too small (like snprintf). */
size_t rp_jsonrpc_match_batch(char *out, size_t outlen, const char *body, size_t len,
                              const char *ids, size_t ids_len, const char *out_ids,
                              size_t out_ids_len, const char *extra, size_t extra_len,
                              const char *missing_data, int *missing);

/* Remove line breaks (CR, LF) outside and inside the JSON text BUF[0, LEN)
 * in place; valid JSON has none inside strings. Returns the new length. */
size_t rp_json_strip_newlines(char *buf, size_t len);

/* Escape S into OUT as a JSON string body (no quotes). Returns length written
 * or needed, like snprintf. */
size_t rp_json_escape(char *out, size_t outlen, const char *s, size_t len);

/* Decode a JSON-RPC quantity S[0, LEN) ("0x0", "0x1a2b", at most 16 hex
 * digits, the quotes not included). Returns 0 and the value in OUT, or -1. */
int rp_jsonrpc_parse_quantity(const char *s, size_t len, uint64_t *out);

#endif
