/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <time.h>



struct lb_context;
struct lb_imds;

/*
 * AWS credentials: from the environment (AWS_ACCESS_KEY_ID and friends), else
 * the instance role from IMDS, refreshed ahead of Expiration. The secret and
 * token are never logged.
 */
struct lb_credentials {
        char access_key_id[128];
        char secret_access_key[128];
        char *session_token;    /* owned; NULL when none */
        time_t expiration;      /* 0 = does not expire */
        bool from_imds;
};

void lb_credentials_done(struct lb_credentials *c);
/* Parses iam/security-credentials/ROLE. A 200 answer with Code != "Success" is -EACCES. */
int lb_credentials_parse_role_json(const char *json, struct lb_credentials *ret);
/* Whether credentials should be fetched again now (10 minutes before they expire). */
bool lb_credentials_need_refresh(const struct lb_credentials *c, time_t now);
/* Loads credentials: environment first, else the role from IMDS (imds may be NULL when
 * the environment has them). Only one of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set:
 * -EINVAL. No credentials anywhere (no env, no imds, or no instance role): -ENOKEY. A
 * non-Success Code: -EACCES. Failures are logged at error level. *ret is overwritten, not
 * freed: release older credentials with lb_credentials_done() first. */
int lb_credentials_load(struct lb_context *ctx, struct lb_imds *imds, struct lb_credentials *ret);
