/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: the Auto Scaling termination lifecycle hook (LIFEBOAT_LIFECYCLE_HOOK). A spot
 * interruption gives two minutes; a scale-in held by a termination hook waits in Terminating:Wait
 * until the hook is completed, its heartbeat timeout runs out, or its global timeout. So when IMDS
 * says Terminated, watch drains with the deadline of LIFEBOAT_LIFECYCLE_TIMEOUT (notice.c), keeps
 * the wait going with RecordLifecycleActionHeartbeat, and calls CompleteLifecycleAction CONTINUE
 * right after the own volume is tagged flushed, or at the deadline with the volume left dirty.
 *
 * The group comes from the instance's tags in IMDS (aws:autoscaling:groupName, when instance
 * metadata tags are on), else from DescribeAutoScalingInstances; the hook's timeouts from
 * DescribeLifecycleHooks. Both are looked up at start (again later after a failure), and at a
 * scale-in at the latest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/watch-state.h"
#include "watch-internal.h"
#include "lifecycle.h"
#include "notice.h"

#define TAG_GROUP "aws:autoscaling:groupName"
/* Before a scale-in, a failed lookup is tried again after a minute, then less and less often. */
#define RESOLVE_RETRY_MS (60u * 1000u)
#define RESOLVE_RETRY_MAX_MS (15u * 60u * 1000u)
/* During a scale-in, after a failed call: the next one not before this (each may take seconds). */
#define CALL_RETRY_MS 5000u

enum lb_watch_hook_step lb_watch_hook_next_step(enum lb_watch_own_state own, bool stopping, uint64_t now_ms,
                                                uint64_t limit_ms, uint64_t expires_ms,
                                                uint64_t heartbeat_timeout_ms) {
        if (own == LB_WATCH_OWN_FLUSHED || own == LB_WATCH_OWN_NONE)
                return LB_WATCH_HOOK_COMPLETE;
        /* The limit holds whatever happens: past it the scale-in goes on, drained or not. */
        if (now_ms >= limit_ms)
                return LB_WATCH_HOOK_COMPLETE;
        /* Before it, a stop lets the instance go only drained: the system is going down anyway,
         * or watch is restarted and the next one takes the wait over. */
        if (!stopping && own == LB_WATCH_OWN_UNDRAINED)
                return LB_WATCH_HOOK_COMPLETE;
        if (expires_ms == 0)
                return LB_WATCH_HOOK_HEARTBEAT;         /* not confirmed yet: the first one says whether it holds */
        uint64_t lead = heartbeat_timeout_ms / 2;
        /* The wait outlives the limit by more than a late poll: the completion comes first. */
        if (expires_ms > limit_ms && expires_ms - limit_ms > lead)
                return LB_WATCH_HOOK_WAIT;
        return now_ms + lead >= expires_ms ? LB_WATCH_HOOK_HEARTBEAT : LB_WATCH_HOOK_WAIT;
}

static uint64_t wall_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* ---- problems ---- */

/* A lookup or call failed: the reason goes into the state, the log hears of it once an episode. */
_printf_(2, 3) static void hook_problem(struct watch *w, const char *fmt, ...) {
        struct lb_watch_hook *h = &w->st.hook;
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(h->reason, sizeof h->reason, fmt, ap);
        va_end(ap);
        if (!w->hook.failing)
                lb_warn(w->ctx, "lifecycle hook %s: %s", h->name, h->reason);
        w->hook.failing = true;
}

static void hook_ok(struct watch *w) {
        if (w->hook.failing)
                lb_info(w->ctx, "lifecycle hook %s: Auto Scaling answers again", w->st.hook.name);
        w->hook.failing = false;
        w->st.hook.reason[0] = '\0';
}

static const char *last_error(const struct watch *w, char *buf, size_t size) {
        return lb_autoscaling_last_error_text(w->aws.autoscaling, buf, size);
}

/* ---- the group and the hook ---- */

static int find_group(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        char group[LB_ASG_NAME_MAX + 1] = "", err[600];
        const char *source = "instance metadata tags";

        int r = lb_imds_instance_tag(w->aws.imds, TAG_GROUP, group, sizeof group);
        if (r < 0 || !lb_asg_name_valid(group)) {
                if (r < 0)
                        lb_debug(w->ctx, "IMDS tag %s: %s", TAG_GROUP, lb_imds_strerror(r));
                struct lb_asg_instance inst;
                r = lb_autoscaling_describe_instance(w->aws.autoscaling, w->self, &inst);
                if (r == -ENOENT) {
                        w->hook.no_group = true;
                        hook_problem(w, "instance %s is in no Auto Scaling group", w->self);
                        return r;
                }
                if (r < 0) {
                        hook_problem(w, "cannot find the Auto Scaling group (DescribeAutoScalingInstances: %s)",
                                     last_error(w, err, sizeof err));
                        return r;
                }
                (void) lb_strscpy(group, sizeof group, inst.group);
                source = "DescribeAutoScalingInstances";
        }
        (void) lb_strscpy(h->group, sizeof h->group, group);
        w->hook.group_known = true;
        w->hook.no_group = false;
        lb_info(w->ctx, "Auto Scaling group %s (from %s)", h->group, source);
        return 0;
}

