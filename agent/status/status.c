/* SPDX-License-Identifier: MIT */
/*
 * lifeboat status: what this instance knows about its group. The group's volumes in this
 * AZ (one DescribeVolumes), this instance's watch state (watch.json) and the volumes boot
 * recovered here (recovered.json), as a table and as one JSON document.
 *
 * Tag values and what watch.json says (an owner, a reason, a notice) are anyone's text: the
 * table shows them through lb_cescape(), so no value can move the cursor, color the terminal
 * or start a line of its own. The JSON document keeps them as they are.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/provider.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/settings.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/state/volume.h"
#include "lifeboat/status/status.h"

/* Shorter than any line of the table; a longer value ends in "...". */
#define SHOWN_MAX 512

static void describe_notices(struct lb_buf *b, const struct lb_watch_state *st) {
        char t1[40], t2[40], detail[SHOWN_MAX];
        if (st->n_notices == 0) {
                (void) lb_buf_printf(b, "  notices: none\n");
                return;
        }
        for (size_t i = 0; i < st->n_notices; i++) {
                const struct lb_watch_notice *n = &st->notices[i];
                (void) lb_cescape(n->detail, detail, sizeof detail);
                switch (n->trigger) {
                case LB_WATCH_TRIGGER_SPOT:
                        (void) lb_buf_printf(b, "  notice: spot %s at %s (seen %s)\n", detail,
                                             lb_format_iso8601_or_dash(n->time, t1, sizeof t1),
                                             lb_format_iso8601_or_dash(n->seen_at, t2, sizeof t2));
                        break;
                case LB_WATCH_TRIGGER_REBALANCE:
                        (void) lb_buf_printf(b, "  notice: rebalance recommendation of %s (seen %s)\n",
                                             lb_format_iso8601_or_dash(n->time, t1, sizeof t1),
                                             lb_format_iso8601_or_dash(n->seen_at, t2, sizeof t2));
                        break;
                case LB_WATCH_TRIGGER_ASG:
                        (void) lb_buf_printf(b, "  notice: ASG target lifecycle state %s (seen %s)\n", detail,
                                             lb_format_iso8601_or_dash(n->seen_at, t2, sizeof t2));
                        break;
                default:
                        (void) lb_buf_printf(b, "  notice: %s (seen %s)\n", detail,
                                             lb_format_iso8601_or_dash(n->seen_at, t2, sizeof t2));
                }
        }
}

static void describe_own(struct lb_buf *b, const struct lb_watch_own *o) {
        char t[40], reason[SHOWN_MAX];
        const char *id = isempty(o->volume_id) ? "?" : o->volume_id;
        switch (o->state) {
        case LB_WATCH_OWN_NONE:
                (void) lb_buf_printf(b, "  own buffer: none configured (recovery only)\n");
                break;
        case LB_WATCH_OWN_UNKNOWN:
                (void) lb_buf_printf(b, "  own buffer %s: not confirmed: %s\n", id,
                                     isempty(o->reason) ? "?" : lb_cescape(o->reason, reason, sizeof reason));
                break;
        case LB_WATCH_OWN_DIRTY:
                (void) lb_buf_printf(b, "  own buffer %s: in use (dirty)\n", id);
                break;
        case LB_WATCH_OWN_DRAINING:
                (void) lb_buf_printf(b, "  own buffer %s: DRAINING, %" PRIu64 " chunk file(s), %" PRIu64
                                        " bytes left, deadline %s\n",
                                     id, o->chunk_files, o->chunk_bytes,
                                     lb_format_iso8601_or_dash(o->deadline, t, sizeof t));
                break;
        case LB_WATCH_OWN_FLUSHED:
                (void) lb_buf_printf(b, "  own buffer %s: drained, tagged flushed at %s\n", id,
                                     lb_format_iso8601_or_dash(o->flushed_at, t, sizeof t));
                break;
        case LB_WATCH_OWN_UNDRAINED:
                (void) lb_buf_printf(b, "  own buffer %s: NOT DRAINED by the deadline: %" PRIu64 " chunk file(s), %" PRIu64
                                        " bytes left; stays dirty for the next boot\n",
                                     id, o->chunk_files, o->chunk_bytes);
                break;
        default:
                break;
        }
}

