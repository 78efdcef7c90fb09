/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/aws/session.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/time-util.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/reap/reap.h"
#include "lifeboat/state/volume.h"
#include "relocate.h"

/*
 * Deletions go in batches: each batch is re-described with one DescribeVolumes
 * right before its DeleteVolume calls, which then run concurrently. Small
 * batches keep the re-check fresh and the burst of calls gentle on the API.
 */
#define REAP_BATCH 10

/* ---- the plan (pure) ---- */

/* "2h5m", "3m12s", "45s": how long ago, for humans. */
static void format_age(int64_t s, char *buf, size_t size) {
        if (s < 0)
                s = 0;
        int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
        if (d > 0)
                (void) lb_snprintf(buf, size, "%" PRId64 "d%" PRId64 "h", d, h);
        else if (h > 0)
                (void) lb_snprintf(buf, size, "%" PRId64 "h%" PRId64 "m", h, m);
        else if (m > 0)
                (void) lb_snprintf(buf, size, "%" PRId64 "m%" PRId64 "s", m, sec);
        else
                (void) lb_snprintf(buf, size, "%" PRId64 "s", sec);
}

static bool old_enough(int64_t age_s, uint64_t min_ms) {
        return age_s >= 0 && (uint64_t) age_s >= (min_ms + 999) / 1000;
}

/* Sets since/age_s from an ISO 8601 value. Returns false when it cannot be read. */
static bool set_since(struct lb_reap_item *it, const char *value, time_t now) {
        time_t t;
        if (isempty(value) || lb_parse_iso8601(value, &t) < 0)
                return false;
        if (lb_strscpy(it->since, sizeof it->since, value) < 0)
                return false;
        it->age_s = (int64_t) now - (int64_t) t;
        return true;
}

static void classify_attached(const struct lb_volume *v, struct lb_reap_item *it) {
        it->verdict = LB_REAP_KEEP;
        if (v->n_attachments > 0) {
                const struct lb_attachment *a = &v->attachments[0];
                (void) lb_snprintf(it->reason, sizeof it->reason, "attached to %s (%s)", a->instance_id, a->state);
        } else
                (void) lb_snprintf(it->reason, sizeof it->reason, "status %s", v->state);
}

static void classify_dirty(const struct lb_settings *s, const struct lb_reap_options *o, const struct lb_volume *v,
                           time_t now, struct lb_reap_item *it) {
        char age[32], limit[32];
        const char *mark = lb_volume_lb_tag(s, v, LB_TAG_AVAILABLE_SINCE);

        /* A missing, unreadable or future mark starts the clock now; the mark is what makes
         * "available for an hour" measurable at all. */
        if (!set_since(it, mark, now) || it->age_s < 0) {
                it->mark = LB_REAP_MARK_SET;
                (void) lb_format_iso8601(now, it->since, sizeof it->since);
                it->age_s = 0;
        }
        format_age(it->age_s, age, sizeof age);
        (void) lb_format_duration_ms(o->stranded_after_ms, limit, sizeof limit);
        if (old_enough(it->age_s, o->stranded_after_ms)) {
                it->verdict = LB_REAP_STRANDED;
                (void) lb_snprintf(it->reason, sizeof it->reason,
                                   "dirty and available for %s: no instance in %s recovered it", age,
                                   v->availability_zone);
        } else {
                it->verdict = LB_REAP_KEEP;
                if (it->mark == LB_REAP_MARK_SET)
                        (void) lb_snprintf(it->reason, sizeof it->reason,
                                           "dirty, waiting for recovery (first seen available now; stranded after %s)",
                                           limit);
                else
                        (void) lb_snprintf(it->reason, sizeof it->reason,
                                           "dirty, waiting for recovery (available for %s; stranded after %s)", age,
                                           limit);
        }
}

