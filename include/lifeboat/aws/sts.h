/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "lifeboat/aws/query.h"

struct lb_credentials;

/* STS's Query API (version 2011-06-15): what the web identity source of the credential chain
 * asks it (lifeboat/aws/creds-web-identity.h). */
extern const struct lb_query_service lb_sts_service;

/* The form of AssumeRoleWithWebIdentity: Action, Version, RoleArn, RoleSessionName and
 * WebIdentityToken, in botocore's order (the call is sent unsigned). -EINVAL for an empty part. */
int lb_sts_form_assume_role_with_web_identity(struct lb_form *f, const char *role_arn, const char *session_name,
                                              const char *token);
/*
 * Parses the answer of AssumeRoleWithWebIdentity
 * (AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials: AccessKeyId,
 * SecretAccessKey, SessionToken, Expiration) into *ret (source and origin left to the caller),
 * and AssumedRoleUser/Arn into arn (size bytes; "" when absent or too long). -EBADMSG for
 * anything else, an error document included; -ENOMEM.
 */
int lb_sts_parse_assume_role_with_web_identity(const char *buf, size_t len, struct lb_credentials *ret, char *arn,
                                               size_t size);
