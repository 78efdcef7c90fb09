/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "lifeboat/aws/creds-chain.h"
#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/macro.h"

struct lb_context;
struct lb_credentials;

/*
 * The credentials every AWS client of a command shares: loaded once (lifeboat/aws/creds-chain.h
 * says from where), refreshed before temporary ones expire, and read again after an
 * authentication error. One object, so that a refresh serves every service client at once.
 *
 * The provider is handed its loader (lb_credentials_load, or a stand-in in tests) rather than
 * calling the chain itself: the chain's web identity source talks to STS through the Query client,
 * which asks this provider for credentials, and calls between modules go one way.
 */
struct lb_creds_provider;

typedef int (*lb_creds_loader)(struct lb_context *ctx, const struct lb_creds_chain *chain,
                               struct lb_credentials *ret);

/* Loads the credentials now with load(ctx, chain, ...); chain (may be NULL) is copied, and its
 * IMDS client must outlive the provider. Failures are logged by the loader. */
int lb_creds_provider_new(struct lb_context *ctx, lb_creds_loader load, const struct lb_creds_chain *chain,
                          struct lb_creds_provider **ret);
void lb_creds_provider_free(struct lb_creds_provider *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_creds_provider *, lb_creds_provider_free);

/* The credentials to sign with now: temporary ones are fetched again first when they expire
 * within the refresh margin (a failed refresh keeps the old ones, with a warning). */
const struct lb_credentials *lb_creds_provider_get(struct lb_creds_provider *p);
/* Whether reading the credentials again can cure an authentication error (they are temporary
 * and come from a source that rotates them). */
bool lb_creds_provider_refreshable(const struct lb_creds_provider *p);
/* Reads the credentials again now; the old ones stay when that fails. */
int lb_creds_provider_reload(struct lb_creds_provider *p);
/* Where they came from, for messages: "the instance role lifeboat-role (IMDS)", ... */
const char *lb_creds_provider_source(const struct lb_creds_provider *p);
/* The credentials as they are now, without refreshing (for reports: source, origin, expiration). */
const struct lb_credentials *lb_creds_provider_peek(const struct lb_creds_provider *p);
