/* rpcpoolstat.c - show a running (or hung, or dead) rpcpool from its shared
 * memory segment, read-only (docs/interface.md section 5).
 *
 *   rpcpoolstat [-c FILE | -n SHM_NAME] [-1] [-j] [-i MS] [-h] [-V]
 *
 * The segment is mapped PROT_READ through rp_shm_view, which checks every
 * header field and table descriptor before anything is read; the rendering
 * is rp_status's, the same code the control socket's `status` uses. The live
 * view follows the pool's lifecycle: it notices a dead supervisor, a reload
 * (generation bump), a restarted supervisor (new pid or birth time) and a
 * segment that was removed or re-created under the same name (a fresh
 * shm_open + fstat of the name each refresh: another inode means another
 * segment), and reattaches by itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rp_buf.h"
#include "rp_config.h"
#include "rp_shm_view.h"
#include "rp_status.h"

#ifndef RP_VERSION
#define RP_VERSION "unknown"
#endif

#define STAT_DEFAULT_CONFIG      "/etc/rpcpool/rpcpool.conf"
#define STAT_DEFAULT_INTERVAL_MS 1000
#define STAT_MIN_INTERVAL_MS     10
#define STAT_MAX_INTERVAL_MS     86400000
#define STAT_NOTE_NS             (5ull * 1000000000ull) /* how long a lifecycle note stays up */
#define STAT_HEARTBEAT_STALE_MS  10000                  /* supervisor heartbeat older: "hung?" */
#define STAT_ATTACH_TRIES        3

static volatile sig_atomic_t g_stop;

static void stat_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void stat_usage(FILE *f)
{
    fprintf(f,
            "usage: rpcpoolstat [-c FILE | -n SHM_NAME] [-1] [-j] [-i MS] [-h] [-V]\n"
            "Show an rpcpool's endpoints and workers from its shared memory, read-only.\n"
            "  -c FILE      take shm_name from this configuration (default %s)\n"
            "  -n SHM_NAME  the segment's name, e.g. /rpcpool.ethereum-pool\n"
            "  -1           print the tables once and exit\n"
            "  -j           print one JSON object and exit\n"
            "  -i MS        refresh interval of the live view (default %d)\n"
            "  -h           this help\n"
            "  -V           version\n",
            STAT_DEFAULT_CONFIG, STAT_DEFAULT_INTERVAL_MS);
}

static uint64_t stat_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* What the name points at right now: another inode is another segment. */
struct stat_seg_id {
    dev_t dev;
    ino_t ino;
    off_t size;
};

/* Identify the object NAME names now with a fresh shm_open + fstat.
 * Returns 0, or -1 (errno set; ENOENT when the name is gone). */
static int stat_seg_identify(const char *name, struct stat_seg_id *id)
{
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (rc != 0) {
        errno = e;
        return -1;
    }
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    return 0;
}

static int stat_seg_same(const struct stat_seg_id *a, const struct stat_seg_id *b)
{
    return a->dev == b->dev && a->ino == b->ino;
}

/* Map NAME and learn which object was mapped: the name is identified before
 * and after the open, and only an open bracketed by the same identity is
 * kept (a re-creation in between is retried). Returns 0, or -1 with ERR. */
static int stat_attach(const char *name, struct rp_shm_view *v, struct stat_seg_id *id, char *err,
                       size_t errlen)
{
    for (int tries = 0; tries < STAT_ATTACH_TRIES; tries++) {
        struct stat_seg_id before, after;
        int have_before = stat_seg_identify(name, &before) == 0;
        if (rp_shm_view_open(v, name, err, errlen) != 0)
            return -1;
        if (have_before && stat_seg_identify(name, &after) == 0 && stat_seg_same(&before, &after)) {
            *id = after;
            return 0;
        }
        rp_shm_view_close(v);
    }
    snprintf(err, errlen, "shm %s: the segment keeps being re-created; try again", name);
    return -1;
}

/* Resolve the segment name: -n wins, else shm_name from the configuration. */
static int stat_resolve_name(const char *cfg_path, const char *shm_arg, char *out, size_t outlen)
{
    if (shm_arg) {
        if (!shm_arg[0] || strlen(shm_arg) >= outlen) {
            fprintf(stderr, "rpcpoolstat: bad shm name \"%s\"\n", shm_arg);
            return -1;
        }
        snprintf(out, outlen, "%s", shm_arg);
        return 0;
    }
    static struct rp_config cfg;
    char err[RP_ERR_MAX];
    if (rp_config_load(cfg_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "rpcpoolstat: %s\n", err);
        if (strcmp(cfg_path, STAT_DEFAULT_CONFIG) == 0)
            fprintf(stderr, "rpcpoolstat: name the segment with -n SHM_NAME or the "
                            "configuration with -c FILE\n");
        return -1;
    }
    int rc = 0;
    if (!cfg.shm_name || !cfg.shm_name[0] || strlen(cfg.shm_name) >= outlen) {
        fprintf(stderr, "rpcpoolstat: %s: no usable server.shm_name\n", cfg_path);
        rc = -1;
    } else {
        snprintf(out, outlen, "%s", cfg.shm_name);
    }
    rp_config_free(&cfg);
    return rc;
}

