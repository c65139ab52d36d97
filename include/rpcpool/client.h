/* rpcpool/client.h - librpcpool, the C client library of rpcpool (docs/interface.md
 * section 7): the C counterpart of the seed design's poolManager.execute()
 * and getStats().
 *
 *   #include <rpcpool/client.h>
 *   cc prog.c $(pkg-config --cflags --libs rpcpool)
 *
 * A connection (rpcpool_t) talks JSON-RPC 2.0 to rpcpoold's client socket
 * with IPC framing: requests are written one after another without waiting,
 * and every answer comes back as one JSON line carrying the request's id, in
 * any order. The library numbers the calls (ids 1, 2, 3, ... per
 * connection), matches answers to calls by id and keeps answers that arrive
 * before anyone asks for them.
 *
 * Two ways to use it, freely mixed on one connection:
 *
 *  - Blocking: rpcpool_call() (one call), rpcpool_batch() (a batch), or
 *    several rpcpool_send() followed by rpcpool_wait() for each id
 *    (pipelining: all calls are in flight at once).
 *
 *  - Non-blocking, from the caller's own event loop: rpcpool_send() queues,
 *    rpcpool_flush() writes what the socket takes, rpcpool_read() reads what
 *    is there, rpcpool_next_response() hands back finished answers. Watch
 *    rpcpool_fd() for the events rpcpool_poll_events() names.
 *
 * Results are handed back as JSON text (result_json), not decoded: a
 * JSON-RPC error object from the node or from rpcpool (docs/interface.md section
 * 3) is a normal answer with is_error set, not a failure of the call.
 *
 * Return values: functions returning int give RPCPOOL_OK (0) on success,
 * RPCPOOL_ERROR (-1) on failure (the reason is in rpcpool_error()), and
 * RPCPOOL_TIMEOUT (-2) when a deadline passed. After an I/O or protocol
 * failure (the server closed the connection, sent something that is not a
 * JSON-RPC answer, or a line longer than the limit) the connection is
 * failed for good: answers already received can still be collected, every
 * other operation fails with the same message; close it and connect again.
 *
 * Timeouts are in milliseconds; a negative timeout waits without bound,
 * 0 only looks at what is already there.
 *
 * An rpcpool_t is not thread-safe: use one per thread, or lock around it.
 * The library never raises SIGPIPE (it writes with MSG_NOSIGNAL).
 */
#ifndef RPCPOOL_CLIENT_H
#define RPCPOOL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RPCPOOL_OK      0
#define RPCPOOL_ERROR   (-1)
#define RPCPOOL_TIMEOUT (-2)

/* Longest answer line accepted by default (64 MiB); see
 * rpcpool_set_max_line_bytes(). */
#define RPCPOOL_DEFAULT_MAX_LINE_BYTES ((size_t)64 << 20)

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *rpcpool_version(void);

/* A connection to rpcpoold's client socket. Opaque. */
typedef struct rpcpool rpcpool_t;

/* One answer. Owned by the caller once handed back; release the strings
 * with rpcpool_response_free().
 *
 *  id             the call's id (0 for an answer whose id is null: a
 *                 request rpcpool could not read, see rpcpool_batch()).
 *  is_error       1 when the answer is a JSON-RPC error object, else 0.
 *  error_code     the error's code (is_error only), e.g. -32000 from the
 *                 node, -32002 "No upstream available" from rpcpool.
 *  error_message  the error's message, decoded from JSON to UTF-8
 *                 (is_error only; else NULL).
 *  result_json    the result as JSON text, e.g. "\"0x7a69\"" with its
 *                 quotes, "null", or an object (not is_error; else NULL).
 *  raw            the whole answer object as received, one line of JSON
 *                 without the newline (for a call of a batch: its element).
 *  error_data_json  the error's "data" member as JSON text, NULL when there
 *                 is none (rpcpool's -32603 says there what the attempts
 *                 met). */
struct rpcpool_response {
    uint64_t id;
    int is_error;
    int64_t error_code;
    char *error_message;
    char *result_json;
    char *raw;
    char *error_data_json;
};

/* Free the strings of RESP (not RESP itself) and zero it. NULL is ignored;
 * freeing a zeroed response is harmless. */
void rpcpool_response_free(struct rpcpool_response *resp);

/* Connect to the client socket at SOCKET_PATH (a UNIX socket path, e.g.
 * /run/rpcpool/NAME.ipc). Returns the connection, or NULL with a message in
 * ERR (ERRLEN bytes, may be 0). The socket is non-blocking and close-on-exec.
 */
rpcpool_t *rpcpool_connect(const char *socket_path, char *err, size_t errlen);

/* Close the connection and free it with every answer still held. Calls in
 * flight are abandoned (rpcpool still runs them). NULL is ignored. */
void rpcpool_close(rpcpool_t *p);

/* The message of the last failure on P ("" when none). Valid until the next
 * call on P. */
const char *rpcpool_error(const rpcpool_t *p);

/* Change the longest answer line accepted (default
 * RPCPOOL_DEFAULT_MAX_LINE_BYTES, at least 1024, at most 1 GiB). A longer
 * line fails the connection. Returns RPCPOOL_OK or RPCPOOL_ERROR. */
int rpcpool_set_max_line_bytes(rpcpool_t *p, size_t max_line_bytes);

/* ---- Non-blocking use, from the caller's event loop ---------------- */

/* The socket's file descriptor, for poll/epoll/select. Do not read, write
 * or close it yourself. */
int rpcpool_fd(const rpcpool_t *p);

/* The poll(2) events to wait for: POLLIN, plus POLLOUT while queued bytes
 * wait to be written. */
