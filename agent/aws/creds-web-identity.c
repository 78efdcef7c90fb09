/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds-profile.h"
#include "lifeboat/aws/creds-web-identity.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/aws/sts.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

#define TOKEN_FILE_MAX (64u * 1024u)
#define TOKEN_MIN 4             /* STS's bounds of WebIdentityToken */
#define TOKEN_MAX 20000
#define STS_GLOBAL_ENDPOINT "https://sts.amazonaws.com"
#define STS_GLOBAL_REGION "us-east-1"   /* where the global endpoint lives; nothing is signed */

/* The setting, else the profile's key; NULL when neither is set. where says which. */
static const char *pick(const char *setting, const char *variable, const struct lb_aws_profile *profile,
                        const char *key, char *where, size_t size) {
        if (!isempty(setting)) {
                (void) lb_strscpy(where, size, variable);
                return setting;
        }
        const struct lb_aws_file *f = NULL;
        unsigned line = 0;
        const char *v = profile ? lb_aws_profile_get(profile, key, &f, &line) : NULL;
        if (isempty(v))
                return NULL;
        lb_utf8_snprintf(where, size, "%s of profile %s (%s:%u)", key, profile->name, f->path, line);
        return v;
}

/* Reads the token: the whole file, trailing white space dropped, 4 to 20000 printable
 * characters without spaces (a JWT). Wiped by the caller. */
static int read_token(const char *path, char **ret, char *reason, size_t size) {
        _cleanup_free_secret_ char *data = NULL;
        size_t len = 0;
        int r = lb_read_file(path, TOKEN_FILE_MAX, &data, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                lb_set_reason(reason, size, "cannot read the web identity token %s: %s", path,
                              r == -EFBIG ? "larger than 64 KiB" : strerror(-r));
                return -EINVAL;
        }
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ' ||
                           data[len - 1] == '\t'))
                data[--len] = '\0';
        bool printable = strlen(data) == len;
        for (size_t i = 0; printable && i < len; i++)
                printable = (unsigned char) data[i] > 0x20 && (unsigned char) data[i] < 0x7f;
        if (len < TOKEN_MIN || len > TOKEN_MAX || !printable) {
                lb_set_reason(reason, size, "the web identity token %s is %s (expected %d to %d printable characters "
                              "without spaces)", path, len == 0 ? "empty" : "malformed", TOKEN_MIN, TOKEN_MAX);
                return -EINVAL;
        }
        *ret = TAKE_PTR(data);
        return 0;
}

