/* cachekey.c - which calls the cache may keep or coalesce, their canonical
 * key, and what an answer shows (rp_cachekey.h). jsmn tokenises the call
 * (strict, parent links); the key is the method and the params re-written
 * in one canonical form, so that the same question asked with other
 * spacing, member order or hex case is the same key.
 */
#include "rp_cachekey.h"

#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include <stdlib.h>
#include <string.h>

#include "rp_jsonrpc.h"

#define CK_TOKENS  256 /* a call with more tokens is not cached (nor coalesced) */
#define CK_DEPTH   16
#define CK_MEMBERS 64

/* How a method's answer depends on the chain. */
enum ck_rule {
    CK_STATIC,   /* never changes */
    CK_HEAD,     /* always the head */
    CK_TAG,      /* the block tag at param `arg` decides */
    CK_BYHASH,   /* a block hash at param 0 */
    CK_TXHASH,   /* a transaction hash */
    CK_LOGS,     /* eth_getLogs filter object */
    CK_RECEIPTS, /* eth_getBlockReceipts: a tag or a block hash */
};

struct ck_method {
    const char *name;
    size_t len;
    enum ck_rule rule;
    int arg;
    enum rp_ck_shows shows;
};

#define M(name) name, sizeof name - 1
static const struct ck_method ck_methods[] = {
    {M("eth_blockNumber"), CK_HEAD, -1, RP_CK_SHOWS_QUANTITY},
    {M("eth_chainId"), CK_STATIC, -1, RP_CK_SHOWS_NONE},
    {M("net_version"), CK_STATIC, -1, RP_CK_SHOWS_NONE},
    {M("eth_gasPrice"), CK_HEAD, -1, RP_CK_SHOWS_NONE},
    {M("eth_maxPriorityFeePerGas"), CK_HEAD, -1, RP_CK_SHOWS_NONE},
    {M("eth_blobBaseFee"), CK_HEAD, -1, RP_CK_SHOWS_NONE},
    {M("eth_getBlockByNumber"), CK_TAG, 0, RP_CK_SHOWS_BLOCK},
    {M("eth_getBlockTransactionCountByNumber"), CK_TAG, 0, RP_CK_SHOWS_NONE},
    {M("eth_getUncleCountByBlockNumber"), CK_TAG, 0, RP_CK_SHOWS_NONE},
    {M("eth_getTransactionByBlockNumberAndIndex"), CK_TAG, 0, RP_CK_SHOWS_TX},
    {M("eth_getUncleByBlockNumberAndIndex"), CK_TAG, 0, RP_CK_SHOWS_NONE},
    {M("eth_getBalance"), CK_TAG, 1, RP_CK_SHOWS_NONE},
    {M("eth_getCode"), CK_TAG, 1, RP_CK_SHOWS_NONE},
    {M("eth_getStorageAt"), CK_TAG, 2, RP_CK_SHOWS_NONE},
    {M("eth_getProof"), CK_TAG, 2, RP_CK_SHOWS_NONE},
    {M("eth_call"), CK_TAG, 1, RP_CK_SHOWS_NONE},
    {M("eth_createAccessList"), CK_TAG, 1, RP_CK_SHOWS_NONE},
    {M("eth_feeHistory"), CK_TAG, 1, RP_CK_SHOWS_NONE},
    {M("eth_getBlockByHash"), CK_BYHASH, 0, RP_CK_SHOWS_BLOCK},
    {M("eth_getBlockTransactionCountByHash"), CK_BYHASH, 0, RP_CK_SHOWS_NONE},
    {M("eth_getUncleCountByBlockHash"), CK_BYHASH, 0, RP_CK_SHOWS_NONE},
    {M("eth_getTransactionByBlockHashAndIndex"), CK_BYHASH, 0, RP_CK_SHOWS_TX},
    {M("eth_getUncleByBlockHashAndIndex"), CK_BYHASH, 0, RP_CK_SHOWS_NONE},
    {M("eth_getTransactionByHash"), CK_TXHASH, 0, RP_CK_SHOWS_TX},
    {M("eth_getTransactionReceipt"), CK_TXHASH, 0, RP_CK_SHOWS_TX},
    {M("eth_getLogs"), CK_LOGS, 0, RP_CK_SHOWS_NONE},
    {M("eth_getBlockReceipts"), CK_RECEIPTS, 0, RP_CK_SHOWS_NONE},
    {NULL, 0, 0, 0, 0},
};
#undef M

