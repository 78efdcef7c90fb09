/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/util.h"

struct lb_context;
struct lb_imds;

/* ---- typed answers ---- */

struct lb_tag {
        char *key;
        char *value;
};

struct lb_attachment {
        char volume_id[32];
        char instance_id[32];
        char device[64];
        char state[16];         /* attaching | attached | detaching | detached | busy */
        char attach_time[40];
        bool delete_on_termination;
};

struct lb_volume {
        char id[32];
        uint64_t size_gib;
        char availability_zone[32];
        char state[16];         /* creating | available | in-use | deleting | deleted | error */
        char type[16];
        char create_time[40];
        char snapshot_id[32];
        bool encrypted;
        bool multi_attach;
        struct lb_attachment *attachments;
        size_t n_attachments;
        struct lb_tag *tags;
        size_t n_tags;
};

struct lb_volume_list {
        struct lb_volume *items;
        size_t n;
};

/* Free the attachments and tags (and items); the struct is left empty. */
void lb_volume_done(struct lb_volume *v);
void lb_volume_list_done(struct lb_volume_list *l);
static inline void lb_volume_list_donep(struct lb_volume_list *l) {
        lb_volume_list_done(l);
}
#define _cleanup_volume_list_ _cleanup_(lb_volume_list_donep)
/* Moves the items of src to the end of dst. */
int lb_volume_list_concat(struct lb_volume_list *dst, struct lb_volume_list *src);
/* The value of tag key on the volume, or NULL. */
const char *lb_volume_tag(const struct lb_volume *v, const char *key);
/* A deep copy (attachments and tags duplicated); ret untouched on failure. */
int lb_volume_copy(const struct lb_volume *v, struct lb_volume *ret);
/* The attachment of this volume to instance_id, or NULL. */
const struct lb_attachment *lb_volume_attachment_for(const struct lb_volume *v, const char *instance_id);
/* The volume with this id in the list, or NULL. */
const struct lb_volume *lb_volume_list_find(const struct lb_volume_list *l, const char *volume_id);

/* A block device mapping of an instance (DescribeInstances). */
struct lb_block_device {
        char device[64];
        char volume_id[32];
        char state[16];
        bool delete_on_termination;
};
struct lb_instance {
        char id[32];
        char availability_zone[32];
        char root_device[64];
        struct lb_block_device *devices;
        size_t n_devices;
};
void lb_instance_done(struct lb_instance *i);

/* ---- errors ---- */

enum lb_ec2_error_kind {
        LB_EC2_OK = 0,
        LB_EC2_ERR_TRANSPORT,           /* no HTTP answer (connection, timeout) */
        LB_EC2_ERR_THROTTLED,           /* RequestLimitExceeded and kin */
        LB_EC2_ERR_SERVER,              /* 5xx, InternalError, Unavailable */
        LB_EC2_ERR_AUTH,                /* AuthFailure, UnauthorizedOperation, RequestExpired, expired token */
        LB_EC2_ERR_VOLUME_IN_USE,
        LB_EC2_ERR_INCORRECT_STATE,
        LB_EC2_ERR_INVALID_PARAMETER,   /* InvalidParameterValue and friends */
        LB_EC2_ERR_ATTACHMENT_LIMIT,
        LB_EC2_ERR_VOLUME_NOT_FOUND,
        LB_EC2_ERR_ZONE_MISMATCH,
        LB_EC2_ERR_BAD_ANSWER,          /* malformed or unexpected answer */
        LB_EC2_ERR_OTHER,
};

struct lb_ec2_error {
        enum lb_ec2_error_kind kind;
        long http_status;
        char code[64];
        char message[512];
        char request_id[80];
};

/* Maps an AWS error code (and HTTP status) to a kind. */
enum lb_ec2_error_kind lb_ec2_error_kind_from_code(const char *code, long http_status);
/* The negative errno a kind maps to: THROTTLED -EAGAIN, AUTH -EACCES, VOLUME_IN_USE -EBUSY,
 * INCORRECT_STATE -EALREADY, NOT_FOUND -ENOENT, ATTACHMENT_LIMIT -ENOSPC, INVALID_PARAMETER
 * -EINVAL, ZONE_MISMATCH -EXDEV, TRANSPORT -EHOSTUNREACH, SERVER -EREMOTEIO, BAD_ANSWER -EBADMSG,
 * OTHER -EIO, OK 0. */
int lb_ec2_error_kind_to_errno(enum lb_ec2_error_kind kind);
/* A short human name for a kind ("throttled", "volume in use", ...). */
const char *lb_ec2_error_kind_to_string(enum lb_ec2_error_kind kind);
/* "code: message (request id)" for humans. */
int lb_ec2_error_format(const struct lb_ec2_error *e, char *buf, size_t size);

