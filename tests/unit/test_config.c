/* test_config.c - unit tests of src/core/config.c: every key read, every default,
 * every validation error as "FILE:LINE: key: reason", URL redaction, the
 * no-retry lookup, and that secrets never reach an error message.
 *
 * Each configuration is written to a mkstemp() file under /tmp and removed
 * after. The sample etc/rpcpool.conf is found through $RP_SAMPLE_CONF
 * (default "etc/rpcpool.conf", relative to the repository root).
 */
#include "rp_config.h"
#include "rp_test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EP "endpoints = ( \"http://127.0.0.1:8545\" );\n" /* line 1 of many cases */

static char conf_path[64];

/* Write TEXT to a fresh temp file; its name is left in conf_path. */
static const char *write_conf(const char *text)
{
    snprintf(conf_path, sizeof conf_path, "/tmp/rp_test_config_XXXXXX");
    int fd = mkstemp(conf_path);
    CU_ASSERT_FATAL(fd >= 0);
    size_t len = strlen(text);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    close(fd);
    return conf_path;
}

static void remove_conf(void)
{
    unlink(conf_path);
}

/* Load TEXT; returns rp_config_load's result, message in ERR. */
static int load_text(const char *text, struct rp_config *cfg, char *err)
{
    write_conf(text);
    int rc = rp_config_load(conf_path, cfg, err, RP_ERR_MAX);
    remove_conf();
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Error cases                                                             */

struct err_case {
    const char *text;
    int line; /* 0: the message has no line */
    const char *key;
    const char *reason; /* must appear after "FILE:LINE: key: " */
};

/* Load each case and check the whole "FILE:LINE: key: " prefix and the
 * reason; report mismatches with the case's index and the message got. */
static void run_err_cases(const struct err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct err_case *k = &cases[i];
        struct rp_config cfg;
        char err[RP_ERR_MAX], want[RP_ERR_MAX];
        write_conf(k->text);
        int rc = rp_config_load(conf_path, &cfg, err, sizeof err);
        if (k->line)
            snprintf(want, sizeof want, "%s:%d: %s: ", conf_path, k->line, k->key);
        else
            snprintf(want, sizeof want, "%s: %s: ", conf_path, k->key);
        int ok = rc == -1 && strncmp(err, want, strlen(want)) == 0 &&
                 strstr(err + strlen(want), k->reason) != NULL;
        if (!ok)
            fprintf(stderr, "\n  case %zu: want \"%s...%s\"\n           got  \"%s\" (rc %d)\n", i,
                    want, k->reason, rc == 0 ? "" : err, rc);
        CU_ASSERT(ok);
        /* a failed load leaves the struct freed and zeroed */
        CU_ASSERT(cfg.path == NULL && cfg.endpoint_count == 0 && cfg.socket_path == NULL);
        if (rc == 0)
            rp_config_free(&cfg);
        remove_conf();
    }
}

#define RUN(cases) run_err_cases(cases, sizeof cases / sizeof cases[0])

static void test_unknown_keys(void)
{
    static const struct err_case cases[] = {
        {EP "foo = 1;\n", 2, "foo", "unknown key"},
        {"endpoints = (\n  { url = \"http://a.example\";\n    colour = 1; }\n);\n", 3,
         "endpoints[0].colour", "unknown key"},
        {EP "circuit_breaker = {\n  failure_threshold = 5;\n  threshold = 3;\n};\n", 4,
         "circuit_breaker.threshold", "unknown key"},
        {EP "rate_limit = { max_requests = 1;\n burst = 2; };\n", 3, "rate_limit.burst",
         "unknown key"},
        {EP "health_check = { methd = \"eth_chainId\"; };\n", 2, "health_check.methd",
         "unknown key"},
        {EP "\nserver = {\n  sockett = \"/tmp/x\";\n};\n", 4, "server.sockett", "unknown key"},
        {"endpoints = ( { url = \"http://a.example\";\n rate_limit = {\n max_request = 3; }; } "
         ");\n",
         3, "endpoints[0].rate_limit.max_request", "unknown key"},
    };
    RUN(cases);
}

static void test_wrong_types(void)
{
    static const struct err_case cases[] = {
        {EP "max_connections = \"10\";\n", 2, "max_connections",
         "must be an integer, got a string"},
        {EP "retries = 1.5;\n", 2, "retries", "must be an integer, got a float"},
        {EP "server = { workers = true; };\n", 2, "server.workers",
         "must be an integer, got a boolean"},
        {EP "name = 5;\n", 2, "name", "must be a string, got an integer"},
        {EP "server = 1;\n", 2, "server", "must be a group { ... }, got an integer"},
        {EP "circuit_breaker = ( 1 );\n", 2, "circuit_breaker", "must be a group"},
        {EP "rate_limit = [ 1 ];\n", 2, "rate_limit", "must be a group { ... }, got an array"},
        {EP "health_check = \"eth_chainId\";\n", 2, "health_check", "must be a group"},
        {EP "balance = 1;\n", 2, "balance", "must be a string"},
        {EP "server = {\n socket_mode = 660; };\n", 3, "server.socket_mode",
         "must be a string, got an integer"},
        {EP "server = {\n log_level = 1; };\n", 3, "server.log_level", "must be a string"},
        {EP "no_retry_methods = \"eth_call\";\n", 2, "no_retry_methods",
         "must be a list of method names, got a string"},
        {EP "no_retry_methods = ( \"eth_call\",\n 5 );\n", 3, "no_retry_methods[1]",
         "must be a string, got an integer"},
        {"endpoints = \"http://a.example\";\n", 1, "endpoints", "must be a list"},
        {"endpoints = (\n 5 );\n", 2, "endpoints[0]", "must be a URL string or a group"},
        {"endpoints = ( { url = 5; } );\n", 1, "endpoints[0].url", "must be a string"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = \"X: y\"; } );\n", 2,
         "endpoints[0].headers", "must be a list of \"Name: value\" strings, got a string"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = ( 1 ); } );\n", 2,
         "endpoints[0].headers[0]", "must be a string, got an integer"},
        {"endpoints = ( { url = \"http://a.example\";\n rate_limit = 5; } );\n", 2,
         "endpoints[0].rate_limit", "must be a group"},
        {"endpoints = ( { url = \"http://a.example\";\n weight = 2.0; } );\n", 2,
         "endpoints[0].weight", "must be an integer, got a float"},
        {EP "server = {\n user = \"\"; };\n", 3, "server.user", "must not be empty"},
    };
    RUN(cases);
}