static void classify_flushed(const struct lb_settings *s, const struct lb_reap_options *o, const struct lb_volume *v,
                             time_t now, struct lb_reap_item *it) {
        char age[32], limit[32];
        const char *flushed_at = lb_volume_lb_tag(s, v, LB_TAG_FLUSHED_AT);

        it->verdict = LB_REAP_KEEP;
        if (!flushed_at) {
                (void) lb_strscpy(it->reason, sizeof it->reason, "no flushed-at tag");
                return;
        }
        if (!set_since(it, flushed_at, now)) {
                char shown[65];
                (void) lb_snprintf(it->reason, sizeof it->reason, "unreadable flushed-at tag '%s'",
                                   lb_utf8_copy(shown, sizeof shown, flushed_at));
                return;
        }
        format_age(it->age_s < 0 ? -it->age_s : it->age_s, age, sizeof age);
        (void) lb_format_duration_ms(o->min_age_ms, limit, sizeof limit);
        if (it->age_s < 0)
                (void) lb_snprintf(it->reason, sizeof it->reason, "too young: flushed-at is %s in the future", age);
        else if (!old_enough(it->age_s, o->min_age_ms))
                (void) lb_snprintf(it->reason, sizeof it->reason, "too young: flushed %s ago (min age %s)", age,
                                   limit);
        else {
                it->verdict = LB_REAP_DELETE;
                (void) lb_snprintf(it->reason, sizeof it->reason, "flushed %s ago", age);
        }
}

/* A relocated source: deleted after min-age like a flushed volume, counted from relocated-at,
 * and (lb_reap_check_copies) only while its copy exists. */
static void classify_relocated(const struct lb_settings *s, const struct lb_reap_options *o,
                               const struct lb_volume *v, time_t now, struct lb_reap_item *it) {
        char age[32], limit[32];
        const char *copy = it->reloc.copy_id;
        const char *at = lb_volume_lb_tag(s, v, LB_TAG_RELOCATED_AT);

        it->verdict = LB_REAP_KEEP;
        /* No boot claims a relocated volume: with its tags broken, only a person can. */
        if (isempty(copy)) {
                it->needs_human = true;
                (void) lb_strscpy(it->reason, sizeof it->reason, "relocated, but no valid relocated-to tag");
                return;
        }
        if (!at) {
                it->needs_human = true;
                (void) lb_snprintf(it->reason, sizeof it->reason, "relocated to %s, but no relocated-at tag", copy);
                return;
        }
        if (!set_since(it, at, now)) {
                it->needs_human = true;
                (void) lb_snprintf(it->reason, sizeof it->reason, "relocated to %s, unreadable relocated-at tag '%.64s'",
                                   copy, at);
                return;
        }
        format_age(it->age_s < 0 ? -it->age_s : it->age_s, age, sizeof age);
        (void) lb_format_duration_ms(o->min_age_ms, limit, sizeof limit);
        if (it->age_s < 0)
                (void) lb_snprintf(it->reason, sizeof it->reason,
                                   "too young: relocated to %s, relocated-at is %s in the future", copy, age);
        else if (!old_enough(it->age_s, o->min_age_ms))
                (void) lb_snprintf(it->reason, sizeof it->reason, "too young: relocated to %s %s ago (min age %s)",
                                   copy, age, limit);
        else {
                it->verdict = LB_REAP_DELETE;
                (void) lb_snprintf(it->reason, sizeof it->reason, "relocated to %s %s ago", copy, age);
        }
}

static void classify_unmarked(const struct lb_reap_options *o, const struct lb_volume *v, time_t now,
                              struct lb_reap_item *it) {
        char age[32] = "?", limit[32];
        bool known = set_since(it, v->create_time, now);

        if (known)
                format_age(it->age_s, age, sizeof age);
        (void) lb_format_duration_ms(o->min_age_ms, limit, sizeof limit);
        it->verdict = LB_REAP_UNUSED;
        if (!o->delete_unused)
                (void) lb_snprintf(it->reason, sizeof it->reason,
                                   "never used (no state tag), created %s ago; --delete-unused deletes it", age);
        else if (!known)
                (void) lb_strscpy(it->reason, sizeof it->reason, "never used, but its createTime is unreadable");
        else if (!old_enough(it->age_s, o->min_age_ms))
                (void) lb_snprintf(it->reason, sizeof it->reason, "never used, too young: created %s ago (min age %s)",
                                   age, limit);
        else {
                it->verdict = LB_REAP_DELETE;
                (void) lb_snprintf(it->reason, sizeof it->reason, "never used (no state tag), created %s ago", age);
        }
}

