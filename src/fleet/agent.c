/* agent.c - the fleet agent: one process per host (slot RP_SHM_FLEET_SLOT),
 * supervised like the prober, started only when `fleet` is configured.
 *
 * It holds two Redis connections (hiredis async on its own epoll set,
 * rp_redis_ev.h): one for commands, one subscribed to the fleet's verdict
 * channel. Every RP_AGENT_TICK_MS it
 *   - leases tokens for each endpoint: the fleet-wide GCRA of the endpoint
 *     lives in Redis (key PREFIX "gcra:" EPKEY), run by one Lua script on
 *     the server's clock that grants up to the number asked for; what it
 *     grants is credited to the endpoint's shm row of leased tokens
 *     (rp_fleet.h), sized by the host's recent demand (rp_fleet_lease.h).
 *     One lease per endpoint is in flight at a time.
 *   - watches each endpoint's breaker and Retry-After hold words, and
 *     publishes a breaker that opened here or a hold raised here (PUBLISH
 *     on PREFIX "verdicts", rp_fleet_verdict.h), and stores it under
 *     PREFIX "verdict:" KIND ":" EPKEY, expiring with it, so that an agent
 *     that connects later (a host started, an agent restarted) applies it;
 *   - applies the verdicts of the other hosts as they arrive: the breaker
 *     opens until the given time (rp_breaker_open_until), the hold is raised
 *     (rp_hold_raise); its own trial then decides when it closes. What it
 *     applied is not published again.
 *   - keeps the mode word: SHARING while both connections are up; when
 *     Redis is unreachable (a connection lost or refused, or no answer for
 *     RP_AGENT_REPLY_TIMEOUT_MS), fleet.on_redis_down's mode, and it
 *     reconnects with back-off (RP_AGENT_BACKOFF_MIN_MS doubling to
 *     RP_AGENT_BACKOFF_MAX_MS), back to SHARING without a restart.
 *
 * A SIGKILL loses at most the leases Redis granted and the agent had not
 * yet credited (one per endpoint); what it credited stays in the segment,
 * and a restarted agent goes on from there.
 */
#include "rp_fleet_agent.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "rp_breaker.h"
#include "rp_child.h"
#include "rp_clock.h"
#include "rp_fleet.h"
#include "rp_fleet_lease.h"
#include "rp_fleet_verdict.h"
#include "rp_hold.h"
#include "rp_log.h"
#include "rp_redis_ev.h"

#define RP_AGENT_TICK_MS          10
#define RP_AGENT_REPLY_TIMEOUT_MS 1000 /* a command unanswered this long: Redis is unreachable */
#define RP_AGENT_BACKOFF_MIN_MS   100
#define RP_AGENT_BACKOFF_MAX_MS   1000
#define RP_AGENT_RETRY_MS         100 /* after a lease that failed */
#define RP_AGENT_KEY_MAX          (RP_NAME_MAX + 64)

/* The fleet-wide GCRA: KEYS[1] the endpoint's key, KEYS[2] the total it
 * granted (for operators and tests: granted minus what the hosts credited
 * is what dead agents lost; kept a day after the last grant); ARGV interval (ns),
 * burst, tokens wanted. Times in microseconds of the server's clock (TIME),
 * as doubles (exact well past 2^50). Grants min(wanted, available); returns
 * {granted, us until one token is there when none was granted}. */
static const char agent_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local interval = tonumber(ARGV[1]) / 1000\n"
    "local burst = tonumber(ARGV[2])\n"
    "local want = tonumber(ARGV[3])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat < now then tat = now end\n"
    "local free = math.floor((now + burst * interval - tat) / interval + 1e-9)\n"
    "if free > want then free = want end\n"
    "if free < 1 then\n"
    "  return {0, math.ceil(tat + interval - burst * interval - now)}\n"
    "end\n"
    "tat = tat + free * interval\n"
    "redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX',\n"
    "           math.ceil((tat - now) / 1000) + 1000)\n"
    "redis.call('INCRBY', KEYS[2], free)\n"
    "redis.call('PEXPIRE', KEYS[2], 86400000)\n"
    "return {free, 0}\n";

