/* SPDX-License-Identifier: MIT */
/* lifeboat watch: the deadline and the state transitions (pure decisions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lifeboat/state/watch-state.h"
#include "watch/lifecycle.h"
#include "watch/notice.h"
#include "watch/own.h"
#include "watch/release.h"

#define NOW_S 1795709575 /* 2026-11-26T16:12:55Z */
#define NOW_MS ((uint64_t) NOW_S * 1000u)

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

/* The deadline of a scale-in held by a lifecycle hook counts from the start of the wait. */
static void test_budget_lifecycle(void **state) {
        const uint64_t T15M = 15 * 60 * 1000;
        /* Just seen: the whole timeout. No start known yet (0): counted from now. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS, T15M, 0, 10000), T15M);
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, 0, T15M, 0, 10000), T15M);
        /* A watch restarted 5 min into the wait gets the rest. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS - 300000, T15M, 0, 10000), T15M - 300000);
        /* Past it: nothing left, not a wrap-around. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS - T15M - 1, T15M, 0, 10000), 0);
        /* The hook's global timeout ends the wait earlier than the setting: its end minus the margin. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS, T15M, 300, 10000), 290000);
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS - 100000, T15M, 300, 10000), 190000);
        /* A later global timeout changes nothing. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS, T15M, 172800, 10000), T15M);
        /* The global end already inside the margin, or a margin larger than the clock: 0. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS - 295000, T15M, 300, 10000), 0);
        assert_int_equal(lb_watch_lifecycle_budget_ms(1000, 1000, T15M, 1, 5000), 0);
        /* A start in the future (a clock step back): counted as now. */
        assert_int_equal(lb_watch_lifecycle_budget_ms(NOW_MS, NOW_MS + 5000, T15M, 0, 10000), T15M);
}

static void test_hook_next_step(void **state) {
        const enum lb_watch_hook_step W = LB_WATCH_HOOK_WAIT, H = LB_WATCH_HOOK_HEARTBEAT, C = LB_WATCH_HOOK_COMPLETE;
        const uint64_t HT = 30000, LIMIT = 100000;
        static const struct {
                enum lb_watch_own_state own;
                bool stopping;
                uint64_t now, expires;
                enum lb_watch_hook_step step;
        } cases[] = {
                /* Drained (tagged flushed), or nothing to drain: complete at once, stopping or not. */
                { LB_WATCH_OWN_FLUSHED, false, 10, 0, C },
                { LB_WATCH_OWN_FLUSHED, true, 10, 20000, C },
                { LB_WATCH_OWN_NONE, false, 10, 0, C },
                /* Not confirmed yet: the first heartbeat says whether the hook holds. */
                { LB_WATCH_OWN_DRAINING, false, 10, 0, H },
                { LB_WATCH_OWN_UNKNOWN, false, 10, 0, H },
                { LB_WATCH_OWN_DRAINING, true, 10, 0, H },
                /* Holding: a heartbeat once half the heartbeat timeout is left. */
                { LB_WATCH_OWN_DRAINING, false, 10000, 40000, W },
                { LB_WATCH_OWN_DRAINING, false, 24999, 40000, W },
                { LB_WATCH_OWN_DRAINING, false, 25000, 40000, H },
                { LB_WATCH_OWN_DRAINING, false, 39000, 40000, H },
                { LB_WATCH_OWN_DIRTY, false, 25000, 40000, H },
                /* A stop keeps the wait alive too, while it looks once more. */
                { LB_WATCH_OWN_DRAINING, true, 25000, 40000, H },
                /* Near the limit: no heartbeat that would carry the wait far past it. */
                { LB_WATCH_OWN_DRAINING, false, 99000, LIMIT + HT / 2 + 1, W },
                { LB_WATCH_OWN_DRAINING, false, 95000, LIMIT + 5000, H },
                /* The limit: complete, drained or not, stopping or not. */
                { LB_WATCH_OWN_DRAINING, false, LIMIT, 120000, C },
                { LB_WATCH_OWN_UNKNOWN, false, LIMIT + 1, 120000, C },
                { LB_WATCH_OWN_DRAINING, true, LIMIT, 120000, C },
                { LB_WATCH_OWN_UNDRAINED, true, LIMIT, 120000, C },
                /* Undrained before the limit (the deadline passed): complete, but not at a stop,
                 * whose own budget decided that (a new watch takes the wait over). */
                { LB_WATCH_OWN_UNDRAINED, false, 50000, 60000, C },
                { LB_WATCH_OWN_UNDRAINED, true, 50000, 80000, W },
                { LB_WATCH_OWN_UNDRAINED, true, 50000, 0, H },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                enum lb_watch_hook_step got = lb_watch_hook_next_step(cases[i].own, cases[i].stopping, cases[i].now,
                                                                      LIMIT, cases[i].expires, HT);
                if (got != cases[i].step)
                        fail_msg("case %zu: %s stopping=%d now=%" PRIu64 " expires=%" PRIu64 " -> %d, expected %d", i,
                                 lb_watch_own_state_to_string(cases[i].own), cases[i].stopping, cases[i].now,
                                 cases[i].expires, (int) got, (int) cases[i].step);
        }
}

/* A whole hold, poll by poll, with the hook's rules (a heartbeat restarts its timeout): the wait
 * never runs out while watch holds it, and ends at the limit, not a poll later. */
static void test_hook_hold_never_lapses(void **state) {
        static const uint64_t heartbeat_timeouts[] = { 30000, 60000, 300000, 3600000 };
        static const uint64_t polls[] = { 200, 2000, 5000 };
        static const uint64_t limits[] = { 1000, 59000, 15 * 60 * 1000, 2 * 3600 * 1000 };
        for (size_t a = 0; a < ELEMENTSOF(heartbeat_timeouts); a++)
                for (size_t b = 0; b < ELEMENTSOF(polls); b++)
                        for (size_t c = 0; c < ELEMENTSOF(limits); c++) {
                                uint64_t ht = heartbeat_timeouts[a], poll = polls[b], limit = limits[c];
                                uint64_t group_expires = ht; /* the wait began at 0 */
                                uint64_t expires = 0, now = 0;
                                unsigned beats = 0;
                                for (;; now += poll) {
                                        assert_true(now < group_expires);
                                        enum lb_watch_hook_step st = lb_watch_hook_next_step(
                                                LB_WATCH_OWN_DRAINING, false, now, limit, expires, ht);
                                        if (st == LB_WATCH_HOOK_COMPLETE)
                                                break;
                                        if (st == LB_WATCH_HOOK_HEARTBEAT) {
                                                expires = group_expires = now + ht;
                                                beats++;
                                        }
                                }
                                assert_true(now >= limit && now < limit + poll);
                                /* At most one heartbeat per half heartbeat timeout, and a first one. */
                                assert_true(beats >= 1 && beats <= 1 + limit / (ht / 2) + 1);
                        }
}

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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_budget_spot),
                cmocka_unit_test(test_budget_other_triggers),
                cmocka_unit_test(test_budget_lifecycle),
                cmocka_unit_test(test_hook_next_step),
                cmocka_unit_test(test_hook_hold_never_lapses),
                cmocka_unit_test(test_own_next),
                cmocka_unit_test(test_rec_next),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
