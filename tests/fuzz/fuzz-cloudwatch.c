/* SPDX-License-Identifier: MIT */
/* aws/cloudwatch: the PutMetricData answer. Anything but a PutMetricDataResponse is refused. */
#include <errno.h>

#include "lifeboat/aws/cloudwatch.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        int r = lb_cloudwatch_parse_put_metric_data((const char *) data, size);
        fuzz_check(r == 0 || r == -EBADMSG || r == -ENOMEM);
        return 0;
}
