/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cmd-common.h"
#include "cmd-reap.h"
#include "output.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/reap/metrics.h"
#include "lifeboat/reap/reap.h"
#include "lifeboat/state/volume.h"

static void reap_usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat reap [--az ZONE | --this-az] [--min-age DURATION] [--stranded-after DURATION]\n"
                "                     [--delete-unused] [--relocate | --no-relocate] [--metrics] [--dry-run]\n"
                "                     [--json]\n"
                "\n"
                "The group's batch job (best one per group, e.g. an ECS scheduled task; or\n"
                "lifeboat-reap.timer on each instance). Deletes available volumes of the group tagged\n"
                "flushed longer than --min-age ago, and reports the ones that need a human: dirty\n"
                "volumes nobody recovered (stranded) and quarantined ones. With --relocate it moves\n"
                "stranded volumes, through a snapshot, to a zone where the group runs. Runs off EC2\n"
                "too, given AWS_REGION and credentials.\n"
                "\n"
                "  --az ZONE                 only this availability zone (default: the whole region)\n"
                "  --this-az                 only the zone of the instance it runs on (IMDS)\n"
                "  --min-age DURATION        keep volumes flushed (or created) less than this ago (10m)\n"
                "  --stranded-after DURATION a dirty volume available this long is stranded (1h)\n"
                "  --delete-unused           also delete group volumes without a state tag, once\n"
                "                            older than --min-age\n"
                "  --relocate                move stranded volumes of zones without an instance of\n"
                "                            the group to a zone with one (LIFEBOAT_RELOCATE)\n"
                "  --no-relocate             do not, whatever LIFEBOAT_RELOCATE says\n"
                "  --metrics                 publish the counts to CloudWatch (LIFEBOAT_METRICS)\n"
                "  --dry-run                 print the plan; delete, tag and create nothing\n"
                "  --json                    machine-readable report (schema in lifeboat(8)); one\n"
                "                            JSON object, also on failure\n"
                "\n"
                "Durations as systemd writes them: 90 (seconds), 500ms, 10min, 1h 30min.\n"
                "\n"
                "Exit codes: 0 nothing needs a human, 1 a deletion, tag change or the metrics failed,\n"
                "2 usage or config error, 3 AWS unreachable, 4 stranded or quarantined volumes exist.\n");
}

/* ---- JSON ---- */

static const char *mark_name(enum lb_reap_mark m) {
        return m == LB_REAP_MARK_SET ? "set-available-since" : m == LB_REAP_MARK_CLEAR ? "clear-available-since" : NULL;
}

static const char *or_null(const char *s) {
        return isempty(s) ? NULL : s;
}

/* An item's relocation: null when relocation does not touch it. */
static json_t *relocation_json(const struct lb_reap_relocation *x) {
        if (x->step == LB_RELOC_NONE)
                return json_null();
        return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:b, s:b, s:b, s:I, s:b, s:s?}", "step",
                         lb_reloc_step_to_string(x->step), "target_zone", or_null(x->target_zone), "snapshot_id",
                         or_null(x->snapshot_id), "snapshot_state", or_null(x->snapshot_state), "snapshot_progress",
                         or_null(x->snapshot_progress), "copy_id", or_null(x->copy_id), "copy_state",
                         or_null(x->copy_state), "started", x->started, "copied", x->copied, "marked", x->marked,
                         "snapshots_deleted", (json_int_t) x->snapshots_deleted, "failed", x->failed, "error",
                         or_null(x->error));
}

static json_t *relocation_counts_json(const struct lb_reap_relocation_counts *c) {
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "started", (json_int_t) c->started,
                         "waiting_for_snapshot", (json_int_t) c->waiting_for_snapshot, "copied",
                         (json_int_t) c->copied, "waiting_for_copy", (json_int_t) c->waiting_for_copy,
                         "source_marked", (json_int_t) c->source_marked, "snapshots_deleted",
                         (json_int_t) c->snapshots_deleted, "nowhere_to_go", (json_int_t) c->nowhere_to_go,
                         "failed", (json_int_t) c->failed);
}

