/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: the volumes boot recovered (recovered.json). Each is
 * scanned every cycle; once it has held no chunk file for LIFEBOAT_SETTLE it
 * is tagged flushed, its fluentd snippet removed (and fluentd reloaded),
 * unmounted in every mount namespace that has a copy of it (a container's
 * first, then the host's), its mount point removed, detached once nothing
 * holds the device any more, and dropped from the manifest. Each step after
 * the tag is retried on the next cycle until it works; a process that keeps
 * the volume busy is reported, never killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/lock.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/chunks.h"
#include "lifeboat/disk/mounts.h"
#include "lifeboat/disk/mountns.h"
#include "lifeboat/fluentd/rpc.h"
#include "lifeboat/fluentd/snippet.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/watch-state.h"
#include "lifeboat/watch/watch.h"
#include "watch-internal.h"
#include "notice.h"
#include "own.h"
#include "release.h"
#include "tag.h"
#include "backup.h"

/* Waiting for boot's lock before editing the manifest. */
#define MANIFEST_LOCK_TIMEOUT_MS 5000u

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

/* ---- the list of recovered volumes ---- */

static void rec_remove_at(struct watch *w, size_t i);

static int rec_add(struct watch *w, const struct lb_manifest_entry *e) {
        /* watch.json lists at most LB_WATCH_MAX_RECOVERED: the oldest released one makes room. */
        for (size_t i = 0; w->st.n_recovered >= LB_WATCH_MAX_RECOVERED && i < w->st.n_recovered; i++)
                if (w->st.recovered[i].state == LB_WATCH_REC_RELEASED)
                        rec_remove_at(w, i);
        if (w->st.n_recovered >= LB_WATCH_MAX_RECOVERED)
                return -E2BIG;
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
        rt[n] = (struct rec_rt) { .tag_unknown = !w->manifest_merged };
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

/* ---- looking at one ---- */

/* Whether the manifest's device is what is mounted at its mount path. */
static int rec_mounted(const struct lb_manifest_entry *e) {
        struct stat st;
        int r = lb_stat_block(-1, e->device, &st, NULL, 0);
        if (r == -ENOENT || r == -ENOTBLK)
                return 0;
        if (r < 0)
                return r;
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
        int r = lb_stat_block(-1, e->device, &st, NULL, 0);
        if (r == -ENOENT)
                return true; /* detached already */
        _cleanup_ns_mounts_ struct lb_ns_mounts ms = { 0 };
        return r >= 0 && lb_mountns_find(st.st_rdev, &ms) == 0 && ms.n == 0;
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

/* ---- the steps of a release ---- */

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
        int r = lb_fluentd_snippet_path(w->s->fluentd_conf_dir, e->volume_id, path, sizeof path);
        if (r < 0)
                return r;
        /* recovered.json is a file: only the volume's own snippet in LIFEBOAT_FLUENTD_CONF_DIR
         * is ever removed, whatever path it names. */
        if (!isempty(e->config_file) && !streq(e->config_file, path))
                lb_warn(w->ctx, "%s/%s names %s as the fluentd config of %s, not its snippet %s: not removed",
                        w->s->run_dir, LB_MANIFEST_FILE, e->config_file, e->volume_id, path);
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

/* Chunk files came back between the tag and the unmount: tagged dirty again, left mounted. */
/* After the flushed tag, the volume can no longer be shown drained (why): dirty again, left
 * mounted, and released only after it drains and settles again. */
static void rec_untag(struct watch *w, size_t i, const char *why) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        lb_warn(w->ctx, "%s %s after it was tagged flushed: tagged dirty again, left mounted", r->volume_id, why);
        if (watch_tag_volume(w, r->volume_id, false, 0) == 0) {
                r->state = LB_WATCH_REC_DRAINING;
                w->rt[i] = (struct rec_rt) { .snippet_removed = true };
        }
}

/* The volume's device (the manifest's node): its devno, -ENOENT once it is gone (detached). */
static int rec_devno(const struct lb_manifest_entry *e, dev_t *ret) {
        struct stat st;
        int r = lb_stat_block(-1, e->device, &st, NULL, 0);
        if (r == -ENOTBLK)
                return -ENOENT; /* the node is gone and something else took its name */
        if (r < 0)
                return r;
        *ret = st.st_rdev;
        return 0;
}

static void rec_clear_holders(struct lb_watch_recovered *r) {
        r->n_holders = 0;
        r->holders_total = 0;
}

/* Says (once, and again when they change) who keeps the volume busy, and keeps it in
 * watch.json for "lifeboat status". Nothing is killed or signalled: the step is retried. */
static void rec_report_busy(struct watch *w, size_t i, dev_t devno, const char *what) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct lb_holder hs[LB_WATCH_MAX_HOLDERS];
        size_t total = 0;
        if (lb_device_holders(devno, hs, ELEMENTSOF(hs), &total) < 0)
                total = 0;
        size_t n = MIN(total, ELEMENTSOF(hs));
        bool changed = n != r->n_holders || total != r->holders_total;
        for (size_t k = 0; !changed && k < n; k++)
                changed = hs[k].pid != r->holders[k].pid;
        memcpy(r->holders, hs, n * sizeof *hs);
        r->n_holders = n;
        r->holders_total = total;
        if (w->rt[i].warned && !changed)
                return;
        w->rt[i].warned = true;

        _cleanup_buf_ struct lb_buf who = { .limit = 4096 };
        for (size_t k = 0; k < n; k++)
                (void) lb_buf_printf(&who, "%s pid %ld (%s) in mount namespace mnt:[%" PRIu64 "]", k > 0 ? "," : "",
                                     (long) hs[k].pid, hs[k].comm, hs[k].ns);
        if (total > n)
                (void) lb_buf_printf(&who, " and %zu more", total - n);
        lb_warn(w->ctx, "%s; %s%s; retrying every poll, nothing is killed", what,
                total > 0 ? "in use by" : "no process holds a file on it (a lazily detached mount?)",
                who.data ? who.data : "");
}

/*
 * Unmounts the device in every mount namespace that has it, matched by major:minor: the copies
 * other namespaces (containers) hold first, then ours, so that the volume stays mounted where
 * the manifest says until no one else has it. 0 when it is mounted nowhere any more.
 */
static int rec_unmount_everywhere(struct watch *w, size_t i, dev_t devno) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        _cleanup_ns_mounts_ struct lb_ns_mounts ms = { 0 };
        char err[600] = "", first_err[600] = "";
        int busy = 0;
        int k = lb_mountns_find(devno, &ms);
        if (k < 0) {
                if (!w->rt[i].warned)
                        lb_warn(w->ctx, "cannot look for %s in the mount namespaces: %s (retrying)", r->volume_id,
                                strerror(-k));
                w->rt[i].warned = true;
                return k;
        }
        for (int own = 0; own <= 1 && busy == 0; own++)
                /* last first: a mount stacked on another comes off before it */
                for (size_t j = ms.n; j-- > 0;) {
                        const struct lb_ns_mount *m = &ms.items[j];
                        if (m->own != (own == 1))
                                continue;
                        err[0] = '\0';
                        k = lb_mountns_umount(m, devno, err, sizeof err);
                        if (k == -ESTALE)
                                continue; /* changed since the scan: seen again below */
                        if (k < 0) {
                                if (busy == 0)
                                        (void) lb_strscpy(first_err, sizeof first_err, err);
                                busy = k;
                                continue;
                        }
                        if (!m->own)
                                lb_info(w->ctx, "unmounted %s at %s in mount namespace mnt:[%" PRIu64 "] (pid %ld)",
                                        r->volume_id, m->target, m->ns, (long) m->pid);
                }
        if (busy < 0) {
                char what[800];
                (void) lb_snprintf(what, sizeof what, "cannot unmount %s: %s", r->volume_id, first_err);
                rec_report_busy(w, i, devno, what);
                return busy;
        }
        lb_ns_mounts_done(&ms);
        k = lb_mountns_find(devno, &ms);
        if (k < 0)
                return k;
        if (ms.n == 0)
                return 0;
        /* A new copy meanwhile (a container started), or one that could not be reached by its
         * name (something mounted over it): next poll. */
        if (!w->rt[i].warned)
                lb_warn(w->ctx, "%s is still mounted at %s in mount namespace mnt:[%" PRIu64 "] (pid %ld); retrying "
                                "every poll",
                        r->volume_id, ms.items[0].target, ms.items[0].ns, (long) ms.items[0].pid);
        w->rt[i].warned = true;
        return -EAGAIN;
}

