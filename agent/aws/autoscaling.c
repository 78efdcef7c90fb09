/* SPDX-License-Identifier: MIT */
/*
 * The Auto Scaling operations lifeboat uses, on the Query client (lifeboat/aws/query.h): the
 * forms, the parsers of the answers (awsquery shape: ACTIONResponse/ACTIONResult, lists of
 * <member>), and one function per call. Values that do not fit their fields are rejected,
 * never cut: a cut group name would name another group.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/basic/xml.h"

/* What AWS answers when the action is not waiting (any more): the hook timed out, somebody
 * completed it, or the instance is not in a wait state. */
#define NO_ACTIVE_ACTION "No active Lifecycle Action found"
/* A member list longer than this is not an answer to the one id or hook lifeboat asks for. */
#define MAX_MEMBERS 1000

const struct lb_query_service lb_autoscaling_service = { .name = "autoscaling", .version = "2011-01-01" };

const char *lb_lifecycle_result_to_string(enum lb_lifecycle_result r) {
        return r == LB_LIFECYCLE_ABANDON ? "ABANDON" : "CONTINUE";
}

/* ---- parsing helpers ---- */

static int copy_child(const struct lb_xml_node *n, const char *name, char *dst, size_t size) {
        const char *v = lb_xml_child_text(n, name);
        return lb_strscpy(dst, size, v ? v : "") < 0 ? -EBADMSG : 0;
}

static int child_uint(const struct lb_xml_node *n, const char *name, uint64_t *ret) {
        const char *v = lb_xml_child_text(n, name);
        if (isempty(v)) {
                *ret = 0;
                return 0;
        }
        return lb_parse_uint(v, 0, UINT32_MAX, ret) < 0 ? -EBADMSG : 0;
}

static int child_bool(const struct lb_xml_node *n, const char *name, bool *ret) {
        const char *v = lb_xml_child_text(n, name);
        if (isempty(v) || streq(v, "false"))
                *ret = false;
        else if (streq(v, "true"))
                *ret = true;
        else
                return -EBADMSG;
        return 0;
}

/* The root ACTIONResponse and its ACTIONResult. */
static int parse_result(const char *buf, size_t len, const char *action, struct lb_xml_node **ret_root,
                        const struct lb_xml_node **ret_result) {
        char name[128];
        if (lb_snprintf(name, sizeof name, "%sResponse", action) < 0)
                return -EINVAL;
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = lb_xml_parse(buf, len, &root);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (lb_aws_xml_is_error(root) || !streq(root->name, name))
                return -EBADMSG;
        if (lb_snprintf(name, sizeof name, "%sResult", action) < 0)
                return -EINVAL;
        const struct lb_xml_node *result = lb_xml_child(root, name);
        if (!result)
                return -EBADMSG;
        *ret_result = result;
        *ret_root = TAKE_PTR(root);
        return 0;
}

static size_t count_members(const struct lb_xml_node *list) {
        size_t n = 0;
        for (const struct lb_xml_node *c = list ? list->first_child : NULL; c; c = c->next)
                if (streq(c->name, "member"))
                        n++;
        return n;
}

/* The <member>s of a list (NULL: none), each parsed by parse into an array of plain items of
 * size bytes: *ret_items (NULL when there is none) and *ret_n, untouched on failure. */
static int parse_members(const struct lb_xml_node *list, size_t size,
                         int (*parse)(const struct lb_xml_node *m, void *ret_item), void **ret_items, size_t *ret_n) {
        size_t n = count_members(list), done = 0;
        if (n > MAX_MEMBERS)
                return -EBADMSG;
        _cleanup_free_ char *items = NULL;
        if (n > 0) {
                items = calloc(n, size);
                if (!items)
                        return -ENOMEM;
        }
        for (const struct lb_xml_node *c = list ? list->first_child : NULL; c; c = c->next) {
                if (!streq(c->name, "member"))
                        continue;
                int r = parse(c, items + done * size);
                if (r < 0)
                        return r;
                done++;
        }
        *ret_items = TAKE_PTR(items);
        *ret_n = done;
        return 0;
}

