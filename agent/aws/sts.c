/* SPDX-License-Identifier: MIT */
/*
 * STS on the Query client: AssumeRoleWithWebIdentity, the one call lifeboat makes, which AWS
 * takes unsigned (the web identity token is the credential).
 */
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/sts.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/basic/xml.h"

const struct lb_query_service lb_sts_service = { .name = "sts", .version = "2011-06-15" };

int lb_sts_form_assume_role_with_web_identity(struct lb_form *f, const char *role_arn, const char *session_name,
                                              const char *token) {
        int r;
        if (isempty(role_arn) || isempty(session_name) || isempty(token))
                return -EINVAL;
        if ((r = lb_form_init_action(f, "AssumeRoleWithWebIdentity", lb_sts_service.version)) < 0 ||
            (r = lb_form_add(f, "RoleArn", role_arn)) < 0 ||
            (r = lb_form_add(f, "RoleSessionName", session_name)) < 0 ||
            (r = lb_form_add(f, "WebIdentityToken", token)) < 0)
                return r;
        return 0;
}

int lb_sts_parse_assume_role_with_web_identity(const char *buf, size_t len, struct lb_credentials *ret, char *arn,
                                               size_t size) {
        _cleanup_(lb_xml_free_secretp) struct lb_xml_node *root = NULL;
        if (!buf || lb_xml_parse(buf, len, &root) < 0)
                return -EBADMSG;
        if (!streq(root->name, "AssumeRoleWithWebIdentityResponse"))
                return -EBADMSG;
        const struct lb_xml_node *result = lb_xml_child(root, "AssumeRoleWithWebIdentityResult");
        const struct lb_xml_node *creds = result ? lb_xml_child(result, "Credentials") : NULL;
        if (!creds)
                return -EBADMSG;

        const char *key = lb_xml_child_text(creds, "AccessKeyId");
        const char *secret = lb_xml_child_text(creds, "SecretAccessKey");
        const char *token = lb_xml_child_text(creds, "SessionToken");
        const char *expiration = lb_xml_child_text(creds, "Expiration");
        time_t expires;
        /* Temporary credentials always come with a token and an end. */
        if (isempty(token) || !expiration || lb_parse_iso8601(expiration, &expires) < 0 || expires == 0)
                return -EBADMSG;

        struct lb_credentials c;
        int r = lb_credentials_set(&c, key, secret, token, expires, NULL);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;
        if (arn && size > 0) {
                const struct lb_xml_node *user = lb_xml_child(result, "AssumedRoleUser");
                const char *a = user ? lb_xml_child_text(user, "Arn") : NULL;
                if (!a || lb_strscpy(arn, size, a) < 0)
                        arn[0] = '\0';
        }
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}
