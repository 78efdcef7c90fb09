/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "lifeboat/context.h"
#include "lifeboat/log.h"

void lb_log(const struct lb_context *ctx, int level, const char *fmt, ...) {
        if (!ctx || !ctx->log_fn || level > ctx->log_max_level)
                return;
        va_list ap;
        va_start(ap, fmt);
        ctx->log_fn(ctx->log_userdata, level, fmt, ap);
        va_end(ap);
}

static const char *level_prefix(int level) {
        switch (level) {
        case LB_LOG_ERR:
                return "error: ";
        case LB_LOG_WARNING:
                return "warning: ";
        case LB_LOG_DEBUG:
                return "debug: ";
        default:
                return "";
        }
}

/* One line per message, written with a single call so concurrent writers
 * (several lifeboat processes under one journal) don't interleave. */
void lb_log_stderr(void *userdata, int level, const char *fmt, va_list ap) {
        char msg[2048];
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        if (n < 0)
                return;
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == '\n')
                msg[--len] = '\0';
        (void) fprintf(stderr, "lifeboat: %s%s\n", level_prefix(level), msg);
}
