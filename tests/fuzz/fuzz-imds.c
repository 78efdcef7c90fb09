/* SPDX-License-Identifier: MIT */
/* aws/imds: the documents IMDS serves (identity, spot notice, rebalance, ASG lifecycle state,
 * role list), each parser on the same input. */
#include <time.h>

#include "lifeboat/aws/imds.h"
#include "lifeboat/basic/names.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_string(data, size);
        if (!s)
                return 0;

        struct lb_identity id;
        if (lb_identity_parse_document(s, &id) >= 0) {
                fuzz_check(lb_instance_id_valid(id.instance_id));
                fuzz_check(lb_region_valid(id.region));
        }
        struct lb_spot_notice n;
        if (lb_spot_notice_parse(s, &n) >= 0)
                (void) lb_spot_action_to_string(n.action);
        time_t t;
        (void) lb_rebalance_parse(s, &t);
        char state[32];
        if (lb_lifecycle_state_parse(s, state, sizeof state) >= 0)
                fuzz_check(strlen(state) < sizeof state);
        char role[65];
        if (lb_role_list_parse(s, role, sizeof role) >= 0)
                fuzz_check(role[0] != '\0' && strlen(role) <= 64 && !strchr(role, '/'));
        return 0;
}
