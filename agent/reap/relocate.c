/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relocate.h"
#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/reap/reap.h"
#include "lifeboat/state/volume.h"

/* Calls go out in concurrent batches of this many, like reap's deletions. */
#define RELOC_BATCH 10
/* More zones than any region has. */
#define MAX_ZONES 32

#define TOKEN_PREFIX "lifeboat-relocate-"

int lb_relocate_client_token(const char *source_id, char *buf, size_t size) {
        if (!lb_volume_id_valid(source_id))
                return -EINVAL;
        /* "lifeboat-relocate-vol-" + 17 hex digits: 39 characters, within EC2's 64. */
        return lb_snprintf(buf, size, TOKEN_PREFIX "%s", source_id);
}

/* ---- the world ---- */

/* A snapshot of source: the tag says so, and so does EC2's own VolumeId (which no tag can
 * change). */
static bool snapshot_of(const struct lb_settings *s, const struct lb_snapshot *x, const char *source) {
        const char *from = lb_snapshot_lb_tag(s, x, LB_TAG_RELOCATED_FROM);
        return from && streq(from, source) && streq(x->volume_id, source);
}

/* A copy of source: the tag says so, and EC2 says it was made from a snapshot (a blank volume
 * with a copied tag is no copy). */
static bool copy_of(const struct lb_settings *s, const struct lb_volume *v, const char *source) {
        const char *from = lb_volume_lb_tag(s, v, LB_TAG_RELOCATED_FROM);
        return from && streq(from, source) && !isempty(v->snapshot_id);
}

static bool has_snapshots(const struct lb_settings *s, const struct lb_reloc_world *w, const char *source) {
        for (size_t i = 0; i < w->snapshots->n; i++)
                if (snapshot_of(s, &w->snapshots->items[i], source))
                        return true;
        return false;
}

/* The order in which snapshots are kept: the oldest first, then by id. Every reaper that sees
 * the same snapshots keeps the same one, and one taken later never displaces it. */
static int keep_cmp(const struct lb_snapshot *a, const struct lb_snapshot *b) {
        int c = strcmp(a->start_time, b->start_time);
        return c != 0 ? c : strcmp(a->id, b->id);
}

/* The snapshot a relocation keeps: the one its copy was made from, else the oldest that is not
 * in error. NULL when there is none. */
static const struct lb_snapshot *keeper(const struct lb_settings *s, const struct lb_reloc_world *w,
                                        const char *source, const struct lb_volume *copy) {
        const struct lb_snapshot *best = NULL;
        for (size_t i = 0; i < w->snapshots->n; i++) {
                const struct lb_snapshot *x = &w->snapshots->items[i];
                if (!snapshot_of(s, x, source))
                        continue;
                if (copy && streq(copy->snapshot_id, x->id))
                        return x;
                if (!streq(x->state, "error") && (!best || keep_cmp(x, best) < 0))
                        best = x;
        }
        return best;
}

static int copy_rank(const struct lb_volume *v) {
        if (streq(v->state, "available") || streq(v->state, "in-use"))
                return 0;
        return streq(v->state, "creating") ? 1 : 2;
}

/* Whether v was made from a snapshot, still there, that EC2 says was taken of source. */
static bool made_from_snapshot_of(const struct lb_settings *s, const struct lb_reloc_world *w,
                                  const struct lb_volume *v, const char *source) {
        for (size_t i = 0; i < w->snapshots->n; i++) {
                const struct lb_snapshot *x = &w->snapshots->items[i];
                if (streq(x->id, v->snapshot_id))
                        return snapshot_of(s, x, source);
        }
        return false;
}

/* The order of copies: one made from a snapshot of source first (a tag alone does not make a
 * copy), then a usable one, then by id. */
static bool better_copy(const struct lb_settings *s, const struct lb_reloc_world *w, const char *source,
                        const struct lb_volume *v, const struct lb_volume *best) {
        bool gv = made_from_snapshot_of(s, w, v, source), gb = made_from_snapshot_of(s, w, best, source);
        if (gv != gb)
                return gv;
        if (copy_rank(v) != copy_rank(best))
                return copy_rank(v) < copy_rank(best);
        return strcmp(v->id, best->id) < 0;
}

/* The copy of source, the best by better_copy; *ret_n counts them all (more than one only when
 * something outside lifeboat interfered). */
