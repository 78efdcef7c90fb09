/* SPDX-License-Identifier: MIT */
/* watch.json: names, the document, loading it, and whether its watch runs. */
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

#include "lifeboat/basic/fileio.h"
#include "lifeboat/basic/util.h"
#include "lifeboat/state/watch-state.h"
#include "testutil.h"

#define NOW_S 1795709575 /* 2026-11-26T16:12:55Z */
#define NOW_MS ((uint64_t) NOW_S * 1000u)

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

static void test_state_round_trip(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        _cleanup_watch_state_ struct lb_watch_state back = { 0 };
        _cleanup_free_ char *text = NULL;
        lbt_sample_watch_state(&st);
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
                assert_string_equal(back.recovered[i].reason, "");
        }
        assert_ptr_equal(lb_watch_state_find_recovered(&back, "vol-0cccccccccccccccc"), &back.recovered[1]);
        assert_null(lb_watch_state_find_recovered(&back, "vol-0dddddddddddddddd"));

        /* Formatting is stable: the daemon compares texts to skip writes that change nothing. */
        _cleanup_free_ char *again = NULL;
        assert_int_equal(lb_watch_state_format(&back, &again), 0);
        assert_string_equal(text, again);
}

/* A tagged volume a container still uses: who holds it goes through the document. */
static void test_holders_round_trip(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        _cleanup_watch_state_ struct lb_watch_state back = { 0 };
        _cleanup_free_ char *text = NULL;
        lbt_sample_watch_state(&st);
        struct lb_watch_recovered *r = &st.recovered[0];
        r->state = LB_WATCH_REC_TAGGED;
        r->holders[0] = (struct lb_holder) { .pid = 31337, .comm = "fluentd", .ns = 4026532801u };
        r->holders[1] = (struct lb_holder) { .pid = 42, .comm = "sh", .ns = 4026531841u };
        r->n_holders = 2;
        r->holders_total = 5;
        assert_int_equal(lb_watch_state_format(&st, &text), 0);
        assert_non_null(strstr(text, "\"pid\": 31337,\n"));
        assert_non_null(strstr(text, "\"comm\": \"fluentd\""));
        assert_non_null(strstr(text, "\"mnt_ns\": 4026532801"));
        assert_non_null(strstr(text, "\"holders_total\": 5"));
        assert_int_equal(lb_watch_state_parse(text, strlen(text), &back), 0);
        assert_int_equal(back.recovered[0].n_holders, 2);
        assert_int_equal(back.recovered[0].holders_total, 5);
        assert_int_equal(back.recovered[0].holders[0].pid, 31337);
        assert_string_equal(back.recovered[0].holders[0].comm, "fluentd");
        assert_int_equal(back.recovered[0].holders[0].ns, 4026532801u);
        assert_int_equal(back.recovered[0].holders[1].pid, 42);
        assert_int_equal(back.recovered[1].n_holders, 0);
        assert_int_equal(back.recovered[1].holders_total, 0);
}

