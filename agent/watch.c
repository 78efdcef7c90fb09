/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: see include/lifeboat/watch.h. This file holds the pure
 * decisions and the loop; watch-state.c the state file (watch.json).
 *
 * One cycle (every LIFEBOAT_POLL_INTERVAL):
 *   1. IMDS: spot/instance-action, autoscaling/target-lifecycle-state,
 *      events/recommendations/rebalance (skipped once a signal arrived: the
 *      system is going down and the network may be gone). A new notice asks
 *      fluentd to flush at once, in the same cycle.
 *   2. The own buffer volume: scanned once the end is coming (or while it is
 *      tagged flushed); tagged flushed when empty, dirty again when a chunk
 *      file shows up, reported when the deadline passes with chunks left.
 *   3. The recovered volumes of recovered.json: scanned, released once empty
 *      for LIFEBOAT_SETTLE.
 *   4. watch.json, when anything in it changed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/aws.h"
#include "lifeboat/blockdev.h"
#include "lifeboat/chunks.h"
#include "lifeboat/context.h"
#include "lifeboat/ec2.h"
#include "lifeboat/fluentd.h"
#include "lifeboat/imds.h"
#include "lifeboat/json.h"
#include "lifeboat/lock.h"
#include "lifeboat/manifest.h"
#include "lifeboat/mounts.h"
#include "lifeboat/tags.h"
#include "lifeboat/util.h"
#include "lifeboat/watch.h"

/* At a stop, with fluentd gone and nothing changing on the volume, waiting longer is pointless. */
#define STOP_STALL_MS 10000u
/* Waiting for boot's lock before editing the manifest. */
#define MANIFEST_LOCK_TIMEOUT_MS 5000u
#define BACKUP_SCAN_MAX_DEPTH 8

/* ---- pure decisions ---- */

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

enum lb_watch_rec_state lb_watch_rec_next(uint64_t chunk_files, uint64_t now_ms, uint64_t settle_ms,
                                          uint64_t *empty_since_ms) {
        if (chunk_files > 0) {
                *empty_since_ms = 0;
                return LB_WATCH_REC_DRAINING;
        }
        if (*empty_since_ms == 0)
                /* 0 means "not empty": a clock that reads 0 counts from 1. */
                *empty_since_ms = now_ms > 0 ? now_ms : 1;
        uint64_t empty_for = now_ms > *empty_since_ms ? now_ms - *empty_since_ms : 0;
        return empty_for >= settle_ms ? LB_WATCH_REC_TAGGED : LB_WATCH_REC_SETTLING;
}

/* ---- the daemon ---- */

/* What watch keeps about a recovered volume besides its public state. */
struct rec_rt {
        uint64_t empty_since_ms;        /* CLOCK_MONOTONIC; 0 = not empty */
        bool snippet_removed;
        bool unmounted;
        bool detached;
        bool warned;                    /* a retried step was reported once */
};

struct watch {
        struct lb_context *ctx;
        const struct lb_settings *s;
        const struct lb_watch_options *opts;
        struct lb_aws aws;
        const char *self;
        struct lb_chunk_matcher matcher;
        struct lb_watch_state st;
        struct rec_rt *rt;              /* parallel to st.recovered */
        char *written;                  /* the text last written to watch.json */
        bool state_write_failed;
        char key_state[160], key_flushed_at[160];

        /* the own buffer volume */
        struct lb_blockdev dev;
        uint64_t next_identify_ms;
        bool own_scan_failed;
        bool marker_failed;
        bool not_mounted_reported;
        uint64_t last_scan_files, last_scan_bytes;
        uint64_t last_progress_ms;

        /* the end */
        uint64_t deadline_ms;           /* CLOCK_MONOTONIC; UINT64_MAX = none */
        uint64_t last_flush_ms;
        bool flush_sent_this_cycle;
        bool rpc_failing;
        bool fluentd_gone;              /* the last flush request found nobody listening */
        bool signalled;
        bool give_up;                   /* a second signal: stop waiting */

        /* notices already reacted to */
        struct lb_spot_notice spot;
        char asg_state[32];
        bool asg_known;
        time_t rebalance_time;
        unsigned imds_failures;

        bool manifest_failed;
        bool tag_failing;               /* CreateTags failed last time: warned once */
        bool own_dirty_pending;         /* the own volume needs state=dirty and does not have it yet */
        bool own_unmarked;              /* ... because it had no state tag at all (not: flushed over chunks) */
        time_t started_at;
};

