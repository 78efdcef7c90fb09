/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds-container.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/sts.h"
#include "lifeboat/basic/names.h"
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

/* ---- the parsers of the other sources ---- */

static const char sts_sample[] =
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <AssumeRoleWithWebIdentityResult>\n"
        "    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>\n"
        "    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
        "    <AssumedRoleUser>\n"
        "      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>\n"
        "      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
        "    </AssumedRoleUser>\n"
        "    <Credentials>\n"
        "      <SessionToken>" TOKEN "</SessionToken>\n"
        "      <SecretAccessKey>" SECRET "</SecretAccessKey>\n"
        "      <Expiration>" EXPIRATION_TEXT "</Expiration>\n"
        "      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
        "    </Credentials>\n"
        "    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
        "    <Provider>www.amazon.com</Provider>\n"
        "  </AssumeRoleWithWebIdentityResult>\n"
        "  <ResponseMetadata>\n"
        "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</AssumeRoleWithWebIdentityResponse>\n";

static void test_sts_parse(void **state) {
        struct lb_credentials c = {};
        char arn[128];
        assert_int_equal(lb_sts_parse_assume_role_with_web_identity(sts_sample, strlen(sts_sample), &c, arn, sizeof arn), 0);
        assert_string_equal(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
        assert_string_equal(c.secret_access_key, SECRET);
        assert_string_equal(c.session_token, TOKEN);
        assert_int_equal(c.expiration, EXPIRATION);
        assert_string_equal(arn, "arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1");
        lb_credentials_done(&c);

        static const char *const bad[] = {
                "",
                "<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>",
                "<AssumeRoleWithWebIdentityResponse/>",
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult/></AssumeRoleWithWebIdentityResponse>",
                "<AssumeRoleResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>A</AccessKeyId>"
                "<SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>" EXPIRATION_TEXT
                "</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleResponse>",
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                "<AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>"
                "<Expiration>tomorrow</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>",
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                "<AccessKeyId>A\nB</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>"
                "<Expiration>" EXPIRATION_TEXT "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>",
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                "<AccessKeyId>A</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
                "<Expiration>" EXPIRATION_TEXT "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>",
                "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct lb_credentials k = { .access_key_id = "keep" };
                if (lb_sts_parse_assume_role_with_web_identity(bad[i], strlen(bad[i]), &k, NULL, 0) != -EBADMSG)
                        fail_msg("accepted: %s", bad[i]);
                assert_string_equal(k.access_key_id, "keep");
        }

        struct lb_form f = {};
        assert_int_equal(lb_sts_form_assume_role_with_web_identity(&f, "arn:aws:iam::123456789012:role/r", "s-1", "a.b+c/="), 0);
        assert_string_equal(f.buf.data, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
                                         "123456789012%3Arole%2Fr&RoleSessionName=s-1&WebIdentityToken=a.b%2Bc%2F%3D");
        assert_int_equal(lb_sts_form_assume_role_with_web_identity(&f, "arn", "s", ""), -EINVAL);
        lb_form_done(&f);
}

static void test_container_parse(void **state) {
        /* The ECS agent's answer. */
        const char *ecs = "{\"RoleArn\":\"arn:aws:iam::123456789012:role/task\",\"AccessKeyId\":\"ASIAIOSFODNN7EXAMPLE\","
                          "\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" TOKEN "\",\"Expiration\":\"" EXPIRATION_TEXT "\"}";
        struct lb_credentials c = {};
        char role[64], error[64];
        assert_int_equal(lb_container_credentials_parse(ecs, strlen(ecs), &c, role, sizeof role, error, sizeof error), 0);
        assert_string_equal(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_string_equal(c.session_token, TOKEN);
        assert_int_equal(c.expiration, EXPIRATION);
        assert_string_equal(role, "arn:aws:iam::123456789012:role/task");
        lb_credentials_done(&c);
        /* The Pod Identity Agent's: AccountId, no RoleArn, fractions of a second. */
        const char *eks = "{\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":\"s\",\"Token\":\"t\",\"AccountId\":\"123456789012\","
                          "\"Expiration\":\"2026-11-26T16:12:55.123Z\"}";
        assert_int_equal(lb_container_credentials_parse(eks, strlen(eks), &c, role, sizeof role, error, sizeof error), 0);
        assert_string_equal(role, "");
        assert_int_equal(c.expiration, EXPIRATION);
        lb_credentials_done(&c);
        /* Duplicate keys, and a body cut short, are not an answer. */
        const char *dup = "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                          "\"Expiration\":\"" EXPIRATION_TEXT "\"}";
        assert_int_equal(lb_container_credentials_parse(dup, strlen(dup), &c, NULL, 0, error, sizeof error), -EBADMSG);
        assert_int_equal(lb_container_credentials_parse(ecs, strlen(ecs) / 2, &c, NULL, 0, error, sizeof error), -EBADMSG);
        assert_string_equal(error, "not a JSON object");
        assert_null(c.session_token);
}

static void test_names(void **state) {
        assert_true(lb_role_session_name_valid("lifeboat-1796536540"));
        assert_true(lb_role_session_name_valid("a+b=c,d.e@f_g-h"));
        assert_false(lb_role_session_name_valid("a"));
        assert_false(lb_role_session_name_valid("has space"));
        assert_false(lb_role_session_name_valid("team/reaper"));
        char long_name[66];
        memset(long_name, 'x', 65);
        long_name[65] = '\0';
        assert_false(lb_role_session_name_valid(long_name));
        long_name[64] = '\0';
        assert_true(lb_role_session_name_valid(long_name));
        assert_false(lb_container_url_allowed(NULL));
        assert_false(lb_container_url_allowed("https://"));
        assert_true(lb_container_url_allowed("HTTPS://example.com/creds"));
        assert_true(lb_container_url_allowed("http://user@127.0.0.1:80/x"));
        assert_false(lb_container_url_allowed("http://[::1/x"));

        static const struct { const char *url, *shown; } logs[] = {
                { "http://169.254.170.2/v2/credentials/0b5c-task", "http://169.254.170.2/v2/..." },
                { "/v2/credentials/0b5c-task", "/v2/..." },
                { "http://169.254.170.23/v1/credentials", "http://169.254.170.23/v1/..." },
                { "https://u:pw@creds.example:8443/get?tok=1", "https://creds.example:8443/get/..." },
                { "http://[fd00:ec2::23]/v1/", "http://[fd00:ec2::23]/v1" },
                { "http://127.0.0.1:51679", "http://127.0.0.1:51679" },
                { "", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(logs); i++) {
                char shown[64];
                lb_url_for_logs(logs[i].url, shown, sizeof shown);
                assert_string_equal(shown, logs[i].shown);
        }
        char tiny[8];
        lb_url_for_logs("http://169.254.170.2/v2/credentials/x", tiny, sizeof tiny);
        assert_string_equal(tiny, "http://");
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
                cmocka_unit_test(test_sts_parse),
                cmocka_unit_test(test_container_parse),
                cmocka_unit_test(test_names),
                cmocka_unit_test_setup_teardown(test_env_pair, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_with_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_only_key_id, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_only_secret, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_credentials_anywhere, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
