/* SPDX-License-Identifier: MIT */
/* reap's relocation plan: volumes + snapshots -> which stranded volume moves where, and how far
 * each move is; and the rules for relocated sources. Pure: no AWS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/reap/reap.h"
#include "reap/relocate.h"

#define NOW ((time_t) 1795709575) /* 2026-11-26T16:12:55Z */
#define MAX_VOLS 12
#define MAX_SNAPS 6
#define MAX_TAGS 8

static struct lb_settings settings = { .tag_prefix = (char *) "lifeboat", .group = (char *) "g" };
static const struct lb_reap_options options = {
        .min_age_ms = LB_REAP_DEFAULT_MIN_AGE_MS,
        .stranded_after_ms = LB_REAP_DEFAULT_STRANDED_AFTER_MS,
        .relocate = true,
};

/* A world built on the stack: volumes and snapshots with their tags. */
struct tags {
        struct lb_tag t[MAX_TAGS];
        char keys[MAX_TAGS][64];
        char values[MAX_TAGS][64];
};

struct world {
        struct lb_volume vols[MAX_VOLS];
        struct tags vol_tags[MAX_VOLS];
        struct lb_attachment atts[MAX_VOLS];
        struct lb_snapshot snaps[MAX_SNAPS];
        struct tags snap_tags[MAX_SNAPS];
        struct lb_volume_list volumes;
        struct lb_snapshot_list snapshots;
        struct lb_reloc_world w;
        struct lb_reap_plan plan;
        struct lb_reap_relocation_counts counts;
};

static void tag(struct tags *t, struct lb_tag **list, size_t *n, const char *key, const char *value) {
        size_t i = (*n)++;
        assert_true(i < MAX_TAGS);
        assert_int_equal(lb_strscpy(t->keys[i], sizeof t->keys[i], key), 0);
        assert_int_equal(lb_strscpy(t->values[i], sizeof t->values[i], value), 0);
        t->t[i] = (struct lb_tag) { t->keys[i], t->values[i] };
        *list = t->t;
}

static struct lb_volume *volume(struct world *w, const char *id, const char *az, const char *status,
                                const char *state) {
        size_t i = w->volumes.n++;
        assert_true(i < MAX_VOLS);
        struct lb_volume *v = &w->vols[i];
        memset(v, 0, sizeof *v);
        assert_int_equal(lb_strscpy(v->id, sizeof v->id, id), 0);
        assert_int_equal(lb_strscpy(v->availability_zone, sizeof v->availability_zone, az), 0);
        assert_int_equal(lb_strscpy(v->state, sizeof v->state, status), 0);
        assert_int_equal(lb_strscpy(v->type, sizeof v->type, "gp3"), 0);
        assert_int_equal(lb_format_iso8601(NOW - 86400, v->create_time, sizeof v->create_time), 0);
        v->size_gib = 1;
        tag(&w->vol_tags[i], &v->tags, &v->n_tags, "lifeboat:group", "g");
        if (state)
                tag(&w->vol_tags[i], &v->tags, &v->n_tags, "lifeboat:state", state);
        if (streq(status, "in-use")) {
                struct lb_attachment *a = &w->atts[i];
                assert_int_equal(lb_strscpy(a->instance_id, sizeof a->instance_id, "i-00000000000000001"), 0);
                assert_int_equal(lb_strscpy(a->state, sizeof a->state, "attached"), 0);
                v->attachments = a;
                v->n_attachments = 1;
        }
        return v;
}

static void vtag(struct world *w, struct lb_volume *v, const char *key, const char *value) {
        tag(&w->vol_tags[v - w->vols], &v->tags, &v->n_tags, key, value);
}

/* A dirty volume available for two hours: stranded. */
static struct lb_volume *stranded(struct world *w, const char *id, const char *az) {
        char since[40];
        struct lb_volume *v = volume(w, id, az, "available", "dirty");
        assert_int_equal(lb_format_iso8601(NOW - 7200, since, sizeof since), 0);
        vtag(w, v, "lifeboat:available-since", since);
        vtag(w, v, "lifeboat:owner", "i-0dead0000beef0001");
        vtag(w, v, "lifeboat:fs-uuid", "0a1b2c3d-0000-4000-8000-000000000001");
        return v;
}

