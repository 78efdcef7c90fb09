/* SPDX-License-Identifier: MIT */
/* lifeboat watch: the deadline, the state transitions, watch.json and its status text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/watch/watch.h"

#define NOW_S 1795709575 /* 2026-11-26T16:12:55Z */
#define NOW_MS ((uint64_t) NOW_S * 1000u)

/* ---- deadline ---- */

static void test_budget_spot(void **state) {
        /* 120 s of warning, 10 s margin, 100 s timeout: the timeout is shorter. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S + 120, NOW_MS, 100000, 10000), 100000);
        /* 60 s left: 50 s to flush. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S + 60, NOW_MS, 100000, 10000), 50000);
        /* Sub-second: now is 500 ms into the second. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S + 60, NOW_MS + 500, 100000, 10000),
                         49500);
        /* Inside the margin, or past: nothing left. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S + 5, NOW_MS, 100000, 10000), 0);
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S + 10, NOW_MS, 100000, 10000), 0);
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S - 30, NOW_MS, 100000, 10000), 0);
        /* No margin. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, NOW_S + 3, NOW_MS, 100000, 0), 3000);
        /* A margin larger than the epoch time does not wrap around. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, 5, 1000, 100000, 10000), 0);
        /* A notice without a time: the timeout. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SPOT, 0, NOW_MS, 100000, 10000), 100000);
}

static void test_budget_other_triggers(void **state) {
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_ASG, 0, NOW_MS, 100000, 10000), 100000);
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_SIGNAL, 0, NOW_MS, 7000, 10000), 7000);
        /* The notice time plays no part for these. */
        assert_int_equal(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_ASG, NOW_S + 5, NOW_MS, 100000, 10000), 100000);
        assert_true(lb_watch_flush_budget_ms(LB_WATCH_TRIGGER_REBALANCE, NOW_S, NOW_MS, 100000, 10000) == UINT64_MAX);
}

/* ---- the own volume ---- */

static void test_own_next(void **state) {
        const enum lb_watch_own_state D = LB_WATCH_OWN_DIRTY, DR = LB_WATCH_OWN_DRAINING, F = LB_WATCH_OWN_FLUSHED,
                                      U = LB_WATCH_OWN_UNDRAINED;
        static const struct {
                enum lb_watch_own_state cur;
                bool ending, past, empty;
                enum lb_watch_own_state next;
        } cases[] = {
                /* idle: an empty volume is not flushed, chunks are normal */
                { LB_WATCH_OWN_DIRTY, false, false, true, LB_WATCH_OWN_DIRTY },
                { LB_WATCH_OWN_DIRTY, false, false, false, LB_WATCH_OWN_DIRTY },
                /* the end: drain, then flushed */
                { LB_WATCH_OWN_DIRTY, true, false, false, LB_WATCH_OWN_DRAINING },
                { LB_WATCH_OWN_DIRTY, true, false, true, LB_WATCH_OWN_FLUSHED },
                { LB_WATCH_OWN_DRAINING, true, false, false, LB_WATCH_OWN_DRAINING },
                { LB_WATCH_OWN_DRAINING, true, false, true, LB_WATCH_OWN_FLUSHED },
                /* the deadline passes with chunks left */
                { LB_WATCH_OWN_DRAINING, true, true, false, LB_WATCH_OWN_UNDRAINED },
                { LB_WATCH_OWN_DIRTY, true, true, false, LB_WATCH_OWN_UNDRAINED },
                { LB_WATCH_OWN_UNDRAINED, true, true, false, LB_WATCH_OWN_UNDRAINED },
                /* drained late: still flushed */
                { LB_WATCH_OWN_UNDRAINED, true, true, true, LB_WATCH_OWN_FLUSHED },
                /* a chunk after the tag: dirty again at once */
                { LB_WATCH_OWN_FLUSHED, true, false, false, LB_WATCH_OWN_DRAINING },
                { LB_WATCH_OWN_FLUSHED, true, true, false, LB_WATCH_OWN_UNDRAINED },
                { LB_WATCH_OWN_FLUSHED, true, true, true, LB_WATCH_OWN_FLUSHED },
                /* tagged flushed before this watch started (a restart): kept while empty */
                { LB_WATCH_OWN_FLUSHED, false, false, true, LB_WATCH_OWN_FLUSHED },
                { LB_WATCH_OWN_FLUSHED, false, false, false, LB_WATCH_OWN_DIRTY },
                /* nothing to scan */
                { LB_WATCH_OWN_NONE, true, true, true, LB_WATCH_OWN_NONE },
                { LB_WATCH_OWN_UNKNOWN, true, false, true, LB_WATCH_OWN_UNKNOWN },
                { LB_WATCH_OWN_UNKNOWN, true, true, false, LB_WATCH_OWN_UNKNOWN },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                enum lb_watch_own_state got = lb_watch_own_next(cases[i].cur, cases[i].ending, cases[i].past,
                                                                cases[i].empty);
                if (got != cases[i].next)
                        fail_msg("case %zu: %s ending=%d past=%d empty=%d -> %s, expected %s", i,
                                 lb_watch_own_state_to_string(cases[i].cur), cases[i].ending, cases[i].past,
                                 cases[i].empty, lb_watch_own_state_to_string(got),
                                 lb_watch_own_state_to_string(cases[i].next));
        }
        /* The invariant: whatever happened before, a chunk never leaves it flushed. */
        const enum lb_watch_own_state all[] = { D, DR, F, U };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                for (int e = 0; e < 2; e++)
                        for (int p = 0; p < 2; p++)
                                assert_int_not_equal(lb_watch_own_next(all[i], e, p, false), LB_WATCH_OWN_FLUSHED);
}

