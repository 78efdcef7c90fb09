/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: the own buffer volume (LIFEBOAT_BUFFER_DEVICE, mounted at
 * LIFEBOAT_BUFFER_MOUNT). It is identified, then scanned once the end is
 * coming (or while it is tagged flushed): fluentd is asked to flush until no
 * chunk file is left, then the marker file is written and the volume tagged
 * flushed; a chunk that shows up again turns it back to dirty at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/mounts.h"
#include "lifeboat/fluentd/snippet.h"
#include "lifeboat/state/volume.h"
#include "watch-internal.h"
#include "notice.h"
#include "own.h"
#include "release.h"
#include "tag.h"
#include "backup.h"
#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/settings.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/disk/chunks.h"
#include "lifeboat/fluentd/rpc.h"
#include "lifeboat/state/volume.h"
#include "lifeboat/state/watch-state.h"
#include "lifeboat/watch/watch.h"

enum lb_watch_own_state lb_watch_own_next(enum lb_watch_own_state cur, bool ending, bool past_deadline,
                                          bool empty) {
        if (cur == LB_WATCH_OWN_NONE || cur == LB_WATCH_OWN_UNKNOWN)
                return cur;
        if (empty)
                /* Flushed only at the end, or when it already was: an empty volume in the middle
                 * of the instance's life is just idle, and tagging it would mean nothing. */
                return ending || cur == LB_WATCH_OWN_FLUSHED ? LB_WATCH_OWN_FLUSHED : LB_WATCH_OWN_DIRTY;
        if (!ending)
                return LB_WATCH_OWN_DIRTY;
        return past_deadline ? LB_WATCH_OWN_UNDRAINED : LB_WATCH_OWN_DRAINING;
}

/* ---- fluentd ---- */

void watch_request_flush(struct watch *w, const char *why, bool repeat) {
        char reason[512] = "";
        if (w->flush_sent_this_cycle)
                return;
        w->flush_sent_this_cycle = true;
        w->last_flush_ms = lb_now_ms();
        int r = lb_fluentd_flush_buffers(w->ctx, reason, sizeof reason);
        w->fluentd_gone = r == -ECONNREFUSED;
        if (r < 0) {
                if (!w->rpc_failing)
                        lb_warn(w->ctx, "cannot ask fluentd to flush (%s): %s; confirming on disk only", why, reason);
                w->rpc_failing = true;
                return;
        }
        if (w->rpc_failing)
                lb_info(w->ctx, "fluentd's RPC answers again");
        w->rpc_failing = false;
        w->st.own.flush_requests++;
        /* The repeats while draining are no news: only the first of an episode is logged. */
        lb_log(w->ctx, repeat ? LB_LOG_DEBUG : LB_LOG_INFO, "asked fluentd to flush its buffers (%s)", why);
}

/* ---- the marker file ---- */

static int marker_path(const struct watch *w, char *buf, size_t size) {
        return lb_snprintf(buf, size, "%s/%s", w->s->buffer_mount, LB_WATCH_MARKER);
}

static int write_marker(struct watch *w, time_t when) {
        char path[PATH_MAX], at[40];
        int r = marker_path(w, path, sizeof path);
        if (r >= 0)
                r = lb_format_iso8601(when, at, sizeof at);
        if (r < 0)
                return r;
        _cleanup_(json_decrefp) json_t *o = json_pack("{s:s, s:s, s:s}", "time", at, "instance", w->self, "volume",
                                                      w->st.own.volume_id);
        if (!o)
                return -ENOMEM;
        _cleanup_free_ char *text = NULL;
        r = lb_json_dump_line(o, JSON_PRESERVE_ORDER, &text);
        if (r < 0)
                return r;
        /* temp file, fsync, rename, fsync of the directory */
        return lb_write_file_atomic(path, text, strlen(text), 0644);
}

/* The volume is what fluentd (a container) writes: the marker's name is unlinked in the directory
 * opened without following a symlink; whatever sits there (a planted symlink) goes, never its target. */
