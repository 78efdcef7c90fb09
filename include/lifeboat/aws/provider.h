/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/basic/macro.h"

struct lb_context;
struct lb_credentials;
struct lb_imds;

/*
 * The credentials every AWS client of a command shares: loaded once (lifeboat/aws/creds.h says
 * from where), refreshed before temporary ones expire, and read again after an authentication
 * error. One object, so that a refresh serves every service client at once.
 */
struct lb_creds_provider;

/* Loads the credentials now (imds may be NULL when another source has them). Failures are
 * logged at error level, as by lb_credentials_load(). */
int lb_creds_provider_new(struct lb_context *ctx, struct lb_imds *imds, struct lb_creds_provider **ret);
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
/* Where they came from, for messages: "the environment", "the instance role", ... */
const char *lb_creds_provider_source(const struct lb_creds_provider *p);
