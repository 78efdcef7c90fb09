/* SPDX-License-Identifier: MIT */
/* lifeboat status: the watch part of the table and of the JSON document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "lifeboat/basic/util.h"
#include "lifeboat/state/manifest.h"
#include "lifeboat/state/watch-state.h"
#include "lifeboat/status/status.h"
#include "testutil.h"

#define NOW_S 1795709575 /* 2026-11-26T16:12:55Z */
#define NOW_MS ((uint64_t) NOW_S * 1000u)

static void test_status_describe(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        lbt_sample_watch_state(&st);
        struct lb_manifest_entry e = { .recovered_at = NOW_S };
        assert_int_equal(lb_strscpy(e.volume_id, sizeof e.volume_id, "vol-0bbbbbbbbbbbbbbbb"), 0);
        assert_int_equal(lb_strscpy(e.device, sizeof e.device, "/dev/nvme2n1"), 0);
        assert_int_equal(lb_strscpy(e.mount_path, sizeof e.mount_path, st.recovered[0].mount_path), 0);
        assert_int_equal(lb_strscpy(e.previous_owner, sizeof e.previous_owner, "i-0fedcba9876543210"), 0);
        struct lb_manifest m = { .entries = &e, .n = 1 };

        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_status_watch_text(&st, true, &m, &text), 0);
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
        assert_int_equal(lb_status_watch_text(&st, false, NULL, &text), 0);
        assert_non_null(strstr(text, "Watch     NOT RUNNING (last state written by pid 4242"));
        assert_non_null(strstr(text, ", IMDS ok\n"));
        assert_non_null(strstr(text, "drained, tagged flushed at 2026-11-26T16:13:55Z"));
        assert_null(strstr(text, "recovered vol-0b"));

        st.own.state = LB_WATCH_OWN_UNDRAINED;
        free(text);
        text = NULL;
        assert_int_equal(lb_status_watch_text(&st, true, NULL, &text), 0);
        assert_non_null(strstr(text, "NOT DRAINED by the deadline: 3 chunk file(s), 12345 bytes left"));

        /* Tagged, but a container still has a file open on it: who, and that nothing is killed. */
        st.recovered[0].state = LB_WATCH_REC_TAGGED;
        free(text);
        text = NULL;
        assert_int_equal(lb_status_watch_text(&st, true, &m, &text), 0);
        assert_non_null(strstr(text, "recovered vol-0bbbbbbbbbbbbbbbb from i-0fedcba9876543210: tagged flushed; "
                                     "unmount/detach pending\n"));
        st.recovered[0].holders[0] = (struct lb_holder) { .pid = 31337, .comm = "fluentd", .ns = 4026532801u };
        st.recovered[0].n_holders = 1;
        st.recovered[0].holders_total = 3;
        free(text);
        text = NULL;
        assert_int_equal(lb_status_watch_text(&st, true, &m, &text), 0);
        assert_non_null(strstr(text, "recovered vol-0bbbbbbbbbbbbbbbb from i-0fedcba9876543210: tagged flushed; BUSY, "
                                     "still in use by pid 31337 (fluentd) in mount namespace mnt:[4026532801] and 2 "
                                     "more; unmount retried every poll, nothing is killed\n"));
        /* A volume watch cannot confirm drained: said loudly, with the reason. */
        st.recovered[0].state = LB_WATCH_REC_UNCONFIRMED;
        assert_int_equal(lb_strscpy(st.recovered[0].reason, sizeof st.recovered[0].reason,
                                    "nested deeper than 16 directory levels: cannot confirm it is drained"), 0);
        free(text);
        text = NULL;
        assert_int_equal(lb_status_watch_text(&st, true, &m, &text), 0);
        assert_non_null(strstr(text, "recovered vol-0bbbbbbbbbbbbbbbb from i-0fedcba9876543210: CANNOT CONFIRM IT IS "
                                     "DRAINED: nested deeper than 16 directory levels: cannot confirm it is drained; "
                                     "left mounted and dirty\n"));

        /* Watch never ran: the manifest alone. */
        free(text);
        text = NULL;
        assert_int_equal(lb_status_watch_text(NULL, false, &m, &text), 0);
        assert_non_null(strstr(text, "Watch     not running here"));
        assert_non_null(strstr(text, "recovered vol-0bbbbbbbbbbbbbbbb from i-0fedcba9876543210: mounted at"));
        free(text);
        text = NULL;
        assert_int_equal(lb_status_watch_text(NULL, false, NULL, &text), 0);
        assert_non_null(strstr(text, "recovered volumes: none"));
}

