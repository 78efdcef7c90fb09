/* SPDX-License-Identifier: MIT */
/*
 * lifeboat boot: this instance's own buffer volume, attached at launch at
 * LIFEBOAT_BUFFER_DEVICE. Keeps it past termination, formats it when blank,
 * mounts it at the live buffer path and tags it dirty.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "own.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/boot/boot.h"
#include "lifeboat/disk/mkfs.h"
#include "lifeboat/disk/mounts.h"
#include "lifeboat/disk/probe.h"
#include "lifeboat/state/volume.h"

#define FS_LABEL "lifeboat"

_printf_(3, 4) static int own_fail(struct boot *b, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        lb_utf8_vsnprintf(b->report->own.reason, sizeof b->report->own.reason, fmt, ap);
        va_end(ap);
        return r;
}

/* Blank is the only state that formats, and only when nothing says it ever held a filesystem. */
static int own_format(struct boot *b, const struct lb_volume *v, const struct lb_blockdev *dev) {
        struct lb_boot_own *own = &b->report->own;
        const char *tagged_uuid = lb_volume_lb_tag(b->s, v, LB_TAG_FS_UUID);
        if (!isempty(tagged_uuid))
                return own_fail(b, -EMEDIUMTYPE,
                                "reads blank but its fs-uuid tag says it was formatted (%s): refusing to format",
                                tagged_uuid);
        own->formatted = true;
        (void) lb_strscpy(own->fs_type, sizeof own->fs_type, lb_mkfs_fstype(b->s->fs));
        if (b->dry_run)
                return 0;
        char err[1024] = "";
        int r = lb_mkfs(b->s->fs, dev->node, FS_LABEL, err, sizeof err);
        if (r < 0)
                return own_fail(b, r, "mkfs failed: %s", err);
        lb_info(b->ctx, "formatted %s (%s) as %s", v->id, dev->node, own->fs_type);
        return 0;
}

static void own_set_fs(struct boot *b, const struct lb_probe *probe) {
        struct lb_boot_own *own = &b->report->own;
        (void) lb_strscpy(own->fs_type, sizeof own->fs_type, probe->type);
        (void) lb_strscpy(own->fs_uuid, sizeof own->fs_uuid, probe->uuid);
}

/* Mounted at the buffer path already (an earlier run, or fstab): only learn its filesystem. */
static int own_adopt_mounted(struct boot *b, const struct lb_blockdev *dev) {
        struct lb_probe probe = { 0 };
        int r = lb_probe_device(dev->node, &probe);
        if (r < 0)
                return own_fail(b, r, "probe of the mounted device failed: %s", strerror(-r));
        own_set_fs(b, &probe);
        return 0;
}

/*
 * Verifies the device against its fs-uuid tag; blank is formatted. Returns 0 with *ret_probe
 * filled, 1 when a dry run stops before mkfs (nothing to probe yet), or a negative errno.
 */
static int own_verify_or_format(struct boot *b, const struct lb_volume *v, const struct lb_blockdev *dev,
                                struct lb_probe *ret_probe) {
        char reason[256] = "";
        struct lb_probe probe = { 0 };
        int r = lb_blockdev_verify(dev, lb_volume_lb_tag(b->s, v, LB_TAG_FS_UUID), &probe, reason, sizeof reason);
        if (r == -ENOMEDIUM) {
                r = own_format(b, v, dev);
                if (r < 0)
                        return r;
                if (b->dry_run)
                        return 1;
                r = lb_probe_device(dev->node, &probe);
                if (r < 0 || probe.result != LB_PROBE_FILESYSTEM)
                        return own_fail(b, r < 0 ? r : -EIO, "%s", "the new filesystem is not visible to libblkid");
        } else if (r < 0)
                return own_fail(b, r, "%s: refusing to format or mount it", reason);
        *ret_probe = probe;
        return 0;
}