/* One configured endpoint as the agent sees it. */
struct aep {
    const struct rp_endpoint_config *cfg;
    struct rp_shm_endpoint *row;
    struct rp_shm_fleet_ep *cell;
    uint64_t key;                       /* rp_fleet_ep_key() */
    char gcra_key[RP_AGENT_KEY_MAX];    /* PREFIX "gcra:" hex(key) */
    char granted_key[RP_AGENT_KEY_MAX]; /* PREFIX "granted:" hex(key) */
    struct rp_lease lease;              /* demand average */
    struct rp_verdict_watch watch;      /* breaker / hold words last seen */
    int inflight;                       /* a lease request is out */
    uint64_t want;                      /* tokens that request asked for */
    uint64_t next_ms;                   /* no lease request before (agent clock) */
};

static struct {
    const struct rp_config *cfg;
    struct rp_shm_header *shm;
    struct rp_shm_fleet *fleet;
    struct rp_shm_worker *slot;
    struct rp_child child;
    struct rp_redis_ev cmd, sub; /* the two connections (ac NULL when none) */
    int cmd_up, sub_up;          /* the script is loaded / the subscription confirmed */
    char broken[160];            /* why Redis refused us ("" = it did not): drop */
    int up;                      /* both up: the mode is SHARING */
    uint64_t connect_start_ms;   /* when the pair was started; 0 = none */
    uint64_t next_connect_ms;
    uint64_t backoff_ms;
    unsigned pending;     /* commands sent on cmd, unanswered */
    uint64_t progress_ms; /* last answer, or send when none was pending */
    char sha[41];         /* the script's SHA1 once loaded; "" before */
    char channel[RP_AGENT_KEY_MAX];
    uint64_t sender; /* this agent's id in verdicts */
    char host[256];
    int port; /* 0: a UNIX socket path in host */
    struct aep eps[RP_MAX_ENDPOINTS];
    int nep;
    int warned_down;
} A;

static uint64_t agent_now_ms(void)
{
    return rp_clock_mono_ms();
}

static uint64_t agent_wall_ms(void)
{
    return rp_clock_realtime_ns() / 1000000ull;
}

/* The mode while Redis cannot be reached: the configured policy. */
static uint32_t agent_down_mode(void)
{
    return A.cfg->fleet_on_down == RP_FLEET_LEASED_ONLY ? RP_FLEET_MODE_LEASED_ONLY
                                                        : RP_FLEET_MODE_FAIR_SHARE;
}

static void agent_set_mode(uint32_t mode)
{
    atomic_store_explicit(&A.fleet->mode, mode, memory_order_relaxed);
}

/* fleet.redis: "host:port" (the last colon) or a socket path (a '/' in
 * it, or no port). Returns 0, or -1 when it cannot be used. */
static int agent_parse_addr(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (strchr(addr, '/') || !colon) {
        if (strlen(addr) >= sizeof A.host)
            return -1;
        snprintf(A.host, sizeof A.host, "%s", addr);
        A.port = 0;
        return 0;
    }
    size_t hlen = (size_t)(colon - addr);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (hlen == 0 || hlen >= sizeof A.host || *end || port < 1 || port > 65535)
        return -1;
    memcpy(A.host, addr, hlen);
    A.host[hlen] = 0;
    if (A.host[0] == '[' && hlen > 2 && A.host[hlen - 1] == ']') { /* [v6]:port */
        memmove(A.host, A.host + 1, hlen - 2);
        A.host[hlen - 2] = 0;
    }
    A.port = (int)port;
    return 0;
}

/* ---- connection life ---- */

/* Free both contexts (their pending callbacks run with a NULL reply) and
 * count Redis as unreachable: the configured policy until a reconnect, which
 * is due after the back-off. Never called from inside a hiredis callback. */