/* ---- recovered volumes ---- */

static void test_rec_next(void **state) {
        uint64_t since = 0;
        assert_int_equal(lb_watch_rec_next(3, 1000, 1000, &since), LB_WATCH_REC_DRAINING);
        assert_int_equal(since, 0);
        assert_int_equal(lb_watch_rec_next(0, 2000, 1000, &since), LB_WATCH_REC_SETTLING);
        assert_int_equal(since, 2000);
        assert_int_equal(lb_watch_rec_next(0, 2999, 1000, &since), LB_WATCH_REC_SETTLING);
        assert_int_equal(since, 2000);
        /* A chunk comes back: the settle period starts over. */
        assert_int_equal(lb_watch_rec_next(1, 2999, 1000, &since), LB_WATCH_REC_DRAINING);
        assert_int_equal(since, 0);
        assert_int_equal(lb_watch_rec_next(0, 3500, 1000, &since), LB_WATCH_REC_SETTLING);
        assert_int_equal(lb_watch_rec_next(0, 4499, 1000, &since), LB_WATCH_REC_SETTLING);
        assert_int_equal(lb_watch_rec_next(0, 4500, 1000, &since), LB_WATCH_REC_TAGGED);
        /* No settle period: released on the first empty scan. */
        since = 0;
        assert_int_equal(lb_watch_rec_next(0, 10, 0, &since), LB_WATCH_REC_TAGGED);
        /* A clock reading 0 still records "empty". */
        since = 0;
        assert_int_equal(lb_watch_rec_next(0, 0, 1000, &since), LB_WATCH_REC_SETTLING);
        assert_int_not_equal(since, 0);
        assert_int_equal(lb_watch_rec_next(0, 1001, 1000, &since), LB_WATCH_REC_TAGGED);
}

/* ---- names ---- */

