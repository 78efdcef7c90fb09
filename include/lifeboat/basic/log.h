/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdarg.h>

#include "lifeboat/basic/macro.h"

/*
 * Library modules never print. They hand messages to the sink the command
 * installed in the context (kmod's log_fn model); the command decides what
 * the user sees. Without a sink nothing is printed.
 */
enum lb_log_level {
        LB_LOG_ERR = 3,
        LB_LOG_WARNING = 4,
        LB_LOG_NOTICE = 5,
        LB_LOG_INFO = 6,
        LB_LOG_DEBUG = 7,
};

struct lb_context;
typedef void (*lb_log_fn)(void *userdata, int level, const char *fmt, va_list ap);

/* Hands the message to ctx->log_fn when its level is at most ctx->log_max_level. Safe to call
 * from several threads: the sink is called for one message at a time. */
void lb_log(const struct lb_context *ctx, int level, const char *fmt, ...) _printf_(3, 4);
/* The stderr sink main installs is lb_log_stderr() (lifeboat/commands.h). */

#define lb_debug(ctx, ...) lb_log((ctx), LB_LOG_DEBUG, __VA_ARGS__)
#define lb_info(ctx, ...) lb_log((ctx), LB_LOG_INFO, __VA_ARGS__)
#define lb_notice(ctx, ...) lb_log((ctx), LB_LOG_NOTICE, __VA_ARGS__)
#define lb_warn(ctx, ...) lb_log((ctx), LB_LOG_WARNING, __VA_ARGS__)
#define lb_err(ctx, ...) lb_log((ctx), LB_LOG_ERR, __VA_ARGS__)
