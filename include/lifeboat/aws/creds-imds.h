/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

struct lb_context;
struct lb_credentials;
struct lb_imds;

/*
 * The last source of the credential chain: the instance role's temporary credentials from IMDS
 * (iam/security-credentials/ROLE). imds may be NULL: a client is opened for the call (none when
 * AWS_EC2_METADATA_DISABLED is set).
 *
 * A source as lifeboat/aws/creds-env.h describes, except that every failure is -ENOKEY, as in the
 * SDKs (IMDS disabled or unreachable, no instance role, a refused or malformed answer): the
 * reason says which.
 */
int lb_creds_from_imds(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret, char *reason,
                       size_t size);
