/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

/* The document as IMDS serves it (AWS documentation sample, pretty-printed with nulls). */
static const char identity_sample[] =
        "{\n"
        "  \"accountId\" : \"123456789012\",\n"
        "  \"architecture\" : \"x86_64\",\n"
        "  \"availabilityZone\" : \"us-east-1a\",\n"
        "  \"billingProducts\" : null,\n"
        "  \"devpayProductCodes\" : null,\n"
        "  \"marketplaceProductCodes\" : null,\n"
        "  \"imageId\" : \"ami-0abcdef1234567890\",\n"
        "  \"instanceId\" : \"i-1234567890abcdef0\",\n"
        "  \"instanceType\" : \"t2.micro\",\n"
        "  \"kernelId\" : null,\n"
        "  \"pendingTime\" : \"2016-11-19T16:32:11Z\",\n"
        "  \"privateIp\" : \"172.31.34.227\",\n"
        "  \"ramdiskId\" : null,\n"
        "  \"region\" : \"us-east-1\",\n"
        "  \"version\" : \"2017-09-30\"\n"
        "}";

static void test_identity_sample(void **state) {
        struct lb_identity id;
        memset(&id, 'x', sizeof id);
        assert_int_equal(lb_identity_parse_document(identity_sample, &id), 0);
        assert_string_equal(id.instance_id, "i-1234567890abcdef0");
        assert_string_equal(id.region, "us-east-1");
        assert_string_equal(id.availability_zone, "us-east-1a");
        assert_string_equal(id.instance_type, "t2.micro");
        assert_string_equal(id.account_id, "123456789012");
        /* Not in the document: filled by lb_imds_identity(want_extra). */
        assert_string_equal(id.availability_zone_id, "");
        assert_string_equal(id.lifecycle, "");
}

static void test_identity_local_zone_and_types(void **state) {
        struct lb_identity id;
        const char *doc = "{\"accountId\":\"000000000000\",\"availabilityZone\":\"us-west-2-lax-1a\","
                          "\"instanceId\":\"i-0abcdef01\",\"instanceType\":\"u-6tb1.metal\",\"region\":\"us-west-2\"}";
        assert_int_equal(lb_identity_parse_document(doc, &id), 0);
        assert_string_equal(id.availability_zone, "us-west-2-lax-1a");
        assert_string_equal(id.instance_type, "u-6tb1.metal");
}

/* Replaces the value of one member in the sample ("null" etc. inserted raw). */
static void sample_with(const char *key, const char *raw_value, char *buf, size_t size) {
        char needle[64];
        assert_int_equal(lb_snprintf(needle, sizeof needle, "\"%s\" : ", key), 0);
        const char *p = strstr(identity_sample, needle);
        assert_non_null(p);
        p += strlen(needle);
        const char *end = strpbrk(p, ",\n");
        assert_non_null(end);
        assert_int_equal(lb_snprintf(buf, size, "%.*s%s%s", (int) (p - identity_sample), identity_sample,
                                     raw_value, end), 0);
}

/* Drops the member line of key from the sample. */
static void sample_without(const char *key, char *buf, size_t size) {
        lbt_drop_member_line(identity_sample, key, buf, size);
}

static void test_identity_missing_fields(void **state) {
        static const char *const required[] = { "accountId", "availabilityZone", "instanceId", "instanceType",
                                                "region" };
        char doc[2048];
        struct lb_identity id = { .instance_id = "keep" };
        for (size_t i = 0; i < ELEMENTSOF(required); i++) {
                sample_without(required[i], doc, sizeof doc);
                assert_null(strstr(doc, required[i]));
                assert_int_equal(lb_identity_parse_document(doc, &id), -EBADMSG);
        }
        /* A minimal document without region. */
        const char *no_region = "{\"accountId\":\"123456789012\",\"availabilityZone\":\"us-east-1a\","
                                "\"instanceId\":\"i-1234567890abcdef0\",\"instanceType\":\"t2.micro\"}";
        assert_int_equal(lb_identity_parse_document(no_region, &id), -EBADMSG);
        assert_string_equal(id.instance_id, "keep"); /* untouched on failure */
}

