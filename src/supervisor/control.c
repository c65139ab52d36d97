/* control.c - the supervisor's control socket (rp_control.h, docs/interface.md
 * section 4).
 *
 * One UNIX listen socket (mode 0600) and at most RP_CONTROL_MAX_CLIENTS
 * clients, all non-blocking and registered on the supervisor's epoll set
 * (level-triggered). Each accepted peer is checked with SO_PEERCRED: only
 * the daemon's effective uid and root are served. A client writes commands
 * one per line; each line gets one JSON object on one line, queued in the
 * client's output buffer and written as the socket accepts it. A client
 * whose unsent answers pile up past CTL_OUT_MAX_BYTES is not read from until
 * they drain, so a peer that never reads cannot grow the supervisor.
 *
 * Every command comes from one table (ctl_cmds); `help` is generated from
 * it. Commands that write to the segment (drain, enable, reset) touch only
 * the operator words of an endpoint row: drained, breaker, gcra_tat_ns,
 * hold_until_ms.
 */
#include "rp_control.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_buf.h"
#include "rp_clock.h"
#include "rp_listen.h"
#include "rp_log.h"
#include "rp_metrics.h"
#include "rp_ratelimit.h"
#include "rp_shm_view.h"
#include "rp_status.h"

#define CTL_OUT_MAX_BYTES (1u << 20) /* unsent answers above which a client is not read */
#define CTL_ACCEPT_BURST  64         /* accepts per readiness event */
#define CTL_READ_BURST    16         /* reads per readiness event */
#define CTL_BACKLOG       64
#define CTL_WORKERS_MAX   64 /* as struct rp_control_ops.set_workers says */

/* What must happen once an answer has been queued (and, on a socket, sent). */
enum ctl_after {
    CTL_AFTER_NONE = 0,
    CTL_AFTER_SHUTDOWN = 1,
};

struct ctl_listener {
    struct rp_ev ev; /* handler rp_control_event: must stay the first member */
};

struct ctl_client {
    struct rp_ev ev;                  /* handler rp_control_event: must stay the first member */
    uint32_t events;                  /* mask registered with epoll */
    char in[RP_CONTROL_MAX_LINE + 1]; /* a line of MAX_LINE bytes plus its '\n' fits */
    size_t inlen;
    struct rp_buf out; /* answers not yet written */
    size_t outoff;     /* bytes of OUT already written */
    int eof;           /* the peer will send nothing more */
    int closing;       /* close once OUT is written (after a protocol error) */
};

static struct {
    int open;
    pid_t owner; /* the process that opened the socket (forked children only close) */
    int epfd;
    struct ctl_listener lst;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
    struct rp_control_ops ops;
    int have_ops;
    struct ctl_client *clients[RP_CONTROL_MAX_CLIENTS];
    int nclients;
} ctl = {.lst = {{rp_control_event, -1}}, .epfd = -1};

/* ------------------------------------------------------------------ */
/* answers                                                             */
/* ------------------------------------------------------------------ */

