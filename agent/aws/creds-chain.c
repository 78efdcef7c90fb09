/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds-container.h"
#include "lifeboat/aws/creds-env.h"
#include "lifeboat/aws/creds-imds.h"
#include "lifeboat/aws/creds-profile.h"
#include "lifeboat/aws/creds-web-identity.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"

#define REASON_MAX 512

/* What was tried so far, for the final "no AWS credentials: ..." */
struct attempts {
        struct lb_buf text;
};

static void attempts_done(struct attempts *a) {
        lb_buf_free(&a->text);
}

/* Records a skipped source. */
static void skipped(struct lb_context *ctx, struct attempts *a, const char *label, const char *reason) {
        lb_debug(ctx, "AWS credentials: %s: %s; trying the next source", label, reason);
        (void) lb_buf_printf(&a->text, "%s%s: %s", a->text.len > 0 ? "; " : "", label, reason);
}

/* Whether a source settled the matter: r is 0 (found) or an error other than "not configured". */
static bool settled(struct lb_context *ctx, struct attempts *a, int r, const char *label, const char *reason) {
        if (r == -ENOKEY) {
                skipped(ctx, a, label, reason);
                return false;
        }
        if (r < 0 && r != -ENOMEM)
                lb_err(ctx, "AWS credentials from %s: %s", label, reason);
        return true;
}

static int found(struct lb_context *ctx, struct lb_credentials *c) {
        char t[40];
        time_t now = time(NULL);
        if (c->expiration != 0 && c->expiration <= now) {
                lb_err(ctx, "AWS credentials from %s expired at %s", c->origin,
                       lb_format_iso8601_or_dash(c->expiration, t, sizeof t));
                lb_credentials_done(c);
                return -EKEYEXPIRED;
        }
        lb_debug(ctx, "AWS credentials from %s (access key %s%s%s)", c->origin, c->access_key_id,
                 c->expiration ? ", until " : "", c->expiration ? lb_format_iso8601_or_dash(c->expiration, t, sizeof t) : "");
        return 0;
}

static int load(struct lb_context *ctx, const struct lb_creds_chain *chain, struct lb_credentials *c,
                struct attempts *a) {
        char reason[REASON_MAX] = "";
        int r = lb_creds_from_env(ctx, c, reason, sizeof reason);
        if (settled(ctx, a, r, "environment", reason))
                return r;

        /* Web identity may take its settings from the profile: the files are read first, and a
         * broken one stops the chain, as in the SDKs. */
        _cleanup_aws_profile_ struct lb_aws_profile profile = {};
        r = lb_aws_profile_load(ctx, &profile, reason, sizeof reason);
        if (r < 0) {
                if (r != -ENOMEM)
                        lb_err(ctx, "AWS credentials: %s", reason);
                return r;
        }

        reason[0] = '\0';
        r = lb_creds_from_web_identity(ctx, &profile, chain && chain->region[0] ? chain->region : NULL, c, reason,
                                       sizeof reason);
        if (settled(ctx, a, r, "web identity", reason))
                return r;

        char label[160];
        lb_utf8_snprintf(label, sizeof label, "profile %s", profile.name);
        reason[0] = '\0';
        r = lb_creds_from_profile(ctx, &profile, c, reason, sizeof reason);
        if (settled(ctx, a, r, label, reason))
                return r;

        reason[0] = '\0';
        r = lb_creds_from_container(ctx, c, reason, sizeof reason);
        if (settled(ctx, a, r, "container", reason))
                return r;

        reason[0] = '\0';
        r = lb_creds_from_imds(ctx, chain ? chain->imds : NULL, c, reason, sizeof reason);
        if (settled(ctx, a, r, "instance role", reason))
                return r;

        lb_err(ctx, "no AWS credentials: %s", a->text.data ? a->text.data : "?");
        return -ENOKEY;
}

int lb_credentials_load(struct lb_context *ctx, const struct lb_creds_chain *chain, struct lb_credentials *ret) {
        _cleanup_(attempts_done) struct attempts a = {};
        struct lb_credentials c = {};
        int r = load(ctx, chain, &c, &a);
        if (r >= 0)
                r = found(ctx, &c);
        if (r < 0) {
                lb_credentials_done(&c);
                return r;
        }
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}