static uint64_t wall_ms(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void add_notice(struct watch *w, enum lb_watch_trigger t, const char *detail, time_t when) {
        if (w->st.n_notices >= LB_WATCH_MAX_NOTICES)
                return; /* the log has it; the state keeps the first ones */
        struct lb_watch_notice *n = &w->st.notices[w->st.n_notices++];
        *n = (struct lb_watch_notice) { .trigger = t, .time = when, .seen_at = time(NULL) };
        (void) lb_strscpy(n->detail, sizeof n->detail, strempty(detail));
}

/* ---- fluentd ---- */

static void request_flush(struct watch *w, const char *why, bool repeat) {
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

/* ---- the end: notices and signals ---- */

/* The earliest deadline wins, except that a signal gives the final check a budget of its own:
 * an ASG instance may be shut down long after its notice, and fluentd stopped just before. */
static void set_deadline(struct watch *w, uint64_t budget_ms, bool replace) {
        uint64_t now = lb_now_ms();
        uint64_t deadline = budget_ms >= UINT64_MAX - now ? UINT64_MAX : now + budget_ms;
        if (deadline >= w->deadline_ms && !replace)
                return;
        w->deadline_ms = deadline;
        w->st.own.deadline = (time_t) ((wall_ms() + budget_ms + 999u) / 1000u);
}

/* A spot notice, ASG Terminated or a signal: drain the own buffer volume by the deadline. */
static void begin_end(struct watch *w, enum lb_watch_trigger t, time_t notice_time, const char *what,
                      const char *short_what) {
        uint64_t budget = lb_watch_flush_budget_ms(t, notice_time, wall_ms(), w->s->flush_timeout_ms,
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
        request_flush(w, short_what, false);
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
        add_notice(w, LB_WATCH_TRIGGER_SPOT, lb_spot_action_to_string(n->action), n->time);
        begin_end(w, LB_WATCH_TRIGGER_SPOT, n->time, what, "spot interruption notice");
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
        add_notice(w, LB_WATCH_TRIGGER_ASG, state, 0);
        begin_end(w, LB_WATCH_TRIGGER_ASG, 0, "ASG target lifecycle state is Terminated (scale-in)", "scale-in");
}

static void on_rebalance(struct watch *w, time_t notice_time) {
        if (notice_time == w->rebalance_time)
                return;
        w->rebalance_time = notice_time;
        char when[40], what[160];
        (void) lb_snprintf(what, sizeof what, "rebalance recommendation of %s",
                           lb_format_iso8601_or_dash(notice_time, when, sizeof when));
        add_notice(w, LB_WATCH_TRIGGER_REBALANCE, NULL, notice_time);
        lb_notice(w->ctx, "%s: flushing early, tagging nothing", what);
        request_flush(w, "rebalance recommendation", false);
}

static void imds_failed(struct watch *w, const char *what, int r) {
        if (w->imds_failures++ == 0) {
                w->st.imds_failing_since = time(NULL);
                lb_warn(w->ctx, "IMDS poll failed (%s: %s); retrying every poll", what, lb_imds_strerror(r));
        }
        w->st.imds_ok = false;
}

static void poll_imds(struct watch *w) {
        struct lb_imds *imds = w->aws.imds;
        bool ok = true;
        int r;

        /* The spot notice first: it is the most urgent, and reacting to it does not wait
         * for the other two answers. */
        struct lb_spot_notice n;
        r = lb_imds_spot_notice(imds, &n);
        if (r < 0) {
                imds_failed(w, "spot/instance-action", r);
                /* No answer at all: asking twice more would only stretch this cycle by seconds. */
                if (r == -EHOSTUNREACH)
                        return;
                ok = false;
        } else
                on_spot(w, &n);

        char asg[32];
        r = lb_imds_lifecycle_state(imds, asg, sizeof asg);
        if (r < 0) {
                imds_failed(w, "autoscaling/target-lifecycle-state", r);
                ok = false;
        } else
                on_asg_state(w, asg);

        time_t rb = 0;
        r = lb_imds_rebalance(imds, &rb);
        if (r < 0) {
                imds_failed(w, "events/recommendations/rebalance", r);
                ok = false;
        } else if (r > 0)
                on_rebalance(w, rb);

        if (ok) {
                if (w->imds_failures > 0)
                        lb_info(w->ctx, "IMDS answers again (after %u failed request(s))", w->imds_failures);
                w->imds_failures = 0;
                w->st.imds_ok = true;
                w->st.imds_failing_since = 0;
        }
}

static void on_signal(struct watch *w, int sig) {
        if (w->signalled) {
                lb_notice(w->ctx, "%s again: not waiting any longer", sig == SIGINT ? "SIGINT" : "SIGTERM");
                w->give_up = true;
                return;
        }
        w->signalled = true;
        w->last_progress_ms = lb_now_ms();
        const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        char what[64];
        (void) lb_snprintf(what, sizeof what, "%s (stopping)", name);
        add_notice(w, LB_WATCH_TRIGGER_SIGNAL, name, 0);
        begin_end(w, LB_WATCH_TRIGGER_SIGNAL, 0, what, name);
}

/* ---- backup directory ---- */

struct backup_count {
        size_t base_len;                /* the backup directory's own path is not searched for needle */
        const char *needle;             /* count files whose path below it contains this; NULL = any */
        time_t newer_than;              /* and whose mtime is at or after it; 0 = any */
        uint64_t files;
};

static int backup_walk(struct backup_count *c, int dfd, const char *path, unsigned depth) {
        DIR *d = fdopendir(dfd);
        if (!d) {
                (void) close(dfd);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue; /* gone meanwhile */
                char sub[PATH_MAX];
                if (lb_snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) < 0)
                        continue;
                if (S_ISDIR(st.st_mode) && depth < BACKUP_SCAN_MAX_DEPTH) {
                        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd >= 0)
                                (void) backup_walk(c, fd, sub, depth + 1);
                } else if (S_ISREG(st.st_mode)) {
                        if (c->needle && !strstr(sub + c->base_len, c->needle))
                                continue;
                        if (c->newer_than > 0 && st.st_mtime < c->newer_than)
                                continue;
                        c->files++;
                }
        }
        (void) closedir(d);
        return 0;
}

/* Files in fluentd's backup directory: chunks it could not read, moved there, not delivered. */
static int count_backup(const struct watch *w, const char *needle, time_t newer_than, uint64_t *ret) {
        const char *dir = w->s->fluentd_backup_dir;
        if (isempty(dir))
                return -EOPNOTSUPP;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT) {
                        *ret = 0;
                        return 0;
                }
                return -errno;
        }
        struct backup_count c = { .base_len = strlen(dir), .needle = needle, .newer_than = newer_than };
        int r = backup_walk(&c, fd, dir, 0);
        if (r < 0)
                return r;
        *ret = c.files;
        return 0;
}

