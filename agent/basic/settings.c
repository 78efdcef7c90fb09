/* SPDX-License-Identifier: MIT */
/*
 * Settings: one table of every key lifeboat knows, and the code that fills a
 * struct lb_settings from defaults, a config file, the environment and flags.
 *
 * The config file has the syntax of /etc/ecs/ecs.config (what systemd's
 * EnvironmentFile= reads): KEY=VALUE lines, whole-line '#' comments, blank
 * lines. White space around the line, the key and the value is ignored. The
 * value is taken literally (no shell expansion, no escapes), except that a
 * value wrapped in one matching pair of double quotes loses them, as
 * EnvironmentFile= does. Single quotes are kept. A later line for the same
 * key wins. Unknown keys warn and are skipped; a line that is not KEY=VALUE or
 * an invalid value is an error naming FILE:LINE (all errors are reported, then
 * the call fails). Secret values are never echoed.
 *
 * Precedence: flags (lb_settings_set) > environment > config file > defaults.
 * Within one source, AWS_ENDPOINT_URL_EC2 (_CLOUDWATCH,
 * _AUTO_SCALING, _STS) beats AWS_ENDPOINT_URL and
 * AWS_REGION beats AWS_DEFAULT_REGION whatever their order. A key may have
 * several rows in the table: AWS_ENDPOINT_URL has one per service endpoint it
 * stands in for, each losing to that service's own key. An empty value of
 * an optional key (AWS_REGION=, LIFEBOAT_BUFFER_DEVICE=, ...) in a config file
 * or the environment means "not set here"; it does not clear a lower level.
 * LIFEBOAT_FLUENTD_RPC= (disable) and LIFEBOAT_FLUENTD_BACKUP_DIR= (don't
 * check fluentd's backup directory, the default) keep "" as their value.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"

#define CONFIG_FILE_MAX (1024u * 1024u)
#define TAG_PREFIX_MAX 64
#define ECHO_MAX 200
#define DAY_MS (24ull * 3600 * 1000)

enum setting_type {
        SETTING_TOKEN,          /* printable ASCII without white space; min..max = length */
        SETTING_PATH,           /* absolute path */
        SETTING_PLAIN_PATH,     /* absolute path fluentd configs can carry (lb_plain_path_valid) */
        SETTING_URL,            /* http:// or https:// */
        SETTING_AWS_URL,        /* https://, or http:// to this host: signed requests never travel in clear */
        SETTING_IMDS_URL,       /* the same, and http:// to IMDS's link-local addresses */
        SETTING_CONTAINER_URL,  /* an URL container credentials may come from (lb_container_url_allowed) */
        SETTING_HEADER,         /* an HTTP header value: printable ASCII and spaces, min..max = length */
        SETTING_UINT,           /* min..max */
        SETTING_DURATION,       /* milliseconds, min..max */
        SETTING_BOOL,
        SETTING_FS,
        SETTING_TAG_PREFIX,
        SETTING_GROUP,
        SETTING_DEVICE,
        SETTING_REGEX,
        SETTING_REGION,
        SETTING_METRIC_NAMESPACE,
        SETTING_HOOK_NAME,
};

enum {
        SETTING_SECRET = 1 << 0,        /* the value is never echoed */
        SETTING_EMPTY_OK = 1 << 1,      /* "" is a valid value and is kept as "" */
        SETTING_EMPTY_UNSETS = 1 << 2,  /* "" resets the field to NULL (unset) */
        SETTING_ENV_ONLY = 1 << 3,      /* ignored, with a warning, in a config file */
        SETTING_ALIAS = 1 << 4,         /* a lower-priority name: loses to "preferred" in the same source */
        SETTING_URL_PRIVATE = 1 << 5,   /* shown as lb_url_for_logs() does: the path guards an endpoint */
};

struct setting {
        const char *name;
        enum setting_type type;
        size_t offset;
        unsigned flags;
        const char *def;        /* default as text; NULL = unset */
        uint64_t min, max;
        const char *preferred;  /* for SETTING_ALIAS: the key that wins over this one */
        const char *description;
};

#define F(field) offsetof(struct lb_settings, field)

