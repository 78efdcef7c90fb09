/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/aws/http.h"
#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/dirent-util.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/fluentd/snippet.h"


/* Characters that mean something to fluentd's config parser, its embedded
 * Ruby ("#{...}"), its placeholders (${tag}, %Y, %{path}) or its globs. None
 * may reach a snippet through a value. */
static bool value_char_unsafe(unsigned char c) {
        if (c < 0x20 || c >= 0x7f)
                return true;
        return strchr(" \"'`\\<>#{}$@%*?[]|;", c) != NULL;
}

static bool value_is_inert(const char *s) {
        for (const char *p = s; *p; p++)
                if (value_char_unsafe((unsigned char) *p))
                        return false;
        return true;
}

int lb_fluentd_vars_validate(const struct lb_fluentd_vars *v, char *reason, size_t reason_size) {
        char pbuf[80];

        if (!v->volume_id || !lb_volume_id_valid(v->volume_id) || !value_is_inert(v->volume_id)) {
                lb_set_reason(reason, reason_size, "volume_id \"%s\" is not a volume id",
                              v->volume_id ? lb_cescape(v->volume_id, pbuf, sizeof pbuf) : "(null)");
                return -EINVAL;
        }
        if (!lb_plain_path_valid(v->mount_path) || !value_is_inert(v->mount_path)) {
                lb_set_reason(reason, reason_size,
                              "mount_path \"%s\" must be an absolute path of [A-Za-z0-9/_.-] without empty, . or .. components",
                              v->mount_path ? lb_cescape(v->mount_path, pbuf, sizeof pbuf) : "(null)");
                return -EINVAL;
        }
        if (!isempty(v->previous_owner) &&
            (!lb_instance_id_valid(v->previous_owner) || !value_is_inert(v->previous_owner))) {
                lb_set_reason(reason, reason_size, "previous_owner \"%s\" is neither an instance id nor empty",
                              lb_cescape(v->previous_owner, pbuf, sizeof pbuf));
                return -EINVAL;
        }
        if (!isempty(v->group) && (!lb_group_valid(v->group) || !value_is_inert(v->group))) {
                lb_set_reason(reason, reason_size, "group \"%s\" must be 1 to %d of [A-Za-z0-9_.:-]",
                              lb_cescape(v->group, pbuf, sizeof pbuf), LB_GROUP_MAX);
                return -EINVAL;
        }
        return 0;
}

static const char *lookup_placeholder(const struct lb_fluentd_vars *v, const char *name, size_t len) {
        static const char *const names[] = { "volume_id", "mount_path", "previous_owner", "group" };
        const char *values[] = { v->volume_id, v->mount_path, strempty(v->previous_owner), strempty(v->group) };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
                        return values[i];
        return NULL;
}

static unsigned count_lines(const char *s, size_t n) {
        unsigned lines = 0;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\n')
                        lines++;
        return lines;
}

int lb_fluentd_render(const char *tmpl, size_t len, const struct lb_fluentd_vars *v,
                      char **ret_text, char *reason, size_t reason_size) {
        _cleanup_buf_ struct lb_buf out = { .limit = 16u * LB_FLUENTD_TEMPLATE_MAX };
        char pbuf[80];
        unsigned line = 1;
        size_t i = 0;
        int r;

        if (len > 0 && memchr(tmpl, '\0', len)) {
                lb_set_reason(reason, reason_size, "template contains a NUL byte");
                return -EINVAL;
        }
        r = lb_fluentd_vars_validate(v, reason, reason_size);
        if (r < 0)
                return r;

        while (i < len) {
                const char *open = memmem(tmpl + i, len - i, "{{", 2);
                size_t literal = open ? (size_t) (open - (tmpl + i)) : len - i;

                r = lb_buf_append(&out, tmpl + i, literal);
                if (r < 0)
                        return r;
                line += count_lines(tmpl + i, literal);
                i += literal;
                if (!open)
                        break;

                /* A placeholder ends with "}}" on the same line. */
                size_t start = i + 2, end = start;
                while (end < len && tmpl[end] != '\n' && !(tmpl[end] == '}' && end + 1 < len && tmpl[end + 1] == '}'))
                        end++;
                if (end >= len || tmpl[end] == '\n') {
                        lb_set_reason(reason, reason_size, "unterminated placeholder \"{{%s\" on line %u",
                                      lb_cescapen(tmpl + start, end - start, pbuf, sizeof pbuf), line);
                        return -EINVAL;
                }

                size_t a = start, b = end;
                while (a < b && (tmpl[a] == ' ' || tmpl[a] == '\t'))
                        a++;
                while (b > a && (tmpl[b - 1] == ' ' || tmpl[b - 1] == '\t'))
                        b--;
                const char *value = lookup_placeholder(v, tmpl + a, b - a);
                if (!value) {
                        lb_set_reason(reason, reason_size, "unknown placeholder {{%s}} on line %u",
                                      lb_cescapen(tmpl + a, b - a, pbuf, sizeof pbuf), line);
                        return -EINVAL;
                }
                r = lb_buf_append_str(&out, value);
                if (r < 0)
                        return r;
                i = end + 2;
        }

        /* An empty result is "", not a buffer that was never written. */
        char *text = out.len > 0 ? lb_buf_steal(&out) : strdup("");
        if (!text)
                return -ENOMEM;
        *ret_text = text;
        return 0;
}

