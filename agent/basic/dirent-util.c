/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "lifeboat/basic/dirent-util.h"
#include "lifeboat/basic/util.h"

struct walk {
        unsigned max_depth;
        lb_walk_fn fn;
        void *userdata;
};

/* Walks one directory; takes ownership of dfd. */
static int walk_dir(const struct walk *w, int dfd, const char *path, unsigned depth) {
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                (void) close(dfd);
                return r;
        }
        FOREACH_DIRENT(de, d, return -errno) {
                int r = w->fn(w->userdata, dirfd(d), path, de, depth);
                if (r < 0)
                        return r;
                if (r != LB_WALK_DESCEND)
                        continue;
                if (depth + 1 > w->max_depth)
                        return -ELOOP;
                char sub[PATH_MAX];
                r = lb_snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
                if (r < 0)
                        return r;
                int sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (sfd < 0) {
                        if (errno == ENOENT)
                                continue; /* gone meanwhile */
                        return -errno;
                }
                r = walk_dir(w, sfd, sub, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

int lb_walk(const char *dir, unsigned max_depth, lb_walk_fn fn, void *userdata) {
        if (isempty(dir) || !fn)
                return -EINVAL;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
        if (dfd < 0)
                return -errno;
        /* Paths are reported as dir + relative names; drop a trailing slash. */
        char top[PATH_MAX];
        int r = lb_strscpy(top, sizeof top, dir);
        if (r < 0) {
                (void) close(dfd);
                return r;
        }
        for (size_t n = strlen(top); n > 1 && top[n - 1] == '/'; n--)
                top[n - 1] = '\0';
        const struct walk w = { .max_depth = max_depth, .fn = fn, .userdata = userdata };
        return walk_dir(&w, dfd, streq(top, "/") ? "" : top, 0);
}