static void test_ranges(void)
{
    static const struct err_case cases[] = {
        {EP "\nmax_connections = 0;\n", 3, "max_connections", "must be between 1 and 10000, got 0"},
        {EP "max_connections = 10001;\n", 2, "max_connections",
         "must be between 1 and 10000, got 10001"},
        {EP "min_connections = -1;\n", 2, "min_connections", "must be between 0 and 10000"},
        {EP "connection_timeout_ms = 0;\n", 2, "connection_timeout_ms",
         "must be between 1 and 86400000, got 0"},
        {EP "idle_timeout_ms = 86400001;\n", 2, "idle_timeout_ms",
         "must be between 1 and 86400000, got 86400001"},
        {EP "request_timeout_ms = -1;\n", 2, "request_timeout_ms", "must be between 1 and"},
        {EP "attempt_timeout_ms = 0;\n", 2, "attempt_timeout_ms", "must be between 1 and"},
        {EP "health_check_interval_ms = 0;\n", 2, "health_check_interval_ms", "between 1 and"},
        {EP "retries = 11;\n", 2, "retries", "must be between 0 and 10, got 11"},
        {EP "retries = -1;\n", 2, "retries", "must be between 0 and 10, got -1"},
        {EP "max_block_lag = -1;\n", 2, "max_block_lag", "must be between 0 and"},
        {EP "chain_id = -1;\n", 2, "chain_id", "must be between 0 and"},
        {EP "circuit_breaker = {\n failure_threshold = 0; };\n", 3,
         "circuit_breaker.failure_threshold", "must be between 1 and 65535, got 0"},
        {EP "circuit_breaker = {\n failure_threshold = 65536; };\n", 3,
         "circuit_breaker.failure_threshold", "must be between 1 and 65535, got 65536"},
        {EP "circuit_breaker = {\n recovery_timeout_ms = 0; };\n", 3,
         "circuit_breaker.recovery_timeout_ms", "must be between 1 and 86400000"},
        {EP "circuit_breaker = {\n half_open_max_attempts = 0; };\n", 3,
         "circuit_breaker.half_open_max_attempts", "must be between 1 and 255, got 0"},
        {EP "circuit_breaker = {\n half_open_max_attempts = 256; };\n", 3,
         "circuit_breaker.half_open_max_attempts", "must be between 1 and 255, got 256"},
        {EP "rate_limit = {\n max_requests = 0; };\n", 3, "rate_limit.max_requests",
         "must be between 1 and"},
        {EP "rate_limit = {\n window_ms = 0; };\n", 3, "rate_limit.window_ms",
         "must be between 1 and 86400000"},
        {EP "rate_limit = {\n burst_size = 0; };\n", 3, "rate_limit.burst_size",
         "must be between 1 and"},
        {EP "rate_limit = { max_requests = 1; window_ms = 86400000;\n burst_size = 101; };\n", 3,
         "rate_limit.burst_size", "would take 8726400000 ms to refill"},
        {"endpoints = ( { url = \"http://a.example\";\n rate_limit = {\n window_ms = 0; }; } );\n",
         3, "endpoints[0].rate_limit.window_ms", "must be between 1 and 86400000, got 0"},
        {"endpoints = ( { url = \"http://a.example\";\n weight = 0; } );\n", 2,
         "endpoints[0].weight", "must be between 1 and 1000, got 0"},
        {"endpoints = ( \"http://b.example\", { url = \"http://a.example\";\n weight = 1001; } "
         ");\n",
         2, "endpoints[1].weight", "must be between 1 and 1000, got 1001"},
        {EP "server = {\n workers = 65; };\n", 3, "server.workers",
         "must be between 0 and 64, got 65"},
        {EP "server = {\n workers = -1; };\n", 3, "server.workers", "must be between 0 and 64"},
        {EP "server = {\n max_batch = 0; };\n", 3, "server.max_batch",
         "must be between 1 and 100000, got 0"},
        {EP "server = {\n max_batch = 100001; };\n", 3, "server.max_batch",
         "must be between 1 and 100000, got 100001"},
        {EP "server = {\n max_clients = 0; };\n", 3, "server.max_clients", "must be between 1"},
        {EP "server = {\n max_request_bytes = 10; };\n", 3, "server.max_request_bytes",
         "must be between 64 and"},
        {EP "server = {\n max_response_bytes = 4294967297L; };\n", 3, "server.max_response_bytes",
         "must be between 64 and 4294967296, got 4294967297"},
        {EP "server = {\n client_idle_timeout_ms = 0; };\n", 3, "server.client_idle_timeout_ms",
         "must be between 1 and 86400000"},
        {EP "server = {\n queue_timeout_ms = -1; };\n", 3, "server.queue_timeout_ms",
         "must be between 0 and 86400000"},
        {EP "server = {\n shutdown_timeout_ms = 0; };\n", 3, "server.shutdown_timeout_ms",
         "must be between 1 and 86400000"},
        /* libconfig 1.5 would silently truncate these to 1 and 0 */
        {EP "max_connections = 4294967297;\n", 2, "max_connections",
         "4294967297 does not fit a 32-bit integer; write it with an L suffix (4294967297L)"},
        {EP "server = {\n max_response_bytes = 4294967296; };\n", 3, "server.max_response_bytes",
         "does not fit a 32-bit integer"},
        {EP "retries = -4294967296; # -4294967296 again in a comment\n", 2, "retries",
         "does not fit"},
        {EP "max_connections = 0x100000001;\n", 2, "max_connections", "does not fit"},
    };
    RUN(cases);
}

static void test_cross_checks(void)
{
    static const struct err_case cases[] = {
        {EP "request_timeout_ms = 1000;\nattempt_timeout_ms = 2000;\n", 3, "attempt_timeout_ms",
         "must not exceed request_timeout_ms (1000), got 2000"},
        {EP "attempt_timeout_ms = 20000;\n", 2, "attempt_timeout_ms",
         "must not exceed request_timeout_ms (10000), got 20000"},
        {EP "max_connections = 4;\nmin_connections = 5;\n", 3, "min_connections",
         "must not exceed max_connections (4), got 5"},
        {EP "max_connections = 1;\n", 2, "max_connections",
         "must be at least min_connections (2), got 1"},
        {EP "server = {\n socket = \"/tmp/rp.sock\";\n control_socket = \"/tmp/rp.sock\"; };\n", 4,
         "server.control_socket", "must differ"},
        {EP "health_check = {\n  method = \"eth_blockNumber\";\n  path = \"/health\";\n};\n", 2,
         "health_check", "give either method or path, not both"},
    };
    RUN(cases);
}

static void test_bad_urls(void)
{
    static const struct err_case cases[] = {
        {"endpoints = ( \"ftp://a.example/\" );\n", 1, "endpoints[0]",
         "must start with http:// or https://"},
        {"endpoints = ( \"a.example:8545\" );\n", 1, "endpoints[0]", "must start with http://"},
        {"endpoints = ( \"http://\" );\n", 1, "endpoints[0]", "has an empty host"},
        {"endpoints = ( \"http:///path\" );\n", 1, "endpoints[0]", "has an empty host"},
        {"endpoints = ( \"https://user@/x\" );\n", 1, "endpoints[0]", "has an empty host"},
        {"endpoints = ( \"http://:8545\" );\n", 1, "endpoints[0]", "has an empty host"},
        {"endpoints = ( \"http://a example\" );\n", 1, "endpoints[0]",
         "must not contain spaces, control bytes"},
        {"endpoints = ( \"http://a.example/\\x01\" );\n", 1, "endpoints[0]",
         "must not contain spaces, control bytes"},
        {"endpoints = ( \"http://a.example:0\" );\n", 1, "endpoints[0]",
         "port must be a number between 1 and 65535"},
        {"endpoints = ( \"http://a.example:65536/\" );\n", 1, "endpoints[0]",
         "port must be a number between 1 and 65535"},
        {"endpoints = ( \"http://a.example:/\" );\n", 1, "endpoints[0]", "port must be"},
        {"endpoints = ( \"http://a.example:85x45\" );\n", 1, "endpoints[0]", "port must be"},
        {"endpoints = ( \"http://[::1/\" );\n", 1, "endpoints[0]", "unterminated IPv6"},
        {"endpoints = ( \"http://[zz]/\" );\n", 1, "endpoints[0]", "invalid IPv6"},
        {"endpoints = ( \"http://a!b/\" );\n", 1, "endpoints[0]", "invalid character in its host"},
        {"endpoints = ( \"http://[::1]x/\" );\n", 1, "endpoints[0]", "invalid character after"},
        {"endpoints = (\n  \"http://b.example\",\n  { name = \"x\";\n    url = \"gopher://a\"; "
         "}\n);\n",
         4, "endpoints[1].url", "must start with http:// or https://"},
        {"endpoints = ( { name = \"x\"; } );\n", 1, "endpoints[0].url", "is required"},
        {"endpoints = ( { url = \"\"; } );\n", 1, "endpoints[0].url", "must not be empty"},
    };
    RUN(cases);
}

static void test_bad_endpoints(void)
{
    static const struct err_case cases[] = {
        {"name = \"x\";\n", 0, "endpoints", "is required"},
        {"\nendpoints = ();\n", 2, "endpoints", "must name at least one endpoint"},
        {"endpoints = [];\n", 1, "endpoints", "must name at least one endpoint"},
        {"endpoints = (\n  \"http://a.example/x\",\n  \"http://A.EXAMPLE:80/x\"\n);\n", 3,
         "endpoints[1]", "duplicate of endpoints[0] (http://a.example/***)"},
        {"endpoints = (\n  \"http://a.example\",\n  \"http://a.example\"  # again\n  # "
         "note\n\n);\n",
         3, "endpoints[1]", "duplicate of endpoints[0] (http://a.example)"},
        {"endpoints = (\n  \"https://a.example\",\n  { url = \"https://a.example/\"; }\n);\n", 3,
         "endpoints[1].url", "duplicate of endpoints[0]"},
        {"endpoints = (\n { name = \"a\"; url = \"http://a.example\"; },\n"
         " { url = \"http://b.example\";\n   name = \"a\"; }\n);\n",
         4, "endpoints[1].name", "duplicate name \"a\" (also endpoints[0])"},
        {"endpoints = ( { name = \"a b\"; url = \"http://a.example\"; } );\n", 1,
         "endpoints[0].name", "must be 1 to 47 characters"},
        {"endpoints = ( { name = \"123\"; url = \"http://a.example\"; } );\n", 1,
         "endpoints[0].name", "not only digits"},
        {"endpoints = ( { url = \"http://a.example\";\n"
         " name = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh\"; } );\n",
         2, "endpoints[0].name", "must be 1 to 47 characters"},
    };
    RUN(cases);

    /* 65 endpoints: one too many */
    char *text = malloc(65 * 40 + 64);
    CU_ASSERT_FATAL(text != NULL);
    size_t o = (size_t)sprintf(text, "endpoints = (\n");
    for (int i = 0; i < 65; i++)
        o += (size_t)sprintf(text + o, "%s\"http://127.0.0.1:%d\"\n", i ? "," : "", 10000 + i);
    sprintf(text + o, ");\n");
    struct err_case big[] = {{text, 1, "endpoints", "at most 64 endpoints, got 65"}};
    RUN(big);
    free(text);
}

