/* SPDX-License-Identifier: MIT */
#pragma once

struct lb_context;

/* lifeboat boot: prepare the buffer volume and recover the group's dirty volumes. Parses its own options (argv[0] is "boot"), returns an exit code. */
int lb_cmd_boot(struct lb_context *ctx, int argc, char **argv);
