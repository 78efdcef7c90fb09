/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


struct lb_context;

/*
 * Every setting lifeboat knows. Precedence: command-line flags > environment
 * (LIFEBOAT_*, AWS_*) > config file (KEY=VALUE, /etc/ecs/ecs.config style) >
 * defaults. Durations are milliseconds. Strings are owned (malloc'd) or NULL.
 */
enum lb_fs_type {
        LB_FS_XFS,
        LB_FS_EXT4,
};

struct lb_settings {
        char *config_path;      /* --config, LIFEBOAT_CONFIG */
        char *ecs_config;       /* LIFEBOAT_ECS_CONFIG: where ECS_CLUSTER is read for the default group */
        char *group;            /* LIFEBOAT_GROUP */
        char *tag_prefix;       /* LIFEBOAT_TAG_PREFIX */

        char *buffer_device;    /* LIFEBOAT_BUFFER_DEVICE; NULL = recovery-only */
        char *buffer_mount;     /* LIFEBOAT_BUFFER_MOUNT */
        enum lb_fs_type fs;     /* LIFEBOAT_FS */
        char *recovery_root;    /* LIFEBOAT_RECOVERY_ROOT */
        uint64_t max_recover;   /* LIFEBOAT_MAX_RECOVER */
        uint64_t attachment_slots;  /* LIFEBOAT_ATTACHMENT_SLOTS: volume slots of this instance type */
        uint64_t attach_timeout_ms; /* LIFEBOAT_ATTACH_TIMEOUT */
        uint64_t device_timeout_ms; /* LIFEBOAT_DEVICE_TIMEOUT: wait for the block device to appear */
        uint64_t boot_timeout_ms;   /* LIFEBOAT_BOOT_TIMEOUT */
        char *sysfs_root;       /* LIFEBOAT_SYSFS_ROOT */
        char *dev_root;         /* LIFEBOAT_DEV_ROOT */
        char *run_dir;          /* LIFEBOAT_RUN_DIR */
        char *state_dir;        /* LIFEBOAT_STATE_DIR: on the root disk, never given to a container */

        char *fluentd_template; /* LIFEBOAT_FLUENTD_TEMPLATE */
        char *fluentd_conf_dir; /* LIFEBOAT_FLUENTD_CONF_DIR */
        char *fluentd_rpc;      /* LIFEBOAT_FLUENTD_RPC; "" disables the RPC */
        bool fluentd_reload;    /* LIFEBOAT_FLUENTD_RELOAD */
        char *chunk_pattern;    /* LIFEBOAT_CHUNK_PATTERN: POSIX extended regex on file names */
        char *fluentd_backup_dir; /* LIFEBOAT_FLUENTD_BACKUP_DIR: where fluentd moves unreadable chunks; "" = not checked */

        uint64_t poll_interval_ms;  /* LIFEBOAT_POLL_INTERVAL */
        uint64_t flush_timeout_ms;  /* LIFEBOAT_FLUSH_TIMEOUT */
        uint64_t flush_margin_ms;   /* LIFEBOAT_FLUSH_MARGIN: stop waiting this long before the notice time */
        uint64_t settle_ms;         /* LIFEBOAT_SETTLE: a recovered volume must stay empty this long */
        char *lifecycle_hook;       /* LIFEBOAT_LIFECYCLE_HOOK: the termination hook watch holds; NULL = none */
        uint64_t lifecycle_timeout_ms; /* LIFEBOAT_LIFECYCLE_TIMEOUT: longest hold of a scale-in */

        bool relocate;              /* LIFEBOAT_RELOCATE: reap moves stranded volumes to a zone where the group runs */

        uint64_t imds_timeout_ms;   /* LIFEBOAT_IMDS_TIMEOUT: per request */
        uint64_t ec2_timeout_ms;    /* LIFEBOAT_EC2_TIMEOUT: per request */
        uint64_t max_response_bytes; /* LIFEBOAT_MAX_RESPONSE: cap on any HTTP answer body */

        bool metrics;           /* LIFEBOAT_METRICS: reap publishes its counts to CloudWatch */
        char *metrics_namespace; /* LIFEBOAT_METRICS_NAMESPACE */

