/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "lifeboat/aws/cloudwatch.h"
#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/basic/names.h"

struct lb_context;

/*
 * What a command needs to talk to AWS: the IMDS client, this instance's
 * identity, and an EC2 client for the region. Opened once per command.
 */
struct lb_aws {
        struct lb_imds *imds;           /* NULL when not needed */
        struct lb_identity identity;
        bool have_identity;
        char region[LB_REGION_MAX + 1]; /* AWS_REGION, else the identity's, else the profile's */
        struct lb_creds_provider *creds;        /* shared by every service client */
        struct lb_ec2 *ec2;
        struct lb_cloudwatch *cloudwatch;       /* NULL unless LB_AWS_CLOUDWATCH */
        struct lb_autoscaling *autoscaling;     /* NULL until lb_aws_open_autoscaling() */
};

enum {
        LB_AWS_NEED_IDENTITY = 1 << 0,  /* fail unless IMDS tells who we are */
        LB_AWS_IDENTITY_EXTRA = 1 << 1, /* also AZ id and lifecycle (2 more requests) */
        LB_AWS_CLOUDWATCH = 1 << 2,     /* also a CloudWatch client, in EC2's region */
};

/* Opens IMDS (for the identity, or for the region when neither AWS_REGION nor the profile of
 * the shared config file names one), the credentials (the chain of lifeboat/aws/creds-chain.h,
 * whose last source is IMDS again) and EC2. A human-readable reason for a failure goes to the log
 * at error level. */
int lb_aws_open(struct lb_context *ctx, unsigned flags, struct lb_aws *ret);
/* Opens the Auto Scaling client for the EC2 client's region, once (it is only needed when a
 * lifecycle hook is configured); 0 when it is open. */
int lb_aws_open_autoscaling(struct lb_context *ctx, struct lb_aws *aws);
/* Frees the clients and the credentials (NULL after); fine on a zeroed struct lb_aws. */
void lb_aws_close(struct lb_aws *aws);
static inline void lb_aws_closep(struct lb_aws *aws) {
        lb_aws_close(aws);
}
#define _cleanup_aws_ _cleanup_(lb_aws_closep)
