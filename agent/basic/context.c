/* SPDX-License-Identifier: MIT */
#include "lifeboat/basic/context.h"

int lb_context_init(struct lb_context *ctx) {
        *ctx = (struct lb_context) {
                .log_max_level = LB_LOG_INFO,
        };
        return lb_settings_init_defaults(&ctx->settings);
}

void lb_context_done(struct lb_context *ctx) {
        lb_settings_done(&ctx->settings);
}