static void ctl_fail(struct rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append {"ok":false,"error":MESSAGE} with MESSAGE formatted and
 * JSON-escaped. */
static void ctl_fail(struct rp_buf *b, const char *fmt, ...)
{
    char msg[RP_ERR_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rp_buf_puts(b, "{\"ok\":false,\"error\":");
    rp_buf_append_json_str(b, msg);
    rp_buf_puts(b, "}");
}

/* The segment, or NULL (with an error answer in OUT) when the supervisor
 * gave none. */
static struct rp_shm_header *ctl_shm(struct rp_buf *out)
{
    struct rp_shm_header *h = ctl.have_ops && ctl.ops.shm ? ctl.ops.shm() : NULL;
    if (!h)
        ctl_fail(out, "no shared-memory segment");
    return h;
}

/* Take a snapshot of the supervisor's own mapping through the checked view.
 * Returns a malloc'd snapshot, or NULL with an error answer in OUT. */
static struct rp_snapshot *ctl_snapshot(struct rp_buf *out)
{
    struct rp_shm_header *h = ctl_shm(out);
    if (!h)
        return NULL;
    char err[RP_ERR_MAX];
    struct rp_shm_view v;
    if (rp_shm_view_wrap(&v, h, ctl.ops.shm_size, err, sizeof err) != 0) {
        ctl_fail(out, "segment: %s", err);
        return NULL;
    }
    struct rp_snapshot *s = malloc(sizeof *s);
    if (!s) {
        ctl_fail(out, "out of memory");
        return NULL;
    }
    if (rp_shm_view_snapshot(&v, s, err, sizeof err) != 0) {
        ctl_fail(out, "segment: %s", err);
        free(s);
        return NULL;
    }
    return s;
}

/* The in-use endpoint row named by ARG: its numeric id, else its name.
 * NULL when none is. */
static struct rp_shm_endpoint *ctl_find_endpoint(struct rp_shm_header *h, const char *arg)
{
    unsigned rows =
        h->endpoints.count < RP_SHM_MAX_ENDPOINTS ? h->endpoints.count : RP_SHM_MAX_ENDPOINTS;
    size_t len = strlen(arg);
    if (len > 0 && len <= 6 && strspn(arg, "0123456789") == len) {
        unsigned long id = strtoul(arg, NULL, 10);
        if (id < rows) {
            struct rp_shm_endpoint *e = rp_shm_ep(h, (unsigned)id);
            if (atomic_load_explicit(&e->in_use, memory_order_acquire))
                return e;
        }
    }
    if (len == 0 || len >= RP_SHM_NAME_MAX)
        return NULL;
    for (unsigned i = 0; i < rows; i++) {
        struct rp_shm_endpoint *e = rp_shm_ep(h, i);
        if (atomic_load_explicit(&e->in_use, memory_order_acquire) &&
            strncmp(e->name, arg, RP_SHM_NAME_MAX) == 0)
            return e;
    }
    return NULL;
}

/* Append {"ok":true,"id":N,"name":"..." (no closing brace) for row E. */
static void ctl_ep_head(struct rp_buf *out, const struct rp_shm_endpoint *e)
{
    rp_buf_appendf(out, "{\"ok\":true,\"id\":%" PRIu32 ",\"name\":", e->id);
    rp_buf_append_json_strn(out, e->name, strnlen(e->name, sizeof e->name));
}

/* Log an operator action on endpoint row E. */
static void ctl_log_ep(const char *msg, const struct rp_shm_endpoint *e)
{
    char name[RP_SHM_NAME_MAX + 8], q[2 * RP_SHM_NAME_MAX + 8];
    snprintf(name, sizeof name, "%.*s", (int)strnlen(e->name, sizeof e->name), e->name);
    rp_info(msg, "endpoint=%s id=%" PRIu32, rp_log_quote(q, sizeof q, name), e->id);
}

/* ------------------------------------------------------------------ */
/* commands                                                            */
/* ------------------------------------------------------------------ */

typedef void (*ctl_handler)(const char *arg, struct rp_buf *out, enum ctl_after *after);

struct ctl_cmd {
    const char *name;
    const char *args; /* "" for none, else the one argument's name */
    ctl_handler fn;
    const char *help;
};

static void cmd_help(const char *arg, struct rp_buf *out, enum ctl_after *after);

static void cmd_ping(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    rp_buf_puts(out, "{\"ok\":true}");
}

static void cmd_status(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    struct rp_snapshot *s = ctl_snapshot(out);
    if (!s)
        return;
    rp_status_control_json(out, s, rp_clock_realtime_ns());
    free(s);
}

/* The seed design's PoolStats, totalled over the endpoints in use. */
static void cmd_stats(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    struct rp_snapshot *s = ctl_snapshot(out);
    if (!s)
        return;
    uint64_t active = 0, idle = 0, ok = 0, failed = 0, lat_sum_us = 0, lat_count = 0;
    int healthy = 0;
    for (int i = 0; i < s->ep_count && i < RP_SHM_MAX_ENDPOINTS; i++) {
        const struct rp_ep_snapshot *e = &s->eps[i];
        active += e->conns_active;
        idle += e->conns_idle;
        ok += e->ok;
        failed += e->failed;
        lat_sum_us += e->lat_sum_us;
        lat_count += e->lat_count;
        if (e->state == RP_EP_UP && e->breaker != RP_BREAKER_OPEN)
            healthy++;
    }
    rp_buf_appendf(
        out,
        "{\"ok\":true,\"totalPools\":%d,\"healthyPools\":%d,\"totalConnections\":%" PRIu64
        ",\"activeConnections\":%" PRIu64 ",\"idleConnections\":%" PRIu64
        ",\"failedRequests\":%" PRIu64 ",\"successfulRequests\":%" PRIu64 ",\"averageLatency\":",
        s->ep_count, healthy, active + idle, active, idle, failed, ok);
    rp_buf_append_num(out, lat_count ? (double)lat_sum_us / (double)lat_count / 1000.0 : 0.0);
    rp_buf_puts(out, "}");
    free(s);
}

static void cmd_metrics(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    struct rp_snapshot *s = ctl_snapshot(out);
    if (!s)
        return;
    struct rp_buf text = RP_BUF_INIT;
    if (rp_metrics_render(&text, s) != 0) {
        ctl_fail(out, "out of memory");
    } else {
        rp_buf_puts(out, "{\"ok\":true,\"text\":");
        rp_buf_append_json_strn(out, rp_buf_cstr(&text), text.len);
        rp_buf_puts(out, "}");
    }
    rp_buf_free(&text);
    free(s);
}

/* The endpoint named by a command's EP argument, or NULL with the error
 * answer already in OUT (no segment, or no such endpoint). */
static struct rp_shm_endpoint *ctl_endpoint_arg(const char *arg, struct rp_buf *out)
{
    struct rp_shm_header *h = ctl_shm(out);
    if (!h)
        return NULL;
    struct rp_shm_endpoint *e = ctl_find_endpoint(h, arg);
    if (!e)
        ctl_fail(out, "no such endpoint: %s", arg);
    return e;
}

/* drain / enable: set the row's operator flag to ON. */
static void ctl_set_drained(const char *arg, struct rp_buf *out, uint32_t on)
{
    struct rp_shm_endpoint *e = ctl_endpoint_arg(arg, out);
    if (!e)
        return;
    uint32_t was = atomic_exchange_explicit(&e->drained, on, memory_order_relaxed);
    if (was != on)
        ctl_log_ep(on ? "endpoint drained by operator" : "endpoint enabled by operator", e);
    ctl_ep_head(out, e);
    rp_buf_appendf(out, ",\"drained\":%s}", on ? "true" : "false");
}

static void cmd_drain(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    ctl_set_drained(arg, out, 1);
}

static void cmd_enable(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    ctl_set_drained(arg, out, 0);
}

/* Close the breaker, refill the bucket and lift a Retry-After hold. */
static void cmd_reset(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    struct rp_shm_endpoint *e = ctl_endpoint_arg(arg, out);
    if (!e)
        return;
    rp_breaker_reset(&e->breaker);
    rp_gcra_reset(&e->gcra_tat_ns);
    atomic_store_explicit(&e->hold_until_ms, 0, memory_order_relaxed);
    ctl_log_ep("endpoint reset by operator", e);
    ctl_ep_head(out, e);
    rp_buf_puts(out, "}");
}

static void cmd_reload(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    if (!ctl.have_ops || !ctl.ops.reload) {
        ctl_fail(out, "reload is not available");
        return;
    }
    char err[RP_ERR_MAX] = "";
    uint64_t gen = 0;
    if (ctl.ops.reload(&gen, err, sizeof err) != 0) {
        ctl_fail(out, "%s", err[0] ? err : "reload failed");
        return;
    }
    rp_buf_appendf(out, "{\"ok\":true,\"generation\":%" PRIu64 "}", gen);
}

static void cmd_workers(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    size_t len = strlen(arg);
    unsigned long n = 0;
    if (len > 0 && len <= 3 && strspn(arg, "0123456789") == len)
        n = strtoul(arg, NULL, 10);
    if (n < 1 || n > CTL_WORKERS_MAX) {
        ctl_fail(out, "workers: N must be a number from 1 to %d, not \"%s\"", CTL_WORKERS_MAX, arg);
        return;
    }
    if (!ctl.have_ops || !ctl.ops.set_workers) {
        ctl_fail(out, "workers is not available");
        return;
    }
    char err[RP_ERR_MAX] = "";
    if (ctl.ops.set_workers((unsigned)n, err, sizeof err) != 0) {
        ctl_fail(out, "%s", err[0] ? err : "cannot change the worker count");
        return;
    }
    rp_buf_appendf(out, "{\"ok\":true,\"workers\":%lu}", n);
}

static void cmd_shutdown(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    if (!ctl.have_ops || !ctl.ops.shutdown) {
        ctl_fail(out, "shutdown is not available");
        return;
    }
    rp_buf_puts(out, "{\"ok\":true}");
    *after = CTL_AFTER_SHUTDOWN;
}

static const struct ctl_cmd ctl_cmds[] = {
    {"ping", "", cmd_ping, "check that the supervisor answers"},
    {"status", "", cmd_status, "the pool: workers and endpoints"},
    {"stats", "", cmd_stats, "totals (PoolStats): pools, connections, requests, latency"},
    {"metrics", "", cmd_metrics, "the Prometheus text exposition"},
    {"drain", "EP", cmd_drain, "stop sending new requests to endpoint EP (id or name)"},
    {"enable", "EP", cmd_enable, "resume sending requests to endpoint EP"},
    {"reset", "EP", cmd_reset, "close EP's circuit breaker and refill its rate-limit bucket"},
    {"reload", "", cmd_reload, "re-read the configuration file"},
    {"workers", "N", cmd_workers, "grow or shrink the worker pool to N (1-64)"},
    {"shutdown", "", cmd_shutdown, "stop gracefully, as SIGTERM"},
    {"help", "", cmd_help, "list the commands"},
};

static void cmd_help(const char *arg, struct rp_buf *out, enum ctl_after *after)
{
    rp_buf_puts(out, "{\"ok\":true,\"commands\":[");
    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
        const struct ctl_cmd *c = &ctl_cmds[i];
        rp_buf_appendf(out, "%s{\"name\":\"%s\",\"args\":\"%s\",\"help\":", i ? "," : "", c->name,
                       c->args);
        rp_buf_append_json_str(out, c->help);
        rp_buf_puts(out, "}");
    }
    rp_buf_puts(out, "]}");
}

static int ctl_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Run one command LINE: split it into the command word and the rest (the
 * argument, trimmed; names may hold spaces), check the argument count
 * against the table, call the handler. Appends exactly one JSON object to
 * OUT and sets *AFTER for what must follow the answer. */
static void ctl_run(const char *line, struct rp_buf *out, enum ctl_after *after)
{
    *after = CTL_AFTER_NONE;
    while (ctl_is_space(*line))
        line++;
    size_t wlen = 0;
    while (line[wlen] && !ctl_is_space(line[wlen]))
        wlen++;
    if (wlen == 0) {
        ctl_fail(out, "empty command (try help)");
        return;
    }
    const char *rest = line + wlen;
    while (ctl_is_space(*rest))
        rest++;
    size_t rlen = strlen(rest);
    while (rlen > 0 && ctl_is_space(rest[rlen - 1]))
        rlen--;
    char arg[RP_CONTROL_MAX_LINE + 1];
    if (rlen >= sizeof arg)
        rlen = sizeof arg - 1;
    memcpy(arg, rest, rlen);
    arg[rlen] = '\0';

    for (size_t i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++) {
        const struct ctl_cmd *c = &ctl_cmds[i];
        if (strlen(c->name) != wlen || memcmp(c->name, line, wlen) != 0)
            continue;
        if (!c->args[0] && rlen) {
            ctl_fail(out, "%s takes no argument", c->name);
            return;
        }
        if (c->args[0] && !rlen) {
            ctl_fail(out, "usage: %s %s", c->name, c->args);
            return;
        }
        rp_debug("control command", "cmd=%s", c->name);
        c->fn(arg, out, after);
        return;
    }
    ctl_fail(out, "unknown command: %.*s (try help)", (int)(wlen > 200 ? 200 : wlen), line);
}

/* Do what an answer asked for once it is on its way. */
static void ctl_run_after(enum ctl_after after)
{
    if (after == CTL_AFTER_SHUTDOWN && ctl.have_ops && ctl.ops.shutdown) {
        rp_info("shutdown requested on the control socket", NULL);
        ctl.ops.shutdown();
    }
}

int rp_control_execute(const char *line, char **out, size_t *outlen)
{
    struct rp_buf b = RP_BUF_INIT;
    enum ctl_after after;
    ctl_run(line, &b, &after);
    size_t len = 0;
    char *s = rp_buf_detach(&b, &len);
    if (!s) {
        *out = NULL;
        if (outlen)
            *outlen = 0;
        return -1;
    }
    *out = s;
    if (outlen)
        *outlen = len;
    ctl_run_after(after);
    return 0;
}

/* ------------------------------------------------------------------ */
/* clients                                                             */
/* ------------------------------------------------------------------ */

static int ctl_owner(void)
{
    return ctl.owner == getpid();
}

/* Read and drop what the peer already sent (bounded), so that closing the
 * socket does not turn our last answer into a connection reset. */
static void ctl_discard_input(int fd)
{
    char tmp[4096];
    for (int i = 0; i < 16; i++)
        if (recv(fd, tmp, sizeof tmp, MSG_DONTWAIT) <= 0)
            break;
}

/* Answer a peer that is not admitted with {"ok":false,"error":MSG} (best
 * effort: one non-blocking send) and close it. */
static void ctl_refuse(int fd, const char *msg)
{
    char line[256];
    int n = snprintf(line, sizeof line, "{\"ok\":false,\"error\":\"%s\"}\n", msg);
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
    }
    shutdown(fd, SHUT_WR);
    ctl_discard_input(fd);
    close(fd);
}

