/* SPDX-License-Identifier: MIT */
#pragma once

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lifeboat/basic/macro.h"

/*
 * Finding the block device of an EBS volume, and picking device names for
 * AttachVolume.
 *
 * Nitro: the volume is the NVMe namespace SYSFS_ROOT/class/block/nvmeXnY whose
 * device/model is "Amazon Elastic Block Store" and device/serial is the volume
 * id without its dash (both space padded; trimmed before comparing). Exactly
 * one namespace must match: two are an error, never a guess.
 *
 * Xen: the requested /dev/sdX appears as SYSFS_ROOT/block/xvdX. There is no
 * serial, so the device is accepted only when it was not in the snapshot taken
 * before the attach (lb_blockdev_snapshot) and its size equals the volume's.
 * Kernels that shift letters (sdf -> xvdj) are not supported: the exact name
 * must appear.
 *
 * In both cases the device node DEV_ROOT/<name> must exist, be a block device,
 * and its st_rdev must equal the MAJ:MIN in sysfs "dev". /dev/disk/by-id links
 * are never consulted.
 *
 * Errno conventions of lb_blockdev_find / lb_blockdev_load / lb_blockdev_wait:
 *   -ENOENT       nothing matches (yet)
 *   -ENOTUNIQ     two or more NVMe namespaces carry the volume's serial
 *   -EMEDIUMTYPE  Xen: the new xvdX has a size other than the volume's
 *   -ENODEV       sysfs knows the device but DEV_ROOT/<name> does not exist (yet)
 *   -ENOTBLK      DEV_ROOT/<name> exists but is not a block device
 *   -EXDEV        DEV_ROOT/<name> is a block device with another MAJ:MIN than sysfs says
 *   -ETIMEDOUT    lb_blockdev_wait only: nothing acceptable appeared in time
 *   -EINTR        lb_blockdev_wait only: *interrupted became true
 *   -EINVAL       bad arguments (volume id, requested name)
 *   other         I/O errors reading sysfs
 * Every function that takes (reason, reason_size) writes a one-line
 * explanation there on failure (and may leave it untouched on success);
 * reason may be NULL.
 *
 * The intended use in "lifeboat boot" (with probe.h, mounts.h, mkfs.h):
 *   1. lb_blockdev_snapshot(sysfs_root, &before)
 *   2. lb_devname_pick(&picker, <attachment devices + before>, n, &names)
 *   3. AttachVolume(volume, names[i]); on "already in use" pick again
 *   4. lb_blockdev_wait(&{volume_id, names[i], size, before}, device_timeout_ms,
 *                       ctx->interrupted, &dev, reason)
 *   5. lb_mount_is_mounted_at(dev.devno, target) == 1: done already (rerun)
 *   6. lb_blockdev_verify(&dev, tagged_uuid, &probe, reason):
 *        0 -> mount; -ENOMEDIUM on the own buffer volume only -> lb_mkfs,
 *        lb_probe_device for the new UUID, verify again; anything else -> refuse
 *   7. lb_mount_options(probe.type, recovery, ...), lb_mount(dev.node, target, ...)
 */

/* A block device confirmed to belong to a volume (or loaded by name). */
struct lb_blockdev {
        char name[64];          /* kernel name: "nvme1n1", "xvdf" */
        char node[PATH_MAX];    /* DEV_ROOT/<name>, checked: S_ISBLK and st_rdev == devno */
        char sysfs[PATH_MAX];   /* the sysfs directory it was found in (holders/ lives here) */
        dev_t devno;            /* from sysfs "dev" */
        uint64_t size_bytes;    /* sysfs "size" x 512 */
};

/* What to look for. */
struct lb_blockdev_query {
        const char *sysfs_root;         /* settings.sysfs_root, normally "/sys" */
        const char *dev_root;           /* settings.dev_root, normally "/dev" */
        const char *volume_id;          /* "vol-0123..." (required): the NVMe serial */
        const char *requested_name;     /* the AttachVolume device ("/dev/sdf", "/dev/xvdba");
                                         * NULL = do not look for a Xen device */
        uint64_t size_bytes;            /* the volume's size (GiB x 2^30); Xen requires it (> 0) */
        /* Kernel names in SYSFS_ROOT/block before the attach (lb_blockdev_snapshot).
         * NULL means the volume was attached before we started (a launch-time block
         * device mapping): a Xen device is then accepted by name and size alone. */
        char *const *snapshot;
};