static void test_names_round_trip(void **state) {
        for (int i = 0; i < _LB_WATCH_OWN_STATE_MAX; i++) {
                enum lb_watch_own_state s;
                assert_int_equal(lb_watch_own_state_from_string(lb_watch_own_state_to_string(i), &s), 0);
                assert_int_equal(s, i);
        }
        for (int i = 0; i < _LB_WATCH_REC_STATE_MAX; i++) {
                enum lb_watch_rec_state s;
                assert_int_equal(lb_watch_rec_state_from_string(lb_watch_rec_state_to_string(i), &s), 0);
                assert_int_equal(s, i);
        }
        enum lb_watch_own_state s;
        assert_int_equal(lb_watch_own_state_from_string("drained", &s), -EINVAL);
        assert_int_equal(lb_watch_own_state_from_string(NULL, &s), -EINVAL);
        assert_string_equal(lb_watch_own_state_to_string(_LB_WATCH_OWN_STATE_MAX), "unknown");
        assert_string_equal(lb_watch_trigger_to_string(LB_WATCH_TRIGGER_SPOT), "spot");
}

/* ---- watch.json ---- */

static void sample_state(struct lb_watch_state *st) {
        memset(st, 0, sizeof *st);
        st->pid = 4242;
        assert_int_equal(lb_strscpy(st->instance_id, sizeof st->instance_id, "i-0123456789abcdef0"), 0);
        st->started_at = NOW_S;
        st->ending = true;
        st->imds_ok = false;
        st->imds_failing_since = NOW_S + 3;
        st->backup_files = 2;
        st->notices[0] = (struct lb_watch_notice) { .trigger = LB_WATCH_TRIGGER_REBALANCE, .time = NOW_S + 5,
                                                    .seen_at = NOW_S + 6 };
        st->notices[1] = (struct lb_watch_notice) { .trigger = LB_WATCH_TRIGGER_SPOT, .detail = "terminate",
                                                    .time = NOW_S + 120, .seen_at = NOW_S + 7 };
        st->notices[2] = (struct lb_watch_notice) { .trigger = LB_WATCH_TRIGGER_SIGNAL, .detail = "SIGTERM",
                                                    .seen_at = NOW_S + 9 };
        st->n_notices = 3;
        st->own = (struct lb_watch_own) { .state = LB_WATCH_OWN_DRAINING, .volume_id = "vol-0aaaaaaaaaaaaaaaa",
                                          .mount_path = "/var/lib/lifeboat/buffer", .chunk_files = 3,
                                          .chunk_bytes = 12345, .deadline = NOW_S + 110, .flush_requests = 2 };
        st->recovered = calloc(2, sizeof *st->recovered);
        assert_non_null(st->recovered);
        st->recovered[0] = (struct lb_watch_recovered) { .volume_id = "vol-0bbbbbbbbbbbbbbbb",
                                                         .mount_path = "/var/lib/lifeboat/recovery/vol-0bbbbbbbbbbbbbbbb",
                                                         .state = LB_WATCH_REC_SETTLING, .empty_since = NOW_S + 1 };
        st->recovered[1] = (struct lb_watch_recovered) { .volume_id = "vol-0cccccccccccccccc",
                                                         .mount_path = "/var/lib/lifeboat/recovery/vol-0cccccccccccccccc",
                                                         .state = LB_WATCH_REC_RELEASED, .backup_files = 4,
                                                         .released_at = NOW_S + 2 };
        st->n_recovered = 2;
}