static int own_probe_and_mount(struct boot *b, const struct lb_volume *v, const struct lb_blockdev *dev) {
        struct lb_boot_own *own = &b->report->own;
        const struct lb_settings *s = b->s;
        struct lb_probe probe = { 0 };
        int r;

        r = lb_mount_is_mounted_at(dev->devno, s->buffer_mount);
        if (r < 0)
                return own_fail(b, r, "cannot read the mount table: %s", strerror(-r));
        if (r > 0)
                return own_adopt_mounted(b, dev);

        r = own_verify_or_format(b, v, dev, &probe);
        if (r < 0)
                return r;
        if (r == 0)
                own_set_fs(b, &probe);
        if (b->dry_run) {
                own->mounted_now = true; /* would be */
                return 0;
        }

        char options[128], err[512] = "";
        r = lb_mount_options(probe.type, false, options, sizeof options);
        if (r >= 0)
                r = lb_mount(dev->node, s->buffer_mount, probe.type, options, err, sizeof err);
        if (r < 0)
                return own_fail(b, r, "mount failed: %s", err);
        own->mounted_now = true;
        lb_info(b->ctx, "mounted %s (%s) at %s", v->id, dev->node, s->buffer_mount);
        return 0;
}

/* Writes group, owner, fs-uuid and state=dirty, but only the tags that differ: a rerun writes nothing. */
static int own_tag(struct boot *b, const struct lb_volume *v) {
        struct lb_boot_own *own = &b->report->own;
        const struct lb_tag wanted[] = {
                { b->key_group, b->s->group },
                { b->key_owner, (char *) b->self },
                { b->key_fs_uuid, own->fs_uuid },
                { b->key_state, (char *) "dirty" },
        };
        struct lb_tag missing[ELEMENTSOF(wanted)];
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
                const char *have = lb_volume_tag(v, wanted[i].key);
                if (isempty(wanted[i].value) && wanted[i].key == b->key_fs_uuid)
                        continue; /* dry run before mkfs: no UUID yet */
                if (!have || !streq(have, wanted[i].value))
                        missing[n++] = wanted[i];
        }
        if (n == 0)
                return 0;
        own->tags_written = true;
        if (b->dry_run)
                return 0;
        int r = boot_create_tags(b, v->id, missing, n);
        if (r < 0)
                return own_fail(b, r, "%s", "could not tag it dirty");
        return 0;
}

/* The buffer must outlive the instance: turn DeleteOnTermination off when it is on. */
static int own_keep_past_termination(struct boot *b, const struct lb_attachment *att) {
        if (!att->delete_on_termination)
                return 0;
        b->report->own.delete_on_termination_cleared = true;
        if (b->dry_run)
                return 0;
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_set_delete_on_termination(b->aws.ec2, b->self, att->device, false);
        while (r < 0 && boot_wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                return own_fail(b, r, "could not turn DeleteOnTermination off: %s",
                                lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return 0;
}

static int own_wait_device(struct boot *b, const struct lb_volume *v, const struct lb_attachment *att,
                           struct lb_blockdev *ret_dev) {
        const struct lb_settings *s = b->s;
        char reason[256] = "";
        struct lb_blockdev_query q;
        lb_own_volume_query(s, v, att, &q);
        int r = lb_blockdev_wait(&q, MIN(s->device_timeout_ms, boot_remaining_ms(b)), b->ctx->interrupted, ret_dev,
                                 reason, sizeof reason);
        if (r < 0)
                return own_fail(b, r, "block device not found: %s", reason);
        (void) lb_strscpy(b->report->own.node, sizeof b->report->own.node, ret_dev->node);
        return 0;
}

int boot_prepare_own_volume(struct boot *b) {
        struct lb_boot_own *own = &b->report->own;
        const struct lb_settings *s = b->s;
        const struct lb_attachment *att = NULL;
        struct lb_blockdev dev;
        int r;

        own->configured = true;
        (void) lb_strscpy(own->mount_path, sizeof own->mount_path, s->buffer_mount);
        (void) lb_strscpy(own->device, sizeof own->device, s->buffer_device);

        const struct lb_volume *v = lb_own_volume_find(&b->here, b->self, s->buffer_device, &att);
        if (!v)
                return own_fail(b, -ENODEV, "no EBS volume is attached at %s", s->buffer_device);
        (void) lb_strscpy(own->volume_id, sizeof own->volume_id, v->id);
        if (!streq(att->state, "attached"))
                return own_fail(b, -EAGAIN, "its attachment is '%s', not attached", att->state);

        r = own_keep_past_termination(b, att);
        if (r >= 0)
                r = own_wait_device(b, v, att, &dev);
        if (r >= 0)
                r = own_probe_and_mount(b, v, &dev);
        if (r >= 0)
                r = own_tag(b, v);
        if (r < 0)
                return r;
        own->ready = true;
        return 0;
}
