/* SPDX-License-Identifier: MIT */
/*
 * Safe paths (see chase.h): opening without following symlinks, creating directories and
 * temporary files where a container may have planted something.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/util.h"

/* openat2(2) returns EAGAIN when a rename or mount raced with a RESOLVE_BENEATH lookup. */
#define OPENAT2_RETRIES 8
#define TMPFILE_RETRIES 16

/* ENOSYS (kernel < 5.6) or refused by a seccomp filter. Atomic: boot recovers on threads. */
static atomic_bool openat2_missing;

/* Whether path holds a ".." component: refused everywhere, so nothing climbs out of a
 * directory lifeboat checked. */
static bool has_dotdot(const char *path) {
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                if (e - p == 2 && p[0] == '.' && p[1] == '.')
                        return true;
                p = e;
        }
        return false;
}

/* The errno an open of dfd/name that failed with err stands for: a symlink is always -ELOOP
 * (open says ENOTDIR for one with O_DIRECTORY), anything else keeps its error. */
static int open_error(int dfd, const char *name, int err) {
        struct stat st;
        if ((err == ENOTDIR || err == ELOOP || err == ENXIO) && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISLNK(st.st_mode))
                        return -ELOOP;
                if (err == ENXIO && !S_ISREG(st.st_mode))
                        return -EBADFD; /* a FIFO without a reader, a socket, a device */
        }
        return -err;
}

/* -ELOOP when fd (opened O_PATH | O_NOFOLLOW) is a symlink itself, -errno when it cannot be told. */
static int refuse_symlink(int fd) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        return S_ISLNK(st.st_mode) ? -ELOOP : 0;
}

/* openat(dfd, name, flags | O_NOFOLLOW); with O_PATH a symlink opens as itself, so look. */
static int open_nofollow(int dfd, const char *name, int flags, int *ret_fd) {
        int fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return open_error(dfd, name, errno);
        if (flags & O_PATH) {
                int r = refuse_symlink(fd);
                if (r < 0) {
                        (void) close(fd);
                        return r;
                }
        }
        *ret_fd = fd;
        return 0;
}

static int chase_openat2(int dfd, const char *path, int flags, bool beneath, int *ret_fd) {
        /* openat2 refuses (EINVAL) any flag O_PATH ignores: O_NOCTTY only without it. */
        struct open_how how = {
                .flags = (uint64_t) (flags | O_NOFOLLOW | O_CLOEXEC | (flags & O_PATH ? 0 : O_NOCTTY)),
                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (beneath ? RESOLVE_BENEATH : 0),
        };
        for (int i = 0; i < OPENAT2_RETRIES; i++) {
                long fd = syscall(SYS_openat2, dfd, path, &how, sizeof how);
                if (fd >= 0) {
                        /* O_PATH | O_NOFOLLOW opens a symlink at the end as itself */
                        int r = flags & O_PATH ? refuse_symlink((int) fd) : 0;
                        if (r < 0) {
                                (void) close((int) fd);
                                return r;
                        }
                        *ret_fd = (int) fd;
                        return 0;
                }
                if (errno == ENOTDIR)
                        /* a symlink at the end, opened O_DIRECTORY | O_NOFOLLOW, says ENOTDIR */
                        return open_error(dfd, path, errno);
                if (errno != EAGAIN)
                        return -errno;
        }
        return -EAGAIN;
}

