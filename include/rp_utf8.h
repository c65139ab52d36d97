/* rp_utf8.h - the one strict UTF-8 check every text writer shares (JSON
 * escaping, label values, buffers): well-formed sequences only (RFC 3629),
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
#ifndef RP_UTF8_H
#define RP_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence starting at S (at most N >= 1
 * bytes): 1 for ASCII, 2..4 for a multi-byte sequence, 0 when the bytes
 * there are not one. */
static inline size_t rp_utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

#endif
