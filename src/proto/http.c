/* http.c - the pure parts of the HTTP/1.1 front (rp_http.h): detection,
 * the request parser around libhttp-parser, routing and response heads.
 *
 * The parser is paused from inside its own callbacks (http_parser_pause)
 * after a request's headers and after a whole request, so the caller sees
 * one event at a time however many pipelined requests one read brought,
 * and keeps the unparsed rest of its buffer for later (back-pressure).
 */
#include "rp_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rp_breaker.h"

/* ---------------------------------------------------------------------
 * detection
 * ------------------------------------------------------------------- */

static const char *const http_methods[] = {
    "GET ", "POST ", "PUT ", "HEAD ", "OPTIONS ", "DELETE ", "PATCH ", "CONNECT ", "TRACE ",
};

enum rp_http_detect_result rp_http_detect(const char *buf, size_t len)
{
    if (len == 0)
        return RP_HTTP_DETECT_MORE;
    enum rp_http_detect_result best = RP_HTTP_DETECT_NO;
    for (size_t i = 0; i < sizeof http_methods / sizeof http_methods[0]; i++) {
        size_t n = strlen(http_methods[i]);
        size_t cmp = len < n ? len : n;
        if (memcmp(buf, http_methods[i], cmp) != 0)
            continue;
        if (len >= n)
            return RP_HTTP_DETECT_YES;
        best = RP_HTTP_DETECT_MORE;
    }
    return best;
}

/* ---------------------------------------------------------------------
 * parser callbacks
 * ------------------------------------------------------------------- */

static struct rp_http_parser *hp_of(http_parser *p)
{
    return p->data;
}

/* Fail the request with STATUS: the callback returns non-zero and
 * rp_http_parser_feed() reports RP_HTTP_ERROR. */
static int hp_fail(struct rp_http_parser *hp, int status, const char *reason)
{
    hp->error_status = status;
    hp->error_reason = reason;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    struct rp_http_parser *hp = hp_of(p);
    struct rp_http_msg *m = &hp->msg;
    hp->in_message = 1;
    hp->headers_done = 0;
    hp->field_len = hp->value_len = 0;
    hp->in_value = 0;
    hp->seen_content_length = hp->seen_transfer_encoding = hp->seen_expect_other = 0;
    m->method = 0;
    m->http_major = m->http_minor = 0;
    m->url[0] = '\0';
    m->url_len = 0;
    m->keep_alive = 0;
    m->expect_continue = 0;
    m->has_body = 0;
    m->chunked = 0;
    m->content_length = 0;
    m->body_len = 0;
    if (m->body)
        m->body[0] = '\0';
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct rp_http_msg *m = &hp_of(p)->msg;
    if (m->url_len < sizeof m->url - 1) {
        size_t room = sizeof m->url - 1 - m->url_len;
        size_t n = len < room ? len : room;
        memcpy(m->url + m->url_len, at, n);
        m->url[m->url_len + n] = '\0';
    }
    m->url_len += len;
    return 0;
}

/* Trim the spaces and tabs around S[0, *LEN) in place; returns the start. */
static const char *trim_ows(const char *s, size_t *len)
{
    while (*len && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        (*len)--;
    }
    while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    return s;
}

/* A header (name and value both complete) of the request head: note the
 * ones the front cares about. Trailers are ignored. */
static void header_done(struct rp_http_parser *hp)
{
    if (hp->headers_done || hp->field_len == 0)
        return;
    size_t flen = hp->field_len;
    if (flen >= sizeof hp->field)
        return; /* longer than any name of interest */
    if (flen == 14 && strncasecmp(hp->field, "content-length", 14) == 0) {
        hp->seen_content_length = 1;
    } else if (flen == 17 && strncasecmp(hp->field, "transfer-encoding", 17) == 0) {
        hp->seen_transfer_encoding = 1;
    } else if (flen == 6 && strncasecmp(hp->field, "expect", 6) == 0) {
        size_t vlen = hp->value_len < sizeof hp->value ? hp->value_len : sizeof hp->value;
        const char *v = trim_ows(hp->value, &vlen);
        if (hp->value_len <= sizeof hp->value && vlen == 12 &&
            strncasecmp(v, "100-continue", 12) == 0)
            hp->msg.expect_continue = 1;
        else
            hp->seen_expect_other = 1;
    }
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct rp_http_parser *hp = hp_of(p);
    /* "Name : value" must be refused (RFC 9112 section 5.1): a proxy in
     * front might frame the message differently */
    if (!hp->headers_done && (memchr(at, ' ', len) || memchr(at, '\t', len)))
        return hp_fail(hp, 400, "whitespace in a header name");
    if (hp->in_value) { /* a new header begins */
        header_done(hp);
        hp->field_len = hp->value_len = 0;
        hp->in_value = 0;
    }
    if (hp->field_len < sizeof hp->field) {
        size_t room = sizeof hp->field - hp->field_len;
        memcpy(hp->field + hp->field_len, at, len < room ? len : room);
    }
    hp->field_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct rp_http_parser *hp = hp_of(p);
    hp->in_value = 1;
    if (hp->value_len < sizeof hp->value) {
        size_t room = sizeof hp->value - hp->value_len;
        memcpy(hp->value + hp->value_len, at, len < room ? len : room);
    }
    hp->value_len += len;
    return 0;
}