static json_t *item_json(const struct lb_reap_item *it) {
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:o, s:s?, s:b, s:s?, s:o}", "volume_id", it->volume_id,
                         "availability_zone", it->availability_zone, "status", it->status, "lifeboat_state",
                         lb_vol_state_to_string(it->state), "category",
                         lb_reap_category_to_string(lb_reap_item_category(it)), "reason", it->reason, "since",
                         isempty(it->since) ? NULL : it->since, "age_s",
                         it->age_s < 0 ? json_null() : json_integer((json_int_t) it->age_s), "tag_action",
                         mark_name(it->mark), "tag_action_done", it->mark_done, "error",
                         isempty(it->error) ? NULL : it->error, "relocation", relocation_json(&it->reloc));
}

/* "metrics": null when not asked for, else what publishing did. */
static json_t *metrics_json(const struct lb_context *ctx, const struct lb_reap_options *o,
                            const struct lb_reap_metrics_result *m) {
        if (!o->metrics)
                return json_null();
        return json_pack("{s:s?, s:s?, s:I, s:I, s:I, s:s?}", "namespace", ctx->settings.metrics_namespace,
                         "skipped", m->skipped, "datapoints", (json_int_t) m->datapoints, "published",
                         (json_int_t) m->published, "requests", (json_int_t) m->requests, "error",
                         isempty(m->error) ? NULL : m->error);
}

/* The report as JSON; NULL when it cannot be built (a value that is not valid UTF-8). */
static json_t *report_json(const struct lb_context *ctx, const struct lb_reap_options *o,
                           const struct lb_reap_report *r, const struct lb_reap_metrics_result *m,
                           int exit_code) {
        size_t count[_LB_REAP_CAT_MAX] = { 0 };
        json_auto_t *vols = json_array();
        json_auto_t *counts = json_object();
        if (!vols || !counts)
                return NULL;
        for (size_t i = 0; i < r->plan.n; i++) {
                if (json_array_append_new(vols, item_json(&r->plan.items[i])) < 0)
                        return NULL;
                count[lb_reap_item_category(&r->plan.items[i])]++;
        }
        for (int c = 0; c < _LB_REAP_CAT_MAX; c++)
                if (json_object_set_new(counts, lb_reap_category_to_string(c), json_integer((json_int_t) count[c])) < 0)
                        return NULL;
        char now[40] = "";
        if (r->now > 0)
                (void) lb_format_iso8601(r->now, now, sizeof now);
        json_auto_t *metrics = metrics_json(ctx, o, m);
        if (!metrics)
                return NULL;
        return json_pack(
                "{s:b, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:b, s:O, s:O, s:b, s:b, s:I, s:I, s:b, s:o, s:O}",
                "dry_run", o->dry_run, "group", ctx->settings.group, "tag_prefix", ctx->settings.tag_prefix, "region",
                isempty(r->region) ? NULL : r->region, "availability_zone",
                isempty(r->availability_zone) ? o->availability_zone : r->availability_zone, "now",
                now[0] ? now : NULL, "min_age_s", (json_int_t) (o->min_age_ms / 1000), "stranded_after_s",
                (json_int_t) (o->stranded_after_ms / 1000), "delete_unused", o->delete_unused, "volumes", vols,
                "counts", counts, "needs_attention", exit_code == LB_EXIT_ATTENTION, "interrupted", r->interrupted,
                "ec2_requests", (json_int_t) r->ec2_requests, "elapsed_ms", (json_int_t) r->elapsed_ms, "relocate",
                o->relocate, "relocations", relocation_counts_json(&r->relocations), "metrics", metrics);
}

/* ---- text ---- */

struct section {
        enum lb_reap_category category;
        const char *title;
};

