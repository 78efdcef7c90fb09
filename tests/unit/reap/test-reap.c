/* SPDX-License-Identifier: MIT */
/* reap's plan: volumes + settings + options + now -> what to delete, keep and report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lifeboat/aws/ec2.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/parse-util.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/reap/reap.h"

#define NOW ((time_t) 1795709575) /* 2026-11-26T16:12:55Z */
#define MINUTE (60)

static struct lb_settings settings = { .tag_prefix = (char *) "lifeboat", .group = (char *) "g" };
static const struct lb_reap_options defaults = {
        .min_age_ms = LB_REAP_DEFAULT_MIN_AGE_MS,
        .stranded_after_ms = LB_REAP_DEFAULT_STRANDED_AFTER_MS,
};

/* A volume built on the stack: up to 6 tags, at most one attachment. */
struct test_volume {
        struct lb_volume v;
        struct lb_tag tags[6];
        char keys[6][64];
        char values[6][128];
        struct lb_attachment att;
};

static void tv_init(struct test_volume *t, const char *id, const char *az, const char *status, time_t created) {
        memset(t, 0, sizeof *t);
        assert_int_equal(lb_strscpy(t->v.id, sizeof t->v.id, id), 0);
        assert_int_equal(lb_strscpy(t->v.availability_zone, sizeof t->v.availability_zone, az), 0);
        assert_int_equal(lb_strscpy(t->v.state, sizeof t->v.state, status), 0);
        assert_int_equal(lb_format_iso8601(created, t->v.create_time, sizeof t->v.create_time), 0);
        t->v.tags = t->tags;
        t->v.size_gib = 1;
}

static void tv_tag(struct test_volume *t, const char *key, const char *value) {
        size_t i = t->v.n_tags++;
        assert_true(i < ELEMENTSOF(t->tags));
        assert_int_equal(lb_strscpy(t->keys[i], sizeof t->keys[i], key), 0);
        assert_int_equal(lb_strscpy(t->values[i], sizeof t->values[i], value), 0);
        t->tags[i] = (struct lb_tag) { t->keys[i], t->values[i] };
}

static void tv_tag_time(struct test_volume *t, const char *key, time_t when) {
        char buf[40];
        assert_int_equal(lb_format_iso8601(when, buf, sizeof buf), 0);
        tv_tag(t, key, buf);
}

static void tv_attach(struct test_volume *t, const char *instance_id) {
        assert_int_equal(lb_strscpy(t->att.instance_id, sizeof t->att.instance_id, instance_id), 0);
        assert_int_equal(lb_strscpy(t->att.device, sizeof t->att.device, "/dev/sdf"), 0);
        assert_int_equal(lb_strscpy(t->att.state, sizeof t->att.state, "attached"), 0);
        t->v.attachments = &t->att;
        t->v.n_attachments = 1;
        assert_int_equal(lb_strscpy(t->v.state, sizeof t->v.state, "in-use"), 0);
}

/* A group volume in a lifeboat state. */
static void tv_group(struct test_volume *t, const char *id, const char *state) {
        tv_init(t, id, "us-east-1a", "available", NOW - 24 * 3600);
        tv_tag(t, "lifeboat:group", "g");
        if (state)
                tv_tag(t, "lifeboat:state", state);
}

static struct lb_reap_item classify(const struct test_volume *t, const struct lb_reap_options *o) {
        struct lb_reap_item it;
        memset(&it, 0xaa, sizeof it);
        assert_int_equal(lb_reap_classify(&settings, o, &t->v, NOW, &it), 0);
        return it;
}

static void test_flushed_old_is_deleted(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 25 * MINUTE);
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_DELETE);
        assert_int_equal(it.state, LB_VOL_FLUSHED);
        assert_int_equal(it.age_s, 25 * MINUTE);
        assert_string_equal(it.since, "2026-11-26T15:47:55Z");
        assert_string_equal(it.reason, "flushed 25m0s ago");
        assert_int_equal(it.mark, LB_REAP_MARK_NONE);
        assert_int_equal(it.outcome, LB_REAP_PENDING);
        assert_int_equal(lb_reap_item_category(&it), LB_REAP_CAT_WOULD_DELETE);
        assert_string_equal(it.volume_id, "vol-00000000000000001");
        assert_string_equal(it.availability_zone, "us-east-1a");
        assert_string_equal(it.status, "available");
        assert_string_equal(it.error, "");
}

