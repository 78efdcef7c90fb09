/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>



/*
 * A set of AWS credentials and where it came from. The sources (lifeboat/aws/creds-*.h) fill it,
 * the chain (lifeboat/aws/creds-chain.h) picks the first source that has one, the provider
 * (lifeboat/aws/provider.h) keeps it fresh. The secret and the token are never logged and are
 * wiped from memory when released.
 */
enum lb_creds_source {
        LB_CREDS_NONE = 0,
        LB_CREDS_ENVIRONMENT,   /* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN */
        LB_CREDS_WEB_IDENTITY,  /* STS AssumeRoleWithWebIdentity with a token file */
        LB_CREDS_PROFILE,       /* static keys of a profile in the shared credentials or config file */
        LB_CREDS_CONTAINER,     /* the ECS (or EKS Pod Identity) container credentials endpoint */
        LB_CREDS_INSTANCE_ROLE, /* the instance role from IMDS */
        _LB_CREDS_SOURCE_MAX,
};

#define LB_CREDS_TOKEN_MAX (64u * 1024u)

struct lb_credentials {
        char access_key_id[128];
        char secret_access_key[128];
        char *session_token;    /* owned; NULL when none */
        time_t expiration;      /* 0 = does not expire */
        enum lb_creds_source source;
        char origin[320];       /* where exactly, for people ("profile ci in /root/.aws/credentials"); no secret */
};

void lb_credentials_done(struct lb_credentials *c);
/* The stable word for a source, as `status --json` shows it: "environment", "web-identity",
 * "profile", "container", "instance-role" ("none" for LB_CREDS_NONE). */
const char *lb_creds_source_to_string(enum lb_creds_source s);
/* Fills *ret from the parts every source hands out: the key id (1 to 127 printable characters
 * without spaces), the secret (the same), the token (up to LB_CREDS_TOKEN_MAX of them; NULL or ""
 * for none) and the expiration (0: none). source and origin are left for the caller. -EINVAL
 * when a part is malformed (*ret_bad names it: "access key id", ...; never its value), -ENOMEM.
 * *ret is overwritten, not freed. */
int lb_credentials_set(struct lb_credentials *ret, const char *key, const char *secret, const char *token,
                       time_t expiration, const char **ret_bad);
/* Parses iam/security-credentials/ROLE. A 200 answer with Code != "Success" is -EACCES. */
int lb_credentials_parse_role_json(const char *json, struct lb_credentials *ret);
/* Whether credentials should be fetched again now (10 minutes before they expire). */
bool lb_credentials_need_refresh(const struct lb_credentials *c, time_t now);
/* Whether they are temporary and come from a source that rotates them (web identity, container,
 * instance role): fetching them again can cure an expired or rotated key. */
bool lb_credentials_refreshable(const struct lb_credentials *c);
