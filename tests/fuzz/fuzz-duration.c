/* SPDX-License-Identifier: MIT */
/* basic/parse-util: durations and the other small value parsers of settings and tags. A
 * duration formats to a text that parses back to it. */
#include <time.h>

#include "lifeboat/basic/parse-util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_string(data, size);
        if (!s)
                return 0;
        uint64_t ms, back;
        if (lb_parse_duration_ms(s, &ms) >= 0) {
                char text[64];
                fuzz_check(lb_format_duration_ms(ms, text, sizeof text) == 0);
                fuzz_check(lb_parse_duration_ms(text, &back) == 0 && back == ms);
        }
        time_t t;
        if (lb_parse_iso8601(s, &t) >= 0) {
                char text[64];
                time_t again;
                if (lb_format_iso8601(t, text, sizeof text) >= 0)
                        fuzz_check(lb_parse_iso8601(text, &again) == 0 && again == t);
        }
        uint64_t u;
        (void) lb_parse_uint(s, 0, UINT64_MAX, &u);
        bool b;
        (void) lb_parse_bool(s, &b);
        return 0;
}
