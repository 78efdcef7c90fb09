/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"

static bool credentials_in_environment(const struct lb_settings *s) {
        return !isempty(s->access_key_id) && !isempty(s->secret_access_key);
}

int lb_aws_open(struct lb_context *ctx, unsigned flags, struct lb_aws *ret) {
        const struct lb_settings *s = &ctx->settings;
        _cleanup_aws_ struct lb_aws aws = { 0 };
        bool need_identity = flags & LB_AWS_NEED_IDENTITY;
        bool need_imds = need_identity || isempty(s->region) || !credentials_in_environment(s);
        int r;

        if (need_imds) {
                r = lb_imds_new(ctx, &aws.imds);
                if (r < 0) {
                        lb_err(ctx, "instance metadata service unavailable (%s): %s", strerror(-r),
                               r == -ENODEV ? "AWS_EC2_METADATA_DISABLED is set"
                                            : "set AWS_REGION and credentials to run off EC2");
                        return r;
                }
        }

        if (need_identity || isempty(s->region)) {
                r = lb_imds_identity(aws.imds, flags & LB_AWS_IDENTITY_EXTRA, &aws.identity);
                if (r < 0) {
                        lb_err(ctx, "cannot read this instance's identity from IMDS at %s: %s",
                               s->imds_endpoint, lb_imds_strerror(r));
                        return r;
                }
                aws.have_identity = true;
        }

        r = lb_creds_provider_new(ctx, aws.imds, &aws.creds);
        if (r < 0)
                return r;

        const char *region = !isempty(s->region) ? s->region : aws.identity.region;
        r = lb_ec2_new(ctx, aws.creds, region, &aws.ec2);
        if (r < 0) {
                lb_err(ctx, "cannot set up the EC2 client for %s: %s", region, strerror(-r));
                return r;
        }
        if (flags & LB_AWS_CLOUDWATCH) {
                r = lb_cloudwatch_new(ctx, aws.creds, region, &aws.cloudwatch);
                if (r < 0) {
                        lb_err(ctx, "cannot set up the CloudWatch client for %s: %s", region, strerror(-r));
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
