/* rp_testshm.h - a segment with the daemon's real layout (header, endpoint,
 * worker and stats tables) in an anonymous MAP_SHARED mapping, for tests that
 * fork processes over it (stress, crash injection). */
#ifndef RP_TESTSHM_H
#define RP_TESTSHM_H

#include <string.h>
#include <sys/mman.h>

#include "rp_clock.h"
#include "rp_shm.h"

/* A zeroed segment laid out like rp_shm_create() does, slots [0, NSLOTS)
 * summed by readers. NULL on failure. */
static inline struct rp_shm_header *rp_testshm_create(unsigned nslots)
{
    void *p =
        mmap(NULL, RP_SHM_TOTAL_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    struct rp_shm_header *h = p;
    rp_shm_layout_init(h);
    atomic_store(&h->clock_base_ns, rp_clock_mono_ns());
    atomic_store(&h->slots_hwm, nslots);
    atomic_store(&h->magic, RP_SHM_MAGIC);
    return h;
}

static inline void rp_testshm_destroy(struct rp_shm_header *h)
{
    munmap(h, RP_SHM_TOTAL_BYTES);
}

#endif
