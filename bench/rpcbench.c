/* rpcbench - a load generator for JSON-RPC over IPC framing and HTTP/1.1.
 *
 *   rpcbench --ipc PATH             [options]   IPC framing on a UNIX socket
 *   rpcbench --http URL             [options]   HTTP/1.1 keep-alive POST over TCP
 *   rpcbench --http-unix PATH       [options]   the same over a UNIX socket
 *   rpcbench --ipc PATH --idle N    [--hold S]  hold N idle client connections
 *
 * One thread, one epoll loop. N connections each keep up to P requests in
 * flight: IPC requests are written back to back and answers ('\n'-terminated
 * JSON) are matched by id (they may come in any order); HTTP requests are
 * pipelined and answers matched in order (HTTP/1.1 answers are in order),
 * with the answer's id checked unless --any-id. A request's latency runs
 * from the write of its bytes to the parse of its answer. The run stops
 * sending at -n requests or after -d seconds, whichever comes first, then
 * waits (bounded) for the answers in flight.
 *
 * Results: throughput, latency percentiles of successful answers (log
 * buckets with 128 sub-buckets per octave: < 0.8% error), errors by
 * JSON-RPC code and by kind, and, with --watch PID, the CPU time and RSS of
 * that process tree over the measured interval (/proc). A readable table on
 * stdout, or one JSON line on stdout with --json (the table then goes to
 * stderr).
 *
 * Only loopback targets are accepted (127.0.0.0/8, localhost, UNIX sockets).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define RB_MAX_CONNS    100000
#define RB_MAX_PIPELINE 4096
#define RB_MAX_WATCH    16
#define RB_MAX_PROCS    256
#define RB_MAX_CODES    32
#define RB_MAX_STATUSES 16
#define RB_DRAIN_MAX_MS 3000 /* longest wait for answers after sending stops */
#define RB_READ_BYTES   65536

/* ---------------------------------------------------------------------
 * options
 * ------------------------------------------------------------------- */

enum rb_mode { RB_IPC = 0, RB_HTTP = 1 };

struct rb_opts {
    enum rb_mode mode;
    int use_tcp;                 /* HTTP over TCP (else a UNIX socket) */
    char unix_path[108];         /* IPC or HTTP-over-UNIX socket */
    struct sockaddr_in tcp_addr; /* HTTP over TCP */
    char host_hdr[300];          /* Host: header */
    char url_path[256];          /* request target */
    int conns;
    int pipeline;
    uint64_t total;     /* measured requests to send; 0 = no bound */
    double duration_s;  /* measured duration bound */
    double warmup_s;    /* unmeasured load before measuring */
    const char *method; /* JSON-RPC method */
    const char *params; /* JSON-RPC params (raw JSON) */
    int timeout_ms;     /* per request */
    int any_id;         /* HTTP: do not check the answer's id */
    int json;           /* print the JSON line */
    const char *label;  /* name of this run in the output */
    int nwatch;
    pid_t watch[RB_MAX_WATCH]; /* process trees to account */
    int idle;                  /* idle mode: connections to hold */
    double hold_s;             /* idle mode: how long to hold them */
};

static struct rb_opts rb_o = {
    .conns = 16,
    .pipeline = 1,
    .total = 1000000,
    .duration_s = 10,
    .warmup_s = 0,
    .method = "eth_blockNumber",
    .params = "[]",
    .timeout_ms = 10000,
    .url_path = "/",
    .label = "",
    .hold_s = 30,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: rpcbench (--ipc PATH | --http URL | --http-unix PATH) [options]\n"
               "  -c N          connections (default 16)\n"
               "  -p P          requests in flight per connection (default 1)\n"
               "  -n TOTAL      measured requests to send (default 1000000; 0 = no bound)\n"
               "  -d SECONDS    measured duration bound (default 10)\n"
               "  -w SECONDS    warm-up load before measuring (default 0)\n"
               "  -m METHOD     JSON-RPC method (default eth_blockNumber)\n"
               "  -P JSON       params (default [])\n"
               "  -t MS         per-request timeout (default 10000)\n"
               "  --any-id      HTTP: accept an answer whose id differs from the request's\n"
               "  --watch PID   account CPU and RSS of PID and its descendants (repeatable)\n"
               "  --label NAME  name of the run in the output\n"
               "  --json        one JSON line on stdout (the table goes to stderr)\n"
               "  --idle N      hold N idle connections (IPC): print 'idle: connected N',\n"
               "                on SIGUSR1 send one request on each and print 'idle: answered\n"
               "                K of N', exit on SIGTERM/SIGINT or after --hold SECONDS (30)\n"
               "Targets must be on loopback (127.0.0.0/8, localhost) or UNIX sockets.\n");
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rpcbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* Parse http://HOST[:PORT][/PATH] with HOST a loopback IPv4 literal or
 * "localhost" into rb_o. Dies on anything else. */
static void parse_url(const char *url)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0)
        die("only http:// URLs are supported: %s", url);
    p += 7;
    const char *hend = p + strcspn(p, ":/");
    char host[256];
    size_t hl = (size_t)(hend - p);
    if (hl == 0 || hl >= sizeof host)
        die("bad host in %s", url);
    memcpy(host, p, hl);
    host[hl] = 0;
    long port = 80;
    p = hend;
    if (*p == ':') {
        char *end;
        port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            die("bad port in %s", url);
        p = end;
    }
    if (*p == '/')
        snprintf(rb_o.url_path, sizeof rb_o.url_path, "%s", p);
    else if (*p)
        die("bad URL %s", url);
    struct in_addr a;
    if (strcmp(host, "localhost") == 0)
        a.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a) != 1)
        die("host must be an IPv4 literal or localhost: %s", host);
    if ((ntohl(a.s_addr) >> 24) != 127)
        die("refusing a non-loopback target: %s", host);
    memset(&rb_o.tcp_addr, 0, sizeof rb_o.tcp_addr);
    rb_o.tcp_addr.sin_family = AF_INET;
    rb_o.tcp_addr.sin_port = htons((uint16_t)port);
    rb_o.tcp_addr.sin_addr = a;
    rb_o.use_tcp = 1;
    snprintf(rb_o.host_hdr, sizeof rb_o.host_hdr, "%s:%ld", host, port);
}