static void test_flushed_min_age_boundary(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 10 * MINUTE);
        assert_int_equal(classify(&t, &defaults).verdict, LB_REAP_DELETE); /* exactly min age: old enough */

        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 10 * MINUTE + 1);
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_string_equal(it.reason, "too young: flushed 9m59s ago (min age 10min)");

        /* Sub-second minimum ages round up: 1500 ms needs 2 s. */
        struct lb_reap_options o = defaults;
        o.min_age_ms = 1500;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 1);
        assert_int_equal(classify(&t, &o).verdict, LB_REAP_KEEP);
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 2);
        assert_int_equal(classify(&t, &o).verdict, LB_REAP_DELETE);

        /* --min-age 0 deletes what was flushed this very second. */
        o.min_age_ms = 0;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW);
        assert_int_equal(classify(&t, &o).verdict, LB_REAP_DELETE);
}

static void test_flushed_without_usable_flushed_at_is_kept(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000001", "flushed");
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_string_equal(it.reason, "no flushed-at tag");
        assert_int_equal(it.age_s, -1);
        assert_string_equal(it.since, "");

        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag(&t, "lifeboat:flushed-at", "yesterday");
        it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_string_equal(it.reason, "unreadable flushed-at tag 'yesterday'");

        /* From a clock ahead of ours: not old, whatever the minimum age. */
        struct lb_reap_options o = defaults;
        o.min_age_ms = 0;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW + 90);
        it = classify(&t, &o);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_string_equal(it.reason, "too young: flushed-at is 1m30s in the future");

        /* Fractional seconds, as EC2 writes them, are fine. */
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag(&t, "lifeboat:flushed-at", "2026-11-26T15:00:00.123Z");
        it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_DELETE);
        assert_int_equal(it.age_s, 72 * MINUTE + 55);
}

static void test_attached_volumes_are_kept(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 5 * 3600);
        tv_attach(&t, "i-0123456789abcdef0");
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_string_equal(it.reason, "attached to i-0123456789abcdef0 (attached)");
        assert_string_equal(it.status, "in-use");
        assert_int_equal(it.mark, LB_REAP_MARK_NONE);

        /* An attachment on a volume that still says "available" counts as attached. */
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 5 * 3600);
        tv_attach(&t, "i-0123456789abcdef0");
        assert_int_equal(lb_strscpy(t.v.state, sizeof t.v.state, "available"), 0);
        assert_int_equal(classify(&t, &defaults).verdict, LB_REAP_KEEP);

        /* Neither available nor in use: left alone. */
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 5 * 3600);
        assert_int_equal(lb_strscpy(t.v.state, sizeof t.v.state, "creating"), 0);
        it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_string_equal(it.reason, "status creating");
}

static void test_dirty_first_seen_gets_marked(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000002", "dirty");
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_int_equal(it.mark, LB_REAP_MARK_SET);
        assert_string_equal(it.since, "2026-11-26T16:12:55Z");
        assert_int_equal(it.age_s, 0);
        assert_string_equal(it.reason, "dirty, waiting for recovery (first seen available now; stranded after 1h)");

        /* An unreadable or future mark starts over. */
        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_tag(&t, "lifeboat:available-since", "garbage");
        it = classify(&t, &defaults);
        assert_int_equal(it.mark, LB_REAP_MARK_SET);
        assert_string_equal(it.since, "2026-11-26T16:12:55Z");

        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_tag_time(&t, "lifeboat:available-since", NOW + 3600);
        it = classify(&t, &defaults);
        assert_int_equal(it.mark, LB_REAP_MARK_SET);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_int_equal(it.age_s, 0);
}

static void test_dirty_stranded_after(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_tag_time(&t, "lifeboat:available-since", NOW - 59 * MINUTE);
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_int_equal(it.mark, LB_REAP_MARK_NONE);
        assert_int_equal(it.age_s, 59 * MINUTE);
        assert_string_equal(it.reason, "dirty, waiting for recovery (available for 59m0s; stranded after 1h)");

        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_tag_time(&t, "lifeboat:available-since", NOW - 2 * 3600 - 5 * MINUTE);
        it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_STRANDED);
        assert_int_equal(it.mark, LB_REAP_MARK_NONE);
        assert_string_equal(it.reason, "dirty and available for 2h5m: no instance in us-east-1a recovered it");
        assert_int_equal(lb_reap_item_category(&it), LB_REAP_CAT_STRANDED);

        /* Never deleted, however old: */
        struct lb_reap_options o = defaults;
        o.delete_unused = true;
        o.min_age_ms = 0;
        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 30 * 86400);
        tv_tag_time(&t, "lifeboat:available-since", NOW - 30 * 86400);
        assert_int_equal(classify(&t, &o).verdict, LB_REAP_STRANDED);
}