/* ---- DescribeAutoScalingInstances ---- */

void lb_asg_instance_list_done(struct lb_asg_instance_list *l) {
        free(l->items);
        l->items = NULL;
        l->n = 0;
}

static int parse_asg_instance(const struct lb_xml_node *m, void *ret_item) {
        struct lb_asg_instance *ret = ret_item;
        struct lb_asg_instance i = {};
        int r;
        if ((r = copy_child(m, "InstanceId", i.instance_id, sizeof i.instance_id)) < 0 ||
            (r = copy_child(m, "AutoScalingGroupName", i.group, sizeof i.group)) < 0 ||
            (r = copy_child(m, "AvailabilityZone", i.availability_zone, sizeof i.availability_zone)) < 0 ||
            (r = copy_child(m, "LifecycleState", i.lifecycle_state, sizeof i.lifecycle_state)) < 0 ||
            (r = copy_child(m, "HealthStatus", i.health_status, sizeof i.health_status)) < 0 ||
            (r = child_bool(m, "ProtectedFromScaleIn", &i.protected_from_scale_in)) < 0)
                return r;
        if (!lb_instance_id_valid(i.instance_id) || !lb_asg_name_valid(i.group))
                return -EBADMSG;
        *ret = i;
        return 0;
}

int lb_autoscaling_parse_instances(const char *buf, size_t len, struct lb_asg_instance_list *ret,
                                   char **ret_next_token) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        const struct lb_xml_node *result;
        int r = parse_result(buf, len, "DescribeAutoScalingInstances", &root, &result);
        if (r < 0)
                return r;

        _cleanup_(lb_asg_instance_list_donep) struct lb_asg_instance_list l = {};
        void *items;
        r = parse_members(lb_xml_child(result, "AutoScalingInstances"), sizeof *l.items, parse_asg_instance, &items,
                          &l.n);
        if (r < 0)
                return r;
        l.items = items;

        char *token = NULL;
        const char *t = lb_xml_child_text(result, "NextToken");
        if (ret_next_token && !isempty(t)) {
                token = strdup(t);
                if (!token)
                        return -ENOMEM;
        }
        *ret = l;
        l = (struct lb_asg_instance_list) {};
        if (ret_next_token)
                *ret_next_token = token;
        return 0;
}

/* ---- DescribeLifecycleHooks ---- */

void lb_lifecycle_hook_list_done(struct lb_lifecycle_hook_list *l) {
        free(l->items);
        l->items = NULL;
        l->n = 0;
}

static int parse_hook(const struct lb_xml_node *m, void *ret_item) {
        struct lb_lifecycle_hook *ret = ret_item;
        struct lb_lifecycle_hook h = {};
        int r;
        if ((r = copy_child(m, "LifecycleHookName", h.name, sizeof h.name)) < 0 ||
            (r = copy_child(m, "AutoScalingGroupName", h.group, sizeof h.group)) < 0 ||
            (r = copy_child(m, "LifecycleTransition", h.transition, sizeof h.transition)) < 0 ||
            (r = child_uint(m, "HeartbeatTimeout", &h.heartbeat_timeout_s)) < 0 ||
            (r = child_uint(m, "GlobalTimeout", &h.global_timeout_s)) < 0 ||
            (r = copy_child(m, "DefaultResult", h.default_result, sizeof h.default_result)) < 0)
                return r;
        if (!lb_lifecycle_hook_name_valid(h.name) || !lb_asg_name_valid(h.group))
                return -EBADMSG;
        *ret = h;
        return 0;
}

int lb_autoscaling_parse_lifecycle_hooks(const char *buf, size_t len, struct lb_lifecycle_hook_list *ret) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        const struct lb_xml_node *result;
        int r = parse_result(buf, len, "DescribeLifecycleHooks", &root, &result);
        if (r < 0)
                return r;

        _cleanup_(lb_lifecycle_hook_list_donep) struct lb_lifecycle_hook_list l = {};
        void *items;
        r = parse_members(lb_xml_child(result, "LifecycleHooks"), sizeof *l.items, parse_hook, &items, &l.n);
        if (r < 0)
                return r;
        l.items = items;
        *ret = l;
        l = (struct lb_lifecycle_hook_list) {};
        return 0;
}

