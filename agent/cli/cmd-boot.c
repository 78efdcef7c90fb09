/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/boot/boot.h"
#include "cmd-common.h"
#include "cmd-boot.h"
#include "lifeboat/basic/json.h"
#include "output.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"

static void boot_usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat boot [--dry-run] [--json]\n"
                "\n"
                "Prepares this instance's buffer volume (LIFEBOAT_BUFFER_DEVICE), then claims the\n"
                "group's dirty volumes in this availability zone, verifies and mounts them under\n"
                "LIFEBOAT_RECOVERY_ROOT and writes a fluentd config for each. Run it before the\n"
                "ECS agent starts.\n"
                "\n"
                "  --dry-run  print what it would attach, format and mount; change nothing\n"
                "  --json     machine-readable report (one JSON object, also on failure)\n"
                "\n"
                "Exit codes: 0 done (or nothing to do), 1 partial (volumes quarantined or left\n"
                "dirty), 2 usage or config error, 3 AWS unreachable or own buffer volume not ready.\n");
}

static json_t *volume_json(const struct lb_boot_volume *v) {
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "volume_id", v->volume_id, "outcome",
                         lb_boot_outcome_to_string(v->outcome), "device", v->device, "node", v->node, "mount_path",
                         v->mount_path, "previous_owner", v->previous_owner, "config_file", v->config_file, "winner",
                         v->winner, "reason", v->reason);
}

/* The report as JSON; NULL when it cannot be built (a value that is not valid UTF-8). Before
 * boot learnt who this instance is, instance_id and availability_zone are null, not "". */
static json_t *report_json(const struct lb_boot_report *r) {
        json_auto_t *vols = json_array();
        if (!vols)
                return NULL;
        for (size_t i = 0; i < r->n_volumes; i++)
                if (json_array_append_new(vols, volume_json(&r->volumes[i])) < 0)
                        return NULL;
        const struct lb_boot_own *o = &r->own;
        json_auto_t *own = o->configured
                ? json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:s}", "ready", o->ready,
                            "volume_id", o->volume_id, "device", o->device, "node", o->node, "mount_path",
                            o->mount_path, "fs_type", o->fs_type, "fs_uuid", o->fs_uuid, "formatted", o->formatted,
                            "mounted_now", o->mounted_now, "delete_on_termination_cleared",
                            o->delete_on_termination_cleared, "tags_written", o->tags_written, "reason", o->reason)
                : json_null();
        if (!own)
                return NULL;
        return json_pack("{s:b, s:o, s:o, s:O, s:O, s:I, s:b, s:I, s:I, s:I}", "dry_run", r->dry_run, "instance_id",
                         lb_json_string_or_null(r->instance_id), "availability_zone",
                         lb_json_string_or_null(r->availability_zone), "own_volume", own, "volumes", vols,
                         "candidates", (json_int_t) r->candidates, "timed_out", r->timed_out, "imds_requests",
                         (json_int_t) r->imds_requests, "ec2_requests", (json_int_t) r->ec2_requests, "elapsed_ms",
                         (json_int_t) r->elapsed_ms);
}

static void print_own(const struct lb_boot_report *r) {
        const struct lb_boot_own *o = &r->own;
        const char *would = r->dry_run ? "would be " : "";
        if (!o->configured) {
                printf("own buffer volume: none configured (LIFEBOAT_BUFFER_DEVICE unset): recovery only\n");
                return;
        }
        if (!o->ready && !isempty(o->reason)) {
                printf("own buffer volume %s at %s: NOT READY: %s\n", isempty(o->volume_id) ? "?" : o->volume_id,
                       o->device, o->reason);
                return;
        }
        printf("own buffer volume %s (%s -> %s): %s%s, %s%s at %s%s%s\n", o->volume_id, o->device, o->node,
               o->formatted ? would : "", o->formatted ? "formatted" : o->fs_type, o->mounted_now ? would : "",
               o->mounted_now ? "mounted" : "already mounted", o->mount_path,
               o->tags_written ? (r->dry_run ? ", would be tagged dirty" : ", tagged dirty") : "",
               o->delete_on_termination_cleared ? (r->dry_run ? ", DeleteOnTermination would be turned off"
                                                              : ", DeleteOnTermination turned off")
                                                : "");
}

