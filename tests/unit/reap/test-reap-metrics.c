/* SPDX-License-Identifier: MIT */
/* reap's metrics: a finished report -> CloudWatch datapoints (names, values, dimensions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/aws/cloudwatch.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/reap/metrics.h"
#include "lifeboat/reap/reap.h"
#include "lifeboat/state/volume.h"
#include "testutil.h"

#define NOW ((time_t) 1795709575) /* 2026-11-26T16:12:55Z */

static const char *const names[] = { "DirtyAvailable", "Stranded", "Quarantined", "Deleted", "DeletionsFailed",
                                      "Relocating", "Relocated" };

static struct lb_reap_item item(const char *id, const char *zone, const char *status, enum lb_vol_state state,
                                enum lb_reap_verdict verdict, enum lb_reap_outcome outcome) {
        struct lb_reap_item it = { .state = state, .verdict = verdict, .outcome = outcome, .age_s = -1 };
        assert_int_equal(lb_strscpy(it.volume_id, sizeof it.volume_id, id), 0);
        assert_int_equal(lb_strscpy(it.availability_zone, sizeof it.availability_zone, zone), 0);
        assert_int_equal(lb_strscpy(it.status, sizeof it.status, status), 0);
        return it;
}

/* A region-wide run over two zones with a bit of everything, sorted by zone as lb_reap_plan():
 * six volumes in us-east-1a, six in us-east-1b (one on its way to another zone, one already
 * moved and waiting for deletion). */
static struct lb_reap_item sample[12];

static void fill_sample(void) {
        size_t i = 0;
        sample[i++] = item("vol-a1", "us-east-1a", "available", LB_VOL_DIRTY, LB_REAP_STRANDED, LB_REAP_PENDING);
        sample[i++] = item("vol-a2", "us-east-1a", "available", LB_VOL_DIRTY, LB_REAP_KEEP, LB_REAP_PENDING);
        sample[i++] = item("vol-a3", "us-east-1a", "in-use", LB_VOL_DIRTY, LB_REAP_KEEP, LB_REAP_PENDING);
        sample[i++] = item("vol-a4", "us-east-1a", "available", LB_VOL_FLUSHED, LB_REAP_DELETE, LB_REAP_DELETED);
        sample[i++] = item("vol-a5", "us-east-1a", "available", LB_VOL_FLUSHED, LB_REAP_DELETE, LB_REAP_DELETED);
        sample[i++] = item("vol-a6", "us-east-1a", "available", LB_VOL_FLUSHED, LB_REAP_DELETE, LB_REAP_FAILED);
        sample[i++] = item("vol-b1", "us-east-1b", "available", LB_VOL_QUARANTINED, LB_REAP_QUARANTINED,
                           LB_REAP_PENDING);
        sample[i++] = item("vol-b2", "us-east-1b", "in-use", LB_VOL_QUARANTINED, LB_REAP_QUARANTINED,
                           LB_REAP_PENDING);
        sample[i++] = item("vol-b3", "us-east-1b", "available", LB_VOL_FLUSHED, LB_REAP_DELETE, LB_REAP_SKIPPED);
        sample[i++] = item("vol-b4", "us-east-1b", "available", LB_VOL_UNMARKED, LB_REAP_UNUSED, LB_REAP_PENDING);
        sample[i++] = item("vol-b5", "us-east-1b", "available", LB_VOL_DIRTY, LB_REAP_RELOCATE, LB_REAP_PENDING);
        sample[i++] = item("vol-b6", "us-east-1b", "available", LB_VOL_RELOCATED, LB_REAP_KEEP, LB_REAP_PENDING);
        assert_int_equal(i, ELEMENTSOF(sample));
}

static struct lb_reap_report report(struct lb_reap_item *items, size_t n, const char *zone) {
        struct lb_reap_report r = { .now = NOW, .plan = { .items = items, .n = n } };
        assert_int_equal(lb_strscpy(r.region, sizeof r.region, "us-east-1"), 0);
        if (zone)
                assert_int_equal(lb_strscpy(r.availability_zone, sizeof r.availability_zone, zone), 0);
        return r;
}

/* The value of metric name with exactly these dimensions (zone NULL: Group alone); fails the
 * test when there is not exactly one such datapoint. */
static double value_of(const struct lb_reap_metrics *m, const char *name, const char *group, const char *zone) {
        const struct lb_metric_datum *found = NULL;
        for (size_t i = 0; i < m->n; i++) {
                const struct lb_metric_datum *d = &m->data[i];
                if (!streq(d->name, name) || d->n_dimensions != (zone ? 2u : 1u))
                        continue;
                assert_string_equal(d->dimensions[0].name, "Group");
                assert_string_equal(d->dimensions[0].value, group);
                if (zone) {
                        assert_string_equal(d->dimensions[1].name, "AvailabilityZone");
                        if (!streq(d->dimensions[1].value, zone))
                                continue;
                }
                if (found)
                        fail_msg("%s (%s) twice", name, strempty(zone));
                found = d;
        }
        if (!found)
                fail_msg("no %s for %s", name, zone ? zone : "the group");
        assert_string_equal(found->unit, "Count");
        assert_int_equal(found->timestamp, NOW);
        return found->value;
}

