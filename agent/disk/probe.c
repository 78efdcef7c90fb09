/* SPDX-License-Identifier: MIT */
#include <blkid/blkid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "lifeboat/basic/dirent-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/mounts.h"
#include "lifeboat/disk/probe.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(blkid_probe, blkid_free_probe);

const char *lb_probe_result_to_string(enum lb_probe_result r) {
        switch (r) {
        case LB_PROBE_FILESYSTEM:
                return "filesystem";
        case LB_PROBE_BLANK:
                return "blank";
        case LB_PROBE_PARTITION_TABLE:
                return "partition table";
        case LB_PROBE_AMBIGUOUS:
                return "ambiguous";
        }
        return "unknown";
}

/* Copies a probe value into dst, "" when libblkid has none. */
static int copy_value(blkid_probe pr, const char *name, char *dst, size_t size) {
        const char *v = NULL;
        if (blkid_probe_lookup_value(pr, name, &v, NULL) < 0 || !v) {
                dst[0] = '\0';
                return 0;
        }
        return lb_strscpy(dst, size, v);
}

/* The one place libblkid's answers are translated. fd stays the caller's. */
static int probe_fd(int fd, struct lb_probe *ret) {
        struct lb_probe p = { 0 };
        int r;

        errno = 0;
        _cleanup_(blkid_free_probep) blkid_probe pr = blkid_new_probe();
        if (!pr)
                return -ENOMEM;
        if (blkid_probe_set_device(pr, fd, 0, 0) < 0)
                return negative_errno();
        if (blkid_probe_enable_superblocks(pr, 1) < 0 ||
            blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_UUID | BLKID_SUBLKS_LABEL) < 0 ||
            blkid_probe_enable_partitions(pr, 1) < 0)
                return -EINVAL;

        errno = 0;
        r = blkid_do_safeprobe(pr);
        if (r == 1) {
                p.result = LB_PROBE_BLANK;
        } else if (r == -2) {
                p.result = LB_PROBE_AMBIGUOUS;
        } else if (r < 0) {
                return negative_errno();
        } else if (blkid_probe_has_value(pr, "PTTYPE")) {
                /* A partition table wins even when a superblock was found as well. */
                p.result = LB_PROBE_PARTITION_TABLE;
                if (copy_value(pr, "PTTYPE", p.type, sizeof p.type) < 0)
                        return -EBADMSG;
        } else if (blkid_probe_has_value(pr, "TYPE")) {
                p.result = LB_PROBE_FILESYSTEM;
                if (copy_value(pr, "TYPE", p.type, sizeof p.type) < 0 ||
                    copy_value(pr, "UUID", p.uuid, sizeof p.uuid) < 0 ||
                    copy_value(pr, "LABEL", p.label, sizeof p.label) < 0)
                        return -EBADMSG;
        } else {
                /* "found" without saying what: not something to mount or format. */
                return -EBADMSG;
        }
        *ret = p;
        return 0;
}

int lb_probe_device(const char *node, struct lb_probe *ret) {
        _cleanup_close_ int fd = open(node, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        return probe_fd(fd, ret);
}

/* 1 and the first holder's name when dir/holders has entries, 0 when empty. */
static int first_holder(const char *sysfs_dir, char *name, size_t size) {
        char path[PATH_MAX];
        if (lb_snprintf(path, sizeof path, "%s/holders", sysfs_dir) < 0)
                return -ENAMETOOLONG;
        _cleanup_closedir_ DIR *d = opendir(path);
        if (!d)
                return -errno;
        FOREACH_DIRENT(de, d, return -errno) {
                (void) lb_strscpy(name, size, de->d_name);
                return 1;
        }
        return 0;
}

static bool fs_supported(const char *type) {
        return streq(type, "xfs") || streq(type, "ext4");
}

/* Maps a probe of a device that is otherwise fine to the verdict. */
static int judge_probe(const struct lb_probe *p, const char *expected_uuid, char *reason, size_t reason_size) {
        switch (p->result) {
        case LB_PROBE_BLANK:
                lb_set_reason(reason, reason_size, "blank device (no filesystem)");
                return -ENOMEDIUM;
        case LB_PROBE_PARTITION_TABLE:
                lb_set_reason(reason, reason_size, "partition table found (%s)", p->type);
                return -EMEDIUMTYPE;
        case LB_PROBE_AMBIGUOUS:
                lb_set_reason(reason, reason_size, "ambivalent probe result (more than one signature)");
                return -ENOTUNIQ;
        case LB_PROBE_FILESYSTEM:
                break;
        }
        if (!fs_supported(p->type)) {
                lb_set_reason(reason, reason_size, "unsupported filesystem '%s'", p->type);
                return -EMEDIUMTYPE;
        }
        if (!isempty(expected_uuid) && strcasecmp(p->uuid, expected_uuid) != 0) {
                lb_set_reason(reason, reason_size, "filesystem UUID %s does not match tag %s",
                              isempty(p->uuid) ? "(none)" : p->uuid, expected_uuid);
                return -ESTALE;
        }
        return 0;
}

int lb_blockdev_verify(const struct lb_blockdev *dev, const char *expected_uuid, struct lb_probe *ret_probe,
                       char *reason, size_t reason_size) {
        struct lb_probe p;
        char holder[256];
        int r;

        r = lb_blockdev_check_node(dev->node, dev->devno, reason, reason_size);
        if (r < 0)
                return r;

        _cleanup_free_ char *where = NULL;
        r = lb_mount_find_devno(dev->devno, &where);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "cannot read the mount table: %s", STRERROR(r));
                return r;
        }
        if (r > 0) {
                lb_set_reason(reason, reason_size, "already mounted at %s", where);
                return -EBUSY;
        }

        r = first_holder(dev->sysfs, holder, sizeof holder);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "cannot read %s/holders: %s", dev->sysfs, STRERROR(r));
                return r;
        }
        if (r > 0) {
                lb_set_reason(reason, reason_size, "device has holders (%s)", holder);
                return -EUSERS;
        }

        /* An exclusive open fails while anyone (a mount in another namespace, dm, md) claims the device;
         * keeping it open while probing means nobody claims it in between. */
        _cleanup_close_ int fd = open(dev->node, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_EXCL);
        if (fd < 0) {
                r = -errno;
                if (r == -EBUSY)
                        lb_set_reason(reason, reason_size, "device is in use (exclusive open failed)");
                else
                        lb_set_reason(reason, reason_size, "%s: %s", dev->node, STRERROR(r));
                return r;
        }
        uint64_t size = 0;
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
                r = -errno;
                lb_set_reason(reason, reason_size, "%s: cannot read the size: %s", dev->node, STRERROR(r));
                return r;
        }
        if (size == 0) {
                lb_set_reason(reason, reason_size, "device has size 0");
                return -ENXIO;
        }

        r = probe_fd(fd, &p);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "probe failed: %s", STRERROR(r));
                return r;
        }
        r = judge_probe(&p, expected_uuid, reason, reason_size);
        if (r < 0)
                return r;
        if (ret_probe)
                *ret_probe = p;
        return 0;
}