short rpcpool_poll_events(const rpcpool_t *p);

/* Queue a call of METHOD with PARAMS_JSON (a JSON array or object, e.g.
 * "[\"latest\", false]"; NULL means "[]") and store its id in *ID (may be
 * NULL). Nothing is written until rpcpool_flush() (or a blocking function).
 * RPCPOOL_ERROR for an empty method, params that are not one JSON array or
 * object, or a failed connection. */
int rpcpool_send(rpcpool_t *p, const char *method, const char *params_json, uint64_t *id);

/* Queue a batch of N calls (N >= 1) as one JSON array: call i is METHODS[i]
 * with PARAMS[i] (PARAMS or PARAMS[i] NULL means "[]"). Their ids are stored
 * in IDS[0..N-1] (consecutive numbers); the answers come back one by one
 * like those of rpcpool_send(). Nothing is queued when an argument is bad. */
int rpcpool_send_batch(rpcpool_t *p, size_t n, const char *const methods[],
                       const char *const params[], uint64_t ids[]);

/* Write as much of the queued bytes as the socket takes now, without
 * blocking. Returns the number of bytes still queued (0 when all were
 * written), or RPCPOOL_ERROR. */
long rpcpool_flush(rpcpool_t *p);

/* Read what the socket has now, without blocking, and parse every complete
 * answer line. Returns the number of answers that became available (>= 0),
 * or RPCPOOL_ERROR when the connection failed or the server closed it
 * (answers parsed before are still available from
 * rpcpool_next_response()). */
int rpcpool_read(rpcpool_t *p);

/* Hand back the oldest answer received and not collected yet (in arrival
 * order, whatever its id) in *RESP. Returns 1 when one was handed back,
 * 0 when there is none now. */
int rpcpool_next_response(rpcpool_t *p, struct rpcpool_response *resp);

/* Calls sent (queued) whose answer has not arrived yet. */
size_t rpcpool_pending(const rpcpool_t *p);

/* ---- Blocking use --------------------------------------------------- */

/* Wait up to TIMEOUT_MS for the answer to call ID and hand it back in
 * *RESP. Answers to other calls that arrive meanwhile are kept for their
 * own rpcpool_wait() or rpcpool_next_response(). Returns RPCPOOL_OK,
 * RPCPOOL_TIMEOUT (the answer may still come: wait again), or RPCPOOL_ERROR
 * (ID was never sent, or the connection failed). */
int rpcpool_wait(rpcpool_t *p, uint64_t id, int timeout_ms, struct rpcpool_response *resp);

/* One call, as poolManager.execute(): send METHOD with PARAMS_JSON (NULL
 * means "[]") and wait up to TIMEOUT_MS for its answer in *RESP. A JSON-RPC
 * error answer is RPCPOOL_OK with resp->is_error set. On RPCPOOL_TIMEOUT the
 * call is abandoned: its late answer is dropped when it arrives. */
int rpcpool_call(rpcpool_t *p, const char *method, const char *params_json, int timeout_ms,
                 struct rpcpool_response *resp);

/* One batch of N calls, sent as one JSON array, waiting up to TIMEOUT_MS
 * for all the answers: RESPS[i] (caller's array of N) receives the answer
 * to METHODS[i]/PARAMS[i]. RPCPOOL_OK when every call was answered (each
 * with its result or error). When rpcpool rejects the batch as a whole
 * (e.g. more calls than its max_batch: one error with id null), returns
 * RPCPOOL_ERROR with that error in rpcpool_error(). On RPCPOOL_ERROR or
 * RPCPOOL_TIMEOUT, RESPS holds nothing to free and unanswered calls are
 * abandoned. */
int rpcpool_batch(rpcpool_t *p, size_t n, const char *const methods[], const char *const params[],
                  int timeout_ms, struct rpcpool_response resps[]);

/* ---- Helpers --------------------------------------------------------- */

/* Decode JSON text holding a JSON-RPC quantity ("\"0x1b4\"", as in
 * result_json of eth_blockNumber or eth_chainId) into *OUT. Returns
 * RPCPOOL_OK, or RPCPOOL_ERROR when it is not a quoted hex number of at
 * most 64 bits. */
int rpcpool_quantity(const char *json, uint64_t *out);

/* ---- Stats from the control socket ---------------------------------- */

/* The seed design's PoolStats, totalled over the endpoints, from the
 * control socket's `stats` command (docs/interface.md section 4). JSON names in
 * brackets. */
struct rpcpool_stats {
    uint64_t total_pools;         /* [totalPools] endpoints configured */
    uint64_t healthy_pools;       /* [healthyPools] endpoints up, breaker not open */
    uint64_t total_connections;   /* [totalConnections] upstream connections open */
    uint64_t active_connections;  /* [activeConnections] of which busy */
    uint64_t idle_connections;    /* [idleConnections] of which idle */
    uint64_t failed_requests;     /* [failedRequests] upstream attempts failed */
    uint64_t successful_requests; /* [successfulRequests] upstream attempts answered */
    double average_latency_ms;    /* [averageLatency] mean upstream latency */
};

/* Connect to the control socket CONTROL_SOCKET (server.control_socket; it
 * admits only its owner's uid and root), send `stats`, and fill *OUT.
 * Gives up after 5000 ms. Returns RPCPOOL_OK, or RPCPOOL_ERROR /
 * RPCPOOL_TIMEOUT with a message in ERR (ERRLEN bytes, may be 0), including
 * the supervisor's own {"ok":false,"error":...}. */
int rpcpool_stats(const char *control_socket, struct rpcpool_stats *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
