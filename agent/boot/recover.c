/* SPDX-License-Identifier: MIT */
/*
 * lifeboat boot: recovering a volume once it is attached here (find its device, verify, mount
 * read-only at RECOVERY_ROOT/VOLUME_ID, write the fluentd snippet, remember it in the manifest,
 * take ownership), or giving it back: quarantined when its content is suspect, else dirty.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "recover.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
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
        if (reason)
                (void) lb_strscpy(v->reason, sizeof v->reason, reason);
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
        (void) lb_snprintf(value, sizeof value, "%.250s", reason);
        const struct lb_tag tags[] = {
                { b->key_state, (char *) "quarantined" },
                { b->key_reason, value },
                { b->key_owner, (char *) b->self },
        };
        return boot_create_tags(b, volume_id, tags, ELEMENTSOF(tags));
}

int boot_give_back(struct boot *b, struct claim *c, bool suspect, const char *reason) {
        if (suspect)
                (void) quarantine(b, c->vol.id, reason);
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
                        strerror(-r));
        return m.earlier_boot;
}

/* Mounts with the marker on the root disk around the mount. */
static int mount_marked(struct boot *b, struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                        const char *fstype, const char *options, char *err, size_t err_size) {
        int r = lb_mount_marker_write(b->s->state_dir, c->vol.id, dev->node, time(NULL));
        if (r < 0) {
                (void) lb_snprintf(err, err_size, "cannot write its mount marker in %s: %s", b->s->state_dir,
                                   strerror(-r));
                return r;
        }
        r = lb_mount(dev->node, mount_path, fstype, options, err, err_size);
        int k = lb_mount_marker_remove(b->s->state_dir, c->vol.id);
        if (k < 0)
                lb_warn(b->ctx, "cannot remove the mount marker of %s in %s: %s (the next boot would quarantine it)",
                        c->vol.id, b->s->state_dir, strerror(-k));
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
                                           b->s->state_dir, strerror(-r));
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
        int r = lb_manifest_add(&b->manifest, &e);
        if (r < 0)
                return r;
        return lb_manifest_save(b->s->run_dir, &b->manifest);
}

/* Waits for the claim's block device; on failure the volume is given back dirty (returns 1). */
static int wait_device(struct boot *b, struct claim *c, const struct lb_attachment *att,
                       struct lb_blockdev *ret_dev) {
        const struct lb_settings *s = b->s;
        char reason[256] = "";
        const struct lb_blockdev_query q = {
                .sysfs_root = s->sysfs_root,
                .dev_root = s->dev_root,
                .volume_id = c->vol.id,
                .requested_name = att->device,
                .size_bytes = c->vol.size_gib << 30,
                .snapshot = c->resumed ? NULL : b->snapshot,
        };
        int r = lb_blockdev_wait(&q, MIN(s->device_timeout_ms, boot_remaining_ms(b)), b->ctx->interrupted, ret_dev,
                                 reason, sizeof reason);
        if (r < 0) {
                char why[300];
                (void) lb_snprintf(why, sizeof why, "block device not found: %s", reason);
                r = boot_give_back(b, c, false, why);
                return r < 0 ? r : 1;
        }
        return 0;
}

/* Writes the fluentd snippet for the mounted volume; on failure unmounts it and gives it back
 * dirty (returns 1). */
static int install_snippet(struct boot *b, struct claim *c, const char *mount_path, char *config_file,
                           size_t config_file_size) {
        const struct lb_settings *s = b->s;
        char reason[256] = "";
        const struct lb_fluentd_vars vars = {
                .volume_id = c->vol.id,
                .mount_path = mount_path,
                .previous_owner = previous_owner(b, c),
                .group = s->group,
        };
        int r = lb_fluentd_install_snippet(s->fluentd_template, s->fluentd_conf_dir, &vars, config_file,
                                           config_file_size, reason, sizeof reason);
        if (r < 0) {
                char why[300], err[256] = "";
                (void) lb_snprintf(why, sizeof why, "fluentd config not written: %s", reason);
                if (lb_umount(mount_path, err, sizeof err) < 0)
                        lb_warn(b->ctx, "unmounting %s failed: %s", mount_path, err);
                r = boot_give_back(b, c, false, why);
                return r < 0 ? r : 1;
        }
        if (r > 0)
                b->snippets_changed = true;
        return 0;
}

/* Remembers the recovered volume, marks its owner tag due and reports it. */
static int record_recovered(struct boot *b, struct claim *c, const struct lb_blockdev *dev, const char *mount_path,
                            const char *config_file, bool was_recovered) {
        int r = remember(b, c, dev, mount_path, config_file);
        if (r < 0)
                lb_warn(b->ctx, "cannot save the manifest in %s: %s", b->s->run_dir, strerror(-r));

        const char *owner = lb_volume_tag(&c->vol, b->key_owner);
        c->owner_tag_pending = !owner || !streq(owner, b->self);

        struct lb_boot_volume *rv;
        bool already = was_recovered && r == 0;
        r = boot_finish(b, c, already ? LB_BOOT_ALREADY_RECOVERED : LB_BOOT_RECOVERED, NULL, &rv);
        if (r < 0)
                return r;
        (void) lb_strscpy(rv->node, sizeof rv->node, dev->node);
        (void) lb_strscpy(rv->mount_path, sizeof rv->mount_path, mount_path);
        (void) lb_strscpy(rv->config_file, sizeof rv->config_file, config_file);
        if (!already)
                lb_info(b->ctx, "recovered %s (%s) at %s", c->vol.id, dev->node, mount_path);
        return 0;
}

int boot_recover_attached(struct boot *b, struct claim *c, const struct lb_attachment *att) {
        char reason[256] = "", mount_path[PATH_MAX], config_file[PATH_MAX] = "";
        struct lb_blockdev dev;
        bool suspect = false;
        int r;

        (void) lb_strscpy(c->device, sizeof c->device, att->device);
        r = lb_snprintf(mount_path, sizeof mount_path, "%s/%s", b->s->recovery_root, c->vol.id);
        if (r < 0)
                return boot_give_back(b, c, false, "recovery path too long");

        r = wait_device(b, c, att, &dev);
        if (r != 0)
                return r < 0 ? r : 0;

        bool was_recovered = c->resumed && lb_manifest_find(&b->manifest, c->vol.id) &&
                             lb_mount_is_mounted_at(dev.devno, mount_path) > 0;

        r = mount_recovered(b, c, &dev, mount_path, reason, sizeof reason, &suspect);
        if (r < 0)
                return boot_give_back(b, c, suspect, reason);

        r = install_snippet(b, c, mount_path, config_file, sizeof config_file);
        if (r != 0)
                return r < 0 ? r : 0;

        return record_recovered(b, c, &dev, mount_path, config_file, was_recovered);
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