static void set_unix_path(const char *path)
{
    if (strlen(path) >= sizeof rb_o.unix_path)
        die("socket path too long: %s", path);
    snprintf(rb_o.unix_path, sizeof rb_o.unix_path, "%s", path);
    snprintf(rb_o.host_hdr, sizeof rb_o.host_hdr, "localhost");
}

static double num_arg(const char *opt, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double d = strtod(v ? v : "", &end);
    if (!v || end == v || *end || errno || d < lo || d > hi)
        die("%s wants a number in [%g, %g], not '%s'", opt, lo, hi, v ? v : "");
    return d;
}

/* Fill rb_o from the command line; dies on a bad one. */
static void parse_args(int argc, char **argv)
{
    int have_target = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--ipc") == 0 && v) {
            rb_o.mode = RB_IPC;
            set_unix_path(v);
            have_target = 1;
            i++;
        } else if (strcmp(a, "--http") == 0 && v) {
            rb_o.mode = RB_HTTP;
            parse_url(v);
            have_target = 1;
            i++;
        } else if (strcmp(a, "--http-unix") == 0 && v) {
            rb_o.mode = RB_HTTP;
            set_unix_path(v);
            have_target = 1;
            i++;
        } else if (strcmp(a, "-c") == 0) {
            rb_o.conns = (int)num_arg(a, v, 1, RB_MAX_CONNS);
            i++;
        } else if (strcmp(a, "-p") == 0) {
            rb_o.pipeline = (int)num_arg(a, v, 1, RB_MAX_PIPELINE);
            i++;
        } else if (strcmp(a, "-n") == 0) {
            rb_o.total = (uint64_t)num_arg(a, v, 0, 1e12);
            i++;
        } else if (strcmp(a, "-d") == 0) {
            rb_o.duration_s = num_arg(a, v, 0.001, 86400);
            i++;
        } else if (strcmp(a, "-w") == 0 || strcmp(a, "--warmup") == 0) {
            rb_o.warmup_s = num_arg(a, v, 0, 3600);
            i++;
        } else if (strcmp(a, "-m") == 0 && v) {
            rb_o.method = v;
            i++;
        } else if (strcmp(a, "-P") == 0 && v) {
            rb_o.params = v;
            i++;
        } else if (strcmp(a, "-t") == 0) {
            rb_o.timeout_ms = (int)num_arg(a, v, 1, 3600000);
            i++;
        } else if (strcmp(a, "--any-id") == 0) {
            rb_o.any_id = 1;
        } else if (strcmp(a, "--json") == 0) {
            rb_o.json = 1;
        } else if (strcmp(a, "--label") == 0 && v) {
            rb_o.label = v;
            i++;
        } else if (strcmp(a, "--watch") == 0) {
            if (rb_o.nwatch >= RB_MAX_WATCH)
                die("at most %d --watch", RB_MAX_WATCH);
            rb_o.watch[rb_o.nwatch++] = (pid_t)num_arg(a, v, 1, INT_MAX);
            i++;
        } else if (strcmp(a, "--idle") == 0) {
            rb_o.idle = (int)num_arg(a, v, 1, RB_MAX_CONNS);
            i++;
        } else if (strcmp(a, "--hold") == 0) {
            rb_o.hold_s = num_arg(a, v, 0.001, 86400);
            i++;
        } else {
            usage(stderr);
            die("unknown or incomplete option: %s", a);
        }
    }
    if (!have_target) {
        usage(stderr);
        die("give --ipc PATH, --http URL or --http-unix PATH");
    }
    if (rb_o.idle && rb_o.mode != RB_IPC)
        die("--idle works with --ipc only");
    for (const char *m = rb_o.method; *m; m++)
        if (*m == '"' || *m == '\\' || (unsigned char)*m < 0x20)
            die("bad method name");
}

/* ---------------------------------------------------------------------
 * time, latency histogram
 * ------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Log-linear buckets: values below 128 ns exactly, then 128 sub-buckets
 * per power of two. */
#define RB_HIST_SUB     128
#define RB_HIST_BUCKETS (RB_HIST_SUB + 57 * RB_HIST_SUB)

struct rb_hist {
    uint64_t count[RB_HIST_BUCKETS];
    uint64_t n, max_ns, min_ns;
    double sum_ns;
};

static int hist_index(uint64_t v)
{
    if (v < RB_HIST_SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* 7..63 */
    int m = (int)(v >> (e - 7)) - RB_HIST_SUB;
    return RB_HIST_SUB + (e - 7) * RB_HIST_SUB + m;
}

/* Midpoint of bucket I in ns. */
static double hist_value(int i)
{
    if (i < RB_HIST_SUB)
        return i;
    int k = (i - RB_HIST_SUB) / RB_HIST_SUB, m = (i - RB_HIST_SUB) % RB_HIST_SUB;
    double low = (double)((uint64_t)(RB_HIST_SUB + m) << k);
    return low + (double)(1ull << k) / 2.0;
}

static void hist_add(struct rb_hist *h, uint64_t v)
{
    h->count[hist_index(v)]++;
    if (h->n == 0 || v < h->min_ns)
        h->min_ns = v;
    if (v > h->max_ns)
        h->max_ns = v;
    h->n++;
    h->sum_ns += (double)v;
}

/* Quantile Q (0..1) in ns: the bucket holding the ceil(Q*n)-th sample,
 * clamped to the exact min and max. */
static double hist_quantile(const struct rb_hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < RB_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            double v = hist_value(i);
            if (v > (double)h->max_ns)
                v = (double)h->max_ns;
            if (v < (double)h->min_ns)
                v = (double)h->min_ns;
            return v;
        }
    }
    return (double)h->max_ns;
}

/* ---------------------------------------------------------------------
 * results
 * ------------------------------------------------------------------- */

enum rb_kind {
    RB_K_TIMEOUT = 0, /* no answer within -t */
    RB_K_CLOSED,      /* the connection closed (or was closed) with the request in flight */
    RB_K_CONNECT,     /* a connect attempt failed */
    RB_K_BAD_JSON,    /* an answer that is not a JSON-RPC response */
    RB_K_ID_MISMATCH, /* HTTP: the answer's id is not the request's */
    RB_K_UNMATCHED,   /* an answer for no request in flight */
    RB_K_HTTP_PARSE,  /* an unparsable HTTP response */
    RB_K_HTTP_STATUS, /* a status other than 200 (also counted per status) */
    RB_K_COUNT
};

static const char *const rb_kind_name[RB_K_COUNT] = {
    "timeout",     "closed",    "connect",    "bad_json",
    "id_mismatch", "unmatched", "http_parse", "http_status",
};