static size_t ctl_pending(const struct ctl_client *c)
{
    return c->out.len - c->outoff;
}

static void ctl_client_free(struct ctl_client *c, int owner)
{
    if (owner && ctl.epfd >= 0)
        epoll_ctl(ctl.epfd, EPOLL_CTL_DEL, c->ev.fd, NULL);
    close(c->ev.fd);
    rp_buf_free(&c->out);
    for (int i = 0; i < ctl.nclients; i++) {
        if (ctl.clients[i] == c) {
            ctl.clients[i] = ctl.clients[--ctl.nclients];
            ctl.clients[ctl.nclients] = NULL;
            break;
        }
    }
    free(c);
}

/* Write as much of C's pending output as the socket takes. Returns 0, or -1
 * when the peer is gone. */
static int ctl_flush(struct ctl_client *c)
{
    while (ctl_pending(c) > 0) {
        ssize_t n =
            send(c->ev.fd, c->out.data + c->outoff, ctl_pending(c), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    rp_buf_reset(&c->out);
    c->outoff = 0;
    return 0;
}

/* Queue the answer to LINE (LEN bytes, '\n' excluded) for C. */
static enum ctl_after ctl_answer(struct ctl_client *c, char *line, size_t len)
{
    enum ctl_after after = CTL_AFTER_NONE;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (memchr(line, '\0', len)) {
        ctl_fail(&c->out, "invalid command: NUL byte");
    } else {
        char saved = line[len];
        line[len] = '\0';
        ctl_run(line, &c->out, &after);
        line[len] = saved;
    }
    rp_buf_puts(&c->out, "\n");
    return after;
}

/* Answer every complete line buffered for C while its unsent output stays
 * under the bound; a full buffer without a line break is a protocol error
 * (answered, then the client is closed); at end of input a last line
 * without '\n' is answered too. Returns what the answers asked for. */
static enum ctl_after ctl_process(struct ctl_client *c)
{
    enum ctl_after after = CTL_AFTER_NONE;
    while (!c->closing && c->inlen > 0 && ctl_pending(c) < CTL_OUT_MAX_BYTES) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (nl) {
            size_t len = (size_t)(nl - c->in);
            if (ctl_answer(c, c->in, len) == CTL_AFTER_SHUTDOWN)
                after = CTL_AFTER_SHUTDOWN;
            c->inlen -= len + 1;
            memmove(c->in, nl + 1, c->inlen);
        } else if (c->inlen >= sizeof c->in) {
            ctl_fail(&c->out, "command line too long (max %d bytes)", RP_CONTROL_MAX_LINE);
            rp_buf_puts(&c->out, "\n");
            c->inlen = 0;
            c->closing = 1;
        } else if (c->eof) {
            if (ctl_answer(c, c->in, c->inlen) == CTL_AFTER_SHUTDOWN)
                after = CTL_AFTER_SHUTDOWN;
            c->inlen = 0;
        } else {
            break;
        }
    }
    return after;
}

/* Read what C sent (bounded per event) and answer the complete lines.
 * Returns -1 when the connection failed. */
static int ctl_read(struct ctl_client *c, enum ctl_after *after)
{
    for (int i = 0; i < CTL_READ_BURST; i++) {
        if (c->closing || c->eof || ctl_pending(c) >= CTL_OUT_MAX_BYTES)
            break;
        size_t room = sizeof c->in - c->inlen;
        if (room == 0)
            break; /* ctl_process() below turns a full buffer into an error */
        ssize_t n = recv(c->ev.fd, c->in + c->inlen, room, MSG_DONTWAIT);
        if (n > 0) {
            c->inlen += (size_t)n;
        } else if (n == 0) {
            c->eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            return -1;
        }
        if (ctl_process(c) == CTL_AFTER_SHUTDOWN)
            *after = CTL_AFTER_SHUTDOWN;
    }
    if (ctl_process(c) == CTL_AFTER_SHUTDOWN)
        *after = CTL_AFTER_SHUTDOWN;
    return 0;
}

/* Serve readiness EVENTS of client C: read, answer, write; then close it or
 * register the events it needs next. What the answers asked for (shutdown)
 * runs last, when C is no longer touched: the supervisor may close the
 * control socket from there. */
static void ctl_client_event(struct ctl_client *c, uint32_t events)
{
    enum ctl_after after = CTL_AFTER_NONE;
    if (events & EPOLLERR) {
        ctl_client_free(c, 1);
        return;
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) && ctl_read(c, &after) != 0) {
        ctl_client_free(c, 1);
        ctl_run_after(after);
        return;
    }
    /* write, then answer lines held back by a full output buffer */
    for (int i = 0; i < 4; i++) {
        if (ctl_flush(c) != 0) {
            ctl_client_free(c, 1);
            ctl_run_after(after);
            return;
        }
        size_t before = c->inlen;
        if (ctl_process(c) == CTL_AFTER_SHUTDOWN)
            after = CTL_AFTER_SHUTDOWN;
        if (c->inlen == before)
            break;
    }

    int done_reading = c->closing || c->eof;
    if (done_reading && ctl_pending(c) == 0) {
        if (c->closing) {
            shutdown(c->ev.fd, SHUT_WR);
            ctl_discard_input(c->ev.fd);
        }
        ctl_client_free(c, 1);
        ctl_run_after(after);
        return;
    }
    uint32_t want = 0;
    if (!done_reading && ctl_pending(c) < CTL_OUT_MAX_BYTES)
        want |= EPOLLIN | EPOLLRDHUP;
    if (ctl_pending(c) > 0)
        want |= EPOLLOUT;
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        if (epoll_ctl(ctl.epfd, EPOLL_CTL_MOD, c->ev.fd, &ev) != 0)
            ctl_client_free(c, 1);
        else
            c->events = want;
    }
    ctl_run_after(after);
}

