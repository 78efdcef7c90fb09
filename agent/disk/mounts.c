/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <libmount/libmount.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/mounts.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_context *, mnt_free_context);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_free_table);

#define MOUNTINFO "/proc/self/mountinfo"
#define BASE_OPTIONS "nodev,nosuid,noexec,noatime"

int lb_mount_options(const char *fstype, bool recovery, char *buf, size_t size) {
        if (!fstype || (!streq(fstype, "xfs") && !streq(fstype, "ext4")))
                return -EINVAL;
        /* Another instance's volume is untrusted content: its ext4 superblock may ask for
         * errors=panic; the mount option wins over it. */
        const char *extra = !recovery ? "" : streq(fstype, "xfs") ? ",nouuid" : ",errors=remount-ro";
        return lb_snprintf(buf, size, "%s%s", BASE_OPTIONS, extra);
}

static int load_mountinfo(struct libmnt_table **ret) {
        errno = 0;
        struct libmnt_table *tb = mnt_new_table_from_file(MOUNTINFO);
        if (!tb)
                return negative_errno();
        *ret = tb;
        return 0;
}

int lb_mount_find_devno(dev_t devno, char **ret_target) {
        _cleanup_(mnt_free_tablep) struct libmnt_table *tb = NULL;
        int r = load_mountinfo(&tb);
        if (r < 0)
                return r;
        struct libmnt_fs *fs = mnt_table_find_devno(tb, devno, MNT_ITER_FORWARD);
        if (!fs)
                return 0;
        if (ret_target) {
                const char *t = mnt_fs_get_target(fs);
                char *copy = strdup(strempty(t));
                if (!copy)
                        return -ENOMEM;
                *ret_target = copy;
        }
        return 1;
}

/* Opens target (no symlink followed) as an O_PATH directory. */
static int open_target(const char *target, int *ret_fd) {
        return lb_chase(target, O_PATH | O_DIRECTORY, ret_fd);
}

/* Whether fd is the root of a mount of devno. Before Linux 5.8 (no STATX_ATTR_MOUNT_ROOT) a
 * directory of devno whose parent is on another device counts. */
static int fd_is_mount_of(int fd, dev_t devno) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_dev != devno)
                return 0;
        bool root;
        int r = lb_fd_mount_id(fd, NULL, &root);
        if (r >= 0)
                return root;
        if (r != -EOPNOTSUPP)
                return r;
        struct stat parent;
        if (fstatat(fd, "..", &parent, 0) < 0)
                return -errno;
        return parent.st_dev != st.st_dev;
}

int lb_mount_is_mounted_at(dev_t devno, const char *target) {
        /* What a reader of the path sees is the topmost mount on it; a path that does not exist,
         * or holds a symlink, is certainly no mount point of ours. */
        _cleanup_close_ int fd = -EBADF;
        int r = open_target(target, &fd);
        if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
                return 0;
        if (r < 0)
                return r;
        return fd_is_mount_of(fd, devno);
}

/*
 * The negative errno of a failed mnt_context_mount/umount: the syscall's errno when mount(2) or
 * umount(2) failed, libmount's own negative errno otherwise; its MNT_ERR_* codes (>= 5000) are no
 * errno and become -EINVAL.
 */
static int context_errno(struct libmnt_context *cxt, int rc) {
        if (mnt_context_syscall_called(cxt)) {
                int e = mnt_context_get_syscall_errno(cxt);
                if (e > 0)
                        return -e;
        }
        if (rc < 0 && rc > -4096)
                return rc;
        if (rc > 0 && rc < 4096)
                return -rc;
        return -EINVAL;
}

/* mount(8)'s message for the failure, into errbuf; a generic one if libmount has none. */
static void context_message(struct libmnt_context *cxt, int rc, int err, const char *what,
                            char *errbuf, size_t errsize) {
        if (!errbuf || errsize == 0)
                return;
        errbuf[0] = '\0';
        (void) mnt_context_get_excode(cxt, rc, errbuf, errsize);
        if (isempty(errbuf))
                (void) lb_snprintf(errbuf, errsize, "%s failed: %s", what, strerror(-err));
}

/* Why the mount point name in dfd (target) is not usable, for the error buffer. */
static void target_message(int r, const char *target, char *errbuf, size_t errsize) {
        if (r == -ELOOP)
                lb_set_reason(errbuf, errsize, "mount point %s is a symlink or has one in its path: refusing to mount "
                                               "through it", target);
        else if (r == -ENOTDIR)
                lb_set_reason(errbuf, errsize, "mount point %s is not a directory: refusing to mount on it", target);
        else if (r == -EXDEV)
                lb_set_reason(errbuf, errsize, "mount point %s is on another mount than its parent directory "
                                               "(something is mounted there): refusing to mount on it", target);
        else
                lb_set_reason(errbuf, errsize, "cannot create mount point %s: %s", target, strerror(-r));
}

