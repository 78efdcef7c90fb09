/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Helpers shared by the unit tests (cmocka; linked into every test by
 * lb_add_unit_test). A helper whose name says nothing about a result fails
 * the calling test itself when something goes wrong, like an assert_*().
 */

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#include "lifeboat/basic/context.h"
#include "lifeboat/basic/macro.h"
#include "lifeboat/basic/util.h"

/* ---- temporary directories ---- */

/* Creates a fresh directory /tmp/lifeboat-<test program>.XXXXXX and writes its path into buf.
 * Returns 0, or a negative errno. */
int lbt_mkdtemp(char *buf, size_t size);
/* Removes path and everything below it, without following symlinks or entering other mounts.
 * Returns 0 when path is gone afterwards, else -1. */
int lbt_rm_rf(const char *path);
/* cmocka setup and teardown: *state is a fresh temporary directory (char *), removed afterwards. */
int lbt_tmpdir_setup(void **state);
int lbt_tmpdir_teardown(void **state);

/* ---- files ---- */

/* Formats a path into buf, which holds PATH_MAX bytes; fails the test when it does not fit. */
void lbt_pathf(char *buf, const char *fmt, ...) _printf_(2, 3);
/* Writes text to path (mode 0644, replacing it), creating the parent directories first. */
void lbt_write_text(const char *path, const char *text);

/* ---- processes ---- */

/* Waits for the child pid; fails the test unless it exited normally. Returns its exit status. */
int lbt_wait_exit(pid_t pid);

/* ---- memory ---- */

/*
 * Whether this test runs under AddressSanitizer, which reserves terabytes of address space:
 * there a test cannot lower RLIMIT_AS, and a file that needs a ceiling on allocations sets
 * ASan's own, with LBT_ASAN_ALLOCATION_LIMIT in its __asan_default_options().
 */
#if defined(__SANITIZE_ADDRESS__)
#define LBT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LBT_ASAN 1
#endif
#endif
#define LBT_ASAN_ALLOCATION_LIMIT "allocator_may_return_null=1:max_allocation_size_mb=1024"

/* Runs fn(arg) with the address space limited to 1 GiB (RLIMIT_AS; under ASan the limit of
 * LBT_ASAN_ALLOCATION_LIMIT), so that a parser asking for gigabytes fails instead of getting
 * overcommitted pages. Returns what fn returned. */
int lbt_with_memory_limit(int (*fn)(void *arg), void *arg);

/* ---- samples ---- */

/* Copies doc into buf without the line of member key, written as '  "key" : ' (the samples'
 * indentation); fails the test when there is no such line or the copy does not fit. */
void lbt_drop_member_line(const char *doc, const char *key, char *buf, size_t size);

/* ---- log capture ---- */

/* Every message logged through lbt_log_capture(), one "LEVEL TEXT" line each. */
struct lbt_log {
        struct lb_buf text;
        unsigned n_err, n_warn;
};

/* An lb_log_fn: install it with ctx.log_userdata pointing to a struct lbt_log. */
void lbt_log_capture(void *userdata, int level, const char *fmt, va_list ap);
struct lb_context;
/* Makes ctx log every message, debug included, into l through lbt_log_capture(). */
void lbt_log_install(struct lb_context *ctx, struct lbt_log *l);
/* What was logged so far, "" when nothing. */
const char *lbt_log_text(const struct lbt_log *l);
/* Forgets everything logged (also frees the text). */
void lbt_log_reset(struct lbt_log *l);

/* A watch.json state with a little of everything (notices, a draining own volume, one settling
 * and one released recovered volume), at 2026-11-26T16:12:55Z; free with lb_watch_state_done(). */
struct lb_watch_state;
void lbt_sample_watch_state(struct lb_watch_state *st);