#ifdef LBT_ASAN
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
        return LBT_ASAN_ALLOCATION_LIMIT;
}
#endif

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

        /* holders: optional (an older watch wrote none), but well-formed when there */
        const char *rec = "\"recovered\":[{\"volume_id\":\"vol-0123456789abcdef0\",\"mount_path\":\"/r\","
                          "\"state\":\"tagged\",\"chunk_files\":0,\"chunk_bytes\":0,\"empty_since\":null,"
                          "\"backup_files\":0,\"released_at\":null";
        char doc[2048], with[1024];
        assert_int_equal(lb_snprintf(with, sizeof with, "%s}]", rec), 0);
        const char *at = strstr(good_doc, "\"recovered\":[]");
        assert_int_equal(lb_snprintf(doc, sizeof doc, "%.*s%s%s", (int) (at - good_doc), good_doc, with,
                                     at + strlen("\"recovered\":[]")), 0);
        _cleanup_watch_state_ struct lb_watch_state old = { 0 };
        assert_int_equal(lb_watch_state_parse(doc, strlen(doc), &old), 0);
        assert_int_equal(old.recovered[0].n_holders, 0);
        static const char *const bad_holders[] = {
                ",\"holders\":{},\"holders_total\":0}]",
                ",\"holders\":[],\"holders_total\":-1}]",
                ",\"holders\":[]}]",
                ",\"holders\":[{\"pid\":0,\"comm\":\"x\",\"mnt_ns\":1}],\"holders_total\":1}]",
                ",\"holders\":[{\"pid\":7,\"mnt_ns\":1}],\"holders_total\":1}]",
                ",\"holders\":[{\"pid\":7,\"comm\":\"x\",\"mnt_ns\":1}],\"holders_total\":0}]",
                ",\"holders\":[1,2,3,4,5,6,7,8,9],\"holders_total\":9}]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_holders); i++) {
                char item[1024];
                assert_int_equal(lb_snprintf(item, sizeof item, "%s%s", rec, bad_holders[i]), 0);
                assert_int_equal(lb_snprintf(doc, sizeof doc, "%.*s%s%s", (int) (at - good_doc), good_doc, item,
                                             at + strlen("\"recovered\":[]")), 0);
                struct lb_watch_state parsed;
                if (lb_watch_state_parse(doc, strlen(doc), &parsed) != -EBADMSG)
                        fail_msg("accepted: %s", doc);
        }
}

/* A recovered volume watch cannot confirm drained says why; older files without "reason" load. */
static void test_unconfirmed_round_trip(void **state) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        _cleanup_watch_state_ struct lb_watch_state back = { 0 };
        _cleanup_free_ char *text = NULL;
        lbt_sample_watch_state(&st);
        st.recovered[0].state = LB_WATCH_REC_UNCONFIRMED;
        assert_int_equal(lb_strscpy(st.recovered[0].reason, sizeof st.recovered[0].reason,
                                    "nested deeper than 16 directory levels: cannot confirm it is drained"), 0);
        assert_int_equal(lb_watch_state_format(&st, &text), 0);
        assert_non_null(strstr(text, "\"state\": \"unconfirmed\""));
        assert_non_null(strstr(text, "\"reason\": null"));
        assert_int_equal(lb_watch_state_parse(text, strlen(text), &back), 0);
        assert_int_equal(back.recovered[0].state, LB_WATCH_REC_UNCONFIRMED);
        assert_string_equal(back.recovered[0].reason, st.recovered[0].reason);
        assert_string_equal(back.recovered[1].reason, "");
}

static void sample_hook(struct lb_watch_state *st) {
        st->have_hook = true;
        st->hook = (struct lb_watch_hook) { .name = "lifeboat-drain", .group = "eks ng/1 \xc3\xa9",
                                            .state = LB_WATCH_HOOK_COMPLETED, .heartbeat_timeout_s = 300,
                                            .global_timeout_s = 30000, .default_result = "CONTINUE",
                                            .waiting_since = NOW_S + 10, .heartbeats = 4,
                                            .last_heartbeat = NOW_S + 460, .completed_at = NOW_S + 500,
                                            .completed_because = "drained" };
}