static const struct lb_volume *find_copy(const struct lb_settings *s, const struct lb_reloc_world *w,
                                         const char *source, size_t *ret_n) {
        const struct lb_volume *best = NULL;
        size_t n = 0;
        for (size_t i = 0; i < w->volumes->n; i++) {
                const struct lb_volume *v = &w->volumes->items[i];
                if (!copy_of(s, v, source))
                        continue;
                n++;
                if (!best || better_copy(s, w, source, v, best))
                        best = v;
        }
        *ret_n = n;
        return best;
}

/* Whether a volume is being created from x: such a snapshot is never deleted. */
static bool feeds_a_copy(const struct lb_reloc_world *w, const struct lb_snapshot *x) {
        for (size_t i = 0; i < w->volumes->n; i++)
                if (streq(w->volumes->items[i].snapshot_id, x->id) && streq(w->volumes->items[i].state, "creating"))
                        return true;
        return false;
}

static struct lb_reap_item *find_item(struct lb_reap_plan *p, const char *volume_id) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->items[i].volume_id, volume_id))
                        return &p->items[i];
        return NULL;
}

/* ---- zones ---- */

struct zone {
        char name[32];
        unsigned in_use;        /* the group's volumes in use there: its running instances */
        unsigned load;          /* relocations going there */
};

struct zones {
        struct zone z[MAX_ZONES];
        size_t n;
};

static struct zone *zone_get(struct zones *zs, const char *name, bool add) {
        for (size_t i = 0; i < zs->n; i++)
                if (streq(zs->z[i].name, name))
                        return &zs->z[i];
        if (!add || zs->n >= MAX_ZONES || isempty(name))
                return NULL;
        struct zone *z = &zs->z[zs->n];
        if (lb_strscpy(z->name, sizeof z->name, name) < 0)
                return NULL;
        zs->n++;
        return z;
}

