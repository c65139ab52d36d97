/* config.c - read, default and validate the configuration file (rp_config.h,
 * docs/interface.md section 2) with libconfig 1.5.
 *
 * The whole file is validated before anything is returned: the first problem
 * found is reported as "FILE:LINE: key: reason" and the half-built struct is
 * freed, so a bad file never reaches the daemon. Secrets (a URL's user info,
 * path and query, header values) are never copied into an error message.
 *
 * libconfig 1.5 parses a plain integer literal with atoi(), so 4294967297
 * silently becomes 1. To catch that, every file that libconfig read is
 * scanned once for integer literals that do not fit 32 bits and lack the L
 * suffix, and an integer setting whose line holds such a literal (with the
 * same truncated value) is rejected with a hint to add the suffix.
 */
#include "rp_config.h"

#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TIMEOUT_MAX_MS  86400000   /* one day */
#define REFILL_MAX_MS   8640000000 /* 100 days to refill a whole bucket */
#define SHM_NAME_MAX    255
#define USER_NAME_MAX   32
#define METHOD_NAME_MAX 128
#define SHOW_MAX        48 /* bytes of a (non-secret) value quoted in a message */

static const char SEND_RAW[] = "eth_sendRawTransaction";
static const char SEND_TX[] = "eth_sendTransaction";

/* One integer literal of a file that libconfig truncated to 32 bits. */
struct overflow_lit {
    int line;
    int32_t truncated;
    char text[32];
};

/* A line whose first token is ',', ')' or ']'. libconfig dates a scalar
 * list element by the token after it, so an element followed by such a
 * line really sits on PREV, the line where the token before ended. */
struct line_fix {
    int line, prev;
};

/* What one file's scan found; made on first use. */
struct file_scan {
    char *file;
    struct overflow_lit *lits;
    int lit_count, lit_cap;
    struct line_fix *fixes;
    int fix_count, fix_cap;
    struct file_scan *next;
};

struct ctx {
    const char *path;        /* the file given to rp_config_load */
    const char *include_dir; /* where relative @include names are found */
    char *err;
    size_t errlen;
    struct file_scan *scanned;
    char file_buf[PATH_MAX];
};

static struct file_scan *scanned_file(struct ctx *c, const char *file);

/* ---------------------------------------------------------------------- */
/* Error messages                                                          */

/* The file a setting came from: an @include may differ from the top file,
 * and libconfig keeps an include's name as written (relative to the
 * include directory). The result may live in c->file_buf. */
static const char *setting_file(struct ctx *c, const config_setting_t *s)
{
    const char *f = s ? config_setting_source_file(s) : NULL;
    if (!f || strcmp(f, c->path) == 0)
        return c->path;
    if (f[0] == '/' || !c->include_dir)
        return f;
    snprintf(c->file_buf, sizeof c->file_buf, "%s/%s", c->include_dir, f);
    return c->file_buf;
}

/* The line of setting S as a person reads it (0 when unknown): libconfig's
 * own, except for scalar list elements, corrected by the file's scan. */
static unsigned setting_line(struct ctx *c, const config_setting_t *s)
{
    unsigned line = config_setting_source_line(s);
    const config_setting_t *parent = config_setting_parent(s);
    if (line == 0 || config_setting_name(s) || config_setting_is_aggregate(s) || !parent ||
        config_setting_is_group(parent))
        return line;
    const struct file_scan *f = scanned_file(c, setting_file(c, s));
    for (int i = 0; f && i < f->fix_count; i++)
        if (f->fixes[i].line == (int)line)
            return (unsigned)f->fixes[i].prev;
    return line;
}

/* Write "FILE:LINE: KEY: reason" (or "FILE: KEY: reason" when S has no line)
 * into the caller's buffer. Always returns -1 so callers can `return fail()`. */
__attribute__((format(printf, 4, 5))) static int fail(struct ctx *c, const config_setting_t *s,
                                                      const char *key, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0)
        return -1;
    char reason[RP_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    unsigned line = s ? setting_line(c, s) : 0;
    if (line > 0)
        snprintf(c->err, c->errlen, "%s:%u: %s: %s", setting_file(c, s), line, key, reason);
    else
        snprintf(c->err, c->errlen, "%s: %s: %s", setting_file(c, s), key, reason);
    return -1;
}

static int fail_oom(struct ctx *c)
{
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "%s: out of memory", c->path);
    return -1;
}

/* Copy a non-secret value S into OUT for a message: printable ASCII only
 * (others become '?'), cut at SHOW_MAX bytes with "...". Returns OUT. */
