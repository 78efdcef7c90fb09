/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/util.h"

struct lb_context;
struct lb_creds_provider;
struct lb_xml_node;

/*
 * The AWS Query protocol, as EC2, Auto Scaling, STS and CloudWatch speak it: a form-encoded
 * POST to "/" (no query string: libcurl < 8.3 signs one wrongly), signed with libcurl's SigV4
 * for an explicit region and service, answered with XML. A client sends several calls at once
 * over one curl multi handle and retries each by the SDKs' standard mode (lifeboat/aws/retry.h),
 * re-reading the credentials once after an authentication error. The service modules
 * (lifeboat/aws/ec2.h, ...) build forms and parse answers; this module moves them.
 */

/* ---- request encoding ---- */

/* A form body: Action=...&Version=...&... with every value URL-encoded (RFC 3986). */
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
/* PREFIX.1=values[0]&PREFIX.2=... (EC2's 1-based lists; "InstanceIds.member" for the others).
 * -EINVAL for an empty value. */
int lb_form_add_list(struct lb_form *f, const char *prefix, const char *const *values, size_t n);
/* Starts the form over with Action=ACTION&Version=VERSION. The form must be zeroed or
 * previously used (a next page reuses its form). */
int lb_form_init_action(struct lb_form *f, const char *action, const char *version);
/* "Action=DescribeVolumes&..." -> "DescribeVolumes" in buf (for messages); "?" without one. */
const char *lb_form_action(const struct lb_form *f, char *buf, size_t size);

struct lb_filter {
        const char *name;               /* "availability-zone", "tag:lifeboat:group", ... */
        const char *const *values;
        size_t n_values;
};
/* Appends Filter.N.Name / Filter.N.Value.M pairs. */
int lb_form_add_filters(struct lb_form *f, const struct lb_filter *filters, size_t n);

/* ---- errors ---- */

enum lb_aws_error_kind {
        LB_AWS_OK = 0,
        LB_AWS_ERR_TRANSPORT,           /* no HTTP answer (connection, timeout) */
        LB_AWS_ERR_THROTTLED,           /* RequestLimitExceeded, Throttling and kin */
        LB_AWS_ERR_SERVER,              /* 5xx, InternalError, Unavailable */
        LB_AWS_ERR_AUTH,                /* AuthFailure, UnauthorizedOperation, RequestExpired, expired token */
        LB_AWS_ERR_VOLUME_IN_USE,
        LB_AWS_ERR_INCORRECT_STATE,
        LB_AWS_ERR_INVALID_PARAMETER,   /* InvalidParameterValue and friends */
        LB_AWS_ERR_ATTACHMENT_LIMIT,
        LB_AWS_ERR_VOLUME_NOT_FOUND,
        LB_AWS_ERR_ZONE_MISMATCH,
        LB_AWS_ERR_BAD_ANSWER,          /* malformed or unexpected answer */
        LB_AWS_ERR_OTHER,
};

struct lb_aws_error {
        enum lb_aws_error_kind kind;
        long http_status;
        char code[64];
        char message[512];
        char request_id[80];
};

/* Maps an AWS error code (and HTTP status) to a kind. */
enum lb_aws_error_kind lb_aws_error_kind_from_code(const char *code, long http_status);
/* The negative errno a kind maps to: THROTTLED -EAGAIN, AUTH -EACCES, VOLUME_IN_USE -EBUSY,
 * INCORRECT_STATE -EALREADY, NOT_FOUND -ENOENT, ATTACHMENT_LIMIT -ENOSPC, INVALID_PARAMETER
 * -EINVAL, ZONE_MISMATCH -EXDEV, TRANSPORT -EHOSTUNREACH, SERVER -EREMOTEIO, BAD_ANSWER -EBADMSG,
 * OTHER -EIO, OK 0. */