struct rb_stats {
    struct rb_hist lat; /* successful answers only */
    uint64_t sent, answered, ok, rpc_errors;
    uint64_t kind[RB_K_COUNT];
    int ncodes;
    long code[RB_MAX_CODES];
    uint64_t code_n[RB_MAX_CODES];
    int nstatus;
    int status[RB_MAX_STATUSES];
    uint64_t status_n[RB_MAX_STATUSES];
};

static struct rb_stats rb_s;

static void count_code(long code)
{
    for (int i = 0; i < rb_s.ncodes; i++)
        if (rb_s.code[i] == code) {
            rb_s.code_n[i]++;
            return;
        }
    if (rb_s.ncodes < RB_MAX_CODES) {
        rb_s.code[rb_s.ncodes] = code;
        rb_s.code_n[rb_s.ncodes++] = 1;
    }
}

static void count_status(int status)
{
    rb_s.kind[RB_K_HTTP_STATUS]++;
    for (int i = 0; i < rb_s.nstatus; i++)
        if (rb_s.status[i] == status) {
            rb_s.status_n[i]++;
            return;
        }
    if (rb_s.nstatus < RB_MAX_STATUSES) {
        rb_s.status[rb_s.nstatus] = status;
        rb_s.status_n[rb_s.nstatus++] = 1;
    }
}

/* ---------------------------------------------------------------------
 * a small JSON walker for answers
 * ------------------------------------------------------------------- */

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* P at '"': returns the byte after the closing quote, or NULL. */
static const char *js_string(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Skip one JSON value starting at P (no leading space); returns the byte
 * after it, or NULL when it is cut or malformed (structure only). */
static const char *js_skip(const char *p, const char *e)
{
    if (p >= e)
        return NULL;
    if (*p == '"')
        return js_string(p, e);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < e) {
            char ch = *p;
            if (ch == '"') {
                p = js_string(p, e);
                if (!p)
                    return NULL;
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if (ch == '}' || ch == ']') {
                if (--depth == 0)
                    return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *s = p;
    while (p < e && !strchr(",}] \t\r\n", *p))
        p++;
    return p > s ? p : NULL;
}

struct rb_answer {
    int has_id;
    uint64_t id; /* numeric ids (or strings of digits) */
    int has_result, has_error;
    long code;
};

/* Read the top-level members of the JSON-RPC response object in
 * [P, E): id, result, error.code. Returns 0, or -1 when it is not a
 * response object. */
static int parse_answer(const char *p, const char *e, struct rb_answer *a)
{
    memset(a, 0, sizeof *a);
    p = js_ws(p, e);
    if (p >= e || *p != '{')
        return -1;
    p = js_ws(p + 1, e);
    if (p < e && *p == '}')
        return -1;
    while (p < e) {
        if (*p != '"')
            return -1;
        const char *k = p + 1, *kend = js_string(p, e);
        if (!kend)
            return -1;
        size_t kl = (size_t)(kend - 1 - k);
        p = js_ws(kend, e);
        if (p >= e || *p != ':')
            return -1;
        const char *v = js_ws(p + 1, e);
        const char *vend = js_skip(v, e);
        if (!vend)
            return -1;
        if (kl == 2 && memcmp(k, "id", 2) == 0) {
            const char *d = v;
            if (*d == '"')
                d++;
            if (d < vend && isdigit((unsigned char)*d)) {
                a->has_id = 1;
                a->id = strtoull(d, NULL, 10);
            }
        } else if (kl == 6 && memcmp(k, "result", 6) == 0) {
            a->has_result = 1;
        } else if (kl == 5 && memcmp(k, "error", 5) == 0) {
            a->has_error = 1;
            a->code = 0;
            /* find "code" among the error object's members */
            const char *q = js_ws(v + 1, vend);
            while (*v == '{' && q < vend && *q == '"') {
                const char *ck = q + 1, *ckend = js_string(q, vend);
                if (!ckend)
                    break;
                q = js_ws(ckend, vend);
                if (q >= vend || *q != ':')
                    break;
                const char *cv = js_ws(q + 1, vend);
                const char *cvend = js_skip(cv, vend);
                if (!cvend)
                    break;
                if (ckend - 1 - ck == 4 && memcmp(ck, "code", 4) == 0)
                    a->code = strtol(cv, NULL, 10);
                q = js_ws(cvend, vend);
                if (q < vend && *q == ',')
                    q = js_ws(q + 1, vend);
            }
        }
        p = js_ws(vend, e);
        if (p < e && *p == ',') {
            p = js_ws(p + 1, e);
            continue;
        }
        if (p < e && *p == '}')
            break;
        return -1;
    }
    return (a->has_result || a->has_error) ? 0 : -1;
}

/* ---------------------------------------------------------------------
 * connections
 * ------------------------------------------------------------------- */

enum rb_cstate { RB_C_DOWN = 0, RB_C_CONNECTING, RB_C_OPEN };

struct rb_slot {
    uint64_t id;
    uint64_t t_ns;    /* when its bytes were written */
    uint8_t busy;     /* IPC: slot in use */
    uint8_t measured; /* sent during the measured phase */
};

struct rb_conn {
    int idx;
    int fd;
    enum rb_cstate state;
    uint64_t retry_at_ns; /* when to reconnect after a failure */
    uint64_t seq;         /* requests sent on this connection */
    int inflight;
    struct rb_slot *slots; /* P slots: IPC by id, HTTP as a ring */
    int ring_head;         /* HTTP: oldest request in flight */
    int *free_slots;       /* IPC: stack of free slot indexes */
    int nfree;
    char *out;
    size_t out_len, out_off, out_cap;
    int want_out; /* EPOLLOUT registered */
    char *in;     /* IPC: partial line */
    size_t in_len, in_cap;
    http_parser hp; /* HTTP */
    char *body;
    size_t body_len, body_cap;
    int peer_closes; /* HTTP: the last answer said Connection: close */
    int bad;         /* set inside callbacks: close after parsing */
};

static struct rb_conn *rb_c;
static int rb_ep = -1;

enum rb_phase { RB_WARMUP = 0, RB_RUN, RB_DRAIN, RB_DONE };
static enum rb_phase rb_phase;
static uint64_t rb_measured_sent;
static uint64_t rb_measured_inflight;
static uint64_t rb_last_answer_ns;
static uint64_t rb_run_start_ns, rb_send_stop_ns;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        die("out of memory");
    return q;
}

static void grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    *buf = xrealloc(*buf, n);
    *cap = n;
}

static void ep_mod(struct rb_conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)c->idx};
    if (epoll_ctl(rb_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
}

/* Forget every request in flight on C, counting the measured ones as KIND
 * (the oldest one, when TIMED_OUT is set, as a timeout), and close it. */
static void conn_close(struct rb_conn *c, enum rb_kind kind, int timed_out_slot)
{
    for (int i = 0; i < rb_o.pipeline; i++) {
        struct rb_slot *s = &c->slots[i];
        if (!s->busy)
            continue;
        if (s->measured) {
            rb_s.kind[i == timed_out_slot ? RB_K_TIMEOUT : kind]++;
            rb_measured_inflight--;
        }
        s->busy = 0;
    }
    c->inflight = 0;
    c->ring_head = 0;
    c->nfree = 0;
    for (int i = rb_o.pipeline - 1; i >= 0; i--)
        c->free_slots[c->nfree++] = i;
    if (c->fd >= 0) {
        epoll_ctl(rb_ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = RB_C_DOWN;
    c->out_len = c->out_off = 0;
    c->in_len = 0;
    c->body_len = 0;
    c->want_out = 0;
    c->peer_closes = 0;
    c->bad = 0;
    c->retry_at_ns = now_ns() + 50000000ull; /* 50 ms */
}

/* Open a non-blocking connection for C. Returns 0 when connected or in
 * progress, -1 on an immediate failure (counted, retried later). */
static int conn_open(struct rb_conn *c)
{
    int fd;
    int rc;
    if (rb_o.use_tcp) {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket: %s", strerror(errno));
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        rc = connect(fd, (struct sockaddr *)&rb_o.tcp_addr, sizeof rb_o.tcp_addr);
    } else {
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket: %s", strerror(errno));
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, rb_o.unix_path, strlen(rb_o.unix_path) + 1);
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    }
    if (rc < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        if (rb_phase == RB_RUN)
            rb_s.kind[RB_K_CONNECT]++;
        c->retry_at_ns = now_ns() + (err == EAGAIN ? 10000000ull : 100000000ull);
        return -1;
    }
    c->fd = fd;
    c->state = rc == 0 ? RB_C_OPEN : RB_C_CONNECTING;
    c->want_out = rc != 0;
    if (rb_o.mode == RB_HTTP)
        http_parser_init(&c->hp, HTTP_RESPONSE);
    c->hp.data = c;
    struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)c->idx};
    if (epoll_ctl(rb_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    return 0;
}

/* May another request be started now? */
static int may_send(void)
{
    if (rb_phase == RB_WARMUP)
        return 1;
    if (rb_phase != RB_RUN)
        return 0;
    return rb_o.total == 0 || rb_measured_sent < rb_o.total;
}

/* Append one request to C's output, in slot S with id ID. */
static void build_request(struct rb_conn *c, uint64_t id)
{
    char body[1024];
    int bl = snprintf(body, sizeof body,
                      "{\"jsonrpc\":\"2.0\",\"id\":%" PRIu64 ",\"method\":\"%s\",\"params\":%s}",
                      id, rb_o.method, rb_o.params);
    if (bl < 0 || (size_t)bl >= sizeof body)
        die("request too long");
    if (rb_o.mode == RB_IPC) {
        grow(&c->out, &c->out_cap, c->out_len + (size_t)bl + 1);
        memcpy(c->out + c->out_len, body, (size_t)bl);
        c->out_len += (size_t)bl;
        c->out[c->out_len++] = '\n';
        return;
    }
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n",
                      rb_o.url_path, rb_o.host_hdr, bl);
    if (hl < 0 || (size_t)hl >= sizeof head)
        die("request head too long");
    grow(&c->out, &c->out_cap, c->out_len + (size_t)hl + (size_t)bl);
    memcpy(c->out + c->out_len, head, (size_t)hl);
    memcpy(c->out + c->out_len + hl, body, (size_t)bl);
    c->out_len += (size_t)hl + (size_t)bl;
}

/* Write what C has pending; returns -1 when the connection failed (and was
 * closed). */
static int conn_flush(struct rb_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (!c->want_out) {
                    c->want_out = 1;
                    ep_mod(c, EPOLLIN | EPOLLOUT);
                }
                return 0;
            }
            conn_close(c, RB_K_CLOSED, -1);
            return -1;
        }
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    if (c->want_out) {
        c->want_out = 0;
        ep_mod(c, EPOLLIN);
    }
    return 0;
}

