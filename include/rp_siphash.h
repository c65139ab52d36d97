/* rp_siphash.h - SipHash-2-4, a keyed 64-bit PRF (Aumasson and Bernstein):
 * the shm row key of an endpoint URL, so a URL's secret parts cannot be
 * guessed offline from the segment. */
#ifndef RP_SIPHASH_H
#define RP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of LEN bytes at DATA under the 128-bit KEY. */
uint64_t rp_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
