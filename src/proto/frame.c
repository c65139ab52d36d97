/* frame.c - the framing scanner: an incremental, non-recursive JSON syntax
 * validator that finds where each top-level value ends in a byte stream.
 *
 * The whole scanner is one byte loop over a small state machine. Containers
 * are tracked in a bit stack (1 = object, 0 = array), so nesting costs one
 * bit per level and never recursion. Every piece of progress (inside a
 * string, an escape, a UTF-8 sequence, a number, a literal) lives in struct
 * rp_frame, so the input may be split at any byte and the scan resumes from
 * s->pos once more bytes are appended to the same buffer.
 */
#include "rp_frame.h"

#include <string.h>

enum {
    ST_TOP = 0,   /* between top-level values */
    ST_VALUE,     /* a value must follow (after ':' or ',' in an array) */
    ST_ARR_FIRST, /* after '[': a value or ']' */
    ST_OBJ_FIRST, /* after '{': a key or '}' */
    ST_OBJ_KEY,   /* after ',' in an object: a key */
    ST_COLON,     /* after a key */
    ST_AFTER,     /* after a value in a container: ',' or the closer */
    ST_STRING,    /* inside a string */
    ST_STR_ESC,   /* after a backslash */
    ST_STR_HEX,   /* inside \uXXXX; sub = hex digits seen */
    ST_STR_UTF8,  /* inside a multibyte UTF-8 sequence */
    ST_NUMBER,    /* sub = one of N_* */
    ST_LITERAL,   /* lit_kind, lit_idx */
    ST_TOP_END,   /* a top-level literal is complete; the next byte must delimit it */
    ST_ERROR,
    ST_TOO_DEEP,
};

enum {
    N_MINUS,    /* "-": a digit must follow */
    N_ZERO,     /* "0" or "-0": complete; '.', 'e' may follow, no digit */
    N_INT,      /* integer digits: complete */
    N_DOT,      /* after '.': a digit must follow */
    N_FRAC,     /* fraction digits: complete */
    N_EXP,      /* after 'e': a sign or a digit must follow */
    N_EXP_SIGN, /* after the exponent's sign: a digit must follow */
    N_EXP_DIG,  /* exponent digits: complete */
};

static const char *const frame_literals[3] = {"true", "false", "null"};

