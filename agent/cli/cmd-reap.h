/* SPDX-License-Identifier: MIT */
#pragma once

struct lb_context;

/* lifeboat reap: delete flushed volumes, report stranded and quarantined ones. Parses its own options (argv[0] is "reap"), returns an exit code. */
int lb_cmd_reap(struct lb_context *ctx, int argc, char **argv);
