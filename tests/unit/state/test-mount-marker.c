/* SPDX-License-Identifier: MIT */
/* The "mount in progress" marker: written before a recovery mount, found by the next boot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/mount-marker.h"
#include "testutil.h"

#define VOL "vol-0123456789abcdef0"
#define NOW_S 1795709575 /* 2026-11-26T16:12:55Z */

static void test_marker_round_trip(void **state) {
        char dir[PATH_MAX], path[PATH_MAX];
        lbt_pathf(dir, "%s/var/lib/lifeboat/state", (const char *) *state);
        struct lb_mount_marker m;

        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 0); /* no directory yet */
        assert_int_equal(lb_mount_marker_remove(dir, VOL), 0);
        assert_int_equal(lb_mount_marker_write(dir, VOL, "/dev/nvme2n1", NOW_S), 0);
        struct stat st;
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(lb_mount_marker_path(dir, VOL, path, sizeof path), 0);
        assert_true(lb_endswith(path, "/state/" VOL ".mounting"));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* written in this boot: a killed run, not a crash */
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 1);
        assert_false(m.earlier_boot);
        assert_int_equal(m.since, NOW_S);
        assert_string_equal(m.device, "/dev/nvme2n1");
        assert_int_equal(lb_mount_marker_find(dir, "vol-0fedcba9876543210", &m), 0);

        assert_int_equal(lb_mount_marker_remove(dir, VOL), 0);
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 0);
        assert_int_equal(lb_mount_marker_write(dir, "../etc", "/dev/x", NOW_S), -EINVAL);
}

static void test_marker_of_an_earlier_boot(void **state) {
        char dir[PATH_MAX], path[PATH_MAX];
        lbt_pathf(dir, "%s/state", (const char *) *state);
        assert_int_equal(lb_mkdir_p(dir, 0700), 0);
        assert_int_equal(lb_mount_marker_path(dir, VOL, path, sizeof path), 0);
        struct lb_mount_marker m;

        /* another boot id: the machine went down during the mount */
        lbt_write_text(path, "{\"volume\":\"" VOL "\",\"device\":\"/dev/nvme3n1\","
                             "\"boot_id\":\"00000000-0000-4000-8000-000000000000\",\"time\":\"2026-11-26T16:12:55Z\"}\n");
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 1);
        assert_true(m.earlier_boot);
        assert_int_equal(m.since, NOW_S);

        /* unreadable, empty, or not even a file: still a marker, and an earlier boot's */
        lbt_write_text(path, "garbage");
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 1);
        assert_true(m.earlier_boot);
        assert_int_equal(m.since, 0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkfifo(path, 0600), 0); /* never blocks */
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 1);
        assert_true(m.earlier_boot);
        assert_int_equal(lb_mount_marker_remove(dir, VOL), 0);
        char target[PATH_MAX];
        lbt_pathf(target, "%s/precious", (const char *) *state);
        lbt_write_text(target, "keep\n");
        assert_int_equal(symlink(target, path), 0);
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 1);
        assert_int_equal(lb_mount_marker_remove(dir, VOL), 0);
        assert_int_equal(access(target, F_OK), 0); /* the link went, not its target */
        assert_int_equal(lb_mount_marker_find(dir, VOL, &m), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_marker_round_trip, lbt_tmpdir_setup, lbt_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_marker_of_an_earlier_boot, lbt_tmpdir_setup, lbt_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