static void test_hook_round_trip(void **state) {
        for (int i = 0; i < _LB_WATCH_HOOK_STATE_MAX; i++) {
                enum lb_watch_hook_state s;
                assert_int_equal(lb_watch_hook_state_from_string(lb_watch_hook_state_to_string(i), &s), 0);
                assert_int_equal(s, i);
        }
        enum lb_watch_hook_state hs;
        assert_int_equal(lb_watch_hook_state_from_string("abandoned", &hs), -EINVAL);
        assert_string_equal(lb_watch_hook_state_to_string(_LB_WATCH_HOOK_STATE_MAX), "unknown");

        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        _cleanup_watch_state_ struct lb_watch_state back = { 0 };
        _cleanup_free_ char *text = NULL;
        lbt_sample_watch_state(&st);
        sample_hook(&st);
        assert_int_equal(lb_watch_state_format(&st, &text), 0);
        assert_non_null(strstr(text, "\"lifecycle_hook\": {"));
        assert_non_null(strstr(text, "\"state\": \"completed\""));
        assert_non_null(strstr(text, "\"result\": \"CONTINUE\""));
        assert_non_null(strstr(text, "\"completed_at\": \"2026-11-26T16:21:15Z\""));
        assert_int_equal(lb_watch_state_parse(text, strlen(text), &back), 0);
        assert_true(back.have_hook);
        const struct lb_watch_hook *h = &back.hook;
        assert_string_equal(h->name, "lifeboat-drain");
        assert_string_equal(h->group, "eks ng/1 \xc3\xa9");
        assert_int_equal(h->state, LB_WATCH_HOOK_COMPLETED);
        assert_int_equal(h->heartbeat_timeout_s, 300);
        assert_int_equal(h->global_timeout_s, 30000);
        assert_string_equal(h->default_result, "CONTINUE");
        assert_int_equal(h->waiting_since, NOW_S + 10);
        assert_int_equal(h->heartbeats, 4);
        assert_int_equal(h->last_heartbeat, NOW_S + 460);
        assert_int_equal(h->completed_at, NOW_S + 500);
        assert_string_equal(h->completed_because, "drained");
        assert_string_equal(h->reason, "");
        _cleanup_free_ char *again = NULL;
        assert_int_equal(lb_watch_state_format(&back, &again), 0);
        assert_string_equal(text, again);

        /* Not known yet: nulls, and back. Only a completed hook has a result. */
        st.hook = (struct lb_watch_hook) { .name = "lifeboat-drain", .state = LB_WATCH_HOOK_HOLDING,
                                           .reason = "cannot find the Auto Scaling group" };
        free(text);
        text = NULL;
        assert_int_equal(lb_watch_state_format(&st, &text), 0);
        assert_non_null(strstr(text, "\"group\": null"));
        assert_non_null(strstr(text, "\"heartbeat_timeout_s\": null"));
        assert_non_null(strstr(text, "\"result\": null"));
        lb_watch_state_done(&back);
        assert_int_equal(lb_watch_state_parse(text, strlen(text), &back), 0);
        assert_string_equal(back.hook.group, "");
        assert_int_equal(back.hook.heartbeat_timeout_s, 0);
        assert_string_equal(back.hook.reason, "cannot find the Auto Scaling group");

        /* No hook configured: null, and a document without the key (an older watch) reads the same. */
        st.have_hook = false;
        free(text);
        text = NULL;
        assert_int_equal(lb_watch_state_format(&st, &text), 0);
        assert_non_null(strstr(text, "\"lifecycle_hook\": null"));
        lb_watch_state_done(&back);
        assert_int_equal(lb_watch_state_parse(text, strlen(text), &back), 0);
        assert_false(back.have_hook);
}