int lb_aws_error_kind_to_errno(enum lb_aws_error_kind kind);
/* A short human name for a kind ("throttled", "volume in use", ...). */
const char *lb_aws_error_kind_to_string(enum lb_aws_error_kind kind);
/* "code: message (request id)" for humans. */
int lb_aws_error_format(const struct lb_aws_error *e, char *buf, size_t size);
/* An error document (EC2's Response/Errors/Error, or ErrorResponse/Error of the other Query
 * services): code, message, request id and the kind by code. -EBADMSG when buf is not one. */
int lb_aws_parse_error(const char *buf, size_t len, struct lb_aws_error *ret);
/* Whether a parsed document is an error document (no answer is ever one). */
bool lb_aws_xml_is_error(const struct lb_xml_node *root);

/* ---- the client ---- */

/* A Query API: its SigV4 service name (also the endpoint's host prefix) and its version. */
struct lb_query_service {
        const char *name;               /* "ec2", "autoscaling", "sts", "monitoring" */
        const char *version;            /* "2016-11-15", ... */
};

struct lb_query;

/* A client of service in region (a valid region name, else -EINVAL), at endpoint_url (NULL or
 * "": https://NAME.REGION.amazonaws.com/, .com.cn in China), signing with the provider's
 * credentials (which must outlive the client); with creds NULL nothing is signed (STS's
 * AssumeRoleWithWebIdentity, whose credential is the token in its form). */
int lb_query_new(struct lb_context *ctx, struct lb_creds_provider *creds, const struct lb_query_service *service,
                 const char *region, const char *endpoint_url, struct lb_query **ret);
void lb_query_free(struct lb_query *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_query *, lb_query_free);

/* The endpoint the client posts to, and its region. */
const char *lb_query_url(const struct lb_query *q);
const char *lb_query_region(const struct lb_query *q);
/* The error of the last failed call (kind LB_AWS_OK after a success). */
const struct lb_aws_error *lb_query_last_error(const struct lb_query *q);
/* lb_aws_error_format() of the last error into buf (cut to fit); returns buf, for log messages. */
const char *lb_query_last_error_text(const struct lb_query *q, char *buf, size_t size);
/* HTTP requests sent so far, retries included. */
unsigned lb_query_request_count(const struct lb_query *q);
/* Starts f over as a call of this service's version. */
int lb_query_form_init(const struct lb_query *q, struct lb_form *f, const char *action);

/* One call of a batch: the form goes in, the raw answer or an error comes out. */
struct lb_query_call {
        struct lb_form form;            /* filled by the caller */
        int result;                     /* 0 or negative errno */
        struct lb_aws_error error;
        struct lb_buf answer;           /* body of a 2xx answer */
};
void lb_query_call_done(struct lb_query_call *c);
static inline void lb_query_call_donep(struct lb_query_call *c) {
        lb_query_call_done(c);
}
#define _cleanup_query_call_ _cleanup_(lb_query_call_donep)

/* Sends the calls concurrently, retrying each by the standard retry mode. Returns 0 when
 * the batch ran; each call has its own result. When ctx->interrupted becomes set, no further
 * retries are made and the calls keep the error of their last attempt. */
int lb_query_perform(struct lb_query *q, struct lb_query_call *calls, size_t n);
/* One call: its result (0 or the negative errno of its error kind); its error becomes the
 * client's last error. */
int lb_query_perform_one(struct lb_query *q, struct lb_query_call *call);
/* Records that a 2xx answer to action could not be read (-EBADMSG; -ENOMEM passes through). */
int lb_query_bad_answer(struct lb_query *q, const char *action, int r);
/* Records a local failure before anything was sent (a bad argument, no memory); returns r. */
int lb_query_local_error(struct lb_query *q, int r);
/* Records an error of kind with a message as the client's last error (an answer that lacks what
 * was asked for, ...); returns r. */
int lb_query_record_error(struct lb_query *q, int r, enum lb_aws_error_kind kind, const char *fmt, ...) _printf_(4, 5);
