/* rp_status.h - the one renderer of a struct rp_snapshot (rp_shm_view.h),
 * shared by the supervisor's control socket (`status`), rpcpoolstat -j and
 * rpcpoolstat's table, so that every view of the pool agrees.
 *
 * JSON shapes are docs/interface.md sections 4 and 5. The renderers are pure:
 * they read only the snapshot and the arguments (no clock, no shm).
 */
#ifndef RP_STATUS_H
#define RP_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rp_buf.h"
#include "rp_shm_view.h"

/* Append endpoint E as the section 4 object:
 * {"id","name","url","weight","state","breaker","tokens","inflight",
 *  "connections":{"active","idle"},"requests":{"ok","failed","retried"},
 *  "latency_ms":{"avg","p50","p99"},"head_block","lag"}.
 * Returns 0, or -1 when B ran out of memory. */
int rp_status_append_endpoint(struct rp_buf *b, const struct rp_ep_snapshot *e);

/* The same object into OUT (OUTLEN bytes, always NUL-terminated when
 * OUTLEN > 0). Returns the length of the whole object, like snprintf: a
 * value >= OUTLEN means it was cut. */
size_t rp_status_endpoint_json(char *out, size_t outlen, const struct rp_ep_snapshot *e);

/* Append worker W: {"pid","state","requests","restarts","slot","kind",
 * "heartbeat_age_ms","clients","generation"}. */
int rp_status_append_worker(struct rp_buf *b, const struct rp_worker_snapshot *w);

/* Append the JSON arrays of every endpoint / worker of S. */
int rp_status_append_endpoints(struct rp_buf *b, const struct rp_snapshot *s);
int rp_status_append_workers(struct rp_buf *b, const struct rp_snapshot *s);

/* Append the rpcpoolstat -j object (section 5): {"name","version",
 * "generation","supervisor_pid","supervisor_alive","workers":[...],
 * "endpoints":[...]} plus "best_head_block" and "client_requests":{"ok",
 * "error"}. "version" is the segment's layout version, "MAJOR.MINOR". */
int rp_status_json(struct rp_buf *b, const struct rp_snapshot *s);

/* Append the control socket's `status` reply (section 4): {"ok":true,
 * "name","pid","uptime_s","generation","workers":[...],"endpoints":[...]},
 * the uptime taken from the supervisor's birth time and NOW_REALTIME_NS
 * (CLOCK_REALTIME). */
int rp_status_control_json(struct rp_buf *b, const struct rp_snapshot *s, uint64_t now_realtime_ns);

/* Whole seconds since the supervisor's birth at NOW_REALTIME_NS (0 when the
 * birth time is unknown or in the future). */
uint64_t rp_status_uptime_s(const struct rp_snapshot *s, uint64_t now_realtime_ns);

/* "worker" / "prober" / "unknown" for enum rp_worker_kind. */
const char *rp_worker_kind_name(uint32_t kind);

/* Print S as human-readable tables: one line per endpoint (name, redacted
 * URL, state, breaker, tokens, in flight, connections active/idle,
 * ok/failed/retried, req/s, p50/p99, head, lag) and one per worker slot
 * (slot, pid, kind, state, heartbeat age, requests, restarts). req/s is
 * computed against PREV (may be NULL: shown as "-") taken INTERVAL_S
 * seconds earlier; an endpoint counts as the same only with the same id,
 * name and URL. Control and non-ASCII bytes from the segment are shown as
 * '?'. */
void rp_status_table(FILE *f, const struct rp_snapshot *s, const struct rp_snapshot *prev,
                     double interval_s);

#endif
