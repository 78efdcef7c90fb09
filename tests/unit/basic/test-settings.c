/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "testutil.h"

struct fixture {
        struct lb_context ctx;
        struct lbt_log log;             /* every message the settings code logs */
        char dir[64];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(lb_context_init(&f->ctx), 0);
        lbt_log_install(&f->ctx, &f->log);
        assert_int_equal(lb_strscpy(f->dir, sizeof f->dir, "/tmp/lifeboat-test-settings-XXXXXX"), 0);
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        lb_context_done(&f->ctx);
        lbt_log_reset(&f->log);
        /* Remove what the tests wrote (flat directory). */
        static const char *const names[] = { "ecs.config", "lifeboat.conf", "nul.conf" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char p[256];
                assert_int_equal(lb_snprintf(p, sizeof p, "%s/%s", f->dir, names[i]), 0);
                (void) unlink(p);
        }
        assert_int_equal(rmdir(f->dir), 0);
        free(f);
        return 0;
}

static const char *logged(struct fixture *f) {
        return lbt_log_text(&f->log);
}

static void reset_log(struct fixture *f) {
        lbt_log_reset(&f->log);
}

static void write_file(struct fixture *f, const char *name, const char *content, char *path, size_t size) {
        assert_int_equal(lb_snprintf(path, size, "%s/%s", f->dir, name), 0);
        assert_int_equal(lb_write_file_atomic(path, content, strlen(content), 0644), 0);
}

/* ---- defaults and durations ---- */

static void test_defaults(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;

        assert_int_equal(f->ctx.log_max_level, LB_LOG_DEBUG); /* set by setup */
        struct lb_context fresh;
        assert_int_equal(lb_context_init(&fresh), 0);
        assert_int_equal(fresh.log_max_level, LB_LOG_INFO);
        assert_null(fresh.log_fn);
        lb_context_done(&fresh);

        assert_string_equal(s->config_path, "/etc/lifeboat/lifeboat.conf");
        assert_string_equal(s->ecs_config, "/etc/ecs/ecs.config");
        assert_null(s->group);
        assert_string_equal(s->tag_prefix, "lifeboat");
        assert_null(s->buffer_device);
        assert_string_equal(s->buffer_mount, "/var/lib/lifeboat/buffer");
        assert_int_equal(s->fs, LB_FS_XFS);
        assert_string_equal(s->recovery_root, "/var/lib/lifeboat/recovery");
        assert_int_equal(s->max_recover, 4);
        assert_int_equal(s->attachment_slots, 27);
        assert_int_equal(s->attach_timeout_ms, 90000);
        assert_int_equal(s->device_timeout_ms, 30000);
        assert_int_equal(s->boot_timeout_ms, 90000);
        assert_string_equal(s->sysfs_root, "/sys");
        assert_string_equal(s->dev_root, "/dev");
        assert_string_equal(s->run_dir, "/run/lifeboat");
        assert_string_equal(s->state_dir, "/var/lib/lifeboat/state");
        assert_string_equal(s->fluentd_template, "/etc/lifeboat/fluentd-recovery.conf.in");
        assert_string_equal(s->fluentd_conf_dir, "/etc/fluent/recovery.d");
        assert_string_equal(s->fluentd_rpc, "http://127.0.0.1:24444");
        assert_true(s->fluentd_reload);
        assert_false(s->relocate);
        assert_string_equal(s->chunk_pattern, "\\.(b|q)[0-9a-f]+\\.(log|buf)$");
        assert_string_equal(s->fluentd_backup_dir, "");
        assert_int_equal(s->poll_interval_ms, 2000);
        assert_int_equal(s->flush_timeout_ms, 100000);
        assert_int_equal(s->flush_margin_ms, 10000);
        assert_int_equal(s->settle_ms, 30000);
        assert_int_equal(s->imds_timeout_ms, 1000);
        assert_int_equal(s->ec2_timeout_ms, 10000);
        assert_int_equal(s->max_response_bytes, 8u * 1024 * 1024);
        assert_string_equal(s->imds_endpoint, "http://169.254.169.254");
        assert_false(s->imds_disabled);
        assert_null(s->ec2_endpoint);
        assert_null(s->cloudwatch_endpoint);
        assert_false(s->metrics);
        assert_string_equal(s->metrics_namespace, "Lifeboat");
        assert_null(s->autoscaling_endpoint);
        assert_null(s->lifecycle_hook);
        assert_int_equal(s->lifecycle_timeout_ms, 15 * 60 * 1000);
        assert_null(s->region);
        assert_null(s->access_key_id);
        assert_null(s->secret_access_key);
        assert_null(s->session_token);
        assert_null(s->ca_bundle);
}

