/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lifeboat/basic/macro.h"

/*
 * Mounting and unmounting with libmount, and questions about the mount table
 * (libmount's view of /proc/self/mountinfo, compared by major:minor, never by
 * device path).
 *
 * Errors are negative errnos: the mount(2)/umount(2) errno when the syscall
 * failed, libmount's own negative errno otherwise, -EINVAL for libmount
 * failures without an errno. Every errbuf (may be NULL) receives the message
 * mount(8)/umount(8) would print, from mnt_context_get_excode().
 */

/* The options lifeboat mounts with: "nodev,nosuid,noexec,noatime", plus ",nouuid" for an xfs recovery
 * (xfs refuses a second filesystem with an already mounted UUID otherwise). fstype is "xfs" or "ext4". */
int lb_mount_options(const char *fstype, bool recovery, char *buf, size_t size);

/*
 * Mounts the block device node on target with fstype and options (NULL = none).
 * Refuses (-ENOTBLK) a source that is not a block device: libmount would set
 * up a loop device for a regular file. Creates target (mkdir -p, 0755) first.
 * fstab is not consulted and no /sbin/mount.* helper is run.
 */
int lb_mount(const char *node, const char *target, const char *fstype, const char *options,
             char *errbuf, size_t errsize);

/* Unmounts whatever is mounted on target (the topmost mount). */
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
 * or something else is mounted there), negative errno on error.
 */
int lb_mount_is_mounted_at(dev_t devno, const char *target);
