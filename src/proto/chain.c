/* chain.c - chain-consistent answers, the pure half (see rp_chain.h).
 *
 * Calls and answers are tokenised with jsmn (parent links on, strict); only
 * the few members that matter are read: the params array and the block tag
 * in it, an answer's result and a block object's number.
 */
#include "rp_chain.h"

#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include <stdlib.h>
#include <string.h>

#include "rp_jsonrpc.h"

/* Tokens read from one call or answer: enough for the members we look at
 * (a block object with full transactions has more: what lies past this
 * many tokens is simply not read, and its "number" comes early). */
#define CHAIN_TOKENS 512

/* Where the block tag is in a method's params, and what else the method is. */
struct chain_method {
    const char *name;
    size_t len;    /* strlen(name): compared first, no strlen per request */
    int tag_param; /* index of the block tag in params; -1 none; -2 eth_getLogs filter */
    enum rp_chain_kind kind;
    int head; /* 1: depends on the head even without a tag (eth_blockNumber) */
};

#define M(name) name, sizeof name - 1
static const struct chain_method chain_methods[] = {
    {M("eth_blockNumber"), -1, RP_CHAIN_PLAIN, 1},
    {M("eth_getBlockByNumber"), 0, RP_CHAIN_PLAIN, 0},
    {M("eth_getBlockTransactionCountByNumber"), 0, RP_CHAIN_PLAIN, 0},
    {M("eth_getUncleCountByBlockNumber"), 0, RP_CHAIN_PLAIN, 0},
    {M("eth_getTransactionByBlockNumberAndIndex"), 0, RP_CHAIN_PLAIN, 0},
    {M("eth_getUncleByBlockNumberAndIndex"), 0, RP_CHAIN_PLAIN, 0},
    {M("eth_getBlockReceipts"), 0, RP_CHAIN_PLAIN, 0},
    {M("eth_getBalance"), 1, RP_CHAIN_PLAIN, 0},
    {M("eth_getCode"), 1, RP_CHAIN_PLAIN, 0},
    {M("eth_getTransactionCount"), 1, RP_CHAIN_TX_FLOW, 0},
    {M("eth_getStorageAt"), 2, RP_CHAIN_PLAIN, 0},
    {M("eth_getProof"), 2, RP_CHAIN_PLAIN, 0},
    {M("eth_call"), 1, RP_CHAIN_PLAIN, 0},
    {M("eth_estimateGas"), 1, RP_CHAIN_TX_FLOW, 0},
    {M("eth_createAccessList"), 1, RP_CHAIN_PLAIN, 0},
    {M("eth_feeHistory"), 1, RP_CHAIN_PLAIN, 0},
    {M("eth_getLogs"), -2, RP_CHAIN_PLAIN, 0},
    {M("eth_sendRawTransaction"), -1, RP_CHAIN_TX_FLOW, 0},
    {M("eth_sendTransaction"), -1, RP_CHAIN_TX_FLOW, 0},
    {M("eth_newFilter"), -1, RP_CHAIN_FILTER_NEW, 0},
    {M("eth_newBlockFilter"), -1, RP_CHAIN_FILTER_NEW, 0},
    {M("eth_newPendingTransactionFilter"), -1, RP_CHAIN_FILTER_NEW, 0},
    {M("eth_getFilterChanges"), -1, RP_CHAIN_FILTER_USE, 0},
    {M("eth_getFilterLogs"), -1, RP_CHAIN_FILTER_USE, 0},
    {M("eth_uninstallFilter"), -1, RP_CHAIN_FILTER_USE, 0},
    {M("eth_getTransactionReceipt"), -1, RP_CHAIN_LOOKUP, 0},
    {M("eth_getTransactionByHash"), -1, RP_CHAIN_LOOKUP, 0},
    {M("eth_getBlockByHash"), -1, RP_CHAIN_LOOKUP, 0},
    {NULL, 0, 0, RP_CHAIN_PLAIN, 0},
};
#undef M

static const struct chain_method *chain_method_find(const char *m, size_t n)
{
    for (const struct chain_method *c = chain_methods; c->name; c++)
        if (c->len == n && memcmp(c->name, m, n) == 0)
            return c;
    return NULL;
}

static int tok_is(const char *buf, const jsmntok_t *t, const char *lit)
{
    size_t n = strlen(lit);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(buf + t->start, lit, n) == 0;
}

