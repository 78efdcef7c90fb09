/* SPDX-License-Identifier: MIT */
/* What the commands (agent/cmd-*.c, agent/main.c) share: they alone decide what the user sees. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd-common.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/log.h"

int lb_cmd_options_done(struct lb_context *ctx, int argc, char **argv) {
        if (optind < argc) {
                fprintf(stderr, "lifeboat %s: unexpected argument '%s'\n", argv[0], argv[optind]);
                return -EINVAL;
        }
        return lb_settings_finalize(ctx);
}

int lb_cmd_print_json(const json_t *root) {
        _cleanup_free_ char *text = NULL;
        int r = lb_json_dump_line(root, JSON_INDENT(2) | JSON_SORT_KEYS, &text);
        if (r < 0)
                return r;
        (void) fputs(text, stdout);
        return 0;
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

static const char *level_prefix(int level) {
        switch (level) {
        case LB_LOG_ERR:
                return "error: ";
        case LB_LOG_WARNING:
                return "warning: ";
        case LB_LOG_DEBUG:
                return "debug: ";
        default:
                return "";
        }
}

/* One line per message, written with a single call so concurrent writers
 * (several lifeboat processes under one journal) don't interleave. */
void lb_log_stderr(void *userdata, int level, const char *fmt, va_list ap) {
        char msg[2048];
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        if (n < 0)
                return;
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == '\n')
                msg[--len] = '\0';
        (void) fprintf(stderr, "lifeboat: %s%s\n", level_prefix(level), msg);
}