/* "3d04h05m06s" style, leading zero units left out. */
static void stat_fmt_uptime(char *out, size_t outlen, uint64_t s)
{
    uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
    if (d)
        snprintf(out, outlen, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", d, h, m,
                 sec);
    else if (h)
        snprintf(out, outlen, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", h, m, sec);
    else if (m)
        snprintf(out, outlen, "%" PRIu64 "m%02" PRIu64 "s", m, sec);
    else
        snprintf(out, outlen, "%" PRIu64 "s", sec);
}

/* Supervisor heartbeat age in ms from the (checked) header, or -1 when the
 * supervisor never wrote one. */
static int64_t stat_heartbeat_age_ms(const struct rp_shm_view *v, const struct rp_snapshot *s)
{
    const struct rp_shm_header *h = v->base;
    uint64_t hb = atomic_load_explicit(&h->supervisor_heartbeat_ms, memory_order_relaxed);
    if (hb == 0)
        return -1;
    return s->now_ms > hb ? (int64_t)(s->now_ms - hb) : 0;
}

/* The header line: pool, segment, generation, supervisor liveness, uptime. */
static void stat_print_header(FILE *f, const char *shm_name, const struct rp_snapshot *s,
                              int64_t hb_age_ms)
{
    char up[64], clock_str[32] = "";
    stat_fmt_uptime(up, sizeof up, rp_status_uptime_s(s, stat_clock_ns(CLOCK_REALTIME)));
    time_t t = time(NULL);
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(clock_str, sizeof clock_str, "%H:%M:%S", &tm);
    char name[RP_SHM_NAME_MAX];
    size_t n = 0;
    for (; n + 1 < sizeof name && s->name[n]; n++)
        name[n] = (s->name[n] < 0x20 || s->name[n] == 0x7f) ? '?' : s->name[n];
    name[n] = '\0';
    fprintf(f,
            "rpcpool %s  shm %s (layout %" PRIu32 ".%" PRIu32 ")  generation %" PRIu64
            "  supervisor %" PRId64 " %s",
            name, shm_name, s->version_major, s->version_minor, s->generation, s->supervisor_pid,
            s->supervisor_alive ? "alive" : "DEAD");
    if (s->supervisor_alive) {
        fprintf(f, "  up %s", up);
        if (hb_age_ms >= STAT_HEARTBEAT_STALE_MS)
            fprintf(f, "  heartbeat %" PRId64 "s ago: HUNG?", hb_age_ms / 1000);
    }
    fprintf(f, "  %s\n", clock_str);
}

/* One-shot modes: the table once (-1) or the JSON object (-j). */
static int stat_once(const char *name, int json)
{
    struct rp_shm_view v;
    struct stat_seg_id id;
    char err[512];
    static struct rp_snapshot snap;
    if (stat_attach(name, &v, &id, err, sizeof err) != 0) {
        fprintf(stderr, "rpcpoolstat: %s\n", err);
        return 1;
    }
    if (rp_shm_view_snapshot(&v, &snap, err, sizeof err) != 0) {
        fprintf(stderr, "rpcpoolstat: shm %s: %s\n", name, err);
        rp_shm_view_close(&v);
        return 1;
    }
    if (!snap.consistent)
        fprintf(stderr,
                "rpcpoolstat: shm %s: a reload kept rewriting the endpoint table; this "
                "copy may mix two generations\n",
                name);
    if (json) {
        struct rp_buf b = RP_BUF_INIT;
        if (rp_status_json(&b, &snap) != 0) {
            fprintf(stderr, "rpcpoolstat: out of memory\n");
            rp_buf_free(&b);
            rp_shm_view_close(&v);
            return 1;
        }
        fputs(rp_buf_cstr(&b), stdout);
        fputc('\n', stdout);
        rp_buf_free(&b);
    } else {
        stat_print_header(stdout, name, &snap, stat_heartbeat_age_ms(&v, &snap));
        fputc('\n', stdout);
        rp_status_table(stdout, &snap, NULL, 0.0);
    }
    rp_shm_view_close(&v);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "rpcpoolstat: writing output: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* Sleep until DEADLINE_NS (CLOCK_MONOTONIC) or a stop signal. */
static void stat_sleep_until(uint64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000ull),
                          .tv_nsec = (long)(deadline_ns % 1000000000ull)};
    while (!g_stop) {
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (rc != EINTR)
            break;
    }
}

