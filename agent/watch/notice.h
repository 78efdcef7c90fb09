/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <time.h>

#include "lifeboat/state/watch-state.h"

#include "watch-internal.h"

/* lifeboat watch, IMDS notices (spot, ASG lifecycle, rebalance) and the deadlines they set. */

/* Pure decisions (unit tested). */
/*
 * How long a flush may take from now, in ms. A spot notice: until its time
 * minus margin_ms, but never longer than timeout_ms (0 when that time is
 * already past). ASG Terminated and a signal: timeout_ms. A rebalance
 * recommendation has no deadline: UINT64_MAX.
 */
uint64_t lb_watch_flush_budget_ms(enum lb_watch_trigger t, time_t notice_time, uint64_t now_wall_ms,
                                  uint64_t timeout_ms, uint64_t margin_ms);

/*
 * How long a flush may take from now, in ms, when a termination lifecycle hook holds a scale-in:
 * timeout_ms (LIFEBOAT_LIFECYCLE_TIMEOUT) from since_wall_ms, the start of the wait, but never
 * past the hook's global timeout minus margin_ms. 0 when that time is already past;
 * since_wall_ms or global_timeout_s of 0: not known (now, no global limit).
 */
uint64_t lb_watch_lifecycle_budget_ms(uint64_t now_wall_ms, uint64_t since_wall_ms, uint64_t timeout_ms,
                                      uint64_t global_timeout_s, uint64_t margin_ms);

/* Records a notice in the state (the first LB_WATCH_MAX_NOTICES only). */
void watch_add_notice(struct watch *w, enum lb_watch_trigger t, const char *detail, time_t when);
/* A spot notice, ASG Terminated or a signal: drain the own buffer volume by the deadline.
 * what is logged; short_what names the flush request. */
void watch_begin_end(struct watch *w, enum lb_watch_trigger t, time_t notice_time, const char *what,
                     const char *short_what);
/* One poll of the three IMDS notices; a new one is acted on at once. */
void watch_poll_imds(struct watch *w);
/* Moves the deadline to budget_ms from now when that is earlier (a lifecycle hook that turned
 * out not to hold the instance, or whose global timeout came to be known). */
void watch_shorten_deadline(struct watch *w, uint64_t budget_ms);
/* When the lifecycle hook's wait began, in ms of the wall clock (0: no scale-in seen). */
uint64_t watch_hook_waiting_since_ms(const struct watch *w);
