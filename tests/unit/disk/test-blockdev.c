/* SPDX-License-Identifier: MIT */
/*
 * Device discovery against a fake sysfs tree in a temporary directory, with
 * real device nodes made by mknod (stat only: the numbers need not exist),
 * and the device-name helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/disk/blockdev.h"
#include "testutil.h"

#define VOL "vol-0123456789abcdef0"
#define GIB (UINT64_C(1) << 30)

struct fx {
        char root[PATH_MAX];    /* mkdtemp */
        char sys[PATH_MAX];     /* root/sys */
        char dev[PATH_MAX];     /* root/dev */
};

/* ---- helpers ---- */

/* SYS/<subdir>/<name>/{dev,size,holders/} as the kernel would show them (with newlines). */
static void fake_disk(struct fx *f, const char *subdir, const char *name, unsigned maj, unsigned min,
                      uint64_t bytes) {
        char p[PATH_MAX], text[64];
        lbt_pathf(p, "%s/%s/%s/dev", f->sys, subdir, name);
        assert_int_equal(lb_snprintf(text, sizeof text, "%u:%u\n", maj, min), 0);
        lbt_write_text(p, text);
        lbt_pathf(p, "%s/%s/%s/size", f->sys, subdir, name);
        assert_int_equal(lb_snprintf(text, sizeof text, "%llu\n", (unsigned long long) (bytes / 512)), 0);
        lbt_write_text(p, text);
        lbt_pathf(p, "%s/%s/%s/holders", f->sys, subdir, name);
        assert_int_equal(lb_mkdir_p(p, 0755), 0);
}

/* An NVMe namespace in SYS/class/block with fixed-width, space-padded model and serial. */
static void fake_nvme(struct fx *f, const char *name, const char *model, const char *serial, unsigned min,
                      uint64_t bytes) {
        char p[PATH_MAX], text[128];
        fake_disk(f, "class/block", name, 259, min, bytes);
        lbt_pathf(p, "%s/class/block/%s/device/model", f->sys, name);
        assert_int_equal(lb_snprintf(text, sizeof text, "%-40s\n", model), 0);
        lbt_write_text(p, text);
        lbt_pathf(p, "%s/class/block/%s/device/serial", f->sys, name);
        assert_int_equal(lb_snprintf(text, sizeof text, "%-20s\n", serial), 0);
        lbt_write_text(p, text);
}

static void make_node(struct fx *f, const char *name, unsigned maj, unsigned min) {
        char p[PATH_MAX];
        lbt_pathf(p, "%s/%s", f->dev, name);
        (void) unlink(p);
        assert_int_equal(mknod(p, S_IFBLK | 0600, makedev(maj, min)), 0);
}

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof *f);
        if (!f)
                return -1;
        if (lbt_mkdtemp(f->root, sizeof f->root) < 0) {
                free(f);
                return -1;
        }
        char p[PATH_MAX];
        if (lb_snprintf(f->sys, sizeof f->sys, "%s/sys", f->root) < 0 ||
            lb_snprintf(f->dev, sizeof f->dev, "%s/dev", f->root) < 0 ||
            lb_mkdir_p(f->sys, 0755) < 0 || lb_mkdir_p(f->dev, 0755) < 0 ||
            lb_snprintf(p, sizeof p, "%s/class/block", f->sys) < 0 || lb_mkdir_p(p, 0755) < 0 ||
            lb_snprintf(p, sizeof p, "%s/block", f->sys) < 0 || lb_mkdir_p(p, 0755) < 0) {
                (void) lbt_rm_rf(f->root);
                free(f);
                return -1;
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        int r = lbt_rm_rf(f->root);
        free(f);
        return r;
}

static struct lb_blockdev_query nitro_query(struct fx *f) {
        return (struct lb_blockdev_query) {
                .sysfs_root = f->sys,
                .dev_root = f->dev,
                .volume_id = VOL,
        };
}

/* ---- device names ---- */

