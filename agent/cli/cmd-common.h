/* SPDX-License-Identifier: MIT */
#pragma once

#include "lifeboat/basic/exit-status.h"

struct lb_context;

/* What the commands (agent/cli/cmd-*.c, main.c) share: they alone decide what the user sees. */

/* Call once getopt_long() is done: refuses a leftover argument (naming it), then
 * lb_settings_finalize(). 0, or a negative errno: the command exits with LB_EXIT_USAGE. */
int lb_cmd_options_done(struct lb_context *ctx, int argc, char **argv);
/* Logs an option getopt_long() refused (opterr is 0: lifeboat says it, once, in its own log):
 * the unknown option, or the one missing its argument. */
void lb_cmd_bad_option(struct lb_context *ctx, const char *command, char **argv, int opt);
/* Maps a negative errno from opening AWS to an exit code. */
int lb_exit_code_for_aws_error(int r);