/* Removes the empty mount point, without following a symlink (fluentd must not find it later). Only
 * once no namespace has the volume: removing a mount point detaches the mounts on it in every
 * other namespace, lazily, busy or not. */
static void rec_remove_mount_point(const struct lb_watch_recovered *r) {
        _cleanup_close_ int dfd = -EBADF;
        char name[NAME_MAX + 1];
        if (lb_chase_parent(r->mount_path, &dfd, name, sizeof name) >= 0)
                (void) unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Whether devno is the own buffer volume's: never touched by a release. */
static bool rec_is_own(const struct watch *w, dev_t devno) {
        return (w->st.own.state != LB_WATCH_OWN_NONE && w->dev.devno == devno) ||
               lb_mount_is_mounted_at(devno, w->s->buffer_mount) > 0;
}

/*
 * Between the flushed tag and the unmount nothing may have come back, and what cannot be looked
 * at is not assumed empty: a scan that fails, or the device mounted somewhere but not at its
 * mount point (the container can rename what lies under /var/lib/lifeboat), tags it dirty again.
 * 0 to go on with the unmount.
 */
static int rec_recheck(struct watch *w, size_t i, dev_t devno, bool mounted_at_its_path) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        char why[160];
        if (mounted_at_its_path) {
                int k = rec_scan(w, r);
                if (k == 0 && r->chunk_files == 0)
                        return 0;
                if (k < 0)
                        lb_set_reason(why, sizeof why, "cannot be scanned for chunk files (%s)", strerror(-k));
                else
                        lb_set_reason(why, sizeof why, "holds %" PRIu64 " chunk file(s) again", r->chunk_files);
                rec_untag(w, i, why);
                return k < 0 ? k : -EAGAIN;
        }
        _cleanup_ns_mounts_ struct lb_ns_mounts ms = { 0 };
        int k = lb_mountns_find(devno, &ms);
        if (k < 0)
                return k;
        if (ms.n == 0)
                return 0;
        lb_set_reason(why, sizeof why, "is mounted, but not at %s: what it holds cannot be checked", r->mount_path);
        rec_untag(w, i, why);
        return -EAGAIN;
}

