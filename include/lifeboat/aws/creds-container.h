/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

struct lb_context;
struct lb_credentials;

/*
 * The fourth source of the credential chain: the container credentials endpoint of ECS (the task
 * role) or of the EKS Pod Identity Agent.
 *
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (set by the ECS agent) is a path below
 * LIFEBOAT_CONTAINER_ENDPOINT (http://169.254.170.2; tests point it at a stand-in); else
 * AWS_CONTAINER_CREDENTIALS_FULL_URI is the whole URL. Both URLs obey the SDKs' host rule
 * (lb_container_url_allowed(), checked by the settings). The Authorization header is the content
 * of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read again at every call, as EKS rotates it; one
 * trailing line break dropped), else AWS_CONTAINER_AUTHORIZATION_TOKEN, else none.
 *
 * A source as lifeboat/aws/creds-env.h describes: -ENOKEY when neither URI is set; -EINVAL for a
 * relative URI that does not start with '/' or an unusable token file; -EHOSTUNREACH when the
 * endpoint does not answer (3 attempts, 1 s apart); -EACCES for a 4xx answer; -EREMOTEIO for a
 * 5xx one; -EBADMSG for an answer that is not credentials.
 */
int lb_creds_from_container(struct lb_context *ctx, struct lb_credentials *ret, char *reason, size_t size);

/*
 * Parses what the endpoint answers: a JSON object with the strings AccessKeyId,
 * SecretAccessKey, Token and Expiration (RoleArn and AccountId optional; RoleArn goes to
 * role_arn, "" when absent). -EBADMSG with a short reason in error (never a value) for anything
 * else; -ENOMEM.
 */
int lb_container_credentials_parse(const char *json, size_t len, struct lb_credentials *ret, char *role_arn,
                                   size_t role_arn_size, char *error, size_t error_size);
