/* h1.c - the pure half of the native HTTP/1.1 upstream client (see
 * rp_h1.h): URL splitting, the constant request head, and the incremental
 * response reader. No socket, clock or shared memory: the transport
 * (src/worker/transport_h1.c) feeds it, the unit test and the fuzzer drive
 * it byte by byte.
 */
#include "rp_h1.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
/* ---------------------------------------------------------------------
 * URL and request head
 * ------------------------------------------------------------------- */

int rp_h1_url_parse(const char *url, struct rp_h1_url *u)
{
    memset(u, 0, sizeof *u);
    size_t skip;
    if (url && strncasecmp(url, "http://", 7) == 0) {
        skip = 7;
    } else if (url && strncasecmp(url, "https://", 8) == 0) {
        skip = 8;
        u->tls = 1;
    } else if (url && strncasecmp(url, "ws://", 5) == 0) { /* RFC 6455 3: http's form */
        skip = 5;
    } else if (url && strncasecmp(url, "wss://", 6) == 0) {
        skip = 6;
        u->tls = 1;
    } else {
        return -1;
    }
    for (const unsigned char *b = (const unsigned char *)url; *b; b++)
        if (*b <= 0x20 || *b >= 0x7f)
            return -1;
    const char *auth = url + skip;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *hp = auth;
    if (at) {
        u->has_userinfo = 1;
        u->userinfo = auth;
        u->userinfo_len = (size_t)(at - auth);
        hp = at + 1;
    }
    size_t hp_len = (size_t)(auth + auth_len - hp);
    size_t host_len;
    const char *host = hp;
    size_t name_len;
    if (hp_len && hp[0] == '[') {
        const char *close = memchr(hp, ']', hp_len);
        if (!close)
            return -1;
        host_len = (size_t)(close - hp) + 1;
        host = hp + 1;
        name_len = host_len - 2;
    } else {
        host_len = 0;
        while (host_len < hp_len && hp[host_len] != ':')
            host_len++;
        name_len = host_len;
    }
    if (name_len == 0 || name_len >= sizeof u->host)
        return -1;
    memcpy(u->host, host, name_len);
    u->host[name_len] = '\0';
    uint16_t default_port = u->tls ? 443 : 80;
    u->port = default_port;
    int explicit_port = 0;
    if (host_len < hp_len) {
        if (hp[host_len] != ':')
            return -1;
        const char *p = hp + host_len + 1;
        size_t plen = hp_len - host_len - 1;
        if (plen == 0 || plen > 5)
            return -1;
        long port = 0;
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535)
            return -1;
        u->port = (uint16_t)port;
        explicit_port = 1;
    }
    if (explicit_port && u->port != default_port)
        snprintf(u->hostport, sizeof u->hostport, "%.*s:%u", (int)host_len, hp, (unsigned)u->port);
    else
        snprintf(u->hostport, sizeof u->hostport, "%.*s", (int)host_len, hp);
    const char *rest = auth + auth_len;
    size_t rest_len = strcspn(rest, "#");
    u->target = rest;
    u->target_len = rest_len;
    return 0;
}

static int hex_digit(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* Does header line H ("Name: value") carry the header NAME? */
static int header_named(const char *h, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(h, name, n) == 0 && h[n] == ':';
}

/* Append "Authorization: Basic ..." for the URL's user info (percent
 * escapes decoded, as libcurl does) to B. */
static void append_basic_auth(struct rp_buf *b, const char *ui, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char raw[RP_H1_HOST_MAX];
    size_t n = 0;
    for (size_t i = 0; i < len && n < sizeof raw; i++) {
        int hi, lo;
        if (ui[i] == '%' && i + 2 < len && (hi = hex_digit(ui[i + 1])) >= 0 &&
            (lo = hex_digit(ui[i + 2])) >= 0) {
            raw[n++] = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else {
            raw[n++] = (unsigned char)ui[i];
        }
    }
    rp_buf_puts(b, "Authorization: Basic ");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (i + 1 < n ? (unsigned)raw[i + 1] << 8 : 0) |
                     (i + 2 < n ? raw[i + 2] : 0);
        char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=',
                     i + 2 < n ? b64[v & 63] : '='};
        rp_buf_append(b, q, 4);
    }
    rp_buf_puts(b, "\r\n");
}

char *rp_h1_request_head(const struct rp_h1_url *u, char *const *headers, int count, size_t *len)
{
    int own_host = 1, own_type = 1, own_auth = u->has_userinfo;
    for (int i = 0; i < count; i++) {
        if (header_named(headers[i], "host"))
            own_host = 0;
        if (header_named(headers[i], "content-type"))
            own_type = 0;
        if (header_named(headers[i], "authorization"))
            own_auth = 0;
    }
    struct rp_buf b = RP_BUF_INIT;
    rp_buf_puts(&b, "POST ");
    if (u->target_len == 0 || u->target[0] != '/')
        rp_buf_puts(&b, "/");
    rp_buf_append(&b, u->target, u->target_len);
    rp_buf_puts(&b, " HTTP/1.1\r\n");
    if (own_host)
        rp_buf_appendf(&b, "Host: %s\r\n", u->hostport);
    if (own_type)
        rp_buf_puts(&b, "Content-Type: application/json\r\n");
    if (own_auth)
        append_basic_auth(&b, u->userinfo, u->userinfo_len);
    for (int i = 0; i < count; i++) {
        rp_buf_puts(&b, headers[i]);
        rp_buf_puts(&b, "\r\n");
    }
    return rp_buf_detach(&b, len);
}