static void adopt_hook(struct watch *w, const struct lb_lifecycle_hook *lh) {
        struct lb_watch_hook *h = &w->st.hook;
        h->heartbeat_timeout_s = lh->heartbeat_timeout_s;
        h->global_timeout_s = lh->global_timeout_s;
        (void) lb_strscpy(h->default_result, sizeof h->default_result, lh->default_result);
        if (lh->heartbeat_timeout_s > 0)
                w->hook.heartbeat_timeout_ms = lh->heartbeat_timeout_s * 1000u;
        lb_info(w->ctx, "lifecycle hook %s of Auto Scaling group %s: %s, heartbeat timeout %" PRIu64
                        " s, global timeout %" PRIu64 " s, default result %s",
                h->name, h->group, lh->transition, lh->heartbeat_timeout_s, lh->global_timeout_s,
                isempty(lh->default_result) ? "?" : lh->default_result);
        if (!streq(lh->transition, LB_LIFECYCLE_TERMINATING))
                lb_warn(w->ctx, "lifecycle hook %s is not a termination hook (%s): it never holds a scale-in", h->name,
                        lh->transition);
        if (streq(lh->default_result, "ABANDON"))
                lb_warn(w->ctx, "lifecycle hook %s has DefaultResult ABANDON: if lifeboat cannot complete the action, "
                                "its timeout abandons it and skips the group's other hooks (ECS managed draining's); "
                                "use DefaultResult CONTINUE",
                        h->name);
}

static int describe_hook(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        struct lb_lifecycle_hook lh;
        char err[600];
        int r = lb_autoscaling_describe_lifecycle_hook(w->aws.autoscaling, h->group, h->name, &lh);
        if (r == -ENOENT) {
                /* Nothing to wait for: at a scale-in the first heartbeat finds no action either. */
                w->hook.described = true;
                hook_problem(w, "Auto Scaling group %s has no lifecycle hook %s: nothing holds a scale-in", h->group,
                             h->name);
                return r;
        }
        if (r < 0) {
                /* Not allowed to read it: asking again changes nothing. */
                w->hook.described = r == -EACCES;
                hook_problem(w, "cannot read the hook (DescribeLifecycleHooks: %s); assuming the shortest heartbeat "
                                "timeout, %u s",
                             last_error(w, err, sizeof err), LB_LIFECYCLE_HEARTBEAT_MIN_S);
                return r;
        }
        w->hook.described = true;
        adopt_hook(w, &lh);
        /* A scale-in already under way: the global timeout may end the wait before our deadline. */
        if (h->waiting_since > 0 && !w->signalled && h->state == LB_WATCH_HOOK_HOLDING)
                watch_shorten_deadline(w, lb_watch_lifecycle_budget_ms(wall_ms(), watch_hook_waiting_since_ms(w),
                                                                       w->s->lifecycle_timeout_ms,
                                                                       h->global_timeout_s, w->s->flush_margin_ms));
        return 0;
}

/* The group, then the hook. Returns < 0 when either is still missing. */
static int resolve(struct watch *w) {
        int r = lb_aws_open_autoscaling(w->ctx, &w->aws);
        if (r < 0) {
                hook_problem(w, "no Auto Scaling client: %s", strerror(-r));
                return r;
        }
        if (!w->hook.group_known) {
                r = find_group(w);
                if (r < 0)
                        return r;
        }
        if (!w->hook.described) {
                r = describe_hook(w);
                if (r < 0)
                        return r;
        }
        hook_ok(w);
        w->hook.resolve_backoff_ms = 0;
        return 0;
}

static void retry_later(struct watch *w, bool scale_in) {
        struct hook_rt *rt = &w->hook;
        if (scale_in)
                rt->resolve_backoff_ms = CALL_RETRY_MS;
        else
                rt->resolve_backoff_ms = rt->resolve_backoff_ms < RESOLVE_RETRY_MS
                                                 ? RESOLVE_RETRY_MS
                                                 : MIN(2 * rt->resolve_backoff_ms, (uint64_t) RESOLVE_RETRY_MAX_MS);
        rt->next_resolve_ms = lb_now_ms() + rt->resolve_backoff_ms;
}