static void test_bad_headers(void)
{
    static const struct err_case cases[] = {
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \"Authorization Bearer x\" ]; "
         "} );\n",
         2, "endpoints[0].headers[0]", "must be \"Name: value\""},
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \"X-A: 1\",\n \"Bad Name: x\" "
         "]; } );\n",
         3, "endpoints[0].headers[1]", "header name must be an HTTP token"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \": x\" ]; } );\n", 2,
         "endpoints[0].headers[0]", "has an empty header name"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \"X-A:  \" ]; } );\n", 2,
         "endpoints[0].headers[0]", "has an empty header value"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \"X-A: a\\nb\" ]; } );\n", 2,
         "endpoints[0].headers[0]", "must not contain control bytes"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \"Content-Length: 5\" ]; } "
         ");\n",
         2, "endpoints[0].headers[0]", "set by rpcpool"},
        {"endpoints = ( { url = \"http://a.example\";\n headers = [ \"A:1\", \"A:1\", \"A:1\", "
         "\"A:1\", \"A:1\", \"A:1\", \"A:1\", \"A:1\", \"A:1\", \"A:1\", \"A:1\", \"A:1\", "
         "\"A:1\", \"A:1\", \"A:1\", \"A:1\", \"A:1\" ]; } );\n",
         2, "endpoints[0].headers", "at most 16 headers, got 17"},
    };
    RUN(cases);
}

static void test_tls_ca_file(void)
{
    char dir[] = "/tmp/rp_test_ca_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char pem[128], junk[128], text[1024];
    snprintf(pem, sizeof pem, "%s/ca.pem", dir);
    snprintf(junk, sizeof junk, "%s/junk.pem", dir);
    FILE *fp = fopen(pem, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", fp);
    fclose(fp);
    fp = fopen(junk, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fputs("not a certificate\n", fp);
    fclose(fp);

    /* top level, and per endpoint overriding it */
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    snprintf(text, sizeof text,
             "tls_ca_file = \"%s\";\nendpoints = ( \"https://a.example/\",\n"
             "{ url = \"https://b.example/\"; tls_ca_file = \"%s\"; } );\n",
             pem, pem);
    CU_ASSERT_FATAL(load_text(text, &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.tls_ca_file, pem);
    CU_ASSERT_PTR_NULL(cfg.endpoints[0].tls_ca_file);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[1].tls_ca_file, pem);
    rp_config_free(&cfg);
    CU_ASSERT_FATAL(load_text(EP, &cfg, err) == 0);
    CU_ASSERT_PTR_NULL(cfg.tls_ca_file);
    rp_config_free(&cfg);

    char t0[512], t1[512], t2[512], t3[512];
    snprintf(t0, sizeof t0, EP "tls_ca_file = \"%s/none.pem\";\n", dir);
    snprintf(t1, sizeof t1, EP "\ntls_ca_file = \"%s\";\n", junk);
    snprintf(t2, sizeof t2,
             "endpoints = ( { url = \"http://a.example\";\n tls_ca_file = \"%s\"; } );\n", pem);
    snprintf(t3, sizeof t3,
             "endpoints = ( { url = \"https://a.example\";\n tls_ca_file = 5; } );\n");
    struct err_case cases[] = {
        {t0, 2, "tls_ca_file", "cannot read"},
        {t1, 3, "tls_ca_file", "holds no PEM certificate"},
        {t2, 2, "endpoints[0].tls_ca_file", "applies to https:// and wss:// endpoints only"},
        {t3, 2, "endpoints[0].tls_ca_file", "must be a string"},
        {EP "tls_ca_file = \"\";\n", 2, "tls_ca_file", "must not be empty"},
    };
    RUN(cases);
    unlink(pem);
    unlink(junk);
    rmdir(dir);
}

static void test_ws_url(void)
{
    char dir[] = "/tmp/rp_test_ws_XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char pem[128], text[1024];
    snprintf(pem, sizeof pem, "%s/ca.pem", dir);
    FILE *fp = fopen(pem, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fputs("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", fp);
    fclose(fp);

    struct rp_config cfg;
    char err[RP_ERR_MAX];
    /* ws:// and wss:// (its tls_ca_file allowed next to an http:// url);
     * the redacted form hides the path (an API key) */
    snprintf(
        text, sizeof text,
        "endpoints = ( { url = \"http://127.0.0.1:8545\"; ws_url = \"ws://127.0.0.1:8545/\"; },\n"
        "{ url = \"https://mainnet.infura.io/v3/KEY\";\n"
        "  ws_url = \"WSS://mainnet.infura.io/ws/v3/SECRETKEY\"; },\n"
        "{ url = \"http://node.internal:8545\"; ws_url = \"wss://node.internal:8546\";\n"
        "  tls_ca_file = \"%s\"; },\n"
        "\"http://plain.example/\" );\n",
        pem);
    CU_ASSERT_FATAL(load_text(text, &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].ws_url, "ws://127.0.0.1:8545/");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[1].ws_url, "WSS://mainnet.infura.io/ws/v3/SECRETKEY");
    CU_ASSERT_PTR_NULL(strstr(cfg.endpoints[1].ws_url_redacted, "SECRETKEY"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cfg.endpoints[1].ws_url_redacted, "mainnet.infura.io"));
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[2].tls_ca_file, pem);
    CU_ASSERT_PTR_NULL(cfg.endpoints[3].ws_url);
    rp_config_free(&cfg);

    static const struct err_case cases[] = {
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"http://a.example/\"; } );\n", 2,
         "endpoints[0].ws_url", "must start with ws:// or wss://"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"https://a.example/\"; } );\n", 2,
         "endpoints[0].ws_url", "must start with ws:// or wss://"},
        {"endpoints = ( \"http://b.example\", { url = \"http://a.example\";\n"
         " ws_url = \"ws://user:pw@a.example/\"; } );\n",
         2, "endpoints[1].ws_url", "must not carry user info"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"ws://\"; } );\n", 2,
         "endpoints[0].ws_url", "has an empty host"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"ws://a.example:99999/\"; } );\n",
         2, "endpoints[0].ws_url", "port must be a number"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"ws://a b/\"; } );\n", 2,
         "endpoints[0].ws_url", "must not contain spaces"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = 5; } );\n", 2,
         "endpoints[0].ws_url", "must be a string"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"\"; } );\n", 2,
         "endpoints[0].ws_url", "must not be empty"},
        {"endpoints = ( { url = \"http://a.example\";\n ws_url = \"ws://a.example/#x\"; } );\n", 2,
         "endpoints[0].ws_url", "must not have a fragment"},
    };
    RUN(cases);
    unlink(pem);
    rmdir(dir);
}