static struct lb_snapshot *snapshot(struct world *w, const char *id, const char *source, const char *target,
                                    const char *state, const char *start) {
        size_t i = w->snapshots.n++;
        assert_true(i < MAX_SNAPS);
        struct lb_snapshot *x = &w->snaps[i];
        memset(x, 0, sizeof *x);
        assert_int_equal(lb_strscpy(x->id, sizeof x->id, id), 0);
        assert_int_equal(lb_strscpy(x->volume_id, sizeof x->volume_id, source), 0);
        assert_int_equal(lb_strscpy(x->state, sizeof x->state, state), 0);
        assert_int_equal(lb_strscpy(x->start_time, sizeof x->start_time, start), 0);
        assert_int_equal(lb_strscpy(x->progress, sizeof x->progress, streq(state, "completed") ? "100%" : "40%"), 0);
        tag(&w->snap_tags[i], &x->tags, &x->n_tags, "lifeboat:group", "g");
        tag(&w->snap_tags[i], &x->tags, &x->n_tags, "lifeboat:relocated-from", source);
        if (target)
                tag(&w->snap_tags[i], &x->tags, &x->n_tags, "lifeboat:target-zone", target);
        return x;
}

static void world_init(struct world *w) {
        memset(w, 0, sizeof *w);
        w->volumes.items = w->vols;
        w->snapshots.items = w->snaps;
        w->w = (struct lb_reloc_world) { &w->volumes, &w->snapshots };
}

/* reap's plan over every volume, then relocation's. */
static void plan(struct world *w) {
        lb_reap_plan_done(&w->plan);
        w->counts = (struct lb_reap_relocation_counts) {};
        assert_int_equal(lb_reap_plan(&settings, &options, &w->volumes, NOW, &w->plan), 0);
        lb_reap_check_copies(&settings, &w->volumes, &w->plan);
        assert_int_equal(lb_relocate_plan(&settings, &w->w, &w->plan, &w->counts), 0);
}

static const struct lb_reap_item *item(struct world *w, const char *id) {
        for (size_t i = 0; i < w->plan.n; i++)
                if (streq(w->plan.items[i].volume_id, id))
                        return &w->plan.items[i];
        fail_msg("no item %s", id);
        return NULL;
}

static void world_done(struct world *w) {
        lb_reap_plan_done(&w->plan);
}

/* ---- where to ---- */

static void test_moves_to_the_zone_of_the_group_and_spreads(void **state) {
        struct world w;
        world_init(&w);
        /* The group: three instances in us-east-1a, one in us-east-1c, none in us-east-1b. */
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000a2", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000a3", "us-east-1a", "in-use", "flushed");
        volume(&w, "vol-000000000000000c1", "us-east-1c", "in-use", "dirty");
        stranded(&w, "vol-000000000000000b1", "us-east-1b");
        stranded(&w, "vol-000000000000000b2", "us-east-1b");
        stranded(&w, "vol-000000000000000b3", "us-east-1b");
        plan(&w);

        /* The zone with the most first, then in proportion: 3/1 > 1/1, 3/2 > 1/1, 3/3 = 1/1 and
         * fewer relocations go to us-east-1c. */
        const char *want[] = { "us-east-1a", "us-east-1a", "us-east-1c" };
        const char *ids[] = { "vol-000000000000000b1", "vol-000000000000000b2", "vol-000000000000000b3" };
        for (size_t i = 0; i < 3; i++) {
                const struct lb_reap_item *it = item(&w, ids[i]);
                assert_int_equal(it->verdict, LB_REAP_RELOCATE);
                assert_int_equal(it->reloc.step, LB_RELOC_START);
                assert_string_equal(it->reloc.target_zone, want[i]);
                assert_int_equal(lb_reap_item_category(it), LB_REAP_CAT_RELOCATING);
                assert_non_null(strstr(it->reason, "no instance in us-east-1b recovered it; moving it to "));
        }
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_OK);
        assert_int_equal(w.counts.nowhere_to_go, 0);

        /* Relocations under way count: with two going to us-east-1a already (their snapshots say
         * so), the next goes to us-east-1c. */
        world_done(&w);
        world_init(&w);
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000a2", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000c1", "us-east-1c", "in-use", "dirty");
        stranded(&w, "vol-000000000000000b1", "us-east-1b");
        stranded(&w, "vol-000000000000000b2", "us-east-1b");
        stranded(&w, "vol-000000000000000b9", "us-east-1b");
        snapshot(&w, "snap-00000000000000001", "vol-000000000000000b1", "us-east-1a", "pending", "2026-11-26T16:00:00.000Z");
        snapshot(&w, "snap-00000000000000002", "vol-000000000000000b2", "us-east-1a", "pending", "2026-11-26T16:00:00.000Z");
        plan(&w);
        assert_string_equal(item(&w, "vol-000000000000000b9")->reloc.target_zone, "us-east-1c");
        assert_int_equal(w.counts.waiting_for_snapshot, 2);
        world_done(&w);
}