static void test_devname_slot(void **state) {
        (void) state;
        char b[16];
        static const struct {
                const char *in, *slot;
        } ok[] = {
                { "/dev/sdf", "f" }, { "sdf", "f" }, { "/dev/xvdf", "f" }, { "xvdf", "f" },
                { "/dev/xvdba", "ba" }, { "sdba", "ba" }, { "/dev/sda1", "a" }, { "xvda1", "a" },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                assert_int_equal(lb_devname_slot(ok[i].in, b, sizeof b), 0);
                assert_string_equal(b, ok[i].slot);
        }
        static const char *const bad[] = { "nvme0n1", "/dev/nvme1n1", "/dev/hda", "xvd", "sd", "/dev/sdF",
                                           "sdf/x", "xvdabcd", "", "/dev/", "vdb", "sd1" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(lb_devname_slot(bad[i], b, sizeof b), -EINVAL);
        assert_int_equal(lb_devname_slot(NULL, b, sizeof b), -EINVAL);
        /* too small a buffer is an error, not a truncation */
        assert_int_equal(lb_devname_slot("/dev/xvdba", b, 2), -ENAMETOOLONG);
}

static void test_devname_xen(void **state) {
        (void) state;
        char b[16];
        assert_int_equal(lb_devname_xen("/dev/sdf", b, sizeof b), 0);
        assert_string_equal(b, "xvdf");
        assert_int_equal(lb_devname_xen("sdf", b, sizeof b), 0);
        assert_string_equal(b, "xvdf");
        assert_int_equal(lb_devname_xen("/dev/xvdba", b, sizeof b), 0);
        assert_string_equal(b, "xvdba");
        assert_int_equal(lb_devname_xen("/dev/nvme1n1", b, sizeof b), -EINVAL);

        assert_true(lb_devname_same_slot("/dev/sdf", "xvdf"));
        assert_true(lb_devname_same_slot("sdf", "/dev/xvdf"));
        assert_true(lb_devname_same_slot("/dev/sda1", "xvda"));
        assert_false(lb_devname_same_slot("/dev/sdf", "/dev/sdg"));
        assert_false(lb_devname_same_slot("/dev/xvdb", "/dev/xvdba"));
        assert_false(lb_devname_same_slot("nvme0n1", "nvme0n1"));
}

static void test_devname_pick(void **state) {
        (void) state;
        struct lb_devname_picker p = { 0 };
        char **names = NULL;

        /* sdba and xvdbb are the slots of xvdba and xvdbb; nvme0n1 is no slot name and ignored. */
        const char *in_use[] = { "/dev/sdba", "xvdbb", "nvme0n1", "/dev/xvda", "/dev/sda1" };
        assert_int_equal(lb_devname_pick(&p, in_use, ELEMENTSOF(in_use), 2, &names), 0);
        assert_string_equal(names[0], "/dev/xvdbc");
        assert_string_equal(names[1], "/dev/xvdbd");
        assert_null(names[2]);
        strv_free(TAKE_PTR(names));

        /* Never reused in the same boot, even when nothing is in use any more. */
        assert_int_equal(lb_devname_pick(&p, NULL, 0, 1, &names), 0);
        assert_string_equal(names[0], "/dev/xvdba");
        strv_free(TAKE_PTR(names));
        assert_int_equal(lb_devname_pick(&p, NULL, 0, 1, &names), 0);
        assert_string_equal(names[0], "/dev/xvdbb");
        strv_free(TAKE_PTR(names));
        const char *in_use2[] = { "sdbe" };
        assert_int_equal(lb_devname_pick(&p, in_use2, 1, 1, &names), 0);
        assert_string_equal(names[0], "/dev/xvdbf");
        strv_free(TAKE_PTR(names));
        assert_int_equal(p.n_handed_out, 5);
        lb_devname_picker_done(&p);
        assert_null(p.handed_out);
        assert_int_equal(p.n_handed_out, 0);
}

static void test_devname_pick_rollover_and_exhaustion(void **state) {
        (void) state;
        struct lb_devname_picker p = { 0 };
        char **names = NULL;
        char used[26][16];
        const char *in_use[26];

        for (int i = 0; i < 26; i++) {
                assert_int_equal(lb_snprintf(used[i], sizeof used[i], "/dev/sdb%c", 'a' + i), 0);
                in_use[i] = used[i];
        }
        assert_int_equal(lb_devname_pick(&p, in_use, 26, 1, &names), 0);
        assert_string_equal(names[0], "/dev/xvdca");
        strv_free(TAKE_PTR(names));

        /* 76 names in all (ba-bz, ca-cz, da-dx): 26 in use, 1 handed out, 49 left. */
        assert_int_equal(lb_devname_pick(&p, in_use, 26, 50, &names), -ENOSPC);
        assert_null(names);
        assert_int_equal(p.n_handed_out, 1); /* a failed pick records nothing */
        assert_int_equal(lb_devname_pick(&p, in_use, 26, 49, &names), 0);
        assert_string_equal(names[0], "/dev/xvdcb");
        assert_string_equal(names[25], "/dev/xvdda");
        assert_string_equal(names[48], "/dev/xvddx");
        assert_null(names[49]);
        strv_free(TAKE_PTR(names));
        assert_int_equal(lb_devname_pick(&p, in_use, 26, 1, &names), -ENOSPC);
        /* names in use (not handed out by us) become available once they are free */
        assert_int_equal(lb_devname_pick(&p, NULL, 0, 1, &names), 0);
        assert_string_equal(names[0], "/dev/xvdba");
        strv_free(TAKE_PTR(names));
        lb_devname_picker_done(&p);
}

/* ---- Nitro ---- */

static void test_nvme_match_by_padded_serial(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "";

        fake_nvme(f, "nvme0n1", "Amazon Elastic Block Store", "vol0aaaaaaaaaaaaaaaa", 1, 8 * GIB);
        fake_nvme(f, "nvme1n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 5, 2 * GIB);
        /* the same serial where it must not count: a partition, a hidden multipath path, instance store */
        fake_nvme(f, "nvme1n1p1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 6, GIB);
        fake_nvme(f, "nvme1c1n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 7, 2 * GIB);
        fake_nvme(f, "nvme2n1", "Amazon EC2 NVMe Instance Storage", "vol0123456789abcdef0", 8, 2 * GIB);
        make_node(f, "nvme0n1", 259, 1);
        make_node(f, "nvme1n1", 259, 5);

        struct lb_blockdev_query q = nitro_query(f);
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), 0);
        assert_string_equal(d.name, "nvme1n1");
        char want[PATH_MAX];
        lbt_pathf(want, "%s/nvme1n1", f->dev);
        assert_string_equal(d.node, want);
        lbt_pathf(want, "%s/class/block/nvme1n1", f->sys);
        assert_string_equal(d.sysfs, want);
        assert_int_equal(major(d.devno), 259);
        assert_int_equal(minor(d.devno), 5);
        assert_int_equal(d.size_bytes, 2 * GIB);

        /* the wait finds it at once, too */
        struct lb_blockdev w;
        assert_int_equal(lb_blockdev_wait(&q, 1000, NULL, &w, reason, sizeof reason), 0);
        assert_string_equal(w.name, "nvme1n1");
}

static void test_nvme_two_matches(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d = { .name = "untouched" };
        char reason[256] = "";

        fake_nvme(f, "nvme1n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 5, GIB);
        fake_nvme(f, "nvme3n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 9, GIB);
        make_node(f, "nvme1n1", 259, 5);
        make_node(f, "nvme3n1", 259, 9);

        struct lb_blockdev_query q = nitro_query(f);
        q.requested_name = "/dev/sdf";
        q.size_bytes = GIB;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENOTUNIQ);
        assert_non_null(strstr(reason, "nvme1n1"));
        assert_non_null(strstr(reason, "nvme3n1"));
        assert_string_equal(d.name, "untouched");
        /* never a guess, and no waiting for it to resolve itself */
        uint64_t t0 = lb_now_ms();
        assert_int_equal(lb_blockdev_wait(&q, 5000, NULL, &d, reason, sizeof reason), -ENOTUNIQ);
        assert_true(lb_now_ms() - t0 < 1000);
}

static void test_nvme_no_match(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "";

        fake_nvme(f, "nvme0n1", "Amazon Elastic Block Store", "vol0aaaaaaaaaaaaaaaa", 1, GIB);
        make_node(f, "nvme0n1", 259, 1);
        struct lb_blockdev_query q = nitro_query(f);
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENOENT);
        assert_non_null(strstr(reason, "vol0123456789abcdef0"));

        uint64_t t0 = lb_now_ms();
        assert_int_equal(lb_blockdev_wait(&q, 300, NULL, &d, reason, sizeof reason), -ETIMEDOUT);
        assert_true(lb_now_ms() - t0 >= 300);
        assert_non_null(strstr(reason, "300 ms"));

        /* timeout 0: a single scan, its own answer */
        assert_int_equal(lb_blockdev_wait(&q, 0, NULL, &d, reason, sizeof reason), -ENOENT);

        volatile sig_atomic_t interrupted = 1;
        t0 = lb_now_ms();
        assert_int_equal(lb_blockdev_wait(&q, 5000, &interrupted, &d, reason, sizeof reason), -EINTR);
        assert_true(lb_now_ms() - t0 < 1000);

        /* a bad volume id is an argument error */
        q.volume_id = "vol-XYZ";
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -EINVAL);
}

static void test_node_checks(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "", p[PATH_MAX];

        fake_nvme(f, "nvme1n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 5, GIB);
        struct lb_blockdev_query q = nitro_query(f);

        /* no node yet */
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENODEV);

        /* a node with other numbers than sysfs says */
        make_node(f, "nvme1n1", 259, 6);
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -EXDEV);
        assert_non_null(strstr(reason, "259:6"));
        assert_non_null(strstr(reason, "259:5"));
        assert_int_equal(lb_blockdev_wait(&q, 2000, NULL, &d, reason, sizeof reason), -EXDEV);

        /* a character device with the right numbers, and a regular file */
        lbt_pathf(p, "%s/nvme1n1", f->dev);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(259, 5)), 0);
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENOTBLK);
        assert_int_equal(unlink(p), 0);
        lbt_write_text(p, "not a device\n");
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENOTBLK);
}

