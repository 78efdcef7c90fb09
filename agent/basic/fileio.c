/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/util.h"

int lb_read_fd(int fd, struct lb_buf *b, bool truncate) {
        for (;;) {
                char chunk[4096];
                ssize_t n = read(fd, chunk, sizeof chunk);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return 0;
                size_t k = (size_t) n;
                if (truncate && b->limit > 0)
                        k = b->len >= b->limit ? 0 : MIN(k, b->limit - b->len);
                int r = lb_buf_append(b, chunk, k);
                if (r < 0)
                        return r;
        }
}

int lb_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        _cleanup_buf_ struct lb_buf b = { .limit = max };
        int r = lb_read_fd(fd, &b, false);
        if (r < 0)
                return r;
        size_t len = b.len;
        char *d = lb_buf_steal(&b);
        if (!d)
                return -ENOMEM;
        *ret_data = d;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int lb_read_attr(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *d = NULL;
        int r = lb_read_file(path, 4096, &d, NULL);
        if (r < 0)
                return r;
        return lb_strscpy(buf, size, lb_strstrip(d));
}

int lb_write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int lb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        char name[NAME_MAX + 1], tmp[NAME_MAX + 1];
        /* The directory without following a symlink, a temp name nobody could plant a FIFO or
         * a symlink at in advance, and a rename that replaces whatever sits at name itself. */
        int r = lb_chase_parent(path, &dfd, name, sizeof name);
        if (r < 0)
                return r;
        r = lb_tmpfile_at(dfd, name, mode, &fd, tmp, sizeof tmp);
        if (r < 0)
                return r;
        r = lb_write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }
        return fsync(dfd) < 0 ? -errno : 0;
}

int lb_mkdir_p(const char *path, mode_t mode) {
        return lb_mkdir_p_safe(path, mode, NULL);
}

int lb_stat_block(int fd, const char *path, struct stat *ret_st, char *reason, size_t reason_size) {
        struct stat st;
        if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) < 0) {
                int r = -errno;
                lb_set_reason(reason, reason_size, "%s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISBLK(st.st_mode)) {
                lb_set_reason(reason, reason_size, "%s is not a block device", path);
                return -ENOTBLK;
        }
        if (ret_st)
                *ret_st = st;
        return 0;
}
