/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="
#define EXPIRATION_TEXT "2026-11-26T16:12:55Z"
#define EXPIRATION ((time_t) 1795709575)

/* What iam/security-credentials/ROLE answers (AWS documentation layout). */
static const char role_sample[] =
        "{\n"
        "  \"Code\" : \"Success\",\n"
        "  \"LastUpdated\" : \"2026-11-26T10:02:11Z\",\n"
        "  \"Type\" : \"AWS-HMAC\",\n"
        "  \"AccessKeyId\" : \"ASIAIOSFODNN7EXAMPLE\",\n"
        "  \"SecretAccessKey\" : \"" SECRET "\",\n"
        "  \"Token\" : \"" TOKEN "\",\n"
        "  \"Expiration\" : \"" EXPIRATION_TEXT "\"\n"
        "}";

static void test_role_success(void **state) {
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_parse_role_json(role_sample, &c), 0);
        assert_string_equal(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_string_equal(c.secret_access_key, SECRET);
        assert_non_null(c.session_token);
        assert_string_equal(c.session_token, TOKEN);
        assert_int_equal(c.expiration, EXPIRATION);
        assert_int_equal(c.source, LB_CREDS_INSTANCE_ROLE);

        lb_credentials_done(&c);
        assert_null(c.session_token);
        assert_string_equal(c.access_key_id, "");
        assert_string_equal(c.secret_access_key, "");
        assert_int_equal(c.expiration, 0);
}

static void test_role_error_code(void **state) {
        struct lb_credentials c = { .access_key_id = "keep" };
        /* IMDS answers 200 with an error Code while the role cannot be assumed. */
        const char *json = "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot assume the role\","
                           "\"LastUpdated\":\"2026-11-26T10:02:11Z\"}";
        assert_int_equal(lb_credentials_parse_role_json(json, &c), -EACCES);
        /* Even when the keys are there. */
        char with_keys[1024];
        const char *p = strstr(role_sample, "Success");
        assert_non_null(p);
        assert_int_equal(lb_snprintf(with_keys, sizeof with_keys, "%.*sFailure%s", (int) (p - role_sample), role_sample,
                                     p + strlen("Success")), 0);
        assert_int_equal(lb_credentials_parse_role_json(with_keys, &c), -EACCES);
        assert_string_equal(c.access_key_id, "keep");
        assert_null(c.session_token);
}

/* Drops one member line from the sample (the last member needs the comma fixed). */
static void role_without(const char *key, char *buf, size_t size) {
        lbt_drop_member_line(role_sample, key, buf, size);
        if (streq(key, "Expiration")) {
                /* "...Token" : "x",\n} -> drop the trailing comma */
                char *comma = strrchr(buf, ',');
                assert_non_null(comma);
                memmove(comma, comma + 1, strlen(comma + 1) + 1);
        }
}

static void test_role_missing_fields(void **state) {
        static const char *const required[] = { "Code", "AccessKeyId", "SecretAccessKey", "Token", "Expiration" };
        char json[1024];
        for (size_t i = 0; i < ELEMENTSOF(required); i++) {
                struct lb_credentials c = { .access_key_id = "keep" };
                role_without(required[i], json, sizeof json);
                if (lb_credentials_parse_role_json(json, &c) != -EBADMSG)
                        fail_msg("accepted without %s: %s", required[i], json);
                assert_string_equal(c.access_key_id, "keep");
                assert_null(c.session_token);
        }
        /* Optional members may go. */
        role_without("LastUpdated", json, sizeof json);
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_parse_role_json(json, &c), 0);
        lb_credentials_done(&c);
}

static void test_role_bad_values(void **state) {
        static const char *const bad[] = {
                "{\"Code\":\"Success\",\"AccessKeyId\":1,\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                "{\"Code\":\"Success\",\"AccessKeyId\":\"\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                "{\"Code\":\"Success\",\"AccessKeyId\":\"AK IA\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\\r\\nX-Injected: 1\","
                "\"Token\":\"t\",\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\",\"Token\":null,"
                "\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"tomorrow\"}",
                "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":1795709575}",
                "{\"Code\":true,\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                "\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                "[]",
                "",
                "Success",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_credentials c = {};
                if (lb_credentials_parse_role_json(bad[i], &c) != -EBADMSG)
                        fail_msg("accepted: %s", bad[i]);
                assert_null(c.session_token);
        }

        /* A key id that does not fit the struct is refused, not cut. */
        char json[1024], longkey[200];
        memset(longkey, 'A', 128);
        longkey[128] = '\0';
        assert_int_equal(lb_snprintf(json, sizeof json,
                                     "{\"Code\":\"Success\",\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"s\","
                                     "\"Token\":\"t\",\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                                     longkey), 0);
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_parse_role_json(json, &c), -EBADMSG);
        longkey[127] = '\0';
        assert_int_equal(lb_snprintf(json, sizeof json,
                                     "{\"Code\":\"Success\",\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"s\","
                                     "\"Token\":\"t\",\"Expiration\":\"" EXPIRATION_TEXT "\"}",
                                     longkey), 0);
        assert_int_equal(lb_credentials_parse_role_json(json, &c), 0);
        assert_int_equal(strlen(c.access_key_id), 127);
        lb_credentials_done(&c);
}

static void test_refresh_window(void **state) {
        struct lb_credentials c = { .expiration = 0 };
        assert_false(lb_credentials_need_refresh(&c, 0));
        assert_false(lb_credentials_need_refresh(&c, EXPIRATION * 2)); /* never expires */

        c.expiration = EXPIRATION;
        assert_false(lb_credentials_need_refresh(&c, EXPIRATION - 3600));
        assert_false(lb_credentials_need_refresh(&c, EXPIRATION - 601));
        assert_true(lb_credentials_need_refresh(&c, EXPIRATION - 600));
        assert_true(lb_credentials_need_refresh(&c, EXPIRATION - 1));
        assert_true(lb_credentials_need_refresh(&c, EXPIRATION));
        assert_true(lb_credentials_need_refresh(&c, EXPIRATION + 86400));
}

/* ---- loading from the environment ---- */

struct fixture {
        struct lb_context ctx;
        struct lbt_log log;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(lb_context_init(&f->ctx), 0);
        lbt_log_install(&f->ctx, &f->log);
        /* Only the environment: no profile files, no IMDS (the chain's other sources). */
        char *isolate[] = { (char *) "AWS_EC2_METADATA_DISABLED=true",
                            (char *) "AWS_CONFIG_FILE=/nonexistent/lifeboat-test/config",
                            (char *) "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/lifeboat-test/credentials", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, isolate), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        lb_context_done(&f->ctx);
        lbt_log_reset(&f->log);
        free(f);
        return 0;
}

static const char *logged(struct fixture *f) {
        return lbt_log_text(&f->log);
}

static void apply_env(struct fixture *f, char **envp) {
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp), 0);
}

