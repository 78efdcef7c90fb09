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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/watch-state.h"
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

/* 2026-11-26T16:12:55Z, as in the tests that use the sample. */
#define SAMPLE_NOW_S 1795709575

void lbt_sample_watch_state(struct lb_watch_state *st) {
        memset(st, 0, sizeof *st);
        st->pid = 4242;
        assert_int_equal(lb_strscpy(st->instance_id, sizeof st->instance_id, "i-0123456789abcdef0"), 0);
        st->started_at = SAMPLE_NOW_S;
        st->ending = true;
        st->imds_ok = false;
        st->imds_failing_since = SAMPLE_NOW_S + 3;
        st->backup_files = 2;
        st->notices[0] = (struct lb_watch_notice) { .trigger = LB_WATCH_TRIGGER_REBALANCE, .time = SAMPLE_NOW_S + 5,
                                                    .seen_at = SAMPLE_NOW_S + 6 };
        st->notices[1] = (struct lb_watch_notice) { .trigger = LB_WATCH_TRIGGER_SPOT, .detail = "terminate",
                                                    .time = SAMPLE_NOW_S + 120, .seen_at = SAMPLE_NOW_S + 7 };
        st->notices[2] = (struct lb_watch_notice) { .trigger = LB_WATCH_TRIGGER_SIGNAL, .detail = "SIGTERM",
                                                    .seen_at = SAMPLE_NOW_S + 9 };
        st->n_notices = 3;
        st->own = (struct lb_watch_own) { .state = LB_WATCH_OWN_DRAINING, .volume_id = "vol-0aaaaaaaaaaaaaaaa",
                                          .mount_path = "/var/lib/lifeboat/buffer", .chunk_files = 3,
                                          .chunk_bytes = 12345, .deadline = SAMPLE_NOW_S + 110, .flush_requests = 2 };
        st->recovered = calloc(2, sizeof *st->recovered);
        assert_non_null(st->recovered);
        st->recovered[0] = (struct lb_watch_recovered) { .volume_id = "vol-0bbbbbbbbbbbbbbbb",
                                                         .mount_path = "/var/lib/lifeboat/recovery/vol-0bbbbbbbbbbbbbbbb",
                                                         .state = LB_WATCH_REC_SETTLING, .empty_since = SAMPLE_NOW_S + 1 };
        st->recovered[1] = (struct lb_watch_recovered) { .volume_id = "vol-0cccccccccccccccc",
                                                         .mount_path = "/var/lib/lifeboat/recovery/vol-0cccccccccccccccc",
                                                         .state = LB_WATCH_REC_RELEASED, .backup_files = 4,
                                                         .released_at = SAMPLE_NOW_S + 2 };
        st->n_recovered = 2;
}

int lbt_with_memory_limit(int (*fn)(void *arg), void *arg) {
#ifdef LBT_ASAN
        return fn(arg);
#else
        struct rlimit old, low;
        assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
        low = old;
        low.rlim_cur = 1024ul * 1024 * 1024;
        if (old.rlim_max != RLIM_INFINITY && old.rlim_max < low.rlim_cur)
                low.rlim_cur = old.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_AS, &low), 0);
        int r = fn(arg);
        assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
        return r;
#endif
}