/* Top C up to P requests in flight and write them. */
static int conn_fill(struct rb_conn *c)
{
    if (c->state != RB_C_OPEN || c->peer_closes)
        return 0;
    uint64_t t = 0;
    int added = 0;
    while (c->inflight < rb_o.pipeline && may_send()) {
        int si;
        if (rb_o.mode == RB_IPC)
            si = c->free_slots[--c->nfree];
        else
            si = (c->ring_head + c->inflight) % rb_o.pipeline;
        struct rb_slot *s = &c->slots[si];
        /* unique over the run and over connections; slot recoverable */
        uint64_t id = ((c->seq++ * (uint64_t)rb_o.pipeline + (uint64_t)si) * (uint64_t)rb_o.conns +
                       (uint64_t)c->idx) +
                      1;
        if (!t)
            t = now_ns();
        s->id = id;
        s->t_ns = t;
        s->busy = 1;
        s->measured = rb_phase == RB_RUN;
        if (s->measured) {
            rb_measured_sent++;
            rb_measured_inflight++;
            rb_s.sent++;
        }
        c->inflight++;
        build_request(c, id);
        added++;
    }
    return added ? conn_flush(c) : 0;
}

/* Account one answer for slot S of C (removing it from flight). */
static void finish_slot(struct rb_conn *c, struct rb_slot *s, const struct rb_answer *a, int valid,
                        int http_status, uint64_t t)
{
    s->busy = 0;
    c->inflight--;
    if (rb_o.mode == RB_IPC)
        c->free_slots[c->nfree++] = (int)(s - c->slots);
    if (!s->measured)
        return;
    rb_measured_inflight--;
    rb_s.answered++;
    rb_last_answer_ns = t;
    if (http_status && http_status != 200) {
        count_status(http_status);
        return;
    }
    if (!valid) {
        rb_s.kind[RB_K_BAD_JSON]++;
        return;
    }
    if (rb_o.mode == RB_HTTP && !rb_o.any_id && (!a->has_id || a->id != s->id)) {
        rb_s.kind[RB_K_ID_MISMATCH]++;
        return;
    }
    if (a->has_error) {
        rb_s.rpc_errors++;
        count_code(a->code);
        return;
    }
    rb_s.ok++;
    hist_add(&rb_s.lat, t - s->t_ns);
}