/* Accept pending connections: check the peer's credentials and the client
 * bound, then register the client. */
static void ctl_accept(void)
{
    for (int i = 0; i < CTL_ACCEPT_BURST; i++) {
        int fd = accept4(ctl.lst.ev.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                rp_warn("control socket: accept failed", "error=\"%s\"", strerror(errno));
            return;
        }
        struct ucred cr;
        socklen_t crlen = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0 || crlen != sizeof cr) {
            rp_warn("control client refused: no peer credentials", "error=\"%s\"", strerror(errno));
            ctl_refuse(fd, "permission denied");
            continue;
        }
        if (cr.uid != 0 && cr.uid != geteuid()) {
            rp_warn("control client refused: permission denied", "peer_uid=%u peer_pid=%d",
                    (unsigned)cr.uid, (int)cr.pid);
            ctl_refuse(fd, "permission denied");
            continue;
        }
        if (ctl.nclients >= RP_CONTROL_MAX_CLIENTS) {
            rp_warn("control client refused: too many control clients", "max=%d peer_pid=%d",
                    RP_CONTROL_MAX_CLIENTS, (int)cr.pid);
            ctl_refuse(fd, "too many control clients");
            continue;
        }
        struct ctl_client *c = calloc(1, sizeof *c);
        if (!c) {
            ctl_refuse(fd, "out of memory");
            continue;
        }
        c->ev.handler = rp_control_event;
        c->ev.fd = fd;
        c->events = EPOLLIN | EPOLLRDHUP;
        rp_buf_init(&c->out);
        struct epoll_event ev = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(ctl.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            rp_warn("control socket: epoll_ctl failed", "error=\"%s\"", strerror(errno));
            close(fd);
            free(c);
            continue;
        }
        ctl.clients[ctl.nclients++] = c;
    }
}