/* ---- request encoding ---- */

/* A form body: Action=...&Version=2016-11-15&... with every value URL-encoded (RFC 3986). */
struct lb_form {
        struct lb_buf buf;
};
void lb_form_done(struct lb_form *f);
/* Appends "&key=value", both escaped. -EINVAL for an empty key or a NULL value; on any failure
 * the form is left as it was. */
int lb_form_add(struct lb_form *f, const char *key, const char *value);
/* lb_form_add() with the key formatted from key_fmt ("Tag.%zu.Key"); -ENAMETOOLONG when it
 * does not fit 255 bytes. */
int lb_form_addf_key(struct lb_form *f, const char *value, const char *key_fmt, ...) _printf_(3, 4);
/* Starts the form over with Action=ACTION&Version=2016-11-15. The form must be zeroed or
 * previously used (a next page reuses its form). */
int lb_form_init_action(struct lb_form *f, const char *action);

struct lb_filter {
        const char *name;               /* "availability-zone", "tag:lifeboat:group", ... */
        const char *const *values;
        size_t n_values;
};
/* Appends Filter.N.Name / Filter.N.Value.M pairs. */
int lb_form_add_filters(struct lb_form *f, const struct lb_filter *filters, size_t n);

/* ---- answer parsing (buffers in, typed structs out) ---- */

/* An error document (Response/Errors/Error or ErrorResponse/Error): code, message, request id
 * and the kind by code. -EBADMSG when buf is not one. */
int lb_ec2_parse_error(const char *buf, size_t len, struct lb_ec2_error *ret);
/* DescribeVolumes page; ret_next_token gets NULL on the last page. */
int lb_ec2_parse_volumes(const char *buf, size_t len, struct lb_volume_list *ret, char **ret_next_token);
/* An AttachVolume or DetachVolume answer. */
int lb_ec2_parse_attachment(const char *buf, size_t len, struct lb_attachment *ret);
/* Answers that carry <return>true</return>. -EBADMSG when it is missing or false. */
int lb_ec2_parse_return(const char *buf, size_t len);
/* The first instance of a DescribeInstances answer; -ENOENT when it lists none. */
int lb_ec2_parse_instance(const char *buf, size_t len, struct lb_instance *ret);

/* ---- the client ---- */

struct lb_ec2;

/* A client for region (NULL or "": settings.region, else the region IMDS names), with
 * credentials from the environment or the instance role (imds may be NULL when the settings
 * have both). -EINVAL for a missing or malformed region. */
int lb_ec2_new(struct lb_context *ctx, struct lb_imds *imds, const char *region, struct lb_ec2 **ret);
void lb_ec2_free(struct lb_ec2 *ec2);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_ec2 *, lb_ec2_free);
#define _cleanup_ec2_ _cleanup_(lb_ec2_freep)

/* The error of the last failed call (kind LB_EC2_OK after a success). */
const struct lb_ec2_error *lb_ec2_last_error(const struct lb_ec2 *ec2);
/* lb_ec2_error_format() of the last error into buf (cut to fit); returns buf, for log messages. */
const char *lb_ec2_last_error_text(const struct lb_ec2 *ec2, char *buf, size_t size);
/* HTTP requests sent so far, retries included. */
unsigned lb_ec2_request_count(const struct lb_ec2 *ec2);

/* One call of a batch: the form goes in, the raw answer or an error comes out. */
struct lb_ec2_call {
        struct lb_form form;            /* filled by the caller */
        int result;                     /* 0 or negative errno */
        struct lb_ec2_error error;
        struct lb_buf answer;           /* body of a 2xx answer */
};
void lb_ec2_call_done(struct lb_ec2_call *c);
/* Sends the calls concurrently, retrying each by the standard retry mode. Returns 0 when
 * the batch ran; each call has its own result. When ctx->interrupted becomes set, no further
 * retries are made and the calls keep the error of their last attempt. */
int lb_ec2_perform(struct lb_ec2 *ec2, struct lb_ec2_call *calls, size_t n);

/* All pages. volume_ids and MaxResults do not mix: with ids there is one page. */
int lb_ec2_describe_volumes(struct lb_ec2 *ec2, const struct lb_filter *filters, size_t n_filters,
                            const char *const *volume_ids, size_t n_ids, struct lb_volume_list *ret);
/*
 * One call each. 0, or the negative errno of the error kind (lb_ec2_error_kind_to_errno()):
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
