/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "cmd-common.h"
#include "cmd-watch.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/watch/watch.h"

static void watch_usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat watch [--once]\n"
                "\n"
                "Polls IMDS every LIFEBOAT_POLL_INTERVAL for a spot interruption notice, an ASG\n"
                "scale-in (target lifecycle state Terminated) or a rebalance recommendation. At\n"
                "the end (a notice, or SIGTERM) it asks fluentd to flush, waits until no chunk file\n"
                "is left on the buffer volume, writes a marker there and tags the volume flushed;\n"
                "a chunk file that appears again turns it dirty again at once. Recovered volumes\n"
                "(LIFEBOAT_RUN_DIR/recovered.json) that stay empty for LIFEBOAT_SETTLE are tagged\n"
                "flushed, unmounted and detached. The state is kept in LIFEBOAT_RUN_DIR/watch.json\n"
                "('lifeboat status' shows it). Log lines go to stderr (the journal).\n"
                "\n"
                "  --once   run one check cycle and exit (for scripts and tests)\n"
                "\n"
                "SIGTERM/SIGINT: one last check (waiting up to the flush deadline), then exit; a\n"
                "second signal stops waiting.\n"
                "\n"
                "Exit codes: 0 buffer volume drained and tagged flushed (or none configured; with\n"
                "--once: nothing went wrong), 1 it is left dirty (with --once: a deadline passed\n"
                "undrained), 2 usage or config error, or another watch is running, 3 AWS\n"
                "unreachable at start.\n");
}

int lb_cmd_watch(struct lb_context *ctx, int argc, char **argv) {
        static const struct option options[] = {
                { "once", no_argument, NULL, '1' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct lb_watch_options opts = { 0 };
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case '1':
                        opts.once = true;
                        break;
                case 'h':
                        watch_usage(stdout);
                        return LB_EXIT_OK;
                default:
                        lb_cmd_bad_option(ctx, "watch", argv, optopt);
                        watch_usage(stderr);
                        return LB_EXIT_USAGE;
                }
        if (lb_cmd_options_done(ctx, argc, argv) < 0)
                return LB_EXIT_USAGE;

        r = lb_watch_run(ctx, &opts);
        if (r == -EINVAL || r == -EBUSY)
                return LB_EXIT_USAGE;
        if (r < 0)
                return lb_exit_code_for_aws_error(r);
        return r > 0 ? LB_EXIT_PARTIAL : LB_EXIT_OK;
}