/* An IPC answer line [P, E) on C. */
static void ipc_answer(struct rb_conn *c, const char *p, const char *e, uint64_t t)
{
    const char *q = js_ws(p, e);
    if (q == e)
        return; /* blank line */
    struct rb_answer a;
    if (parse_answer(q, e, &a) < 0 || !a.has_id) {
        /* cannot be matched to a request: not counted per request */
        if (rb_phase == RB_RUN || rb_phase == RB_DRAIN)
            rb_s.kind[a.has_id ? RB_K_BAD_JSON : RB_K_UNMATCHED]++;
        return;
    }
    uint64_t k = a.id - 1;
    int si = (int)((k / (uint64_t)rb_o.conns) % (uint64_t)rb_o.pipeline);
    struct rb_slot *s = &c->slots[si];
    if (k % (uint64_t)rb_o.conns != (uint64_t)c->idx || !s->busy || s->id != a.id) {
        if (rb_phase == RB_RUN || rb_phase == RB_DRAIN)
            rb_s.kind[RB_K_UNMATCHED]++;
        return;
    }
    finish_slot(c, s, &a, 1, 0, t);
}

/* Read what C has; parse answers. Returns -1 when C was closed. */
static int conn_read(struct rb_conn *c);

static int hp_on_message_begin(http_parser *hp)
{
    struct rb_conn *c = hp->data;
    c->body_len = 0;
    return 0;
}

static int hp_on_body(http_parser *hp, const char *at, size_t len)
{
    struct rb_conn *c = hp->data;
    if (c->body_len + len > (64u << 20))
        return -1;
    grow(&c->body, &c->body_cap, c->body_len + len);
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int hp_on_message_complete(http_parser *hp)
{
    struct rb_conn *c = hp->data;
    uint64_t t = now_ns();
    if (c->inflight == 0) {
        if (rb_phase == RB_RUN || rb_phase == RB_DRAIN)
            rb_s.kind[RB_K_UNMATCHED]++;
        c->bad = 1;
        return 0;
    }
    struct rb_slot *s = &c->slots[c->ring_head];
    c->ring_head = (c->ring_head + 1) % rb_o.pipeline;
    struct rb_answer a;
    int valid = parse_answer(c->body, c->body + c->body_len, &a) == 0;
    finish_slot(c, s, &a, valid, (int)hp->status_code, t);
    if (!http_should_keep_alive(hp))
        c->peer_closes = 1;
    return 0;
}

static http_parser_settings rb_hp_settings = {
    .on_message_begin = hp_on_message_begin,
    .on_body = hp_on_body,
    .on_message_complete = hp_on_message_complete,
};

static int conn_read(struct rb_conn *c)
{
    char buf[RB_READ_BYTES];
    for (;;) {
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            conn_close(c, RB_K_CLOSED, -1);
            return -1;
        }
        if (r == 0) {
            conn_close(c, RB_K_CLOSED, -1);
            return -1;
        }
        if (rb_o.mode == RB_HTTP) {
            size_t n = http_parser_execute(&c->hp, &rb_hp_settings, buf, (size_t)r);
            if (HTTP_PARSER_ERRNO(&c->hp) != HPE_OK || n != (size_t)r) {
                if (rb_phase == RB_RUN || rb_phase == RB_DRAIN)
                    rb_s.kind[RB_K_HTTP_PARSE]++;
                conn_close(c, RB_K_CLOSED, -1);
                return -1;
            }
            if (c->bad) {
                conn_close(c, RB_K_CLOSED, -1);
                return -1;
            }
            if (c->peer_closes && c->inflight == 0) {
                conn_close(c, RB_K_CLOSED, -1);
                return -1;
            }
        } else {
            uint64_t t = now_ns();
            grow(&c->in, &c->in_cap, c->in_len + (size_t)r);
            memcpy(c->in + c->in_len, buf, (size_t)r);
            c->in_len += (size_t)r;
            char *p = c->in, *e = c->in + c->in_len;
            char *nl;
            while ((nl = memchr(p, '\n', (size_t)(e - p))) != NULL) {
                ipc_answer(c, p, nl, t);
                p = nl + 1;
            }
            c->in_len = (size_t)(e - p);
            if (c->in_len && p != c->in)
                memmove(c->in, p, c->in_len);
        }
        if ((size_t)r < sizeof buf)
            return 0;
    }
}

/* Close connections whose oldest request passed the timeout. */
static void check_timeouts(uint64_t t)
{
    uint64_t limit = (uint64_t)rb_o.timeout_ms * 1000000ull;
    for (int i = 0; i < rb_o.conns; i++) {
        struct rb_conn *c = &rb_c[i];
        if (c->state == RB_C_DOWN || c->inflight == 0)
            continue;
        int oldest = -1;
        for (int k = 0; k < rb_o.pipeline; k++)
            if (c->slots[k].busy && (oldest < 0 || c->slots[k].t_ns < c->slots[oldest].t_ns))
                oldest = k;
        if (oldest >= 0 && t > c->slots[oldest].t_ns && t - c->slots[oldest].t_ns > limit)
            conn_close(c, RB_K_CLOSED, oldest);
    }
}

/* ---------------------------------------------------------------------
 * /proc accounting of watched process trees
 * ------------------------------------------------------------------- */

struct rb_proc {
    pid_t pid;
    char comm[32];
    uint64_t cpu_ticks; /* utime + stime */
    uint64_t sched_ns;  /* on-CPU time of all its threads (schedstat) */
    uint64_t rss_kib;
};

struct rb_sample {
    int n;
    struct rb_proc p[RB_MAX_PROCS];
};

static struct rb_sample rb_before, rb_after;

