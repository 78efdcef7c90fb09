/* SPDX-License-Identifier: MIT */
/*
 * lifeboat boot: claiming. Finds the dirty volumes of the group in this AZ, claims as many
 * as the limits allow, attaches them all at once with device names nobody uses, and polls
 * until each one is attached here (then recover.c takes over), lost to another instance,
 * stuck, or out of time.
 *
 * A fleet boots at once and finds the same volumes. AttachVolume is the only lock, so every
 * instance that asks for a volume another one got loses an attach. Instances therefore walk
 * the candidates in orders of their own: rendezvous hashing, by the weight of (instance id,
 * volume id) (lifeboat/basic/hash.h). N instances after 4N volumes then choose mostly
 * different ones (about 4N/e attaches lose in the first wave, against 4(N-1) with one shared
 * order). A lost attach is settled at once with one DescribeVolumes for the whole batch, which
 * also looks at the candidates not claimed yet: the ones another instance holds by now are
 * skipped without an attach, and the next free one in this instance's order is attached
 * right away, never one from the start of a shared list.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "common.h"
#include "recover.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/hash.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/boot/boot.h"
#include "lifeboat/state/volume.h"

#define ATTACH_NAME_TRIES 3             /* "attachment point in use": try this many names */
#define POLL_FIRST_MS 500u              /* attach usually completes in 1-4 s */
#define POLL_MAX_MS 3000u
#define ATTACH_STORM_TRIES 5            /* AttachVolume throttled or 5xx and not done: send again */
#define DESCRIBE_IDS_MAX 200            /* volume ids in one DescribeVolumes (EC2's filter value limit) */

/* What the last DescribeVolumes said of a candidate not claimed yet. */
enum candidate_seen {
        CANDIDATE_OPEN,                 /* available and dirty when found (or looked at again) */
        CANDIDATE_TAKEN,                /* attached to another instance since: skipped, no attach */
        CANDIDATE_GONE,                 /* deleted, or no longer available or dirty: skipped */
};

struct candidate {
        const struct lb_volume *vol;    /* in the list describe_candidates() made */
        uint64_t weight;                /* rendezvous weight of (this instance, the volume) */
        enum candidate_seen seen;
        char note[96];                  /* TAKEN: the instance that has it; GONE: why */
};

/* The dirty volumes found, in this instance's order (highest weight first). */
struct candidates {
        struct candidate *items;
        size_t n;
        size_t next;                    /* the first one neither claimed nor skipped yet */
};

static int add_claim(struct boot *b, const struct lb_volume *v, bool resumed, struct claim **ret) {
        struct claim *n = realloc(b->claims, (b->n_claims + 1) * sizeof *n);
        if (!n)
                return -ENOMEM;
        b->claims = n;
        struct claim *c = &n[b->n_claims];
        memset(c, 0, sizeof *c);
        /* A deep copy: the list it came from is freed before the claim is. */
        int r = lb_volume_copy(v, &c->vol);
        if (r < 0)
                return r;
        c->resumed = resumed;
        c->state = resumed ? CLAIM_ATTACHING : CLAIM_TO_ATTACH;
        b->n_claims++;
        *ret = c;
        return 0;
}

static bool is_own_buffer(const struct boot *b, const struct lb_volume *v) {
        return b->report->own.configured && streq(v->id, b->report->own.volume_id);
}

static bool in_group(const struct boot *b, const struct lb_volume *v) {
        const char *g = lb_volume_tag(v, b->key_group);
        return g && streq(g, b->s->group);
}

/* Claims that hold a volume here, or are about to: in flight, or recovered. These count
 * against LIFEBOAT_MAX_RECOVER; a recovery that finished stays mounted and does not make room. */
static size_t holding_claims(const struct boot *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->n_claims; i++) {
                const struct claim *c = &b->claims[i];
                if (c->state != CLAIM_FINISHED || c->outcome == LB_BOOT_RECOVERED ||
                    c->outcome == LB_BOOT_ALREADY_RECOVERED || c->outcome == LB_BOOT_WOULD_RECOVER)
                        n++;
        }
        return n;
}

static size_t count_claims_in(const struct boot *b, enum claim_state state) {
        size_t n = 0;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == state)
                        n++;
        return n;
}

