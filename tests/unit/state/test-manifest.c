/* SPDX-License-Identifier: MIT */
/* The run directory: recovered.json and the lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/lock.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/manifest.h"
#include "testutil.h"

#ifdef LBT_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
        return LBT_ASAN_ALLOCATION_LIMIT;
}
#endif

static struct lb_manifest_entry sample_entry(const char *volume_id, bool full) {
        struct lb_manifest_entry e = { 0 };
        assert_int_equal(lb_strscpy(e.volume_id, sizeof e.volume_id, volume_id), 0);
        assert_int_equal(lb_strscpy(e.device, sizeof e.device, "/dev/nvme2n1"), 0);
        assert_int_equal(lb_snprintf(e.mount_path, sizeof e.mount_path, "/var/lib/lifeboat/recovery/%s", volume_id), 0);
        e.recovered_at = 1795709575; /* 2026-11-26T16:12:55Z */
        if (full) {
                assert_int_equal(lb_strscpy(e.previous_owner, sizeof e.previous_owner, "i-0123456789abcdef0"), 0);
                assert_int_equal(lb_snprintf(e.config_file, sizeof e.config_file, "/etc/fluent/recovery.d/%s.conf",
                                             volume_id), 0);
                assert_int_equal(lb_strscpy(e.fs_uuid, sizeof e.fs_uuid, "0b1e8a36-5c0e-4f8e-9d1a-2f4c6b8d0e11"), 0);
        }
        return e;
}

static void assert_entries_equal(const struct lb_manifest_entry *a, const struct lb_manifest_entry *b) {
        assert_string_equal(a->volume_id, b->volume_id);
        assert_string_equal(a->device, b->device);
        assert_string_equal(a->mount_path, b->mount_path);
        assert_string_equal(a->previous_owner, b->previous_owner);
        assert_string_equal(a->config_file, b->config_file);
        assert_int_equal(a->recovered_at, b->recovered_at);
        assert_string_equal(a->fs_uuid, b->fs_uuid);
}

static void test_round_trip(void **state) {
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        struct lb_manifest_entry a = sample_entry("vol-0aaaaaaaaaaaaaaaa", true);
        struct lb_manifest_entry b = sample_entry("vol-0bbbbbbbb", false);
        assert_int_equal(lb_manifest_add(&m, &a), 0);
        assert_int_equal(lb_manifest_add(&m, &b), 0);

        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_manifest_format(&m, &text), 0);
        assert_true(lb_endswith(text, "}\n"));
        assert_non_null(strstr(text, "\"version\": 1"));
        assert_non_null(strstr(text, "\"recovered_at\": \"2026-11-26T16:12:55Z\""));
        assert_non_null(strstr(text, "\"previous_owner\": null"));
        assert_non_null(strstr(text, "\"previous_owner\": \"i-0123456789abcdef0\""));

        _cleanup_manifest_ struct lb_manifest back = { 0 };
        assert_int_equal(lb_manifest_parse(text, strlen(text), &back), 0);
        assert_int_equal(back.n, 2);
        assert_entries_equal(&back.entries[0], &a);
        assert_entries_equal(&back.entries[1], &b);

        _cleanup_free_ char *again = NULL;
        assert_int_equal(lb_manifest_format(&back, &again), 0);
        assert_string_equal(text, again);

        /* An empty manifest. */
        _cleanup_manifest_ struct lb_manifest empty = { 0 };
        _cleanup_free_ char *etext = NULL;
        assert_int_equal(lb_manifest_format(&empty, &etext), 0);
        _cleanup_manifest_ struct lb_manifest eback = { 0 };
        assert_int_equal(lb_manifest_parse(etext, strlen(etext), &eback), 0);
        assert_int_equal(eback.n, 0);
}

static void test_parse_lenient_parts(void **state) {
        /* Unknown fields anywhere are ignored; optional fields may be absent; fractional seconds accepted. */
        const char *doc =
                "{\"version\":1,\"written_by\":\"lifeboat 9\",\"volumes\":[{"
                "\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc12345\","
                "\"mount_path\":\"/srv/rec/vol-0abc12345\",\"recovered_at\":\"2026-01-02T03:04:05.123Z\","
                "\"future\":{\"x\":[1,2]}}]}";
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        assert_int_equal(lb_manifest_parse(doc, strlen(doc), &m), 0);
        assert_int_equal(m.n, 1);
        assert_string_equal(m.entries[0].volume_id, "vol-0abc12345");
        assert_string_equal(m.entries[0].previous_owner, "");
        assert_string_equal(m.entries[0].config_file, "");
        assert_string_equal(m.entries[0].fs_uuid, "");
        assert_int_equal(m.entries[0].recovered_at, 1767323045);
}

