/* rpcpool-example.c - a small program using librpcpool.
 *
 *   rpcpool-example SOCKET [CONTROL_SOCKET]
 *
 * Connects to rpcpoold's client socket, prints the chain id and the block
 * number, sends 10 eth_getBlockByNumber calls at once (pipelined) and
 * collects their answers, makes a batch, and prints the pool's stats when a
 * control socket is given. Exit status 0 when everything worked, 1 if not.
 *
 * Build: cc rpcpool-example.c $(pkg-config --cflags --libs rpcpool)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rpcpool/client.h>

#define TIMEOUT_MS 10000
#define PIPELINED  10

/* Call METHOD without params and print its quantity result as NAME. Returns
 * 0, or 1 after printing why not. */
static int print_quantity(rpcpool_t *p, const char *name, const char *method)
{
    struct rpcpool_response r;
    int rc = rpcpool_call(p, method, NULL, TIMEOUT_MS, &r);
    if (rc != RPCPOOL_OK) {
        fprintf(stderr, "%s: %s\n", method, rpcpool_error(p));
        return 1;
    }
    uint64_t v;
    if (r.is_error) {
        fprintf(stderr, "%s: error %" PRId64 ": %s\n", method, r.error_code, r.error_message);
        rc = 1;
    } else if (rpcpool_quantity(r.result_json, &v) != RPCPOOL_OK) {
        fprintf(stderr, "%s: unexpected result %s\n", method, r.result_json);
        rc = 1;
    } else {
        printf("%s: %" PRIu64 "\n", name, v);
    }
    rpcpool_response_free(&r);
    return rc;
}

/* Send PIPELINED calls before reading any answer, then wait for each by id
 * (answers may come in any order; the library keeps early ones). */
static int pipeline(rpcpool_t *p)
{
    uint64_t ids[PIPELINED];
    for (int i = 0; i < PIPELINED; i++) {
        char params[64];
        snprintf(params, sizeof params, "[\"0x%x\", false]", i);
        if (rpcpool_send(p, "eth_getBlockByNumber", params, &ids[i]) != RPCPOOL_OK) {
            fprintf(stderr, "send: %s\n", rpcpool_error(p));
            return 1;
        }
    }
    int answered = 0, errors = 0;
    for (int i = 0; i < PIPELINED; i++) {
        struct rpcpool_response r;
        if (rpcpool_wait(p, ids[i], TIMEOUT_MS, &r) != RPCPOOL_OK) {
            fprintf(stderr, "wait %" PRIu64 ": %s\n", ids[i], rpcpool_error(p));
            return 1;
        }
        answered++;
        errors += r.is_error;
        rpcpool_response_free(&r);
    }
    printf("pipelined: %d calls answered (%d errors)\n", answered, errors);
    return 0;
}

/* Ask for the chain id and the block number in one batch. */
static int batch(rpcpool_t *p)
{
    const char *const methods[] = {"eth_chainId", "eth_blockNumber"};
    struct rpcpool_response r[2];
    if (rpcpool_batch(p, 2, methods, NULL, TIMEOUT_MS, r) != RPCPOOL_OK) {
        fprintf(stderr, "batch: %s\n", rpcpool_error(p));
        return 1;
    }
    printf("batch: %s %s\n", r[0].is_error ? r[0].error_message : r[0].result_json,
           r[1].is_error ? r[1].error_message : r[1].result_json);
    rpcpool_response_free(&r[0]);
    rpcpool_response_free(&r[1]);
    return 0;
}

static int stats(const char *control)
{
    struct rpcpool_stats s;
    char err[256];
    if (rpcpool_stats(control, &s, err, sizeof err) != RPCPOOL_OK) {
        fprintf(stderr, "stats: %s\n", err);
        return 1;
    }
    printf("stats: pools=%" PRIu64 " healthy=%" PRIu64 " connections=%" PRIu64 " (active=%" PRIu64
           " idle=%" PRIu64 ") ok=%" PRIu64 " failed=%" PRIu64 " avg_latency_ms=%.3f\n",
           s.total_pools, s.healthy_pools, s.total_connections, s.active_connections,
           s.idle_connections, s.successful_requests, s.failed_requests, s.average_latency_ms);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || strcmp(argv[1], "-h") == 0) {
        fprintf(stderr, "usage: %s SOCKET [CONTROL_SOCKET]\n", argv[0]);
        return argc == 2 ? 0 : 1;
    }
    char err[256];
    rpcpool_t *p = rpcpool_connect(argv[1], err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int bad = print_quantity(p, "chain id", "eth_chainId");
    bad |= print_quantity(p, "block number", "eth_blockNumber");
    bad |= pipeline(p);
    bad |= batch(p);
    rpcpool_close(p);
    if (argc == 3)
        bad |= stats(argv[2]);
    return bad ? 1 : 0;
}
