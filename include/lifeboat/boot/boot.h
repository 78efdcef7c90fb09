/* SPDX-License-Identifier: MIT */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>



struct lb_context;

/*
 * lifeboat boot: prepare this instance's buffer volume, then claim, verify,
 * mount and hand to fluentd every dirty volume of the group in this AZ that
 * nobody holds. The logic lives here; agent/cmd-boot.c prints the report.
 */

enum lb_boot_outcome {
        LB_BOOT_RECOVERED,              /* attached, verified, mounted, snippet written */
        LB_BOOT_ALREADY_RECOVERED,      /* an earlier run did it all; nothing changed */
        LB_BOOT_WOULD_RECOVER,          /* --dry-run */
        LB_BOOT_LOST_RACE,              /* another instance claimed it first */
        LB_BOOT_QUARANTINED,            /* not safe to mount: tagged quarantined, detached */
        LB_BOOT_LEFT_DIRTY,             /* could not finish: detached, left dirty for the next boot */
        LB_BOOT_NOT_CLAIMED,            /* over the limit or out of slots/time: left for others */
        _LB_BOOT_OUTCOME_MAX,
};

struct lb_boot_volume {
        char volume_id[32];
        enum lb_boot_outcome outcome;
        char device[64];                /* the AttachVolume device name */
        char node[PATH_MAX];            /* the block device node */
        char mount_path[PATH_MAX];
        char previous_owner[32];
        char config_file[PATH_MAX];
        char winner[32];                /* LOST_RACE: who has it, when known */
        char reason[256];
};

struct lb_boot_own {
        bool configured;                /* LIFEBOAT_BUFFER_DEVICE is set */
        bool ready;                     /* mounted and tagged dirty */
        char volume_id[32];
        char device[64];
        char node[PATH_MAX];
        char mount_path[PATH_MAX];
        char fs_type[16];
        char fs_uuid[64];
        bool formatted;                 /* blank, so mkfs ran (or would run) */
        bool mounted_now;               /* mounted by this run (or would be); false: it was mounted already */
        bool delete_on_termination_cleared;
        bool tags_written;
        char reason[256];               /* why it is not ready */
};

struct lb_boot_report {
        bool dry_run;
        char instance_id[32];
        char availability_zone[32];
        struct lb_boot_own own;
        struct lb_boot_volume *volumes;
        size_t n_volumes;
        size_t candidates;              /* dirty volumes found available in the AZ */
        bool timed_out;
        unsigned imds_requests;
        unsigned ec2_requests;
        uint64_t elapsed_ms;
};

void lb_boot_report_done(struct lb_boot_report *r);
/* "recovered", "already-recovered", "would-recover", "lost-race", "quarantined", "left-dirty",
 * "not-claimed"; "unknown" out of range. */
const char *lb_boot_outcome_to_string(enum lb_boot_outcome o);

/*
 * Runs boot. The report is filled as it goes, also when boot fails.
 * Returns 0 when everything that was found is done (nothing quarantined or
 * left over), 1 when some volumes were quarantined or left dirty (also when
 * the boot timeout left dirty volumes unclaimed), or a
 * negative errno when AWS was unreachable or the own buffer volume is not
 * ready (-ENODEV no volume at the device, -EMEDIUMTYPE refused content, ...).
 */
int lb_boot_run(struct lb_context *ctx, bool dry_run, struct lb_boot_report *report);