static void test_identity_wrong_types_and_shapes(void **state) {
        static const struct {
                const char *key, *raw;
        } cases[] = {
                { "instanceId", "1234" },
                { "instanceId", "null" },
                { "instanceId", "[\"i-1234567890abcdef0\"]" },
                { "instanceId", "\"i-xyz\"" },
                { "instanceId", "\"i-1234567890ABCDEF0\"" },
                { "instanceId", "\"i-1234567890abcdef0/../x\"" },
                { "instanceId", "\"\"" },
                { "region", "\"US-EAST-1\"" },
                { "region", "\"us east 1\"" },
                { "region", "\"us-east-1/../\"" },
                { "region", "\"us-east-1-really-really-long-region-name\"" },
                { "region", "\"eu-west-1\"" },          /* the AZ us-east-1a is not in it */
                { "region", "\"us-\"" },                /* no region name (basic/names.c); found by fuzz/imds */
                { "availabilityZone", "\"us-east-1A\"" },
                { "availabilityZone", "\"eu-west-1a\"" },
                { "availabilityZone", "42" },
                { "instanceType", "\"t2 micro\"" },
                { "instanceType", "\"T2.MICRO\"" },
                { "instanceType", "true" },
                { "accountId", "123456789012" },
                { "accountId", "\"12345678901x\"" },
                { "accountId", "\"1234567890123456\"" },
        };
        char doc[2048];
        struct lb_identity id;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                sample_with(cases[i].key, cases[i].raw, doc, sizeof doc);
                if (lb_identity_parse_document(doc, &id) != -EBADMSG)
                        fail_msg("%s=%s accepted", cases[i].key, cases[i].raw);
        }
}

static void test_identity_not_json(void **state) {
        struct lb_identity id;
        assert_int_equal(lb_identity_parse_document("", &id), -EBADMSG);
        assert_int_equal(lb_identity_parse_document("<html>404</html>", &id), -EBADMSG);
        assert_int_equal(lb_identity_parse_document("[1,2]", &id), -EBADMSG);
        assert_int_equal(lb_identity_parse_document("\"i-1234567890abcdef0\"", &id), -EBADMSG);
        /* Truncated answer. */
        char cut[100];
        assert_int_equal(lb_snprintf(cut, sizeof cut, "%.60s", identity_sample), 0);
        assert_int_equal(lb_identity_parse_document(cut, &id), -EBADMSG);
        /* Duplicate keys are ambiguous. */
        assert_int_equal(lb_identity_parse_document(
                                 "{\"accountId\":\"123456789012\",\"availabilityZone\":\"us-east-1a\","
                                 "\"instanceId\":\"i-1234567890abcdef0\",\"instanceId\":\"i-0000000000000000f\","
                                 "\"instanceType\":\"t2.micro\",\"region\":\"us-east-1\"}",
                                 &id),
                         -EBADMSG);
}

/* ---- spot interruption notices ---- */

static void test_spot_actions(void **state) {
        static const struct {
                const char *action;
                enum lb_spot_action want;
        } cases[] = {
                { "terminate", LB_SPOT_TERMINATE },
                { "stop", LB_SPOT_STOP },
                { "hibernate", LB_SPOT_HIBERNATE },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char json[128];
                assert_int_equal(lb_snprintf(json, sizeof json, "{\"action\": \"%s\", \"time\": \"2026-11-26T16:12:55Z\"}",
                                             cases[i].action), 0);
                struct lb_spot_notice n = {};
                assert_int_equal(lb_spot_notice_parse(json, &n), 0);
                assert_int_equal(n.action, cases[i].want);
                assert_int_equal(n.time, 1795709575);
                assert_string_equal(lb_spot_action_to_string(n.action), cases[i].action);
        }
        assert_string_equal(lb_spot_action_to_string(LB_SPOT_NONE), "none");

        /* Fractional seconds as some SDK fakes write them. */
        struct lb_spot_notice n = {};
        assert_int_equal(lb_spot_notice_parse("{\"action\":\"stop\",\"time\":\"2026-11-26T16:12:55.000Z\"}", &n), 0);
        assert_int_equal(n.time, 1795709575);
}