static const char *show(char *out, size_t outlen, const char *s)
{
    size_t o = 0, i = 0;
    for (; s[i] && o + 4 < outlen && i < SHOW_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '?';
    }
    if (s[i] && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static const char *type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

/* ---------------------------------------------------------------------- */
/* Scanning the source text (what libconfig 1.5 does not tell)            */

static int is_name_char(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '*';
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_xdigit(int ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Grow *P (of *CAP elements of SIZE bytes) so one more fits after COUNT. */
static int grow(void **p, int *cap, int count, size_t size)
{
    if (count < *cap)
        return 0;
    int ncap = *cap ? *cap * 2 : 8;
    void *n = realloc(*p, (size_t)ncap * size);
    if (!n)
        return -1;
    *p = n;
    *cap = ncap;
    return 0;
}

static int add_overflow(struct file_scan *f, int line, int32_t truncated, const char *text,
                        size_t len)
{
    if (grow((void **)&f->lits, &f->lit_cap, f->lit_count, sizeof *f->lits) < 0)
        return -1;
    struct overflow_lit *l = &f->lits[f->lit_count++];
    l->line = line;
    l->truncated = truncated;
    if (len >= sizeof l->text)
        len = sizeof l->text - 1;
    memcpy(l->text, text, len);
    l->text[len] = '\0';
    return 0;
}

/* Scan one number starting at T[*I] (a digit, sign or '.'), following the
 * libconfig 1.5 lexer: record it in F when it is a plain (no L suffix)
 * integer outside int's range, with the value atoi()/strtoul() left. */
static int scan_number(struct file_scan *f, const char *t, size_t n, size_t *ip, int line)
{
    size_t i = *ip, start = i;
    int hex = 0;
    if (t[i] == '0' && i + 2 < n && (t[i + 1] == 'x' || t[i + 1] == 'X') && is_xdigit(t[i + 2])) {
        hex = 1;
        i += 2;
        while (i < n && is_xdigit(t[i]))
            i++;
    } else {
        if (t[i] == '-' || t[i] == '+')
            i++;
        while (i < n && is_digit(t[i]))
            i++;
        if (i < n && (t[i] == '.' || t[i] == 'e' || t[i] == 'E')) {
            /* a float: skip it */
            while (i < n && (is_digit(t[i]) || t[i] == '.' || t[i] == 'e' || t[i] == 'E' ||
                             t[i] == '+' || t[i] == '-'))
                i++;
            *ip = i;
            return 0;
        }
    }
    size_t len = i - start;
    *ip = i;
    if (i < n && t[i] == 'L') /* 64-bit literal: parsed exactly */
        return 0;
    char buf[64];
    if (len >= sizeof buf) /* absurdly long: out of range; atoi saturates to -1 */
        return add_overflow(f, line, -1, t + start, len);
    memcpy(buf, t + start, len);
    buf[len] = '\0';
    if (hex) {
        unsigned long long v = strtoull(buf, NULL, 16);
        if (v > INT_MAX)
            return add_overflow(f, line, (int32_t)(uint32_t)v, buf, len);
    } else {
        long long v = strtoll(buf, NULL, 10);
        if (v > INT_MAX || v < INT_MIN)
            return add_overflow(f, line, (int32_t)(uint32_t)(unsigned long long)v, buf, len);
    }
    return 0;
}

/* Tokenise text T the way libconfig's lexer does, far enough to tell
 * comments, strings, names, numbers and punctuation apart. Collects the
 * overflowing integer literals and the line fixes into F. Returns 0, or -1
 * when out of memory. */
static int scan_text(struct file_scan *f, const char *t, size_t n)
{
    int line = 1, first_tok_line = 0, last_end_line = 0;
    size_t i = 0;
    while (i < n) {
        char ch = t[i];
        if (ch == '\n') {
            line++;
            i++;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            i++;
            continue;
        }
        if (ch == '#' || (ch == '/' && i + 1 < n && t[i + 1] == '/')) {
            while (i < n && t[i] != '\n')
                i++;
            continue;
        }
        if (ch == '/' && i + 1 < n && t[i + 1] == '*') {
            i += 2;
            while (i < n && !(t[i] == '*' && i + 1 < n && t[i + 1] == '/')) {
                if (t[i] == '\n')
                    line++;
                i++;
            }
            i = i + 2 < n ? i + 2 : n;
            continue;
        }
        /* a token starts here */
        if (first_tok_line != line) {
            first_tok_line = line;
            if ((ch == ',' || ch == ')' || ch == ']') && last_end_line > 0) {
                if (grow((void **)&f->fixes, &f->fix_cap, f->fix_count, sizeof *f->fixes) < 0)
                    return -1;
                f->fixes[f->fix_count].line = line;
                f->fixes[f->fix_count++].prev = last_end_line;
            }
        }
        if (ch == '"') {
            i++;
            while (i < n && t[i] != '"') {
                if (t[i] == '\\' && i + 1 < n)
                    i++;
                if (t[i] == '\n')
                    line++;
                i++;
            }
            i++;
        } else if (ch == '@' || (is_name_char(ch) && !is_digit(ch) && ch != '-')) {
            i++;
            while (i < n && is_name_char(t[i]))
                i++;
        } else if (is_digit(ch) ||
                   ((ch == '-' || ch == '+' || ch == '.') && i + 1 < n && is_digit(t[i + 1]))) {
            if (scan_number(f, t, n, &i, line) < 0)
                return -1;
            if (i < n && t[i] == 'L')
                while (i < n && t[i] == 'L')
                    i++;
        } else {
            i++;
        }
        last_end_line = line;
    }
    return 0;
}

/* The scan of FILE, made on first use. NULL when out of memory; a file that
 * cannot be read any more yields an empty scan (nothing to correct). */
static struct file_scan *scanned_file(struct ctx *c, const char *file)
{
    for (struct file_scan *f = c->scanned; f; f = f->next)
        if (strcmp(f->file, file) == 0)
            return f;
    struct file_scan *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->file = strdup(file);
    if (!f->file) {
        free(f);
        return NULL;
    }
    f->next = c->scanned;
    c->scanned = f;
    FILE *fp = fopen(file, "r");
    if (!fp)
        return f;
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 4096 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nt = realloc(text, ncap);
            if (!nt) {
                rc = -1;
                break;
            }
            text = nt;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len, fp);
        len += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    if (rc == 0 && text)
        rc = scan_text(f, text, len);
    free(text);
    return rc == 0 ? f : NULL;
}

static void free_scans(struct ctx *c)
{
    while (c->scanned) {
        struct file_scan *f = c->scanned;
        c->scanned = f->next;
        free(f->file);
        free(f->lits);
        free(f->fixes);
        free(f);
    }
}

/* ---------------------------------------------------------------------- */
/* Typed getters                                                           */

/* Read integer setting S (its full name KEY) into *OUT and check LO..HI. */
static int int_value(struct ctx *c, const config_setting_t *s, const char *key, int64_t lo,
                     int64_t hi, int64_t *out)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return fail(c, s, key, "must be an integer, got %s", type_name(s));
    int64_t v = config_setting_get_int64(s);
    unsigned line = setting_line(c, s);
    if (type == CONFIG_TYPE_INT && line > 0) {
        struct file_scan *f = scanned_file(c, setting_file(c, s));
        if (!f)
            return fail_oom(c);
        for (int i = 0; i < f->lit_count; i++)
            if (f->lits[i].line == (int)line && f->lits[i].truncated == (int32_t)v)
                return fail(c, s, key,
                            "%s does not fit a 32-bit integer; write it with an L suffix (%sL)",
                            f->lits[i].text, f->lits[i].text);
    }
    if (v < lo || v > hi)
        return fail(c, s, key, "must be between %lld and %lld, got %lld", (long long)lo,
                    (long long)hi, (long long)v);
    *out = v;
    return 0;
}

/* Look up integer NAME in group G (KEY is its full name for messages). When
 * present, check it and store it in *OUT; when absent leave *OUT alone.
 * *FOUND (optional) gets the setting or NULL. */
static int get_int(struct ctx *c, const config_setting_t *g, const char *name, const char *key,
                   int64_t lo, int64_t hi, int64_t *out, config_setting_t **found)
{
    config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
    if (found)
        *found = s;
    if (!s)
        return 0;
    return int_value(c, s, key, lo, hi, out);
}

/* Look up string NAME in group G; *OUT points into libconfig's copy (NULL
 * when absent). Empty strings are rejected. */
static int get_str(struct ctx *c, const config_setting_t *g, const char *name, const char *key,
                   const char **out, config_setting_t **found)
{
    config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
    *out = NULL;
    if (found)
        *found = s;
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(c, s, key, "must be a string, got %s", type_name(s));
    const char *v = config_setting_get_string(s);
    if (!v || !*v)
        return fail(c, s, key, "must not be empty");
    *out = v;
    return 0;
}

/* Look up group NAME in G; *OUT is NULL when absent. */
static int get_group(struct ctx *c, const config_setting_t *g, const char *name, const char *key,
                     config_setting_t **out)
{
    config_setting_t *s = config_setting_get_member(g, name);
    *out = s;
    if (s && config_setting_type(s) != CONFIG_TYPE_GROUP)
        return fail(c, s, key, "must be a group { ... }, got %s", type_name(s));
    return 0;
}

/* Reject every member of group G not named in KNOWN (NULL-terminated).
 * PREFIX ("" at the top) is prepended to names in messages. */
static int check_keys(struct ctx *c, const config_setting_t *g, const char *prefix,
                      const char *const *known)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        if (!name)
            continue;
        int ok = 0;
        for (const char *const *k = known; *k; k++)
            if (strcmp(*k, name) == 0)
                ok = 1;
        if (!ok) {
            char key[128];
            snprintf(key, sizeof key, "%s%s", prefix, name);
            return fail(c, s, key, "unknown key");
        }
    }
    return 0;
}

static int dup_str(struct ctx *c, char **dst, const char *src)
{
    *dst = strdup(src);
    return *dst ? 0 : fail_oom(c);
}

/* ---------------------------------------------------------------------- */
/* Small validators                                                        */

static int is_alnum(int ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Pool, user and group names: [A-Za-z0-9._-]{1,MAX}. */
static int valid_simple_name(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* Endpoint names: 1..RP_NAME_MAX-1 bytes of [A-Za-z0-9._:[]-], not all
 * digits (the control socket takes an endpoint's id or its name). */
static int valid_endpoint_name(const char *s)
{
    size_t n = strlen(s);
    int digits = 1;
    if (n == 0 || n >= RP_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!is_alnum(ch) && !strchr("._:[]-", ch))
            return 0;
        if (!is_digit(ch))
            digits = 0;
    }
    return !digits;
}

/* JSON-RPC method names: 1..METHOD_NAME_MAX bytes of [A-Za-z0-9_.:-]. */
static int valid_method(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > METHOD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && !strchr("_.:-", s[i]))
            return 0;
    return 1;
}

/* 1 when S holds no byte below 0x21 and none from 0x7f up. */
static int printable_no_space(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f)
            return 0;
    }
    return 1;
}

