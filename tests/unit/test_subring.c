/* test_subring.c - the subscriptions ring in shm: events in order with
 * their payloads (wrapping the arena), not-yet-published and overwritten
 * events told apart, subscription cells summed against max_total, a
 * writer killed in the middle of a publish, and a reader racing a writer in
 * another process. */
#include "rp_sub_ring.h"
#include "rp_test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static struct rp_shm_subs *ring_new(void)
{
    void *p = mmap(NULL, sizeof(struct rp_shm_subs), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(p != MAP_FAILED);
    return p;
}

static void ring_free(struct rp_shm_subs *s)
{
    munmap(s, sizeof *s);
}

static const uint8_t Z[32];

static void test_order_and_payload(void)
{
    struct rp_shm_subs *s = ring_new();
    struct rp_buf pl = RP_BUF_INIT;
    struct rp_sub_event ev;
    CU_ASSERT_EQUAL(rp_sub_read(s, 0, &ev, &pl), RP_SUB_READ_NOT_YET);
    char text[64];
    for (int i = 0; i < 10; i++) {
        int n = snprintf(text, sizeof text, "{\"number\":%d}", i);
        uint8_t h[32] = {(uint8_t)i};
        CU_ASSERT_EQUAL(rp_sub_publish(s, RP_SUB_EV_HEAD, (uint64_t)i, h, Z, 5, text, (size_t)n),
                        (uint64_t)i);
    }
    CU_ASSERT_EQUAL(rp_sub_next_seq(s), 10);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL_FATAL(rp_sub_read(s, (uint64_t)i, &ev, &pl), RP_SUB_READ_OK);
        snprintf(text, sizeof text, "{\"number\":%d}", i);
        CU_ASSERT_STRING_EQUAL(rp_buf_cstr(&pl), text);
        CU_ASSERT_EQUAL(ev.number, (uint64_t)i);
        CU_ASSERT_EQUAL(ev.hash[0], i);
        CU_ASSERT_EQUAL(ev.kind, RP_SUB_EV_HEAD);
    }
    CU_ASSERT_EQUAL(rp_sub_read(s, 10, &ev, &pl), RP_SUB_READ_NOT_YET);
    /* too large for the arena's bound: refused, nothing published */
    CU_ASSERT_EQUAL(rp_sub_publish(s, RP_SUB_EV_LOGS, 1, Z, Z, 0, "", RP_SUB_ARENA_BYTES / 2),
                    UINT64_MAX);
    CU_ASSERT_EQUAL(rp_sub_next_seq(s), 10);
    rp_buf_free(&pl);
    ring_free(s);
}

static void test_overwrite_and_wrap(void)
{
    struct rp_shm_subs *s = ring_new();
    struct rp_buf pl = RP_BUF_INIT;
    struct rp_sub_event ev;
    /* payloads of 1 MiB wrap the 16 MiB arena: an old one is lost once
     * later bytes cover it, even while its ring entry is still there */
    size_t big = 1u << 20;
    char *data = malloc(big);
    CU_ASSERT_FATAL(data != NULL);
    for (int i = 0; i < 40; i++) {
        memset(data, 'a' + i % 26, big);
        rp_sub_publish(s, RP_SUB_EV_LOGS, (uint64_t)i, Z, Z, 0, data, big - (size_t)i);
    }
    CU_ASSERT_EQUAL(rp_sub_read(s, 0, &ev, &pl), RP_SUB_READ_LOST);
    CU_ASSERT_EQUAL(rp_sub_read(s, 20, &ev, &pl), RP_SUB_READ_LOST);
    CU_ASSERT_EQUAL_FATAL(rp_sub_read(s, 39, &ev, &pl), RP_SUB_READ_OK);
    CU_ASSERT_EQUAL(pl.len, big - 39);
    CU_ASSERT_EQUAL(pl.data[0], 'a' + 39 % 26);
    CU_ASSERT_EQUAL(pl.data[pl.len - 1], 'a' + 39 % 26);
    /* the payload that straddles the arena's end reads back whole */
    CU_ASSERT_EQUAL_FATAL(rp_sub_read(s, 30, &ev, &pl), RP_SUB_READ_OK);
    for (size_t k = 0; k < pl.len; k++)
        if (pl.data[k] != 'a' + 30 % 26) {
            CU_FAIL("payload torn across the arena's end");
            break;
        }
    /* the entries themselves wrap: more events than entries */
    for (unsigned i = 0; i < RP_SUB_RING_ENTRIES + 5; i++)
        rp_sub_publish(s, RP_SUB_EV_HEAD, i, Z, Z, 0, "x", 1);
    uint64_t next = rp_sub_next_seq(s);
    CU_ASSERT_EQUAL(rp_sub_read(s, next - RP_SUB_RING_ENTRIES - 1, &ev, &pl), RP_SUB_READ_LOST);
    CU_ASSERT_EQUAL(rp_sub_read(s, next - RP_SUB_RING_ENTRIES, &ev, &pl), RP_SUB_READ_OK);
    free(data);
    rp_buf_free(&pl);
    ring_free(s);
}

