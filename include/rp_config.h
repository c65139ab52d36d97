/* rp_config.h - the parsed, validated configuration (docs/interface.md section 2).
 *
 * rp_config_load() reads a libconfig file, applies every default, validates
 * every key and fills a struct rp_config that owns all of its strings.
 * Errors are reported as "FILE:LINE: key: reason" in the caller's buffer.
 */
#ifndef RP_CONFIG_H
#define RP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define RP_MAX_ENDPOINTS 64  /* endpoints one configuration may name */
#define RP_MAX_HEADERS   16  /* extra headers per endpoint */
#define RP_MAX_NO_RETRY  32  /* entries of no_retry_methods */
#define RP_NAME_MAX      48  /* bytes of an endpoint or pool name, NUL included */
#define RP_ERR_MAX       512 /* size of an error message buffer */

enum rp_balance {
    RP_BALANCE_P2C = 0,
    RP_BALANCE_ROUND_ROBIN,
    RP_BALANCE_WEIGHTED,
    RP_BALANCE_RANDOM,
};

/* fleet.on_redis_down: what a host spends while Redis is unreachable. */
enum rp_fleet_down {
    RP_FLEET_FAIR_SHARE = 0, /* this host's share of each quota: quota / fleet.hosts */
    RP_FLEET_LEASED_ONLY,    /* only the tokens already leased */
};

enum rp_log_level {
    RP_LOG_DEBUG = 0,
    RP_LOG_INFO,
    RP_LOG_WARN,
    RP_LOG_ERROR,
};

struct rp_rate_limit {
    int64_t max_requests; /* tokens per window, >= 1 */
    int64_t window_ms;    /* >= 1 */
    int64_t burst_size;   /* bucket capacity, >= 1; default max_requests */
};

struct rp_endpoint_config {
    char name[RP_NAME_MAX];        /* default: the URL's host */
    char *url;                     /* http:// or https:// URL, owned */
    char *url_redacted;            /* scheme://host[:port] + "/" "***" form, safe to show, owned */
    int64_t weight;                /* 1..1000, default 1 */
    char *headers[RP_MAX_HEADERS]; /* "Name: value", owned */
    int header_count;
    int has_rate_limit;              /* 1 when the endpoint overrides rate_limit */
    struct rp_rate_limit rate_limit; /* effective limit (override or global) */
    char *tls_ca_file;               /* PEM bundle trusted for it (overrides the top-level one);
                                        NULL: the top-level one, or the system store */
    char *ws_url;          /* ws:// or wss:// URL of its pushed head (eth_subscribe newHeads);
                              NULL: none, owned */
    char *ws_url_redacted; /* its safe-to-show form, owned */
    int line;              /* line of the endpoint in the file, for errors */
};

struct rp_config {
    char *path;             /* the file it came from, owned */
    char name[RP_NAME_MAX]; /* default "rpcpool" */
    int64_t chain_id;       /* 0 = not checked */

    struct rp_endpoint_config endpoints[RP_MAX_ENDPOINTS];
    int endpoint_count; /* >= 1 */

    int64_t max_connections;                 /* default 10, 1..10000 */
    int64_t min_connections;                 /* default 2, 0..max_connections */
    int64_t connection_timeout_ms;           /* default 5000 */
    int64_t idle_timeout_ms;                 /* default 30000 */
    int64_t request_timeout_ms;              /* default 10000 */
    int64_t attempt_timeout_ms;              /* default 3000, <= request_timeout_ms */
    int64_t retries;                         /* default 2, 0..10 */
    char *no_retry_methods[RP_MAX_NO_RETRY]; /* owned; default the two send methods */
    int no_retry_count;
    enum rp_balance balance;          /* default p2c */
    int64_t health_check_interval_ms; /* default 30000 */
    char *health_check_method;        /* default "eth_blockNumber"; NULL when path is set */
    char *health_check_path;          /* NULL unless { path = "/health"; } */
    int64_t max_block_lag;            /* default 5 */
    char *tls_ca_file;                /* PEM bundle trusted instead of the system store; NULL */
    int64_t consistency_wait_ms;      /* default 500: longest wait for an endpoint at a floor */
    int64_t affinity_ms;              /* default 10000: a connection's tx flow stays on one node */