/* 0 once it is unmounted everywhere (or was not mounted), negative to try again next cycle. */
static int rec_unmount(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct rec_rt *rt = &w->rt[i];
        dev_t devno = 0;
        int k = rec_devno(e, &devno);
        if (k < 0 && k != -ENOENT)
                return k;
        if (k >= 0) {
                if (rec_is_own(w, devno)) {
                        if (!rt->warned)
                                lb_err(w->ctx, "%s's device %s is the own buffer volume's: not releasing it", r->volume_id,
                                       e->device);
                        rt->warned = true;
                        return -EBUSY;
                }
                k = rec_mounted(e);
                if (k < 0)
                        return k;
                k = rec_recheck(w, i, devno, k > 0);
                if (k < 0)
                        return k;
                k = rec_unmount_everywhere(w, i, devno);
                if (k < 0)
                        return k;
        }
        rec_remove_mount_point(r);
        rec_clear_holders(r);
        rt->unmounted = true;
        rt->warned = false;
        return 0;
}

/* Right before DetachVolume: no namespace may have the device mounted, and nobody may claim it
 * (a mount detached lazily with a file still open on it). */
static int rec_confirm_free(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        dev_t devno;
        int k = rec_devno(e, &devno);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        _cleanup_ns_mounts_ struct lb_ns_mounts ms = { 0 };
        k = lb_mountns_find(devno, &ms);
        if (k < 0)
                return k;
        if (ms.n > 0) {
                w->rt[i].unmounted = false; /* mounted again somewhere: unmount again */
                return -EAGAIN;
        }
        k = lb_device_claimed(e->device, devno);
        if (k == 0 || k == -EXDEV)
                return 0;
        if (k > 0) {
                char what[600];
                (void) lb_snprintf(what, sizeof what, "not detaching %s: its device %s is still in use",
                                   w->st.recovered[i].volume_id, e->device);
                rec_report_busy(w, i, devno, what);
                return -EBUSY;
        }
        return k;
}

