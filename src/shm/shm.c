/* shm.c - creating and initialising the shared-memory segment. */
#include "rp_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rp_clock.h"
#include "rp_proc.h"
#include "rp_siphash.h"

#include <sys/random.h>

/* The URL key's secret: drawn once per supervisor (before the first fork,
 * so every child computes the same keys) and never written to the segment. */
static uint8_t shm_url_secret[16];
static int shm_url_secret_set;

/* Draw the secret if this process has none yet: getrandom(), or, where
 * that fails, the clock and pid mixed through SipHash (still never in shm). */
static void shm_url_secret_init(void)
{
    if (shm_url_secret_set)
        return;
    if (getrandom(shm_url_secret, sizeof shm_url_secret, 0) != (ssize_t)sizeof shm_url_secret) {
        uint64_t seed[2] = {rp_clock_mono_ns() ^ rp_clock_realtime_ns(), (uint64_t)getpid()};
        uint64_t a = rp_siphash24(shm_url_secret, seed, sizeof seed);
        seed[0] ^= a;
        uint64_t b = rp_siphash24(shm_url_secret, seed, sizeof seed);
        memcpy(shm_url_secret, &a, 8);
        memcpy(shm_url_secret + 8, &b, 8);
    }
    shm_url_secret_set = 1;
}

uint64_t rp_shm_url_key(const char *url)
{
    shm_url_secret_init();
    uint64_t k = rp_siphash24(shm_url_secret, url, strlen(url));
    return k ? k : 1; /* 0 means "row never used" */
}

uint64_t rp_shm_now_ns(const struct rp_shm_header *h)
{
    uint64_t base = atomic_load_explicit(&h->clock_base_ns, memory_order_relaxed);
    uint64_t now = rp_clock_mono_ns();
    return now > base ? now - base : 0;
}

uint64_t rp_shm_now_ms(const struct rp_shm_header *h)
{
    return rp_shm_now_ns(h) / 1000000ull;
}

/* A segment already at NAME is stale unless the supervisor it names is still
 * alive. Returns 1 when a live supervisor owns it. */
static int shm_owner_alive(const char *name)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return 0;
    struct stat st;
    int alive = 0;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(struct rp_shm_header)) {
        struct rp_shm_header *h =
            mmap(NULL, sizeof(struct rp_shm_header), PROT_READ, MAP_SHARED, fd, 0);
        if (h != MAP_FAILED) {
            if (atomic_load_explicit(&h->magic, memory_order_acquire) == RP_SHM_MAGIC) {
                int64_t pid = atomic_load_explicit(&h->supervisor_pid, memory_order_relaxed);
                uint64_t birth =
                    atomic_load_explicit(&h->supervisor_birth_ns, memory_order_relaxed);
                if (pid != getpid() && rp_pid_alive_since(pid, birth))
                    alive = 1;
            }
            munmap(h, sizeof(struct rp_shm_header));
        }
    }
    close(fd);
    return alive;
}

/* Create the segment: refuse a live owner, unlink a stale one, size it at
 * its largest, fill the header and publish the magic last (release). */
int rp_shm_create(struct rp_shm *s, const char *name, const char *pool_name, mode_t mode, gid_t gid,
                  size_t cache_bytes, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    if (shm_owner_alive(name)) {
        snprintf(err, errlen, "shm segment %s belongs to a running supervisor", name);
        errno = EEXIST;
        return -1;
    }
    shm_unlink(name);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        snprintf(err, errlen, "shm_open %s: %s", name, strerror(errno));
        return -1;
    }
    fchmod(fd, mode); /* the umask must not widen or narrow it */
    if (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) != 0) {
        snprintf(err, errlen, "shm %s: chown to group %d: %s", name, (int)gid, strerror(errno));
        close(fd);
        shm_unlink(name);
        return -1;
    }
    size_t size = RP_SHM_TOTAL_BYTES + cache_bytes; /* the cache region is last */
    if (ftruncate(fd, (off_t)size) != 0) {
        snprintf(err, errlen, "shm %s: ftruncate %zu: %s", name, size, strerror(errno));
        close(fd);
        shm_unlink(name);
        return -1;
    }
    /* the pages now, not at the first write: a /dev/shm too small for the
     * segment (the cache region is most of it) is an error at start, never
     * a SIGBUS in a worker later */
    int fe = posix_fallocate(fd, 0, (off_t)size);
    if (fe != 0 && fe != EOPNOTSUPP && fe != EINVAL) {
        snprintf(err, errlen,
                 "shm %s: cannot reserve %zu bytes: %s (is /dev/shm smaller than the segment? "
                 "cache.max_bytes is most of it)",
                 name, size, strerror(fe));
        close(fd);
        shm_unlink(name);
        return -1;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "shm %s: mmap: %s", name, strerror(errno));
        shm_unlink(name);
        return -1;
    }
    struct rp_shm_header *h = p;
    rp_shm_layout_init(h);
    if (cache_bytes) {
        h->total_size = size;
        /* 128-byte rows: the region may pass 4 GiB */
        h->cache = (struct rp_shm_table){RP_SHM_CACHE_OFFSET, (uint32_t)(cache_bytes / 128), 128};
    }
    snprintf(h->name, sizeof h->name, "%s", pool_name);
    atomic_store_explicit(&h->clock_base_ns, rp_clock_mono_ns(), memory_order_relaxed);
    atomic_store_explicit(&h->supervisor_pid, getpid(), memory_order_relaxed);
    atomic_store_explicit(&h->supervisor_birth_ns, rp_clock_realtime_ns(), memory_order_relaxed);
    atomic_store_explicit(&h->generation, 1, memory_order_relaxed);
    for (unsigned i = 0; i < RP_SHM_MAX_ENDPOINTS; i++)
        rp_shm_ep(h, i)->id = i;
    atomic_store_explicit(&h->magic, RP_SHM_MAGIC, memory_order_release);
    s->hdr = h;
    s->size = size;
    return 0;
}

void rp_shm_destroy(struct rp_shm *s, int unlink_name)
{
    if (s->hdr)
        munmap(s->hdr, s->size);
    s->hdr = NULL;
    if (unlink_name && s->name[0])
        shm_unlink(s->name);
}

struct rp_shm_endpoint *rp_shm_find_endpoint(struct rp_shm_header *h, const char *url)
{
    uint64_t key = rp_shm_url_key(url);
    struct rp_shm_endpoint *retired = NULL;
    for (unsigned s = 0; s < RP_SHM_MAX_ENDPOINTS; s++) {
        struct rp_shm_endpoint *e = rp_shm_ep(h, s);
        if (e->url_key != key)
            continue;
        if (atomic_load_explicit(&e->in_use, memory_order_acquire))
            return e;
        if (e->retired_gen && !retired)
            retired = e;
    }
    /* A process started for a generation that a reload replaced before it
     * got here: its endpoint's row is already tombstoned, but stays as it
     * is while this process lives (rp_publish.h), so it may use it. */
    return retired;
}
