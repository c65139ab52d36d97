/* test_cache.c - the shared response cache and in-flight table
 * (src/shm/cache.c) in one process, then under multi-process stress with
 * SIGKILLs at random instants: writer processes store entries and run
 * flights, reader processes check every hit byte for byte against the value
 * its key must have, the parent kills writers and readers at random
 * instants and starts new ones. A reader never returns a torn entry, and
 * afterwards every slot and every flight can be taken again (a dead
 * writer's lock and a dead leader's flight are reclaimed).
 *
 * Bounded by RP_CACHE_STRESS_SECONDS (default 4) and RP_CACHE_STRESS_KILLS
 * (default 3000). Prints "CACHE kills=N hits=H violations=V". */
#include "rp_cache.h"
#include "rp_cachekey.h"
#include "rp_test.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REGION_BYTES ((size_t)1 << 20)
#define NKEYS        3000

static struct rp_shm_cache *region(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(p != MAP_FAILED);
    rp_cache_region_init(p, bytes, 1);
    return p;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Key and value of key number U: the value's length spans three classes. */
static size_t key_of(unsigned u, char *k)
{
    return (size_t)sprintf(k, "eth_getBlockByNumber\n[\"0x%x\",false]", u);
}

static size_t value_of(unsigned u, char *v)
{
    size_t len = 8 + (size_t)((u * 2654435761u) % 3000);
    uint64_t x = rp_cachekey_hash(&u, sizeof u, 42);
    for (size_t i = 0; i < len; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = (char)('a' + (x >> 59));
    }
    return len;
}

static uint64_t put_u(struct rp_shm_cache *c, unsigned u, pid_t pid)
{
    char k[64], v[4096];
    size_t kl = key_of(u, k), vl = value_of(u, v);
    struct rp_cache_meta m = {.kind = RP_CENT_STATIC, .id_off = 3, .shown = u};
    return rp_cache_put(c, k, kl, rp_cachekey_hash(k, kl, 0), v, vl, &m, 1, pid, now_ms());
}

/* 1 hit and right, 0 miss, -1 a wrong value. */
static int get_u(struct rp_shm_cache *c, unsigned u, struct rp_buf *out)
{
    char k[64], v[4096];
    size_t kl = key_of(u, k), vl = value_of(u, v);
    struct rp_cache_meta m;
    if (!rp_cache_get(c, k, kl, rp_cachekey_hash(k, kl, 0), out, &m))
        return 0;
    if (out->len != vl || memcmp(out->data, v, vl) != 0 || m.shown != u || m.id_off != 3 ||
        m.kind != RP_CENT_STATIC)
        return -1;
    return 1;
}

static void test_put_get(void)
{
    struct rp_shm_cache *c = region(REGION_BYTES);
    struct rp_buf out = RP_BUF_INIT;
    CU_ASSERT_EQUAL(get_u(c, 1, &out), 0);
    CU_ASSERT(put_u(c, 1, getpid()) != 0);
    CU_ASSERT_EQUAL(get_u(c, 1, &out), 1);
    CU_ASSERT_EQUAL(get_u(c, 2, &out), 0);
    /* far more than fits: bounded, the recent ones mostly there, every hit right */
    int hits = 0;
    for (unsigned u = 0; u < NKEYS; u++)
        put_u(c, u, getpid());
    for (unsigned u = NKEYS - 50; u < NKEYS; u++)
        hits += get_u(c, u, &out) == 1;
    for (unsigned u = 0; u < NKEYS; u++)
        CU_ASSERT(get_u(c, u, &out) >= 0);
    CU_ASSERT(hits > 25);
    struct rp_shm_header h = {0};
    (void)h;
    /* too large for any class: not kept */
    static char big[2 << 20];
    struct rp_cache_meta m = {.kind = RP_CENT_STATIC};
    CU_ASSERT_EQUAL(rp_cache_put(c, "k", 1, rp_cachekey_hash("k", 1, 0), big, sizeof big, &m, 1,
                                 getpid(), now_ms()),
                    0);
    /* a flight-only entry: found by its reference, not by its key */
    struct rp_cache_meta fm = {.kind = RP_CENT_HEAD, .origin = 77};
    uint64_t ref =
        rp_cache_put(c, "fk", 2, rp_cachekey_hash("fk", 2, 0), "value", 5, &fm, 0, getpid(), 1);
    CU_ASSERT(ref != 0);
    CU_ASSERT_EQUAL(rp_cache_get(c, "fk", 2, rp_cachekey_hash("fk", 2, 0), &out, &m), 0);
    CU_ASSERT_EQUAL(rp_cache_get_ref(c, ref, "fk", 2, 77, &out, &m), 1);
    CU_ASSERT(out.len == 5 && memcmp(out.data, "value", 5) == 0);
    CU_ASSERT_EQUAL(rp_cache_get_ref(c, ref, "fk", 2, 78, &out, &m), 0); /* another flight's */
    CU_ASSERT_EQUAL(rp_cache_get_ref(c, ref, "fx", 2, 77, &out, &m), 0); /* another key */
    rp_buf_free(&out);
    munmap(c, REGION_BYTES);
}

/* The slot holding key U (by its reference). */
static struct rp_cache_slot *slot_of_ref(struct rp_shm_cache *c, uint64_t ref)
{
    ref--;
    unsigned k = (unsigned)(ref >> 28);
    return (struct rp_cache_slot *)((char *)c + c->cls[k].offset +
                                    (ref & 0x0fffffff) * c->cls[k].slot_bytes);
}

static void test_torn_and_dead_writer(void)
{
    struct rp_shm_cache *c = region(REGION_BYTES);
    struct rp_buf out = RP_BUF_INIT;
    uint64_t ref = put_u(c, 5, getpid());
    CU_ASSERT_FATAL(ref != 0);
    struct rp_cache_slot *s = slot_of_ref(c, ref);
    /* a byte changed behind the seqlock (a stalled writer's late copy): a miss */
    char *data = (char *)(s + 1);
    data[s->key_len + 1] ^= 1;
    CU_ASSERT_EQUAL(get_u(c, 5, &out), 0);
    data[s->key_len + 1] ^= 1;
    CU_ASSERT_EQUAL(get_u(c, 5, &out), 1);
    /* a writer killed inside: the sequence stays odd, the lock names a dead
     * pid; readers miss, and a later writer takes the slot back */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    atomic_store(&s->seq, atomic_load(&s->seq) + 1);
    atomic_store(&s->lock, (uint64_t)(uint32_t)dead << 32 | (uint32_t)now_ms());
    CU_ASSERT_EQUAL(get_u(c, 5, &out), 0);
    unsigned k = (unsigned)((ref - 1) >> 28);
    int reclaimed = 0;
    for (unsigned i = 0; i < 4 * c->cls[k].slots && !reclaimed; i++) {
        uint64_t r2 = put_u(c, 100 + i, getpid());
        reclaimed = r2 == ref;
    }
    CU_ASSERT(reclaimed);
    CU_ASSERT_EQUAL(atomic_load(&s->seq) & 1, 0);
    CU_ASSERT_EQUAL(atomic_load(&s->lock), 0);
    /* a live writer's fresh lock is left alone */
    atomic_store(&s->lock, (uint64_t)(uint32_t)getpid() << 32 | (uint32_t)now_ms());
    for (unsigned i = 0; i < 4 * c->cls[k].slots; i++)
        CU_ASSERT(put_u(c, 10000 + i, getpid()) != ref);
    rp_buf_free(&out);
    munmap(c, REGION_BYTES);
}

/* Block hashes seen at a number: another hash there is a reorg. */
static void test_block_ring(void)
{
    struct rp_shm_cache *c = region(REGION_BYTES);
    CU_ASSERT_EQUAL(rp_cache_note_block(c, 100, 0xaaaa), 0);
    CU_ASSERT_EQUAL(rp_cache_note_block(c, 100, 0xaaaa), 0); /* the same again */
    CU_ASSERT_EQUAL(rp_cache_note_block(c, 101, 0xbbbb), 0);
    CU_ASSERT_EQUAL(rp_cache_note_block(c, 100, 0xcccc), 1); /* another hash at 100 */
    CU_ASSERT_EQUAL(rp_cache_note_block(c, 100 + RP_CACHE_RING, 0xdddd), 0); /* another number */
    CU_ASSERT_EQUAL(rp_cache_note_block(c, 5, 0), 0);                        /* no hash */
    uint64_t e = atomic_load(&c->epoch), f = atomic_load(&c->final_epoch);
    rp_cache_invalidate(c, 0);
    CU_ASSERT_EQUAL(atomic_load(&c->epoch), e + 1);
    CU_ASSERT_EQUAL(atomic_load(&c->final_epoch), f);
    rp_cache_invalidate(c, 1);
    CU_ASSERT_EQUAL(atomic_load(&c->epoch), e + 2);
    CU_ASSERT_EQUAL(atomic_load(&c->final_epoch), f + 1);
    munmap(c, REGION_BYTES);
}

static void test_flights(void)
{
    struct rp_shm_cache *c = region(REGION_BYTES);
    struct rp_flight_ticket lead, fol, other;
    uint64_t w[2], ref = 0;
    pid_t me = getpid();
    CU_ASSERT_EQUAL(rp_flight_join(c, 1234, me, 10, 5000, &lead), RP_FLIGHT_LEADER);
    CU_ASSERT_EQUAL(rp_flight_join(c, 1234, me, 11, 5000, &fol), RP_FLIGHT_FOLLOWER);
    CU_ASSERT_EQUAL(fol.idx, lead.idx);
    CU_ASSERT_EQUAL(rp_flight_join(c, 99999, me, 11, 5000, &other), RP_FLIGHT_LEADER);
    CU_ASSERT_EQUAL(rp_flight_has_waiters(c, &lead), 0);
    CU_ASSERT_EQUAL(rp_flight_register(c, &fol, 3), 0);
    CU_ASSERT_EQUAL(rp_flight_register(c, &fol, 70), 0);
    CU_ASSERT_EQUAL(rp_flight_has_waiters(c, &lead), 1);
    CU_ASSERT_EQUAL(rp_flight_poll(c, &fol, 1, 0, &ref), RP_FLIGHT_RUNNING);
    struct rp_cache_meta m = {.kind = RP_CENT_FLIGHT, .origin = lead.word};
    uint64_t r = rp_cache_put(c, "key", 3, rp_cachekey_hash("key", 3, 0), "v", 1, &m, 0, me, 10);
    rp_flight_finish(c, &lead, r, w);
    CU_ASSERT_EQUAL(w[0], 1ull << 3);
    CU_ASSERT_EQUAL(w[1], 1ull << 6);
    CU_ASSERT_EQUAL(rp_flight_poll(c, &fol, 0, 0, &ref), RP_FLIGHT_DONE);
    CU_ASSERT_EQUAL(ref, r);
    struct rp_buf out = RP_BUF_INIT;
    CU_ASSERT_EQUAL(rp_cache_get_ref(c, ref, "key", 3, fol.word, &out, &m), 1);
    /* a late follower registering after the end learns it at once */
    CU_ASSERT_EQUAL(rp_flight_register(c, &fol, 3), 1);
    /* the next call of the same key leads a new flight */
    struct rp_flight_ticket again;
    CU_ASSERT_EQUAL(rp_flight_join(c, 1234, me, 12, 5000, &again), RP_FLIGHT_LEADER);
    CU_ASSERT(again.word != lead.word);
    /* a failed flight: its followers learn it */
    CU_ASSERT_EQUAL(rp_flight_join(c, 1234, me, 12, 5000, &fol), RP_FLIGHT_FOLLOWER);
    rp_flight_finish(c, &again, 0, w);
    CU_ASSERT_EQUAL(rp_flight_poll(c, &fol, 0, 0, &ref), RP_FLIGHT_FAILED);
    /* a leader that died: its followers see it, the next call takes over */
    pid_t child = fork();
    if (child == 0) {
        struct rp_flight_ticket t;
        _exit(rp_flight_join(c, 555, getpid(), 20, 5000, &t) == RP_FLIGHT_LEADER ? 0 : 1);
    }
    int st;
    waitpid(child, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct rp_flight_ticket f2, t2;
    CU_ASSERT_EQUAL(rp_flight_join(c, 555, me, 21, 5000, &t2), RP_FLIGHT_LEADER);
    rp_flight_finish(c, &t2, 0, w);
    /* a leader alive but older than the stale time: taken over too */
    CU_ASSERT_EQUAL(rp_flight_join(c, 777, me, 100, 5000, &t2), RP_FLIGHT_LEADER);
    CU_ASSERT_EQUAL(rp_flight_join(c, 777, me, 200, 5000, &f2), RP_FLIGHT_FOLLOWER);
    CU_ASSERT_EQUAL(rp_flight_join(c, 777, me, 6000, 5000, &f2), RP_FLIGHT_LEADER);
    CU_ASSERT_EQUAL(rp_flight_poll(c, &t2, 0, 0, &ref), RP_FLIGHT_FAILED); /* the old leader's */
    rp_flight_finish(c, &t2, 0, w); /* its late end changes nothing */
    CU_ASSERT_EQUAL(rp_flight_poll(c, &f2, 0, 0, &ref), RP_FLIGHT_RUNNING);
    rp_buf_free(&out);
    munmap(c, REGION_BYTES);
}

/* ---- multi-process stress with SIGKILLs ---- */

struct stress_shared {
    _Atomic uint64_t hits, misses, violations, puts, flights;
};

static unsigned rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(*s >> 33);
}

static void writer_loop(struct rp_shm_cache *c, struct stress_shared *sh, uint64_t seed)
{
    pid_t me = getpid();
    for (;;) {
        unsigned u = rnd(&seed) % NKEYS;
        if (put_u(c, u, me))
            atomic_fetch_add(&sh->puts, 1);
        /* a flight: lead or follow, end it (or be killed in between) */
        struct rp_flight_ticket t;
        uint64_t w[2];
        enum rp_flight_role role = rp_flight_join(c, rnd(&seed) % 64, me, now_ms(), 60000, &t);
        if (role == RP_FLIGHT_LEADER) {
            rp_flight_register(c, &t, 1);
            rp_flight_finish(c, &t, (rnd(&seed) & 1) ? put_u(c, u, me) : 0, w);
            atomic_fetch_add(&sh->flights, 1);
        } else if (role == RP_FLIGHT_FOLLOWER) {
            rp_flight_register(c, &t, 2);
        }
    }
}

static void reader_loop(struct rp_shm_cache *c, struct stress_shared *sh, uint64_t seed)
{
    struct rp_buf out = RP_BUF_INIT;
    for (;;) {
        int r = get_u(c, rnd(&seed) % NKEYS, &out);
        if (r < 0)
            atomic_fetch_add(&sh->violations, 1);
        else if (r > 0)
            atomic_fetch_add(&sh->hits, 1);
        else
            atomic_fetch_add(&sh->misses, 1);
    }
}

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

static pid_t spawn(struct rp_shm_cache *c, struct stress_shared *sh, int writer, uint64_t seed)
{
    pid_t p = fork();
    if (p == 0) {
        if (writer)
            writer_loop(c, sh, seed);
        else
            reader_loop(c, sh, seed);
        _exit(0);
    }
    return p;
}

static void test_stress_kills(void)
{
    struct rp_shm_cache *c = region(REGION_BYTES);
    struct stress_shared *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    enum { NW = 3, NR = 2 };
    pid_t pids[NW + NR];
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    for (int i = 0; i < NW + NR; i++)
        pids[i] = spawn(c, sh, i < NW, seed + (uint64_t)i * 7919);
    long secs = env_long("RP_CACHE_STRESS_SECONDS", 4),
         max_kills = env_long("RP_CACHE_STRESS_KILLS", 3000);
    uint64_t until = now_ms() + (uint64_t)secs * 1000;
    long kills = 0;
    while (now_ms() < until && kills < max_kills) {
        struct timespec d = {0, (long)(rnd(&seed) % 2000) * 1000};
        nanosleep(&d, NULL);
        int i = (int)(rnd(&seed) % (NW + NR));
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0); /* reaped: its pid reads dead from now on */
        kills++;
        pids[i] = spawn(c, sh, i < NW, seed + (uint64_t)kills * 104729);
    }
    for (int i = 0; i < NW + NR; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    uint64_t hits = atomic_load(&sh->hits), viol = atomic_load(&sh->violations);
    printf("\nCACHE kills=%ld hits=%" PRIu64 " misses=%" PRIu64 " puts=%" PRIu64 " flights=%" PRIu64
           " violations=%" PRIu64 "\n",
           kills, hits, atomic_load(&sh->misses), atomic_load(&sh->puts), atomic_load(&sh->flights),
           viol);
    CU_ASSERT_EQUAL(viol, 0);
    CU_ASSERT(hits > 0);
    /* afterwards: every slot can be written again (dead writers' locks
     * reclaimed), every entry read back is right */
    struct rp_buf out = RP_BUF_INIT;
    for (unsigned k = 0; k < RP_CACHE_NCLASS; k++) {
        struct rp_cache_class *cl = &c->cls[k];
        for (uint32_t i = 0; i < cl->slots; i++) {
            struct rp_cache_slot *s =
                (struct rp_cache_slot *)((char *)c + cl->offset + (size_t)i * cl->slot_bytes);
            uint64_t l = atomic_load(&s->lock);
            if (l) /* only a dead process can hold one now */
                CU_ASSERT(kill((pid_t)(l >> 32), 0) != 0);
        }
    }
    /* each slot a writer was killed in (odd, or locked): the next writer
     * that comes to it takes it back */
    unsigned stuck = 0, reclaimed = 0;
    static char val[RP_CACHE_SLOT_MIN << (2 * (RP_CACHE_NCLASS - 1))];
    memset(val, 'r', sizeof val);
    for (unsigned k = 0; k < RP_CACHE_NCLASS; k++) {
        struct rp_cache_class *cl = &c->cls[k];
        for (uint32_t i = 0; i < cl->slots; i++) {
            struct rp_cache_slot *s =
                (struct rp_cache_slot *)((char *)c + cl->offset + (size_t)i * cl->slot_bytes);
            if (!(atomic_load(&s->seq) & 1) && !atomic_load(&s->lock))
                continue;
            stuck++;
            char key[32];
            size_t kl = (size_t)sprintf(key, "reclaim %u %u", k, i);
            struct rp_cache_meta m = {.kind = RP_CENT_STATIC};
            atomic_store(&cl->hand, i);
            atomic_store(&s->ref, 0);
            uint64_t ref =
                rp_cache_put(c, key, kl, rp_cachekey_hash(key, kl, 0), val,
                             cl->slot_bytes - RP_CACHE_SLOT_HDR - kl, &m, 1, getpid(), now_ms());
            reclaimed += ref == ((uint64_t)k << 28 | i) + 1 && !(atomic_load(&s->seq) & 1) &&
                         !atomic_load(&s->lock);
        }
    }
    printf("CACHE slots left by killed writers: %u, reclaimed: %u\n", stuck, reclaimed);
    CU_ASSERT_EQUAL(reclaimed, stuck);
    for (unsigned u = 0; u < NKEYS; u++)
        CU_ASSERT(get_u(c, u, &out) >= 0);
    /* every flight can be led again: dead leaders are taken over */
    unsigned led = 0;
    for (unsigned f = 0; f < 64; f++) {
        struct rp_flight_ticket t;
        uint64_t w[2];
        /* (2 s on: a leader killed between its claim and its name is
         * given up after FLIGHT_NAME_GRACE_MS) */
        if (rp_flight_join(c, f, getpid(), now_ms() + 2000, 60000, &t) == RP_FLIGHT_LEADER) {
            led++;
            rp_flight_finish(c, &t, 0, w);
        }
    }
    CU_ASSERT_EQUAL(led, 64);
    rp_buf_free(&out);
    munmap(sh, sizeof *sh);
    munmap(c, REGION_BYTES);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"put and get, bounded, by reference", test_put_get},
        {"torn entries and a dead writer's slot", test_torn_and_dead_writer},
        {"block hashes and epochs", test_block_ring},
        {"flights: lead, follow, fail, dead and stale leaders", test_flights},
        {"stress: writers and readers SIGKILLed at random", test_stress_kills},
        {NULL, NULL},
    };
    return rp_test_run("cache", cases);
}