static void test_not_moved(void **state) {
        struct world w;
        world_init(&w);
        /* Its own zone still has an instance of the group: that one recovers it when it boots. */
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000b1", "us-east-1b", "in-use", "dirty");
        stranded(&w, "vol-000000000000000b2", "us-east-1b");
        plan(&w);
        const struct lb_reap_item *it = item(&w, "vol-000000000000000b2");
        assert_int_equal(it->verdict, LB_REAP_STRANDED);
        assert_int_equal(it->reloc.step, LB_RELOC_NONE);
        assert_non_null(strstr(it->reason, "not moved: 1 of the group's volumes are in use in us-east-1b"));
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_ATTENTION);
        world_done(&w);

        /* No instance anywhere: nowhere to go, still stranded. */
        world_init(&w);
        stranded(&w, "vol-000000000000000b2", "us-east-1b");
        volume(&w, "vol-000000000000000a9", "us-east-1a", "available", "flushed");
        plan(&w);
        it = item(&w, "vol-000000000000000b2");
        assert_int_equal(it->verdict, LB_REAP_STRANDED);
        assert_non_null(strstr(it->reason, "nowhere to move it"));
        assert_int_equal(w.counts.nowhere_to_go, 1);
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_ATTENTION);
        world_done(&w);

        /* Not stranded yet, or attached: nothing to move. */
        world_init(&w);
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000b3", "us-east-1b", "available", "dirty");
        plan(&w);
        assert_int_equal(item(&w, "vol-000000000000000b3")->verdict, LB_REAP_KEEP);
        assert_int_equal(item(&w, "vol-000000000000000b3")->reloc.step, LB_RELOC_NONE);
        world_done(&w);
}

/* ---- how far ---- */

