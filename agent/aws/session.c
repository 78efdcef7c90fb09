/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds-profile.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"

/* The region without IMDS: AWS_REGION, else (for a command that needs no identity) the profile's
 * region. 0 with it in aws->region, -ENOENT when IMDS has to say, -EINVAL for broken files. */
static int region_without_imds(struct lb_context *ctx, bool need_identity, struct lb_aws *aws) {
        const struct lb_settings *s = &ctx->settings;
        if (!isempty(s->region))
                return lb_strscpy(aws->region, sizeof aws->region, s->region) < 0 ? -EINVAL : 0;
        if (need_identity)
                return -ENOENT;         /* this instance's region, from its identity */
        return lb_aws_profile_region(ctx, aws->region, sizeof aws->region);
}

static void log_imds_unavailable(struct lb_context *ctx, bool need_identity, int r) {
        if (need_identity)
                lb_err(ctx, "instance metadata service unavailable (%s): %s", strerror(-r),
                       r == -ENODEV ? "AWS_EC2_METADATA_DISABLED is set"
                                    : "set AWS_REGION and credentials to run off EC2");
        else
                lb_err(ctx, "no AWS region: AWS_REGION is not set, the profile names none, and the instance metadata "
                       "service is unavailable (%s)", r == -ENODEV ? "AWS_EC2_METADATA_DISABLED is set" : strerror(-r));
}

int lb_aws_open(struct lb_context *ctx, unsigned flags, struct lb_aws *ret) {
        const struct lb_settings *s = &ctx->settings;
        _cleanup_aws_ struct lb_aws aws = { 0 };
        bool need_identity = flags & LB_AWS_NEED_IDENTITY;

        int r = region_without_imds(ctx, need_identity, &aws);
        if (r < 0 && r != -ENOENT)
                return r;
        bool need_imds = need_identity || r == -ENOENT;

        /* Otherwise IMDS is only the last source of credentials: the chain opens it if it gets there. */
        if (need_imds) {
                r = lb_imds_new(ctx, &aws.imds);
                if (r < 0) {
                        log_imds_unavailable(ctx, need_identity, r);
                        return r;
                }
                r = lb_imds_identity(aws.imds, flags & LB_AWS_IDENTITY_EXTRA, &aws.identity);
                if (r < 0) {
                        lb_err(ctx, "cannot read this instance's identity from IMDS at %s: %s",
                               s->imds_endpoint, lb_imds_strerror(r));
                        return r;
                }
                aws.have_identity = true;
                if (isempty(aws.region))
                        (void) lb_strscpy(aws.region, sizeof aws.region, aws.identity.region);
        }

        struct lb_creds_chain chain = { .imds = aws.imds };
        (void) lb_strscpy(chain.region, sizeof chain.region, aws.region);
        r = lb_creds_provider_new(ctx, lb_credentials_load, &chain, &aws.creds);
        if (r < 0)
                return r;

        r = lb_ec2_new(ctx, aws.creds, aws.region, &aws.ec2);
        if (r < 0) {
                lb_err(ctx, "cannot set up the EC2 client for %s: %s", aws.region, strerror(-r));
                return r;
        }
        if (flags & LB_AWS_CLOUDWATCH) {
                r = lb_cloudwatch_new(ctx, aws.creds, aws.region, &aws.cloudwatch);
                if (r < 0) {
                        lb_err(ctx, "cannot set up the CloudWatch client for %s: %s", aws.region, strerror(-r));
                        return r;
                }
        }

        *ret = aws;
        memset(&aws, 0, sizeof aws);
        return 0;
}

int lb_aws_open_autoscaling(struct lb_context *ctx, struct lb_aws *aws) {
        if (aws->autoscaling)
                return 0;
        if (!aws->ec2)
                return -EINVAL;
        const char *region = lb_query_region(lb_ec2_query(aws->ec2));
        int r = lb_autoscaling_new(ctx, aws->creds, region, &aws->autoscaling);
        if (r < 0)
                lb_err(ctx, "cannot set up the Auto Scaling client for %s: %s", region, strerror(-r));
        return r;
}

void lb_aws_close(struct lb_aws *aws) {
        lb_cloudwatch_free(aws->cloudwatch);
        aws->cloudwatch = NULL;
        lb_autoscaling_free(aws->autoscaling);
        aws->autoscaling = NULL;
        lb_ec2_free(aws->ec2);
        aws->ec2 = NULL;
        lb_creds_provider_free(aws->creds);
        aws->creds = NULL;
        lb_imds_free(aws->imds);
        aws->imds = NULL;
}