static void test_in_use_clears_the_mark(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_tag_time(&t, "lifeboat:available-since", NOW - 3 * 3600);
        tv_attach(&t, "i-0123456789abcdef0");
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_int_equal(it.mark, LB_REAP_MARK_CLEAR);

        tv_group(&t, "vol-00000000000000002", "dirty");
        tv_attach(&t, "i-0123456789abcdef0");
        assert_int_equal(classify(&t, &defaults).mark, LB_REAP_MARK_NONE);
}

static void test_quarantined_is_reported(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000003", "quarantined");
        tv_tag(&t, "lifeboat:reason", "blkid: ambivalent probe (two filesystems)");
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_QUARANTINED);
        assert_string_equal(it.reason, "blkid: ambivalent probe (two filesystems)");
        assert_int_equal(lb_reap_item_category(&it), LB_REAP_CAT_QUARANTINED);

        /* Still attached (the detach failed): a human is still needed. */
        tv_attach(&t, "i-0123456789abcdef0");
        assert_int_equal(classify(&t, &defaults).verdict, LB_REAP_QUARANTINED);

        tv_group(&t, "vol-00000000000000003", "quarantined");
        it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_QUARANTINED);
        assert_string_equal(it.reason, "no reason tag");
}

static void test_unmarked(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000004", NULL);
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_UNUSED);
        assert_int_equal(it.state, LB_VOL_UNMARKED);
        assert_int_equal(it.age_s, 24 * 3600);
        assert_string_equal(it.reason, "never used (no state tag), created 1d0h ago; --delete-unused deletes it");

        struct lb_reap_options o = defaults;
        o.delete_unused = true;
        it = classify(&t, &o);
        assert_int_equal(it.verdict, LB_REAP_DELETE);
        assert_string_equal(it.reason, "never used (no state tag), created 1d0h ago");

        tv_init(&t, "vol-00000000000000004", "us-east-1b", "available", NOW - 3 * MINUTE);
        tv_tag(&t, "lifeboat:group", "g");
        it = classify(&t, &o);
        assert_int_equal(it.verdict, LB_REAP_UNUSED);
        assert_string_equal(it.reason, "never used, too young: created 3m0s ago (min age 10min)");

        t.v.create_time[0] = '\0';
        it = classify(&t, &o);
        assert_int_equal(it.verdict, LB_REAP_UNUSED);
        assert_int_equal(it.age_s, -1);
}

static void test_unknown_state_is_kept(void **state) {
        struct test_volume t;
        tv_group(&t, "vol-00000000000000005", "recovering");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 5 * 3600);
        struct lb_reap_item it = classify(&t, &defaults);
        assert_int_equal(it.verdict, LB_REAP_KEEP);
        assert_int_equal(it.state, LB_VOL_UNKNOWN);
        assert_string_equal(it.reason, "unknown state tag 'recovering'");
}

static void test_tag_prefix(void **state) {
        struct lb_settings other = { .tag_prefix = (char *) "acme", .group = (char *) "g" };
        struct test_volume t;
        tv_group(&t, "vol-00000000000000001", "flushed");
        tv_tag_time(&t, "lifeboat:flushed-at", NOW - 5 * 3600);
        struct lb_reap_item it;
        /* Under the prefix "acme" this volume carries no state at all. */
        assert_int_equal(lb_reap_classify(&other, &defaults, &t.v, NOW, &it), 0);
        assert_int_equal(it.state, LB_VOL_UNMARKED);
        assert_int_equal(it.verdict, LB_REAP_UNUSED);

        tv_tag(&t, "acme:state", "flushed");
        tv_tag_time(&t, "acme:flushed-at", NOW - 20 * MINUTE);
        assert_int_equal(lb_reap_classify(&other, &defaults, &t.v, NOW, &it), 0);
        assert_int_equal(it.verdict, LB_REAP_DELETE);
        assert_int_equal(it.age_s, 20 * MINUTE);
}