/* A zone name as a target: lower-case letters, digits and dashes, ending in a letter. */
static bool zone_name_valid(const char *z) {
        size_t n = z ? strlen(z) : 0;
        if (n < 2 || n >= 32 || z[n - 1] < 'a' || z[n - 1] > 'z')
                return false;
        for (const char *c = z; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
                        return false;
        return true;
}

/* Whether zone a takes the next relocation before b: the most volumes in use per relocation
 * already going there (in_use / (1 + load), compared without division), then the fewer
 * relocations, then the name. */
static bool zone_better(const struct zone *a, const struct zone *b) {
        unsigned long long x = (unsigned long long) a->in_use * (1ull + b->load);
        unsigned long long y = (unsigned long long) b->in_use * (1ull + a->load);
        if (x != y)
                return x > y;
        if (a->load != b->load)
                return a->load < b->load;
        return strcmp(a->name, b->name) < 0;
}

static struct zone *choose_zone(struct zones *zs, const char *exclude) {
        struct zone *best = NULL;
        for (size_t i = 0; i < zs->n; i++) {
                struct zone *z = &zs->z[i];
                if (z->in_use == 0 || streq(z->name, exclude))
                        continue;
                if (!best || zone_better(z, best))
                        best = z;
        }
        return best;
}

/* Where the group lives (the zones of its volumes in use: every running instance has its own
 * buffer volume attached), and how many relocations already go to each zone (by the
 * target-zone tag of the snapshot each keeps). */
static void zones_init(const struct lb_settings *s, const struct lb_reloc_world *w, struct zones *zs) {
        *zs = (struct zones) {};
        for (size_t i = 0; i < w->volumes->n; i++)
                if (streq(w->volumes->items[i].state, "in-use")) {
                        struct zone *z = zone_get(zs, w->volumes->items[i].availability_zone, true);
                        if (z)
                                z->in_use++;
                }
        for (size_t i = 0; i < w->snapshots->n; i++) {
                const struct lb_snapshot *x = &w->snapshots->items[i];
                const char *source = lb_snapshot_lb_tag(s, x, LB_TAG_RELOCATED_FROM);
                const char *target = lb_snapshot_lb_tag(s, x, LB_TAG_TARGET_ZONE);
                if (!source || !target || keeper(s, w, source, NULL) != x)
                        continue;
                struct zone *z = zone_get(zs, target, false);
                if (z)
                        z->load++;
        }
}

/* ---- the plan ---- */

_printf_(2, 3) static void set_reason(struct lb_reap_item *it, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(it->reason, sizeof it->reason, fmt, ap);
        va_end(ap);
}

/* Adds "; what" to the classification's reason. */
_printf_(2, 3) static void append_reason(struct lb_reap_item *it, const char *fmt, ...) {
        char what[200], was[sizeof it->reason];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        memcpy(was, it->reason, sizeof was);
        (void) lb_snprintf(it->reason, sizeof it->reason, "%s; %s", was, what);
}

_printf_(3, 4) static void reloc_fail(struct lb_reap_item *it, struct lb_reap_relocation_counts *counts,
                                     const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(it->reloc.error, sizeof it->reloc.error, fmt, ap);
        va_end(ap);
        it->reloc.failed = true;
        counts->failed++;
}

static void set_snapshot(struct lb_reap_item *it, const struct lb_snapshot *x) {
        (void) lb_strscpy(it->reloc.snapshot_id, sizeof it->reloc.snapshot_id, x->id);
        (void) lb_strscpy(it->reloc.snapshot_state, sizeof it->reloc.snapshot_state, x->state);
        (void) lb_strscpy(it->reloc.snapshot_progress, sizeof it->reloc.snapshot_progress, x->progress);
}

/* A copy exists: wait for it, or mark the source. */
static void plan_copied(const struct lb_settings *s, const struct lb_reloc_world *w, struct lb_reap_item *it,
                        const struct lb_volume *copy, size_t n_copies, struct lb_reap_relocation_counts *counts) {
        const struct lb_snapshot *k = keeper(s, w, it->volume_id, copy);
        it->verdict = LB_REAP_RELOCATE;
        if (k)
                set_snapshot(it, k);
        (void) lb_strscpy(it->reloc.target_zone, sizeof it->reloc.target_zone, copy->availability_zone);
        (void) lb_strscpy(it->reloc.copy_id, sizeof it->reloc.copy_id, copy->id);
        (void) lb_strscpy(it->reloc.copy_state, sizeof it->reloc.copy_state, copy->state);
        if (copy_rank(copy) == 0 && !(k && streq(k->id, copy->snapshot_id))) {
                /* Marking the source lets reap delete it: only for a copy EC2 says was made from a
                 * snapshot of this very volume, not for any volume that carries the tag. */
                it->reloc.step = LB_RELOC_WAIT_COPY;
                reloc_fail(it, counts, "copy %s was made from %s, no snapshot of %s", copy->id, copy->snapshot_id,
                           it->volume_id);
                it->needs_human = true;
                set_reason(it, "not moved: %s claims to be its copy but was made from %s, no snapshot of it: "
                               "a human must look at it", copy->id, copy->snapshot_id);
        } else if (copy_rank(copy) == 0) {
                it->reloc.step = LB_RELOC_MARK;
                set_reason(it, "moved to %s: copy %s is %s", copy->availability_zone, copy->id, copy->state);
        } else if (copy_rank(copy) == 1) {
                it->reloc.step = LB_RELOC_WAIT_COPY;
                counts->waiting_for_copy++;
                set_reason(it, "moving to %s: copy %s is being created", copy->availability_zone, copy->id);
        } else {
                it->reloc.step = LB_RELOC_WAIT_COPY;
                reloc_fail(it, counts, "copy %s is %s", copy->id, copy->state);
                it->needs_human = true;
                set_reason(it, "moving to %s: copy %s is %s: a human must look at it", copy->availability_zone,
                           copy->id, copy->state);
        }
        if (n_copies > 1)
                append_reason(it, "%zu copies exist (all are recovered like any dirty volume)", n_copies);
}

/* A usable snapshot exists: wait for it, or copy it to the zone chosen when it was taken. */
static void plan_snapshot(const struct lb_settings *s, struct zones *zs, struct lb_reap_item *it,
                          const struct lb_snapshot *k, struct lb_reap_relocation_counts *counts) {
        const char *target = lb_snapshot_lb_tag(s, k, LB_TAG_TARGET_ZONE);
        if (!zone_name_valid(target) || streq(target, it->availability_zone)) {
                /* Not taken by lifeboat, or its tag was changed: choose now. */
                struct zone *z = choose_zone(zs, it->availability_zone);
                if (!z) {
                        counts->nowhere_to_go++;
                        append_reason(it, "snapshot %s waits: no volume of the group is in use in any other zone",
                                      k->id);
                        return;
                }
                z->load++;
                target = z->name;
        }
        it->verdict = LB_REAP_RELOCATE;
        set_snapshot(it, k);
        (void) lb_strscpy(it->reloc.target_zone, sizeof it->reloc.target_zone, target);
        if (streq(k->state, "completed")) {
                it->reloc.step = LB_RELOC_COPY;
                set_reason(it, "moving to %s: snapshot %s is completed", target, k->id);
        } else {
                it->reloc.step = LB_RELOC_WAIT_SNAPSHOT;
                counts->waiting_for_snapshot++;
                set_reason(it, "moving to %s: snapshot %s is %s%s%s%s", target, k->id, k->state,
                           isempty(k->progress) ? "" : " (", k->progress, isempty(k->progress) ? "" : ")");
        }
}

/* Stranded, nothing under way: move it when its zone has no instance of the group and another
 * zone has. */
static void plan_start(struct zones *zs, struct lb_reap_item *it, struct lb_reap_relocation_counts *counts) {
        struct zone *here = zone_get(zs, it->availability_zone, false);
        if (here && here->in_use > 0) {
                append_reason(it, "not moved: %u of the group's volumes are in use in %s, an instance booting there recovers it",
                              here->in_use, it->availability_zone);
                return;
        }
        struct zone *z = choose_zone(zs, it->availability_zone);
        if (!z) {
                counts->nowhere_to_go++;
                append_reason(it, "nowhere to move it: no volume of the group is in use in any zone");
                return;
        }
        z->load++;
        it->verdict = LB_REAP_RELOCATE;
        it->reloc.step = LB_RELOC_START;
        (void) lb_strscpy(it->reloc.target_zone, sizeof it->reloc.target_zone, z->name);
        append_reason(it, "moving it to %s (%u of the group's volumes in use there)", z->name, z->in_use);
}

static void plan_item(const struct lb_settings *s, const struct lb_reloc_world *w, struct zones *zs,
                      const struct lb_volume *v, struct lb_reap_item *it, struct lb_reap_relocation_counts *counts) {
        size_t n_copies;
        const struct lb_volume *copy = find_copy(s, w, it->volume_id, &n_copies);
        bool snapshots = has_snapshots(s, w, it->volume_id);
        bool movable = it->state == LB_VOL_DIRTY && streq(v->state, "available") && v->n_attachments == 0;

        if (!movable || (it->verdict != LB_REAP_STRANDED && !copy && !snapshots)) {
                /* Relocated, recovered where it was, or never moved: snapshots left go. */
                if (snapshots)
                        it->reloc.step = LB_RELOC_CLEANUP;
                return;
        }
        if (copy) {
                plan_copied(s, w, it, copy, n_copies, counts);
                return;
        }
        const struct lb_snapshot *k = keeper(s, w, it->volume_id, NULL);
        if (k) {
                plan_snapshot(s, zs, it, k, counts);
                return;
        }
        /* Only snapshots in error, or none: a stranded volume starts over (those in error go). */
        if (it->verdict == LB_REAP_STRANDED)
                plan_start(zs, it, counts);
        if (snapshots && it->reloc.step == LB_RELOC_NONE)
                it->reloc.step = LB_RELOC_CLEANUP;
}

int lb_relocate_plan(const struct lb_settings *s, const struct lb_reloc_world *w, struct lb_reap_plan *p,
                     struct lb_reap_relocation_counts *counts) {
        struct zones zs;
        if (!w || !w->volumes || !w->snapshots)
                return -EINVAL;
        zones_init(s, w, &zs);
        for (size_t i = 0; i < p->n; i++) {
                const struct lb_volume *v = lb_volume_list_find(w->volumes, p->items[i].volume_id);
                if (v)
                        plan_item(s, w, &zs, v, &p->items[i], counts);
        }
        return 0;
}

/* ---- running it ---- */

enum call_kind {
        CALL_SNAPSHOT,
        CALL_COPY,
        CALL_MARK,
        CALL_DELETE,
};

struct call_for {
        enum call_kind kind;
        struct lb_reap_item *it;        /* NULL for a snapshot no item owns */
        const struct lb_snapshot *snap; /* CALL_DELETE */
};

struct reloc {
        struct lb_context *ctx;
        const struct lb_settings *s;
        struct lb_ec2 *ec2;
        const struct lb_reloc_world *w;
        struct lb_reap_plan *p;
        struct lb_reap_relocation_counts *counts;
        time_t now;
        struct lb_query_call *calls;
        struct call_for *what;
        size_t n, allocated;
};

static void reloc_done(struct reloc *r) {
        for (size_t i = 0; i < r->n; i++)
                lb_query_call_done(&r->calls[i]);
        free(r->calls);
        free(r->what);
        r->calls = NULL;
        r->what = NULL;
        r->n = r->allocated = 0;
}

/* A new call; its form is the caller's to fill. */
static int add_call(struct reloc *r, enum call_kind kind, struct lb_reap_item *it, const struct lb_snapshot *snap,
                    struct lb_query_call **ret) {
        if (r->n == r->allocated) {
                size_t m = r->allocated ? 2 * r->allocated : 16;
                struct lb_query_call *calls = reallocarray(r->calls, m, sizeof *calls);
                if (!calls)
                        return -ENOMEM;
                r->calls = calls;
                struct call_for *what = reallocarray(r->what, m, sizeof *what);
                if (!what)
                        return -ENOMEM;
                r->what = what;
                r->allocated = m;
        }
        r->calls[r->n] = (struct lb_query_call) {};
        r->what[r->n] = (struct call_for) { kind, it, snap };
        *ret = &r->calls[r->n++];
        return 0;
}

/* The batch failed as a whole: calls that got no answer take its error. */
static void fail_local(struct lb_query_call *c, int error) {
        if (c->result == 0 && c->answer.data)
                return;
        c->result = error;
        c->error = (struct lb_aws_error) { .kind = LB_AWS_ERR_OTHER };
        (void) lb_snprintf(c->error.message, sizeof c->error.message, "request not sent: %s", strerror(-error));
}

static void call_error_text(const struct lb_query_call *c, char *buf, size_t size) {
        (void) lb_aws_error_format(&c->error, buf, size);
}

/* Sends the calls, RELOC_BATCH at a time; each keeps its own result. */
static int perform_all(struct reloc *r) {
        for (size_t i = 0; i < r->n; i += RELOC_BATCH) {
                size_t k = r->n - i < RELOC_BATCH ? r->n - i : RELOC_BATCH;
                int q = lb_ec2_perform(r->ec2, &r->calls[i], k);
                for (size_t j = i; q < 0 && j < i + k; j++)
                        fail_local(&r->calls[j], q);
                if (q == -ENOMEM)
                        return q;
        }
        return 0;
}

/* "lifeboat:NAME" for the tags below; each call's form copies what it needs. */
struct keys {
        char group[160], state[160], owner[160], fs_uuid[160], from[160], to[160], at[160], zone[160];
};

static int keys_init(const struct lb_settings *s, struct keys *k) {
        int q;
        if ((q = lb_tag_key(s, LB_TAG_GROUP, k->group, sizeof k->group)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_STATE, k->state, sizeof k->state)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_OWNER, k->owner, sizeof k->owner)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_FS_UUID, k->fs_uuid, sizeof k->fs_uuid)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_RELOCATED_FROM, k->from, sizeof k->from)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_RELOCATED_TO, k->to, sizeof k->to)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_RELOCATED_AT, k->at, sizeof k->at)) < 0 ||
            (q = lb_tag_key(s, LB_TAG_TARGET_ZONE, k->zone, sizeof k->zone)) < 0)
                return q;
        return 0;
}

