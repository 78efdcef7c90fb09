/* SPDX-License-Identifier: MIT */
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"

void lb_log(const struct lb_context *ctx, int level, const char *fmt, ...) {
        if (!ctx || !ctx->log_fn || level > ctx->log_max_level)
                return;
        va_list ap;
        va_start(ap, fmt);
        ctx->log_fn(ctx->log_userdata, level, fmt, ap);
        va_end(ap);
}