static void test_steps(void **state) {
        struct world w;
        world_init(&w);
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000c1", "us-east-1c", "in-use", "dirty");
        stranded(&w, "vol-000000000000000b1", "us-east-1b");
        /* Two reapers took a snapshot each: the older is kept, whatever the ids say, and the
         * copy goes where its tag says (not where a new choice would put it). */
        snapshot(&w, "snap-0000000000000000a", "vol-000000000000000b1", "us-east-1a", "pending", "2026-11-26T16:00:01.000Z");
        snapshot(&w, "snap-0000000000000000b", "vol-000000000000000b1", "us-east-1c", "pending", "2026-11-26T16:00:00.500Z");
        plan(&w);
        const struct lb_reap_item *it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->verdict, LB_REAP_RELOCATE);
        assert_int_equal(it->reloc.step, LB_RELOC_WAIT_SNAPSHOT);
        assert_string_equal(it->reloc.snapshot_id, "snap-0000000000000000b");
        assert_string_equal(it->reloc.target_zone, "us-east-1c");
        assert_string_equal(it->reloc.snapshot_progress, "40%");
        assert_int_equal(w.counts.waiting_for_snapshot, 1);

        /* Completed: copy it. */
        strcpy(w.snaps[1].state, "completed");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->reloc.step, LB_RELOC_COPY);
        assert_string_equal(it->reloc.snapshot_id, "snap-0000000000000000b");

        /* A snapshot in error is never kept. */
        strcpy(w.snaps[1].state, "error");
        plan(&w);
        assert_string_equal(item(&w, "vol-000000000000000b1")->reloc.snapshot_id, "snap-0000000000000000a");
        strcpy(w.snaps[1].state, "completed");

        /* The copy is being created: wait (from the snapshot it is made from). */
        struct lb_volume *copy = volume(&w, "vol-000000000000000c9", "us-east-1c", "creating", "dirty");
        vtag(&w, copy, "lifeboat:relocated-from", "vol-000000000000000b1");
        strcpy(copy->snapshot_id, "snap-0000000000000000b");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->reloc.step, LB_RELOC_WAIT_COPY);
        assert_string_equal(it->reloc.copy_id, "vol-000000000000000c9");
        assert_int_equal(w.counts.waiting_for_copy, 1);
        /* The copy itself is just a dirty volume being created. */
        assert_int_equal(item(&w, "vol-000000000000000c9")->verdict, LB_REAP_KEEP);

        /* Available: mark the source. */
        strcpy(copy->state, "available");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->reloc.step, LB_RELOC_MARK);
        assert_string_equal(it->reloc.target_zone, "us-east-1c");
        assert_non_null(strstr(it->reason, "moved to us-east-1c: copy vol-000000000000000c9 is available"));

        /* A volume that only carries the tag, made from a snapshot of another volume: the real
         * copy is still the one waited for, and it alone lets the source be marked. */
        struct lb_volume *forged = volume(&w, "vol-000000000000000c0", "us-east-1c", "available", "dirty");
        vtag(&w, forged, "lifeboat:relocated-from", "vol-000000000000000b1");
        strcpy(forged->snapshot_id, "snap-0000000000000000f");
        strcpy(copy->state, "creating");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->reloc.step, LB_RELOC_WAIT_COPY);
        assert_string_equal(it->reloc.copy_id, "vol-000000000000000c9");
        assert_false(it->needs_human);
        strcpy(copy->state, "available");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->reloc.step, LB_RELOC_MARK);
        assert_string_equal(it->reloc.copy_id, "vol-000000000000000c9");
        /* EC2 says the snapshot was taken of another volume (its relocated-from tag was
         * rewritten): no copy is one, the source is not marked, a human is asked. */
        strcpy(w.snaps[1].volume_id, "vol-000000000000000b9");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->reloc.step, LB_RELOC_WAIT_COPY);
        assert_true(it->needs_human);
        assert_non_null(strstr(it->reason, "was made from snap-0000000000000000f, no snapshot of it"));
        assert_int_equal(lb_reap_item_category(it), LB_REAP_CAT_STRANDED);
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_ATTENTION);
        strcpy(w.snaps[1].volume_id, "vol-000000000000000b1");
        /* A blank volume with the tag is no copy at all. */
        forged->snapshot_id[0] = '\0';
        strcpy(copy->state, "creating");
        plan(&w);
        assert_string_equal(item(&w, "vol-000000000000000b1")->reloc.copy_id, "vol-000000000000000c9");

        /* A copy in error needs a human: the relocation failed, and it is as stranded as before
         * (exit 4, the alarm), not a passing failure. */
        strcpy(copy->state, "error");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_true(it->reloc.failed);
        assert_int_equal(w.counts.failed, 1);
        assert_int_equal(lb_reap_item_category(it), LB_REAP_CAT_STRANDED);
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_ATTENTION);
        world_done(&w);
}

static void test_only_snapshots_in_error(void **state) {
        struct world w;
        world_init(&w);
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        stranded(&w, "vol-000000000000000b1", "us-east-1b");
        snapshot(&w, "snap-0000000000000000e", "vol-000000000000000b1", "us-east-1a", "error", "2026-11-26T16:00:00.000Z");
        plan(&w);
        /* Starts over (the one in error goes in the same run). */
        assert_int_equal(item(&w, "vol-000000000000000b1")->reloc.step, LB_RELOC_START);

        /* Not stranded (recovered and released meanwhile): the snapshot just goes. */
        world_done(&w);
        world_init(&w);
        volume(&w, "vol-000000000000000a1", "us-east-1a", "in-use", "dirty");
        volume(&w, "vol-000000000000000b1", "us-east-1b", "in-use", "dirty");
        snapshot(&w, "snap-0000000000000000e", "vol-000000000000000b1", "us-east-1a", "completed", "2026-11-26T16:00:00.000Z");
        plan(&w);
        const struct lb_reap_item *it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->verdict, LB_REAP_KEEP);
        assert_int_equal(it->reloc.step, LB_RELOC_CLEANUP);
        world_done(&w);
}