static void agent_drop(const char *why)
{
    int was_up = A.up;
    if (A.cmd.ac)
        redisAsyncFree(A.cmd.ac);
    if (A.sub.ac)
        redisAsyncFree(A.sub.ac);
    A.cmd_up = A.sub_up = 0;
    A.up = 0;
    A.pending = 0;
    A.sha[0] = 0;
    A.connect_start_ms = 0;
    A.broken[0] = 0;
    for (int i = 0; i < A.nep; i++)
        A.eps[i].inflight = 0;
    uint64_t now = agent_now_ms();
    A.next_connect_ms = now + A.backoff_ms;
    A.backoff_ms =
        A.backoff_ms * 2 > RP_AGENT_BACKOFF_MAX_MS ? RP_AGENT_BACKOFF_MAX_MS : A.backoff_ms * 2;
    atomic_store_explicit(&A.fleet->connected, 0, memory_order_relaxed);
    agent_set_mode(agent_down_mode());
    if (was_up) {
        atomic_store_explicit(&A.fleet->since_ms, rp_shm_now_ms(A.shm), memory_order_relaxed);
        rp_warn("fleet: Redis unreachable, serving by policy", "redis=%s reason=\"%s\" policy=%s",
                A.cfg->fleet_redis, why, rp_fleet_down_name(A.cfg->fleet_on_down));
    } else if (!A.warned_down) {
        rp_warn("fleet: cannot reach Redis, serving by policy", "redis=%s reason=\"%s\" policy=%s",
                A.cfg->fleet_redis, why, rp_fleet_down_name(A.cfg->fleet_on_down));
    }
    A.warned_down = 1;
}

static void agent_read_stored(void);

/* Both connections are up: sharing (again). */
static void agent_check_up(void)
{
    if (A.up || !A.cmd_up || !A.sub_up)
        return;
    A.up = 1;
    A.backoff_ms = RP_AGENT_BACKOFF_MIN_MS;
    A.connect_start_ms = 0;
    A.warned_down = 0;
    atomic_fetch_add_explicit(&A.fleet->connects, 1, memory_order_relaxed);
    atomic_store_explicit(&A.fleet->since_ms, rp_shm_now_ms(A.shm), memory_order_relaxed);
    atomic_store_explicit(&A.fleet->connected, 1, memory_order_relaxed);
    agent_set_mode(RP_FLEET_MODE_SHARING);
    rp_info("fleet: connected to Redis, sharing quotas and verdicts", "redis=%s prefix=\"%s\"",
            A.cfg->fleet_redis, A.cfg->fleet_prefix);
    agent_read_stored();
}

/* A connection is only counted up once Redis answered on it (the script
 * loaded, the subscription confirmed): a server that accepts and then
 * refuses (protected mode, authentication) is unreachable. A failed connect
 * is seen by the tick (hiredis frees the context after this callback). */
static void agent_on_connect(const redisAsyncContext *ac, int status)
{
    (void)ac;
    (void)status;
}

static void agent_on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    if (ac == A.cmd.ac)
        A.cmd_up = 0;
    else
        A.sub_up = 0;
}

static void agent_on_script(redisAsyncContext *ac, void *r, void *priv);
static void agent_on_message(redisAsyncContext *ac, void *r, void *priv);

/* Send a command on the command connection, counting it as pending. */
static int agent_command(redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    if (!A.cmd.ac)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(A.cmd.ac, fn, priv, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return -1;
    if (A.pending++ == 0)
        A.progress_ms = agent_now_ms();
    return 0;
}

/* One answer (or a NULL reply when the context is being freed) arrived. */
static void agent_answered(void)
{
    if (A.pending)
        A.pending--;
    A.progress_ms = agent_now_ms();
}

/* An answer that only counts as progress (PING, PUBLISH). */
static void agent_on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)r;
    (void)priv;
    agent_answered();
}

