/* rp_shm.h - creating, mapping and addressing the shared-memory segment
 * (layout in rp_shm_abi.h). The supervisor creates it; workers and the prober
 * inherit the mapping across fork(). */
#ifndef RP_SHM_H
#define RP_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rp_shm_abi.h"

struct rp_shm {
    struct rp_shm_header *hdr; /* the mapping, read-write */
    size_t size;
    char name[256];
};

/* Create NAME (unlinking a stale segment whose supervisor is gone), size and
 * initialise it, publish the magic last. MODE is 0600 or 0640; GID (or -1) its
 * group; CACHE_BYTES of cache region (rp_cache.h) go last (0: none; the
 * caller lays the region out). Returns 0, or -1 with ERR set (a live
 * supervisor owns it: EEXIST). */
int rp_shm_create(struct rp_shm *s, const char *name, const char *pool_name, mode_t mode, gid_t gid,
                  size_t cache_bytes, char *err, size_t errlen);

/* Unmap, and unlink the name (supervisor at exit). */
void rp_shm_destroy(struct rp_shm *s, int unlink_name);

static inline struct rp_shm_endpoint *rp_shm_ep(struct rp_shm_header *h, unsigned i)
{
    return (struct rp_shm_endpoint *)((char *)h + h->endpoints.offset +
                                      (size_t)i * h->endpoints.stride);
}

static inline struct rp_shm_worker *rp_shm_worker(struct rp_shm_header *h, unsigned i)
{
    return (struct rp_shm_worker *)((char *)h + h->workers.offset + (size_t)i * h->workers.stride);
}

static inline struct rp_shm_epstats *rp_shm_stats(struct rp_shm_header *h, unsigned worker,
                                                  unsigned ep)
{
    return (struct rp_shm_epstats *)((char *)h + h->stats.offset +
                                     ((size_t)worker * RP_SHM_MAX_ENDPOINTS + ep) *
                                         h->stats.stride);
}

/* Milliseconds / nanoseconds since the segment's clock base (CLOCK_MONOTONIC). */
uint64_t rp_shm_now_ms(const struct rp_shm_header *h);
uint64_t rp_shm_now_ns(const struct rp_shm_header *h);

/* The live row of the endpoint whose URL is URL (matched by url_key, the
 * way the supervisor publishes them); else its tombstoned row, which a
 * process started for a generation that a reload replaced before the
 * process got here still owns (rp_publish.h: not reused while it lives);
 * else NULL. */
struct rp_shm_endpoint *rp_shm_find_endpoint(struct rp_shm_header *h, const char *url);

/* FNV-1a 64 of a string: the endpoint's stable key across reloads. */
uint64_t rp_shm_url_key(const char *url);

#endif