static void test_status_json(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        lbt_sample_watch_state(&st);
        struct lb_manifest_entry e = { .recovered_at = NOW_S };
        assert_int_equal(lb_strscpy(e.volume_id, sizeof e.volume_id, "vol-0bbbbbbbbbbbbbbbb"), 0);
        assert_int_equal(lb_strscpy(e.device, sizeof e.device, "/dev/nvme2n1"), 0);
        assert_int_equal(lb_strscpy(e.mount_path, sizeof e.mount_path, st.recovered[0].mount_path), 0);
        struct lb_manifest m = { .entries = &e, .n = 1 };

        json_t *o = NULL;
        assert_int_equal(lb_status_watch_json(&st, true, &m, &o), 0);
        assert_true(json_is_true(json_object_get(o, "running")));
        json_t *own = json_object_get(json_object_get(o, "state"), "own");
        assert_string_equal(json_string_value(json_object_get(own, "state")), "draining");
        json_t *rec = json_array_get(json_object_get(o, "recovered"), 0);
        assert_string_equal(json_string_value(json_object_get(rec, "watch_state")), "settling");
        assert_true(json_is_null(json_object_get(rec, "previous_owner")));
        json_decref(o);

        assert_int_equal(lb_status_watch_json(NULL, false, NULL, &o), 0);
        assert_true(json_is_null(json_object_get(o, "state")));
        assert_int_equal(json_array_size(json_object_get(o, "recovered")), 0);
        json_decref(o);
}

/* Tag values and watch.json's reasons reach the table escaped: no value starts a line of its
 * own, moves the cursor or colors the terminal (C1 CSI, U+009B, is what XML lets through). */
static void test_status_table_escapes_untrusted_text(void **state) {
        struct lb_settings s = { .group = (char *) "g", .tag_prefix = (char *) "lifeboat" };
        struct lb_status st = { 0 };
        assert_int_equal(lb_strscpy(st.aws.identity.instance_id, sizeof st.aws.identity.instance_id,
                                    "i-0123456789abcdef0"), 0);
        assert_int_equal(lb_strscpy(st.aws.identity.availability_zone, sizeof st.aws.identity.availability_zone,
                                    "us-east-1a"), 0);
        struct lb_tag tags[] = {
                { (char *) "lifeboat:group", (char *) "g" },
                { (char *) "lifeboat:state", (char *) "dirty" },
                { (char *) "lifeboat:owner", (char *) "i-1\nvol-0forged  flushed\xc2\x9b" "2J\x7f" },
        };
        struct lb_volume v = { .id = "vol-0123456789abcdef0", .state = "available", .size_gib = 1,
                               .tags = tags, .n_tags = ELEMENTSOF(tags) };
        st.volumes = (struct lb_volume_list) { .items = &v, .n = 1 };
        lbt_sample_watch_state(&st.watch);
        st.have_watch = true;
        st.watch.own.state = LB_WATCH_OWN_UNKNOWN;
        assert_int_equal(lb_strscpy(st.watch.own.reason, sizeof st.watch.own.reason,
                                    "fs-uuid tag \"\nown buffer: drained\" does not match"), 0);
        assert_int_equal(lb_strscpy(st.watch.notices[1].detail, sizeof st.watch.notices[1].detail, "stop\r\x1b[2K"), 0);

        _cleanup_free_ char *text = NULL;
        assert_int_equal(lb_status_format(&s, &st, &text), 0);
        assert_non_null(strstr(text, "i-1\\nvol-0forged  flushed\\x9b2J\\x7f"));
        assert_non_null(strstr(text, "not confirmed: fs-uuid tag \"\\nown buffer: drained\" does not match\n"));
        assert_non_null(strstr(text, "notice: spot stop\\r\\x1b[2K at"));
        assert_null(strstr(text, "\nvol-0forged"));
        assert_null(strstr(text, "\nown buffer: drained"));
        for (const char *p = text; *p; p++)
                assert_true(*p == '\n' || (unsigned char) *p >= 0x20);
        assert_null(strstr(text, "\xc2\x9b"));
        lb_watch_state_done(&st.watch);
}

