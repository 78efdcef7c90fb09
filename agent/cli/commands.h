/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdarg.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"

struct lb_context;


/* Each command parses its own options (argv[0] is the command name) and returns an exit code. */
int lb_cmd_status(struct lb_context *ctx, int argc, char **argv);
int lb_cmd_boot(struct lb_context *ctx, int argc, char **argv);
int lb_cmd_reap(struct lb_context *ctx, int argc, char **argv);
int lb_cmd_watch(struct lb_context *ctx, int argc, char **argv);

/* ---- shared by the commands (agent/cmd-common.c) ---- */

/* Call once getopt_long() is done: refuses a leftover argument (naming it on stderr), then
 * lb_settings_finalize(). 0, or a negative errno: the command exits with LB_EXIT_USAGE. */
int lb_cmd_options_done(struct lb_context *ctx, int argc, char **argv);
/* Prints root on stdout the way every --json report looks: indented, keys sorted. */
int lb_cmd_print_json(const json_t *root);
/* Maps a negative errno from opening AWS to an exit code. */
int lb_exit_code_for_aws_error(int r);
/* The log sink main installs: stderr, one "lifeboat: [level: ]message" line each (debug only
 * with --verbose, by ctx->log_max_level). */
void lb_log_stderr(void *userdata, int level, const char *fmt, va_list ap);
