/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * A run-dir lock: flock(LOCK_EX) on <dir>/<name>, created 0644 (dir is
 * created 0755 if missing). The lock is held as long as the returned file
 * descriptor is open; release it by closing the fd (_cleanup_close_). The
 * lock file is never removed, so every process locks the same inode.
 */

/*
 * Takes the lock. wait=false: -EWOULDBLOCK when someone holds it.
 * wait=true: waits up to timeout_ms (0 = without limit), then -ETIMEDOUT.
 * name must be a plain file name (no '/', not "." or ".."), else -EINVAL.
 * On success *ret_fd is the open, locked descriptor (O_CLOEXEC).
 */
int lb_lock_acquire(const char *dir, const char *name, bool wait, uint64_t timeout_ms, int *ret_fd);