int lb_autoscaling_parse_empty_result(const char *buf, size_t len, const char *action) {
        if (isempty(action))
                return -EINVAL;
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        const struct lb_xml_node *result;
        return parse_result(buf, len, action, &root, &result);
}

bool lb_autoscaling_error_no_active_action(const struct lb_aws_error *e) {
        return streq(e->code, "ValidationError") && strncasecmp(e->message, NO_ACTIVE_ACTION, strlen(NO_ACTIVE_ACTION)) == 0;
}

/* ---- forms ---- */

static const char *version(void) {
        return lb_autoscaling_service.version;
}

int lb_autoscaling_form_describe_instances(struct lb_form *f, const char *const *instance_ids, size_t n,
                                           const char *next_token) {
        if (n == 0 || !instance_ids)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!lb_instance_id_valid(instance_ids[i]))
                        return -EINVAL;
        int r;
        if ((r = lb_form_init_action(f, "DescribeAutoScalingInstances", version())) < 0 ||
            (r = lb_form_add_list(f, "InstanceIds.member", instance_ids, n)) < 0 ||
            (next_token && (r = lb_form_add(f, "NextToken", next_token)) < 0))
                return r;
        return 0;
}

int lb_autoscaling_form_describe_lifecycle_hooks(struct lb_form *f, const char *group, const char *hook) {
        if (!lb_asg_name_valid(group) || !lb_lifecycle_hook_name_valid(hook))
                return -EINVAL;
        int r;
        if ((r = lb_form_init_action(f, "DescribeLifecycleHooks", version())) < 0 ||
            (r = lb_form_add(f, "AutoScalingGroupName", group)) < 0 ||
            (r = lb_form_add(f, "LifecycleHookNames.member.1", hook)) < 0)
                return r;
        return 0;
}

static int action_form(struct lb_form *f, const char *action, const char *group, const char *hook,
                       const char *instance_id) {
        if (!lb_asg_name_valid(group) || !lb_lifecycle_hook_name_valid(hook) || !lb_instance_id_valid(instance_id))
                return -EINVAL;
        int r;
        if ((r = lb_form_init_action(f, action, version())) < 0 ||
            (r = lb_form_add(f, "LifecycleHookName", hook)) < 0 ||
            (r = lb_form_add(f, "AutoScalingGroupName", group)) < 0 ||
            (r = lb_form_add(f, "InstanceId", instance_id)) < 0)
                return r;
        return 0;
}

int lb_autoscaling_form_record_heartbeat(struct lb_form *f, const char *group, const char *hook,
                                         const char *instance_id) {
        return action_form(f, "RecordLifecycleActionHeartbeat", group, hook, instance_id);
}

int lb_autoscaling_form_complete_lifecycle_action(struct lb_form *f, const char *group, const char *hook,
                                                  const char *instance_id, enum lb_lifecycle_result result) {
        if (result != LB_LIFECYCLE_CONTINUE && result != LB_LIFECYCLE_ABANDON)
                return -EINVAL;
        int r = action_form(f, "CompleteLifecycleAction", group, hook, instance_id);
        if (r < 0)
                return r;
        return lb_form_add(f, "LifecycleActionResult", lb_lifecycle_result_to_string(result));
}

/* ---- the client ---- */

struct lb_autoscaling {
        struct lb_query *q;
};

int lb_autoscaling_new(struct lb_context *ctx, struct lb_creds_provider *creds, const char *region,
                       struct lb_autoscaling **ret) {
        _cleanup_(lb_autoscaling_freep) struct lb_autoscaling *as = calloc(1, sizeof *as);
        if (!as)
                return -ENOMEM;
        int r = lb_query_new(ctx, creds, &lb_autoscaling_service, region, ctx->settings.autoscaling_endpoint, &as->q);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(as);
        return 0;
}

