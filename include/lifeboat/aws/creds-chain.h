/* SPDX-License-Identifier: MIT */
#pragma once

#include "lifeboat/basic/names.h"

struct lb_context;
struct lb_credentials;
struct lb_imds;

/*
 * The credential chain, in the AWS SDKs' order; the first source that has credentials wins:
 *   1. the environment (lifeboat/aws/creds-env.h),
 *   2. web identity (lifeboat/aws/creds-web-identity.h),
 *   3. a profile's static keys (lifeboat/aws/creds-profile.h),
 *   4. container credentials (lifeboat/aws/creds-container.h),
 *   5. the instance role from IMDS (lifeboat/aws/creds-imds.h).
 * A source that is not configured is skipped, with the reason; a source that is configured but
 * fails stops the chain (as in the SDKs: a broken web identity or container setup must not
 * silently fall through to another identity).
 */
struct lb_creds_chain {
        struct lb_imds *imds;           /* NULL: the instance role source opens its own client */
        char region[LB_REGION_MAX + 1]; /* for STS's regional endpoint; "": the global endpoint */
};

/*
 * Loads credentials from the first source that has them (chain may be NULL: no IMDS client, no
 * region). Every skipped source is logged at debug level, the winner too (never a secret). When
 * no source has any: -ENOKEY, and one error "no AWS credentials: environment: ...; web identity:
 * ...; profile default: ...; container: ...; instance role: ..." saying why each failed. When a
 * source fails: its error (lifeboat/aws/creds-*.h), logged as "AWS credentials from SOURCE:
 * ...". Credentials that are already expired: -EKEYEXPIRED. *ret is overwritten, not freed.
 */
int lb_credentials_load(struct lb_context *ctx, const struct lb_creds_chain *chain, struct lb_credentials *ret);