static int snapshot_form(struct reloc *r, const struct keys *k, struct lb_reap_item *it, struct lb_form *f) {
        char description[128];
        const struct lb_tag tags[] = {
                { (char *) k->group, r->s->group },
                { (char *) k->from, it->volume_id },
                { (char *) k->zone, it->reloc.target_zone },
        };
        (void) lb_snprintf(description, sizeof description, "lifeboat: %s, stranded in %s, moving to %s",
                           it->volume_id, it->availability_zone, it->reloc.target_zone);
        return lb_ec2_form_create_snapshot(f, it->volume_id, description, tags, ELEMENTSOF(tags));
}

/* The copy: the source's size, type and performance; its tags in the same call. */
static int copy_form(struct reloc *r, const struct keys *k, struct lb_reap_item *it, struct lb_form *f) {
        const struct lb_volume *v = lb_volume_list_find(r->w->volumes, it->volume_id);
        char token[80];
        if (!v || lb_relocate_client_token(it->volume_id, token, sizeof token) < 0)
                return -EINVAL;
        const char *owner = lb_volume_lb_tag(r->s, v, LB_TAG_OWNER);
        const char *fs_uuid = lb_volume_lb_tag(r->s, v, LB_TAG_FS_UUID);
        struct lb_tag tags[5] = {
                { (char *) k->group, r->s->group },
                { (char *) k->state, (char *) "dirty" },
                { (char *) k->from, it->volume_id },
        };
        size_t n = 3;
        if (owner)
                tags[n++] = (struct lb_tag) { (char *) k->owner, (char *) owner };
        if (fs_uuid)
                tags[n++] = (struct lb_tag) { (char *) k->fs_uuid, (char *) fs_uuid };
        /* IOPS only where the type takes them (gp2's follow the size), throughput only for gp3. */
        bool provisioned = streq(v->type, "gp3") || streq(v->type, "io1") || streq(v->type, "io2");
        const struct lb_ec2_volume_spec spec = {
                .availability_zone = it->reloc.target_zone,
                .snapshot_id = it->reloc.snapshot_id,
                .size_gib = v->size_gib,
                .volume_type = v->type,
                .iops = provisioned ? v->iops : 0,
                .throughput = streq(v->type, "gp3") ? v->throughput : 0,
                .tags = tags,
                .n_tags = n,
                .client_token = token,
        };
        return lb_ec2_form_create_volume(f, &spec);
}

