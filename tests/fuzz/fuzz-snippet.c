/* SPDX-License-Identifier: MIT */
/* fluentd/snippet: templates rendered into recovery configs. A rendered snippet holds the
 * values and no placeholder of the template is left. */
#include "lifeboat/fluentd/snippet.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const struct lb_fluentd_vars vars = {
                .volume_id = "vol-0123456789abcdef0",
                .mount_path = "/var/lib/lifeboat/recovery/vol-0123456789abcdef0",
                .previous_owner = "i-0123456789abcdef0",
                .group = "fuzz-group",
        };
        _cleanup_free_ char *text = NULL;
        char reason[256];
        if (size > LB_FLUENTD_TEMPLATE_MAX ||
            lb_fluentd_render((const char *) data, size, &vars, &text, reason, sizeof reason) < 0)
                return 0;
        /* Every "{{" of the template was a placeholder, and no value brings one. */
        fuzz_check(text && !strstr(text, "{{"));
        return 0;
}