/* An RFC 7230 token character (header names). */
static int is_tchar(int ch)
{
    return is_alnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Host names and IPv4 literals as rpcpool accepts them. */
static int is_host_char(int ch)
{
    return is_alnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

/* Parse a decimal port of LEN bytes at S: 1..65535, else -1. */
static long parse_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

/* Check the bracketed IPv6 literal "[...]" of LEN bytes at S. */
static int valid_ipv6_literal(const char *s, size_t len)
{
    if (len < 4 || s[0] != '[' || s[len - 1] != ']')
        return 0;
    int colons = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        if (s[i] == ':')
            colons++;
        else if (!is_xdigit(s[i]) && s[i] != '.')
            return 0;
    }
    return colons >= 2;
}

/* ---------------------------------------------------------------------- */
/* URLs                                                                    */

struct url_parts {
    int https;
    size_t user_off, user_len; /* user info without the '@' (len 0: none) */
    size_t host_off, host_len; /* brackets included for IPv6 */
    long port;                 /* 0 when not given */
    size_t rest_off;           /* path, query or fragment; == strlen at the end */
};

/* Split and check URL. Returns NULL when it is acceptable, else a reason
 * that does not quote the URL. */
static const char *url_parse_scheme(const char *url, struct url_parts *p, int ws)
{
    memset(p, 0, sizeof *p);
    for (const unsigned char *b = (const unsigned char *)url; *b; b++)
        if (*b <= 0x20 || *b >= 0x7f)
            return "must not contain spaces, control bytes or non-ASCII bytes "
                   "(percent-encode them)";
    size_t off;
    if (!ws && strncasecmp(url, "http://", 7) == 0)
        off = 7;
    else if (!ws && strncasecmp(url, "https://", 8) == 0) {
        off = 8;
        p->https = 1;
    } else if (ws && strncasecmp(url, "ws://", 5) == 0)
        off = 5;
    else if (ws && strncasecmp(url, "wss://", 6) == 0) {
        off = 6;
        p->https = 1;
    } else
        return ws ? "must start with ws:// or wss://" : "must start with http:// or https://";
    size_t auth_len = strcspn(url + off, "/?#");
    const char *auth = url + off;
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    size_t hp_off = off;
    if (at) {
        p->user_off = off;
        p->user_len = (size_t)(at - auth);
        hp_off = (size_t)(at - url) + 1;
    }
    const char *hp = url + hp_off;
    size_t hp_len = off + auth_len - hp_off;
    p->rest_off = off + auth_len;
    if (hp_len == 0)
        return "has an empty host";
    size_t host_len;
    if (hp[0] == '[') {
        const char *close = memchr(hp, ']', hp_len);
        if (!close)
            return "has an unterminated IPv6 address";
        host_len = (size_t)(close - hp) + 1;
        if (!valid_ipv6_literal(hp, host_len))
            return "has an invalid IPv6 address";
    } else {
        host_len = 0;
        while (host_len < hp_len && hp[host_len] != ':')
            host_len++;
        if (host_len == 0)
            return "has an empty host";
        for (size_t i = 0; i < host_len; i++)
            if (!is_host_char(hp[i]))
                return "has an invalid character in its host";
    }
    p->host_off = hp_off;
    p->host_len = host_len;
    if (host_len < hp_len) {
        if (hp[host_len] != ':')
            return "has an invalid character after its host";
        p->port = parse_port(hp + host_len + 1, hp_len - host_len - 1);
        if (p->port < 0)
            return "port must be a number between 1 and 65535";
    }
    return NULL;
}

/* An endpoint URL: http:// or https://. */
static const char *url_parse(const char *url, struct url_parts *p)
{
    return url_parse_scheme(url, p, 0);
}

/* Bounded appender for rp_config_redact_url. */
struct outbuf {
    char *p;
    size_t len, cap;
};

static void out_put(struct outbuf *o, const char *s, size_t n)
{
    if (o->cap == 0)
        return;
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++)
        o->p[o->len++] = s[i];
    o->p[o->len] = '\0';
}

/* See rp_config.h. Works on any input, valid or not: whatever cannot be
 * recognised as scheme, host or numeric port is shown as "***". */
void rp_config_redact_url(const char *url, char *out, size_t outlen)
{
    struct outbuf o = {out, 0, outlen};
    if (outlen)
        out[0] = '\0';
    if (!url) {
        out_put(&o, "***", 3);
        return;
    }
    const char *sep = strstr(url, "://");
    size_t scheme_len = sep ? (size_t)(sep - url) : 0;
    for (size_t i = 0; i < scheme_len; i++)
        if (!is_alnum(url[i]) && url[i] != '+' && url[i] != '-' && url[i] != '.')
            scheme_len = 0;
    if (!sep || scheme_len == 0) {
        out_put(&o, "***", 3);
        return;
    }
    out_put(&o, url, scheme_len + 3);
    const char *auth = sep + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *hp = auth;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            hp = auth + i + 1;
    size_t hp_len = auth_len - (size_t)(hp - auth);
    size_t host_len = 0;
    if (hp_len && hp[0] == '[') {
        const char *close = memchr(hp, ']', hp_len);
        host_len = close ? (size_t)(close - hp) + 1 : hp_len;
    } else {
        while (host_len < hp_len && hp[host_len] != ':')
            host_len++;
    }
    int host_ok = host_len > 0;
    if (hp_len && hp[0] == '[')
        host_ok = valid_ipv6_literal(hp, host_len);
    else
        for (size_t i = 0; i < host_len; i++)
            if (!is_host_char(hp[i]))
                host_ok = 0;
    if (host_ok)
        out_put(&o, hp, host_len);
    else
        out_put(&o, "***", 3);
    if (host_len < hp_len) {
        const char *port = hp + host_len;
        size_t port_len = hp_len - host_len;
        int port_ok = port[0] == ':' && port_len > 1;
        for (size_t i = 1; i < port_len; i++)
            if (!is_digit(port[i]))
                port_ok = 0;
        if (port_ok)
            out_put(&o, port, port_len);
        else
            out_put(&o, ":***", 4);
    }
    const char *rest = auth + auth_len;
    if (rest[0] == '\0')
        return;
    if (strcmp(rest, "/") == 0)
        out_put(&o, "/", 1);
    else
        out_put(&o, "/***", 4);
}

/* ---------------------------------------------------------------------- */
/* Sections                                                                */

struct int_key {
    const char *name;
    size_t off; /* of the int64_t field in struct rp_config */
    int64_t def, lo, hi;
};

#define FIELD(f) offsetof(struct rp_config, f)

static const struct int_key top_ints[] = {
    {"chain_id", FIELD(chain_id), 0, 0, INT64_MAX},
    {"max_connections", FIELD(max_connections), 10, 1, 10000},
    {"min_connections", FIELD(min_connections), 2, 0, 10000},
    {"connection_timeout_ms", FIELD(connection_timeout_ms), 5000, 1, TIMEOUT_MAX_MS},
    {"idle_timeout_ms", FIELD(idle_timeout_ms), 30000, 1, TIMEOUT_MAX_MS},
    {"request_timeout_ms", FIELD(request_timeout_ms), 10000, 1, TIMEOUT_MAX_MS},
    {"attempt_timeout_ms", FIELD(attempt_timeout_ms), 3000, 1, TIMEOUT_MAX_MS},
    {"retries", FIELD(retries), 2, 0, 10},
    {"health_check_interval_ms", FIELD(health_check_interval_ms), 30000, 1, TIMEOUT_MAX_MS},
    {"max_block_lag", FIELD(max_block_lag), 5, 0, 1000000},
    {"consistency_wait_ms", FIELD(consistency_wait_ms), 500, 0, TIMEOUT_MAX_MS},
    {"affinity_ms", FIELD(affinity_ms), 10000, 0, TIMEOUT_MAX_MS},
    {NULL, 0, 0, 0, 0},
};

static const struct int_key breaker_ints[] = {
    {"failure_threshold", FIELD(cb_failure_threshold), 5, 1, 65535},
    {"recovery_timeout_ms", FIELD(cb_recovery_timeout_ms), 60000, 1, TIMEOUT_MAX_MS},
    {"half_open_max_attempts", FIELD(cb_half_open_max_attempts), 3, 1, 255},
    {NULL, 0, 0, 0, 0},
};

static const struct int_key sub_ints[] = {
    {"poll_interval_ms", FIELD(sub_poll_interval_ms), 1000, 10, TIMEOUT_MAX_MS},
    {"max_per_connection", FIELD(sub_max_per_connection), 100, 0, 100000},
    {"max_total", FIELD(sub_max_total), 10000, 0, 1000000},
    {"backfill_blocks", FIELD(sub_backfill_blocks), 128, 0, 4096},
    {NULL, 0, 0, 0, 0},
};

static const struct int_key cache_ints[] = {
    {"max_bytes", FIELD(cache_max_bytes), 67108864, 0, 17179869184LL},
    {"finality_depth", FIELD(cache_finality_depth), 64, 0, 1000000},
    {NULL, 0, 0, 0, 0},
};

static const struct int_key server_ints[] = {
    {"workers", FIELD(workers), 2, 0, 64},
    {"max_clients", FIELD(max_clients), 10000, 1, 1000000},
    {"max_request_bytes", FIELD(max_request_bytes), 1048576, 64, 1073741824},
    {"max_batch", FIELD(max_batch), 1000, 1, 100000},
    {"max_response_bytes", FIELD(max_response_bytes), 134217728, 64, 4294967296LL},
    {"client_idle_timeout_ms", FIELD(client_idle_timeout_ms), 300000, 1, TIMEOUT_MAX_MS},
    {"queue_timeout_ms", FIELD(queue_timeout_ms), 2000, 0, TIMEOUT_MAX_MS},
    {"shutdown_timeout_ms", FIELD(shutdown_timeout_ms), 10000, 1, TIMEOUT_MAX_MS},
    {NULL, 0, 0, 0, 0},
};

/* Apply the defaults of table T, then read its keys from group G (may be
 * NULL) under PREFIX. */
static int read_ints(struct ctx *c, struct rp_config *cfg, const config_setting_t *g,
                     const char *prefix, const struct int_key *t)
{
    for (; t->name; t++) {
        int64_t *field = (int64_t *)(void *)((char *)cfg + t->off);
        char key[128];
        snprintf(key, sizeof key, "%s%s", prefix, t->name);
        *field = t->def;
        if (get_int(c, g, t->name, key, t->lo, t->hi, field, NULL) < 0)
            return -1;
    }
    return 0;
}