static void test_durations(void **state) {
        static const struct {
                const char *text;
                uint64_t ms;
        } good[] = {
                /* what lifeboat always took */
                { "90", 90000 }, { "90s", 90000 }, { "500ms", 500 }, { "10m", 600000 }, { "1h", 3600000 },
                { "0", 0 },
                /* systemd.time(7) spans, as `systemd-analyze timespan` reads them */
                { "2min", 120000 }, { "1.5s", 1500 }, { "1h 30min", 5400000 }, { "1h30m", 5400000 },
                { "55s500ms", 55500 }, { "300ms20s 5day", 432020300 }, { "2 h", 7200000 }, { "48hr", 172800000 },
                { "1minute1", 61000 }, { "5 s3", 8000 }, { "+5s", 5000 }, { "\t5s\t3s", 8000 }, { " 10s ", 10000 },
                { "10 s", 10000 }, { "1d 1d", 172800000 }, { "1w", 604800000 }, { "1M", 2629800000 },
                { "1y", 31557600000 }, { "1.5h", 5400000 }, { ".5s", 500 }, { "1500us", 1 }, { "1.5us", 0 },
                { "10sec", 10000 }, { "3 seconds", 3000 }, { "1 month", 2629800000 }, { "2 years", 63115200000 },
                { "infinity", UINT64_MAX },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                uint64_t ms = 7;
                if (lb_parse_duration_ms(good[i].text, &ms) != 0 || ms != good[i].ms)
                        fail_msg("\"%s\": expected %" PRIu64 " ms, got %" PRIu64, good[i].text, good[i].ms, ms);
        }

        uint64_t ms = 42;
        static const char *const bad[] = { "", "  ", "s", "ms", "10x", "5.", "5S", "5MIN", "5secs", "5mins",
                                           "1hrs", "10ns", "1e3s", "1,5s", "01:30", "5s,3s", "0x10", "infinity s" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (lb_parse_duration_ms(bad[i], &ms) != -EINVAL)
                        fail_msg("\"%s\" was accepted", bad[i]);
        assert_int_equal(lb_parse_duration_ms("-1", &ms), -ERANGE);
        assert_int_equal(lb_parse_duration_ms("-0", &ms), -ERANGE);
        assert_int_equal(lb_parse_duration_ms("99999999999999999999", &ms), -ERANGE);
        assert_int_equal(lb_parse_duration_ms("18446744073709551615h", &ms), -ERANGE);
        assert_int_equal(lb_parse_duration_ms("18446744073709551615", &ms), -ERANGE);
        assert_int_equal(ms, 42); /* untouched on failure */

        /* What the dump writes reads back the same. */
        char buf[32];
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {       /* "infinity" too (fuzz/duration) */
                assert_int_equal(lb_format_duration_ms(good[i].ms, buf, sizeof buf), 0);
                assert_int_equal(lb_parse_duration_ms(buf, &ms), 0);
                assert_int_equal(ms, good[i].ms);
        }
}

/* ---- config file syntax ---- */

static void test_config_syntax(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;
        const char *text =
                "# lifeboat settings\n"
                "\n"
                "   \n"
                "LIFEBOAT_GROUP=logs-prod\n"
                "  LIFEBOAT_TAG_PREFIX=acme:lifeboat   \n"
                "LIFEBOAT_BUFFER_DEVICE = /dev/xvdb\n"
                "\t# an indented comment\n"
                "LIFEBOAT_FLUENTD_RPC=http://127.0.0.1:24444/api?x=1&y=2\n"
                "LIFEBOAT_RUN_DIR=\"/run/life boat\"\n"
                "LIFEBOAT_FLUENTD_TEMPLATE='/etc/x'\n"   /* single quotes are kept: not absolute */
                "LIFEBOAT_FS=ext4\r\n"
                "LIFEBOAT_MAX_RECOVER=0\n"
                "LIFEBOAT_ATTACH_TIMEOUT=2m\n"
                "LIFEBOAT_FLUENTD_RELOAD=no\n"
                "LIFEBOAT_RECOVERY_ROOT=/srv/recovery///\n"
                "LIFEBOAT_CHUNK_PATTERN=\\.q[0-9a-f]+\\.log$\n"
                "LIFEBOAT_GROUP=logs-2\n"               /* later line wins */
                "LIFEBOAT_DEV_ROOT=/srv/dev#1\n"       /* '#' inside is literal */
                "LIFEBOAT_FLUENTD_BACKUP_DIR=\n";
        assert_int_equal(lb_settings_parse_config(&f->ctx, text, "test.conf"), -EINVAL);
        /* The single-quoted line is the only error. */
        assert_int_equal(f->log.n_err, 1);
        assert_non_null(strstr(logged(f), "test.conf:10: invalid value for LIFEBOAT_FLUENTD_TEMPLATE: ''/etc/x'"));

        assert_string_equal(s->group, "logs-2");
        assert_string_equal(s->dev_root, "/srv/dev#1");
        assert_string_equal(s->tag_prefix, "acme:lifeboat");
        assert_string_equal(s->buffer_device, "/dev/xvdb");
        assert_string_equal(s->fluentd_rpc, "http://127.0.0.1:24444/api?x=1&y=2");
        assert_string_equal(s->run_dir, "/run/life boat");
        assert_string_equal(s->fluentd_template, "/etc/lifeboat/fluentd-recovery.conf.in");
        assert_int_equal(s->fs, LB_FS_EXT4);
        assert_int_equal(s->max_recover, 0);
        assert_int_equal(s->attach_timeout_ms, 120000);
        assert_false(s->fluentd_reload);
        assert_string_equal(s->recovery_root, "/srv/recovery");
        assert_string_equal(s->chunk_pattern, "\\.q[0-9a-f]+\\.log$");
        assert_string_equal(s->fluentd_backup_dir, "");
}

static void test_config_empty_quoted_duration(void **state) {
        struct fixture *f = *state;
        /* "" unquotes to an empty value, which a duration does not accept. */
        assert_int_equal(lb_settings_parse_config(&f->ctx, "LIFEBOAT_SETTLE=\"\"\n", "q.conf"), -EINVAL);
        assert_non_null(strstr(logged(f), "q.conf:1: invalid value for LIFEBOAT_SETTLE: ''"));
        assert_int_equal(f->ctx.settings.settle_ms, 30000);
}

static void test_config_missing_equals(void **state) {
        struct fixture *f = *state;
        const char *text = "LIFEBOAT_GROUP=a\n# fine\nLIFEBOAT_TAG_PREFIX lifeboat\nLIFEBOAT_MAX_RECOVER=3\n";
        assert_int_equal(lb_settings_parse_config(&f->ctx, text, "/etc/lifeboat/lifeboat.conf"), -EINVAL);
        assert_non_null(strstr(logged(f), "/etc/lifeboat/lifeboat.conf:3: expected KEY=VALUE"));
        /* The line itself is not echoed (it may be a mistyped secret). */
        assert_null(strstr(logged(f), "LIFEBOAT_TAG_PREFIX lifeboat"));
        /* The lines around it still count: all errors are reported in one go. */
        assert_string_equal(f->ctx.settings.group, "a");
        assert_int_equal(f->ctx.settings.max_recover, 3);

        reset_log(f);
        assert_int_equal(lb_settings_parse_config(&f->ctx, "=value\n", "x.conf"), -EINVAL);
        assert_non_null(strstr(logged(f), "x.conf:1: expected KEY=VALUE"));
        reset_log(f);
        assert_int_equal(lb_settings_parse_config(&f->ctx, "export LIFEBOAT_GROUP=a\n", "x.conf"), -EINVAL);
        assert_non_null(strstr(logged(f), "x.conf:1: expected KEY=VALUE"));
}

static void test_config_unknown_key(void **state) {
        struct fixture *f = *state;
        const char *text = "LIFEBOAT_GROUP=a\nECS_CLUSTER=prod\nLIFEBOAT_GRUOP=b\nLIFEBOAT_CONFIG=/x\n";
        assert_int_equal(lb_settings_parse_config(&f->ctx, text, "l.conf"), 0);
        assert_int_equal(f->log.n_err, 0);
        assert_int_equal(f->log.n_warn, 3);
        assert_non_null(strstr(logged(f), "l.conf:2: unknown key ECS_CLUSTER"));
        assert_non_null(strstr(logged(f), "l.conf:3: unknown key LIFEBOAT_GRUOP"));
        assert_non_null(strstr(logged(f), "l.conf:4: LIFEBOAT_CONFIG has no effect in a config file"));
        assert_string_equal(f->ctx.settings.group, "a");
        assert_string_equal(f->ctx.settings.config_path, "/etc/lifeboat/lifeboat.conf");
}

/* Each type rejects a bad value with an error naming origin:line, the key and the value. */
static void test_config_invalid_values(void **state) {
        struct fixture *f = *state;
        static const struct {
                const char *key, *value, *expected;
        } cases[] = {
                { "LIFEBOAT_RUN_DIR", "run/lifeboat", "absolute path" },
                { "LIFEBOAT_RUN_DIR", "/run/../etc", "absolute path" },
                { "LIFEBOAT_RUN_DIR", "/run/..", "absolute path" },
                { "LIFEBOAT_BUFFER_MOUNT", "", "absolute path" },
                { "LIFEBOAT_FLUENTD_RPC", "127.0.0.1:24444", "URL" },
                { "LIFEBOAT_FLUENTD_RPC", "ftp://127.0.0.1", "URL" },
                { "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://", "URL" },
                { "AWS_EC2_METADATA_SERVICE_ENDPOINT", "", "URL" },
                { "AWS_ENDPOINT_URL_EC2", "http://a b", "URL" },
                { "AWS_ENDPOINT_URL_AUTO_SCALING", "autoscaling.example", "URL" },
                /* One key, two endpoints: still one error. */
                { "AWS_ENDPOINT_URL", "ftp://x", "URL" },
                { "LIFEBOAT_LIFECYCLE_HOOK", "lifeboat drain", "lifecycle hook name: 1 to 255 of A-Z a-z 0-9 _ - /" },
                { "LIFEBOAT_LIFECYCLE_HOOK", "hook:1", "lifecycle hook name" },
                { "LIFEBOAT_LIFECYCLE_TIMEOUT", "500ms", "from 1s to 48h" },
                { "LIFEBOAT_LIFECYCLE_TIMEOUT", "49h", "from 1s to 48h" },
                { "LIFEBOAT_MAX_RECOVER", "65", "integer from 0 to 64" },
                { "LIFEBOAT_MAX_RECOVER", "-1", "integer from 0 to 64" },
                { "LIFEBOAT_ATTACHMENT_SLOTS", "0", "integer from 1 to 128" },
                { "LIFEBOAT_MAX_RESPONSE", "8M", "integer" },
                { "LIFEBOAT_POLL_INTERVAL", "50ms", "from 100ms to 1h" },
                { "LIFEBOAT_ATTACH_TIMEOUT", "soon", "duration" },
                { "LIFEBOAT_IMDS_TIMEOUT", "0", "duration" },
                { "LIFEBOAT_FLUENTD_RELOAD", "maybe", "true or false" },
                { "AWS_EC2_METADATA_DISABLED", "2", "true or false" },
                { "LIFEBOAT_FS", "btrfs", "xfs or ext4" },
                { "LIFEBOAT_FS", "XFS", "xfs or ext4" },
                { "LIFEBOAT_TAG_PREFIX", "aws:lifeboat", "not starting with aws:" },
                { "LIFEBOAT_TAG_PREFIX", "AWS:x", "not starting with aws:" },
                { "LIFEBOAT_TAG_PREFIX", "life boat", "1 to 64 characters" },
                { "LIFEBOAT_TAG_PREFIX", "0123456789012345678901234567890123456789012345678901234567890123456789",
                  "1 to 64 characters" },
                { "LIFEBOAT_GROUP", "a\"b", "1 to 255 characters of A-Z a-z 0-9 _ . : -" },
                { "LIFEBOAT_GROUP", "a\\b", "1 to 255 characters" },
                { "LIFEBOAT_GROUP", "prod-*", "1 to 255 characters" },
                { "LIFEBOAT_GROUP", "prod-?", "1 to 255 characters" },
                /* What fluentd's config could not carry is refused here, not at every boot. */
                { "LIFEBOAT_GROUP", "logs-#2", "1 to 255 characters" },
                { "LIFEBOAT_GROUP", "logs 2", "1 to 255 characters" },
                { "LIFEBOAT_GROUP", "team/logs", "1 to 255 characters" },
                { "LIFEBOAT_RECOVERY_ROOT", "/srv/re covery", "written into fluentd configs" },
                { "LIFEBOAT_RECOVERY_ROOT", "/srv/rec#1", "written into fluentd configs" },
                { "LIFEBOAT_RECOVERY_ROOT", "/srv//rec", "written into fluentd configs" },
                { "LIFEBOAT_BUFFER_DEVICE", "/dev/nvme1n1", "/dev/sdX" },
                { "LIFEBOAT_BUFFER_DEVICE", "/dev/sdF", "/dev/sdX" },
                { "LIFEBOAT_BUFFER_DEVICE", "/dev/xvdabc", "/dev/sdX" },
                { "LIFEBOAT_BUFFER_DEVICE", "/dev/sd", "/dev/sdX" },
                { "LIFEBOAT_CHUNK_PATTERN", "\\.(b|q[0-9a-f]+", "regular expression" },
                { "AWS_REGION", "US-EAST-1", "AWS region" },
                { "AWS_DEFAULT_REGION", "us-east-1/x", "AWS region" },
                { "AWS_ACCESS_KEY_ID", "AKIA EXAMPLE", "printable characters" },
                { "AWS_CA_BUNDLE", "certs.pem", "absolute path" },
                { "AWS_ENDPOINT_URL_CLOUDWATCH", "monitoring.example", "URL" },
                { "LIFEBOAT_METRICS", "often", "true or false" },
                /* CloudWatch reserves AWS/ and refuses a leading ':'; its character set, no more. */
                { "LIFEBOAT_METRICS_NAMESPACE", "AWS/EBS", "not starting with : or AWS/" },
                { "LIFEBOAT_METRICS_NAMESPACE", ":Lifeboat", "not starting with : or AWS/" },
                { "LIFEBOAT_METRICS_NAMESPACE", "Life\"boat", "A-Z a-z 0-9 space . _ / # : -" },
                { "LIFEBOAT_METRICS_NAMESPACE", "Life*boat", "A-Z a-z 0-9 space . _ / # : -" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[512], want[512];
                reset_log(f);
                assert_int_equal(lb_snprintf(text, sizeof text, "# case %zu\n\n%s=%s\n", i, cases[i].key,
                                             cases[i].value), 0);
                int r = lb_settings_parse_config(&f->ctx, text, "/etc/x.conf");
                if (r != -EINVAL)
                        fail_msg("%s=%s: expected -EINVAL, got %d", cases[i].key, cases[i].value, r);
                assert_int_equal(lb_snprintf(want, sizeof want, "/etc/x.conf:3: invalid value for %s: '%s' (expected ",
                                             cases[i].key, cases[i].value), 0);
                if (!strstr(logged(f), want) || !strstr(logged(f), cases[i].expected))
                        fail_msg("case %zu: log was: %s", i, logged(f));
                assert_int_equal(f->log.n_err, 1);
        }
        /* Nothing changed. */
        assert_string_equal(f->ctx.settings.run_dir, "/run/lifeboat");
        assert_int_equal(f->ctx.settings.max_recover, 4);
        assert_null(f->ctx.settings.buffer_device);
        assert_null(f->ctx.settings.region);
}

static void test_valid_values(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;
        static const char *const good[] = {
                "LIFEBOAT_BUFFER_DEVICE=/dev/sdf",
                "LIFEBOAT_BUFFER_DEVICE=/dev/xvdaa",
                "LIFEBOAT_BUFFER_DEVICE=/dev/xvdbz",
                "LIFEBOAT_TAG_PREFIX=a",
                "LIFEBOAT_TAG_PREFIX=x_.:/=+-@Z9",
                "LIFEBOAT_GROUP=arn:aws:ecs:us-east-1:123456789012:cluster.prod_logs-eu",
                "LIFEBOAT_RECOVERY_ROOT=/srv/lb_rec.1/",
                "LIFEBOAT_FLUENTD_RPC=",
                "LIFEBOAT_FLUENTD_RPC=HTTPS://fluentd.local:24444",
                "AWS_REGION=eu-central-1",
                "AWS_REGION=us-gov-west-1",
                "LIFEBOAT_MAX_RESPONSE=4096",
                "LIFEBOAT_POLL_INTERVAL=100ms",
                "AWS_EC2_METADATA_DISABLED=TRUE",
                "LIFEBOAT_SYSFS_ROOT=/",
                "LIFEBOAT_METRICS=yes",
                "LIFEBOAT_METRICS_NAMESPACE=aws/Team #2: spot logs_v1.0-x",
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (lb_settings_parse_config(&f->ctx, good[i], "g.conf") != 0)
                        fail_msg("%s rejected: %s", good[i], logged(f));
        assert_true(s->imds_disabled);
        assert_string_equal(s->fluentd_rpc, "HTTPS://fluentd.local:24444");
        assert_string_equal(s->sysfs_root, "/");
        assert_string_equal(s->buffer_device, "/dev/xvdbz");
        assert_int_equal(s->poll_interval_ms, 100);
        assert_true(s->metrics);
        assert_string_equal(s->metrics_namespace, "aws/Team #2: spot logs_v1.0-x");

        /* An empty optional value given alone is "not set here". */
        assert_int_equal(lb_settings_parse_config(&f->ctx, "LIFEBOAT_BUFFER_DEVICE=\n", "g.conf"), 0);
        assert_string_equal(s->buffer_device, "/dev/xvdbz");
        /* lb_settings_set() with "" (a flag) does clear it. */
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_BUFFER_DEVICE", "", "--buffer-device"), 0);
        assert_null(s->buffer_device);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_NOPE", "x", "--nope"), -ENOENT);
        assert_non_null(strstr(logged(f), "--nope: unknown setting LIFEBOAT_NOPE"));
        reset_log(f);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_MAX_RECOVER", "100", "--max-recover"), -EINVAL);
        assert_non_null(strstr(logged(f), "--max-recover: invalid value for LIFEBOAT_MAX_RECOVER: '100'"));
}

/* ---- precedence ---- */

static void test_env_over_config(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;
        char conf[256];
        write_file(f, "lifeboat.conf", "LIFEBOAT_GROUP=from-config\nLIFEBOAT_MAX_RECOVER=2\nAWS_REGION=eu-west-1\n",
                   conf, sizeof conf);
        char env_config[300];
        assert_int_equal(lb_snprintf(env_config, sizeof env_config, "LIFEBOAT_CONFIG=%s", conf), 0);
        char *envp[] = {
                env_config,
                (char *) "LIFEBOAT_GROUP=from-env",
                (char *) "HOME=/root",
                (char *) "AWS_PROFILE=whatever",
                (char *) "LIFEBOAT_UNKNOWN_THING=1",
                (char *) "NO_EQUALS_SIGN",
                (char *) "AWS_REGION=",         /* empty: does not override the config file */
                NULL,
        };
        assert_int_equal(lb_settings_load(&f->ctx, envp, NULL), 0);
        assert_string_equal(s->config_path, conf);
        assert_string_equal(s->group, "from-env");
        assert_int_equal(s->max_recover, 2);
        assert_string_equal(s->region, "eu-west-1");
        assert_int_equal(f->log.n_warn, 1);
        assert_non_null(strstr(logged(f), "environment: unknown variable LIFEBOAT_UNKNOWN_THING"));
        assert_null(strstr(logged(f), "AWS_PROFILE"));
        assert_null(strstr(logged(f), "HOME"));

        /* A flag over both. */
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_GROUP", "from-flag", "--group"), 0);
        assert_string_equal(s->group, "from-flag");
}

static void test_env_invalid(void **state) {
        struct fixture *f = *state;
        char *envp[] = { (char *) "LIFEBOAT_ATTACH_TIMEOUT=forever", (char *) "LIFEBOAT_MAX_RECOVER=5", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp), -EINVAL);
        assert_non_null(strstr(logged(f), "environment: invalid value for LIFEBOAT_ATTACH_TIMEOUT: 'forever' (expected "));
        assert_int_equal(f->ctx.settings.attach_timeout_ms, 90000);
        assert_int_equal(f->ctx.settings.max_recover, 5);

        /* Control characters are not echoed as such. */
        reset_log(f);
        char *envp2[] = { (char *) "LIFEBOAT_GROUP=a\nb\033[31m", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp2), -EINVAL);
        assert_non_null(strstr(logged(f), "'a?b?[31m'"));
}

static void test_load_config_file(void **state) {
        struct fixture *f = *state;
        char path[256];
        assert_int_equal(lb_snprintf(path, sizeof path, "%s/absent.conf", f->dir), 0);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, path, true), 0);
        assert_int_equal(f->log.n_err, 0);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, path, false), -ENOENT);
        assert_non_null(strstr(logged(f), "absent.conf"));

        /* A named config file must exist. */
        reset_log(f);
        assert_int_equal(lb_settings_load(&f->ctx, NULL, path), -ENOENT);
        assert_int_equal(f->log.n_err, 1);

        char nul[256];
        assert_int_equal(lb_snprintf(nul, sizeof nul, "%s/nul.conf", f->dir), 0);
        assert_int_equal(lb_write_file_atomic(nul, "LIFEBOAT_GROUP=a\0b\n", 19, 0644), 0);
        reset_log(f);
        assert_int_equal(lb_settings_load_config_file(&f->ctx, nul, false), -EINVAL);
        assert_non_null(strstr(logged(f), "NUL"));

        char conf[256];
        write_file(f, "lifeboat.conf", "LIFEBOAT_GROUP=filegroup\nBOGUS=1\n", conf, sizeof conf);
        reset_log(f);
        assert_int_equal(lb_settings_load(&f->ctx, NULL, conf), 0);
        assert_string_equal(f->ctx.settings.group, "filegroup");
        assert_string_equal(f->ctx.settings.config_path, conf);
        char want[300];
        assert_int_equal(lb_snprintf(want, sizeof want, "%s:2: unknown key BOGUS", conf), 0);
        assert_non_null(strstr(logged(f), want));
}