/* Open one context to fleet.redis on R. Returns 0 or -1. */
static int agent_open(struct rp_redis_ev *r)
{
    redisAsyncContext *ac =
        A.port ? redisAsyncConnect(A.host, A.port) : redisAsyncConnectUnix(A.host);
    if (!ac)
        return -1;
    if (ac->err) {
        rp_debug("fleet: connect failed", "redis=%s error=\"%s\"", A.cfg->fleet_redis, ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    if (rp_redis_ev_attach(r, A.child.epfd, ac) != 0)
        return -1;
    redisAsyncSetConnectCallback(ac, agent_on_connect);
    redisAsyncSetDisconnectCallback(ac, agent_on_disconnect);
    return 0;
}

/* Start both connections: the command one loads the script, the other
 * subscribes to the verdict channel. */
static void agent_connect(void)
{
    A.connect_start_ms = agent_now_ms();
    if (agent_open(&A.cmd) != 0 || agent_open(&A.sub) != 0) {
        agent_drop("connect failed");
        return;
    }
    agent_command(agent_on_script, NULL, "SCRIPT LOAD %s", agent_script);
    redisAsyncCommand(A.sub.ac, agent_on_message, NULL, "SUBSCRIBE %s", A.channel);
}

/* ---- leases ---- */

static struct aep *agent_ep_of_key(uint64_t key)
{
    for (int i = 0; i < A.nep; i++)
        if (A.eps[i].key == key)
            return &A.eps[i];
    return NULL;
}

static void agent_on_script(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *reply = r;
    agent_answered();
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        snprintf(A.sha, sizeof A.sha, "%s", reply->str);
        A.cmd_up = 1;
        agent_check_up();
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(A.broken, sizeof A.broken, "%s", reply->str);
    }
}

static int agent_send_lease(struct aep *e, int force_eval);

/* Redis answered a lease: credit what it granted to the row, or come back
 * when it says a token will be there. NOSCRIPT (a Redis restarted behind
 * the same connection's back, or a flushed script cache) resends it as
 * EVAL. */
static void agent_on_lease(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct aep *e = priv;
    redisReply *reply = r;
    agent_answered();
    e->inflight = 0;
    uint64_t now = agent_now_ms();
    if (!reply)
        return; /* the connection is going away */
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            A.sha[0] = 0;
            agent_send_lease(e, 1);
            return;
        }
        rp_warn("fleet: lease failed", "endpoint=%s error=\"%s\"", e->cfg->name, reply->str);
        e->next_ms = now + RP_AGENT_RETRY_MS;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        rp_warn("fleet: lease answer not understood", "endpoint=%s", e->cfg->name);
        e->next_ms = now + RP_AGENT_RETRY_MS;
        return;
    }
    long long granted = reply->element[0]->integer;
    long long wait_us = reply->element[1]->integer;
    if (granted > 0) {
        atomic_fetch_add_explicit(&e->cell->credited, (uint64_t)granted, memory_order_release);
        atomic_fetch_add_explicit(&A.fleet->leases, 1, memory_order_relaxed);
        e->next_ms = now;
    } else {
        uint64_t wait_ms = wait_us > 0 ? ((uint64_t)wait_us + 999) / 1000 : 1;
        e->next_ms = now + (wait_ms > RP_AGENT_RETRY_MS ? RP_AGENT_RETRY_MS : wait_ms);
    }
}

/* Ask Redis for E->want tokens (EVALSHA once the script is loaded). */
static int agent_send_lease(struct aep *e, int force_eval)
{
    char interval[24], burst[24], want[24];
    snprintf(interval, sizeof interval, "%" PRIu64,
             e->row->rl_interval_ns ? e->row->rl_interval_ns : 1);
    snprintf(burst, sizeof burst, "%" PRIu64, e->row->rl_burst ? e->row->rl_burst : 1);
    snprintf(want, sizeof want, "%" PRIu64, e->want);
    int rc;
    if (A.sha[0] && !force_eval)
        rc = agent_command(agent_on_lease, e, "EVALSHA %s 2 %s %s %s %s %s", A.sha, e->gcra_key,
                           e->granted_key, interval, burst, want);
    else
        rc = agent_command(agent_on_lease, e, "EVAL %s 2 %s %s %s %s %s", agent_script, e->gcra_key,
                           e->granted_key, interval, burst, want);
    e->inflight = rc == 0;
    return rc;
}

/* Observe each endpoint's demand and top up the rows that ran low. */
static void agent_lease_round(uint64_t now_ms)
{
    uint64_t now_ns = rp_clock_mono_ns();
    uint32_t hosts = (uint32_t)A.cfg->fleet_hosts;
    for (int i = 0; i < A.nep; i++) {
        struct aep *e = &A.eps[i];
        uint64_t spent = atomic_load_explicit(&e->cell->spent, memory_order_relaxed);
        uint64_t denied = atomic_load_explicit(&e->cell->denied, memory_order_relaxed);
        rp_lease_observe(&e->lease, spent + denied, now_ns);
        if (!A.up || e->inflight || now_ms < e->next_ms)
            continue;
        uint64_t want =
            rp_lease_want(&e->lease, rp_fleet_balance(e->cell), e->row->rl_burst, hosts);
        if (!want)
            continue;
        e->want = want;
        agent_send_lease(e, 0);
    }
}

/* ---- verdicts ---- */