static const struct setting settings_table[] = {
        { "LIFEBOAT_CONFIG", SETTING_PATH, F(config_path), SETTING_ENV_ONLY,
          "/etc/lifeboat/lifeboat.conf", 0, 0, NULL, "the config file" },
        { "LIFEBOAT_ECS_CONFIG", SETTING_PATH, F(ecs_config), 0,
          "/etc/ecs/ecs.config", 0, 0, NULL, "where ECS_CLUSTER is read for the default group" },
        { "LIFEBOAT_GROUP", SETTING_GROUP, F(group), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "the group volumes belong to; default: ECS_CLUSTER" },
        { "LIFEBOAT_TAG_PREFIX", SETTING_TAG_PREFIX, F(tag_prefix), 0,
          "lifeboat", 0, 0, NULL, "prefix of every tag key lifeboat writes" },
        { "LIFEBOAT_BUFFER_DEVICE", SETTING_DEVICE, F(buffer_device), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "device name of this instance's buffer volume; unset = recovery only" },
        { "LIFEBOAT_BUFFER_MOUNT", SETTING_PATH, F(buffer_mount), 0,
          "/var/lib/lifeboat/buffer", 0, 0, NULL, "where the buffer volume is mounted" },
        { "LIFEBOAT_FS", SETTING_FS, F(fs), 0,
          "xfs", 0, 0, NULL, "file system of new buffer volumes" },
        { "LIFEBOAT_RECOVERY_ROOT", SETTING_PLAIN_PATH, F(recovery_root), 0,
          "/var/lib/lifeboat/recovery", 0, 0, NULL, "where recovered volumes are mounted" },
        { "LIFEBOAT_MAX_RECOVER", SETTING_UINT, F(max_recover), 0,
          "4", 0, 64, NULL, "most volumes recovered at once" },
        { "LIFEBOAT_ATTACHMENT_SLOTS", SETTING_UINT, F(attachment_slots), 0,
          "27", 1, 128, NULL, "volume attachment slots of this instance type" },
        { "LIFEBOAT_ATTACH_TIMEOUT", SETTING_DURATION, F(attach_timeout_ms), 0,
          "90s", 1, DAY_MS, NULL, "give up on an attachment stuck in attaching" },
        { "LIFEBOAT_DEVICE_TIMEOUT", SETTING_DURATION, F(device_timeout_ms), 0,
          "30s", 1, DAY_MS, NULL, "wait for an attached volume's block device" },
        { "LIFEBOAT_BOOT_TIMEOUT", SETTING_DURATION, F(boot_timeout_ms), 0,
          "90s", 1, DAY_MS, NULL, "total time boot may take" },
        { "LIFEBOAT_SYSFS_ROOT", SETTING_PATH, F(sysfs_root), 0,
          "/sys", 0, 0, NULL, "sysfs mount point" },
        { "LIFEBOAT_DEV_ROOT", SETTING_PATH, F(dev_root), 0,
          "/dev", 0, 0, NULL, "device directory" },
        { "LIFEBOAT_RUN_DIR", SETTING_PATH, F(run_dir), 0,
          "/run/lifeboat", 0, 0, NULL, "runtime state directory" },
        { "LIFEBOAT_STATE_DIR", SETTING_PATH, F(state_dir), 0,
          "/var/lib/lifeboat/state", 0, 0, NULL, "state that must survive a crash (mount markers)" },
        { "LIFEBOAT_FLUENTD_TEMPLATE", SETTING_PATH, F(fluentd_template), 0,
          "/etc/lifeboat/fluentd-recovery.conf.in", 0, 0, NULL, "template of recovery snippets" },
        { "LIFEBOAT_FLUENTD_CONF_DIR", SETTING_PATH, F(fluentd_conf_dir), 0,
          "/etc/fluent/recovery.d", 0, 0, NULL, "where recovery snippets are written" },
        { "LIFEBOAT_FLUENTD_RPC", SETTING_URL, F(fluentd_rpc), SETTING_EMPTY_OK,
          "http://127.0.0.1:24444", 0, 0, NULL, "fluentd rpc_endpoint; empty disables" },
        { "LIFEBOAT_FLUENTD_RELOAD", SETTING_BOOL, F(fluentd_reload), 0,
          "true", 0, 0, NULL, "ask fluentd to reload after snippets change" },
        { "LIFEBOAT_CHUNK_PATTERN", SETTING_REGEX, F(chunk_pattern), 0,
          "\\.(b|q)[0-9a-f]+\\.(log|buf)$", 0, 0, NULL, "file names of fluentd buffer chunks" },
        /* fluentd moves chunks it cannot read to <root_dir>/backup; root_dir is not
         * known here, so by default nothing is checked. */
        { "LIFEBOAT_FLUENTD_BACKUP_DIR", SETTING_PATH, F(fluentd_backup_dir), SETTING_EMPTY_OK,
          "", 0, 0, NULL, "fluentd's backup directory; empty = not checked" },
        { "LIFEBOAT_POLL_INTERVAL", SETTING_DURATION, F(poll_interval_ms), 0,
          "2s", 100, 3600 * 1000, NULL, "IMDS and buffer polling interval" },
        { "LIFEBOAT_FLUSH_TIMEOUT", SETTING_DURATION, F(flush_timeout_ms), 0,
          "100s", 1, DAY_MS, NULL, "longest wait for a flush" },
        { "LIFEBOAT_FLUSH_MARGIN", SETTING_DURATION, F(flush_margin_ms), 0,
          "10s", 0, DAY_MS, NULL, "stop waiting this long before the interruption time" },
        { "LIFEBOAT_SETTLE", SETTING_DURATION, F(settle_ms), 0,
          "30s", 0, DAY_MS, NULL, "a recovered volume must stay empty this long" },
        { "LIFEBOAT_LIFECYCLE_HOOK", SETTING_HOOK_NAME, F(lifecycle_hook), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "the Auto Scaling termination lifecycle hook watch holds while it drains; unset = none" },
        { "LIFEBOAT_LIFECYCLE_TIMEOUT", SETTING_DURATION, F(lifecycle_timeout_ms), 0,
          "15m", 1000, 2 * DAY_MS, NULL, "longest a scale-in is held for a drain" },
        /* Off unless asked for: relocation creates snapshots and volumes (the shipped
         * lifeboat-reap.service turns it on). */
        { "LIFEBOAT_RELOCATE", SETTING_BOOL, F(relocate), 0,
          "false", 0, 0, NULL, "reap moves stranded volumes to a zone where the group runs" },
        { "LIFEBOAT_IMDS_TIMEOUT", SETTING_DURATION, F(imds_timeout_ms), 0,
          "1s", 1, 3600 * 1000, NULL, "per IMDS request" },
        { "LIFEBOAT_EC2_TIMEOUT", SETTING_DURATION, F(ec2_timeout_ms), 0,
          "10s", 1, 3600 * 1000, NULL, "per EC2 request" },
        { "LIFEBOAT_MAX_RESPONSE", SETTING_UINT, F(max_response_bytes), 0,
          "8388608", 4096, 1024ull * 1024 * 1024, NULL, "cap on any HTTP answer body, in bytes" },
        { "LIFEBOAT_METRICS", SETTING_BOOL, F(metrics), 0,
          "false", 0, 0, NULL, "reap publishes its counts to CloudWatch (as reap --metrics)" },
        { "LIFEBOAT_METRICS_NAMESPACE", SETTING_METRIC_NAMESPACE, F(metrics_namespace), 0,
          "Lifeboat", 0, 0, NULL, "CloudWatch namespace of reap's metrics" },

        { "AWS_EC2_METADATA_SERVICE_ENDPOINT", SETTING_IMDS_URL, F(imds_endpoint), 0,
          "http://169.254.169.254", 0, 0, NULL, "IMDS endpoint" },
        { "AWS_EC2_METADATA_DISABLED", SETTING_BOOL, F(imds_disabled), 0,
          "false", 0, 0, NULL, "never contact IMDS" },
        { "AWS_ENDPOINT_URL_EC2", SETTING_AWS_URL, F(ec2_endpoint), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "EC2 endpoint; unset = https://ec2.REGION.amazonaws.com" },
        { "AWS_ENDPOINT_URL", SETTING_AWS_URL, F(ec2_endpoint), SETTING_EMPTY_UNSETS | SETTING_ALIAS,
          NULL, 0, 0, "AWS_ENDPOINT_URL_EC2", "EC2 endpoint unless AWS_ENDPOINT_URL_EC2 is set" },
        /* A second row of AWS_ENDPOINT_URL: it stands in for every service's endpoint. */
        { "AWS_ENDPOINT_URL", SETTING_AWS_URL, F(cloudwatch_endpoint), SETTING_EMPTY_UNSETS | SETTING_ALIAS,
          NULL, 0, 0, "AWS_ENDPOINT_URL_CLOUDWATCH", "CloudWatch endpoint unless AWS_ENDPOINT_URL_CLOUDWATCH is set" },
        { "AWS_ENDPOINT_URL_CLOUDWATCH", SETTING_AWS_URL, F(cloudwatch_endpoint), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "CloudWatch endpoint; unset = https://monitoring.REGION.amazonaws.com" },
        { "AWS_ENDPOINT_URL", SETTING_AWS_URL, F(autoscaling_endpoint), SETTING_EMPTY_UNSETS | SETTING_ALIAS,
          NULL, 0, 0, "AWS_ENDPOINT_URL_AUTO_SCALING", "Auto Scaling endpoint unless AWS_ENDPOINT_URL_AUTO_SCALING is set" },
        { "AWS_ENDPOINT_URL_AUTO_SCALING", SETTING_AWS_URL, F(autoscaling_endpoint), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "Auto Scaling endpoint; unset = https://autoscaling.REGION.amazonaws.com" },
        { "AWS_REGION", SETTING_REGION, F(region), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "region; unset = from IMDS" },
        { "AWS_DEFAULT_REGION", SETTING_REGION, F(region), SETTING_EMPTY_UNSETS | SETTING_ALIAS,
          NULL, 0, 0, "AWS_REGION", "region unless AWS_REGION is set" },
        { "AWS_ACCESS_KEY_ID", SETTING_TOKEN, F(access_key_id), SETTING_EMPTY_UNSETS,
          NULL, 1, 127, NULL, "access key id; unset = the next source of the credential chain" },
        { "AWS_SECRET_ACCESS_KEY", SETTING_TOKEN, F(secret_access_key), SETTING_EMPTY_UNSETS | SETTING_SECRET,
          NULL, 1, 127, NULL, "secret access key" },
        { "AWS_SESSION_TOKEN", SETTING_TOKEN, F(session_token), SETTING_EMPTY_UNSETS | SETTING_SECRET,
          NULL, 1, 65536, NULL, "session token" },
        /* The rest of the credential chain (lifeboat/aws/creds-chain.h), in its order. */
        { "AWS_SECURITY_TOKEN", SETTING_TOKEN, F(session_token), SETTING_EMPTY_UNSETS | SETTING_SECRET | SETTING_ALIAS,
          NULL, 1, 65536, "AWS_SESSION_TOKEN", "session token (the legacy name) unless AWS_SESSION_TOKEN is set" },
        { "AWS_ROLE_ARN", SETTING_TOKEN, F(role_arn), SETTING_EMPTY_UNSETS,
          NULL, 20, 2048, NULL, "role to assume with the web identity token" },
        { "AWS_WEB_IDENTITY_TOKEN_FILE", SETTING_PATH, F(web_identity_token_file), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "file holding the web identity token, read at every refresh" },
        { "AWS_ROLE_SESSION_NAME", SETTING_TOKEN, F(role_session_name), SETTING_EMPTY_UNSETS,
          NULL, 2, 64, NULL, "session name of the assumed role; unset = lifeboat-EPOCH" },
        { "AWS_ENDPOINT_URL", SETTING_AWS_URL, F(sts_endpoint), SETTING_EMPTY_UNSETS | SETTING_ALIAS,
          NULL, 0, 0, "AWS_ENDPOINT_URL_STS", "STS endpoint unless AWS_ENDPOINT_URL_STS is set" },
        { "AWS_ENDPOINT_URL_STS", SETTING_AWS_URL, F(sts_endpoint), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "STS endpoint; unset = https://sts.REGION.amazonaws.com" },
        { "AWS_PROFILE", SETTING_TOKEN, F(profile), SETTING_EMPTY_UNSETS,
          NULL, 1, 128, NULL, "profile of the shared config and credentials files; unset = default" },
        { "AWS_DEFAULT_PROFILE", SETTING_TOKEN, F(profile), SETTING_EMPTY_UNSETS | SETTING_ALIAS,
          NULL, 1, 128, "AWS_PROFILE", "profile unless AWS_PROFILE is set" },
        { "AWS_SHARED_CREDENTIALS_FILE", SETTING_PATH, F(shared_credentials_file), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "the shared credentials file; unset = ~/.aws/credentials" },
        { "AWS_CONFIG_FILE", SETTING_PATH, F(aws_config_file), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "the shared config file (profiles, region); unset = ~/.aws/config" },
        { "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", SETTING_TOKEN, F(container_relative_uri),
          SETTING_EMPTY_UNSETS | SETTING_URL_PRIVATE,
          NULL, 1, 2048, NULL, "path of the container credentials below LIFEBOAT_CONTAINER_ENDPOINT (ECS sets it)" },
        { "AWS_CONTAINER_CREDENTIALS_FULL_URI", SETTING_CONTAINER_URL, F(container_full_uri),
          SETTING_EMPTY_UNSETS | SETTING_URL_PRIVATE,
          NULL, 0, 0, NULL, "URL of the container credentials unless the relative URI is set" },
        { "AWS_CONTAINER_AUTHORIZATION_TOKEN", SETTING_HEADER, F(container_token), SETTING_EMPTY_UNSETS | SETTING_SECRET,
          NULL, 1, 16384, NULL, "Authorization header sent for container credentials" },
        { "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", SETTING_PATH, F(container_token_file), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "file holding that header, read at every refresh (wins over the variable)" },
        { "LIFEBOAT_CONTAINER_ENDPOINT", SETTING_CONTAINER_URL, F(container_endpoint), 0,
          "http://169.254.170.2", 0, 0, NULL, "base of the relative container credentials URI (tests point it at a stand-in)" },
        { "AWS_CA_BUNDLE", SETTING_PATH, F(ca_bundle), SETTING_EMPTY_UNSETS,
          NULL, 0, 0, NULL, "CA certificates for HTTPS" },
};

