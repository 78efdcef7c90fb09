/* SPDX-License-Identifier: MIT */
/*
 * lifeboat boot: recovering volumes once they are attached here (find the device, verify, mount
 * read-only at RECOVERY_ROOT/VOLUME_ID, write the fluentd snippet, remember it in the manifest,
 * take ownership), or giving one back: quarantined when its content is suspect, else dirty.
 *
 * The volumes a poll finds attached are recovered together, by up to RECOVERY_THREADS threads
 * (the main thread one of them): the local work (device wait, probe, mount, snippet) of K
 * volumes then costs about the slowest one, not K in a row. It is fork and join: while the
 * threads run, the main thread does nothing but recoveries, so the claims, the report, the
 * manifest and the EC2 client are never touched concurrently. A recovery reads what does not
 * change during the batch (settings, its claim, the snapshot) and writes only its own struct
 * recovery; EC2 calls, report and manifest come after the join.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "recover.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/boot/boot.h"
#include "lifeboat/disk/mounts.h"
#include "lifeboat/disk/probe.h"
#include "lifeboat/fluentd/snippet.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/mount-marker.h"

/*
 * The instance that wrote the volume's buffers: what the manifest learnt when this instance
 * first recovered it, else the owner tag unless it names us (we tag ourselves the owner once
 * it is recovered, so on a rerun the tag no longer tells). "" when unknown.
 */
static const char *previous_owner(const struct boot *b, const struct claim *c) {
        const struct lb_manifest_entry *e = lb_manifest_find(&b->manifest, c->vol.id);
        if (e && !isempty(e->previous_owner))
                return e->previous_owner;
        const char *tag = lb_volume_tag(&c->vol, b->key_owner);
        if (tag && lb_instance_id_valid(tag) && !streq(tag, b->self))
                return tag;
        return "";
}

int boot_finish(struct boot *b, struct claim *c, enum lb_boot_outcome outcome, const char *reason,
                struct lb_boot_volume **ret) {
        struct lb_boot_volume *v;
        c->state = CLAIM_FINISHED;
        c->outcome = outcome;
        int r = boot_report_add(b, c->vol.id, outcome, &v);
        if (r < 0)
                return r;
        (void) lb_strscpy(v->device, sizeof v->device, c->device);
        (void) lb_strscpy(v->previous_owner, sizeof v->previous_owner, previous_owner(b, c));
        if (reason)     /* quotes tags: cut on a character boundary, as the reason tag is */
                (void) lb_utf8_copy(v->reason, sizeof v->reason, reason);
        if (outcome == LB_BOOT_QUARANTINED || outcome == LB_BOOT_LEFT_DIRTY)
                lb_warn(b->ctx, "%s %s: %s", c->vol.id, outcome == LB_BOOT_QUARANTINED ? "quarantined" : "left dirty",
                        strna(reason));
        if (ret)
                *ret = v;
        return 0;
}

/* Tags the volume quarantined with a reason, so no instance mounts it again and reap reports it. */
static int quarantine(struct boot *b, const char *volume_id, const char *reason) {
        char value[256];
        (void) lb_utf8_copy(value, sizeof value, reason);
        const struct lb_tag tags[] = {
                { b->key_state, (char *) "quarantined" },
                { b->key_reason, value },
                { b->key_owner, (char *) b->self },
        };
        return boot_create_tags(b, volume_id, tags, ELEMENTSOF(tags));
}

int boot_give_back(struct boot *b, struct claim *c, bool suspect, const char *reason) {
        char why[512];
        if (suspect && quarantine(b, c->vol.id, reason) < 0) {
                /* Not tagged: the report must not say quarantined. It goes back dirty, and the
                 * next boot that finds it checks it again (and quarantines it, or crashes at most
                 * that one instance, whose marker then stops it there). */
                (void) lb_snprintf(why, sizeof why, "%s; tagging it quarantined failed, so it stays dirty", reason);
                reason = why;
                suspect = false;
        }
        (void) boot_detach(b, c->vol.id);
        return boot_finish(b, c, suspect ? LB_BOOT_QUARANTINED : LB_BOOT_LEFT_DIRTY, reason, NULL);
}

/* Whether a failed mount says the filesystem itself is damaged (corrupt metadata, bad checksum,
 * unreadable superblock). Anything else (the mount point, memory, a busy or failing device) is
 * about this instance or the moment: the volume goes back dirty, not to a human. */
static bool mount_error_blames_content(int r) {
        return r == -EUCLEAN || r == -EBADMSG || r == -EINVAL;
}