static void test_bad_strings(void)
{
    static const struct err_case cases[] = {
        {EP "name = \"my pool\";\n", 2, "name", "must be 1 to 47 characters of A-Z a-z 0-9 . _ -"},
        {EP "name = \"abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh\";\n", 2, "name",
         "must be 1 to 47"},
        {EP "name = \"\";\n", 2, "name", "must not be empty"},
        {EP "balance = \"fastest\";\n", 2, "balance",
         "must be one of \"p2c\", \"round_robin\", \"weighted\", \"random\", got \"fastest\""},
        {EP "server = {\n log_level = \"verbose\"; };\n", 3, "server.log_level",
         "must be one of \"debug\", \"info\", \"warn\", \"error\", got \"verbose\""},
        {EP "server = {\n socket_mode = \"0860\"; };\n", 3, "server.socket_mode",
         "must be an octal string between \"0000\" and \"0777\", got \"0860\""},
        {EP "server = {\n socket_mode = \"1777\"; };\n", 3, "server.socket_mode", "octal string"},
        {EP "server = {\n socket_mode = \"66\"; };\n", 3, "server.socket_mode", "octal string"},
        {EP "server = {\n socket_mode = \"0660x\"; };\n", 3, "server.socket_mode", "octal"},
        {EP "server = {\n http_listen = \"127.0.0.1\"; };\n", 3, "server.http_listen",
         "must be \"HOST:PORT\" with a port between 1 and 65535, got \"127.0.0.1\""},
        {EP "server = {\n http_listen = \"127.0.0.1:0\"; };\n", 3, "server.http_listen",
         "HOST:PORT"},
        {EP "server = {\n http_listen = \"127.0.0.1:65536\"; };\n", 3, "server.http_listen",
         "HOST:PORT"},
        {EP "server = {\n http_listen = \":8080\"; };\n", 3, "server.http_listen", "HOST:PORT"},
        {EP "server = {\n http_listen = \"local host:80\"; };\n", 3, "server.http_listen",
         "HOST:PORT"},
        {EP "server = {\n shm_name = \"rpcpool\"; };\n", 3, "server.shm_name",
         "must be '/' followed by"},
        {EP "server = {\n shm_name = \"/a/b\"; };\n", 3, "server.shm_name", "without '/'"},
        {EP "server = {\n shm_name = \"/\"; };\n", 3, "server.shm_name", "must be '/'"},
        {EP "server = {\n user = \"root user\"; };\n", 3, "server.user", "must be 1 to 32"},
        {EP "server = {\n group = \"wheel;\"; };\n", 3, "server.group", "must be 1 to 32"},
        {EP "server = {\n socket = "
            "\"/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"; };\n",
         3, "server.socket", "must be shorter than 108 bytes"},
        {EP "server = {\n control_socket = \"/tmp/a b.ctl\"; };\n", 3, "server.control_socket",
         "no spaces or control bytes"},
        {EP "health_check = {\n path = \"health\"; };\n", 3, "health_check.path",
         "must start with '/'"},
        {EP "health_check = {\n method = \"eth block\"; };\n", 3, "health_check.method",
         "must be a method name"},
        {EP "no_retry_methods = [ \"eth_call\",\n \"eth call\" ];\n", 3, "no_retry_methods[1]",
         "must be a method name"},
        {EP "no_retry_methods = [ \"eth_call\",\n \"eth_call\" ];\n", 3, "no_retry_methods[1]",
         "duplicate method \"eth_call\""},
    };
    RUN(cases);

    /* 33 methods: one too many */
    char text[4096];
    size_t o = (size_t)snprintf(text, sizeof text, EP "no_retry_methods = [\n");
    for (int i = 0; i < 33; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s\"m%d\"", i ? ", " : "", i);
    snprintf(text + o, sizeof text - o, " ];\n");
    struct err_case many[] = {{text, 2, "no_retry_methods", "at most 32 methods, got 33"}};
    RUN(many);
    /* 31 methods plus the two send methods that are always added */
    o = (size_t)snprintf(text, sizeof text, EP "no_retry_methods = [\n");
    for (int i = 0; i < 31; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s\"m%d\"", i ? ", " : "", i);
    snprintf(text + o, sizeof text - o, " ];\n");
    struct err_case full[] = {{text, 2, "no_retry_methods", "always included"}};
    RUN(full);
}

static void test_syntax_and_files(void)
{
    struct rp_config cfg;
    char err[RP_ERR_MAX], want[RP_ERR_MAX];

    write_conf(EP "max_connections = ;\n");
    CU_ASSERT(rp_config_load(conf_path, &cfg, err, sizeof err) == -1);
    snprintf(want, sizeof want, "%s:2: syntax error: ", conf_path);
    CU_ASSERT(strncmp(err, want, strlen(want)) == 0);
    CU_ASSERT(strlen(err) > strlen(want));
    remove_conf();

    write_conf(EP "retries = 1;\n\nretries = 2;\n");
    CU_ASSERT(rp_config_load(conf_path, &cfg, err, sizeof err) == -1);
    snprintf(want, sizeof want, "%s:4: syntax error: duplicate setting name", conf_path);
    CU_ASSERT_STRING_EQUAL(err, want);
    remove_conf();

    CU_ASSERT(rp_config_load("/tmp/rp_test_config_missing/x.conf", &cfg, err, sizeof err) == -1);
    CU_ASSERT_STRING_EQUAL(err, "/tmp/rp_test_config_missing/x.conf: cannot open: No such file or "
                                "directory");
    CU_ASSERT(cfg.path == NULL);

    CU_ASSERT(rp_config_load("/tmp", &cfg, err, sizeof err) == -1);
    CU_ASSERT_STRING_EQUAL(err, "/tmp: cannot open: Is a directory");

    /* errors inside an @include name the included file and its line */
    char inc[64];
    snprintf(inc, sizeof inc, "/tmp/rp_test_config_inc_XXXXXX");
    int fd = mkstemp(inc);
    CU_ASSERT_FATAL(fd >= 0);
    const char *inc_text = "retries = 1;\nmax_batch_size = 3;\n";
    CU_ASSERT(write(fd, inc_text, strlen(inc_text)) == (ssize_t)strlen(inc_text));
    close(fd);
    char main_text[256];
    snprintf(main_text, sizeof main_text, EP "@include \"%s\"\n", inc + 5 /* relative to /tmp */);
    write_conf(main_text);
    CU_ASSERT(rp_config_load(conf_path, &cfg, err, sizeof err) == -1);
    snprintf(want, sizeof want, "%s:2: max_batch_size: unknown key", inc);
    CU_ASSERT_STRING_EQUAL(err, want);
    remove_conf();
    unlink(inc);

    /* a NULL or tiny error buffer is not written past */
    write_conf("foo = 1;\n");
    CU_ASSERT(rp_config_load(conf_path, &cfg, NULL, 0) == -1);
    char tiny[8];
    memset(tiny, 'x', sizeof tiny);
    CU_ASSERT(rp_config_load(conf_path, &cfg, tiny, 5) == -1);
    CU_ASSERT(tiny[4] == '\0' && tiny[5] == 'x');
    remove_conf();
}

/* ---------------------------------------------------------------------- */
/* Valid configurations                                                    */

