/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <math.h>

#include "lifeboat/aws/retry.h"
#include "lifeboat/basic/macro.h"

static void test_delay_first_attempt_and_zero(void **state) {
        assert_int_equal(lb_retry_delay_ms(0, 0.9), 0);
        assert_int_equal(lb_retry_delay_ms(1, 0.9), 0);
        for (unsigned attempt = 2; attempt < 40; attempt++)
                assert_int_equal(lb_retry_delay_ms(attempt, 0.0), 0);
}

static void test_delay_bounds(void **state) {
        /* Ceiling before attempt N: min(2^(N-2), 20) s. */
        static const struct {
                unsigned attempt;
                uint64_t ceiling;
        } cases[] = {
                { 2, 1000 },  { 3, 2000 },   { 4, 4000 },   { 5, 8000 },    { 6, 16000 },
                { 7, 20000 }, { 8, 20000 },  { 33, 20000 }, { 34, 20000 },  { 100, 20000 },
                { UINT_MAX, 20000 },
        };
        static const double rands[] = { 0.0, 1e-9, 0.001, 0.25, 0.5, 0.75, 0.999, 0.9999999999,
                                        nextafter(1.0, 0.0) };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t max_seen = 0;
                for (size_t j = 0; j < ELEMENTSOF(rands); j++) {
                        uint64_t d = lb_retry_delay_ms(cases[i].attempt, rands[j]);
                        assert_true(d < cases[i].ceiling);
                        assert_true(d <= LB_RETRY_CAP_MS);
                        max_seen = MAX(max_seen, d);
                }
                /* The range is really used, not collapsed to something small. */
                assert_true(max_seen >= cases[i].ceiling * 99 / 100);
        }

        /* Proportional to the random number. */
        assert_int_equal(lb_retry_delay_ms(2, 0.5), 500);
        assert_int_equal(lb_retry_delay_ms(3, 0.5), 1000);
        assert_int_equal(lb_retry_delay_ms(3, 0.25), 500);
        assert_int_equal(lb_retry_delay_ms(10, 0.5), 10000);
}

static void test_delay_bad_random(void **state) {
        /* A broken random source never produces delays outside the window. */
        assert_int_equal(lb_retry_delay_ms(3, -0.5), 0);
        assert_int_equal(lb_retry_delay_ms(3, NAN), 0);
        assert_true(lb_retry_delay_ms(3, 1.0) < 2000);
        assert_true(lb_retry_delay_ms(3, 7.0) < 2000);
        assert_true(lb_retry_delay_ms(50, INFINITY) < 20000);
}

static void test_quota_exhaustion(void **state) {
        struct lb_retry_quota q;
        lb_retry_quota_init(&q);
        assert_int_equal(q.tokens, LB_RETRY_QUOTA);

        /* 100 retries at 5 tokens use up all 500. */
        for (int i = 0; i < 100; i++)
                assert_int_equal(lb_retry_quota_acquire(&q, false), 0);
        assert_int_equal(q.tokens, 0);
        assert_int_equal(lb_retry_quota_acquire(&q, false), -EBUSY);
        assert_int_equal(lb_retry_quota_acquire(&q, true), -EBUSY);
        assert_int_equal(q.tokens, 0);

        /* A success after a retry gives its cost back. */
        lb_retry_quota_release(&q, true, false);
        assert_int_equal(q.tokens, 5);
        assert_int_equal(lb_retry_quota_acquire(&q, true), -EBUSY); /* a timeout retry costs 10 */
        assert_int_equal(lb_retry_quota_acquire(&q, false), 0);
        assert_int_equal(q.tokens, 0);

        /* First-try successes refund one token each. */
        for (int i = 0; i < 4; i++)
                lb_retry_quota_release(&q, false, false);
        assert_int_equal(q.tokens, 4);
        assert_int_equal(lb_retry_quota_acquire(&q, false), -EBUSY);
        lb_retry_quota_release(&q, false, false);
        assert_int_equal(lb_retry_quota_acquire(&q, false), 0);
}