static void check_backup_since_start(struct watch *w) {
        uint64_t n;
        if (count_backup(w, NULL, w->started_at, &n) < 0 || n == w->st.backup_files)
                return;
        if (n > w->st.backup_files)
                lb_warn(w->ctx, "fluentd's backup directory %s holds %" PRIu64 " file(s) written since watch started: "
                                "chunks fluentd could not read, NOT delivered",
                        w->s->fluentd_backup_dir, n);
        w->st.backup_files = n;
}

/* ---- tags ---- */

static int tag_volume(struct watch *w, const char *volume_id, bool flushed, time_t when) {
        const char *ids[] = { volume_id };
        char at[40];
        int r;
        if (flushed) {
                r = lb_format_iso8601(when, at, sizeof at);
                if (r < 0)
                        return r;
                const struct lb_tag tags[] = {
                        { w->key_state, (char *) "flushed" },
                        { w->key_flushed_at, at },
                };
                r = lb_ec2_create_tags(w->aws.ec2, ids, 1, tags, ELEMENTSOF(tags));
        } else {
                const struct lb_tag tags[] = { { w->key_state, (char *) "dirty" } };
                r = lb_ec2_create_tags(w->aws.ec2, ids, 1, tags, ELEMENTSOF(tags));
        }
        if (r < 0) {
                char err[600];
                if (!w->tag_failing)
                        lb_warn(w->ctx, "CreateTags %s=%s on %s failed: %s (retrying every poll)", w->key_state,
                                flushed ? "flushed" : "dirty", volume_id,
                                lb_ec2_last_error_text(w->aws.ec2, err, sizeof err));
                w->tag_failing = true;
                return r;
        }
        if (w->tag_failing)
                lb_info(w->ctx, "CreateTags works again");
        w->tag_failing = false;
        if (!flushed) {
                /* The old flushed-at would only mislead; losing this call is harmless. */
                const struct lb_tag old[] = { { w->key_flushed_at, NULL } };
                (void) lb_ec2_delete_tags(w->aws.ec2, ids, 1, old, 1);
        }
        return 0;
}

/* ---- the own buffer volume ---- */

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

