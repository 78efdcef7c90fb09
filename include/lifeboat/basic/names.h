/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * The one home of every naming rule: what a volume id, an instance id, a group, a region or a
 * path that ends up in a fluentd config may look like. Settings, parsers and renderers all ask
 * here, so a value one of them accepts is never refused by another.
 */

/* The volume id as NVMe serial: "vol-0abc" -> "vol0abc". */
int lb_volume_id_to_serial(const char *volume_id, char *buf, size_t size);
/* Checks a volume id has the form vol-[0-9a-f]{8,17}, an instance id i-[0-9a-f]{8,17}. */
bool lb_volume_id_valid(const char *id);
bool lb_instance_id_valid(const char *id);

/* Whether a path is safe to place in a fluentd config: absolute, made of
 * [A-Za-z0-9/_.-] only, no "." or ".." component, shorter than PATH_MAX. */
bool lb_plain_path_valid(const char *path);

#define LB_GROUP_MAX 255
#define LB_REGION_MAX 31
/* The group: a tag value, an EC2 filter value and a word in fluentd configs, so 1 to 255 of
 * [A-Za-z0-9_.:-] (an ECS cluster name always is): no space, quote, '#', '*' or '?' (an EC2
 * filter wildcard would match other groups' volumes). */
bool lb_group_valid(const char *g);
/* A region name: [a-z][a-z0-9-]*, at most 31 characters, not ending in '-' ("us-east-1"). */
bool lb_region_valid(const char *r);

/*
 * Whether a request to url may travel in clear text: anything but http:// may (it is not
 * clear text), http:// only to this host (127.0.0.0/8 and [::1] as literals, or localhost), and
 * with imds also to the Instance Metadata Service's link-local addresses (169.254.169.254 and
 * [fd00:ec2::254]), which only speak http. The host is what follows the last '@' of the
 * authority, so "http://127.0.0.1@example.com/" goes to example.com and is refused.
 */
bool lb_url_cleartext_allowed(const char *url, bool imds);

#define LB_METRIC_NAMESPACE_MAX 255
/* A CloudWatch namespace lifeboat publishes to: 1 to 255 of [A-Za-z0-9 ._/#:-] (CloudWatch's
 * set), not starting with ':' (its pattern) or "AWS/" (reserved for AWS's own metrics). */
bool lb_metric_namespace_valid(const char *ns);
#define LB_ASG_NAME_MAX 1600
#define LB_LIFECYCLE_HOOK_NAME_MAX 255
/* An Auto Scaling group name as lifeboat accepts it: 1 to 1600 bytes of valid UTF-8 without
 * control characters (AWS allows 1600 characters; lifeboat logs and stores it, so no newline). */
bool lb_asg_name_valid(const char *name);
/* A lifecycle hook name: 1 to 255 of [A-Za-z0-9_/-], as PutLifecycleHook requires. */
bool lb_lifecycle_hook_name_valid(const char *name);

/*
 * Where container credentials may come from (AWS_CONTAINER_CREDENTIALS_FULL_URI, and the base of
 * the relative URI): the AWS SDKs' rule. Any https:// URL; http:// only to this host (127.0.0.0/8
 * and [::1] as literals, or localhost) or to the link-local addresses of the ECS agent
 * (169.254.170.2) and the EKS Pod Identity Agent (169.254.170.23, [fd00:ec2::23]). The host is
 * what follows the last '@' of the authority, as for lb_url_cleartext_allowed(). Anything but
 * http:// or https:// is refused.
 */
bool lb_container_url_allowed(const char *url);
/*
 * A container credentials URL (or relative URI) as logs show it: scheme, host and port, and the
 * path's first segment, then "/..." when there is more. The rest of an ECS relative URI
 * (/v2/credentials/<id>) is all that guards the task role's endpoint, and a full URI may carry
 * user:password@ or a query: none of that is shown. Always a string, cut to fit.
 */
void lb_url_for_logs(const char *url, char *buf, size_t size);
/* An STS role session name: 2 to 64 of [A-Za-z0-9_+=,.@-]. */
bool lb_role_session_name_valid(const char *name);
