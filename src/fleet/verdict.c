/* verdict.c - fleet verdict messages and the news filter (rp_fleet_verdict.h). */
#include "rp_fleet_verdict.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rp_breaker.h"
#include "rp_siphash.h"

/* The SipHash key of a fleet: two SipHash values of the prefix under fixed
 * keys (the prefix is what all hosts of a fleet share). */
uint64_t rp_fleet_ep_key(const char *prefix, const char *url)
{
    static const uint8_t k0[16] = "rpcpool-fleet-k0";
    static const uint8_t k1[16] = "rpcpool-fleet-k1";
    uint64_t a = rp_siphash24(k0, prefix, strlen(prefix));
    uint64_t b = rp_siphash24(k1, prefix, strlen(prefix));
    uint8_t key[16];
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
    return rp_siphash24(key, url, strlen(url));
}

size_t rp_verdict_format(char *out, size_t outlen, const struct rp_verdict *v)
{
    int n = snprintf(out, outlen, "v1 %c %016" PRIx64 " %" PRIu64 " %016" PRIx64, v->kind,
                     v->ep_key, v->until_wall_ms, v->sender);
    if (n < 0)
        return 0;
    return (size_t)n < outlen ? (size_t)n : outlen - 1;
}

/* Parse exactly 16 lower- or upper-case hex digits at *P into OUT. */
static int parse_hex16(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        if (*p >= end)
            return -1;
        char c = *(*p)++;
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

/* Parse 1 to 19 decimal digits at *P into OUT. */
static int parse_dec(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    while (*p < end && **p >= '0' && **p <= '9' && n < 19) {
        v = v * 10 + (uint64_t)(**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (*p < end && **p >= '0' && **p <= '9'))
        return -1;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return -1;
    (*p)++;
    return 0;
}

int rp_verdict_parse(const char *s, size_t len, struct rp_verdict *v)
{
    const char *p = s, *end = s + len;
    if (len < 3 || memcmp(s, "v1 ", 3) != 0)
        return -1;
    p += 3;
    if (p >= end || (*p != 'b' && *p != 'h'))
        return -1;
    v->kind = *p++;
    if (expect(&p, end, ' ') || parse_hex16(&p, end, &v->ep_key) || expect(&p, end, ' ') ||
        parse_dec(&p, end, &v->until_wall_ms) || expect(&p, end, ' ') ||
        parse_hex16(&p, end, &v->sender) || p != end)
        return -1;
    return 0;
}

uint64_t rp_verdict_to_seg_ms(uint64_t until_wall_ms, uint64_t now_wall_ms, uint64_t now_seg_ms)
{
    if (until_wall_ms <= now_wall_ms)
        return 0;
    uint64_t ahead = until_wall_ms - now_wall_ms;
    return now_seg_ms > UINT64_MAX - ahead ? UINT64_MAX : now_seg_ms + ahead;
}

uint64_t rp_verdict_to_wall_ms(uint64_t until_seg_ms, uint64_t now_seg_ms, uint64_t now_wall_ms)
{
    uint64_t ahead = until_seg_ms > now_seg_ms ? until_seg_ms - now_seg_ms : 0;
    return now_wall_ms + ahead;
}

int rp_verdict_breaker_news(struct rp_verdict_watch *w, uint64_t word, uint64_t now_seg_ms)
{
    uint32_t period = rp_breaker_word_period(word);
    int open = rp_breaker_word_state(word) == RP_BREAKER_OPEN &&
               rp_breaker_word_open_until_ms(word) > now_seg_ms;
    int first = !w->known;
    int news = open && (first || period != w->period);
    w->known = 1;
    w->period = period;
    return news;
}

int rp_verdict_hold_news(struct rp_verdict_watch *w, uint64_t hold, uint64_t now_seg_ms)
{
    if (hold <= w->hold_until)
        return 0;
    w->hold_until = hold;
    return hold > now_seg_ms;
}

void rp_verdict_applied(struct rp_verdict_watch *w, uint64_t word, uint64_t hold)
{
    w->known = 1;
    w->period = rp_breaker_word_period(word);
    if (hold > w->hold_until)
        w->hold_until = hold;
}