/* ---- holding the instance ---- */

/* No action waits for this instance (any more): the hook timed out, somebody else completed it,
 * or it does not hold this scale-in. The drain goes on as for a scale-in without a hook. */
static void hook_gone(struct watch *w, const char *action, const char *why) {
        struct lb_watch_hook *h = &w->st.hook;
        h->state = LB_WATCH_HOOK_GONE;
        hook_ok(w);
        lb_notice(w->ctx, "lifecycle hook %s of Auto Scaling group %s: %s found no lifecycle action waiting for this "
                          "instance (%s); draining on without it",
                  h->name, h->group, action, why);
        if (w->signalled)
                return;         /* the stop's own budget stands */
        uint64_t start = watch_hook_waiting_since_ms(w), now = wall_ms();
        uint64_t elapsed = now > start ? now - start : 0;
        watch_shorten_deadline(w, w->s->flush_timeout_ms > elapsed ? w->s->flush_timeout_ms - elapsed : 0);
}

static void call_failed(struct watch *w, const char *action) {
        char err[600];
        hook_problem(w, "%s failed: %s; trying again", action, last_error(w, err, sizeof err));
        w->hook.next_call_ms = lb_now_ms() + CALL_RETRY_MS;
}

static void heartbeat(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        struct hook_rt *rt = &w->hook;
        /* Auto Scaling restarts the timeout when it takes the call, which may be a slow attempt
         * (or a retried one) before the answer comes back: count from before sending. */
        uint64_t sent = lb_now_ms();
        int r = lb_autoscaling_record_heartbeat(w->aws.autoscaling, h->group, h->name, w->self);
        if (r == -ENOENT) {
                hook_gone(w, "RecordLifecycleActionHeartbeat", "the hook timed out, or someone else completed it");
                return;
        }
        if (r < 0) {
                call_failed(w, "RecordLifecycleActionHeartbeat");
                return;
        }
        hook_ok(w);
        bool first = rt->expires_ms == 0;
        uint64_t now = lb_now_ms();
        rt->expires_ms = sent + rt->heartbeat_timeout_ms;
        h->heartbeats++;
        h->last_heartbeat = time(NULL);
        if (first)
                lb_notice(w->ctx, "holding the scale-in: lifecycle hook %s of Auto Scaling group %s keeps this instance "
                                  "in Terminating:Wait until the own buffer volume is drained, %.0f s at most "
                                  "(heartbeat every %.0f s)",
                          h->name, h->group,
                          rt->limit_ms > now ? (double) (rt->limit_ms - now) / 1000.0 : 0.0,
                          (double) (rt->heartbeat_timeout_ms / 2) / 1000.0);
        else
                lb_debug(w->ctx, "lifecycle hook %s: heartbeat %u, the wait now ends in %.0f s", h->name, h->heartbeats,
                         (double) rt->heartbeat_timeout_ms / 1000.0);
}

static void complete(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        const struct lb_watch_own *o = &w->st.own;
        bool drained = o->state == LB_WATCH_OWN_FLUSHED || o->state == LB_WATCH_OWN_NONE;
        int r = lb_autoscaling_complete_lifecycle_action(w->aws.autoscaling, h->group, h->name, w->self,
                                                         LB_LIFECYCLE_CONTINUE);
        if (r == -ENOENT) {
                /* The call is retried on a timeout: the attempt whose answer was lost may be the
                 * one that completed it. */
                hook_gone(w, "CompleteLifecycleAction",
                          "an earlier attempt of this call whose answer was lost completed it, the hook timed out, "
                          "or someone else completed it");
                return;
        }
        if (r < 0) {
                call_failed(w, "CompleteLifecycleAction");
                return;
        }
        hook_ok(w);
        h->state = LB_WATCH_HOOK_COMPLETED;
        h->completed_at = time(NULL);
        (void) lb_strscpy(h->completed_because, sizeof h->completed_because, drained ? "drained" : "deadline");
        long held = h->waiting_since > 0 ? (long) (h->completed_at - h->waiting_since) : 0;
        if (o->state == LB_WATCH_OWN_NONE)
                lb_notice(w->ctx, "no own buffer volume to drain: completed lifecycle hook %s (CONTINUE)", h->name);
        else if (drained)
                lb_notice(w->ctx, "own buffer volume %s is drained and tagged flushed: completed lifecycle hook %s "
                                  "(CONTINUE) after %ld s and %u heartbeat(s); the scale-in goes on",
                          o->volume_id, h->name, held, h->heartbeats);
        else
                lb_warn(w->ctx, "the scale-in's deadline passed: completed lifecycle hook %s (CONTINUE) after %ld s with "
                                "own buffer volume %s NOT drained (%" PRIu64 " chunk file(s) left); it stays dirty and "
                                "the next boot recovers it",
                        h->name, held, isempty(o->volume_id) ? "?" : o->volume_id, o->chunk_files);
}

