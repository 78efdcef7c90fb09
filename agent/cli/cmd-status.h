/* SPDX-License-Identifier: MIT */
#pragma once

struct lb_context;

/* lifeboat status: show this instance, its group and the group's volumes. Parses its own options (argv[0] is "status"), returns an exit code. */
int lb_cmd_status(struct lb_context *ctx, int argc, char **argv);