int lb_reap_classify(const struct lb_settings *s, const struct lb_reap_options *o, const struct lb_volume *v,
                     time_t now, struct lb_reap_item *ret) {
        struct lb_reap_item it = { .age_s = -1 };
        int r;

        if ((r = lb_strscpy(it.volume_id, sizeof it.volume_id, v->id)) < 0 ||
            (r = lb_strscpy(it.availability_zone, sizeof it.availability_zone, v->availability_zone)) < 0 ||
            (r = lb_strscpy(it.status, sizeof it.status, v->state)) < 0)
                return r;
        it.state = lb_volume_state(s, v);
        if (it.state == LB_VOL_RELOCATED) {
                /* Where its content went; a value that is no volume id is no copy. */
                const char *copy = lb_volume_lb_tag(s, v, LB_TAG_RELOCATED_TO);
                if (copy && lb_volume_id_valid(copy))
                        (void) lb_strscpy(it.reloc.copy_id, sizeof it.reloc.copy_id, copy);
        }
        const char *source = lb_volume_lb_tag(s, v, LB_TAG_RELOCATED_FROM);
        if (source && lb_volume_id_valid(source))
                (void) lb_strscpy(it.reloc.source_id, sizeof it.reloc.source_id, source);

        /* Anything attached, or on its way in or out, is somebody's: never touched. */
        bool available = streq(v->state, "available") && v->n_attachments == 0;
        bool attached = streq(v->state, "in-use") || v->n_attachments > 0;
        if (attached && lb_volume_lb_tag(s, v, LB_TAG_AVAILABLE_SINCE))
                it.mark = LB_REAP_MARK_CLEAR;

        if (it.state == LB_VOL_QUARANTINED) {
                /* Whatever its status: boot found it unsafe to mount, a human decides. */
                const char *reason = lb_volume_lb_tag(s, v, LB_TAG_REASON);
                it.verdict = LB_REAP_QUARANTINED;
                (void) lb_utf8_copy(it.reason, sizeof it.reason, isempty(reason) ? "no reason tag" : reason);
        } else if (!available)
                classify_attached(v, &it);
        else
                switch (it.state) {
                case LB_VOL_DIRTY:
                        classify_dirty(s, o, v, now, &it);
                        break;
                case LB_VOL_FLUSHED:
                        classify_flushed(s, o, v, now, &it);
                        break;
                case LB_VOL_UNMARKED:
                        classify_unmarked(o, v, now, &it);
                        break;
                case LB_VOL_RELOCATED:
                        classify_relocated(s, o, v, now, &it);
                        break;
                default: {
                        char shown[65];
                        it.verdict = LB_REAP_KEEP;
                        (void) lb_snprintf(it.reason, sizeof it.reason, "unknown state tag '%s'",
                                           lb_utf8_copy(shown, sizeof shown, strempty(lb_volume_lb_tag(s, v, LB_TAG_STATE))));
                        break;
                }
                }

        *ret = it;
        return 0;
}

static int item_cmp(const void *a, const void *b) {
        const struct lb_reap_item *x = a, *y = b;
        int c = strcmp(x->availability_zone, y->availability_zone);
        return c != 0 ? c : strcmp(x->volume_id, y->volume_id);
}

void lb_reap_plan_done(struct lb_reap_plan *p) {
        free(p->items);
        p->items = NULL;
        p->n = 0;
}

int lb_reap_plan(const struct lb_settings *s, const struct lb_reap_options *o, const struct lb_volume_list *vols,
                 time_t now, struct lb_reap_plan *ret) {
        _cleanup_free_ struct lb_reap_item *items = calloc(vols->n ? vols->n : 1, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < vols->n; i++) {
                int r = lb_reap_classify(s, o, &vols->items[i], now, &items[i]);
                if (r < 0)
                        return r;
        }
        qsort(items, vols->n, sizeof *items, item_cmp);
        *ret = (struct lb_reap_plan) { .items = TAKE_PTR(items), .n = vols->n };
        return 0;
}

/* Whether the copy a relocated item names exists: a volume of the group with that id whose
 * relocated-from tag names the item, made from a snapshot (EC2's SnapshotId, which no tag sets). */
static bool copy_exists(const struct lb_settings *s, const struct lb_volume_list *world,
                        const struct lb_reap_item *it) {
        const struct lb_volume *c = world ? lb_volume_list_find(world, it->reloc.copy_id) : NULL;
        const char *from = c ? lb_volume_lb_tag(s, c, LB_TAG_RELOCATED_FROM) : NULL;
        return from && streq(from, it->volume_id) && !isempty(c->snapshot_id);
}

