/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lifeboat/basic/util.h"

/* Reading and writing files: bounded, EINTR- and short-write-safe, atomic where it matters. */

/* Reads fd to its end into b (retrying EINTR). Past b->limit: -EFBIG, or with truncate the rest is
 * read and dropped (a child's stderr we only want the start of). */
int lb_read_fd(int fd, struct lb_buf *b, bool truncate);
/* Reads a whole file, at most max bytes (-EFBIG beyond). The result is NUL-terminated. */
int lb_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len);
/* Reads a small sysfs-style attribute, strips white space. */
int lb_read_attr(const char *path, char *buf, size_t size);
/* Writes all of buf to fd, retrying short writes and EINTR. */
int lb_write_all(int fd, const void *buf, size_t len);
/* Writes a file atomically: a new temp file (O_EXCL, unpredictable name) in the directory of
 * path, fsync, rename over path, fsync of the directory. No symlink is followed: not in the
 * directory's path, not at path (a symlink there is replaced, its target untouched). */
int lb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* mkdir -p, following no symlink (lb_mkdir_p_safe); -ENOTDIR when path is not a directory. */
int lb_mkdir_p(const char *path, mode_t mode);
/* The one "is it a block device" check: fstat(fd) (fd >= 0) or stat(path), then S_ISBLK.
 * 0 with *ret_st (may be NULL), -ENOTBLK, or stat's error; the reason names path. */
int lb_stat_block(int fd, const char *path, struct stat *ret_st, char *reason, size_t reason_size);
