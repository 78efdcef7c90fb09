/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "lifeboat/state/watch-state.h"

#include "watch-internal.h"

/* lifeboat watch, the own buffer volume: flush requests, scans, the marker file and its tags. */

/* Pure decisions (unit tested). */
/*
 * The state the own volume should be in after a chunk scan: "ending" once a
 * spot notice, ASG Terminated or a signal was seen; "empty" when the scan
 * found no chunk file. A volume tagged flushed stays flushed while empty,
 * also before any notice (a restarted watch), and is dirty again as soon as
 * a chunk file shows up. NONE and UNKNOWN are kept: they have nothing to scan.
 */
enum lb_watch_own_state lb_watch_own_next(enum lb_watch_own_state cur, bool ending, bool past_deadline,
                                          bool empty);

/* Asks fluentd to flush its buffers, at most once a cycle; repeat: logged at debug level only. */
void watch_request_flush(struct watch *w, const char *why, bool repeat);
/* Identifies the own buffer volume while its state is UNKNOWN (retried every
 * LB_WATCH_IDENTIFY_RETRY_MS). */
void watch_own_identify(struct watch *w);
/* Scans the own buffer volume when there is something to decide, and tags it. */
void watch_own_check(struct watch *w);