static void describe_hook(struct lb_buf *b, const struct lb_watch_state *st) {
        const struct lb_watch_hook *h = &st->hook;
        char t1[40], t2[40];
        if (!st->have_hook)
                return;
        (void) lb_buf_printf(b, "  lifecycle hook %s", h->name);
        if (!isempty(h->group))
                (void) lb_buf_printf(b, " of Auto Scaling group %s", h->group);
        switch (h->state) {
        case LB_WATCH_HOOK_IDLE:
                if (isempty(h->group))
                        (void) lb_buf_printf(b, ": group not known yet");
                else if (h->heartbeat_timeout_s > 0)
                        (void) lb_buf_printf(b, ": no scale-in (heartbeat timeout %" PRIu64 " s, default result %s)",
                                             h->heartbeat_timeout_s, isempty(h->default_result) ? "?" : h->default_result);
                else
                        (void) lb_buf_printf(b, ": no scale-in");
                break;
        case LB_WATCH_HOOK_HOLDING:
                (void) lb_buf_printf(b, ": HOLDING the scale-in since %s, %u heartbeat(s), the last at %s",
                                     lb_format_iso8601_or_dash(h->waiting_since, t1, sizeof t1), h->heartbeats,
                                     lb_format_iso8601_or_dash(h->last_heartbeat, t2, sizeof t2));
                break;
        case LB_WATCH_HOOK_COMPLETED:
                (void) lb_buf_printf(b, ": completed (CONTINUE, %s) at %s after %u heartbeat(s)",
                                     isempty(h->completed_because) ? "?" : h->completed_because,
                                     lb_format_iso8601_or_dash(h->completed_at, t1, sizeof t1), h->heartbeats);
                break;
        case LB_WATCH_HOOK_GONE:
                (void) lb_buf_printf(b, ": no action waited any more (timed out, or completed by someone else)");
                break;
        case LB_WATCH_HOOK_LEFT:
                (void) lb_buf_printf(b, ": LEFT WAITING when watch stopped undrained (the hook's timeout ends it)");
                break;
        default:
                break;
        }
        if (!isempty(h->reason))
                (void) lb_buf_printf(b, " (%s)", h->reason);
        (void) lb_buf_printf(b, "\n");
}

/* A tagged volume that some process still uses, in this or another mount namespace (a container). */
static void describe_holders(struct lb_buf *b, const struct lb_watch_recovered *r) {
        (void) lb_buf_printf(b, "tagged flushed; BUSY, still in use by");
        for (size_t i = 0; i < r->n_holders; i++)
                (void) lb_buf_printf(b, "%s pid %ld (%s) in mount namespace mnt:[%" PRIu64 "]", i > 0 ? "," : "",
                                     (long) r->holders[i].pid, r->holders[i].comm, r->holders[i].ns);
        if (r->holders_total > r->n_holders)
                (void) lb_buf_printf(b, " and %" PRIu64 " more", r->holders_total - r->n_holders);
        (void) lb_buf_printf(b, "; unmount retried every poll, nothing is killed\n");
}

