/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "lifeboat/disk/blockdev.h"

/*
 * What is on a device, by libblkid's safe probe (superblocks chain with
 * TYPE|UUID|LABEL, partitions chain). libblkid's answer is translated here and
 * nowhere else: 0 -> FILESYSTEM or PARTITION_TABLE, 1 -> BLANK, -2 ->
 * AMBIGUOUS, -1 -> a negative errno (and then nobody touches the device).
 * util-linux 2.39+ may report an ambivalent result as -1: that is an error
 * here too, which is just as safe.
 */
enum lb_probe_result {
        LB_PROBE_FILESYSTEM,            /* exactly one superblock, no partition table */
        LB_PROBE_BLANK,                 /* nothing at all (the only state mkfs may follow) */
        LB_PROBE_PARTITION_TABLE,       /* a partition table, with or without a superblock too */
        LB_PROBE_AMBIGUOUS,             /* several superblocks (libblkid -2) */
};

struct lb_probe {
        enum lb_probe_result result;
        char type[32];          /* FILESYSTEM: "xfs", "ext4", "btrfs", ...; PARTITION_TABLE: "dos", "gpt" */
        char uuid[64];          /* FILESYSTEM: the UUID, or "" if it has none */
        char label[64];         /* FILESYSTEM: the label, or "" */
};

/* "filesystem", "blank", "partition table", "ambiguous". */
const char *lb_probe_result_to_string(enum lb_probe_result r);

/*
 * Safe-probes node (any readable file or device, opened read-only). 0 and
 * *ret filled, or a negative errno when libblkid fails (-EIO if it gives no
 * errno).
 */
int lb_probe_device(const char *node, struct lb_probe *ret);

/*
 * Everything that must hold before dev is mounted, checked in this order:
 *   dev->node is a block device whose st_rdev is dev->devno  -ENOTBLK / -EXDEV
 *   it is mounted nowhere (/proc/self/mountinfo, by devno)   -EBUSY  "already mounted at /x"
 *   dev->sysfs/holders/ is empty                             -EUSERS "device has holders (dm-0)"
 *   an exclusive open succeeds (nobody claims it, in any
 *     mount namespace); the probe then reads through it      -EBUSY  "device is in use (exclusive open failed)"
 *   its size (BLKGETSIZE64) is > 0                           -ENXIO  "device has size 0"
 *   the probe finds exactly one xfs or ext4 filesystem
 *     and no partition table                                 -ENOMEDIUM   "blank device (no filesystem)"
 *                                                            -EMEDIUMTYPE "partition table found (dos)",
 *                                                                         "unsupported filesystem 'btrfs'"
 *                                                            -ENOTUNIQ    "ambivalent probe result"
 *   expected_uuid (may be NULL or "") equals its UUID        -ESTALE "filesystem UUID x does not match tag y"
 * Only -ENOMEDIUM means blank; only the caller's own buffer volume may then be
 * formatted (lb_mkfs probes once more itself). libblkid errors are passed on
 * as their negative errno. On success *ret_probe (may be NULL) gets the probe
 * result. reason (may be NULL) gets a short human reason on failure.
 */
int lb_blockdev_verify(const struct lb_blockdev *dev, const char *expected_uuid, struct lb_probe *ret_probe,
                       char *reason, size_t reason_size);