static bool claims_in_flight(const struct boot *b) {
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state != CLAIM_FINISHED)
                        return true;
        return false;
}

/* Whether every claim waiting for its attachment was attached by an earlier run. */
static bool only_resumed_in_flight(const struct boot *b) {
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_ATTACHING && !b->claims[i].resumed)
                        return false;
        return true;
}

static size_t attachments_here(const struct boot *b) {
        size_t n = 0;
        for (size_t i = 0; i < b->here.n; i++)
                if (lb_volume_attachment_for(&b->here.items[i], b->self))
                        n++;
        return n;
}

/* ---- attaching ---- */

/* Device names for n attachments: never a name of an attachment here or of a local disk. */
static int pick_device_names(struct boot *b, size_t n, char ***ret_names) {
        size_t n_used = 0;
        _cleanup_free_ const char **used = calloc(b->here.n + strv_length(b->snapshot) + 1, sizeof *used);
        if (!used)
                return -ENOMEM;
        for (size_t i = 0; i < b->here.n; i++) {
                const struct lb_attachment *a = lb_volume_attachment_for(&b->here.items[i], b->self);
                if (a)
                        used[n_used++] = a->device;
        }
        for (char **p = b->snapshot; p && *p; p++)
                used[n_used++] = *p;
        return lb_devname_pick(&b->picker, used, n_used, n, ret_names);
}

/* Moves a claim on by its AttachVolume answer; *lost when EC2 says another instance holds it. */
static int attach_answered(struct boot *b, struct claim *c, const struct lb_query_call *call, bool *lost) {
        c->attach_sent_ms = lb_now_ms();
        c->state = CLAIM_ATTACHING;
        c->attach_error = call->result >= 0 ? LB_AWS_OK : call->error.kind;
        if (call->result >= 0) {
                lb_info(b->ctx, "attaching %s at %s", c->vol.id, c->device);
                return 0;
        }
        char err[600];
        (void) lb_aws_error_format(&call->error, err, sizeof err);
        switch (call->error.kind) {
        case LB_AWS_ERR_INVALID_PARAMETER:
                /* "Attachment point /dev/xvdba is already in use": take the next name. */
                if (c->name_tries < ATTACH_NAME_TRIES && strstr(call->error.message, "in use")) {
                        lb_debug(b->ctx, "%s: %s; trying another device name", c->vol.id, err);
                        c->state = CLAIM_TO_ATTACH;
                        return 0;
                }
                return boot_finish(b, c, LB_BOOT_NOT_CLAIMED, err, NULL);
        case LB_AWS_ERR_ATTACHMENT_LIMIT:
                b->attach_limit_reached = true;
                return boot_finish(b, c, LB_BOOT_NOT_CLAIMED, err, NULL);
        case LB_AWS_ERR_VOLUME_NOT_FOUND:
        case LB_AWS_ERR_ZONE_MISMATCH:
        case LB_AWS_ERR_AUTH:
                return boot_finish(b, c, LB_BOOT_NOT_CLAIMED, err, NULL);
        case LB_AWS_ERR_VOLUME_IN_USE:
        case LB_AWS_ERR_INCORRECT_STATE:
                *lost = true;
                lb_debug(b->ctx, "%s: %s; describing to see who holds it", c->vol.id, err);
                return 0;
        default:
                /* A 5xx may hide a success (an attach can succeed and still answer 500), and
                 * throttling may not: describe at the next poll to know. */
                lb_debug(b->ctx, "%s: %s; describing to see who holds it", c->vol.id, err);
                return 0;
        }
}

