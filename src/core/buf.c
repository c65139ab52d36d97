/* buf.c - the growable string buffer of rp_buf.h. */
#include "rp_buf.h"
#include "rp_utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rp_buf_init(struct rp_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

void rp_buf_free(struct rp_buf *b)
{
    free(b->data);
    rp_buf_init(b);
}

void rp_buf_reset(struct rp_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Make room for EXTRA more bytes plus the NUL, doubling the allocation.
 * Returns 0, or -1 (and marks B failed) when the size overflows or malloc
 * says no. */
static int buf_reserve(struct rp_buf *b, size_t extra)
{
    if (b->failed)
        return -1;
    if (extra > SIZE_MAX - 1 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int rp_buf_append(struct rp_buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int rp_buf_puts(struct rp_buf *b, const char *s)
{
    return rp_buf_append(b, s, strlen(s));
}

/* Format into the spare room; when it does not fit, grow to the exact size
 * vsnprintf reported and format again. */
int rp_buf_vappendf(struct rp_buf *b, const char *fmt, va_list ap)
{
    if (buf_reserve(b, 64) != 0)
        return -1;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->data[b->len] = '\0';
        b->failed = 1;
        return -1;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (buf_reserve(b, (size_t)n) != 0) {
            b->data[b->len] = '\0';
            return -1;
        }
        va_copy(ap2, ap);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
        va_end(ap2);
    }
    b->len += (size_t)n;
    return 0;
}

int rp_buf_appendf(struct rp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = rp_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int rp_buf_append_json_strn(struct rp_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (rp_buf_append(b, "\"", 1) != 0)
        return -1;
    size_t i = 0;
    while (i < n) {
        /* copy the longest run that needs no escaping in one go */
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i && rp_buf_append(b, s + i, run - i) != 0)
            return -1;
        i = run;
        if (i >= n)
            break;
        unsigned char c = p[i];
        int rc;
        if (c == '"') {
            rc = rp_buf_append(b, "\\\"", 2);
        } else if (c == '\\') {
            rc = rp_buf_append(b, "\\\\", 2);
        } else if (c == '\n') {
            rc = rp_buf_append(b, "\\n", 2);
        } else if (c == '\r') {
            rc = rp_buf_append(b, "\\r", 2);
        } else if (c == '\t') {
            rc = rp_buf_append(b, "\\t", 2);
        } else if (c < 0x20) {
            rc = rp_buf_appendf(b, "\\u%04x", c);
        } else {
            size_t len = rp_utf8_seq_len(p + i, n - i);
            if (len == 0) {
                rc = rp_buf_append(b, "\\ufffd", 6);
                len = 1;
            } else {
                rc = rp_buf_append(b, s + i, len);
            }
            i += len - 1;
        }
        if (rc != 0)
            return -1;
        i++;
    }
    return rp_buf_append(b, "\"", 1);
}

int rp_buf_append_json_str(struct rp_buf *b, const char *s)
{
    return rp_buf_append_json_strn(b, s, strlen(s));
}

const char *rp_buf_cstr(const struct rp_buf *b)
{
    return b->data && b->len ? b->data : "";
}

char *rp_buf_detach(struct rp_buf *b, size_t *len)
{
    if (b->failed) {
        rp_buf_free(b);
        if (len)
            *len = 0;
        return NULL;
    }
    char *p = b->data;
    size_t n = b->len;
    if (!p) {
        p = malloc(1);
        if (!p)
            return NULL;
        p[0] = '\0';
    }
    if (len)
        *len = n;
    rp_buf_init(b);
    return p;
}

int rp_buf_append_num(struct rp_buf *b, double v)
{
    char tmp[64];
    if (!isfinite(v))
        v = 0.0;
    int n = snprintf(tmp, sizeof tmp, "%.3f", v);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return rp_buf_puts(b, "0");
    char *dot = strchr(tmp, '.');
    if (dot) {
        char *end = tmp + n;
        while (end > dot + 1 && end[-1] == '0')
            end--;
        if (end == dot + 1)
            end = dot;
        *end = '\0';
    }
    return rp_buf_puts(b, strcmp(tmp, "-0") == 0 ? "0" : tmp);
}