#undef F

/* The alias rule keeps, per source, which entries that source set so far. */
struct source_seen {
        bool entry[ELEMENTSOF(settings_table)];
};

/* ---- the table ---- */

static const struct setting *setting_find(const char *name, size_t *ret_index) {
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++)
                if (streq(settings_table[i].name, name)) {
                        if (ret_index)
                                *ret_index = i;
                        return &settings_table[i];
                }
        return NULL;
}

static bool type_is_string(enum setting_type t) {
        return t != SETTING_UINT && t != SETTING_DURATION && t != SETTING_BOOL && t != SETTING_FS;
}

static void *field(struct lb_settings *s, const struct setting *st) {
        return (char *) s + st->offset;
}

static const void *field_const(const struct lb_settings *s, const struct setting *st) {
        return (const char *) s + st->offset;
}

/* ---- value checks ---- */

static bool is_ctrl(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

static bool token_valid(const char *v, uint64_t min, uint64_t max) {
        size_t n = strlen(v);
        if (n < min || n > max)
                return false;
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

/* An absolute path without control characters or ".." components (paths are
 * compared as strings, so "a/../b" must not sneak past a check). */
static bool path_valid(const char *v) {
        size_t n = strlen(v);
        if (n == 0 || v[0] != '/' || n >= PATH_MAX)
                return false;
        for (const char *p = v; *p; p++)
                if (is_ctrl((unsigned char) *p))
                        return false;
        for (const char *p = v; (p = strstr(p, "/..")); p += 3)
                if (p[3] == '\0' || p[3] == '/')
                        return false;
        return true;
}

/* lb_plain_path_valid() of the path without trailing slashes ("/" itself is not plain). */
static bool plain_path_valid_trimmed(const char *v) {
        char p[PATH_MAX];
        if (lb_strscpy(p, sizeof p, v) < 0)
                return false;
        for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--)
                p[n - 1] = '\0';
        return lb_plain_path_valid(p);
}

static bool url_valid(const char *v) {
        const char *rest;
        if (strncasecmp(v, "http://", 7) == 0)
                rest = v + 7;
        else if (strncasecmp(v, "https://", 8) == 0)
                rest = v + 8;
        else
                return false;
        if (*rest == '\0' || *rest == '/')
                return false; /* no host */
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f || *p == '"')
                        return false;
        return true;
}