/* The head is complete: reject what must not be read on (smuggling, a body
 * that will never fit), record the request's shape and pause so the caller
 * can act before the body comes (100 Continue). */
static int on_headers_complete(http_parser *p)
{
    struct rp_http_parser *hp = hp_of(p);
    struct rp_http_msg *m = &hp->msg;
    if (hp->in_value)
        header_done(hp);
    hp->in_value = 0;
    hp->field_len = hp->value_len = 0;
    hp->headers_done = 1;
    m->method = p->method;
    m->http_major = p->http_major;
    m->http_minor = p->http_minor;
    if (hp->seen_content_length && hp->seen_transfer_encoding)
        return hp_fail(hp, 400, "both Content-Length and Transfer-Encoding");
    if (m->http_major != 1)
        return hp_fail(hp, 400, "unsupported HTTP version");
    /* RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has
     * faulty framing (a 1.0 hop in front would not read it as chunked) */
    if (hp->seen_transfer_encoding && m->http_minor == 0)
        return hp_fail(hp, 400, "Transfer-Encoding in an HTTP/1.0 request");
    m->chunked = (p->flags & F_CHUNKED) != 0;
    if (hp->seen_transfer_encoding && !m->chunked)
        return hp_fail(hp, 400, "Transfer-Encoding of a request must end in chunked");
    if (p->flags & F_CONTENTLENGTH)
        m->content_length = p->content_length;
    m->has_body = m->chunked || m->content_length > 0;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > hp->max_body_bytes)
        return hp_fail(hp, 413, "request body too large");
    if (m->http_minor == 0)
        m->expect_continue = 0; /* an HTTP/1.0 client does not wait for it */
    if (hp->seen_expect_other)
        return hp_fail(hp, 417, "unsupported expectation");
    m->keep_alive = http_should_keep_alive(p);
    hp->paused_event = RP_HTTP_HEADERS;
    http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct rp_http_parser *hp = hp_of(p);
    struct rp_http_msg *m = &hp->msg;
    if (len > hp->max_body_bytes - m->body_len)
        return hp_fail(hp, 413, "request body too large");
    if (m->body_len + len + 1 > m->body_cap) {
        size_t cap = m->body_cap ? m->body_cap : 4096;
        while (cap < m->body_len + len + 1)
            cap *= 2;
        char *b = realloc(m->body, cap);
        if (!b)
            return hp_fail(hp, 413, "out of memory");
        m->body = b;
        m->body_cap = cap;
    }
    memcpy(m->body + m->body_len, at, len);
    m->body_len += len;
    m->body[m->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct rp_http_parser *hp = hp_of(p);
    hp->in_message = 0;
    hp->msg.keep_alive = http_should_keep_alive(p);
    hp->paused_event = RP_HTTP_MESSAGE;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings hp_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---------------------------------------------------------------------
 * strict framing (RFC 9112), next to libhttp-parser
 * ------------------------------------------------------------------- */

/* hp->strict_state */
enum {
    STRICT_HEAD = 0,   /* request line and header lines */
    STRICT_BODY,       /* Content-Length bytes */
    STRICT_CHUNK_SIZE, /* hex digits */
    STRICT_CHUNK_EXT,  /* after the size: extensions up to the CRLF */
    STRICT_CHUNK_DATA, /* chunk bytes */
    STRICT_CHUNK_END,  /* the CRLF after a chunk's data */
    STRICT_TRAILER,    /* trailer lines after the last chunk */
};

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* What follows a head (or trailer section) that just ended. */
static void strict_head_done(struct rp_http_parser *hp, int trailer)
{
    hp->strict_lines = 0;
    hp->strict_left = 0;
    hp->strict_body = 0;
    if (!trailer && hp->msg.chunked) {
        hp->strict_state = STRICT_CHUNK_SIZE;
        hp->strict_digits = 0;
    } else if (!trailer && hp->msg.content_length > 0) {
        hp->strict_state = STRICT_BODY;
        hp->strict_left = hp->msg.content_length;
    } else {
        hp->strict_state = STRICT_HEAD;
    }
}

/* One byte of a line-based part (head or trailers). Returns 0, or -1 after
 * setting the 400 it deserves. */
static int strict_line_byte(struct rp_http_parser *hp, char ch)
{
    int trailer = hp->strict_state == STRICT_TRAILER;
    if (hp->strict_cr) {
        hp->strict_cr = 0;
        if (ch != '\n')
            return hp_fail(hp, 400, "CR without LF in the request head");
        if (hp->strict_line == 0) {
            if (hp->strict_lines > 0 || trailer)
                strict_head_done(hp, trailer); /* the empty line */
            /* else an empty line before the request line: ignored */
            return 0;
        }
        hp->strict_lines++;
        hp->strict_line = 0;
        return 0;
    }
    if (ch == '\r') {
        hp->strict_cr = 1;
        return 0;
    }
    if (ch == '\n')
        return hp_fail(hp, 400, "bare LF line ending in the request head");
    if (hp->strict_line == 0 && (ch == ' ' || ch == '\t') && (hp->strict_lines > 0 || trailer))
        return hp_fail(hp, 400, "obs-fold (a header line continued on the next)");
    hp->strict_line++;
    return 0;
}

/* Check DATA[0, LEN), bytes libhttp-parser has just consumed, against the
 * framing RFC 9112 requires: CRLF line endings, no obs-fold, chunk sizes of
 * at most RP_HTTP_CHUNK_DIGITS_MAX digits, bounded chunk extensions.
 * Where a message's body begins is known from msg by then (libhttp-parser
 * stops before the LF that ends a head). Returns 0, or -1 with the error
 * set. */
static int strict_check(struct rp_http_parser *hp, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        switch (hp->strict_state) {
        case STRICT_HEAD:
        case STRICT_TRAILER:
            if (strict_line_byte(hp, ch) != 0)
                return -1;
            break;
        case STRICT_BODY:
        case STRICT_CHUNK_DATA: {
            size_t n = len - i;
            if (n > hp->strict_left)
                n = (size_t)hp->strict_left;
            /* the body limit is judged here too, at the same byte however
             * the stream was split (libhttp-parser hands chunk data over
             * late, so a framing error after it would win or lose) */
            if (n > hp->max_body_bytes - hp->strict_body)
                return hp_fail(hp, 413, "request body too large");
            hp->strict_body += n;
            hp->strict_left -= n;
            i += n - 1;
            if (hp->strict_left == 0) {
                if (hp->strict_state == STRICT_BODY) {
                    hp->strict_state = STRICT_HEAD;
                } else {
                    hp->strict_state = STRICT_CHUNK_END;
                    hp->strict_cr = 0;
                }
            }
            break;
        }
        case STRICT_CHUNK_SIZE: {
            int v = hex_value(ch);
            if (v >= 0) {
                if (++hp->strict_digits > RP_HTTP_CHUNK_DIGITS_MAX)
                    return hp_fail(hp, 400, "chunk size too long");
                hp->strict_left = hp->strict_left * 16 + (uint64_t)v;
                break;
            }
            /* chunk-size [ BWS ";" chunk-ext ] CRLF: at least one digit,
             * then only these (libhttp-parser reads some other bytes as
             * digits, 0x87 as 0: the two would see different chunks) */
            if (hp->strict_digits == 0 || (ch != ';' && ch != ' ' && ch != '\t' && ch != '\r'))
                return hp_fail(hp, 400, "invalid chunk size");
            hp->strict_state = STRICT_CHUNK_EXT;
            hp->strict_line = 0;
            hp->strict_cr = 0;
        }
            /* fall through */
        case STRICT_CHUNK_EXT:
            if (hp->strict_cr) {
                hp->strict_cr = 0;
                if (ch != '\n')
                    return hp_fail(hp, 400, "CR without LF after a chunk size");
                if (hp->strict_left == 0) {
                    hp->strict_state = STRICT_TRAILER;
                    hp->strict_line = 0;
                    hp->strict_lines = 0;
                } else {
                    hp->strict_state = STRICT_CHUNK_DATA;
                }
            } else if (ch == '\r') {
                hp->strict_cr = 1;
            } else if (ch == '\n') {
                return hp_fail(hp, 400, "bare LF after a chunk size");
            } else if (++hp->strict_line > RP_HTTP_CHUNK_EXT_MAX) {
                return hp_fail(hp, 400, "chunk extensions too long");
            }
            break;
        case STRICT_CHUNK_END:
            if (!hp->strict_cr && ch == '\r') {
                hp->strict_cr = 1;
            } else if (hp->strict_cr && ch == '\n') {
                hp->strict_cr = 0;
                hp->strict_state = STRICT_CHUNK_SIZE;
                hp->strict_digits = 0;
                hp->strict_left = 0;
            } else {
                return hp_fail(hp, 400, "chunk data not followed by CRLF");
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * the parser
 * ------------------------------------------------------------------- */

void rp_http_parser_init(struct rp_http_parser *hp, size_t max_body_bytes)
{
    memset(hp, 0, sizeof *hp);
    /* library-wide: bounds the request line, headers, chunk lines and
     * trailers of every message (HPE_HEADER_OVERFLOW -> 431) */
    http_parser_set_max_header_size(RP_HTTP_MAX_HEADER_BYTES);
    http_parser_init(&hp->p, HTTP_REQUEST);
    hp->p.data = hp;
    hp->max_body_bytes = max_body_bytes;
}

void rp_http_parser_free(struct rp_http_parser *hp)
{
    free(hp->msg.body);
    hp->msg.body = NULL;
    hp->msg.body_len = hp->msg.body_cap = 0;
}

void rp_http_parser_trim(struct rp_http_parser *hp)
{
    if (hp->msg.body_cap > 65536)
        rp_http_parser_free(hp);
}

int rp_http_parser_idle(const struct rp_http_parser *hp)
{
    return !hp->in_message && !hp->error_status;
}

/* The answer to a parser error the callbacks did not explain. */
static void hp_map_errno(struct rp_http_parser *hp, enum http_errno e)
{
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        hp->error_status = 431;
        hp->error_reason = "request header fields too large";
        break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        hp->error_status = 400;
        hp->error_reason = "conflicting Content-Length";
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        hp->error_status = 400;
        hp->error_reason = "invalid Transfer-Encoding";
        break;
    default:
        hp->error_status = 400;
        hp->error_reason = http_errno_description(e);
        break;
    }
}

enum rp_http_event rp_http_parser_feed(struct rp_http_parser *hp, const char *data, size_t len,
                                       size_t *used)
{
    *used = 0;
    if (hp->error_status)
        return RP_HTTP_ERROR;
    if (len == 0) /* http_parser_execute() takes 0 bytes as end of stream */
        return RP_HTTP_NEED_MORE;
    if (hp->p.upgrade && !hp->in_message) {
        /* the last request asked for an upgrade (or was CONNECT); it was
         * answered as plain HTTP, so the next bytes are a new request */
        http_parser_init(&hp->p, HTTP_REQUEST);
        hp->p.data = hp;
        hp->strict_state = STRICT_HEAD;
        hp->strict_cr = 0;
        hp->strict_line = 0;
        hp->strict_lines = 0;
    }
    hp->paused_event = RP_HTTP_NEED_MORE;
    size_t n = http_parser_execute(&hp->p, &hp_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&hp->p);
    /* the bytes before where libhttp-parser stopped (or failed) come
     * first: their framing error is the one to answer, however the stream
     * was split */
    if (strict_check(hp, data, n) != 0) {
        *used = n;
        return RP_HTTP_ERROR;
    }
    /* libhttp-parser stops on the LF that ends a head: the CR before it
     * must have been seen (else that LF is bare) */
    if (e == HPE_PAUSED && hp->paused_event == RP_HTTP_HEADERS &&
        !(hp->strict_cr && hp->strict_line == 0)) {
        hp_fail(hp, 400, "bare LF line ending in the request head");
        *used = n;
        return RP_HTTP_ERROR;
    }
    if (e == HPE_PAUSED) {
        http_parser_pause(&hp->p, 0);
        *used = n;
        return (enum rp_http_event)hp->paused_event;
    }
    if (e != HPE_OK) {
        if (!hp->error_status)
            hp_map_errno(hp, e);
        *used = n;
        return RP_HTTP_ERROR;
    }
    *used = n;
    if (n < len && !hp->p.upgrade) { /* the parser stopped without saying why */
        hp->error_status = 400;
        hp->error_reason = "malformed request";
        return RP_HTTP_ERROR;
    }
    return RP_HTTP_NEED_MORE;
}

/* ---------------------------------------------------------------------
 * routing and responses
 * ------------------------------------------------------------------- */

/* The path of URL[0, LEN): origin form up to '?' or '#', or the path of an
 * absolute-form URL ("" when there is none). */
static const char *url_path(const char *url, size_t len, size_t *plen)
{
    const char *p = url, *end = url + len;
    if (len == 0 || url[0] != '/') {
        const char *scheme = memchr(url, ':', len);
        if (!scheme || end - scheme < 3 || scheme[1] != '/' || scheme[2] != '/') {
            *plen = 0;
            return url;
        }
        p = scheme + 3;
        while (p < end && *p != '/' && *p != '?' && *p != '#')
            p++;
        if (p == end || *p != '/') {
            *plen = 1; /* "http://host" or "http://host?q" means "/" */
            return "/";
        }
    }
    const char *q = p;
    while (q < end && *q != '?' && *q != '#')
        q++;
    *plen = (size_t)(q - p);
    return p;
}

enum rp_http_route rp_http_route(unsigned method, const char *url, size_t len, const char **allow)
{
    size_t plen;
    const char *path = url_path(url, len, &plen);
    int health = plen == 7 && memcmp(path, "/health", 7) == 0;
    int metrics = plen == 8 && memcmp(path, "/metrics", 8) == 0;
    *allow = (health || metrics) ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
    switch (method) {
    case HTTP_POST:
        if (health || metrics)
            return RP_HTTP_ROUTE_BAD_METHOD;
        return RP_HTTP_ROUTE_RPC;
    case HTTP_GET:
    case HTTP_HEAD:
        if (health)
            return RP_HTTP_ROUTE_HEALTH;
        if (metrics)
            return RP_HTTP_ROUTE_METRICS;
        if (plen == 1 && path[0] == '/')
            return RP_HTTP_ROUTE_BAD_METHOD;
        return RP_HTTP_ROUTE_NOT_FOUND;
    case HTTP_OPTIONS:
        return RP_HTTP_ROUTE_OPTIONS;
    default:
        return RP_HTTP_ROUTE_BAD_METHOD;
    }
}

size_t rp_http_format_head(char *out, size_t cap, int status, const char *content_type,
                           size_t content_length, const char *extra, unsigned flags)
{
    const char *reason = http_status_str((enum http_status)status);
    if (!reason || strcmp(reason, "<unknown>") == 0)
        reason = "Unknown";
    const char *conn = "";
    if (flags & RP_HTTP_F_CLOSE)
        conn = "Connection: close\r\n";
    else if (flags & RP_HTTP_F_KEEP_ALIVE)
        conn = "Connection: keep-alive\r\n";
    int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s%s\r\n", status,
                     reason, content_type ? "Content-Type: " : "", content_type ? content_type : "",
                     content_type ? "\r\n" : "", content_length, extra ? extra : "", conn);
    return n < 0 ? 0 : (size_t)n;
}

int rp_http_healthy_count(const struct rp_snapshot *s)
{
    int n = 0;
    for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++)
        if (s->eps[i].state == RP_EP_UP && s->eps[i].breaker != RP_BREAKER_OPEN)
            n++;
    return n;
}

int rp_http_health_body(const struct rp_snapshot *s, char *out, size_t cap, size_t *len)
{
    int healthy = rp_http_healthy_count(s);
    int n;
    if (healthy > 0)
        n = snprintf(out, cap, "{\"status\":\"ok\",\"healthy\":%d}", healthy);
    else
        n = snprintf(out, cap, "{\"status\":\"unavailable\",\"healthy\":0}");
    *len = n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
    return healthy > 0 ? 200 : 503;
}
