/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "lifeboat/aws/cloudwatch.h"

struct lb_context;
struct lb_reap_report;

/*
 * reap's metrics: what a finished run saw, as CloudWatch datapoints, so that an alarm can reach
 * a person (README, "Metrics and alarms"). The names are stable:
 *
 *   namespace   LIFEBOAT_METRICS_NAMESPACE ("Lifeboat")
 *   dimensions  Group (the group) and AvailabilityZone: one datapoint per metric for each zone
 *               the run looked at; and, when it looked at the whole region, one per metric with
 *               Group alone, the group's totals
 *   metrics     (unit Count, timestamp the time of the plan)
 *               DirtyAvailable   dirty volumes attached nowhere: waiting for a recovery, or stranded
 *               Stranded         dirty and available longer than --stranded-after
 *               Quarantined      quarantined, waiting for a human
 *               Deleted          deleted by this run
 *               DeletionsFailed  deletions this run tried and EC2 refused (or it was interrupted)
 *
 * A metric is one line of the table in agent/reap/metrics.c.
 */

#define LB_REAP_METRIC_UNIT "Count"
#define LB_REAP_DIMENSION_GROUP "Group"
#define LB_REAP_DIMENSION_ZONE "AvailabilityZone"

/* The datapoints of one report. Their strings point into the report and the group. */
struct lb_reap_metrics {
        struct lb_metric_datum *data;
        size_t n;
        struct lb_metric_dimension *dimensions; /* what the datapoints' dimensions point into */
};

void lb_reap_metrics_done(struct lb_reap_metrics *m);

/* The datapoints of a finished report of group's volumes (pure): for each zone among the
 * report's volumes, and for the zone the run was limited to even without volumes, one
 * datapoint per metric with Group and AvailabilityZone; when the run looked at the whole
 * region, also one per metric with Group alone. Each counts the report's volumes. */
int lb_reap_metrics_build(const struct lb_reap_report *r, const char *group, struct lb_reap_metrics *ret);

/* What publishing did, for the report. */
struct lb_reap_metrics_result {
        const char *skipped;            /* why nothing was sent ("dry run", ...), or NULL */
        size_t datapoints;              /* built */
        size_t published;               /* taken by CloudWatch */
        unsigned requests;              /* PutMetricData requests, retries included */
        char error[600];                /* why not all were taken; "" when they were */
};

/* Publishes the report's metrics to CloudWatch over the report's session (the run was made
 * with the metrics option), to LIFEBOAT_METRICS_NAMESPACE. A dry run or an interrupted run
 * publishes nothing (result->skipped says why). 0 when every datapoint was published or none
 * was to be; else a negative errno, logged at error level: what reap did is unchanged. */
int lb_reap_metrics_publish(struct lb_context *ctx, const struct lb_reap_report *r,
                            struct lb_reap_metrics_result *result);