static void test_endpoint_alias_order(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;

        /* Config file, both orders. */
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:1/ec2\n"
                                                  "AWS_ENDPOINT_URL=http://127.0.0.1:2/all\n",
                                                  "a.conf"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:1/ec2");
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "AWS_ENDPOINT_URL=http://127.0.0.1:4/all\n"
                                                  "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:3/ec2\n",
                                                  "b.conf"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:3/ec2");
        /* The generic one alone. */
        assert_int_equal(lb_settings_parse_config(&f->ctx, "AWS_ENDPOINT_URL=http://127.0.0.1:5\n", "c.conf"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:5");

        /* Environment, both orders. */
        char *e1[] = { (char *) "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:6", (char *) "AWS_ENDPOINT_URL=http://127.0.0.1:7",
                       (char *) "AWS_REGION=us-east-2", (char *) "AWS_DEFAULT_REGION=us-west-1", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, e1), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:6");
        assert_string_equal(s->region, "us-east-2");
        char *e2[] = { (char *) "AWS_DEFAULT_REGION=us-west-1", (char *) "AWS_ENDPOINT_URL=http://127.0.0.1:9",
                       (char *) "AWS_REGION=ap-south-1", (char *) "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:8", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, e2), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:8");
        assert_string_equal(s->region, "ap-south-1");
        char *e3[] = { (char *) "AWS_DEFAULT_REGION=sa-east-1", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, e3), 0);
        assert_string_equal(s->region, "sa-east-1");
        /* An empty specific one does not hide the generic one. */
        char *e4[] = { (char *) "AWS_ENDPOINT_URL_EC2=", (char *) "AWS_ENDPOINT_URL=http://127.0.0.1:10", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, e4), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:10");
        assert_int_equal(f->log.n_err, 0);
}

/* AWS_ENDPOINT_URL stands in for every service's endpoint, each losing to its own key. */
static void test_endpoint_url_feeds_every_service(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;

        assert_int_equal(lb_settings_parse_config(&f->ctx, "AWS_ENDPOINT_URL=http://127.0.0.1:1\n", "a.conf"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:1");
        assert_string_equal(s->cloudwatch_endpoint, "http://127.0.0.1:1");
        assert_string_equal(s->autoscaling_endpoint, "http://127.0.0.1:1");
        assert_string_equal(s->sts_endpoint, "http://127.0.0.1:1");
        /* Each specific one wins in its source, whatever the order. */
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:3/cw\n"
                                                  "AWS_ENDPOINT_URL=http://127.0.0.1:2\n",
                                                  "b.conf"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:2");
        assert_string_equal(s->cloudwatch_endpoint, "http://127.0.0.1:3/cw");
        char *env[] = { (char *) "AWS_ENDPOINT_URL=http://127.0.0.1:4", (char *) "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:5",
                        NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, env), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:5");
        assert_string_equal(s->cloudwatch_endpoint, "http://127.0.0.1:4");
        /* A flag sets every row too; a bad value is one error, not one per row. */
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_ENDPOINT_URL", "http://127.0.0.1:6", "--endpoint"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:6");
        assert_string_equal(s->cloudwatch_endpoint, "http://127.0.0.1:6");
        assert_int_equal(f->log.n_err, 0);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_ENDPOINT_URL", "nowhere", "--endpoint"), -EINVAL);
        assert_int_equal(f->log.n_err, 1);
        assert_string_equal(s->cloudwatch_endpoint, "http://127.0.0.1:6");

        /* The dump lists each field once, under its own key. */
        _cleanup_free_ char *dump = NULL;
        assert_int_equal(lb_settings_dump(s, &dump), 0);
        assert_non_null(strstr(dump, "AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:6\n"));
        assert_null(strstr(dump, "AWS_ENDPOINT_URL="));
}

/* AWS_ENDPOINT_URL is every service's endpoint: Auto Scaling follows the same rules as EC2. */
static void test_autoscaling_endpoint(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;

        /* The generic one sets both. */
        assert_int_equal(lb_settings_parse_config(&f->ctx, "AWS_ENDPOINT_URL=http://127.0.0.1:5\n", "a.conf"), 0);
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:5");
        assert_string_equal(s->autoscaling_endpoint, "http://127.0.0.1:5");
        /* The specific one wins in its source, whatever the order, and only for its service. */
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "AWS_ENDPOINT_URL_AUTO_SCALING=http://127.0.0.1:1/as\n"
                                                  "AWS_ENDPOINT_URL=http://127.0.0.1:2/all\n",
                                                  "b.conf"), 0);
        assert_string_equal(s->autoscaling_endpoint, "http://127.0.0.1:1/as");
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:2/all");
        char *e1[] = { (char *) "AWS_ENDPOINT_URL=http://127.0.0.1:4/all",
                       (char *) "AWS_ENDPOINT_URL_AUTO_SCALING=http://127.0.0.1:3/as",
                       (char *) "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:6/ec2", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, e1), 0);
        assert_string_equal(s->autoscaling_endpoint, "http://127.0.0.1:3/as");
        assert_string_equal(s->ec2_endpoint, "http://127.0.0.1:6/ec2");
        /* A flag sets both too. */
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_ENDPOINT_URL", "https://example.test", "--flag"), 0);
        assert_string_equal(s->autoscaling_endpoint, "https://example.test");
        assert_string_equal(s->ec2_endpoint, "https://example.test");

        /* The hook and its timeout. */
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "LIFEBOAT_LIFECYCLE_HOOK=team/lifeboat-drain_1\n"
                                                  "LIFEBOAT_LIFECYCLE_TIMEOUT=2h\n",
                                                  "c.conf"), 0);
        assert_string_equal(s->lifecycle_hook, "team/lifeboat-drain_1");
        assert_int_equal(s->lifecycle_timeout_ms, 2 * 3600 * 1000);
        /* Empty: no hook (from a lower level either). */
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_LIFECYCLE_HOOK", "", "--flag"), 0);
        assert_null(s->lifecycle_hook);
        assert_int_equal(f->log.n_err, 0);
}

