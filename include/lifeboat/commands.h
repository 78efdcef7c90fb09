/* SPDX-License-Identifier: MIT */
#pragma once

struct lb_context;

/* Exit codes, documented in the README. */
enum {
        LB_EXIT_OK = 0,
        LB_EXIT_PARTIAL = 1,    /* some volumes skipped or quarantined */
        LB_EXIT_USAGE = 2,      /* usage or configuration error */
        LB_EXIT_UNAVAILABLE = 3, /* AWS unreachable, or own buffer volume not ready */
        LB_EXIT_ATTENTION = 4,  /* reap: stranded or quarantined volumes need a human */
};

/* Each command parses its own options (argv[0] is the command name) and returns an exit code. */
int lb_cmd_status(struct lb_context *ctx, int argc, char **argv);
int lb_cmd_boot(struct lb_context *ctx, int argc, char **argv);
int lb_cmd_reap(struct lb_context *ctx, int argc, char **argv);
int lb_cmd_watch(struct lb_context *ctx, int argc, char **argv);

/* Shared by commands: applies "--key value" style overrides after the environment. */
int lb_cmd_finalize_settings(struct lb_context *ctx);
/* Maps a negative errno from opening AWS to an exit code. */
int lb_exit_code_for_aws_error(int r);