static void test_wait_until_node_appears(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "", p[PATH_MAX];

        fake_nvme(f, "nvme1n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 5, GIB);
        lbt_pathf(p, "%s/nvme1n1", f->dev);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct timespec ts = { .tv_sec = 0, .tv_nsec = 400 * 1000000L };
                (void) nanosleep(&ts, NULL);
                _exit(mknod(p, S_IFBLK | 0600, makedev(259, 5)) == 0 ? 0 : 1);
        }
        struct lb_blockdev_query q = nitro_query(f);
        uint64_t t0 = lb_now_ms();
        int r = lb_blockdev_wait(&q, 10000, NULL, &d, reason, sizeof reason);
        uint64_t took = lb_now_ms() - t0;
        assert_int_equal(lbt_wait_exit(pid), 0);
        assert_int_equal(r, 0);
        assert_string_equal(d.name, "nvme1n1");
        assert_true(took >= 350 && took < 5000);
}

/* ---- Xen ---- */

static void test_xen_mapping_and_snapshot(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "";
        _cleanup_strv_free_ char **before = NULL;
        _cleanup_strv_free_ char **after = NULL;

        fake_disk(f, "block", "xvda", 202, 0, 8 * GIB);
        make_node(f, "xvda", 202, 0);
        assert_int_equal(lb_blockdev_snapshot(f->sys, &before), 0);
        assert_string_equal(before[0], "xvda");
        assert_null(before[1]);

        /* "attach": xvdf appears */
        fake_disk(f, "block", "xvdf", 202, 80, 4 * GIB);
        make_node(f, "xvdf", 202, 80);

        struct lb_blockdev_query q = nitro_query(f);
        q.requested_name = "/dev/sdf";
        q.size_bytes = 4 * GIB;
        q.snapshot = before;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), 0);
        assert_string_equal(d.name, "xvdf");
        char want[PATH_MAX];
        lbt_pathf(want, "%s/xvdf", f->dev);
        assert_string_equal(d.node, want);
        lbt_pathf(want, "%s/block/xvdf", f->sys);
        assert_string_equal(d.sysfs, want);
        assert_int_equal(d.devno, makedev(202, 80));
        assert_int_equal(d.size_bytes, 4 * GIB);

        /* the same with the xvd spelling */
        q.requested_name = "/dev/xvdf";
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), 0);
        assert_string_equal(d.name, "xvdf");

        /* a snapshot taken now contains xvdf: it no longer counts as new */
        assert_int_equal(lb_blockdev_snapshot(f->sys, &after), 0);
        assert_string_equal(after[0], "xvda");
        assert_string_equal(after[1], "xvdf");
        assert_null(after[2]);
        q.snapshot = after;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -EEXIST);
        assert_non_null(strstr(reason, "before the attach"));
        assert_int_equal(lb_blockdev_wait(&q, 250, NULL, &d, reason, sizeof reason), -ETIMEDOUT);
        assert_non_null(strstr(reason, "before the attach"));

        /* no snapshot: a launch-time mapping, accepted by name and size */
        q.snapshot = NULL;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), 0);
        assert_string_equal(d.name, "xvdf");

        /* no requested name: only NVMe is looked at */
        q.requested_name = NULL;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENOENT);

        /* another name that is not there */
        q.requested_name = "/dev/sdg";
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -ENOENT);
}

