/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <signal.h>
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
};

static int cmd_version(struct lb_context *ctx, int argc, char **argv) {
        printf("lifeboat %s (libcurl %s)\n", LIFEBOAT_VERSION, curl_version_info(CURLVERSION_NOW)->version);
        return LB_EXIT_OK;
}

static const struct command commands[] = {
        { "boot", lb_cmd_boot, "prepare the buffer volume and recover the group's dirty volumes" },
        { "reap", lb_cmd_reap, "delete flushed volumes of the group, report stranded and quarantined ones" },
        { "status", lb_cmd_status, "show this instance, its group and the group's volumes" },
        { "version", cmd_version, "print the version" },
        { "watch", lb_cmd_watch, "drain the buffer volume when the instance is ending; release recovered volumes" },
};

static void usage(FILE *f) {
        fprintf(f,
                "Usage: lifeboat [--config FILE] [--verbose] COMMAND [OPTIONS]\n"
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
                "\n"
                "Settings come from flags, then LIFEBOAT_* and AWS_* environment variables,\n"
                "then the config file, then defaults. See the README for the list.\n");
}

static const struct command *find_command(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return &commands[i];
        return NULL;
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

/* Reads the config file named by --config, else LIFEBOAT_CONFIG, else the default. Only a
 * file named with --config must exist: the others are optional, like EnvironmentFile=-. */
static int load_config(struct lb_context *ctx, const char *flag_path) {
        const char *env_path = getenv("LIFEBOAT_CONFIG");
        const char *path = flag_path ? flag_path : !isempty(env_path) ? env_path : NULL;
        bool explicit_path = flag_path != NULL;
        if (!path)
                path = ctx->settings.config_path;
        int r = lb_settings_set(ctx, "LIFEBOAT_CONFIG", path, flag_path ? "--config" : "environment");
        if (r < 0)
                return r;
        return lb_settings_load_config_file(ctx, ctx->settings.config_path, !explicit_path);
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        struct lb_context ctx;
        const char *config_flag = NULL;
        bool verbose = false;
        int c, r;

        if (lb_context_init(&ctx) < 0) {
                fprintf(stderr, "lifeboat: out of memory\n");
                return LB_EXIT_USAGE;
        }
        ctx.log_fn = lb_log_stderr;
        ctx.interrupted = &interrupted_flag;

        /* '+': stop at the command name; the command parses the rest. */
        while ((c = getopt_long(argc, argv, "+c:vhV", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_flag = optarg;
                        break;
                case 'v':
                        verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        lb_context_done(&ctx);
                        return LB_EXIT_OK;
                case 'V':
                        r = cmd_version(&ctx, 0, NULL);
                        lb_context_done(&ctx);
                        return r;
                default:
                        usage(stderr);
                        lb_context_done(&ctx);
                        return LB_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                lb_context_done(&ctx);
                return LB_EXIT_USAGE;
        }
        const struct command *cmd = find_command(argv[optind]);
        if (!cmd) {
                fprintf(stderr, "lifeboat: unknown command '%s' (try 'lifeboat --help')\n", argv[optind]);
                lb_context_done(&ctx);
                return LB_EXIT_USAGE;
        }

        ctx.verbose = verbose;
        ctx.log_max_level = verbose ? LB_LOG_DEBUG : LB_LOG_INFO;

        if (install_signal_handlers() < 0 || lb_http_global_init() < 0) {
                fprintf(stderr, "lifeboat: cannot initialise the process\n");
                lb_context_done(&ctx);
                return LB_EXIT_USAGE;
        }

        if (cmd->run != cmd_version) {
                r = load_config(&ctx, config_flag);
                if (r >= 0)
                        r = lb_settings_apply_environment(&ctx, environ);
                if (r < 0) {
                        lb_context_done(&ctx);
                        lb_http_global_done();
                        return LB_EXIT_USAGE;
                }
        }

        /* Reset getopt for the command's own parsing. */
        int cmd_argc = argc - optind;
        char **cmd_argv = argv + optind;
        optind = 0;
        r = cmd->run(&ctx, cmd_argc, cmd_argv);

        /* A report nobody received (full disk, closed pipe) is not a success. */
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "lifeboat: cannot write the output: %s\n", strerror(errno));
                if (r == LB_EXIT_OK)
                        r = LB_EXIT_PARTIAL;
        }

        lb_context_done(&ctx);
        lb_http_global_done();
        return r;
}
