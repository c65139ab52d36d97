/* test_wsframe.c - RFC 6455 framing for the head feed (rp_wsframe.h):
 * masked encoding, the 125/126/65535/65536 length boundaries, decoding
 * (partial input, masking undone, oversize and malformed frames refused),
 * fragmented messages, control frames, Sec-WebSocket-Accept (the RFC's own
 * example) and the check of the 101 answer; and the newHeads notification
 * as the head feed reads it (rp_subjson.h). */
#include "rp_subjson.h"
#include "rp_test.h"
#include "rp_wsframe.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Encode LEN bytes (a pattern) masked, decode, compare. */
static void roundtrip(size_t len, size_t hdr_expected)
{
    uint8_t *p = malloc(len + 1);
    uint8_t *out = malloc(len + RP_WS_MAX_HEADER_BYTES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + 3);
    size_t n = rp_ws_encode(out, len + RP_WS_MAX_HEADER_BYTES, 1, RP_WS_TEXT, MASK, p, len);
    CU_ASSERT_EQUAL(n, hdr_expected + len);
    CU_ASSERT_EQUAL(out[0], 0x81);
    CU_ASSERT(out[1] & 0x80); /* masked */
    /* the payload on the wire is masked */
    if (len)
        CU_ASSERT_EQUAL(out[hdr_expected], (uint8_t)(p[0] ^ MASK[0]));
    /* every strict prefix asks for more */
    CU_ASSERT_EQUAL(rp_ws_decode(out, 1, RP_WS_MAX_FRAME_BYTES, &(struct rp_ws_frame){0}), 0);
    CU_ASSERT_EQUAL(rp_ws_decode(out, n - 1, RP_WS_MAX_FRAME_BYTES, &(struct rp_ws_frame){0}), 0);
    struct rp_ws_frame f;
    CU_ASSERT_EQUAL(rp_ws_decode(out, n, RP_WS_MAX_FRAME_BYTES, &f), (long)n);
    CU_ASSERT_EQUAL(f.fin, 1);
    CU_ASSERT_EQUAL(f.opcode, RP_WS_TEXT);
    CU_ASSERT_EQUAL(f.masked, 1);
    CU_ASSERT_EQUAL(f.payload_len, len);
    CU_ASSERT(len == 0 || memcmp(f.payload, p, len) == 0);
    free(p);
    free(out);
}

static void test_lengths(void)
{
    roundtrip(0, 6);
    roundtrip(125, 6);    /* the last 7-bit length */
    roundtrip(126, 8);    /* the first 16-bit one */
    roundtrip(65535, 8);  /* the last 16-bit one */
    roundtrip(65536, 14); /* the first 64-bit one */
}

