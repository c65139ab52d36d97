/* rpcpoolctl.c - send one command to a running rpcpoold's control socket
 * and show the answer (docs/interface.md section 4).
 *
 *   rpcpoolctl [-c FILE | -s SOCKET] [-j] [-t TIMEOUT_MS] COMMAND [ARG]
 *
 * One line goes out, one line (a JSON object) comes back. The answer is
 * parsed with jsmn and shown as tables (status), key: value lines (stats),
 * the text itself (metrics), the command list (help), or "ok"; -j prints the
 * raw JSON instead. Exit status: 0 for {"ok":true}, 1 for {"ok":false} (the
 * error on stderr), 2 when no answer came (cannot connect, timeout, closed,
 * not JSON) or the arguments are wrong.
 */
#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rp_config.h"
#include "rp_control.h"

#ifndef RP_VERSION
#define RP_VERSION "unknown"
#endif

#define CTL_DEFAULT_CONFIG     "/etc/rpcpool/rpcpool.conf"
#define CTL_DEFAULT_TIMEOUT_MS 5000
#define CTL_MAX_ANSWER_BYTES   (256u << 20) /* metrics of a big pool fit many times over */
#define CTL_MAX_DEPTH          32           /* JSON nesting accepted in answers */

#define EXIT_OK       0
#define EXIT_REFUSED  1 /* {"ok":false} */
#define EXIT_NOANSWER 2 /* no usable answer, or bad usage */

static void ctl_usage(FILE *f)
{
    fprintf(f,
            "usage: rpcpoolctl [-c FILE | -s SOCKET] [-j] [-t TIMEOUT_MS] COMMAND [ARG]\n"
            "Send a command to a running rpcpoold's control socket.\n"
            "  -c FILE        take server.control_socket from this configuration\n"
            "                 (default %s)\n"
            "  -s SOCKET      the control socket's path\n"
            "  -j             print the raw JSON answer\n"
            "  -t TIMEOUT_MS  how long to wait for the answer (default %d)\n"
            "  -h             this help;  -V  version\n"
            "Commands (`rpcpoolctl help` asks the daemon): ping, status, stats, metrics,\n"
            "drain EP, enable EP, reset EP, reload, workers N, shutdown, help.\n"
            "Exit status: 0 ok, 1 the daemon refused (error on stderr), 2 no answer.\n",
            CTL_DEFAULT_CONFIG, CTL_DEFAULT_TIMEOUT_MS);
}

/* ------------------------------------------------------------------ */
/* talking to the socket                                               */
/* ------------------------------------------------------------------ */

static uint64_t ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static int ctl_left_ms(uint64_t deadline)
{
    uint64_t now = ctl_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Connect to PATH before DEADLINE. Returns the fd (non-blocking), or -1
 * with a message on stderr. */
static int ctl_connect(const char *path, uint64_t deadline)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "rpcpoolctl: control socket path too long: %s\n", path);
        return -1;
    }
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        fprintf(stderr, "rpcpoolctl: socket: %s\n", strerror(errno));
        return -1;
    }
    for (;;) {
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        int e = errno;
        if ((e == EAGAIN || e == EINTR) && ctl_left_ms(deadline) > 0) {
            poll(NULL, 0, 10); /* backlog full: the daemon is busy; try again */
            continue;
        }
        if (e == ENOENT || e == ECONNREFUSED)
            fprintf(stderr, "rpcpoolctl: cannot connect to %s: %s (is rpcpoold running?)\n", path,
                    strerror(e));
        else if (e == EACCES || e == EPERM)
            fprintf(stderr,
                    "rpcpoolctl: cannot connect to %s: %s (run as the daemon's user or root)\n",
                    path, strerror(e));
        else if (e == EAGAIN)
            fprintf(stderr, "rpcpoolctl: cannot connect to %s: the daemon did not accept\n", path);
        else
            fprintf(stderr, "rpcpoolctl: cannot connect to %s: %s\n", path, strerror(e));
        close(fd);
        return -1;
    }
}

/* Send LINE ('\n' included) and read one answer line from PATH before
 * DEADLINE. Returns the answer (malloc'd, without '\n'), or NULL with a
 * message on stderr naming the socket. */
