/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <libmount/libmount.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
        bool nouuid = recovery && streq(fstype, "xfs");
        return lb_snprintf(buf, size, "%s%s", BASE_OPTIONS, nouuid ? ",nouuid" : "");
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

int lb_mount_is_mounted_at(dev_t devno, const char *target) {
        /* mountinfo holds canonical paths: resolve ours the same way. A path that does not exist is
         * certainly no mount point. */
        char canon[PATH_MAX];
        if (!realpath(target, canon))
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;

        _cleanup_(mnt_free_tablep) struct libmnt_table *tb = NULL;
        int r = load_mountinfo(&tb);
        if (r < 0)
                return r;
        /* Backward: the last mount on a path is the one on top, the one a reader of the path sees. */
        struct libmnt_fs *fs = mnt_table_find_target(tb, canon, MNT_ITER_BACKWARD);
        if (!fs)
                return 0;
        return mnt_fs_get_devno(fs) == devno ? 1 : 0;
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
                (void) lb_snprintf(errbuf, errsize, "%s failed: %s", what, STRERROR(err));
}

int lb_mount(const char *node, const char *target, const char *fstype, const char *options,
             char *errbuf, size_t errsize) {
        struct stat st;
        int r;

        if (isempty(node) || isempty(target) || isempty(fstype))
                return -EINVAL;
        r = lb_stat_block(-1, node, &st, errbuf, errsize);
        if (r < 0)
                return r;
        r = lb_mkdir_p(target, 0755);
        if (r < 0) {
                lb_set_reason(errbuf, errsize, "cannot create %s: %s", target, STRERROR(r));
                return r;
        }

        _cleanup_(mnt_free_contextp) struct libmnt_context *cxt = mnt_new_context();
        if (!cxt)
                return -ENOMEM;
        /* Exactly what we ask for: no fstab lookups, no mount.<type> helpers. */
        if (mnt_context_set_optsmode(cxt, MNT_OMODE_NOTAB) < 0 ||
            mnt_context_disable_helpers(cxt, 1) < 0 ||
            mnt_context_set_source(cxt, node) < 0 ||
            mnt_context_set_target(cxt, target) < 0 ||
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

int lb_umount(const char *target, char *errbuf, size_t errsize) {
        if (isempty(target))
                return -EINVAL;
        _cleanup_(mnt_free_contextp) struct libmnt_context *cxt = mnt_new_context();
        if (!cxt)
                return -ENOMEM;
        if (mnt_context_disable_helpers(cxt, 1) < 0 || mnt_context_set_target(cxt, target) < 0)
                return -ENOMEM;
        int rc = mnt_context_umount(cxt);
        if (rc == 0)
                return 0;
        int r = context_errno(cxt, rc);
        context_message(cxt, rc, r, "umount", errbuf, errsize);
        return r;
}