static void test_state_round_trip(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        _cleanup_watch_state_ struct lb_watch_state back = { 0 };
        _cleanup_free_ char *text = NULL;
        sample_state(&st);
        assert_int_equal(lb_watch_state_format(&st, &text), 0);
        assert_non_null(strstr(text, "\"deadline\": \"2026-11-26T16:14:45Z\""));
        assert_non_null(strstr(text, "\"flushed_at\": null"));
        assert_int_equal(text[strlen(text) - 1], '\n');
        assert_int_equal(lb_watch_state_parse(text, strlen(text), &back), 0);

        assert_int_equal(back.pid, 4242);
        assert_string_equal(back.instance_id, st.instance_id);
        assert_int_equal(back.started_at, NOW_S);
        assert_true(back.ending);
        assert_false(back.imds_ok);
        assert_int_equal(back.imds_failing_since, NOW_S + 3);
        assert_int_equal(back.backup_files, 2);
        assert_int_equal(back.n_notices, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(back.notices[i].trigger, st.notices[i].trigger);
                assert_string_equal(back.notices[i].detail, st.notices[i].detail);
                assert_int_equal(back.notices[i].time, st.notices[i].time);
                assert_int_equal(back.notices[i].seen_at, st.notices[i].seen_at);
        }
        assert_int_equal(back.own.state, LB_WATCH_OWN_DRAINING);
        assert_string_equal(back.own.volume_id, st.own.volume_id);
        assert_string_equal(back.own.mount_path, st.own.mount_path);
        assert_int_equal(back.own.chunk_files, 3);
        assert_int_equal(back.own.chunk_bytes, 12345);
        assert_int_equal(back.own.deadline, NOW_S + 110);
        assert_int_equal(back.own.flushed_at, 0);
        assert_int_equal(back.own.flush_requests, 2);
        assert_string_equal(back.own.reason, "");
        assert_int_equal(back.n_recovered, 2);
        for (size_t i = 0; i < 2; i++) {
                assert_string_equal(back.recovered[i].volume_id, st.recovered[i].volume_id);
                assert_string_equal(back.recovered[i].mount_path, st.recovered[i].mount_path);
                assert_int_equal(back.recovered[i].state, st.recovered[i].state);
                assert_int_equal(back.recovered[i].empty_since, st.recovered[i].empty_since);
                assert_int_equal(back.recovered[i].backup_files, st.recovered[i].backup_files);
                assert_int_equal(back.recovered[i].released_at, st.recovered[i].released_at);
        }
        assert_ptr_equal(lb_watch_state_find_recovered(&back, "vol-0cccccccccccccccc"), &back.recovered[1]);
        assert_null(lb_watch_state_find_recovered(&back, "vol-0dddddddddddddddd"));

        /* Formatting is stable: the daemon compares texts to skip writes that change nothing. */
        _cleanup_free_ char *again = NULL;
        assert_int_equal(lb_watch_state_format(&back, &again), 0);
        assert_string_equal(text, again);
}

static const char *const good_doc =
        "{\"version\":1,\"pid\":7,\"instance_id\":\"i-0123456789abcdef0\",\"started_at\":\"2026-11-26T16:12:55Z\","
        "\"ending\":false,\"imds_ok\":true,\"imds_failing_since\":null,\"backup_files\":0,\"notices\":[],"
        "\"own\":{\"state\":\"none\",\"volume_id\":null,\"mount_path\":\"/b\",\"chunk_files\":0,\"chunk_bytes\":0,"
        "\"deadline\":null,\"flushed_at\":null,\"flush_requests\":0,\"reason\":null},\"recovered\":[],"
        "\"unknown_field\":\"ignored\"}";

static void expect_bad(const char *from, const char *to) {
        char doc[2048];
        const char *at = strstr(good_doc, from);
        assert_non_null(at);
        assert_int_equal(lb_snprintf(doc, sizeof doc, "%.*s%s%s", (int) (at - good_doc), good_doc, to,
                                     at + strlen(from)),
                         0);
        struct lb_watch_state st;
        if (lb_watch_state_parse(doc, strlen(doc), &st) != -EBADMSG)
                fail_msg("accepted: %s", doc);
}