static char *ctl_exchange(const char *path, const char *line, uint64_t deadline, int timeout_ms)
{
    int fd = ctl_connect(path, deadline);
    if (fd < 0)
        return NULL;
    size_t len = strlen(line), off = 0;
    /* a peer refused by the daemon may see its write fail; the refusal is
     * still waiting to be read, so a failed write only ends the writing */
    while (off < len) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            if (poll(&pf, 1, ctl_left_ms(deadline)) <= 0)
                break;
            continue;
        }
        break;
    }
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fprintf(stderr, "rpcpoolctl: out of memory\n");
        close(fd);
        return NULL;
    }
    const char *why = NULL;
    int err = 0;
    for (;;) {
        char *nl = got ? memchr(buf, '\n', got) : NULL;
        if (nl) {
            *nl = '\0';
            close(fd);
            return buf;
        }
        if (got + 1 >= cap) {
            if (cap >= CTL_MAX_ANSWER_BYTES) {
                why = "answer too large";
                break;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                why = "out of memory";
                break;
            }
            buf = p;
            cap *= 2;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = ctl_left_ms(deadline);
        int pr = left > 0 ? poll(&pf, 1, left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            fprintf(stderr, "rpcpoolctl: no answer from %s within %d ms\n", path, timeout_ms);
            free(buf);
            close(fd);
            return NULL;
        }
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            why = "closed the connection without an answer";
            break;
        } else if (errno != EINTR && errno != EAGAIN) {
            err = errno;
            why = "connection failed before an answer";
            break;
        }
    }
    if (err)
        fprintf(stderr, "rpcpoolctl: %s: %s: %s\n", path, why, strerror(err));
    else
        fprintf(stderr, "rpcpoolctl: %s: %s\n", path, why);
    free(buf);
    close(fd);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* reading the answer                                                  */
/* ------------------------------------------------------------------ */

struct json {
    const char *js;
    jsmntok_t *t;
    int n;
};

/* Index after the subtree of token I (bounded nesting). */
static int json_skip(const struct json *j, int i, int depth)
{
    if (i >= j->n || depth > CTL_MAX_DEPTH)
        return j->n;
    int n = j->t[i].size;
    i++;
    for (int k = 0; k < n && i < j->n; k++)
        i = json_skip(j, i, depth + 1);
    return i;
}

/* The value token of member KEY of the object at token OBJ, or -1. */
static int json_member(const struct json *j, int obj, const char *key)
{
    if (obj < 0 || obj >= j->n || j->t[obj].type != JSMN_OBJECT)
        return -1;
    size_t klen = strlen(key);
    int i = obj + 1;
    for (int k = 0; k < j->t[obj].size && i + 1 < j->n; k++) {
        const jsmntok_t *kt = &j->t[i];
        if (kt->type == JSMN_STRING && (size_t)(kt->end - kt->start) == klen &&
            memcmp(j->js + kt->start, key, klen) == 0)
            return i + 1;
        i = json_skip(j, i, 0);
    }
    return -1;
}

/* Element IDX of the array at token ARR, or -1. */
static int json_element(const struct json *j, int arr, int idx)
{
    if (arr < 0 || arr >= j->n || j->t[arr].type != JSMN_ARRAY || idx >= j->t[arr].size)
        return -1;
    int i = arr + 1;
    for (int k = 0; k < idx; k++)
        i = json_skip(j, i, 0);
    return i < j->n ? i : -1;
}

static void utf8_put(char **o, uint32_t cp)
{
    unsigned char *p = (unsigned char *)*o;
    if (cp < 0x80) {
        *p++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *p++ = (unsigned char)(0xc0 | (cp >> 6));
        *p++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *p++ = (unsigned char)(0xe0 | (cp >> 12));
        *p++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *p++ = (unsigned char)(0x80 | (cp & 0x3f));
    } else {
        *p++ = (unsigned char)(0xf0 | (cp >> 18));
        *p++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        *p++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        *p++ = (unsigned char)(0x80 | (cp & 0x3f));
    }
    *o = (char *)p;
}

