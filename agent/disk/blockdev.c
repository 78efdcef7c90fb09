/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "lifeboat/basic/dirent-util.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/blockdev.h"

#define EBS_NVME_MODEL "Amazon Elastic Block Store"
#define POLL_FIRST_MS 100u
#define POLL_MAX_MS 1000u

/* "259:3" -> makedev(259, 3). */
static int parse_devno(const char *s, dev_t *ret) {
        char buf[32];
        int r = lb_strscpy(buf, sizeof buf, s);
        if (r < 0)
                return -EINVAL;
        char *colon = strchr(buf, ':');
        if (!colon)
                return -EINVAL;
        *colon = '\0';
        uint64_t maj, min;
        if (lb_parse_uint(buf, 0, UINT32_MAX, &maj) < 0 || lb_parse_uint(colon + 1, 0, UINT32_MAX, &min) < 0)
                return -EINVAL;
        *ret = makedev((unsigned) maj, (unsigned) min);
        return 0;
}

/* nvme<ctrl>n<ns> exactly: no partitions (nvme0n1p1), no hidden multipath paths (nvme0c0n1). */
static bool is_nvme_namespace(const char *name) {
        const char *p = name;
        if (!lb_startswith(p, "nvme"))
                return false;
        p += 4;
        if (!isdigit((unsigned char) *p))
                return false;
        while (isdigit((unsigned char) *p))
                p++;
        if (*p++ != 'n')
                return false;
        if (!isdigit((unsigned char) *p))
                return false;
        while (isdigit((unsigned char) *p))
                p++;
        return *p == '\0';
}

int lb_blockdev_check_node(const char *node, dev_t devno, char *reason, size_t reason_size) {
        struct stat st;
        int r = lb_stat_block(-1, node, &st, reason, reason_size);
        if (r < 0)
                return r == -ENOENT ? -ENODEV : r;
        if (st.st_rdev != devno) {
                lb_set_reason(reason, reason_size, "%s is %u:%u but sysfs says %u:%u", node,
                              major(st.st_rdev), minor(st.st_rdev), major(devno), minor(devno));
                return -EXDEV;
        }
        return 0;
}

/* Reads the attribute sysfs_dir/name into attr; path gets its path for messages. */
static int read_sysfs_attr(const char *sysfs_dir, const char *name, char path[static PATH_MAX], char *attr,
                           size_t attr_size, char *reason, size_t reason_size) {
        if (lb_snprintf(path, PATH_MAX, "%s/%s", sysfs_dir, name) < 0)
                return -ENAMETOOLONG;
        int r = lb_read_attr(path, attr, attr_size);
        if (r < 0)
                lb_set_reason(reason, reason_size, "%s: %s", path, STRERROR(r));
        return r;
}

/* Loads a device whose sysfs directory is dir/name. */
static int load_from(const char *dir, const char *dev_root, const char *name, struct lb_blockdev *ret,
                     char *reason, size_t reason_size) {
        struct lb_blockdev d = { 0 };
        char path[PATH_MAX], attr[64];
        int r;

        if (lb_strscpy(d.name, sizeof d.name, name) < 0 ||
            lb_snprintf(d.sysfs, sizeof d.sysfs, "%s/%s", dir, name) < 0 ||
            lb_snprintf(d.node, sizeof d.node, "%s/%s", dev_root, name) < 0)
                return -ENAMETOOLONG;

        r = read_sysfs_attr(d.sysfs, "dev", path, attr, sizeof attr, reason, reason_size);
        if (r < 0)
                return r;
        if (parse_devno(attr, &d.devno) < 0) {
                lb_set_reason(reason, reason_size, "%s: cannot parse '%s'", path, attr);
                return -EINVAL;
        }

        r = read_sysfs_attr(d.sysfs, "size", path, attr, sizeof attr, reason, reason_size);
        if (r < 0)
                return r;
        uint64_t sectors;
        if (lb_parse_uint(attr, 0, UINT64_MAX / 512, &sectors) < 0) {
                lb_set_reason(reason, reason_size, "%s: cannot parse '%s'", path, attr);
                return -EINVAL;
        }
        d.size_bytes = sectors * 512;

        r = lb_blockdev_check_node(d.node, d.devno, reason, reason_size);
        if (r < 0)
                return r;
        *ret = d;
        return 0;
}

