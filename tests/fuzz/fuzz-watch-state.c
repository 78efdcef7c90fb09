/* SPDX-License-Identifier: MIT */
/* state/watch-state: watch.json. Whatever parses formats, and what it formats parses back and
 * formats to the same text. */
#include "lifeboat/state/watch-state.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_watch_state_ struct lb_watch_state st = { 0 }, back = { 0 };
        if (size > LB_WATCH_STATE_MAX_BYTES || lb_watch_state_parse((const char *) data, size, &st) < 0)
                return 0;
        fuzz_check(st.n_recovered <= LB_WATCH_MAX_RECOVERED && st.n_notices <= LB_WATCH_MAX_NOTICES);
        _cleanup_free_ char *text = NULL, *again = NULL;
        fuzz_check(lb_watch_state_format(&st, &text) == 0);
        fuzz_check(lb_watch_state_parse(text, strlen(text), &back) == 0);
        fuzz_check(back.n_recovered == st.n_recovered && back.n_notices == st.n_notices);
        fuzz_check(lb_watch_state_format(&back, &again) == 0);
        fuzz_check(streq(text, again));
        return 0;
}