static void print_volume(const struct lb_boot_volume *v) {
        switch (v->outcome) {
        case LB_BOOT_RECOVERED:
        case LB_BOOT_ALREADY_RECOVERED:
                printf("%s %s%s%s: %s -> %s, mounted at %s, fluentd config %s\n", v->outcome == LB_BOOT_RECOVERED ? "recovered" : "already recovered",
                       v->volume_id, isempty(v->previous_owner) ? "" : " from ", v->previous_owner, v->device,
                       v->node, v->mount_path, v->config_file);
                break;
        case LB_BOOT_WOULD_RECOVER:
                printf("would recover %s%s%s at %s\n", v->volume_id, isempty(v->previous_owner) ? "" : " from ",
                       v->previous_owner, v->mount_path);
                break;
        case LB_BOOT_LOST_RACE:
                printf("%s was claimed by %s first; skipped\n", v->volume_id, isempty(v->winner) ? "another instance" : v->winner);
                break;
        case LB_BOOT_QUARANTINED:
                printf("QUARANTINED %s: %s (tagged quarantined, detached)\n", v->volume_id, v->reason);
                break;
        case LB_BOOT_LEFT_DIRTY:
                printf("LEFT DIRTY %s: %s (detached, the next boot retries)\n", v->volume_id, v->reason);
                break;
        case LB_BOOT_NOT_CLAIMED:
        default:
                printf("not claimed %s: %s\n", v->volume_id, v->reason);
                break;
        }
}

static void print_text(const struct lb_boot_report *r) {
        size_t count[_LB_BOOT_OUTCOME_MAX] = { 0 };
        /* AWS never said who we are, so nothing was looked at: the error said it all. */
        if (isempty(r->instance_id))
                return;
        printf("instance %s in %s%s\n", r->instance_id, r->availability_zone, r->dry_run ? " (dry run)" : "");
        print_own(r);
        for (size_t i = 0; i < r->n_volumes; i++) {
                print_volume(&r->volumes[i]);
                count[r->volumes[i].outcome]++;
        }
        printf("boot: %zu dirty found, %zu recovered, %zu already recovered, %zu quarantined, %zu left dirty, "
               "%zu lost to other instances, %zu not claimed%s; %.1f s, %u IMDS + %u EC2 requests\n",
               r->candidates, count[LB_BOOT_RECOVERED] + count[LB_BOOT_WOULD_RECOVER], count[LB_BOOT_ALREADY_RECOVERED],
               count[LB_BOOT_QUARANTINED], count[LB_BOOT_LEFT_DIRTY], count[LB_BOOT_LOST_RACE],
               count[LB_BOOT_NOT_CLAIMED], r->timed_out ? " (boot timeout reached)" : "",
               (double) r->elapsed_ms / 1000.0, r->imds_requests, r->ec2_requests);
}

int lb_cmd_boot(struct lb_context *ctx, int argc, char **argv) {
        static const struct option options[] = {
                { "dry-run", no_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool dry_run = false, json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "njh", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        dry_run = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        boot_usage(stdout);
                        return LB_EXIT_OK;
                default:
                        lb_cmd_bad_option(ctx, "boot", argv, optopt);
                        boot_usage(stderr);
                        return lb_output_fail(ctx, LB_EXIT_USAGE);
                }
        if (lb_cmd_options_done(ctx, argc, argv) < 0)
                return lb_output_fail(ctx, LB_EXIT_USAGE);

        struct lb_boot_report report = { 0 };
        r = lb_boot_run(ctx, dry_run, &report);
        int exit_code = r < 0 ? (r == -EINVAL ? LB_EXIT_USAGE : LB_EXIT_UNAVAILABLE)
                        : r > 0 ? LB_EXIT_PARTIAL
                                : LB_EXIT_OK;
        if (json)
                (void) lb_output_json_report(ctx, report_json(&report), exit_code);
        else
                print_text(&report);
        lb_boot_report_done(&report);
        return exit_code;
}
