/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: the notices that the end is coming (IMDS spot
 * instance-action, ASG target lifecycle state, rebalance recommendation)
 * and the deadline by which the own buffer volume must be drained.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/watch-state.h"
#include "lifeboat/watch/watch.h"
#include "watch-internal.h"
#include "notice.h"
#include "own.h"
#include "release.h"
#include "tag.h"
#include "backup.h"

uint64_t lb_watch_flush_budget_ms(enum lb_watch_trigger t, time_t notice_time, uint64_t now_wall_ms,
                                  uint64_t timeout_ms, uint64_t margin_ms) {
        switch (t) {
        case LB_WATCH_TRIGGER_REBALANCE:
                return UINT64_MAX;
        case LB_WATCH_TRIGGER_SPOT: {
                if (notice_time <= 0)
                        return timeout_ms;
                uint64_t at = (uint64_t) notice_time * 1000u;
                if (at <= margin_ms || at - margin_ms <= now_wall_ms)
                        return 0;
                return MIN(at - margin_ms - now_wall_ms, timeout_ms);
        }
        case LB_WATCH_TRIGGER_ASG:
        case LB_WATCH_TRIGGER_SIGNAL:
        default:
                return timeout_ms;
        }
}

uint64_t lb_watch_lifecycle_budget_ms(uint64_t now_wall_ms, uint64_t since_wall_ms, uint64_t timeout_ms,
                                      uint64_t global_timeout_s, uint64_t margin_ms) {
        uint64_t start = since_wall_ms > 0 ? since_wall_ms : now_wall_ms;
        uint64_t elapsed = now_wall_ms > start ? now_wall_ms - start : 0;
        uint64_t budget = timeout_ms > elapsed ? timeout_ms - elapsed : 0;
        if (global_timeout_s > 0) {
                /* The group ends the wait then with the hook's default result, whatever we do. */
                uint64_t end = start + global_timeout_s * 1000u;
                uint64_t left = end > margin_ms && end - margin_ms > now_wall_ms ? end - margin_ms - now_wall_ms : 0;
                budget = MIN(budget, left);
        }
        return budget;
}

static uint64_t wall_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

void watch_add_notice(struct watch *w, enum lb_watch_trigger t, const char *detail, time_t when) {
        if (w->st.n_notices >= LB_WATCH_MAX_NOTICES)
                return; /* the log has it; the state keeps the first ones */
        struct lb_watch_notice *n = &w->st.notices[w->st.n_notices++];
        *n = (struct lb_watch_notice) { .trigger = t, .time = when, .seen_at = time(NULL) };
        (void) lb_strscpy(n->detail, sizeof n->detail, strempty(detail));
}

/* The earliest deadline wins, except that a signal gives the final check a budget of its own:
 * an ASG instance may be shut down long after its notice, and fluentd stopped just before. */
static void set_deadline(struct watch *w, uint64_t budget_ms, bool replace) {
        uint64_t now = lb_now_ms();
        uint64_t deadline = budget_ms >= UINT64_MAX - now ? UINT64_MAX : now + budget_ms;
        /* A signal's budget is for the final check, not for holding a scale-in longer. */
        if (!replace)
                w->hook.limit_ms = MIN(w->hook.limit_ms, deadline);
        if (deadline >= w->deadline_ms && !replace)
                return;
        w->deadline_ms = deadline;
        w->st.own.deadline = (time_t) ((wall_ms() + budget_ms + 999u) / 1000u);
}

uint64_t watch_hook_waiting_since_ms(const struct watch *w) {
        /* This watch saw it begin (to the ms), or took it over from watch.json (to the second). */
        if (w->hook.waiting_since_ms > 0)
                return w->hook.waiting_since_ms;
        return w->st.hook.waiting_since > 0 ? (uint64_t) w->st.hook.waiting_since * 1000u : 0;
}

void watch_shorten_deadline(struct watch *w, uint64_t budget_ms) {
        set_deadline(w, budget_ms, false);
}

/* A scale-in held by the lifecycle hook may take LIFEBOAT_LIFECYCLE_TIMEOUT; without one (or once
 * it turned out not to hold) LIFEBOAT_FLUSH_TIMEOUT, as for the other notices. */
static uint64_t flush_timeout_ms(const struct watch *w, enum lb_watch_trigger t) {
        const struct lb_watch_hook *h = &w->st.hook;
        if (t != LB_WATCH_TRIGGER_ASG || !w->st.have_hook ||
            (h->state != LB_WATCH_HOOK_IDLE && h->state != LB_WATCH_HOOK_HOLDING))
                return w->s->flush_timeout_ms;
        return lb_watch_lifecycle_budget_ms(wall_ms(), watch_hook_waiting_since_ms(w), w->s->lifecycle_timeout_ms,
                                            h->global_timeout_s, w->s->flush_margin_ms);
}

void watch_begin_end(struct watch *w, enum lb_watch_trigger t, time_t notice_time, const char *what,
                     const char *short_what) {
        uint64_t budget = lb_watch_flush_budget_ms(t, notice_time, wall_ms(), flush_timeout_ms(w, t),
                                                   w->s->flush_margin_ms);
        w->st.ending = true;
        set_deadline(w, budget, t == LB_WATCH_TRIGGER_SIGNAL);
        uint64_t left = w->deadline_ms > lb_now_ms() ? w->deadline_ms - lb_now_ms() : 0;
        if (w->st.own.state == LB_WATCH_OWN_NONE)
                lb_notice(w->ctx, "%s: no own buffer volume to drain (recovery only)", what);
        else if (w->st.own.state == LB_WATCH_OWN_FLUSHED)
                lb_notice(w->ctx, "%s: checking the flushed buffer volume once more", what);
        else
                lb_notice(w->ctx, "%s: draining the buffer volume, deadline in %.1f s", what, (double) left / 1000.0);
        watch_request_flush(w, short_what, false);
}

