/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: see include/lifeboat/watch.h. This file holds the loop,
 * the signals and the stop; the modules it drives are listed in
 * watch-internal.h.
 *
 * One cycle (every LIFEBOAT_POLL_INTERVAL):
 *   1. IMDS: spot/instance-action, autoscaling/target-lifecycle-state,
 *      events/recommendations/rebalance (skipped once a signal arrived: the
 *      system is going down and the network may be gone). A new notice asks
 *      fluentd to flush at once, in the same cycle.      (watch-notice.c)
 *   2. The own buffer volume: scanned once the end is coming (or while it is
 *      tagged flushed); tagged flushed when empty, dirty again when a chunk
 *      file shows up, reported when the deadline passes with chunks left.
 *                                                         (watch-own.c)
 *   3. The recovered volumes of recovered.json: scanned, released once empty
 *      for LIFEBOAT_SETTLE.                               (watch-release.c)
 *   4. watch.json, when anything in it changed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/lock.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/notify.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/chunks.h"
#include "lifeboat/state/watch-state.h"
#include "lifeboat/watch/watch.h"
#include "watch-internal.h"
#include "notice.h"
#include "own.h"
#include "release.h"
#include "tag.h"
#include "backup.h"
#include "lifecycle.h"

/* At a stop, with fluentd gone and nothing changing on the volume, waiting longer is pointless. */
#define STOP_STALL_MS 10000u

/* ---- signals ---- */

static void on_signal(struct watch *w, int sig) {
        if (w->signalled) {
                lb_notice(w->ctx, "%s again: not waiting any longer", sig == SIGINT ? "SIGINT" : "SIGTERM");
                w->give_up = true;
                return;
        }
        w->signalled = true;
        w->last_progress_ms = lb_now_ms();
        (void) lb_notify("STOPPING=1");
        const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        char what[64];
        (void) lb_snprintf(what, sizeof what, "%s (stopping)", name);
        watch_add_notice(w, LB_WATCH_TRIGGER_SIGNAL, name, 0);
        watch_begin_end(w, LB_WATCH_TRIGGER_SIGNAL, 0, what, name);
}

/* ---- the state file ---- */

static void save_state(struct watch *w) {
        _cleanup_free_ char *text = NULL;
        char path[PATH_MAX];
        int r = lb_watch_state_format(&w->st, &text);
        if (r < 0)
                return;
        if (w->written && streq(w->written, text))
                return;
        r = lb_mkdir_p(w->s->run_dir, 0755);
        if (r >= 0)
                r = lb_watch_state_path(w->s->run_dir, path, sizeof path);
        if (r >= 0)
                r = lb_write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0) {
                if (!w->state_write_failed)
                        lb_warn(w->ctx, "cannot write %s/%s: %s", w->s->run_dir, LB_WATCH_STATE_FILE, strerror(-r));
                w->state_write_failed = true;
                return;
        }
        w->state_write_failed = false;
        free(w->written);
        w->written = TAKE_PTR(text);
}

/* ---- the service manager ---- */

/* One line for `systemctl status`: what watch is doing. */
static void status_line(const struct watch *w, char *buf, size_t size) {
        const struct lb_watch_own *o = &w->st.own;
        char own[128];
        switch (o->state) {
        case LB_WATCH_OWN_NONE:
                (void) lb_strscpy(own, sizeof own, "no own buffer volume (recovery only)");
                break;
        case LB_WATCH_OWN_UNKNOWN:
                (void) lb_strscpy(own, sizeof own, "own buffer volume not confirmed yet");
                break;
        case LB_WATCH_OWN_DIRTY:
                (void) lb_snprintf(own, sizeof own, "own buffer volume %s in use", o->volume_id);
                break;
        case LB_WATCH_OWN_DRAINING:
                (void) lb_snprintf(own, sizeof own, "draining own buffer volume %s: %" PRIu64 " chunk file(s) left",
                                   o->volume_id, o->chunk_files);
                break;
        case LB_WATCH_OWN_FLUSHED:
                (void) lb_snprintf(own, sizeof own, "own buffer volume %s drained and tagged flushed", o->volume_id);
                break;
        case LB_WATCH_OWN_UNDRAINED:
        default:
                (void) lb_snprintf(own, sizeof own, "own buffer volume %s NOT drained: %" PRIu64 " chunk file(s) left",
                                   o->volume_id, o->chunk_files);
                break;
        }
        size_t draining = 0;
        for (size_t i = 0; i < w->st.n_recovered; i++)
                if (w->st.recovered[i].state != LB_WATCH_REC_RELEASED)
                        draining++;
        char rec[64] = "";
        if (draining > 0)
                (void) lb_snprintf(rec, sizeof rec, "; %zu recovered volume%s draining", draining,
                                   draining == 1 ? "" : "s");
        (void) lb_snprintf(buf, size, "%s; %s%s%s", w->signalled ? "stopping" : "watching", own, rec,
                           w->st.imds_ok ? "" : "; IMDS failing");
}

