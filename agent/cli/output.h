/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct lb_context;

/*
 * What the user sees besides a command's own report: the log on stderr, and the JSON
 * contract. main sets it up and installs it as the context's log sink (ctx->log_userdata).
 *
 * The log: one line per message. When stderr is the journal (JOURNAL_STREAM names it,
 * sd-daemon(3)), each line starts with its syslog priority "<N>" and no program name (the
 * journal records the unit), so that `journalctl -p warning` finds the warnings; else
 * "lifeboat: [error: |warning: |debug: ]message". Control characters, newlines and invalid
 * UTF-8 (a tag value, a file name) are escaped: no value can forge or split a log line.
 *
 * The JSON contract: with --json, every command prints exactly one object on stdout, also
 * when it fails, with "exit_code" and "error" (the last error it logged, else null; never
 * null when exit_code is 2 or 3). A report that cannot be encoded (a value that is not valid
 * UTF-8) is replaced by {"exit_code", "error"}: there is always a valid object.
 */
struct lb_output {
        bool journal;                   /* stderr is the journal */
        bool json;                      /* the command line asked for --json */
        char last_error[1024];          /* the last message logged at error level */
};

/* Looks at JOURNAL_STREAM and stderr; json from the command's arguments (lb_output_wants_json). */
void lb_output_init(struct lb_output *out, bool json);
/* Whether argv (the command's arguments, argv[0] its name) holds --json before any "--". */
bool lb_output_wants_json(int argc, char *const *argv);
/* The lb_log_fn main installs, with the output as userdata. */
void lb_output_log(void *userdata, int level, const char *fmt, va_list ap);
/* One log line as lb_output_log() writes it (without the newline) into buf; returns buf. */
const char *lb_output_format_line(const struct lb_output *out, int level, const char *msg, char *buf, size_t size);

/* The output installed in ctx (NULL when the context logs elsewhere, as in unit tests). */
struct lb_output *lb_output_of(const struct lb_context *ctx);
/* Prints report (may be NULL when it could not be built) with "exit_code" and "error" added,
 * the way every --json report looks (indented, keys sorted), and a trailing newline. Takes
 * the reference. A report that cannot be encoded becomes the failure object. */
int lb_output_json_report(const struct lb_context *ctx, json_t *report, int exit_code);
/* The failure object alone, for a command that failed before it had a report. Returns
 * exit_code, so that a command can "return lb_output_fail(ctx, LB_EXIT_USAGE);". Prints
 * nothing without --json (the log said it already). */
int lb_output_fail(const struct lb_context *ctx, int exit_code);
/* Writes text to stdout (a table, a report). */
void lb_output_text(const char *text);