static void test_full_config(void)
{
    static const char text[] =
        "name = \"eth-main_1.x\";\n"
        "chain_id = 11155111L;\n"
        "endpoints = (\n"
        "  \"https://rpc.ankr.com/eth\",\n"
        "  { name = \"infura\";\n"
        "    url = \"https://mainnet.infura.io/v3/KEY\";\n"
        "    weight = 7;\n"
        "    headers = [ \"Authorization: Bearer TOKEN\", \"X-Api-Key:k\" ];\n"
        "    rate_limit = { max_requests = 10; window_ms = 1000; burst_size = 20; };\n"
        "  },\n"
        "  { url = \"http://user:pw@[::1]:8545/\"; rate_limit = { window_ms = 500; }; }\n"
        ");\n"
        "max_connections = 20;\n"
        "min_connections = 3;\n"
        "connection_timeout_ms = 1500;\n"
        "idle_timeout_ms = 45000;\n"
        "request_timeout_ms = 20000;\n"
        "attempt_timeout_ms = 4000;\n"
        "retries = 4;\n"
        "no_retry_methods = [ \"eth_sendRawTransaction\", \"personal_sign\" ];\n"
        "balance = \"weighted\";\n"
        "health_check_interval_ms = 15000;\n"
        "health_check = { path = \"/health\"; };\n"
        "max_block_lag = 9;\n"
        "circuit_breaker = { failure_threshold = 8; recovery_timeout_ms = 30000;\n"
        "                    half_open_max_attempts = 2; };\n"
        "rate_limit = { max_requests = 50; window_ms = 10000; };\n"
        "server = {\n"
        "  socket = \"/tmp/rp-full.ipc\";\n"
        "  socket_mode = \"0600\";\n"
        "  http_listen = \"[::1]:8546\";\n"
        "  control_socket = \"/tmp/rp-full.ctl\";\n"
        "  shm_name = \"/rp-full\";\n"
        "  workers = 3;\n"
        "  max_clients = 500;\n"
        "  max_request_bytes = 65536;\n"
        "  max_batch = 50;\n"
        "  max_response_bytes = 4294967296L;\n"
        "  client_idle_timeout_ms = 60000;\n"
        "  queue_timeout_ms = 0;\n"
        "  shutdown_timeout_ms = 5000;\n"
        "  user = \"rpcpool\";\n"
        "  group = \"rpc-group\";\n"
        "  log_level = \"debug\";\n"
        "};\n";
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    write_conf(text);
    int rc = rp_config_load(conf_path, &cfg, err, sizeof err);
    remove_conf();
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT_STRING_EQUAL(cfg.path, conf_path);
    CU_ASSERT_STRING_EQUAL(cfg.name, "eth-main_1.x");
    CU_ASSERT(cfg.chain_id == 11155111);
    CU_ASSERT_FATAL(cfg.endpoint_count == 3);

    const struct rp_endpoint_config *e = &cfg.endpoints[0];
    CU_ASSERT_STRING_EQUAL(e->name, "rpc.ankr.com");
    CU_ASSERT_STRING_EQUAL(e->url, "https://rpc.ankr.com/eth");
    CU_ASSERT_STRING_EQUAL(e->url_redacted, "https://rpc.ankr.com/***");
    CU_ASSERT(e->weight == 1 && e->header_count == 0 && !e->has_rate_limit);
    CU_ASSERT(e->rate_limit.max_requests == 50 && e->rate_limit.window_ms == 10000 &&
              e->rate_limit.burst_size == 50);
    CU_ASSERT(e->line == 4);

    e = &cfg.endpoints[1];
    CU_ASSERT_STRING_EQUAL(e->name, "infura");
    CU_ASSERT_STRING_EQUAL(e->url, "https://mainnet.infura.io/v3/KEY");
    CU_ASSERT_STRING_EQUAL(e->url_redacted, "https://mainnet.infura.io/***");
    CU_ASSERT(e->weight == 7);
    CU_ASSERT_FATAL(e->header_count == 2);
    CU_ASSERT_STRING_EQUAL(e->headers[0], "Authorization: Bearer TOKEN");
    CU_ASSERT_STRING_EQUAL(e->headers[1], "X-Api-Key:k");
    CU_ASSERT(e->has_rate_limit);
    CU_ASSERT(e->rate_limit.max_requests == 10 && e->rate_limit.window_ms == 1000 &&
              e->rate_limit.burst_size == 20);
    CU_ASSERT(e->line == 5);

    e = &cfg.endpoints[2];
    CU_ASSERT_STRING_EQUAL(e->name, "[::1]");
    CU_ASSERT_STRING_EQUAL(e->url_redacted, "http://[::1]:8545/");
    CU_ASSERT(e->has_rate_limit);
    /* window from the block, max_requests and burst from the global limit */
    CU_ASSERT(e->rate_limit.max_requests == 50 && e->rate_limit.window_ms == 500 &&
              e->rate_limit.burst_size == 50);
    CU_ASSERT(e->line == 11);

    CU_ASSERT(cfg.max_connections == 20);
    CU_ASSERT(cfg.min_connections == 3);
    CU_ASSERT(cfg.connection_timeout_ms == 1500);
    CU_ASSERT(cfg.idle_timeout_ms == 45000);
    CU_ASSERT(cfg.request_timeout_ms == 20000);
    CU_ASSERT(cfg.attempt_timeout_ms == 4000);
    CU_ASSERT(cfg.retries == 4);
    CU_ASSERT_FATAL(cfg.no_retry_count == 3);
    CU_ASSERT_STRING_EQUAL(cfg.no_retry_methods[0], "eth_sendRawTransaction");
    CU_ASSERT_STRING_EQUAL(cfg.no_retry_methods[1], "personal_sign");
    CU_ASSERT_STRING_EQUAL(cfg.no_retry_methods[2], "eth_sendTransaction");
    CU_ASSERT(cfg.balance == RP_BALANCE_WEIGHTED);
    CU_ASSERT(cfg.health_check_interval_ms == 15000);
    CU_ASSERT(cfg.health_check_method == NULL);
    CU_ASSERT_STRING_EQUAL(cfg.health_check_path, "/health");
    CU_ASSERT(cfg.max_block_lag == 9);
    CU_ASSERT(cfg.cb_failure_threshold == 8);
    CU_ASSERT(cfg.cb_recovery_timeout_ms == 30000);
    CU_ASSERT(cfg.cb_half_open_max_attempts == 2);
    /* a global block without burst_size: burst = its max_requests */
    CU_ASSERT(cfg.rate_limit.max_requests == 50 && cfg.rate_limit.window_ms == 10000 &&
              cfg.rate_limit.burst_size == 50);
    CU_ASSERT_STRING_EQUAL(cfg.socket_path, "/tmp/rp-full.ipc");
    CU_ASSERT(cfg.socket_mode == 0600);
    CU_ASSERT_STRING_EQUAL(cfg.http_listen, "[::1]:8546");
    CU_ASSERT_STRING_EQUAL(cfg.control_socket, "/tmp/rp-full.ctl");
    CU_ASSERT_STRING_EQUAL(cfg.shm_name, "/rp-full");
    CU_ASSERT(cfg.workers == 3);
    CU_ASSERT(cfg.max_clients == 500);
    CU_ASSERT(cfg.max_request_bytes == 65536);
    CU_ASSERT(cfg.max_batch == 50);
    CU_ASSERT(cfg.max_response_bytes == 4294967296LL);
    CU_ASSERT(cfg.client_idle_timeout_ms == 60000);
    CU_ASSERT(cfg.queue_timeout_ms == 0);
    CU_ASSERT(cfg.shutdown_timeout_ms == 5000);
    CU_ASSERT_STRING_EQUAL(cfg.user, "rpcpool");
    CU_ASSERT_STRING_EQUAL(cfg.group, "rpc-group");
    CU_ASSERT(cfg.log_level == RP_LOG_DEBUG);
    rp_config_free(&cfg);
    CU_ASSERT(cfg.path == NULL && cfg.endpoint_count == 0);
    rp_config_free(&cfg); /* safe twice */
}

