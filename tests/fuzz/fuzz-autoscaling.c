/* SPDX-License-Identifier: MIT */
/* aws/autoscaling: every Auto Scaling answer parser, each on the same input, and the IMDS tag
 * value reader watch takes the group name from. What a parser accepts keeps its promises: an
 * instance id and a group name lifeboat may log, hook names PutLifecycleHook would take. */
#include <errno.h>

#include "lifeboat/aws/autoscaling.h"
#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/names.h"
#include "lifeboat/basic/utf8.h"
#include "fuzz.h"

static void parse_instances(const char *buf, size_t size) {
        _cleanup_asg_instance_list_ struct lb_asg_instance_list l = { 0 };
        char *token = NULL;
        int r = lb_autoscaling_parse_instances(buf, size, &l, &token);
        fuzz_check(r >= 0 || r == -EBADMSG || r == -ENOMEM);
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                fuzz_check(lb_instance_id_valid(l.items[i].instance_id) && lb_asg_name_valid(l.items[i].group));
        free(token);
}

static void parse_hooks(const char *buf, size_t size) {
        _cleanup_lifecycle_hook_list_ struct lb_lifecycle_hook_list l = { 0 };
        int r = lb_autoscaling_parse_lifecycle_hooks(buf, size, &l);
        fuzz_check(r >= 0 || r == -EBADMSG || r == -ENOMEM);
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                fuzz_check(lb_lifecycle_hook_name_valid(l.items[i].name) && lb_asg_name_valid(l.items[i].group));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        parse_instances(buf, size);
        parse_hooks(buf, size);
        int r = lb_autoscaling_parse_empty_result(buf, size, "CompleteLifecycleAction");
        fuzz_check(r == 0 || r == -EBADMSG || r == -ENOMEM);

        _cleanup_free_ char *text = fuzz_string(data, size);
        if (text) {
                char value[LB_ASG_NAME_MAX + 1];
                if (lb_imds_tag_value_parse(text, value, sizeof value) >= 0)
                        fuzz_check(lb_utf8_valid(value, strlen(value)));
        }
        return 0;
}
