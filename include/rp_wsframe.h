/* rp_wsframe.h - RFC 6455 WebSocket framing for a client, pure functions
 * (no I/O, no shared state): encoding masked frames, decoding and
 * bounding frames, assembling fragmented messages, the handshake's
 * Sec-WebSocket-Key / Sec-WebSocket-Accept and the check of the server's
 * 101 answer. The connection that uses them is src/follower/headfeed.c. */
#ifndef RP_WSFRAME_H
#define RP_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

#include "rp_buf.h"

#define RP_WS_MAX_FRAME_BYTES   (1u << 20) /* payload of one frame, at most */
#define RP_WS_MAX_MESSAGE_BYTES (1u << 20) /* one assembled message, at most */
#define RP_WS_MAX_HEADER_BYTES  14         /* 2 + 8 (length) + 4 (mask) */
#define RP_WS_ACCEPT_LEN        28         /* base64 of a SHA-1 */

enum rp_ws_opcode {
    RP_WS_CONT = 0x0,
    RP_WS_TEXT = 0x1,
    RP_WS_BINARY = 0x2,
    RP_WS_CLOSE = 0x8,
    RP_WS_PING = 0x9,
    RP_WS_PONG = 0xa,
};

/* One decoded frame; PAYLOAD points into the buffer given to
 * rp_ws_decode() (unmasked in place when the frame was masked). */
struct rp_ws_frame {
    int fin;
    int opcode;
    int masked;
    const uint8_t *payload;
    size_t payload_len;
};

/* A message being assembled from a data frame and its continuations. */
struct rp_ws_msg {
    struct rp_buf data; /* the payload so far */
    int opcode;         /* RP_WS_TEXT or RP_WS_BINARY; 0 when none is open */
};

/* Encode one frame (FIN as given, opcode OPCODE, masked with MASK when it
 * is not NULL, as a client must) of PAYLOAD[0, LEN) into OUT (at most CAP
 * bytes; LEN + RP_WS_MAX_HEADER_BYTES always suffices). Returns the bytes
 * written, or 0 when CAP is too small or a control frame is invalid
 * (fragmented, or more than 125 bytes). */
size_t rp_ws_encode(uint8_t *out, size_t cap, int fin, int opcode, const uint8_t mask[4],
                    const void *payload, size_t len);

/* Decode the frame at the start of BUF[0, LEN): fill F and return the
 * bytes it takes; 0 when more bytes are needed; -1 when it is malformed
 * (reserved bits, unknown opcode, a control frame fragmented or longer
 * than 125 bytes, a 64-bit length with the top bit set, a length not in
 * its shortest form) or its payload is longer than MAX_PAYLOAD. A masked
 * payload is unmasked in place. */
long rp_ws_decode(uint8_t *buf, size_t len, size_t max_payload, struct rp_ws_frame *f);

/* Feed data frame F (text, binary or continuation) to M. Returns 1 when M
 * now holds a whole message (its data; call rp_ws_msg_reset() after use),
 * 0 when more frames follow, -1 on a protocol error (a continuation with
 * no message open, a new message inside a fragmented one, more than
 * MAX_BYTES in all, no memory). */
int rp_ws_msg_feed(struct rp_ws_msg *m, const struct rp_ws_frame *f, size_t max_bytes);
void rp_ws_msg_reset(struct rp_ws_msg *m);
void rp_ws_msg_free(struct rp_ws_msg *m);

/* The Sec-WebSocket-Accept value for KEY (SHA-1 of KEY and the RFC 6455
 * GUID, base64) into OUT (RP_WS_ACCEPT_LEN + 1 bytes). Returns 0, or -1. */
int rp_ws_accept(const char *key, char out[RP_WS_ACCEPT_LEN + 1]);

/* A Sec-WebSocket-Key from 16 bytes NONCE, base64 into OUT (25 bytes). */
void rp_ws_key(const uint8_t nonce[16], char out[25]);

/* Check the server's answer to the upgrade request, its head RESP[0, LEN)
 * up to and including the blank line: status 101, Upgrade: websocket,
 * Connection: upgrade, Sec-WebSocket-Accept equal to ACCEPT. Returns 0, or
 * -1 with *WHY a short reason. */
int rp_ws_check_upgrade(const char *resp, size_t len, const char *accept, const char **why);

#endif
