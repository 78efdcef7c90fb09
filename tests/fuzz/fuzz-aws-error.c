/* SPDX-License-Identifier: MIT */
/* aws/query: the error documents of EC2 and of the other Query services. What it keeps goes
 * into reports and logs: valid UTF-8, cut to fit. */
#include "lifeboat/aws/query.h"
#include "lifeboat/basic/utf8.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lb_aws_error e;
        if (lb_aws_parse_error((const char *) data, size, &e) < 0)
                return 0;
        fuzz_check(lb_utf8_valid(e.code, strlen(e.code)));
        fuzz_check(lb_utf8_valid(e.message, strlen(e.message)));
        fuzz_check(lb_utf8_valid(e.request_id, strlen(e.request_id)));
        char text[1024];
        (void) lb_aws_error_format(&e, text, sizeof text);
        fuzz_check(lb_utf8_valid(text, strlen(text)));
        (void) lb_aws_error_kind_to_errno(e.kind);
        return 0;
}
