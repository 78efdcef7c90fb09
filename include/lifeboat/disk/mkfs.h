/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "lifeboat/basic/settings.h"


/* The fstype string of a setting: LB_FS_XFS -> "xfs", LB_FS_EXT4 -> "ext4". */
const char *lb_mkfs_fstype(enum lb_fs_type fs);

/*
 * Makes a filesystem on a blank block device: runs `mkfs.xfs -q -L LABEL NODE`
 * or `mkfs.ext4 -q -L LABEL NODE` (fork/exec, no shell, stdin /dev/null,
 * stdout and stderr captured into errbuf, bounded, the rest discarded). The
 * program is looked up in LB_MKFS_SEARCH_PATH, never in PATH, and runs with
 * LB_MKFS_ENVIRONMENT alone: none of lifeboat's environment (AWS keys, tokens,
 * MKE2FS_CONFIG and friends) reaches it.
 *
 * Belt and braces, right before running the program it checks once more that
 * node is a block device (-ENOTBLK) of size > 0 (-ENXIO) and that a fresh
 * probe says blank (-EEXIST if not, libblkid's errno on a probe error). Only
 * ever call it for the caller's own buffer volume: recovered volumes are
 * never formatted.
 *
 * label: 1..12 characters of [A-Za-z0-9_-] (xfs's limit), else -EINVAL.
 * Returns 0; -ENOENT/-EACCES... when the program cannot be executed; -EIO
 * when it exits non-zero or dies of a signal (errbuf then holds its output or
 * "mkfs.xfs killed by signal N"). The caller re-probes to read the new UUID.
 */
int lb_mkfs(enum lb_fs_type fs, const char *node, const char *label, char *errbuf, size_t errsize);

/* Where mkfs programs are looked up, in this order: the system's directories only. */
#define LB_MKFS_SEARCH_PATH "/usr/sbin:/sbin:/usr/bin:/bin"
/* Everything mkfs gets to see of an environment. */
#define LB_MKFS_ENVIRONMENT { "PATH=" LB_MKFS_SEARCH_PATH, "LC_ALL=C", NULL }

/* The absolute path of an executable name (mkfs.xfs) in LB_MKFS_SEARCH_PATH, into buf;
 * -ENOENT when none of its directories has one. */
int lb_mkfs_find_program(const char *name, char *buf, size_t size);