static void test_parse_rejects_bad_documents(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        assert_int_equal(lb_watch_state_parse(good_doc, strlen(good_doc), &st), 0);
        assert_int_equal(st.own.state, LB_WATCH_OWN_NONE);

        struct lb_watch_state bad;
        assert_int_equal(lb_watch_state_parse("", 0, &bad), -EBADMSG);
        assert_int_equal(lb_watch_state_parse("[]", 2, &bad), -EBADMSG);
        assert_int_equal(lb_watch_state_parse("{", 1, &bad), -EBADMSG);
        expect_bad("\"version\":1", "\"version\":2");
        expect_bad("\"pid\":7", "\"pid\":-7");
        expect_bad("\"pid\":7", "\"pid\":\"7\"");
        expect_bad("\"ending\":false", "\"ending\":0");
        expect_bad("\"started_at\":\"2026-11-26T16:12:55Z\"", "\"started_at\":\"yesterday\"");
        expect_bad("\"notices\":[]", "\"notices\":{}");
        expect_bad("\"notices\":[]", "\"notices\":[{\"trigger\":\"tsunami\",\"seen_at\":null}]");
        expect_bad("\"state\":\"none\"", "\"state\":\"drained\"");
        expect_bad("\"volume_id\":null", "\"volume_id\":\"vol-xyz\"");
        expect_bad("\"chunk_files\":0", "\"chunk_files\":-1");
        expect_bad("\"mount_path\":\"/b\",", "");
        expect_bad("\"recovered\":[]", "\"recovered\":[{\"volume_id\":\"vol-0123456789abcdef0\"}]");
        expect_bad("\"recovered\":[]", "\"recovered\":[1]");
}

static void test_load(void **state) {
        char dir[] = "/tmp/lb-test-watch.XXXXXX", path[PATH_MAX];
        assert_non_null(mkdtemp(dir));
        struct lb_watch_state st;
        assert_int_equal(lb_watch_state_load(dir, &st), -ENOENT);
        assert_int_equal(lb_snprintf(path, sizeof path, "%s/%s", dir, LB_WATCH_STATE_FILE), 0);
        assert_int_equal(lb_write_file_atomic(path, good_doc, strlen(good_doc), 0644), 0);
        assert_int_equal(lb_watch_state_load(dir, &st), 0);
        assert_int_equal(st.pid, 7);
        lb_watch_state_done(&st);
        assert_int_equal(lb_write_file_atomic(path, "{}", 2, 0644), 0);
        assert_int_equal(lb_watch_state_load(dir, &st), -EBADMSG);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

static void test_running(void **state) {
        struct lb_watch_state st = { .pid = (long) getpid() };
        assert_true(lb_watch_state_running(&st));
        st.pid = 0;
        assert_false(lb_watch_state_running(&st));
        st.pid = 0x3ffffff; /* beyond pid_max */
        assert_false(lb_watch_state_running(&st));
}

/* ---- status ---- */

static void test_status_describe(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        sample_state(&st);
        struct lb_manifest_entry e = { .recovered_at = NOW_S };
        assert_int_equal(lb_strscpy(e.volume_id, sizeof e.volume_id, "vol-0bbbbbbbbbbbbbbbb"), 0);
        assert_int_equal(lb_strscpy(e.device, sizeof e.device, "/dev/nvme2n1"), 0);
        assert_int_equal(lb_strscpy(e.mount_path, sizeof e.mount_path, st.recovered[0].mount_path), 0);
        assert_int_equal(lb_strscpy(e.previous_owner, sizeof e.previous_owner, "i-0fedcba9876543210"), 0);
        struct lb_manifest m = { .entries = &e, .n = 1 };

        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_watch_status_describe(&st, true, &m, &text), 0);
        assert_non_null(strstr(text, "Watch     running (pid 4242) since 2026-11-26T16:12:55Z, IMDS FAILING since"));
        assert_non_null(strstr(text, "notice: spot terminate at 2026-11-26T16:14:55Z"));
        assert_non_null(strstr(text, "notice: rebalance recommendation of 2026-11-26T16:13:00Z"));
        assert_non_null(strstr(text, "notice: SIGTERM"));
        assert_non_null(strstr(text, "own buffer vol-0aaaaaaaaaaaaaaaa: DRAINING, 3 chunk file(s), 12345 bytes left"));
        assert_non_null(strstr(text, "recovered vol-0bbbbbbbbbbbbbbbb from i-0fedcba9876543210: empty since"));
        assert_non_null(strstr(text, "released vol-0cccccccccccccccc at 2026-11-26T16:12:57Z (4 file(s) in fluentd's "
                                     "backup directory: NOT delivered)"));
        assert_non_null(strstr(text, "2 file(s) since watch started"));

        st.own.state = LB_WATCH_OWN_FLUSHED;
        st.own.flushed_at = NOW_S + 60;
        st.imds_ok = true;
        free(text);
        text = NULL;
        assert_int_equal(lb_watch_status_describe(&st, false, NULL, &text), 0);
        assert_non_null(strstr(text, "Watch     NOT RUNNING (last state written by pid 4242"));
        assert_non_null(strstr(text, ", IMDS ok\n"));
        assert_non_null(strstr(text, "drained, tagged flushed at 2026-11-26T16:13:55Z"));
        assert_null(strstr(text, "recovered vol-0b"));

        st.own.state = LB_WATCH_OWN_UNDRAINED;
        free(text);
        text = NULL;
        assert_int_equal(lb_watch_status_describe(&st, true, NULL, &text), 0);
        assert_non_null(strstr(text, "NOT DRAINED by the deadline: 3 chunk file(s), 12345 bytes left"));

        /* Watch never ran: the manifest alone. */
        free(text);
        text = NULL;
        assert_int_equal(lb_watch_status_describe(NULL, false, &m, &text), 0);
        assert_non_null(strstr(text, "Watch     not running here"));
        assert_non_null(strstr(text, "recovered vol-0bbbbbbbbbbbbbbbb from i-0fedcba9876543210: mounted at"));
        free(text);
        text = NULL;
        assert_int_equal(lb_watch_status_describe(NULL, false, NULL, &text), 0);
        assert_non_null(strstr(text, "recovered volumes: none"));
}

