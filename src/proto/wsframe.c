/* wsframe.c - RFC 6455 framing for a client (rp_wsframe.h). */
#include "rp_wsframe.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

size_t rp_ws_encode(uint8_t *out, size_t cap, int fin, int opcode, const uint8_t mask[4],
                    const void *payload, size_t len)
{
    if ((opcode & 0x8) && (!fin || len > 125))
        return 0;
    size_t h = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (cap < 2)
        return 0;
    if (len <= 125) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        if (cap < 4)
            return 0;
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        h = 4;
    } else {
        if (cap < 10)
            return 0;
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    if (mask) {
        if (cap < h + 4)
            return 0;
        out[1] |= 0x80;
        memcpy(out + h, mask, 4);
        h += 4;
    }
    if (cap < h || cap - h < len)
        return 0;
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[h + i] = mask ? (uint8_t)(p[i] ^ mask[i & 3]) : p[i];
    return h + len;
}

long rp_ws_decode(uint8_t *buf, size_t len, size_t max_payload, struct rp_ws_frame *f)
{
    if (len < 2)
        return 0;
    if (buf[0] & 0x70)
        return -1; /* RSV1-3: no extension was negotiated */
    int opcode = buf[0] & 0x0f;
    int fin = (buf[0] & 0x80) != 0;
    if (!(opcode <= RP_WS_BINARY || (opcode >= RP_WS_CLOSE && opcode <= RP_WS_PONG)))
        return -1;
    int masked = (buf[1] & 0x80) != 0;
    uint64_t plen = buf[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        if (plen < 126)
            return -1;
        h = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
        if (plen >> 63 || plen <= 0xffff)
            return -1;
        h = 10;
    }
    if ((opcode & 0x8) && (!fin || plen > 125))
        return -1;
    if (plen > max_payload)
        return -1;
    const uint8_t *mask = NULL;
    if (masked) {
        if (len < h + 4)
            return 0;
        mask = buf + h;
        h += 4;
    }
    if (len - h < plen)
        return 0;
    uint8_t *p = buf + h;
    if (mask)
        for (size_t i = 0; i < plen; i++)
            p[i] ^= mask[i & 3];
    f->fin = fin;
    f->opcode = opcode;
    f->masked = masked;
    f->payload = p;
    f->payload_len = (size_t)plen;
    return (long)(h + plen);
}

int rp_ws_msg_feed(struct rp_ws_msg *m, const struct rp_ws_frame *f, size_t max_bytes)
{
    if (f->opcode == RP_WS_CONT) {
        if (!m->opcode)
            return -1;
    } else {
        if (m->opcode)
            return -1;
        m->opcode = f->opcode;
        rp_buf_reset(&m->data);
    }
    if (f->payload_len > max_bytes || m->data.len > max_bytes - f->payload_len)
        return -1;
    if (f->payload_len && rp_buf_append(&m->data, (const char *)f->payload, f->payload_len) != 0)
        return -1;
    return f->fin ? 1 : 0;
}

void rp_ws_msg_reset(struct rp_ws_msg *m)
{
    m->opcode = 0;
    rp_buf_reset(&m->data);
}

void rp_ws_msg_free(struct rp_ws_msg *m)
{
    m->opcode = 0;
    rp_buf_free(&m->data);
}

int rp_ws_accept(const char *key, char out[RP_WS_ACCEPT_LEN + 1])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    int ok = mc && EVP_DigestInit_ex(mc, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(mc, key, strlen(key)) &&
             EVP_DigestUpdate(mc, guid, sizeof guid - 1) && EVP_DigestFinal_ex(mc, md, &mdlen) &&
             mdlen == SHA_DIGEST_LENGTH;
    EVP_MD_CTX_free(mc);
    if (!ok)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH) == RP_WS_ACCEPT_LEN ? 0
                                                                                            : -1;
}

void rp_ws_key(const uint8_t nonce[16], char out[25])
{
    EVP_EncodeBlock((unsigned char *)out, nonce, 16);
}

/* Does header value V[0, N) hold TOKEN as one of its comma-separated
 * tokens (case-insensitive)? */
static int ws_has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return 1;
    }
    return 0;
}

int rp_ws_check_upgrade(const char *resp, size_t len, const char *accept, const char **why)
{
    const char *end = resp + len;
    const char *eol = memchr(resp, '\n', len);
    if (!eol || len < 12 || strncmp(resp, "HTTP/1.1 ", 9) != 0) {
        *why = "not an HTTP/1.1 answer";
        return -1;
    }
    if (strncmp(resp + 9, "101", 3) != 0) {
        *why = "the server did not switch protocols (status not 101)";
        return -1;
    }
    int upgrade = 0, connection = 0, accepted = 0;
    for (const char *l = eol + 1; l < end;) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        const char *le = nl ? nl : end;
        if (le > l && le[-1] == '\r')
            le--;
        const char *colon = memchr(l, ':', (size_t)(le - l));
        if (colon) {
            size_t kl = (size_t)(colon - l);
            const char *v = colon + 1;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            size_t vl = (size_t)(le - v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (kl == 7 && strncasecmp(l, "Upgrade", 7) == 0)
                upgrade |= ws_has_token(v, vl, "websocket");
            else if (kl == 10 && strncasecmp(l, "Connection", 10) == 0)
                connection |= ws_has_token(v, vl, "upgrade");
            else if (kl == 20 && strncasecmp(l, "Sec-WebSocket-Accept", 20) == 0)
                accepted = vl == strlen(accept) && memcmp(v, accept, vl) == 0;
        }
        if (!nl)
            break;
        l = nl + 1;
    }
    *why = !upgrade      ? "no Upgrade: websocket header"
           : !connection ? "no Connection: upgrade header"
           : !accepted   ? "wrong or missing Sec-WebSocket-Accept"
                         : NULL;
    return *why ? -1 : 0;
}