/* READY=1 after the first cycle, STATUS= whenever it changes, WATCHDOG=1 every cycle. */
static void notify_manager(struct watch *w) {
        char status[320], msg[400];
        status_line(w, status, sizeof status);
        bool changed = !streq(status, w->status_sent);
        if (w->ready_sent && !changed && w->watchdog_usec == 0)
                return;
        (void) lb_snprintf(msg, sizeof msg, "%s%s%s%s", w->ready_sent ? "" : "READY=1\n",
                           w->watchdog_usec > 0 ? "WATCHDOG=1\n" : "", changed ? "STATUS=" : "", changed ? status : "");
        if (lb_notify(msg) < 0)
                return; /* the manager is gone or never was: nothing to tell */
        w->ready_sent = true;
        w->last_ping_ms = lb_now_ms();
        (void) lb_strscpy(w->status_sent, sizeof w->status_sent, status);
}

/* Sleeps ms, waking up to keep the watchdog fed (half its interval) and for a signal. */
static void watch_sleep(struct watch *w, uint64_t ms) {
        uint64_t end = lb_now_ms() + ms;
        for (;;) {
                uint64_t now = lb_now_ms();
                if (now >= end || lb_context_interrupted(w->ctx))
                        return;
                uint64_t step = end - now;
                if (w->watchdog_usec > 0) {
                        uint64_t half = MAX(w->watchdog_usec / 2000, (uint64_t) 1);
                        if (now - w->last_ping_ms >= half) {
                                (void) lb_notify("WATCHDOG=1");
                                w->last_ping_ms = now;
                        }
                        step = MIN(step, half);
                }
                lb_sleep_ms(step, w->ctx->interrupted);
        }
}

/* ---- the loop ---- */

static void cycle(struct watch *w) {
        w->flush_sent_this_cycle = false;
        /* After a signal the system is going down: IMDS can add nothing but delay. */
        if (!w->signalled)
                watch_poll_imds(w);
        watch_own_identify(w);
        watch_own_check(w);
        watch_lifecycle_tick(w);
        save_state(w);
        watch_recovered_check(w);
        save_state(w);
}

static bool stop_now(struct watch *w) {
        enum lb_watch_own_state st = w->st.own.state;
        if (w->give_up || st == LB_WATCH_OWN_NONE || st == LB_WATCH_OWN_FLUSHED)
                return true;
        if (st == LB_WATCH_OWN_UNKNOWN) {
                lb_err(w->ctx, "own buffer volume at %s was never confirmed (%s): cannot tag it flushed",
                       w->s->buffer_device, w->st.own.reason);
                return true;
        }
        uint64_t now = lb_now_ms();
        if (now >= w->deadline_ms)
                return true;
        /* A flushed tag over chunks is worth the whole budget: nothing else can undo it. */
        if (w->fluentd_gone && !w->own_dirty_pending && now - w->last_progress_ms >= STOP_STALL_MS) {
                lb_warn(w->ctx, "fluentd is not running and nothing changed on %s for %u s: not waiting any longer",
                        w->s->buffer_mount, STOP_STALL_MS / 1000u);
                return true;
        }
        return false;
}

static int exit_status(struct watch *w) {
        const struct lb_watch_own *o = &w->st.own;
        if (w->own_dirty_pending)
                return 1;
        switch (o->state) {
        case LB_WATCH_OWN_NONE:
        case LB_WATCH_OWN_FLUSHED:
                return 0;
        case LB_WATCH_OWN_UNDRAINED:
                return 1;
        case LB_WATCH_OWN_DIRTY:
        case LB_WATCH_OWN_DRAINING:
        case LB_WATCH_OWN_UNKNOWN:
        default:
                /* --once: still draining (or idle) is fine; a stop with it dirty is not. */
                return w->signalled ? 1 : 0;
        }
}

static void stop_report(struct watch *w) {
        const struct lb_watch_own *o = &w->st.own;
        if (w->own_dirty_pending)
                lb_err(w->ctx, "own buffer volume %s %s (CreateTags failed): tag it %s=dirty by hand, or the next "
                               "boot will not recover it and reap may delete it once it is detached",
                       o->volume_id, o->reason, w->key_state);
        if (o->state == LB_WATCH_OWN_DRAINING || o->state == LB_WATCH_OWN_UNDRAINED ||
            o->state == LB_WATCH_OWN_DIRTY)
                lb_warn(w->ctx, "stopping with own buffer volume %s NOT drained: %" PRIu64 " chunk file(s), %" PRIu64
                                " bytes remain; it stays dirty and the next boot recovers it",
                        o->volume_id, o->chunk_files, o->chunk_bytes);
        else if (o->state == LB_WATCH_OWN_FLUSHED)
                lb_notice(w->ctx, "stopping: own buffer volume %s is drained and tagged flushed", o->volume_id);
        else
                lb_notice(w->ctx, "stopping");
}

