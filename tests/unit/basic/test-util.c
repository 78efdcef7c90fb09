/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"

static void test_buf_limit(void **state) {
        _cleanup_buf_ struct lb_buf b = { .limit = 8 };
        assert_int_equal(lb_buf_append_str(&b, "1234"), 0);
        assert_int_equal(lb_buf_printf(&b, "%d", 5678), 0);
        assert_string_equal(b.data, "12345678");
        assert_int_equal(lb_buf_append_str(&b, "9"), -EFBIG);
        assert_string_equal(b.data, "12345678"); /* untouched on failure */
        _cleanup_free_ char *s = lb_buf_steal(&b);
        assert_string_equal(s, "12345678");
        assert_null(b.data);
}

static void test_bounded_strings(void **state) {
        char small[5];
        assert_int_equal(lb_strscpy(small, sizeof small, "abcd"), 0);
        assert_string_equal(small, "abcd");
        assert_int_equal(lb_strscpy(small, sizeof small, "abcde"), -ENAMETOOLONG);
        assert_string_equal(small, "");
        assert_int_equal(lb_snprintf(small, sizeof small, "%s", "toolong"), -ENAMETOOLONG);
        assert_int_equal(lb_snprintf(small, sizeof small, "%d", 42), 0);
        assert_string_equal(small, "42");
}