static int rec_detach(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct rec_rt *rt = &w->rt[i];
        char err[600];
        int k = rec_confirm_free(w, i, e);
        if (k < 0)
                return k;
        rec_clear_holders(r);
        k = lb_ec2_detach_volume(w->aws.ec2, r->volume_id, w->self, false);
        /* Already detached (by hand, or an answer lost after it worked): fine. */
        if (k < 0 && k != -EALREADY && k != -ENOENT) {
                if (!rt->warned)
                        lb_warn(w->ctx, "DetachVolume %s failed: %s (retrying)", r->volume_id,
                                lb_ec2_last_error_text(w->aws.ec2, err, sizeof err));
                rt->warned = true;
                return k;
        }
        rt->detached = true;
        rt->warned = false;
        return 0;
}

static int rec_forget(struct watch *w, size_t i) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        int k = manifest_drop(w, r->volume_id);
        if (k < 0) {
                if (!w->rt[i].warned)
                        lb_warn(w->ctx, "cannot remove %s from %s/%s: %s (retrying)", r->volume_id, w->s->run_dir,
                                LB_MANIFEST_FILE, strerror(-k));
                w->rt[i].warned = true;
                return k;
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
        return 0;
}

/* The steps after the tag, each retried on the next cycle until it works. */
static void rec_finish_release(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct rec_rt *rt = &w->rt[i];

        if (!rt->snippet_removed) {
                if (remove_snippet(w, e) < 0)
                        return;
                rt->snippet_removed = true;
        }
        if (!rt->unmounted && rec_unmount(w, i, e) < 0)
                return;
        if (!rt->detached && rec_detach(w, i, e) < 0)
                return;
        (void) rec_forget(w, i);
}

static void rec_count_backup(struct watch *w, struct lb_watch_recovered *r) {
        uint64_t n;
        if (watch_count_backup(w, r->volume_id, 0, &n) < 0 || n == 0)
                return;
        r->backup_files = n;
        lb_warn(w->ctx, "fluentd's backup directory %s holds %" PRIu64 " file(s) of %s: chunks fluentd "
                        "could not read, NOT delivered",
                w->s->fluentd_backup_dir, n, r->volume_id);
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
        if (watch_tag_volume(w, r->volume_id, true, time(NULL)) < 0)
                return; /* stays SETTLING; tried again next cycle */
        r->state = LB_WATCH_REC_TAGGED;
        w->rt[i] = (struct rec_rt) { 0 };
        rec_count_backup(w, r);
        rec_finish_release(w, i, e);
}

/* ---- following one ---- */

/* Whether the volume is mounted where the manifest says; when it is not, the state says why
 * (or the release an earlier watch began is finished). */
static bool rec_check_mounted(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct rec_rt *rt = &w->rt[i];
        int k = rec_mounted(e);
        if (k == 0 && rec_unmounted_by_watch(e)) {
                lb_notice(w->ctx, "recovered volume %s is unmounted and its mount point %s is gone: finishing the "
                                  "release an earlier watch began",
                          r->volume_id, e->mount_path);
                r->state = LB_WATCH_REC_TAGGED;
                *rt = (struct rec_rt) { .unmounted = true };
                rec_finish_release(w, i, e);
                return false;
        }
        if (k <= 0) {
                if (r->state != LB_WATCH_REC_MISSING)
                        lb_warn(w->ctx, "recovered volume %s is not mounted at %s (device %s): leaving it alone",
                                r->volume_id, e->mount_path, e->device);
                r->state = LB_WATCH_REC_MISSING;
                rt->empty_since_ms = 0;
                r->empty_since = 0;
                return false;
        }
        if (r->state == LB_WATCH_REC_MISSING) {
                lb_info(w->ctx, "recovered volume %s is mounted at %s again", r->volume_id, e->mount_path);
                r->state = LB_WATCH_REC_DRAINING;
        }
        return true;
}

/*
 * A volume that holds chunks (or cannot be shown not to) must be tagged dirty. One that was in the
 * manifest when watch started may carry the flushed tag an earlier watch gave it before it
 * stopped mid-release: tagged dirty once, to be sure.
 */
