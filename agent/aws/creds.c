/* SPDX-License-Identifier: MIT */
/*
 * AWS credentials: the environment's key pair when there is one, else the
 * instance role's temporary credentials from IMDS. Secrets and tokens are
 * never logged and are wiped from memory when released.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"

/* Refresh this long before Expiration: IMDS has new credentials at least 5
 * minutes ahead, and the SDKs refresh 10-15 minutes early. */
#define CREDS_REFRESH_MARGIN_S 600
#define CREDS_TOKEN_MAX (64u * 1024u)
#define CREDS_CODE_MAX 64
#define ROLE_PATH "/latest/meta-data/iam/security-credentials/"

void lb_credentials_done(struct lb_credentials *c) {
        lb_free_secret(c->session_token);
        explicit_bzero(c, sizeof *c);
}

bool lb_credentials_need_refresh(const struct lb_credentials *c, time_t now) {
        return c->expiration != 0 && now >= c->expiration - CREDS_REFRESH_MARGIN_S;
}

/* Key material: printable ASCII without white space, fitting max - 1 bytes. */
static bool key_material_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        if (n == 0 || n >= max)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

/* Like lb_credentials_parse_role_json(), and hands out the Code of a
 * non-Success answer (printable, for the log) in code. */
static int parse_role_json(const char *json, struct lb_credentials *ret, char *code, size_t code_size) {
        json_error_t err;
        json_auto_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
        if (!root || !json_is_object(root))
                return -EBADMSG;

        const char *c = json_string_value(json_object_get(root, "Code"));
        if (!c)
                return -EBADMSG;
        if (!streq(c, "Success")) {
                if (code && code_size > 0 && (!key_material_valid(c, code_size) ||
                                              lb_strscpy(code, code_size, c) < 0))
                        (void) lb_strscpy(code, code_size, "(unreadable)");
                return -EACCES;
        }

        const char *key = json_string_value(json_object_get(root, "AccessKeyId"));
        const char *secret = json_string_value(json_object_get(root, "SecretAccessKey"));
        const char *token = json_string_value(json_object_get(root, "Token"));
        const char *expiration = json_string_value(json_object_get(root, "Expiration"));
        if (!key || !secret || !token || !expiration)
                return -EBADMSG;

        struct lb_credentials creds = { .from_imds = true };
        if (!key_material_valid(key, sizeof creds.access_key_id) ||
            !key_material_valid(secret, sizeof creds.secret_access_key) ||
            !key_material_valid(token, CREDS_TOKEN_MAX) ||
            lb_parse_iso8601(expiration, &creds.expiration) < 0 || creds.expiration == 0)
                return -EBADMSG;

        creds.session_token = strdup(token);
        if (!creds.session_token)
                return -ENOMEM;
        (void) lb_strscpy(creds.access_key_id, sizeof creds.access_key_id, key);
        (void) lb_strscpy(creds.secret_access_key, sizeof creds.secret_access_key, secret);
        *ret = creds;
        explicit_bzero(&creds, sizeof creds);
        return 0;
}

int lb_credentials_parse_role_json(const char *json, struct lb_credentials *ret) {
        return parse_role_json(json, ret, NULL, 0);
}

static int credentials_from_environment(struct lb_context *ctx, struct lb_credentials *ret) {
        const struct lb_settings *s = &ctx->settings;
        struct lb_credentials creds = {};

        if (lb_strscpy(creds.access_key_id, sizeof creds.access_key_id, s->access_key_id) < 0) {
                lb_err(ctx, "AWS_ACCESS_KEY_ID is too long");
                return -EINVAL;
        }
        if (lb_strscpy(creds.secret_access_key, sizeof creds.secret_access_key, s->secret_access_key) < 0) {
                lb_err(ctx, "AWS_SECRET_ACCESS_KEY is too long");
                explicit_bzero(&creds, sizeof creds);
                return -EINVAL;
        }
        if (!isempty(s->session_token)) {
                creds.session_token = strdup(s->session_token);
                if (!creds.session_token) {
                        explicit_bzero(&creds, sizeof creds);
                        return -ENOMEM;
                }
        }
        lb_debug(ctx, "Using AWS credentials from the environment (access key %s%s)", creds.access_key_id,
                 creds.session_token ? ", with session token" : "");
        *ret = creds;
        explicit_bzero(&creds, sizeof creds);
        return 0;
}

/* GET iam/security-credentials/ROLE and parse it. */
static int credentials_fetch_role(struct lb_context *ctx, struct lb_imds *imds, const char *role,
                                  struct lb_credentials *ret) {
        char path[256];
        int r = lb_snprintf(path, sizeof path, ROLE_PATH "%s", role);
        if (r < 0)
                return r;

        _cleanup_free_secret_ char *body = NULL;
        r = lb_imds_get(imds, path, &body);
        if (r < 0)
                return r;

        char code[CREDS_CODE_MAX] = "";
        r = parse_role_json(body, ret, code, sizeof code);
        if (r == -EACCES)
                lb_err(ctx, "IMDS refused credentials for role %s: Code %s", role, code);
        else if (r == -EBADMSG)
                lb_err(ctx, "IMDS answered malformed credentials for role %s", role);
        return r;
}

static int credentials_from_imds(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret) {
        const char *role;
        int r = lb_imds_role_name(imds, false, &role);
        if (r == -ENOENT) {
                lb_err(ctx, "No AWS credentials: AWS_ACCESS_KEY_ID is not set and the instance has no IAM role");
                return -ENOKEY;
        }
        if (r < 0) {
                lb_err(ctx, "Failed to read the instance role from IMDS: %s", strerror(-r));
                return r;
        }

        r = credentials_fetch_role(ctx, imds, role, ret);
        if (r == -ENOENT) {
                /* The role was replaced since we cached its name: look once more. */
                lb_debug(ctx, "IMDS: role %s is gone, reading the role name again", role);
                r = lb_imds_role_name(imds, true, &role);
                if (r >= 0)
                        r = credentials_fetch_role(ctx, imds, role, ret);
                if (r == -ENOENT) {
                        lb_err(ctx, "No AWS credentials: the instance has no IAM role");
                        return -ENOKEY;
                }
        }
        if (r < 0) {
                if (r != -EACCES && r != -EBADMSG)
                        lb_err(ctx, "Failed to read role credentials from IMDS: %s", strerror(-r));
                return r;
        }
        lb_debug(ctx, "Using credentials of instance role %s (access key %s)", role, ret->access_key_id);
        return 0;
}

int lb_credentials_load(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret) {
        const struct lb_settings *s = &ctx->settings;
        bool have_key = !isempty(s->access_key_id), have_secret = !isempty(s->secret_access_key);

        if (have_key && have_secret)
                return credentials_from_environment(ctx, ret);
        if (have_key) {
                lb_err(ctx, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both or neither");
                return -EINVAL;
        }
        if (have_secret) {
                lb_err(ctx, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both or neither");
                return -EINVAL;
        }
        if (!isempty(s->session_token))
                lb_warn(ctx, "AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID, ignored");
        if (!imds) {
                lb_err(ctx, "No AWS credentials: AWS_ACCESS_KEY_ID is not set and IMDS is not available");
                return -ENOKEY;
        }
        return credentials_from_imds(ctx, imds, ret);
}