/* String bytes that need no attention: 0x20..0x7f except '"' and '\\'. */
static const uint8_t frame_str_plain[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static inline int frame_is_ws(unsigned c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Bytes that end a top-level number or literal: whitespace, or the first
 * byte of a value that cannot continue a scalar. */
static inline int frame_is_top_delim(unsigned c)
{
    return frame_is_ws(c) || c == '{' || c == '[' || c == '"';
}

static inline int frame_is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

void rp_frame_init(struct rp_frame *s)
{
    memset(s, 0, sizeof(*s));
    s->state = ST_TOP;
}

/* The incremental scan (see rp_frame.h). Hot state is kept in locals and
 * written back on every exit. Returns RP_FRAME_VALUE with buf[*start, *end)
 * when a top-level value completes, RP_FRAME_NEED_MORE when the buffer ends
 * first, or a sticky RP_FRAME_ERROR / RP_FRAME_TOO_DEEP. */
enum rp_frame_result rp_frame_scan(struct rp_frame *s, const char *buf, size_t len, size_t *start,
                                   size_t *end)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = s->pos;
    unsigned st = s->state;
    uint32_t depth = s->depth;
    unsigned sub = s->sub;
    enum rp_frame_result res = RP_FRAME_NEED_MORE;
    size_t value_end = 0;
    unsigned c;

    if (st == ST_ERROR)
        return RP_FRAME_ERROR;
    if (st == ST_TOO_DEEP)
        return RP_FRAME_TOO_DEEP;

    while (i < len) {
        c = b[i];
        switch (st) {
        case ST_TOP:
            if (frame_is_ws(c)) {
                i++;
                continue;
            }
            s->start = i;
            s->in_value = 1;
            goto value_start;

        case ST_ARR_FIRST:
            if (c == ']')
                goto close_container;
            /* fall through */
        case ST_VALUE:
            if (frame_is_ws(c)) {
                i++;
                continue;
            }
            goto value_start;

        case ST_OBJ_FIRST:
            if (c == '}')
                goto close_container;
            /* fall through */
        case ST_OBJ_KEY:
            if (frame_is_ws(c)) {
                i++;
                continue;
            }
            if (c != '"')
                goto fail;
            s->str_key = 1;
            st = ST_STRING;
            i++;
            continue;

        case ST_COLON:
            if (frame_is_ws(c)) {
                i++;
                continue;
            }
            if (c != ':')
                goto fail;
            st = ST_VALUE;
            i++;
            continue;

        case ST_AFTER: {
            if (frame_is_ws(c)) {
                i++;
                continue;
            }
            /* depth >= 1 here: the innermost container's kind */
            unsigned in_obj = (s->stack[(depth - 1) >> 3] >> ((depth - 1) & 7)) & 1;
            if (c == ',') {
                st = in_obj ? ST_OBJ_KEY : ST_VALUE;
                i++;
                continue;
            }
            if ((c == '}' && in_obj) || (c == ']' && !in_obj))
                goto close_container;
            goto fail;
        }

        case ST_STRING:
            while (i < len && frame_str_plain[b[i]])
                i++;
            if (i == len)
                goto out;
            c = b[i++];
            if (c == '"')
                goto string_done;
            if (c == '\\') {
                st = ST_STR_ESC;
                continue;
            }
            /* strict UTF-8: the lead byte fixes the length and the allowed
             * range of the first continuation byte (no overlongs, no
             * surrogates, nothing above U+10FFFF) */
            if (c < 0xc2 || c > 0xf4) { /* control byte, stray continuation, C0/C1, F5+ */
                i--;
                goto fail;
            }
            if (c < 0xe0) {
                s->utf8_need = 1;
                s->utf8_lo = 0x80;
                s->utf8_hi = 0xbf;
            } else if (c < 0xf0) {
                s->utf8_need = 2;
                s->utf8_lo = c == 0xe0 ? 0xa0 : 0x80;
                s->utf8_hi = c == 0xed ? 0x9f : 0xbf;
            } else {
                s->utf8_need = 3;
                s->utf8_lo = c == 0xf0 ? 0x90 : 0x80;
                s->utf8_hi = c == 0xf4 ? 0x8f : 0xbf;
            }
            st = ST_STR_UTF8;
            continue;

        case ST_STR_UTF8:
            if (c < s->utf8_lo || c > s->utf8_hi)
                goto fail;
            i++;
            s->utf8_lo = 0x80;
            s->utf8_hi = 0xbf;
            if (--s->utf8_need == 0)
                st = ST_STRING;
            continue;

        case ST_STR_ESC:
            switch (c) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                st = ST_STRING;
                break;
            case 'u':
                st = ST_STR_HEX;
                sub = 0;
                break;
            default:
                goto fail;
            }
            i++;
            continue;

        case ST_STR_HEX:
            if (!frame_is_hex(c))
                goto fail;
            i++;
            if (++sub == 4)
                st = ST_STRING;
            continue;

        case ST_NUMBER:
            switch (sub) {
            case N_MINUS:
                if (c == '0')
                    sub = N_ZERO;
                else if (c >= '1' && c <= '9')
                    sub = N_INT;
                else
                    goto fail;
                i++;
                continue;
            case N_INT:
            case N_FRAC:
            case N_EXP_DIG:
                while (i < len && b[i] >= '0' && b[i] <= '9')
                    i++;
                if (i == len)
                    goto out;
                c = b[i];
                if (sub == N_EXP_DIG)
                    goto number_end;
                /* fall through */
            case N_ZERO:
                if (c == '.' && sub != N_FRAC)
                    sub = N_DOT;
                else if (c == 'e' || c == 'E')
                    sub = N_EXP;
                else
                    goto number_end;
                i++;
                continue;
            case N_DOT:
                if (c < '0' || c > '9')
                    goto fail;
                sub = N_FRAC;
                i++;
                continue;
            case N_EXP:
                if (c == '+' || c == '-')
                    sub = N_EXP_SIGN;
                else if (c >= '0' && c <= '9')
                    sub = N_EXP_DIG;
                else
                    goto fail;
                i++;
                continue;
            case N_EXP_SIGN:
                if (c < '0' || c > '9')
                    goto fail;
                sub = N_EXP_DIG;
                i++;
                continue;
            default:
                goto fail;
            }

        case ST_LITERAL:
            if (c != (unsigned char)frame_literals[s->lit_kind][s->lit_idx])
                goto fail;
            i++;
            if (frame_literals[s->lit_kind][++s->lit_idx] == '\0')
                st = depth ? ST_AFTER : ST_TOP_END;
            continue;

        case ST_TOP_END:
            if (!frame_is_top_delim(c))
                goto fail;
            value_end = i;
            goto emit;

        default:
            goto fail;
        }

    value_start:
        /* c = b[i] begins a value */
        switch (c) {
        case '{':
        case '[':
            if (depth >= RP_FRAME_MAX_DEPTH) {
                s->err_offset = i;
                st = ST_TOO_DEEP;
                res = RP_FRAME_TOO_DEEP;
                goto out;
            }
            if (c == '{') {
                s->stack[depth >> 3] |= (uint8_t)(1u << (depth & 7));
                st = ST_OBJ_FIRST;
            } else {
                s->stack[depth >> 3] &= (uint8_t) ~(1u << (depth & 7));
                st = ST_ARR_FIRST;
            }
            depth++;
            i++;
            continue;
        case '"':
            s->str_key = 0;
            st = ST_STRING;
            i++;
            continue;
        case '-':
            sub = N_MINUS;
            st = ST_NUMBER;
            i++;
            continue;
        case '0':
            sub = N_ZERO;
            st = ST_NUMBER;
            i++;
            continue;
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
            sub = N_INT;
            st = ST_NUMBER;
            i++;
            continue;
        case 't':
        case 'f':
        case 'n':
            s->lit_kind = c == 't' ? 0 : c == 'f' ? 1 : 2;
            s->lit_idx = 1;
            st = ST_LITERAL;
            i++;
            continue;
        default:
            goto fail;
        }

    close_container:
        /* c = b[i] is the closer matching the innermost container */
        depth--;
        i++;
        if (depth == 0) {
            value_end = i;
            goto emit;
        }
        st = ST_AFTER;
        continue;

    string_done:
        /* the closing quote was consumed */
        if (s->str_key)
            st = ST_COLON;
        else if (depth == 0) {
            value_end = i;
            goto emit;
        } else
            st = ST_AFTER;
        continue;

    number_end:
        /* c = b[i] cannot continue the number and is not consumed */
        if (sub == N_MINUS || sub == N_DOT || sub == N_EXP || sub == N_EXP_SIGN)
            goto fail;
        if (depth == 0) {
            if (!frame_is_top_delim(c))
                goto fail;
            value_end = i;
            goto emit;
        }
        st = ST_AFTER;
        continue;
    }
    goto out;

emit:
    *start = s->start;
    *end = value_end;
    i = value_end;
    st = ST_TOP;
    s->in_value = 0;
    res = RP_FRAME_VALUE;
    goto out;

fail:
    s->err_offset = i;
    st = ST_ERROR;
    res = RP_FRAME_ERROR;

out:
    s->pos = i;
    if (!s->in_value)
        s->start = i; /* no value open: nothing before pos is needed */
    s->state = (uint8_t)st;
    s->depth = depth;
    s->sub = (uint8_t)sub;
    return res;
}