static void test_unmasked_server_frame(void)
{
    uint8_t b[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}; /* RFC 6455 5.7 */
    struct rp_ws_frame f;
    CU_ASSERT_EQUAL(rp_ws_decode(b, sizeof b, 1024, &f), 7);
    CU_ASSERT_EQUAL(f.masked, 0);
    CU_ASSERT_EQUAL(f.payload_len, 5);
    CU_ASSERT_EQUAL(memcmp(f.payload, "hello", 5), 0);
    /* the RFC's masked "Hello" */
    uint8_t m[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CU_ASSERT_EQUAL(rp_ws_decode(m, sizeof m, 1024, &f), 11);
    CU_ASSERT_EQUAL(memcmp(f.payload, "Hello", 5), 0);
    uint8_t enc[16];
    CU_ASSERT_EQUAL(rp_ws_encode(enc, sizeof enc, 1, RP_WS_TEXT, MASK, "Hello", 5), 11);
    uint8_t want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CU_ASSERT_EQUAL(memcmp(enc, want, sizeof want), 0);
}

static void test_refused(void)
{
    struct rp_ws_frame f;
    /* over the bound */
    uint8_t big[10] = {0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 1}; /* 1 MiB + 1 */
    CU_ASSERT_EQUAL(rp_ws_decode(big, sizeof big, RP_WS_MAX_FRAME_BYTES, &f), -1);
    uint8_t top[10] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}; /* top bit set */
    CU_ASSERT_EQUAL(rp_ws_decode(top, sizeof top, (size_t)-1, &f), -1);
    /* lengths not in their shortest form */
    uint8_t l16[4] = {0x82, 126, 0, 125};
    CU_ASSERT_EQUAL(rp_ws_decode(l16, sizeof l16, 1024, &f), -1);
    uint8_t l64[10] = {0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    CU_ASSERT_EQUAL(rp_ws_decode(l64, sizeof l64, 1 << 20, &f), -1);
    /* reserved bits, unknown opcodes */
    uint8_t rsv[2] = {0xc1, 0};
    CU_ASSERT_EQUAL(rp_ws_decode(rsv, 2, 1024, &f), -1);
    uint8_t op3[2] = {0x83, 0};
    CU_ASSERT_EQUAL(rp_ws_decode(op3, 2, 1024, &f), -1);
    uint8_t opb[2] = {0x8b, 0};
    CU_ASSERT_EQUAL(rp_ws_decode(opb, 2, 1024, &f), -1);
    /* control frames: never fragmented, at most 125 bytes */
    uint8_t ping_frag[2] = {0x09, 0};
    CU_ASSERT_EQUAL(rp_ws_decode(ping_frag, 2, 1024, &f), -1);
    uint8_t ping_long[4] = {0x89, 126, 0, 126};
    CU_ASSERT_EQUAL(rp_ws_decode(ping_long, 4, 1024, &f), -1);
    uint8_t out[256];
    uint8_t p[126] = {0};
    CU_ASSERT_EQUAL(rp_ws_encode(out, sizeof out, 1, RP_WS_PING, MASK, p, 126), 0);
    CU_ASSERT_EQUAL(rp_ws_encode(out, sizeof out, 0, RP_WS_PING, MASK, p, 1), 0);
    /* too small an output */
    CU_ASSERT_EQUAL(rp_ws_encode(out, 10, 1, RP_WS_TEXT, MASK, p, 5), 0);
}

static void test_control_frames(void)
{
    uint8_t out[64];
    struct rp_ws_frame f;
    /* a close with code 1000 */
    uint8_t code[2] = {0x03, 0xe8};
    size_t n = rp_ws_encode(out, sizeof out, 1, RP_WS_CLOSE, MASK, code, 2);
    CU_ASSERT_EQUAL(n, 8);
    CU_ASSERT_EQUAL(out[0], 0x88);
    CU_ASSERT_EQUAL(rp_ws_decode(out, n, 1024, &f), 8);
    CU_ASSERT_EQUAL(f.opcode, RP_WS_CLOSE);
    CU_ASSERT_EQUAL(f.payload_len, 2);
    CU_ASSERT_EQUAL(f.payload[0], 0x03);
    CU_ASSERT_EQUAL(f.payload[1], 0xe8);
    /* a ping and a pong, back to back in one buffer */
    size_t a = rp_ws_encode(out, sizeof out, 1, RP_WS_PING, NULL, "x", 1);
    size_t b = rp_ws_encode(out + a, sizeof out - a, 1, RP_WS_PONG, NULL, "yz", 2);
    CU_ASSERT_EQUAL(a, 3);
    CU_ASSERT_EQUAL(b, 4);
    CU_ASSERT_EQUAL(rp_ws_decode(out, a + b, 1024, &f), 3);
    CU_ASSERT_EQUAL(f.opcode, RP_WS_PING);
    CU_ASSERT_EQUAL(rp_ws_decode(out + a, b, 1024, &f), 4);
    CU_ASSERT_EQUAL(f.opcode, RP_WS_PONG);
    CU_ASSERT_EQUAL(memcmp(f.payload, "yz", 2), 0);
}

static void test_fragmented(void)
{
    struct rp_ws_msg m = {RP_BUF_INIT, 0};
    struct rp_ws_frame f1 = {0, RP_WS_TEXT, 0, (const uint8_t *)"Hel", 3};
    struct rp_ws_frame f2 = {0, RP_WS_CONT, 0, (const uint8_t *)"lo ", 3};
    struct rp_ws_frame f3 = {1, RP_WS_CONT, 0, (const uint8_t *)"world", 5};
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f1, 1024), 0);
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f2, 1024), 0);
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f3, 1024), 1);
    CU_ASSERT_EQUAL(m.opcode, RP_WS_TEXT);
    CU_ASSERT_EQUAL(m.data.len, 11);
    CU_ASSERT_EQUAL(memcmp(m.data.data, "Hello world", 11), 0);
    rp_ws_msg_reset(&m);
    /* a continuation with no message open; a new message inside one */
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f2, 1024), -1);
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f1, 1024), 0);
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f1, 1024), -1);
    rp_ws_msg_reset(&m);
    /* the message bound spans frames */
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f1, 8), 0);
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f2, 8), 0);
    CU_ASSERT_EQUAL(rp_ws_msg_feed(&m, &f3, 8), -1);
    rp_ws_msg_free(&m);
    /* fragments as the wire carries them, interleaved with a ping */
    uint8_t wire[64];
    size_t n = rp_ws_encode(wire, sizeof wire, 0, RP_WS_TEXT, NULL, "ab", 2);
    n += rp_ws_encode(wire + n, sizeof wire - n, 1, RP_WS_PING, NULL, "", 0);
    n += rp_ws_encode(wire + n, sizeof wire - n, 1, RP_WS_CONT, NULL, "cd", 2);
    size_t off = 0;
    int whole = 0, pings = 0;
    while (off < n) {
        struct rp_ws_frame f;
        long k = rp_ws_decode(wire + off, n - off, 1024, &f);
        CU_ASSERT_FATAL(k > 0);
        off += (size_t)k;
        if (f.opcode == RP_WS_PING)
            pings++;
        else if (rp_ws_msg_feed(&m, &f, 1024) == 1)
            whole = m.data.len == 4 && memcmp(m.data.data, "abcd", 4) == 0;
    }
    CU_ASSERT_EQUAL(pings, 1);
    CU_ASSERT(whole);
    rp_ws_msg_free(&m);
}