static uint32_t hex4(const char *s)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (uint32_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Token I as a C string (malloc'd): strings unescaped (\uXXXX, surrogate
 * pairs joined, lone surrogates as U+FFFD), primitives as written. "" when
 * I is -1. NULL only when out of memory. */
static char *json_str(const struct json *j, int i)
{
    if (i < 0 || i >= j->n)
        return strdup("");
    const char *s = j->js + j->t[i].start;
    size_t len = (size_t)(j->t[i].end - j->t[i].start);
    char *out = malloc(len * 2 + 1); /* \uXXXX (6 bytes) never gives more than 4 */
    if (!out)
        return NULL;
    char *o = out;
    if (j->t[i].type != JSMN_STRING) {
        memcpy(out, s, len);
        out[len] = '\0';
        return out;
    }
    for (size_t k = 0; k < len; k++) {
        if (s[k] != '\\' || k + 1 >= len) {
            *o++ = s[k];
            continue;
        }
        char c = s[++k];
        switch (c) {
        case 'n':
            *o++ = '\n';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'u': {
            if (k + 4 >= len) {
                utf8_put(&o, 0xfffd);
                k = len;
                break;
            }
            uint32_t cp = hex4(s + k + 1);
            k += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && k + 6 < len && s[k + 1] == '\\' &&
                s[k + 2] == 'u') {
                uint32_t lo = hex4(s + k + 3);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    k += 6;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd;
            utf8_put(&o, cp);
            break;
        }
        default:
            *o++ = c;
            break; /* \" \\ \/ */
        }
    }
    *o = '\0';
    return out;
}

/* Copy S for a terminal: control bytes, DEL and non-ASCII bytes become '?',
 * so an answer cannot send escape sequences to the operator's screen. */
static void term_clean(char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f)
            *s = '?';
    }
}

/* Member KEY of OBJ as a cleaned string in OUT (OUTLEN bytes); "-" when
 * absent. */
static const char *field(const struct json *j, int obj, const char *key, char *out, size_t outlen)
{
    int i = json_member(j, obj, key);
    char *s = i >= 0 ? json_str(j, i) : NULL;
    snprintf(out, outlen, "%s", s ? s : "-");
    free(s);
    term_clean(out);
    return out;
}

/* ------------------------------------------------------------------ */
/* printing                                                            */
/* ------------------------------------------------------------------ */

/* The fleet line of status (fleet mode only). */
static void print_fleet(const struct json *j)
{
    int f = json_member(j, 0, "fleet");
    if (f < 0 || j->t[f].type != JSMN_OBJECT)
        return;
    char con[16], mode[24], pol[24], hosts[16], leased[24], spent[24], bal[24], vr[24], vs[24];
    field(j, f, "connected", con, sizeof con);
    printf("\nfleet: %s, mode %s (on_redis_down %s, hosts %s); tokens leased %s, spent %s, on "
           "hand %s; verdicts received %s, sent %s\n",
           strcmp(con, "true") == 0 ? "connected" : "NOT connected",
           field(j, f, "mode", mode, sizeof mode), field(j, f, "on_redis_down", pol, sizeof pol),
           field(j, f, "hosts", hosts, sizeof hosts),
           field(j, f, "tokens_leased", leased, sizeof leased),
           field(j, f, "tokens_spent", spent, sizeof spent),
           field(j, f, "tokens_balance", bal, sizeof bal),
           field(j, f, "verdicts_received", vr, sizeof vr),
           field(j, f, "verdicts_sent", vs, sizeof vs));
}