/*
 * Reads one device by kernel name from SYSFS_ROOT/class/block/<name>: dev,
 * size, and checks the node DEV_ROOT/<name>. 0 or a negative errno (see above).
 */
int lb_blockdev_load(const char *sysfs_root, const char *dev_root, const char *name,
                     struct lb_blockdev *ret, char *reason, size_t reason_size);

/* Checks that node is a block device with number devno: 0, -ENODEV when it does not exist,
 * -ENOTBLK, or -EXDEV for another device, with a reason. */
int lb_blockdev_check_node(const char *node, dev_t devno, char *reason, size_t reason_size);
/*
 * One scan: Nitro by serial first, then (when q->requested_name is set and no
 * NVMe namespace matched) Xen by name, snapshot and size. 0 and *ret filled,
 * or a negative errno (see above; -ENOENT when nothing matches).
 */
int lb_blockdev_find(const struct lb_blockdev_query *q, struct lb_blockdev *ret,
                     char *reason, size_t reason_size);

/*
 * Polls lb_blockdev_find until the device appears (100 ms, growing to 1 s
 * between scans). "Not there yet" answers (-ENOENT, -ENODEV, a Xen device that
 * is still in the snapshot or reports size 0) keep it waiting; any other error
 * ends the wait at once (a duplicate serial, a wrong size, a node with another
 * MAJ:MIN: never guess). -ETIMEDOUT after timeout_ms (the reason then says
 * what the last scan saw), -EINTR as soon as interrupted (may be NULL) is set.
 * timeout_ms 0 means a single scan.
 */
int lb_blockdev_wait(const struct lb_blockdev_query *q, uint64_t timeout_ms,
                     volatile sig_atomic_t *interrupted, struct lb_blockdev *ret,
                     char *reason, size_t reason_size);

/*
 * The kernel names of the whole disks now in SYSFS_ROOT/block, as a
 * NULL-terminated, sorted strv (free with strv_free). Take it before
 * AttachVolume and pass it as lb_blockdev_query.snapshot; it also lists the
 * instance's local devices for lb_devname_pick.
 */
int lb_blockdev_snapshot(const char *sysfs_root, char ***ret_names);

/* ---- device names ---- */

/*
 * The slot a device name occupies: "/dev/sdf", "sdf", "/dev/xvdf", "xvdf" ->
 * "f"; "/dev/xvdba" -> "ba"; a partition suffix is dropped ("/dev/sda1",
 * "xvda1" -> "a"). -EINVAL for names that are not sd/xvd names (nvme0n1, hda).
 */
int lb_devname_slot(const char *name, char *buf, size_t size);

/* The Xen kernel name of a device name: "/dev/sdf" -> "xvdf", "/dev/xvdba" -> "xvdba". */
int lb_devname_xen(const char *name, char *buf, size_t size);

/* Whether two device names occupy the same slot ("/dev/sdf" and "xvdf" do). */
bool lb_devname_same_slot(const char *a, const char *b);

/*
 * Hands out device names for AttachVolume in the style of aws-ebs-csi-driver:
 * /dev/xvdba ... /dev/xvdbz, /dev/xvdca ... /dev/xvdcz, /dev/xvdda ...
 * /dev/xvddx (the names AWS documents for EBS), never one in use and never
 * the same name twice in one picker's life (one boot): a name whose attach
 * failed with "already in use" is simply skipped by the next call.
 */
struct lb_devname_picker {
        char **handed_out;      /* strv of names given out so far */
        size_t n_handed_out;
};
void lb_devname_picker_done(struct lb_devname_picker *p);

/*
 * Returns in *ret_names (strv, free with strv_free) the next n names whose
 * slot is neither in in_use (the instance's attachments and local devices, in
 * any of the forms /dev/sdX, /dev/xvdX, sdX, xvdX; names that are not sd/xvd
 * names, such as nvme0n1, are ignored) nor handed out before, and records them
 * as handed out. -ENOSPC when fewer than n names are left (nothing recorded).
 */
int lb_devname_pick(struct lb_devname_picker *p, const char *const *in_use, size_t n_in_use,
                    size_t n, char ***ret_names);
