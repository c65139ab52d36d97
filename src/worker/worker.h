/* worker.h - one worker process, private to src/worker/: its event loop,
 * client connections, requests and upstream attempts (what the supervisor
 * needs is rp_worker.h). The modules:
 *   worker.c   the loop, accept, timers, lifecycle (drain and exit)
 *   conn.c     a client connection: accept, IPC or HTTP by the first bytes,
 *              IPC framing, write, back-pressure, hand-off (conn.h)
 *   httpd.c    the HTTP/1.1 front: JSON-RPC over POST, /health, /metrics
 *              (conn.h)
 *   request.c  a client request: validation result -> routing, retries, answer
 *   route.c    routing as a pure function of an endpoint snapshot (rp_route.h)
 *   balancer.c the endpoint pick order (rp_balancer.h)
 *   hedge.c    hedged reads' decisions: recent latency, delay, budget
 *              (rp_hedge.h, pure); request.c runs the race
 *   warm.c     warm-up of idle endpoints (min_connections)
 *   transport_h1.c  the native HTTP/1.1 client, plain and over TLS
 *              (transport_h1.h; its pure half is src/proto/h1.c), for every
 *              endpoint
 *   resolve.c  host-name lookups (c-ares) on the same epoll (resolve.h)
 */
#ifndef RP_WORKER_PRIV_H
#define RP_WORKER_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rp_balancer.h"
#include "rp_breaker.h"
#include "rp_buf.h"
#include "rp_cache.h"
#include "rp_chain.h"
#include "rp_child.h"
#include "rp_config.h"
#include "rp_event.h"
#include "rp_frame.h"
#include "rp_jsonrpc.h"
#include "rp_ratelimit.h"
#include "rp_shm.h"
#include "rp_timer.h"
#include "rp_worker.h"

/* What an epoll event's data.ptr points to is a struct rp_ev (rp_event.h)
 * first in each object: a listener (worker.c), a client (conn.c), the
 * hand-off channel (worker.c), a connection of the native client
 * (transport_h1.c), a resolver socket (resolve.c). */

/* A listen socket of the worker: the client UNIX socket (IPC or HTTP,
 * told apart by the first bytes) or server.http_listen (HTTP only). */
struct rp_listener {
    struct rp_ev ev;
    int http_only;
};

/* Back-pressure: a client holding this many bytes of answers (queued for it
 * and being received for it) is neither framed nor read any more until it
 * reads some. Bounds on the total (rp_conn_hold()): one connection holds at
 * most max_response_bytes + RP_CONN_OUT_HIGH_BYTES, one worker at most
 * RP_WORKER_HELD_CONNS times that, and no less than RP_WORKER_HELD_MIN_BYTES
 * (so clients that read slowly cannot starve the others of answers under a
 * small max_response_bytes); an answer that would pass them is refused like
 * one over max_response_bytes. */
#define RP_CONN_OUT_HIGH_BYTES   (1u << 20)
#define RP_WORKER_HELD_CONNS     2
#define RP_WORKER_HELD_MIN_BYTES ((size_t)256 << 20)
#define RP_CONN_MAX_PENDING      512 /* requests in flight per connection */
#define RP_CONN_READ_BYTES       65536
#define RP_ACCEPT_PAUSE_MS       100 /* out of descriptors: accept again after this */
#define RP_ACCEPT_FAIR_PAUSE_MS  5   /* over its part of the clients: let others accept */
#define RP_ACCEPT_FAIR_SLACK     4   /* clients a worker may hold above the host average */

struct rp_req;
struct rp_sub;
struct rp_http_conn;
struct rp_h1_conn;
struct rp_h1_ep;

/* A client connection. Freed when its fd is closed and no request refers to
 * it any more. */