/* No device name is left for these claims: they stay for other instances. */
static int out_of_names(struct boot *b) {
        b->attach_limit_reached = true;
        for (size_t i = 0; i < b->n_claims; i++)
                if (b->claims[i].state == CLAIM_TO_ATTACH) {
                        int r = boot_finish(b, &b->claims[i], LB_BOOT_NOT_CLAIMED, "no device name left to attach at",
                                            NULL);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* Fills an AttachVolume call for each of the n claims to attach, each at the next name. */
static int form_attaches(struct boot *b, char *const *names, size_t n, struct lb_query_call *calls,
                         struct claim **who) {
        int r = 0;
        size_t k = 0;
        for (size_t i = 0; i < b->n_claims && k < n; i++) {
                struct claim *c = &b->claims[i];
                if (c->state != CLAIM_TO_ATTACH)
                        continue;
                (void) lb_strscpy(c->device, sizeof c->device, names[k]);
                c->name_tries++;
                who[k] = c;
                if (r >= 0)
                        r = lb_ec2_form_attach_volume(&calls[k].form, c->vol.id, b->self, c->device);
                k++;
        }
        return r;
}

/* Sends AttachVolume for every claim that needs one, all at once; *lost when a race was lost. */
static int send_attaches(struct boot *b, bool *lost) {
        size_t n = count_claims_in(b, CLAIM_TO_ATTACH);
        if (n == 0)
                return 0;

        _cleanup_strv_free_ char **names = NULL;
        int r = pick_device_names(b, n, &names);
        if (r == -ENOSPC)
                return out_of_names(b);
        if (r < 0)
                return r;

        _cleanup_free_ struct lb_query_call *calls = calloc(n, sizeof *calls);
        _cleanup_free_ struct claim **who = calloc(n, sizeof *who);
        if (!calls || !who)
                return -ENOMEM;
        r = form_attaches(b, names, n, calls, who);
        if (r >= 0)
                r = lb_ec2_perform(b->aws.ec2, calls, n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = attach_answered(b, who[i], &calls[i], lost);
        for (size_t i = 0; i < n; i++)
                lb_query_call_done(&calls[i]);
        return r;
}

/* A candidate a describe saw taken or gone since it was found: reported, never attached. */
static int skip_candidate(struct boot *b, const struct candidate *cd) {
        struct lb_boot_volume *v;
        bool taken = cd->seen == CANDIDATE_TAKEN;
        int r = boot_report_add(b, cd->vol->id, taken ? LB_BOOT_LOST_RACE : LB_BOOT_NOT_CLAIMED, &v);
        if (r < 0)
                return r;
        const char *prev = lb_volume_tag(cd->vol, b->key_owner);
        if (prev && lb_instance_id_valid(prev))
                (void) lb_strscpy(v->previous_owner, sizeof v->previous_owner, prev);
        if (taken)
                (void) lb_strscpy(v->winner, sizeof v->winner, cd->note);
        else
                (void) lb_strscpy(v->reason, sizeof v->reason, cd->note);
        lb_debug(b->ctx, "%s skipped: %s%s", cd->vol->id, taken ? "attached to " : "", cd->note);
        return 0;
}

/* Claims more candidates, in this instance's order, while there is room: limit, slots, time. */
static int claim_more(struct boot *b, struct candidates *cands, size_t limit) {
        int r;
        while (cands->next < cands->n && holding_claims(b) < limit && !b->attach_limit_reached &&
               !boot_past_deadline(b)) {
                const struct candidate *cd = &cands->items[cands->next++];
                if (cd->seen != CANDIDATE_OPEN) {
                        r = skip_candidate(b, cd);
                        if (r < 0)
                                return r;
                        continue;
                }
                struct claim *c;
                r = add_claim(b, cd->vol, false, &c);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- polling ---- */

/* An AttachVolume refused by throttling, a 5xx or a lost connection did not happen when the
 * volume is still free (an attach that succeeded behind a 5xx shows as attached): send it
 * again, a few times, while the volume is still dirty. */
static bool attach_worth_resending(const struct boot *b, const struct claim *c, const struct lb_volume *now) {
        bool transient = c->attach_error == LB_AWS_ERR_THROTTLED || c->attach_error == LB_AWS_ERR_SERVER ||
                         c->attach_error == LB_AWS_ERR_TRANSPORT;
        return transient && c->storm_tries < ATTACH_STORM_TRIES && streq(now->state, "available") &&
               lb_volume_state(b->s, now) == LB_VOL_DIRTY && !boot_past_deadline(b);
}

/* Attached here: recover it with the others of this poll, unless it is no longer dirty. */
static int poll_attached(struct boot *b, struct claim *c, const struct lb_volume *v, const struct lb_attachment *mine) {
        enum lb_vol_state st = lb_volume_state(b->s, v);
        if (st == LB_VOL_DIRTY) {
                (void) lb_strscpy(c->device, sizeof c->device, mine->device);
                c->state = CLAIM_RECOVERING;
                return 0;
        }
        /* Tagged otherwise since it was chosen: a watch here is releasing it
         * (flushed), or it was quarantined. Not ours to mount again. */
        char why[96];
        (void) lb_snprintf(why, sizeof why, "no longer dirty (state %s)", lb_vol_state_to_string(st));
        return c->resumed ? boot_finish(b, c, LB_BOOT_NOT_CLAIMED, why, NULL) : boot_give_back(b, c, false, why);
}

/* Attaching here, not attached yet: give it back once it is stuck past the attach timeout. */
static int poll_attaching(struct boot *b, struct claim *c, const struct lb_attachment *mine) {
        if (lb_now_ms() - c->attach_sent_ms <= b->s->attach_timeout_ms)
                return 0;
        char why[128];
        (void) lb_snprintf(why, sizeof why, "stuck in '%s' for more than %" PRIu64 " ms", mine->state,
                           b->s->attach_timeout_ms);
        return boot_give_back(b, c, false, why);
}

static int lost_race(struct boot *b, struct claim *c, const struct lb_volume *v) {
        struct lb_boot_volume *rv;
        int r = boot_finish(b, c, LB_BOOT_LOST_RACE, NULL, &rv);
        if (r >= 0)
                (void) lb_strscpy(rv->winner, sizeof rv->winner, v->attachments[0].instance_id);
        lb_debug(b->ctx, "%s went to %s", c->vol.id, v->attachments[0].instance_id);
        return r;
}

/* Moves one claim in flight on by what DescribeVolumes says of its volume now. */
static int poll_one(struct boot *b, struct claim *c, const struct lb_volume_list *now) {
        const struct lb_volume *v = lb_volume_list_find(now, c->vol.id);
        if (!v)
                return boot_finish(b, c, LB_BOOT_NOT_CLAIMED, "the volume disappeared", NULL);
        const struct lb_attachment *mine = lb_volume_attachment_for(v, b->self);
        if (mine && streq(mine->state, "attached"))
                return poll_attached(b, c, v, mine);
        if (mine)
                return poll_attaching(b, c, mine);
        if (v->n_attachments > 0)
                return lost_race(b, c, v);
        if (attach_worth_resending(b, c, v)) {
                lb_debug(b->ctx, "%s: AttachVolume did not happen (%s); sending it again", c->vol.id,
                         lb_aws_error_kind_to_string(c->attach_error));
                c->storm_tries++;
                c->state = CLAIM_TO_ATTACH;
                return 0;
        }
        if (c->attach_error == LB_AWS_OK) {
                /* EC2 took the AttachVolume but DescribeVolumes (eventually consistent) does not
                 * show it yet: wait as for one attaching. Past the attach timeout, give it back
                 * with a DetachVolume naming this instance, so that it never ends up attached
                 * here with nobody mounting or watching it. */
                if (lb_now_ms() - c->attach_sent_ms <= b->s->attach_timeout_ms)
                        return 0;
                return boot_give_back(b, c, false, "the AttachVolume EC2 accepted never showed in DescribeVolumes");
        }
        if (c->attach_error == LB_AWS_ERR_TRANSPORT)
                /* No answer: EC2 may have taken it after all. */
                return boot_give_back(b, c, false, "attach did not take effect (AttachVolume unanswered)");
        /* Not attached anywhere: the AttachVolume failed. Leave it for the next boot. */
        return boot_finish(b, c, LB_BOOT_NOT_CLAIMED, "attach did not take effect", NULL);
}

/* What a describe says of a candidate not claimed yet: still open, taken by another instance
 * (it holds an attachment), or gone. */
static void look_again(struct boot *b, struct candidate *cd, const struct lb_volume_list *now) {
        const struct lb_volume *v = lb_volume_list_find(now, cd->vol->id);
        if (!v) {
                cd->seen = CANDIDATE_GONE;
                (void) lb_strscpy(cd->note, sizeof cd->note, "the volume disappeared");
        } else if (v->n_attachments > 0) {
                cd->seen = CANDIDATE_TAKEN;
                (void) lb_strscpy(cd->note, sizeof cd->note, v->attachments[0].instance_id);
        } else if (!streq(v->state, "available")) {
                cd->seen = CANDIDATE_GONE;
                (void) lb_snprintf(cd->note, sizeof cd->note, "no longer available (%.32s)", v->state);
        } else if (lb_volume_state(b->s, v) != LB_VOL_DIRTY) {
                cd->seen = CANDIDATE_GONE;
                (void) lb_snprintf(cd->note, sizeof cd->note, "no longer dirty (state %s)",
                                   lb_vol_state_to_string(lb_volume_state(b->s, v)));
        }
}

/*
 * One DescribeVolumes for every claim in flight; moves each one on and recovers the ones
 * attached here, together. With lookahead (a race was lost) the same call also looks at the
 * candidates not claimed yet, so that the ones taken meanwhile are skipped without an attach.
 * The volume-id filter, not VolumeId.N: a volume deleted meanwhile is simply not in the
 * answer instead of failing the whole call with InvalidVolume.NotFound.
 */
static int poll_claims(struct boot *b, struct candidates *cands, bool lookahead) {
        size_t n = 0, n_claims = 0;
        _cleanup_free_ const char **ids = calloc(MIN(b->n_claims + cands->n, DESCRIBE_IDS_MAX) + 1, sizeof *ids);
        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_claims && n < DESCRIBE_IDS_MAX; i++)
                if (b->claims[i].state == CLAIM_ATTACHING)
                        ids[n++] = b->claims[i].vol.id;
        n_claims = n;
        if (n_claims == 0)
                return 0;
        for (size_t i = cands->next; lookahead && i < cands->n && n < DESCRIBE_IDS_MAX; i++)
                if (cands->items[i].seen == CANDIDATE_OPEN)
                        ids[n++] = cands->items[i].vol->id;

        const struct lb_filter filter = { "volume-id", ids, n };
        _cleanup_volume_list_ struct lb_volume_list now = { 0 };
        int r = lb_ec2_describe_volumes(b->aws.ec2, &filter, 1, NULL, 0, &now);
        if (r < 0) {
                char err[600];
                lb_warn(b->ctx, "DescribeVolumes while waiting for attachments failed: %s",
                        lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                return 0; /* keep waiting; the deadline bounds it */
        }

        for (size_t i = 0; i < b->n_claims; i++) {
                if (b->claims[i].state != CLAIM_ATTACHING)
                        continue;
                r = poll_one(b, &b->claims[i], &now);
                if (r < 0)
                        return r;
        }
        for (size_t i = cands->next; lookahead && i < cands->n; i++)
                if (cands->items[i].seen == CANDIDATE_OPEN)
                        look_again(b, &cands->items[i], &now);
        return boot_recover_attached(b);
}

/* The deadline passed: give back what is not recovered yet, dirty, for the next boot. */
static int abandon_in_flight(struct boot *b) {
        b->report->timed_out = true;
        for (size_t i = 0; i < b->n_claims; i++) {
                struct claim *c = &b->claims[i];
                if (c->state == CLAIM_FINISHED)
                        continue;
                int r = c->state == CLAIM_TO_ATTACH ? boot_finish(b, c, LB_BOOT_NOT_CLAIMED, "boot timeout", NULL)
                                                    : boot_give_back(b, c, false, "boot timeout");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Claims candidates up to the limit, attaches them all at once and recovers the ones attached
 * at each poll together, until nothing is in flight or the deadline passes. */
static int attach_and_recover(struct boot *b, struct candidates *cands, size_t limit) {
        uint64_t poll_ms = POLL_FIRST_MS, started = lb_now_ms();
        bool first = true;
        int r;

        for (;; first = false) {
                bool lost = false;
                r = claim_more(b, cands, limit);
                if (r >= 0)
                        r = send_attaches(b, &lost);
                if (r < 0)
                        return r;
                if (!claims_in_flight(b))
                        return 0;
                if (boot_past_deadline(b))
                        return abandon_in_flight(b);
                /* A lost race is settled at once (the next volume goes out without waiting for
                 * the poll). Volumes an earlier run attached may be ready already: look at once,
                 * but only once (one still attaching must not make this a busy loop). */
                if (!lost && (!first || !only_resumed_in_flight(b))) {
                        lb_sleep_ms(MIN(poll_ms, boot_remaining_ms(b)), b->ctx->interrupted);
                        if (lb_now_ms() - started > 5000)
                                poll_ms = MIN(poll_ms * 3 / 2, POLL_MAX_MS);
                }
                r = poll_claims(b, cands, lost);
                if (r >= 0)
                        r = boot_tag_new_owners(b);
                if (r < 0)
                        return r;
        }
}

/* ---- candidates ---- */

/* Volumes an earlier run attached here (kill -9, reboot): finish or release them. */
static int resume_attached(struct boot *b) {
        for (size_t i = 0; i < b->here.n; i++) {
                const struct lb_volume *v = &b->here.items[i];
                if (is_own_buffer(b, v) || !in_group(b, v))
                        continue;
                enum lb_vol_state st = lb_volume_state(b->s, v);
                const struct lb_attachment *a = lb_volume_attachment_for(v, b->self);
                if (!a || streq(a->state, "detaching") || streq(a->state, "busy"))
                        continue;
                if (st == LB_VOL_DIRTY) {
                        struct claim *c;
                        int r = add_claim(b, v, true, &c);
                        if (r < 0)
                                return r;
                        (void) lb_strscpy(c->device, sizeof c->device, a->device);
                        c->attach_sent_ms = lb_now_ms();
                } else if (st == LB_VOL_QUARANTINED && !b->dry_run) {
                        lb_info(b->ctx, "detaching quarantined %s left attached by an earlier run", v->id);
                        (void) boot_detach(b, v->id);
                }
        }
        return 0;
}

/* Copies the volumes of all into *ret but the multi-attach ones: attaching is no lock for them. */
static int skip_multi_attach(struct boot *b, const struct lb_volume_list *all, struct lb_volume_list *ret) {
        struct lb_volume_list out = { 0 };
        out.items = calloc(all->n + 1, sizeof *out.items);
        if (!out.items)
                return -ENOMEM;
        for (size_t i = 0; i < all->n; i++) {
                if (all->items[i].multi_attach) {
                        lb_info(b->ctx, "skipping multi-attach volume %s", all->items[i].id);
                        continue;
                }
                int r = lb_volume_copy(&all->items[i], &out.items[out.n]);
                if (r < 0) {
                        lb_volume_list_done(&out);
                        return r;
                }
                out.n++;
        }
        *ret = out;
        return 0;
}

/* The dirty volumes of the group, available in this AZ. */
static int describe_candidates(struct boot *b, struct lb_volume_list *ret) {
        char group_filter[192], state_filter[192];
        (void) lb_tag_filter(b->s, LB_TAG_GROUP, group_filter, sizeof group_filter);
        (void) lb_tag_filter(b->s, LB_TAG_STATE, state_filter, sizeof state_filter);
        const char *az[] = { b->report->availability_zone };
        const char *status[] = { "available" };
        const char *group[] = { b->s->group };
        const char *dirty[] = { "dirty" };
        const struct lb_filter filters[] = {
                { "availability-zone", az, 1 },
                { "status", status, 1 },
                { group_filter, group, 1 },
                { state_filter, dirty, 1 },
        };
        _cleanup_volume_list_ struct lb_volume_list all = { 0 };
        unsigned round = 0;
        int r;
        do
                r = lb_ec2_describe_volumes(b->aws.ec2, filters, ELEMENTSOF(filters), NULL, 0, &all);
        while (r < 0 && boot_wait_out_last_error(b, &round));
        if (r < 0)
                return r;
        return skip_multi_attach(b, &all, ret);
}

static int by_weight(const void *x, const void *y) {
        const struct candidate *a = x, *b = y;
        if (a->weight != b->weight)
                return a->weight > b->weight ? -1 : 1;
        return strcmp(a->vol->id, b->vol->id);
}

/* This instance's order of the candidates: highest rendezvous weight first. */
static int order_candidates(const struct boot *b, const struct lb_volume_list *list, struct candidates *ret) {
        struct candidate *items = calloc(list->n + 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < list->n; i++)
                items[i] = (struct candidate) {
                        .vol = &list->items[i],
                        .weight = lb_rendezvous_weight(b->self, list->items[i].id),
                };
        qsort(items, list->n, sizeof *items, by_weight);
        *ret = (struct candidates) { .items = items, .n = list->n };
        return 0;
}

static void report_dry_run(struct boot *b, const struct candidates *cands, size_t limit) {
        for (size_t i = 0; i < cands->n; i++) {
                const struct lb_volume *vol = cands->items[i].vol;
                struct lb_boot_volume *v;
                bool take = i < limit;
                if (boot_report_add(b, vol->id, take ? LB_BOOT_WOULD_RECOVER : LB_BOOT_NOT_CLAIMED, &v) < 0)
                        return;
                const char *prev = lb_volume_tag(vol, b->key_owner);
                if (prev && lb_instance_id_valid(prev))
                        (void) lb_strscpy(v->previous_owner, sizeof v->previous_owner, prev);
                (void) lb_snprintf(v->mount_path, sizeof v->mount_path, "%s/%s", b->s->recovery_root, vol->id);
                if (!take)
                        (void) lb_strscpy(v->reason, sizeof v->reason, "over LIFEBOAT_MAX_RECOVER or the free slots");
        }
}

/* Candidates never claimed stay dirty for the next boot or another instance; say why. */
static int report_unclaimed(struct boot *b, struct candidates *cands) {
        bool open_left = false;
        for (size_t i = cands->next; i < cands->n; i++)
                open_left = open_left || cands->items[i].seen == CANDIDATE_OPEN;
        if (open_left && !b->attach_limit_reached && boot_past_deadline(b))
                b->report->timed_out = true;
        for (; cands->next < cands->n; cands->next++) {
                const struct candidate *cd = &cands->items[cands->next];
                if (cd->seen != CANDIDATE_OPEN) {
                        int r = skip_candidate(b, cd);
                        if (r < 0)
                                return r;
                        continue;
                }
                struct lb_boot_volume *v;
                int r = boot_report_add(b, cd->vol->id, LB_BOOT_NOT_CLAIMED, &v);
                if (r < 0)
                        return r;
                (void) lb_strscpy(v->reason, sizeof v->reason,
                                  b->attach_limit_reached ? "attachment limit reached"
                                  : boot_past_deadline(b) ? "boot timeout"
                                                          : "over LIFEBOAT_MAX_RECOVER or the free slots");
        }
        return 0;
}

/* How many volumes this run may hold: LIFEBOAT_MAX_RECOVER, and the attachment slots left. */
static size_t recover_limit(const struct boot *b) {
        const struct lb_settings *s = b->s;
        size_t used = attachments_here(b);
        size_t free_slots = s->attachment_slots > used ? s->attachment_slots - used : 0;
        return MIN((size_t) s->max_recover, holding_claims(b) + free_slots);
}

int boot_recover_volumes(struct boot *b) {
        int r;

        r = resume_attached(b);
        if (r < 0)
                return r;

        _cleanup_volume_list_ struct lb_volume_list found = { 0 };
        r = describe_candidates(b, &found);
        if (r < 0) {
                char err[600];
                lb_err(b->ctx, "DescribeVolumes for dirty volumes failed: %s",
                       lb_ec2_last_error_text(b->aws.ec2, err, sizeof err));
                return r;
        }
        b->report->candidates = found.n;
        _cleanup_free_ struct candidate *items = NULL;
        struct candidates cands;
        r = order_candidates(b, &found, &cands);
        if (r < 0)
                return r;
        items = cands.items;

        size_t limit = recover_limit(b);
        if (b->dry_run) {
                report_dry_run(b, &cands, limit > holding_claims(b) ? limit - holding_claims(b) : 0);
                for (size_t i = 0; i < b->n_claims; i++)
                        (void) boot_dry_run_resumed(b, &b->claims[i]);
                return 0;
        }
        if (cands.n == 0 && b->n_claims == 0)
                return 0;

        r = lb_blockdev_snapshot(b->s->sysfs_root, &b->snapshot);
        if (r < 0 && r != -ENOENT)
                return r;

        r = attach_and_recover(b, &cands, limit);
        if (r < 0)
                return r;
        return report_unclaimed(b, &cands);
}
