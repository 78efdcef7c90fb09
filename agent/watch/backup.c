/* SPDX-License-Identifier: MIT */
/*
 * lifeboat watch: fluentd's backup directory (LIFEBOAT_FLUENTD_BACKUP_DIR),
 * where fluentd moves the chunks it could not read. They are NOT delivered,
 * so watch reports them when it tags a volume flushed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"
#include "watch-internal.h"

#define BACKUP_SCAN_MAX_DEPTH 8

struct backup_count {
        size_t base_len;                /* the backup directory's own path is not searched for needle */
        const char *needle;             /* count files whose path below it contains this; NULL = any */
        time_t newer_than;              /* and whose mtime is at or after it; 0 = any */
        uint64_t files;
};

static int backup_walk(struct backup_count *c, int dfd, const char *path, unsigned depth);

/* One entry of the directory d (at path): a subdirectory is walked, a regular file counted. */
static int backup_entry(struct backup_count *c, DIR *d, const char *path, const char *name, unsigned depth) {
        struct stat st;
        if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0; /* gone meanwhile */
        char sub[PATH_MAX];
        if (lb_snprintf(sub, sizeof sub, "%s/%s", path, name) < 0)
                return 0;
        if (S_ISDIR(st.st_mode) && depth < BACKUP_SCAN_MAX_DEPTH) {
                int fd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                return fd >= 0 ? backup_walk(c, fd, sub, depth + 1) : 0;
        }
        if (!S_ISREG(st.st_mode))
                return 0;
        if (c->needle && !strstr(sub + c->base_len, c->needle))
                return 0;
        if (c->newer_than > 0 && st.st_mtime < c->newer_than)
                return 0;
        c->files++;
        return 0;
}

/* Counts below one directory; takes ownership of dfd. A directory that cannot be listed
 * fails the whole count: a number too small would hide undelivered chunks. */
static int backup_walk(struct backup_count *c, int dfd, const char *path, unsigned depth) {
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                (void) close(dfd);
                return r;
        }
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de)
                        return errno != 0 ? -errno : 0;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                int r = backup_entry(c, d, path, de->d_name, depth);
                if (r < 0)
                        return r;
        }
}

int watch_count_backup(const struct watch *w, const char *needle, time_t newer_than, uint64_t *ret) {
        const char *dir = w->s->fluentd_backup_dir;
        if (isempty(dir))
                return -EOPNOTSUPP;
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT) {
                        *ret = 0;
                        return 0;
                }
                return -errno;
        }
        struct backup_count c = { .base_len = strlen(dir), .needle = needle, .newer_than = newer_than };
        int r = backup_walk(&c, fd, dir, 0);
        if (r < 0)
                return r;
        *ret = c.files;
        return 0;
}

void watch_check_backup_since_start(struct watch *w) {
        uint64_t n;
        if (watch_count_backup(w, NULL, w->started_at, &n) < 0 || n == w->st.backup_files)
                return;
        if (n > w->st.backup_files)
                lb_warn(w->ctx, "fluentd's backup directory %s holds %" PRIu64 " file(s) written since watch started: "
                                "chunks fluentd could not read, NOT delivered",
                        w->s->fluentd_backup_dir, n);
        w->st.backup_files = n;
}
