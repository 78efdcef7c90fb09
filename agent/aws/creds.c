/* SPDX-License-Identifier: MIT */
/*
 * AWS credentials as a value: checked when filled, wiped when released, and the instance role's
 * document (the one source parsed here, because IMDS and the fuzzers share it). The sources are
 * the creds-*.c modules; the chain picks one of them.
 */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"

/* Refresh this long before Expiration: IMDS has new credentials at least 5
 * minutes ahead, and the SDKs refresh 10-15 minutes early. */
#define CREDS_REFRESH_MARGIN_S 600
#define CREDS_CODE_MAX 64

void lb_credentials_done(struct lb_credentials *c) {
        lb_free_secret(c->session_token);
        explicit_bzero(c, sizeof *c);
}

const char *lb_creds_source_to_string(enum lb_creds_source s) {
        static const char *const names[_LB_CREDS_SOURCE_MAX] = {
                [LB_CREDS_NONE] = "none",
                [LB_CREDS_ENVIRONMENT] = "environment",
                [LB_CREDS_WEB_IDENTITY] = "web-identity",
                [LB_CREDS_PROFILE] = "profile",
                [LB_CREDS_CONTAINER] = "container",
                [LB_CREDS_INSTANCE_ROLE] = "instance-role",
        };
        return s >= 0 && s < _LB_CREDS_SOURCE_MAX ? names[s] : "none";
}

bool lb_credentials_need_refresh(const struct lb_credentials *c, time_t now) {
        return c->expiration != 0 && now >= c->expiration - CREDS_REFRESH_MARGIN_S;
}

bool lb_credentials_refreshable(const struct lb_credentials *c) {
        return c->source == LB_CREDS_WEB_IDENTITY || c->source == LB_CREDS_CONTAINER ||
               c->source == LB_CREDS_INSTANCE_ROLE;
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

int lb_credentials_set(struct lb_credentials *ret, const char *key, const char *secret, const char *token,
                       time_t expiration, const char **ret_bad) {
        struct lb_credentials c = {};
        const char *bad = NULL;

        if (!key || !key_material_valid(key, sizeof c.access_key_id))
                bad = "access key id";
        else if (!secret || !key_material_valid(secret, sizeof c.secret_access_key))
                bad = "secret access key";
        else if (!isempty(token) && !key_material_valid(token, LB_CREDS_TOKEN_MAX))
                bad = "session token";
        if (bad) {
                if (ret_bad)
                        *ret_bad = bad;
                return -EINVAL;
        }
        if (!isempty(token)) {
                c.session_token = strdup(token);
                if (!c.session_token)
                        return -ENOMEM;
        }
        (void) lb_strscpy(c.access_key_id, sizeof c.access_key_id, key);
        (void) lb_strscpy(c.secret_access_key, sizeof c.secret_access_key, secret);
        c.expiration = expiration;
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}

int lb_credentials_parse_role_json(const char *json, struct lb_credentials *ret) {
        json_error_t err;
        json_auto_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
        if (!root || !json_is_object(root))
                return -EBADMSG;

        const char *c = json_string_value(json_object_get(root, "Code"));
        if (!c)
                return -EBADMSG;
        if (!streq(c, "Success"))
                return -EACCES;

        const char *key = json_string_value(json_object_get(root, "AccessKeyId"));
        const char *secret = json_string_value(json_object_get(root, "SecretAccessKey"));
        const char *token = json_string_value(json_object_get(root, "Token"));
        const char *expiration = json_string_value(json_object_get(root, "Expiration"));
        time_t expires;
        if (!key || !secret || isempty(token) || !expiration || lb_parse_iso8601(expiration, &expires) < 0 ||
            expires == 0)
                return -EBADMSG;

        struct lb_credentials creds;
        int r = lb_credentials_set(&creds, key, secret, token, expires, NULL);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;
        creds.source = LB_CREDS_INSTANCE_ROLE;
        *ret = creds;
        explicit_bzero(&creds, sizeof creds);
        return 0;
}