static void check_copy(const struct lb_settings *s, const struct lb_volume_list *world, struct lb_reap_item *it) {
        if (it->verdict != LB_REAP_DELETE)
                return;
        if (it->state == LB_VOL_RELOCATED && !copy_exists(s, world, it)) {
                it->verdict = LB_REAP_KEEP;
                if (!world)
                        (void) lb_snprintf(it->reason, sizeof it->reason,
                                           "relocated to %s, which could not be checked (DescribeVolumes failed)",
                                           it->reloc.copy_id);
                else {
                        it->needs_human = true;
                        (void) lb_snprintf(it->reason, sizeof it->reason,
                                           "relocated to %s, which does not exist (or is no copy of it): kept for a human",
                                           it->reloc.copy_id);
                }
                return;
        }
        /* A copy drained before its source was deleted (the hourly timer can mark the source and
         * find the copy recovered and flushed in one run) waits for the source to go first. */
        if (!isempty(it->reloc.source_id) && (!world || lb_volume_list_find(world, it->reloc.source_id))) {
                char was[sizeof it->reason];
                memcpy(was, it->reason, sizeof was);
                it->verdict = LB_REAP_KEEP;
                (void) lb_snprintf(it->reason, sizeof it->reason, "%s, but a copy of %s, which %s: kept until it is deleted",
                                   was, it->reloc.source_id, world ? "still exists" : "could not be checked");
        }
}

void lb_reap_check_copies(const struct lb_settings *s, const struct lb_volume_list *world, struct lb_reap_plan *p) {
        for (size_t i = 0; i < p->n; i++)
                check_copy(s, world, &p->items[i]);
}

static const char *const step_names[_LB_RELOC_STEP_MAX] = {
        [LB_RELOC_START] = "start",
        [LB_RELOC_WAIT_SNAPSHOT] = "wait-for-snapshot",
        [LB_RELOC_COPY] = "copy",
        [LB_RELOC_WAIT_COPY] = "wait-for-copy",
        [LB_RELOC_MARK] = "mark-source",
        [LB_RELOC_CLEANUP] = "delete-snapshots",
};

const char *lb_reloc_step_to_string(enum lb_reloc_step step) {
        return step > LB_RELOC_NONE && step < _LB_RELOC_STEP_MAX ? step_names[step] : NULL;
}

static const char *const category_names[_LB_REAP_CAT_MAX] = {
        [LB_REAP_CAT_DELETED] = "deleted",
        [LB_REAP_CAT_WOULD_DELETE] = "would-delete",
        [LB_REAP_CAT_SKIPPED] = "skipped",
        [LB_REAP_CAT_FAILED] = "failed",
        [LB_REAP_CAT_KEPT] = "kept",
        [LB_REAP_CAT_STRANDED] = "stranded",
        [LB_REAP_CAT_QUARANTINED] = "quarantined",
        [LB_REAP_CAT_UNUSED] = "unused",
        [LB_REAP_CAT_RELOCATING] = "relocating",
};

const char *lb_reap_category_to_string(enum lb_reap_category c) {
        return c >= 0 && c < _LB_REAP_CAT_MAX ? category_names[c] : "unknown";
}

enum lb_reap_category lb_reap_item_category(const struct lb_reap_item *it) {
        if (it->needs_human)
                return LB_REAP_CAT_STRANDED;
        switch (it->verdict) {
        case LB_REAP_DELETE:
                switch (it->outcome) {
                case LB_REAP_DELETED:
                        return LB_REAP_CAT_DELETED;
                case LB_REAP_SKIPPED:
                        return LB_REAP_CAT_SKIPPED;
                case LB_REAP_FAILED:
                        return LB_REAP_CAT_FAILED;
                default:
                        return LB_REAP_CAT_WOULD_DELETE;
                }
        case LB_REAP_STRANDED:
                return LB_REAP_CAT_STRANDED;
        case LB_REAP_QUARANTINED:
                return LB_REAP_CAT_QUARANTINED;
        case LB_REAP_UNUSED:
                return LB_REAP_CAT_UNUSED;
        case LB_REAP_RELOCATE:
                /* Could not even take the snapshot: it is as stranded as before. */
                if (it->reloc.step == LB_RELOC_START && !it->reloc.started && it->reloc.failed)
                        return LB_REAP_CAT_STRANDED;
                return LB_REAP_CAT_RELOCATING;
        default:
                return LB_REAP_CAT_KEPT;
        }
}