/* The lifecycle hook's line in the Watch section, in each of its states. */
static void test_status_hook(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        lbt_sample_watch_state(&st);
        static const struct {
                struct lb_watch_hook hook;
                const char *line;
        } cases[] = {
                { { .name = "lifeboat-drain" }, "  lifecycle hook lifeboat-drain: group not known yet\n" },
                { { .name = "lifeboat-drain", .group = "ads-spot", .heartbeat_timeout_s = 300, .default_result = "CONTINUE" },
                  "  lifecycle hook lifeboat-drain of Auto Scaling group ads-spot: no scale-in (heartbeat timeout 300 s, "
                  "default result CONTINUE)\n" },
                { { .name = "lifeboat-drain", .group = "ads-spot", .state = LB_WATCH_HOOK_HOLDING,
                    .waiting_since = NOW_S, .heartbeats = 2, .last_heartbeat = NOW_S + 150 },
                  "  lifecycle hook lifeboat-drain of Auto Scaling group ads-spot: HOLDING the scale-in since "
                  "2026-11-26T16:12:55Z, 2 heartbeat(s), the last at 2026-11-26T16:15:25Z\n" },
                { { .name = "lifeboat-drain", .group = "ads-spot", .state = LB_WATCH_HOOK_COMPLETED,
                    .completed_at = NOW_S + 200, .heartbeats = 3, .completed_because = "deadline" },
                  "  lifecycle hook lifeboat-drain of Auto Scaling group ads-spot: completed (CONTINUE, deadline) at "
                  "2026-11-26T16:16:15Z after 3 heartbeat(s)\n" },
                { { .name = "lifeboat-drain", .group = "ads-spot", .state = LB_WATCH_HOOK_GONE },
                  "  lifecycle hook lifeboat-drain of Auto Scaling group ads-spot: no action waited any more (timed "
                  "out, or completed by someone else)\n" },
                { { .name = "lifeboat-drain", .group = "ads-spot", .state = LB_WATCH_HOOK_LEFT },
                  "  lifecycle hook lifeboat-drain of Auto Scaling group ads-spot: LEFT WAITING when watch stopped "
                  "undrained (the hook's timeout ends it)\n" },
                { { .name = "lifeboat-drain", .group = "ads-spot", .state = LB_WATCH_HOOK_HOLDING,
                    .waiting_since = NOW_S, .reason = "RecordLifecycleActionHeartbeat failed: Throttling" },
                  "2026-11-26T16:12:55Z, 0 heartbeat(s), the last at - (RecordLifecycleActionHeartbeat failed: "
                  "Throttling)\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                st.have_hook = true;
                st.hook = cases[i].hook;
                assert_int_equal(lb_status_watch_text(&st, true, NULL, &text), 0);
                if (!strstr(text, cases[i].line))
                        fail_msg("case %zu: no \"%s\" in\n%s", i, cases[i].line, text);
        }
        /* No hook configured: no line. */
        _cleanup_free_ char *text = NULL;
        st.have_hook = false;
        assert_int_equal(lb_status_watch_text(&st, true, NULL, &text), 0);
        assert_null(strstr(text, "lifecycle hook"));

        /* --json: the whole state, under watch.state.lifecycle_hook. */
        st.have_hook = true;
        st.hook = cases[3].hook;
        json_t *o = NULL;
        assert_int_equal(lb_status_watch_json(&st, true, NULL, &o), 0);
        json_t *h = json_object_get(json_object_get(o, "state"), "lifecycle_hook");
        assert_string_equal(json_string_value(json_object_get(h, "state")), "completed");
        assert_string_equal(json_string_value(json_object_get(h, "result")), "CONTINUE");
        assert_int_equal(json_integer_value(json_object_get(h, "heartbeats")), 3);
        json_decref(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_describe),
                cmocka_unit_test(test_status_json),
                cmocka_unit_test(test_status_table_escapes_untrusted_text),
                cmocka_unit_test(test_status_hook),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