/* PREFIX "verdict:" KIND ":" EPKEY: the verdict of KIND on E still in force. */
static void agent_verdict_key(char *out, size_t outlen, const struct aep *e, char kind)
{
    snprintf(out, outlen, "%sverdict:%c:%016" PRIx64, A.cfg->fleet_prefix, kind, e->key);
}

static void agent_publish(struct aep *e, char kind, uint64_t until_seg_ms, uint64_t now_seg_ms)
{
    struct rp_verdict v = {.kind = kind,
                           .ep_key = e->key,
                           .until_wall_ms =
                               rp_verdict_to_wall_ms(until_seg_ms, now_seg_ms, agent_wall_ms()),
                           .sender = A.sender};
    char msg[RP_VERDICT_MAX], key[RP_AGENT_KEY_MAX];
    rp_verdict_format(msg, sizeof msg, &v);
    uint64_t ttl_ms = until_seg_ms > now_seg_ms ? until_seg_ms - now_seg_ms : 0;
    /* the key, for hosts (or agents) that start while the verdict holds */
    agent_verdict_key(key, sizeof key, e, kind);
    if (ttl_ms)
        agent_command(agent_on_reply, NULL, "SET %s %s PX %" PRIu64, key, msg, ttl_ms);
    if (agent_command(agent_on_reply, NULL, "PUBLISH %s %s", A.channel, msg) == 0) {
        atomic_fetch_add_explicit(&A.fleet->verdicts_sent, 1, memory_order_relaxed);
        rp_info("fleet: verdict published", "endpoint=%s kind=%s for_ms=%" PRIu64, e->cfg->name,
                kind == 'b' ? "breaker_open" : "hold",
                until_seg_ms > now_seg_ms ? until_seg_ms - now_seg_ms : 0);
    }
}

/* Publish the breakers that opened here and the holds raised here since the
 * last look. Only while connected, and the look is not taken while Redis is
 * away: a breaker opened or a hold raised meanwhile is published on the
 * return if it is still in force then (one that is over is not news). */
static void agent_verdict_round(void)
{
    if (!A.up)
        return;
    uint64_t now = rp_shm_now_ms(A.shm);
    for (int i = 0; i < A.nep; i++) {
        struct aep *e = &A.eps[i];
        uint64_t word = atomic_load_explicit(&e->row->breaker, memory_order_acquire);
        uint64_t hold = atomic_load_explicit(&e->row->hold_until_ms, memory_order_relaxed);
        int bnews = rp_verdict_breaker_news(&e->watch, word, now);
        int hnews = rp_verdict_hold_news(&e->watch, hold, now);
        if (bnews)
            agent_publish(e, 'b', rp_breaker_word_open_until_ms(word), now);
        if (hnews)
            agent_publish(e, 'h', hold, now);
    }
}

/* Apply one verdict of another host. */
static void agent_apply(const struct rp_verdict *v)
{
    if (v->sender == A.sender)
        return; /* our own, echoed by the channel */
    struct aep *e = agent_ep_of_key(v->ep_key);
    if (!e)
        return; /* an endpoint this host does not use */
    uint64_t now = rp_shm_now_ms(A.shm);
    uint64_t until = rp_verdict_to_seg_ms(v->until_wall_ms, agent_wall_ms(), now);
    if (!until)
        return; /* already over */
    int applied;
    if (v->kind == 'b') {
        applied = rp_breaker_open_until(&e->row->breaker, until, now);
    } else {
        uint64_t before = atomic_load_explicit(&e->row->hold_until_ms, memory_order_relaxed);
        rp_hold_raise(&e->row->hold_until_ms, until);
        applied = until > before;
    }
    rp_verdict_applied(&e->watch, atomic_load_explicit(&e->row->breaker, memory_order_acquire),
                       atomic_load_explicit(&e->row->hold_until_ms, memory_order_relaxed));
    if (applied) {
        atomic_fetch_add_explicit(&A.fleet->verdicts_received, 1, memory_order_relaxed);
        rp_info("fleet: verdict of another host applied", "endpoint=%s kind=%s for_ms=%" PRIu64,
                e->cfg->name, v->kind == 'b' ? "breaker_open" : "hold", until - now);
    }
}

/* The verdicts still in force when this agent connected (MGET of an
 * endpoint's two keys): applied like messages. */
