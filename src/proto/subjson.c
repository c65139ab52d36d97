/* subjson.c - the JSON of subscriptions (see rp_subjson.h): pure functions
 * over jsmn tokens. */
#include "rp_subjson.h"

#include <stdlib.h>
#include <string.h>

#include "rp_frame.h"
#include "rp_jsonrpc.h"

#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

/* Tokenise BUF[0, LEN) into a fresh array (*TOKS, free it). Returns the
 * count, or -1. */
static int sj_tokenize(const char *buf, size_t len, jsmntok_t **toks)
{
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, buf, len, NULL, 0);
    if (n < 1)
        return -1;
    *toks = malloc((size_t)n * sizeof **toks);
    if (!*toks)
        return -1;
    jsmn_init(&p);
    if (jsmn_parse(&p, buf, len, *toks, (unsigned)n) != n) {
        free(*toks);
        *toks = NULL;
        return -1;
    }
    return n;
}

static int sj_is(const char *buf, const jsmntok_t *t, const char *lit)
{
    size_t n = strlen(lit);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(buf + t->start, lit, n) == 0;
}

/* The value token of member KEY of object OBJ; -1. */
static int sj_member(const char *buf, const jsmntok_t *t, int n, int obj, const char *key)
{
    for (int i = obj + 1; i + 1 < n; i++)
        if (t[i].parent == obj && sj_is(buf, &t[i], key))
            return i + 1;
    return -1;
}