static void test_xen_size_mismatch(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "";
        char *empty[] = { NULL };

        fake_disk(f, "block", "xvdba", 202, 80, 4 * GIB);
        make_node(f, "xvdba", 202, 80);
        struct lb_blockdev_query q = nitro_query(f);
        q.requested_name = "/dev/sdba";
        q.snapshot = empty;
        q.size_bytes = 5 * GIB;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -EMEDIUMTYPE);
        assert_non_null(strstr(reason, "xvdba"));
        assert_int_equal(lb_blockdev_wait(&q, 2000, NULL, &d, reason, sizeof reason), -EMEDIUMTYPE);

        /* Xen cannot be confirmed without a size */
        q.size_bytes = 0;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), -EINVAL);

        q.size_bytes = 4 * GIB;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), 0);
        assert_string_equal(d.name, "xvdba");
}

static void test_nitro_wins_over_xen_name(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "";
        char *empty[] = { NULL };

        fake_nvme(f, "nvme1n1", "Amazon Elastic Block Store", "vol0123456789abcdef0", 5, GIB);
        make_node(f, "nvme1n1", 259, 5);
        fake_disk(f, "block", "xvdf", 202, 80, GIB);
        make_node(f, "xvdf", 202, 80);
        struct lb_blockdev_query q = nitro_query(f);
        q.requested_name = "/dev/sdf";
        q.snapshot = empty;
        q.size_bytes = GIB;
        assert_int_equal(lb_blockdev_find(&q, &d, reason, sizeof reason), 0);
        assert_string_equal(d.name, "nvme1n1");
}