static void remove_marker(struct watch *w) {
        char path[PATH_MAX], name[NAME_MAX + 1];
        _cleanup_close_ int dfd = -EBADF;
        int r = marker_path(w, path, sizeof path);
        if (r >= 0)
                r = lb_chase_parent(path, &dfd, name, sizeof name);
        if (r >= 0 && unlinkat(dfd, name, 0) < 0)
                r = -errno;
        if (r < 0) {
                if (r != -ENOENT)
                        lb_warn(w->ctx, "cannot remove %s: %s", path, strerror(-r));
                return;
        }
        (void) fsync(dfd);
}

/* ---- tagging it ---- */

/* The volume holds chunks again under its flushed tag (or has no state tag at all). Until the
 * dirty tag is written, EC2 says the opposite of the disk: retried every cycle, and the stop
 * waits for it (see stop_now() in watch.c). */
static int own_tag_dirty(struct watch *w) {
        struct lb_watch_own *o = &w->st.own;
        /* The marker first: whatever becomes of the tag, the disk no longer claims "flushed". */
        remove_marker(w);
        w->own_dirty_pending = true;
        int r = watch_tag_volume(w, o->volume_id, false, 0);
        if (r < 0) {
                (void) lb_strscpy(o->reason, sizeof o->reason,
                                  w->own_unmarked ? "mounted for fluentd but has no state tag"
                                                  : "holds chunk files but is still tagged flushed");
                return r;
        }
        w->own_dirty_pending = false;
        o->reason[0] = '\0';
        if (w->own_unmarked)
                lb_notice(w->ctx, "own buffer volume %s is mounted for fluentd but had no state tag "
                                  "(boot could not tag it): tagged dirty",
                          o->volume_id);
        else
                lb_notice(w->ctx, "own buffer volume %s holds %" PRIu64 " chunk file(s) again after it was tagged "
                                  "flushed: tagged dirty again",
                          o->volume_id, o->chunk_files);
        w->own_unmarked = false;
        return 0;
}

static void own_report_drained(struct watch *w, enum lb_watch_own_state from) {
        const struct lb_watch_own *o = &w->st.own;
        if (from == LB_WATCH_OWN_UNDRAINED) {
                lb_notice(w->ctx, "own buffer volume %s drained after the deadline: marker written, tagged flushed",
                          o->volume_id);
                return;
        }
        uint64_t now_ms = lb_now_ms();
        if (w->deadline_ms != UINT64_MAX && w->deadline_ms > now_ms)
                lb_notice(w->ctx,
                          "own buffer volume %s drained (no chunk file left): marker written, tagged flushed, "
                          "%.1f s before the deadline",
                          o->volume_id, (double) (w->deadline_ms - now_ms) / 1000.0);
        else
                lb_notice(w->ctx, "own buffer volume %s drained (no chunk file left): marker written, tagged flushed",
                          o->volume_id);
}

/* Marker, then tag: the tag is what others act on, so it comes last. */
static int own_tag_flushed(struct watch *w, enum lb_watch_own_state from) {
        struct lb_watch_own *o = &w->st.own;
        int r = lb_mount_is_mounted_at(w->dev.devno, w->s->buffer_mount);
        if (r <= 0) {
                if (!w->not_mounted_reported)
                        lb_err(w->ctx, "own buffer volume %s is no longer mounted at %s: not tagging it flushed",
                               o->volume_id, w->s->buffer_mount);
                w->not_mounted_reported = true;
                return -ENODEV;
        }
        time_t now = time(NULL);
        r = write_marker(w, now);
        if (r < 0) {
                if (!w->marker_failed)
                        lb_err(w->ctx, "cannot write the marker on %s: %s; not tagging it flushed", w->s->buffer_mount,
                               strerror(-r));
                w->marker_failed = true;
                return r;
        }
        w->marker_failed = false;
        r = watch_tag_volume(w, o->volume_id, true, now);
        if (r < 0)
                return r;
        w->own_dirty_pending = false;  /* empty again, and said so last */
        o->reason[0] = '\0';
        o->flushed_at = now;
        own_report_drained(w, from);
        watch_check_backup_since_start(w);
        return 0;
}

/* ---- identifying it ---- */

