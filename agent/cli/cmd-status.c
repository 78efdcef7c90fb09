/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/aws/session.h"
#include "commands.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/volume.h"
#include "lifeboat/watch/watch.h"


static void status_usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat status [--json]\n"
                "\n"
                "Shows this instance (from IMDS), its group, the volumes of the group attached\n"
                "here, and the group's volumes in this availability zone by lifeboat state.\n"
                "\n"
                "  --json   machine-readable output (schema in the README)\n");
}

static json_t *attachment_to_json(const struct lb_attachment *a) {
        return json_pack("{s:s, s:s, s:s, s:b}", "instance_id", a->instance_id, "device", a->device, "state",
                         a->state, "delete_on_termination", a->delete_on_termination);
}

static json_t *volume_to_json(const struct lb_settings *s, const struct lb_volume *v, const char *self) {
        json_t *atts = json_array();
        if (!atts)
                return NULL;
        for (size_t i = 0; i < v->n_attachments; i++)
                if (json_array_append_new(atts, attachment_to_json(&v->attachments[i])) < 0) {
                        json_decref(atts);
                        return NULL;
                }
        const char *owner = lb_volume_lb_tag(s, v, LB_TAG_OWNER);
        const char *reason = lb_volume_lb_tag(s, v, LB_TAG_REASON);
        const char *flushed_at = lb_volume_lb_tag(s, v, LB_TAG_FLUSHED_AT);
        return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s?, s:s?, s:s?, s:b, s:o}", "volume_id", v->id,
                         "lifeboat_state", lb_vol_state_to_string(lb_volume_state(s, v)), "status", v->state,
                         "size_gib", (json_int_t) v->size_gib, "availability_zone", v->availability_zone,
                         "create_time", v->create_time, "owner", owner, "reason", reason, "flushed_at",
                         flushed_at, "attached_here", lb_volume_attachment_for(v, self) != NULL, "attachments",
                         atts);
}

static int print_json(const struct lb_context *ctx, const struct lb_aws *aws, const struct lb_volume_list *vols,
                      const struct lb_watch_state *watch, const struct lb_manifest *manifest) {
        const struct lb_settings *s = &ctx->settings;
        const struct lb_identity *id = &aws->identity;
        _cleanup_(json_decrefp) json_t *volumes = json_array();
        _cleanup_(json_decrefp) json_t *counts = json_object();
        if (!volumes || !counts)
                return -ENOMEM;
        size_t n_state[_LB_VOL_STATE_MAX] = { 0 };
        for (size_t i = 0; i < vols->n; i++) {
                if (json_array_append_new(volumes, volume_to_json(s, &vols->items[i], id->instance_id)) < 0)
                        return -ENOMEM;
                n_state[lb_volume_state(s, &vols->items[i])]++;
        }
        for (int i = 0; i < _LB_VOL_STATE_MAX; i++)
                if (json_object_set_new(counts, lb_vol_state_to_string(i), json_integer((json_int_t) n_state[i])) < 0)
                        return -ENOMEM;

        _cleanup_(json_decrefp) json_t *root = json_pack(
                "{s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s}, s:s, s:s, s:O, s:O}", "instance", "instance_id",
                id->instance_id, "region", id->region, "availability_zone", id->availability_zone,
                "availability_zone_id", id->availability_zone_id, "instance_type", id->instance_type,
                "lifecycle", id->lifecycle, "account_id", id->account_id, "group", s->group, "tag_prefix",
                s->tag_prefix, "volumes", volumes, "counts", counts);
        if (!root)
                return -ENOMEM;
        json_t *w = NULL;
        int r = lb_watch_status_to_json(watch, watch && lb_watch_state_running(watch), manifest, &w);
        if (r < 0)
                return r;
        if (json_object_set_new(root, "watch", w) < 0)
                return -ENOMEM;
        return lb_cmd_print_json(root);
}

static void print_volume_row(const struct lb_settings *s, const struct lb_volume *v, const char *self) {
        char where[96] = "-";
        if (v->n_attachments > 0) {
                const struct lb_attachment *a = &v->attachments[0];
                (void) lb_snprintf(where, sizeof where, "%s%s %s (%s)", streq(a->instance_id, self) ? "*" : "",
                                   a->instance_id, a->device, a->state);
        }
        const char *owner = lb_volume_lb_tag(s, v, LB_TAG_OWNER);
        printf("  %-22s %-12s %-10s %5" PRIu64 "G  %-20s %s\n", v->id, lb_vol_state_to_string(lb_volume_state(s, v)),
               v->state, v->size_gib, owner ? owner : "-", where);
}

