/* rp_frame.h - the framing scanner: where each top-level JSON value ends in
 * a client's byte stream (docs/interface.md section 3, IPC framing).
 *
 * Values come one after another, with or without whitespace between them.
 * The scanner is incremental (bytes may arrive split at any boundary) and
 * validates JSON syntax as it goes: objects, arrays, strings with escapes and
 * strict UTF-8, numbers, true/false/null. A top-level scalar (e.g. `42`) is a
 * value too: the caller answers it -32600. A top-level number or literal
 * ends at the first byte that cannot continue it (whitespace, '{', '[', ...);
 * at the end of the buffer it needs more bytes.
 *
 * Usage: the caller keeps unconsumed input in one buffer BUF of LEN bytes and
 * calls rp_frame_scan(s, buf, len, &start, &end) until it returns
 * RP_FRAME_NEED_MORE. Each RP_FRAME_VALUE gives buf[start, end). Before
 * dropping a prefix of the buffer (memmove), the caller calls
 * rp_frame_shift(s, n) with the number of bytes dropped (n <= the end of the
 * last value returned).
 */
#ifndef RP_FRAME_H
#define RP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RP_FRAME_MAX_DEPTH 512 /* deeper nesting is RP_FRAME_TOO_DEEP */

enum rp_frame_result {
    RP_FRAME_NEED_MORE = 0, /* no complete value yet */
    RP_FRAME_VALUE = 1,     /* buf[*start, *end) is one complete value */
    RP_FRAME_ERROR = -1,    /* not JSON (parse error at rp_frame.err_offset) */
    RP_FRAME_TOO_DEEP = -2, /* nesting beyond RP_FRAME_MAX_DEPTH */
};

struct rp_frame {
    size_t pos;               /* next byte of the buffer to scan */
    size_t start;             /* start of the value being scanned */
    size_t err_offset;        /* where the error was found */
    uint32_t depth;           /* containers open */
    uint8_t state;            /* internal state machine */
    uint8_t sub;              /* internal: escape / unicode / number / literal progress */
    uint8_t utf8_need;        /* internal: continuation bytes still expected */
    uint8_t utf8_lo, utf8_hi; /* internal: allowed range of the next continuation byte */
    uint8_t in_value;         /* 1 once the current value has started */
    uint8_t lit_idx;          /* internal: position in true/false/null */
    uint8_t lit_kind;
    uint8_t str_key;                       /* internal: the open string is an object key */
    uint8_t stack[RP_FRAME_MAX_DEPTH / 8]; /* bit per level: 1 = object, 0 = array */
};

void rp_frame_init(struct rp_frame *s);

/* Scan forward from s->pos; see the usage above. After RP_FRAME_VALUE the
 * scanner is ready for the next value. After an error the stream is
 * unusable (the caller answers -32700 and closes). */
enum rp_frame_result rp_frame_scan(struct rp_frame *s, const char *buf, size_t len, size_t *start,
                                   size_t *end);

/* The caller dropped the first N bytes of its buffer. */
void rp_frame_shift(struct rp_frame *s, size_t n);

/* Validate that buf[0, len) is exactly one JSON value (whitespace around it
 * allowed). Returns 0 when it is, -1 otherwise. For upstream bodies. */
int rp_frame_validate(const char *buf, size_t len);

#endif
