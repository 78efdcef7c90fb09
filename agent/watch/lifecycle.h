/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "lifeboat/state/watch-state.h"

#include "watch-internal.h"

/*
 * lifeboat watch, the Auto Scaling termination lifecycle hook (LIFEBOAT_LIFECYCLE_HOOK): while the
 * own buffer volume drains, the instance waits in Terminating:Wait; heartbeats keep it there, and
 * CompleteLifecycleAction CONTINUE lets it go once the volume is tagged flushed, or at the deadline.
 * Never ABANDON: that would skip the group's other hooks.
 */

/* Pure decisions (unit tested). */
enum lb_watch_hook_step {
        LB_WATCH_HOOK_WAIT,
        LB_WATCH_HOOK_HEARTBEAT,
        LB_WATCH_HOOK_COMPLETE,
};
/*
 * What to do now for a held instance. COMPLETE once the own volume is drained (FLUSHED, or NONE:
 * nothing to drain), once limit_ms (the scale-in's deadline, or a spot notice's) is reached,
 * and, unless watch is stopping on a signal (then only a drained volume or the limit lets the
 * instance go), once the volume is UNDRAINED. HEARTBEAT when the wait ends (expires_ms; 0 = no
 * heartbeat answered yet) within half the heartbeat timeout and not well after the limit (the
 * completion comes first then). WAIT otherwise. All times on one clock.
 */
enum lb_watch_hook_step lb_watch_hook_next_step(enum lb_watch_own_state own, bool stopping, uint64_t now_ms,
                                                uint64_t limit_ms, uint64_t expires_ms,
                                                uint64_t heartbeat_timeout_ms);

/* Fills the hook's state from the settings (nothing without LIFEBOAT_LIFECYCLE_HOOK), and carries
 * over the wait a previous watch of this instance began (its watch.json: a restart mid-scale-in). */
void watch_lifecycle_init(struct watch *w);
/* Once a cycle, after the own volume was checked: finds the group and the hook when due, and while
 * the instance is held sends the heartbeats and the completion. */
void watch_lifecycle_tick(struct watch *w);
/* watch stops: says what becomes of a hook it still holds. */
void watch_lifecycle_stop(struct watch *w);