static void describe_recovered(struct lb_buf *b, const struct lb_watch_state *st, const struct lb_manifest *m) {
        char t[40], reason[SHOWN_MAX];
        size_t shown = 0;
        for (size_t i = 0; m && i < m->n; i++) {
                const struct lb_manifest_entry *e = &m->entries[i];
                const struct lb_watch_recovered *r = lb_watch_state_find_recovered(st, e->volume_id);
                (void) lb_buf_printf(b, "  recovered %s%s%s: ", e->volume_id, isempty(e->previous_owner) ? "" : " from ",
                                     e->previous_owner);
                if (!r)
                        (void) lb_buf_printf(b, "mounted at %s, not watched yet\n", e->mount_path);
                else if (r->state == LB_WATCH_REC_DRAINING)
                        (void) lb_buf_printf(b, "draining, %" PRIu64 " chunk file(s), %" PRIu64 " bytes left\n",
                                             r->chunk_files, r->chunk_bytes);
                else if (r->state == LB_WATCH_REC_SETTLING)
                        (void) lb_buf_printf(b, "empty since %s, released once settled\n",
                                             lb_format_iso8601_or_dash(r->empty_since, t, sizeof t));
                else if (r->state == LB_WATCH_REC_TAGGED && r->holders_total > 0)
                        describe_holders(b, r);
                else if (r->state == LB_WATCH_REC_TAGGED)
                        (void) lb_buf_printf(b, "tagged flushed; unmount/detach pending\n");
                else if (r->state == LB_WATCH_REC_MISSING)
                        (void) lb_buf_printf(b, "NOT MOUNTED at %s: left alone\n", e->mount_path);
                else if (r->state == LB_WATCH_REC_UNCONFIRMED)
                        (void) lb_buf_printf(b, "CANNOT CONFIRM IT IS DRAINED: %s; left mounted and dirty\n",
                                             lb_cescape(r->reason, reason, sizeof reason));
                else
                        (void) lb_buf_printf(b, "%s\n", lb_watch_rec_state_to_string(r->state));
                shown++;
        }
        for (size_t i = 0; st && i < st->n_recovered; i++) {
                const struct lb_watch_recovered *r = &st->recovered[i];
                if (r->state != LB_WATCH_REC_RELEASED)
                        continue;
                (void) lb_buf_printf(b, "  released %s at %s", r->volume_id,
                                     lb_format_iso8601_or_dash(r->released_at, t, sizeof t));
                if (r->backup_files > 0)
                        (void) lb_buf_printf(b, " (%" PRIu64 " file(s) in fluentd's backup directory: NOT delivered)",
                                             r->backup_files);
                (void) lb_buf_printf(b, "\n");
                shown++;
        }
        if (shown == 0)
                (void) lb_buf_printf(b, "  recovered volumes: none\n");
}

int lb_status_watch_text(const struct lb_watch_state *st, bool running, const struct lb_manifest *m,
                         char **ret_text) {
        _cleanup_buf_ struct lb_buf out = { 0 };
        struct lb_buf *b = &out;
        char t[40];
        if (!st)
                (void) lb_buf_printf(b, "Watch     not running here (no %s)\n", LB_WATCH_STATE_FILE);
        else {
                if (running)
                        (void) lb_buf_printf(b, "Watch     running (pid %ld) since %s", st->pid,
                                             lb_format_iso8601_or_dash(st->started_at, t, sizeof t));
                else
                        (void) lb_buf_printf(b, "Watch     NOT RUNNING (last state written by pid %ld, started %s)",
                                             st->pid, lb_format_iso8601_or_dash(st->started_at, t, sizeof t));
                if (st->imds_ok)
                        (void) lb_buf_printf(b, ", IMDS ok\n");
                else
                        (void) lb_buf_printf(b, ", IMDS FAILING since %s\n",
                                             lb_format_iso8601_or_dash(st->imds_failing_since, t, sizeof t));
                describe_notices(b, st);
                describe_own(b, &st->own);
                describe_hook(b, st);
                if (st->backup_files > 0)
                        (void) lb_buf_printf(b, "  fluentd's backup directory: %" PRIu64
                                                 " file(s) since watch started (chunks NOT delivered)\n",
                                             st->backup_files);
        }
        describe_recovered(b, st, m);
        char *text = lb_buf_steal(&out);
        if (!text)
                return -ENOMEM;
        *ret_text = text;
        return 0;
}

int lb_status_watch_json(const struct lb_watch_state *st, bool running, const struct lb_manifest *m, json_t **ret) {
        _cleanup_(json_decrefp) json_t *state = NULL;
        _cleanup_(json_decrefp) json_t *rec = json_array();
        int r;
        if (!rec)
                return -ENOMEM;
        if (st) {
                r = lb_watch_state_to_json(st, &state);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; m && i < m->n; i++) {
                const struct lb_manifest_entry *e = &m->entries[i];
                const struct lb_watch_recovered *w = lb_watch_state_find_recovered(st, e->volume_id);
                json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s?}", "volume_id", e->volume_id, "device",
                                      e->device, "mount_path", e->mount_path, "previous_owner",
                                      lb_json_string_or_null(e->previous_owner), "config_file",
                                      lb_json_string_or_null(e->config_file), "recovered_at",
                                      lb_json_time_or_null(e->recovered_at),
                                      "watch_state", w ? lb_watch_rec_state_to_string(w->state) : NULL);
                if (json_array_append_new(rec, o) < 0)
                        return -ENOMEM;
        }
        json_t *root = json_pack("{s:b, s:O?, s:O}", "running", running, "state", state, "recovered", rec);
        if (!root)
                return -ENOMEM;
        *ret = root;
        return 0;
}