/* Read pid's ppid, comm and utime+stime from /proc/PID/stat. */
static int read_stat(pid_t pid, pid_t *ppid, char *comm, size_t commsz, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
    if (!lp || !rp || rp < lp)
        return -1;
    size_t cl = (size_t)(rp - lp - 1);
    if (cl >= commsz)
        cl = commsz - 1;
    memcpy(comm, lp + 1, cl);
    comm[cl] = 0;
    /* fields after ')': 3 state, 4 ppid, ... 14 utime, 15 stime */
    char *f = rp + 2;
    int field = 3;
    unsigned long long ut = 0, st = 0;
    long pp = 0;
    char *save = NULL;
    for (char *tok = strtok_r(f, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 4)
            pp = strtol(tok, NULL, 10);
        else if (field == 14)
            ut = strtoull(tok, NULL, 10);
        else if (field == 15) {
            st = strtoull(tok, NULL, 10);
            break;
        }
    }
    *ppid = (pid_t)pp;
    *ticks = ut + st;
    return 0;
}

static uint64_t read_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    uint64_t kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtoull(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kib;
}

/* On-CPU ns of every thread of PID (/proc/PID/task/TID/schedstat, first
 * field): exact, where utime/stime are sampled at the tick. 0 when the
 * kernel has no schedstat. */
static uint64_t read_sched_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t ns = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char sp[320];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
        FILE *f = fopen(sp, "re");
        if (!f)
            continue;
        unsigned long long v = 0;
        if (fscanf(f, "%llu", &v) == 1)
            ns += v;
        fclose(f);
    }
    closedir(d);
    return ns;
}

/* Sample every process in the watched trees: the roots and all their
 * descendants. */
static void sample_procs(struct rb_sample *s)
{
    s->n = 0;
    if (rb_o.nwatch == 0)
        return;
    static pid_t pids[65536], ppids[65536];
    int np = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && np < 65536) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(de->d_name), pp;
        char comm[32];
        uint64_t ticks;
        if (read_stat(pid, &pp, comm, sizeof comm, &ticks) == 0) {
            pids[np] = pid;
            ppids[np++] = pp;
        }
    }
    closedir(d);
    /* the set grows from the roots until no process is added */
    pid_t set[RB_MAX_PROCS];
    int ns = 0;
    for (int i = 0; i < rb_o.nwatch && ns < RB_MAX_PROCS; i++)
        set[ns++] = rb_o.watch[i];
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < np && ns < RB_MAX_PROCS; i++) {
            int in = 0, parent_in = 0;
            for (int k = 0; k < ns; k++) {
                if (set[k] == pids[i])
                    in = 1;
                if (set[k] == ppids[i])
                    parent_in = 1;
            }
            if (!in && parent_in) {
                set[ns++] = pids[i];
                changed = 1;
            }
        }
    }
    for (int k = 0; k < ns; k++) {
        struct rb_proc *p = &s->p[s->n];
        pid_t pp;
        if (read_stat(set[k], &pp, p->comm, sizeof p->comm, &p->cpu_ticks) < 0)
            continue;
        p->pid = set[k];
        p->sched_ns = read_sched_ns(set[k]);
        p->rss_kib = read_rss_kib(set[k]);
        s->n++;
    }
}

/* CPU microseconds the watched trees used between the two samples (a
 * process that appeared in between counts whole). */
static uint64_t cpu_delta_us(void)
{
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    uint64_t ticks = 0;
    for (int i = 0; i < rb_after.n; i++) {
        uint64_t before = 0;
        for (int k = 0; k < rb_before.n; k++)
            if (rb_before.p[k].pid == rb_after.p[i].pid)
                before = rb_before.p[k].cpu_ticks;
        if (rb_after.p[i].cpu_ticks > before)
            ticks += rb_after.p[i].cpu_ticks - before;
    }
    return ticks * 1000000ull / (uint64_t)hz;
}

/* The same from schedstat, in microseconds. */
static uint64_t sched_delta_us(void)
{
    uint64_t ns = 0;
    for (int i = 0; i < rb_after.n; i++) {
        uint64_t before = 0;
        for (int k = 0; k < rb_before.n; k++)
            if (rb_before.p[k].pid == rb_after.p[i].pid)
                before = rb_before.p[k].sched_ns;
        if (rb_after.p[i].sched_ns > before)
            ns += rb_after.p[i].sched_ns - before;
    }
    return ns / 1000;
}

