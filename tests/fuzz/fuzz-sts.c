/* SPDX-License-Identifier: MIT */
/* aws/sts: the answer of AssumeRoleWithWebIdentity. */
#include <stdint.h>
#include <string.h>

#include "lifeboat/aws/creds.h"
#include "lifeboat/aws/sts.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct lb_credentials c = { 0 };
        char arn[64];
        if (lb_sts_parse_assume_role_with_web_identity((const char *) data, size, &c, arn, sizeof arn) >= 0) {
                fuzz_check(c.access_key_id[0] != '\0' && c.secret_access_key[0] != '\0');
                fuzz_check(c.session_token && c.session_token[0] != '\0' && c.expiration != 0);
                fuzz_check(strlen(arn) < sizeof arn);
        }
        lb_credentials_done(&c);
        return 0;
}