/* What relocation did to an item in this run (or, in a dry run, would do), for its row. */
static void relocation_done(const struct lb_reap_relocation *x, bool dry_run, char *buf, size_t size) {
        _cleanup_buf_ struct lb_buf b = {};
        buf[0] = '\0';
        if (x->step == LB_RELOC_NONE)
                return;
        if (dry_run && x->step != LB_RELOC_WAIT_SNAPSHOT && x->step != LB_RELOC_WAIT_COPY)
                (void) lb_buf_printf(&b, "; dry run: would %s", lb_reloc_step_to_string(x->step));
        if (x->started)
                (void) lb_buf_printf(&b, "; snapshot %s started", x->snapshot_id);
        if (x->copied)
                (void) lb_buf_printf(&b, "; copy %s created", x->copy_id);
        if (x->marked)
                (void) lb_buf_printf(&b, "; source tagged relocated");
        if (x->snapshots_deleted > 0)
                (void) lb_buf_printf(&b, "; %u snapshot%s deleted", x->snapshots_deleted,
                                     x->snapshots_deleted == 1 ? "" : "s");
        if (x->failed)
                (void) lb_buf_printf(&b, "; failed: %s", x->error);
        if (b.data && b.len > 2)
                (void) lb_snprintf(buf, size, "[%s]", b.data + 2);
}

static void print_row(const struct lb_reap_item *it, bool dry_run) {
        enum lb_reap_category c = lb_reap_item_category(it);
        const char *detail = it->reason;
        char text[1200], reloc[600];

        if (c == LB_REAP_CAT_SKIPPED || c == LB_REAP_CAT_FAILED) {
                (void) lb_snprintf(text, sizeof text, "%s; was: %s", it->error, it->reason);
                detail = text;
        } else if (c == LB_REAP_CAT_QUARANTINED) {
                (void) lb_snprintf(text, sizeof text, "reason: %s%s%s", it->reason,
                                   streq(it->status, "available") ? "" : "; status ",
                                   streq(it->status, "available") ? "" : it->status);
                detail = text;
        } else if (it->mark == LB_REAP_MARK_SET && dry_run) {
                (void) lb_snprintf(text, sizeof text, "%s [dry run: not tagged]", it->reason);
                detail = text;
        } else if (it->mark_failed) {
                (void) lb_snprintf(text, sizeof text, "%s [%s]", it->reason, it->error);
                detail = text;
        }
        relocation_done(&it->reloc, dry_run, reloc, sizeof reloc);
        if (reloc[0] != '\0') {
                char was[sizeof text];
                (void) lb_strscpy(was, sizeof was, detail);
                (void) lb_snprintf(text, sizeof text, "%s %s", was, reloc);
                detail = text;
        }
        /* Reasons carry tag values: escaped, so that none can forge a row or drive the terminal. */
        char shown[1024];
        printf("  %-22s %-11s %-11s %s\n", it->volume_id, it->availability_zone, lb_vol_state_to_string(it->state),
               lb_cescape(detail, shown, sizeof shown));
}

static void print_metrics(const struct lb_context *ctx, const struct lb_reap_metrics_result *m) {
        if (m->skipped)
                printf("metrics: not published (%s)\n", m->skipped);
        else if (isempty(m->error))
                printf("metrics: %zu datapoints published to CloudWatch namespace %s\n", m->published,
                       ctx->settings.metrics_namespace);
        else
                printf("metrics: %zu of %zu datapoints published to CloudWatch namespace %s: %s\n", m->published,
                       m->datapoints, ctx->settings.metrics_namespace, m->error);
}