_printf_(2, 3) static void own_unknown(struct watch *w, const char *fmt, ...) {
        char reason[256];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        if (!streq(reason, w->st.own.reason))
                lb_warn(w->ctx, "own buffer volume at %s: %s", w->s->buffer_device, reason);
        (void) lb_strscpy(w->st.own.reason, sizeof w->st.own.reason, reason);
}

/* The block device of v, mounted at LIFEBOAT_BUFFER_MOUNT; the reason is in the state when not. */
static int own_find_device(struct watch *w, const struct lb_volume *v, const struct lb_attachment *att,
                           struct lb_blockdev *ret_dev) {
        const struct lb_settings *s = w->s;
        char reason[256] = "";
        struct lb_blockdev_query q;
        lb_own_volume_query(s, v, att, &q);
        struct lb_blockdev dev;
        int r = lb_blockdev_find(&q, &dev, reason, sizeof reason);
        if (r < 0) {
                own_unknown(w, "block device not found: %s", reason);
                return r;
        }
        r = lb_mount_is_mounted_at(dev.devno, s->buffer_mount);
        if (r <= 0) {
                own_unknown(w, "it is not mounted at %s (did lifeboat boot run?)", s->buffer_mount);
                return -ENODEV;
        }
        *ret_dev = dev;
        return 0;
}

/* Takes the state from the volume's tags once it is confirmed. */
static void own_adopt(struct watch *w, const struct lb_volume *v, const struct lb_blockdev *dev) {
        const struct lb_settings *s = w->s;
        w->dev = *dev;
        w->st.own.reason[0] = '\0';
        enum lb_vol_state tagged = lb_volume_state(s, v);
        w->st.own.state = tagged == LB_VOL_FLUSHED ? LB_WATCH_OWN_FLUSHED : LB_WATCH_OWN_DIRTY;
        const char *at = lb_volume_lb_tag(s, v, LB_TAG_FLUSHED_AT);
        if (tagged == LB_VOL_FLUSHED && at)
                (void) lb_parse_iso8601(at, &w->st.own.flushed_at);
        lb_info(w->ctx, "own buffer volume %s (%s) is mounted at %s, tagged %s", v->id, dev->node, s->buffer_mount,
                lb_vol_state_to_string(tagged));
        /* A marker under a dirty tag is stale (a crash between marker and tag, or a stopped
         * instance started again): it would only mislead whoever reads it. */
        if (tagged != LB_VOL_FLUSHED)
                remove_marker(w);
        /* boot mounts before it tags, and the ECS agent starts even when boot failed: a volume
         * fluentd writes to without a state tag would be recovered by no boot, and deleted by
         * reap --delete-unused once detached. Tagged here, retried every cycle until it works. */
        if (tagged == LB_VOL_UNMARKED) {
                w->own_unmarked = true;
                (void) own_tag_dirty(w);
        }
}

/* Finds the volume attached at LIFEBOAT_BUFFER_DEVICE (as boot does), its block device, and
 * checks it is the one mounted at LIFEBOAT_BUFFER_MOUNT. Until then nothing is ever tagged. */
void watch_own_identify(struct watch *w) {
        char err[600];

        if (w->st.own.state != LB_WATCH_OWN_UNKNOWN || lb_now_ms() < w->next_identify_ms)
                return;
        w->next_identify_ms = lb_now_ms() + LB_WATCH_IDENTIFY_RETRY_MS;

        const char *self[] = { w->self };
        const struct lb_filter filters[] = { { "attachment.instance-id", self, 1 } };
        _cleanup_volume_list_ struct lb_volume_list here = { 0 };
        int r = lb_ec2_describe_volumes(w->aws.ec2, filters, 1, NULL, 0, &here);
        if (r < 0) {
                own_unknown(w, "DescribeVolumes failed: %s", lb_ec2_last_error_text(w->aws.ec2, err, sizeof err));
                return;
        }
        const struct lb_attachment *att = NULL;
        const struct lb_volume *v = lb_own_volume_find(&here, w->self, w->s->buffer_device, &att);
        if (!v) {
                own_unknown(w, "no EBS volume is attached at %s", w->s->buffer_device);
                return;
        }
        (void) lb_strscpy(w->st.own.volume_id, sizeof w->st.own.volume_id, v->id);
        struct lb_blockdev dev;
        if (own_find_device(w, v, att, &dev) < 0)
                return;
        own_adopt(w, v, &dev);
}

