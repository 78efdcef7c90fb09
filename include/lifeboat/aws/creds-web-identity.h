/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

struct lb_aws_profile;
struct lb_context;
struct lb_credentials;

/*
 * The second source of the credential chain, as on EKS (IRSA) or anywhere an OIDC token is at
 * hand: the token in AWS_WEB_IDENTITY_TOKEN_FILE is exchanged for the role AWS_ROLE_ARN with STS
 * AssumeRoleWithWebIdentity (an unsigned Query call). Each of the file, the role and the session
 * name (AWS_ROLE_SESSION_NAME, default "lifeboat-EPOCH") comes from its variable, else from the
 * profile's web_identity_token_file, role_arn and role_session_name (profile may be NULL).
 *
 * STS is asked at region's endpoint (https://sts.REGION.amazonaws.com; with region NULL, the
 * global https://sts.amazonaws.com), or at AWS_ENDPOINT_URL_STS. The file is read again at every
 * call, so a refresh picks up a rotated token; trailing white space is dropped.
 *
 * A source as lifeboat/aws/creds-env.h describes: -ENOKEY without a token file; -EINVAL for a
 * token file without a role, an unreadable or empty token file, or a malformed session name;
 * -EACCES when STS refuses the token (InvalidIdentityToken, ExpiredTokenException,
 * AccessDenied, ...); -EHOSTUNREACH when STS cannot be reached; -EBADMSG for an answer that is
 * not one.
 */
int lb_creds_from_web_identity(struct lb_context *ctx, const struct lb_aws_profile *profile, const char *region,
                               struct lb_credentials *ret, char *reason, size_t size);