/* Check that LOW <= HIGH for two keys of group G; the message goes to the
 * key the user wrote (the lower one if both). */
static int check_order(struct ctx *c, const config_setting_t *g, const char *prefix,
                       const char *low_name, int64_t low, const char *high_name, int64_t high)
{
    if (low <= high)
        return 0;
    config_setting_t *ls = g ? config_setting_get_member(g, low_name) : NULL;
    config_setting_t *hs = g ? config_setting_get_member(g, high_name) : NULL;
    char key[128];
    if (ls || !hs) {
        snprintf(key, sizeof key, "%s%s", prefix, low_name);
        return fail(c, ls, key, "must not exceed %s (%lld), got %lld", high_name, (long long)high,
                    (long long)low);
    }
    snprintf(key, sizeof key, "%s%s", prefix, high_name);
    return fail(c, hs, key, "must be at least %s (%lld), got %lld", low_name, (long long)low,
                (long long)high);
}

/* Read a rate_limit group G (may be NULL) under PREFIX into *RL. Missing
 * max_requests and window_ms come from BASE; a missing burst_size is the
 * block's own max_requests when it sets one, else BASE's burst. */
static int read_rate_limit(struct ctx *c, const config_setting_t *g, const char *prefix,
                           const struct rp_rate_limit *base, struct rp_rate_limit *rl)
{
    static const char *const known[] = {"max_requests", "window_ms", "burst_size", NULL};
    *rl = *base;
    if (!g)
        return 0;
    if (check_keys(c, g, prefix, known) < 0)
        return -1;
    char key[128];
    config_setting_t *mr, *bs, *wm;
    snprintf(key, sizeof key, "%smax_requests", prefix);
    if (get_int(c, g, "max_requests", key, 1, 1000000000, &rl->max_requests, &mr) < 0)
        return -1;
    snprintf(key, sizeof key, "%swindow_ms", prefix);
    if (get_int(c, g, "window_ms", key, 1, TIMEOUT_MAX_MS, &rl->window_ms, &wm) < 0)
        return -1;
    snprintf(key, sizeof key, "%sburst_size", prefix);
    if (get_int(c, g, "burst_size", key, 1, 1000000000, &rl->burst_size, &bs) < 0)
        return -1;
    if (!bs && mr)
        rl->burst_size = rl->max_requests;
    /* A bucket that takes ages to refill overflows the limiter's ns clock. */
    int64_t refill_ms = rl->burst_size * rl->window_ms / rl->max_requests;
    if (refill_ms > REFILL_MAX_MS) {
        snprintf(key, sizeof key, "%sburst_size", prefix);
        return fail(c,
                    bs   ? bs
                    : mr ? mr
                    : wm ? wm
                         : g,
                    key,
                    "a full bucket (burst_size * window_ms / max_requests) would take %lld ms "
                    "to refill, more than %lld",
                    (long long)refill_ms, (long long)REFILL_MAX_MS);
    }
    return 0;
}

/* Why header line H is unacceptable, or NULL when it is a valid
 * "Name: value". The reason never quotes the value (it may be a secret). */
static const char *header_problem(const char *h)
{
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection",
                                           NULL};
    const char *colon = strchr(h, ':');
    if (!colon)
        return "must be \"Name: value\"";
    size_t name_len = (size_t)(colon - h);
    if (name_len == 0)
        return "has an empty header name";
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)h[i]))
            return "header name must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)";
    for (const char *const *r = reserved; *r; r++)
        if (strlen(*r) == name_len && strncasecmp(h, *r, name_len) == 0)
            return "this header is set by rpcpool and cannot be configured";
    const char *v = colon + 1;
    int nonblank = 0;
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return "header value must not contain control bytes";
        if (ch != ' ' && ch != '\t')
            nonblank = 1;
    }
    if (!nonblank)
        return "has an empty header value";
    return NULL;
}

/* One endpoint's working data while the list is read. */
struct ep_tmp {
    const config_setting_t *s;
    const config_setting_t *url_s;
    int explicit_name;
    struct url_parts up;
    char *norm; /* normalised URL for duplicate detection */
};

/* The URL as compared for duplicates: scheme and host lowercased, the port
 * made explicit, an empty path written as "/". NULL when out of memory. */