/* ---- group and finalize ---- */

static void test_ecs_cluster_from_text(void **state) {
        char *c = NULL;
        assert_int_equal(lb_ecs_cluster_from_text("ECS_CLUSTER=prod\n", &c), 0);
        assert_string_equal(c, "prod");
        free(c);
        c = NULL;
        assert_int_equal(lb_ecs_cluster_from_text("# ECS_CLUSTER=commented\n"
                                                  "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true\n"
                                                  "garbage line without equals\n"
                                                  "  ECS_CLUSTER = \"quoted-cluster\"  \r\n"
                                                  "ECS_CLUSTER_X=no\n",
                                                  &c), 0);
        assert_string_equal(c, "quoted-cluster");
        free(c);
        c = NULL;
        assert_int_equal(lb_ecs_cluster_from_text("ECS_CLUSTER=a\nECS_CLUSTER=b", &c), 0);
        assert_string_equal(c, "b");
        free(c);
        c = NULL;
        assert_int_equal(lb_ecs_cluster_from_text("ECS_LOGLEVEL=debug\n", &c), -ENOENT);
        assert_int_equal(lb_ecs_cluster_from_text("ECS_CLUSTER=\n", &c), -ENOENT);
        assert_int_equal(lb_ecs_cluster_from_text("", &c), -ENOENT);
        assert_int_equal(lb_ecs_cluster_from_text("#ECS_CLUSTER=x", &c), -ENOENT);
        assert_null(c);
}

