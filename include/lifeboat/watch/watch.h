/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

struct lb_context;

/*
 * lifeboat watch: the daemon half. It polls IMDS for the end of this
 * instance (spot instance-action, ASG target lifecycle state Terminated,
 * SIGTERM) and then has fluentd flush, confirms on disk that no chunk file is
 * left on the own buffer volume, writes a marker file and tags the volume
 * flushed; a chunk that shows up again turns the tag back to dirty at once.
 * A rebalance recommendation only asks for a flush. Independently it drains
 * the volumes boot recovered (recovered.json): once one has held no chunk
 * file for LIFEBOAT_SETTLE it is tagged flushed, its fluentd snippet removed,
 * unmounted, detached and dropped from the manifest.
 *
 * The logic lives in agent/watch/; agent/cli/cmd-watch.c parses the options.
 * Every change of the state is written atomically to LIFEBOAT_RUN_DIR/watch.json
 * (lifeboat/state/watch-state.h), which "lifeboat status" reads.
 */

/* The marker written on the drained own buffer volume (JSON: time, instance, volume).
 * Its name must not match LIFEBOAT_CHUNK_PATTERN: watch refuses to start when it does. */
#define LB_WATCH_MARKER ".lifeboat-flushed"
/* While draining, fluentd is asked to flush again this often (until the deadline). */
#define LB_WATCH_FLUSH_REPEAT_MS 5000u
/* Looking the own volume up again after a failure (EC2 unreachable, not mounted yet). */
#define LB_WATCH_IDENTIFY_RETRY_MS 10000u

/* ---- running it ---- */

struct lb_watch_options {
        bool once;                      /* one check cycle, then return */
};

/*
 * Runs watch until SIGTERM/SIGINT (ctx->interrupted), or one cycle with
 * once. Returns 0 when the own buffer volume ended drained and tagged
 * flushed (or there is none, or with once nothing went wrong), 1 when it
 * ends still dirty (with once: a deadline passed undrained), or a negative
 * errno: -EINVAL for bad settings, -EBUSY when another watch runs, and what
 * lb_aws_open() returned when AWS is unreachable at start.
 */
int lb_watch_run(struct lb_context *ctx, const struct lb_watch_options *opts);
