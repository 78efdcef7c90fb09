/* SPDX-License-Identifier: MIT */
#pragma once

struct lb_context;

/* lifeboat watch: drain the buffer volume at the end; release recovered volumes. Parses its own options (argv[0] is "watch"), returns an exit code. */
int lb_cmd_watch(struct lb_context *ctx, int argc, char **argv);
