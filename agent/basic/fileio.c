/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int fsync_parent_dir(const char *path) {
        char dir[PATH_MAX];
        int r = lb_strscpy(dir, sizeof dir, path);
        if (r < 0)
                return r;
        char *slash = strrchr(dir, '/');
        if (!slash)
                return lb_strscpy(dir, sizeof dir, ".");
        if (slash == dir)
                slash[1] = '\0';
        else
                *slash = '\0';
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int lb_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char tmp[PATH_MAX];
        int r = lb_snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long) getpid());
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = lb_write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        return fsync_parent_dir(path);
}

int lb_mkdir_p(const char *path, mode_t mode) {
        char p[PATH_MAX];
        int r = lb_strscpy(p, sizeof p, path);
        if (r < 0)
                return r;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(p, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int lb_stat_block(int fd, const char *path, struct stat *ret_st, char *reason, size_t reason_size) {
        struct stat st;
        if ((fd >= 0 ? fstat(fd, &st) : stat(path, &st)) < 0) {
                int r = -errno;
                lb_set_reason(reason, reason_size, "%s: %s", path, STRERROR(r));
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
