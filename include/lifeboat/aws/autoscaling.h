/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/aws/query.h"
#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/names.h"

struct lb_context;
struct lb_creds_provider;

/*
 * The Auto Scaling Query API (version 2011-01-01, SigV4 service "autoscaling"): the service, the
 * operations lifeboat uses to hold a termination lifecycle hook while it drains (the group of
 * this instance, the hook's timeouts, heartbeats, completing the action), their forms, and the
 * parsers of their answers: buffers in, typed structs out. Element order may vary and unknown
 * elements are ignored. Errors come as ErrorResponse/Error (lb_aws_parse_error()).
 */
extern const struct lb_query_service lb_autoscaling_service;

/* ---- typed answers ---- */

/* One member of DescribeAutoScalingInstances. */
struct lb_asg_instance {
        char instance_id[32];
        char group[LB_ASG_NAME_MAX + 1];
        char availability_zone[32];
        char lifecycle_state[32];       /* InService, Terminating:Wait, ... */
        char health_status[32];
        bool protected_from_scale_in;
};

struct lb_asg_instance_list {
        struct lb_asg_instance *items;
        size_t n;
};
void lb_asg_instance_list_done(struct lb_asg_instance_list *l);
static inline void lb_asg_instance_list_donep(struct lb_asg_instance_list *l) {
        lb_asg_instance_list_done(l);
}
#define _cleanup_asg_instance_list_ _cleanup_(lb_asg_instance_list_donep)

#define LB_LIFECYCLE_TERMINATING "autoscaling:EC2_INSTANCE_TERMINATING"
/* The least heartbeat timeout a hook may have (PutLifecycleHook refuses less). */
#define LB_LIFECYCLE_HEARTBEAT_MIN_S 30u
/* A hook's global timeout: 100 heartbeat timeouts, at most 48 hours. */
#define LB_LIFECYCLE_GLOBAL_MAX_S 172800u

/* One member of DescribeLifecycleHooks. */
struct lb_lifecycle_hook {
        char name[LB_LIFECYCLE_HOOK_NAME_MAX + 1];
        char group[LB_ASG_NAME_MAX + 1];
        char transition[64];            /* autoscaling:EC2_INSTANCE_TERMINATING | ..._LAUNCHING */
        uint64_t heartbeat_timeout_s;   /* 0 when absent */
        uint64_t global_timeout_s;      /* 0 when absent */
        char default_result[16];        /* CONTINUE | ABANDON */
};

struct lb_lifecycle_hook_list {
        struct lb_lifecycle_hook *items;
        size_t n;
};
void lb_lifecycle_hook_list_done(struct lb_lifecycle_hook_list *l);
static inline void lb_lifecycle_hook_list_donep(struct lb_lifecycle_hook_list *l) {
        lb_lifecycle_hook_list_done(l);
}
#define _cleanup_lifecycle_hook_list_ _cleanup_(lb_lifecycle_hook_list_donep)

/* What CompleteLifecycleAction tells the group. lifeboat only ever sends CONTINUE: ABANDON would
 * skip the group's other hooks (ECS managed draining's, say). */
enum lb_lifecycle_result {
        LB_LIFECYCLE_CONTINUE,
        LB_LIFECYCLE_ABANDON,
};
const char *lb_lifecycle_result_to_string(enum lb_lifecycle_result r);

/* ---- answer parsing (buffers in, typed structs out) ---- */

/* A DescribeAutoScalingInstances answer; ret_next_token (may be NULL) gets NULL on the last
 * page. An instance in no group is an empty list. -EBADMSG for anything else than the answer,
 * or a member without InstanceId or AutoScalingGroupName, or a value that does not fit. */
int lb_autoscaling_parse_instances(const char *buf, size_t len, struct lb_asg_instance_list *ret,
                                   char **ret_next_token);
/* A DescribeLifecycleHooks answer. -EBADMSG as above (a member needs its name and group). */
int lb_autoscaling_parse_lifecycle_hooks(const char *buf, size_t len, struct lb_lifecycle_hook_list *ret);
/* The answer of an action without output (CompleteLifecycleAction, RecordLifecycleActionHeartbeat):
 * <ACTIONResponse> with its <ACTIONResult/>. -EBADMSG for anything else. */
int lb_autoscaling_parse_empty_result(const char *buf, size_t len, const char *action);
/* Whether an error says the lifecycle action is not waiting any more: "ValidationError: No active
 * Lifecycle Action found with instance ID ..." (it timed out, or someone else completed it). */
bool lb_autoscaling_error_no_active_action(const struct lb_aws_error *e);

/* ---- forms ---- */

/* -EINVAL for a missing or malformed argument (a group, hook or instance id lifeboat would not
 * accept: lifeboat/basic/names.h). */
int lb_autoscaling_form_describe_instances(struct lb_form *f, const char *const *instance_ids, size_t n,
                                           const char *next_token);
int lb_autoscaling_form_describe_lifecycle_hooks(struct lb_form *f, const char *group, const char *hook);
int lb_autoscaling_form_record_heartbeat(struct lb_form *f, const char *group, const char *hook,
                                         const char *instance_id);
int lb_autoscaling_form_complete_lifecycle_action(struct lb_form *f, const char *group, const char *hook,
                                                  const char *instance_id, enum lb_lifecycle_result result);

/* ---- the client ---- */

struct lb_autoscaling;

/* A client for region at AWS_ENDPOINT_URL_AUTO_SCALING (else AWS_ENDPOINT_URL, else the regional
 * endpoint), signing with the provider's credentials. -EINVAL for a malformed region. */
int lb_autoscaling_new(struct lb_context *ctx, struct lb_creds_provider *creds, const char *region,
                       struct lb_autoscaling **ret);
void lb_autoscaling_free(struct lb_autoscaling *as);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_autoscaling *, lb_autoscaling_free);

/* The Query client underneath: errors, counts. */
struct lb_query *lb_autoscaling_query(const struct lb_autoscaling *as);
static inline const struct lb_aws_error *lb_autoscaling_last_error(const struct lb_autoscaling *as) {
        return lb_query_last_error(lb_autoscaling_query(as));
}
static inline const char *lb_autoscaling_last_error_text(const struct lb_autoscaling *as, char *buf, size_t size) {
        return lb_query_last_error_text(lb_autoscaling_query(as), buf, size);
}

/*
 * One call each: 0, or the negative errno of the error kind (lb_aws_error_kind_to_errno()), with
 * the details in lb_autoscaling_last_error(). -EINVAL for bad arguments, -EBADMSG for a 2xx answer
 * that cannot be read.
 */
/* DescribeAutoScalingInstances of one instance: -ENOENT when it is in no group. */
int lb_autoscaling_describe_instance(struct lb_autoscaling *as, const char *instance_id, struct lb_asg_instance *ret);
/* DescribeLifecycleHooks of one hook: -ENOENT when the group has no such hook. */
int lb_autoscaling_describe_lifecycle_hook(struct lb_autoscaling *as, const char *group, const char *hook,
                                           struct lb_lifecycle_hook *ret);
/* RecordLifecycleActionHeartbeat and CompleteLifecycleAction by instance id: -ENOENT when no
 * lifecycle action of this hook is waiting for the instance (lb_autoscaling_error_no_active_action()). */
int lb_autoscaling_record_heartbeat(struct lb_autoscaling *as, const char *group, const char *hook,
                                    const char *instance_id);
int lb_autoscaling_complete_lifecycle_action(struct lb_autoscaling *as, const char *group, const char *hook,
                                             const char *instance_id, enum lb_lifecycle_result result);
