/* log.c - logfmt lines on stderr (see rp_log.h). One write(2) per line so
 * lines from several processes sharing stderr never interleave. */
#include "rp_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_role = "main";
static enum rp_log_level log_level = RP_LOG_INFO;

void rp_log_init(const char *role, enum rp_log_level level)
{
    log_role = role;
    log_level = level;
}

void rp_log_set_level(enum rp_log_level level)
{
    log_level = level;
}

const char *rp_log_quote(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    if (outlen < 3) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (; s && *s && o + 3 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            continue;
        if (c == '"' || c == '\\')
            out[o++] = '\\';
        out[o++] = (char)c;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Format one line: timestamp, level, pid, role, quoted msg, then the
 * caller's pairs; write it whole. Over-long lines are cut, never split. */
void rp_log(enum rp_log_level level, const char *msg, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log_level)
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char qmsg[512];
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s pid=%d role=%s msg=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), names[level], (int)getpid(), log_role,
                     rp_log_quote(qmsg, sizeof qmsg, msg));
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && len + 2 < sizeof line) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
    }
    if (len >= sizeof line - 1)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
