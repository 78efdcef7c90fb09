/* SPDX-License-Identifier: MIT */
/*
 * reap's metrics (lifeboat/reap/metrics.h): a finished report counted per zone and for the
 * group, and sent to CloudWatch over the session the run used.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/cloudwatch.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/reap/metrics.h"
#include "lifeboat/reap/reap.h"
#include "lifeboat/state/volume.h"

/* ---- the metrics ---- */

struct reap_metric {
        const char *name;
        enum lb_reap_category category;                 /* counts the items of this category, */
        bool (*counts)(const struct lb_reap_item *it);  /* or, when set, those this says yes to */
};

static bool dirty_available(const struct lb_reap_item *it) {
        return it->state == LB_VOL_DIRTY && streq(it->status, "available");
}

/* Moved, waiting for min-age before deletion: not the ones this run deleted, nor those whose
 * copy is missing (Stranded counts them). */
static bool relocated(const struct lb_reap_item *it) {
        enum lb_reap_category c = lb_reap_item_category(it);
        return it->state == LB_VOL_RELOCATED && c != LB_REAP_CAT_DELETED && c != LB_REAP_CAT_STRANDED;
}

/* The published names are a contract (alarms use them): add, never rename. */
static const struct reap_metric reap_metrics[] = {
        { .name = "DirtyAvailable", .counts = dirty_available },
        { .name = "Stranded", .category = LB_REAP_CAT_STRANDED },
        { .name = "Quarantined", .category = LB_REAP_CAT_QUARANTINED },
        { .name = "Deleted", .category = LB_REAP_CAT_DELETED },
        { .name = "DeletionsFailed", .category = LB_REAP_CAT_FAILED },
        { .name = "Relocating", .category = LB_REAP_CAT_RELOCATING },
        { .name = "Relocated", .counts = relocated },
};

static bool metric_counts(const struct reap_metric *m, const struct lb_reap_item *it) {
        return m->counts ? m->counts(it) : lb_reap_item_category(it) == m->category;
}

/* How many of the report's items in zone (NULL: all) the metric counts. */
static size_t count(const struct lb_reap_report *r, const struct reap_metric *m, const char *zone) {
        size_t n = 0;
        for (size_t i = 0; i < r->plan.n; i++) {
                const struct lb_reap_item *it = &r->plan.items[i];
                if ((!zone || streq(it->availability_zone, zone)) && metric_counts(m, it))
                        n++;
        }
        return n;
}

/* ---- building ---- */

void lb_reap_metrics_done(struct lb_reap_metrics *m) {
        free(m->data);
        free(m->dimensions);
        *m = (struct lb_reap_metrics) {};
}

/* The zones the datapoints are about, each once: the zone the run was limited to, else those of
 * the items (which come sorted by zone). Points into the report. */
static size_t report_zones(const struct lb_reap_report *r, const char **zones) {
        size_t n = 0;
        if (!isempty(r->availability_zone))
                zones[n++] = r->availability_zone;
        for (size_t i = 0; i < r->plan.n; i++) {
                const char *z = r->plan.items[i].availability_zone;
                bool seen = false;
                for (size_t j = 0; j < n && !seen; j++)
                        seen = streq(zones[j], z);
                if (!seen && !isempty(z))
                        zones[n++] = z;
        }
        return n;
}

static void add_scope(const struct lb_reap_report *r, struct lb_metric_datum *data, size_t *n,
                      const struct lb_metric_dimension *dims, size_t n_dims, const char *zone) {
        for (size_t i = 0; i < ELEMENTSOF(reap_metrics); i++)
                data[(*n)++] = (struct lb_metric_datum) {
                        .name = reap_metrics[i].name,
                        .value = (double) count(r, &reap_metrics[i], zone),
                        .unit = LB_REAP_METRIC_UNIT,
                        .timestamp = r->now,
                        .dimensions = dims,
                        .n_dimensions = n_dims,
                };
}

