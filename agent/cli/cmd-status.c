/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd-common.h"
#include "cmd-status.h"
#include "output.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/status/status.h"

static void status_usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat status [--json]\n"
                "\n"
                "Shows this instance (from IMDS), its group, the volumes of the group attached\n"
                "here, and the group's volumes in this availability zone by lifeboat state.\n"
                "\n"
                "  --json   machine-readable output (schema in the README and lifeboat(8)); one\n"
                "           JSON object, also on failure, with \"exit_code\" and \"error\"\n"
                "\n"
                "Exit codes: 0 done, 1 the status could not be formatted, 2 usage or\n"
                "configuration error, 3 AWS unreachable (IMDS or EC2).\n");
}

int lb_cmd_status(struct lb_context *ctx, int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        status_usage(stdout);
                        return LB_EXIT_OK;
                default:
                        lb_cmd_bad_option(ctx, "status", argv, optopt);
                        status_usage(stderr);
                        return lb_output_fail(ctx, LB_EXIT_USAGE);
                }
        if (lb_cmd_options_done(ctx, argc, argv) < 0)
                return lb_output_fail(ctx, LB_EXIT_USAGE);

        _cleanup_status_ struct lb_status st = { 0 };
        r = lb_status_gather(ctx, &st);
        if (r < 0)
                return lb_output_fail(ctx, lb_exit_code_for_aws_error(r));

        if (json) {
                json_t *root = NULL;
                r = lb_status_to_json(&ctx->settings, &st, &root);
                if (r < 0)
                        lb_err(ctx, "cannot encode the status: %s", strerror(-r));
                (void) lb_output_json_report(ctx, root, r < 0 ? LB_EXIT_PARTIAL : LB_EXIT_OK);
        } else {
                _cleanup_free_ char *text = NULL;
                r = lb_status_format(&ctx->settings, &st, &text);
                if (r < 0)
                        lb_err(ctx, "cannot format the status: %s", strerror(-r));
                else
                        lb_output_text(text);
        }
        return r < 0 ? LB_EXIT_PARTIAL : LB_EXIT_OK;
}
