/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lifeboat/basic/macro.h"

/*
 * Safe paths: the one place that opens, creates and checks files and directories where an
 * untrusted party may write (a fluentd container has the buffer and recovery directories
 * bind-mounted read-write, as root). The rules:
 *
 *   - no symlink is ever followed, in any component (openat2 with RESOLVE_NO_SYMLINKS |
 *     RESOLVE_NO_MAGICLINKS where the kernel has it, else a component walk with O_NOFOLLOW);
 *     ".." is refused (-EINVAL); "." and empty components are skipped;
 *   - what was opened is then used through its fd (the *at() calls, /proc/self/fd/N);
 *   - a directory lifeboat creates or mounts on must be on the same mount as its parent;
 *   - existing files are opened O_NONBLOCK (a FIFO never blocks) and must be regular with one
 *     link; new temporary files get an unpredictable name and O_EXCL.
 *
 * Errors: -ELOOP a symlink is in the way, -ENOTDIR a non-directory where a directory must be,
 * -EXDEV a directory on another mount than expected, -EBADFD not a regular file, -EMLINK a
 * regular file with more than one link, or the errno of the failing call.
 */

/* Opens path (absolute, or relative to the working directory) with O_CLOEXEC | O_NOCTTY added
 * to flags, following no symlink on the way and not at the end. */
int lb_chase(const char *path, int flags, int *ret_fd);
/* The same below the directory dfd: path is relative and never leaves dfd (RESOLVE_BENEATH). */
int lb_chase_at(int dfd, const char *path, int flags, int *ret_fd);
/* Opens the directory that holds path (O_RDONLY | O_DIRECTORY, usable for fsync) and copies its
 * last component (never "", "." or "..") into name. */
int lb_chase_parent(const char *path, int *ret_dfd, char *name, size_t name_size);

/* Creates the directory name in dfd unless it exists, then opens it (flags, O_DIRECTORY |
 * O_NOFOLLOW added): a symlink is -ELOOP, anything but a directory -ENOTDIR, a directory on
 * another mount than dfd (something mounted there) -EXDEV. */
int lb_mkdirat_safe(int dfd, const char *name, mode_t mode, int flags, int *ret_fd);
/* mkdir -p path, each component created or opened with lb_mkdirat_safe() rules except the
 * mount check (the directories above a mount point are on other mounts). ret_fd (may be NULL)
 * receives the last directory (O_RDONLY | O_DIRECTORY). */
int lb_mkdir_p_safe(const char *path, mode_t mode, int *ret_fd);

/* The mount id of fd (statx STATX_MNT_ID), and whether fd is the root of its mount. -EOPNOTSUPP
 * when the kernel (< 5.8) does not say. */
int lb_fd_mount_id(int fd, uint64_t *ret_mnt_id, bool *ret_mount_root);
/* 1 when the two fds are on the same mount (same mount id; before Linux 5.8, same st_dev), 0 when
 * not, or a negative errno. */
int lb_fd_same_mount(int fd1, int fd2);

/* Opens the existing regular file name in dfd (flags: O_RDONLY or O_WRONLY ... ; O_NOFOLLOW |
 * O_NONBLOCK while opening, O_NONBLOCK cleared afterwards): -EBADFD unless it is a regular file,
 * -EMLINK when it has more than one link. */
int lb_open_regular_at(int dfd, const char *name, int flags, int *ret_fd);
/* Creates a new temporary file in dfd named "<base>.tmp.<16 random hex digits>" (O_RDWR |
 * O_CREAT | O_EXCL | O_NOFOLLOW, mode), retrying on a name that exists; the name goes to
 * ret_name. */
int lb_tmpfile_at(int dfd, const char *base, mode_t mode, int *ret_fd, char *ret_name, size_t name_size);
