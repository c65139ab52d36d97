/* proc.c - facts about other processes. */
#include "rp_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

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