/* A header value: printable ASCII and inner spaces, no line break (it goes into a request). */
static bool header_valid(const char *v, uint64_t min, uint64_t max) {
        size_t n = strlen(v);
        if (n < min || n > max || (n > 0 && (v[0] == ' ' || v[n - 1] == ' ')))
                return false;
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

static bool tag_prefix_valid(const char *v) {
        size_t n = strlen(v);
        if (n < 1 || n > TAG_PREFIX_MAX)
                return false;
        if (strncasecmp(v, "aws:", 4) == 0) /* reserved by AWS */
                return false;
        for (const char *p = v; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("_.:/=+-@", *p))
                        return false;
        return true;
}

static bool device_valid(const char *v) {
        const char *rest;
        if (lb_startswith(v, "/dev/sd"))
                rest = v + 7;
        else if (lb_startswith(v, "/dev/xvd"))
                rest = v + 8;
        else
                return false;
        size_t n = strlen(rest);
        if (n < 1 || n > 2)
                return false;
        for (const char *p = rest; *p; p++)
                if (*p < 'a' || *p > 'z')
                        return false;
        return true;
}

static bool regex_valid(const char *v) {
        regex_t re;
        if (isempty(v) || regcomp(&re, v, REG_EXTENDED | REG_NOSUB) != 0)
                return false;
        regfree(&re);
        return true;
}

/* What a valid value looks like, for error messages. */
static void setting_expected(const struct setting *st, char *buf, size_t size) {
        char a[32], b[32];
        const char *empty = (st->flags & (SETTING_EMPTY_OK | SETTING_EMPTY_UNSETS)) ? ", or empty" : "";

        switch (st->type) {
        case SETTING_TOKEN:
                (void) lb_snprintf(buf, size, "%" PRIu64 " to %" PRIu64 " printable characters without spaces%s",
                                   st->min, st->max, empty);
                break;
        case SETTING_PATH:
                (void) lb_snprintf(buf, size, "an absolute path without '..'%s", empty);
                break;
        case SETTING_PLAIN_PATH:
                (void) lb_snprintf(buf, size, "an absolute path of A-Z a-z 0-9 / _ . - without empty, . or .. "
                                   "components (it is written into fluentd configs)%s", empty);
                break;
        case SETTING_URL:
                (void) lb_snprintf(buf, size, "an http:// or https:// URL%s", empty);
                break;
        case SETTING_AWS_URL:
                (void) lb_snprintf(buf, size, "an https:// URL, or http:// to this host only (127.0.0.0/8, [::1], "
                                   "localhost): signed requests and tokens never travel in clear text%s", empty);
                break;
        case SETTING_IMDS_URL:
                (void) lb_snprintf(buf, size, "an https:// URL, or http:// to IMDS (169.254.169.254, "
                                   "[fd00:ec2::254]) or to this host only (127.0.0.0/8, [::1], localhost)%s", empty);
                break;
        case SETTING_CONTAINER_URL:
                (void) lb_snprintf(buf, size, "an https:// URL, or http:// to 127.0.0.0/8, [::1], localhost, "
                                   "169.254.170.2, 169.254.170.23 or [fd00:ec2::23] (as the AWS SDKs allow)%s", empty);
                break;
        case SETTING_HEADER:
                (void) lb_snprintf(buf, size, "%" PRIu64 " to %" PRIu64 " printable characters (inner spaces allowed)%s",
                                   st->min, st->max, empty);
                break;
        case SETTING_UINT:
                (void) lb_snprintf(buf, size, "an integer from %" PRIu64 " to %" PRIu64, st->min, st->max);
                break;
        case SETTING_DURATION:
                (void) lb_format_duration_ms(st->min, a, sizeof a);
                (void) lb_format_duration_ms(st->max, b, sizeof b);
                (void) lb_snprintf(buf, size, "a duration such as 90, 90s, 500ms, 10m or 1h, from %s to %s", a, b);
                break;
        case SETTING_BOOL:
                (void) lb_strscpy(buf, size, "true or false (also yes/no, on/off, 1/0)");
                break;
        case SETTING_FS:
                (void) lb_strscpy(buf, size, "xfs or ext4");
                break;
        case SETTING_TAG_PREFIX:
                (void) lb_strscpy(buf, size, "1 to 64 characters of A-Z a-z 0-9 _ . : / = + - @, not starting with aws:");
                break;
        case SETTING_GROUP:
                (void) lb_strscpy(buf, size, "1 to 255 characters of A-Z a-z 0-9 _ . : -");
                break;
        case SETTING_DEVICE:
                (void) lb_strscpy(buf, size, "/dev/sdX, /dev/sdXY, /dev/xvdX or /dev/xvdXY with X, Y in a-z, or empty");
                break;
        case SETTING_REGEX:
                (void) lb_strscpy(buf, size, "a POSIX extended regular expression");
                break;
        case SETTING_REGION:
                (void) lb_strscpy(buf, size, "an AWS region such as us-east-1, or empty");
                break;
        case SETTING_METRIC_NAMESPACE:
                (void) lb_strscpy(buf, size, "1 to 255 characters of A-Z a-z 0-9 space . _ / # : -, not starting "
                                  "with : or AWS/");
                break;
        case SETTING_HOOK_NAME:
                (void) lb_strscpy(buf, size, "a lifecycle hook name: 1 to 255 of A-Z a-z 0-9 _ - /, or empty");
                break;
        }
}

struct value {
        char *str;              /* string types; NULL = unset */
        uint64_t u;
        bool b;
        enum lb_fs_type fs;
};

/* Checks and converts the text of one setting: 0, -EINVAL (invalid) or -ENOMEM. */
static int setting_parse(const struct setting *st, const char *text, struct value *ret) {
        struct value v = {};
        bool ok;

        if (text[0] == '\0' && (st->flags & SETTING_EMPTY_UNSETS)) {
                *ret = v;
                return 0;
        }
        if (text[0] == '\0' && (st->flags & SETTING_EMPTY_OK)) {
                v.str = strdup("");
                if (!v.str)
                        return -ENOMEM;
                *ret = v;
                return 0;
        }

        switch (st->type) {
        case SETTING_UINT:
                if (lb_parse_uint(text, st->min, st->max, &v.u) < 0)
                        return -EINVAL;
                *ret = v;
                return 0;
        case SETTING_DURATION:
                if (lb_parse_duration_ms(text, &v.u) < 0 || v.u < st->min || v.u > st->max)
                        return -EINVAL;
                *ret = v;
                return 0;
        case SETTING_BOOL:
                if (lb_parse_bool(text, &v.b) < 0)
                        return -EINVAL;
                *ret = v;
                return 0;
        case SETTING_FS:
                if (streq(text, "xfs"))
                        v.fs = LB_FS_XFS;
                else if (streq(text, "ext4"))
                        v.fs = LB_FS_EXT4;
                else
                        return -EINVAL;
                *ret = v;
                return 0;
        case SETTING_TOKEN:
                ok = token_valid(text, st->min, st->max);
                break;
        case SETTING_PATH:
                ok = path_valid(text);
                break;
        case SETTING_PLAIN_PATH:
                /* Trailing slashes are dropped below; the rule sees the path without them. */
                ok = path_valid(text) && plain_path_valid_trimmed(text);
                break;
        case SETTING_URL:
                ok = url_valid(text);
                break;
        case SETTING_AWS_URL:
        case SETTING_IMDS_URL:
                /* The rule for clear text lives with the other naming rules (basic/names.c). */
                ok = url_valid(text) && lb_url_cleartext_allowed(text, st->type == SETTING_IMDS_URL);
                break;
        case SETTING_CONTAINER_URL:
                /* The rule lives with the other naming rules (basic/names.c). */
                ok = url_valid(text) && lb_container_url_allowed(text);
                break;
        case SETTING_HEADER:
                ok = header_valid(text, st->min, st->max);
                break;
        case SETTING_TAG_PREFIX:
                ok = tag_prefix_valid(text);
                break;
        case SETTING_GROUP:
                ok = lb_group_valid(text);
                break;
        case SETTING_DEVICE:
                ok = device_valid(text);
                break;
        case SETTING_REGEX:
                ok = regex_valid(text);
                break;
        case SETTING_REGION:
                ok = lb_region_valid(text);
                break;
        case SETTING_METRIC_NAMESPACE:
                ok = lb_metric_namespace_valid(text);
                break;
        case SETTING_HOOK_NAME:
                ok = lb_lifecycle_hook_name_valid(text);
                break;
        default:
                ok = false;
        }
        if (!ok)
                return -EINVAL;

        v.str = strdup(text);
        if (!v.str)
                return -ENOMEM;
        if (st->type == SETTING_PATH || st->type == SETTING_PLAIN_PATH) {
                /* "/a/b/" -> "/a/b", so paths compare as strings; "/" stays. */
                size_t n = strlen(v.str);
                while (n > 1 && v.str[n - 1] == '/')
                        v.str[--n] = '\0';
        }
        *ret = v;
        return 0;
}

/* Moves v into the field. */
static void setting_store(struct lb_settings *s, const struct setting *st, struct value *v) {
        void *f = field(s, st);

        switch (st->type) {
        case SETTING_UINT:
        case SETTING_DURATION:
                *(uint64_t *) f = v->u;
                break;
        case SETTING_BOOL:
                *(bool *) f = v->b;
                break;
        case SETTING_FS:
                *(enum lb_fs_type *) f = v->fs;
                break;
        default:
                lb_free_secret(*(char **) f);
                *(char **) f = TAKE_PTR(v->str);
        }
}

/* A value as it may appear in a message: non-printable bytes as '?', long values cut. */
static void echo_value(const char *v, char *buf, size_t size) {
        size_t i = 0;
        for (; v[i] && i + 1 < size && i < ECHO_MAX; i++)
                buf[i] = ((unsigned char) v[i] < 0x20 || (unsigned char) v[i] >= 0x7f) ? '?' : v[i];
        buf[i] = '\0';
        if (v[i] != '\0' && size > 4 && i >= 3)
                memcpy(buf + i - 3, "...", 3);
}

static int log_oom(const struct lb_context *ctx) {
        lb_err(ctx, "Out of memory.");
        return -ENOMEM;
}

/*
 * Sets one entry. seen is the per-source bookkeeping (NULL for a single,
 * explicit lb_settings_set()): within one source the preferred key of an
 * alias wins whatever the order, and an empty value of an optional key means
 * "not given here" rather than overriding a lower level.
 */
static int setting_apply(struct lb_context *ctx, const struct setting *st, size_t index, const char *text,
                         const char *origin, struct source_seen *seen) {
        struct value v = {};
        int r = setting_parse(st, text, &v);
        if (r == -ENOMEM)
                return log_oom(ctx);
        if (r < 0) {
                char expected[256];
                setting_expected(st, expected, sizeof expected);
                if (st->flags & SETTING_SECRET)
                        lb_err(ctx, "%s: invalid value for %s (expected %s)", origin, st->name, expected);
                else {
                        char echo[ECHO_MAX + 1], shown[ECHO_MAX + 1];
                        if (st->flags & SETTING_URL_PRIVATE) {
                                lb_url_for_logs(text, shown, sizeof shown);
                                text = shown;
                        }
                        echo_value(text, echo, sizeof echo);
                        lb_err(ctx, "%s: invalid value for %s: '%s' (expected %s)", origin, st->name, echo,
                               expected);
                }
                return -EINVAL;
        }

        if (seen) {
                if (text[0] == '\0' && (st->flags & SETTING_EMPTY_UNSETS))
                        return 0;
                if (st->flags & SETTING_ALIAS) {
                        size_t p;
                        if (setting_find(st->preferred, &p) && seen->entry[p]) {
                                lb_debug(ctx, "%s: %s ignored, %s is set", origin, st->name, st->preferred);
                                lb_free_secret(v.str);
                                return 0;
                        }
                }
                seen->entry[index] = true;
        }
        setting_store(&ctx->settings, st, &v);
        return 0;
}

/* Sets the entry at index and every later entry of the same key (a key with one row per field
 * it stands in for). The rows of a key share its type, so a bad value fails on the first. */
static int setting_apply_key(struct lb_context *ctx, size_t index, const char *text, const char *origin,
                             struct source_seen *seen) {
        const char *name = settings_table[index].name;
        for (size_t i = index; i < ELEMENTSOF(settings_table); i++) {
                if (!streq(settings_table[i].name, name))
                        continue;
                int r = setting_apply(ctx, &settings_table[i], i, text, origin, seen);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- lifecycle ---- */

int lb_settings_init_defaults(struct lb_settings *s) {
        *s = (struct lb_settings) {};
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                const struct setting *st = &settings_table[i];
                if (!st->def || (st->flags & SETTING_ALIAS))
                        continue;
                struct value v = {};
                int r = setting_parse(st, st->def, &v);
                if (r < 0) {
                        lb_settings_done(s);
                        return r;
                }
                setting_store(s, st, &v);
        }
        return 0;
}

void lb_settings_done(struct lb_settings *s) {
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                const struct setting *st = &settings_table[i];
                if (!type_is_string(st->type))
                        continue;
                char **f = field(s, st);
                lb_free_secret(*f); /* aliases share the field: freed once, then NULL */
                *f = NULL;
        }
        *s = (struct lb_settings) {};
}

/* ---- sources ---- */

static bool key_valid(const char *k) {
        if (!isalpha((unsigned char) k[0]) && k[0] != '_')
                return false;
        for (const char *p = k; *p; p++)
                if (!isalnum((unsigned char) *p) && *p != '_')
                        return false;
        return true;
}

/* Splits one line in place: 1 with key and value, 0 for a blank or comment
 * line, -EINVAL when it is not KEY=VALUE. */
static int split_line(char *line, char **ret_key, char **ret_value) {
        line = lb_strstrip(line);
        if (line[0] == '\0' || line[0] == '#')
                return 0;
        char *eq = strchr(line, '=');
        if (!eq)
                return -EINVAL;
        *eq = '\0';
        char *key = lb_strstrip(line);
        char *value = lb_strstrip(eq + 1);
        if (!key_valid(key))
                return -EINVAL;
        size_t n = strlen(value);
        if (n >= 2 && value[0] == '"' && value[n - 1] == '"') {
                value[n - 1] = '\0';
                value++;
        }
        *ret_key = key;
        *ret_value = value;
        return 1;
}

/* Cuts the next line out of *p (NUL-terminating it) and advances *p; NULL at the end. */
static char *next_line(char **p) {
        char *line = *p;
        if (!line)
                return NULL;
        char *nl = strchr(line, '\n');
        if (nl) {
                *nl = '\0';
                *p = nl + 1;
        } else
                *p = NULL;
        return line;
}

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN make one set of credentials,
 * taken whole from one source as the SDKs take them: a source that sets any of them unsets the
 * others it does not set (the environment's key pair never signs with a stale token from the
 * config file). */
static void credentials_from_one_source(struct lb_context *ctx, const struct source_seen *seen) {
        static const char *const names[] = {
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
        };
        char **fields[] = {
                &ctx->settings.access_key_id, &ctx->settings.secret_access_key, &ctx->settings.session_token,
                &ctx->settings.session_token,
        };
        bool set[ELEMENTSOF(names)] = {}, any = false;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                size_t index;
                set[i] = setting_find(names[i], &index) && seen->entry[index];
                any = any || set[i];
        }
        if (!any)
                return;
        set[2] = set[3] = set[2] || set[3];     /* the token and its legacy name share a field */
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (!set[i] && *fields[i]) {
                        lb_free_secret(*fields[i]);
                        *fields[i] = NULL;
                }
}

