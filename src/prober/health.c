/* health.c - the prober's pure decisions (see rp_health.h): hysteresis,
 * chain quarantine, best head and lag, the published state, and the reading
 * of one JSON-RPC probe answer. Time comes in as arguments; nothing here
 * touches shm, clocks or sockets.
 */
#include "rp_health.h"

#include <string.h>

#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include "rp_jsonrpc.h"

#define HEALTH_REPLY_TOKENS 1024 /* answers with more tokens are read as invalid */

void rp_health_init(struct rp_health *h, enum rp_ep_state row_state, uint32_t successes,
                    uint32_t failures)
{
    memset(h, 0, sizeof *h);
    h->up = row_state != RP_EP_DOWN;
    h->quarantined = row_state == RP_EP_QUARANTINED;
    h->lagging = row_state == RP_EP_LAGGING;
    h->successes = successes;
    h->failures = failures;
    h->chain_pending = 1;
}

/* Count the result; the verdict flips only at the rise / fall thresholds. A
 * success always clears the failure run and vice versa, so "consecutive" is
 * exact. */
enum rp_health_change rp_health_record(struct rp_health *h, int ok, uint64_t now_ms)
{
    h->last_probe_ms = now_ms;
    if (ok) {
        h->last_ok_ms = now_ms;
        h->failures = 0;
        if (h->successes < UINT32_MAX)
            h->successes++;
        if (!h->up && h->successes >= RP_HEALTH_RISE) {
            h->up = 1;
            h->chain_pending = 1;
            h->chain_gate = 1;
            return RP_HEALTH_CAME_UP;
        }
        return RP_HEALTH_SAME;
    }
    h->successes = 0;
    if (h->failures < UINT32_MAX)
        h->failures++;
    if (h->up && h->failures >= RP_HEALTH_FALL) {
        h->up = 0;
        h->chain_gate = 0;
        return RP_HEALTH_WENT_DOWN;
    }
    return RP_HEALTH_SAME;
}

int64_t rp_health_expected_chain(int64_t cfg_chain_id, int64_t first_seen)
{
    return cfg_chain_id != 0 ? cfg_chain_id : first_seen;
}

/* An unknown chain (0) or nothing expected yet is never a mismatch. */
int rp_health_chain_result(struct rp_health *h, int64_t chain_id, int64_t expected)
{
    int was = h->quarantined;
    h->chain_id = chain_id;
    h->chain_pending = 0;
    h->chain_gate = 0;
    h->quarantined = chain_id != 0 && expected != 0 && chain_id != expected;
    if (h->quarantined && !was)
        return 1;
    if (!h->quarantined && was)
        return -1;
    return 0;
}

void rp_health_set_head(struct rp_health *h, uint64_t head_block)
{
    h->head_block = head_block;
    h->head_known = 1;
}

void rp_health_clear_head(struct rp_health *h)
{
    h->head_known = 0;
    h->lagging = 0;
}

uint64_t rp_health_best_head(const struct rp_health *hs, size_t n)
{
    uint64_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (hs[i].up && !hs[i].chain_gate && !hs[i].quarantined && hs[i].head_known &&
            hs[i].head_block > best)
            best = hs[i].head_block;
    return best;
}

int rp_health_is_lagging(const struct rp_health *h, uint64_t best, uint64_t max_lag)
{
    return h->head_known && best > h->head_block && best - h->head_block > max_lag;
}

uint64_t rp_health_update_lag(struct rp_health *hs, size_t n, uint64_t max_lag)
{
    uint64_t best = rp_health_best_head(hs, n);
    for (size_t i = 0; i < n; i++)
        hs[i].lagging = (uint8_t)rp_health_is_lagging(&hs[i], best, max_lag);
    return best;
}

enum rp_ep_state rp_health_state(const struct rp_health *h)
{
    if (h->quarantined)
        return RP_EP_QUARANTINED;
    if (!h->up || h->chain_gate)
        return RP_EP_DOWN;
    if (h->lagging)
        return RP_EP_LAGGING;
    return RP_EP_UP;
}

int rp_health_parse_quantity(const char *s, size_t len, uint64_t *out)
{
    return rp_jsonrpc_parse_quantity(s, len, out);
}

/* 1 when token T of BUF is the string LIT. */
static int tok_is(const char *buf, const jsmntok_t *t, const char *lit)
{
    size_t n = strlen(lit);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(buf + t->start, lit, n) == 0;
}

/* 1 when token T of BUF is the unsigned integer WANT written plainly. */
static int tok_is_uint(const char *buf, const jsmntok_t *t, uint64_t want)
{
    if (t->type != JSMN_PRIMITIVE || t->end <= t->start || t->end - t->start > 20)
        return 0;
    uint64_t v = 0;
    for (int i = t->start; i < t->end; i++) {
        char c = buf[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (uint64_t)(c - '0');
    }
    return v == want;
}

/* Index just past token I and all of its descendants (tokens are in
 * document order and parent links say who contains whom). */
static int tok_skip(const jsmntok_t *t, int ntok, int i)
{
    int j = i + 1;
    while (j < ntok) {
        int p = t[j].parent;
        while (p > i)
            p = t[p].parent;
        if (p != i)
            break;
        j++;
    }
    return j;
}

/* Accept {"jsonrpc":"2.0","id":WANT_ID,"result":...} or an error object in
 * place of result; anything else (other id, batch, no jsonrpc, both or
 * neither of result / error) is invalid. */
enum rp_reply_kind rp_health_parse_reply(const char *body, size_t len, uint64_t want_id,
                                         struct rp_reply *out)
{
    memset(out, 0, sizeof *out);
    jsmn_parser p;
    jsmntok_t t[HEALTH_REPLY_TOKENS];
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, t, HEALTH_REPLY_TOKENS);
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return out->kind = RP_REPLY_INVALID;
    int have_version = 0, have_id = 0, result = -1, error = -1;
    for (int i = 1; i < n;) {
        if (t[i].parent != 0 || i + 1 >= n)
            return out->kind = RP_REPLY_INVALID;
        const jsmntok_t *k = &t[i], *v = &t[i + 1];
        if (tok_is(body, k, "jsonrpc"))
            have_version = tok_is(body, v, "2.0");
        else if (tok_is(body, k, "id"))
            have_id = tok_is_uint(body, v, want_id);
        else if (tok_is(body, k, "result"))
            result = i + 1;
        else if (tok_is(body, k, "error"))
            error = i + 1;
        i = tok_skip(t, n, i + 1);
    }
    if (!have_version || !have_id || (result >= 0) == (error >= 0))
        return out->kind = RP_REPLY_INVALID;
    if (error >= 0)
        return out->kind = t[error].type == JSMN_OBJECT ? RP_REPLY_ERROR : RP_REPLY_INVALID;
    const jsmntok_t *r = &t[result];
    if (r->type == JSMN_STRING &&
        rp_jsonrpc_parse_quantity(body + r->start, (size_t)(r->end - r->start), &out->quantity) ==
            0)
        out->has_quantity = 1;
    return out->kind = RP_REPLY_RESULT;
}
