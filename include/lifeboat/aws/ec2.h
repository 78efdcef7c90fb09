/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/aws/ec2-answers.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/macro.h"

struct lb_context;
struct lb_creds_provider;

/* EC2's Query API: the service, and the operations lifeboat uses. */
extern const struct lb_query_service lb_ec2_service;

/* ---- the client ---- */

struct lb_ec2;

/* A client for region (NULL or "": settings.region) at AWS_ENDPOINT_URL_EC2 (else the regional
 * endpoint), signing with the provider's credentials. -EINVAL for a missing or malformed region. */
int lb_ec2_new(struct lb_context *ctx, struct lb_creds_provider *creds, const char *region, struct lb_ec2 **ret);
void lb_ec2_free(struct lb_ec2 *ec2);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_ec2 *, lb_ec2_free);
#define _cleanup_ec2_ _cleanup_(lb_ec2_freep)

/* The Query client underneath, for what every service shares: batches, errors, counts. */
struct lb_query *lb_ec2_query(const struct lb_ec2 *ec2);
static inline const struct lb_aws_error *lb_ec2_last_error(const struct lb_ec2 *ec2) {
        return lb_query_last_error(lb_ec2_query(ec2));
}
static inline const char *lb_ec2_last_error_text(const struct lb_ec2 *ec2, char *buf, size_t size) {
        return lb_query_last_error_text(lb_ec2_query(ec2), buf, size);
}
static inline unsigned lb_ec2_request_count(const struct lb_ec2 *ec2) {
        return lb_query_request_count(lb_ec2_query(ec2));
}
static inline int lb_ec2_perform(struct lb_ec2 *ec2, struct lb_query_call *calls, size_t n) {
        return lb_query_perform(lb_ec2_query(ec2), calls, n);
}

/* Forms of the calls boot and reap send in concurrent batches (lb_ec2_perform()); the single
 * operations below use them too. -EINVAL for a missing argument. */
int lb_ec2_form_attach_volume(struct lb_form *f, const char *volume_id, const char *instance_id, const char *device);
/* CreateTags: every tag on every resource; a NULL value is the empty value. */
int lb_ec2_form_create_tags(struct lb_form *f, const char *const *resource_ids, size_t n_ids,
                            const struct lb_tag *tags, size_t n_tags);
/* DeleteTags: a NULL value removes the tag whatever its value; no tags at all is -EINVAL (EC2
 * would remove every tag). */
int lb_ec2_form_delete_tags(struct lb_form *f, const char *const *resource_ids, size_t n_ids,
                            const struct lb_tag *tags, size_t n_tags);
int lb_ec2_form_delete_volume(struct lb_form *f, const char *volume_id);
/* CreateSnapshot of volume_id, the tags put on the snapshot in the same call (TagSpecification;
 * n_tags may be 0). CreateSnapshot has no ClientToken: a retry may make a second snapshot. */
int lb_ec2_form_create_snapshot(struct lb_form *f, const char *volume_id, const char *description,
                                const struct lb_tag *tags, size_t n_tags);
int lb_ec2_form_delete_snapshot(struct lb_form *f, const char *snapshot_id);

/* What CreateVolume makes. */
struct lb_ec2_volume_spec {
        const char *availability_zone;  /* required */
        const char *snapshot_id;        /* NULL: a blank volume (then size_gib is required) */
        uint64_t size_gib;              /* 0: the snapshot's size */
        const char *volume_type;        /* NULL or "": EC2's default */
        uint64_t iops;                  /* 0: not sent */
        uint64_t throughput;            /* 0: not sent (gp3 only) */
        const struct lb_tag *tags;      /* put on the volume in the same call */
        size_t n_tags;
        const char *client_token;       /* NULL: none; at most 64 ASCII characters */
};
/* CreateVolume. -EINVAL for a missing zone, neither snapshot nor size, or a bad token. */
int lb_ec2_form_create_volume(struct lb_form *f, const struct lb_ec2_volume_spec *spec);


/* All pages of DescribeSnapshots of the account's own snapshots (Owner.1=self). snapshot_ids and
 * MaxResults do not mix: with ids there is one page. */
int lb_ec2_describe_snapshots(struct lb_ec2 *ec2, const struct lb_filter *filters, size_t n_filters,
                              const char *const *snapshot_ids, size_t n_ids, struct lb_snapshot_list *ret);
/* All pages. volume_ids and MaxResults do not mix: with ids there is one page. */
int lb_ec2_describe_volumes(struct lb_ec2 *ec2, const struct lb_filter *filters, size_t n_filters,
                            const char *const *volume_ids, size_t n_ids, struct lb_volume_list *ret);
/*
 * One call each. 0, or the negative errno of the error kind (lb_aws_error_kind_to_errno()):
 * lb_ec2_last_error() has the details. -EINVAL for missing arguments, -EBADMSG for a 2xx
 * answer that cannot be read.
 */
/* AttachVolume; ret (may be NULL) gets the attachment EC2 answered (state "attaching"). */
int lb_ec2_attach_volume(struct lb_ec2 *ec2, const char *volume_id, const char *instance_id,
                         const char *device, struct lb_attachment *ret);
/* DetachVolume; instance_id may be NULL. */
int lb_ec2_detach_volume(struct lb_ec2 *ec2, const char *volume_id, const char *instance_id, bool force);
/* CreateTags: every tag on every resource; a NULL value is the empty value. */
int lb_ec2_create_tags(struct lb_ec2 *ec2, const char *const *resource_ids, size_t n_ids,
                       const struct lb_tag *tags, size_t n_tags);
/* DeleteTags: a NULL value removes the tag whatever its value; no tags at all is -EINVAL (EC2
 * would remove every tag). */
int lb_ec2_delete_tags(struct lb_ec2 *ec2, const char *const *resource_ids, size_t n_ids,
                       const struct lb_tag *tags, size_t n_tags);
int lb_ec2_delete_volume(struct lb_ec2 *ec2, const char *volume_id);
/* ModifyInstanceAttribute of the block device mapping at device. */
int lb_ec2_set_delete_on_termination(struct lb_ec2 *ec2, const char *instance_id, const char *device,
                                     bool delete_on_termination);
/* DescribeInstances of one instance; -ENOENT when EC2 does not list it. */
int lb_ec2_describe_instance(struct lb_ec2 *ec2, const char *instance_id, struct lb_instance *ret);