void lb_autoscaling_free(struct lb_autoscaling *as) {
        if (!as)
                return;
        lb_query_free(as->q);
        free(as);
}

struct lb_query *lb_autoscaling_query(const struct lb_autoscaling *as) {
        return as->q;
}

int lb_autoscaling_describe_instance(struct lb_autoscaling *as, const char *instance_id, struct lb_asg_instance *ret) {
        _cleanup_query_call_ struct lb_query_call call = {};
        const char *ids[] = { instance_id };
        int r = lb_autoscaling_form_describe_instances(&call.form, ids, 1, NULL);
        if (r < 0)
                return lb_query_local_error(as->q, r);
        r = lb_query_perform_one(as->q, &call);
        if (r < 0)
                return r;

        _cleanup_asg_instance_list_ struct lb_asg_instance_list l = {};
        r = lb_autoscaling_parse_instances(call.answer.data, call.answer.len, &l, NULL);
        if (r < 0)
                return lb_query_bad_answer(as->q, "DescribeAutoScalingInstances", r);
        for (size_t i = 0; i < l.n; i++)
                if (streq(l.items[i].instance_id, instance_id)) {
                        *ret = l.items[i];
                        return 0;
                }
        return lb_query_record_error(as->q, -ENOENT, LB_AWS_ERR_OTHER, "instance %s is in no Auto Scaling group",
                                     instance_id);
}

int lb_autoscaling_describe_lifecycle_hook(struct lb_autoscaling *as, const char *group, const char *hook,
                                           struct lb_lifecycle_hook *ret) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_autoscaling_form_describe_lifecycle_hooks(&call.form, group, hook);
        if (r < 0)
                return lb_query_local_error(as->q, r);
        r = lb_query_perform_one(as->q, &call);
        if (r < 0)
                return r;

        _cleanup_lifecycle_hook_list_ struct lb_lifecycle_hook_list l = {};
        r = lb_autoscaling_parse_lifecycle_hooks(call.answer.data, call.answer.len, &l);
        if (r < 0)
                return lb_query_bad_answer(as->q, "DescribeLifecycleHooks", r);
        for (size_t i = 0; i < l.n; i++)
                if (streq(l.items[i].name, hook) && streq(l.items[i].group, group)) {
                        *ret = l.items[i];
                        return 0;
                }
        return lb_query_record_error(as->q, -ENOENT, LB_AWS_ERR_OTHER, "the group has no lifecycle hook %s", hook);
}

/* Sends an action without output; a ValidationError saying nothing waits is -ENOENT. */
static int empty_result_call(struct lb_autoscaling *as, struct lb_query_call *call, const char *action) {
        int r = lb_query_perform_one(as->q, call);
        if (r < 0)
                return lb_autoscaling_error_no_active_action(lb_query_last_error(as->q)) ? -ENOENT : r;
        r = lb_autoscaling_parse_empty_result(call->answer.data, call->answer.len, action);
        if (r < 0)
                return lb_query_bad_answer(as->q, action, r);
        return 0;
}

int lb_autoscaling_record_heartbeat(struct lb_autoscaling *as, const char *group, const char *hook,
                                    const char *instance_id) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_autoscaling_form_record_heartbeat(&call.form, group, hook, instance_id);
        if (r < 0)
                return lb_query_local_error(as->q, r);
        return empty_result_call(as, &call, "RecordLifecycleActionHeartbeat");
}

int lb_autoscaling_complete_lifecycle_action(struct lb_autoscaling *as, const char *group, const char *hook,
                                             const char *instance_id, enum lb_lifecycle_result result) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_autoscaling_form_complete_lifecycle_action(&call.form, group, hook, instance_id, result);
        if (r < 0)
                return lb_query_local_error(as->q, r);
        return empty_result_call(as, &call, "CompleteLifecycleAction");
}
