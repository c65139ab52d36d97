/* rp_clock.h - the clocks rpcpool uses. All shared-state times are
 * CLOCK_MONOTONIC (the same clock in every process on the host). */
#ifndef RP_CLOCK_H
#define RP_CLOCK_H

#include <stdint.h>

uint64_t rp_clock_mono_ns(void);     /* CLOCK_MONOTONIC in ns */
uint64_t rp_clock_mono_ms(void);     /* CLOCK_MONOTONIC in ms */
uint64_t rp_clock_realtime_ns(void); /* CLOCK_REALTIME in ns */

#endif