struct rp_conn {
    struct rp_ev ev;
    struct rp_conn *prev, *next; /* worker's list */
    char *in;
    size_t in_len, in_cap;
    struct rp_frame frame;
    char *out;
    size_t out_len, out_off, out_cap;
    uint32_t events;       /* epoll events registered */
    uint32_t pending;      /* requests awaiting an answer */
    uint32_t refs;         /* requests that point at this conn */
    int closed;            /* fd closed; no more I/O */
    int read_eof;          /* peer shut its write side */
    int close_after_flush; /* a fatal framing error: close once answers are out */
    int http_only;         /* accepted on http_listen: HTTP/1.1 only */
    int processing;        /* inside conn_process_input() */
    int flush_queued;      /* on the worker's flush list */
    struct rp_conn *flush_next;
    int proto;                 /* 0 until told by the first bytes, then IPC or HTTP (conn.c) */
    struct rp_http_conn *http; /* HTTP state (conn.c), NULL unless HTTP */
    struct rp_conn *parent;    /* an HTTP request's stand-in: answers go to this client */
    struct rp_timer idle_timer;
    struct rp_timer resume_timer;  /* re-run buffered input after back-pressure */
    struct rp_timer partial_timer; /* a request begun must be whole in request_timeout_ms */
    uint64_t last_active_ms;       /* last byte read from it, or taken by it */
    /* chain consistency (rp_chain.h), kept on the client's own connection
     * (an HTTP request's stand-in uses its parent's) */
    uint64_t chain_floor;  /* the highest block this client has been shown */
    int aff_ep;            /* its transaction flow's endpoint, valid until aff_until_ms */
    uint64_t aff_until_ms; /* worker clock; 0 = no affinity */
    size_t held_bytes;     /* answers being received for it, and filled HTTP answers waiting */
    struct rp_sub *subs;   /* its subscriptions (subs.c) */
};

/* How an attempt's transfer ended, as the transport (h1.c: http:// and
 * https://) saw it; request.c judges it. The transport contract:
 * rp_h1_start() begins an attempt, the result is always reported later
 * through rp_req_attempt_done(), and no transport resends a request by
 * itself once a byte of it may have left (sent = 1). */
enum rp_xfer_status {
    RP_XFER_OK = 0,    /* an HTTP response was read whole (any status) */
    RP_XFER_CONNECT,   /* no connection (refused, unreachable, name): nothing was sent */
    RP_XFER_TIMEOUT,   /* the attempt's time ran out */
    RP_XFER_IO,        /* reset, closed early, malformed HTTP */
    RP_XFER_TOO_LARGE, /* the body passed max_response_bytes */
};

struct rp_xfer_result {
    enum rp_xfer_status status;
    long http;       /* HTTP status when one was read, else 0 */
    int sent;        /* 1 when any byte of the request reached the endpoint */
    char detail[96]; /* for RP_XFER_CONNECT / RP_XFER_IO: what happened */
};

/* The transport interface: what serves an endpoint's URL scheme
 * (transport_h1.c implements it for http:// and https://). start() begins R's attempt on
 * endpoint EP with TIMEOUT_MS for the whole transfer (connect, handshake,
 * request, response) and returns 0: the end is then reported later,
 * exactly once, through rp_req_attempt_done() with a struct rp_xfer_result
 * (never from inside start()); -1 when it could not begin (nothing is
 * reported). cancel() ends a begun attempt now, reported (before it
 * returns) as RP_XFER_TIMEOUT with its true `sent`. discard(), called
 * from rp_req_attempt_done() when an attempt that read a whole response is
 * judged failed (not the call's answer), keeps the connection that carried
 * it from being reused. No transport resends a request by itself once a
 * byte of it may have left. request.c reaches a transport only through
 * this. */
struct rp_transport {
    const char *name;
    int (*start)(struct rp_req *r, int ep, long timeout_ms);
    void (*cancel)(struct rp_req *r);
    void (*discard)(void);
};

/* The native HTTP/1.1 transport's state of one attempt (transport_h1.c
 * alone reads or writes it). Embedded, not behind a pointer: its timer
 * lives in the worker's heap for the attempt's life, and an attempt
 * costs no allocation. */
struct rp_attempt_h1 {
    struct rp_h1_conn *conn; /* the connection carrying it, NULL when none */
    struct rp_timer timer;   /* the attempt's deadline (or a failure reported soon) */
    uint64_t deadline_ms;
    int retried; /* already moved once to a fresh connection */
    int fail;    /* a failure to report from timer: enum rp_xfer_status + 1, | H1_FAIL_SENT */
    char fail_detail[96];
    int waiting;          /* waiting for the endpoint's first address */
    int strays;           /* responses to other calls skipped on its connection */
    struct rp_req *wnext; /* next in the endpoint's wait list */
};

