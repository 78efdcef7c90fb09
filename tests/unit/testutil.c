/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

/* ---- temporary directories ---- */

int lbt_mkdtemp(char *buf, size_t size) {
        int r = lb_snprintf(buf, size, "/tmp/lifeboat-%s.XXXXXX", program_invocation_short_name);
        if (r < 0)
                return r;
        if (!mkdtemp(buf))
                return negative_errno();
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

int lbt_rm_rf(const char *path) {
        struct stat st;
        if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                return -1;
        return stat(path, &st) < 0 && errno == ENOENT ? 0 : -1;
}

int lbt_tmpdir_setup(void **state) {
        char dir[PATH_MAX];
        if (lbt_mkdtemp(dir, sizeof dir) < 0)
                return -1;
        char *d = strdup(dir);
        if (!d) {
                (void) rmdir(dir);
                return -1;
        }
        *state = d;
        return 0;
}

int lbt_tmpdir_teardown(void **state) {
        char *d = *state;
        int r = lbt_rm_rf(d);
        free(d);
        return r;
}

/* ---- files ---- */

void lbt_pathf(char *buf, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, PATH_MAX, fmt, ap);
        va_end(ap);
        assert_true(n > 0 && n < PATH_MAX);
}

void lbt_write_text(const char *path, const char *text) {
        char dir[PATH_MAX];
        assert_int_equal(lb_strscpy(dir, sizeof dir, path), 0);
        char *slash = strrchr(dir, '/');
        assert_non_null(slash);
        *slash = '\0';
        if (dir[0] != '\0')
                assert_int_equal(lb_mkdir_p(dir, 0755), 0);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(lb_write_all(fd, text, strlen(text)), 0);
        assert_int_equal(close(TAKE_FD(fd)), 0);
}

/* ---- processes ---- */

int lbt_wait_exit(pid_t pid) {
        int status = 0;
        pid_t r;
        do
                r = waitpid(pid, &status, 0);
        while (r < 0 && errno == EINTR);
        assert_int_equal(r, pid);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* ---- samples ---- */

void lbt_drop_member_line(const char *doc, const char *key, char *buf, size_t size) {
        char needle[64];
        assert_int_equal(lb_snprintf(needle, sizeof needle, "  \"%s\" : ", key), 0);
        const char *p = strstr(doc, needle);
        assert_non_null(p);
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        assert_int_equal(lb_snprintf(buf, size, "%.*s%s", (int) (p - doc), doc, end + 1), 0);
}

/* ---- log capture ---- */

void lbt_log_capture(void *userdata, int level, const char *fmt, va_list ap) {
        struct lbt_log *l = userdata;
        char msg[4096];
        (void) vsnprintf(msg, sizeof msg, fmt, ap);
        assert_int_equal(lb_buf_printf(&l->text, "%d %s\n", level, msg), 0);
        if (level == LB_LOG_ERR)
                l->n_err++;
        if (level == LB_LOG_WARNING)
                l->n_warn++;
}

void lbt_log_install(struct lb_context *ctx, struct lbt_log *l) {
        ctx->log_fn = lbt_log_capture;
        ctx->log_userdata = l;
        ctx->log_max_level = LB_LOG_DEBUG;
}

const char *lbt_log_text(const struct lbt_log *l) {
        return l->text.data ? l->text.data : "";
}

void lbt_log_reset(struct lbt_log *l) {
        lb_buf_free(&l->text);
        l->n_err = l->n_warn = 0;
}