static void set_ecs_config(struct fixture *f, const char *content) {
        char path[256];
        if (content)
                write_file(f, "ecs.config", content, path, sizeof path);
        else
                assert_int_equal(lb_snprintf(path, sizeof path, "%s/ecs.config", f->dir), 0);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_ECS_CONFIG", path, "test"), 0);
}

static void test_group_from_ecs_cluster(void **state) {
        struct fixture *f = *state;
        set_ecs_config(f, "ECS_CLUSTER=prod-cluster\nECS_ENABLE_SPOT_INSTANCE_DRAINING=true\n");
        assert_int_equal(lb_settings_finalize(&f->ctx), 0);
        assert_string_equal(f->ctx.settings.group, "prod-cluster");
}

static void test_group_explicit_wins(void **state) {
        struct fixture *f = *state;
        set_ecs_config(f, "ECS_CLUSTER=prod-cluster\n");
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_GROUP", "mine", "test"), 0);
        assert_int_equal(lb_settings_finalize(&f->ctx), 0);
        assert_string_equal(f->ctx.settings.group, "mine");
}

static void test_group_missing(void **state) {
        struct fixture *f = *state;
        char want[512];

        set_ecs_config(f, NULL); /* no such file */
        assert_int_equal(lb_settings_finalize(&f->ctx), -EINVAL);
        assert_int_equal(lb_snprintf(want, sizeof want,
                                     "LIFEBOAT_GROUP is not set and ECS_CLUSTER was not found in %s/ecs.config",
                                     f->dir), 0);
        assert_non_null(strstr(logged(f), want));
        assert_null(f->ctx.settings.group);

        reset_log(f);
        set_ecs_config(f, "ECS_LOGLEVEL=info\n");
        assert_int_equal(lb_settings_finalize(&f->ctx), -EINVAL);
        assert_non_null(strstr(logged(f), want));

        reset_log(f);
        set_ecs_config(f, "ECS_CLUSTER=bad\"name\n");
        assert_int_equal(lb_settings_finalize(&f->ctx), -EINVAL);
        assert_non_null(strstr(logged(f), "ECS_CLUSTER 'bad\"name' cannot be the group"));
        assert_null(f->ctx.settings.group);
}