static int mount_on_fd(const char *node, int target_fd, const char *fstype, const char *options,
                       char *errbuf, size_t errsize) {
        char fdpath[64];
        int r = lb_snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", target_fd);
        if (r < 0)
                return r;
        _cleanup_(mnt_free_contextp) struct libmnt_context *cxt = mnt_new_context();
        if (!cxt)
                return -ENOMEM;
        /* Exactly what we ask for: no fstab lookups, no mount.<type> helpers, and the target
         * taken as it is: the kernel follows /proc/self/fd/N to the directory we hold, which a
         * path resolved again (canonicalized) might no longer be. */
        if (mnt_context_set_optsmode(cxt, MNT_OMODE_NOTAB) < 0 ||
            mnt_context_disable_helpers(cxt, 1) < 0 ||
            mnt_context_disable_canonicalize(cxt, 1) < 0 ||
            mnt_context_set_source(cxt, node) < 0 ||
            mnt_context_set_target(cxt, fdpath) < 0 ||
            mnt_context_set_fstype(cxt, fstype) < 0 ||
            (options && mnt_context_set_options(cxt, options) < 0))
                return -ENOMEM;

        int rc = mnt_context_mount(cxt);
        if (rc == 0)
                return 0;
        r = context_errno(cxt, rc);
        context_message(cxt, rc, r, "mount", errbuf, errsize);
        return r;
}

/* umount2() of the mount on name in the directory dfd, never following a symlink at name. */
static int umount_at(int dfd, const char *name) {
        char path[PATH_MAX];
        int r = lb_snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dfd, name);
        if (r < 0)
                return r;
        return umount2(path, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
}

static void umount_message(int r, const char *target, char *errbuf, size_t errsize) {
        if (r == -EBUSY)
                lb_set_reason(errbuf, errsize, "%s: target is busy", target);
        else if (r == -EINVAL)
                lb_set_reason(errbuf, errsize, "%s: not mounted", target);
        else
                lb_set_reason(errbuf, errsize, "%s: umount failed: %s", target, strerror(-r));
}

/*
 * The mount made on held (the directory name in dfd when it was opened) must be what name
 * shows now: the root of a mount of devno. If name was renamed meanwhile (a container can
 * rename what it may write), the mount sits wherever held went: it is taken off again.
 */
static int check_landed(int dfd, const char *name, int held, dev_t devno, const char *target,
                        char *errbuf, size_t errsize) {
        _cleanup_close_ int fd = -EBADF;
        int r = lb_chase_at(dfd, name, O_PATH | O_DIRECTORY, &fd);
        if (r >= 0)
                r = fd_is_mount_of(fd, devno);
        if (r > 0)
                return 0;
        if (fd >= 0)
                (void) close(TAKE_FD(fd)); /* it would keep the mount below busy */
        char where[PATH_MAX] = "", link[64];
        ssize_t n = -1;
        if (lb_snprintf(link, sizeof link, "/proc/self/fd/%d", held) >= 0)
                n = readlink(link, where, sizeof where - 1);
        if (n > 0)
                where[n] = '\0';
        _cleanup_close_ int wdfd = -EBADF;
        char wname[NAME_MAX + 1];
        int u = n > 0 ? lb_chase_parent(where, &wdfd, wname, sizeof wname) : -ENOENT;
        if (u >= 0)
                u = umount_at(wdfd, wname);
        lb_set_reason(errbuf, errsize, "the mount did not land on %s (the directory was moved to %s); %s", target,
                      n > 0 ? where : "?", u >= 0 ? "unmounted again" : "COULD NOT UNMOUNT IT");
        return -EXDEV;
}

int lb_mount(const char *node, const char *target, const char *fstype, const char *options,
             char *errbuf, size_t errsize) {
        _cleanup_close_ int dfd = -EBADF, held = -EBADF;
        char parent[PATH_MAX], name[NAME_MAX + 1];
        struct stat st;
        int r;

        if (isempty(node) || isempty(target) || isempty(fstype))
                return -EINVAL;
        r = lb_stat_block(-1, node, &st, errbuf, errsize);
        if (r < 0)
                return r;

        /* The parent (mkdir -p, no symlinks), then the mount point on the same mount as it,
         * held open: the mount goes onto that very directory. */
        r = lb_strscpy(parent, sizeof parent, target);
        char *slash = r >= 0 ? strrchr(parent, '/') : NULL;
        if (!slash || isempty(slash + 1) || streq(slash + 1, ".") || streq(slash + 1, ".."))
                return -EINVAL;
        if (slash == parent)
                slash[1] = '\0';
        else
                *slash = '\0';
        r = lb_strscpy(name, sizeof name, target + (slash - parent) + 1);
        if (r >= 0)
                r = lb_mkdir_p_safe(parent, 0755, &dfd);
        if (r >= 0)
                r = lb_mkdirat_safe(dfd, name, 0755, O_PATH, &held);
        if (r < 0) {
                target_message(r, target, errbuf, errsize);
                return r;
        }
        r = mount_on_fd(node, held, fstype, options, errbuf, errsize);
        if (r < 0)
                return r;
        return check_landed(dfd, name, held, st.st_rdev, target, errbuf, errsize);
}

int lb_umount(const char *target, char *errbuf, size_t errsize) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        char name[NAME_MAX + 1];
        if (isempty(target))
                return -EINVAL;
        int r = lb_chase_parent(target, &dfd, name, sizeof name);
        if (r >= 0)
                r = lb_chase_at(dfd, name, O_PATH | O_DIRECTORY, &fd);
        if (r >= 0) {
                bool root = true;
                r = lb_fd_mount_id(fd, NULL, &root);
                if (r == -EOPNOTSUPP)
                        r = 0; /* umount2 says EINVAL itself */
                if (r >= 0 && !root)
                        r = -EINVAL;
                (void) close(TAKE_FD(fd)); /* an open fd on the mount would keep it busy */
        }
        if (r >= 0)
                r = umount_at(dfd, name);
        if (r < 0)
                umount_message(r == -ENOENT || r == -ELOOP || r == -ENOTDIR ? -EINVAL : r, target, errbuf, errsize);
        return r;
}