int lb_blockdev_load(const char *sysfs_root, const char *dev_root, const char *name,
                     struct lb_blockdev *ret, char *reason, size_t reason_size) {
        char dir[PATH_MAX];
        if (isempty(name) || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        if (lb_snprintf(dir, sizeof dir, "%s/class/block", sysfs_root) < 0)
                return -ENAMETOOLONG;
        return load_from(dir, dev_root, name, ret, reason, reason_size);
}

/* Whether SYSFS_ROOT/class/block/<name> is an EBS namespace carrying serial. */
static bool nvme_has_serial(const char *dir, const char *name, const char *serial) {
        char path[PATH_MAX], value[128];
        if (lb_snprintf(path, sizeof path, "%s/%s/device/model", dir, name) < 0 ||
            lb_read_attr(path, value, sizeof value) < 0 || !streq(value, EBS_NVME_MODEL))
                return false;
        if (lb_snprintf(path, sizeof path, "%s/%s/device/serial", dir, name) < 0 ||
            lb_read_attr(path, value, sizeof value) < 0)
                return false;
        return streq(value, serial);
}

static int find_nvme(const struct lb_blockdev_query *q, struct lb_blockdev *ret, char *reason, size_t reason_size) {
        char serial[64], dir[PATH_MAX], first[256] = "";
        unsigned matches = 0;
        int r;

        r = lb_volume_id_to_serial(q->volume_id, serial, sizeof serial);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "invalid volume id '%s'", strna(q->volume_id));
                return -EINVAL;
        }
        if (lb_snprintf(dir, sizeof dir, "%s/class/block", q->sysfs_root) < 0)
                return -ENAMETOOLONG;

        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d) {
                if (errno == ENOENT) {
                        lb_set_reason(reason, reason_size, "%s does not exist", dir);
                        return -ENOENT;
                }
                r = -errno;
                lb_set_reason(reason, reason_size, "%s: %s", dir, STRERROR(r));
                return r;
        }
        FOREACH_DIRENT(de, d, return -errno) {
                if (!is_nvme_namespace(de->d_name) || !nvme_has_serial(dir, de->d_name, serial))
                        continue;
                if (++matches == 1) {
                        (void) lb_strscpy(first, sizeof first, de->d_name);
                        continue;
                }
                lb_set_reason(reason, reason_size, "serial %s is on both %s and %s", serial, first, de->d_name);
                return -ENOTUNIQ;
        }
        if (matches == 0) {
                lb_set_reason(reason, reason_size, "no NVMe namespace with serial %s", serial);
                return -ENOENT;
        }
        return load_from(dir, q->dev_root, first, ret, reason, reason_size);
}

static int find_xen(const struct lb_blockdev_query *q, struct lb_blockdev *ret, char *reason, size_t reason_size) {
        char name[64], dir[PATH_MAX], path[PATH_MAX];
        struct lb_blockdev d;
        int r;

        r = lb_devname_xen(q->requested_name, name, sizeof name);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "cannot map device name '%s' to a Xen name", q->requested_name);
                return -EINVAL;
        }
        if (q->size_bytes == 0) {
                lb_set_reason(reason, reason_size, "a Xen device can only be confirmed by size, and none was given");
                return -EINVAL;
        }
        if (lb_snprintf(dir, sizeof dir, "%s/block", q->sysfs_root) < 0 ||
            lb_snprintf(path, sizeof path, "%s/%s", dir, name) < 0)
                return -ENAMETOOLONG;
        if (access(path, F_OK) < 0) {
                r = -errno;
                lb_set_reason(reason, reason_size, "no NVMe namespace with the volume's serial and no %s", path);
                return r;
        }
        if (strv_contains((const char *const *) q->snapshot, name)) {
                lb_set_reason(reason, reason_size, "%s was already there before the attach", name);
                return -EEXIST;
        }
        r = load_from(dir, q->dev_root, name, &d, reason, reason_size);
        if (r < 0)
                return r;
        if (d.size_bytes == 0) {
                lb_set_reason(reason, reason_size, "%s reports size 0 (not ready)", name);
                return -ENOENT;
        }
        if (d.size_bytes != q->size_bytes) {
                lb_set_reason(reason, reason_size, "%s has %" PRIu64 " bytes, the volume %" PRIu64, name,
                              d.size_bytes, q->size_bytes);
                return -EMEDIUMTYPE;
        }
        *ret = d;
        return 0;
}

int lb_blockdev_find(const struct lb_blockdev_query *q, struct lb_blockdev *ret, char *reason, size_t reason_size) {
        if (!q || isempty(q->sysfs_root) || isempty(q->dev_root) || isempty(q->volume_id))
                return -EINVAL;
        int r = find_nvme(q, ret, reason, reason_size);
        if (r != -ENOENT || !q->requested_name)
                return r;
        return find_xen(q, ret, reason, reason_size);
}

/* Answers that mean "not (yet) there": worth another scan. */
static bool not_there_yet(int r) {
        return r == -ENOENT || r == -ENODEV || r == -EEXIST;
}