/* A marker of an earlier boot: this machine went down while it mounted the volume (see
 * lb_mount_marker). Returns 1 when the volume must not be mounted again. */
static int mount_crashed_before(struct boot *b, struct claim *c, char *reason, size_t reason_size) {
        struct lb_mount_marker m;
        int r = lb_mount_marker_find(b->s->state_dir, c->vol.id, &m);
        if (r <= 0)
                return r;
        if (m.earlier_boot) {
                char at[40];
                (void) lb_snprintf(reason, reason_size, "the instance went down while mounting it (mount in progress "
                                   "since %s): not mounting it again",
                                   lb_format_iso8601_or_dash(m.since, at, sizeof at));
        } else
                lb_info(b->ctx, "an earlier run of this boot stopped while mounting %s: trying again", c->vol.id);
        r = lb_mount_marker_remove(b->s->state_dir, c->vol.id);
        if (r < 0)
                lb_warn(b->ctx, "cannot remove the mount marker of %s in %s: %s", c->vol.id, b->s->state_dir,
                        STRERROR(r));
        return m.earlier_boot;
}

/* Mounts with the marker on the root disk around the mount. */
static int mount_marked(struct boot *b, struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                        const char *fstype, const char *options, char *err, size_t err_size) {
        int r = lb_mount_marker_write(b->s->state_dir, c->vol.id, dev->node, time(NULL));
        if (r < 0) {
                (void) lb_snprintf(err, err_size, "cannot write its mount marker in %s: %s", b->s->state_dir,
                                   STRERROR(r));
                return r;
        }
        r = lb_mount(dev->node, mount_path, fstype, options, err, err_size);
        int k = lb_mount_marker_remove(b->s->state_dir, c->vol.id);
        if (k < 0)
                lb_warn(b->ctx, "cannot remove the mount marker of %s in %s: %s (the next boot would quarantine it)",
                        c->vol.id, b->s->state_dir, STRERROR(k));
        return r;
}

static int mount_recovered(struct boot *b, struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                           char *reason, size_t reason_size, bool *ret_suspect) {
        struct lb_probe probe = { 0 };
        int r = lb_mount_is_mounted_at(dev->devno, mount_path);
        if (r > 0) {
                (void) lb_mount_marker_remove(b->s->state_dir, c->vol.id); /* an earlier run mounted it */
                return 0;
        }
        r = mount_crashed_before(b, c, reason, reason_size);
        if (r != 0) {
                *ret_suspect = r > 0;
                if (r < 0)
                        (void) lb_snprintf(reason, reason_size, "cannot read its mount marker in %s: %s",
                                           b->s->state_dir, STRERROR(r));
                return r < 0 ? r : -EUCLEAN;
        }

        r = lb_blockdev_verify(dev, lb_volume_tag(&c->vol, b->key_fs_uuid), &probe, reason, reason_size);
        if (r < 0) {
                /* Blank, foreign or mismatched content is never formatted nor mounted. A device
                 * that is busy or an I/O error says nothing about the content: leave it dirty. */
                *ret_suspect = r == -ENOMEDIUM || r == -EMEDIUMTYPE || r == -ENOTUNIQ || r == -ESTALE;
                return r;
        }
        r = lb_fluentd_check_recovery_path(mount_path, b->s->buffer_mount);
        if (r < 0) {
                (void) lb_snprintf(reason, reason_size, "recovery path %s overlaps the live buffer %s", mount_path,
                                   b->s->buffer_mount);
                *ret_suspect = false;
                return r;
        }
        char options[128], err[512] = "";
        r = lb_mount_options(probe.type, true, options, sizeof options);
        if (r >= 0)
                r = mount_marked(b, c, dev, mount_path, probe.type, options, err, sizeof err);
        if (r < 0) {
                (void) lb_snprintf(reason, reason_size, "mount failed: %s", err);
                *ret_suspect = mount_error_blames_content(r);
                return r;
        }
        return 0;
}

/* Adds the recovered volume to the manifest (saved once for the whole batch). */
static int remember(struct boot *b, const struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                    const char *config_file) {
        struct lb_manifest_entry e = { .recovered_at = time(NULL) };
        (void) lb_strscpy(e.volume_id, sizeof e.volume_id, c->vol.id);
        (void) lb_strscpy(e.device, sizeof e.device, dev->node);
        (void) lb_strscpy(e.mount_path, sizeof e.mount_path, mount_path);
        (void) lb_strscpy(e.config_file, sizeof e.config_file, config_file);
        (void) lb_strscpy(e.previous_owner, sizeof e.previous_owner, previous_owner(b, c));
        const char *uuid = lb_volume_tag(&c->vol, b->key_fs_uuid);
        if (uuid)
                (void) lb_strscpy(e.fs_uuid, sizeof e.fs_uuid, uuid);
        const struct lb_manifest_entry *old = lb_manifest_find(&b->manifest, c->vol.id);
        if (old)
                e.recovered_at = old->recovered_at;
        return lb_manifest_add(&b->manifest, &e);
}