/* ---------------------------------------------------------------------
 * output
 * ------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void report(double elapsed_s, uint64_t unfinished)
{
    const struct rb_hist *h = &rb_s.lat;
    double rps = elapsed_s > 0 ? (double)rb_s.answered / elapsed_s : 0;
    double ok_rps = elapsed_s > 0 ? (double)rb_s.ok / elapsed_s : 0;
    double p50 = hist_quantile(h, 0.50) / 1000, p90 = hist_quantile(h, 0.90) / 1000;
    double p99 = hist_quantile(h, 0.99) / 1000, pmax = (double)h->max_ns / 1000;
    double mean = h->n ? h->sum_ns / (double)h->n / 1000 : 0;
    /* requests that failed: answered but not ok, timed out, or lost with
     * their connection (connect failures and stray answers are listed by
     * kind but are not requests) */
    uint64_t errors = rb_s.answered - rb_s.ok + rb_s.kind[RB_K_TIMEOUT] + rb_s.kind[RB_K_CLOSED];
    uint64_t cpu_us = rb_o.nwatch ? cpu_delta_us() : 0;
    uint64_t rss_total = 0, rss_max = 0;
    for (int i = 0; i < rb_after.n; i++) {
        rss_total += rb_after.p[i].rss_kib;
        if (rb_after.p[i].rss_kib > rss_max)
            rss_max = rb_after.p[i].rss_kib;
    }
    double cpu_per_req = rb_s.answered ? (double)cpu_us / (double)rb_s.answered : 0;
    uint64_t sched_us = rb_o.nwatch ? sched_delta_us() : 0;
    double sched_per_req = rb_s.answered ? (double)sched_us / (double)rb_s.answered : 0;

    FILE *t = rb_o.json ? stderr : stdout;
    const char *target = rb_o.use_tcp ? rb_o.host_hdr : rb_o.unix_path;
    fprintf(t, "rpcbench %s%s%s %s %s%s, %d conns x %d in flight, %s\n", rb_o.label,
            *rb_o.label ? ": " : "", rb_o.mode == RB_IPC ? "ipc" : "http",
            rb_o.use_tcp ? "tcp" : "unix", target, rb_o.use_tcp ? rb_o.url_path : "", rb_o.conns,
            rb_o.pipeline, rb_o.method);
    fprintf(t, "  %-22s %12.3f s\n", "elapsed", elapsed_s);
    fprintf(t, "  %-22s %12" PRIu64 "\n", "sent", rb_s.sent);
    fprintf(t, "  %-22s %12" PRIu64 "   (%.0f/s)\n", "answered", rb_s.answered, rps);
    fprintf(t, "  %-22s %12" PRIu64 "   (%.0f/s)\n", "ok", rb_s.ok, ok_rps);
    fprintf(t, "  %-22s %12" PRIu64 "\n", "unfinished", unfinished);
    fprintf(t, "  latency (ok)           %9s %9s %9s %9s %9s\n", "p50", "p90", "p99", "max",
            "mean");
    fprintf(t, "  %-22s %9.1f %9.1f %9.1f %9.1f %9.1f\n", "  us", p50, p90, p99, pmax, mean);
    fprintf(t, "  %-22s %12" PRIu64 "\n", "errors", errors);
    for (int i = 0; i < rb_s.ncodes; i++)
        fprintf(t, "    json-rpc %-12ld %12" PRIu64 "\n", rb_s.code[i], rb_s.code_n[i]);
    for (int k = 0; k < RB_K_COUNT; k++)
        if (rb_s.kind[k] && k != RB_K_HTTP_STATUS)
            fprintf(t, "    %-21s %12" PRIu64 "\n", rb_kind_name[k], rb_s.kind[k]);
    for (int i = 0; i < rb_s.nstatus; i++)
        fprintf(t, "    http %-16d %12" PRIu64 "\n", rb_s.status[i], rb_s.status_n[i]);
    if (rb_o.nwatch) {
        fprintf(t,
                "  watched processes: cpu %" PRIu64 " us = %.2f us/request (utime+stime); "
                "%" PRIu64 " us = %.2f us/request (schedstat)\n",
                cpu_us, cpu_per_req, sched_us, sched_per_req);
        for (int i = 0; i < rb_after.n; i++)
            fprintf(t, "    pid %-8d %-16s rss %8" PRIu64 " KiB\n", (int)rb_after.p[i].pid,
                    rb_after.p[i].comm, rb_after.p[i].rss_kib);
    }
    fflush(t);
    if (!rb_o.json)
        return;

    FILE *f = stdout;
    fprintf(f, "{\"label\":");
    json_str(f, rb_o.label);
    fprintf(f, ",\"mode\":\"%s\",\"transport\":\"%s\",\"target\":",
            rb_o.mode == RB_IPC ? "ipc" : "http", rb_o.use_tcp ? "tcp" : "unix");
    json_str(f, target);
    fprintf(f, ",\"method\":");
    json_str(f, rb_o.method);
    fprintf(f,
            ",\"conns\":%d,\"pipeline\":%d,\"elapsed_s\":%.6f,\"sent\":%" PRIu64
            ",\"answered\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"unfinished\":%" PRIu64
            ",\"errors\":%" PRIu64 ",\"rps\":%.1f,\"ok_rps\":%.1f",
            rb_o.conns, rb_o.pipeline, elapsed_s, rb_s.sent, rb_s.answered, rb_s.ok, unfinished,
            errors, rps, ok_rps);
    fprintf(f,
            ",\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f,"
            "\"min\":%.1f}",
            p50, p90, p99, pmax, mean, (double)h->min_ns / 1000);
    fprintf(f, ",\"errors_by_code\":{");
    for (int i = 0; i < rb_s.ncodes; i++)
        fprintf(f, "%s\"%ld\":%" PRIu64, i ? "," : "", rb_s.code[i], rb_s.code_n[i]);
    fprintf(f, "},\"errors_by_kind\":{");
    int first = 1;
    for (int k = 0; k < RB_K_COUNT; k++) {
        if (k == RB_K_HTTP_STATUS)
            continue;
        fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", rb_kind_name[k], rb_s.kind[k]);
        first = 0;
    }
    for (int i = 0; i < rb_s.nstatus; i++)
        fprintf(f, ",\"http_%d\":%" PRIu64, rb_s.status[i], rb_s.status_n[i]);
    fprintf(f, "}");
    if (rb_o.nwatch) {
        fprintf(f,
                ",\"watch\":{\"cpu_us\":%" PRIu64 ",\"cpu_us_per_request\":%.3f,"
                "\"sched_cpu_us\":%" PRIu64 ",\"sched_cpu_us_per_request\":%.3f,"
                "\"rss_kib_total\":%" PRIu64 ",\"rss_kib_max\":%" PRIu64 ",\"procs\":[",
                cpu_us, cpu_per_req, sched_us, sched_per_req, rss_total, rss_max);
        for (int i = 0; i < rb_after.n; i++) {
            fprintf(f, "%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)rb_after.p[i].pid);
            json_str(f, rb_after.p[i].comm);
            fprintf(f, ",\"rss_kib\":%" PRIu64 "}", rb_after.p[i].rss_kib);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "}\n");
    fflush(f);
}

/* ---------------------------------------------------------------------
 * the load loop
 * ------------------------------------------------------------------- */

static void setup_conns(int n)
{
    rb_c = calloc((size_t)n, sizeof *rb_c);
    if (!rb_c)
        die("out of memory");
    for (int i = 0; i < n; i++) {
        struct rb_conn *c = &rb_c[i];
        c->idx = i;
        c->fd = -1;
        c->slots = calloc((size_t)rb_o.pipeline, sizeof *c->slots);
        c->free_slots = calloc((size_t)rb_o.pipeline, sizeof *c->free_slots);
        if (!c->slots || !c->free_slots)
            die("out of memory");
        for (int k = rb_o.pipeline - 1; k >= 0; k--)
            c->free_slots[c->nfree++] = k;
    }
}

/* Handle readiness EV on connection C. */
static void conn_event(struct rb_conn *c, uint32_t ev)
{
    if (c->state == RB_C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            if (rb_phase == RB_RUN)
                rb_s.kind[RB_K_CONNECT]++;
            conn_close(c, RB_K_CLOSED, -1);
            c->retry_at_ns = now_ns() + 100000000ull;
            return;
        }
        c->state = RB_C_OPEN;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (conn_read(c) < 0)
            return;
    }
    if ((ev & EPOLLOUT) && c->out_off < c->out_len) {
        if (conn_flush(c) < 0)
            return;
    } else if ((ev & EPOLLOUT) && c->want_out) {
        c->want_out = 0;
        ep_mod(c, EPOLLIN);
    }
    conn_fill(c);
}