int lb_reap_exit_code(const struct lb_reap_plan *p) {
        bool attention = false, failed = false;
        for (size_t i = 0; i < p->n; i++) {
                enum lb_reap_category c = lb_reap_item_category(&p->items[i]);
                attention = attention || c == LB_REAP_CAT_STRANDED || c == LB_REAP_CAT_QUARANTINED;
                failed = failed || c == LB_REAP_CAT_FAILED || p->items[i].mark_failed || p->items[i].reloc.failed;
        }
        return attention ? LB_EXIT_ATTENTION : failed ? LB_EXIT_PARTIAL : LB_EXIT_OK;
}

int lb_reap_report_exit_code(const struct lb_reap_report *r) {
        int code = lb_reap_exit_code(&r->plan);
        /* A relocation step that failed outside any item (a describe, an orphan snapshot). */
        return code == LB_EXIT_OK && r->relocations.failed > 0 ? LB_EXIT_PARTIAL : code;
}

void lb_reap_report_done(struct lb_reap_report *r) {
        lb_reap_plan_done(&r->plan);
        lb_aws_close(&r->aws);
}

/* ---- running it ---- */

struct reap {
        struct lb_context *ctx;
        const struct lb_settings *s;
        const struct lb_reap_options *o;
        struct lb_aws aws;
        struct lb_reap_report *report;
        const struct lb_volume_list *world;     /* the group in the whole region; NULL: unknown */
        char group_filter[192];
        char mark_key[160];
};

static void call_error_text(const struct lb_query_call *c, char *buf, size_t size) {
        (void) lb_aws_error_format(&c->error, buf, size);
}

/* lb_ec2_perform() failed as a whole: calls that got no answer take its error (an
 * earlier round may have answered some before it gave up). */
static void fail_local(struct lb_query_call *c, int error) {
        if (c->result == 0 && c->answer.data)
                return;
        c->result = error;
        c->error = (struct lb_aws_error) { .kind = LB_AWS_ERR_OTHER };
        (void) lb_snprintf(c->error.message, sizeof c->error.message, "request not sent: %s", strerror(-error));
}

/* The group's volumes: those with ids, else those in --az, else (or with whole_region) all. */
static int describe_group(struct reap *r, const char *const *ids, size_t n_ids, bool whole_region,
                          struct lb_volume_list *ret) {
        const char *group_values[] = { r->s->group };
        const char *az_values[] = { r->o->availability_zone };
        struct lb_filter filters[2] = { { r->group_filter, group_values, 1 } };
        size_t n = 1;
        if (n_ids > 0)
                filters[n++] = (struct lb_filter) { "volume-id", ids, n_ids };
        else if (!isempty(r->o->availability_zone) && !whole_region)
                filters[n++] = (struct lb_filter) { "availability-zone", az_values, 1 };
        /* Filters, not VolumeId.N, for the re-check too: a volume another reaper deleted
         * meanwhile then just goes missing instead of failing the whole call. */
        return lb_ec2_describe_volumes(r->aws.ec2, filters, n, NULL, 0, ret);
}

/* ---- available-since marks ---- */

static int mark_form(struct reap *r, const struct lb_reap_item *it, struct lb_form *f) {
        const char *ids[] = { it->volume_id };
        if (it->mark == LB_REAP_MARK_SET) {
                const struct lb_tag tags[] = { { r->mark_key, (char *) it->since } };
                return lb_ec2_form_create_tags(f, ids, 1, tags, 1);
        }
        const struct lb_tag tags[] = { { r->mark_key, NULL } };
        return lb_ec2_form_delete_tags(f, ids, 1, tags, 1);
}

static void mark_result(struct reap *r, struct lb_reap_item *it, const struct lb_query_call *c) {
        char err[600], shown[201];
        if (c->result == 0 && lb_ec2_parse_return(c->answer.data, c->answer.len) >= 0) {
                it->mark_done = true;
                return;
        }
        if (c->result == -ENOENT)
                return;         /* deleted meanwhile: nothing to mark */
        call_error_text(c, err, sizeof err);
        it->mark_failed = true;
        (void) lb_snprintf(it->error, sizeof it->error, "%s %s failed: %s",
                           it->mark == LB_REAP_MARK_SET ? "tagging" : "untagging", r->mark_key,
                           lb_utf8_copy(shown, sizeof shown, err));
        lb_warn(r->ctx, "%s: %s", it->volume_id, it->error);
}