static char *url_normalise(const char *url, const struct url_parts *p)
{
    const char *rest = url + p->rest_off;
    size_t n = strlen(url) + 16;
    char *o = malloc(n);
    if (!o)
        return NULL;
    size_t k = 0;
    k += (size_t)snprintf(o + k, n - k, "%s://", p->https ? "https" : "http");
    if (p->user_len) {
        memcpy(o + k, url + p->user_off, p->user_len);
        k += p->user_len;
        o[k++] = '@';
    }
    for (size_t i = 0; i < p->host_len; i++) {
        char ch = url[p->host_off + i];
        o[k++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    snprintf(o + k, n - k, ":%ld%s%s", p->port ? p->port : (p->https ? 443L : 80L),
             rest[0] == '/' ? "" : "/", rest);
    return o;
}

/* tls_ca_file in group G (KEY names it in messages): a readable PEM file
 * with at least one certificate, copied into *OUT. Absent leaves *OUT. */
static int read_ca_file(struct ctx *c, const config_setting_t *g, const char *key, char **out)
{
    const char *v;
    config_setting_t *s;
    if (get_str(c, g, "tls_ca_file", key, &v, &s) < 0)
        return -1;
    if (!v)
        return 0;
    char shown[SHOW_MAX + 8];
    FILE *fp = fopen(v, "r");
    if (!fp)
        return fail(c, s, key, "cannot read \"%s\": %s", show(shown, sizeof shown, v),
                    strerror(errno));
    char line[256];
    int found = 0;
    while (!found && fgets(line, sizeof line, fp))
        found = strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0 ||
                strncmp(line, "-----BEGIN TRUSTED CERTIFICATE-----", 35) == 0;
    fclose(fp);
    if (!found)
        return fail(c, s, key, "\"%s\" holds no PEM certificate", show(shown, sizeof shown, v));
    return dup_str(c, out, v);
}

/* Headers of endpoint E from setting S (KEYPFX "endpoints[i]."). */
static int read_headers(struct ctx *c, const config_setting_t *s, const char *keypfx,
                        struct rp_endpoint_config *e)
{
    char key[128];
    snprintf(key, sizeof key, "%sheaders", keypfx);
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
        return fail(c, s, key, "must be a list of \"Name: value\" strings, got %s", type_name(s));
    int n = config_setting_length(s);
    if (n > RP_MAX_HEADERS)
        return fail(c, s, key, "at most %d headers, got %d", RP_MAX_HEADERS, n);
    for (int i = 0; i < n; i++) {
        const config_setting_t *h = config_setting_get_elem(s, (unsigned)i);
        snprintf(key, sizeof key, "%sheaders[%d]", keypfx, i);
        if (config_setting_type(h) != CONFIG_TYPE_STRING)
            return fail(c, h, key, "must be a string, got %s", type_name(h));
        const char *v = config_setting_get_string(h);
        const char *why = header_problem(v);
        if (why)
            return fail(c, h, key, "%s", why);
        if (dup_str(c, &e->headers[i], v) < 0)
            return -1;
        e->header_count = i + 1;
    }
    return 0;
}

/* ws_url of endpoint group G (PFX "endpoints[i]."): the endpoint's
 * WebSocket URL for its pushed head, ws:// or wss:// without user info.
 * *WSS is set for wss://. Absent leaves E->ws_url NULL. */
static int read_ws_url(struct ctx *c, const config_setting_t *g, const char *pfx,
                       struct rp_endpoint_config *e, int *wss)
{
    char key[128];
    const char *v;
    config_setting_t *s;
    snprintf(key, sizeof key, "%sws_url", pfx);
    if (get_str(c, g, "ws_url", key, &v, &s) < 0)
        return -1;
    if (!v)
        return 0;
    struct url_parts up;
    const char *why = url_parse_scheme(v, &up, 1);
    if (why)
        return fail(c, s, key, "%s", why);
    if (up.user_len || memchr(v, '@', up.rest_off))
        return fail(c, s, key, "must not carry user info (put credentials in headers)");
    if (strchr(v + up.rest_off, '#'))
        return fail(c, s, key, "must not have a fragment");
    *wss = up.https;
    char red[1024];
    rp_config_redact_url(v, red, sizeof red);
    if (dup_str(c, &e->ws_url, v) < 0 || dup_str(c, &e->ws_url_redacted, red) < 0)
        return -1;
    return 0;
}

/* Read endpoint I from setting S into E and T. */
static int read_endpoint(struct ctx *c, struct rp_config *cfg, const config_setting_t *s, int i,
                         struct rp_endpoint_config *e, struct ep_tmp *t)
{
    static const char *const known[] = {"name",       "url",         "weight", "headers",
                                        "rate_limit", "tls_ca_file", "ws_url", NULL};
    char pfx[64], key[128];
    snprintf(pfx, sizeof pfx, "endpoints[%d].", i);
    t->s = s;
    e->line = (int)setting_line(c, s);
    e->weight = 1;
    e->rate_limit = cfg->rate_limit;
    const char *url = NULL;
    const config_setting_t *g = NULL;
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        url = config_setting_get_string(s);
        t->url_s = s;
        snprintf(key, sizeof key, "endpoints[%d]", i);
    } else if (config_setting_type(s) == CONFIG_TYPE_GROUP) {
        g = s;
        if (check_keys(c, g, pfx, known) < 0)
            return -1;
        config_setting_t *us;
        snprintf(key, sizeof key, "%surl", pfx);
        if (get_str(c, g, "url", key, &url, &us) < 0)
            return -1;
        if (!url)
            return fail(c, s, key, "is required");
        t->url_s = us;
    } else {
        snprintf(key, sizeof key, "endpoints[%d]", i);
        return fail(c, s, key, "must be a URL string or a group { url = \"...\"; }, got %s",
                    type_name(s));
    }
    const char *why = url_parse(url, &t->up);
    if (why)
        return fail(c, t->url_s, key, "%s", why);
    if (dup_str(c, &e->url, url) < 0)
        return -1;
    char red[1024];
    rp_config_redact_url(url, red, sizeof red);
    if (dup_str(c, &e->url_redacted, red) < 0)
        return -1;
    t->norm = url_normalise(url, &t->up);
    if (!t->norm)
        return fail_oom(c);
    if (!g)
        return 0;

    const char *name;
    config_setting_t *ns;
    snprintf(key, sizeof key, "%sname", pfx);
    if (get_str(c, g, "name", key, &name, &ns) < 0)
        return -1;
    if (name) {
        char shown[SHOW_MAX + 8];
        if (!valid_endpoint_name(name))
            return fail(c, ns, key,
                        "must be 1 to %d characters of A-Z a-z 0-9 . _ - : [ ] and not only "
                        "digits, got \"%s\"",
                        RP_NAME_MAX - 1, show(shown, sizeof shown, name));
        memcpy(e->name, name, strlen(name) + 1);
        t->explicit_name = 1;
    }
    snprintf(key, sizeof key, "%sweight", pfx);
    if (get_int(c, g, "weight", key, 1, 1000, &e->weight, NULL) < 0)
        return -1;
    config_setting_t *hs = config_setting_get_member(g, "headers");
    if (hs && read_headers(c, hs, pfx, e) < 0)
        return -1;
    int wss = 0;
    if (read_ws_url(c, g, pfx, e, &wss) < 0)
        return -1;
    snprintf(key, sizeof key, "%stls_ca_file", pfx);
    if (read_ca_file(c, g, key, &e->tls_ca_file) < 0)
        return -1;
    if (e->tls_ca_file && !t->up.https && !wss)
        return fail(c, config_setting_get_member(g, "tls_ca_file"), key,
                    "applies to https:// and wss:// endpoints only");
    config_setting_t *rs;
    snprintf(key, sizeof key, "%srate_limit", pfx);
    if (get_group(c, g, "rate_limit", key, &rs) < 0)
        return -1;
    if (rs) {
        snprintf(pfx, sizeof pfx, "endpoints[%d].rate_limit.", i);
        if (read_rate_limit(c, rs, pfx, &cfg->rate_limit, &e->rate_limit) < 0)
            return -1;
        e->has_rate_limit = 1;
    }
    return 0;
}

static int name_taken(const struct rp_config *cfg, const struct ep_tmp *t, int n, int self,
                      const char *name)
{
    for (int j = 0; j < n; j++)
        if (j != self && (t[j].explicit_name || cfg->endpoints[j].name[0]) &&
            strcmp(cfg->endpoints[j].name, name) == 0)
            return 1;
    return 0;
}

/* Give every endpoint without a name one: its host; where that is shared
 * with another endpoint, host:port; where even that clashes, a "-N"
 * suffix. Explicit names are kept as written (duplicates are rejected
 * before). */
static void default_names(struct rp_config *cfg, struct ep_tmp *t, int n)
{
    char host[RP_NAME_MAX];
    for (int i = 0; i < n; i++) {
        if (t[i].explicit_name)
            continue;
        struct rp_endpoint_config *e = &cfg->endpoints[i];
        const char *url = e->url;
        size_t hl = t[i].up.host_len < RP_NAME_MAX - 1 ? t[i].up.host_len : RP_NAME_MAX - 1;
        memcpy(host, url + t[i].up.host_off, hl);
        host[hl] = '\0';
        int shared = strspn(host, "0123456789") == hl; /* all digits: looks like an id */
        for (int j = 0; j < n; j++) {
            if (j == i)
                continue;
            if (t[j].explicit_name && strcmp(cfg->endpoints[j].name, host) == 0)
                shared = 1;
            if (!t[j].explicit_name && t[j].up.host_len == t[i].up.host_len &&
                strncasecmp(url + t[i].up.host_off, cfg->endpoints[j].url + t[j].up.host_off,
                            t[i].up.host_len) == 0)
                shared = 1;
        }
        char cand[RP_NAME_MAX];
        if (!shared) {
            snprintf(cand, sizeof cand, "%s", host);
        } else {
            char port[8];
            long pn = t[i].up.port ? t[i].up.port : (t[i].up.https ? 443 : 80);
            int pl = snprintf(port, sizeof port, ":%ld", pn);
            size_t keep = RP_NAME_MAX - 1 - (size_t)pl;
            snprintf(cand, sizeof cand, "%.*s%s", (int)(hl < keep ? hl : keep), host, port);
        }
        if (name_taken(cfg, t, n, i, cand)) {
            char base[RP_NAME_MAX];
            snprintf(base, sizeof base, "%s", cand);
            for (int k = 2; k <= RP_MAX_ENDPOINTS + 1; k++) {
                char suf[8];
                int sl = snprintf(suf, sizeof suf, "-%d", k);
                size_t keep = RP_NAME_MAX - 1 - (size_t)sl;
                size_t bl = strlen(base);
                snprintf(cand, sizeof cand, "%.*s%s", (int)(bl < keep ? bl : keep), base, suf);
                if (!name_taken(cfg, t, n, i, cand))
                    break;
            }
        }
        memcpy(e->name, cand, strlen(cand) + 1);
    }
}

/* Read the endpoints list: every element, then duplicate URLs and names,
 * then default names. */
static int read_endpoints(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    config_setting_t *s = config_setting_get_member(root, "endpoints");
    if (!s)
        return fail(c, NULL, "endpoints", "is required: list at least one endpoint URL");
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY)
        return fail(c, s, "endpoints", "must be a list ( ... ) of URLs or groups, got %s",
                    type_name(s));
    int n = config_setting_length(s);
    if (n == 0)
        return fail(c, s, "endpoints", "must name at least one endpoint");
    if (n > RP_MAX_ENDPOINTS)
        return fail(c, s, "endpoints", "at most %d endpoints, got %d", RP_MAX_ENDPOINTS, n);
    struct ep_tmp t[RP_MAX_ENDPOINTS];
    memset(t, 0, sizeof t);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        cfg->endpoint_count = i + 1;
        rc = read_endpoint(c, cfg, config_setting_get_elem(s, (unsigned)i), i, &cfg->endpoints[i],
                           &t[i]);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        for (int j = 0; j < i && rc == 0; j++) {
            char key[64];
            if (strcmp(t[i].norm, t[j].norm) == 0) {
                snprintf(key, sizeof key,
                         t[i].url_s == t[i].s ? "endpoints[%d]" : "endpoints[%d].url", i);
                rc = fail(c, t[i].url_s, key, "duplicate of endpoints[%d] (%s)", j,
                          cfg->endpoints[j].url_redacted);
            } else if (t[i].explicit_name && t[j].explicit_name &&
                       strcmp(cfg->endpoints[i].name, cfg->endpoints[j].name) == 0) {
                snprintf(key, sizeof key, "endpoints[%d].name", i);
                rc = fail(c, config_setting_get_member(t[i].s, "name"), key,
                          "duplicate name \"%s\" (also endpoints[%d])", cfg->endpoints[i].name, j);
            }
        }
    }
    if (rc == 0)
        default_names(cfg, t, n);
    for (int i = 0; i < n; i++)
        free(t[i].norm);
    return rc;
}