int lb_blockdev_wait(const struct lb_blockdev_query *q, uint64_t timeout_ms, volatile sig_atomic_t *interrupted,
                     struct lb_blockdev *ret, char *reason, size_t reason_size) {
        char last[512] = "";
        uint64_t deadline = lb_now_ms() + timeout_ms;
        uint64_t delay = POLL_FIRST_MS;

        for (;;) {
                if (interrupted && *interrupted) {
                        lb_set_reason(reason, reason_size, "interrupted while waiting for the device");
                        return -EINTR;
                }
                int r = lb_blockdev_find(q, ret, last, sizeof last);
                if (r >= 0)
                        return 0;
                if (!not_there_yet(r)) {
                        lb_set_reason(reason, reason_size, "%s", last);
                        return r;
                }
                uint64_t now = lb_now_ms();
                if (now >= deadline) {
                        if (timeout_ms == 0) {
                                lb_set_reason(reason, reason_size, "%s", last);
                                return r;
                        }
                        lb_set_reason(reason, reason_size, "no device after %" PRIu64 " ms: %s", timeout_ms, last);
                        return -ETIMEDOUT;
                }
                lb_sleep_ms(MIN(delay, deadline - now), interrupted);
                delay = MIN(delay * 2, POLL_MAX_MS);
        }
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int lb_blockdev_snapshot(const char *sysfs_root, char ***ret_names) {
        char dir[PATH_MAX];
        if (lb_snprintf(dir, sizeof dir, "%s/block", sysfs_root) < 0)
                return -ENAMETOOLONG;
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return -errno;

        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n = 0;
        if (!l)
                return -ENOMEM;
        FOREACH_DIRENT(de, d, return -errno) {
                if (de->d_name[0] == '.')
                        continue;
                char **nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n] = strdup(de->d_name);
                if (!l[n])
                        return -ENOMEM;
                l[++n] = NULL;
        }
        qsort(l, n, sizeof(char *), cmp_str);
        *ret_names = TAKE_PTR(l);
        return 0;
}

/* ---- device names ---- */

/* Points at the letters after "sd"/"xvd" and returns their count, or -EINVAL. */
static int slot_span(const char *name, const char **ret_letters) {
        const char *p = name;
        if (!p)
                return -EINVAL;
        if (lb_startswith(p, "/dev/"))
                p += 5;
        if (lb_startswith(p, "xvd"))
                p += 3;
        else if (lb_startswith(p, "sd"))
                p += 2;
        else
                return -EINVAL;
        const char *letters = p;
        while (*p >= 'a' && *p <= 'z')
                p++;
        size_t n = (size_t) (p - letters);
        if (n < 1 || n > 3)
                return -EINVAL;
        /* an optional partition number, nothing else */
        while (isdigit((unsigned char) *p))
                p++;
        if (*p != '\0')
                return -EINVAL;
        *ret_letters = letters;
        return (int) n;
}

int lb_devname_slot(const char *name, char *buf, size_t size) {
        const char *letters;
        int n = slot_span(name, &letters);
        if (n < 0)
                return n;
        return lb_snprintf(buf, size, "%.*s", n, letters);
}

int lb_devname_xen(const char *name, char *buf, size_t size) {
        const char *letters;
        int n = slot_span(name, &letters);
        if (n < 0)
                return n;
        return lb_snprintf(buf, size, "xvd%.*s", n, letters);
}

bool lb_devname_same_slot(const char *a, const char *b) {
        char sa[8], sb[8];
        return lb_devname_slot(a, sa, sizeof sa) >= 0 && lb_devname_slot(b, sb, sizeof sb) >= 0 && streq(sa, sb);
}

void lb_devname_picker_done(struct lb_devname_picker *p) {
        for (size_t i = 0; i < p->n_handed_out; i++)
                free(p->handed_out[i]);
        free(p->handed_out);
        p->handed_out = NULL;
        p->n_handed_out = 0;
}

/* Candidate number i (0-based) of xvdba..xvdbz, xvdca..xvdcz, xvdda..xvddx; false past the end. */
static bool candidate(size_t i, char *buf, size_t size) {
        static const struct {
                char first;
                char last_second;
        } ranges[] = { { 'b', 'z' }, { 'c', 'z' }, { 'd', 'x' } };
        for (size_t k = 0; k < ELEMENTSOF(ranges); k++) {
                size_t count = (size_t) (ranges[k].last_second - 'a') + 1;
                if (i < count)
                        return lb_snprintf(buf, size, "/dev/xvd%c%c", ranges[k].first, (char) ('a' + i)) >= 0;
                i -= count;
        }
        return false;
}

static bool slot_taken(const char *name, const char *const *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (l[i] && lb_devname_same_slot(name, l[i]))
                        return true;
        return false;
}

int lb_devname_pick(struct lb_devname_picker *p, const char *const *in_use, size_t n_in_use, size_t n,
                    char ***ret_names) {
        _cleanup_strv_free_ char **picked = calloc(n + 1, sizeof(char *));
        size_t k = 0;
        char name[32];

        if (!picked)
                return -ENOMEM;
        for (size_t i = 0; k < n && candidate(i, name, sizeof name); i++) {
                if (slot_taken(name, in_use, n_in_use) ||
                    slot_taken(name, (const char *const *) p->handed_out, p->n_handed_out))
                        continue;
                picked[k] = strdup(name);
                if (!picked[k])
                        return -ENOMEM;
                k++;
        }
        if (k < n)
                return -ENOSPC;

        /* Record them as handed out; all or nothing. */
        char **nh = realloc(p->handed_out, (p->n_handed_out + n + 1) * sizeof(char *));
        if (!nh)
                return -ENOMEM;
        p->handed_out = nh;
        _cleanup_strv_free_ char **copies = calloc(n + 1, sizeof(char *));
        if (!copies)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                copies[i] = strdup(picked[i]);
                if (!copies[i])
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                p->handed_out[p->n_handed_out++] = TAKE_PTR(copies[i]);
        *ret_names = TAKE_PTR(picked);
        return 0;
}
