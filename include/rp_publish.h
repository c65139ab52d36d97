/* rp_publish.h - the supervisor writes the configured endpoints into the
 * segment's endpoint table (at start and on every reload).
 *
 * Rows are keyed by rp_shm_url_key(URL). An endpoint that stays keeps its
 * row and its live state (breaker, bucket, health); a changed rate limit is
 * applied at once by rescaling the bucket. An endpoint that goes is
 * tombstoned (in_use 0, retired_gen set): processes of older generations
 * may still write to it, so it is reused, reset to a fresh state with its
 * stats cells cleared, only once every live process runs a generation at or
 * above retired_gen. An endpoint added again later gets a fresh row.
 *
 * The rewrite is a seqlock section: layout_seq is odd while rows and
 * `generation` change, so readers (rp_seqlock.h) never show one
 * generation's number with another's endpoint set or a torn name.
 */
#ifndef RP_PUBLISH_H
#define RP_PUBLISH_H

#include <stdint.h>

#include "rp_config.h"
#include "rp_shm.h"

/* Publish CFG as generation NEW_GEN. OLDEST_LIVE_GEN is the lowest
 * generation any live worker or prober still runs (UINT64_MAX when none
 * runs). Returns 0, or -1 with nothing changed when the free rows do not
 * suffice (ERR says how many are held back by draining processes). */
int rp_publish_endpoints(struct rp_shm_header *h, const struct rp_config *cfg, uint64_t new_gen,
                         uint64_t oldest_live_gen, char *err, size_t errlen);

#endif