static void test_writer_killed_mid_publish(void)
{
    struct rp_shm_subs *s = ring_new();
    struct rp_buf pl = RP_BUF_INIT;
    struct rp_sub_event ev;
    rp_sub_publish(s, RP_SUB_EV_HEAD, 1, Z, Z, 0, "one", 3);
    /* what a death after "seq 0" and the arena claim leaves: the entry is
     * not the event's yet, next_seq not raised */
    struct rp_shm_sub_entry *e = &s->ring[1];
    atomic_store(&e->seq, 0);
    atomic_fetch_add(&s->arena_end, 100);
    CU_ASSERT_EQUAL(rp_sub_read(s, 1, &ev, &pl), RP_SUB_READ_NOT_YET);
    /* the next writer publishes event 1 there, whole */
    CU_ASSERT_EQUAL(rp_sub_publish(s, RP_SUB_EV_HEAD, 2, Z, Z, 0, "two", 3), 1);
    CU_ASSERT_EQUAL_FATAL(rp_sub_read(s, 1, &ev, &pl), RP_SUB_READ_OK);
    CU_ASSERT_STRING_EQUAL(rp_buf_cstr(&pl), "two");
    CU_ASSERT_EQUAL_FATAL(rp_sub_read(s, 0, &ev, &pl), RP_SUB_READ_OK);
    CU_ASSERT_STRING_EQUAL(rp_buf_cstr(&pl), "one");
    rp_buf_free(&pl);
    ring_free(s);
}

static void test_cells_and_admission(void)
{
    struct rp_shm_subs *s = ring_new();
    CU_ASSERT_TRUE(rp_sub_admit(s, 0, 0, 3));
    CU_ASSERT_TRUE(rp_sub_admit(s, 5, 1, 3));
    CU_ASSERT_TRUE(rp_sub_admit(s, 5, 0, 3));
    CU_ASSERT_FALSE(rp_sub_admit(s, 7, 1, 3)); /* max_total */
    CU_ASSERT_EQUAL(rp_sub_count(s, 0), 3);
    CU_ASSERT_EQUAL(rp_sub_count(s, 1), 1);
    rp_sub_release(s, 0, 0);
    rp_sub_release(s, 0, 0); /* never below zero */
    CU_ASSERT_EQUAL(rp_sub_count(s, 0), 2);
    rp_sub_repair_slot(s, 5); /* a dead worker's cells */
    CU_ASSERT_EQUAL(rp_sub_count(s, 0), 0);
    struct rp_subs_snapshot snap;
    rp_sub_publish(s, RP_SUB_EV_HEAD, 9, Z, Z, 0, "h", 1);
    atomic_store(&s->follower_head, 9);
    atomic_store(&s->follower_seen, 12);
    rp_sub_snapshot(s, 100, &snap);
    CU_ASSERT_EQUAL(snap.events, 1);
    CU_ASSERT_EQUAL(snap.lag, 3);
    ring_free(s);
}

/* A reader in this process against a writer in a child: every event read
 * OK carries the payload its number says, in order; lost ones are told. */
