/* SPDX-License-Identifier: MIT */
/*
 * lifeboat boot: the run. The own buffer volume is in own.c, claiming and attaching in claim.c,
 * recovering an attached volume in recover.c, what they share in common.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "boot-internal.h"
#include "claim.h"
#include "common.h"
#include "own.h"
#include "recover.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/lock.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/boot/boot.h"
#include "lifeboat/fluentd/rpc.h"
#include "lifeboat/fluentd/snippet.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/volume.h"


static const char *const outcome_names[_LB_BOOT_OUTCOME_MAX] = {
        [LB_BOOT_RECOVERED] = "recovered",
        [LB_BOOT_ALREADY_RECOVERED] = "already-recovered",
        [LB_BOOT_WOULD_RECOVER] = "would-recover",
        [LB_BOOT_LOST_RACE] = "lost-race",
        [LB_BOOT_QUARANTINED] = "quarantined",
        [LB_BOOT_LEFT_DIRTY] = "left-dirty",
        [LB_BOOT_NOT_CLAIMED] = "not-claimed",
};

const char *lb_boot_outcome_to_string(enum lb_boot_outcome o) {
        return o >= 0 && o < _LB_BOOT_OUTCOME_MAX ? outcome_names[o] : "unknown";
}

void lb_boot_report_done(struct lb_boot_report *r) {
        free(r->volumes);
        r->volumes = NULL;
        r->n_volumes = 0;
}

static void boot_done(struct boot *b) {
        for (size_t i = 0; i < b->n_claims; i++)
                lb_volume_done(&b->claims[i].vol);
        free(b->claims);
        strv_free(b->snapshot);
        lb_devname_picker_done(&b->picker);
        lb_manifest_done(&b->manifest);
        lb_volume_list_done(&b->here);
        lb_aws_close(&b->aws);
}

static int init_keys(struct boot *b) {
        const struct lb_settings *s = b->s;
        int r = lb_tag_key(s, LB_TAG_GROUP, b->key_group, sizeof b->key_group);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_STATE, b->key_state, sizeof b->key_state);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_OWNER, b->key_owner, sizeof b->key_owner);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_FS_UUID, b->key_fs_uuid, sizeof b->key_fs_uuid);
        if (r >= 0)
                r = lb_tag_key(s, LB_TAG_REASON, b->key_reason, sizeof b->key_reason);
        return r;
}

static int describe_here(struct boot *b) {
        const char *self[] = { b->self };
        const struct lb_filter filters[] = { { "attachment.instance-id", self, 1 } };
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_describe_volumes(b->aws.ec2, filters, 1, NULL, 0, &b->here);
        while (r < 0 && boot_wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                lb_err(b->ctx, "DescribeVolumes for this instance's volumes failed: %s",
                       lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return r;
}

/* Opens AWS, learns who and where this instance is, loads the manifest. */
static int open_aws_and_manifest(struct boot *b) {
        struct lb_boot_report *rep = b->report;
        int r = lb_aws_open(b->ctx, LB_AWS_NEED_IDENTITY, &b->aws);
        if (r < 0)
                return r;
        b->self = b->aws.identity.instance_id;
        (void) lb_strscpy(rep->instance_id, sizeof rep->instance_id, b->self);
        (void) lb_strscpy(rep->availability_zone, sizeof rep->availability_zone,
                          b->aws.identity.availability_zone);

        r = lb_manifest_load(b->s->run_dir, &b->manifest);
        if (r < 0) {
                lb_warn(b->ctx, "ignoring an unreadable manifest in %s: %s", b->s->run_dir, strerror(-r));
                lb_manifest_done(&b->manifest);
        }
        return 0;
}

/* Saves the manifest, drops stale snippets and has fluentd reload when they changed. */
static void save_and_reload(struct boot *b) {
        int r = lb_manifest_save(b->s->run_dir, &b->manifest);
        if (r < 0)
                lb_warn(b->ctx, "cannot save the manifest in %s: %s", b->s->run_dir, strerror(-r));
        (void) boot_prune_snippets(b);
        if (b->snippets_changed && b->s->fluentd_reload && !isempty(b->s->fluentd_rpc)) {
                char reason[256];
                /* Normally fluentd is not running yet and reads the snippets when it starts. */
                if (lb_fluentd_reload_config(b->ctx, reason, sizeof reason) < 0)
                        lb_debug(b->ctx, "fluentd reload not done (%s); it reads the snippets at start", reason);
        }
}

/* 1 when volumes found dirty were left so (timed out, quarantined or left dirty), else 0. */
static int exit_status(const struct lb_boot_report *rep) {
        if (rep->timed_out)
                return 1;
        for (size_t i = 0; i < rep->n_volumes; i++)
                if (rep->volumes[i].outcome == LB_BOOT_QUARANTINED || rep->volumes[i].outcome == LB_BOOT_LEFT_DIRTY)
                        return 1;
        return 0;
}

static int boot_steps(struct boot *b) {
        int r, partial = 0;

        r = open_aws_and_manifest(b);
        if (r < 0)
                return r;
        r = describe_here(b);
        if (r < 0)
                return r;
        if (!b->dry_run)
                (void) boot_reconcile_manifest(b);

        if (!isempty(b->s->buffer_device)) {
                r = boot_prepare_own_volume(b);
                if (r < 0) {
                        lb_err(b->ctx, "own buffer volume at %s is not ready: %s", b->s->buffer_device,
                               b->report->own.reason);
                        /* Recovery still runs: the old chunks matter more than this instance. */
                        partial = r;
                }
        }

        r = boot_recover_volumes(b);
        if (r < 0)
                return r;
        if (!b->dry_run)
                save_and_reload(b);

        if (partial < 0)
                return partial;
        return exit_status(b->report);
}

int lb_boot_run(struct lb_context *ctx, bool dry_run, struct lb_boot_report *report) {
        struct boot b = {
                .ctx = ctx,
                .s = &ctx->settings,
                .dry_run = dry_run,
                .report = report,
                .deadline_ms = lb_now_ms() + ctx->settings.boot_timeout_ms,
        };
        uint64_t start = lb_now_ms();
        report->dry_run = dry_run;

        int r = init_keys(&b);
        if (r < 0)
                return r;

        /* Two boots at once (a unit and a hand-run) must not both claim: serialise them. */
        _cleanup_close_ int lock_fd = -EBADF;
        r = lb_lock_acquire(ctx->settings.run_dir, "boot.lock", true, ctx->settings.boot_timeout_ms, &lock_fd);
        if (r < 0) {
                lb_err(ctx, "cannot take the boot lock in %s: %s", ctx->settings.run_dir, strerror(-r));
                return r;
        }

        r = boot_steps(&b);
        report->imds_requests = b.aws.imds ? lb_imds_request_count(b.aws.imds) : 0;
        report->ec2_requests = b.aws.ec2 ? lb_ec2_request_count(b.aws.ec2) : 0;
        report->elapsed_ms = lb_now_ms() - start;
        boot_done(&b);
        return r;
}