/* ------------------------------------------------------------------ */
/* life cycle                                                          */
/* ------------------------------------------------------------------ */

int rp_control_open(const char *path, int epfd, const struct rp_control_ops *ops, char *err,
                    size_t errlen)
{
    if (ctl.open) {
        snprintf(err, errlen, "control socket already open at %s", ctl.path);
        return -1;
    }
    if (strlen(path) >= sizeof ctl.path) {
        snprintf(err, errlen, "control socket path too long (max %zu bytes): %s",
                 sizeof ctl.path - 1, path);
        return -1;
    }
    int fd = rp_listen_unix(path, 0600, CTL_BACKLOG, err, errlen);
    if (fd < 0)
        return -1;
    struct stat st;
    if (lstat(path, &st) != 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    ctl.lst.ev.handler = rp_control_event;
    ctl.lst.ev.fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ctl.lst};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        snprintf(err, errlen, "control socket %s: epoll_ctl: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        ctl.lst.ev.fd = -1;
        return -1;
    }
    snprintf(ctl.path, sizeof ctl.path, "%s", path);
    ctl.dev = st.st_dev;
    ctl.ino = st.st_ino;
    ctl.epfd = epfd;
    ctl.owner = getpid();
    ctl.have_ops = ops != NULL;
    if (ops)
        ctl.ops = *ops;
    else
        memset(&ctl.ops, 0, sizeof ctl.ops);
    ctl.nclients = 0;
    ctl.open = 1;
    return 0;
}

