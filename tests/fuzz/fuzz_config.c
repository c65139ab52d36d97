/* fuzz_config.c - libFuzzer target for the configuration parser
 * (src/core/config.c rp_config_load, rp_config_free, rp_config_redact_url).
 *
 * The input is written to a file in a private directory (under
 * $RP_FUZZ_TMPDIR, else /dev/shm) and loaded. A relative `@include "inc.conf"` finds a small fixed
 * file there; inputs whose @include line names anything else (a '/', a backslash or
 * "..") are refused so the fuzzer never reads the host's files.
 * Invariants:
 *  - a failure leaves the struct all zero and an error "FILE:..." that names
 *    the file (or the included one); a success leaves the error empty;
 *  - a success obeys every documented range and rule (rp_config.h,
 *    docs/interface.md section 2), e.g. 1..64 endpoints with unique names,
 *    http(s) URLs whose redacted form is rp_config_redact_url(url) and shows
 *    no user info, query or fragment, min <= max connections, attempt <=
 *    request timeout, the two send methods always in no_retry_methods;
 *  - loading again with a short, exact-size error buffer gives the same
 *    result and a NUL-terminated prefix of the same message (for a quarter
 *    of the inputs, picked by hash, to keep the rate up);
 *  - rp_config_free zeroes the struct, and nothing leaks (LeakSanitizer
 *    checks every input).
 */
#include "rp_config.h"

#include "rp_fuzz.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char fz_dir[256];
static char fz_path[288];
static int allow_dir_include;