/* Recoveries at once. The default LIFEBOAT_MAX_RECOVER (4) runs all at once; beyond, they
 * take turns. Most of a recovery is waiting (the device, reads of the probe, mount(2), fsync),
 * so more threads than cores pay; each costs a stack and its own probe and mount table. */
#define RECOVERY_THREADS 8

/* One volume's recovery: what it was given, and what it found. */
struct recovery {
        struct boot *b;                 /* read only during the batch */
        struct claim *c;                /* read only during the batch */
        /* given, from the main thread */
        char mount_path[PATH_MAX];
        char previous_owner[32];        /* for the snippet (the manifest is not read on threads) */
        bool in_manifest;               /* an earlier run recovered it (resumed claims only) */
        /* found */
        int result;                     /* 0, or a negative errno: give it back */
        bool suspect;                   /* the content is to blame: quarantine */
        bool was_recovered;             /* an earlier run had it mounted here already */
        bool snippet_changed;
        bool remembered;                /* after the join: in the manifest, and that saved */
        struct lb_blockdev dev;
        char config_file[PATH_MAX];
        char reason[256];               /* as the report's and the reason tag's */
};

/* Waits for the claim's block device. */
static int wait_device(struct recovery *j) {
        struct boot *b = j->b;
        const struct claim *c = j->c;
        const struct lb_settings *s = b->s;
        char reason[256] = "";
        const struct lb_blockdev_query q = {
                .sysfs_root = s->sysfs_root,
                .dev_root = s->dev_root,
                .volume_id = c->vol.id,
                .requested_name = c->device,
                .size_bytes = c->vol.size_gib << 30,
                .snapshot = c->resumed ? NULL : b->snapshot,
        };
        int r = lb_blockdev_wait(&q, MIN(s->device_timeout_ms, boot_remaining_ms(b)), b->ctx->interrupted, &j->dev,
                                 reason, sizeof reason);
        if (r < 0)
                lb_utf8_snprintf(j->reason, sizeof j->reason, "block device not found: %s", reason);
        return r;
}

/* Writes the fluentd snippet for the mounted volume; on failure unmounts it again. */
static int install_snippet(struct recovery *j) {
        const struct lb_settings *s = j->b->s;
        char reason[256] = "";
        const struct lb_fluentd_vars vars = {
                .volume_id = j->c->vol.id,
                .mount_path = j->mount_path,
                .previous_owner = j->previous_owner,
                .group = s->group,
        };
        int r = lb_fluentd_install_snippet(s->fluentd_template, s->fluentd_conf_dir, &vars, j->config_file,
                                           sizeof j->config_file, reason, sizeof reason);
        if (r < 0) {
                char err[256] = "";
                lb_utf8_snprintf(j->reason, sizeof j->reason, "fluentd config not written: %s", reason);
                if (lb_umount(j->mount_path, err, sizeof err) < 0)
                        lb_warn(j->b->ctx, "unmounting %s failed: %s", j->mount_path, err);
                return r;
        }
        j->snippet_changed = r > 0;
        return 0;
}

/* The local work, on the volume's thread: device, verification, mount, snippet. */
static void recover_locally(struct recovery *j) {
        j->result = wait_device(j);
        if (j->result < 0)
                return;
        lb_debug(j->b->ctx, "%s is %s", j->c->vol.id, j->dev.node);
        j->was_recovered = j->in_manifest && lb_mount_is_mounted_at(j->dev.devno, j->mount_path) > 0;
        j->result = mount_recovered(j->b, j->c, &j->dev, j->mount_path, j->reason, sizeof j->reason, &j->suspect);
        if (j->result < 0)
                return;
        j->result = install_snippet(j);
}

/* The recoveries of one poll; each worker takes the next one not taken yet. */
struct batch {
        struct recovery *jobs;
        size_t n;
        atomic_size_t next;
};

static void *recovery_worker(void *userdata) {
        struct batch *batch = userdata;
        for (size_t i; (i = atomic_fetch_add(&batch->next, 1)) < batch->n;)
                recover_locally(&batch->jobs[i]);
        return NULL;
}

/* glibc gives every thread that allocates an arena of its own, which stays resident after the
 * batch (2-3 MiB of peak RSS at 32 volumes, measured). The recoveries allocate little, and
 * rarely at the same moment: one arena for all. */