void rp_control_event(struct rp_ev *ptr, uint32_t events)
{
    if (!ctl.open || !ptr)
        return;
    if (ptr == &ctl.lst.ev) {
        ctl_accept();
        return;
    }
    struct ctl_client *c = (struct ctl_client *)ptr;
    for (int i = 0; i < ctl.nclients; i++) {
        if (ctl.clients[i] == c) {
            ctl_client_event(c, events);
            return;
        }
    }
}

/* In the process that opened the socket: write what can be written without
 * blocking, unregister and close everything, unlink the path if it is still
 * our socket. In a forked child: only close the inherited descriptors (the
 * epoll set and the path belong to the supervisor). */
void rp_control_close(void)
{
    if (!ctl.open)
        return;
    int owner = ctl_owner();
    while (ctl.nclients > 0) {
        struct ctl_client *c = ctl.clients[ctl.nclients - 1];
        if (owner)
            ctl_flush(c);
        ctl_client_free(c, owner);
    }
    if (owner && ctl.epfd >= 0)
        epoll_ctl(ctl.epfd, EPOLL_CTL_DEL, ctl.lst.ev.fd, NULL);
    close(ctl.lst.ev.fd);
    ctl.lst.ev.fd = -1;
    if (owner) {
        struct stat st;
        if (lstat(ctl.path, &st) == 0 && st.st_dev == ctl.dev && st.st_ino == ctl.ino)
            unlink(ctl.path);
    }
    ctl.open = 0;
    ctl.epfd = -1;
    ctl.have_ops = 0;
}