static void remove_marker(struct watch *w) {
        char path[PATH_MAX];
        if (marker_path(w, path, sizeof path) < 0)
                return;
        if (unlink(path) < 0) {
                if (errno != ENOENT)
                        lb_warn(w->ctx, "cannot remove %s: %s", path, strerror(errno));
                return;
        }
        _cleanup_close_ int dfd = open(w->s->buffer_mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
}

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

/* The volume holds chunks again under its flushed tag (or has no state tag at all). Until the
 * dirty tag is written, EC2 says the opposite of the disk: retried every cycle, and the stop
 * waits for it (see stop_now()). */
static int own_tag_dirty(struct watch *w) {
        struct lb_watch_own *o = &w->st.own;
        /* The marker first: whatever becomes of the tag, the disk no longer claims "flushed". */
        remove_marker(w);
        w->own_dirty_pending = true;
        int r = tag_volume(w, o->volume_id, false, 0);
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

/* Finds the volume attached at LIFEBOAT_BUFFER_DEVICE (as boot does), its block device, and
 * checks it is the one mounted at LIFEBOAT_BUFFER_MOUNT. Until then nothing is ever tagged. */
static void own_identify(struct watch *w) {
        const struct lb_settings *s = w->s;
        char err[600], reason[256] = "";
        int r;

        if (w->st.own.state != LB_WATCH_OWN_UNKNOWN || lb_now_ms() < w->next_identify_ms)
                return;
        w->next_identify_ms = lb_now_ms() + LB_WATCH_IDENTIFY_RETRY_MS;

        const char *self[] = { w->self };
        const struct lb_filter filters[] = { { "attachment.instance-id", self, 1 } };
        _cleanup_volume_list_ struct lb_volume_list here = { 0 };
        r = lb_ec2_describe_volumes(w->aws.ec2, filters, 1, NULL, 0, &here);
        if (r < 0) {
                own_unknown(w, "DescribeVolumes failed: %s", lb_ec2_last_error_text(w->aws.ec2, err, sizeof err));
                return;
        }
        const struct lb_volume *v = NULL;
        const struct lb_attachment *att = NULL;
        for (size_t i = 0; i < here.n && !v; i++) {
                const struct lb_attachment *a = lb_volume_attachment_for(&here.items[i], w->self);
                if (a && lb_devname_same_slot(a->device, s->buffer_device)) {
                        v = &here.items[i];
                        att = a;
                }
        }
        if (!v) {
                own_unknown(w, "no EBS volume is attached at %s", s->buffer_device);
                return;
        }
        (void) lb_strscpy(w->st.own.volume_id, sizeof w->st.own.volume_id, v->id);

        const struct lb_blockdev_query q = {
                .sysfs_root = s->sysfs_root,
                .dev_root = s->dev_root,
                .volume_id = v->id,
                .requested_name = att->device,
                .size_bytes = v->size_gib << 30,
                .snapshot = NULL, /* attached at launch */
        };
        struct lb_blockdev dev;
        r = lb_blockdev_find(&q, &dev, reason, sizeof reason);
        if (r < 0) {
                own_unknown(w, "block device not found: %s", reason);
                return;
        }
        r = lb_mount_is_mounted_at(dev.devno, s->buffer_mount);
        if (r <= 0) {
                own_unknown(w, "it is not mounted at %s (did lifeboat boot run?)", s->buffer_mount);
                return;
        }
        w->dev = dev;
        w->st.own.reason[0] = '\0';
        enum lb_vol_state tagged = lb_volume_state(s, v);
        w->st.own.state = tagged == LB_VOL_FLUSHED ? LB_WATCH_OWN_FLUSHED : LB_WATCH_OWN_DIRTY;
        const char *at = lb_volume_lb_tag(s, v, LB_TAG_FLUSHED_AT);
        if (tagged == LB_VOL_FLUSHED && at)
                (void) lb_parse_iso8601(at, &w->st.own.flushed_at);
        lb_info(w->ctx, "own buffer volume %s (%s) is mounted at %s, tagged %s", v->id, dev.node, s->buffer_mount,
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
        r = tag_volume(w, o->volume_id, true, now);
        if (r < 0)
                return r;
        w->own_dirty_pending = false;  /* empty again, and said so last */
        o->reason[0] = '\0';
        o->flushed_at = now;
        if (from == LB_WATCH_OWN_UNDRAINED)
                lb_notice(w->ctx, "own buffer volume %s drained after the deadline: marker written, tagged flushed",
                          o->volume_id);
        else {
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
        check_backup_since_start(w);
        return 0;
}

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

static void own_check(struct watch *w) {
        struct lb_watch_own *o = &w->st.own;

        if (w->own_dirty_pending)
                (void) own_tag_dirty(w);
        for (unsigned pass = 0; pass < 2; pass++) {
                enum lb_watch_own_state cur = o->state;
                if (cur == LB_WATCH_OWN_NONE || cur == LB_WATCH_OWN_UNKNOWN)
                        return;
                if (!w->st.ending && cur != LB_WATCH_OWN_FLUSHED)
                        return; /* nothing to decide: no scan while idle */
                if (own_scan(w) < 0)
                        return;
                bool past = lb_now_ms() >= w->deadline_ms;
                enum lb_watch_own_state next = lb_watch_own_next(cur, w->st.ending, past, o->chunk_files == 0);
                if (next == cur) {
                        if (cur == LB_WATCH_OWN_DRAINING && !past &&
                            lb_now_ms() - w->last_flush_ms >= LB_WATCH_FLUSH_REPEAT_MS)
                                request_flush(w, "chunk files left, asking again", true);
                        return;
                }
                if (next == LB_WATCH_OWN_FLUSHED) {
                        if (own_tag_flushed(w, cur) < 0)
                                return;
                        o->state = next;
                        /* Look once more at once: a chunk written between the scan and the tag
                         * must not stay under a flushed tag until the next poll. */
                        continue;
                }
                if (cur == LB_WATCH_OWN_FLUSHED) {
                        /* The state follows the disk even when the tag could not: a failed
                         * CreateTags must not leave watch believing (and stopping) flushed. */
                        (void) own_tag_dirty(w);
                        o->state = next;
                        if (next == LB_WATCH_OWN_DRAINING)
                                request_flush(w, "chunk files appeared after the flush", false);
                } else
                        o->state = next;
                if (next == LB_WATCH_OWN_UNDRAINED) {
                        lb_warn(w->ctx,
                                "own buffer volume %s NOT drained by the deadline: %" PRIu64 " chunk file(s), %" PRIu64
                                " bytes remain; it stays dirty and the next boot recovers it",
                                o->volume_id, o->chunk_files, o->chunk_bytes);
                        check_backup_since_start(w);
                } else if (next == LB_WATCH_OWN_DRAINING && cur == LB_WATCH_OWN_DIRTY)
                        lb_info(w->ctx, "own buffer volume %s: %" PRIu64 " chunk file(s), %" PRIu64 " bytes to drain",
                                o->volume_id, o->chunk_files, o->chunk_bytes);
                return;
        }
}

/* ---- recovered volumes ---- */

static int rec_add(struct watch *w, const struct lb_manifest_entry *e) {
        size_t n = w->st.n_recovered;
        struct lb_watch_recovered *a = realloc(w->st.recovered, (n + 1) * sizeof *a);
        if (!a)
                return -ENOMEM;
        w->st.recovered = a;
        struct rec_rt *rt = realloc(w->rt, (n + 1) * sizeof *rt);
        if (!rt)
                return -ENOMEM;
        w->rt = rt;
        a[n] = (struct lb_watch_recovered) { .state = LB_WATCH_REC_DRAINING };
        (void) lb_strscpy(a[n].volume_id, sizeof a[n].volume_id, e->volume_id);
        (void) lb_strscpy(a[n].mount_path, sizeof a[n].mount_path, e->mount_path);
        rt[n] = (struct rec_rt) { 0 };
        w->st.n_recovered = n + 1;
        lb_info(w->ctx, "draining recovered volume %s%s%s at %s", e->volume_id,
                isempty(e->previous_owner) ? "" : " of ", e->previous_owner, e->mount_path);
        return 0;
}

static void rec_remove_at(struct watch *w, size_t i) {
        size_t n = w->st.n_recovered;
        memmove(&w->st.recovered[i], &w->st.recovered[i + 1], (n - i - 1) * sizeof *w->st.recovered);
        memmove(&w->rt[i], &w->rt[i + 1], (n - i - 1) * sizeof *w->rt);
        w->st.n_recovered = n - 1;
}

/* Whether the manifest's device is what is mounted at its mount path. */
static int rec_mounted(const struct lb_manifest_entry *e) {
        struct stat st;
        if (stat(e->device, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISBLK(st.st_mode))
                return 0;
        return lb_mount_is_mounted_at(st.st_rdev, e->mount_path);
}

/*
 * Whether an earlier watch got as far as the unmount in its release and then stopped (kill -9,
 * a crash): the mount point it removes right after the unmount is gone and the device is mounted
 * nowhere. Only the detach is left; it changes no tag, so whatever the volume holds stays as safe
 * as its tag says.
 */
static bool rec_unmounted_by_watch(const struct lb_manifest_entry *e) {
        struct stat st;
        if (lstat(e->mount_path, &st) == 0 || errno != ENOENT)
                return false;
        if (stat(e->device, &st) < 0)
                return errno == ENOENT; /* detached already */
        return S_ISBLK(st.st_mode) && lb_mount_find_devno(st.st_rdev, NULL) == 0;
}

static int rec_scan(struct watch *w, struct lb_watch_recovered *r) {
        _cleanup_chunk_scan_ struct lb_chunk_scan scan = { 0 };
        int k = lb_chunk_scan(r->mount_path, &w->matcher, 0, &scan);
        if (k < 0)
                return k;
        r->chunk_files = scan.files;
        r->chunk_bytes = scan.bytes;
        return 0;
}

/* Removes the entry from recovered.json under boot's lock (a boot run may be editing it). */
static int manifest_drop(struct watch *w, const char *volume_id) {
        _cleanup_close_ int lock_fd = -EBADF;
        int r = lb_lock_acquire(w->s->run_dir, "boot.lock", true, MANIFEST_LOCK_TIMEOUT_MS, &lock_fd);
        if (r < 0)
                return r;
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        r = lb_manifest_load(w->s->run_dir, &m);
        if (r < 0)
                return r;
        if (lb_manifest_remove(&m, volume_id) == 0)
                return 0;
        return lb_manifest_save(w->s->run_dir, &m);
}

static int remove_snippet(struct watch *w, const struct lb_manifest_entry *e) {
        char path[PATH_MAX];
        int r = 0;
        if (!isempty(e->config_file))
                r = lb_strscpy(path, sizeof path, e->config_file);
        else
                r = lb_fluentd_snippet_path(w->s->fluentd_conf_dir, e->volume_id, path, sizeof path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT) {
                r = -errno;
                lb_warn(w->ctx, "cannot remove fluentd config %s of %s: %s", path, e->volume_id, strerror(-r));
                return r;
        }
        if (w->s->fluentd_reload && !isempty(w->s->fluentd_rpc)) {
                char reason[512];
                if (lb_fluentd_reload_config(w->ctx, reason, sizeof reason) < 0)
                        lb_warn(w->ctx, "cannot ask fluentd to reload its config: %s", reason);
        }
        return 0;
}

/* The steps after the tag, each retried on the next cycle until it works. */
static void rec_finish_release(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct rec_rt *rt = &w->rt[i];
        char err[600] = "";
        int k;

        if (!rt->snippet_removed) {
                if (remove_snippet(w, e) < 0)
                        return;
                rt->snippet_removed = true;
        }
        if (!rt->unmounted) {
                k = rec_mounted(e);
                if (k > 0) {
                        /* Nothing may have come back between the tag and the unmount. */
                        if (rec_scan(w, r) == 0 && r->chunk_files > 0) {
                                lb_warn(w->ctx, "%s holds %" PRIu64 " chunk file(s) again after it was tagged flushed: "
                                                "tagged dirty again, left mounted",
                                        r->volume_id, r->chunk_files);
                                if (tag_volume(w, r->volume_id, false, 0) == 0) {
                                        r->state = LB_WATCH_REC_DRAINING;
                                        *rt = (struct rec_rt) { .snippet_removed = true };
                                }
                                return;
                        }
                        k = lb_umount(r->mount_path, err, sizeof err);
                        if (k < 0) {
                                if (!rt->warned)
                                        lb_warn(w->ctx, "cannot unmount %s (%s): %s; retrying every poll", r->mount_path,
                                                r->volume_id, err);
                                rt->warned = true;
                                return;
                        }
                } else if (k < 0)
                        return;
                (void) rmdir(r->mount_path); /* the empty mount point; fluentd must not find it later */
                rt->unmounted = true;
                rt->warned = false;
        }
        if (!rt->detached) {
                k = lb_ec2_detach_volume(w->aws.ec2, r->volume_id, w->self, false);
                /* Already detached (by hand, or an answer lost after it worked): fine. */
                if (k < 0 && k != -EALREADY && k != -ENOENT) {
                        if (!rt->warned)
                                lb_warn(w->ctx, "DetachVolume %s failed: %s (retrying)", r->volume_id,
                                        lb_ec2_last_error_text(w->aws.ec2, err, sizeof err));
                        rt->warned = true;
                        return;
                }
                rt->detached = true;
                rt->warned = false;
        }
        k = manifest_drop(w, r->volume_id);
        if (k < 0) {
                if (!rt->warned)
                        lb_warn(w->ctx, "cannot remove %s from %s/%s: %s (retrying)", r->volume_id, w->s->run_dir,
                                LB_MANIFEST_FILE, strerror(-k));
                rt->warned = true;
                return;
        }
        r->state = LB_WATCH_REC_RELEASED;
        r->released_at = time(NULL);
        if (r->backup_files > 0)
                lb_notice(w->ctx, "released %s: tagged flushed, fluentd config removed, unmounted, detached; "
                                  "%" PRIu64 " of its chunk(s) are in fluentd's backup directory, NOT delivered",
                          r->volume_id, r->backup_files);
        else
                lb_notice(w->ctx, "released %s: tagged flushed, fluentd config removed, unmounted, detached",
                          r->volume_id);
}

static void rec_release(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];

        /* Empty again right before the tag: the tag says "nothing left", so look last. */
        if (rec_scan(w, r) < 0 || r->chunk_files > 0) {
                r->state = LB_WATCH_REC_DRAINING;
                w->rt[i].empty_since_ms = 0;
                r->empty_since = 0;
                return;
        }
        if (tag_volume(w, r->volume_id, true, time(NULL)) < 0)
                return; /* stays SETTLING; tried again next cycle */
        r->state = LB_WATCH_REC_TAGGED;
        w->rt[i] = (struct rec_rt) { 0 };

        uint64_t n;
        if (count_backup(w, r->volume_id, 0, &n) == 0 && n > 0) {
                r->backup_files = n;
                lb_warn(w->ctx, "fluentd's backup directory %s holds %" PRIu64 " file(s) of %s: chunks fluentd "
                                "could not read, NOT delivered",
                        w->s->fluentd_backup_dir, n, r->volume_id);
        }
        rec_finish_release(w, i, e);
}

static void rec_check_one(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct rec_rt *rt = &w->rt[i];

        if (r->state == LB_WATCH_REC_TAGGED) {
                rec_finish_release(w, i, e);
                return;
        }
        int k = rec_mounted(e);
        if (k == 0 && rec_unmounted_by_watch(e)) {
                lb_notice(w->ctx, "recovered volume %s is unmounted and its mount point %s is gone: finishing the "
                                  "release an earlier watch began",
                          r->volume_id, e->mount_path);
                r->state = LB_WATCH_REC_TAGGED;
                *rt = (struct rec_rt) { .unmounted = true };
                rec_finish_release(w, i, e);
                return;
        }
        if (k <= 0) {
                if (r->state != LB_WATCH_REC_MISSING)
                        lb_warn(w->ctx, "recovered volume %s is not mounted at %s (device %s): leaving it alone",
                                r->volume_id, e->mount_path, e->device);
                r->state = LB_WATCH_REC_MISSING;
                rt->empty_since_ms = 0;
                r->empty_since = 0;
                return;
        }
        if (r->state == LB_WATCH_REC_MISSING) {
                lb_info(w->ctx, "recovered volume %s is mounted at %s again", r->volume_id, e->mount_path);
                r->state = LB_WATCH_REC_DRAINING;
        }
        k = rec_scan(w, r);
        if (k < 0) {
                if (!rt->warned)
                        lb_warn(w->ctx, "cannot scan %s for chunk files: %s", r->mount_path, strerror(-k));
                rt->warned = true;
                return;
        }
        rt->warned = false;
        enum lb_watch_rec_state next = lb_watch_rec_next(r->chunk_files, lb_now_ms(), w->s->settle_ms,
                                                         &rt->empty_since_ms);
        if (next == LB_WATCH_REC_DRAINING) {
                if (r->state == LB_WATCH_REC_SETTLING)
                        lb_info(w->ctx, "recovered volume %s holds %" PRIu64 " chunk file(s) again", r->volume_id,
                                r->chunk_files);
                r->empty_since = 0;
                r->state = next;
                return;
        }
        if (r->state == LB_WATCH_REC_DRAINING) {
                r->empty_since = time(NULL);
                if (w->s->settle_ms > 0)
                        lb_info(w->ctx, "recovered volume %s holds no chunk file; releasing it in %.1f s unless chunks "
                                        "reappear",
                                r->volume_id, (double) w->s->settle_ms / 1000.0);
        }
        r->state = LB_WATCH_REC_SETTLING;
        if (next == LB_WATCH_REC_TAGGED)
                rec_release(w, i, e);
}

static void recovered_check(struct watch *w) {
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        int r = lb_manifest_load(w->s->run_dir, &m);
        if (r < 0) {
                if (!w->manifest_failed)
                        lb_warn(w->ctx, "cannot read %s/%s: %s", w->s->run_dir, LB_MANIFEST_FILE, strerror(-r));
                w->manifest_failed = true;
                return;
        }
        if (w->manifest_failed)
                lb_info(w->ctx, "%s/%s can be read again", w->s->run_dir, LB_MANIFEST_FILE);
        w->manifest_failed = false;

        for (size_t i = 0; i < m.n; i++) {
                const struct lb_watch_recovered *known = lb_watch_state_find_recovered(&w->st, m.entries[i].volume_id);
                if (known && known->state == LB_WATCH_REC_RELEASED) {
                        /* boot recovered it again (it came back dirty): watch it anew */
                        rec_remove_at(w, (size_t) (known - w->st.recovered));
                        known = NULL;
                }
                if (!known && rec_add(w, &m.entries[i]) < 0)
                        return;
        }
        for (size_t i = 0; i < w->st.n_recovered;) {
                struct lb_watch_recovered *rv = &w->st.recovered[i];
                if (rv->state == LB_WATCH_REC_RELEASED) {
                        i++;
                        continue;
                }
                const struct lb_manifest_entry *e = lb_manifest_find(&m, rv->volume_id);
                if (!e) {
                        lb_info(w->ctx, "%s left %s/%s: no longer watched", rv->volume_id, w->s->run_dir,
                                LB_MANIFEST_FILE);
                        rec_remove_at(w, i);
                        continue;
                }
                rec_check_one(w, i, e);
                i++;
        }
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

/* ---- the loop ---- */

static void cycle(struct watch *w) {
        w->flush_sent_this_cycle = false;
        /* After a signal the system is going down: IMDS can add nothing but delay. */
        if (!w->signalled)
                poll_imds(w);
        own_identify(w);
        own_check(w);
        save_state(w);
        recovered_check(w);
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
        r = lb_tag_key(s, LB_TAG_STATE, w->key_state, sizeof w->key_state);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_FLUSHED_AT, w->key_flushed_at, sizeof w->key_flushed_at);
        if (r < 0)
                return -EINVAL;
        return 0;
}

static void watch_done(struct watch *w) {
        lb_chunk_matcher_done(&w->matcher);
        lb_watch_state_done(&w->st);
        free(w->rt);
        free(w->written);
        lb_aws_close(&w->aws);
}

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
                if (w->opts->once)
                        break;
                if (w->signalled && stop_now(w))
                        break;
                uint64_t elapsed = lb_now_ms() - start;
                uint64_t wait = elapsed < s->poll_interval_ms ? s->poll_interval_ms - elapsed : 0;
                if (w->signalled && w->deadline_ms > lb_now_ms())
                        wait = MIN(wait, w->deadline_ms - lb_now_ms());
                if (wait > 0 && !(ctx->interrupted && *ctx->interrupted))
                        lb_sleep_ms(wait, ctx->interrupted);
        }
        if (!w->opts->once)
                stop_report(w);
        save_state(w);
        return exit_status(w);
}

int lb_watch_run(struct lb_context *ctx, const struct lb_watch_options *opts) {
        const struct lb_settings *s = &ctx->settings;
        struct watch w = {
                .ctx = ctx,
                .s = s,
                .opts = opts,
                .deadline_ms = UINT64_MAX,
                .started_at = time(NULL),
        };
        int r = watch_init(&w);
        if (r < 0) {
                watch_done(&w);
                return r;
        }

        /* One watch per instance: two would tag over each other. */
        _cleanup_close_ int lock_fd = -EBADF;
        r = lb_lock_acquire(s->run_dir, "watch.lock", false, 0, &lock_fd);
        if (r < 0) {
                lb_err(ctx, "%s in %s: %s", r == -EWOULDBLOCK ? "another lifeboat watch is running"
                                                              : "cannot take the watch lock",
                       s->run_dir, strerror(-r));
                watch_done(&w);
                return r == -EWOULDBLOCK ? -EBUSY : r;
        }

        r = lb_aws_open(ctx, LB_AWS_NEED_IDENTITY, &w.aws);
        if (r < 0) {
                watch_done(&w);
                return r;
        }
        w.self = w.aws.identity.instance_id;

        w.st.pid = (long) getpid();
        w.st.started_at = w.started_at;
        w.st.imds_ok = true;
        (void) lb_strscpy(w.st.instance_id, sizeof w.st.instance_id, w.self);
        (void) lb_strscpy(w.st.own.mount_path, sizeof w.st.own.mount_path, s->buffer_mount);
        w.st.own.state = isempty(s->buffer_device) ? LB_WATCH_OWN_NONE : LB_WATCH_OWN_UNKNOWN;

        own_identify(&w);
        if (!opts->once)
                lb_notice(ctx, "watching instance %s: %s, polling IMDS every %.1f s", w.self,
                          w.st.own.state == LB_WATCH_OWN_NONE ? "no own buffer volume (recovery only)"
                          : w.st.own.state == LB_WATCH_OWN_UNKNOWN ? "own buffer volume not confirmed yet"
                                                                   : "own buffer volume confirmed",
                          (double) s->poll_interval_ms / 1000.0);

        r = watch_loop(&w);
        watch_done(&w);
        return r;
}