static void test_status_json(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        sample_state(&st);
        struct lb_manifest_entry e = { .recovered_at = NOW_S };
        assert_int_equal(lb_strscpy(e.volume_id, sizeof e.volume_id, "vol-0bbbbbbbbbbbbbbbb"), 0);
        assert_int_equal(lb_strscpy(e.device, sizeof e.device, "/dev/nvme2n1"), 0);
        assert_int_equal(lb_strscpy(e.mount_path, sizeof e.mount_path, st.recovered[0].mount_path), 0);
        struct lb_manifest m = { .entries = &e, .n = 1 };

        json_t *o = NULL;
        assert_int_equal(lb_watch_status_to_json(&st, true, &m, &o), 0);
        assert_true(json_is_true(json_object_get(o, "running")));
        json_t *own = json_object_get(json_object_get(o, "state"), "own");
        assert_string_equal(json_string_value(json_object_get(own, "state")), "draining");
        json_t *rec = json_array_get(json_object_get(o, "recovered"), 0);
        assert_string_equal(json_string_value(json_object_get(rec, "watch_state")), "settling");
        assert_true(json_is_null(json_object_get(rec, "previous_owner")));
        json_decref(o);

        assert_int_equal(lb_watch_status_to_json(NULL, false, NULL, &o), 0);
        assert_true(json_is_null(json_object_get(o, "state")));
        assert_int_equal(json_array_size(json_object_get(o, "recovered")), 0);
        json_decref(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_budget_spot),
                cmocka_unit_test(test_budget_other_triggers),
                cmocka_unit_test(test_own_next),
                cmocka_unit_test(test_rec_next),
                cmocka_unit_test(test_names_round_trip),
                cmocka_unit_test(test_state_round_trip),
                cmocka_unit_test(test_parse_rejects_bad_documents),
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_running),
                cmocka_unit_test(test_status_describe),
                cmocka_unit_test(test_status_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