static int apply_marks(struct reap *r) {
        struct lb_reap_plan *p = &r->report->plan;
        struct lb_query_call calls[REAP_BATCH];
        struct lb_reap_item *which[REAP_BATCH];
        size_t i = 0;

        while (i < p->n) {
                size_t k = 0;
                memset(calls, 0, sizeof calls);
                for (; i < p->n && k < REAP_BATCH; i++) {
                        if (p->items[i].mark == LB_REAP_MARK_NONE)
                                continue;
                        int q = mark_form(r, &p->items[i], &calls[k].form);
                        if (q < 0) {
                                for (size_t j = 0; j <= k; j++)
                                        lb_query_call_done(&calls[j]);
                                return q;
                        }
                        which[k++] = &p->items[i];
                }
                int q = lb_ec2_perform(r->aws.ec2, calls, k);
                for (size_t j = 0; j < k; j++) {
                        if (q < 0)
                                fail_local(&calls[j], q);
                        mark_result(r, which[j], &calls[j]);
                        lb_query_call_done(&calls[j]);
                }
                if (q == -ENOMEM)
                        return q;
        }
        return 0;
}

/* ---- deletions ---- */

_printf_(4, 5) static void set_outcome(struct lb_reap_item *it, enum lb_reap_outcome outcome, const char *ec2_error,
                                        const char *fmt, ...) {
        char what[200], shown[sizeof it->error / 2 + 1];
        va_list ap;
        va_start(ap, fmt);
        lb_utf8_vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        it->outcome = outcome;
        if (isempty(ec2_error))
                (void) lb_snprintf(it->error, sizeof it->error, "%s", what);
        else
                (void) lb_snprintf(it->error, sizeof it->error, "%s (%s)", what,
                                   lb_utf8_copy(shown, sizeof shown, ec2_error));
}

/* Confirms against a fresh description that the volume is still one to delete. */
static bool still_deletable(struct reap *r, const struct lb_volume_list *fresh, struct lb_reap_item *it) {
        const struct lb_volume *v = lb_volume_list_find(fresh, it->volume_id);
        if (!v) {
                set_outcome(it, LB_REAP_SKIPPED, NULL, "gone meanwhile (deleted, or no longer in the group)");
                return false;
        }
        struct lb_reap_item now = {};
        if (lb_reap_classify(r->s, r->o, v, time(NULL), &now) < 0) {
                set_outcome(it, LB_REAP_FAILED, NULL, "not deleted: could not re-check it");
                return false;
        }
        check_copy(r->s, r->world, &now);
        if (now.verdict != LB_REAP_DELETE) {
                set_outcome(it, LB_REAP_SKIPPED, NULL, "changed meanwhile: %s, %s: %s", now.status,
                            lb_vol_state_to_string(now.state), now.reason);
                return false;
        }
        return true;
}

static void delete_result(struct lb_reap_item *it, const struct lb_query_call *c) {
        char err[600];
        if (c->result == 0) {
                if (lb_ec2_parse_return(c->answer.data, c->answer.len) >= 0) {
                        it->outcome = LB_REAP_DELETED;
                        return;
                }
                set_outcome(it, LB_REAP_FAILED, NULL, "DeleteVolume answer unreadable: the volume may be deleted");
                return;
        }
        call_error_text(c, err, sizeof err);
        switch (c->result) {
        case -EBUSY:
                set_outcome(it, LB_REAP_SKIPPED, err, "attached meanwhile");
                break;
        case -EALREADY:
                set_outcome(it, LB_REAP_SKIPPED, err, "changed state meanwhile");
                break;
        case -ENOENT:
                set_outcome(it, LB_REAP_SKIPPED, err, "gone meanwhile");
                break;
        case -EAGAIN:
                set_outcome(it, LB_REAP_FAILED, err, "not deleted: throttled");
                break;
        default:
                set_outcome(it, LB_REAP_FAILED, err, "not deleted");
                break;
        }
}