int lb_fluentd_snippet_path(const char *conf_dir, const char *volume_id, char *buf, size_t size) {
        if (isempty(conf_dir) || !volume_id || !lb_volume_id_valid(volume_id))
                return -EINVAL;
        return lb_snprintf(buf, size, "%s/%s.conf", conf_dir, volume_id);
}

/* Whether path already holds exactly text: then nothing needs writing or reloading. Read without
 * following a symlink or blocking on a FIFO (the directory may be shared with a container). */
static bool file_has_content(const char *path, const char *text, size_t len) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        _cleanup_buf_ struct lb_buf old = { .limit = len + 1 };
        char name[NAME_MAX + 1];

        if (lb_chase_parent(path, &dfd, name, sizeof name) < 0 || lb_open_regular_at(dfd, name, O_RDONLY, &fd) < 0 ||
            lb_read_fd(fd, &old, false) < 0)
                return false;
        return old.len == len && (len == 0 || memcmp(old.data, text, len) == 0);
}

int lb_fluentd_write_snippet(const char *conf_dir, const char *volume_id, const char *text, size_t len) {
        char path[PATH_MAX];
        int r;

        r = lb_fluentd_snippet_path(conf_dir, volume_id, path, sizeof path);
        if (r < 0)
                return r;
        r = lb_mkdir_p(conf_dir, 0755);
        if (r < 0)
                return r;
        if (file_has_content(path, text, len))
                return 0;
        r = lb_write_file_atomic(path, text, len, 0644);
        if (r < 0)
                return r;
        return 1;
}

int lb_fluentd_install_snippet(const char *template_path, const char *conf_dir,
                               const struct lb_fluentd_vars *v,
                               char *ret_path, size_t ret_path_size,
                               char *reason, size_t reason_size) {
        _cleanup_free_ char *tmpl = NULL, *text = NULL;
        char path[PATH_MAX];
        size_t len = 0;
        int r;

        r = lb_read_file(template_path, LB_FLUENTD_TEMPLATE_MAX, &tmpl, &len);
        if (r < 0) {
                if (r == -EFBIG)
                        lb_set_reason(reason, reason_size, "template %s is larger than %u bytes",
                                      template_path, LB_FLUENTD_TEMPLATE_MAX);
                else
                        lb_set_reason(reason, reason_size, "cannot read template %s: %s", template_path, strerror(-r));
                return r;
        }
        r = lb_fluentd_render(tmpl, len, v, &text, reason, reason_size);
        if (r < 0)
                return r;
        r = lb_fluentd_snippet_path(conf_dir, v->volume_id, path, sizeof path);
        if (r < 0) {
                lb_set_reason(reason, reason_size, "snippet path in %s is too long", conf_dir);
                return r;
        }
        int written = lb_fluentd_write_snippet(conf_dir, v->volume_id, text, strlen(text));
        if (written < 0) {
                lb_set_reason(reason, reason_size, "cannot write %s: %s", path, strerror(-written));
                return written;
        }
        if (ret_path) {
                r = lb_strscpy(ret_path, ret_path_size, path);
                if (r < 0) {
                        lb_set_reason(reason, reason_size, "snippet path %s does not fit the caller's buffer", path);
                        return r;
                }
        }
        return written;
}