/* The fallback: one component at a time, each opened O_NOFOLLOW relative to the one before. */
static int chase_walk(int dfd, const char *path, int flags, int *ret_fd) {
        _cleanup_close_ int cur = -EBADF;
        if (path[0] == '/')
                cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        else
                cur = openat(dfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;

        for (const char *p = path;;) {
                while (*p == '/' || (p[0] == '.' && (p[1] == '/' || p[1] == '\0')))
                        p++;
                if (*p == '\0')
                        return open_nofollow(cur, ".", flags, ret_fd);
                const char *e = strchrnul(p, '/');
                char comp[NAME_MAX + 1];
                if ((size_t) (e - p) > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, (size_t) (e - p));
                comp[e - p] = '\0';
                /* Last non-empty component? */
                const char *rest = e;
                while (*rest == '/' || (rest[0] == '.' && (rest[1] == '/' || rest[1] == '\0')))
                        rest++;
                if (*rest == '\0')
                        return open_nofollow(cur, comp, flags, ret_fd);
                int next;
                int r = open_nofollow(cur, comp, O_PATH | O_DIRECTORY, &next);
                if (r < 0)
                        return r;
                (void) close(cur);
                cur = next;
                p = e;
        }
}

static int chase_impl(int dfd, const char *path, int flags, bool beneath, int *ret_fd) {
        if (isempty(path) || has_dotdot(path) || (beneath && path[0] == '/'))
                return -EINVAL;
        if (!openat2_missing) {
                int r = chase_openat2(dfd, path, flags, beneath, ret_fd);
                if (r != -ENOSYS && r != -EPERM)
                        return r;
                openat2_missing = true;
        }
        return chase_walk(dfd, path, flags, ret_fd);
}

int lb_chase(const char *path, int flags, int *ret_fd) {
        return chase_impl(AT_FDCWD, path, flags, false, ret_fd);
}

int lb_chase_at(int dfd, const char *path, int flags, int *ret_fd) {
        return chase_impl(dfd, path, flags, true, ret_fd);
}

int lb_chase_parent(const char *path, int *ret_dfd, char *name, size_t name_size) {
        char dir[PATH_MAX];
        int r = lb_strscpy(dir, sizeof dir, strempty(path));
        if (r < 0)
                return r;
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                dir[--n] = '\0';
        char *slash = strrchr(dir, '/');
        const char *last = slash ? slash + 1 : dir;
        if (isempty(last) || streq(last, ".") || streq(last, ".."))
                return -EINVAL;
        r = lb_strscpy(name, name_size, last);
        if (r < 0)
                return r;
        if (!slash)
                (void) lb_strscpy(dir, sizeof dir, ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';
        return lb_chase(dir, O_RDONLY | O_DIRECTORY, ret_dfd);
}

/* ---- directories ---- */

static int mkdirat_open(int dfd, const char *name, mode_t mode, int flags, int *ret_fd) {
        if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST)
                return open_error(dfd, name, errno);
        return open_nofollow(dfd, name, flags | O_DIRECTORY, ret_fd);
}

int lb_mkdirat_safe(int dfd, const char *name, mode_t mode, int flags, int *ret_fd) {
        if (isempty(name) || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        _cleanup_close_ int fd = -EBADF;
        int r = mkdirat_open(dfd, name, mode, flags, &fd);
        if (r < 0)
                return r;
        r = lb_fd_same_mount(dfd, fd);
        if (r < 0)
                return r;
        if (r == 0)
                return -EXDEV;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int lb_mkdir_p_safe(const char *path, mode_t mode, int *ret_fd) {
        if (isempty(path) || has_dotdot(path))
                return -EINVAL;
        _cleanup_close_ int cur = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        for (const char *p = path;;) {
                while (*p == '/')
                        p++;
                if (*p == '\0')
                        break;
                const char *e = strchrnul(p, '/');
                char comp[NAME_MAX + 1];
                if ((size_t) (e - p) > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, (size_t) (e - p));
                comp[e - p] = '\0';
                p = e;
                if (streq(comp, "."))
                        continue;
                int next;
                int r = mkdirat_open(cur, comp, mode, O_RDONLY, &next);
                if (r < 0)
                        return r;
                (void) close(cur);
                cur = next;
        }
        if (ret_fd)
                *ret_fd = TAKE_FD(cur);
        return 0;
}

/* ---- mounts ---- */

int lb_fd_mount_id(int fd, uint64_t *ret_mnt_id, bool *ret_mount_root) {
        struct statx stx;
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
                return -errno;
        if (!(stx.stx_mask & STATX_MNT_ID) || !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
                return -EOPNOTSUPP;
        if (ret_mnt_id)
                *ret_mnt_id = stx.stx_mnt_id;
        if (ret_mount_root)
                *ret_mount_root = (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
        return 0;
}

int lb_fd_same_mount(int fd1, int fd2) {
        uint64_t a, b;
        int r = lb_fd_mount_id(fd1, &a, NULL);
        if (r >= 0)
                r = lb_fd_mount_id(fd2, &b, NULL);
        if (r >= 0)
                return a == b;
        if (r != -EOPNOTSUPP)
                return r;
        struct stat s1, s2;
        if (fstat(fd1, &s1) < 0 || fstat(fd2, &s2) < 0)
                return -errno;
        return s1.st_dev == s2.st_dev;
}

/* ---- files ---- */

/* The file was opened O_NONBLOCK; anything but a regular file with one link is refused. */
static int check_regular(int fd, int flags) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_nlink != 1)
                return -EMLINK;
        if (!(flags & O_NONBLOCK)) {
                int fl = fcntl(fd, F_GETFL);
                if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                        return -errno;
        }
        return 0;
}

int lb_open_regular_at(int dfd, const char *name, int flags, int *ret_fd) {
        if (isempty(name) || strchr(name, '/'))
                return -EINVAL;
        _cleanup_close_ int fd = openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return open_error(dfd, name, errno);
        int r = check_regular(fd, flags);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* 64 unpredictable bits; without entropy yet (very early boot) a weaker mix: O_EXCL is what
 * makes the file safe, the name only keeps others from occupying it in advance. */
static uint64_t random_u64(void) {
        uint64_t v = 0;
#ifdef GRND_INSECURE
        if (getrandom(&v, sizeof v, GRND_INSECURE) == (ssize_t) sizeof v)
                return v;
#endif
        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return ((uint64_t) ts.tv_nsec << 32) ^ (uint64_t) ts.tv_sec ^ ((uint64_t) getpid() << 16) ^ (uintptr_t) &v;
}

int lb_tmpfile_at(int dfd, const char *base, mode_t mode, int *ret_fd, char *ret_name, size_t name_size) {
        if (isempty(base) || strchr(base, '/'))
                return -EINVAL;
        /* "<base>.tmp.<16 hex>" within NAME_MAX: a long base is cut. */
        int keep = (int) MIN(strlen(base), (size_t) NAME_MAX - strlen(".tmp.") - 16);
        for (int i = 0; i < TMPFILE_RETRIES; i++) {
                char name[NAME_MAX + 1];
                int r = lb_snprintf(name, sizeof name, "%.*s.tmp.%016" PRIx64, keep, base, random_u64());
                if (r < 0)
                        return r;
                _cleanup_close_ int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK |
                                                                   O_CLOEXEC | O_NOCTTY, mode);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return -errno;
                }
                r = check_regular(fd, 0);
                if (r >= 0)
                        r = lb_strscpy(ret_name, name_size, name);
                if (r < 0) {
                        (void) unlinkat(dfd, name, 0);
                        return r;
                }
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        return -EEXIST;
}