/* Index of the member KEY of object token OBJ, its value's token; -1. */
static int tok_member(const char *buf, const jsmntok_t *t, int n, int obj, const char *key)
{
    for (int i = obj + 1; i + 1 < n; i++)
        if (t[i].parent == obj && tok_is(buf, &t[i], key))
            return i + 1;
    return -1;
}

/* Index of element K of array token ARR; -1. */
static int tok_elem(const jsmntok_t *t, int n, int arr, int k)
{
    int seen = 0;
    for (int i = arr + 1; i < n; i++)
        if (t[i].parent == arr && seen++ == k)
            return i;
    return -1;
}

/* What block tag token I (or -1: absent) asks for. */
static enum rp_chain_need chain_tag(const char *buf, const jsmntok_t *t, int n, int i,
                                    uint64_t *block)
{
    if (i < 0)
        return RP_CHAIN_HEAD;       /* omitted: latest */
    if (t[i].type == JSMN_OBJECT) { /* EIP-1898: {blockNumber} or {blockHash} */
        int bn = tok_member(buf, t, n, i, "blockNumber");
        return bn >= 0 ? chain_tag(buf, t, n, bn, block) : RP_CHAIN_ANY;
    }
    if (t[i].type != JSMN_STRING)
        return RP_CHAIN_ANY;
    if (tok_is(buf, &t[i], "latest") || tok_is(buf, &t[i], "pending") ||
        tok_is(buf, &t[i], "safe") || tok_is(buf, &t[i], "finalized"))
        return RP_CHAIN_HEAD;
    if (rp_jsonrpc_parse_quantity(buf + t[i].start, (size_t)(t[i].end - t[i].start), block) == 0)
        return RP_CHAIN_BLOCK;
    return RP_CHAIN_ANY; /* "earliest", a hash, or nonsense: the node decides */
}

/* eth_getLogs [{fromBlock, toBlock, blockHash}]: by hash needs nothing, an
 * omitted or moving toBlock needs the head, else the highest block named. */
static enum rp_chain_need chain_logs(const char *buf, const jsmntok_t *t, int n, int filter,
                                     uint64_t *block)
{
    if (filter < 0 || t[filter].type != JSMN_OBJECT)
        return RP_CHAIN_HEAD;
    if (tok_member(buf, t, n, filter, "blockHash") >= 0)
        return RP_CHAIN_ANY;
    uint64_t from = 0;
    enum rp_chain_need to = chain_tag(buf, t, n, tok_member(buf, t, n, filter, "toBlock"), block);
    enum rp_chain_need fr = chain_tag(buf, t, n, tok_member(buf, t, n, filter, "fromBlock"), &from);
    if (to == RP_CHAIN_BLOCK && fr == RP_CHAIN_BLOCK && from > *block)
        *block = from;
    return to;
}

void rp_chain_classify(const char *call, size_t len, const char *method, size_t mlen,
                       struct rp_chain_call *out)
{
    memset(out, 0, sizeof *out);
    const struct chain_method *m = chain_method_find(method, mlen);
    if (!m)
        return;
    out->kind = m->kind;
    if (m->head)
        out->need = RP_CHAIN_HEAD;
    if (m->tag_param == -1 && m->kind != RP_CHAIN_FILTER_USE)
        return;
    jsmn_parser p;
    jsmntok_t t[CHAIN_TOKENS];
    jsmn_init(&p);
    int n = jsmn_parse(&p, call, len, t, CHAIN_TOKENS);
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return;
    int params = tok_member(call, t, n, 0, "params");
    if (params >= 0 && t[params].type != JSMN_ARRAY)
        params = -1;
    if (m->kind == RP_CHAIN_FILTER_USE) {
        int id = params >= 0 ? tok_elem(t, n, params, 0) : -1;
        if (id >= 0 && t[id].type == JSMN_STRING) {
            out->arg_start = (uint32_t)t[id].start;
            out->arg_len = (uint32_t)(t[id].end - t[id].start);
        }
        return;
    }
    if (m->tag_param == -2) {
        out->need =
            chain_logs(call, t, n, params >= 0 ? tok_elem(t, n, params, 0) : -1, &out->block);
        return;
    }
    int tag = params >= 0 ? tok_elem(t, n, params, m->tag_param) : -1;
    out->need = chain_tag(call, t, n, tag, &out->block);
}

/* The result token of a response object BODY; -1. */
static int chain_result(const char *body, const jsmntok_t *t, int n)
{
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return -1;
    return tok_member(body, t, n, 0, "result");
}