static void print_table(const struct lb_context *ctx, const struct lb_aws *aws, const struct lb_volume_list *vols,
                        const struct lb_watch_state *watch, const struct lb_manifest *manifest) {
        const struct lb_settings *s = &ctx->settings;
        const struct lb_identity *id = &aws->identity;
        size_t n_state[_LB_VOL_STATE_MAX] = { 0 };

        printf("Instance  %s (%s, %s)\n", id->instance_id, isempty(id->lifecycle) ? "lifecycle unknown" : id->lifecycle,
               id->instance_type);
        printf("Zone      %s%s%s%s, region %s\n", id->availability_zone, isempty(id->availability_zone_id) ? "" : " (",
               id->availability_zone_id, isempty(id->availability_zone_id) ? "" : ")", id->region);
        printf("Group     %s (tags %s:*)\n\n", s->group, s->tag_prefix);

        printf("Attached here:\n");
        size_t here = 0;
        for (size_t i = 0; i < vols->n; i++)
                if (lb_volume_attachment_for(&vols->items[i], id->instance_id)) {
                        print_volume_row(s, &vols->items[i], id->instance_id);
                        here++;
                }
        if (here == 0)
                printf("  (none)\n");

        printf("\nGroup volumes in %s:\n", id->availability_zone);
        printf("  %-22s %-12s %-10s %6s  %-20s %s\n", "VOLUME", "STATE", "STATUS", "SIZE", "OWNER", "ATTACHED TO");
        for (size_t i = 0; i < vols->n; i++) {
                print_volume_row(s, &vols->items[i], id->instance_id);
                n_state[lb_volume_state(s, &vols->items[i])]++;
        }
        if (vols->n == 0)
                printf("  (none)\n");
        printf("\n%zu dirty, %zu flushed, %zu quarantined, %zu unmarked", n_state[LB_VOL_DIRTY],
               n_state[LB_VOL_FLUSHED], n_state[LB_VOL_QUARANTINED], n_state[LB_VOL_UNMARKED]);
        if (n_state[LB_VOL_UNKNOWN] > 0)
                printf(", %zu with an unknown state tag", n_state[LB_VOL_UNKNOWN]);
        printf("\n");

        _cleanup_free_ char *text = NULL;
        if (lb_watch_status_describe(watch, watch && lb_watch_state_running(watch), manifest, &text) >= 0)
                printf("\n%s", text);
}

int lb_cmd_status(struct lb_context *ctx, int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        status_usage(stdout);
                        return LB_EXIT_OK;
                default:
                        status_usage(stderr);
                        return LB_EXIT_USAGE;
                }
        if (lb_cmd_options_done(ctx, argc, argv) < 0)
                return LB_EXIT_USAGE;

        _cleanup_aws_ struct lb_aws aws = { 0 };
        r = lb_aws_open(ctx, LB_AWS_NEED_IDENTITY | LB_AWS_IDENTITY_EXTRA, &aws);
        if (r < 0)
                return lb_exit_code_for_aws_error(r);

        char group_filter[192];
        r = lb_tag_filter(&ctx->settings, LB_TAG_GROUP, group_filter, sizeof group_filter);
        if (r < 0)
                return LB_EXIT_USAGE;
        const char *group_values[] = { ctx->settings.group };
        const char *az_values[] = { aws.identity.availability_zone };
        const struct lb_filter filters[] = {
                { group_filter, group_values, 1 },
                { "availability-zone", az_values, 1 },
        };
        _cleanup_volume_list_ struct lb_volume_list vols = { 0 };
        r = lb_ec2_describe_volumes(aws.ec2, filters, ELEMENTSOF(filters), NULL, 0, &vols);
        if (r < 0) {
                char msg[768];
                lb_err(ctx, "DescribeVolumes failed: %s", lb_ec2_last_error_text(aws.ec2, msg, sizeof msg));
                return lb_exit_code_for_aws_error(r);
        }

        /* What watch and boot keep in the run directory: this instance's side of the story. */
        _cleanup_watch_state_ struct lb_watch_state watch = { 0 };
        _cleanup_manifest_ struct lb_manifest manifest = { 0 };
        r = lb_watch_state_load(ctx->settings.run_dir, &watch);
        if (r < 0 && r != -ENOENT)
                lb_warn(ctx, "cannot read %s/%s: %s", ctx->settings.run_dir, LB_WATCH_STATE_FILE, strerror(-r));
        const struct lb_watch_state *w = r >= 0 ? &watch : NULL;
        r = lb_manifest_load(ctx->settings.run_dir, &manifest);
        if (r < 0)
                lb_warn(ctx, "cannot read %s/%s: %s", ctx->settings.run_dir, LB_MANIFEST_FILE, strerror(-r));

        if (json)
                r = print_json(ctx, &aws, &vols, w, &manifest);
        else {
                print_table(ctx, &aws, &vols, w, &manifest);
                r = 0;
        }
        if (r < 0) {
                lb_err(ctx, "cannot format the status: %s", strerror(-r));
                return LB_EXIT_USAGE;
        }
        return LB_EXIT_OK;
}
