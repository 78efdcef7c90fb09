/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/util.h"
#include "lifeboat/disk/chunks.h"


int lb_chunk_matcher_init(struct lb_chunk_matcher *m, const char *pattern, char *reason, size_t reason_size) {
        const char *p = pattern ? pattern : LB_CHUNK_PATTERN_DEFAULT;
        regex_t re;

        int rc = regcomp(&re, p, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
                char err[256];
                (void) regerror(rc, &re, err, sizeof err);
                lb_set_reason(reason, reason_size, "bad chunk pattern \"%s\": %s", p, err);
                return -EINVAL;
        }
        m->re = re;
        m->compiled = true;
        return 0;
}

void lb_chunk_matcher_done(struct lb_chunk_matcher *m) {
        if (m->compiled)
                regfree(&m->re);
        m->compiled = false;
}

bool lb_chunk_name_matches(const struct lb_chunk_matcher *m, const char *name) {
        return m->compiled && regexec(&m->re, name, 0, NULL, 0) == 0;
}

void lb_chunk_scan_done(struct lb_chunk_scan *s) {
        strv_free(s->paths);
        s->paths = NULL;
        s->n_paths = 0;
        s->files = s->bytes = 0;
}

struct scan {
        const struct lb_chunk_matcher *m;
        dev_t dev;
        size_t max_paths;
        uint64_t files;
        uint64_t bytes;
        char **paths;           /* max_paths + 1 slots, NULL-terminated */
        size_t n_paths;
};

static int scan_note_chunk(struct scan *s, const char *dir, const char *name, const struct stat *st) {
        s->files++;
        s->bytes += (uint64_t) st->st_size;
        if (s->n_paths >= s->max_paths)
                return 0;
        char path[PATH_MAX];
        int r = lb_snprintf(path, sizeof path, "%s/%s", dir, name);
        if (r < 0)
                return r;
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        s->paths[s->n_paths++] = copy;
        return 0;
}

/* Scans one directory; takes ownership of dfd. */
static int scan_dir(struct scan *s, int dfd, const char *path, unsigned depth) {
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        int r;

        if (!d) {
                r = -errno;
                (void) close(dfd);
                return r;
        }

        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de)
                        return errno != 0 ? -errno : 0;
                const char *name = de->d_name;
                if (streq(name, ".") || streq(name, ".."))
                        continue;

                /* d_type spares a stat for everything but chunks and directories. */
                bool chunk_name = lb_chunk_name_matches(s->m, name);
                if (de->d_type == DT_LNK)
                        continue;
                if (de->d_type == DT_REG && !chunk_name)
                        continue;
                if (de->d_type != DT_REG && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;

                struct stat st;
                if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT) /* flushed and deleted meanwhile */
                                continue;
                        return -errno;
                }
                if (S_ISREG(st.st_mode)) {
                        if (chunk_name) {
                                r = scan_note_chunk(s, path, name, &st);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (!S_ISDIR(st.st_mode) || st.st_dev != s->dev)
                        continue;
                /* Deeper than any buffer layout: refuse rather than miss chunks. */
                if (depth + 1 > LB_CHUNK_SCAN_MAX_DEPTH)
                        return -ELOOP;

                char sub[PATH_MAX];
                r = lb_snprintf(sub, sizeof sub, "%s/%s", path, name);
                if (r < 0)
                        return r;
                int sfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (sfd < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                r = scan_dir(s, sfd, sub, depth + 1);
                if (r < 0)
                        return r;
        }
}

int lb_chunk_scan(const char *dir, const struct lb_chunk_matcher *m, size_t max_paths, struct lb_chunk_scan *ret) {
        _cleanup_strv_free_ char **paths = NULL;
        struct stat st;

        if (!m->compiled || isempty(dir))
                return -EINVAL;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
        if (dfd < 0)
                return -errno;
        if (fstat(dfd, &st) < 0)
                return -errno;
        paths = calloc(max_paths + 1, sizeof(char *));
        if (!paths)
                return -ENOMEM;

        struct scan s = {
                .m = m,
                .dev = st.st_dev,
                .max_paths = max_paths,
                .paths = paths,
        };
        /* Paths are reported as dir + relative name; drop a trailing slash. */
        char top[PATH_MAX];
        int r = lb_strscpy(top, sizeof top, dir);
        if (r < 0)
                return r;
        for (size_t n = strlen(top); n > 1 && top[n - 1] == '/'; n--)
                top[n - 1] = '\0';
        r = scan_dir(&s, TAKE_FD(dfd), streq(top, "/") ? "" : top, 0);
        if (r < 0)
                return r;

        *ret = (struct lb_chunk_scan) {
                .files = s.files,
                .bytes = s.bytes,
                .paths = TAKE_PTR(paths),
                .n_paths = s.n_paths,
        };
        return 0;
}
