/* rp_fleet_view.h - the fleet state as operators see it: copied from the
 * segment's fleet region (checked against the mapped size first) and
 * rendered into `status`, rpcpoolstat (table and -j) and the metrics.
 */
#ifndef RP_FLEET_VIEW_H
#define RP_FLEET_VIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rp_buf.h"

struct rp_fleet_snapshot {
    int configured; /* a fleet agent runs for this pool */
    int connected;
    uint32_t mode;    /* enum rp_fleet_mode */
    uint32_t hosts;   /* fleet.hosts */
    uint32_t on_down; /* enum rp_fleet_down */
    uint64_t tokens_leased, tokens_spent, tokens_denied, tokens_balance;
    uint64_t leases, verdicts_received, verdicts_sent, connects;
    uint64_t since_age_ms; /* since the last connect or disconnect */
};

/* Copy the fleet region of the segment BASE (SIZE bytes mapped, NOW_MS its
 * clock) into OUT; all zero when the region is missing or out of bounds. */
void rp_fleet_snap(const void *base, size_t size, uint64_t now_ms, struct rp_fleet_snapshot *out);

struct rp_snapshot;

/* In fleet mode, what each endpoint of OUT (a snapshot of BASE, SIZE bytes)
 * can spend now is its leased tokens, plus under fair_share its own bucket
 * at the fair share: its `tokens` are set to that (nothing changes without
 * a fleet). */
void rp_fleet_snap_tokens(const void *base, size_t size, struct rp_snapshot *out);

/* Names of a mode and of a policy. */
const char *rp_fleet_mode_name(uint32_t mode);
const char *rp_fleet_policy_name(uint32_t on_down);

/* Append `,"fleet":{...}` to a status object (nothing without a fleet). */
int rp_fleet_status_append(struct rp_buf *b, const struct rp_fleet_snapshot *f);

/* The fleet line of rpcpoolstat's table (nothing without a fleet). */
void rp_fleet_table(FILE *out, const struct rp_fleet_snapshot *f);

#endif