static void test_defaults(void)
{
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(load_text(EP, &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.name, "rpcpool");
    CU_ASSERT(cfg.chain_id == 0);
    CU_ASSERT_FATAL(cfg.endpoint_count == 1);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].name, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].url, "http://127.0.0.1:8545");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].url_redacted, "http://127.0.0.1:8545");
    CU_ASSERT(cfg.endpoints[0].weight == 1);
    CU_ASSERT(cfg.endpoints[0].line == 1);
    CU_ASSERT(cfg.endpoints[0].rate_limit.max_requests == 100 &&
              cfg.endpoints[0].rate_limit.window_ms == 60000 &&
              cfg.endpoints[0].rate_limit.burst_size == 10);
    CU_ASSERT(cfg.max_connections == 10);
    CU_ASSERT(cfg.min_connections == 2);
    CU_ASSERT(cfg.connection_timeout_ms == 5000);
    CU_ASSERT(cfg.idle_timeout_ms == 30000);
    CU_ASSERT(cfg.request_timeout_ms == 10000);
    CU_ASSERT(cfg.attempt_timeout_ms == 3000);
    CU_ASSERT(cfg.retries == 2);
    CU_ASSERT_FATAL(cfg.no_retry_count == 2);
    CU_ASSERT_STRING_EQUAL(cfg.no_retry_methods[0], "eth_sendRawTransaction");
    CU_ASSERT_STRING_EQUAL(cfg.no_retry_methods[1], "eth_sendTransaction");
    CU_ASSERT(cfg.balance == RP_BALANCE_P2C);
    CU_ASSERT(cfg.health_check_interval_ms == 30000);
    CU_ASSERT_STRING_EQUAL(cfg.health_check_method, "eth_blockNumber");
    CU_ASSERT(cfg.health_check_path == NULL);
    CU_ASSERT(cfg.max_block_lag == 5);
    CU_ASSERT(cfg.cb_failure_threshold == 5);
    CU_ASSERT(cfg.cb_recovery_timeout_ms == 60000);
    CU_ASSERT(cfg.cb_half_open_max_attempts == 3);
    CU_ASSERT(cfg.rate_limit.max_requests == 100 && cfg.rate_limit.window_ms == 60000 &&
              cfg.rate_limit.burst_size == 10);
    CU_ASSERT_STRING_EQUAL(cfg.socket_path, "/run/rpcpool/rpcpool.ipc");
    CU_ASSERT(cfg.socket_mode == 0660);
    CU_ASSERT(cfg.http_listen == NULL);
    CU_ASSERT_STRING_EQUAL(cfg.control_socket, "/run/rpcpool/rpcpool.ctl");
    CU_ASSERT_STRING_EQUAL(cfg.shm_name, "/rpcpool.rpcpool");
    CU_ASSERT(cfg.workers == 2);
    CU_ASSERT(cfg.max_clients == 10000);
    CU_ASSERT(cfg.max_request_bytes == 1048576);
    CU_ASSERT(cfg.max_batch == 1000);
    CU_ASSERT(cfg.max_response_bytes == 134217728);
    CU_ASSERT(cfg.client_idle_timeout_ms == 300000);
    CU_ASSERT(cfg.queue_timeout_ms == 2000);
    CU_ASSERT(cfg.shutdown_timeout_ms == 10000);
    CU_ASSERT(cfg.user == NULL && cfg.group == NULL);
    CU_ASSERT(cfg.log_level == RP_LOG_INFO);
    rp_config_free(&cfg);

    /* paths follow the name; an empty health_check group keeps the method */
    CU_ASSERT_FATAL(load_text("name = \"eth-pool\";\n" EP "health_check = { };\n"
                              "rate_limit = { };\n",
                              &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.socket_path, "/run/rpcpool/eth-pool.ipc");
    CU_ASSERT_STRING_EQUAL(cfg.control_socket, "/run/rpcpool/eth-pool.ctl");
    CU_ASSERT_STRING_EQUAL(cfg.shm_name, "/rpcpool.eth-pool");
    CU_ASSERT_STRING_EQUAL(cfg.health_check_method, "eth_blockNumber");
    /* an (empty) block given: its burst defaults to its max_requests */
    CU_ASSERT(cfg.rate_limit.burst_size == 100);
    rp_config_free(&cfg);

    /* workers = 0: one per CPU, at most 64 */
    CU_ASSERT_FATAL(load_text(EP "server = { workers = 0; };\n", &cfg, err) == 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long want = cpus < 1 ? 1 : cpus > 64 ? 64 : cpus;
    CU_ASSERT(cfg.workers == want);
    rp_config_free(&cfg);

    /* an empty no_retry list still holds the two send methods */
    CU_ASSERT_FATAL(load_text(EP "no_retry_methods = [];\n", &cfg, err) == 0);
    CU_ASSERT(cfg.no_retry_count == 2);
    rp_config_free(&cfg);
}

/* attempt_timeout_ms follows request_timeout_ms down when only the latter
 * was set (docs/interface.md section 8); two explicit keys that conflict stay an
 * error naming both. */
static void test_attempt_default(void)
{
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(load_text(EP "request_timeout_ms = 800;\n", &cfg, err) == 0);
    CU_ASSERT(cfg.request_timeout_ms == 800);
    CU_ASSERT(cfg.attempt_timeout_ms == 800);
    rp_config_free(&cfg);
    CU_ASSERT_FATAL(load_text(EP "request_timeout_ms = 5000;\n", &cfg, err) == 0);
    CU_ASSERT(cfg.attempt_timeout_ms == 3000);
    rp_config_free(&cfg);
    CU_ASSERT_FATAL(
        load_text(EP "request_timeout_ms = 800;\nattempt_timeout_ms = 500;\n", &cfg, err) == 0);
    CU_ASSERT(cfg.attempt_timeout_ms == 500);
    rp_config_free(&cfg);
    CU_ASSERT(load_text(EP "request_timeout_ms = 800;\nattempt_timeout_ms = 3000;\n", &cfg, err) !=
              0);
    CU_ASSERT(strstr(err, ":3: attempt_timeout_ms: ") != NULL);
    CU_ASSERT(strstr(err, "request_timeout_ms (800)") != NULL);
}

static void test_rate_limit_inheritance(void)
{
    static const char text[] =
        "rate_limit = { max_requests = 40; window_ms = 2000; burst_size = 5; };\n"
        "endpoints = (\n"
        "  \"http://a.example\",\n"
        "  { url = \"http://b.example\"; rate_limit = { max_requests = 7; }; },\n"
        "  { url = \"http://c.example\"; rate_limit = { window_ms = 100; }; },\n"
        "  { url = \"http://d.example\"; rate_limit = { burst_size = 3; }; },\n"
        "  { url = \"http://e.example\"; rate_limit = { }; }\n"
        ");\n";
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(load_text(text, &cfg, err) == 0);
    const struct rp_rate_limit *r;
    r = &cfg.endpoints[0].rate_limit;
    CU_ASSERT(!cfg.endpoints[0].has_rate_limit);
    CU_ASSERT(r->max_requests == 40 && r->window_ms == 2000 && r->burst_size == 5);
    r = &cfg.endpoints[1].rate_limit;
    CU_ASSERT(cfg.endpoints[1].has_rate_limit);
    CU_ASSERT(r->max_requests == 7 && r->window_ms == 2000 && r->burst_size == 7);
    r = &cfg.endpoints[2].rate_limit;
    CU_ASSERT(r->max_requests == 40 && r->window_ms == 100 && r->burst_size == 5);
    r = &cfg.endpoints[3].rate_limit;
    CU_ASSERT(r->max_requests == 40 && r->window_ms == 2000 && r->burst_size == 3);
    r = &cfg.endpoints[4].rate_limit;
    CU_ASSERT(cfg.endpoints[4].has_rate_limit);
    CU_ASSERT(r->max_requests == 40 && r->window_ms == 2000 && r->burst_size == 5);
    rp_config_free(&cfg);
}

static void test_default_names(void)
{
    static const char text[] = "endpoints = (\n"
                               "  \"http://127.0.0.1:8545\",\n"
                               "  \"http://127.0.0.1:8546/\",\n"
                               "  \"http://a.example/x\",\n"
                               "  \"https://a.example/y\",\n"
                               "  \"http://b.example/1\",\n"
                               "  \"http://B.example/2\",\n"
                               "  { name = \"c.example\"; url = \"http://x.example\"; },\n"
                               "  \"http://c.example:81\",\n"
                               "  \"https://solo.example/v3/KEY\",\n"
                               "  \"http://12345:8545\"\n"
                               ");\n";
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    int rc = load_text(text, &cfg, err);
    if (rc)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_FATAL(rc == 0 && cfg.endpoint_count == 10);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].name, "127.0.0.1:8545");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[1].name, "127.0.0.1:8546");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[2].name, "a.example:80");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[3].name, "a.example:443");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[4].name, "b.example:80");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[5].name, "B.example:80");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[6].name, "c.example");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[7].name, "c.example:81");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[8].name, "solo.example");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[9].name, "12345:8545");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[1].url_redacted, "http://127.0.0.1:8546/");
    rp_config_free(&cfg);

    /* same host and port, different paths: a numbered suffix keeps names unique */
    CU_ASSERT_FATAL(load_text("endpoints = ( \"http://h.example/1\", \"http://h.example/2\",\n"
                              "  \"http://h.example/3\" );\n",
                              &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].name, "h.example:80");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[1].name, "h.example:80-2");
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[2].name, "h.example:80-3");
    for (int i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(cfg.endpoints[i].url_redacted, "http://h.example/***");
    rp_config_free(&cfg);

    /* a long host is cut to fit RP_NAME_MAX */
    CU_ASSERT_FATAL(load_text("endpoints = ( \"https://"
                              "aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffff.example/\" "
                              ");\n",
                              &cfg, err) == 0);
    CU_ASSERT(strlen(cfg.endpoints[0].name) == RP_NAME_MAX - 1);
    CU_ASSERT(strncmp(cfg.endpoints[0].name, "aaaaaaaaaabbbbbbbbbb", 20) == 0);
    rp_config_free(&cfg);

    /* exactly RP_MAX_ENDPOINTS is fine */
    char *big = malloc(64 * 40 + 64);
    CU_ASSERT_FATAL(big != NULL);
    size_t o = (size_t)sprintf(big, "endpoints = (\n");
    for (int i = 0; i < 64; i++)
        o += (size_t)sprintf(big + o, "%s\"http://127.0.0.1:%d\"\n", i ? "," : "", 10000 + i);
    sprintf(big + o, ");\n");
    CU_ASSERT_FATAL(load_text(big, &cfg, err) == 0);
    CU_ASSERT(cfg.endpoint_count == RP_MAX_ENDPOINTS);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[63].name, "127.0.0.1:10063");
    CU_ASSERT(cfg.endpoints[63].line == 65);
    rp_config_free(&cfg);
    free(big);
}

