/* SPDX-License-Identifier: MIT */
/* Untrusted text: valid UTF-8, cuts on character boundaries, escapes for logs and tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lifeboat/basic/utf8.h"

static void test_char_len(void **state) {
        assert_int_equal(lb_utf8_char_len("a", 1), 1);
        assert_int_equal(lb_utf8_char_len("\xc3\xa9", 2), 2);           /* é */
        assert_int_equal(lb_utf8_char_len("\xe2\x82\xac", 3), 3);       /* € */
        assert_int_equal(lb_utf8_char_len("\xf0\x9f\x9a\xa3", 4), 4);   /* 🚣 */
        assert_int_equal(lb_utf8_char_len("\xc3", 1), 0);               /* cut short */
        assert_int_equal(lb_utf8_char_len("\xe2\x82", 3), 0);           /* NUL inside */
        assert_int_equal(lb_utf8_char_len("\x80", 1), 0);               /* stray continuation */
        assert_int_equal(lb_utf8_char_len("\xc0\xaf", 2), 0);           /* overlong '/' */
        assert_int_equal(lb_utf8_char_len("\xed\xa0\x80", 3), 0);       /* surrogate */
        assert_int_equal(lb_utf8_char_len("\xf4\x90\x80\x80", 4), 0);   /* past U+10FFFF */
        assert_int_equal(lb_utf8_char_len("", 0), 0);
        assert_true(lb_utf8_valid("d\xc3\xa9j\xc3\xa0 vu", 9));
        assert_false(lb_utf8_valid("caf\xc3", 4));
}

static void test_copy_cuts_on_boundaries(void **state) {
        char buf[6];
        /* "ab€d": a 5-byte buffer holds "ab" and not half of the euro sign. */
        assert_string_equal(lb_utf8_copy(buf, 5, "ab\xe2\x82\xac" "d"), "ab");
        assert_string_equal(lb_utf8_copy(buf, 6, "ab\xe2\x82\xac" "d"), "ab\xe2\x82\xac");
        assert_true(lb_utf8_valid(buf, strlen(buf)));
        assert_string_equal(lb_utf8_copy(buf, sizeof buf, "short"), "short");
        /* Invalid bytes are kept, one byte each. */
        assert_string_equal(lb_utf8_copy(buf, sizeof buf, "a\xff" "bcdef"), "a\xff" "bcd");

        char msg[8];
        lb_utf8_snprintf(msg, sizeof msg, "%s=%s", "k", "\xc3\xa9\xc3\xa9");
        assert_string_equal(msg, "k=\xc3\xa9\xc3\xa9");
        /* "k=ééé" needs 9 bytes: 8 hold "k=éé" and not the first byte of the third é. */
        lb_utf8_snprintf(msg, sizeof msg, "%s=%s", "k", "\xc3\xa9\xc3\xa9\xc3\xa9");
        assert_string_equal(msg, "k=\xc3\xa9\xc3\xa9");
        lb_utf8_snprintf(msg, 6, "%s=%s", "k", "\xc3\xa9\xc3\xa9\xc3\xa9");
        assert_string_equal(msg, "k=\xc3\xa9");
        assert_true(lb_utf8_valid(msg, strlen(msg)));
}

/* However long the text, the cut is on a boundary (a text longer than any scratch buffer too). */
static void test_snprintf_long_text(void **state) {
        static char big[9001], out[8001];
        big[0] = 'x';
        for (size_t i = 1; i + 2 < sizeof big; i += 2)
                memcpy(big + i, "\xc3\xa9", 2);
        lb_utf8_snprintf(out, sizeof out, "%s", big);
        assert_int_equal(strlen(out), sizeof out - 2); /* 7999: "x" and 3999 é, not half of one */
        assert_true(lb_utf8_valid(out, strlen(out)));
        assert_memory_equal(out, big, strlen(out));
}

static void test_cescape(void **state) {
        char buf[64];
        assert_string_equal(lb_cescape("plain text", buf, sizeof buf), "plain text");
        assert_string_equal(lb_cescape("a\nb\tc\\d", buf, sizeof buf), "a\\nb\\tc\\\\d");
        assert_string_equal(lb_cescape("\x1b[31mred", buf, sizeof buf), "\\x1b[31mred");
        assert_string_equal(lb_cescape("del\x7f", buf, sizeof buf), "del\\x7f");
        assert_string_equal(lb_cescape("c1\xc2\x9b", buf, sizeof buf), "c1\\x9b");
        assert_string_equal(lb_cescape("caf\xc3\xa9", buf, sizeof buf), "caf\xc3\xa9");
        assert_string_equal(lb_cescape("bad\xff", buf, sizeof buf), "bad\\xff");
        /* Cut to fit, never inside an escape or a character, with an ellipsis. */
        char small[10];
        assert_string_equal(lb_cescape("0123456789abc", small, sizeof small), "012345...");
        assert_string_equal(lb_cescape("012345678", small, sizeof small), "012345678");
        assert_string_equal(lb_cescape("ab\ncdefgh", small, sizeof small), "ab\\ncd...");
        assert_string_equal(lb_cescape("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", small, sizeof small),
                            "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
        assert_string_equal(lb_cescape("\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac!", small, sizeof small),
                            "\xe2\x82\xac\xe2\x82\xac...");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_char_len),
                cmocka_unit_test(test_copy_cuts_on_boundaries),
                cmocka_unit_test(test_snprintf_long_text),
                cmocka_unit_test(test_cescape),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
