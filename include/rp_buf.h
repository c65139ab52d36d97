/* rp_buf.h - a small growable string buffer for rendering text (status JSON,
 * tables, control-socket replies).
 *
 * The buffer is always NUL-terminated once anything was appended, so
 * rp_buf_cstr() can be handed to printf or write(). An allocation failure is
 * sticky: the append that failed and every later one return -1 and leave
 * the contents as they were, so a renderer can append freely and check
 * rp_buf_failed() (or any return value) once at the end.
 */
#ifndef RP_BUF_H
#define RP_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct rp_buf {
    char *data; /* heap, NUL-terminated when len > 0; NULL before the first append */
    size_t len; /* bytes in use, NUL excluded */
    size_t cap; /* bytes allocated */
    int failed; /* 1 after an allocation failure (sticky) */
};

/* clang-format off */
#define RP_BUF_INIT {NULL, 0, 0, 0}
/* clang-format on */

void rp_buf_init(struct rp_buf *b);

/* Free the storage and return B to the empty state. */
void rp_buf_free(struct rp_buf *b);

/* Forget the contents, keep the storage (and clear the failure flag). */
void rp_buf_reset(struct rp_buf *b);

/* Append N bytes of S. Returns 0, or -1 on allocation failure. */
int rp_buf_append(struct rp_buf *b, const char *s, size_t n);

/* Append the NUL-terminated string S. */
int rp_buf_puts(struct rp_buf *b, const char *s);

/* Append printf-formatted text. */
int rp_buf_appendf(struct rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int rp_buf_vappendf(struct rp_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Append S as a quoted JSON string: '"', '\\' and control characters are
 * escaped, valid UTF-8 passes through, and every byte that is not part of a
 * valid UTF-8 sequence becomes U+FFFD, so the output is always valid JSON. */
int rp_buf_append_json_str(struct rp_buf *b, const char *s);

/* Same for the first N bytes of S (which may contain NULs: escaped). */
int rp_buf_append_json_strn(struct rp_buf *b, const char *s, size_t n);

/* Append a finite double as a JSON number with at most 3 decimals and no
 * trailing zeros ("9.5", "10", "0.071"); NaN and infinities become 0 (JSON
 * has neither). */
int rp_buf_append_num(struct rp_buf *b, double v);

/* The contents as a C string ("" when empty). Valid until the next append. */
const char *rp_buf_cstr(const struct rp_buf *b);

static inline int rp_buf_failed(const struct rp_buf *b)
{
    return b->failed;
}

/* Hand the heap string to the caller (who frees it) and leave B empty.
 * Returns NULL when the buffer failed; an empty buffer gives a malloc'd "". */
char *rp_buf_detach(struct rp_buf *b, size_t *len);

#endif