static void test_parse_rejects_bad_documents(void **state) {
#define ENTRY_WITH(field) \
        "{\"version\":1,\"volumes\":[{" field "}]}"
        static const char *const bad[] = {
                "",
                "not json",
                "[]",
                "{\"volumes\":[]}",
                "{\"version\":2,\"volumes\":[]}",
                "{\"version\":\"1\",\"volumes\":[]}",
                "{\"version\":1.0,\"volumes\":[]}",
                "{\"version\":1}",
                "{\"version\":1,\"volumes\":{}}",
                "{\"version\":1,\"volumes\":[\"vol-0abc12345\"]}",
                "{\"version\":1,\"version\":1,\"volumes\":[]}",
                /* missing required fields */
                ENTRY_WITH("\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\""),
                /* wrong types */
                ENTRY_WITH("\"volume_id\":12345,\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":[\"/dev/x\"],\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":1767323045"),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\",\"previous_owner\":false"),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\",\"fs_uuid\":7"),
                ENTRY_WITH("\"volume_id\":null,\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                /* bad values */
                ENTRY_WITH("\"volume_id\":\"vol-XYZ\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"i-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\\ny\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/a b\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/../etc\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"relative\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"yesterday\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05+02:00\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\",\"previous_owner\":\"bob\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\",\"config_file\":\"recovery.d/x.conf\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\",\"fs_uuid\":\"../x\""),
                ENTRY_WITH("\"volume_id\":\"vol-0abc12345\\u0000\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                /* the same volume twice */
                "{\"version\":1,\"volumes\":["
                "{\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\"},"
                "{\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/y\",\"mount_path\":\"/m/y\",\"recovered_at\":\"2026-01-02T03:04:05Z\"}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_manifest m = { .n = 4242 };
                int r = lb_manifest_parse(bad[i], strlen(bad[i]), &m);
                if (r != -EBADMSG)
                        print_error("accepted: %s\n", bad[i]);
                assert_int_equal(r, -EBADMSG);
                assert_int_equal(m.n, 4242); /* untouched */
        }

        /* A value too long for its field. */
        char doc[8192];
        char longdev[5000];
        memset(longdev, 'd', sizeof longdev - 1);
        longdev[sizeof longdev - 1] = '\0';
        longdev[0] = '/';
        assert_int_equal(lb_snprintf(doc, sizeof doc, ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"%s\","
                                                                 "\"mount_path\":\"/m/x\",\"recovered_at\":\"2026-01-02T03:04:05Z\""),
                                     longdev), 0);
        struct lb_manifest m = { 0 };
        assert_int_equal(lb_manifest_parse(doc, strlen(doc), &m), -EBADMSG);

        /* The good twin of the documents above parses. */
        const char *good = ENTRY_WITH("\"volume_id\":\"vol-0abc12345\",\"device\":\"/dev/x\",\"mount_path\":\"/m/x\","
                                      "\"recovered_at\":\"2026-01-02T03:04:05Z\",\"previous_owner\":null");
        assert_int_equal(lb_manifest_parse(good, strlen(good), &m), 0);
        assert_int_equal(m.n, 1);
        lb_manifest_done(&m);
#undef ENTRY_WITH
}

static void test_add_find_remove(void **state) {
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        struct lb_manifest_entry a = sample_entry("vol-0aaaaaaaa", true);
        struct lb_manifest_entry b = sample_entry("vol-0bbbbbbbb", true);
        struct lb_manifest_entry c = sample_entry("vol-0cccccccc", false);

        assert_null(lb_manifest_find(&m, "vol-0aaaaaaaa"));
        assert_int_equal(lb_manifest_remove(&m, "vol-0aaaaaaaa"), 0);
        assert_int_equal(lb_manifest_add(&m, &a), 0);
        assert_int_equal(lb_manifest_add(&m, &b), 0);
        assert_int_equal(lb_manifest_add(&m, &c), 0);
        assert_int_equal(m.n, 3);

        /* Adding the same volume replaces it in place. */
        struct lb_manifest_entry b2 = b;
        assert_int_equal(lb_strscpy(b2.device, sizeof b2.device, "/dev/nvme5n1"), 0);
        assert_int_equal(lb_manifest_add(&m, &b2), 0);
        assert_int_equal(m.n, 3);
        assert_string_equal(lb_manifest_find(&m, "vol-0bbbbbbbb")->device, "/dev/nvme5n1");
        assert_string_equal(m.entries[1].volume_id, "vol-0bbbbbbbb");

        /* Invalid entries are refused. */
        struct lb_manifest_entry bad = a;
        assert_int_equal(lb_strscpy(bad.volume_id, sizeof bad.volume_id, "vol-nope"), 0);
        assert_int_equal(lb_manifest_add(&m, &bad), -EINVAL);
        bad = a;
        assert_int_equal(lb_strscpy(bad.mount_path, sizeof bad.mount_path, "/m/a b"), 0);
        assert_int_equal(lb_manifest_add(&m, &bad), -EINVAL);
        bad = a;
        memset(bad.fs_uuid, 'a', sizeof bad.fs_uuid); /* not terminated */
        assert_int_equal(lb_manifest_add(&m, &bad), -EINVAL);
        assert_int_equal(m.n, 3);

        assert_int_equal(lb_manifest_remove(&m, "vol-0bbbbbbbb"), 1);
        assert_int_equal(m.n, 2);
        assert_string_equal(m.entries[0].volume_id, "vol-0aaaaaaaa");
        assert_string_equal(m.entries[1].volume_id, "vol-0cccccccc");
        assert_null(lb_manifest_find(&m, "vol-0bbbbbbbb"));
        assert_int_equal(lb_manifest_remove(&m, "vol-0bbbbbbbb"), 0);
        assert_int_equal(lb_manifest_remove(&m, "vol-0cccccccc"), 1);
        assert_int_equal(lb_manifest_remove(&m, "vol-0aaaaaaaa"), 1);
        assert_int_equal(m.n, 0);
}

static void test_load_save(void **state) {
        const char *tmp = *state;
        char run[PATH_MAX], path[PATH_MAX];
        assert_int_equal(lb_snprintf(run, sizeof run, "%s/run/lifeboat", tmp), 0);

        /* A missing file (and directory) is an empty manifest. */
        struct lb_manifest m = { .n = 7 };
        assert_int_equal(lb_manifest_load(run, &m), 0);
        assert_int_equal(m.n, 0);
        assert_null(m.entries);

        struct lb_manifest_entry a = sample_entry("vol-0aaaaaaaa", true);
        assert_int_equal(lb_manifest_add(&m, &a), 0);
        assert_int_equal(lb_manifest_save(run, &m), 0);
        assert_int_equal(lb_manifest_path(run, path, sizeof path), 0);
        assert_true(lb_endswith(path, "/run/lifeboat/recovered.json"));
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(stat(run, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);

        _cleanup_manifest_ struct lb_manifest back = { 0 };
        assert_int_equal(lb_manifest_load(run, &back), 0);
        assert_int_equal(back.n, 1);
        assert_entries_equal(&back.entries[0], &a);

        /* Saving an emptied manifest keeps a valid, empty document. */
        assert_int_equal(lb_manifest_remove(&m, "vol-0aaaaaaaa"), 1);
        assert_int_equal(lb_manifest_save(run, &m), 0);
        lb_manifest_done(&m);
        assert_int_equal(lb_manifest_load(run, &m), 0);
        assert_int_equal(m.n, 0);

        /* A corrupt file is an error, not an empty list. */
        assert_int_equal(lb_write_file_atomic(path, "{\"version\":1,", 13, 0644), 0);
        assert_int_equal(lb_manifest_load(run, &m), -EBADMSG);
        lb_manifest_done(&m);
}

/* ---- lock ---- */

static void test_lock_exclusive(void **state) {
        const char *tmp = *state;
        char run[PATH_MAX];
        assert_int_equal(lb_snprintf(run, sizeof run, "%s/run/lifeboat", tmp), 0);

        _cleanup_close_ int fd = -EBADF;
        assert_int_equal(lb_lock_acquire(run, "watch.lock", false, 0, &fd), 0);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(stat(run, &st), 0);
        assert_true(S_ISDIR(st.st_mode));

        /* A second open file description in the same process conflicts (flock semantics). */
        int fd2 = -EBADF;
        assert_int_equal(lb_lock_acquire(run, "watch.lock", false, 0, &fd2), -EWOULDBLOCK);
        assert_int_equal(fd2, -EBADF);
        uint64_t t0 = lb_now_ms();
        assert_int_equal(lb_lock_acquire(run, "watch.lock", true, 300, &fd2), -ETIMEDOUT);
        assert_true(lb_now_ms() - t0 >= 300);
        /* Another name is another lock. */
        _cleanup_close_ int other = -EBADF;
        assert_int_equal(lb_lock_acquire(run, "boot.lock", false, 0, &other), 0);

        /* Closing the fd releases it. */
        close(TAKE_FD(fd));
        assert_int_equal(lb_lock_acquire(run, "watch.lock", false, 0, &fd2), 0);
        close(fd2);

        assert_int_equal(lb_lock_acquire(run, "a/b", false, 0, &fd2), -EINVAL);
        assert_int_equal(lb_lock_acquire(run, "..", false, 0, &fd2), -EINVAL);
        assert_int_equal(lb_lock_acquire(run, "", false, 0, &fd2), -EINVAL);
}

static void test_lock_held_by_child(void **state) {
        const char *tmp = *state;
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = -EBADF;
                close(pipefd[0]);
                if (lb_lock_acquire(tmp, "held.lock", false, 0, &fd) < 0)
                        _exit(1);
                (void) lb_write_all(pipefd[1], "L", 1);
                usleep(400 * 1000);
                _exit(0); /* the lock goes with the process */
        }
        close(pipefd[1]);
        char c = 0;
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        close(pipefd[0]);

        int fd = -EBADF;
        assert_int_equal(lb_lock_acquire(tmp, "held.lock", false, 0, &fd), -EWOULDBLOCK);
        /* Waiting gets it once the child is gone. */
        assert_int_equal(lb_lock_acquire(tmp, "held.lock", true, 10000, &fd), 0);
        close(fd);
        assert_int_equal(lbt_wait_exit(pid), 0);

        /* Waiting without a limit, too: the child holds the lock for a while. */
        assert_int_equal(pipe(pipefd), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int cfd = -EBADF;
                close(pipefd[0]);
                if (lb_lock_acquire(tmp, "held.lock", false, 0, &cfd) < 0)
                        _exit(1);
                (void) lb_write_all(pipefd[1], "L", 1);
                usleep(300 * 1000);
                _exit(0);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        close(pipefd[0]);
        uint64_t t0 = lb_now_ms();
        assert_int_equal(lb_lock_acquire(tmp, "held.lock", true, 0, &fd), 0);
        assert_true(lb_now_ms() - t0 >= 100);
        close(fd);
        assert_int_equal(lbt_wait_exit(pid), 0);
}

struct doc {
        const char *text;
        size_t len;
};

static int parse_doc(void *arg) {
        const struct doc *d = arg;
        struct lb_manifest m = { 0 };
        int r = lb_manifest_parse(d->text, d->len, &m);
        lb_manifest_done(&m);
        return r;
}

/* The array's size is what the file claims: a 1 MiB file of "{}" once made the reader ask for
 * 350 000 entries of 16 KiB before looking at the first. */
static void test_parse_allocates_as_entries_validate(void **state) {
        _cleanup_buf_ struct lb_buf b = { 0 };
        assert_int_equal(lb_buf_append_str(&b, "{\"version\":1,\"volumes\":["), 0);
        while (b.len + 4 < LB_MANIFEST_MAX_BYTES)
                assert_int_equal(lb_buf_append_str(&b, "{},"), 0);
        assert_int_equal(lb_buf_append_str(&b, "{}]}"), 0);
        struct doc d = { b.data, b.len };
        assert_int_equal(lbt_with_memory_limit(parse_doc, &d), -EBADMSG);

        /* At most LB_MANIFEST_MAX_ENTRIES volumes, each valid. */
        _cleanup_manifest_ struct lb_manifest m = { 0 };
        for (unsigned i = 0; i < LB_MANIFEST_MAX_ENTRIES; i++) {
                char id[32];
                assert_int_equal(lb_snprintf(id, sizeof id, "vol-%017x", i), 0);
                struct lb_manifest_entry e = sample_entry(id, i % 2 == 0);
                assert_int_equal(lb_manifest_add(&m, &e), 0);
        }
        struct lb_manifest_entry extra = sample_entry("vol-0ffffffffffffffff", true);
        assert_int_equal(lb_manifest_add(&m, &extra), -E2BIG);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_manifest_format(&m, &text), 0);
        d = (struct doc) { text, strlen(text) };
        assert_int_equal(lbt_with_memory_limit(parse_doc, &d), 0);

        /* One more is not a manifest boot wrote. */
        char *end = strrchr(text, ']');
        assert_non_null(end);
        _cleanup_buf_ struct lb_buf more = { 0 };
        assert_int_equal(lb_buf_append(&more, text, (size_t) (end - text)), 0);
        assert_int_equal(lb_buf_printf(&more, ", {\"volume_id\": \"vol-0ffffffffffffffff\", \"device\": \"/dev/xvdz\", "
                                              "\"mount_path\": \"/r/x\", \"recovered_at\": \"2026-11-26T16:12:55Z\"}]}"), 0);
        d = (struct doc) { more.data, more.len };
        assert_int_equal(parse_doc(&d), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_parse_lenient_parts),
                cmocka_unit_test(test_parse_rejects_bad_documents),
                cmocka_unit_test(test_add_find_remove),
                cmocka_unit_test(test_parse_allocates_as_entries_validate),
                cmocka_unit_test_setup_teardown(test_load_save, lbt_tmpdir_setup, lbt_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_lock_exclusive, lbt_tmpdir_setup, lbt_tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_lock_held_by_child, lbt_tmpdir_setup, lbt_tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