size_t rp_h1_content_length(char *out, size_t cap, size_t body_bytes)
{
    int n = snprintf(out, cap, "Content-Length: %zu\r\n\r\n", body_bytes);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---------------------------------------------------------------------
 * response parser
 * ------------------------------------------------------------------- */

static struct rp_h1_resp *resp_of(http_parser *p)
{
    return (struct rp_h1_resp *)((char *)p - offsetof(struct rp_h1_resp, parser));
}

/* The Retry-After value read so far, in seconds (the HTTP-date form is not
 * used: 0). */
static void resp_take_retry_after(struct rp_h1_resp *r)
{
    if (!r->field_is_ra || r->field_len != sizeof "retry-after" - 1)
        return;
    r->ra[r->ra_len] = '\0';
    char *end;
    long v = strtol(r->ra, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end != r->ra && *end == '\0' && v > 0 && v < 86400)
        r->retry_after_s = v;
    r->field_is_ra = 0;
}

static int on_message_begin(http_parser *p)
{
    struct rp_h1_resp *r = resp_of(p);
    r->status = 0;
    r->retry_after_s = 0;
    r->field_len = 0;
    r->field_is_ra = 0;
    r->in_value = 0;
    r->ra_len = 0;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    static const char name[] = "retry-after";
    struct rp_h1_resp *r = resp_of(p);
    if (r->in_value) {
        resp_take_retry_after(r);
        r->in_value = 0;
        r->field_len = 0;
        r->ra_len = 0;
    }
    if (r->field_len == 0)
        r->field_is_ra = 1;
    for (size_t i = 0; i < len && r->field_is_ra; i++) {
        char c = at[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (r->field_len + i >= sizeof name - 1 || c != name[r->field_len + i])
            r->field_is_ra = 0;
    }
    r->field_len += (unsigned)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct rp_h1_resp *r = resp_of(p);
    r->in_value = 1;
    if (r->field_is_ra && r->field_len == sizeof "retry-after" - 1) {
        for (size_t i = 0; i < len; i++) {
            if (r->ra_len + 1 >= sizeof r->ra) {
                r->field_is_ra = 0; /* too long for a number of seconds */
                break;
            }
            r->ra[r->ra_len++] = at[i];
        }
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct rp_h1_resp *r = resp_of(p);
    if (p->status_code < 100)
        return -1; /* not a three-digit status (libhttp-parser takes "20"): not HTTP */
    if (r->in_value)
        resp_take_retry_after(r);
    r->in_value = 0;
    r->status = p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct rp_h1_resp *r = resp_of(p);
    if (r->body->len + len > r->max_body_bytes) {
        r->too_large = 1;
        return -1;
    }
    return rp_buf_append(r->body, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p)
{
    struct rp_h1_resp *r = resp_of(p);
    if (p->status_code >= 100 && p->status_code < 200) {
        /* an interim response: forget it, the final one follows */
        r->status = 0;
        r->retry_after_s = 0;
        rp_buf_reset(r->body);
        return 0;
    }
    r->done = 1;
    r->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* anything after it is not ours to consume */
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void rp_h1_resp_init(struct rp_h1_resp *r, struct rp_buf *body, size_t max_body_bytes)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->body = body;
    r->max_body_bytes = max_body_bytes;
    rp_buf_reset(body);
}

enum rp_h1_resp_state rp_h1_resp_feed(struct rp_h1_resp *r, const char *data, size_t len,
                                      size_t *used)
{
    if (used)
        *used = 0;
    if (r->done) {
        if (len)
            r->keep_alive = 0;
        return RP_H1_RESP_DONE;
    }
    if (len == 0)
        return RP_H1_RESP_MORE;
    r->bytes += len;
    size_t n = http_parser_execute(&r->parser, &resp_settings, data, len);
    if (used)
        *used = n;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->done) {
        if (n < len)
            r->keep_alive = 0; /* more than one response: do not trust this connection */
        return RP_H1_RESP_DONE;
    }
    if (r->too_large)
        return RP_H1_RESP_TOO_LARGE;
    if (e != HPE_OK || r->parser.upgrade || n != len)
        return RP_H1_RESP_MALFORMED;
    return RP_H1_RESP_MORE;
}

enum rp_h1_resp_state rp_h1_resp_eof(struct rp_h1_resp *r)
{
    if (r->done)
        return RP_H1_RESP_DONE;
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
        return RP_H1_RESP_MALFORMED;
    if (r->bytes == 0)
        return RP_H1_RESP_TRUNCATED;
    http_parser_execute(&r->parser, &resp_settings, NULL, 0);
    if (r->done) {
        r->keep_alive = 0;
        return RP_H1_RESP_DONE;
    }
    if (r->too_large)
        return RP_H1_RESP_TOO_LARGE;
    return RP_H1_RESP_TRUNCATED;
}
