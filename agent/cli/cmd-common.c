/* SPDX-License-Identifier: MIT */
/* What the commands (agent/cli/cmd-*.c, main.c) share: they alone decide what the user sees. */
#include <errno.h>
#include <getopt.h>

#include "cmd-common.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/log.h"

int lb_cmd_options_done(struct lb_context *ctx, int argc, char **argv) {
        if (optind < argc) {
                lb_err(ctx, "%s: unexpected argument '%s'", argv[0], argv[optind]);
                return -EINVAL;
        }
        return lb_settings_finalize(ctx);
}

void lb_cmd_bad_option(struct lb_context *ctx, const char *command, char **argv, int opt) {
        const char *arg = optind > 0 ? argv[optind - 1] : "";
        if (opt != 0 && opt != '?' && arg[0] == '-' && arg[1] != '-' && arg[1] != (char) opt)
                lb_err(ctx, "%s: unknown option '-%c'", command, opt);
        else
                lb_err(ctx, "%s: unknown option, or an option without its argument: '%s'", command, arg);
}

int lb_exit_code_for_aws_error(int r) {
        switch (r) {
        case -EINVAL:
        case -ENAMETOOLONG:
                return LB_EXIT_USAGE;
        default:
                /* Unreachable, throttled past retries, refused credentials: AWS is not usable. */
                return LB_EXIT_UNAVAILABLE;
        }
}
