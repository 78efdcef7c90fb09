/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdarg.h>

#include "lifeboat/basic/exit-status.h"

struct lb_context;

/* What the commands (agent/cli/cmd-*.c, main.c) share: they alone decide what the user sees. */

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
