/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/exit-status.h"
#include "lifeboat/basic/json.h"
#include "lifeboat/basic/log.h"
#include "lifeboat/basic/utf8.h"
#include "lifeboat/basic/util.h"
#include "output.h"

/* Whether JOURNAL_STREAM ("DEV:INODE") describes stderr: the variable alone is not enough, since
 * stderr may have been redirected since the service manager set it. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        char tail;
        struct stat st;
        if (isempty(e) || sscanf(e, "%llu:%llu%c", &dev, &ino, &tail) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void lb_output_init(struct lb_output *out, bool json) {
        *out = (struct lb_output) { .journal = stderr_is_journal(), .json = json };
}

bool lb_output_wants_json(int argc, char *const *argv) {
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--"))
                        return false;
                if (streq(argv[i], "--json"))
                        return true;
        }
        return false;
}

static const char *level_word(int level) {
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

const char *lb_output_format_line(const struct lb_output *out, int level, const char *msg, char *buf, size_t size) {
        char escaped[2048];
        (void) lb_cescape(msg, escaped, sizeof escaped);
        if (out && out->journal)
                (void) lb_snprintf(buf, size, "<%d>%s", level < 0 ? 0 : level > 7 ? 7 : level, escaped);
        else
                (void) lb_snprintf(buf, size, "lifeboat: %s%s", level_word(level), escaped);
        return buf;
}

/* One line per message, written with a single call so concurrent writers
 * (several lifeboat processes under one journal) don't interleave. */
void lb_output_log(void *userdata, int level, const char *fmt, va_list ap) {
        struct lb_output *out = userdata;
        char msg[2048], line[2200];
        if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
                return;
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == '\n')
                msg[--len] = '\0';
        if (out && level <= LB_LOG_ERR)
                (void) lb_utf8_copy(out->last_error, sizeof out->last_error, msg);
        (void) fprintf(stderr, "%s\n", lb_output_format_line(out, level, msg, line, sizeof line));
}

struct lb_output *lb_output_of(const struct lb_context *ctx) {
        return ctx && ctx->log_fn == lb_output_log ? ctx->log_userdata : NULL;
}

/* What "error" says for a command that ends with exit_code: the last error logged, else (for
 * the failures that must say something) what the exit code means. */
static json_t *error_value(const struct lb_context *ctx, int exit_code) {
        const struct lb_output *out = lb_output_of(ctx);
        if (out && !isempty(out->last_error))
                return json_string(out->last_error);
        switch (exit_code) {
        case LB_EXIT_USAGE:
                return json_string("usage or configuration error");
        case LB_EXIT_UNAVAILABLE:
                return json_string("AWS unavailable");
        default:
                return json_null();
        }
}

static void print_json(const json_t *root) {
        _cleanup_free_ char *text = NULL;
        if (lb_json_dump_line(root, JSON_INDENT(2) | JSON_SORT_KEYS, &text) >= 0)
                (void) fputs(text, stdout);
}

int lb_output_json_report(const struct lb_context *ctx, json_t *report, int exit_code) {
        json_auto_t *root = report;
        json_t *error = error_value(ctx, exit_code);
        if (!root) {
                /* A value that is not valid UTF-8 (jansson refuses it), or no memory. */
                json_decref(error);
                error = json_string("the report could not be encoded (a value is not valid UTF-8); see the log");
                root = json_object();
                if (!root)
                        return -ENOMEM;
        }
        if (json_object_set_new(root, "exit_code", json_integer(exit_code)) < 0 ||
            json_object_set_new(root, "error", error ? error : json_null()) < 0)
                return -ENOMEM;
        print_json(root);
        return 0;
}

int lb_output_fail(const struct lb_context *ctx, int exit_code) {
        const struct lb_output *out = lb_output_of(ctx);
        if (out && out->json)
                (void) lb_output_json_report(ctx, json_object(), exit_code);
        return exit_code;
}

void lb_output_text(const char *text) {
        (void) fputs(text, stdout);
}