    /* subscriptions = { ... } (docs/interface.md section 8) */
    int64_t sub_poll_interval_ms;   /* default 1000: the follower's head poll */
    int64_t sub_max_per_connection; /* default 100 */
    int64_t sub_max_total;          /* default 10000: host-wide */
    int64_t sub_backfill_blocks;    /* default 128: longest gap delivered after an outage */

    /* fleet = { ... }; fleet_redis is NULL when there is no fleet */
    char *fleet_redis;                /* "host:port" or a UNIX socket path, owned */
    char *fleet_prefix;               /* default "rpcpool:NAME:", owned */
    int64_t fleet_hosts;              /* default 1: the fair share is quota / hosts */
    enum rp_fleet_down fleet_on_down; /* default fair_share */

    /* cache = { ... }, coalesce, hedge = { ... } */
    int64_t cache_max_bytes;      /* default 67108864; 0 = no cache */
    int64_t cache_finality_depth; /* default 64: blocks below the best head that cannot change */
    int coalesce;                 /* default 1 */
    double hedge_quantile;        /* default 0.95, in (0, 1) */
    int64_t hedge_budget_percent; /* default 10; 0 = no hedging */

    int64_t cb_failure_threshold;      /* default 5 */
    int64_t cb_recovery_timeout_ms;    /* default 60000 */
    int64_t cb_half_open_max_attempts; /* default 3 */

    struct rp_rate_limit rate_limit; /* default 100 / 60000 ms, burst 10 */

    /* server = { ... } */
    char *socket_path;              /* default "/run/rpcpool/NAME.ipc" */
    int socket_mode;                /* default 0660 (octal string in the file) */
    char *http_listen;              /* NULL when unset; "HOST:PORT" */
    char *control_socket;           /* default "/run/rpcpool/NAME.ctl" */
    char *shm_name;                 /* default "/rpcpool.NAME" */
    int64_t workers;                /* default 2; 0 = one per CPU (resolved at load) */
    int64_t max_clients;            /* default 10000 */
    int64_t max_request_bytes;      /* default 1048576 */
    int64_t max_batch;              /* default 1000 */
    int64_t max_response_bytes;     /* default 134217728 */
    int64_t client_idle_timeout_ms; /* default 300000 */
    int64_t queue_timeout_ms;       /* default 2000 */
    int64_t shutdown_timeout_ms;    /* default 10000 */
    char *user;                     /* NULL when unset */
    char *group;                    /* NULL when unset */
    enum rp_log_level log_level;    /* default info */
};

/* Load and validate PATH into CFG (zeroed first). Returns 0 on success; on
 * failure returns -1, leaves CFG freed, and writes "FILE:LINE: key: reason"
 * (or "FILE: reason" when no line applies) into ERR. */
int rp_config_load(const char *path, struct rp_config *cfg, char *err, size_t errlen);

/* Free every string CFG owns and zero it. Safe on a zeroed struct. */
void rp_config_free(struct rp_config *cfg);

/* Redact URL into OUT: "scheme://host[:port]" then "/" "***" when anything
 * follows the host (just "/" for a bare "/" path), user info dropped; the
 * bare "scheme://host[:port]" otherwise. */
void rp_config_redact_url(const char *url, char *out, size_t outlen);

/* 1 when METHOD (not NUL-terminated, LEN bytes) is listed in no_retry_methods. */
int rp_config_is_no_retry(const struct rp_config *cfg, const char *method, size_t len);

/* Names for the enums, as the file spells them. */
const char *rp_balance_name(enum rp_balance b);
const char *rp_log_level_name(enum rp_log_level l);
const char *rp_fleet_down_name(enum rp_fleet_down d);

#endif