static void agent_on_stored(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *reply = r;
    agent_answered();
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *el = reply->element[i];
        struct rp_verdict v;
        if (el->type == REDIS_REPLY_STRING && rp_verdict_parse(el->str, el->len, &v) == 0)
            agent_apply(&v);
    }
}

/* Ask for the verdicts in force (once connected). */
static void agent_read_stored(void)
{
    for (int i = 0; i < A.nep; i++) {
        char kb[RP_AGENT_KEY_MAX], kh[RP_AGENT_KEY_MAX];
        agent_verdict_key(kb, sizeof kb, &A.eps[i], 'b');
        agent_verdict_key(kh, sizeof kh, &A.eps[i], 'h');
        agent_command(agent_on_stored, NULL, "MGET %s %s", kb, kh);
    }
}

/* A message on the subscribed connection: ["message", channel, payload]
 * (the subscription's own confirmation is ignored). */
static void agent_on_message(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        snprintf(A.broken, sizeof A.broken, "%s", reply->str);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return;
    redisReply *kind = reply->element[0], *payload = reply->element[2];
    if (kind->type == REDIS_REPLY_STRING && strcmp(kind->str, "subscribe") == 0) {
        A.sub_up = 1;
        agent_check_up();
        return;
    }
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        payload->type != REDIS_REPLY_STRING)
        return;
    struct rp_verdict v;
    if (rp_verdict_parse(payload->str, payload->len, &v) != 0) {
        rp_debug("fleet: message on the verdict channel ignored", "len=%zu", payload->len);
        return;
    }
    agent_apply(&v);
}

/* ---- set-up and loop ---- */

/* Match the configured endpoints to their rows; a row whose leased tokens
 * belonged to another endpoint (a reload reused it) is drained first. */
static int agent_setup_endpoints(void)
{
    for (int i = 0; i < A.cfg->endpoint_count; i++) {
        const struct rp_endpoint_config *ec = &A.cfg->endpoints[i];
        struct rp_shm_endpoint *row = rp_shm_find_endpoint(A.shm, ec->url);
        if (!row) {
            rp_error("fleet: endpoint has no shm row", "endpoint=%s", ec->name);
            return -1;
        }
        struct aep *e = &A.eps[A.nep++];
        memset(e, 0, sizeof *e);
        e->cfg = ec;
        e->row = row;
        e->cell = &A.fleet->eps[row->id % RP_SHM_MAX_ENDPOINTS];
        e->key = rp_fleet_ep_key(A.cfg->fleet_prefix, ec->url);
        snprintf(e->granted_key, sizeof e->granted_key, "%sgranted:%016" PRIx64,
                 A.cfg->fleet_prefix, e->key);
        snprintf(e->gcra_key, sizeof e->gcra_key, "%sgcra:%016" PRIx64, A.cfg->fleet_prefix,
                 e->key);
        rp_lease_init(&e->lease);
        if (atomic_load_explicit(&e->cell->url_key, memory_order_relaxed) != row->url_key) {
            uint64_t credited = atomic_load_explicit(&e->cell->credited, memory_order_acquire);
            uint64_t spent = atomic_load_explicit(&e->cell->spent, memory_order_acquire);
            while (spent < credited && !atomic_compare_exchange_weak_explicit(
                                           &e->cell->spent, &spent, credited, memory_order_acq_rel,
                                           memory_order_acquire))
                ;
            atomic_store_explicit(&e->cell->url_key, row->url_key, memory_order_relaxed);
        }
    }
    return 0;
}

int rp_fleet_wanted(const struct rp_config *cfg)
{
    return cfg->fleet_redis != NULL;
}

/* Milliseconds epoll may sleep: one tick while connected or a reconnect is
 * near; else until the reconnect. */
static int agent_wait_ms(uint64_t now)
{
    if (A.up || A.connect_start_ms || A.next_connect_ms <= now)
        return RP_AGENT_TICK_MS;
    uint64_t d = A.next_connect_ms - now;
    return d < RP_AGENT_TICK_MS ? (int)d : RP_AGENT_TICK_MS;
}

/* One turn's housekeeping: notice lost connections and silent ones,
 * reconnect when due, then leases and verdicts. */
