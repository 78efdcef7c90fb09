/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/dirent-util.h"
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

/* One entry: a chunk file is counted, a directory on the same filesystem walked into. */
static int scan_entry(void *userdata, int dfd, const char *dir_path, const struct dirent *de, unsigned depth) {
        struct scan *s = userdata;
        const char *name = de->d_name;

        /* d_type spares a stat for everything but chunks and directories. */
        bool chunk_name = lb_chunk_name_matches(s->m, name);
        if (de->d_type == DT_LNK)
                return LB_WALK_NEXT;
        if (de->d_type == DT_REG && !chunk_name)
                return LB_WALK_NEXT;
        if (de->d_type != DT_REG && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                return LB_WALK_NEXT;

        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? LB_WALK_NEXT : -errno; /* flushed and deleted meanwhile */
        if (S_ISREG(st.st_mode))
                return chunk_name ? scan_note_chunk(s, dir_path, name, &st) : LB_WALK_NEXT;
        /* Deeper than any buffer layout: lb_walk() refuses with -ELOOP rather than miss chunks. */
        return S_ISDIR(st.st_mode) && st.st_dev == s->dev ? LB_WALK_DESCEND : LB_WALK_NEXT;
}

int lb_chunk_scan(const char *dir, const struct lb_chunk_matcher *m, size_t max_paths, struct lb_chunk_scan *ret) {
        struct stat st;

        if (!m->compiled || isempty(dir))
                return -EINVAL;
        if (stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        _cleanup_strv_free_ char **paths = calloc(max_paths + 1, sizeof(char *));
        if (!paths)
                return -ENOMEM;

        struct scan s = {
                .m = m,
                .dev = st.st_dev,
                .max_paths = max_paths,
                .paths = paths,
        };
        int r = lb_walk(dir, LB_CHUNK_SCAN_MAX_DEPTH, scan_entry, &s);
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