/* ---- relocated sources ---- */

static void test_relocated_source(void **state) {
        char at[40];
        struct world w;
        world_init(&w);
        struct lb_volume *src = volume(&w, "vol-000000000000000b1", "us-east-1b", "available", "relocated");
        vtag(&w, src, "lifeboat:relocated-to", "vol-000000000000000a9");
        assert_int_equal(lb_format_iso8601(NOW - 3600, at, sizeof at), 0);
        vtag(&w, src, "lifeboat:relocated-at", at);
        struct lb_volume *copy = volume(&w, "vol-000000000000000a9", "us-east-1a", "in-use", "dirty");
        vtag(&w, copy, "lifeboat:relocated-from", "vol-000000000000000b1");
        strcpy(copy->snapshot_id, "snap-0000000000000000a");
        snapshot(&w, "snap-0000000000000000a", "vol-000000000000000b1", "us-east-1a", "completed", "2026-11-26T16:00:00.000Z");
        plan(&w);
        const struct lb_reap_item *it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->state, LB_VOL_RELOCATED);
        assert_int_equal(it->verdict, LB_REAP_DELETE);
        assert_string_equal(it->reason, "relocated to vol-000000000000000a9 1h0m ago");
        assert_int_equal(it->age_s, 3600);
        assert_int_equal(it->reloc.step, LB_RELOC_CLEANUP);  /* the snapshot left goes */
        assert_string_equal(lb_vol_state_to_string(it->state), "relocated");

        /* Its copy must exist and name it: else kept, for a human (no boot claims it). */
        strcpy(copy->id, "vol-000000000000000a8");
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->verdict, LB_REAP_KEEP);
        assert_non_null(strstr(it->reason, "which does not exist"));
        assert_int_equal(lb_reap_item_category(it), LB_REAP_CAT_STRANDED);
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_ATTENTION);
        strcpy(copy->id, "vol-000000000000000a9");
        copy->snapshot_id[0] = '\0';          /* a blank volume is no copy */
        plan(&w);
        assert_int_equal(item(&w, "vol-000000000000000b1")->verdict, LB_REAP_KEEP);
        strcpy(copy->snapshot_id, "snap-0000000000000000a");
        strcpy(copy->id, "vol-000000000000000a9");
        assert_string_equal(copy->tags[2].key, "lifeboat:relocated-from");
        copy->tags[2].value = (char *) "vol-000000000000000b2";
        plan(&w);
        assert_int_equal(item(&w, "vol-000000000000000b1")->verdict, LB_REAP_KEEP);
        copy->tags[2].value = w.vol_tags[copy - w.vols].values[2];
        plan(&w);
        assert_int_equal(item(&w, "vol-000000000000000b1")->verdict, LB_REAP_DELETE);
        /* Copies unknown (DescribeVolumes of the region failed): kept. */
        lb_reap_check_copies(&settings, NULL, &w.plan);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->verdict, LB_REAP_KEEP);
        assert_non_null(strstr(it->reason, "could not be checked"));

        /* The copy, recovered and drained: deleted only once its source is gone (else the source
         * would lose the copy it must see before it goes). */
        world_done(&w);
        world_init(&w);
        src = volume(&w, "vol-000000000000000b1", "us-east-1b", "available", "relocated");
        copy = volume(&w, "vol-000000000000000a9", "us-east-1a", "available", "flushed");
        vtag(&w, copy, "lifeboat:relocated-from", "vol-000000000000000b1");
        assert_int_equal(lb_format_iso8601(NOW - 3600, at, sizeof at), 0);
        vtag(&w, copy, "lifeboat:flushed-at", at);
        plan(&w);
        it = item(&w, "vol-000000000000000a9");
        assert_string_equal(it->reloc.source_id, "vol-000000000000000b1");
        assert_int_equal(it->verdict, LB_REAP_KEEP);
        assert_string_equal(it->reason, "flushed 1h0m ago, but a copy of vol-000000000000000b1, which still exists: "
                                        "kept until it is deleted");
        strcpy(src->id, "vol-000000000000000b7");     /* the source is gone */
        plan(&w);
        assert_int_equal(item(&w, "vol-000000000000000a9")->verdict, LB_REAP_DELETE);

        /* Young: kept until min-age. */
        world_done(&w);
        world_init(&w);
        src = volume(&w, "vol-000000000000000b1", "us-east-1b", "available", "relocated");
        vtag(&w, src, "lifeboat:relocated-to", "vol-000000000000000a9");
        assert_int_equal(lb_format_iso8601(NOW - 60, at, sizeof at), 0);
        vtag(&w, src, "lifeboat:relocated-at", at);
        plan(&w);
        it = item(&w, "vol-000000000000000b1");
        assert_int_equal(it->verdict, LB_REAP_KEEP);
        assert_string_equal(it->reason, "too young: relocated to vol-000000000000000a9 1m0s ago (min age 10min)");
        world_done(&w);

        /* Without relocated-to (or with a value that is no volume id), or relocated-at: kept. */
        world_init(&w);
        src = volume(&w, "vol-000000000000000b1", "us-east-1b", "available", "relocated");
        vtag(&w, src, "lifeboat:relocated-to", "somewhere");
        struct lb_volume *b2 = volume(&w, "vol-000000000000000b2", "us-east-1b", "available", "relocated");
        vtag(&w, b2, "lifeboat:relocated-to", "vol-000000000000000a9");
        plan(&w);
        assert_string_equal(item(&w, "vol-000000000000000b1")->reason, "relocated, but no valid relocated-to tag");
        assert_string_equal(item(&w, "vol-000000000000000b2")->reason,
                            "relocated to vol-000000000000000a9, but no relocated-at tag");
        /* Nothing lifeboat does moves them on: stranded, for the alarm. */
        assert_int_equal(lb_reap_item_category(item(&w, "vol-000000000000000b1")), LB_REAP_CAT_STRANDED);
        assert_int_equal(lb_reap_item_category(item(&w, "vol-000000000000000b2")), LB_REAP_CAT_STRANDED);
        assert_int_equal(lb_reap_exit_code(&w.plan), LB_EXIT_ATTENTION);
        world_done(&w);
}

