/* SPDX-License-Identifier: MIT */
/*
 * basic/chase: safe paths where a container may have planted symlinks, FIFOs and hard links.
 * Every test runs twice: with openat2(2), then with the O_NOFOLLOW component walk (the test
 * binary wraps syscall() and answers ENOSYS for openat2 from then on, as an old kernel would).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lifeboat/basic/chase.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

static bool no_openat2;
static unsigned openat2_calls;

long __real_syscall(long number, ...);
long __wrap_syscall(long number, ...);
long __wrap_syscall(long number, ...) {
        va_list ap;
        long a[6];
        va_start(ap, number);
        for (int i = 0; i < 6; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (number == SYS_openat2) {
                openat2_calls++;
                if (no_openat2) {
                        errno = ENOSYS;
                        return -1;
                }
        }
        return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static const char *dir_of(void **state) {
        return *state;
}

static int fd_close(int fd) {
        return fd >= 0 ? close(fd) : 0;
}

static void test_chase_refuses_symlinks_anywhere(void **state) {
        const char *d = dir_of(state);
        char p[PATH_MAX], q[PATH_MAX];
        int fd = -1;

        lbt_pathf(p, "%s/real/sub", d);
        assert_int_equal(lb_mkdir_p(p, 0755), 0);
        lbt_pathf(p, "%s/link", d);
        assert_int_equal(symlink("real", p), 0);

        lbt_pathf(p, "%s/real/sub", d);
        assert_int_equal(lb_chase(p, O_PATH | O_DIRECTORY, &fd), 0);
        assert_int_equal(fd_close(fd), 0);
        /* "." and empty components are fine, ".." is not */
        lbt_pathf(p, "%s//real/./sub/", d);
        assert_int_equal(lb_chase(p, O_RDONLY | O_DIRECTORY, &fd), 0);
        assert_int_equal(fd_close(fd), 0);
        lbt_pathf(p, "%s/real/../real/sub", d);
        assert_int_equal(lb_chase(p, O_PATH, &fd), -EINVAL);

        /* a symlink at the end, with and without O_PATH, and in the middle */
        lbt_pathf(p, "%s/link", d);
        assert_int_equal(lb_chase(p, O_PATH, &fd), -ELOOP);
        assert_int_equal(lb_chase(p, O_PATH | O_DIRECTORY, &fd), -ELOOP);
        assert_int_equal(lb_chase(p, O_RDONLY | O_DIRECTORY, &fd), -ELOOP);
        lbt_pathf(p, "%s/link/sub", d);
        assert_int_equal(lb_chase(p, O_PATH | O_DIRECTORY, &fd), -ELOOP);
        lbt_pathf(p, "%s/missing/sub", d);
        assert_int_equal(lb_chase(p, O_PATH, &fd), -ENOENT);

        /* below a directory: relative only, never through a symlink */
        int dfd = -1;
        assert_int_equal(lb_chase(d, O_PATH | O_DIRECTORY, &dfd), 0);
        assert_int_equal(lb_chase_at(dfd, "real/sub", O_PATH | O_DIRECTORY, &fd), 0);
        assert_int_equal(fd_close(fd), 0);
        assert_int_equal(lb_chase_at(dfd, "link/sub", O_PATH, &fd), -ELOOP);
        assert_int_equal(lb_chase_at(dfd, "/etc", O_PATH, &fd), -EINVAL);
        assert_int_equal(lb_chase_at(dfd, "..", O_PATH, &fd), -EINVAL);
        assert_int_equal(fd_close(dfd), 0);

        /* the parent of a path, and its last component */
        char name[NAME_MAX + 1];
        lbt_pathf(p, "%s/real/sub/", d);
        assert_int_equal(lb_chase_parent(p, &dfd, name, sizeof name), 0);
        assert_string_equal(name, "sub");
        assert_int_equal(fd_close(dfd), 0);
        lbt_pathf(q, "%s/link/file", d);
        assert_int_equal(lb_chase_parent(q, &dfd, name, sizeof name), -ELOOP);
        assert_int_equal(lb_chase_parent("/", &dfd, name, sizeof name), -EINVAL);
        assert_int_equal(lb_chase_parent("/tmp/..", &dfd, name, sizeof name), -EINVAL);
}