        /* AWS conventional environment */
        char *imds_endpoint;    /* AWS_EC2_METADATA_SERVICE_ENDPOINT */
        bool imds_disabled;     /* AWS_EC2_METADATA_DISABLED */
        char *ec2_endpoint;     /* AWS_ENDPOINT_URL_EC2 > AWS_ENDPOINT_URL; NULL = https://ec2.REGION.amazonaws.com */
        char *cloudwatch_endpoint; /* AWS_ENDPOINT_URL_CLOUDWATCH > AWS_ENDPOINT_URL; NULL = https://monitoring.REGION.amazonaws.com */
        char *autoscaling_endpoint; /* AWS_ENDPOINT_URL_AUTO_SCALING > AWS_ENDPOINT_URL; NULL = the regional one */
        char *region;           /* AWS_REGION > AWS_DEFAULT_REGION; NULL = from IMDS */
        char *access_key_id;    /* AWS_ACCESS_KEY_ID */
        char *secret_access_key; /* AWS_SECRET_ACCESS_KEY */
        char *session_token;    /* AWS_SESSION_TOKEN > AWS_SECURITY_TOKEN */
        /* the credential chain (lifeboat/aws/creds-chain.h) */
        char *profile;                  /* AWS_PROFILE > AWS_DEFAULT_PROFILE; NULL = "default" */
        char *shared_credentials_file;  /* AWS_SHARED_CREDENTIALS_FILE; NULL = ~/.aws/credentials */
        char *aws_config_file;          /* AWS_CONFIG_FILE; NULL = ~/.aws/config */
        char *role_arn;                 /* AWS_ROLE_ARN */
        char *web_identity_token_file;  /* AWS_WEB_IDENTITY_TOKEN_FILE */
        char *role_session_name;        /* AWS_ROLE_SESSION_NAME */
        char *sts_endpoint;             /* AWS_ENDPOINT_URL_STS; NULL = https://sts.REGION.amazonaws.com */
        char *container_relative_uri;   /* AWS_CONTAINER_CREDENTIALS_RELATIVE_URI */
        char *container_full_uri;       /* AWS_CONTAINER_CREDENTIALS_FULL_URI */
        char *container_token;          /* AWS_CONTAINER_AUTHORIZATION_TOKEN */
        char *container_token_file;     /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE */
        char *container_endpoint;       /* LIFEBOAT_CONTAINER_ENDPOINT: base of the relative URI */
        char *ca_bundle;        /* AWS_CA_BUNDLE */
};

/* Settings: defaults, then the config file, then the environment. */
int lb_settings_init_defaults(struct lb_settings *s);
void lb_settings_done(struct lb_settings *s);
/* Parses KEY=VALUE text (the config file's contents); unknown keys warn, bad values fail naming the key. */
int lb_settings_parse_config(struct lb_context *ctx, const char *text, const char *origin);
/* Reads path (at most 1 MiB, no NUL byte) and parses it as above; a missing file is no error
 * when missing_ok. */
int lb_settings_load_config_file(struct lb_context *ctx, const char *path, bool missing_ok);
/* Applies LIFEBOAT_* and AWS_* variables from an environment array (environ-style). */
int lb_settings_apply_environment(struct lb_context *ctx, char *const *envp);
/* Sets one known key; origin names where the value came from in error messages. */
int lb_settings_set(struct lb_context *ctx, const char *key, const char *value, const char *origin);
/* The usual order in one call: the config file (config_path when given, from --config, which
 * must exist; else LIFEBOAT_CONFIG from envp; else the default; these two may be missing), then
 * the environment over it. Flags go on top with lb_settings_set(), then lb_settings_finalize(). */
int lb_settings_load(struct lb_context *ctx, char *const *envp, const char *config_path);
/* Fills in derived defaults (group from ECS_CLUSTER) and checks consistency. */
int lb_settings_finalize(struct lb_context *ctx);
/* Reads ECS_CLUSTER from ecs.config-style text. Returns -ENOENT when absent. */
int lb_ecs_cluster_from_text(const char *text, char **ret_cluster);
/* Prints every setting (for "lifeboat --verbose" and docs). Secrets are masked. */
int lb_settings_dump(const struct lb_settings *s, char **ret_text);
/* Every key with its description, default and accepted values (for --help and docs). */
int lb_settings_describe(char **ret_text);
