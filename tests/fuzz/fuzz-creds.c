/* SPDX-License-Identifier: MIT */
/* aws/creds: the instance role's credentials document (iam/security-credentials/ROLE). */
#include "lifeboat/aws/creds.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_string(data, size);
        if (!s)
                return 0;
        struct lb_credentials c = { 0 };
        if (lb_credentials_parse_role_json(s, &c) >= 0) {
                fuzz_check(c.access_key_id[0] != '\0' && c.secret_access_key[0] != '\0');
                (void) lb_credentials_need_refresh(&c, time(NULL));
        }
        lb_credentials_done(&c);
        return 0;
}
