/* SPDX-License-Identifier: MIT */
/*
 * CloudWatch's PutMetricData on the Query client (lifeboat/aws/query.h): the form, the answer,
 * and sending many datapoints in as few requests as CloudWatch takes.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/cloudwatch.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/basic/xml.h"

const struct lb_query_service lb_cloudwatch_service = { .name = "monitoring", .version = "2010-08-01" };

struct lb_cloudwatch {
        struct lb_query *q;
};

int lb_cloudwatch_new(struct lb_context *ctx, struct lb_creds_provider *creds, const char *region,
                      struct lb_cloudwatch **ret) {
        if (isempty(region))
                region = ctx->settings.region;
        if (isempty(region))
                return -EINVAL;
        _cleanup_(lb_cloudwatch_freep) struct lb_cloudwatch *cw = calloc(1, sizeof *cw);
        if (!cw)
                return -ENOMEM;
        int r = lb_query_new(ctx, creds, &lb_cloudwatch_service, region, ctx->settings.cloudwatch_endpoint, &cw->q);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cw);
        return 0;
}

void lb_cloudwatch_free(struct lb_cloudwatch *cw) {
        if (!cw)
                return;
        lb_query_free(cw->q);
        free(cw);
}

struct lb_query *lb_cloudwatch_query(const struct lb_cloudwatch *cw) {
        return cw->q;
}

/* ---- the form ---- */

/* The shortest text that reads back as v ("3", "0.25"), as the SDKs write doubles. */
static int format_double(double v, char *buf, size_t size) {
        for (int precision = 15; precision <= 17; precision++) {
                if (lb_snprintf(buf, size, "%.*g", precision, v) < 0)
                        return -ENAMETOOLONG;
                if (strtod(buf, NULL) == v)
                        return 0;
        }
        return 0;
}

static bool datum_valid(const struct lb_metric_datum *d) {
        if (isempty(d->name) || !isfinite(d->value) || d->n_dimensions > LB_CLOUDWATCH_MAX_DIMENSIONS ||
            (d->n_dimensions > 0 && !d->dimensions))
                return false;
        for (size_t i = 0; i < d->n_dimensions; i++)
                if (isempty(d->dimensions[i].name) || isempty(d->dimensions[i].value))
                        return false;
        return true;
}

static int add_datum(struct lb_form *f, size_t member, const struct lb_metric_datum *d) {
        char value[64], when[40];
        int r;

        if ((r = format_double(d->value, value, sizeof value)) < 0)
                return r;
        if ((r = lb_form_addf_key(f, d->name, "MetricData.member.%zu.MetricName", member)) < 0 ||
            (r = lb_form_addf_key(f, value, "MetricData.member.%zu.Value", member)) < 0)
                return r;
        if (!isempty(d->unit) && (r = lb_form_addf_key(f, d->unit, "MetricData.member.%zu.Unit", member)) < 0)
                return r;
        if (d->timestamp > 0) {
                if ((r = lb_format_iso8601(d->timestamp, when, sizeof when)) < 0 ||
                    (r = lb_form_addf_key(f, when, "MetricData.member.%zu.Timestamp", member)) < 0)
                        return r;
        }
        for (size_t i = 0; i < d->n_dimensions; i++)
                if ((r = lb_form_addf_key(f, d->dimensions[i].name, "MetricData.member.%zu.Dimensions.member.%zu.Name",
                                          member, i + 1)) < 0 ||
                    (r = lb_form_addf_key(f, d->dimensions[i].value,
                                          "MetricData.member.%zu.Dimensions.member.%zu.Value", member, i + 1)) < 0)
                        return r;
        return 0;
}

int lb_cloudwatch_form_put_metric_data(struct lb_form *f, const char *namespace, const struct lb_metric_datum *data,
                                       size_t n) {
        if (isempty(namespace) || n == 0 || n > LB_CLOUDWATCH_MAX_DATUMS || !data)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!datum_valid(&data[i]))
                        return -EINVAL;

        int r = lb_form_init_action(f, "PutMetricData", lb_cloudwatch_service.version);
        if (r < 0)
                return r;
        if ((r = lb_form_add(f, "Namespace", namespace)) < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if ((r = add_datum(f, i + 1, &data[i])) < 0)
                        return r;
        return 0;
}

/* ---- the answer ---- */

int lb_cloudwatch_parse_put_metric_data(const char *buf, size_t len) {
        _cleanup_xml_ struct lb_xml_node *root = NULL;
        int r = lb_xml_parse(buf, len, &root);
        if (r < 0)
                return r;
        /* PutMetricData answers nothing but its request id. */
        return streq(root->name, "PutMetricDataResponse") ? 0 : -EBADMSG;
}

/* ---- sending ---- */

int lb_cloudwatch_put_metric_data(struct lb_cloudwatch *cw, const char *namespace,
                                  const struct lb_metric_datum *data, size_t n) {
        size_t n_calls = (n + LB_CLOUDWATCH_MAX_DATUMS - 1) / LB_CLOUDWATCH_MAX_DATUMS;
        int accepted = 0, r;

        if (n == 0)
                return 0;
        if (n > INT_MAX)
                return lb_query_local_error(cw->q, -E2BIG);
        _cleanup_free_ struct lb_query_call *calls = calloc(n_calls, sizeof *calls);
        if (!calls)
                return lb_query_local_error(cw->q, -ENOMEM);
        for (size_t i = 0; i < n_calls; i++) {
                size_t first = i * LB_CLOUDWATCH_MAX_DATUMS;
                r = lb_cloudwatch_form_put_metric_data(&calls[i].form, namespace, data + first,
                                                        MIN(n - first, (size_t) LB_CLOUDWATCH_MAX_DATUMS));
                if (r < 0) {
                        accepted = lb_query_local_error(cw->q, r);
                        goto done;
                }
                calls[i].result = -EINPROGRESS;    /* until lb_query_perform() says otherwise */
        }

        /* A local failure half way (no memory) leaves each call with its own result. */
        int performed = lb_query_perform(cw->q, calls, n_calls);
        for (size_t i = 0; i < n_calls; i++) {
                size_t size = MIN(n - i * LB_CLOUDWATCH_MAX_DATUMS, (size_t) LB_CLOUDWATCH_MAX_DATUMS);
                r = calls[i].result;
                if (r == 0 && (r = lb_cloudwatch_parse_put_metric_data(calls[i].answer.data, calls[i].answer.len)) < 0)
                        (void) lb_query_bad_answer(cw->q, "PutMetricData", r);
                if (r == 0)
                        accepted += (int) size;
        }
        if (accepted == 0 && performed < 0)
                accepted = performed;
done:
        for (size_t i = 0; i < n_calls; i++)
                lb_query_call_done(&calls[i]);
        return accepted;
}