int lb_reap_metrics_build(const struct lb_reap_report *r, const char *group, struct lb_reap_metrics *ret) {
        if (isempty(group))
                return -EINVAL;
        _cleanup_free_ const char **zones = calloc(r->plan.n + 1, sizeof *zones);
        if (!zones)
                return -ENOMEM;
        size_t n_zones = report_zones(r, zones);
        bool region = isempty(r->availability_zone);
        size_t n_scopes = n_zones + (region ? 1 : 0);

        /* Two dimensions per zone, then the group's own. */
        _cleanup_free_ struct lb_metric_dimension *dims = calloc(2 * n_zones + 1, sizeof *dims);
        _cleanup_free_ struct lb_metric_datum *data = calloc(n_scopes * ELEMENTSOF(reap_metrics) + 1, sizeof *data);
        if (!dims || !data)
                return -ENOMEM;
        size_t n = 0;
        for (size_t z = 0; z < n_zones; z++) {
                dims[2 * z] = (struct lb_metric_dimension) { LB_REAP_DIMENSION_GROUP, group };
                dims[2 * z + 1] = (struct lb_metric_dimension) { LB_REAP_DIMENSION_ZONE, zones[z] };
                add_scope(r, data, &n, &dims[2 * z], 2, zones[z]);
        }
        if (region) {
                /* Totals only from a run that saw the whole region: a zone's run cannot know them. */
                dims[2 * n_zones] = (struct lb_metric_dimension) { LB_REAP_DIMENSION_GROUP, group };
                add_scope(r, data, &n, &dims[2 * n_zones], 1, NULL);
        }
        *ret = (struct lb_reap_metrics) { .data = TAKE_PTR(data), .n = n, .dimensions = TAKE_PTR(dims) };
        return 0;
}

/* ---- publishing ---- */

int lb_reap_metrics_publish(struct lb_context *ctx, const struct lb_reap_report *r,
                            struct lb_reap_metrics_result *result) {
        const char *ns = ctx->settings.metrics_namespace;
        struct lb_cloudwatch *cw = r->aws.cloudwatch;
        _cleanup_(lb_reap_metrics_done) struct lb_reap_metrics m = {};

        *result = (struct lb_reap_metrics_result) {};
        if (r->dry_run) {
                result->skipped = "dry run";
                lb_info(ctx, "Dry run: no metrics published");
                return 0;
        }
        if (r->interrupted || lb_context_interrupted(ctx)) {
                result->skipped = "interrupted";
                lb_notice(ctx, "Interrupted: no metrics published");
                return 0;
        }
        if (!cw || isempty(ns)) {
                (void) lb_strscpy(result->error, sizeof result->error, "no CloudWatch client");
                lb_err(ctx, "Cannot publish the metrics: %s", result->error);
                return -EINVAL;
        }

        int q = lb_reap_metrics_build(r, ctx->settings.group, &m);
        if (q < 0) {
                (void) lb_snprintf(result->error, sizeof result->error, "%s", strerror(-q));
                lb_err(ctx, "Cannot build the metrics: %s", result->error);
                return q;
        }
        result->datapoints = m.n;
        unsigned before = lb_query_request_count(lb_cloudwatch_query(cw));
        q = lb_cloudwatch_put_metric_data(cw, ns, m.data, m.n);
        result->requests = lb_query_request_count(lb_cloudwatch_query(cw)) - before;
        if (q >= 0)
                result->published = (size_t) q;
        if (q >= 0 && (size_t) q == m.n) {
                lb_debug(ctx, "Published %zu datapoints to CloudWatch namespace %s", m.n, ns);
                return 0;
        }

        (void) lb_query_last_error_text(lb_cloudwatch_query(cw), result->error, sizeof result->error);
        /* Said at error level, so that the JSON report's "error" names it; the deletions stand. */
        lb_err(ctx, "Publishing the metrics to CloudWatch failed (%zu of %zu datapoints taken): %s",
               result->published, m.n, result->error);
        return q < 0 ? q : -EIO;
}