/* The call itself; the form holds the token and is wiped. */
static int assume_role(struct lb_context *ctx, const char *region, const char *role_arn, const char *session,
                       const char *token, struct lb_credentials *ret, char *arn, size_t arn_size, char *url,
                       size_t url_size, char *reason, size_t size) {
        const struct lb_settings *s = &ctx->settings;
        const char *endpoint = s->sts_endpoint;
        if (isempty(endpoint) && isempty(region))
                endpoint = STS_GLOBAL_ENDPOINT;
        if (isempty(region))
                region = STS_GLOBAL_REGION;

        /* No credentials: the client signs nothing. */
        _cleanup_(lb_query_freep) struct lb_query *q = NULL;
        int r = lb_query_new(ctx, NULL, &lb_sts_service, region, endpoint, &q);
        if (r < 0) {
                lb_set_reason(reason, size, "cannot set up the STS client for %s: %s", region, strerror(-r));
                return r;
        }
        (void) lb_strscpy(url, url_size, lb_query_url(q));

        _cleanup_query_call_ struct lb_query_call call = {};
        r = lb_sts_form_assume_role_with_web_identity(&call.form, role_arn, session, token);
        if (r >= 0)
                r = lb_query_perform_one(q, &call);
        if (call.form.buf.data)
                explicit_bzero(call.form.buf.data, call.form.buf.len);
        if (r >= 0) {
                r = lb_sts_parse_assume_role_with_web_identity(call.answer.data, call.answer.len, ret, arn, arn_size);
                if (call.answer.data)   /* the secret key and the token */
                        explicit_bzero(call.answer.data, call.answer.len);
                if (r == -EBADMSG)
                        lb_set_reason(reason, size, "STS at %s answered AssumeRoleWithWebIdentity with something else "
                                      "than credentials", url);
                else if (r < 0)
                        lb_set_reason(reason, size, "%s", strerror(-r));
                return r;
        }

        char err[640];
        const struct lb_aws_error *e = lb_query_last_error(q);
        if (e->kind == LB_AWS_OK) {
                /* Failed here (memory, the form), not at STS: say that, not a refusal. */
                lb_set_reason(reason, size, "AssumeRoleWithWebIdentity for %s could not be sent: %s", role_arn,
                              strerror(-r));
                return r;
        }
        (void) lb_query_last_error_text(q, err, sizeof err);
        if (e->kind == LB_AWS_ERR_TRANSPORT || e->kind == LB_AWS_ERR_SERVER) {
                lb_set_reason(reason, size, "STS at %s: %s", url, err);
                return e->kind == LB_AWS_ERR_TRANSPORT ? -EHOSTUNREACH : -EREMOTEIO;
        }
        if (e->kind == LB_AWS_ERR_BAD_ANSWER) {
                lb_set_reason(reason, size, "STS at %s: %s", url, err);
                return -EBADMSG;
        }
        /* InvalidIdentityToken, ExpiredTokenException, AccessDenied, IDPRejectedClaim, ...: no. */
        lb_set_reason(reason, size, "STS refused the token for %s: %s", role_arn, err);
        return -EACCES;
}

int lb_creds_from_web_identity(struct lb_context *ctx, const struct lb_aws_profile *profile, const char *region,
                               struct lb_credentials *ret, char *reason, size_t size) {
        const struct lb_settings *s = &ctx->settings;
        char token_where[384], role_where[384], name_where[384];

        const char *token_file = pick(s->web_identity_token_file, "AWS_WEB_IDENTITY_TOKEN_FILE", profile,
                                      "web_identity_token_file", token_where, sizeof token_where);
        if (!token_file) {
                lb_set_reason(reason, size, "AWS_WEB_IDENTITY_TOKEN_FILE not set");
                return -ENOKEY;
        }
        const char *role_arn = pick(s->role_arn, "AWS_ROLE_ARN", profile, "role_arn", role_where, sizeof role_where);
        if (!role_arn) {
                lb_set_reason(reason, size, "%s is set but AWS_ROLE_ARN is not: the token is exchanged for a role",
                              token_where);
                return -EINVAL;
        }
        char session[80];
        const char *name = pick(s->role_session_name, "AWS_ROLE_SESSION_NAME", profile, "role_session_name",
                                name_where, sizeof name_where);
        if (name) {
                if (!lb_role_session_name_valid(name)) {
                        lb_set_reason(reason, size, "%s is not a role session name (2 to 64 of A-Z a-z 0-9 _ + = , . @ -)",
                                      name_where);
                        return -EINVAL;
                }
                (void) lb_strscpy(session, sizeof session, name);
        } else
                (void) lb_snprintf(session, sizeof session, "lifeboat-%lld", (long long) time(NULL));
        if (token_file[0] != '/') {
                lb_set_reason(reason, size, "%s is not an absolute path", token_where);
                return -EINVAL;
        }

        _cleanup_free_secret_ char *token = NULL;
        int r = read_token(token_file, &token, reason, size);
        if (r < 0)
                return r;

        struct lb_credentials c = {};
        char arn[256] = "", url[256] = "";
        r = assume_role(ctx, region, role_arn, session, token, &c, arn, sizeof arn, url, sizeof url, reason, size);
        if (r < 0)
                return r;
        c.source = LB_CREDS_WEB_IDENTITY;
        lb_utf8_snprintf(c.origin, sizeof c.origin, "web identity: %s, session %s, token %s, via STS %s",
                         arn[0] ? arn : role_arn, session, token_file, url);
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}