/* State of the live view across refreshes. */
struct stat_live {
    const char *name;
    struct rp_shm_view view;
    struct stat_seg_id id;
    int attached;
    int gone;       /* the name was unlinked; still showing the old mapping */
    int reattached; /* a new segment was attached since the last snapshot */
    char reattach_why[128];
    struct rp_snapshot snaps[2];
    struct rp_snapshot *cur, *prev; /* prev: the req/s baseline, NULL when none */
    uint64_t prev_ns;
    int have_last; /* identity of the last good snapshot, for lifecycle events */
    int64_t last_pid;
    uint64_t last_birth_ns, last_generation;
    int last_alive;
    char note[512]; /* lifecycle note, shown until note_until_ns */
    uint64_t note_until_ns;
    char problem[512]; /* why nothing is attached right now */
};

static void stat_note(struct stat_live *L, uint64_t now_ns, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void stat_note(struct stat_live *L, uint64_t now_ns, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->note, sizeof L->note, fmt, ap);
    va_end(ap);
    L->note_until_ns = now_ns + STAT_NOTE_NS;
}

/* Follow the name: notice removal, re-creation and shrinking, and (re)attach
 * when needed. Returns 1 when a view is attached afterwards. */
static int stat_live_follow(struct stat_live *L)
{
    struct stat_seg_id now_id;
    int have = stat_seg_identify(L->name, &now_id) == 0;
    if (L->attached) {
        if (!have) {
            L->gone = 1; /* keep showing the old mapping: its last state is still there */
            return 1;
        }
        if (!stat_seg_same(&now_id, &L->id)) {
            snprintf(L->reattach_why, sizeof L->reattach_why, "was re-created");
        } else if (now_id.size < (off_t)L->view.size) {
            snprintf(L->reattach_why, sizeof L->reattach_why, "shrank");
        } else {
            return 1;
        }
        rp_shm_view_close(&L->view);
        L->attached = 0;
    } else if (!L->reattach_why[0]) {
        snprintf(L->reattach_why, sizeof L->reattach_why, "is back");
    }
    char err[512];
    if (stat_attach(L->name, &L->view, &L->id, err, sizeof err) != 0) {
        snprintf(L->problem, sizeof L->problem, "%s", err);
        return 0;
    }
    L->attached = 1;
    L->gone = 0;
    L->reattached = 1;
    L->prev = NULL; /* another segment: its counters start elsewhere */
    return 1;
}

/* Compare the new snapshot with the last one for lifecycle events: a
 * reattach, a restarted supervisor, a reload, a death. */
static void stat_live_events(struct stat_live *L, uint64_t now_ns)
{
    const struct rp_snapshot *c = L->cur;
    int restarted = L->have_last && (L->last_pid != c->supervisor_pid ||
                                     L->last_birth_ns != c->supervisor_birth_ns);
    if (L->reattached) {
        if (restarted)
            stat_note(L, now_ns,
                      "supervisor restarted (pid %" PRId64 " -> %" PRId64
                      "): segment %s %s, reattached",
                      L->last_pid, c->supervisor_pid, L->name, L->reattach_why);
        else
            stat_note(L, now_ns, "segment %s %s: reattached", L->name, L->reattach_why);
        L->reattached = 0;
        L->reattach_why[0] = '\0';
    } else if (restarted) {
        stat_note(L, now_ns, "supervisor restarted (pid %" PRId64 " -> %" PRId64 ")", L->last_pid,
                  c->supervisor_pid);
        L->prev = NULL;
    } else if (L->have_last && L->last_generation != c->generation) {
        stat_note(L, now_ns, "reloaded: generation %" PRIu64 " -> %" PRIu64, L->last_generation,
                  c->generation);
    } else if (L->have_last && L->last_alive && !c->supervisor_alive) {
        stat_note(L, now_ns, "supervisor %" PRId64 " died", c->supervisor_pid);
    }
    L->have_last = 1;
    L->last_pid = c->supervisor_pid;
    L->last_birth_ns = c->supervisor_birth_ns;
    L->last_generation = c->generation;
    L->last_alive = c->supervisor_alive;
}