static void print_text(const struct lb_context *ctx, const struct lb_reap_options *o,
                       const struct lb_reap_report *r, const struct lb_reap_metrics_result *m) {
        const char *zone = isempty(r->availability_zone) ? NULL : r->availability_zone;
        static const struct section sections[] = {
                { LB_REAP_CAT_DELETED, "DELETED" },
                { LB_REAP_CAT_WOULD_DELETE, "WOULD DELETE (dry run)" },
                { LB_REAP_CAT_FAILED, "NOT DELETED (failed)" },
                { LB_REAP_CAT_SKIPPED, "KEPT: changed between describe and delete" },
                { LB_REAP_CAT_KEPT, "KEPT" },
                { LB_REAP_CAT_RELOCATING, "RELOCATING (moving to a zone where the group runs)" },
                { LB_REAP_CAT_STRANDED, "STRANDED (need a human)" },
                { LB_REAP_CAT_QUARANTINED, "QUARANTINED (need a human)" },
                { LB_REAP_CAT_UNUSED, "UNUSED" },
        };
        size_t count[_LB_REAP_CAT_MAX] = { 0 };
        char min_age[32], stranded[32], relocating[48] = "";

        (void) lb_format_duration_ms(o->min_age_ms, min_age, sizeof min_age);
        (void) lb_format_duration_ms(o->stranded_after_ms, stranded, sizeof stranded);
        printf("reap: group %s in %s%s%s; min age %s, stranded after %s%s%s\n", ctx->settings.group,
               !zone ? "region " : "zone ", !zone ? (isempty(r->region) ? "?" : r->region) : zone,
               !zone ? " (all zones)" : "", min_age, stranded,
               o->delete_unused ? ", deleting unused volumes" : "", o->dry_run ? " (dry run: nothing changes)" : "");
        if (o->relocate)
                printf("relocating stranded volumes to zones where the group runs\n");

        for (size_t i = 0; i < r->plan.n; i++)
                count[lb_reap_item_category(&r->plan.items[i])]++;
        for (size_t s = 0; s < ELEMENTSOF(sections); s++) {
                if (count[sections[s].category] == 0)
                        continue;
                printf("\n%s: %zu\n", sections[s].title, count[sections[s].category]);
                for (size_t i = 0; i < r->plan.n; i++)
                        if (lb_reap_item_category(&r->plan.items[i]) == sections[s].category)
                                print_row(&r->plan.items[i], o->dry_run);
        }
        if (r->plan.n == 0)
                printf("\nno volumes of the group found\n");

        if (o->relocate || count[LB_REAP_CAT_RELOCATING] > 0)
                (void) lb_snprintf(relocating, sizeof relocating, ", %zu relocating", count[LB_REAP_CAT_RELOCATING]);
        printf("\nreap: %zu %s, %zu not deleted, %zu kept, %zu stranded, %zu quarantined, %zu unused%s%s; "
               "%u EC2 requests, %.1f s\n",
               o->dry_run ? count[LB_REAP_CAT_WOULD_DELETE] : count[LB_REAP_CAT_DELETED],
               o->dry_run ? "would be deleted" : "deleted", count[LB_REAP_CAT_FAILED],
               count[LB_REAP_CAT_KEPT] + count[LB_REAP_CAT_SKIPPED], count[LB_REAP_CAT_STRANDED],
               count[LB_REAP_CAT_QUARANTINED], count[LB_REAP_CAT_UNUSED], relocating,
               r->interrupted ? " (interrupted)" : "", r->ec2_requests, (double) r->elapsed_ms / 1000.0);
        if (o->relocate) {
                const struct lb_reap_relocation_counts *x = &r->relocations;
                printf("relocation: %u started, %u waiting for a snapshot, %u copied, %u waiting for a copy, "
                       "%u sources marked, %u snapshots deleted, %u with nowhere to go, %u failed\n",
                       x->started, x->waiting_for_snapshot, x->copied, x->waiting_for_copy, x->source_marked,
                       x->snapshots_deleted, x->nowhere_to_go, x->failed);
        }
        if (o->metrics)
                print_metrics(ctx, m);
}

/* Where a unit that does not fail on exit 4 (the timer) still shows it: journalctl -p warning. */
static void warn_attention(const struct lb_context *ctx, const struct lb_reap_report *r) {
        size_t stranded = 0, quarantined = 0;
        for (size_t i = 0; i < r->plan.n; i++) {
                enum lb_reap_category c = lb_reap_item_category(&r->plan.items[i]);
                stranded += c == LB_REAP_CAT_STRANDED;
                quarantined += c == LB_REAP_CAT_QUARANTINED;
        }
        lb_warn(ctx, "%zu stranded and %zu quarantined volumes of group %s need a human", stranded, quarantined,
                ctx->settings.group);
}

/* ---- options ---- */

static int parse_duration_option(struct lb_context *ctx, const char *name, const char *value, uint64_t *ret) {
        if (lb_parse_duration_ms(value, ret) < 0) {
                lb_err(ctx, "reap: --%s: '%s' is not a duration (90, 90s, 500ms, 10min, 1h 30min)", name, value);
                return -EINVAL;
        }
        return 0;
}

