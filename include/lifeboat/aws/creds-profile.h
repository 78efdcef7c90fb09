/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lifeboat/basic/macro.h"

struct lb_context;
struct lb_credentials;

/*
 * The shared config and credentials files of the AWS SDKs (AWS_CONFIG_FILE, ~/.aws/config, and
 * AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials): their INI dialect, the profiles in them, the
 * profile's region, and the third source of the credential chain, a profile's static keys.
 */

/* ---- the INI dialect: Python's configparser.RawConfigParser, as botocore reads the files ---- */

struct lb_ini_entry {
        char *key;              /* lower-cased */
        char *value;            /* continuation lines joined with '\n'; wiped when freed */
        unsigned line;
};

struct lb_ini_section {
        char *name;             /* between the brackets, as written */
        unsigned line;
        struct lb_ini_entry *entries;
        size_t n_entries;
};

struct lb_ini {
        struct lb_ini_section *sections;        /* in file order, without [DEFAULT] */
        size_t n_sections;
        struct lb_ini_section defaults;         /* [DEFAULT]: every section inherits its keys */
};

/*
 * Parses text (len bytes) as the AWS SDKs read these files: "[section]" lines (text after the
 * last ']' ignored), "key = value" or "key: value" (split at the first '=' or ':', white space
 * around both stripped, the key lower-cased; no inline comments: "a = b # c" is "b # c"), whole
 * line comments starting with '#' or ';', and continuation lines (indented deeper than their key)
 * appended to the value with '\n'; a value that starts on the next line must be nested
 * "key = value" lines. Line ends \n, \r\n or \r. Refused, as botocore refuses them: a key before
 * any section, a line that is none of these, a section or a key given twice, a NUL byte, text
 * that is not UTF-8. On failure -EINVAL with the line number and a message (never the line's
 * text: it may hold a secret) in error; -ENOMEM.
 */
int lb_ini_parse(const char *text, size_t len, struct lb_ini *ret, unsigned *ret_line, char *error, size_t size);
void lb_ini_done(struct lb_ini *ini);
/* The entry of key in section, else in [DEFAULT]; NULL when neither has it. */
const struct lb_ini_entry *lb_ini_get(const struct lb_ini *ini, const struct lb_ini_section *section, const char *key);
/*
 * The section of a profile: in a config file "[default]" or "[profile NAME]" (NAME the second of
 * exactly two shell words, quotes allowed: [profile "a b"]; the later of [default] and
 * [profile default] wins), in a credentials file "[NAME]". NULL when there is none.
 */
const struct lb_ini_section *lb_ini_profile(const struct lb_ini *ini, const char *profile, bool config_file);

/* ---- the two files and one profile ---- */

struct lb_aws_file {
        char *path;
        bool found;                     /* a regular file was there and parsed */
        struct lb_ini ini;
        const struct lb_ini_section *section;   /* the profile's section, NULL when absent */
};

struct lb_aws_profile {
        char *name;                     /* AWS_PROFILE, else "default" */
        bool named;                     /* given by AWS_PROFILE: it must exist */
        struct lb_aws_file config;      /* AWS_CONFIG_FILE, ~/.aws/config */
        struct lb_aws_file credentials; /* AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials */
};

/*
 * Reads both files and finds the profile. A missing file counts as empty. -EINVAL (reason names
 * FILE:LINE and what is wrong) for a file that cannot be read or parsed, or for a profile named
 * by AWS_PROFILE that neither file has; -ENOMEM.
 */
int lb_aws_profile_load(struct lb_context *ctx, struct lb_aws_profile *ret, char *reason, size_t size);
void lb_aws_profile_done(struct lb_aws_profile *p);
static inline void lb_aws_profile_donep(struct lb_aws_profile *p) {
        lb_aws_profile_done(p);
}
#define _cleanup_aws_profile_ _cleanup_(lb_aws_profile_donep)
/* A setting of the profile (role_arn, region, ...): the credentials file's section first, as
 * botocore merges them, then the config file's. NULL when neither has it. ret_file and
 * ret_line (both may be NULL) say where it was. */
const char *lb_aws_profile_get(const struct lb_aws_profile *p, const char *key, const struct lb_aws_file **ret_file,
                               unsigned *ret_line);
/*
 * The profile's region, for commands that do not ask IMDS: 0 with it in buf, -ENOENT when the
 * profile has none, -EINVAL when the files are broken, the profile is missing or its region is no
 * region name (logged at error level), -ENOBUFS.
 */
int lb_aws_profile_region(struct lb_context *ctx, char *buf, size_t size);

/*
 * The credential chain's third source: static keys of the profile, from the credentials file,
 * else from the config file (aws_access_key_id, aws_secret_access_key, and aws_session_token or
 * its legacy name aws_security_token). A source as lifeboat/aws/creds-env.h describes: -ENOKEY
 * when the profile has no aws_access_key_id, -EINVAL (reason: FILE:LINE) for a key without its
 * secret, a malformed value, or a profile that asks for what lifeboat does not do
 * (credential_process, SSO, role_arn with source_profile or credential_source).
 */
int lb_creds_from_profile(struct lb_context *ctx, const struct lb_aws_profile *p, struct lb_credentials *ret,
                          char *reason, size_t size);