static void test_quota_timeouts(void **state) {
        struct lb_retry_quota q;
        lb_retry_quota_init(&q);
        for (int i = 0; i < 50; i++)
                assert_int_equal(lb_retry_quota_acquire(&q, true), 0);
        assert_int_equal(lb_retry_quota_acquire(&q, true), -EBUSY);
        assert_int_equal(lb_retry_quota_acquire(&q, false), -EBUSY);

        lb_retry_quota_release(&q, true, true);
        assert_int_equal(q.tokens, 10);
}

static void test_quota_never_above_capacity(void **state) {
        struct lb_retry_quota q;
        lb_retry_quota_init(&q);
        for (int i = 0; i < 1000; i++)
                lb_retry_quota_release(&q, false, false);
        assert_int_equal(q.tokens, LB_RETRY_QUOTA);
        lb_retry_quota_release(&q, true, true);
        assert_int_equal(q.tokens, LB_RETRY_QUOTA);

        assert_int_equal(lb_retry_quota_acquire(&q, false), 0);
        lb_retry_quota_release(&q, true, true); /* refund capped, not 505 */
        assert_int_equal(q.tokens, LB_RETRY_QUOTA);
}

static void test_throttle_codes(void **state) {
        static const char *const yes[] = {
                "RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
                "RequestThrottledException", "EC2ThrottledException", "TooManyRequestsException",
                "PriorRequestNotComplete", "SlowDown",
        };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_true(lb_retry_is_throttle_code(yes[i]));

        static const char *const no[] = {
                "VolumeInUse", "AuthFailure", "InternalError", "throttling", "Throttling ", "", "IncorrectState",
                "AttachmentLimitExceeded", "VolumeLimitExceeded",
        };
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                assert_false(lb_retry_is_throttle_code(no[i]));
        assert_false(lb_retry_is_throttle_code(NULL));
}

static void test_retryable(void **state) {
        /* Server errors by status, whatever the code. */
        assert_true(lb_retry_is_retryable(false, 500, NULL));
        assert_true(lb_retry_is_retryable(false, 502, ""));
        assert_true(lb_retry_is_retryable(false, 503, "Unavailable"));
        assert_true(lb_retry_is_retryable(false, 504, NULL));
        assert_true(lb_retry_is_retryable(false, 500, "InternalError"));

        /* No answer at all: connection refused, reset, timeout. */
        assert_true(lb_retry_is_retryable(true, 0, NULL));

        /* Throttling whatever the status (EC2 uses 503, others 400 or 429). */
        assert_true(lb_retry_is_retryable(false, 503, "RequestLimitExceeded"));
        assert_true(lb_retry_is_retryable(false, 400, "Throttling"));
        assert_true(lb_retry_is_retryable(false, 429, "TooManyRequestsException"));
        assert_true(lb_retry_is_retryable(false, 400, "RequestTimeout"));

        /* Client errors are final. */
        assert_false(lb_retry_is_retryable(false, 400, "VolumeInUse"));
        assert_false(lb_retry_is_retryable(false, 401, "AuthFailure"));
        assert_false(lb_retry_is_retryable(false, 403, "UnauthorizedOperation"));
        assert_false(lb_retry_is_retryable(false, 400, "InvalidParameterValue"));
        assert_false(lb_retry_is_retryable(false, 400, "IncorrectState"));
        assert_false(lb_retry_is_retryable(false, 400, "InvalidVolume.NotFound"));
        assert_false(lb_retry_is_retryable(false, 404, NULL));
        assert_false(lb_retry_is_retryable(false, 501, NULL));
        assert_false(lb_retry_is_retryable(false, 200, NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_delay_first_attempt_and_zero),
                cmocka_unit_test(test_delay_bounds),
                cmocka_unit_test(test_delay_bad_random),
                cmocka_unit_test(test_quota_exhaustion),
                cmocka_unit_test(test_quota_timeouts),
                cmocka_unit_test(test_quota_never_above_capacity),
                cmocka_unit_test(test_throttle_codes),
                cmocka_unit_test(test_retryable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
