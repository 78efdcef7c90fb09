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

#include "lifeboat/basic/dirent-util.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"
#include "watch-internal.h"
#include "notice.h"
#include "own.h"
#include "release.h"
#include "tag.h"
#include "backup.h"

#define BACKUP_SCAN_MAX_DEPTH 8

struct backup_count {
        size_t base_len;                /* the backup directory's own path is not searched for needle */
        const char *needle;             /* count files whose path below it contains this; NULL = any */
        time_t newer_than;              /* and whose mtime is at or after it; 0 = any */
        uint64_t files;
};

/* One entry: a subdirectory is walked, a regular file counted. */
static int backup_entry(void *userdata, int dfd, const char *dir_path, const struct dirent *de, unsigned depth) {
        struct backup_count *c = userdata;
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return LB_WALK_NEXT; /* gone meanwhile */
        if (S_ISDIR(st.st_mode))
                return LB_WALK_DESCEND;
        if (!S_ISREG(st.st_mode))
                return LB_WALK_NEXT;
        char path[PATH_MAX];
        if (lb_snprintf(path, sizeof path, "%s/%s", dir_path, de->d_name) < 0)
                return LB_WALK_NEXT;
        if (c->needle && !strstr(path + MIN(c->base_len, strlen(path)), c->needle))
                return LB_WALK_NEXT;
        if (c->newer_than > 0 && st.st_mtime < c->newer_than)
                return LB_WALK_NEXT;
        c->files++;
        return LB_WALK_NEXT;
}

int watch_count_backup(const struct watch *w, const char *needle, time_t newer_than, uint64_t *ret) {
        const char *dir = w->s->fluentd_backup_dir;
        if (isempty(dir))
                return -EOPNOTSUPP;
        struct backup_count c = { .base_len = strlen(dir), .needle = needle, .newer_than = newer_than };
        int r = lb_walk(dir, BACKUP_SCAN_MAX_DEPTH, backup_entry, &c);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
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