static void hold(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        struct hook_rt *rt = &w->hook;
        if (h->state == LB_WATCH_HOOK_IDLE || h->state == LB_WATCH_HOOK_LEFT)
                h->state = LB_WATCH_HOOK_HOLDING;
        switch (lb_watch_hook_next_step(w->st.own.state, w->signalled, lb_now_ms(), rt->limit_ms, rt->expires_ms,
                                        rt->heartbeat_timeout_ms)) {
        case LB_WATCH_HOOK_HEARTBEAT:
                heartbeat(w);
                break;
        case LB_WATCH_HOOK_COMPLETE:
                complete(w);
                break;
        case LB_WATCH_HOOK_WAIT:
        default:
                break;
        }
}

/* ---- the module's entry points ---- */

static bool scale_in(const struct watch *w) {
        return w->st.hook.waiting_since > 0 && w->asg_known && streq(w->asg_state, "Terminated");
}

void watch_lifecycle_tick(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        struct hook_rt *rt = &w->hook;
        if (!w->st.have_hook || h->state == LB_WATCH_HOOK_COMPLETED || h->state == LB_WATCH_HOOK_GONE)
                return;
        bool ending = scale_in(w);
        uint64_t now = lb_now_ms();
        /* A scale-in does not wait out the long pauses between lookups before it. */
        bool due = now >= rt->next_resolve_ms || (ending && rt->resolve_backoff_ms > CALL_RETRY_MS);
        if (!(rt->group_known && rt->described) && !(rt->no_group && !ending) && due && resolve(w) < 0)
                retry_later(w, ending);
        if (ending && rt->group_known && now >= rt->next_call_ms)
                hold(w);
}

/* A restarted watch (an upgrade, a crash) takes over the wait its predecessor began. */
static void carry_over(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        _cleanup_watch_state_ struct lb_watch_state prev = { 0 };
        if (lb_watch_state_load(w->s->run_dir, &prev) < 0)
                return;
        if (!prev.have_hook || prev.hook.waiting_since <= 0 || !streq(prev.instance_id, w->self) ||
            !streq(prev.hook.name, h->name))
                return;
        h->waiting_since = prev.hook.waiting_since;
        h->heartbeats = prev.hook.heartbeats;
        h->last_heartbeat = prev.hook.last_heartbeat;
        if (prev.hook.state == LB_WATCH_HOOK_COMPLETED || prev.hook.state == LB_WATCH_HOOK_GONE) {
                h->state = prev.hook.state;
                h->completed_at = prev.hook.completed_at;
                (void) lb_strscpy(h->completed_because, sizeof h->completed_because, prev.hook.completed_because);
        }
        char since[40];
        lb_info(w->ctx, "lifecycle hook %s: a scale-in began at %s under the previous watch (%s): %s", h->name,
                lb_format_iso8601_or_dash(h->waiting_since, since, sizeof since),
                lb_watch_hook_state_to_string(prev.hook.state),
                h->state == LB_WATCH_HOOK_IDLE ? "taking it over" : "nothing left to do");
}

void watch_lifecycle_init(struct watch *w) {
        const struct lb_settings *s = w->s;
        w->hook.limit_ms = UINT64_MAX;
        if (isempty(s->lifecycle_hook))
                return;
        w->st.have_hook = true;
        (void) lb_strscpy(w->st.hook.name, sizeof w->st.hook.name, s->lifecycle_hook);
        w->st.hook.state = LB_WATCH_HOOK_IDLE;
        w->hook.heartbeat_timeout_ms = LB_LIFECYCLE_HEARTBEAT_MIN_S * 1000u;
        carry_over(w);
}

void watch_lifecycle_stop(struct watch *w) {
        struct lb_watch_hook *h = &w->st.hook;
        if (!w->st.have_hook || w->opts->once || h->state != LB_WATCH_HOOK_HOLDING)
                return;
        h->state = LB_WATCH_HOOK_LEFT;
        lb_warn(w->ctx, "stopping with lifecycle hook %s of Auto Scaling group %s not completed (the own buffer volume "
                        "is not drained): the instance waits until the hook's heartbeat timeout runs out, then the "
                        "group goes on with its default result%s%s; a new watch would take the wait over",
                h->name, h->group, isempty(h->default_result) ? "" : " ", h->default_result);
}
