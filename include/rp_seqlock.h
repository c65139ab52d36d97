/* rp_seqlock.h - a single-writer sequence lock on one 64-bit word in shared
 * memory: odd while the writer rewrites what it guards. Readers copy between
 * rp_seq_read_begin() and rp_seq_read_retry() and copy again while the latter
 * says 1. Header-only, so rpcpoolstat uses it without daemon code.
 *
 * A writer killed between rp_seq_write_begin() and rp_seq_write_end() leaves
 * the word odd: readers then never see its half-written data (they give up
 * and say so), and the next writer of that word (the restarted process)
 * finds it odd, keeps it odd while it writes, and makes it even again. */
#ifndef RP_SEQLOCK_H
#define RP_SEQLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static inline uint64_t rp_seq_read_begin(const _Atomic uint64_t *seq)
{
    return atomic_load_explicit((_Atomic uint64_t *)seq, memory_order_acquire);
}

/* 1 when the copy made since BEGIN may be torn (a write was under way). */
static inline int rp_seq_read_retry(const _Atomic uint64_t *seq, uint64_t begin)
{
    atomic_thread_fence(memory_order_acquire);
    return (begin & 1) ||
           atomic_load_explicit((_Atomic uint64_t *)seq, memory_order_relaxed) != begin;
}

/* The one writer starts rewriting: odd from here on (already odd when a
 * writer before it died in the middle). */
static inline void rp_seq_write_begin(_Atomic uint64_t *seq)
{
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    if (!(v & 1))
        atomic_store_explicit(seq, v + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

/* The writer is done: even again, publishing what it wrote (release). */
static inline void rp_seq_write_end(_Atomic uint64_t *seq)
{
    uint64_t v = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, (v | 1) + 1, memory_order_release);
}

/* Write the string S into DST[CAP] under SEQ (the writer side of a shared
 * text such as an endpoint's last error). */
static inline void rp_seq_write_str(_Atomic uint64_t *seq, char *dst, size_t cap, const char *s)
{
    rp_seq_write_begin(seq);
    snprintf(dst, cap, "%s", s);
    rp_seq_write_end(seq);
}

#endif