static void rec_make_sure_dirty(struct watch *w, size_t i) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        if (!w->rt[i].tag_unknown)
                return;
        if (watch_tag_volume(w, r->volume_id, false, 0) == 0)
                w->rt[i].tag_unknown = false;
}

/* Scanned: still draining, settling, or released once it stayed empty long enough. */
static void rec_settle(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        struct rec_rt *rt = &w->rt[i];
        enum lb_watch_rec_state next = lb_watch_rec_next(r->chunk_files, lb_now_ms(), w->s->settle_ms,
                                                         &rt->empty_since_ms);
        if (next == LB_WATCH_REC_DRAINING) {
                rec_make_sure_dirty(w, i);
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

/*
 * The scan failed: a tree deeper than the scanner goes (it stops at LB_CHUNK_SCAN_MAX_DEPTH
 * levels, so each try costs a bounded walk), a path too long, an unreadable directory. Chunks
 * may hide there, so the volume cannot be confirmed drained: it is never tagged, stays mounted,
 * attached and dirty, and watch.json and status say why. Tried again every poll.
 */
static void rec_unconfirmed(struct watch *w, size_t i, int error) {
        struct lb_watch_recovered *r = &w->st.recovered[i];
        char reason[sizeof r->reason];
        if (error == -ELOOP)
                lb_set_reason(reason, sizeof reason, "nested deeper than %u directory levels: cannot confirm it is drained",
                              LB_CHUNK_SCAN_MAX_DEPTH);
        else
                lb_set_reason(reason, sizeof reason, "cannot scan it for chunk files (%s): cannot confirm it is drained",
                              strerror(-error));
        if (r->state != LB_WATCH_REC_UNCONFIRMED || !streq(r->reason, reason))
                lb_warn(w->ctx, "recovered volume %s at %s: %s; left mounted and dirty, it needs a human", r->volume_id,
                        r->mount_path, reason);
        rec_make_sure_dirty(w, i);
        r->state = LB_WATCH_REC_UNCONFIRMED;
        (void) lb_strscpy(r->reason, sizeof r->reason, reason);
        w->rt[i].empty_since_ms = 0;
        r->empty_since = 0;
}

static void rec_check_one(struct watch *w, size_t i, const struct lb_manifest_entry *e) {
        struct lb_watch_recovered *r = &w->st.recovered[i];

        if (r->state == LB_WATCH_REC_TAGGED) {
                rec_finish_release(w, i, e);
                return;
        }
        if (!rec_check_mounted(w, i, e))
                return;
        int k = rec_scan(w, r);
        if (k < 0) {
                rec_unconfirmed(w, i, k);
                return;
        }
        if (r->state == LB_WATCH_REC_UNCONFIRMED) {
                lb_info(w->ctx, "recovered volume %s can be scanned again", r->volume_id);
                r->state = LB_WATCH_REC_DRAINING;
                r->reason[0] = '\0';
        }
        rec_settle(w, i, e);
}

/* ---- all of them ---- */

/* Adds the manifest's volumes not watched yet; false when out of memory. */
static bool rec_merge(struct watch *w, const struct lb_manifest *m) {
        for (size_t i = 0; i < m->n; i++) {
                const struct lb_watch_recovered *known = lb_watch_state_find_recovered(&w->st, m->entries[i].volume_id);
                if (known && known->state == LB_WATCH_REC_RELEASED) {
                        /* boot recovered it again (it came back dirty): watch it anew */
                        rec_remove_at(w, (size_t) (known - w->st.recovered));
                        known = NULL;
                }
                if (!known && rec_add(w, &m->entries[i]) < 0)
                        return false;
        }
        w->manifest_merged = true;
        return true;
}

static void rec_check_all(struct watch *w, const struct lb_manifest *m) {
        for (size_t i = 0; i < w->st.n_recovered;) {
                struct lb_watch_recovered *rv = &w->st.recovered[i];
                if (rv->state == LB_WATCH_REC_RELEASED) {
                        i++;
                        continue;
                }
                const struct lb_manifest_entry *e = lb_manifest_find(m, rv->volume_id);
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

void watch_recovered_check(struct watch *w) {
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

        if (!rec_merge(w, &m))
                return;
        rec_check_all(w, &m);
}
