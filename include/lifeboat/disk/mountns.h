/* SPDX-License-Identifier: MIT */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lifeboat/basic/macro.h"

/*
 * A device in every mount namespace: a container holds its own copy of each mount that existed
 * under its bind mounts when it started (Docker and containerd bind with rprivate propagation),
 * and an unmount on the host leaves that copy, and the device, in use. Here: where a device is
 * mounted in any namespace, unmounting it there (never lazily, never forced), and which
 * processes keep it busy. Mounts are matched by the device's major:minor only, never by a
 * path. Nothing is ever killed or signalled.
 */

/* One mount of the device, in one namespace. */
struct lb_ns_mount {
        pid_t pid;                      /* a process of the namespace; target is as it sees it */
        uint64_t ns;                    /* the namespace: the inode of /proc/PID/ns/mnt (mnt:[N]) */
        bool own;                       /* lifeboat's own mount namespace (pid is lifeboat) */
        uint64_t mnt_id;                /* the mount's id (mountinfo, statx STATX_MNT_ID) */
        char target[PATH_MAX];          /* its mount point, below PID's root */
};

struct lb_ns_mounts {
        struct lb_ns_mount *items;      /* in mountinfo order: a mount stacked on another comes later */
        size_t n;
        size_t namespaces;              /* how many namespaces were looked at */
};

void lb_ns_mounts_done(struct lb_ns_mounts *m);
static inline void lb_ns_mounts_donep(struct lb_ns_mounts *m) {
        lb_ns_mounts_done(m);
}
#define _cleanup_ns_mounts_ _cleanup_(lb_ns_mounts_donep)

/*
 * Every mount of devno in every mount namespace of the system, ours first: one process per
 * namespace (ours is lifeboat itself; for another, the first process in /proc whose mountinfo
 * can be read), its /proc/PID/mountinfo scanned for devno.
 */
int lb_mountns_find(dev_t devno, struct lb_ns_mounts *ret);

/*
 * Unmounts m (umount2 without MNT_DETACH or MNT_FORCE, UMOUNT_NOFOLLOW). In our namespace with
 * lb_umount(); in another one its mount point is first opened through /proc/PID/root without
 * following a symlink and checked to be that very mount of devno (-ESTALE when it is not any
 * more), then a forked child enters the namespace with setns(2), as nsenter --mount does, and
 * unmounts it there; the result comes back through a pipe. -EBUSY when something in it is in
 * use; errbuf (may be NULL) says what failed.
 */
int lb_mountns_umount(const struct lb_ns_mount *m, dev_t devno, char *errbuf, size_t errsize);

/* A process that keeps the device busy: an open file on it, its working directory or root
 * there, or a file of it mapped. */
struct lb_holder {
        pid_t pid;
        char comm[64];                  /* /proc/PID/comm, C-escaped */
        uint64_t ns;                    /* its mount namespace (inode of /proc/PID/ns/mnt) */
};

/* The processes that hold a file on devno: the first max into out, and how many there are in
 * all into *ret_total. lifeboat itself is never one. */
int lb_device_holders(dev_t devno, struct lb_holder *out, size_t max, size_t *ret_total);

/* Whether anyone claims the block device node (of devno) exclusively, as a mounted filesystem
 * does in whatever namespace, even one detached lazily but still in use: 1 yes (an O_EXCL open
 * fails with EBUSY), 0 no or the node is gone, negative errno otherwise (-EXDEV: node is
 * another device). */
int lb_device_claimed(const char *node, dev_t devno);
