/* clock.c - monotonic and wall clocks. */
#include "rp_clock.h"

#include <time.h>

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t rp_clock_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t rp_clock_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000ull;
}

uint64_t rp_clock_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}