/* One attempt of a request on one endpoint. */
struct rp_attempt {
    int ep;                          /* endpoint index */
    struct rp_breaker_ticket ticket; /* what the breaker granted, and in which period */
    uint64_t start_ns;
    struct rp_buf body;      /* the endpoint's answer */
    int too_large;           /* answer passed max_response_bytes */
    int over_budget;         /* ... or the bound on what its client (or the worker) holds */
    size_t held_bytes;       /* of body, counted in rp_conn_hold() (rp_req_body_account()) */
    long retry_after_s;      /* from a 429 */
    int body_checked;        /* the body passed the response check already (rp_req_is_stray) */
    struct rp_attempt_h1 h1; /* the transport's own state (transport_h1.c), untouched elsewhere */
};

/* rp_req.queued_ep when it is in no endpoint's wait queue: not waiting,
 * or waiting for tokens (its timer routes it again). */
#define RP_REQ_NOT_QUEUED  (-1)
#define RP_REQ_WAIT_TOKENS (-2)
#define RP_REQ_WAIT_FLOOR  (-3) /* waiting for an endpoint at its chain floor */
#define RP_REQ_WAIT_FLIGHT (-4) /* following another call's upstream call (cache_hook.c) */
/* rp_req.pin_ep of an ordinary request (rp_route.h's RP_ROUTE_NONE). */
#define RP_REQ_NO_PIN (-1)

/* What the response cache and coalescing know of a request (cache_hook.c
 * alone reads or writes it). */
struct rp_req_cache {
    int cls;        /* enum rp_ck_class; 0: neither cached nor coalesced */
    int shows;      /* enum rp_ck_shows */
    uint64_t block; /* RP_CK_NUMBER: the block asked for */
    char *key;      /* canonical key, owned; NULL when none */
    size_t key_len;
    uint64_t khash;
    uint64_t head, epoch; /* best head and cache epoch at dispatch */
    int role;             /* enum rp_flight_role */
    int mutates;          /* a state-changing call: the epoch moves at dispatch and at its end */
    struct rp_flight_ticket ticket;
    uint64_t wait_until_ms; /* a follower makes its own call after this */
    void *batch;            /* a batch's cacheable calls (cache_hook.c), owned */
    int nbatch;
    struct rp_req *fprev, *fnext; /* the worker's followers */
};

/* A client request: one call, or one batch. */
struct rp_req {
    struct rp_conn *conn; /* NULL once the client went away */
    struct rp_req *qnext; /* endpoint wait queue */
    char *send;           /* bytes forwarded upstream, owned */
    size_t send_len;
    char *id; /* raw id of a single call, owned; NULL for null/none */
    size_t id_len;
    char method[64];     /* of a single call, or of the batch's first call */
    struct rp_buf extra; /* batch: error objects for invalid calls, comma-joined */
    struct rp_buf ids;   /* batch: raw ids of the calls that expect an answer, '\n'-separated */
    /* Calls go upstream with ids of rpcpool's own, unique in the worker, so
     * that an answer can only be taken for the call it answers (a stray
     * response on a keep-alive connection never is); the client's ids are
     * put back in the answer. */
    char up_id[24]; /* single call: the id it was sent with; "" when none */
    size_t up_id_len;
    struct rp_buf up_ids; /* batch: the ids sent, in the order of ids */
    int is_batch;
    int answer;          /* 0 for a notification (or batch of them): nothing is written */
    int ncalls;          /* tokens it takes */
    int no_retry;        /* state-changing: retried only when nothing reached an endpoint */
    int tries;           /* attempts started */
    uint64_t tried_mask; /* endpoints already tried */
    uint64_t start_ns;
    uint64_t deadline_ms; /* request_timeout_ms from arrival, worker clock */
    struct rp_buf trail;  /* JSON array body of what the attempts met, for data */
    int queued_ep;        /* endpoint whose wait queue holds it, or RP_REQ_NOT_QUEUED/_TOKENS */
    int pin_ep;           /* warm-up request: only this endpoint, never waits; else RP_REQ_NO_PIN */
    /* chain consistency of a single call (rp_chain.h) */
    struct rp_chain_call chain; /* what it needs of its endpoint's head, and its kind */
    uint64_t min_head;          /* only endpoints known at this head or above; 0 = any */
    uint64_t floor_until_ms;    /* waiting for one at min_head until then; 0 = not waiting */
    uint64_t only_mask;         /* a filter's endpoint: only it; 0 = any */
    uint64_t prefer_mask;       /* affinity: tried first when usable; 0 = none */
    char *lookup_null;          /* a null lookup answer kept while it is asked again */
    size_t lookup_null_len;
    struct rp_timer timer; /* wait for a connection slot or a token */
    struct rp_attempt at;
    /* hedged reads (request.c, rp_hedge.h): a hedge is a request of its
     * own (no client) racing for its primary; the first answer wins, the
     * loser runs on without a client (is_hedge, hedge_of NULL) */
    struct rp_req *hedge;        /* primary: its hedge in flight, else NULL */
    struct rp_req *hedge_of;     /* a hedge: the request it races for, NULL once over */
    struct rp_timer hedge_timer; /* primary: its first attempt has waited long enough */
    int is_hedge;                /* this request is a hedge */
    int hedge_ep;                /* a hedge: the endpoint it went to, -1 before */
    int hedge_waiting;           /* primary: its attempt failed, its hedge still runs */
    struct rp_req_cache ck;      /* response cache and coalescing (cache_hook.c) */
};