/* ---------------------------------------------------------------------- */
/* Redaction, no-retry, secrets, sample                                    */

static void check_redact(const char *url, const char *want)
{
    char out[256];
    rp_config_redact_url(url, out, sizeof out);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "\n  redact(%s) = %s, want %s\n", url ? url : "NULL", out, want);
    CU_ASSERT_STRING_EQUAL(out, want);
}

static void test_redact(void)
{
    check_redact("https://mainnet.infura.io/v3/KEY", "https://mainnet.infura.io/***");
    check_redact("https://host.example", "https://host.example");
    check_redact("https://host.example/", "https://host.example/");
    check_redact("http://host.example:8545", "http://host.example:8545");
    check_redact("http://host.example:8545/", "http://host.example:8545/");
    check_redact("http://user:pass@host.example:8545/path?x=1", "http://host.example:8545/***");
    check_redact("http://KEY@host.example", "http://host.example");
    check_redact("http://a@b@host.example/x", "http://host.example/***");
    check_redact("https://host.example?key=1", "https://host.example/***");
    check_redact("https://host.example#frag", "https://host.example/***");
    check_redact("https://host.example//", "https://host.example/***");
    check_redact("http://[::1]:8545/", "http://[::1]:8545/");
    check_redact("http://[::1]/rpc", "http://[::1]/***");
    check_redact("http://host.example:KEY/x", "http://host.example:***/***");
    check_redact("http://ho st/x", "http://***/***");
    check_redact("not a url", "***");
    check_redact("://host/x", "***");
    check_redact("", "***");
    check_redact(NULL, "***");

    /* truncation stays NUL-terminated and inside the buffer */
    char small[12];
    memset(small, 'x', sizeof small);
    rp_config_redact_url("https://host.example/KEY", small, 10);
    CU_ASSERT_STRING_EQUAL(small, "https://h");
    CU_ASSERT(small[10] == 'x');
    small[0] = 'x';
    rp_config_redact_url("https://host.example/KEY", small, 0);
    CU_ASSERT(small[0] == 'x');
}

static void test_no_retry(void)
{
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(load_text(EP, &cfg, err) == 0);
    CU_ASSERT(rp_config_is_no_retry(&cfg, "eth_sendRawTransaction", 22));
    CU_ASSERT(rp_config_is_no_retry(&cfg, "eth_sendTransaction", 19));
    CU_ASSERT(!rp_config_is_no_retry(&cfg, "eth_call", 8));
    /* LEN bytes only: the method need not be NUL-terminated */
    CU_ASSERT(rp_config_is_no_retry(&cfg, "eth_sendTransaction\",\"params\"", 19));
    CU_ASSERT(!rp_config_is_no_retry(&cfg, "eth_sendTransaction", 18));
    CU_ASSERT(!rp_config_is_no_retry(&cfg, "eth_sendTransactionX", 20));
    CU_ASSERT(!rp_config_is_no_retry(&cfg, "", 0));
    rp_config_free(&cfg);

    CU_ASSERT_FATAL(
        load_text(EP "no_retry_methods = ( \"personal_sign\", \"eth_sign\" );\n", &cfg, err) == 0);
    CU_ASSERT(rp_config_is_no_retry(&cfg, "personal_sign", 13));
    CU_ASSERT(rp_config_is_no_retry(&cfg, "eth_sign", 8));
    CU_ASSERT(rp_config_is_no_retry(&cfg, "eth_sendRawTransaction", 22));
    CU_ASSERT(rp_config_is_no_retry(&cfg, "eth_sendTransaction", 19));
    CU_ASSERT(!rp_config_is_no_retry(&cfg, "eth_signTypedData", 17));
    CU_ASSERT(!rp_config_is_no_retry(&cfg, "eth_getBalance", 14));
    CU_ASSERT(cfg.no_retry_count == 4);
    rp_config_free(&cfg);

    CU_ASSERT(rp_config_is_no_retry(NULL, "eth_sendRawTransaction", 22));
    CU_ASSERT(!rp_config_is_no_retry(NULL, "eth_call", 8));
}

