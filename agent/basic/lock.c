/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/lock.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"

#define LOCK_POLL_MS 50u

static bool lock_name_valid(const char *name) {
        return !isempty(name) && !strchr(name, '/') && !streq(name, ".") && !streq(name, "..") &&
               strlen(name) <= NAME_MAX;
}

/* Whether the file we locked is still the one at path: if the lock file was
 * replaced meanwhile, holding a lock on the old inode excludes nobody. */
static bool still_linked(int fd, const char *path) {
        struct stat a, b;
        if (fstat(fd, &a) < 0 || stat(path, &b) < 0)
                return false;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int lb_lock_acquire(const char *dir, const char *name, bool wait, uint64_t timeout_ms, int *ret_fd) {
        char path[PATH_MAX];
        int r;

        if (isempty(dir) || !lock_name_valid(name))
                return -EINVAL;
        r = lb_snprintf(path, sizeof path, "%s/%s", dir, name);
        if (r < 0)
                return r;
        r = lb_mkdir_p(dir, 0755);
        if (r < 0)
                return r;

        bool block = wait && timeout_ms == 0;
        uint64_t deadline = lb_now_ms() + timeout_ms;
        for (;;) {
                _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
                if (fd < 0)
                        return -errno;
                if (flock(fd, LOCK_EX | (block ? 0 : LOCK_NB)) < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EWOULDBLOCK)
                                return -errno;
                        if (!wait)
                                return -EWOULDBLOCK;
                        uint64_t now = lb_now_ms();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        lb_sleep_ms(MIN((uint64_t) LOCK_POLL_MS, deadline - now), NULL);
                        continue;
                }
                if (!still_linked(fd, path))
                        continue;
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
}