static void test_finalize_nested_paths(void **state) {
        struct fixture *f = *state;
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_GROUP", "g", "test"), 0);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_RECOVERY_ROOT", "/var/lib/lifeboat/buffer/rec", "t"), 0);
        assert_int_equal(lb_settings_finalize(&f->ctx), -EINVAL);
        assert_non_null(strstr(logged(f), "must not contain each other"));
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_RECOVERY_ROOT", "/var/lib/lifeboat/buffer", "t"), 0);
        assert_int_equal(lb_settings_finalize(&f->ctx), -EINVAL);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_RECOVERY_ROOT", "/var/lib/lifeboat/buffer2", "t"), 0);
        assert_int_equal(lb_settings_finalize(&f->ctx), 0);
}

/* ---- secrets and dump ---- */

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLETOKENVALUE"

/* The key pair and the token come whole from one source: a source that sets any of them drops
 * the others an earlier (lower) source set. */
static void test_credentials_from_one_source(void **state) {
        struct fixture *f = *state;
        assert_int_equal(lb_settings_parse_config(&f->ctx, "AWS_ACCESS_KEY_ID=AKIAFILE\nAWS_SECRET_ACCESS_KEY=s1\n"
                                                           "AWS_SESSION_TOKEN=stale\n", "a.conf"), 0);
        assert_string_equal(f->ctx.settings.session_token, "stale");
        char *env[] = { (char *) "AWS_ACCESS_KEY_ID=AKIAENV", (char *) "AWS_SECRET_ACCESS_KEY=s2", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, env), 0);
        assert_string_equal(f->ctx.settings.access_key_id, "AKIAENV");
        assert_string_equal(f->ctx.settings.secret_access_key, "s2");
        assert_null(f->ctx.settings.session_token);

        /* A source without any of them leaves them be; the legacy token name counts as the token. */
        char *none[] = { (char *) "LIFEBOAT_GROUP=g", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, none), 0);
        assert_string_equal(f->ctx.settings.access_key_id, "AKIAENV");
        char *legacy[] = { (char *) "AWS_ACCESS_KEY_ID=AKIA3", (char *) "AWS_SECRET_ACCESS_KEY=s3",
                           (char *) "AWS_SECURITY_TOKEN=t3", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, legacy), 0);
        assert_string_equal(f->ctx.settings.session_token, "t3");

        /* A token alone drops the pair it would not belong to. */
        char *token[] = { (char *) "AWS_SESSION_TOKEN=t4", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, token), 0);
        assert_null(f->ctx.settings.access_key_id);
        assert_null(f->ctx.settings.secret_access_key);
        assert_string_equal(f->ctx.settings.session_token, "t4");
}