/* lb_settings_parse_config(), telling whether the text set a secret (a key or a token). */
static int parse_config(struct lb_context *ctx, const char *text, const char *origin, bool *ret_secret) {
        size_t len = strlen(text);
        _cleanup_free_ char *copy = strdup(text);
        if (!copy)
                return log_oom(ctx);

        struct source_seen seen = {};
        unsigned lineno = 0;
        int ret = 0;
        char *p = copy, *line;
        while ((line = next_line(&p))) {
                char where[PATH_MAX + 32], *key, *value;
                lineno++;
                (void) lb_snprintf(where, sizeof where, "%s:%u", origin, lineno); /* cut when too long */

                int r = split_line(line, &key, &value);
                if (r == 0)
                        continue;
                if (r < 0) {
                        /* The line is not echoed: it might be a secret with a typo. */
                        lb_err(ctx, "%s: expected KEY=VALUE", where);
                        ret = ret < 0 ? ret : -EINVAL;
                        continue;
                }

                size_t index;
                const struct setting *st = setting_find(key, &index);
                if (!st) {
                        lb_warn(ctx, "%s: unknown key %s, ignored", where, key);
                        continue;
                }
                if (st->flags & SETTING_ENV_ONLY) {
                        lb_warn(ctx, "%s: %s has no effect in a config file, ignored", where, key);
                        continue;
                }
                r = setting_apply_key(ctx, index, value, where, &seen);
                if (r == -ENOMEM) {
                        ret = r;
                        break;
                }
                if (r < 0 && ret == 0)
                        ret = r;
                if ((st->flags & SETTING_SECRET) && value[0] != '\0')
                        *ret_secret = true;
        }
        explicit_bzero(copy, len); /* the text may hold a secret key */
        credentials_from_one_source(ctx, &seen);
        return ret;
}