static void share_one_malloc_arena(void) {
#ifdef M_ARENA_MAX
        (void) mallopt(M_ARENA_MAX, 1);
#endif
}

/* Runs every recovery of the batch: on up to RECOVERY_THREADS - 1 threads and this one, until
 * all are done. Signals stay with the main thread (the threads see the interruption flag). A
 * thread that cannot be started leaves its share to the others. */
static void run_recoveries(struct recovery *jobs, size_t n) {
        struct batch batch = { .jobs = jobs, .n = n };
        atomic_init(&batch.next, 0);
        pthread_t threads[RECOVERY_THREADS - 1];
        size_t started = 0;
        sigset_t all, old;
        (void) sigfillset(&all);
        if (n > 1)
                share_one_malloc_arena();
        if (n > 1 && pthread_sigmask(SIG_BLOCK, &all, &old) == 0) {
                while (started < MIN(n - 1, ELEMENTSOF(threads)) &&
                       pthread_create(&threads[started], NULL, recovery_worker, &batch) == 0)
                        started++;
                (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        }
        (void) recovery_worker(&batch);
        for (size_t i = 0; i < started; i++)
                (void) pthread_join(threads[i], NULL);
}

/* Marks the owner tag of a recovered volume due and reports it. */
static int record_recovered(struct boot *b, struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                            const char *config_file, bool was_recovered, bool remembered) {
        const char *owner = lb_volume_tag(&c->vol, b->key_owner);
        c->owner_tag_pending = !owner || !streq(owner, b->self);

        struct lb_boot_volume *rv;
        bool already = was_recovered && remembered;
        int r = boot_finish(b, c, already ? LB_BOOT_ALREADY_RECOVERED : LB_BOOT_RECOVERED, NULL, &rv);
        if (r < 0)
                return r;
        (void) lb_strscpy(rv->node, sizeof rv->node, dev->node);
        (void) lb_strscpy(rv->mount_path, sizeof rv->mount_path, mount_path);
        (void) lb_strscpy(rv->config_file, sizeof rv->config_file, config_file);
        if (!already)
                lb_info(b->ctx, "recovered %s (%s) at %s", c->vol.id, dev->node, mount_path);
        return 0;
}

/* Puts every volume recovered in the batch into the manifest, which is saved once for all. */
static void remember_batch(struct boot *b, struct recovery *jobs, size_t n) {
        bool added = false;
        for (size_t i = 0; i < n; i++) {
                struct recovery *j = &jobs[i];
                if (j->result < 0)
                        continue;
                int r = remember(b, j->c, &j->dev, j->mount_path, j->config_file);
                if (r < 0)
                        lb_warn(b->ctx, "cannot add %s to the manifest: %s", j->c->vol.id, STRERROR(r));
                j->remembered = r >= 0;
                added = added || j->remembered;
        }
        int r = added ? lb_manifest_save(b->s->run_dir, &b->manifest) : 0;
        if (r < 0) {
                lb_warn(b->ctx, "cannot save the manifest in %s: %s", b->s->run_dir, STRERROR(r));
                for (size_t i = 0; i < n; i++)
                        jobs[i].remembered = false;
        }
}

/* After the join, on the main thread: the volume is recovered, or given back. */
static int finish_recovery(struct boot *b, struct recovery *j) {
        if (j->result < 0)
                return boot_give_back(b, j->c, j->suspect, j->reason);
        if (j->snippet_changed)
                b->snippets_changed = true;
        return record_recovered(b, j->c, &j->dev, j->mount_path, j->config_file, j->was_recovered, j->remembered);
}

/* What a recovery needs from the main thread's state, copied before the threads start. */
static int prepare_recovery(struct boot *b, struct claim *c, struct recovery *j) {
        j->b = b;
        j->c = c;
        int r = lb_snprintf(j->mount_path, sizeof j->mount_path, "%s/%s", b->s->recovery_root, c->vol.id);
        if (r < 0)
                return r;
        (void) lb_strscpy(j->previous_owner, sizeof j->previous_owner, previous_owner(b, c));
        j->in_manifest = c->resumed && lb_manifest_find(&b->manifest, c->vol.id);
        return 0;
}

int boot_recover_attached(struct boot *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_RECOVERING)
                        n++;
        if (n == 0)
                return 0;
        _cleanup_free_ struct recovery *jobs = calloc(n, sizeof *jobs);
        if (!jobs)
                return -ENOMEM;

        size_t k = 0;
        int r = 0;
        for (size_t i = 0; i < b->n_claims; i++) {
                struct claim *c = &b->claims[i];
                if (c->state != CLAIM_RECOVERING)
                        continue;
                if (prepare_recovery(b, c, &jobs[k]) < 0) {
                        r = boot_give_back(b, c, false, "recovery path too long");
                        if (r < 0)
                                return r;
                        continue;
                }
                k++;
        }

        run_recoveries(jobs, k);
        remember_batch(b, jobs, k);
        for (size_t i = 0; i < k; i++) {
                int q = finish_recovery(b, &jobs[i]);
                if (q < 0 && r >= 0)
                        r = q;
        }
        return r;
}

