/* rp_http.h - the pure parts of the HTTP/1.1 front (docs/interface.md section 3):
 * telling an HTTP client from an IPC one by its first bytes, an incremental
 * request parser around libhttp-parser that stops after each request's
 * headers and after each whole request (so the caller can answer pipelined
 * requests in order and send `100 Continue` at the right time), routing,
 * and the formatting of response heads and the /health body.
 *
 * Nothing here touches sockets, the clock or shared memory: conn.c drives it
 * with the bytes a client sent, and the unit tests drive it with byte-split
 * inputs. It depends on libhttp-parser only (no other rpcpool module).
 */
#ifndef RP_HTTP_H
#define RP_HTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "rp_shm_view.h"

#define RP_HTTP_MAX_HEADER_BYTES 8192 /* request line + headers (and trailers): else 431 */
#define RP_HTTP_URL_MAX          256  /* URL bytes kept; a longer URL routes as unknown */
#define RP_HTTP_CHUNK_DIGITS_MAX 16   /* hex digits of a chunk size, leading zeros included */
#define RP_HTTP_CHUNK_EXT_MAX    1024 /* bytes of a chunk's extensions */

/* rp_http_detect(): what the first bytes of a client's stream are. */
enum rp_http_detect_result {
    RP_HTTP_DETECT_NO = 0,   /* not an HTTP request line: IPC framing */
    RP_HTTP_DETECT_YES = 1,  /* "METHOD " of a known method */
    RP_HTTP_DETECT_MORE = 2, /* a prefix of one: wait for more bytes */
};

/* Is BUF[0, LEN) the start of an HTTP/1.x request line, i.e. does it begin
 * with an uppercase method token (GET, POST, PUT, HEAD, OPTIONS, DELETE,
 * PATCH, CONNECT, TRACE) and a space? JSON can never start that way. */
enum rp_http_detect_result rp_http_detect(const char *buf, size_t len);

/* What rp_http_parser_feed() stopped at. */
enum rp_http_event {
    RP_HTTP_NEED_MORE = 0, /* every byte given was consumed; no event */
    RP_HTTP_HEADERS = 1,   /* a request's headers are complete: msg has all but the body */
    RP_HTTP_MESSAGE = 2,   /* a whole request: msg has its body and keep_alive */
    RP_HTTP_ERROR = 3,     /* a bad request: error_status says which answer (then close) */
};

/* The request being parsed (valid from RP_HTTP_HEADERS until the next
 * request's bytes are fed). */
struct rp_http_msg {
    unsigned method; /* enum http_method */
    unsigned http_major, http_minor;
    char url[RP_HTTP_URL_MAX]; /* as received, NUL-terminated, maybe cut */
    size_t url_len;            /* full length received */
    int keep_alive;            /* http_should_keep_alive(): 1.1 default, 1.0 opt-in */
    int expect_continue;       /* "Expect: 100-continue" on HTTP/1.1 */
    int has_body;              /* Content-Length > 0 or chunked */
    int chunked;
    uint64_t content_length; /* when Content-Length was given */
    char *body;              /* heap, NUL-terminated when body_len > 0 */
    size_t body_len, body_cap;
};

struct rp_http_parser {
    http_parser p;
    size_t max_body_bytes; /* over it: 413 */
    struct rp_http_msg msg;
    int in_message;           /* between on_message_begin and on_message_complete */
    int headers_done;         /* later header callbacks are trailers */
    int paused_event;         /* the event a callback paused the parser for */
    int error_status;         /* 400, 413, 417 or 431 after RP_HTTP_ERROR */
    const char *error_reason; /* short text for the error body */
    /* the header being received (only a few are of interest) */
    char field[24];
    size_t field_len; /* bytes of the name, may exceed sizeof field */
    char value[32];
    size_t value_len;
    int in_value; /* the last callback was a value */
    int seen_content_length, seen_transfer_encoding, seen_expect_other;
    /* RFC 9112 framing, checked on every byte libhttp-parser consumed
     * (it accepts bare LF, obs-fold and any number of chunk-size digits) */
    int strict_state;       /* where in a message (http.c) */
    int strict_cr;          /* the last byte was a CR */
    size_t strict_line;     /* bytes of the current line (or chunk extension) */
    unsigned strict_lines;  /* lines of the head (or trailer section) ended so far */
    unsigned strict_digits; /* of the chunk size being read */
    uint64_t strict_left;   /* bytes of body (or chunk data) still to come */
    uint64_t strict_body;   /* body bytes of this request so far (over max: 413) */
};