static void test_secrets_never_echoed(void **state) {
        struct fixture *f = *state;

        /* Invalid secret values: the error names the key, not the value. */
        char *envp[] = { (char *) "AWS_SECRET_ACCESS_KEY=" SECRET " trailing", (char *) "AWS_SESSION_TOKEN=" TOKEN "\n",
                         NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp), -EINVAL);
        assert_non_null(strstr(logged(f), "environment: invalid value for AWS_SECRET_ACCESS_KEY (expected"));
        assert_non_null(strstr(logged(f), "environment: invalid value for AWS_SESSION_TOKEN (expected"));
        assert_null(strstr(logged(f), "wJalrXUtnFEMI"));
        assert_null(strstr(logged(f), "IQoJb3JpZ2lu"));

        reset_log(f);
        assert_int_equal(lb_settings_parse_config(&f->ctx, "AWS_SECRET_ACCESS_KEY=" SECRET " x\n", "s.conf"), -EINVAL);
        assert_non_null(strstr(logged(f), "s.conf:1: invalid value for AWS_SECRET_ACCESS_KEY (expected"));
        assert_null(strstr(logged(f), "wJalrXUtnFEMI"));

        /* Valid secrets are stored and masked in the dump. */
        reset_log(f);
        char *envp2[] = { (char *) "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", (char *) "AWS_SECRET_ACCESS_KEY=" SECRET,
                          (char *) "AWS_SESSION_TOKEN=" TOKEN, NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp2), 0);
        assert_string_equal(f->ctx.settings.secret_access_key, SECRET);
        assert_null(strstr(logged(f), "wJalrXUtnFEMI"));
        assert_null(strstr(logged(f), "IQoJb3JpZ2lu"));

        _cleanup_free_ char *dump = NULL;
        assert_int_equal(lb_settings_dump(&f->ctx.settings, &dump), 0);
        assert_null(strstr(dump, "wJalrXUtnFEMI"));
        assert_null(strstr(dump, "IQoJb3JpZ2lu"));
        assert_non_null(strstr(dump, "AWS_SECRET_ACCESS_KEY=(set)\n"));
        assert_non_null(strstr(dump, "AWS_SESSION_TOKEN=(set)\n"));
        assert_non_null(strstr(dump, "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"));

        /* The container URIs: past the first segment the path guards the endpoint. */
        char *envp3[] = { (char *) "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/0b5c-task-id",
                          (char *) "AWS_CONTAINER_CREDENTIALS_FULL_URI=https://u:pw@creds.example/v1/id-77", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp3), 0);
        _cleanup_free_ char *dump3 = NULL;
        assert_int_equal(lb_settings_dump(&f->ctx.settings, &dump3), 0);
        assert_non_null(strstr(dump3, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/...\n"));
        assert_non_null(strstr(dump3, "AWS_CONTAINER_CREDENTIALS_FULL_URI=https://creds.example/v1/...\n"));
        assert_null(strstr(dump3, "0b5c-task-id"));
        assert_null(strstr(dump3, "pw@"));
        char *envp4[] = { (char *) "AWS_CONTAINER_CREDENTIALS_FULL_URI=http://198.51.100.7/v1/id-88", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, envp4), -EINVAL);
        assert_non_null(strstr(logged(f), "'http://198.51.100.7/v1/...'"));
        assert_null(strstr(logged(f), "id-88"));
}

static void test_dump(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *dump = NULL;
        assert_int_equal(lb_settings_dump(&f->ctx.settings, &dump), 0);
        assert_non_null(strstr(dump, "LIFEBOAT_TAG_PREFIX=lifeboat\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_ATTACH_TIMEOUT=90s\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_POLL_INTERVAL=2s\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_FLUSH_TIMEOUT=100s\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_MAX_RESPONSE=8388608\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_FS=xfs\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_FLUENTD_RELOAD=true\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_RELOCATE=false\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_GROUP=\n"));
        assert_non_null(strstr(dump, "AWS_SECRET_ACCESS_KEY=(unset)\n"));
        assert_non_null(strstr(dump, "AWS_SESSION_TOKEN=(unset)\n"));
        assert_non_null(strstr(dump, "AWS_ENDPOINT_URL_EC2=\n"));
        assert_null(strstr(dump, "AWS_ENDPOINT_URL=")); /* the alias is not listed twice */
        assert_null(strstr(dump, "AWS_DEFAULT_REGION="));
        /* Every line is KEY=VALUE. */
        unsigned lines = 0;
        for (const char *p = dump; *p; p = strchr(p, '\n') + 1) {
                const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
                assert_non_null(nl);
                assert_true(eq && eq < nl);
                lines++;
        }
        assert_int_equal(lines, 57); /* one per field of struct lb_settings */
        assert_non_null(strstr(dump, "AWS_CONTAINER_AUTHORIZATION_TOKEN=(unset)\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_CONTAINER_ENDPOINT=http://169.254.170.2\n"));
        assert_null(strstr(dump, "AWS_SECURITY_TOKEN="));  /* aliases */
        assert_null(strstr(dump, "AWS_DEFAULT_PROFILE="));
}