static void test_hook_bad_documents(void **state) {
        static const char *const hook_ok = ",\"lifecycle_hook\":{\"name\":\"h\",\"group\":null,\"state\":\"idle\","
                                           "\"heartbeat_timeout_s\":null,\"global_timeout_s\":null,"
                                           "\"default_result\":null,\"waiting_since\":null,\"heartbeats\":0,"
                                           "\"last_heartbeat_at\":null,\"completed_at\":null,\"result\":null,"
                                           "\"completed_because\":null,\"reason\":null}}";
        char doc[4096];
        size_t n = strlen(good_doc);
        assert_int_equal(lb_snprintf(doc, sizeof doc, "%.*s%s", (int) (n - 1), good_doc, hook_ok), 0);
        _cleanup_watch_state_ struct lb_watch_state st = { 0 };
        assert_int_equal(lb_watch_state_parse(doc, strlen(doc), &st), 0);
        assert_true(st.have_hook);
        assert_int_equal(st.hook.state, LB_WATCH_HOOK_IDLE);

        static const struct {
                const char *from, *to;
        } bad[] = {
                { "\"name\":\"h\"", "\"name\":\"a hook\"" },
                { "\"name\":\"h\",", "" },
                { "\"group\":null", "\"group\":\"a\\nb\"" },
                { "\"state\":\"idle\"", "\"state\":\"abandoned\"" },
                { "\"heartbeats\":0", "\"heartbeats\":-1" },
                { "\"heartbeats\":0", "\"heartbeats\":4294967296" },
                { "\"heartbeat_timeout_s\":null", "\"heartbeat_timeout_s\":\"300\"" },
                { "\"waiting_since\":null", "\"waiting_since\":\"soon\"" },
                { "{\"name\":\"h\"", "[{\"name\":\"h\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char changed[4096];
                const char *at = strstr(doc, bad[i].from);
                assert_non_null(at);
                assert_int_equal(lb_snprintf(changed, sizeof changed, "%.*s%s%s", (int) (at - doc), doc, bad[i].to,
                                             at + strlen(bad[i].from)),
                                 0);
                struct lb_watch_state b;
                if (lb_watch_state_parse(changed, strlen(changed), &b) != -EBADMSG)
                        fail_msg("accepted: %s", changed);
        }
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

struct doc {
        const char *text;
        size_t len;
};

static int parse_doc(void *arg) {
        const struct doc *d = arg;
        struct lb_watch_state st = { 0 };
        int r = lb_watch_state_parse(d->text, d->len, &st);
        lb_watch_state_done(&st);
        return r;
}

/* good_doc with its "recovered" array replaced by text. */
static void with_recovered(struct lb_buf *b, const char *text) {
        const char *at = strstr(good_doc, "\"recovered\":[]");
        assert_non_null(at);
        assert_int_equal(lb_buf_append(b, good_doc, (size_t) (at - good_doc)), 0);
        assert_int_equal(lb_buf_printf(b, "\"recovered\":%s", text), 0);
        assert_int_equal(lb_buf_append_str(b, at + strlen("\"recovered\":[]")), 0);
}

/* A 1 MiB watch.json of "{}" entries once made the reader ask for 350 000 entries of 4 KiB. */
static void test_parse_allocates_as_entries_validate(void **state) {
        _cleanup_buf_ struct lb_buf list = { 0 }, b = { 0 };
        assert_int_equal(lb_buf_append_str(&list, "["), 0);
        while (list.len + 600 < LB_WATCH_STATE_MAX_BYTES)
                assert_int_equal(lb_buf_append_str(&list, "{},"), 0);
        assert_int_equal(lb_buf_append_str(&list, "{}]"), 0);
        with_recovered(&b, list.data);
        struct doc d = { b.data, b.len };
        assert_int_equal(lbt_with_memory_limit(parse_doc, &d), -EBADMSG);

        /* LB_WATCH_MAX_RECOVERED valid entries are read; one more is refused. */
        for (unsigned n = LB_WATCH_MAX_RECOVERED; n <= LB_WATCH_MAX_RECOVERED + 1; n++) {
                lb_buf_free(&list);
                lb_buf_free(&b);
                for (unsigned i = 0; i < n; i++)
                        assert_int_equal(lb_buf_printf(&list, "%s{\"volume_id\":\"vol-%017x\",\"mount_path\":\"/r\","
                                                              "\"state\":\"released\",\"chunk_files\":0,\"chunk_bytes\":0,"
                                                              "\"empty_since\":null,\"backup_files\":0,\"released_at\":null}",
                                                       i == 0 ? "[" : ",", i), 0);
                assert_int_equal(lb_buf_append_str(&list, "]"), 0);
                with_recovered(&b, list.data);
                _cleanup_watch_state_ struct lb_watch_state st = { 0 };
                int r = lb_watch_state_parse(b.data, b.len, &st);
                if (n == LB_WATCH_MAX_RECOVERED) {
                        assert_int_equal(r, 0);
                        assert_int_equal(st.n_recovered, n);
                        assert_string_equal(st.recovered[n - 1].volume_id, "vol-000000000000000ff");
                } else
                        assert_int_equal(r, -EBADMSG);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names_round_trip),
                cmocka_unit_test(test_state_round_trip),
                cmocka_unit_test(test_holders_round_trip),
                cmocka_unit_test(test_parse_rejects_bad_documents),
                cmocka_unit_test(test_unconfirmed_round_trip),
                cmocka_unit_test(test_hook_round_trip),
                cmocka_unit_test(test_hook_bad_documents),
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_parse_allocates_as_entries_validate),
                cmocka_unit_test(test_running),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