static int watch_init(struct watch *w) {
        const struct lb_settings *s = w->s;
        char reason[256];
        int r = lb_chunk_matcher_init(&w->matcher, s->chunk_pattern, reason, sizeof reason);
        if (r < 0) {
                lb_err(w->ctx, "LIFEBOAT_CHUNK_PATTERN: %s", reason);
                return -EINVAL;
        }
        /* A marker that counts as a chunk would make the volume dirty forever. */
        if (lb_chunk_name_matches(&w->matcher, LB_WATCH_MARKER) ||
            lb_chunk_name_matches(&w->matcher, LB_WATCH_MARKER ".tmp.1")) {
                lb_err(w->ctx, "LIFEBOAT_CHUNK_PATTERN matches lifeboat's marker file %s", LB_WATCH_MARKER);
                return -EINVAL;
        }
        return watch_tag_keys_init(w);
}

static void watch_done(struct watch *w) {
        lb_chunk_matcher_done(&w->matcher);
        lb_watch_state_done(&w->st);
        free(w->rt);
        free(w->written);
        lb_aws_close(&w->aws);
}
#define _cleanup_watch_ _cleanup_(watch_done)

static int watch_loop(struct watch *w) {
        const struct lb_settings *s = w->s;
        struct lb_context *ctx = w->ctx;

        for (;;) {
                uint64_t start = lb_now_ms();
                if (ctx->interrupted && *ctx->interrupted) {
                        int sig = *ctx->interrupted;
                        /* Cleared so that EC2 retries work during the final check, and so
                         * that a second signal can be told apart. */
                        *ctx->interrupted = 0;
                        on_signal(w, sig);
                }
                cycle(w);
                notify_manager(w);
                if (w->opts->once)
                        break;
                if (w->signalled && stop_now(w))
                        break;
                uint64_t elapsed = lb_now_ms() - start;
                uint64_t wait = elapsed < s->poll_interval_ms ? s->poll_interval_ms - elapsed : 0;
                if (w->signalled && w->deadline_ms > lb_now_ms())
                        wait = MIN(wait, w->deadline_ms - lb_now_ms());
                if (wait > 0 && !(ctx->interrupted && *ctx->interrupted))
                        watch_sleep(w, wait);
        }
        if (!w->opts->once)
                stop_report(w);
        watch_lifecycle_stop(w);
        save_state(w);
        return exit_status(w);
}

/* One watch per instance: two would tag over each other. */
static int watch_lock(struct watch *w, int *ret_fd) {
        int r = lb_lock_acquire(w->s->run_dir, "watch.lock", false, 0, ret_fd);
        if (r < 0) {
                lb_err(w->ctx, "%s in %s: %s", r == -EWOULDBLOCK ? "another lifeboat watch is running"
                                                                 : "cannot take the watch lock",
                       w->s->run_dir, strerror(-r));
                return r == -EWOULDBLOCK ? -EBUSY : r;
        }
        return 0;
}

static void watch_state_init(struct watch *w) {
        const struct lb_settings *s = w->s;
        w->st.pid = (long) getpid();
        w->st.started_at = w->started_at;
        w->st.imds_ok = true;
        (void) lb_strscpy(w->st.instance_id, sizeof w->st.instance_id, w->self);
        (void) lb_strscpy(w->st.own.mount_path, sizeof w->st.own.mount_path, s->buffer_mount);
        w->st.own.state = isempty(s->buffer_device) ? LB_WATCH_OWN_NONE : LB_WATCH_OWN_UNKNOWN;
}

static void announce(struct watch *w) {
        enum lb_watch_own_state own = w->st.own.state;
        lb_notice(w->ctx, "watching instance %s: %s, polling IMDS every %.1f s", w->self,
                  own == LB_WATCH_OWN_NONE      ? "no own buffer volume (recovery only)"
                  : own == LB_WATCH_OWN_UNKNOWN ? "own buffer volume not confirmed yet"
                                                : "own buffer volume confirmed",
                  (double) w->s->poll_interval_ms / 1000.0);
}

int lb_watch_run(struct lb_context *ctx, const struct lb_watch_options *opts) {
        /* Declared first, so released last: after everything else of this watch is gone. */
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_watch_ struct watch w = {
                .ctx = ctx,
                .s = &ctx->settings,
                .opts = opts,
                .deadline_ms = UINT64_MAX,
                .started_at = time(NULL),
        };
        int r = watch_init(&w);
        if (r < 0)
                return r;
        r = watch_lock(&w, &lock_fd);
        if (r < 0)
                return r;
        r = lb_aws_open(ctx, LB_AWS_NEED_IDENTITY, &w.aws);
        if (r < 0)
                return r;
        w.self = w.aws.identity.instance_id;
        watch_state_init(&w);
        watch_lifecycle_init(&w);

        watch_own_identify(&w);
        if (lb_notify_watchdog_usec(&w.watchdog_usec) < 0)
                lb_warn(ctx, "WATCHDOG_USEC or WATCHDOG_PID cannot be read: no watchdog keep-alives");
        if (!opts->once)
                announce(&w);
        return watch_loop(&w);
}