/* no_retry_methods: the configured list (default: the two send methods),
 * plus the two send methods when the list leaves them out. */
static int read_no_retry(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    config_setting_t *s = config_setting_get_member(root, "no_retry_methods");
    if (s) {
        int type = config_setting_type(s);
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
            return fail(c, s, "no_retry_methods", "must be a list of method names, got %s",
                        type_name(s));
        int n = config_setting_length(s);
        if (n > RP_MAX_NO_RETRY)
            return fail(c, s, "no_retry_methods", "at most %d methods, got %d", RP_MAX_NO_RETRY, n);
        for (int i = 0; i < n; i++) {
            const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
            char key[64], shown[SHOW_MAX + 8];
            snprintf(key, sizeof key, "no_retry_methods[%d]", i);
            if (config_setting_type(m) != CONFIG_TYPE_STRING)
                return fail(c, m, key, "must be a string, got %s", type_name(m));
            const char *v = config_setting_get_string(m);
            if (!valid_method(v))
                return fail(c, m, key, "must be a method name (A-Z a-z 0-9 _ . : -), got \"%s\"",
                            show(shown, sizeof shown, v));
            for (int j = 0; j < cfg->no_retry_count; j++)
                if (strcmp(cfg->no_retry_methods[j], v) == 0)
                    return fail(c, m, key, "duplicate method \"%s\"", v);
            if (dup_str(c, &cfg->no_retry_methods[cfg->no_retry_count], v) < 0)
                return -1;
            cfg->no_retry_count++;
        }
    }
    const char *always[] = {SEND_RAW, SEND_TX};
    for (int k = 0; k < 2; k++) {
        int have = 0;
        for (int j = 0; j < cfg->no_retry_count; j++)
            if (strcmp(cfg->no_retry_methods[j], always[k]) == 0)
                have = 1;
        if (have)
            continue;
        if (cfg->no_retry_count >= RP_MAX_NO_RETRY)
            return fail(c, s, "no_retry_methods",
                        "at most %d methods, counting eth_sendRawTransaction and "
                        "eth_sendTransaction which are always included",
                        RP_MAX_NO_RETRY);
        if (dup_str(c, &cfg->no_retry_methods[cfg->no_retry_count], always[k]) < 0)
            return -1;
        cfg->no_retry_count++;
    }
    return 0;
}

/* health_check = { method = "..."; } or { path = "/..."; }. */
static int read_health_check(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    static const char *const known[] = {"method", "path", NULL};
    config_setting_t *g;
    if (get_group(c, root, "health_check", "health_check", &g) < 0)
        return -1;
    const char *method = NULL, *hpath = NULL;
    config_setting_t *ms = NULL, *ps = NULL;
    char shown[SHOW_MAX + 8];
    if (g) {
        if (check_keys(c, g, "health_check.", known) < 0)
            return -1;
        if (get_str(c, g, "method", "health_check.method", &method, &ms) < 0 ||
            get_str(c, g, "path", "health_check.path", &hpath, &ps) < 0)
            return -1;
        if (method && hpath)
            return fail(c, g, "health_check", "give either method or path, not both");
        if (method && !valid_method(method))
            return fail(c, ms, "health_check.method",
                        "must be a method name (A-Z a-z 0-9 _ . : -), got \"%s\"",
                        show(shown, sizeof shown, method));
        if (hpath && (hpath[0] != '/' || !printable_no_space(hpath)))
            return fail(c, ps, "health_check.path",
                        "must start with '/' and hold no spaces or control bytes, got \"%s\"",
                        show(shown, sizeof shown, hpath));
    }
    if (hpath)
        return dup_str(c, &cfg->health_check_path, hpath);
    return dup_str(c, &cfg->health_check_method, method ? method : "eth_blockNumber");
}

/* A UNIX socket path: fits sun_path, no control bytes. */
static int check_socket_path(struct ctx *c, const config_setting_t *s, const char *key,
                             const char *v)
{
    struct sockaddr_un sa;
    char shown[SHOW_MAX + 8];
    if (strlen(v) >= sizeof sa.sun_path)
        return fail(c, s, key, "must be shorter than %zu bytes, got %zu", sizeof sa.sun_path,
                    strlen(v));
    if (!printable_no_space(v))
        return fail(c, s, key, "must hold no spaces or control bytes, got \"%s\"",
                    show(shown, sizeof shown, v));
    return 0;
}

/* "HOST:PORT": a host name, IPv4 address, [IPv6] or "*", and a port. */
static int valid_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return 0;
    size_t hl = (size_t)(colon - v);
    if (parse_port(colon + 1, strlen(colon + 1)) < 0)
        return 0;
    if (v[0] == '[')
        return valid_ipv6_literal(v, hl);
    if (hl == 1 && v[0] == '*')
        return 1;
    for (size_t i = 0; i < hl; i++)
        if (!is_host_char(v[i]))
            return 0;
    return 1;
}

/* "0660"-style mode: 3 or 4 octal digits, at most 0777; -1 when invalid. */
static int parse_mode(const char *v)
{
    size_t n = strlen(v);
    if (n < 3 || n > 4)
        return -1;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '7')
            return -1;
        m = m * 8 + (v[i] - '0');
    }
    return m <= 0777 ? m : -1;
}

/* server = { ... }: paths (defaulted from the pool name), limits, user. */
static int read_server(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    static const char *const known[] = {"socket",
                                        "socket_mode",
                                        "http_listen",
                                        "control_socket",
                                        "shm_name",
                                        "workers",
                                        "max_clients",
                                        "max_request_bytes",
                                        "max_batch",
                                        "max_response_bytes",
                                        "client_idle_timeout_ms",
                                        "queue_timeout_ms",
                                        "shutdown_timeout_ms",
                                        "user",
                                        "group",
                                        "log_level",
                                        NULL};
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    config_setting_t *g, *s;
    const char *v;
    char buf[256], shown[SHOW_MAX + 8];
    if (get_group(c, root, "server", "server", &g) < 0)
        return -1;
    if (g && check_keys(c, g, "server.", known) < 0)
        return -1;
    if (read_ints(c, cfg, g, "server.", server_ints) < 0)
        return -1;
    if (cfg->workers == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = cpus < 1 ? 1 : cpus > 64 ? 64 : cpus;
    }

    if (get_str(c, g, "socket", "server.socket", &v, &s) < 0)
        return -1;
    if (v) {
        if (check_socket_path(c, s, "server.socket", v) < 0)
            return -1;
    } else {
        snprintf(buf, sizeof buf, "/run/rpcpool/%s.ipc", cfg->name);
    }
    if (dup_str(c, &cfg->socket_path, v ? v : buf) < 0)
        return -1;

    config_setting_t *cs;
    if (get_str(c, g, "control_socket", "server.control_socket", &v, &cs) < 0)
        return -1;
    if (v) {
        if (check_socket_path(c, cs, "server.control_socket", v) < 0)
            return -1;
    } else {
        snprintf(buf, sizeof buf, "/run/rpcpool/%s.ctl", cfg->name);
    }
    if (dup_str(c, &cfg->control_socket, v ? v : buf) < 0)
        return -1;
    if (strcmp(cfg->socket_path, cfg->control_socket) == 0)
        return fail(c, cs ? cs : s, cs ? "server.control_socket" : "server.socket",
                    "server.socket and server.control_socket must differ");

    if (get_str(c, g, "shm_name", "server.shm_name", &v, &s) < 0)
        return -1;
    if (v && (v[0] != '/' || strchr(v + 1, '/') || strlen(v) < 2 || strlen(v) > SHM_NAME_MAX ||
              !printable_no_space(v)))
        return fail(c, s, "server.shm_name",
                    "must be '/' followed by 1 to %d bytes without '/', spaces or control "
                    "bytes, got \"%s\"",
                    SHM_NAME_MAX - 1, show(shown, sizeof shown, v));
    if (!v)
        snprintf(buf, sizeof buf, "/rpcpool.%s", cfg->name);
    if (dup_str(c, &cfg->shm_name, v ? v : buf) < 0)
        return -1;

    cfg->socket_mode = 0660;
    if (get_str(c, g, "socket_mode", "server.socket_mode", &v, &s) < 0)
        return -1;
    if (v) {
        cfg->socket_mode = parse_mode(v);
        if (cfg->socket_mode < 0)
            return fail(c, s, "server.socket_mode",
                        "must be an octal string between \"0000\" and \"0777\", got \"%s\"",
                        show(shown, sizeof shown, v));
    }

    if (get_str(c, g, "http_listen", "server.http_listen", &v, &s) < 0)
        return -1;
    if (v && !valid_listen(v))
        return fail(c, s, "server.http_listen",
                    "must be \"HOST:PORT\" with a port between 1 and 65535, got \"%s\"",
                    show(shown, sizeof shown, v));
    if (v && dup_str(c, &cfg->http_listen, v) < 0)
        return -1;

    const char *ug_names[] = {"user", "group"};
    char **ug_fields[] = {&cfg->user, &cfg->group};
    for (int k = 0; k < 2; k++) {
        char key[32];
        snprintf(key, sizeof key, "server.%s", ug_names[k]);
        if (get_str(c, g, ug_names[k], key, &v, &s) < 0)
            return -1;
        if (v && !valid_simple_name(v, USER_NAME_MAX))
            return fail(c, s, key, "must be 1 to %d characters of A-Z a-z 0-9 . _ -, got \"%s\"",
                        USER_NAME_MAX, show(shown, sizeof shown, v));
        if (v && dup_str(c, ug_fields[k], v) < 0)
            return -1;
    }

    cfg->log_level = RP_LOG_INFO;
    if (get_str(c, g, "log_level", "server.log_level", &v, &s) < 0)
        return -1;
    if (v) {
        int found = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(v, levels[k]) == 0)
                found = k;
        if (found < 0)
            return fail(c, s, "server.log_level",
                        "must be one of \"debug\", \"info\", \"warn\", \"error\", got \"%s\"",
                        show(shown, sizeof shown, v));
        cfg->log_level = (enum rp_log_level)found;
    }
    return 0;
}