static void agent_tick(void)
{
    uint64_t now = agent_now_ms();
    if (A.connect_start_ms || A.up) {
        int lost = !A.cmd.ac || !A.sub.ac;
        if (A.broken[0]) {
            char why[sizeof A.broken];
            memcpy(why, A.broken, sizeof why);
            agent_drop(why);
        } else if (lost)
            agent_drop("connection closed");
        else if (!A.up && now - A.connect_start_ms > RP_AGENT_REPLY_TIMEOUT_MS)
            agent_drop("connect timed out");
        else if (A.pending && now - A.progress_ms > RP_AGENT_REPLY_TIMEOUT_MS)
            agent_drop("no answer");
    }
    if (!A.up && !A.connect_start_ms && now >= A.next_connect_ms)
        agent_connect();
    if (A.up && !A.pending && now - A.progress_ms > RP_AGENT_REPLY_TIMEOUT_MS / 2)
        agent_command(agent_on_reply, NULL, "PING"); /* a silent path: no answer */
    agent_lease_round(now);
    agent_verdict_round();
}

int rp_fleet_main(const struct rp_config *cfg, struct rp_shm_header *shm, unsigned slot)
{
    memset(&A, 0, sizeof A);
    A.cfg = cfg;
    A.shm = shm;
    A.fleet = rp_shm_fleet_of(shm);
    A.slot = rp_shm_worker(shm, slot);
    A.backoff_ms = RP_AGENT_BACKOFF_MIN_MS;
    if (!cfg->fleet_redis || agent_parse_addr(cfg->fleet_redis) != 0) {
        rp_error("fleet: bad fleet.redis", "redis=%s", cfg->fleet_redis ? cfg->fleet_redis : "");
        return 1;
    }
    snprintf(A.channel, sizeof A.channel, "%sverdicts", cfg->fleet_prefix);
    if (getrandom(&A.sender, sizeof A.sender, 0) != (ssize_t)sizeof A.sender)
        A.sender = rp_clock_realtime_ns() ^ ((uint64_t)getpid() << 32);
    pid_t sup = (pid_t)atomic_load_explicit(&shm->supervisor_pid, memory_order_relaxed);
    if (rp_child_setup(&A.child, sup, 0) != 0)
        return 1;
    if (agent_setup_endpoints() != 0) {
        rp_child_cleanup(&A.child);
        return 1;
    }
    atomic_store_explicit(&A.fleet->hosts, (uint32_t)cfg->fleet_hosts, memory_order_relaxed);
    atomic_store_explicit(&A.fleet->on_down, (uint32_t)cfg->fleet_on_down, memory_order_relaxed);
    atomic_store_explicit(&A.fleet->connected, 0, memory_order_relaxed);
    atomic_store_explicit(&A.fleet->configured, 1, memory_order_relaxed);
    atomic_store_explicit(&A.slot->generation,
                          atomic_load_explicit(&shm->generation, memory_order_acquire),
                          memory_order_relaxed);
    atomic_store_explicit(&A.slot->state, RP_WORKER_RUNNING, memory_order_relaxed);
    rp_info("fleet agent started", "slot=%u redis=%s prefix=\"%s\" hosts=%lld on_redis_down=%s",
            slot, cfg->fleet_redis, cfg->fleet_prefix, (long long)cfg->fleet_hosts,
            rp_fleet_down_name(cfg->fleet_on_down));

    struct epoll_event events[16];
    while (!rp_child_stop_flag) {
        atomic_store_explicit(&A.slot->heartbeat_ms, rp_shm_now_ms(shm), memory_order_relaxed);
        int n = rp_child_wait(&A.child, events, 16, agent_wait_ms(agent_now_ms()));
        if (n < 0)
            break;
        rp_ev_dispatch(events, n);
        if (!rp_child_stop_flag)
            agent_tick();
        rp_child_bury(&A.child);
    }
    rp_info("fleet agent stopped", "slot=%u", slot);
    A.up = 0;
    if (A.cmd.ac)
        redisAsyncFree(A.cmd.ac);
    if (A.sub.ac)
        redisAsyncFree(A.sub.ac);
    atomic_store_explicit(&A.fleet->connected, 0, memory_order_relaxed);
    atomic_store_explicit(&A.fleet->configured, 0, memory_order_relaxed);
    rp_child_cleanup(&A.child);
    return 0;
}