/* Set up HP for a new connection; bodies over MAX_BODY_BYTES are refused. */
void rp_http_parser_init(struct rp_http_parser *hp, size_t max_body_bytes);

/* Free what HP holds (the body buffer). */
void rp_http_parser_free(struct rp_http_parser *hp);

/* Parse DATA[0, LEN) from where the last call stopped. Sets *USED to the
 * bytes consumed (the caller drops them and feeds the rest again) and
 * returns the event it stopped at. After RP_HTTP_ERROR the parser is dead:
 * every later call returns RP_HTTP_ERROR with *USED = 0. */
enum rp_http_event rp_http_parser_feed(struct rp_http_parser *hp, const char *data, size_t len,
                                       size_t *used);

/* 1 when HP is between requests (nothing of the next one parsed yet), so
 * the connection may be handed to another process with its unparsed bytes. */
int rp_http_parser_idle(const struct rp_http_parser *hp);

/* Release the body of the request just handled when it is large, so an idle
 * keep-alive connection does not hold a megabyte. */
void rp_http_parser_trim(struct rp_http_parser *hp);

/* Where a request goes. */
enum rp_http_route {
    RP_HTTP_ROUTE_RPC = 0,    /* POST (any path): a JSON-RPC body */
    RP_HTTP_ROUTE_HEALTH,     /* GET/HEAD /health */
    RP_HTTP_ROUTE_METRICS,    /* GET/HEAD /metrics */
    RP_HTTP_ROUTE_OPTIONS,    /* OPTIONS: 204 with Allow */
    RP_HTTP_ROUTE_NOT_FOUND,  /* GET/HEAD of another path: 404 */
    RP_HTTP_ROUTE_BAD_METHOD, /* 405 with *ALLOW */
};

/* Route METHOD on URL[0, LEN) (origin form "/path?q" or absolute form
 * "http://host/path"). *ALLOW is set to the Allow header value for 405 and
 * OPTIONS. */
enum rp_http_route rp_http_route(unsigned method, const char *url, size_t len, const char **allow);

/* Flags of rp_http_format_head(). */
#define RP_HTTP_F_CLOSE      1u /* "Connection: close" */
#define RP_HTTP_F_KEEP_ALIVE 2u /* "Connection: keep-alive" (an HTTP/1.0 client that asked) */

/* Write the status line and headers of a response (up to and including the
 * empty line) into OUT (CAP bytes): STATUS with its reason phrase,
 * Content-Type when CONTENT_TYPE is not NULL, Content-Length, EXTRA (whole
 * "Name: value\r\n" lines, or NULL) and the Connection header FLAGS ask for.
 * Returns the length it needs (like snprintf: >= CAP means cut). */
size_t rp_http_format_head(char *out, size_t cap, int status, const char *content_type,
                           size_t content_length, const char *extra, unsigned flags);

/* Endpoints of snapshot S that can serve: state up (which excludes drained,
 * down, lagging and quarantined ones) and breaker not open. */
int rp_http_healthy_count(const struct rp_snapshot *s);

/* Write the /health body for snapshot S into OUT (CAP bytes, at least 64):
 * {"status":"ok","healthy":N} or {"status":"unavailable","healthy":0}.
 * Returns the HTTP status, 200 or 503; *LEN gets the body length. */
int rp_http_health_body(const struct rp_snapshot *s, char *out, size_t cap, size_t *len);

#endif