/* Per-worker view of one configured endpoint. */
struct rp_wep {
    int in_use;
    struct rp_endpoint_config *cfg;
    struct rp_shm_endpoint *shm;
    struct rp_shm_epstats *stats;  /* this worker's row for it */
    unsigned active;               /* this worker's attempts running on it */
    unsigned share;                /* this worker's part of max_connections (at least 1) */
    unsigned warm_min;             /* this worker's part of min_connections */
    unsigned warming;              /* warm-up requests in flight */
    uint64_t last_used_ms;         /* last attempt started on it */
    struct rp_req *qhead, *qtail;  /* waiting for a free connection */
    const struct rp_transport *tr; /* what serves its URL (set by rp_h1_init()) */
    struct rp_h1_ep *h1;           /* h1.c's state for it (pool, address, request head) */
    /* The host-wide in-flight count (a sum over every slot's cell, lines
     * other workers write) as the balancer last read it: read at most once
     * per millisecond, so a busy worker does not pull every other worker's
     * cell for every request. */
    uint32_t inflight_seen;
    uint64_t inflight_seen_ms; /* segment clock of that read, +1 (0 = never) */
};

struct rp_worker {
    int epfd;                        /* child.epfd */
    struct rp_listener listeners[2]; /* [0] client socket, [1] http_listen (fd -1 when unset) */
    const struct rp_config *cfg;
    struct rp_shm_header *shm;
    unsigned slot; /* worker slot in shm */
    struct rp_timer_heap timers;
    struct rp_conn *conns;
    unsigned nconns;
    unsigned nreqs; /* requests alive */
    struct rp_wep eps[RP_MAX_ENDPOINTS];
    int nep;
    unsigned index, count; /* position in its generation (see rp_worker_args) */
    struct rp_timer warm_timer;
    struct rp_timer accept_timer; /* accepts paused until it fires */
    struct rp_jparser parser;
    struct rp_balancer balancer;
    struct rp_breaker_params breaker;
    struct rp_ev chan_ev;  /* SEQPACKET channel to the supervisor (client handoff) */
    struct rp_ev wake_ev;  /* the slot's wake socket (rp_wake.h); fd -1 when none */
    int retiring;          /* replaced by a new generation: hand clients over */
    volatile int stopping; /* drain and exit */
    uint64_t stop_deadline_ms;
    char *scratch;              /* RP_CONN_READ_BYTES: where clients' input is read first */
    struct rp_conn *flush_head; /* clients with answers to write at the end of the turn */
    size_t held_bytes;          /* every client's answers held: queued and being received */
    struct rp_child child;      /* the process scaffold: signals, epoll set, deferred frees */
};

extern struct rp_worker rp_w;

/* worker.c (rp_worker_main and the parts are in rp_worker.h) */
uint64_t rp_worker_now_ms(void);

/* consistency.c - chain-consistent answers, the worker's half. */
enum rp_consist_prep {
    RP_CONSIST_OK = 0,
    RP_CONSIST_FILTER_UNKNOWN = 1, /* a filter id this pool did not make (or its endpoint left) */
};
enum rp_consist_verdict {
    RP_CONSIST_DELIVER = 0,   /* answer the client (the body may have been rewritten) */
    RP_CONSIST_ASK_AGAIN = 1, /* a null lookup kept in lookup_null: route again at min_head */
};
/* At dispatch of R (single calls): classify it, set its floor, filter
 * endpoint and affinity; a filter call's id is turned back into the node's. */
