/* SPDX-License-Identifier: MIT */
/*
 * The EC2 operations lifeboat uses, on the Query client (lifeboat/aws/query.h): each builds its
 * form with the lb_ec2_form_*() builders (which boot and reap also use for their concurrent
 * batches) and reads its answer with lifeboat/aws/ec2-answers.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/ec2-answers.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"

#define EC2_PAGE_SIZE "500"
#define EC2_SNAPSHOT_PAGE_SIZE "1000" /* DescribeSnapshots takes 5 to 1000 */
#define EC2_MAX_PAGES 1000      /* 500 000 volumes: far beyond any account, so a loop means a broken peer */

const struct lb_query_service lb_ec2_service = { .name = "ec2", .version = "2016-11-15" };

struct lb_ec2 {
        struct lb_query *q;
};

int lb_ec2_new(struct lb_context *ctx, struct lb_creds_provider *creds, const char *region, struct lb_ec2 **ret) {
        if (isempty(region))
                region = ctx->settings.region;
        if (isempty(region))
                return -EINVAL;
        _cleanup_(lb_ec2_freep) struct lb_ec2 *ec2 = calloc(1, sizeof *ec2);
        if (!ec2)
                return -ENOMEM;
        int r = lb_query_new(ctx, creds, &lb_ec2_service, region, ctx->settings.ec2_endpoint, &ec2->q);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ec2);
        return 0;
}

void lb_ec2_free(struct lb_ec2 *ec2) {
        if (!ec2)
                return;
        lb_query_free(ec2->q);
        free(ec2);
}

struct lb_query *lb_ec2_query(const struct lb_ec2 *ec2) {
        return ec2->q;
}

/* ---- forms ---- */