static void test_load_by_name(void **state) {
        struct fx *f = *state;
        struct lb_blockdev d;
        char reason[256] = "";

        fake_disk(f, "class/block", "loop7", 7, 7, 512 * 1024 * 1024);
        make_node(f, "loop7", 7, 7);
        assert_int_equal(lb_blockdev_load(f->sys, f->dev, "loop7", &d, reason, sizeof reason), 0);
        assert_int_equal(d.devno, makedev(7, 7));
        assert_int_equal(d.size_bytes, 512 * 1024 * 1024);

        assert_int_equal(lb_blockdev_load(f->sys, f->dev, "loop8", &d, reason, sizeof reason), -ENOENT);
        assert_int_equal(lb_blockdev_load(f->sys, f->dev, "../loop7", &d, reason, sizeof reason), -EINVAL);

        char p[PATH_MAX];
        lbt_pathf(p, "%s/class/block/loop7/dev", f->sys);
        lbt_write_text(p, "seven\n");
        assert_int_equal(lb_blockdev_load(f->sys, f->dev, "loop7", &d, reason, sizeof reason), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_devname_slot),
                cmocka_unit_test(test_devname_xen),
                cmocka_unit_test(test_devname_pick),
                cmocka_unit_test(test_devname_pick_rollover_and_exhaustion),
                cmocka_unit_test_setup_teardown(test_nvme_match_by_padded_serial, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nvme_two_matches, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nvme_no_match, setup, teardown),
                cmocka_unit_test_setup_teardown(test_node_checks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_until_node_appears, setup, teardown),
                cmocka_unit_test_setup_teardown(test_xen_mapping_and_snapshot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_xen_size_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nitro_wins_over_xen_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_by_name, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
