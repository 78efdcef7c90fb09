/* SPDX-License-Identifier: MIT */
/* aws/creds-container: what the ECS agent or the EKS Pod Identity Agent answers. */
#include <stdint.h>
#include <string.h>

#include "lifeboat/aws/creds-container.h"
#include "lifeboat/aws/creds.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lb_credentials c = { 0 };
        char role[64], error[128];
        if (lb_container_credentials_parse((const char *) data, size, &c, role, sizeof role, error, sizeof error) >= 0) {
                fuzz_check(c.access_key_id[0] != '\0' && c.secret_access_key[0] != '\0');
                fuzz_check(c.session_token && c.expiration != 0);
                fuzz_check(strlen(role) < sizeof role);
        } else
                fuzz_check(error[0] != '\0');
        lb_credentials_done(&c);
        return 0;
}