int lb_settings_parse_config(struct lb_context *ctx, const char *text, const char *origin) {
        bool secret = false;
        return parse_config(ctx, text, origin, &secret);
}

/* A secret in a file other users may read is theirs too: said, not refused (the file works,
 * and refusing would stop boot recovery on a mode). */
static void warn_readable_secret(const struct lb_context *ctx, const char *path) {
        struct stat st;
        if (stat(path, &st) < 0 || (st.st_mode & (S_IRGRP | S_IROTH)) == 0)
                return;
        lb_warn(ctx, "%s holds AWS credentials and other users may read it (mode %04o): chmod 600 %s", path,
                (unsigned) (st.st_mode & 07777), path);
}

int lb_settings_load_config_file(struct lb_context *ctx, const char *path, bool missing_ok) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = lb_read_file(path, CONFIG_FILE_MAX, &data, &len);
        if (r == -ENOENT && missing_ok) {
                lb_debug(ctx, "%s: not found, using defaults and the environment", path);
                return 0;
        }
        if (r == -EFBIG) {
                lb_err(ctx, "%s: larger than %u bytes, not a config file", path, CONFIG_FILE_MAX);
                return r;
        }
        if (r < 0) {
                lb_err(ctx, "Failed to read %s: %s", path, strerror(-r));
                return r;
        }
        if (strlen(data) != len) {
                lb_err(ctx, "%s: contains a NUL byte, not a config file", path);
                explicit_bzero(data, len);
                return -EINVAL;
        }
        bool secret = false;
        r = parse_config(ctx, data, path, &secret);
        explicit_bzero(data, len);
        if (secret)
                warn_readable_secret(ctx, path);
        return r;
}