int lb_ec2_form_attach_volume(struct lb_form *f, const char *volume_id, const char *instance_id, const char *device) {
        int r;
        if (isempty(volume_id) || isempty(instance_id) || isempty(device))
                return -EINVAL;
        if ((r = lb_form_init_action(f, "AttachVolume", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(f, "VolumeId", volume_id)) < 0 ||
            (r = lb_form_add(f, "InstanceId", instance_id)) < 0 ||
            (r = lb_form_add(f, "Device", device)) < 0)
                return r;
        return 0;
}

static int tags_form(struct lb_form *f, const char *action, const char *const *resource_ids, size_t n_ids,
                     const struct lb_tag *tags, size_t n_tags, bool omit_null_values) {
        if (n_ids == 0 || !resource_ids || n_tags == 0 || !tags)
                return -EINVAL;
        int r = lb_form_init_action(f, action, lb_ec2_service.version);
        if (r < 0)
                return r;
        r = lb_form_add_list(f, "ResourceId", resource_ids, n_ids);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_tags; i++) {
                if (isempty(tags[i].key))
                        return -EINVAL;
                r = lb_form_addf_key(f, tags[i].key, "Tag.%zu.Key", i + 1);
                if (r < 0)
                        return r;
                /* CreateTags: a NULL value is the empty value. DeleteTags: NULL = any value. */
                if (tags[i].value || !omit_null_values) {
                        r = lb_form_addf_key(f, strempty(tags[i].value), "Tag.%zu.Value", i + 1);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int lb_ec2_form_create_tags(struct lb_form *f, const char *const *resource_ids, size_t n_ids,
                            const struct lb_tag *tags, size_t n_tags) {
        return tags_form(f, "CreateTags", resource_ids, n_ids, tags, n_tags, false);
}

int lb_ec2_form_delete_tags(struct lb_form *f, const char *const *resource_ids, size_t n_ids,
                            const struct lb_tag *tags, size_t n_tags) {
        /* Without tags DeleteTags would remove every tag of the resources: tags_form() refuses. */
        return tags_form(f, "DeleteTags", resource_ids, n_ids, tags, n_tags, true);
}

int lb_ec2_form_delete_volume(struct lb_form *f, const char *volume_id) {
        int r;
        if (isempty(volume_id))
                return -EINVAL;
        if ((r = lb_form_init_action(f, "DeleteVolume", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(f, "VolumeId", volume_id)) < 0)
                return r;
        return 0;
}

/* TagSpecification.1.ResourceType=TYPE&TagSpecification.1.Tag.M.Key=...&...Value=... */
static int tag_specification_form(struct lb_form *f, const char *resource_type, const struct lb_tag *tags,
                                  size_t n_tags) {
        if (n_tags == 0)
                return 0;
        if (!tags)
                return -EINVAL;
        int r = lb_form_add(f, "TagSpecification.1.ResourceType", resource_type);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_tags; i++) {
                if (isempty(tags[i].key))
                        return -EINVAL;
                if ((r = lb_form_addf_key(f, tags[i].key, "TagSpecification.1.Tag.%zu.Key", i + 1)) < 0 ||
                    (r = lb_form_addf_key(f, strempty(tags[i].value), "TagSpecification.1.Tag.%zu.Value", i + 1)) < 0)
                        return r;
        }
        return 0;
}

int lb_ec2_form_create_snapshot(struct lb_form *f, const char *volume_id, const char *description,
                                const struct lb_tag *tags, size_t n_tags) {
        int r;
        if (isempty(volume_id))
                return -EINVAL;
        if ((r = lb_form_init_action(f, "CreateSnapshot", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(f, "VolumeId", volume_id)) < 0 ||
            (!isempty(description) && (r = lb_form_add(f, "Description", description)) < 0) ||
            (r = tag_specification_form(f, "snapshot", tags, n_tags)) < 0)
                return r;
        return 0;
}

int lb_ec2_form_delete_snapshot(struct lb_form *f, const char *snapshot_id) {
        int r;
        if (isempty(snapshot_id))
                return -EINVAL;
        if ((r = lb_form_init_action(f, "DeleteSnapshot", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(f, "SnapshotId", snapshot_id)) < 0)
                return r;
        return 0;
}

/* A ClientToken is "a unique, case-sensitive string of up to 64 ASCII characters". */
static bool client_token_valid(const char *t) {
        size_t n = strlen(t);
        if (n == 0 || n > 64)
                return false;
        for (const char *p = t; *p; p++)
                if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

static int add_uint(struct lb_form *f, const char *key, uint64_t value) {
        char text[32];
        int r = lb_snprintf(text, sizeof text, "%" PRIu64, value);
        return r < 0 ? r : lb_form_add(f, key, text);
}

int lb_ec2_form_create_volume(struct lb_form *f, const struct lb_ec2_volume_spec *spec) {
        int r;
        if (!spec || isempty(spec->availability_zone) || (isempty(spec->snapshot_id) && spec->size_gib == 0) ||
            (spec->client_token && !client_token_valid(spec->client_token)))
                return -EINVAL;
        if ((r = lb_form_init_action(f, "CreateVolume", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(f, "AvailabilityZone", spec->availability_zone)) < 0 ||
            (!isempty(spec->snapshot_id) && (r = lb_form_add(f, "SnapshotId", spec->snapshot_id)) < 0) ||
            (spec->size_gib > 0 && (r = add_uint(f, "Size", spec->size_gib)) < 0) ||
            (!isempty(spec->volume_type) && (r = lb_form_add(f, "VolumeType", spec->volume_type)) < 0) ||
            (spec->iops > 0 && (r = add_uint(f, "Iops", spec->iops)) < 0) ||
            (spec->throughput > 0 && (r = add_uint(f, "Throughput", spec->throughput)) < 0) ||
            (r = tag_specification_form(f, "volume", spec->tags, spec->n_tags)) < 0 ||
            (spec->client_token && (r = lb_form_add(f, "ClientToken", spec->client_token)) < 0))
                return r;
        return 0;
}

/* ---- single operations ---- */

static int describe_volumes_form(struct lb_form *f, const struct lb_filter *filters, size_t n_filters,
                                 const char *const *volume_ids, size_t n_ids, const char *token) {
        int r = lb_form_init_action(f, "DescribeVolumes", lb_ec2_service.version);
        if (r < 0)
                return r;
        /* MaxResults and VolumeId.N do not mix: with ids, EC2 answers them all at once. */
        if (n_ids > 0)
                r = lb_form_add_list(f, "VolumeId", volume_ids, n_ids);
        else
                r = lb_form_add(f, "MaxResults", EC2_PAGE_SIZE);
        if (r < 0)
                return r;
        r = lb_form_add_filters(f, filters, n_filters);
        if (r < 0)
                return r;
        if (token)
                r = lb_form_add(f, "NextToken", token);
        return r;
}

int lb_ec2_describe_volumes(struct lb_ec2 *ec2, const struct lb_filter *filters, size_t n_filters,
                            const char *const *volume_ids, size_t n_ids, struct lb_volume_list *ret) {
        _cleanup_volume_list_ struct lb_volume_list all = {};
        _cleanup_free_ char *token = NULL;
        int r;

        for (unsigned page = 0;; page++) {
                if (page >= EC2_MAX_PAGES)
                        return lb_query_bad_answer(ec2->q, "DescribeVolumes (endless pagination)", -EBADMSG);

                _cleanup_query_call_ struct lb_query_call call = {};
                r = describe_volumes_form(&call.form, filters, n_filters, volume_ids, n_ids, token);
                if (r < 0)
                        return lb_query_local_error(ec2->q, r);
                r = lb_query_perform_one(ec2->q, &call);
                if (r < 0)
                        return r;

                _cleanup_volume_list_ struct lb_volume_list list = {};
                _cleanup_free_ char *next = NULL;
                r = lb_ec2_parse_volumes(call.answer.data, call.answer.len, &list, &next);
                if (r < 0)
                        return lb_query_bad_answer(ec2->q, "DescribeVolumes", r);
                r = lb_volume_list_concat(&all, &list);
                if (r < 0)
                        return lb_query_local_error(ec2->q, r);

                if (!next)
                        break;
                /* A token that does not move on would have us loop forever. */
                if (token && streq(token, next))
                        return lb_query_bad_answer(ec2->q, "DescribeVolumes (repeated NextToken)", -EBADMSG);
                free(token);
                token = TAKE_PTR(next);
        }

        *ret = all;
        all = (struct lb_volume_list) {};
        return 0;
}

static int describe_snapshots_form(struct lb_form *f, const struct lb_filter *filters, size_t n_filters,
                                   const char *const *snapshot_ids, size_t n_ids, const char *token) {
        static const char *const self[] = { "self" };
        int r = lb_form_init_action(f, "DescribeSnapshots", lb_ec2_service.version);
        if (r < 0)
                return r;
        /* Owner.1=self: without it EC2 lists every public snapshot too. */
        r = lb_form_add_list(f, "Owner", self, 1);
        if (r < 0)
                return r;
        if (n_ids > 0)
                r = lb_form_add_list(f, "SnapshotId", snapshot_ids, n_ids);
        else
                r = lb_form_add(f, "MaxResults", EC2_SNAPSHOT_PAGE_SIZE);
        if (r < 0)
                return r;
        r = lb_form_add_filters(f, filters, n_filters);
        if (r < 0)
                return r;
        if (token)
                r = lb_form_add(f, "NextToken", token);
        return r;
}

int lb_ec2_describe_snapshots(struct lb_ec2 *ec2, const struct lb_filter *filters, size_t n_filters,
                              const char *const *snapshot_ids, size_t n_ids, struct lb_snapshot_list *ret) {
        _cleanup_snapshot_list_ struct lb_snapshot_list all = {};
        _cleanup_free_ char *token = NULL;
        int r;

        for (unsigned page = 0;; page++) {
                if (page >= EC2_MAX_PAGES)
                        return lb_query_bad_answer(ec2->q, "DescribeSnapshots (endless pagination)", -EBADMSG);

                _cleanup_query_call_ struct lb_query_call call = {};
                r = describe_snapshots_form(&call.form, filters, n_filters, snapshot_ids, n_ids, token);
                if (r < 0)
                        return lb_query_local_error(ec2->q, r);
                r = lb_query_perform_one(ec2->q, &call);
                if (r < 0)
                        return r;

                _cleanup_snapshot_list_ struct lb_snapshot_list list = {};
                _cleanup_free_ char *next = NULL;
                r = lb_ec2_parse_snapshots(call.answer.data, call.answer.len, &list, &next);
                if (r < 0)
                        return lb_query_bad_answer(ec2->q, "DescribeSnapshots", r);
                r = lb_snapshot_list_concat(&all, &list);
                if (r < 0)
                        return lb_query_local_error(ec2->q, r);

                if (!next)
                        break;
                if (token && streq(token, next))
                        return lb_query_bad_answer(ec2->q, "DescribeSnapshots (repeated NextToken)", -EBADMSG);
                free(token);
                token = TAKE_PTR(next);
        }

        *ret = all;
        all = (struct lb_snapshot_list) {};
        return 0;
}

int lb_ec2_attach_volume(struct lb_ec2 *ec2, const char *volume_id, const char *instance_id,
                         const char *device, struct lb_attachment *ret) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_ec2_form_attach_volume(&call.form, volume_id, instance_id, device);
        if (r < 0)
                return lb_query_local_error(ec2->q, r);

        r = lb_query_perform_one(ec2->q, &call);
        if (r < 0)
                return r;

        struct lb_attachment a = {};
        r = lb_ec2_parse_attachment(call.answer.data, call.answer.len, &a);
        if (r < 0)
                return lb_query_bad_answer(ec2->q, "AttachVolume", r);
        if (ret)
                *ret = a;
        return 0;
}

int lb_ec2_detach_volume(struct lb_ec2 *ec2, const char *volume_id, const char *instance_id, bool force) {
        if (isempty(volume_id))
                return lb_query_local_error(ec2->q, -EINVAL);

        _cleanup_query_call_ struct lb_query_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "DetachVolume", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(&call.form, "VolumeId", volume_id)) < 0 ||
            (instance_id && (r = lb_form_add(&call.form, "InstanceId", instance_id)) < 0) ||
            (force && (r = lb_form_add(&call.form, "Force", "true")) < 0))
                return lb_query_local_error(ec2->q, r);

        r = lb_query_perform_one(ec2->q, &call);
        if (r < 0)
                return r;

        struct lb_attachment a;
        r = lb_ec2_parse_attachment(call.answer.data, call.answer.len, &a);
        if (r < 0)
                return lb_query_bad_answer(ec2->q, "DetachVolume", r);
        return 0;
}

static int return_call(struct lb_ec2 *ec2, struct lb_query_call *call, const char *action) {
        int r = lb_query_perform_one(ec2->q, call);
        if (r < 0)
                return r;
        r = lb_ec2_parse_return(call->answer.data, call->answer.len);
        if (r < 0)
                return lb_query_bad_answer(ec2->q, action, r);
        return 0;
}

int lb_ec2_create_tags(struct lb_ec2 *ec2, const char *const *resource_ids, size_t n_ids,
                       const struct lb_tag *tags, size_t n_tags) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_ec2_form_create_tags(&call.form, resource_ids, n_ids, tags, n_tags);
        if (r < 0)
                return lb_query_local_error(ec2->q, r);
        return return_call(ec2, &call, "CreateTags");
}

int lb_ec2_delete_tags(struct lb_ec2 *ec2, const char *const *resource_ids, size_t n_ids,
                       const struct lb_tag *tags, size_t n_tags) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_ec2_form_delete_tags(&call.form, resource_ids, n_ids, tags, n_tags);
        if (r < 0)
                return lb_query_local_error(ec2->q, r);
        return return_call(ec2, &call, "DeleteTags");
}

int lb_ec2_delete_volume(struct lb_ec2 *ec2, const char *volume_id) {
        _cleanup_query_call_ struct lb_query_call call = {};
        int r = lb_ec2_form_delete_volume(&call.form, volume_id);
        if (r < 0)
                return lb_query_local_error(ec2->q, r);
        return return_call(ec2, &call, "DeleteVolume");
}

int lb_ec2_set_delete_on_termination(struct lb_ec2 *ec2, const char *instance_id, const char *device,
                                     bool delete_on_termination) {
        if (isempty(instance_id) || isempty(device))
                return lb_query_local_error(ec2->q, -EINVAL);
        _cleanup_query_call_ struct lb_query_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "ModifyInstanceAttribute", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(&call.form, "InstanceId", instance_id)) < 0 ||
            (r = lb_form_add(&call.form, "BlockDeviceMapping.1.DeviceName", device)) < 0 ||
            (r = lb_form_add(&call.form, "BlockDeviceMapping.1.Ebs.DeleteOnTermination",
                             delete_on_termination ? "true" : "false")) < 0)
                return lb_query_local_error(ec2->q, r);
        return return_call(ec2, &call, "ModifyInstanceAttribute");
}

int lb_ec2_describe_instance(struct lb_ec2 *ec2, const char *instance_id, struct lb_instance *ret) {
        if (isempty(instance_id))
                return lb_query_local_error(ec2->q, -EINVAL);
        _cleanup_query_call_ struct lb_query_call call = {};
        int r;
        if ((r = lb_form_init_action(&call.form, "DescribeInstances", lb_ec2_service.version)) < 0 ||
            (r = lb_form_add(&call.form, "InstanceId.1", instance_id)) < 0)
                return lb_query_local_error(ec2->q, r);
        r = lb_query_perform_one(ec2->q, &call);
        if (r < 0)
                return r;

        struct lb_instance inst = {};
        r = lb_ec2_parse_instance(call.answer.data, call.answer.len, &inst);
        if (r == -ENOENT) {
                return lb_query_record_error(ec2->q, r, LB_AWS_ERR_OTHER, "instance %s is not in the DescribeInstances answer",
                                             instance_id);
        }
        if (r < 0)
                return lb_query_bad_answer(ec2->q, "DescribeInstances", r);
        *ret = inst;
        return 0;
}