static void test_category_and_token(void **state) {
        struct lb_reap_item it = { .verdict = LB_REAP_RELOCATE, .reloc.step = LB_RELOC_START };
        assert_int_equal(lb_reap_item_category(&it), LB_REAP_CAT_RELOCATING);
        it.reloc.failed = true;   /* could not even take the snapshot: as stranded as before */
        assert_int_equal(lb_reap_item_category(&it), LB_REAP_CAT_STRANDED);
        it.reloc.step = LB_RELOC_COPY;
        assert_int_equal(lb_reap_item_category(&it), LB_REAP_CAT_RELOCATING);
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_RELOCATING), "relocating");
        assert_string_equal(lb_reloc_step_to_string(LB_RELOC_WAIT_SNAPSHOT), "wait-for-snapshot");
        assert_string_equal(lb_reloc_step_to_string(LB_RELOC_CLEANUP), "delete-snapshots");
        assert_null(lb_reloc_step_to_string(LB_RELOC_NONE));
        assert_null(lb_reloc_step_to_string(_LB_RELOC_STEP_MAX));

        struct lb_reap_report r = { .relocations.failed = 1 };
        assert_int_equal(lb_reap_report_exit_code(&r), LB_EXIT_PARTIAL);

        char token[80];
        assert_int_equal(lb_relocate_client_token("vol-0123456789abcdef0", token, sizeof token), 0);
        assert_string_equal(token, "lifeboat-relocate-vol-0123456789abcdef0");
        assert_true(strlen(token) <= 64);
        assert_int_equal(lb_relocate_client_token("snap-0123456789abcdef0", token, sizeof token), -EINVAL);
        assert_int_equal(lb_relocate_client_token("vol-0123456789abcdef0", token, 20), -ENAMETOOLONG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_moves_to_the_zone_of_the_group_and_spreads),
                cmocka_unit_test(test_not_moved),
                cmocka_unit_test(test_steps),
                cmocka_unit_test(test_only_snapshots_in_error),
                cmocka_unit_test(test_relocated_source),
                cmocka_unit_test(test_category_and_token),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
