/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd-boot.h"
#include "cmd-common.h"
#include "cmd-reap.h"
#include "cmd-status.h"
#include "cmd-watch.h"
#include "lifeboat/aws/http.h"
#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/log.h"
#include "output.h"

extern char **environ;

/* The only process-wide state: set by signal handlers, read through ctx->interrupted. */
static volatile sig_atomic_t interrupted_flag;

static void on_signal(int sig) {
        interrupted_flag = sig;
}

struct command {
        const char *name;
        int (*run)(struct lb_context *ctx, int argc, char **argv);
        const char *summary;
        bool needs_settings;            /* reads the config file and the environment first */
};

static int cmd_version(struct lb_context *ctx, int argc, char **argv);
static int cmd_help(struct lb_context *ctx, int argc, char **argv);

static const struct command commands[] = {
        { "boot", lb_cmd_boot, "prepare the buffer volume and recover the group's dirty volumes", true },
        { "help", cmd_help, "show this help, or a command's ('lifeboat help reap')", false },
        { "reap", lb_cmd_reap, "delete flushed volumes of the group, report stranded and quarantined ones", true },
        { "status", lb_cmd_status, "show this instance, its group and the group's volumes", true },
        { "version", cmd_version, "print the version", false },
        { "watch", lb_cmd_watch, "drain the buffer volume when the instance is ending; release recovered volumes",
          true },
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat [--config FILE] [--verbose] COMMAND [OPTIONS]\n"
                "       lifeboat help [COMMAND]\n"
                "\n"
                "Keeps fluentd's log buffers on EBS volumes alive across spot interruptions.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
        fprintf(f,
                "\n"
                "Options:\n"
                "  -c, --config FILE  settings file (default /etc/lifeboat/lifeboat.conf)\n"
                "  -v, --verbose      log every request and decision\n"
                "  -h, --help         this help; 'lifeboat COMMAND --help' for a command\n"
                "  -V, --version      print the version\n"
                "\n"
                "Settings come from flags, then LIFEBOAT_* and AWS_* environment variables,\n"
                "then the config file, then defaults: see lifeboat(8) and the README.\n"
                "With --json, every command prints one JSON object, also when it fails, with\n"
                "\"exit_code\" and \"error\".\n"
                "\n"
                "Exit codes: 0 done, 1 partial, 2 usage or configuration error, 3 AWS unavailable\n"
                "(or the own buffer volume not ready), 4 volumes need a human (reap).\n");
}

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

static int cmd_version(struct lb_context *ctx, int argc, char **argv) {
        printf("lifeboat %s (libcurl %s)\n", LIFEBOAT_VERSION, curl_version_info(CURLVERSION_NOW)->version);
        return LB_EXIT_OK;
}

/* "lifeboat help" is --help; "lifeboat help COMMAND" is "lifeboat COMMAND --help". */
static int cmd_help(struct lb_context *ctx, int argc, char **argv) {
        if (argc < 2) {
                usage(stdout);
                return LB_EXIT_OK;
        }
        const struct command *cmd = find_command(argv[1]);
        if (!cmd || argc > 2) {
                lb_err(ctx, "help: %s '%s' (try 'lifeboat help')", cmd ? "unexpected argument" : "unknown command",
                       argv[cmd ? 2 : 1]);
                return LB_EXIT_USAGE;
        }
        if (cmd->run == cmd_help || cmd->run == cmd_version) {
                usage(stdout);
                return LB_EXIT_OK;
        }
        char *help_argv[] = { (char *) cmd->name, (char *) "--help", NULL };
        optind = 0;
        return cmd->run(ctx, 2, help_argv);
}

static int install_signal_handlers(void) {
        struct sigaction sa = { .sa_handler = on_signal };
        (void) sigemptyset(&sa.sa_mask);
        /* No SA_RESTART: a blocking wait should notice the signal. */
        if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
                return -errno;
        struct sigaction ign = { .sa_handler = SIG_IGN };
        (void) sigemptyset(&ign.sa_mask);
        if (sigaction(SIGPIPE, &ign, NULL) < 0)
                return -errno;
        return 0;
}

/* The config file (--config, else LIFEBOAT_CONFIG, else the default, which alone may be
 * missing), then the environment over it. With --verbose the settings in force are logged
 * (secrets masked). */
static int load_settings(struct lb_context *ctx, const char *config_flag) {
        int r = lb_settings_load(ctx, environ, config_flag);
        if (r < 0 || !ctx->verbose)
                return r;
        _cleanup_free_ char *dump = NULL;
        if (lb_settings_dump(&ctx->settings, &dump) < 0)
                return 0;
        for (char *save = NULL, *line = strtok_r(dump, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                lb_debug(ctx, "setting %s", line);
        return 0;
}

struct global_options {
        const char *config;
        bool verbose;
};

/* Parses the options before the command. 0 to go on, else an exit code + 1 (help, version,
 * or a usage error). */
static int parse_global_options(struct lb_context *ctx, int argc, char **argv, struct global_options *ret) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int c;
        /* '+': stop at the command name; the command parses the rest. Errors are logged by us. */
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+c:vhV", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        ret->config = optarg;
                        break;
                case 'v':
                        ret->verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        return LB_EXIT_OK + 1;
                case 'V':
                        return cmd_version(ctx, 0, NULL) + 1;
                default:
                        lb_cmd_bad_option(ctx, argv[0], argv, optopt);
                        usage(stderr);
                        return LB_EXIT_USAGE + 1;
                }
        if (optind >= argc) {
                usage(stderr);
                return LB_EXIT_USAGE + 1;
        }
        return 0;
}

static int run(struct lb_context *ctx, int argc, char **argv) {
        struct global_options g = {};
        int r = parse_global_options(ctx, argc, argv, &g);
        if (r > 0)
                return r - 1;

        const struct command *cmd = find_command(argv[optind]);
        if (!cmd) {
                lb_err(ctx, "unknown command '%s' (try 'lifeboat --help')", argv[optind]);
                return LB_EXIT_USAGE;
        }
        int cmd_argc = argc - optind;
        char **cmd_argv = argv + optind;
        lb_output_of(ctx)->json = lb_output_wants_json(cmd_argc, cmd_argv);

        ctx->verbose = g.verbose;
        ctx->log_max_level = g.verbose ? LB_LOG_DEBUG : LB_LOG_INFO;

        if (install_signal_handlers() < 0 || lb_http_global_init() < 0) {
                lb_err(ctx, "cannot initialise the process");
                return lb_output_fail(ctx, LB_EXIT_USAGE);
        }
        if (cmd->needs_settings && load_settings(ctx, g.config) < 0)
                r = lb_output_fail(ctx, LB_EXIT_USAGE);
        else {
                /* Reset getopt for the command's own parsing. */
                optind = 0;
                r = cmd->run(ctx, cmd_argc, cmd_argv);
        }
        lb_http_global_done();
        return r;
}

int main(int argc, char **argv) {
        struct lb_context ctx;
        struct lb_output out;

        lb_output_init(&out, false);
        if (lb_context_init(&ctx) < 0) {
                fprintf(stderr, "lifeboat: out of memory\n");
                return LB_EXIT_USAGE;
        }
        ctx.log_fn = lb_output_log;
        ctx.log_userdata = &out;
        ctx.interrupted = &interrupted_flag;

        int r = run(&ctx, argc, argv);

        /* A report nobody received (full disk, closed pipe) is not a success. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
                lb_err(&ctx, "cannot write the output: %s", strerror(errno));
                if (r == LB_EXIT_OK)
                        r = LB_EXIT_PARTIAL;
        }
        lb_context_done(&ctx);
        return r;
}
