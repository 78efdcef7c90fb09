/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lifeboat/basic/macro.h"

/*
 * Mounting (libmount) and unmounting, and questions about the mount table
 * (compared by major:minor, never by device path).
 *
 * Mount points may lie in directories a container can write: no symlink is
 * followed on the way to one (basic/chase.h), the mount goes onto the
 * directory held open (/proc/self/fd/N), and is checked afterwards.
 *
 * Errors are negative errnos: the mount(2)/umount2(2) errno when the syscall
 * failed, libmount's own negative errno otherwise, -EINVAL for libmount
 * failures without an errno. Every errbuf (may be NULL) receives a message:
 * for a mount, what mount(8) would print (mnt_context_get_excode()).
 */

/* The options lifeboat mounts with: "nodev,nosuid,noexec,noatime", plus for a recovery ",nouuid" on
 * xfs (xfs refuses a second filesystem with an already mounted UUID otherwise) and
 * ",errors=remount-ro" on ext4 (the superblock of another instance's volume may ask for
 * errors=panic). fstype is "xfs" or "ext4". */
int lb_mount_options(const char *fstype, bool recovery, char *buf, size_t size);

/*
 * Mounts the block device node on target with fstype and options (NULL = none).
 * Refuses (-ENOTBLK) a source that is not a block device: libmount would set
 * up a loop device for a regular file. Creates target (mkdir -p, 0755) first,
 * following no symlink: a symlink in the way is -ELOOP, a non-directory at
 * target -ENOTDIR, a target on another mount than its parent -EXDEV; then
 * mounts on the directory held open and checks that target now shows the
 * device's mount (-EXDEV, unmounted again, when it does not). fstab is not
 * consulted and no /sbin/mount.* helper is run.
 */
int lb_mount(const char *node, const char *target, const char *fstype, const char *options,
             char *errbuf, size_t errsize);

/* Unmounts whatever is mounted on target (the topmost mount), never lazily, following no
 * symlink: -EINVAL "not mounted" when target is no mount point, -EBUSY "target is busy". */
int lb_umount(const char *target, char *errbuf, size_t errsize);

/*
 * Where devno is mounted: 1 and (if ret_target is not NULL) a malloc'd copy
 * of the first mount point in mountinfo order; 0 when it is mounted nowhere;
 * or a negative errno when the mount table cannot be read.
 */
int lb_mount_find_devno(dev_t devno, char **ret_target);

/*
 * Whether target is a mount point whose topmost mount is devno (an "already
 * mounted here" check for idempotent reruns): 1 yes, 0 no (not a mount point,
 * something else is mounted there, or a symlink is in the way), negative
 * errno on error.
 */
int lb_mount_is_mounted_at(dev_t devno, const char *target);
