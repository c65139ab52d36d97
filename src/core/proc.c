/* proc.c - facts about other processes. */
#include "rp_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* 1 when process PID exists (kill(pid, 0) succeeds or is refused with
 * EPERM) and is not a zombie: a supervisor killed under a parent that does
 * not reap it (a container without an init) is dead all the same. kill()
 * with 0 or a negative pid would address process groups: only a real pid
 * counts. */
int rp_pid_alive(int64_t pid)
{
    if (pid <= 0 || pid > INT32_MAX)
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return 0;
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1; /* no /proc: kill() is all we know */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "pid (comm) S ...": the state follows the last ')' */
    const char *rp = strrchr(buf, ')');
    if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
        return 0;
    return 1;
}

/* CLOCK_REALTIME ns at which process PID started: its start time in clock
 * ticks after boot (/proc/PID/stat field 22) plus the boot time (/proc/stat
 * btime). 0 when unknown. */
static uint64_t proc_start_realtime_ns(int64_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    /* fields after the comm: state is field 3, starttime field 22 */
    unsigned long long ticks = 0;
    int field = 2;
    for (const char *q = p + 1; *q && field < 22; q++)
        if (*q == ' ' && ++field == 22)
            ticks = strtoull(q + 1, NULL, 10);
    if (field != 22)
        return 0;
    f = fopen("/proc/stat", "re");
    if (!f)
        return 0;
    unsigned long long btime = 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || hz <= 0)
        return 0;
    return (uint64_t)btime * 1000000000ull + (uint64_t)ticks * (1000000000ull / (uint64_t)hz);
}

/* The tolerance of the start-time comparison: btime is whole seconds and
 * the clock may have been stepped a little since. */
#define PROC_BIRTH_SLACK_NS 2000000000ull

int rp_pid_alive_since(int64_t pid, uint64_t birth_realtime_ns)
{
    if (!rp_pid_alive(pid))
        return 0;
    uint64_t start = proc_start_realtime_ns(pid);
    if (!start || !birth_realtime_ns)
        return 1; /* cannot tell: the pid is all we know */
    /* a process that started after the recorded birth is another process
     * that was given the dead one's pid */
    return start <= birth_realtime_ns + PROC_BIRTH_SLACK_NS;
}