/* Whether an earlier run finished the volume: in the manifest, and its device mounted where
 * boot mounts it. Only looks (one sysfs scan, the mount table). */
static bool recovered_earlier(const struct boot *b, const struct claim *c, const char *mount_path) {
        const struct lb_attachment *a = lb_volume_attachment_for(&c->vol, b->self);
        if (!a || !lb_manifest_find(&b->manifest, c->vol.id))
                return false;
        const struct lb_blockdev_query q = {
                .sysfs_root = b->s->sysfs_root,
                .dev_root = b->s->dev_root,
                .volume_id = c->vol.id,
                .requested_name = a->device,
                .size_bytes = c->vol.size_gib << 30,
        };
        struct lb_blockdev dev;
        return lb_blockdev_find(&q, &dev, NULL, 0) == 0 && lb_mount_is_mounted_at(dev.devno, mount_path) > 0;
}

int boot_dry_run_resumed(struct boot *b, struct claim *c) {
        char mount_path[PATH_MAX];
        struct lb_boot_volume *v;
        int r = lb_snprintf(mount_path, sizeof mount_path, "%s/%s", b->s->recovery_root, c->vol.id);
        if (r < 0)
                return r;
        bool done = recovered_earlier(b, c, mount_path);
        r = boot_finish(b, c, done ? LB_BOOT_ALREADY_RECOVERED : LB_BOOT_WOULD_RECOVER,
                        done ? NULL : "attached here by an earlier run", &v);
        if (r < 0)
                return r;
        (void) lb_strscpy(v->mount_path, sizeof v->mount_path, mount_path);
        const struct lb_manifest_entry *e = lb_manifest_find(&b->manifest, c->vol.id);
        if (done && e) {
                (void) lb_strscpy(v->node, sizeof v->node, e->device);
                (void) lb_strscpy(v->config_file, sizeof v->config_file, e->config_file);
        }
        return 0;
}

/* Takes ownership of every volume recovered since the last call with one CreateTags for all of
 * them (one round trip instead of one per volume); if that call fails (one volume went away
 * meanwhile), each volume is tagged on its own. */
int boot_tag_new_owners(struct boot *b) {
        const struct lb_tag tags[] = { { b->key_owner, (char *) b->self } };
        size_t n = 0;
        _cleanup_free_ const char **ids = calloc(b->n_claims + 1, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].owner_tag_pending) {
                        ids[n++] = b->claims[i].vol.id;
                        b->claims[i].owner_tag_pending = false;
                }
        if (n == 0)
                return 0;
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_create_tags(b->aws.ec2, ids, n, tags, 1);
        while (r < 0 && boot_wait_out_last_error(b, &round));
        if (r >= 0 || n == 1) {
                if (r < 0) {
                        char err[600];
                        lb_warn(b->ctx, "CreateTags on %s failed: %s", ids[0],
                                lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                }
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                (void) boot_create_tags(b, ids[i], tags, 1);
        return 0;
}

int boot_reconcile_manifest(struct boot *b) {
        for (size_t i = 0; i < b->manifest.n;) {
                const char *id = b->manifest.entries[i].volume_id;
                const struct lb_volume *v = lb_volume_list_find(&b->here, id);
                if (v && lb_volume_attachment_for(v, b->self)) {
                        i++;
                        continue;
                }
                lb_info(b->ctx, "%s is no longer attached here; forgetting it", id);
                (void) lb_manifest_remove(&b->manifest, id);
        }
        return 0;
}

int boot_prune_snippets(struct boot *b) {
        _cleanup_free_ const char **keep = calloc(b->manifest.n + 1, sizeof *keep);
        if (!keep)
                return -ENOMEM;
        for (size_t i = 0; i < b->manifest.n; i++)
                keep[i] = b->manifest.entries[i].volume_id;
        int r = lb_fluentd_prune_snippets(b->s->fluentd_conf_dir, keep);
        if (r > 0)
                b->snippets_changed = true;
        return r;
}