/* Element K of array ARR; -1. */
static int sj_elem(const jsmntok_t *t, int n, int arr, int k)
{
    int seen = 0;
    for (int i = arr + 1; i < n; i++)
        if (t[i].parent == arr && seen++ == k)
            return i;
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rp_hex_bytes(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len != 2 + 2 * n || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Token T as N bytes of hex into OUT (a JSON string). */
static int sj_hex(const char *buf, const jsmntok_t *t, uint8_t *out, size_t n)
{
    if (t->type != JSMN_STRING)
        return -1;
    return rp_hex_bytes(buf + t->start, (size_t)(t->end - t->start), out, n);
}

void rp_log_filter_free(struct rp_log_filter *f)
{
    free(f->addr);
    for (int i = 0; i < RP_LOG_MAX_TOPICS; i++)
        free(f->choice[i]);
    memset(f, 0, sizeof *f);
}

/* Read a string or an array of strings (or null) at token V into *SET of
 * N-byte values (*COUNT of them, at most MAX). */
static int sj_hex_set(const char *buf, const jsmntok_t *t, int ntok, int v, size_t n, size_t max,
                      uint8_t **set, uint32_t *count, const char **err)
{
    *count = 0;
    if (t[v].type == JSMN_PRIMITIVE && buf[t[v].start] == 'n')
        return 0; /* null: any */
    int items = t[v].type == JSMN_ARRAY ? t[v].size : 1;
    if (t[v].type != JSMN_ARRAY && t[v].type != JSMN_STRING) {
        *err = "invalid params: expected a hex string or an array of them";
        return -1;
    }
    if ((size_t)items > max) {
        *err = "invalid params: too many alternatives in the filter";
        return -1;
    }
    if (items == 0)
        return 0;
    *set = malloc((size_t)items * n);
    if (!*set) {
        *err = "out of memory";
        return -1;
    }
    for (int k = 0; k < items; k++) {
        int e = t[v].type == JSMN_ARRAY ? sj_elem(t, ntok, v, k) : v;
        if (e < 0 || sj_hex(buf, &t[e], *set + (size_t)k * n, n) != 0) {
            *err = n == 20 ? "invalid params: bad address" : "invalid params: bad topic";
            return -1;
        }
    }
    *count = (uint32_t)items;
    return 0;
}

/* The filter object at token OBJ of BUF. */
static int sj_filter(const char *buf, const jsmntok_t *t, int n, int obj, struct rp_log_filter *f,
                     const char **err)
{
    memset(f, 0, sizeof *f);
    if (t[obj].type != JSMN_OBJECT) {
        *err = "invalid params: the filter must be an object";
        return -1;
    }
    int a = sj_member(buf, t, n, obj, "address");
    if (a >= 0 && sj_hex_set(buf, t, n, a, 20, RP_FILTER_MAX_ADDRS, (uint8_t **)&f->addr, &f->naddr,
                             err) != 0)
        goto fail;
    int tp = sj_member(buf, t, n, obj, "topics");
    if (tp >= 0 && !(t[tp].type == JSMN_PRIMITIVE && buf[t[tp].start] == 'n')) {
        if (t[tp].type != JSMN_ARRAY) {
            *err = "invalid params: topics must be an array";
            goto fail;
        }
        if (t[tp].size > RP_LOG_MAX_TOPICS) {
            *err = "invalid params: too many topics (at most 4)";
            goto fail;
        }
        f->npos = (uint32_t)t[tp].size;
        for (int k = 0; k < t[tp].size; k++) {
            int e = sj_elem(t, n, tp, k);
            if (e < 0 || sj_hex_set(buf, t, n, e, 32, RP_FILTER_MAX_CHOICES,
                                    (uint8_t **)&f->choice[k], &f->nchoice[k], err) != 0)
                goto fail;
        }
    }
    return 0;
fail:
    rp_log_filter_free(f);
    return -1;
}

int rp_log_filter_parse(const char *json, size_t len, struct rp_log_filter *f, const char **err)
{
    jsmntok_t *t = NULL;
    int n = sj_tokenize(json, len, &t);
    memset(f, 0, sizeof *f);
    if (n < 1) {
        *err = "invalid params: the filter is not JSON";
        return -1;
    }
    int r = sj_filter(json, t, n, 0, f, err);
    free(t);
    return r;
}

int rp_log_filter_match(const struct rp_log_filter *f, const uint8_t *addr, unsigned ntopics,
                        const uint8_t (*topics)[32])
{
    if (f->naddr) {
        uint32_t i;
        for (i = 0; i < f->naddr; i++)
            if (memcmp(f->addr[i], addr, 20) == 0)
                break;
        if (i == f->naddr)
            return 0;
    }
    if (f->npos > ntopics)
        return 0;
    for (uint32_t p = 0; p < f->npos; p++) {
        if (!f->nchoice[p])
            continue;
        uint32_t k;
        for (k = 0; k < f->nchoice[p]; k++)
            if (memcmp(f->choice[p][k], topics[p], 32) == 0)
                break;
        if (k == f->nchoice[p])
            return 0;
    }
    return 1;
}

int rp_subjson_subscribe(const char *call, size_t len, enum rp_sub_type *type,
                         struct rp_log_filter *f, const char **err)
{
    jsmntok_t *t = NULL;
    memset(f, 0, sizeof *f);
    int n = sj_tokenize(call, len, &t);
    if (n < 1 || t[0].type != JSMN_OBJECT) {
        free(t);
        *err = "invalid params";
        return -1;
    }
    int r = -1;
    int p = sj_member(call, t, n, 0, "params");
    int k = p >= 0 && t[p].type == JSMN_ARRAY ? sj_elem(t, n, p, 0) : -1;
    if (k < 0 || t[k].type != JSMN_STRING) {
        *err = "invalid params: expected [\"newHeads\"] or [\"logs\", {address, topics}]";
    } else if (sj_is(call, &t[k], "newHeads")) {
        *type = RP_SUB_NEW_HEADS;
        r = 0;
    } else if (sj_is(call, &t[k], "logs")) {
        *type = RP_SUB_LOGS;
        int fo = sj_elem(t, n, p, 1);
        r = fo < 0 || (t[fo].type == JSMN_PRIMITIVE && call[t[fo].start] == 'n')
                ? 0
                : sj_filter(call, t, n, fo, f, err);
    } else {
        *err = "unsupported subscription: rpcpool serves newHeads and logs";
    }
    free(t);
    return r;
}

int rp_subjson_unsubscribe(const char *call, size_t len, char *id, size_t cap)
{
    jsmntok_t *t = NULL;
    int n = sj_tokenize(call, len, &t);
    int r = -1;
    if (n >= 1 && t[0].type == JSMN_OBJECT) {
        int p = sj_member(call, t, n, 0, "params");
        int k = p >= 0 && t[p].type == JSMN_ARRAY ? sj_elem(t, n, p, 0) : -1;
        if (k >= 0 && t[k].type == JSMN_STRING && (size_t)(t[k].end - t[k].start) < cap) {
            size_t l = (size_t)(t[k].end - t[k].start);
            memcpy(id, call + t[k].start, l);
            id[l] = '\0';
            r = 0;
        }
    }
    free(t);
    return r;
}

/* The "result" token of a JSON-RPC answer; -1 (none, or an error). */
static int sj_result(const char *body, const jsmntok_t *t, int n)
{
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return -1;
    return sj_member(body, t, n, 0, "result");
}

/* Append member K (key token) of BODY with its value, comma first unless
 * FIRST. */
static void sj_copy_member(struct rp_buf *out, const char *body, const jsmntok_t *t, int k,
                           int first)
{
    if (!first)
        rp_buf_append(out, ",", 1);
    rp_buf_append(out, body + t[k].start - 1, (size_t)(t[k].end - t[k].start + 2));
    rp_buf_append(out, ":", 1);
    const jsmntok_t *v = &t[k + 1];
    int q = v->type == JSMN_STRING;
    rp_buf_append(out, body + v->start - q, (size_t)(v->end - v->start + 2 * q));
}

/* Index of the token after the subtree rooted at I. */
static int sj_skip(const jsmntok_t *t, int n, int i)
{
    int end = t[i].end;
    int j = i + 1;
    while (j < n && t[j].start < end)
        j++;
    return j;
}

/* Number, hash and (when present; required when NEED_PARENT) parent hash
 * of the header object OBJ into BI. Returns 0, or -1 when malformed. */
static int sj_header_info(const char *body, const jsmntok_t *t, int n, int obj,
                          struct rp_block_info *bi, int need_parent)
{
    int num = sj_member(body, t, n, obj, "number");
    int h = sj_member(body, t, n, obj, "hash");
    int ph = sj_member(body, t, n, obj, "parentHash");
    if (num < 0 || h < 0 || (need_parent && ph < 0) || t[num].type != JSMN_STRING ||
        rp_jsonrpc_parse_quantity(body + t[num].start, (size_t)(t[num].end - t[num].start),
                                  &bi->number) != 0 ||
        sj_hex(body, &t[h], bi->hash, 32) != 0 ||
        (ph >= 0 && sj_hex(body, &t[ph], bi->parent, 32) != 0))
        return -1;
    return 0;
}

int rp_subjson_block(const char *body, size_t len, struct rp_block_info *bi, struct rp_buf *header)
{
    static const char *const drop[] = {"transactions", "uncles",          "withdrawals",
                                       "size",         "totalDifficulty", NULL};
    jsmntok_t *t = NULL;
    /* strict JSON (UTF-8 included) first: what is copied from it goes to
     * clients as it is */
    int n = rp_frame_validate(body, len) == 0 ? sj_tokenize(body, len, &t) : -1;
    int res = n > 0 ? sj_result(body, t, n) : -1;
    int r = -1;
    if (res < 0)
        goto out;
    if (t[res].type == JSMN_PRIMITIVE && body[t[res].start] == 'n') {
        r = 1;
        goto out;
    }
    if (t[res].type != JSMN_OBJECT)
        goto out;
    if (sj_header_info(body, t, n, res, bi, 1) != 0)
        goto out;
    if (header) {
        size_t before = header->len;
        rp_buf_append(header, "{", 1);
        int first = 1;
        for (int k = res + 1; k < n && t[k].start < t[res].end;) {
            int skip = 0;
            for (int d = 0; drop[d]; d++)
                if (sj_is(body, &t[k], drop[d]))
                    skip = 1;
            if (!skip) {
                sj_copy_member(header, body, t, k, first);
                first = 0;
            }
            k = sj_skip(t, n, k + 1);
        }
        rp_buf_append(header, "}", 1);
        if (rp_buf_failed(header))
            goto out;
        header->len = before + rp_json_strip_newlines(header->data + before, header->len - before);
    }
    r = 0;
out:
    free(t);
    return r;
}

int rp_subjson_quantity(const char *body, size_t len, uint64_t *number)
{
    jsmntok_t *t = NULL;
    int n = sj_tokenize(body, len, &t);
    int res = n > 0 ? sj_result(body, t, n) : -1;
    int r = -1;
    if (res >= 0 && t[res].type == JSMN_STRING &&
        rp_jsonrpc_parse_quantity(body + t[res].start, (size_t)(t[res].end - t[res].start),
                                  number) == 0)
        r = 0;
    free(t);
    return r;
}

int rp_subjson_logs(const char *body, size_t len, const uint8_t hash[32], struct rp_buf *out)
{
    jsmntok_t *t = NULL;
    int n = rp_frame_validate(body, len) == 0 ? sj_tokenize(body, len, &t) : -1;
    int res = n > 0 ? sj_result(body, t, n) : -1;
    int count = -1;
    if (res < 0 || t[res].type != JSMN_ARRAY)
        goto out;
    count = 0;
    for (int i = res + 1; i < n && t[i].start < t[res].end; i = sj_skip(t, n, i)) {
        if (t[i].type != JSMN_OBJECT)
            goto bad;
        uint8_t rec_head[8 + 20 + RP_LOG_MAX_TOPICS * 32];
        memset(rec_head, 0, sizeof rec_head);
        int a = sj_member(body, t, n, i, "address");
        int tp = sj_member(body, t, n, i, "topics");
        int bh = sj_member(body, t, n, i, "blockHash");
        uint8_t lh[32];
        if (a < 0 || sj_hex(body, &t[a], rec_head + 8, 20) != 0)
            goto bad;
        if (bh >= 0 && (sj_hex(body, &t[bh], lh, 32) != 0 || memcmp(lh, hash, 32) != 0))
            goto bad; /* an answer for another block */
        unsigned nt = 0;
        if (tp >= 0) {
            if (t[tp].type != JSMN_ARRAY || t[tp].size > RP_LOG_MAX_TOPICS)
                goto bad;
            nt = (unsigned)t[tp].size;
            for (unsigned k = 0; k < nt; k++) {
                int e = sj_elem(t, n, tp, (int)k);
                if (e < 0 || sj_hex(body, &t[e], rec_head + 28 + 32 * k, 32) != 0)
                    goto bad;
            }
        }
        rec_head[4] = (uint8_t)nt;
        size_t start = out->len;
        rp_buf_append(out, (const char *)rec_head, 28 + 32 * nt);
        size_t jstart = out->len;
        rp_buf_append(out, "{", 1);
        int first = 1;
        for (int k = i + 1; k < n && t[k].start < t[i].end; k = sj_skip(t, n, k + 1)) {
            if (sj_is(body, &t[k], "removed"))
                continue;
            sj_copy_member(out, body, t, k, first);
            first = 0;
        }
        if (rp_buf_failed(out))
            goto bad;
        size_t jl = rp_json_strip_newlines(out->data + jstart, out->len - jstart);
        out->len = jstart + jl;
        uint32_t rl = (uint32_t)(out->len - start);
        memcpy(out->data + start, &rl, 4);
        count++;
    }
    goto out;
bad:
    count = -1;
out:
    free(t);
    return count;
}

int rp_log_rec_next(const char *data, size_t len, size_t *off, struct rp_log_rec *r)
{
    if (*off >= len)
        return 0;
    if (len - *off < 28)
        return -1;
    uint32_t rl;
    memcpy(&rl, data + *off, 4);
    unsigned nt = (uint8_t)data[*off + 4];
    if (nt > RP_LOG_MAX_TOPICS || rl < 28 + 32 * nt || rl > len - *off)
        return -1;
    const uint8_t *p = (const uint8_t *)data + *off;
    r->addr = p + 8;
    r->ntopics = nt;
    r->topics = (const uint8_t(*)[32])(p + 28);
    r->json = (const char *)p + 28 + 32 * nt;
    r->json_len = rl - 28 - 32 * nt;
    *off += rl;
    return 1;
}

int rp_subjson_new_head(const char *body, size_t len, struct rp_block_info *bi)
{
    jsmntok_t *t = NULL;
    int n = sj_tokenize(body, len, &t);
    int r = -1;
    if (n < 1 || t[0].type != JSMN_OBJECT)
        goto out;
    int m = sj_member(body, t, n, 0, "method");
    if (m < 0 || !sj_is(body, &t[m], "eth_subscription")) {
        r = 1; /* an answer (to eth_subscribe), not a notification */
        goto out;
    }
    int p = sj_member(body, t, n, 0, "params");
    int res = p >= 0 && t[p].type == JSMN_OBJECT ? sj_member(body, t, n, p, "result") : -1;
    if (res < 0 || t[res].type != JSMN_OBJECT)
        goto out;
    memset(bi, 0, sizeof *bi);
    if (sj_header_info(body, t, n, res, bi, 0) != 0)
        goto out;
    r = 0;
out:
    free(t);
    return r;
}
