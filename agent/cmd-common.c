/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "lifeboat/commands.h"
#include "lifeboat/context.h"

int lb_cmd_finalize_settings(struct lb_context *ctx) {
        return lb_settings_finalize(ctx);
}

int lb_exit_code_for_aws_error(int r) {
        switch (r) {
        case -EINVAL:
        case -ENAMETOOLONG:
                return LB_EXIT_USAGE;
        default:
                /* Unreachable, throttled past retries, refused credentials: AWS is not usable. */
                return LB_EXIT_UNAVAILABLE;
        }
}
