/* fuzz_wsframe.c - libFuzzer target for the head feed's WebSocket framing
 * (src/proto/wsframe.c) and what it reads from a message (a newHeads
 * notification, src/proto/subjson.c).
 *
 * Input: any bytes, read as a stream of server frames (as the feed reads
 * them), then as a 101 answer, then as one message.
 * Invariants:
 *  - rp_ws_decode() never claims more bytes than given, never a payload
 *    over its bound, never an invalid control frame (ASan: no read past
 *    the input);
 *  - a frame decoded, encoded again unmasked, decodes to the same frame;
 *  - an assembled message never exceeds its bound.
 */
#include "rp_subjson.h"
#include "rp_wsframe.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PAYLOAD 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    uint8_t *re = malloc(size + RP_WS_MAX_HEADER_BYTES);
    if (!buf || !re) {
        free(buf);
        free(re);
        return 0;
    }
    if (size)
        memcpy(buf, data, size);
    struct rp_ws_msg m = {RP_BUF_INIT, 0};
    size_t off = 0;
    while (off < size) {
        struct rp_ws_frame f;
        long k = rp_ws_decode(buf + off, size - off, FUZZ_MAX_PAYLOAD, &f);
        if (k <= 0)
            break;
        CHECK((size_t)k <= size - off);
        CHECK(f.payload_len <= FUZZ_MAX_PAYLOAD);
        CHECK(f.payload >= buf + off && f.payload + f.payload_len == buf + off + k);
        CHECK(!(f.opcode & 0x8) || (f.fin && f.payload_len <= 125));
        size_t n = rp_ws_encode(re, size + RP_WS_MAX_HEADER_BYTES, f.fin, f.opcode, NULL, f.payload,
                                f.payload_len);
        CHECK(n > 0);
        struct rp_ws_frame g;
        CHECK(rp_ws_decode(re, n, FUZZ_MAX_PAYLOAD, &g) == (long)n);
        CHECK(g.fin == f.fin && g.opcode == f.opcode && g.payload_len == f.payload_len);
        CHECK(f.payload_len == 0 || memcmp(g.payload, f.payload, f.payload_len) == 0);
        off += (size_t)k;
        if (!(f.opcode & 0x8)) {
            int r = rp_ws_msg_feed(&m, &f, 2 * FUZZ_MAX_PAYLOAD);
            CHECK(m.data.len <= 2 * FUZZ_MAX_PAYLOAD);
            if (r == 1) {
                struct rp_block_info bi;
                rp_subjson_new_head(m.data.data, m.data.len, &bi);
                rp_ws_msg_reset(&m);
            } else if (r < 0) {
                rp_ws_msg_reset(&m);
            }
        }
    }
    rp_ws_msg_free(&m);
    const char *why = NULL;
    rp_ws_check_upgrade((const char *)data, size, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &why);
    struct rp_block_info bi;
    rp_subjson_new_head((const char *)data, size, &bi);
    free(buf);
    free(re);
    return 0;
}
