/* SPDX-License-Identifier: MIT */
/* The cli's output: log lines (plain and for the journal) that no value can split, and the
 * JSON contract's error object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cli/output.h"
#include "lifeboat/basic/log.h"

static void test_plain_lines(void **state) {
        struct lb_output out = { .journal = false };
        char line[256];
        assert_string_equal(lb_output_format_line(&out, LB_LOG_ERR, "no group", line, sizeof line),
                            "lifeboat: error: no group");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_WARNING, "w", line, sizeof line), "lifeboat: warning: w");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_INFO, "i", line, sizeof line), "lifeboat: i");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_DEBUG, "d", line, sizeof line), "lifeboat: debug: d");
}

static void test_journal_lines(void **state) {
        struct lb_output out = { .journal = true };
        char line[256];
        assert_string_equal(lb_output_format_line(&out, LB_LOG_ERR, "e", line, sizeof line), "<3>e");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_WARNING, "w", line, sizeof line), "<4>w");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_NOTICE, "n", line, sizeof line), "<5>n");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_INFO, "i", line, sizeof line), "<6>i");
        assert_string_equal(lb_output_format_line(&out, LB_LOG_DEBUG, "d", line, sizeof line), "<7>d");
}

static void test_values_cannot_split_a_line(void **state) {
        struct lb_output out = { .journal = true };
        char line[256];
        /* A tag value with a newline and a forged priority, and a terminal escape. */
        lb_output_format_line(&out, LB_LOG_INFO, "owner i-1\n<3>forged\x1b[2J", line, sizeof line);
        assert_string_equal(line, "<6>owner i-1\\n<3>forged\\x1b[2J");
        assert_null(strchr(line, '\n'));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_lines),
                cmocka_unit_test(test_journal_lines),
                cmocka_unit_test(test_values_cannot_split_a_line),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
