/* SPDX-License-Identifier: MIT */
/*
 * lifeboat boot: what every step of a run shares. The deadline, the report, and CreateTags /
 * DetachVolume sent again through a throttling storm for as long as the deadline allows.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/ec2-answers.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/boot/boot.h"

#include "common.h"

#define STORM_FIRST_MS 1000u            /* throttled past the client's retries: wait, then again */
#define STORM_MAX_MS 8000u

bool boot_past_deadline(const struct boot *b) {
        return lb_now_ms() >= b->deadline_ms || (b->ctx->interrupted && *b->ctx->interrupted);
}

uint64_t boot_remaining_ms(const struct boot *b) {
        uint64_t now = lb_now_ms();
        return now >= b->deadline_ms ? 0 : b->deadline_ms - now;
}

/*
 * Throttling and 5xx answers can outlast the EC2 client's three attempts when a whole
 * fleet boots at once. Calls boot cannot do without are sent again after a growing,
 * jittered pause for as long as the boot deadline allows. Returns true to try again.
 */
static bool wait_out_storm(struct boot *b, const struct lb_aws_error *e, unsigned *round) {
        if (e->kind != LB_AWS_ERR_THROTTLED && e->kind != LB_AWS_ERR_SERVER)
                return false;
        uint64_t step = MIN((uint64_t) STORM_FIRST_MS << MIN(*round, 3u), (uint64_t) STORM_MAX_MS);
        uint64_t delay = step / 2 + (uint64_t) (lb_random01() * (double) (step / 2));
        if (boot_past_deadline(b) || boot_remaining_ms(b) <= delay)
                return false;
        (*round)++;
        lb_info(b->ctx, "EC2 answers %s; trying again in %" PRIu64 " ms", lb_aws_error_kind_to_string(e->kind),
                delay);
        lb_sleep_ms(delay, b->ctx->interrupted);
        return !boot_past_deadline(b);
}

bool boot_wait_out_last_error(struct boot *b, unsigned *round) {
        return wait_out_storm(b, lb_ec2_last_error(b->aws.ec2), round);
}

int boot_report_add(struct boot *b, const char *volume_id, enum lb_boot_outcome outcome,
                    struct lb_boot_volume **ret) {
        struct lb_boot_report *r = b->report;
        struct lb_boot_volume *n = realloc(r->volumes, (r->n_volumes + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        r->volumes = n;
        struct lb_boot_volume *v = &n[r->n_volumes++];
        memset(v, 0, sizeof *v);
        (void) lb_strscpy(v->volume_id, sizeof v->volume_id, volume_id);
        v->outcome = outcome;
        *ret = v;
        return 0;
}

int boot_create_tags(struct boot *b, const char *volume_id, const struct lb_tag *tags, size_t n) {
        const char *ids[] = { volume_id };
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_create_tags(b->aws.ec2, ids, 1, tags, n);
        while (r < 0 && boot_wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                lb_warn(b->ctx, "CreateTags on %s failed: %s", volume_id,
                        lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return r;
}

int boot_detach(struct boot *b, const char *volume_id) {
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_detach_volume(b->aws.ec2, volume_id, b->self, false);
        while (r < 0 && boot_wait_out_last_error(b, &round));
        if (r < 0) {
                char err[600];
                lb_warn(b->ctx, "DetachVolume %s failed: %s", volume_id,
                        lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
        }
        return r;
}

