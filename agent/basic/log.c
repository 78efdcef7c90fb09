/* SPDX-License-Identifier: MIT */
#include <pthread.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/log.h"

/* boot recovers volumes on threads of their own, and every thread logs. Sinks keep state (the
 * cli's remembers the last error) and write to one stream: one message at a time. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void lb_log(const struct lb_context *ctx, int level, const char *fmt, ...) {
        if (!ctx || !ctx->log_fn || level > ctx->log_max_level)
                return;
        va_list ap;
        va_start(ap, fmt);
        (void) pthread_mutex_lock(&log_lock);
        ctx->log_fn(ctx->log_userdata, level, fmt, ap);
        (void) pthread_mutex_unlock(&log_lock);
        va_end(ap);
}