/* Draw one frame into a memory stream, then write it at once (no flicker). */
static void stat_live_draw(struct stat_live *L, int tty, uint64_t now_ns, int have_snap)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    if (tty)
        fputs("\033[H\033[2J", f);
    else
        fputs("\n", f);
    if (have_snap) {
        stat_print_header(f, L->name, L->cur, stat_heartbeat_age_ms(&L->view, L->cur));
        if (L->gone)
            fprintf(f,
                    "segment %s was removed (supervisor stopped?): showing its last state, "
                    "waiting for a new one\n",
                    L->name);
        fprintf(f, "%s\n", L->note_until_ns > now_ns ? L->note : "");
        double interval_s = L->prev ? (double)(now_ns - L->prev_ns) / 1e9 : 0.0;
        rp_status_table(f, L->cur, L->prev, interval_s);
    } else {
        fprintf(f, "rpcpoolstat: waiting for %s: %s\n", L->name, L->problem);
        if (L->note_until_ns > now_ns)
            fprintf(f, "%s\n", L->note);
    }
    fclose(f);
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    free(text);
}

/* The live view: refresh every INTERVAL_MS until SIGINT/SIGTERM. The first
 * attach must succeed (exit 1 otherwise); later losses are waited out. */
static int stat_live(const char *name, unsigned interval_ms)
{
    static struct stat_live L;
    memset(&L, 0, sizeof L);
    L.name = name;
    L.cur = &L.snaps[0];
    char err[512];
    if (stat_attach(name, &L.view, &L.id, err, sizeof err) != 0) {
        fprintf(stderr, "rpcpoolstat: %s\n", err);
        return 1;
    }
    if (rp_shm_view_snapshot(&L.view, L.cur, err, sizeof err) != 0) {
        fprintf(stderr, "rpcpoolstat: shm %s: %s\n", name, err);
        rp_shm_view_close(&L.view);
        return 1;
    }
    L.attached = 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stat_on_signal; /* no SA_RESTART: the sleep returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int tty = isatty(STDOUT_FILENO);
    uint64_t interval_ns = (uint64_t)interval_ms * 1000000ull;
    uint64_t next_ns = stat_clock_ns(CLOCK_MONOTONIC);
    int first = 1;
    while (!g_stop) {
        uint64_t now_ns = stat_clock_ns(CLOCK_MONOTONIC);
        int have_snap = 0;
        if (first) {
            have_snap = 1;
            first = 0;
            stat_live_events(&L, now_ns);
        } else if (stat_live_follow(&L)) {
            if (rp_shm_view_snapshot(&L.view, L.cur, err, sizeof err) == 0) {
                have_snap = 1;
                stat_live_events(&L, now_ns);
            } else {
                snprintf(L.problem, sizeof L.problem, "%s", err);
                rp_shm_view_close(&L.view);
                L.attached = 0;
                L.prev = NULL;
            }
        }
        stat_live_draw(&L, tty, now_ns, have_snap);
        if (have_snap) {
            L.prev = L.cur;
            L.prev_ns = now_ns;
            L.cur = L.cur == &L.snaps[0] ? &L.snaps[1] : &L.snaps[0];
        }
        next_ns += interval_ns;
        if (next_ns <= now_ns) /* fell behind (stopped terminal): do not catch up */
            next_ns = now_ns + interval_ns;
        stat_sleep_until(next_ns);
    }
    if (L.attached)
        rp_shm_view_close(&L.view);
    return 0;
}

int main(int argc, char **argv)
{
    const char *cfg_path = NULL, *shm_arg = NULL;
    int once = 0, json = 0;
    unsigned interval_ms = STAT_DEFAULT_INTERVAL_MS;
    int opt;
    while ((opt = getopt(argc, argv, "c:n:1ji:hV")) != -1) {
        switch (opt) {
        case 'c':
            cfg_path = optarg;
            break;
        case 'n':
            shm_arg = optarg;
            break;
        case '1':
            once = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'i': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < STAT_MIN_INTERVAL_MS ||
                v > STAT_MAX_INTERVAL_MS) {
                fprintf(stderr, "rpcpoolstat: -i %s: want milliseconds between %d and %d\n", optarg,
                        STAT_MIN_INTERVAL_MS, STAT_MAX_INTERVAL_MS);
                return 1;
            }
            interval_ms = (unsigned)v;
            break;
        }
        case 'h':
            stat_usage(stdout);
            return 0;
        case 'V':
            printf("rpcpoolstat %s (shm layout %d.%d)\n", RP_VERSION, RP_SHM_VERSION_MAJOR,
                   RP_SHM_VERSION_MINOR);
            return 0;
        default:
            stat_usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rpcpoolstat: unexpected argument \"%s\"\n", argv[optind]);
        stat_usage(stderr);
        return 1;
    }
    if (cfg_path && shm_arg) {
        fprintf(stderr, "rpcpoolstat: use -c FILE or -n SHM_NAME, not both\n");
        return 1;
    }
    char name[256];
    if (stat_resolve_name(cfg_path ? cfg_path : STAT_DEFAULT_CONFIG, shm_arg, name, sizeof name) !=
        0)
        return 1;
    if (json || once)
        return stat_once(name, json);
    return stat_live(name, interval_ms);
}