static void test_mkdir_never_creates_through_a_symlink(void **state) {
        const char *d = dir_of(state);
        char p[PATH_MAX], target[PATH_MAX];
        int fd = -1, dfd = -1;

        lbt_pathf(target, "%s/elsewhere", d);
        assert_int_equal(mkdir(target, 0755), 0);
        lbt_pathf(p, "%s/planted", d);
        assert_int_equal(symlink(target, p), 0);

        /* mkdir -p: creates what is missing, refuses a symlink on the way */
        lbt_pathf(p, "%s/a/b/c", d);
        assert_int_equal(lb_mkdir_p_safe(p, 0755, &fd), 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(fd_close(fd), 0);
        assert_int_equal(lb_mkdir_p(p, 0755), 0); /* again: fine */
        lbt_pathf(p, "%s/planted/x", d);
        assert_int_equal(lb_mkdir_p(p, 0755), -ELOOP);
        lbt_pathf(p, "%s/elsewhere/x", d);
        assert_int_equal(lstat(p, &st), -1); /* nothing created in the symlink's target */

        /* mkdirat: a symlink, a file, a FIFO at the name */
        assert_int_equal(lb_chase(d, O_RDONLY | O_DIRECTORY, &dfd), 0);
        assert_int_equal(lb_mkdirat_safe(dfd, "planted", 0755, O_PATH, &fd), -ELOOP);
        lbt_pathf(p, "%s/file", d);
        lbt_write_text(p, "x");
        assert_int_equal(lb_mkdirat_safe(dfd, "file", 0755, O_PATH, &fd), -ENOTDIR);
        assert_int_equal(mkfifoat(dfd, "fifo", 0644), 0);
        assert_int_equal(lb_mkdirat_safe(dfd, "fifo", 0755, O_PATH, &fd), -ENOTDIR);
        assert_int_equal(lb_mkdirat_safe(dfd, "../x", 0755, O_PATH, &fd), -EINVAL);
        assert_int_equal(lb_mkdirat_safe(dfd, "fresh", 0700, O_PATH, &fd), 0);
        assert_int_equal(fstatat(dfd, "fresh", &st, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(lb_fd_same_mount(dfd, fd), 1);
        assert_int_equal(fd_close(fd), 0);

        /* something mounted at the name: another mount, refused */
        lbt_pathf(p, "%s/fresh", d);
        assert_int_equal(mount("lifeboat-test", p, "tmpfs", 0, "size=1m"), 0);
        assert_int_equal(lb_mkdirat_safe(dfd, "fresh", 0755, O_PATH, &fd), -EXDEV);
        int inside = -1;
        assert_int_equal(lb_chase(p, O_PATH | O_DIRECTORY, &inside), 0);
        assert_int_equal(lb_fd_same_mount(dfd, inside), 0);
        uint64_t id;
        bool root = false;
        assert_int_equal(lb_fd_mount_id(inside, &id, &root), 0);
        assert_true(root);
        assert_int_equal(lb_fd_mount_id(dfd, &id, &root), 0);
        assert_false(root);
        assert_int_equal(fd_close(inside), 0);
        assert_int_equal(umount(p), 0);
        assert_int_equal(fd_close(dfd), 0);
}

static void test_open_regular_never_blocks(void **state) {
        const char *d = dir_of(state);
        char p[PATH_MAX];
        int dfd = -1, fd = -1;

        assert_int_equal(lb_chase(d, O_RDONLY | O_DIRECTORY, &dfd), 0);
        lbt_pathf(p, "%s/regular", d);
        lbt_write_text(p, "hello\n");
        assert_int_equal(lb_open_regular_at(dfd, "regular", O_RDONLY, &fd), 0);
        char buf[16] = "";
        assert_int_equal(read(fd, buf, sizeof buf - 1), 6);
        assert_string_equal(buf, "hello\n");
        assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        assert_int_equal(fd_close(fd), 0);

        /* a FIFO without a writer (reading) or a reader (writing) would block a plain open */
        assert_int_equal(mkfifoat(dfd, "fifo", 0644), 0);
        assert_int_equal(lb_open_regular_at(dfd, "fifo", O_RDONLY, &fd), -EBADFD);
        assert_int_equal(lb_open_regular_at(dfd, "fifo", O_WRONLY, &fd), -EBADFD);
        assert_int_equal(symlinkat("regular", dfd, "link"), 0);
        assert_int_equal(lb_open_regular_at(dfd, "link", O_RDONLY, &fd), -ELOOP);
        assert_int_equal(linkat(dfd, "regular", dfd, "hardlink", 0), 0);
        assert_int_equal(lb_open_regular_at(dfd, "regular", O_RDONLY, &fd), -EMLINK);
        assert_int_equal(mkdirat(dfd, "dir", 0755), 0);
        assert_int_equal(lb_open_regular_at(dfd, "dir", O_RDONLY, &fd), -EBADFD);
        assert_int_equal(lb_open_regular_at(dfd, "missing", O_RDONLY, &fd), -ENOENT);
        assert_int_equal(fd_close(dfd), 0);
}

static void test_tmpfile_names_are_new_and_unpredictable(void **state) {
        const char *d = dir_of(state);
        int dfd = -1, a = -1, b = -1;
        char na[NAME_MAX + 1], nb[NAME_MAX + 1];

        assert_int_equal(lb_chase(d, O_RDONLY | O_DIRECTORY, &dfd), 0);
        assert_int_equal(lb_tmpfile_at(dfd, "watch.json", 0600, &a, na, sizeof na), 0);
        assert_int_equal(lb_tmpfile_at(dfd, "watch.json", 0600, &b, nb, sizeof nb), 0);
        assert_true(lb_startswith(na, "watch.json.tmp."));
        assert_int_equal(strlen(na), strlen("watch.json.tmp.") + 16);
        assert_string_not_equal(na, nb);
        struct stat st;
        assert_int_equal(fstat(a, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(fd_close(a), 0);
        assert_int_equal(fd_close(b), 0);

        /* a base as long as a name may be still gives a valid name */
        char base[NAME_MAX + 1];
        memset(base, 'x', NAME_MAX);
        base[NAME_MAX] = '\0';
        assert_int_equal(lb_tmpfile_at(dfd, base, 0600, &a, na, sizeof na), 0);
        assert_int_equal(strlen(na), NAME_MAX);
        assert_int_equal(fd_close(a), 0);
        assert_int_equal(fd_close(dfd), 0);
}

static void test_atomic_write_replaces_what_was_planted(void **state) {
        const char *d = dir_of(state);
        char p[PATH_MAX], victim[PATH_MAX], q[PATH_MAX];
        _cleanup_free_ char *data = NULL;
        struct stat st;

        lbt_pathf(victim, "%s/victim", d);
        lbt_write_text(victim, "precious\n");

        /* a symlink at the name is replaced; its target keeps its content */
        lbt_pathf(p, "%s/marker", d);
        assert_int_equal(symlink(victim, p), 0);
        assert_int_equal(lb_write_file_atomic(p, "new\n", 4, 0644), 0);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(lb_read_file(victim, 100, &data, NULL), 0);
        assert_string_equal(data, "precious\n");
        free(TAKE_PTR(data));

        /* a FIFO at the name, and at the old predictable temporary name: nothing blocks */
        assert_int_equal(unlink(p), 0);
        assert_int_equal(mkfifo(p, 0644), 0);
        lbt_pathf(q, "%s/marker.tmp.%ld", d, (long) getpid());
        assert_int_equal(mkfifo(q, 0644), 0);
        assert_int_equal(lb_write_file_atomic(p, "again\n", 6, 0644), 0);
        assert_int_equal(lb_read_file(p, 100, &data, NULL), 0);
        assert_string_equal(data, "again\n");
        assert_int_equal(lstat(q, &st), 0);
        assert_true(S_ISFIFO(st.st_mode)); /* left alone */

        /* a symlink in the directory's path: refused, nothing written through it */
        lbt_pathf(q, "%s/dirlink", d);
        assert_int_equal(symlink(d, q), 0);
        lbt_pathf(q, "%s/dirlink/through", d);
        assert_int_equal(lb_write_file_atomic(q, "x", 1, 0644), -ELOOP);
        lbt_pathf(q, "%s/through", d);
        assert_int_equal(lstat(q, &st), -1);
}

static void use_walk(void) {
        no_openat2 = true;
}

static int setup_walk(void **state) {
        use_walk();
        return lbt_tmpdir_setup(state);
}

static void test_walk_was_used(void **state) {
        (void) state;
        assert_true(openat2_calls > 0); /* the first round went through openat2 */
        /* after the first ENOSYS openat2 is not tried again */
        unsigned before = openat2_calls;
        int fd = -1;
        assert_int_equal(lb_chase("/tmp", O_PATH | O_DIRECTORY, &fd), 0);
        assert_int_equal(fd_close(fd), 0);
        assert_int_equal(openat2_calls, before);
}

int main(void) {
#define BOTH(t) cmocka_unit_test_setup_teardown(t, lbt_tmpdir_setup, lbt_tmpdir_teardown)
#define WALK(t) cmocka_unit_test_setup_teardown(t, setup_walk, lbt_tmpdir_teardown)
        const struct CMUnitTest tests[] = {
                BOTH(test_chase_refuses_symlinks_anywhere),
                BOTH(test_mkdir_never_creates_through_a_symlink),
                BOTH(test_open_regular_never_blocks),
                BOTH(test_tmpfile_names_are_new_and_unpredictable),
                BOTH(test_atomic_write_replaces_what_was_planted),
                WALK(test_chase_refuses_symlinks_anywhere),
                WALK(test_mkdir_never_creates_through_a_symlink),
                WALK(test_open_regular_never_blocks),
                WALK(test_tmpfile_names_are_new_and_unpredictable),
                WALK(test_atomic_write_replaces_what_was_planted),
                cmocka_unit_test(test_walk_was_used),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