int lb_cmd_reap(struct lb_context *ctx, int argc, char **argv) {
        enum { OPT_AZ = 0x100, OPT_THIS_AZ, OPT_MIN_AGE, OPT_STRANDED_AFTER, OPT_DELETE_UNUSED, OPT_METRICS,
               OPT_RELOCATE, OPT_NO_RELOCATE };
        static const struct option options[] = {
                { "az", required_argument, NULL, OPT_AZ },
                { "this-az", no_argument, NULL, OPT_THIS_AZ },
                { "min-age", required_argument, NULL, OPT_MIN_AGE },
                { "stranded-after", required_argument, NULL, OPT_STRANDED_AFTER },
                { "delete-unused", no_argument, NULL, OPT_DELETE_UNUSED },
                { "relocate", no_argument, NULL, OPT_RELOCATE },
                { "no-relocate", no_argument, NULL, OPT_NO_RELOCATE },
                { "metrics", no_argument, NULL, OPT_METRICS },
                { "dry-run", no_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct lb_reap_options o = {
                .min_age_ms = LB_REAP_DEFAULT_MIN_AGE_MS,
                .stranded_after_ms = LB_REAP_DEFAULT_STRANDED_AFTER_MS,
                .relocate = ctx->settings.relocate,
        };
        bool json = false, metrics = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "njh", options, NULL)) >= 0)
                switch (c) {
                case OPT_AZ:
                        if (isempty(optarg)) {
                                lb_err(ctx, "reap: --az needs a zone name");
                                return lb_output_fail(ctx, LB_EXIT_USAGE);
                        }
                        o.availability_zone = optarg;
                        break;
                case OPT_THIS_AZ:
                        o.this_az = true;
                        break;
                case OPT_MIN_AGE:
                        if (parse_duration_option(ctx, "min-age", optarg, &o.min_age_ms) < 0)
                                return lb_output_fail(ctx, LB_EXIT_USAGE);
                        break;
                case OPT_STRANDED_AFTER:
                        if (parse_duration_option(ctx, "stranded-after", optarg, &o.stranded_after_ms) < 0)
                                return lb_output_fail(ctx, LB_EXIT_USAGE);
                        break;
                case OPT_DELETE_UNUSED:
                        o.delete_unused = true;
                        break;
                case OPT_RELOCATE:
                case OPT_NO_RELOCATE:
                        o.relocate = c == OPT_RELOCATE;
                        break;
                case OPT_METRICS:
                        metrics = true;
                        break;
                case 'n':
                        o.dry_run = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        reap_usage(stdout);
                        return LB_EXIT_OK;
                default:
                        lb_cmd_bad_option(ctx, "reap", argv, optopt);
                        reap_usage(stderr);
                        return lb_output_fail(ctx, LB_EXIT_USAGE);
                }
        if (lb_cmd_options_done(ctx, argc, argv) < 0)
                return lb_output_fail(ctx, LB_EXIT_USAGE);
        if (o.this_az && o.availability_zone) {
                lb_err(ctx, "reap: --az and --this-az exclude each other");
                return lb_output_fail(ctx, LB_EXIT_USAGE);
        }
        o.metrics = metrics || ctx->settings.metrics;

        struct lb_reap_report report = { 0 };
        struct lb_reap_metrics_result published = { 0 };
        r = lb_reap_run(ctx, &o, &report);
        int exit_code = r < 0 ? lb_exit_code_for_aws_error(r) : lb_reap_report_exit_code(&report);
        if (exit_code == LB_EXIT_ATTENTION)
                warn_attention(ctx, &report);
        /* A failed publication changes nothing reap did: it is a partial failure (exit 1), unless a
         * human is needed anyway (4 wins). */
        if (r >= 0 && o.metrics && lb_reap_metrics_publish(ctx, &report, &published) < 0 && exit_code == LB_EXIT_OK)
                exit_code = LB_EXIT_PARTIAL;
        if (json)
                (void) lb_output_json_report(ctx, report_json(ctx, &o, &report, &published, exit_code), exit_code);
        else if (r >= 0)
                print_text(ctx, &o, &report, &published);
        lb_reap_report_done(&report);
        return exit_code;
}
