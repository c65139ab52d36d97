/* fuzz_subjson.c - libFuzzer target for the JSON of subscriptions
 * (src/proto/subjson.c): what the follower makes of an endpoint's answers
 * (a block's header, a block's logs as records) and what a worker makes of
 * a client's eth_subscribe / eth_unsubscribe parameters and log filters.
 *
 * Input: any bytes, given to every parser (answers that are not strict
 * JSON, UTF-8 included, are refused: their text would reach clients).
 * Invariants:
 *  - a header that rp_subjson_block() accepts is one line of valid JSON, an
 *    object, and parsing the answer again gives the same block;
 *  - the records rp_subjson_logs() writes read back whole with
 *    rp_log_rec_next() (one per log, then the end), and each record's JSON
 *    with ,"removed":true} appended is a valid object on one line;
 *  - a filter parsed from a subscribe call matches without reading past its
 *    arrays (ASan), for logs read back from the same input.
 */
#include "rp_frame.h"
#include "rp_subjson.h"

#include "rp_fuzz.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t HASH[32];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct rp_block_info bi, bi2;
    struct rp_buf h = RP_BUF_INIT;
    if (rp_subjson_block(in, size, &bi, &h) == 0) {
        CHECK(h.len >= 2 && h.data[0] == '{' && h.data[h.len - 1] == '}');
        CHECK(memchr(h.data, '\n', h.len) == NULL && memchr(h.data, '\r', h.len) == NULL);
        CHECK(rp_frame_validate(h.data, h.len) == 0);
        CHECK(rp_subjson_block(in, size, &bi2, NULL) == 0);
        CHECK(bi.number == bi2.number && memcmp(bi.hash, bi2.hash, 32) == 0);
    }
    rp_buf_free(&h);

    struct rp_buf recs = RP_BUF_INIT;
    uint8_t hash[32];
    memcpy(hash, HASH, 32);
    int n = rp_subjson_logs(in, size, hash, &recs);
    if (n < 0 && size > 64) { /* logs of the block named at the input's end */
        rp_buf_reset(&recs);
        memcpy(hash, data + size - 32, 32);
        n = rp_subjson_logs(in, size - 32, hash, &recs);
    }
    struct rp_log_filter f;
    const char *err;
    enum rp_sub_type type;
    int have_filter = rp_subjson_subscribe(in, size, &type, &f, &err) == 0;
    if (n >= 0) {
        size_t off = 0;
        int k = 0;
        struct rp_log_rec r;
        int got;
        while ((got = rp_log_rec_next(recs.data, recs.len, &off, &r)) == 1) {
            k++;
            CHECK(r.ntopics <= RP_LOG_MAX_TOPICS);
            struct rp_buf o = RP_BUF_INIT;
            rp_buf_append(&o, r.json, r.json_len);
            rp_buf_append(&o, ",\"removed\":true}", 16);
            CHECK(memchr(o.data, '\n', o.len) == NULL);
            CHECK(rp_frame_validate(o.data, o.len) == 0);
            rp_buf_free(&o);
            if (have_filter)
                (void)rp_log_filter_match(&f, r.addr, r.ntopics, r.topics);
        }
        CHECK(got == 0 && k == n && off == recs.len);
    }
    if (have_filter)
        rp_log_filter_free(&f);
    rp_buf_free(&recs);

    char id[80];
    (void)rp_subjson_unsubscribe(in, size, id, sizeof id);
    uint64_t q;
    (void)rp_subjson_quantity(in, size, &q);
    return 0;
}