int rp_consist_prepare(struct rp_req *r);
/* R's attempt on EP was answered: learn heads, raise the connection's floor
 * and affinity, tag a new filter's id; may ask R again (a null lookup from a
 * lagging endpoint). */
int rp_consist_answer(struct rp_req *r, int ep);
/* A request started waiting for an endpoint at its floor (metrics). */
void rp_consist_waited(void);
void rp_worker_pause_accept(uint64_t ms);
/* Free P (whose first member is a struct rp_ev) at the end of this loop
 * turn: events already fetched for it in the same epoll batch see it dead. */
void rp_worker_defer_free(void *p);
void rp_worker_count_answer(int ok);

/* conn.c */
void rp_conn_accept(const struct rp_listener *l);
void rp_conn_adopt(int fd, const char *data, size_t len);
unsigned rp_conn_handoff_all(int ch);
void rp_conn_write_answer(struct rp_conn *c, const char *data, size_t len);
void rp_conn_request_done(struct rp_conn *c);
void rp_conn_close(struct rp_conn *c);
void rp_conn_unref(struct rp_conn *c);
void rp_conn_close_all_idle(void);
void rp_conn_flush_all(void);
/* Count DELTA more (or, negative, fewer) bytes of answers held for client
 * C (an HTTP stand-in counts on its client; NULL counts on the worker
 * only). Returns -1 when C, or the worker, now holds more than its bound
 * (see RP_CONN_OUT_HIGH_BYTES), else 0. */
int rp_conn_hold(struct rp_conn *c, long long delta);

/* request.c */
void rp_req_dispatch(struct rp_conn *c, const char *buf, size_t len);
int rp_req_warm(int ep, const char *body, size_t len);
void rp_req_attempt_done(struct rp_req *r, const struct rp_xfer_result *res);
int rp_req_is_stray(struct rp_req *r);
void rp_req_ep_slot_free(int ep);
/* The transports call this as R's attempt body grows: the growth is counted
 * on its client. Returns -1 (R->at.over_budget set) when the client or the
 * worker holds more than its bound: the attempt must end as too large. */
int rp_req_body_account(struct rp_req *r);

/* request.c, for cache_hook.c: answer R with ANSWER now (its own id is
 * already in it); route R as an ordinary request. */
void rp_req_answer_now(struct rp_req *r, const char *answer, size_t len);
void rp_req_route(struct rp_req *r);

/* cache_hook.c - the response cache and coalescing, the worker's half. */
enum rp_cache_go {
    RP_CACHE_GO = 0,       /* route it upstream */
    RP_CACHE_ANSWERED = 1, /* answered from the cache: R is gone */
    RP_CACHE_WAITING = 2,  /* waits for another call's answer (queued_ep RP_REQ_WAIT_FLIGHT) */
};
/* Open the wake socket (coalescing) once the worker runs. */
void rp_cache_hook_init(void);
void rp_cache_hook_woken(void);
void rp_cache_hook_cleanup(void);
/* A single call R is about to be routed: answer it from the cache, make it
 * follow an identical call in flight, or let it go (maybe as the leader). */
int rp_cache_dispatch(struct rp_req *r);
/* Batch R (its calls parsed in MSG over BUF) is about to be routed: answer
 * it from the cache when every call is a hit, else note its cacheable calls
 * so that their answers are kept. */
int rp_cache_dispatch_batch(struct rp_req *r, const char *buf, const struct rp_jmsg *msg);
/* A call of R (one of a batch) with METHOD[0, MLEN) passes: a state change
 * kills head-dependent entries, now and again when R is answered. */
void rp_cache_note_call(struct rp_req *r, const char *method, size_t mlen);
/* R's attempt on EP was answered (body in r->at.body): keep it, share it. */
void rp_cache_answered(struct rp_req *r, int ep);
/* R ends (any way): a leader that shared nothing lets its followers go. */
void rp_cache_req_end(struct rp_req *r);
/* R's follower timer fired. */
void rp_cache_wait_fired(struct rp_req *r);

/* warm.c */
void rp_warm_start(void);

#endif
