/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <time.h>

#include "lifeboat/aws/query.h"
#include "lifeboat/basic/macro.h"

struct lb_context;
struct lb_creds_provider;

/*
 * CloudWatch's Query API (SigV4 service "monitoring", version 2010-08-01): PutMetricData, the
 * one call lifeboat makes. Newer SDKs speak JSON or CBOR to CloudWatch; the service still takes
 * the Query form, which is what the other services here speak.
 */
extern const struct lb_query_service lb_cloudwatch_service;

/* CloudWatch's limits on one PutMetricData request: datapoints, and dimensions per datapoint. */
#define LB_CLOUDWATCH_MAX_DATUMS 1000
#define LB_CLOUDWATCH_MAX_DIMENSIONS 30

struct lb_metric_dimension {
        const char *name;               /* 1 to 255 characters */
        const char *value;              /* 1 to 1024 characters */
};

/* One datapoint. The strings are borrowed: they must outlive the call that sends them. */
struct lb_metric_datum {
        const char *name;
        double value;                   /* finite */
        const char *unit;               /* "Count", "Seconds", ...; NULL: none */
        time_t timestamp;               /* 0: none (CloudWatch takes the time it receives it) */
        const struct lb_metric_dimension *dimensions;
        size_t n_dimensions;
};

/* ---- the client ---- */

struct lb_cloudwatch;

/* A client for region at AWS_ENDPOINT_URL_CLOUDWATCH (else AWS_ENDPOINT_URL, else the regional
 * endpoint), signing with the provider's credentials. -EINVAL for a missing or malformed region. */
int lb_cloudwatch_new(struct lb_context *ctx, struct lb_creds_provider *creds, const char *region,
                      struct lb_cloudwatch **ret);
void lb_cloudwatch_free(struct lb_cloudwatch *cw);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lb_cloudwatch *, lb_cloudwatch_free);

/* The Query client underneath: errors, request counts. */
struct lb_query *lb_cloudwatch_query(const struct lb_cloudwatch *cw);

/* ---- PutMetricData ---- */

/* The form of one PutMetricData request of n (1 to LB_CLOUDWATCH_MAX_DATUMS) datapoints:
 * Namespace, MetricData.member.N.{MetricName,Value,Unit,Timestamp,Dimensions.member.M.*}.
 * -EINVAL, before anything is added, for an empty namespace or name, a value that is not
 * finite, a dimension without name or value, too many datapoints or dimensions. */
int lb_cloudwatch_form_put_metric_data(struct lb_form *f, const char *namespace, const struct lb_metric_datum *data,
                                       size_t n);
/* Checks a 2xx answer to PutMetricData (a PutMetricDataResponse document): 0 or -EBADMSG. */
int lb_cloudwatch_parse_put_metric_data(const char *buf, size_t len);
/* Sends the datapoints in requests of at most LB_CLOUDWATCH_MAX_DATUMS, concurrently, each
 * retried by the standard mode. Returns how many CloudWatch took (it takes a request whole or
 * not at all): n when it took them all, fewer when a request failed (lb_query_last_error() of
 * the client says why), or a negative errno when nothing could be sent (-EINVAL for a datapoint
 * the form refuses, -ENOMEM). */
int lb_cloudwatch_put_metric_data(struct lb_cloudwatch *cw, const char *namespace,
                                  const struct lb_metric_datum *data, size_t n);