int lb_status_credentials_text(const struct lb_credentials *c, char **ret_text) {
        char t[40];
        char *text = NULL;
        int n;
        if (c->expiration != 0)
                n = asprintf(&text, "Creds     %s, temporary until %s\n", c->origin,
                             lb_format_iso8601_or_dash(c->expiration, t, sizeof t));
        else
                n = asprintf(&text, "Creds     %s, long-term keys\n", c->origin);
        if (n < 0)
                return -ENOMEM;
        *ret_text = text;
        return 0;
}

int lb_status_credentials_json(const struct lb_credentials *c, json_t **ret) {
        json_t *o = json_pack("{s:s, s:s, s:o}", "source", lb_creds_source_to_string(c->source), "origin", c->origin,
                              "expiration", lb_json_time_or_null(c->expiration));
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
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

int lb_status_to_json(const struct lb_settings *s, const struct lb_status *st, json_t **ret) {
        const struct lb_identity *id = &st->aws.identity;
        const struct lb_volume_list *vols = &st->volumes;
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
        int r = lb_status_watch_json(st->have_watch ? &st->watch : NULL, st->watch_running, &st->manifest, &w);
        if (r < 0)
                return r;
        if (json_object_set_new(root, "watch", w) < 0)
                return -ENOMEM;
        if (st->aws.creds) {
                json_t *c = NULL;
                r = lb_status_credentials_json(lb_creds_provider_peek(st->aws.creds), &c);
                if (r < 0)
                        return r;
                if (json_object_set_new(root, "credentials", c) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(root);
        return 0;
}

static void format_volume_row(struct lb_buf *b, const struct lb_settings *s, const struct lb_volume *v,
                              const char *self) {
        char where[96] = "-", shown_where[SHOWN_MAX], owner[SHOWN_MAX];
        if (v->n_attachments > 0) {
                const struct lb_attachment *a = &v->attachments[0];
                (void) lb_snprintf(where, sizeof where, "%s%s %s (%s)", streq(a->instance_id, self) ? "*" : "",
                                   a->instance_id, a->device, a->state);
        }
        const char *owner_tag = lb_volume_lb_tag(s, v, LB_TAG_OWNER);
        (void) lb_cescape(owner_tag ? owner_tag : "-", owner, sizeof owner);
        (void) lb_buf_printf(b, "  %-22s %-12s %-10s %5" PRIu64 "G  %-20s %s\n", v->id, lb_vol_state_to_string(lb_volume_state(s, v)),
               v->state, v->size_gib, owner, lb_cescape(where, shown_where, sizeof shown_where));
}

int lb_status_format(const struct lb_settings *s, const struct lb_status *st, char **ret_text) {
        const struct lb_identity *id = &st->aws.identity;
        const struct lb_volume_list *vols = &st->volumes;
        _cleanup_buf_ struct lb_buf out = { 0 };
        struct lb_buf *b = &out;
        size_t n_state[_LB_VOL_STATE_MAX] = { 0 };

        (void) lb_buf_printf(b, "Instance  %s (%s, %s)\n", id->instance_id, isempty(id->lifecycle) ? "lifecycle unknown" : id->lifecycle,
               id->instance_type);
        (void) lb_buf_printf(b, "Zone      %s%s%s%s, region %s\n", id->availability_zone, isempty(id->availability_zone_id) ? "" : " (",
               id->availability_zone_id, isempty(id->availability_zone_id) ? "" : ")", id->region);
        (void) lb_buf_printf(b, "Group     %s (tags %s:*)\n", s->group, s->tag_prefix);
        if (st->aws.creds) {
                _cleanup_free_ char *creds = NULL;
                int q = lb_status_credentials_text(lb_creds_provider_peek(st->aws.creds), &creds);
                if (q < 0)
                        return q;
                (void) lb_buf_printf(b, "%s", creds);
        }
        (void) lb_buf_printf(b, "\n");

        (void) lb_buf_printf(b, "Attached here:\n");
        size_t here = 0;
        for (size_t i = 0; i < vols->n; i++)
                if (lb_volume_attachment_for(&vols->items[i], id->instance_id)) {
                        format_volume_row(b, s, &vols->items[i], id->instance_id);
                        here++;
                }
        if (here == 0)
                (void) lb_buf_printf(b, "  (none)\n");

        (void) lb_buf_printf(b, "\nGroup volumes in %s:\n", id->availability_zone);
        (void) lb_buf_printf(b, "  %-22s %-12s %-10s %6s  %-20s %s\n", "VOLUME", "STATE", "STATUS", "SIZE", "OWNER", "ATTACHED TO");
        for (size_t i = 0; i < vols->n; i++) {
                format_volume_row(b, s, &vols->items[i], id->instance_id);
                n_state[lb_volume_state(s, &vols->items[i])]++;
        }
        if (vols->n == 0)
                (void) lb_buf_printf(b, "  (none)\n");
        (void) lb_buf_printf(b, "\n%zu dirty, %zu flushed, %zu quarantined, %zu unmarked", n_state[LB_VOL_DIRTY],
               n_state[LB_VOL_FLUSHED], n_state[LB_VOL_QUARANTINED], n_state[LB_VOL_UNMARKED]);
        if (n_state[LB_VOL_RELOCATED] > 0)
                (void) lb_buf_printf(b, ", %zu relocated", n_state[LB_VOL_RELOCATED]);
        if (n_state[LB_VOL_UNKNOWN] > 0)
                (void) lb_buf_printf(b, ", %zu with an unknown state tag", n_state[LB_VOL_UNKNOWN]);
        (void) lb_buf_printf(b, "\n");

        _cleanup_free_ char *watch = NULL;
        int r = lb_status_watch_text(st->have_watch ? &st->watch : NULL, st->watch_running, &st->manifest, &watch);
        if (r < 0)
                return r;
        (void) lb_buf_printf(b, "\n%s", watch);
        char *text = lb_buf_steal(&out);
        if (!text)
                return -ENOMEM;
        *ret_text = text;
        return 0;
}


/* ---- gathering ---- */

void lb_status_done(struct lb_status *st) {
        lb_manifest_done(&st->manifest);
        lb_watch_state_done(&st->watch);
        lb_volume_list_done(&st->volumes);
        lb_aws_close(&st->aws);
        st->have_watch = st->watch_running = false;
}

static int describe_group_here(struct lb_context *ctx, struct lb_status *st) {
        char group_filter[192];
        int r = lb_tag_filter(&ctx->settings, LB_TAG_GROUP, group_filter, sizeof group_filter);
        if (r < 0)
                return r;
        const char *group_values[] = { ctx->settings.group };
        const char *az_values[] = { st->aws.identity.availability_zone };
        const struct lb_filter filters[] = {
                { group_filter, group_values, 1 },
                { "availability-zone", az_values, 1 },
        };
        r = lb_ec2_describe_volumes(st->aws.ec2, filters, ELEMENTSOF(filters), NULL, 0, &st->volumes);
        if (r < 0) {
                char msg[768];
                lb_err(ctx, "DescribeVolumes failed: %s", lb_ec2_last_error_text(st->aws.ec2, msg, sizeof msg));
        }
        return r;
}

/* What watch and boot keep in the run directory: this instance's side of the story. */
static void read_run_dir(struct lb_context *ctx, struct lb_status *st) {
        const char *run_dir = ctx->settings.run_dir;
        int r = lb_watch_state_load(run_dir, &st->watch);
        if (r < 0 && r != -ENOENT)
                lb_warn(ctx, "cannot read %s/%s: %s", run_dir, LB_WATCH_STATE_FILE, strerror(-r));
        st->have_watch = r >= 0;
        st->watch_running = st->have_watch && lb_watch_state_running(&st->watch);
        r = lb_manifest_load(run_dir, &st->manifest);
        if (r < 0)
                lb_warn(ctx, "cannot read %s/%s: %s", run_dir, LB_MANIFEST_FILE, strerror(-r));
}

int lb_status_gather(struct lb_context *ctx, struct lb_status *ret) {
        _cleanup_status_ struct lb_status st = { 0 };
        int r = lb_aws_open(ctx, LB_AWS_NEED_IDENTITY | LB_AWS_IDENTITY_EXTRA, &st.aws);
        if (r < 0)
                return r;
        r = describe_group_here(ctx, &st);
        if (r < 0)
                return r;
        read_run_dir(ctx, &st);
        *ret = st;
        st = (struct lb_status) { 0 };
        return 0;
}