static void test_concurrent_reader(void)
{
    struct rp_shm_subs *s = ring_new();
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char *buf = malloc(300000);
        for (uint64_t i = 0; i < 20000; i++) {
            size_t len = 1 + (size_t)(i * 7919 % 299000);
            memset(buf, (int)('A' + i % 50), len);
            rp_sub_publish(s, RP_SUB_EV_LOGS, i, Z, Z, 0, buf, len);
        }
        _exit(0);
    }
    struct rp_buf pl = RP_BUF_INIT;
    struct rp_sub_event ev;
    uint64_t cursor = 0, ok = 0, lost = 0, bad = 0;
    while (cursor < 20000) {
        enum rp_sub_read_result r = rp_sub_read(s, cursor, &ev, &pl);
        if (r == RP_SUB_READ_NOT_YET)
            continue;
        if (r == RP_SUB_READ_LOST) {
            lost++;
            cursor++;
            continue;
        }
        size_t len = 1 + (size_t)(cursor * 7919 % 299000);
        if (ev.number != cursor || pl.len != len || pl.data[0] != (char)('A' + cursor % 50) ||
            pl.data[len - 1] != (char)('A' + cursor % 50))
            bad++;
        ok++;
        cursor++;
    }
    int st;
    waitpid(pid, &st, 0);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(ok + lost, 20000);
    CU_ASSERT_TRUE(ok > 0);
    rp_buf_free(&pl);
    ring_free(s);
}

/* The pushed head's two words as a follower leaves them when it dies after
 * any one of its stores (rp_sub_abi.h: since moves only while the deadline
 * has lapsed, the deadline is stored after it, and cleared first): a reader
 * trusts the feed only inside a deadline, and never since a time the feed
 * was not live from. */
static void test_head_feed_words_at_every_death(void)
{
    struct rp_shm_subs *s = ring_new();
    const uint64_t dead = RP_HEAD_FEED_DEAD_MS;
    /* nothing published: not live */
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 5000), 0);
    /* first live at 1000: since stored, death before the deadline */
    atomic_store(&s->head_feed_since_ms, 1000);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 1000), 0);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 9000), 0);
    /* the deadline stored: live since 1000, and it lapses by itself */
    atomic_store(&s->head_feed_until_ms, 1000 + dead);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 1000), 1000);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 1000 + dead - 1), 1000);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 1000 + dead), 0);
    /* extended (a frame heard at 2000): still since 1000 */
    atomic_store(&s->head_feed_until_ms, 2000 + dead);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 1000 + dead), 1000);
    /* lapsed, live again at 9000: since moved, death before the deadline:
     * the old deadline has lapsed, nothing is trusted */
    atomic_store(&s->head_feed_since_ms, 9000);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 9000), 0);
    atomic_store(&s->head_feed_until_ms, 9000 + dead);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 9001), 9000); /* never the old 1000 */
    /* cleared: the deadline first; a death between the two stores */
    atomic_store(&s->head_feed_until_ms, 0);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 9001), 0);
    atomic_store(&s->head_feed_since_ms, 0);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 9001), 0);
    /* a since ahead of the reader's clock (a reader a moment behind) is
     * not a time the feed was live from */
    atomic_store(&s->head_feed_since_ms, 20000);
    atomic_store(&s->head_feed_until_ms, 20000 + dead);
    CU_ASSERT_EQUAL(rp_head_feed_live_since(s, 19999), 0);
    ring_free(s);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"events in order with their payloads", test_order_and_payload},
        {"overwritten events and payloads are told, wrapping reads whole", test_overwrite_and_wrap},
        {"a writer killed mid-publish leaves the event unpublished",
         test_writer_killed_mid_publish},
        {"subscription cells: admission, release, repair", test_cells_and_admission},
        {"a reader racing a writer process never takes a torn event", test_concurrent_reader},
        {"the pushed head's words after a death at every store",
         test_head_feed_words_at_every_death},
        {NULL, NULL},
    };
    return rp_test_run("subring", cases);
}