static int mark_form(struct reloc *r, const struct keys *k, struct lb_reap_item *it, struct lb_form *f) {
        char at[40];
        const char *ids[] = { it->volume_id };
        int q = lb_format_iso8601(r->now, at, sizeof at);
        if (q < 0)
                return q;
        const struct lb_tag tags[] = {
                { (char *) k->state, (char *) "relocated" },
                { (char *) k->to, it->reloc.copy_id },
                { (char *) k->at, at },
        };
        return lb_ec2_form_create_tags(f, ids, 1, tags, ELEMENTSOF(tags));
}

static const char *action_name(enum call_kind kind) {
        switch (kind) {
        case CALL_SNAPSHOT:
                return "CreateSnapshot";
        case CALL_COPY:
                return "CreateVolume";
        case CALL_MARK:
                return "CreateTags";
        default:
                return "DeleteSnapshot";
        }
}

/* Step 1 of a run: the snapshots, copies and marks the plan is ready for. */
static int queue_steps(struct reloc *r) {
        struct keys k;
        int q = keys_init(r->s, &k);
        if (q < 0)
                return q;
        for (size_t i = 0; i < r->p->n; i++) {
                struct lb_reap_item *it = &r->p->items[i];
                struct lb_query_call *c;
                if (it->verdict != LB_REAP_RELOCATE || it->reloc.failed)
                        continue;
                switch (it->reloc.step) {
                case LB_RELOC_START:
                        if ((q = add_call(r, CALL_SNAPSHOT, it, NULL, &c)) < 0)
                                return q;
                        q = snapshot_form(r, &k, it, &c->form);
                        break;
                case LB_RELOC_COPY:
                        if ((q = add_call(r, CALL_COPY, it, NULL, &c)) < 0)
                                return q;
                        q = copy_form(r, &k, it, &c->form);
                        break;
                case LB_RELOC_MARK:
                        if ((q = add_call(r, CALL_MARK, it, NULL, &c)) < 0)
                                return q;
                        q = mark_form(r, &k, it, &c->form);
                        break;
                default:
                        continue;
                }
                if (q == -ENOMEM)
                        return q;
                if (q < 0) {
                        /* Leave the call out; the item says why. */
                        lb_query_call_done(c);
                        r->n--;
                        reloc_fail(it, r->counts, "could not build the %s request: %s", action_name(r->what[r->n].kind),
                                   strerror(-q));
                }
        }
        return 0;
}