static int delete_batch(struct reap *r, struct lb_reap_item **batch, size_t n) {
        const char *ids[REAP_BATCH];
        char err[600];
        for (size_t i = 0; i < n; i++)
                ids[i] = batch[i]->volume_id;

        _cleanup_volume_list_ struct lb_volume_list fresh = {};
        int q = describe_group(r, ids, n, false, &fresh);
        if (q < 0) {
                (void) lb_ec2_last_error_text(r->aws.ec2, err, sizeof err);
                for (size_t i = 0; i < n; i++)
                        set_outcome(batch[i], LB_REAP_FAILED, err, "not deleted: could not re-check it");
                return q == -ENOMEM ? q : 0;
        }

        struct lb_query_call calls[REAP_BATCH];
        struct lb_reap_item *which[REAP_BATCH];
        size_t k = 0;
        memset(calls, 0, sizeof calls);
        for (size_t i = 0; i < n; i++) {
                if (!still_deletable(r, &fresh, batch[i]))
                        continue;
                if ((q = lb_ec2_form_delete_volume(&calls[k].form, batch[i]->volume_id)) < 0) {
                        for (size_t j = 0; j <= k; j++)
                                lb_query_call_done(&calls[j]);
                        return q;
                }
                which[k++] = batch[i];
        }
        q = lb_ec2_perform(r->aws.ec2, calls, k);
        for (size_t j = 0; j < k; j++) {
                if (q < 0)
                        fail_local(&calls[j], q);
                delete_result(which[j], &calls[j]);
                lb_debug(r->ctx, "%s: %s%s%s", which[j]->volume_id,
                         which[j]->outcome == LB_REAP_DELETED ? "deleted" : "not deleted",
                         isempty(which[j]->error) ? "" : ": ", which[j]->error);
                lb_query_call_done(&calls[j]);
        }
        return q == -ENOMEM ? q : 0;
}

static int apply_deletions(struct reap *r) {
        struct lb_reap_plan *p = &r->report->plan;
        struct lb_reap_item *batch[REAP_BATCH];
        size_t i = 0;

        while (i < p->n) {
                size_t k = 0;
                for (; i < p->n && k < REAP_BATCH; i++)
                        if (p->items[i].verdict == LB_REAP_DELETE)
                                batch[k++] = &p->items[i];
                if (k == 0)
                        break;
                if (lb_context_interrupted(r->ctx)) {
                        r->report->interrupted = true;
                        for (size_t j = 0; j < k; j++)
                                set_outcome(batch[j], LB_REAP_FAILED, NULL, "not deleted: interrupted");
                        continue;
                }
                int q = delete_batch(r, batch, k);
                if (q < 0)
                        return q;
        }
        return 0;
}

static void reap_done(struct reap *r) {
        lb_aws_close(&r->aws);
}

/* The zone of the instance reap runs on, when asked for (--this-az): from the identity. */
static int resolve_zone(struct reap *r, const struct lb_reap_options *o, struct lb_reap_options *scoped) {
        *scoped = *o;
        if (o->this_az) {
                if (lb_strscpy(r->report->availability_zone, sizeof r->report->availability_zone,
                               r->aws.identity.availability_zone) < 0 || isempty(r->report->availability_zone)) {
                        lb_err(r->ctx, "this instance's availability zone is unknown (IMDS identity)");
                        return -EINVAL;
                }
                lb_debug(r->ctx, "reaping this instance's zone, %s", r->report->availability_zone);
        } else if (!isempty(o->availability_zone) &&
                   lb_strscpy(r->report->availability_zone, sizeof r->report->availability_zone,
                              o->availability_zone) < 0) {
                lb_err(r->ctx, "not an availability zone: %.64s", o->availability_zone);
                return -EINVAL;
        }
        scoped->availability_zone = isempty(r->report->availability_zone) ? NULL : r->report->availability_zone;
        return 0;
}

/* Whether a deletion depends on a volume that may be in another zone: a relocated volume's
 * copy, a copy's source. */
static bool plan_needs_other_zones(const struct lb_reap_plan *p) {
        for (size_t i = 0; i < p->n; i++)
                if (p->items[i].verdict == LB_REAP_DELETE &&
                    (p->items[i].state == LB_VOL_RELOCATED || !isempty(p->items[i].reloc.source_id)))
                        return true;
        return false;
}

/* The group's volumes in the whole region: vols itself, unless the plan covers one zone. Then
 * they are described once more, when relocation or a deletion needs them (a relocated
 * volume's copy, a copy's source). NULL when they could not be described, or not needed. */