/* ---- checking it ---- */

static int own_scan(struct watch *w) {
        _cleanup_chunk_scan_ struct lb_chunk_scan scan = { 0 };
        int r = lb_chunk_scan(w->s->buffer_mount, &w->matcher, 0, &scan);
        if (r < 0) {
                if (!w->own_scan_failed)
                        lb_err(w->ctx, "cannot scan %s for chunk files: %s", w->s->buffer_mount, strerror(-r));
                w->own_scan_failed = true;
                return r;
        }
        if (w->own_scan_failed)
                lb_info(w->ctx, "%s can be scanned again", w->s->buffer_mount);
        w->own_scan_failed = false;
        if (scan.files != w->last_scan_files || scan.bytes != w->last_scan_bytes)
                w->last_progress_ms = lb_now_ms();
        w->last_scan_files = scan.files;
        w->last_scan_bytes = scan.bytes;
        w->st.own.chunk_files = scan.files;
        w->st.own.chunk_bytes = scan.bytes;
        return 0;
}

/* A state other than FLUSHED was decided: the tag follows, and what changed is reported. */
static void own_move(struct watch *w, enum lb_watch_own_state cur, enum lb_watch_own_state next) {
        struct lb_watch_own *o = &w->st.own;
        if (cur == LB_WATCH_OWN_FLUSHED) {
                /* The state follows the disk even when the tag could not: a failed
                 * CreateTags must not leave watch believing (and stopping) flushed. */
                (void) own_tag_dirty(w);
                o->state = next;
                if (next == LB_WATCH_OWN_DRAINING)
                        watch_request_flush(w, "chunk files appeared after the flush", false);
        } else
                o->state = next;
        if (next == LB_WATCH_OWN_UNDRAINED) {
                lb_warn(w->ctx,
                        "own buffer volume %s NOT drained by the deadline: %" PRIu64 " chunk file(s), %" PRIu64
                        " bytes remain; it stays dirty and the next boot recovers it",
                        o->volume_id, o->chunk_files, o->chunk_bytes);
                watch_check_backup_since_start(w);
        } else if (next == LB_WATCH_OWN_DRAINING && cur == LB_WATCH_OWN_DIRTY)
                lb_info(w->ctx, "own buffer volume %s: %" PRIu64 " chunk file(s), %" PRIu64 " bytes to drain",
                        o->volume_id, o->chunk_files, o->chunk_bytes);
}

/* One scan and what follows from it. Returns true when the volume was just tagged flushed:
 * a chunk written between the scan and the tag must not stay under a flushed tag until the
 * next poll, so it is looked at once more at once. */
static bool own_check_pass(struct watch *w) {
        struct lb_watch_own *o = &w->st.own;
        enum lb_watch_own_state cur = o->state;
        if (cur == LB_WATCH_OWN_NONE || cur == LB_WATCH_OWN_UNKNOWN)
                return false;
        if (!w->st.ending && cur != LB_WATCH_OWN_FLUSHED)
                return false; /* nothing to decide: no scan while idle */
        if (own_scan(w) < 0)
                return false;
        bool past = lb_now_ms() >= w->deadline_ms;
        enum lb_watch_own_state next = lb_watch_own_next(cur, w->st.ending, past, o->chunk_files == 0);
        if (next == cur) {
                if (cur == LB_WATCH_OWN_DRAINING && !past && lb_now_ms() - w->last_flush_ms >= LB_WATCH_FLUSH_REPEAT_MS)
                        watch_request_flush(w, "chunk files left, asking again", true);
                return false;
        }
        if (next == LB_WATCH_OWN_FLUSHED) {
                if (own_tag_flushed(w, cur) < 0)
                        return false;
                o->state = next;
                return true;
        }
        own_move(w, cur, next);
        return false;
}

void watch_own_check(struct watch *w) {
        if (w->own_dirty_pending)
                (void) own_tag_dirty(w);
        for (unsigned pass = 0; pass < 2; pass++)
                if (!own_check_pass(w))
                        return;
}
