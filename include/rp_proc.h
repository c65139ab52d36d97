/* rp_proc.h - facts about other processes. */
#ifndef RP_PROC_H
#define RP_PROC_H

#include <stdint.h>

/* 1 when process PID exists and is not a zombie (see proc.c). */
int rp_pid_alive(int64_t pid);

#endif
