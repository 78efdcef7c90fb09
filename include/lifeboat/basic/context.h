/* SPDX-License-Identifier: MIT */
#pragma once

#include <signal.h>
#include <stdbool.h>

#include "lifeboat/basic/log.h"
#include "lifeboat/basic/settings.h"

/* The one context: settings, the log sink and the interruption flag. (The AWS clients a command
 * opens live in struct lb_aws, lifeboat/aws/session.h.) */
struct lb_context {
        struct lb_settings settings;
        lb_log_fn log_fn;
        void *log_userdata;
        int log_max_level;      /* messages above this level are dropped */
        bool verbose;
        /* Set from signal handlers; long waits check it. */
        volatile sig_atomic_t *interrupted;
};

/* Default settings, log level INFO, no log sink (nothing is printed until a command installs one). */
int lb_context_init(struct lb_context *ctx);
void lb_context_done(struct lb_context *ctx);
/* Whether a signal asked the command to stop (ctx->interrupted set and non-zero). */
static inline bool lb_context_interrupted(const struct lb_context *ctx) {
        return ctx->interrupted && *ctx->interrupted;
}