static void test_secrets_never_shown(void)
{
    /* Each config fails somewhere next to a secret; none may leak it. */
    static const char *const texts[] = {
        "endpoints = ( \"https://mainnet.example:0/v3/SECRETKEY\" );\n",
        "endpoints = ( \"https://SECRETKEY@mainnet.example:99999/\" );\n",
        "endpoints = ( \"https://u:SECRETKEY@mainnet.example:x/\" );\n",
        "endpoints = ( \"https://mainnet.example:SECRETKEY/\" );\n",
        "endpoints = ( \"https://main net.example/SECRETKEY\" );\n",
        "endpoints = ( \"ftp://mainnet.example/SECRETKEY\" );\n",
        "endpoints = ( \"SECRETKEY\" );\n",
        "endpoints = ( \"https://[SECRETKEY]/\" );\n",
        "endpoints = ( \"https://SECRETKEY!/\" );\n",
        "endpoints = ( \"https://a.example/v3/SECRETKEY\", \"https://A.example/v3/SECRETKEY\" );\n",
        "endpoints = ( \"https://a.example/?key=SECRETKEY\", { url = "
        "\"https://a.example/?key=SECRETKEY\"; } );\n",
        "endpoints = ( { url = \"https://a.example/SECRETKEY\"; weight = 0; } );\n",
        "endpoints = ( { url = \"https://a.example/SECRETKEY\"; foo = 1; } );\n",
        "endpoints = ( { url = \"https://a.example/\"; headers = [ \"Authorization: Bearer "
        "SECRETKEY\\n\" ]; } );\n",
        "endpoints = ( { url = \"https://a.example/\"; headers = [ \"Authorization Bearer "
        "SECRETKEY\" ]; } );\n",
        "endpoints = ( { url = \"https://a.example/\"; headers = [ \"Bad Name SECRETKEY: x\" ]; "
        "} );\n",
        "endpoints = ( { url = \"https://a.example/\"; headers = [ \"Content-Length: SECRETKEY\" "
        "]; } );\n",
        "endpoints = ( { url = \"https://a.example/SECRETKEY\"; name = \"bad name\"; } );\n",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        struct rp_config cfg;
        char err[RP_ERR_MAX];
        int rc = load_text(texts[i], &cfg, err);
        CU_ASSERT(rc == -1);
        if (rc == -1 && strstr(err, "SECRETKEY"))
            fprintf(stderr, "\n  case %zu leaks: %s\n", i, err);
        CU_ASSERT(rc == -1 && strstr(err, "SECRETKEY") == NULL);
        if (rc == 0)
            rp_config_free(&cfg);
    }

    /* and the redacted form of a valid URL keeps none of it */
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(load_text("endpoints = ( \"https://u:SECRETKEY@a.example:443/v3/SECRETKEY?"
                              "k=SECRETKEY#SECRETKEY\" );\n",
                              &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.endpoints[0].url_redacted, "https://a.example:443/***");
    CU_ASSERT(strstr(cfg.endpoints[0].name, "SECRETKEY") == NULL);
    rp_config_free(&cfg);
}

/* The sample must load, and name every key the parser knows. */
static void test_sample_config(void)
{
    const char *path = getenv("RP_SAMPLE_CONF");
    if (!path)
        path = "etc/rpcpool.conf";
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    int rc = rp_config_load(path, &cfg, err, sizeof err);
    if (rc)
        fprintf(stderr, "\n  sample: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    CU_ASSERT(cfg.endpoint_count >= 1);
    rp_config_free(&cfg);

    FILE *fp = fopen(path, "r");
    CU_ASSERT_FATAL(fp != NULL);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    text[n] = '\0';
    fclose(fp);
    static const char *const keys[] = {
        "name",
        "chain_id",
        "endpoints",
        "url",
        "weight",
        "headers",
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
        "method",
        "path",
        "max_block_lag",
        "circuit_breaker",
        "failure_threshold",
        "recovery_timeout_ms",
        "half_open_max_attempts",
        "rate_limit",
        "max_requests",
        "window_ms",
        "burst_size",
        "server",
        "socket",
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
        NULL,
    };
    for (const char *const *k = keys; *k; k++) {
        char pat[64];
        snprintf(pat, sizeof pat, "%s =", *k);
        if (!strstr(text, pat))
            fprintf(stderr, "\n  sample lacks \"%s\"\n", pat);
        CU_ASSERT(strstr(text, pat) != NULL);
    }
}

static void test_enum_names(void)
{
    CU_ASSERT_STRING_EQUAL(rp_balance_name(RP_BALANCE_P2C), "p2c");
    CU_ASSERT_STRING_EQUAL(rp_balance_name(RP_BALANCE_ROUND_ROBIN), "round_robin");
    CU_ASSERT_STRING_EQUAL(rp_balance_name(RP_BALANCE_WEIGHTED), "weighted");
    CU_ASSERT_STRING_EQUAL(rp_balance_name(RP_BALANCE_RANDOM), "random");
    CU_ASSERT_STRING_EQUAL(rp_log_level_name(RP_LOG_DEBUG), "debug");
    CU_ASSERT_STRING_EQUAL(rp_log_level_name(RP_LOG_INFO), "info");
    CU_ASSERT_STRING_EQUAL(rp_log_level_name(RP_LOG_WARN), "warn");
    CU_ASSERT_STRING_EQUAL(rp_log_level_name(RP_LOG_ERROR), "error");

    /* every spelling the file accepts round-trips */
    static const char *const balances[] = {"p2c", "round_robin", "weighted", "random"};
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        struct rp_config cfg;
        char err[RP_ERR_MAX], text[256];
        snprintf(text, sizeof text, EP "balance = \"%s\";\nserver = { log_level = \"%s\"; };\n",
                 balances[i], levels[i]);
        CU_ASSERT_FATAL(load_text(text, &cfg, err) == 0);
        CU_ASSERT_STRING_EQUAL(rp_balance_name(cfg.balance), balances[i]);
        CU_ASSERT_STRING_EQUAL(rp_log_level_name(cfg.log_level), levels[i]);
        rp_config_free(&cfg);
    }
}

/* Section 8: subscriptions, fleet, cache, coalesce and hedge keys. */
static void test_wave2_keys(void)
{
    struct rp_config cfg;
    char err[RP_ERR_MAX];
    CU_ASSERT_FATAL(load_text(EP, &cfg, err) == 0);
    CU_ASSERT_EQUAL(cfg.sub_poll_interval_ms, 1000);
    CU_ASSERT_EQUAL(cfg.sub_max_per_connection, 100);
    CU_ASSERT_EQUAL(cfg.sub_max_total, 10000);
    CU_ASSERT_EQUAL(cfg.sub_backfill_blocks, 128);
    CU_ASSERT_PTR_NULL(cfg.fleet_redis);
    CU_ASSERT_EQUAL(cfg.cache_max_bytes, 67108864);
    CU_ASSERT_EQUAL(cfg.cache_finality_depth, 64);
    CU_ASSERT_EQUAL(cfg.coalesce, 1);
    CU_ASSERT(cfg.hedge_quantile > 0.949 && cfg.hedge_quantile < 0.951);
    CU_ASSERT_EQUAL(cfg.hedge_budget_percent, 10);
    rp_config_free(&cfg);

    CU_ASSERT_FATAL(
        load_text(EP "subscriptions = { poll_interval_ms = 250; max_per_connection = 3;\n"
                     " max_total = 7; backfill_blocks = 16; };\n"
                     "fleet = { redis = \"127.0.0.1:6390\"; hosts = 2;\n"
                     " on_redis_down = \"leased_only\"; };\n"
                     "cache = { max_bytes = 0; finality_depth = 10; };\ncoalesce = false;\n"
                     "hedge = { quantile = 0.99; budget_percent = 0; };\n",
                  &cfg, err) == 0);
    CU_ASSERT_EQUAL(cfg.sub_poll_interval_ms, 250);
    CU_ASSERT_EQUAL(cfg.sub_max_per_connection, 3);
    CU_ASSERT_EQUAL(cfg.sub_max_total, 7);
    CU_ASSERT_EQUAL(cfg.sub_backfill_blocks, 16);
    CU_ASSERT_STRING_EQUAL(cfg.fleet_redis, "127.0.0.1:6390");
    CU_ASSERT_STRING_EQUAL(cfg.fleet_prefix, "rpcpool:rpcpool:");
    CU_ASSERT_EQUAL(cfg.fleet_hosts, 2);
    CU_ASSERT_EQUAL(cfg.fleet_on_down, RP_FLEET_LEASED_ONLY);
    CU_ASSERT_STRING_EQUAL(rp_fleet_down_name(cfg.fleet_on_down), "leased_only");
    CU_ASSERT_EQUAL(cfg.cache_max_bytes, 0);
    CU_ASSERT_EQUAL(cfg.cache_finality_depth, 10);
    CU_ASSERT_EQUAL(cfg.coalesce, 0);
    CU_ASSERT(cfg.hedge_quantile > 0.989 && cfg.hedge_quantile < 0.991);
    CU_ASSERT_EQUAL(cfg.hedge_budget_percent, 0);
    rp_config_free(&cfg);

    CU_ASSERT_FATAL(load_text(EP "fleet = { redis = \"/run/redis.sock\"; prefix = \"x:\"; };\n",
                              &cfg, err) == 0);
    CU_ASSERT_STRING_EQUAL(cfg.fleet_redis, "/run/redis.sock");
    CU_ASSERT_STRING_EQUAL(cfg.fleet_prefix, "x:");
    CU_ASSERT_EQUAL(cfg.fleet_on_down, RP_FLEET_FAIR_SHARE);
    rp_config_free(&cfg);

    static const struct err_case cases[] = {
        {EP "subscriptions = { poll_ms = 1; };\n", 2, "subscriptions.poll_ms", "unknown key"},
        {EP "subscriptions = { poll_interval_ms = 1; };\n", 2, "subscriptions.poll_interval_ms",
         "between 10 and"},
        {EP "fleet = { hosts = 2; };\n", 2, "fleet.redis", "is required"},
        {EP "fleet = { redis = \"localhost\"; };\n", 2, "fleet.redis", "host:port"},
        {EP "fleet = { redis = \"h:1\"; on_redis_down = \"open\"; };\n", 2, "fleet.on_redis_down",
         "\"fair_share\" or \"leased_only\""},
        {EP "fleet = { redis = \"h:1\"; hosts = 0; };\n", 2, "fleet.hosts", "between 1 and"},
        {EP "cache = { max_bytes = 100; };\n", 2, "cache.max_bytes", "at least 65536"},
        {EP "coalesce = 1;\n", 2, "coalesce", "true or false"},
        {EP "hedge = { quantile = 1.5; };\n", 2, "hedge.quantile", "below 1"},
        {EP "hedge = { quantile = 1; };\n", 2, "hedge.quantile", "like 0.95"},
        {EP "hedge = { budget_percent = 101; };\n", 2, "hedge.budget_percent", "between 0 and 100"},
    };
    RUN(cases);
}

int main(void)
{
    static const struct rp_test_case cases[] = {
        {"full config reads every key", test_full_config},
        {"minimal config defaults", test_defaults},
        {"attempt_timeout_ms follows request_timeout_ms", test_attempt_default},
        {"rate_limit inheritance", test_rate_limit_inheritance},
        {"default endpoint names", test_default_names},
        {"unknown keys at every level", test_unknown_keys},
        {"wrong types", test_wrong_types},
        {"out-of-range values", test_ranges},
        {"cross-key checks", test_cross_checks},
        {"malformed URLs", test_bad_urls},
        {"endpoint list errors", test_bad_endpoints},
        {"header errors", test_bad_headers},
        {"tls_ca_file", test_tls_ca_file},
        {"ws_url", test_ws_url},
        {"string value errors", test_bad_strings},
        {"syntax errors and files", test_syntax_and_files},
        {"URL redaction", test_redact},
        {"no_retry lookup", test_no_retry},
        {"secrets never in errors", test_secrets_never_shown},
        {"sample config", test_sample_config},
        {"enum names", test_enum_names},
        {"subscriptions, fleet, cache and hedge keys", test_wave2_keys},
        {NULL, NULL},
    };
    return rp_test_run("config", cases);
}