/* A cut reason or message never ends inside a UTF-8 character: JSON encoders refuse the rest. */
static void test_cuts_keep_utf8_valid(void **state) {
        char small[6], reason[7];
        /* "é€" is 5 bytes; "xé€" needs 7: 6 bytes hold "xé" and not two thirds of the euro sign. */
        assert_int_equal(lb_snprintf(small, sizeof small, "x%s", "\xc3\xa9\xe2\x82\xac"), -ENAMETOOLONG);
        assert_string_equal(small, "x\xc3\xa9");
        lb_set_reason(reason, sizeof reason, "%s: %s", "ab", "\xe2\x82\xac\xe2\x82\xac");
        assert_string_equal(reason, "ab: ");
        lb_set_reason(reason, sizeof reason, "%s", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
        assert_string_equal(reason, "\xc3\xa9\xc3\xa9\xc3\xa9");       /* 6 of 8 bytes */
        lb_set_reason(NULL, 0, "%s", "nothing happens");
}

static void test_strip(void **state) {
        char s[] = "  Amazon Elastic Block Store    \n";
        assert_string_equal(lb_strstrip(s), "Amazon Elastic Block Store");
        char e[] = "   ";
        assert_string_equal(lb_strstrip(e), "");
}

static void test_parse_uint(void **state) {
        uint64_t v = 7;
        assert_int_equal(lb_parse_uint("42", 0, 100, &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(lb_parse_uint("101", 0, 100, &v), -ERANGE);
        assert_int_equal(lb_parse_uint("-1", 0, 100, &v), -EINVAL);
        assert_int_equal(lb_parse_uint("4x", 0, 100, &v), -EINVAL);
        assert_int_equal(lb_parse_uint("", 0, 100, &v), -EINVAL);
        assert_int_equal(lb_parse_uint("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
        assert_int_equal(v, 42);
}

static void test_iso8601(void **state) {
        time_t t = 0;
        assert_int_equal(lb_parse_iso8601("2026-11-26T16:12:55Z", &t), 0);
        assert_int_equal(t, 1795709575);
        assert_int_equal(lb_parse_iso8601("2026-11-26T16:12:55.000Z", &t), 0);
        assert_int_equal(t, 1795709575);
        assert_int_equal(lb_parse_iso8601("2026-11-26T16:12:55+02:00", &t), -EINVAL);
        assert_int_equal(lb_parse_iso8601("yesterday", &t), -EINVAL);
        char buf[32];
        assert_int_equal(lb_format_iso8601(1795709575, buf, sizeof buf), 0);
        assert_string_equal(buf, "2026-11-26T16:12:55Z");
}

static void test_ids(void **state) {
        assert_true(lb_volume_id_valid("vol-0123456789abcdef0"));
        assert_true(lb_volume_id_valid("vol-01234567"));
        assert_false(lb_volume_id_valid("vol-0123456789ABCDEF0"));
        assert_false(lb_volume_id_valid("vol-0123"));
        assert_false(lb_volume_id_valid("vol-0123456789abcdef0/../x"));
        assert_false(lb_volume_id_valid("snap-0123456789abcdef0"));
        assert_true(lb_instance_id_valid("i-0123456789abcdef0"));
        assert_false(lb_instance_id_valid("i-xyz"));
        char serial[32];
        assert_int_equal(lb_volume_id_to_serial("vol-0123456789abcdef0", serial, sizeof serial), 0);
        assert_string_equal(serial, "vol0123456789abcdef0");
        assert_int_equal(lb_volume_id_to_serial("nope", serial, sizeof serial), -EINVAL);
}

/* Auto Scaling's names: what lifeboat sends in forms and keeps in watch.json. */
static void test_asg_names(void **state) {
        char name[LB_ASG_NAME_MAX + 2];
        assert_true(lb_asg_name_valid("ads-spot"));
        assert_true(lb_asg_name_valid("eks ng/1 (prod) \xc3\xa9t\xc3\xa9")); /* spaces, slashes, UTF-8 */
        assert_false(lb_asg_name_valid(""));
        assert_false(lb_asg_name_valid(NULL));
        assert_false(lb_asg_name_valid("a\nb"));
        assert_false(lb_asg_name_valid("a\x7f"));
        assert_false(lb_asg_name_valid("bad \xc3"));         /* cut UTF-8 */
        memset(name, 'g', LB_ASG_NAME_MAX);
        name[LB_ASG_NAME_MAX] = '\0';
        assert_true(lb_asg_name_valid(name));
        name[LB_ASG_NAME_MAX] = 'g';
        name[LB_ASG_NAME_MAX + 1] = '\0';
        assert_false(lb_asg_name_valid(name));

        char hook[LB_LIFECYCLE_HOOK_NAME_MAX + 2];
        assert_true(lb_lifecycle_hook_name_valid("lifeboat-drain"));
        assert_true(lb_lifecycle_hook_name_valid("team/ECS_drain-2"));
        assert_false(lb_lifecycle_hook_name_valid(""));
        assert_false(lb_lifecycle_hook_name_valid("lifeboat drain"));
        assert_false(lb_lifecycle_hook_name_valid("hook:1"));
        assert_false(lb_lifecycle_hook_name_valid("h\xc3\xa9"));
        memset(hook, 'h', LB_LIFECYCLE_HOOK_NAME_MAX);
        hook[LB_LIFECYCLE_HOOK_NAME_MAX] = '\0';
        assert_true(lb_lifecycle_hook_name_valid(hook));
        hook[LB_LIFECYCLE_HOOK_NAME_MAX] = 'h';
        hook[LB_LIFECYCLE_HOOK_NAME_MAX + 1] = '\0';
        assert_false(lb_lifecycle_hook_name_valid(hook));
}

static void test_files(void **state) {
        char dir[] = "/tmp/lifeboat-test-util-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char path[256], sub[256];
        assert_int_equal(lb_snprintf(sub, sizeof sub, "%s/a/b/c", dir), 0);
        assert_int_equal(lb_mkdir_p(sub, 0755), 0);
        assert_int_equal(lb_mkdir_p(sub, 0755), 0);
        assert_int_equal(lb_snprintf(path, sizeof path, "%s/file", sub), 0);
        assert_int_equal(lb_write_file_atomic(path, "hello\n", 6, 0640), 0);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(lb_read_file(path, 100, &data, &len), 0);
        assert_int_equal(len, 6);
        assert_string_equal(data, "hello\n");
        _cleanup_free_ char *nothing = NULL;
        assert_int_equal(lb_read_file(path, 3, &nothing, NULL), -EFBIG);
        assert_null(nothing);
        char attr[16];
        assert_int_equal(lb_read_attr(path, attr, sizeof attr), 0);
        assert_string_equal(attr, "hello");
        assert_int_equal(unlink(path), 0);
        char rm[256];
        assert_int_equal(lb_snprintf(rm, sizeof rm, "%s/a/b/c", dir), 0);
        assert_int_equal(rmdir(rm), 0);
        assert_int_equal(lb_snprintf(rm, sizeof rm, "%s/a/b", dir), 0);
        assert_int_equal(rmdir(rm), 0);
        assert_int_equal(lb_snprintf(rm, sizeof rm, "%s/a", dir), 0);
        assert_int_equal(rmdir(rm), 0);
        assert_int_equal(rmdir(dir), 0);
}

static void test_random(void **state) {
        for (int i = 0; i < 1000; i++) {
                double d = lb_random01();
                assert_true(d >= 0.0 && d < 1.0);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_buf_limit), cmocka_unit_test(test_bounded_strings),
                cmocka_unit_test(test_strip),     cmocka_unit_test(test_parse_uint),
                cmocka_unit_test(test_iso8601),   cmocka_unit_test(test_ids),
                cmocka_unit_test(test_files),     cmocka_unit_test(test_random),
                cmocka_unit_test(test_cuts_keep_utf8_valid),
                cmocka_unit_test(test_asg_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