int lb_settings_apply_environment(struct lb_context *ctx, char *const *envp) {
        if (!envp)
                return 0;

        struct source_seen seen = {};
        int ret = 0;
        for (char *const *e = envp; *e; e++) {
                const char *eq = strchr(*e, '=');
                if (!eq)
                        continue;
                char name[128];
                size_t n = (size_t) (eq - *e);
                if (n >= sizeof name)
                        continue; /* longer than any name we know */
                memcpy(name, *e, n);
                name[n] = '\0';

                size_t index;
                const struct setting *st = setting_find(name, &index);
                if (!st) {
                        if (lb_startswith(name, "LIFEBOAT_")) {
                                char echo[ECHO_MAX + 1];
                                echo_value(name, echo, sizeof echo);
                                lb_warn(ctx, "environment: unknown variable %s, ignored", echo);
                        }
                        continue;
                }
                int r = setting_apply_key(ctx, index, eq + 1, "environment", &seen);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 && ret == 0)
                        ret = r;
        }
        credentials_from_one_source(ctx, &seen);
        return ret;
}

int lb_settings_set(struct lb_context *ctx, const char *key, const char *value, const char *origin) {
        size_t index;
        const struct setting *st = setting_find(key, &index);
        if (!st) {
                lb_err(ctx, "%s: unknown setting %s", origin, key);
                return -ENOENT;
        }
        if (!value)
                return -EINVAL;
        return setting_apply_key(ctx, index, value, origin, NULL);
}

static const char *env_lookup(char *const *envp, const char *name) {
        size_t n = strlen(name);
        for (char *const *e = envp; e && *e; e++)
                if (strneq(*e, name, n) && (*e)[n] == '=')
                        return *e + n + 1;
        return NULL;
}

int lb_settings_load(struct lb_context *ctx, char *const *envp, const char *config_path) {
        const char *origin = "--config";
        int r;

        if (!config_path) {
                config_path = env_lookup(envp, "LIFEBOAT_CONFIG");
                origin = "environment";
        }
        if (config_path) {
                r = lb_settings_set(ctx, "LIFEBOAT_CONFIG", config_path, origin);
                if (r < 0)
                        return r;
        }
        /* Only a file named with --config must exist; LIFEBOAT_CONFIG and the default are
         * optional, like EnvironmentFile=-. */
        r = lb_settings_load_config_file(ctx, ctx->settings.config_path, !streq(origin, "--config"));
        if (r < 0)
                return r;
        r = lb_settings_apply_environment(ctx, envp);
        if (r < 0)
                return r;
        if (config_path && streq(origin, "--config"))
                return lb_settings_set(ctx, "LIFEBOAT_CONFIG", config_path, origin);
        return 0;
}

