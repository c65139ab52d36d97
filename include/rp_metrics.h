/* rp_metrics.h - the Prometheus text exposition (format 0.0.4) of a pool
 * snapshot (docs/interface.md section 6), served by the control socket's
 * `metrics` command and the HTTP front's GET /metrics.
 *
 * The renderer is pure: it reads only the snapshot (rp_shm_view.h), never
 * the clock or shared memory, so every caller gets the same text for the
 * same snapshot and tests can check it exactly.
 */
#ifndef RP_METRICS_H
#define RP_METRICS_H

#include "rp_buf.h"
#include "rp_shm_view.h"

/* Content-Type of the text this module writes (for HTTP answers). */
#define RP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Append the exposition of S to OUT: every family with its # HELP and
 * # TYPE lines, then its samples, one family after another:
 *   rpcpool_requests_total{endpoint,outcome}        counter (ok|failed|retried)
 *   rpcpool_client_requests_total{result}           counter (ok|error)
 *   rpcpool_request_duration_seconds{endpoint}      histogram (_bucket/_sum/_count)
 *   rpcpool_endpoint_info{endpoint,id,url}          gauge, always 1 (redacted URL)
 *   rpcpool_endpoint_up{endpoint}                   gauge 1 when state is up
 *   rpcpool_breaker_state{endpoint}                 gauge 0 closed, 1 open, 2 half-open
 *   rpcpool_ratelimit_tokens{endpoint}              gauge
 *   rpcpool_upstream_connections{endpoint,state}    gauge (active|idle)
 *   rpcpool_endpoint_inflight{endpoint}             gauge
 *   rpcpool_endpoint_head_block{endpoint}           gauge
 *   rpcpool_head_feed_connected{endpoint}           gauge, 0/1 (ws_url feed)
 *   rpcpool_endpoint_lag_blocks{endpoint}           gauge
 *   rpcpool_worker_restarts_total                   counter
 *   rpcpool_workers{state}                          gauge (starting|running|draining|dead)
 *   rpcpool_generation                              gauge
 * The endpoint label is the endpoint's name (its id when the name is empty,
 * "name#id" when two rows share a name, so no two series collide). Label
 * values are escaped as the format says and invalid UTF-8 becomes '?'.
 * Returns 0, or -1 when OUT ran out of memory. */
int rp_metrics_render(struct rp_buf *out, const struct rp_snapshot *s);

#endif
