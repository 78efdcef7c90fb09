/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lifeboat/basic/macro.h"

struct lb_context;

/*
 * IMDSv2 client: a session token (PUT /latest/api/token, TTL 21600 s) sent
 * on every GET, fetched again on 401 and before it expires. Short timeouts
 * and a few retries, so off EC2 it fails within seconds.
 *
 * Errors: -ENOENT (404: no such item / no event), -EHOSTUNREACH (no answer),
 * -EACCES (403: IMDS disabled on this instance), -ENODEV (IMDS disabled by
 * AWS_EC2_METADATA_DISABLED), -EPROTO (unexpected status), -EBADMSG (bad body).
 * -EHOSTUNREACH also when every attempt answered 5xx. Each request is tried at
 * most 3 times (100 ms, 200 ms apart) within settings.imds_timeout_ms each.
 */
struct lb_imds;

/* A client for settings.imds_endpoint (nothing is sent yet); -ENODEV when
 * AWS_EC2_METADATA_DISABLED is set. */
int lb_imds_new(struct lb_context *ctx, struct lb_imds **ret);
/* strerror() for IMDS errors: "no answer" for -EHOSTUNREACH, whatever the route. */
const char *lb_imds_strerror(int r);
void lb_imds_free(struct lb_imds *imds);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_imds *, lb_imds_free);
#define _cleanup_imds_ _cleanup_(lb_imds_freep)

/* GET path (relative to the endpoint, e.g. "/latest/meta-data/instance-id"). */
int lb_imds_get(struct lb_imds *imds, const char *path, char **ret_body);
/* Number of HTTP requests this client sent (for tests and benchmarks). */
unsigned lb_imds_request_count(const struct lb_imds *imds);

struct lb_identity {
        char instance_id[32];
        char region[32];
        char availability_zone[32];
        char availability_zone_id[32];
        char instance_type[32];
        char account_id[16];
        char lifecycle[16];     /* "spot", "on-demand", or "" when unknown */
};

/* Parses the identity document (JSON). */
int lb_identity_parse_document(const char *json, struct lb_identity *ret);
/* Reads the identity document, and when want_extra the AZ id and lifecycle too. */
int lb_imds_identity(struct lb_imds *imds, bool want_extra, struct lb_identity *ret);

/* Interruption signals, for watch. */
enum lb_spot_action {
        LB_SPOT_NONE,
        LB_SPOT_TERMINATE,
        LB_SPOT_STOP,
        LB_SPOT_HIBERNATE,
};
struct lb_spot_notice {
        enum lb_spot_action action;
        time_t time;            /* the deadline */
};
/* Parses spot/instance-action: {"action": "terminate|stop|hibernate", "time": "..."}. */
int lb_spot_notice_parse(const char *json, struct lb_spot_notice *ret);
/* Parses {"noticeTime":"..."} of events/recommendations/rebalance. */
int lb_rebalance_parse(const char *json, time_t *ret_notice_time);
/* Parses autoscaling/target-lifecycle-state: stripped, printable, at most 31 characters
 * (-EBADMSG otherwise, -ENOBUFS when buf is too small). */
int lb_lifecycle_state_parse(const char *text, char *buf, size_t size);
/* 0 and action != NONE when a notice is there; action NONE on 404. */
int lb_imds_spot_notice(struct lb_imds *imds, struct lb_spot_notice *ret);
/* 1 when a rebalance recommendation is there (ret_notice_time set), 0 when not. */
int lb_imds_rebalance(struct lb_imds *imds, time_t *ret_notice_time);
/* ASG target lifecycle state, "" when not populated (404). */
int lb_imds_lifecycle_state(struct lb_imds *imds, char *buf, size_t size);
/* A tag value read from IMDS: valid UTF-8 without control characters, copied as it is
 * (-EBADMSG otherwise, -ENOBUFS when buf is too small). */
int lb_imds_tag_value_parse(const char *text, char *buf, size_t size);
/* The value of this instance's tag key (meta-data/tags/instance/KEY, when instance metadata tags
 * are on): "" on 404 (tags not exposed in IMDS, or no such tag). -EINVAL for a key that is not
 * 1 to 128 of [A-Za-z0-9:._-]. */
int lb_imds_instance_tag(struct lb_imds *imds, const char *key, char *buf, size_t size);
/* "none", "terminate", "stop", "hibernate". */
const char *lb_spot_action_to_string(enum lb_spot_action a);

/* The first line of iam/security-credentials/: an IAM role name (1..64 of
 * [A-Za-z0-9+=,.@_-]). -ENOENT when empty, -EBADMSG when malformed. */
int lb_role_list_parse(const char *text, char *buf, size_t size);
/* The instance role's name, read once and cached (refresh reads it again). -ENOENT when the
 * instance has no role. The string belongs to imds and lives until the next refresh. */
int lb_imds_role_name(struct lb_imds *imds, bool refresh, const char **ret_role);
