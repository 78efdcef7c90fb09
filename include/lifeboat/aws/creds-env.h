/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

struct lb_context;
struct lb_credentials;

/*
 * The first source of the credential chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (or its legacy name AWS_SECURITY_TOKEN), as the settings hold them.
 *
 * Like every source (lifeboat/aws/creds-chain.h): 0 with *ret filled; -ENOKEY when the source is
 * not configured (reason says what is missing, the chain goes on); another negative errno when
 * it is configured but fails (reason says why, the chain stops). Here that is -EINVAL for half a
 * key pair: one of the two variables without the other is a half-exported shell, not "no keys".
 */
int lb_creds_from_env(struct lb_context *ctx, struct lb_credentials *ret, char *reason, size_t size);