/* libconfig 1.5 leaks a string token's buffer when a syntax error discards
 * it (hyperrealm/libconfig#142, fixed upstream after 1.5); not rpcpool's. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_options(void);

const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

/* Remove the private directory at exit. */
static void fz_cleanup(void)
{
    char p[320];
    unlink(fz_path);
    snprintf(p, sizeof p, "%s/inc.conf", fz_dir);
    unlink(p);
    rmdir(fz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* run.sh gives a scratch directory it removes afterwards: libFuzzer
     * may end the process without running atexit handlers */
    const char *base = getenv("RP_FUZZ_TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/rpcpool-fuzz-config.XXXXXX", base ? base : "/dev/shm");
    if (!mkdtemp(fz_dir)) {
        snprintf(fz_dir, sizeof fz_dir, "/tmp/rpcpool-fuzz-config.XXXXXX");
        CHECK(mkdtemp(fz_dir) != NULL);
    }
    snprintf(fz_path, sizeof fz_path, "%s/rpcpool.conf", fz_dir);
    char inc[320];
    snprintf(inc, sizeof inc, "%s/inc.conf", fz_dir);
    FILE *f = fopen(inc, "w");
    CHECK(f != NULL);
    fputs("retries = 3;\nrate_limit = { max_requests = 5; window_ms = 1000; };\n", f);
    fclose(f);
    atexit(fz_cleanup);
    allow_dir_include = getenv("RP_FUZZ_CONFIG_DIR_INCLUDE") != NULL;
    return 0;
}

/* 1 when every @include line names a plain file in the private directory:
 * no '/', no backslash (escapes), no NUL. Unless RP_FUZZ_CONFIG_DIR_INCLUDE
 * is set, names that are a directory ("", ".", "..") are refused too:
 * libconfig 1.5 calls exit(2) from its scanner ("input in flex scanner
 * failed") on them, a known daemon bug reported separately. */
static int includes_are_local(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i++) {
        if (d[i] != '@' || strncasecmp((const char *)d + i + 1, "include", 7) != 0)
            continue;
        size_t k = i + 8, name = 0, name_len = 0;
        int quotes = 0;
        for (; k < n && d[k] != '\n'; k++) {
            if (d[k] == '/' || d[k] == '\\' || d[k] == '\0')
                return 0;
            if (d[k] == '"' && quotes++ == 0)
                name = k + 1;
            else if (d[k] == '"' && quotes == 2)
                name_len = k - name;
        }
        if (allow_dir_include)
            continue;
        if (quotes >= 2 && (name_len == 0 || (name_len == 1 && d[name] == '.') ||
                            (name_len == 2 && d[name] == '.' && d[name + 1] == '.')))
            return 0;
    }
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static int name_ok(const char *s)
{
    size_t n = strnlen(s, RP_NAME_MAX);
    return n >= 1 && n < RP_NAME_MAX;
}

static void check_rate_limit(const struct rp_rate_limit *r)
{
    CHECK(r->max_requests >= 1 && r->window_ms >= 1 && r->burst_size >= 1);
}

/* Every documented rule of a loaded configuration. */
static void check_loaded(const struct rp_config *c)
{
    CHECK(c->path && strcmp(c->path, fz_path) == 0);
    CHECK(name_ok(c->name));
    CHECK(c->chain_id >= 0);
    CHECK(c->endpoint_count >= 1 && c->endpoint_count <= RP_MAX_ENDPOINTS);
    for (int i = 0; i < c->endpoint_count; i++) {
        const struct rp_endpoint_config *e = &c->endpoints[i];
        CHECK(name_ok(e->name));
        for (int k = 0; k < i; k++) {
            CHECK(strcmp(c->endpoints[k].name, e->name) != 0);
            CHECK(strcmp(c->endpoints[k].url, e->url) != 0);
        }
        /* the scheme is case-insensitive (RFC 3986) and kept as written */
        CHECK(e->url &&
              (strncasecmp(e->url, "http://", 7) == 0 || strncasecmp(e->url, "https://", 8) == 0));
        CHECK(e->url_redacted != NULL);
        char red[1024];
        rp_config_redact_url(e->url, red, sizeof red);
        CHECK(strcmp(red, e->url_redacted) == 0);
        CHECK(!strchr(e->url_redacted, '@') && !strchr(e->url_redacted, '?') &&
              !strchr(e->url_redacted, '#'));
        size_t rl = strlen(e->url_redacted);
        const char *host = strstr(e->url_redacted, "://");
        CHECK(host != NULL);
        const char *slash = strchr(host + 3, '/');
        CHECK(!slash || strcmp(slash, "/***") == 0 || strcmp(slash, "/") == 0);
        CHECK(rl < sizeof red - 1);
        CHECK(e->weight >= 1 && e->weight <= 1000);
        CHECK(e->header_count >= 0 && e->header_count <= RP_MAX_HEADERS);
        for (int k = 0; k < RP_MAX_HEADERS; k++) {
            if (k < e->header_count)
                CHECK(e->headers[k] && strchr(e->headers[k], ':') &&
                      !strpbrk(e->headers[k], "\r\n"));
            else
                CHECK(e->headers[k] == NULL);
        }
        check_rate_limit(&e->rate_limit);
        if (!e->has_rate_limit)
            CHECK(memcmp(&e->rate_limit, &c->rate_limit, sizeof e->rate_limit) == 0);
    }
    for (int i = c->endpoint_count; i < RP_MAX_ENDPOINTS; i++)
        CHECK(c->endpoints[i].url == NULL && c->endpoints[i].url_redacted == NULL);
    CHECK(c->max_connections >= 1 && c->max_connections <= 10000);
    CHECK(c->min_connections >= 0 && c->min_connections <= c->max_connections);
    CHECK(c->connection_timeout_ms >= 1 && c->idle_timeout_ms >= 1);
    CHECK(c->request_timeout_ms >= 1 && c->attempt_timeout_ms >= 1);
    CHECK(c->attempt_timeout_ms <= c->request_timeout_ms);
    CHECK(c->retries >= 0 && c->retries <= 10);
    CHECK(c->no_retry_count >= 2 && c->no_retry_count <= RP_MAX_NO_RETRY);
    for (int i = 0; i < c->no_retry_count; i++)
        CHECK(c->no_retry_methods[i] && c->no_retry_methods[i][0]);
    CHECK(rp_config_is_no_retry(c, "eth_sendRawTransaction", 22));
    CHECK(rp_config_is_no_retry(c, "eth_sendTransaction", 19));
    CHECK(c->balance >= RP_BALANCE_P2C && c->balance <= RP_BALANCE_RANDOM);
    CHECK(rp_balance_name(c->balance) != NULL);
    CHECK(c->health_check_interval_ms >= 1);
    CHECK((c->health_check_method == NULL) != (c->health_check_path == NULL));
    CHECK(c->max_block_lag >= 0 && c->max_block_lag <= 1000000);
    CHECK(c->cb_failure_threshold >= 1 && c->cb_failure_threshold <= 65535);
    CHECK(c->cb_recovery_timeout_ms >= 1);
    CHECK(c->cb_half_open_max_attempts >= 1 && c->cb_half_open_max_attempts <= 255);
    check_rate_limit(&c->rate_limit);
    CHECK(c->socket_path && c->control_socket && strcmp(c->socket_path, c->control_socket) != 0);
    CHECK(strlen(c->socket_path) < 108 && strlen(c->control_socket) < 108);
    CHECK(c->shm_name && c->shm_name[0] == '/' && !strchr(c->shm_name + 1, '/') &&
          strlen(c->shm_name) >= 2 && strlen(c->shm_name) <= 255);
    CHECK(c->socket_mode >= 0 && c->socket_mode <= 0777);
    CHECK(c->workers >= 1 && c->workers <= 64);
    CHECK(c->max_clients >= 1 && c->max_clients <= 1000000);
    CHECK(c->max_request_bytes >= 64 && c->max_request_bytes <= 1073741824);
    CHECK(c->max_batch >= 1 && c->max_batch <= 100000);
    CHECK(c->max_response_bytes >= 64 && c->max_response_bytes <= 4294967296LL);
    CHECK(c->client_idle_timeout_ms >= 1);
    CHECK(c->queue_timeout_ms >= 0 && c->shutdown_timeout_ms >= 1);
    CHECK(c->log_level >= RP_LOG_DEBUG && c->log_level <= RP_LOG_ERROR);
    CHECK(rp_log_level_name(c->log_level) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rp_config cfg, cfg2;
    char err[RP_ERR_MAX];
    uint64_t h = 1469598103934665603ull;

    if (!includes_are_local(data, size))
        return -1; /* keep it out of the corpus */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;

    int fd = open(fz_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        CHECK(w > 0);
        off += (size_t)w;
    }
    close(fd);

    memset(err, 'x', sizeof err);
    int rc = rp_config_load(fz_path, &cfg, err, sizeof err);
    CHECK(rc == 0 || rc == -1);
    CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (rc == 0) {
        CHECK(err[0] == '\0');
        check_loaded(&cfg);
    } else {
        CHECK(all_zero(&cfg, sizeof cfg));
        /* "FILE:..." naming the file or the include it came from */
        size_t dl = strlen(fz_dir);
        CHECK(strncmp(err, fz_dir, dl) == 0 && err[dl] == '/');
        CHECK(strchr(err + dl, ':') != NULL);
    }

    rp_config_free(&cfg);
    CHECK(all_zero(&cfg, sizeof cfg));
    if (h % 4 != 0)
        return 0; /* the reloads below for a quarter of the inputs: speed */

    /* again, into an exact-size short error buffer: the same verdict, a
     * prefix of the same message, the same configuration */
    struct rp_config cfg3;
    CHECK(rp_config_load(fz_path, &cfg3, err, sizeof err) == rc);
    size_t small = 1 + (size_t)((h >> 8) % 64);
    char *err2 = malloc(small);
    CHECK(err2 != NULL);
    int rc2 = rp_config_load(fz_path, &cfg2, err2, small);
    CHECK(rc2 == rc);
    CHECK(memchr(err2, '\0', small) != NULL);
    CHECK(strncmp(err2, err, small - 1) == 0);
    free(err2);
    if (rc == 0) {
        CHECK(strcmp(cfg3.name, cfg2.name) == 0 && cfg3.endpoint_count == cfg2.endpoint_count);
        for (int i = 0; i < cfg3.endpoint_count; i++)
            CHECK(strcmp(cfg3.endpoints[i].url, cfg2.endpoints[i].url) == 0 &&
                  strcmp(cfg3.endpoints[i].name, cfg2.endpoints[i].name) == 0);
        CHECK(cfg3.max_batch == cfg2.max_batch && cfg3.workers == cfg2.workers);
    }
    rp_config_free(&cfg3);
    rp_config_free(&cfg2);
    CHECK(all_zero(&cfg2, sizeof cfg2));
    /* no error buffer at all */
    CHECK(rp_config_load(fz_path, &cfg2, NULL, 0) == rc);
    rp_config_free(&cfg2);
    return 0;
}
