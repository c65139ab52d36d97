/* rp_h1.h - the pure half of the native HTTP/1.1 upstream client
 * (src/proto/h1.c): URL splitting, request formatting and the incremental
 * response parser. They touch no socket, clock or shared memory; the unit
 * tests drive them byte by byte. The transport that uses them is the
 * worker's (src/worker/transport_h1.h).
 */
#ifndef RP_H1_H
#define RP_H1_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "rp_buf.h"

#define RP_H1_HOST_MAX 256 /* bytes of a host name, NUL included */

/* A split http:// or https:// URL. */
struct rp_h1_url {
    char host[RP_H1_HOST_MAX];         /* without brackets for an IPv6 literal */
    char hostport[RP_H1_HOST_MAX + 8]; /* the Host header: host, [v6], ":port" when not default */
    uint16_t port;                     /* 80 (443 for https) when not given */
    int tls;                           /* https:// (or wss://) */
    const char *target;                /* request target: path and query ("/" when empty); points
                                          into the URL given to rp_h1_url_parse() */
    size_t target_len;
    int has_userinfo;     /* "user:pass@" before the host: sent as Basic authorization */
    const char *userinfo; /* points into the URL */
    size_t userinfo_len;
};

/* Split URL ("http[s]://host[:port][/path][?query][#fragment]", scheme in
 * any case; ws:// and wss:// take the same form, wss as https) into U. The fragment is dropped;
 * U->target points into URL, which must outlive U. Returns 0, or -1 when URL is not such a URL
 * (other scheme, bad port, bytes that need encoding, empty host). */
int rp_h1_url_parse(const char *url, struct rp_h1_url *u);

/* The constant part of every request to the endpoint of U, malloc'd:
 * "POST target HTTP/1.1", Host, Content-Type: application/json and the
 * COUNT configured HEADERS ("Name: value"; one named Host or Content-Type
 * replaces rpcpool's own), and Authorization: Basic for the URL's user info
 * unless a configured header sets Authorization. Each line ends in CRLF; the blank line is not
 * included (rp_h1_content_length() ends the head). *LEN gets the length.
 * Returns NULL when out of memory. */
char *rp_h1_request_head(const struct rp_h1_url *u, char *const *headers, int count, size_t *len);

/* Write "Content-Length: BODY_BYTES\r\n\r\n" into OUT (CAP >= 40). Returns
 * its length. */
size_t rp_h1_content_length(char *out, size_t cap, size_t body_bytes);

/* What rp_h1_resp_feed() / rp_h1_resp_eof() found. */
enum rp_h1_resp_state {
    RP_H1_RESP_MORE = 0,  /* the response is not complete yet */
    RP_H1_RESP_DONE,      /* a final (non-1xx) response was read whole */
    RP_H1_RESP_MALFORMED, /* not HTTP/1.x, or a framing error */
    RP_H1_RESP_TRUNCATED, /* (eof) closed before the response was complete */
    RP_H1_RESP_TOO_LARGE, /* the body passed max_body_bytes */
};

/* An incremental HTTP/1.x response reader. Interim 1xx responses are read
 * and forgotten; the final response's body is appended to a caller's
 * buffer. */
struct rp_h1_resp {
    http_parser parser;
    struct rp_buf *body; /* where the body goes (reset by rp_h1_resp_init) */
    size_t max_body_bytes;
    long status;        /* of the final response once its head was read, else 0 */
    long retry_after_s; /* Retry-After in seconds (1..86399), 0 when absent */
    uint64_t bytes;     /* response bytes seen so far */
    int done;           /* the final response was read whole */
    int keep_alive;     /* when done: the connection may carry another request */
    int too_large;
    /* Retry-After matching across split callbacks */
    unsigned field_len;
    int field_is_ra; /* the field being read is Retry-After (so far) */
    int in_value;    /* the last callback was a header value */
    char ra[16];
    unsigned ra_len;
};

/* Prepare R for a new response whose body goes to BODY (emptied). */
void rp_h1_resp_init(struct rp_h1_resp *r, struct rp_buf *body, size_t max_body_bytes);

/* Feed LEN bytes of the response stream. *USED (may be NULL) gets the bytes
 * consumed; after DONE, bytes left over mean the server sent more than one
 * response: the connection is then not kept (R->keep_alive is cleared). */
enum rp_h1_resp_state rp_h1_resp_feed(struct rp_h1_resp *r, const char *data, size_t len,
                                      size_t *used);

/* The server closed the connection: DONE when that ends a body read until
 * close, else TRUNCATED (MALFORMED when the bytes were not HTTP). */
enum rp_h1_resp_state rp_h1_resp_eof(struct rp_h1_resp *r);

#endif
