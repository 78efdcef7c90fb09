/* SPDX-License-Identifier: MIT */
/* What settings refuse or warn about for safety's sake: signed requests in clear text, secrets
 * in a file others may read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/settings.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

struct fixture {
        struct lb_context ctx;
        struct lbt_log log;
        char dir[PATH_MAX];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(lb_context_init(&f->ctx), 0);
        lbt_log_install(&f->ctx, &f->log);
        assert_int_equal(lbt_mkdtemp(f->dir, sizeof f->dir), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        lb_context_done(&f->ctx);
        lbt_log_reset(&f->log);
        assert_int_equal(lbt_rm_rf(f->dir), 0);
        free(f);
        return 0;
}

static void test_cleartext_rule(void **state) {
        static const char *const allowed[] = {
                "https://ec2.us-east-1.amazonaws.com", "HTTPS://10.0.0.5:8443/x", "http://127.0.0.1:4566",
                "http://127.1.2.3/", "http://localhost:4566", "http://LOCALHOST", "http://[::1]:8080/ec2",
                "http://user:pw@127.0.0.1:1/", "http://127.0.0.1?x=@example.com",
        };
        static const char *const refused[] = {
                "http://10.0.0.5:4566", "http://ec2.us-east-1.amazonaws.com", "HTTP://192.0.2.1",
                "http://127.0.0.1@example.com/", "http://127.0.0.1.example.com/", "http://localhost.example.com",
                "http://[::2]/", "http://[::ffff:127.0.0.1]/", "http://127.1/", "http://2130706433/",
                "http://169.254.169.254", "http://[fd00:ec2::254]/", "http://[::1", "http://:80/",
        };
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                if (!lb_url_cleartext_allowed(allowed[i], false))
                        fail_msg("refused: %s", allowed[i]);
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (lb_url_cleartext_allowed(refused[i], false))
                        fail_msg("allowed: %s", refused[i]);
        /* IMDS itself only speaks http, on its link-local addresses. */
        assert_true(lb_url_cleartext_allowed("http://169.254.169.254", true));
        assert_true(lb_url_cleartext_allowed("http://169.254.169.254:80/latest", true));
        assert_true(lb_url_cleartext_allowed("http://[fd00:ec2::254]/", true));
        assert_true(lb_url_cleartext_allowed("http://[FD00:EC2:0::254]", true));
        assert_false(lb_url_cleartext_allowed("http://169.254.170.2", true));   /* ECS task credentials */
        assert_false(lb_url_cleartext_allowed("http://10.0.0.5", true));
}

/* AWS endpoints in clear text to anything but this host are refused, naming the key. */
static void test_cleartext_endpoints_refused(void **state) {
        struct fixture *f = *state;
        static const struct {
                const char *key, *value;
        } cases[] = {
                { "AWS_ENDPOINT_URL_EC2", "http://10.0.0.5:4566" },
                { "AWS_ENDPOINT_URL", "http://ec2.us-east-1.amazonaws.com" },
                { "AWS_ENDPOINT_URL_EC2", "http://127.0.0.1@example.com/" },
                { "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.170.2" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[256], want[256];
                lbt_log_reset(&f->log);
                assert_int_equal(lb_snprintf(text, sizeof text, "%s=%s\n", cases[i].key, cases[i].value), 0);
                assert_int_equal(lb_settings_parse_config(&f->ctx, text, "/etc/x.conf"), -EINVAL);
                assert_int_equal(lb_snprintf(want, sizeof want, "/etc/x.conf:1: invalid value for %s: '%s'",
                                             cases[i].key, cases[i].value), 0);
                if (!strstr(lbt_log_text(&f->log), want) ||
                    !strstr(lbt_log_text(&f->log), "(expected an https:// URL, or http:// to "))
                        fail_msg("case %zu: log was: %s", i, lbt_log_text(&f->log));
        }
        assert_null(f->ctx.settings.ec2_endpoint);
        assert_string_equal(f->ctx.settings.imds_endpoint, "http://169.254.169.254");

        char *envp[] = { (char *) "AWS_ENDPOINT_URL_EC2=http://192.0.2.1", NULL };
        lbt_log_reset(&f->log);
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp), -EINVAL);
        assert_non_null(strstr(lbt_log_text(&f->log), "environment: invalid value for AWS_ENDPOINT_URL_EC2"));

        /* What stays allowed: https anywhere, http to this host, IMDS's own addresses. */
        lbt_log_reset(&f->log);
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "AWS_ENDPOINT_URL_EC2=https://vpce-0123.ec2.us-east-1.vpce.amazonaws.com\n"
                                                  "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://[fd00:ec2::254]\n"
                                                  "LIFEBOAT_FLUENTD_RPC=http://172.17.0.1:24444\n",
                                                  "/etc/y.conf"),
                         0);
        assert_int_equal(f->log.n_err, 0);
        assert_string_equal(f->ctx.settings.imds_endpoint, "http://[fd00:ec2::254]");
        assert_int_equal(lb_settings_parse_config(&f->ctx, "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:4566\n", "z"), 0);
        assert_string_equal(f->ctx.settings.ec2_endpoint, "http://127.0.0.1:4566");
}

static void write_conf(const char *path, const char *text, mode_t mode) {
        assert_int_equal(lb_write_file_atomic(path, text, strlen(text), mode), 0);
        assert_int_equal(chmod(path, mode), 0);
}

/* Keys in a file other users may read are theirs too: a warning names the file and the fix. */
static void test_secret_in_readable_file_warns(void **state) {
        struct fixture *f = *state;
        char path[PATH_MAX + 16], want[PATH_MAX + 128];
        lbt_pathf(path, "%s/lifeboat.conf", f->dir);
        assert_int_equal(lb_snprintf(want, sizeof want, "%s holds AWS credentials and other users may read it "
                                                        "(mode 0644): chmod 600 %s", path, path), 0);

        write_conf(path, "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIEXAMPLEKEY\n", 0644);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, path, false), 0);
        assert_non_null(strstr(lbt_log_text(&f->log), want));
        assert_int_equal(f->log.n_warn, 1);
        assert_null(strstr(lbt_log_text(&f->log), "wJalrXUtnFEMI"));

        /* A session token alone, group-readable: the same. */
        lbt_log_reset(&f->log);
        write_conf(path, "AWS_SESSION_TOKEN=IQoJb3JpZ2luEXAMPLE\n", 0640);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, path, false), 0);
        assert_non_null(strstr(lbt_log_text(&f->log), "other users may read it (mode 0640)"));

        /* 0600, or no secret in the file: nothing to say. */
        lbt_log_reset(&f->log);
        write_conf(path, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIEXAMPLEKEY\n", 0600);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, path, false), 0);
        assert_int_equal(f->log.n_warn, 0);
        write_conf(path, "LIFEBOAT_GROUP=g\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\nAWS_SECRET_ACCESS_KEY=\n", 0644);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, path, false), 0);
        assert_int_equal(f->log.n_warn, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cleartext_rule),
                cmocka_unit_test_setup_teardown(test_cleartext_endpoints_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_secret_in_readable_file_warns, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
