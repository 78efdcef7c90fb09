/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/util.h"

static inline void form_donep(struct lb_form *f) {
        lb_form_done(f);
}
#define _cleanup_form_ _cleanup_(form_donep)

static void test_init_action(void **state) {
        _cleanup_form_ struct lb_form f = {};
        assert_int_equal(lb_form_init_action(&f, "DescribeVolumes", "2016-11-15"), 0);
        assert_string_equal(f.buf.data, "Action=DescribeVolumes&Version=2016-11-15");
        assert_int_equal(f.buf.len, strlen(f.buf.data));

        /* Re-initialising starts a fresh form (next page, next call). */
        assert_int_equal(lb_form_add(&f, "VolumeId.1", "vol-1"), 0);
        assert_int_equal(lb_form_init_action(&f, "DeleteVolume", "2016-11-15"), 0);
        assert_string_equal(f.buf.data, "Action=DeleteVolume&Version=2016-11-15");

        assert_int_equal(lb_form_init_action(&f, "", "2016-11-15"), -EINVAL);
        assert_int_equal(lb_form_init_action(&f, NULL, "2016-11-15"), -EINVAL);
}

static void test_escaping(void **state) {
        static const struct {
                const char *value;
                const char *encoded;
        } cases[] = {
                { "plain", "plain" },
                { "a b", "a%20b" },                             /* never '+' */
                { "/dev/sdf", "%2Fdev%2Fsdf" },
                { "tag:lifeboat:group", "tag%3Alifeboat%3Agroup" },
                { "lifeboat-*", "lifeboat-%2A" },
                { "a=b&c=d", "a%3Db%26c%3Dd" },
                { "1+1", "1%2B1" },
                { "50%", "50%25" },
                { "~-._", "~-._" },                             /* RFC 3986 unreserved stay */
                { "AZaz09", "AZaz09" },
                { "q?#[]@!$'()", "q%3F%23%5B%5D%40%21%24%27%28%29" },
                { "x\ny\t", "x%0Ay%09" },
                { "caf\xc3\xa9 \xe2\x82\xac", "caf%C3%A9%20%E2%82%AC" },  /* UTF-8 bytes, upper-case hex */
                { "\xe6\x97\xa5\xe6\x9c\xac", "%E6%97%A5%E6%9C%AC" },
                { "", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_form_ struct lb_form f = {};
                assert_int_equal(lb_form_add(&f, "K", cases[i].value), 0);
                char want[256];
                assert_int_equal(lb_snprintf(want, sizeof want, "K=%s", cases[i].encoded), 0);
                assert_string_equal(f.buf.data, want);
        }
}

static void test_keys_are_escaped_too(void **state) {
        _cleanup_form_ struct lb_form f = {};
        assert_int_equal(lb_form_add(&f, "Tag.1.Key", "x"), 0);
        assert_int_equal(lb_form_add(&f, "we ird=&key", "v"), 0);
        assert_string_equal(f.buf.data, "Tag.1.Key=x&we%20ird%3D%26key=v");
}

static void test_add_errors_leave_form_intact(void **state) {
        _cleanup_form_ struct lb_form f = {};
        assert_int_equal(lb_form_init_action(&f, "CreateTags", "2016-11-15"), 0);
        assert_int_equal(lb_form_add(&f, "", "v"), -EINVAL);
        assert_int_equal(lb_form_add(&f, NULL, "v"), -EINVAL);
        assert_int_equal(lb_form_add(&f, "k", NULL), -EINVAL);
        assert_string_equal(f.buf.data, "Action=CreateTags&Version=2016-11-15");

        char longfmt[300];
        memset(longfmt, 'k', sizeof longfmt - 1);
        longfmt[sizeof longfmt - 1] = '\0';
        assert_int_equal(lb_form_addf_key(&f, "v", "%s.%d", longfmt, 1), -ENAMETOOLONG);
        assert_string_equal(f.buf.data, "Action=CreateTags&Version=2016-11-15");

        /* A capped buffer refuses growth and keeps what it had. */
        _cleanup_form_ struct lb_form capped = { .buf.limit = 40 };
        assert_int_equal(lb_form_init_action(&capped, "CreateTags", "2016-11-15"), 0);
        assert_int_equal(lb_form_add(&capped, "ResourceId.1", "vol-0123456789abcdef0"), -EFBIG);
        assert_string_equal(capped.buf.data, "Action=CreateTags&Version=2016-11-15");
        assert_int_equal(capped.buf.len, strlen("Action=CreateTags&Version=2016-11-15"));
}

static void test_addf_key_and_tags(void **state) {
        _cleanup_form_ struct lb_form f = {};
        assert_int_equal(lb_form_init_action(&f, "CreateTags", "2016-11-15"), 0);
        assert_int_equal(lb_form_addf_key(&f, "vol-0123456789abcdef0", "ResourceId.%zu", (size_t) 1), 0);
        assert_int_equal(lb_form_addf_key(&f, "lifeboat:state", "Tag.%d.Key", 1), 0);
        assert_int_equal(lb_form_addf_key(&f, "", "Tag.%d.Value", 1), 0);  /* empty values are allowed */
        assert_int_equal(lb_form_addf_key(&f, "lifeboat:owner", "Tag.%d.Key", 2), 0);
        assert_int_equal(lb_form_addf_key(&f, "Équipe données ✓", "Tag.%d.Value", 2), 0);
        assert_string_equal(f.buf.data,
                            "Action=CreateTags&Version=2016-11-15&ResourceId.1=vol-0123456789abcdef0"
                            "&Tag.1.Key=lifeboat%3Astate&Tag.1.Value="
                            "&Tag.2.Key=lifeboat%3Aowner&Tag.2.Value=%C3%89quipe%20donn%C3%A9es%20%E2%9C%93");
}

static void test_filters(void **state) {
        static const char *const az[] = { "us-east-1a" };
        static const char *const status[] = { "available", "in-use", "creating" };
        static const char *const group[] = { "prod cluster/α*" };
        const struct lb_filter filters[] = {
                { .name = "availability-zone", .values = az, .n_values = 1 },
                { .name = "status", .values = status, .n_values = 3 },
                { .name = "tag:lifeboat:group", .values = group, .n_values = 1 },
        };
        _cleanup_form_ struct lb_form f = {};
        assert_int_equal(lb_form_init_action(&f, "DescribeVolumes", "2016-11-15"), 0);
        assert_int_equal(lb_form_add(&f, "MaxResults", "500"), 0);
        assert_int_equal(lb_form_add_filters(&f, filters, ELEMENTSOF(filters)), 0);
        assert_string_equal(f.buf.data,
                            "Action=DescribeVolumes&Version=2016-11-15&MaxResults=500"
                            "&Filter.1.Name=availability-zone&Filter.1.Value.1=us-east-1a"
                            "&Filter.2.Name=status&Filter.2.Value.1=available&Filter.2.Value.2=in-use"
                            "&Filter.2.Value.3=creating"
                            "&Filter.3.Name=tag%3Alifeboat%3Agroup&Filter.3.Value.1=prod%20cluster%2F%CE%B1%2A");

        /* No filters: nothing added. */
        size_t len = f.buf.len;
        assert_int_equal(lb_form_add_filters(&f, NULL, 0), 0);
        assert_int_equal(f.buf.len, len);
}

static void test_bad_filters_add_nothing(void **state) {
        static const char *const v[] = { "x" };
        const struct lb_filter filters[] = {
                { .name = "status", .values = v, .n_values = 1 },
                { .name = "volume-id", .values = NULL, .n_values = 0 },
        };
        _cleanup_form_ struct lb_form f = {};
        assert_int_equal(lb_form_init_action(&f, "DescribeVolumes", "2016-11-15"), 0);
        assert_int_equal(lb_form_add_filters(&f, filters, ELEMENTSOF(filters)), -EINVAL);
        assert_string_equal(f.buf.data, "Action=DescribeVolumes&Version=2016-11-15");

        const struct lb_filter unnamed[] = { { .name = "", .values = v, .n_values = 1 } };
        assert_int_equal(lb_form_add_filters(&f, unnamed, 1), -EINVAL);
        assert_string_equal(f.buf.data, "Action=DescribeVolumes&Version=2016-11-15");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_action),
                cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_keys_are_escaped_too),
                cmocka_unit_test(test_add_errors_leave_form_intact),
                cmocka_unit_test(test_addf_key_and_tags),
                cmocka_unit_test(test_filters),
                cmocka_unit_test(test_bad_filters_add_nothing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
