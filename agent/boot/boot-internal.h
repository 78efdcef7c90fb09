/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to the boot modules (agent/boot*.c); the public API is lifeboat/boot.h.
 *
 *   agent/boot.c          orchestration, report, boot lock, EC2 calls boot cannot do without
 *   agent/boot-own.c      this instance's own buffer volume
 *   agent/boot-claim.c    candidates, concurrent AttachVolume, polling, lost races, timeouts
 *   agent/boot-recover.c  recovering an attached volume, giving it back, manifest, owner tags
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

/* ---- agent/boot.c ---- */

/* Whether the boot deadline passed or the run was interrupted. */
bool boot_past_deadline(const struct boot *b);
/* Milliseconds left before the boot deadline, 0 when it passed. */
uint64_t boot_remaining_ms(const struct boot *b);
/* After the last EC2 call failed: when it was throttled or a 5xx, waits a growing, jittered
 * pause and returns true to send it again (while the deadline allows; *round counts). */
bool boot_wait_out_last_error(struct boot *b, unsigned *round);
/* Appends a volume to the report; *ret points into the report until the next append. */
int boot_report_add(struct boot *b, const char *volume_id, enum lb_boot_outcome outcome,
                    struct lb_boot_volume **ret);
/* CreateTags on one volume, sent again through throttling; warns on failure. */
int boot_create_tags(struct boot *b, const char *volume_id, const struct lb_tag *tags, size_t n);
/* DetachVolume from this instance, sent again through throttling; warns on failure. */
int boot_detach(struct boot *b, const char *volume_id);

/* ---- agent/boot-own.c ---- */

/* Finds, verifies, formats when blank, mounts and tags dirty the instance's own buffer volume
 * at LIFEBOAT_BUFFER_DEVICE. Fills report->own; its reason says why it is not ready. */
int boot_prepare_own_volume(struct boot *b);

/* ---- agent/boot-claim.c ---- */

/* Resumes volumes an earlier run attached here, claims dirty volumes of the group in this AZ
 * within the limits, attaches and recovers them, and reports every one. */
int boot_recover_volumes(struct boot *b);

/* ---- agent/boot-recover.c ---- */

/* Records the end of a claim in the report; *ret (may be NULL) points at its entry. */
int boot_finish(struct boot *b, struct claim *c, enum lb_boot_outcome outcome, const char *reason,
                struct lb_boot_volume **ret);
/* Gives a claimed volume back: quarantined (when its content is suspect) or still dirty. */
int boot_give_back(struct boot *b, struct claim *c, bool suspect, const char *reason);
/* The volume is attached to us: find its device, verify, mount, write the snippet, take ownership. */
int boot_recover_attached(struct boot *b, struct claim *c, const struct lb_attachment *att);
/* --dry-run: a volume an earlier run attached here is recovered already, or would be now. */
int boot_dry_run_resumed(struct boot *b, struct claim *c);
/* Tags this instance the owner of every volume recovered since the last call. */
int boot_tag_new_owners(struct boot *b);
/* Drops manifest entries of volumes no longer attached here. */
int boot_reconcile_manifest(struct boot *b);
/* Removes the fluentd snippets of volumes the manifest no longer holds. */
int boot_prune_snippets(struct boot *b);