/* subscriptions = { ... } (group may be absent: the defaults). */
static int read_subscriptions(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    static const char *const known[] = {"poll_interval_ms", "max_per_connection", "max_total",
                                        "backfill_blocks", NULL};
    config_setting_t *g;
    if (get_group(c, root, "subscriptions", "subscriptions", &g) < 0)
        return -1;
    if (g && check_keys(c, g, "subscriptions.", known) < 0)
        return -1;
    return read_ints(c, cfg, g, "subscriptions.", sub_ints);
}

/* A Redis address: an absolute UNIX socket path, or HOST:PORT. */
static int valid_redis_address(const char *v)
{
    if (v[0] == '/')
        return strlen(v) < 108 && printable_no_space(v);
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return 0;
    for (const char *p = v; p < colon; p++)
        if (!is_host_char((unsigned char)*p) && *p != '[' && *p != ']' && *p != ':')
            return 0;
    return parse_port(colon + 1, strlen(colon + 1)) > 0;
}

/* fleet = { redis; prefix; hosts; on_redis_down; }: absent means no fleet. */
static int read_fleet(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    static const char *const known[] = {"redis", "prefix", "hosts", "on_redis_down", NULL};
    char shown[SHOW_MAX + 8];
    config_setting_t *g, *s;
    const char *v;
    cfg->fleet_hosts = 1;
    cfg->fleet_on_down = RP_FLEET_FAIR_SHARE;
    if (get_group(c, root, "fleet", "fleet", &g) < 0)
        return -1;
    if (!g)
        return 0;
    if (check_keys(c, g, "fleet.", known) < 0)
        return -1;
    if (get_str(c, g, "redis", "fleet.redis", &v, &s) < 0)
        return -1;
    if (!v)
        return fail(c, g, "fleet.redis",
                    "is required in a fleet group (host:port or a socket path)");
    if (!valid_redis_address(v))
        return fail(c, s, "fleet.redis",
                    "must be host:port or an absolute UNIX socket path, got \"%s\"",
                    show(shown, sizeof shown, v));
    if (dup_str(c, &cfg->fleet_redis, v) < 0)
        return -1;
    if (get_str(c, g, "prefix", "fleet.prefix", &v, &s) < 0)
        return -1;
    if (v && (strlen(v) > 200 || !printable_no_space(v)))
        return fail(c, s, "fleet.prefix",
                    "must be 1 to 200 printable characters without spaces, got \"%s\"",
                    show(shown, sizeof shown, v));
    char def[RP_NAME_MAX + 16];
    snprintf(def, sizeof def, "rpcpool:%s:", cfg->name);
    if (dup_str(c, &cfg->fleet_prefix, v ? v : def) < 0)
        return -1;
    if (get_int(c, g, "hosts", "fleet.hosts", 1, 10000, &cfg->fleet_hosts, NULL) < 0)
        return -1;
    if (get_str(c, g, "on_redis_down", "fleet.on_redis_down", &v, &s) < 0)
        return -1;
    if (v && strcmp(v, "fair_share") == 0)
        cfg->fleet_on_down = RP_FLEET_FAIR_SHARE;
    else if (v && strcmp(v, "leased_only") == 0)
        cfg->fleet_on_down = RP_FLEET_LEASED_ONLY;
    else if (v)
        return fail(c, s, "fleet.on_redis_down",
                    "must be \"fair_share\" or \"leased_only\", got \"%s\"",
                    show(shown, sizeof shown, v));
    return 0;
}

/* cache = { ... }, coalesce = BOOL, hedge = { quantile; budget_percent; }. */
static int read_cache_hedge(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    static const char *const cache_known[] = {"max_bytes", "finality_depth", NULL};
    static const char *const hedge_known[] = {"quantile", "budget_percent", NULL};
    config_setting_t *g, *s;
    if (get_group(c, root, "cache", "cache", &g) < 0)
        return -1;
    if (g && check_keys(c, g, "cache.", cache_known) < 0)
        return -1;
    if (read_ints(c, cfg, g, "cache.", cache_ints) < 0)
        return -1;
    if (cfg->cache_max_bytes > 0 && cfg->cache_max_bytes < 65536)
        return fail(c, g ? config_setting_get_member(g, "max_bytes") : NULL, "cache.max_bytes",
                    "must be 0 (no cache) or at least 65536, got %lld",
                    (long long)cfg->cache_max_bytes);

    cfg->coalesce = 1;
    s = config_setting_get_member(root, "coalesce");
    if (s) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return fail(c, s, "coalesce", "must be true or false, got %s", type_name(s));
        cfg->coalesce = config_setting_get_bool(s);
    }

    cfg->hedge_quantile = 0.95;
    cfg->hedge_budget_percent = 10;
    if (get_group(c, root, "hedge", "hedge", &g) < 0)
        return -1;
    if (!g)
        return 0;
    if (check_keys(c, g, "hedge.", hedge_known) < 0)
        return -1;
    s = config_setting_get_member(g, "quantile");
    if (s) {
        if (config_setting_type(s) != CONFIG_TYPE_FLOAT)
            return fail(c, s, "hedge.quantile", "must be a number like 0.95, got %s", type_name(s));
        double q = config_setting_get_float(s);
        if (!(q >= 0.5 && q < 1.0))
            return fail(c, s, "hedge.quantile", "must be at least 0.5 and below 1, got %g", q);
        cfg->hedge_quantile = q;
    }
    return get_int(c, g, "budget_percent", "hedge.budget_percent", 0, 100,
                   &cfg->hedge_budget_percent, NULL);
}

/* Everything below the root, in dependency order: name (for default
 * paths), global rate_limit (inherited by endpoints), then the rest. */