uint64_t rp_chain_answer_block(const char *method, size_t mlen, const char *body, size_t len)
{
    int is_number = mlen == 15 && memcmp(method, "eth_blockNumber", 15) == 0;
    int is_block = (mlen == 20 && memcmp(method, "eth_getBlockByNumber", 20) == 0) ||
                   (mlen == 18 && memcmp(method, "eth_getBlockByHash", 18) == 0);
    if (!is_number && !is_block)
        return 0;
    jsmn_parser p;
    jsmntok_t t[CHAIN_TOKENS];
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, t, CHAIN_TOKENS);
    if (n == JSMN_ERROR_NOMEM)
        n = CHAIN_TOKENS; /* a long block: its number comes early */
    int r = chain_result(body, t, n);
    if (r < 0)
        return 0;
    if (is_block) {
        if (t[r].type != JSMN_OBJECT)
            return 0;
        r = tok_member(body, t, n, r, "number");
        if (r < 0)
            return 0;
    }
    uint64_t v = 0;
    if (t[r].type != JSMN_STRING ||
        rp_jsonrpc_parse_quantity(body + t[r].start, (size_t)(t[r].end - t[r].start), &v) != 0)
        return 0;
    return v;
}

int rp_chain_answer_is_null(const char *body, size_t len)
{
    jsmn_parser p;
    jsmntok_t t[64];
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, t, 64);
    int r = chain_result(body, t, n);
    return r >= 0 && t[r].type == JSMN_PRIMITIVE && t[r].end - t[r].start == 4 &&
           memcmp(body + t[r].start, "null", 4) == 0;
}

static int chain_is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

/* BODY with [start, end) replaced by REPL[0, RLEN): a new malloc'd copy. */
static char *chain_splice(const char *body, size_t len, size_t start, size_t end, const char *repl,
                          size_t rlen, size_t *out_len)
{
    size_t n = len - (end - start) + rlen;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    memcpy(out, body, start);
    memcpy(out + start, repl, rlen);
    memcpy(out + start + rlen, body + end, len - end);
    out[n] = '\0';
    *out_len = n;
    return out;
}

static const char chain_hexdig[] = "0123456789abcdef";

char *rp_chain_filter_wrap_answer(const char *body, size_t len, uint32_t tag, size_t *out_len)
{
    jsmn_parser p;
    jsmntok_t t[64];
    jsmn_init(&p);
    int n = jsmn_parse(&p, body, len, t, 64);
    int r = chain_result(body, t, n);
    if (r < 0 || t[r].type != JSMN_STRING)
        return NULL;
    const char *id = body + t[r].start;
    size_t idn = (size_t)(t[r].end - t[r].start);
    if (idn < 3 || id[0] != '0' || (id[1] != 'x' && id[1] != 'X') || !chain_is_hex(id + 2, idn - 2))
        return NULL;
    /* "0x" + tag + the endpoint's own digits */
    char repl[2 + RP_CHAIN_TAG_HEX];
    repl[0] = '0';
    repl[1] = 'x';
    for (int i = 0; i < RP_CHAIN_TAG_HEX; i++)
        repl[2 + i] = chain_hexdig[(tag >> (4 * (RP_CHAIN_TAG_HEX - 1 - i))) & 0xf];
    return chain_splice(body, len, (size_t)t[r].start, (size_t)t[r].start + 2, repl, sizeof repl,
                        out_len);
}

char *rp_chain_filter_unwrap_call(const char *call, size_t len, const struct rp_chain_call *c,
                                  uint32_t *tag, size_t *out_len)
{
    size_t s = c->arg_start, n = c->arg_len;
    if (c->kind != RP_CHAIN_FILTER_USE || n < 3 + RP_CHAIN_TAG_HEX || s + n > len)
        return NULL;
    const char *id = call + s;
    if (id[0] != '0' || (id[1] != 'x' && id[1] != 'X') || !chain_is_hex(id + 2, n - 2))
        return NULL;
    uint32_t v = 0;
    for (int i = 0; i < RP_CHAIN_TAG_HEX; i++) {
        char ch = id[2 + i];
        uint32_t d = ch <= '9' ? (uint32_t)(ch - '0') : (uint32_t)((ch | 0x20) - 'a' + 10);
        v = (v << 4) | d;
    }
    *tag = v;
    /* drop the tag: "0x" + the endpoint's own digits */
    return chain_splice(call, len, s + 2, s + 2 + RP_CHAIN_TAG_HEX, "", 0, out_len);
}