static int run_load(void)
{
    setup_conns(rb_o.conns);
    rb_ep = epoll_create1(EPOLL_CLOEXEC);
    if (rb_ep < 0)
        die("epoll_create1: %s", strerror(errno));
    uint64_t t0 = now_ns();
    uint64_t warm_end = t0 + (uint64_t)(rb_o.warmup_s * 1e9);
    uint64_t run_end = 0, drain_end = 0, last_timeout_check = t0;
    rb_phase = rb_o.warmup_s > 0 ? RB_WARMUP : RB_RUN;
    if (rb_phase == RB_RUN) {
        sample_procs(&rb_before);
        rb_run_start_ns = now_ns();
        run_end = rb_run_start_ns + (uint64_t)(rb_o.duration_s * 1e9);
    }
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (rb_phase == RB_WARMUP && t >= warm_end) {
            sample_procs(&rb_before);
            rb_phase = RB_RUN;
            rb_run_start_ns = now_ns();
            run_end = rb_run_start_ns + (uint64_t)(rb_o.duration_s * 1e9);
            for (int i = 0; i < rb_o.conns; i++)
                conn_fill(&rb_c[i]);
        }
        if (rb_phase == RB_RUN && (t >= run_end || !may_send())) {
            rb_phase = RB_DRAIN;
            rb_send_stop_ns = t;
            uint64_t grace = (uint64_t)rb_o.timeout_ms * 1000000ull;
            if (grace > RB_DRAIN_MAX_MS * 1000000ull)
                grace = RB_DRAIN_MAX_MS * 1000000ull;
            drain_end = t + grace;
        }
        if (rb_phase == RB_DRAIN && (rb_measured_inflight == 0 || t >= drain_end))
            break;
        if (rb_phase != RB_DRAIN) {
            for (int i = 0; i < rb_o.conns; i++) {
                struct rb_conn *c = &rb_c[i];
                if (c->state == RB_C_DOWN && t >= c->retry_at_ns && conn_open(c) == 0)
                    conn_fill(c);
            }
        }
        if (t - last_timeout_check > 50000000ull) {
            check_timeouts(now_ns());
            last_timeout_check = t;
        }
        int n = epoll_wait(rb_ep, evs, 256, 10);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            conn_event(&rb_c[evs[i].data.u32], evs[i].events);
    }
    uint64_t end = rb_measured_inflight == 0 && rb_last_answer_ns ? rb_last_answer_ns : now_ns();
    if (end < rb_send_stop_ns && rb_measured_inflight)
        end = rb_send_stop_ns;
    sample_procs(&rb_after);
    uint64_t unfinished = rb_measured_inflight;
    report((double)(end - rb_run_start_ns) / 1e9, unfinished);
    for (int i = 0; i < rb_o.conns; i++)
        if (rb_c[i].fd >= 0)
            close(rb_c[i].fd);
    return rb_s.ok > 0 ? 0 : 1;
}

/* ---------------------------------------------------------------------
 * idle mode
 * ------------------------------------------------------------------- */

/* Connect rb_o.idle IPC connections and hold them; see usage(). */
static int run_idle(void)
{
    int n = rb_o.idle;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int *fds = calloc((size_t)n, sizeof *fds);
    if (!fds)
        die("out of memory");
    uint64_t deadline = now_ns() + 30000000000ull;
    int connected = 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, rb_o.unix_path, strlen(rb_o.unix_path) + 1);
    while (connected < n) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket after %d connections: %s", connected, strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            int err = errno;
            close(fd);
            if ((err == EAGAIN || err == ECONNREFUSED) && now_ns() < deadline) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL); /* backlog full: let the server accept */
                continue;
            }
            die("connect after %d connections: %s", connected, strerror(err));
        }
        fds[connected++] = fd;
    }
    printf("idle: connected %d\n", connected);
    fflush(stdout);

    uint64_t hold_end = now_ns() + (uint64_t)(rb_o.hold_s * 1e9);
    int answered = -1;
    for (;;) {
        uint64_t t = now_ns();
        if (t >= hold_end)
            break;
        uint64_t left = hold_end - t;
        struct timespec ts = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            break; /* EAGAIN: hold time over */
        }
        if (sig != SIGUSR1)
            break;
        if (answered >= 0)
            continue;
        /* one request on each connection, then wait for every answer */
        answered = 0;
        int ep = epoll_create1(EPOLL_CLOEXEC);
        char req[256];
        int rl = snprintf(req, sizeof req,
                          "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}\n",
                          rb_o.method, rb_o.params);
        if (rl < 0 || (size_t)rl >= sizeof req)
            die("request too long");
        for (int i = 0; i < n; i++) {
            if (write(fds[i], req, (size_t)rl) != rl)
                continue;
            struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        }
        uint64_t wait_end = now_ns() + 20000000000ull;
        struct epoll_event evs[256];
        while (answered < n && now_ns() < wait_end) {
            int k = epoll_wait(ep, evs, 256, 100);
            for (int j = 0; j < k; j++) {
                int fd = fds[evs[j].data.u32];
                char buf[4096];
                ssize_t r = read(fd, buf, sizeof buf);
                if (r > 0 && memchr(buf, '\n', (size_t)r))
                    answered++;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            }
        }
        close(ep);
        printf("idle: answered %d of %d\n", answered, n);
        fflush(stdout);
    }
    int open_now = 0;
    for (int i = 0; i < n; i++) {
        char ch;
        ssize_t r = recv(fds[i], &ch, 1, MSG_DONTWAIT | MSG_PEEK);
        if (!(r == 0 || (r < 0 && errno != EAGAIN)))
            open_now++;
        close(fds[i]);
    }
    printf("idle: done, %d of %d still open at the end\n", open_now, n);
    if (rb_o.json) {
        printf("{\"label\":");
        json_str(stdout, rb_o.label);
        printf(",\"idle\":%d,\"connected\":%d,\"answered\":%d,\"open_at_end\":%d}\n", n, connected,
               answered, open_now);
    }
    free(fds);
    return open_now == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int need = (rb_o.idle ? rb_o.idle : rb_o.conns) + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need)
        die("RLIMIT_NOFILE is %llu, %d needed (raise ulimit -Hn)", (unsigned long long)rl.rlim_cur,
            need);
    return rb_o.idle ? run_idle() : run_load();
}
