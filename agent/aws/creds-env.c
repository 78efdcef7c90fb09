/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/creds-env.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"

int lb_creds_from_env(struct lb_context *ctx, struct lb_credentials *ret, char *reason, size_t size) {
        const struct lb_settings *s = &ctx->settings;
        bool have_key = !isempty(s->access_key_id), have_secret = !isempty(s->secret_access_key);

        if (have_key && !have_secret) {
                lb_set_reason(reason, size, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both or neither");
                return -EINVAL;
        }
        if (have_secret && !have_key) {
                lb_set_reason(reason, size, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both or neither");
                return -EINVAL;
        }
        if (!have_key) {
                if (!isempty(s->session_token))
                        lb_warn(ctx, "AWS_SESSION_TOKEN is set without AWS_ACCESS_KEY_ID, ignored");
                lb_set_reason(reason, size, "AWS_ACCESS_KEY_ID not set");
                return -ENOKEY;
        }

        struct lb_credentials c;
        const char *bad = "?";
        int r = lb_credentials_set(&c, s->access_key_id, s->secret_access_key, s->session_token, 0, &bad);
        if (r == -EINVAL) {
                /* The settings checked the form; only a length beyond the struct is left. */
                lb_set_reason(reason, size, "the %s in the environment is too long", bad);
                return r;
        }
        if (r < 0) {
                lb_set_reason(reason, size, "%s", strerror(-r));
                return r;
        }
        c.source = LB_CREDS_ENVIRONMENT;
        (void) lb_strscpy(c.origin, sizeof c.origin,
                          c.session_token ? "the environment (AWS_ACCESS_KEY_ID, with a session token)"
                                          : "the environment (AWS_ACCESS_KEY_ID)");
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}