static void test_region_wide_run(void **state) {
        (void) state;
        fill_sample();
        struct lb_reap_report r = report(sample, ELEMENTSOF(sample), NULL);
        _cleanup_(lb_reap_metrics_done) struct lb_reap_metrics m = {};
        assert_int_equal(lb_reap_metrics_build(&r, "ads", &m), 0);

        /* Two zones and the group's totals, every metric each: 21 datapoints. */
        assert_int_equal(m.n, 3 * ELEMENTSOF(names));
        const double a[] = { 2, 1, 0, 2, 1, 0, 0 }, b[] = { 1, 0, 2, 0, 0, 1, 1 }, all[] = { 3, 1, 2, 2, 1, 1, 1 };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                assert_true(value_of(&m, names[i], "ads", "us-east-1a") == a[i]);
                assert_true(value_of(&m, names[i], "ads", "us-east-1b") == b[i]);
                assert_true(value_of(&m, names[i], "ads", NULL) == all[i]);
        }
        /* What CloudWatch will take. */
        struct lb_form f = {};
        assert_int_equal(lb_cloudwatch_form_put_metric_data(&f, "Lifeboat", m.data, m.n), 0);
        lb_form_done(&f);
}

static void test_zone_run(void **state) {
        (void) state;
        fill_sample();
        /* A run limited to us-east-1b (its items only): zone datapoints, no group totals. */
        struct lb_reap_report r = report(sample + 6, 6, "us-east-1b");
        _cleanup_(lb_reap_metrics_done) struct lb_reap_metrics m = {};
        assert_int_equal(lb_reap_metrics_build(&r, "ads", &m), 0);
        assert_int_equal(m.n, ELEMENTSOF(names));
        for (size_t i = 0; i < m.n; i++)
                assert_int_equal(m.data[i].n_dimensions, 2);
        assert_true(value_of(&m, "Quarantined", "ads", "us-east-1b") == 2);
        assert_true(value_of(&m, "Deleted", "ads", "us-east-1b") == 0);
        assert_true(value_of(&m, "Relocating", "ads", "us-east-1b") == 1);
}

static void test_nothing_found_still_reports_zeros(void **state) {
        (void) state;
        /* Zeros are what turns an alarm back to OK. */
        struct lb_reap_report zone = report(NULL, 0, "eu-west-1c");
        _cleanup_(lb_reap_metrics_done) struct lb_reap_metrics m = {};
        assert_int_equal(lb_reap_metrics_build(&zone, "logs", &m), 0);
        assert_int_equal(m.n, ELEMENTSOF(names));
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_true(value_of(&m, names[i], "logs", "eu-west-1c") == 0);

        struct lb_reap_report region = report(NULL, 0, NULL);
        _cleanup_(lb_reap_metrics_done) struct lb_reap_metrics g = {};
        assert_int_equal(lb_reap_metrics_build(&region, "logs", &g), 0);
        assert_int_equal(g.n, ELEMENTSOF(names));
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_true(value_of(&g, names[i], "logs", NULL) == 0);

        struct lb_reap_metrics none = {};
        assert_int_equal(lb_reap_metrics_build(&region, "", &none), -EINVAL);
        assert_null(none.data);
}

/* Relocated counts the moved volumes still waiting for deletion: not those this run deleted
 * (Deleted counts them), nor one whose copy is gone (a human's: Stranded counts it). */
static void test_relocated_counts_only_those_waiting(void **state) {
        (void) state;
        struct lb_reap_item items[] = {
                item("vol-r1", "us-east-1b", "available", LB_VOL_RELOCATED, LB_REAP_KEEP, LB_REAP_PENDING),
                item("vol-r2", "us-east-1b", "available", LB_VOL_RELOCATED, LB_REAP_DELETE, LB_REAP_DELETED),
                item("vol-r3", "us-east-1b", "available", LB_VOL_RELOCATED, LB_REAP_KEEP, LB_REAP_PENDING),
        };
        items[2].needs_human = true;
        struct lb_reap_report r = report(items, ELEMENTSOF(items), "us-east-1b");
        _cleanup_(lb_reap_metrics_done) struct lb_reap_metrics m = {};
        assert_int_equal(lb_reap_metrics_build(&r, "ads", &m), 0);
        assert_true(value_of(&m, "Relocated", "ads", "us-east-1b") == 1);
        assert_true(value_of(&m, "Deleted", "ads", "us-east-1b") == 1);
        assert_true(value_of(&m, "Stranded", "ads", "us-east-1b") == 1);
}

static void test_publish_skips_dry_and_interrupted_runs(void **state) {
        (void) state;
        struct lb_context ctx;
        struct lbt_log log = {};
        assert_int_equal(lb_context_init(&ctx), 0);
        lbt_log_install(&ctx, &log);
        struct lb_reap_metrics_result res;

        struct lb_reap_report dry = report(NULL, 0, NULL);
        dry.dry_run = true;
        assert_int_equal(lb_reap_metrics_publish(&ctx, &dry, &res), 0);
        assert_string_equal(res.skipped, "dry run");
        assert_int_equal(res.datapoints, 0);

        struct lb_reap_report stopped = report(NULL, 0, NULL);
        stopped.interrupted = true;
        assert_int_equal(lb_reap_metrics_publish(&ctx, &stopped, &res), 0);
        assert_string_equal(res.skipped, "interrupted");
        assert_int_equal(log.n_err, 0);

        /* A run without a CloudWatch client cannot publish: an error, not a crash. */
        struct lb_reap_report plain = report(NULL, 0, NULL);
        assert_int_equal(lb_reap_metrics_publish(&ctx, &plain, &res), -EINVAL);
        assert_null(res.skipped);
        assert_int_equal(log.n_err, 1);

        lbt_log_reset(&log);
        lb_context_done(&ctx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_region_wide_run),
                cmocka_unit_test(test_zone_run),
                cmocka_unit_test(test_nothing_found_still_reports_zeros),
                cmocka_unit_test(test_relocated_counts_only_those_waiting),
                cmocka_unit_test(test_publish_skips_dry_and_interrupted_runs),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
