/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

#include "lifeboat/state/watch-state.h"

#include "watch-internal.h"

/* lifeboat watch, the recovered volumes of recovered.json: settled, then released. */

/* Pure decisions (unit tested). */
/*
 * The next state of a recovered volume that is mounted and was just scanned
 * (chunk_files found), with *empty_since_ms (CLOCK_MONOTONIC ms, 0 = not
 * empty) updated. Returns DRAINING, SETTLING, or TAGGED when it is time to
 * release it (empty for at least settle_ms). TAGGED, RELEASED and MISSING
 * are not decided here.
 */
enum lb_watch_rec_state lb_watch_rec_next(uint64_t chunk_files, uint64_t now_ms, uint64_t settle_ms,
                                          uint64_t *empty_since_ms);

/* Follows the volumes of recovered.json and releases each once it stays empty. */
void watch_recovered_check(struct watch *w);