static void snapshot_result(struct reloc *r, struct lb_reap_item *it, const struct lb_query_call *c) {
        char err[600];
        struct lb_snapshot x = {};
        if (c->result < 0) {
                call_error_text(c, err, sizeof err);
                reloc_fail(it, r->counts, "CreateSnapshot failed: %.200s", err);
                lb_warn(r->ctx, "%s: %s", it->volume_id, it->reloc.error);
                return;
        }
        if (lb_ec2_parse_created_snapshot(c->answer.data, c->answer.len, &x) < 0) {
                reloc_fail(it, r->counts, "CreateSnapshot answer unreadable (a snapshot may exist: the next run finds it)");
                lb_warn(r->ctx, "%s: %s", it->volume_id, it->reloc.error);
                return;
        }
        it->reloc.started = true;
        set_snapshot(it, &x);
        r->counts->started++;
        lb_info(r->ctx, "%s: snapshot %s started, to move it from %s to %s", it->volume_id, x.id,
                it->availability_zone, it->reloc.target_zone);
        lb_snapshot_done(&x);
}

static void copy_result(struct reloc *r, struct lb_reap_item *it, const struct lb_query_call *c) {
        char err[600];
        struct lb_volume v = {};
        if (c->result < 0) {
                call_error_text(c, err, sizeof err);
                if (streq(c->error.code, "IncorrectState")) {
                        /* "Snapshot is in invalid state - pending": not ready after all. */
                        r->counts->waiting_for_snapshot++;
                        lb_info(r->ctx, "%s: snapshot %s not ready for a copy yet: %s", it->volume_id,
                                it->reloc.snapshot_id, err);
                        return;
                }
                if (streq(c->error.code, "IdempotentParameterMismatch"))
                        reloc_fail(it, r->counts,
                                   "CreateVolume: the ClientToken of this source was used with other parameters "
                                   "(a copy made by another reaper or before; the next run looks again): %.200s",
                                   err);
                else
                        reloc_fail(it, r->counts, "CreateVolume failed: %.200s", err);
                lb_warn(r->ctx, "%s: %s", it->volume_id, it->reloc.error);
                return;
        }
        if (lb_ec2_parse_created_volume(c->answer.data, c->answer.len, &v) < 0) {
                reloc_fail(it, r->counts, "CreateVolume answer unreadable (the copy may exist: the next run finds it)");
                lb_warn(r->ctx, "%s: %s", it->volume_id, it->reloc.error);
                return;
        }
        it->reloc.copied = true;
        (void) lb_strscpy(it->reloc.copy_id, sizeof it->reloc.copy_id, v.id);
        (void) lb_strscpy(it->reloc.copy_state, sizeof it->reloc.copy_state, v.state);
        r->counts->copied++;
        lb_info(r->ctx, "%s: copy %s created in %s from snapshot %s", it->volume_id, v.id, v.availability_zone,
                it->reloc.snapshot_id);
        lb_volume_done(&v);
}

