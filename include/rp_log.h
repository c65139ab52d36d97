/* rp_log.h - logfmt lines on stderr, one per event:
 *   ts=2026-11-27T10:00:00.123Z level=info pid=123 role=worker msg="..." key=value
 * Callers pass extra key=value pairs as a printf format; values that may hold
 * spaces or quotes go through rp_log_quote() first.
 */
#ifndef RP_LOG_H
#define RP_LOG_H

#include <stddef.h>

#include "rp_config.h"

/* Set the role shown on every line ("supervisor", "worker", "prober") and the
 * lowest level printed. */
void rp_log_init(const char *role, enum rp_log_level level);
void rp_log_set_level(enum rp_log_level level);

/* Print one line if LEVEL is enabled. MSG is quoted; FMT (may be NULL)
 * appends further key=value pairs. */
void rp_log(enum rp_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quote S as a logfmt value into OUT ("..." with \" and \\ escaped, control
 * bytes dropped). Returns OUT. */
const char *rp_log_quote(char *out, size_t outlen, const char *s);

#define rp_debug(...) rp_log(RP_LOG_DEBUG, __VA_ARGS__)
#define rp_info(...)  rp_log(RP_LOG_INFO, __VA_ARGS__)
#define rp_warn(...)  rp_log(RP_LOG_WARN, __VA_ARGS__)
#define rp_error(...) rp_log(RP_LOG_ERROR, __VA_ARGS__)

#endif