static void test_plan_sorted_and_exit_codes(void **state) {
        struct test_volume t[4];
        tv_group(&t[0], "vol-0000000000000000c", "flushed");
        tv_tag_time(&t[0], "lifeboat:flushed-at", NOW - 3600);
        tv_group(&t[1], "vol-0000000000000000a", "flushed");
        tv_tag_time(&t[1], "lifeboat:flushed-at", NOW - 60);
        tv_init(&t[2], "vol-00000000000000001", "us-east-1b", "available", NOW);
        tv_tag(&t[2], "lifeboat:group", "g");
        tv_tag(&t[2], "lifeboat:state", "dirty");
        tv_group(&t[3], "vol-0000000000000000b", NULL);

        struct lb_volume items[4];
        for (size_t i = 0; i < 4; i++)
                items[i] = t[i].v;
        struct lb_volume_list list = { items, 4 };
        struct lb_reap_plan p = {};
        assert_int_equal(lb_reap_plan(&settings, &defaults, &list, NOW, &p), 0);
        assert_int_equal(p.n, 4);
        assert_string_equal(p.items[0].volume_id, "vol-0000000000000000a");
        assert_string_equal(p.items[1].volume_id, "vol-0000000000000000b");
        assert_string_equal(p.items[2].volume_id, "vol-0000000000000000c");
        assert_string_equal(p.items[3].volume_id, "vol-00000000000000001"); /* us-east-1b after 1a */
        assert_int_equal(p.items[0].verdict, LB_REAP_KEEP);
        assert_int_equal(p.items[1].verdict, LB_REAP_UNUSED);
        assert_int_equal(p.items[2].verdict, LB_REAP_DELETE);
        assert_int_equal(p.items[3].mark, LB_REAP_MARK_SET);

        /* Nothing needs a human, nothing failed (dry run: deletions pending). */
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_OK);

        p.items[2].outcome = LB_REAP_SKIPPED;
        assert_int_equal(lb_reap_item_category(&p.items[2]), LB_REAP_CAT_SKIPPED);
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_OK);
        p.items[2].outcome = LB_REAP_DELETED;
        assert_int_equal(lb_reap_item_category(&p.items[2]), LB_REAP_CAT_DELETED);
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_OK);

        p.items[3].mark_failed = true;
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_PARTIAL);
        p.items[3].mark_failed = false;
        p.items[2].outcome = LB_REAP_FAILED;
        assert_int_equal(lb_reap_item_category(&p.items[2]), LB_REAP_CAT_FAILED);
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_PARTIAL);

        /* Attention wins over a failure. */
        p.items[0].verdict = LB_REAP_QUARANTINED;
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_ATTENTION);
        p.items[0].verdict = LB_REAP_STRANDED;
        p.items[2].outcome = LB_REAP_DELETED;
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_ATTENTION);
        lb_reap_plan_done(&p);
        assert_null(p.items);

        struct lb_volume_list empty = {};
        assert_int_equal(lb_reap_plan(&settings, &defaults, &empty, NOW, &p), 0);
        assert_int_equal(p.n, 0);
        assert_int_equal(lb_reap_exit_code(&p), LB_EXIT_OK);
        lb_reap_plan_done(&p);
}

static void test_category_names(void **state) {
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_DELETED), "deleted");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_WOULD_DELETE), "would-delete");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_SKIPPED), "skipped");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_FAILED), "failed");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_KEPT), "kept");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_STRANDED), "stranded");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_QUARANTINED), "quarantined");
        assert_string_equal(lb_reap_category_to_string(LB_REAP_CAT_UNUSED), "unused");
        assert_string_equal(lb_reap_category_to_string(_LB_REAP_CAT_MAX), "unknown");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_flushed_old_is_deleted),
                cmocka_unit_test(test_flushed_min_age_boundary),
                cmocka_unit_test(test_flushed_without_usable_flushed_at_is_kept),
                cmocka_unit_test(test_attached_volumes_are_kept),
                cmocka_unit_test(test_dirty_first_seen_gets_marked),
                cmocka_unit_test(test_dirty_stranded_after),
                cmocka_unit_test(test_in_use_clears_the_mark),
                cmocka_unit_test(test_quarantined_is_reported),
                cmocka_unit_test(test_unmarked),
                cmocka_unit_test(test_unknown_state_is_kept),
                cmocka_unit_test(test_tag_prefix),
                cmocka_unit_test(test_plan_sorted_and_exit_codes),
                cmocka_unit_test(test_category_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