static void mark_result(struct reloc *r, struct lb_reap_item *it, const struct lb_query_call *c) {
        char err[600];
        if (c->result == 0 && lb_ec2_parse_return(c->answer.data, c->answer.len) >= 0) {
                it->reloc.marked = true;
                r->counts->source_marked++;
                lb_info(r->ctx, "%s: tagged relocated to %s", it->volume_id, it->reloc.copy_id);
                return;
        }
        call_error_text(c, err, sizeof err);
        reloc_fail(it, r->counts, "tagging the source relocated failed: %.200s", c->result < 0 ? err : "answer unreadable");
        lb_warn(r->ctx, "%s: %s", it->volume_id, it->reloc.error);
}

/* Step 2: which snapshots go. Never one a copy is being created from. */
static bool doomed(struct reloc *r, const struct lb_snapshot *x) {
        const char *source = lb_snapshot_lb_tag(r->s, x, LB_TAG_RELOCATED_FROM);
        if (!source || feeds_a_copy(r->w, x))
                return false;
        if (!snapshot_of(r->s, x, source)) {
                /* Its tag names another volume than the one EC2 says it was taken of: whoever
                 * changed the tag, the snapshot is not the relocation's to delete. */
                lb_warn(r->ctx, "snapshot %s was taken of %s but is tagged relocated from %.32s; left for a human",
                        x->id, x->volume_id, source);
                return false;
        }
        struct lb_reap_item *it = find_item(r->p, source);
        if (!it) {
                /* Its source is in a zone this run does not look at, or gone: then the
                 * relocation is over when a copy exists (the source was relocated and
                 * deleted), and the snapshot is all that is left of it when none does. */
                size_t n;
                if (lb_volume_list_find(r->w->volumes, source))
                        return false;
                if (find_copy(r->s, r->w, source, &n))
                        return true;
                lb_warn(r->ctx, "snapshot %s of %s: the volume is gone and no copy of it exists; left for a human",
                        x->id, source);
                return false;
        }
        switch (it->reloc.step) {
        case LB_RELOC_CLEANUP:
        case LB_RELOC_START:            /* only snapshots in error were there */
                return true;
        case LB_RELOC_MARK:
                return it->reloc.marked || !streq(x->id, it->reloc.snapshot_id);
        case LB_RELOC_WAIT_SNAPSHOT:
        case LB_RELOC_COPY:
        case LB_RELOC_WAIT_COPY:
                return !streq(x->id, it->reloc.snapshot_id);
        default:
                return false;
        }
}

