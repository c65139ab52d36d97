/* rp_proc.h - facts about other processes. */
#ifndef RP_PROC_H
#define RP_PROC_H

#include <stdint.h>

/* 1 when process PID exists and is not a zombie (see proc.c). */
int rp_pid_alive(int64_t pid);

/* 1 when PID is alive and is the process born at BIRTH_REALTIME_NS (its
 * start time is not later): a pid reused by a newer process is not alive
 * for this purpose. Falls back to rp_pid_alive() when start times are
 * unknown. */
int rp_pid_alive_since(int64_t pid, uint64_t birth_realtime_ns);

#endif