static void test_accept(void)
{
    char out[RP_WS_ACCEPT_LEN + 1];
    /* RFC 6455 section 1.3 (and 4.2.2): this key, this answer */
    CU_ASSERT_EQUAL(rp_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    CU_ASSERT_STRING_EQUAL(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    uint8_t nonce[16] = "the sample nonce";
    char key[25];
    rp_ws_key(nonce, key);
    CU_ASSERT_STRING_EQUAL(key, "dGhlIHNhbXBsZSBub25jZQ==");
}

static void test_upgrade_answer(void)
{
    const char *why = NULL;
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: keep-alive, Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CU_ASSERT_EQUAL(rp_ws_check_upgrade(ok, strlen(ok), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &why), 0);
    CU_ASSERT_EQUAL(rp_ws_check_upgrade(ok, strlen(ok), "AAAALMBiTxaQ9kYGzzhZRbK+xOo=", &why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "Accept"));
    const char *no = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    CU_ASSERT_EQUAL(rp_ws_check_upgrade(no, strlen(no), "x", &why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "101"));
    const char *noup = "HTTP/1.1 101 OK\r\nConnection: upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CU_ASSERT_EQUAL(rp_ws_check_upgrade(noup, strlen(noup), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &why),
                    -1);
}

static void test_new_head(void)
{
    struct rp_block_info bi;
    const char *note =
        "{\"jsonrpc\":\"2.0\",\"method\":\"eth_subscription\",\"params\":{\"subscription\":"
        "\"0xabc\",\"result\":{\"number\":\"0x1b4\",\"hash\":\"0x"
        "1111111111111111111111111111111111111111111111111111111111111111\",\"parentHash\":\"0x"
        "2222222222222222222222222222222222222222222222222222222222222222\"}}}";
    CU_ASSERT_EQUAL(rp_subjson_new_head(note, strlen(note), &bi), 0);
    CU_ASSERT_EQUAL(bi.number, 0x1b4);
    CU_ASSERT_EQUAL(bi.hash[0], 0x11);
    CU_ASSERT_EQUAL(bi.parent[31], 0x22);
    const char *answer = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0xabc\"}";
    CU_ASSERT_EQUAL(rp_subjson_new_head(answer, strlen(answer), &bi), 1);
    const char *bad = "{\"jsonrpc\":\"2.0\",\"method\":\"eth_subscription\",\"params\":{}}";
    CU_ASSERT_EQUAL(rp_subjson_new_head(bad, strlen(bad), &bi), -1);
    CU_ASSERT_EQUAL(rp_subjson_new_head("[1", 2, &bi), -1);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"lengths 0/125/126/65535/65536, masked", test_lengths},
        {"server frames and the RFC examples", test_unmasked_server_frame},
        {"oversize and malformed frames refused", test_refused},
        {"close, ping, pong", test_control_frames},
        {"fragmented messages", test_fragmented},
        {"Sec-WebSocket-Accept (RFC 6455 example)", test_accept},
        {"the 101 answer", test_upgrade_answer},
        {"a newHeads notification", test_new_head},
        {NULL, NULL},
    };
    return rp_test_run("wsframe", cases);
}