/* The caller dropped the first N bytes of its buffer: move every offset
 * back by N. Any N <= s->start is safe: s->start is the start of the value
 * being scanned or, when none is open, s->pos (whitespace already skipped
 * may be dropped too). */
void rp_frame_shift(struct rp_frame *s, size_t n)
{
    if (n > s->pos)
        n = s->pos;
    s->pos -= n;
    if (s->in_value && s->start >= n)
        s->start -= n;
    else
        s->start = s->pos;
    s->err_offset = s->err_offset >= n ? s->err_offset - n : 0;
}

/* Check that BUF[0, LEN) holds exactly one JSON value with optional
 * whitespace around it. A scalar may end at the end of the buffer here.
 * Returns 0 or -1. */
int rp_frame_validate(const char *buf, size_t len)
{
    struct rp_frame s;
    size_t start, end;

    rp_frame_init(&s);
    enum rp_frame_result r = rp_frame_scan(&s, buf, len, &start, &end);
    if (r == RP_FRAME_NEED_MORE) {
        /* only a top-level number or literal may stop at the buffer end */
        if (!s.in_value || s.depth != 0)
            return -1;
        if (s.state == ST_TOP_END)
            return 0;
        if (s.state == ST_NUMBER &&
            (s.sub == N_ZERO || s.sub == N_INT || s.sub == N_FRAC || s.sub == N_EXP_DIG))
            return 0;
        return -1;
    }
    if (r != RP_FRAME_VALUE)
        return -1;
    for (size_t i = end; i < len; i++)
        if (!frame_is_ws((unsigned char)buf[i]))
            return -1;
    return 0;
}