static void on_spot(struct watch *w, const struct lb_spot_notice *n) {
        if (n->action == w->spot.action && n->time == w->spot.time)
                return;
        if (n->action == LB_SPOT_NONE) {
                /* The drain goes on: a withdrawn notice changes nothing on the disk. */
                lb_info(w->ctx, "the spot interruption notice is gone from IMDS");
                w->spot = *n;
                return;
        }
        w->spot = *n;
        char when[40], what[160];
        (void) lb_format_iso8601_or_dash(n->time, when, sizeof when);
        long in_s = (long) (n->time - time(NULL));
        (void) lb_snprintf(what, sizeof what, "spot interruption notice: %s at %s (in %ld s)",
                           lb_spot_action_to_string(n->action), when, in_s);
        watch_add_notice(w, LB_WATCH_TRIGGER_SPOT, lb_spot_action_to_string(n->action), n->time);
        watch_begin_end(w, LB_WATCH_TRIGGER_SPOT, n->time, what, "spot interruption notice");
}

static void on_asg_state(struct watch *w, const char *state) {
        if (w->asg_known && streq(state, w->asg_state))
                return;
        bool first = !w->asg_known;
        w->asg_known = true;
        (void) lb_strscpy(w->asg_state, sizeof w->asg_state, state);
        if (!streq(state, "Terminated")) {
                if (!isempty(state) || !first)
                        lb_info(w->ctx, "ASG target lifecycle state: %s", isempty(state) ? "(none)" : state);
                return;
        }
        watch_add_notice(w, LB_WATCH_TRIGGER_ASG, state, 0);
        /* The wait of a lifecycle hook began about now (a restarted watch carries the start over). */
        if (w->st.have_hook && w->st.hook.waiting_since == 0) {
                w->hook.waiting_since_ms = wall_ms();
                w->st.hook.waiting_since = (time_t) (w->hook.waiting_since_ms / 1000u);
        }
        watch_begin_end(w, LB_WATCH_TRIGGER_ASG, 0, "ASG target lifecycle state is Terminated (scale-in)",
                        "scale-in");
}

static void on_rebalance(struct watch *w, time_t notice_time) {
        if (notice_time == w->rebalance_time)
                return;
        w->rebalance_time = notice_time;
        char when[40], what[160];
        (void) lb_snprintf(what, sizeof what, "rebalance recommendation of %s",
                           lb_format_iso8601_or_dash(notice_time, when, sizeof when));
        watch_add_notice(w, LB_WATCH_TRIGGER_REBALANCE, NULL, notice_time);
        lb_notice(w->ctx, "%s: flushing early, tagging nothing", what);
        watch_request_flush(w, "rebalance recommendation", false);
}

static void imds_failed(struct watch *w, const char *what, int r) {
        if (w->imds_failures++ == 0) {
                w->st.imds_failing_since = time(NULL);
                lb_warn(w->ctx, "IMDS poll failed (%s: %s); retrying every poll", what, lb_imds_strerror(r));
        }
        w->st.imds_ok = false;
}

static void imds_answered(struct watch *w) {
        if (w->imds_failures > 0)
                lb_info(w->ctx, "IMDS answers again (after %u failed request(s))", w->imds_failures);
        w->imds_failures = 0;
        w->st.imds_ok = true;
        w->st.imds_failing_since = 0;
}

/* Returns -EHOSTUNREACH when IMDS does not answer at all, another negative errno when the
 * request failed, 0 otherwise. */
static int poll_spot(struct watch *w) {
        struct lb_spot_notice n;
        int r = lb_imds_spot_notice(w->aws.imds, &n);
        if (r < 0) {
                imds_failed(w, "spot/instance-action", r);
                return r;
        }
        on_spot(w, &n);
        return 0;
}

static int poll_asg(struct watch *w) {
        char asg[32];
        int r = lb_imds_lifecycle_state(w->aws.imds, asg, sizeof asg);
        if (r < 0) {
                imds_failed(w, "autoscaling/target-lifecycle-state", r);
                return r;
        }
        on_asg_state(w, asg);
        return 0;
}

static int poll_rebalance(struct watch *w) {
        time_t rb = 0;
        int r = lb_imds_rebalance(w->aws.imds, &rb);
        if (r < 0) {
                imds_failed(w, "events/recommendations/rebalance", r);
                return r;
        }
        if (r > 0)
                on_rebalance(w, rb);
        return 0;
}

void watch_poll_imds(struct watch *w) {
        /* The spot notice first: it is the most urgent, and reacting to it does not wait
         * for the other two answers. */
        int r = poll_spot(w);
        /* No answer at all: asking twice more would only stretch this cycle by seconds. */
        if (r == -EHOSTUNREACH)
                return;
        bool ok = r >= 0;
        if (poll_asg(w) < 0)
                ok = false;
        if (poll_rebalance(w) < 0)
                ok = false;
        if (ok)
                imds_answered(w);
}