static int read_all(struct ctx *c, const config_setting_t *root, struct rp_config *cfg)
{
    static const char *const known[] = {"name",
                                        "chain_id",
                                        "endpoints",
                                        "max_connections",
                                        "min_connections",
                                        "connection_timeout_ms",
                                        "idle_timeout_ms",
                                        "request_timeout_ms",
                                        "attempt_timeout_ms",
                                        "retries",
                                        "no_retry_methods",
                                        "balance",
                                        "health_check_interval_ms",
                                        "health_check",
                                        "max_block_lag",
                                        "consistency_wait_ms",
                                        "affinity_ms",
                                        "circuit_breaker",
                                        "rate_limit",
                                        "tls_ca_file",
                                        "server",
                                        "subscriptions",
                                        "fleet",
                                        "cache",
                                        "coalesce",
                                        "hedge",
                                        NULL};
    static const char *const cb_known[] = {"failure_threshold", "recovery_timeout_ms",
                                           "half_open_max_attempts", NULL};
    static const char *const balances[] = {"p2c", "round_robin", "weighted", "random"};
    char shown[SHOW_MAX + 8];
    config_setting_t *s, *g;
    const char *v;

    if (check_keys(c, root, "", known) < 0)
        return -1;

    if (get_str(c, root, "name", "name", &v, &s) < 0)
        return -1;
    if (v && !valid_simple_name(v, RP_NAME_MAX - 1))
        return fail(c, s, "name", "must be 1 to %d characters of A-Z a-z 0-9 . _ -, got \"%s\"",
                    RP_NAME_MAX - 1, show(shown, sizeof shown, v));
    snprintf(cfg->name, sizeof cfg->name, "%s", v ? v : "rpcpool");

    if (read_ints(c, cfg, root, "", top_ints) < 0)
        return -1;
    if (check_order(c, root, "", "min_connections", cfg->min_connections, "max_connections",
                    cfg->max_connections) < 0)
        return -1;
    /* an attempt is bounded by what is left of the request: when the user
     * set only request_timeout_ms, attempt_timeout_ms follows it down */
    if (!config_setting_get_member(root, "attempt_timeout_ms") &&
        cfg->attempt_timeout_ms > cfg->request_timeout_ms)
        cfg->attempt_timeout_ms = cfg->request_timeout_ms;
    if (check_order(c, root, "", "attempt_timeout_ms", cfg->attempt_timeout_ms,
                    "request_timeout_ms", cfg->request_timeout_ms) < 0)
        return -1;

    if (get_group(c, root, "circuit_breaker", "circuit_breaker", &g) < 0)
        return -1;
    if (g && check_keys(c, g, "circuit_breaker.", cb_known) < 0)
        return -1;
    if (read_ints(c, cfg, g, "circuit_breaker.", breaker_ints) < 0)
        return -1;

    static const struct rp_rate_limit default_rl = {100, 60000, 10};
    static const struct rp_rate_limit block_base = {100, 60000, 100};
    if (get_group(c, root, "rate_limit", "rate_limit", &g) < 0)
        return -1;
    if (read_rate_limit(c, g, "rate_limit.", g ? &block_base : &default_rl, &cfg->rate_limit) < 0)
        return -1;

    if (get_str(c, root, "balance", "balance", &v, &s) < 0)
        return -1;
    cfg->balance = RP_BALANCE_P2C;
    if (v) {
        int found = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(v, balances[k]) == 0)
                found = k;
        if (found < 0)
            return fail(c, s, "balance",
                        "must be one of \"p2c\", \"round_robin\", \"weighted\", \"random\", got "
                        "\"%s\"",
                        show(shown, sizeof shown, v));
        cfg->balance = (enum rp_balance)found;
    }

    if (read_ca_file(c, root, "tls_ca_file", &cfg->tls_ca_file) < 0)
        return -1;
    if (read_no_retry(c, root, cfg) < 0 || read_health_check(c, root, cfg) < 0 ||
        read_endpoints(c, root, cfg) < 0 || read_server(c, root, cfg) < 0 ||
        read_subscriptions(c, root, cfg) < 0 || read_fleet(c, root, cfg) < 0 ||
        read_cache_hedge(c, root, cfg) < 0)
        return -1;
    return 0;
}

/* libconfig 1.5 calls exit() when an @include names something that is not
 * a readable regular file (a directory, ""): check every @include line of
 * FILE, and of the files it includes, before libconfig reads them. Relative
 * names are taken from TOP's directory, as libconfig does. Returns 0, or -1
 * with "FILE:LINE: @include: reason" in ERR. */
static int includes_check(const char *top, const char *file, int depth, char *err, size_t errlen)
{
    if (depth > 10) {
        snprintf(err, errlen, "%s: @include: nested more than 10 deep", file);
        return -1;
    }
    FILE *fp = fopen(file, "r");
    if (!fp)
        return 0; /* libconfig reports what it cannot open */
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, fp)) {
        lineno++;
        const char *p = line + strspn(line, " \t");
        if (strncmp(p, "@include", 8) != 0)
            continue;
        p += 8;
        p += strspn(p, " \t");
        if (*p != '"')
            continue; /* not an include directive libconfig would act on */
        const char *q = strchr(p + 1, '"');
        if (!q)
            continue;
        char name[PATH_MAX], full[PATH_MAX * 2];
        snprintf(name, sizeof name, "%.*s", (int)(q - p - 1), p + 1);
        const char *slash = strrchr(top, '/');
        if (name[0] == '/' || !slash)
            snprintf(full, sizeof full, "%s", name);
        else
            snprintf(full, sizeof full, "%.*s/%s", (int)(slash - top), top, name);
        struct stat st;
        if (name[0] == '\0' || stat(full, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s:%d: @include: \"%s\" is not a readable regular file", file,
                     lineno, name);
            rc = -1;
        } else {
            rc = includes_check(top, full, depth + 1, err, errlen);
        }
    }
    fclose(fp);
    return rc;
}

/* See rp_config.h. The file is opened first only to give a precise errno:
 * libconfig reports any open failure as "file I/O error". */
int rp_config_load(const char *path, struct rp_config *cfg, char *err, size_t errlen)
{
    struct ctx c = {.path = path, .err = err, .errlen = errlen};
    memset(cfg, 0, sizeof *cfg);
    if (err && errlen)
        err[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int isdir = fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode);
    fclose(fp);
    if (isdir) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(EISDIR));
        return -1;
    }

    if (includes_check(path, path, 0, err, errlen) != 0)
        return -1;
    config_t lc;
    config_init(&lc);
    /* @include paths are relative to the file's directory. */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        slash[slash == dir ? 1 : 0] = '\0';
        config_set_include_dir(&lc, dir);
        c.include_dir = dir;
    }
    int rc = -1;
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        const char *ef = path;
        if (config_error_file(&lc) && strcmp(config_error_file(&lc), path) != 0) {
            ef = config_error_file(&lc);
            if (ef[0] != '/' && c.include_dir) {
                snprintf(c.file_buf, sizeof c.file_buf, "%s/%s", c.include_dir, ef);
                ef = c.file_buf;
            }
        }
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            fail(&c, NULL, "cannot open", "%s", strerror(errno ? errno : EIO));
        else if (err && errlen)
            snprintf(err, errlen, "%s:%d: syntax error: %s", ef, config_error_line(&lc),
                     config_error_text(&lc));
    } else if (!(cfg->path = strdup(path))) {
        fail_oom(&c);
    } else {
        rc = read_all(&c, config_root_setting(&lc), cfg);
    }
    config_destroy(&lc);
    free_scans(&c);
    if (rc < 0)
        rp_config_free(cfg);
    return rc;
}

/* See rp_config.h. */
void rp_config_free(struct rp_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    for (int i = 0; i < RP_MAX_ENDPOINTS; i++) {
        struct rp_endpoint_config *e = &cfg->endpoints[i];
        free(e->url);
        free(e->url_redacted);
        free(e->ws_url);
        free(e->ws_url_redacted);
        free(e->tls_ca_file);
        for (int k = 0; k < RP_MAX_HEADERS; k++)
            free(e->headers[k]);
    }
    for (int i = 0; i < RP_MAX_NO_RETRY; i++)
        free(cfg->no_retry_methods[i]);
    free(cfg->tls_ca_file);
    free(cfg->health_check_method);
    free(cfg->health_check_path);
    free(cfg->socket_path);
    free(cfg->http_listen);
    free(cfg->control_socket);
    free(cfg->shm_name);
    free(cfg->user);
    free(cfg->group);
    free(cfg->fleet_redis);
    free(cfg->fleet_prefix);
    memset(cfg, 0, sizeof *cfg);
}

/* See rp_config.h. The two send methods count even when a configured list
 * leaves them out (docs/interface.md section 2). */
int rp_config_is_no_retry(const struct rp_config *cfg, const char *method, size_t len)
{
    if ((len == sizeof SEND_RAW - 1 && memcmp(method, SEND_RAW, len) == 0) ||
        (len == sizeof SEND_TX - 1 && memcmp(method, SEND_TX, len) == 0))
        return 1;
    if (!cfg)
        return 0;
    for (int i = 0; i < cfg->no_retry_count; i++) {
        const char *m = cfg->no_retry_methods[i];
        if (m && strlen(m) == len && memcmp(m, method, len) == 0)
            return 1;
    }
    return 0;
}

const char *rp_balance_name(enum rp_balance b)
{
    switch (b) {
    case RP_BALANCE_P2C:
        return "p2c";
    case RP_BALANCE_ROUND_ROBIN:
        return "round_robin";
    case RP_BALANCE_WEIGHTED:
        return "weighted";
    case RP_BALANCE_RANDOM:
        return "random";
    }
    return "unknown";
}

const char *rp_log_level_name(enum rp_log_level l)
{
    switch (l) {
    case RP_LOG_DEBUG:
        return "debug";
    case RP_LOG_INFO:
        return "info";
    case RP_LOG_WARN:
        return "warn";
    case RP_LOG_ERROR:
        return "error";
    }
    return "unknown";
}

const char *rp_fleet_down_name(enum rp_fleet_down d)
{
    return d == RP_FLEET_LEASED_ONLY ? "leased_only" : "fair_share";
}