static const struct lb_volume_list *world_of(struct reap *r, const struct lb_volume_list *vols,
                                              struct lb_volume_list *region) {
        char err[600];
        if (isempty(r->o->availability_zone))
                return vols;
        if (!r->o->relocate && !plan_needs_other_zones(&r->report->plan))
                return NULL;
        if (describe_group(r, NULL, 0, true, region) < 0) {
                (void) lb_ec2_last_error_text(r->aws.ec2, err, sizeof err);
                lb_err(r->ctx, "DescribeVolumes of the whole region failed: %s", err);
                return NULL;
        }
        return region;
}

/* Relocation's plan (and, unless dry run, its steps), when it is on. A describe that fails
 * leaves the stranded volumes stranded. */
static int relocate(struct reap *r) {
        _cleanup_snapshot_list_ struct lb_snapshot_list snapshots = {};
        struct lb_reap_report *report = r->report;
        if (!r->o->relocate)
                return 0;
        if (!r->world || lb_relocate_describe_snapshots(r->ctx, r->aws.ec2, &snapshots) < 0) {
                report->relocations.failed++;
                return 0;
        }
        const struct lb_reloc_world w = { r->world, &snapshots };
        int q = lb_relocate_plan(r->s, &w, &report->plan, &report->relocations);
        if (q < 0 || r->o->dry_run)
                return q;
        if (lb_context_interrupted(r->ctx)) {
                report->interrupted = true;
                return 0;
        }
        return lb_relocate_apply(r->ctx, r->aws.ec2, &w, &report->plan, report->now, &report->relocations);
}

int lb_reap_run(struct lb_context *ctx, const struct lb_reap_options *o, struct lb_reap_report *report) {
        _cleanup_(reap_done) struct reap r = { .ctx = ctx, .s = &ctx->settings, .o = o, .report = report };
        struct lb_reap_options scoped;
        uint64_t started = lb_now_ms();
        int q;

        report->dry_run = o->dry_run;
        report->relocate = o->relocate;
        if (isempty(r.s->group) || isempty(r.s->tag_prefix)) {
                lb_err(ctx, "no group: set LIFEBOAT_GROUP (or ECS_CLUSTER in LIFEBOAT_ECS_CONFIG)");
                return -EINVAL;
        }
        if (lb_tag_filter(r.s, LB_TAG_GROUP, r.group_filter, sizeof r.group_filter) < 0 ||
            lb_tag_key(r.s, LB_TAG_AVAILABLE_SINCE, r.mark_key, sizeof r.mark_key) < 0) {
                lb_err(ctx, "tag prefix too long: %s", r.s->tag_prefix);
                return -EINVAL;
        }

        /* reap needs no identity unless it reaps this instance's zone: off EC2 a region and
         * credentials are enough. */
        q = lb_aws_open(ctx, (o->this_az ? LB_AWS_NEED_IDENTITY : 0) | (o->metrics ? LB_AWS_CLOUDWATCH : 0), &r.aws);
        if (q < 0)
                return q;
        q = resolve_zone(&r, o, &scoped);
        if (q < 0)
                return q;
        r.o = &scoped;
        (void) lb_strscpy(report->region, sizeof report->region, r.aws.region);

        _cleanup_volume_list_ struct lb_volume_list vols = {}, region = {};
        q = describe_group(&r, NULL, 0, false, &vols);
        if (q < 0) {
                char err[600];
                (void) lb_ec2_last_error_text(r.aws.ec2, err, sizeof err);
                lb_err(ctx, "DescribeVolumes failed: %s", err);
                report->ec2_requests = lb_ec2_request_count(r.aws.ec2);
                report->elapsed_ms = lb_now_ms() - started;
                return q;
        }

        report->now = time(NULL);
        q = lb_reap_plan(r.s, o, &vols, report->now, &report->plan);
        if (q < 0)
                return q;
        r.world = world_of(&r, &vols, &region);
        lb_reap_check_copies(r.s, r.world, &report->plan);

        if (!o->dry_run)
                q = apply_marks(&r);
        if (q >= 0)
                q = relocate(&r);
        if (q >= 0 && !o->dry_run)
                q = apply_deletions(&r);
        report->ec2_requests = lb_ec2_request_count(r.aws.ec2);
        report->elapsed_ms = lb_now_ms() - started;
        report->aws = r.aws;
        r.aws = (struct lb_aws) {};
        return q < 0 ? q : 0;
}
