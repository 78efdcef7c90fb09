/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to agent/boot/: the state of one run (types only; each module's functions are in its
 * own header beside it). The public API is lifeboat/boot/boot.h.
 *
 *   boot.c      the run: lock, AWS, steps, exit status
 *   common.c    what every step shares: deadline, report, CreateTags and DetachVolume that
 *               ride out throttling
 *   own.c       this instance's own buffer volume
 *   claim.c     candidates in this instance's rendezvous order, concurrent AttachVolume,
 *               polling, lost races, timeouts
 *   recover.c   recovering attached volumes (concurrently, on threads), giving one back,
 *               manifest, owner tags
 *
 * Calls go one way: boot -> own, claim, recover, common; claim -> recover, common;
 * recover, own -> common.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/settings.h"
#include "lifeboat/boot/boot.h"
#include "lifeboat/disk/blockdev.h"
#include "lifeboat/state/manifest.h"

struct lb_context;
struct lb_settings;

/* A volume this run is trying to attach and recover. */
enum claim_state {
        CLAIM_TO_ATTACH,        /* needs an AttachVolume (first try, or a new device name) */
        CLAIM_ATTACHING,        /* AttachVolume accepted, or answered ambiguously: describe to see */
        CLAIM_RECOVERING,       /* attached here (at device): recovered with this poll's batch */
        CLAIM_FINISHED,         /* outcome recorded */
};

struct claim {
        struct lb_volume vol;           /* as described when chosen */
        enum claim_state state;
        char device[64];
        unsigned name_tries;
        uint64_t attach_sent_ms;
        enum lb_aws_error_kind attach_error; /* of the last AttachVolume, LB_AWS_OK if accepted */
        unsigned storm_tries;           /* AttachVolume sent again after throttling or a 5xx */
        bool resumed;                   /* attached here by an earlier run */
        bool owner_tag_pending;         /* recovered; the owner tag goes out with the others */
        enum lb_boot_outcome outcome;   /* CLAIM_FINISHED: how it ended */
};

/* One boot run. */
struct boot {
        struct lb_context *ctx;
        const struct lb_settings *s;
        bool dry_run;
        struct lb_aws aws;
        const char *self;
        uint64_t deadline_ms;
        struct lb_volume_list here;     /* volumes attached to this instance */
        struct lb_manifest manifest;
        struct lb_devname_picker picker;
        char **snapshot;                /* SYSFS_ROOT/block before our attaches */
        struct lb_boot_report *report;
        bool snippets_changed;
        bool attach_limit_reached;
        struct claim *claims;
        size_t n_claims;
        char key_group[160], key_state[160], key_owner[160], key_fs_uuid[160], key_reason[160];
};