int lb_fluentd_prune_snippets(const char *conf_dir, const char *const *keep) {
        _cleanup_closedir_ DIR *d = opendir(conf_dir);
        int removed = 0, error = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;

        FOREACH_DIRENT(de, d, return -errno) {
                const char *name = de->d_name;
                size_t n = strlen(name);
                /* Only our own files: vol-*.conf. */
                if (!lb_startswith(name, "vol-") || !lb_endswith(name, ".conf") || n <= strlen("vol-.conf"))
                        continue;
                char id[NAME_MAX + 1];
                memcpy(id, name, n - strlen(".conf"));
                id[n - strlen(".conf")] = '\0';
                if (strv_contains(keep, id))
                        continue;

                struct stat st;
                if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && error == 0)
                                error = -errno;
                        continue;
                }
                if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
                        continue;
                if (unlinkat(dirfd(d), name, 0) < 0) {
                        if (errno != ENOENT && error == 0)
                                error = -errno;
                        continue;
                }
                removed++;
        }
        if (removed > 0)
                (void) fsync(dirfd(d));
        return error < 0 ? error : removed;
}

/* Appends component comp to an absolute, resolved path, handling "." and ".." lexically. */
static int path_push(char *path, size_t size, const char *comp, size_t len) {
        if (len == 0 || (len == 1 && comp[0] == '.'))
                return 0;
        if (len == 2 && comp[0] == '.' && comp[1] == '.') {
                char *slash = strrchr(path, '/');
                if (slash == path)
                        path[1] = '\0';
                else if (slash)
                        *slash = '\0';
                return 0;
        }
        size_t n = strlen(path);
        bool root = n == 1;
        if (n + (root ? 0 : 1) + len + 1 > size)
                return -ENAMETOOLONG;
        if (!root)
                path[n++] = '/';
        memcpy(path + n, comp, len);
        path[n + len] = '\0';
        return 0;
}

/*
 * realpath() for a path that may not exist yet (fluentd creates a buffer
 * directory when it is missing): resolves the longest existing prefix, then
 * appends the rest lexically.
 */
static int resolve_path(const char *path, char *ret, size_t size) {
        char prefix[PATH_MAX];
        int r;

        if (isempty(path) || path[0] != '/')
                return -EINVAL;
        r = lb_strscpy(prefix, sizeof prefix, path);
        if (r < 0)
                return r;

        size_t cut = strlen(prefix);
        for (;;) {
                _cleanup_free_ char *resolved = realpath(cut == 0 ? "/" : prefix, NULL);
                if (resolved) {
                        char out[PATH_MAX];
                        r = lb_strscpy(out, sizeof out, resolved);
                        if (r < 0)
                                return r;
                        if (cut < strlen(path)) {
                                /* A component that exists but did not resolve: a dangling symlink. */
                                struct stat st;
                                char first[PATH_MAX];
                                const char *rest = path + cut + 1;
                                const char *slash = strchr(rest, '/');
                                size_t flen = slash ? (size_t) (slash - rest) : strlen(rest);
                                r = lb_snprintf(first, sizeof first, "%s/%.*s", cut == 0 ? "" : prefix, (int) flen, rest);
                                if (r < 0)
                                        return r;
                                if (lstat(first, &st) == 0 && S_ISLNK(st.st_mode))
                                        return -ENOENT;
                        }
                        for (const char *p = path + cut; *p;) {
                                while (*p == '/')
                                        p++;
                                const char *e = strchrnul(p, '/');
                                r = path_push(out, sizeof out, p, (size_t) (e - p));
                                if (r < 0)
                                        return r;
                                p = e;
                        }
                        return lb_strscpy(ret, size, out);
                }
                if (errno != ENOENT)
                        return -errno;
                if (cut == 0)
                        return -ENOENT;
                char *slash = strrchr(prefix, '/');
                *slash = '\0';
                cut = (size_t) (slash - prefix);
        }
}

int lb_fluentd_check_recovery_path(const char *recovery_path, const char *live_path) {
        char rec[PATH_MAX], live[PATH_MAX];
        int r;

        if (isempty(live_path))
                return 0;
        r = resolve_path(recovery_path, rec, sizeof rec);
        if (r < 0)
                return r;
        r = resolve_path(live_path, live, sizeof live);
        if (r < 0)
                return r;
        if (lb_path_equal_or_below(rec, live) || lb_path_equal_or_below(live, rec))
                return -EBUSY;
        return 0;
}