static void print_status(const struct json *j)
{
    char name[64], pid[32], up[32], gen[32];
    printf("pool %s  pid %s  uptime %ss  generation %s\n\n", field(j, 0, "name", name, sizeof name),
           field(j, 0, "pid", pid, sizeof pid), field(j, 0, "uptime_s", up, sizeof up),
           field(j, 0, "generation", gen, sizeof gen));
    printf("%-3s %-16s %-34s %-11s %-9s %7s %4s %9s %10s %8s %8s %8s %8s %8s %10s %5s %13s\n", "ID",
           "NAME", "URL", "STATE", "BREAKER", "TOKENS", "INFL", "CONN A/I", "OK", "FAILED",
           "RETRIED", "AVGms", "P50ms", "P99ms", "HEAD", "LAG", "HEDGES S/W");
    int eps = json_member(j, 0, "endpoints");
    int neps = eps >= 0 && j->t[eps].type == JSMN_ARRAY ? j->t[eps].size : 0;
    for (int k = 0; k < neps; k++) {
        int e = json_element(j, eps, k);
        int conns = json_member(j, e, "connections");
        int reqs = json_member(j, e, "requests");
        int lat = json_member(j, e, "latency_ms");
        char id[16], nm[64], url[160], st[16], br[16], tok[32], infl[16], ca[16], ci[16];
        char ok[24], fl[24], rt[24], avg[24], p50[24], p99[24], head[24], lag[24], conn[40];
        char hs[24], hw[24], hedges[56];
        int hj = json_member(j, e, "hedges");
        snprintf(hedges, sizeof hedges, "%s/%s", field(j, hj, "sent", hs, sizeof hs),
                 field(j, hj, "won", hw, sizeof hw));
        field(j, conns, "active", ca, sizeof ca);
        field(j, conns, "idle", ci, sizeof ci);
        snprintf(conn, sizeof conn, "%s/%s", ca, ci);
        field(j, e, "tokens", tok, sizeof tok);
        double tv = strtod(tok, NULL);
        snprintf(tok, sizeof tok, "%.1f", tv);
        field(j, e, "head_block", head, sizeof head);
        if (strcmp(head, "0") == 0)
            snprintf(head, sizeof head, "-");
        printf("%-3s %-16.16s %-34.34s %-11s %-9s %7s %4s %9s %10s %8s %8s %8s %8s %8s %10s "
               "%5s %13s\n",
               field(j, e, "id", id, sizeof id), field(j, e, "name", nm, sizeof nm),
               field(j, e, "url", url, sizeof url), field(j, e, "state", st, sizeof st),
               field(j, e, "breaker", br, sizeof br), tok,
               field(j, e, "inflight", infl, sizeof infl), conn,
               field(j, reqs, "ok", ok, sizeof ok), field(j, reqs, "failed", fl, sizeof fl),
               field(j, reqs, "retried", rt, sizeof rt), field(j, lat, "avg", avg, sizeof avg),
               field(j, lat, "p50", p50, sizeof p50), field(j, lat, "p99", p99, sizeof p99), head,
               field(j, e, "lag", lag, sizeof lag), hedges);
    }
    if (neps == 0)
        printf("(no endpoints configured)\n");

    printf("\n%-4s %8s %-8s %-9s %10s %8s %7s %4s\n", "SLOT", "PID", "KIND", "STATE", "REQUESTS",
           "RESTARTS", "CLIENTS", "GEN");
    int wk = json_member(j, 0, "workers");
    int nwk = wk >= 0 && j->t[wk].type == JSMN_ARRAY ? j->t[wk].size : 0;
    for (int k = 0; k < nwk; k++) {
        int w = json_element(j, wk, k);
        char slot[16], wpid[24], kind[16], st[16], req[24], rs[24], cl[24], g[24];
        printf("%-4s %8s %-8s %-9s %10s %8s %7s %4s\n", field(j, w, "slot", slot, sizeof slot),
               field(j, w, "pid", wpid, sizeof wpid), field(j, w, "kind", kind, sizeof kind),
               field(j, w, "state", st, sizeof st), field(j, w, "requests", req, sizeof req),
               field(j, w, "restarts", rs, sizeof rs), field(j, w, "clients", cl, sizeof cl),
               field(j, w, "generation", g, sizeof g));
    }
    if (nwk == 0)
        printf("(no workers)\n");
    print_fleet(j);
    int hj = json_member(j, 0, "hedges");
    if (hj >= 0) {
        char hc[24], hs[24], hw[24], hl[24];
        printf("\nhedges: sent %s, won %s, lost %s (of %s calls that could be hedged)\n",
               field(j, hj, "sent", hs, sizeof hs), field(j, hj, "won", hw, sizeof hw),
               field(j, hj, "lost", hl, sizeof hl), field(j, hj, "calls", hc, sizeof hc));
    }
    int ca = json_member(j, 0, "cache");
    if (ca >= 0) {
        char on[8], co[8], h[24], m[24], c[24], e[24], bu[24], bt[24];
        field(j, ca, "enabled", on, sizeof on);
        field(j, ca, "region", co, sizeof co);
        printf("\ncache %s%s  hits %s  misses %s  coalesced %s  entries %s  bytes %s/%s\n",
               strcmp(on, "true") == 0 ? "on" : "off",
               strcmp(co, "true") == 0 ? "" : " (no region)", field(j, ca, "hits", h, sizeof h),
               field(j, ca, "misses", m, sizeof m), field(j, ca, "coalesced", c, sizeof c),
               field(j, ca, "entries", e, sizeof e), field(j, ca, "bytes_used", bu, sizeof bu),
               field(j, ca, "bytes_total", bt, sizeof bt));
    }
    int sb = json_member(j, 0, "subscriptions");
    if (sb >= 0) {
        int fo = json_member(j, sb, "follower");
        int lat = json_member(j, sb, "delivery_latency_ms");
        char tot[24], nh[24], lg[24], hd[24], sn[24], lag[24], nt[24], avg[24];
        printf("\nsubscriptions %s (newHeads %s, logs %s)  follower head %s seen %s lag %s  "
               "notifications %s  delivery avg %s ms\n",
               field(j, sb, "total", tot, sizeof tot), field(j, sb, "new_heads", nh, sizeof nh),
               field(j, sb, "logs", lg, sizeof lg), field(j, fo, "head_block", hd, sizeof hd),
               field(j, fo, "seen_block", sn, sizeof sn), field(j, fo, "lag", lag, sizeof lag),
               field(j, sb, "notifications", nt, sizeof nt), field(j, lat, "avg", avg, sizeof avg));
    }
}