static void test_env_pair(void **state) {
        struct fixture *f = *state;
        char *envp[] = { (char *) "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", (char *) "AWS_SECRET_ACCESS_KEY=" SECRET,
                         NULL };
        apply_env(f, envp);
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_load(&f->ctx, NULL, &c), 0);
        assert_string_equal(c.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_string_equal(c.secret_access_key, SECRET);
        assert_null(c.session_token);
        assert_int_equal(c.expiration, 0);
        assert_int_equal(c.source, LB_CREDS_ENVIRONMENT);
        assert_false(lb_credentials_need_refresh(&c, EXPIRATION));
        assert_null(strstr(logged(f), "wJalrXUtnFEMI"));
        lb_credentials_done(&c);
}

static void test_env_with_token(void **state) {
        struct fixture *f = *state;
        char *envp[] = { (char *) "AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE", (char *) "AWS_SECRET_ACCESS_KEY=" SECRET,
                         (char *) "AWS_SESSION_TOKEN=" TOKEN, NULL };
        apply_env(f, envp);
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_load(&f->ctx, NULL, &c), 0);
        assert_non_null(c.session_token);
        assert_string_equal(c.session_token, TOKEN);
        assert_int_equal(c.source, LB_CREDS_ENVIRONMENT);
        assert_null(strstr(logged(f), "wJalrXUtnFEMI"));
        assert_null(strstr(logged(f), "IQoJb3JpZ2lu"));
        lb_credentials_done(&c);
}

static void test_env_only_key_id(void **state) {
        struct fixture *f = *state;
        char *envp[] = { (char *) "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", NULL };
        apply_env(f, envp);
        struct lb_credentials c = { .access_key_id = "keep" };
        assert_int_equal(lb_credentials_load(&f->ctx, NULL, &c), -EINVAL);
        assert_non_null(strstr(logged(f), "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"));
        assert_int_equal(f->log.n_err, 1);
        assert_string_equal(c.access_key_id, "keep");
}

static void test_env_only_secret(void **state) {
        struct fixture *f = *state;
        char *envp[] = { (char *) "AWS_SECRET_ACCESS_KEY=" SECRET, (char *) "AWS_SESSION_TOKEN=" TOKEN, NULL };
        apply_env(f, envp);
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_load(&f->ctx, NULL, &c), -EINVAL);
        assert_non_null(strstr(logged(f), "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"));
        assert_null(strstr(logged(f), "wJalrXUtnFEMI"));
        assert_null(strstr(logged(f), "IQoJb3JpZ2lu"));
        assert_null(c.session_token);
}

static void test_no_credentials_anywhere(void **state) {
        struct fixture *f = *state;
        struct lb_credentials c = {};
        assert_int_equal(lb_credentials_load(&f->ctx, NULL, &c), -ENOKEY);
        assert_non_null(strstr(logged(f), "no AWS credentials: environment: AWS_ACCESS_KEY_ID not set; "));
        assert_non_null(strstr(logged(f), "; instance role: IMDS disabled (AWS_EC2_METADATA_DISABLED)"));

        /* A lone session token is not credentials. */
        char *envp[] = { (char *) "AWS_SESSION_TOKEN=" TOKEN, NULL };
        apply_env(f, envp);
        assert_int_equal(lb_credentials_load(&f->ctx, NULL, &c), -ENOKEY);
        assert_int_equal(f->log.n_warn, 1);
        assert_non_null(strstr(logged(f), "AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID"));
        assert_null(strstr(logged(f), "IQoJb3JpZ2lu"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_role_success),
                cmocka_unit_test(test_role_error_code),
                cmocka_unit_test(test_role_missing_fields),
                cmocka_unit_test(test_role_bad_values),
                cmocka_unit_test(test_refresh_window),
                cmocka_unit_test_setup_teardown(test_env_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_with_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_only_key_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_only_secret, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_credentials_anywhere, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
