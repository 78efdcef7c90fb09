/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "lifeboat/aws/creds-imds.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

#define ROLE_PATH "/latest/meta-data/iam/security-credentials/"

/* The Code of a refused answer, escaped for the log. */
static const char *refusal_code(const char *json, char *buf, size_t size) {
        json_error_t err;
        json_auto_t *root = json_loads(json, 0, &err);
        const char *code = root ? json_string_value(json_object_get(root, "Code")) : NULL;
        return lb_cescape(code ? code : "?", buf, size);
}

/* GET iam/security-credentials/ROLE and parse it. */
static int fetch_role(struct lb_imds *imds, const char *role, struct lb_credentials *ret, char *reason, size_t size) {
        char path[256];
        int r = lb_snprintf(path, sizeof path, ROLE_PATH "%s", role);
        if (r < 0)
                return r;

        _cleanup_free_secret_ char *body = NULL;
        r = lb_imds_get(imds, path, &body);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                lb_set_reason(reason, size, "cannot read the credentials of role %s from IMDS: %s", role,
                              lb_imds_strerror(r));
                return r;
        }
        r = lb_credentials_parse_role_json(body, ret);
        if (r == -EACCES) {
                char code[80];
                lb_set_reason(reason, size, "IMDS refused credentials for role %s: Code %s", role,
                              refusal_code(body, code, sizeof code));
        } else if (r == -EBADMSG)
                lb_set_reason(reason, size, "IMDS answered malformed credentials for role %s", role);
        else if (r < 0)
                lb_set_reason(reason, size, "%s", strerror(-r));
        return r;
}

static int from_imds(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret, char *reason,
                     size_t size) {
        const char *role;
        int r = lb_imds_role_name(imds, false, &role);
        if (r == -ENOENT) {
                lb_set_reason(reason, size, "the instance has no IAM role");
                return r;
        }
        if (r < 0) {
                lb_set_reason(reason, size, "IMDS at %s: %s", ctx->settings.imds_endpoint, lb_imds_strerror(r));
                return r;
        }

        r = fetch_role(imds, role, ret, reason, size);
        if (r == -ENOENT) {
                /* The role was replaced since we cached its name: look once more. */
                lb_debug(ctx, "IMDS: role %s is gone, reading the role name again", role);
                r = lb_imds_role_name(imds, true, &role);
                if (r >= 0)
                        r = fetch_role(imds, role, ret, reason, size);
                if (r == -ENOENT)
                        lb_set_reason(reason, size, "the instance has no IAM role");
                else if (r < 0 && r != -EACCES && r != -EBADMSG && reason && !reason[0])
                        lb_set_reason(reason, size, "IMDS at %s: %s", ctx->settings.imds_endpoint, lb_imds_strerror(r));
        }
        if (r < 0)
                return r;
        ret->source = LB_CREDS_INSTANCE_ROLE;
        lb_utf8_snprintf(ret->origin, sizeof ret->origin, "the instance role %s (IMDS)", role);
        return 0;
}

int lb_creds_from_imds(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret, char *reason,
                       size_t size) {
        _cleanup_imds_ struct lb_imds *own = NULL;
        if (reason && size > 0)
                reason[0] = '\0';
        if (!imds) {
                int r = lb_imds_new(ctx, &own);
                if (r == -ENODEV) {
                        lb_set_reason(reason, size, "IMDS disabled (AWS_EC2_METADATA_DISABLED)");
                        return -ENOKEY;
                }
                if (r < 0) {
                        lb_set_reason(reason, size, "cannot use IMDS at %s: %s", ctx->settings.imds_endpoint,
                                      strerror(-r));
                        return -ENOKEY;
                }
                imds = own;
        }
        /* Every failure is a skip, as in the SDKs: the chain ends here anyway, saying why. */
        return from_imds(ctx, imds, ret, reason, size) < 0 ? -ENOKEY : 0;
}