/* The credential chain's settings: the container URL rule, header values, aliases, secrets. */
static void test_credential_chain_settings(void **state) {
        struct fixture *f = *state;
        const struct lb_settings *s = &f->ctx.settings;

        static const char *const allowed[] = {
                "https://creds.example.com/x", "http://127.0.0.1:8080/creds", "http://127.9.9.9/",
                "http://localhost/v1", "http://LOCALHOST:1", "http://[::1]:51679/creds", "http://169.254.170.2/v2/x",
                "http://169.254.170.23/v1/credentials", "http://[fd00:ec2::23]/v1/credentials",
                "http://[fd00:ec2:0::23]/",
        };
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i], "t"), 0);
                assert_string_equal(s->container_full_uri, allowed[i]);
        }
        static const char *const refused[] = {
                "http://10.0.0.1/creds", "http://169.254.169.254/", "http://169.254.170.3/", "http://example.com/",
                "http://127.0.0.1@example.com/", "http://[fd00:ec2::254]/", "ftp://127.0.0.1/", "http://",
                "http://localhost.example.com/",
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                reset_log(f);
                assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], "t"), -EINVAL);
                assert_non_null(strstr(logged(f), "169.254.170.23"));
        }
        /* The relative URI's base obeys the same rule (tests point it at loopback). */
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_CONTAINER_ENDPOINT", "http://10.1.2.3", "t"), -EINVAL);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_CONTAINER_ENDPOINT", "http://127.0.0.1:4000", "t"), 0);

        /* A header value may hold inner spaces, never a line break; it is a secret. */
        reset_log(f);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "Basic c2VjcmV0", "t"), 0);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok\r\nX-Evil: 1", "t"), -EINVAL);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONTAINER_AUTHORIZATION_TOKEN", " lead", "t"), -EINVAL);
        assert_string_equal(s->container_token, "Basic c2VjcmV0");
        assert_null(strstr(logged(f), "X-Evil"));
        assert_null(strstr(logged(f), "lead"));
        _cleanup_free_ char *dump = NULL;
        assert_int_equal(lb_settings_dump(s, &dump), 0);
        assert_non_null(strstr(dump, "AWS_CONTAINER_AUTHORIZATION_TOKEN=(set)\n"));
        assert_null(strstr(dump, "c2VjcmV0"));

        /* Aliases: AWS_PROFILE beats AWS_DEFAULT_PROFILE, AWS_SESSION_TOKEN beats AWS_SECURITY_TOKEN,
         * whatever their order; each alone is used. */
        char *env[] = { (char *) "AWS_DEFAULT_PROFILE=old", (char *) "AWS_PROFILE=new",
                        (char *) "AWS_SECURITY_TOKEN=legacy", (char *) "AWS_SESSION_TOKEN=current", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, env), 0);
        assert_string_equal(s->profile, "new");
        assert_string_equal(s->session_token, "current");
        char *legacy[] = { (char *) "AWS_DEFAULT_PROFILE=old", (char *) "AWS_SECURITY_TOKEN=legacy", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, legacy), 0);
        assert_string_equal(s->profile, "old");
        assert_string_equal(s->session_token, "legacy");

        /* Paths are absolute; empty values mean "not set". */
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_CONFIG_FILE", "relative/config", "t"), -EINVAL);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token", "t"), 0);
        char *empty[] = { (char *) "AWS_WEB_IDENTITY_TOKEN_FILE=", (char *) "AWS_ROLE_ARN=", NULL };
        assert_int_equal(lb_settings_apply_environment(&f->ctx, empty), 0);
        assert_string_equal(s->web_identity_token_file, "/var/run/token");  /* a lower level is kept */
        assert_null(s->role_arn);
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_ROLE_ARN", "arn:aws:iam::1:r/x", "t"), -EINVAL); /* < 20 */
        assert_int_equal(lb_settings_set(&f->ctx, "AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/x", "t"), 0);
}

/* What the dump prints reads back to the same settings. */
static void test_dump_round_trip(void **state) {
        struct fixture *f = *state;
        assert_int_equal(lb_settings_parse_config(&f->ctx,
                                                  "LIFEBOAT_GROUP=round.trip\n"
                                                  "LIFEBOAT_FS=ext4\n"
                                                  "LIFEBOAT_SETTLE=1500ms\n"
                                                  "LIFEBOAT_FLUSH_MARGIN=0\n"
                                                  "LIFEBOAT_BOOT_TIMEOUT=2h\n"
                                                  "LIFEBOAT_FLUENTD_RPC=\n"
                                                  "LIFEBOAT_BUFFER_DEVICE=/dev/sdf\n"
                                                  "AWS_REGION=us-east-1\n",
                                                  "r.conf"), 0);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_RUN_DIR", "/run/\"odd\"", "t"), 0);
        assert_int_equal(lb_settings_set(&f->ctx, "LIFEBOAT_DEV_ROOT", "/dev ", "t"), 0);
        _cleanup_free_ char *dump = NULL;
        assert_int_equal(lb_settings_dump(&f->ctx.settings, &dump), 0);
        assert_non_null(strstr(dump, "LIFEBOAT_SETTLE=1500ms\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_BOOT_TIMEOUT=2h\n"));
        assert_non_null(strstr(dump, "LIFEBOAT_FLUSH_MARGIN=0s\n"));

        struct lb_context other;
        assert_int_equal(lb_context_init(&other), 0);
        /* The secret placeholders are not values: drop those lines. */
        _cleanup_buf_ struct lb_buf filtered = {};
        _cleanup_free_ char *copy = strdup(dump);
        for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                if (!strstr(l, "(unset)") && !strstr(l, "(set)") && !lb_startswith(l, "LIFEBOAT_CONFIG="))
                        assert_int_equal(lb_buf_printf(&filtered, "%s\n", l), 0);
        assert_int_equal(lb_settings_parse_config(&other, filtered.data, "dump"), 0);
        _cleanup_free_ char *dump2 = NULL;
        assert_int_equal(lb_settings_dump(&other.settings, &dump2), 0);
        assert_string_equal(dump, dump2);
        assert_string_equal(other.settings.run_dir, "/run/\"odd\"");
        assert_string_equal(other.settings.dev_root, "/dev ");
        lb_context_done(&other);
}

static void test_describe(void **state) {
        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_settings_describe(&text), 0);
        assert_non_null(strstr(text, "LIFEBOAT_POLL_INTERVAL\n    IMDS and buffer polling interval.\n    Default: \"2s\". "
                                     "Expects a duration such as 90, 90s, 500ms, 10m or 1h, from 100ms to 1h.\n"));
        assert_non_null(strstr(text, "LIFEBOAT_GROUP\n"));
        assert_non_null(strstr(text, "Default: unset."));
        assert_non_null(strstr(text, "AWS_DEFAULT_REGION\n    region unless AWS_REGION is set."));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
                cmocka_unit_test(test_durations),
                cmocka_unit_test_setup_teardown(test_config_syntax, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_empty_quoted_duration, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_missing_equals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_unknown_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_config_invalid_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_valid_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_over_config, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_load_config_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_alias_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_endpoint_url_feeds_every_service, setup, teardown),
                cmocka_unit_test_setup_teardown(test_autoscaling_endpoint, setup, teardown),
                cmocka_unit_test(test_ecs_cluster_from_text),
                cmocka_unit_test_setup_teardown(test_group_from_ecs_cluster, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_explicit_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_group_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_finalize_nested_paths, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credentials_from_one_source, setup, teardown),
                cmocka_unit_test_setup_teardown(test_secrets_never_echoed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credential_chain_settings, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dump_round_trip, setup, teardown),
                cmocka_unit_test(test_describe),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