static void test_spot_bad(void **state) {
        static const char *const bad[] = {
                "{\"action\":\"reboot\",\"time\":\"2026-11-26T16:12:55Z\"}",
                "{\"action\":\"Terminate\",\"time\":\"2026-11-26T16:12:55Z\"}",
                "{\"action\":\"\",\"time\":\"2026-11-26T16:12:55Z\"}",
                "{\"action\":1,\"time\":\"2026-11-26T16:12:55Z\"}",
                "{\"time\":\"2026-11-26T16:12:55Z\"}",
                "{\"action\":\"terminate\"}",
                "{\"action\":\"terminate\",\"time\":\"soon\"}",
                "{\"action\":\"terminate\",\"time\":\"2026-11-26 16:12:55\"}",
                "{\"action\":\"terminate\",\"time\":\"2026-11-26T16:12:55+02:00\"}",
                "{\"action\":\"terminate\",\"time\":1795709575}",
                "[\"terminate\"]",
                "terminate",
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_spot_notice n = { .action = LB_SPOT_STOP, .time = 7 };
                if (lb_spot_notice_parse(bad[i], &n) != -EBADMSG)
                        fail_msg("accepted: %s", bad[i]);
                assert_int_equal(n.action, LB_SPOT_STOP);
                assert_int_equal(n.time, 7);
        }
}

static void test_rebalance(void **state) {
        time_t t = 0;
        assert_int_equal(lb_rebalance_parse("{\"noticeTime\": \"2026-11-26T16:12:55Z\"}", &t), 0);
        assert_int_equal(t, 1795709575);
        t = 5;
        assert_int_equal(lb_rebalance_parse("{\"noticeTime\": \"later\"}", &t), -EBADMSG);
        assert_int_equal(lb_rebalance_parse("{}", &t), -EBADMSG);
        assert_int_equal(lb_rebalance_parse("{\"noticeTime\": null}", &t), -EBADMSG);
        assert_int_equal(lb_rebalance_parse("nope", &t), -EBADMSG);
        assert_int_equal(t, 5);
}