/* ---- derived values and consistency ---- */

int lb_ecs_cluster_from_text(const char *text, char **ret_cluster) {
        _cleanup_free_ char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;

        const char *cluster = NULL;
        char *p = copy, *line;
        while ((line = next_line(&p))) {
                char *key, *value;
                /* Not our file: lines we cannot read are somebody else's business. */
                if (split_line(line, &key, &value) <= 0)
                        continue;
                if (streq(key, "ECS_CLUSTER"))
                        cluster = value; /* the last one wins, as with EnvironmentFile= */
        }
        if (isempty(cluster))
                return -ENOENT;
        char *c = strdup(cluster);
        if (!c)
                return -ENOMEM;
        *ret_cluster = c;
        return 0;
}

static int group_from_ecs_config(struct lb_context *ctx) {
        struct lb_settings *s = &ctx->settings;
        _cleanup_free_ char *data = NULL, *cluster = NULL;

        int r = lb_read_file(s->ecs_config, CONFIG_FILE_MAX, &data, NULL);
        if (r >= 0)
                r = lb_ecs_cluster_from_text(data, &cluster);
        if (r == -ENOENT) {
                lb_err(ctx, "LIFEBOAT_GROUP is not set and ECS_CLUSTER was not found in %s", s->ecs_config);
                return -EINVAL;
        }
        if (r < 0) {
                lb_err(ctx, "LIFEBOAT_GROUP is not set and %s could not be read: %s", s->ecs_config,
                       strerror(-r));
                return r;
        }
        if (!lb_group_valid(cluster)) {
                char echo[ECHO_MAX + 1], expected[256];
                echo_value(cluster, echo, sizeof echo);
                setting_expected(setting_find("LIFEBOAT_GROUP", NULL), expected, sizeof expected);
                lb_err(ctx, "%s: ECS_CLUSTER '%s' cannot be the group (expected %s); set LIFEBOAT_GROUP",
                       s->ecs_config, echo, expected);
                return -EINVAL;
        }
        lb_debug(ctx, "Group %s from ECS_CLUSTER in %s", cluster, s->ecs_config);
        s->group = TAKE_PTR(cluster);
        return 0;
}

int lb_settings_finalize(struct lb_context *ctx) {
        struct lb_settings *s = &ctx->settings;

        if (!s->group) {
                int r = group_from_ecs_config(ctx);
                if (r < 0)
                        return r;
        }
        /* Recovered volumes are mounted under recovery_root; on the buffer volume they
         * would travel with it, and the buffer inside a recovery mount would be lost. */
        if (lb_path_equal_or_below(s->recovery_root, s->buffer_mount) ||
            lb_path_equal_or_below(s->buffer_mount, s->recovery_root)) {
                lb_err(ctx, "LIFEBOAT_BUFFER_MOUNT (%s) and LIFEBOAT_RECOVERY_ROOT (%s) must not contain each other",
                       s->buffer_mount, s->recovery_root);
                return -EINVAL;
        }
        return 0;
}

/* ---- dump ---- */

static int dump_one(const struct lb_settings *s, const struct setting *st, struct lb_buf *b) {
        const void *f = field_const(s, st);
        char tmp[64];

        switch (st->type) {
        case SETTING_UINT:
                return lb_buf_printf(b, "%s=%" PRIu64 "\n", st->name, *(const uint64_t *) f);
        case SETTING_DURATION:
                (void) lb_format_duration_ms(*(const uint64_t *) f, tmp, sizeof tmp);
                return lb_buf_printf(b, "%s=%s\n", st->name, tmp);
        case SETTING_BOOL:
                return lb_buf_printf(b, "%s=%s\n", st->name, *(const bool *) f ? "true" : "false");
        case SETTING_FS:
                return lb_buf_printf(b, "%s=%s\n", st->name, *(const enum lb_fs_type *) f == LB_FS_EXT4 ? "ext4" : "xfs");
        default:
                break;
        }

        const char *v = *(char *const *) f;
        if (st->flags & SETTING_SECRET)
                return lb_buf_printf(b, "%s=%s\n", st->name, v ? "(set)" : "(unset)");
        if (!v)
                return lb_buf_printf(b, "%s=\n", st->name);
        char shown[512];
        if (st->flags & SETTING_URL_PRIVATE) {
                lb_url_for_logs(v, shown, sizeof shown);
                v = shown;
        }
        /* Quote what reading the line back would otherwise change. */
        size_t n = strlen(v);
        bool quote = n > 0 && (isspace((unsigned char) v[0]) || isspace((unsigned char) v[n - 1]) ||
                               (n >= 2 && v[0] == '"' && v[n - 1] == '"'));
        if (quote)
                return lb_buf_printf(b, "%s=\"%s\"\n", st->name, v);
        return lb_buf_printf(b, "%s=%s\n", st->name, v);
}

int lb_settings_dump(const struct lb_settings *s, char **ret_text) {
        _cleanup_buf_ struct lb_buf b = {};
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                if (settings_table[i].flags & SETTING_ALIAS)
                        continue;
                int r = dump_one(s, &settings_table[i], &b);
                if (r < 0)
                        return r;
        }
        char *t = lb_buf_steal(&b);
        if (!t)
                return -ENOMEM;
        *ret_text = t;
        return 0;
}

int lb_settings_describe(char **ret_text) {
        _cleanup_buf_ struct lb_buf b = {};
        for (size_t i = 0; i < ELEMENTSOF(settings_table); i++) {
                const struct setting *st = &settings_table[i];
                char expected[256];
                setting_expected(st, expected, sizeof expected);
                int r = lb_buf_printf(&b, "%s\n    %s.\n    Default: %s%s%s. Expects %s.\n", st->name, st->description,
                                      st->def ? "\"" : "", st->def ? st->def : "unset", st->def ? "\"" : "", expected);
                if (r < 0)
                        return r;
        }
        char *t = lb_buf_steal(&b);
        if (!t)
                return -ENOMEM;
        *ret_text = t;
        return 0;
}