/* Every member but "ok" as "key: value" lines (stats). */
static void print_members(const struct json *j)
{
    int i = 1;
    for (int k = 0; k < j->t[0].size && i + 1 < j->n; k++) {
        char *key = json_str(j, i);
        char *val = json_str(j, i + 1);
        if (key && val && strcmp(key, "ok") != 0) {
            term_clean(key);
            term_clean(val);
            printf("%s: %s\n", key, val);
        }
        free(key);
        free(val);
        i = json_skip(j, i, 0);
    }
}

static void print_help(const struct json *j)
{
    int cmds = json_member(j, 0, "commands");
    int n = cmds >= 0 && j->t[cmds].type == JSMN_ARRAY ? j->t[cmds].size : 0;
    printf("commands:\n");
    for (int k = 0; k < n; k++) {
        int c = json_element(j, cmds, k);
        char name[64], args[32], help[256], both[100];
        field(j, c, "name", name, sizeof name);
        field(j, c, "args", args, sizeof args);
        if (strcmp(args, "-") == 0)
            args[0] = '\0';
        snprintf(both, sizeof both, "%s%s%s", name, args[0] ? " " : "", args);
        printf("  %-14s %s\n", both, field(j, c, "help", help, sizeof help));
    }
}

/* "ok", then " key=value" for every other scalar member (reload's
 * generation, drain's endpoint...). */
static void print_ok(const struct json *j)
{
    fputs("ok", stdout);
    int i = 1;
    for (int k = 0; k < j->t[0].size && i + 1 < j->n; k++) {
        if (j->t[i + 1].type == JSMN_STRING || j->t[i + 1].type == JSMN_PRIMITIVE) {
            char *key = json_str(j, i);
            char *val = json_str(j, i + 1);
            if (key && val && strcmp(key, "ok") != 0) {
                term_clean(key);
                term_clean(val);
                printf(" %s=%s", key, val);
            }
            free(key);
            free(val);
        }
        i = json_skip(j, i, 0);
    }
    fputs("\n", stdout);
}