static void test_lifecycle_state(void **state) {
        char buf[32];
        assert_int_equal(lb_lifecycle_state_parse("InService", buf, sizeof buf), 0);
        assert_string_equal(buf, "InService");
        assert_int_equal(lb_lifecycle_state_parse("  Terminated\n", buf, sizeof buf), 0);
        assert_string_equal(buf, "Terminated");
        assert_int_equal(lb_lifecycle_state_parse("Warmed:Pending:Wait", buf, sizeof buf), 0);
        assert_string_equal(buf, "Warmed:Pending:Wait");
        /* 31 characters is the most. */
        assert_int_equal(lb_lifecycle_state_parse("0123456789012345678901234567890", buf, sizeof buf), 0);
        assert_int_equal(lb_lifecycle_state_parse("01234567890123456789012345678901", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_lifecycle_state_parse("", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_lifecycle_state_parse(" \n", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_lifecycle_state_parse("In\033Service", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_lifecycle_state_parse("In\nService", buf, sizeof buf), -EBADMSG);
        char small[4];
        assert_int_equal(lb_lifecycle_state_parse("InService", small, sizeof small), -ENOBUFS);
}

/* meta-data/tags/instance/KEY: the value as it is, when it is text lifeboat can log and send. */
static void test_tag_value(void **state) {
        char buf[32];
        assert_int_equal(lb_imds_tag_value_parse("ads-spot", buf, sizeof buf), 0);
        assert_string_equal(buf, "ads-spot");
        /* Spaces, slashes and UTF-8 are a group name's right; nothing is trimmed. */
        assert_int_equal(lb_imds_tag_value_parse(" eks ng/1 \xc3\xa9 ", buf, sizeof buf), 0);
        assert_string_equal(buf, " eks ng/1 \xc3\xa9 ");
        assert_int_equal(lb_imds_tag_value_parse("", buf, sizeof buf), 0);
        assert_string_equal(buf, "");
        /* Control characters, broken UTF-8: refused, buf untouched. */
        strcpy(buf, "keep");
        assert_int_equal(lb_imds_tag_value_parse("a\nb", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_imds_tag_value_parse("a\x7f", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_imds_tag_value_parse("a\tb", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_imds_tag_value_parse("cut \xc3", buf, sizeof buf), -EBADMSG);
        assert_int_equal(lb_imds_tag_value_parse("\xed\xa0\x80", buf, sizeof buf), -EBADMSG); /* a surrogate */
        /* Too long for buf: refused, never cut (a cut group name names another group). */
        assert_int_equal(lb_imds_tag_value_parse("0123456789012345678901234567890", buf, sizeof buf), 0);
        strcpy(buf, "keep");
        assert_int_equal(lb_imds_tag_value_parse("01234567890123456789012345678901", buf, sizeof buf), -ENOBUFS);
        assert_string_equal(buf, "keep");
}

static void test_role_list(void **state) {
        char role[65];
        assert_int_equal(lb_role_list_parse("lifeboat-instance-role", role, sizeof role), 0);
        assert_string_equal(role, "lifeboat-instance-role");
        assert_int_equal(lb_role_list_parse("first+=,.@_-Role\nsecond\n", role, sizeof role), 0);
        assert_string_equal(role, "first+=,.@_-Role");
        assert_int_equal(lb_role_list_parse("", role, sizeof role), -ENOENT);
        assert_int_equal(lb_role_list_parse("\n", role, sizeof role), -ENOENT);
        assert_int_equal(lb_role_list_parse("../../../latest/api/token", role, sizeof role), -EBADMSG);
        assert_int_equal(lb_role_list_parse("role?x=1", role, sizeof role), -EBADMSG);
        assert_int_equal(lb_role_list_parse("role name", role, sizeof role), -EBADMSG);
        assert_int_equal(lb_role_list_parse(
                                 "r0123456789012345678901234567890123456789012345678901234567890123", role,
                                 sizeof role),
                         -EBADMSG);
}

/* The client refuses to exist when IMDS is switched off, without any request. */
static void test_imds_disabled(void **state) {
        struct lb_context ctx;
        assert_int_equal(lb_context_init(&ctx), 0);
        assert_int_equal(lb_settings_set(&ctx, "AWS_EC2_METADATA_DISABLED", "true", "test"), 0);
        struct lb_imds *imds = NULL;
        assert_int_equal(lb_imds_new(&ctx, &imds), -ENODEV);
        assert_null(imds);

        assert_int_equal(lb_settings_set(&ctx, "AWS_EC2_METADATA_DISABLED", "false", "test"), 0);
        assert_int_equal(lb_imds_new(&ctx, &imds), 0);
        assert_non_null(imds);
        assert_int_equal(lb_imds_request_count(imds), 0); /* lazy: nothing sent yet */
        lb_imds_free(imds);
        lb_context_done(&ctx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identity_sample),
                cmocka_unit_test(test_identity_local_zone_and_types),
                cmocka_unit_test(test_identity_missing_fields),
                cmocka_unit_test(test_identity_wrong_types_and_shapes),
                cmocka_unit_test(test_identity_not_json),
                cmocka_unit_test(test_spot_actions),
                cmocka_unit_test(test_spot_bad),
                cmocka_unit_test(test_rebalance),
                cmocka_unit_test(test_lifecycle_state),
                cmocka_unit_test(test_tag_value),
                cmocka_unit_test(test_role_list),
                cmocka_unit_test(test_imds_disabled),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