static const struct ck_method *ck_find(const char *m, size_t n)
{
    for (const struct ck_method *c = ck_methods; c->name; c++)
        if (c->len == n && memcmp(c->name, m, n) == 0)
            return c;
    return NULL;
}

static int ck_is(const char *buf, const jsmntok_t *t, const char *lit)
{
    size_t n = strlen(lit);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(buf + t->start, lit, n) == 0;
}

/* The token after the subtree at I. */
static int ck_skip(const jsmntok_t *t, int n, int i)
{
    int j = i + 1;
    while (j < n && t[j].start < t[i].end)
        j++;
    return j;
}

static int ck_member(const char *buf, const jsmntok_t *t, int n, int obj, const char *key)
{
    for (int i = obj + 1; i + 1 < n && t[i].start < t[obj].end; i = ck_skip(t, n, i + 1))
        if (ck_is(buf, &t[i], key))
            return t[i + 1].parent == i ? i + 1 : -1; /* a name without a value: not JSON */
    return -1;
}

static int ck_elem(const jsmntok_t *t, int n, int arr, int k)
{
    int seen = 0;
    for (int i = arr + 1; i < n && t[i].start < t[arr].end; i = ck_skip(t, n, i))
        if (seen++ == k)
            return i;
    return -1;
}

static int ck_hexstr(const char *s, size_t n)
{
    if (n < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return 0;
    for (size_t i = 2; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

/* ---- canonical JSON ---- */

struct ck_out {
    char *p;
    size_t len, cap;
    int fail;
};

static void ck_put(struct ck_out *o, const char *s, size_t n)
{
    if (o->fail || n > o->cap - o->len) {
        o->fail = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static int ck_emit(struct ck_out *o, const char *buf, const jsmntok_t *t, int n, int i, int depth);

/* Members of object I sorted by name bytes (insertion sort; few members),
 * names written as they came, values in canonical form. */
static int ck_emit_object(struct ck_out *o, const char *buf, const jsmntok_t *t, int n, int i,
                          int depth)
{
    int keys[CK_MEMBERS], nk = 0;
    for (int k = i + 1; k + 1 < n && t[k].start < t[i].end; k = ck_skip(t, n, k + 1)) {
        if (nk == CK_MEMBERS || t[k + 1].parent != k)
            return -1;
        keys[nk++] = k;
    }
    for (int a = 1; a < nk; a++) {
        int v = keys[a], b = a - 1;
        while (b >= 0) {
            const jsmntok_t *x = &t[keys[b]], *y = &t[v];
            size_t xl = (size_t)(x->end - x->start), yl = (size_t)(y->end - y->start);
            int c = memcmp(buf + x->start, buf + y->start, xl < yl ? xl : yl);
            if (c < 0 || (c == 0 && xl <= yl))
                break;
            keys[b + 1] = keys[b];
            b--;
        }
        keys[b + 1] = v;
    }
    ck_put(o, "{", 1);
    for (int a = 0; a < nk; a++) {
        if (a)
            ck_put(o, ",", 1);
        /* a member's name as it came: names are not hex values (lower-
         * casing one would merge two names and break the order above) */
        const jsmntok_t *name = &t[keys[a]];
        ck_put(o, "\"", 1);
        ck_put(o, buf + name->start, (size_t)(name->end - name->start));
        ck_put(o, "\":", 2);
        if (ck_emit(o, buf, t, n, keys[a] + 1, depth + 1) != 0)
            return -1;
    }
    ck_put(o, "}", 1);
    return 0;
}

/* Write token I (and its subtree) in canonical form. */
static int ck_emit(struct ck_out *o, const char *buf, const jsmntok_t *t, int n, int i, int depth)
{
    if (depth > CK_DEPTH || i >= n)
        return -1;
    const char *s = buf + t[i].start;
    size_t len = (size_t)(t[i].end - t[i].start);
    switch (t[i].type) {
    case JSMN_STRING:
        ck_put(o, "\"", 1);
        if (ck_hexstr(s, len) && !o->fail && len <= o->cap - o->len) {
            for (size_t k = 0; k < len; k++) {
                char c = s[k];
                o->p[o->len + k] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
            }
            o->len += len;
        } else {
            ck_put(o, s, len);
        }
        ck_put(o, "\"", 1);
        return 0;
    case JSMN_PRIMITIVE:
        ck_put(o, s, len);
        return 0;
    case JSMN_ARRAY: {
        ck_put(o, "[", 1);
        int first = 1;
        for (int k = i + 1; k < n && t[k].start < t[i].end; k = ck_skip(t, n, k)) {
            if (!first)
                ck_put(o, ",", 1);
            first = 0;
            if (ck_emit(o, buf, t, n, k, depth + 1) != 0)
                return -1;
        }
        ck_put(o, "]", 1);
        return 0;
    }
    case JSMN_OBJECT:
        return ck_emit_object(o, buf, t, n, i, depth);
    default:
        return -1;
    }
}

/* ---- classification ---- */

/* What block tag token I (-1: absent) asks for. */
static enum rp_ck_class ck_tag(const char *buf, const jsmntok_t *t, int n, int i, uint64_t *block)
{
    if (i < 0)
        return RP_CK_HEAD;          /* omitted: latest */
    if (t[i].type == JSMN_OBJECT) { /* EIP-1898 */
        int bh = ck_member(buf, t, n, i, "blockHash");
        if (bh >= 0)
            return t[bh].type == JSMN_STRING ? RP_CK_HASH : RP_CK_NONE;
        int bn = ck_member(buf, t, n, i, "blockNumber");
        return bn >= 0 ? ck_tag(buf, t, n, bn, block) : RP_CK_NONE;
    }
    if (t[i].type != JSMN_STRING)
        return RP_CK_NONE;
    if (ck_is(buf, &t[i], "latest") || ck_is(buf, &t[i], "safe") || ck_is(buf, &t[i], "finalized"))
        return RP_CK_HEAD;
    if (ck_is(buf, &t[i], "pending"))
        return RP_CK_PENDING;
    if (ck_is(buf, &t[i], "earliest")) {
        *block = 0;
        return RP_CK_NUMBER;
    }
    if (rp_jsonrpc_parse_quantity(buf + t[i].start, (size_t)(t[i].end - t[i].start), block) == 0)
        return RP_CK_NUMBER;
    return RP_CK_NONE;
}

/* eth_getLogs [{fromBlock, toBlock, blockHash, ...}]. */
static enum rp_ck_class ck_logs(const char *buf, const jsmntok_t *t, int n, int f, uint64_t *block)
{
    if (f < 0 || t[f].type != JSMN_OBJECT)
        return RP_CK_NONE;
    if (ck_member(buf, t, n, f, "blockHash") >= 0)
        return RP_CK_HASH;
    uint64_t from = 0;
    enum rp_ck_class to = ck_tag(buf, t, n, ck_member(buf, t, n, f, "toBlock"), block);
    enum rp_ck_class fr = ck_tag(buf, t, n, ck_member(buf, t, n, f, "fromBlock"), &from);
    if (to == RP_CK_NONE || fr == RP_CK_NONE)
        return RP_CK_NONE;
    if (to == RP_CK_PENDING || fr == RP_CK_PENDING)
        return RP_CK_PENDING;
    if (to == RP_CK_HEAD || fr == RP_CK_HEAD)
        return RP_CK_HEAD;
    if (from > *block)
        *block = from;
    return RP_CK_NUMBER;
}

size_t rp_cachekey_classify(const char *call, size_t len, const char *method, size_t mlen,
                            struct rp_ck *out, char *key, size_t keycap)
{
    memset(out, 0, sizeof *out);
    const struct ck_method *m = ck_find(method, mlen);
    if (!m)
        return 0;
    jsmn_parser p;
    jsmntok_t t[CK_TOKENS];
    jsmn_init(&p);
    int n = jsmn_parse(&p, call, len, t, CK_TOKENS);
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return 0;
    int params = ck_member(call, t, n, 0, "params");
    if (params >= 0 && t[params].type != JSMN_ARRAY && t[params].type != JSMN_OBJECT)
        return 0;
    int arr = params >= 0 && t[params].type == JSMN_ARRAY ? params : -1;
    enum rp_ck_class cls = RP_CK_NONE;
    uint64_t block = 0;
    int a0 = arr >= 0 ? ck_elem(t, n, arr, 0) : -1;
    switch (m->rule) {
    case CK_STATIC:
        cls = RP_CK_STATIC;
        break;
    case CK_HEAD:
        cls = RP_CK_HEAD;
        break;
    case CK_TAG:
        if (params >= 0 && arr < 0)
            return 0;
        cls = ck_tag(call, t, n, arr >= 0 ? ck_elem(t, n, arr, m->arg) : -1, &block);
        break;
    case CK_BYHASH:
        cls = a0 >= 0 && t[a0].type == JSMN_STRING ? RP_CK_HASH : RP_CK_NONE;
        break;
    case CK_TXHASH:
        cls = a0 >= 0 && t[a0].type == JSMN_STRING ? RP_CK_TX : RP_CK_NONE;
        break;
    case CK_LOGS:
        cls = ck_logs(call, t, n, a0, &block);
        break;
    case CK_RECEIPTS:
        if (a0 >= 0 && t[a0].type == JSMN_STRING && t[a0].end - t[a0].start == 66 &&
            ck_hexstr(call + t[a0].start, 66))
            cls = RP_CK_HASH;
        else
            cls = ck_tag(call, t, n, a0, &block);
        break;
    }
    if (cls == RP_CK_NONE)
        return 0;
    struct ck_out o = {key, 0, keycap, 0};
    ck_put(&o, method, mlen);
    ck_put(&o, "\n", 1);
    if (params < 0)
        ck_put(&o, "[]", 2);
    else if (ck_emit(&o, call, t, n, params, 0) != 0)
        return 0;
    if (o.fail)
        return 0;
    out->cls = cls;
    out->shows = m->shows;
    out->block = block;
    return o.len;
}

int rp_cachekey_mutates(const char *m, size_t n)
{
    static const char *const prefixes[] = {"eth_send",      "evm_",    "anvil_",
                                           "hardhat_",      "miner_",  "debug_setHead",
                                           "personal_send", "eth_sign"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n >= pl && memcmp(m, prefixes[i], pl) == 0)
            return 1;
    }
    return 0;
}

/* ---- answers ---- */

/* 64 bits of a 0x-hex hash string token. */
static uint64_t ck_hash_fp(const char *s, size_t n)
{
    if (!ck_hexstr(s, n) || n < 18)
        return 0;
    uint64_t v = 0;
    for (size_t i = 2; i < 18; i++) {
        char c = s[i];
        uint64_t d = c <= '9' ? (uint64_t)(c - '0') : (uint64_t)((c | 0x20) - 'a' + 10);
        v = (v << 4) | d;
    }
    return v ? v : 1;
}

int rp_cachekey_answer(const char *body, size_t len, enum rp_ck_shows shows,
                       struct rp_ck_answer *out)
{
    memset(out, 0, sizeof *out);
    out->id_start = out->id_end = -1;
    jsmn_parser p;
    jsmntok_t t[CK_TOKENS];
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, t, CK_TOKENS);
    if (n == JSMN_ERROR_NOMEM) {
        /* a long answer (a block with its transactions): what was read is
         * kept, the containers still open end with the body */
        n = CK_TOKENS;
        for (int i = 0; i < n; i++)
            if (t[i].end < 0)
                t[i].end = (int)len;
    }
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return -1;
    int res = -1, err = -1, id = -1;
    for (int i = 1; i + 1 < n && t[i].start < t[0].end; i = ck_skip(t, n, i + 1)) {
        if (ck_is(body, &t[i], "result"))
            res = i + 1;
        else if (ck_is(body, &t[i], "error"))
            err = i + 1;
        else if (ck_is(body, &t[i], "id"))
            id = i + 1;
    }
    if (id >= 0) {
        out->id_start = t[id].start;
        out->id_end = t[id].end;
        if (t[id].type == JSMN_STRING) { /* the quotes are part of the value */
            out->id_start--;
            out->id_end++;
        }
    }
    out->ok = res >= 0 && err < 0;
    if (!out->ok)
        return 0;
    out->null = t[res].type == JSMN_PRIMITIVE && t[res].end - t[res].start == 4 &&
                memcmp(body + t[res].start, "null", 4) == 0;
    const char *nk = NULL, *hk = NULL;
    if (shows == RP_CK_SHOWS_QUANTITY && t[res].type == JSMN_STRING) {
        rp_jsonrpc_parse_quantity(body + t[res].start, (size_t)(t[res].end - t[res].start),
                                  &out->number);
        return 0;
    }
    if (shows == RP_CK_SHOWS_BLOCK)
        nk = "number", hk = "hash";
    else if (shows == RP_CK_SHOWS_TX)
        nk = "blockNumber", hk = "blockHash";
    if (!nk || t[res].type != JSMN_OBJECT)
        return 0;
    int nt = ck_member(body, t, n, res, nk), ht = ck_member(body, t, n, res, hk);
    if (nt >= 0 && t[nt].type == JSMN_STRING)
        rp_jsonrpc_parse_quantity(body + t[nt].start, (size_t)(t[nt].end - t[nt].start),
                                  &out->number);
    if (ht >= 0 && t[ht].type == JSMN_STRING)
        out->hash_fp = ck_hash_fp(body + t[ht].start, (size_t)(t[ht].end - t[ht].start));
    return 0;
}

int rp_cachekey_batch_elems(const char *body, size_t len, struct rp_ck_elem *out, int max)
{
    jsmn_parser p;
    jsmn_init(&p);
    int need = jsmn_parse(&p, body, len, NULL, 0);
    if (need < 1)
        return -1;
    jsmntok_t *t = malloc((size_t)need * sizeof *t);
    if (!t)
        return -1;
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, t, (unsigned)need);
    int count = -1;
    if (n >= 1 && t[0].type == JSMN_ARRAY) {
        count = 0;
        for (int i = 1; i < n && t[i].start < t[0].end && count < max; i = ck_skip(t, n, i)) {
            if (t[i].type != JSMN_OBJECT)
                continue;
            struct rp_ck_elem *e = &out[count++];
            e->start = (uint32_t)t[i].start;
            e->len = (uint32_t)(t[i].end - t[i].start);
            e->id_start = -1;
            e->id_len = 0;
            int id = ck_member(body, t, n, i, "id");
            if (id >= 0 && t[id].start > t[i].start && t[id].end < t[i].end) {
                int s = t[id].start, x = t[id].end;
                if (t[id].type == JSMN_STRING)
                    s--, x++;
                e->id_start = s;
                e->id_len = (uint32_t)(x - s);
            }
        }
    }
    free(t);
    return count;
}

uint64_t rp_cachekey_hash(const void *buf, size_t len, uint64_t seed)
{
    const unsigned char *p = buf;
    uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w ^ ((uint64_t)len << 56)) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 32;
    return h;
}