/* Show ANSWER to command CMD; returns the exit status. */
static int ctl_show(const char *cmd, const char *answer, int raw)
{
    jsmn_parser p;
    jsmn_init(&p);
    size_t len = strlen(answer);
    int n = jsmn_parse(&p, answer, len, NULL, 0);
    struct json j = {.js = answer, .t = NULL, .n = 0};
    if (n > 0) {
        j.t = calloc((size_t)n, sizeof *j.t);
        if (!j.t) {
            fprintf(stderr, "rpcpoolctl: out of memory\n");
            return EXIT_NOANSWER;
        }
        jsmn_init(&p);
        j.n = jsmn_parse(&p, answer, len, j.t, (unsigned)n);
    }
    int okt = j.n > 0 && j.t[0].type == JSMN_OBJECT && j.t[0].end == (int)len
                  ? json_member(&j, 0, "ok")
                  : -1;
    char *okv = okt >= 0 && j.t[okt].type == JSMN_PRIMITIVE ? json_str(&j, okt) : NULL;
    int rc;
    if (!okv || (strcmp(okv, "true") != 0 && strcmp(okv, "false") != 0)) {
        fprintf(stderr, "rpcpoolctl: malformed answer: %.200s\n", answer);
        rc = EXIT_NOANSWER;
    } else if (strcmp(okv, "false") == 0) {
        if (raw)
            printf("%s\n", answer);
        char *e = json_str(&j, json_member(&j, 0, "error"));
        fprintf(stderr, "rpcpoolctl: %s\n", e && e[0] ? e : "failed");
        free(e);
        rc = EXIT_REFUSED;
    } else {
        rc = EXIT_OK;
        if (raw) {
            printf("%s\n", answer);
        } else if (strcmp(cmd, "status") == 0) {
            print_status(&j);
        } else if (strcmp(cmd, "stats") == 0) {
            print_members(&j);
        } else if (strcmp(cmd, "metrics") == 0) {
            char *text = json_str(&j, json_member(&j, 0, "text"));
            fputs(text ? text : "", stdout);
            free(text);
        } else if (strcmp(cmd, "help") == 0) {
            print_help(&j);
        } else {
            print_ok(&j);
        }
    }
    free(okv);
    free(j.t);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = EXIT_NOANSWER;
    return rc;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *sock = NULL;
    int raw = 0, timeout_ms = CTL_DEFAULT_TIMEOUT_MS, opt;
    while ((opt = getopt(argc, argv, "+c:s:jt:hV")) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 's':
            sock = optarg;
            break;
        case 'j':
            raw = 1;
            break;
        case 't': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > 3600000) {
                fprintf(stderr, "rpcpoolctl: -t wants milliseconds from 1 to 3600000\n");
                return EXIT_NOANSWER;
            }
            timeout_ms = (int)v;
            break;
        }
        case 'h':
            ctl_usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("rpcpoolctl %s\n", RP_VERSION);
            return EXIT_OK;
        default:
            ctl_usage(stderr);
            return EXIT_NOANSWER;
        }
    }
    if (conf && sock) {
        fprintf(stderr, "rpcpoolctl: -c and -s exclude each other\n");
        return EXIT_NOANSWER;
    }
    if (optind >= argc) {
        ctl_usage(stderr);
        return EXIT_NOANSWER;
    }
    signal(SIGPIPE, SIG_IGN);

    /* the command line: COMMAND and its argument words, joined by spaces */
    char line[RP_CONTROL_MAX_LINE + 2];
    size_t len = 0;
    for (int i = optind; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (strpbrk(argv[i], "\r\n")) {
            fprintf(stderr, "rpcpoolctl: arguments may not contain line breaks\n");
            return EXIT_NOANSWER;
        }
        if (len + n + 1 > RP_CONTROL_MAX_LINE) {
            fprintf(stderr, "rpcpoolctl: command longer than %d bytes\n", RP_CONTROL_MAX_LINE);
            return EXIT_NOANSWER;
        }
        if (i > optind)
            line[len++] = ' ';
        memcpy(line + len, argv[i], n);
        len += n;
    }
    line[len++] = '\n';
    line[len] = '\0';
    const char *cmd = argv[optind];

    char *path = NULL;
    if (sock) {
        path = strdup(sock);
        if (!path)
            fprintf(stderr, "rpcpoolctl: out of memory\n");
    } else {
        struct rp_config cfg;
        char err[RP_ERR_MAX];
        const char *file = conf ? conf : CTL_DEFAULT_CONFIG;
        if (rp_config_load(file, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "rpcpoolctl: %s\n", err);
        } else {
            path = strdup(cfg.control_socket);
            rp_config_free(&cfg);
            if (!path)
                fprintf(stderr, "rpcpoolctl: out of memory\n");
        }
    }

    char *answer = NULL;
    if (path) {
        uint64_t deadline = ctl_now_ms() + (uint64_t)timeout_ms;
        answer = ctl_exchange(path, line, deadline, timeout_ms);
    }
    int rc = EXIT_NOANSWER;
    if (answer) {
        rc = ctl_show(cmd, answer, raw);
        free(answer);
    } else if (strcmp(cmd, "help") == 0 && argc - optind == 1) {
        /* no daemon: show the same command table, from this binary (the
         * exit status still says that no daemon answered) */
        char *local = NULL;
        if (rp_control_execute("help", &local, NULL) == 0) {
            fprintf(stderr, "rpcpoolctl: no daemon answered; the commands of this build:\n");
            ctl_show(cmd, local, raw);
            free(local);
        }
    }
    free(path);
    return rc;
}