static int queue_deletions(struct reloc *r) {
        for (size_t i = 0; i < r->w->snapshots->n; i++) {
                const struct lb_snapshot *x = &r->w->snapshots->items[i];
                struct lb_query_call *c;
                if (!doomed(r, x))
                        continue;
                const char *source = lb_snapshot_lb_tag(r->s, x, LB_TAG_RELOCATED_FROM);
                int q = add_call(r, CALL_DELETE, find_item(r->p, source), x, &c);
                if (q < 0)
                        return q;
                q = lb_ec2_form_delete_snapshot(&c->form, x->id);
                if (q < 0)
                        return q;
        }
        return 0;
}

static void delete_result(struct reloc *r, struct lb_reap_item *it, const struct lb_snapshot *x,
                          const struct lb_query_call *c) {
        char err[600];
        if (c->result == 0) {
                r->counts->snapshots_deleted++;
                if (it)
                        it->reloc.snapshots_deleted++;
                lb_info(r->ctx, "snapshot %s deleted", x->id);
                return;
        }
        if (streq(c->error.code, "InvalidSnapshot.NotFound"))
                return;         /* another reaper deleted it */
        call_error_text(c, err, sizeof err);
        if (it)
                reloc_fail(it, r->counts, "DeleteSnapshot %s failed: %.200s", x->id, err);
        else
                r->counts->failed++;
        lb_warn(r->ctx, "DeleteSnapshot %s failed: %s", x->id, err);
}

static void results(struct reloc *r) {
        for (size_t i = 0; i < r->n; i++) {
                const struct call_for *f = &r->what[i];
                switch (f->kind) {
                case CALL_SNAPSHOT:
                        snapshot_result(r, f->it, &r->calls[i]);
                        break;
                case CALL_COPY:
                        copy_result(r, f->it, &r->calls[i]);
                        break;
                case CALL_MARK:
                        mark_result(r, f->it, &r->calls[i]);
                        break;
                case CALL_DELETE:
                        delete_result(r, f->it, f->snap, &r->calls[i]);
                        break;
                }
        }
}

static int run_phase(struct reloc *r, int (*queue)(struct reloc *)) {
        int q = queue(r);
        if (q >= 0 && r->n > 0 && !lb_context_interrupted(r->ctx)) {
                q = perform_all(r);
                if (q >= 0)
                        results(r);
        }
        reloc_done(r);
        return q;
}

int lb_relocate_apply(struct lb_context *ctx, struct lb_ec2 *ec2, const struct lb_reloc_world *w,
                      struct lb_reap_plan *p, time_t now, struct lb_reap_relocation_counts *counts) {
        struct reloc r = { .ctx = ctx, .s = &ctx->settings, .ec2 = ec2, .w = w, .p = p, .counts = counts, .now = now };
        /* The marks before the deletions: a snapshot goes only after its source was tagged. */
        int q = run_phase(&r, queue_steps);
        if (q < 0)
                return q;
        return run_phase(&r, queue_deletions);
}

/* The group's snapshots of relocations: those tagged with the group and relocated-from. */
int lb_relocate_describe_snapshots(struct lb_context *ctx, struct lb_ec2 *ec2, struct lb_snapshot_list *ret) {
        const struct lb_settings *s = &ctx->settings;
        char group_filter[192], from_key[160], err[600];
        const char *group_values[] = { s->group };
        const char *from_values[1] = { from_key };
        if (lb_tag_filter(s, LB_TAG_GROUP, group_filter, sizeof group_filter) < 0 ||
            lb_tag_key(s, LB_TAG_RELOCATED_FROM, from_key, sizeof from_key) < 0)
                return -EINVAL;
        const struct lb_filter filters[] = {
                { group_filter, group_values, 1 },
                { "tag-key", from_values, 1 },
        };
        int q = lb_ec2_describe_snapshots(ec2, filters, ELEMENTSOF(filters), NULL, 0, ret);
        if (q < 0) {
                (void) lb_ec2_last_error_text(ec2, err, sizeof err);
                lb_err(ctx, "DescribeSnapshots failed, no relocation in this run: %s", err);
        }
        return q;
}
